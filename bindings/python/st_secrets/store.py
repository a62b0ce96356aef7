"""The library's provider-configuration store (SQLite, read through the
cache, audited, credentials encrypted at rest) and hardware pricing, as the
top-level `st_secrets.Store` and functions. SimpleTuner's API over the same
store is in `st_secrets.provider_config_store` and
`st_secrets.replicate_client`."""

import json
import os

from . import _native


class Store:
    """An open store; `db_path` None means <state dir>/cloud/jobs.db."""

    def __init__(self, db_path=None):
        self._handle = _native.StoreHandle(None if db_path is None else os.fspath(db_path))

    def __repr__(self):
        return f"Store({str(self._handle.path())!r})"

    @property
    def path(self):
        return self._handle.path()

    def get_provider_config(self, provider):
        return json.loads(self._handle.get_provider_config(provider))

    def save_provider_config(self, provider, config):
        self._handle.save_provider_config(provider, _json("config", config))

    def update_provider_config(self, provider, updates):
        """Atomic JSON merge patch (None removes a key); returns the result."""
        return json.loads(self._handle.merge_provider_config(provider, _json("updates", updates)))

    def delete_provider_config(self, provider):
        return self._handle.delete_provider_config(provider)

    def list_providers(self):
        return self._handle.list_providers()

    def set_credential(self, provider, name, value):
        self._handle.set_credential(provider, name, value)

    def get_credential(self, provider, name):
        return self._handle.get_credential(provider, name)

    def delete_credential(self, provider, name):
        return self._handle.delete_credential(provider, name)

    def rotate_credentials(self):
        rotated, current, failed = self._handle.rotate_credentials()
        return {"rotated": rotated, "current": current, "failed": failed}

    def audit_entries(self, limit=100):
        names = ("id", "at", "action", "provider", "subject", "detail")
        out = []
        for row in self._handle.audit_entries(int(limit)):
            entry = dict(zip(names, row))
            entry["detail"] = json.loads(entry["detail"])
            out.append(entry)
        return out

    def verify_audit(self):
        """{"entries": n}; raises StoreError naming the first broken entry."""
        entries, broken = self._handle.verify_audit()
        if broken is not None:
            from ._errors import error_for
            raise error_for(500, f"audit entry {broken[0]} is broken: {broken[1]}")
        return {"entries": entries}

    def audit_head(self):
        return self._handle.audit_head()


def _json(what, value):
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None


def _handle(store):
    if store is None:
        return None
    handle = getattr(store, "_handle", None)
    if isinstance(handle, _native.StoreHandle):
        return handle
    inner = getattr(store, "_store", None)  # a ProviderConfigStore
    if isinstance(inner, Store):
        return inner._handle
    return None


def get_hardware_info(store=None):
    """Hardware prices: cached (5 min), else the store's replicate
    hardware_info, else the defaults."""
    return json.loads(_native.hardware_info_json(_handle(store)))


def set_hardware_info(info):
    """Sets the prices (validated) for the next 5 minutes."""
    _native.hardware_info_set(_json("hardware info", info))


def clear_hardware_info_cache():
    _native.hardware_info_clear_cache()


def get_hourly_cost(hardware=None, store=None):
    """The hourly cost of `hardware` (default gpu-l40s)."""
    return _native.hardware_hourly_cost(_handle(store), hardware)

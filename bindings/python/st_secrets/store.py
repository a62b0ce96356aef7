"""The library's provider-configuration store (SQLite, read through the
cache, audited, credentials encrypted at rest) and hardware pricing, as the
top-level `st_secrets.Store` and functions. SimpleTuner's API over the same
store is in `st_secrets.provider_config_store` and
`st_secrets.replicate_client`."""

import json
import os
from pathlib import Path
from typing import Any, Optional, Union, cast

from . import _native


class Store:
    """An open store; `db_path` None means <state dir>/cloud/jobs.db."""

    def __init__(self, db_path: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
        self._handle = _native.StoreHandle(None if db_path is None else os.fspath(db_path))

    def __repr__(self) -> str:
        return f"Store({str(self._handle.path())!r})"

    @property
    def path(self) -> Path:
        return self._handle.path()

    def get_provider_config(self, provider: str) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self._handle.get_provider_config(provider)))

    def save_provider_config(self, provider: str, config: dict[str, Any]) -> None:
        self._handle.save_provider_config(provider, _json("config", config))

    def update_provider_config(self, provider: str, updates: dict[str, Any]) -> dict[str, Any]:
        """Atomic JSON merge patch (None removes a key); returns the result."""
        return cast(dict[str, Any], json.loads(self._handle.merge_provider_config(provider, _json("updates", updates))))

    def delete_provider_config(self, provider: str) -> bool:
        return self._handle.delete_provider_config(provider)

    def list_providers(self) -> list[str]:
        return self._handle.list_providers()

    def set_credential(self, provider: str, name: str, value: str) -> None:
        self._handle.set_credential(provider, name, value)

    def get_credential(self, provider: str, name: str) -> Optional[str]:
        return self._handle.get_credential(provider, name)

    def delete_credential(self, provider: str, name: str) -> bool:
        return self._handle.delete_credential(provider, name)

    def rotate_credentials(self) -> dict[str, int]:
        rotated, current, failed = self._handle.rotate_credentials()
        return {"rotated": rotated, "current": current, "failed": failed}

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        names = ("id", "at", "action", "provider", "subject", "detail")
        out: list[dict[str, Any]] = []
        for row in self._handle.audit_entries(int(limit)):
            entry: dict[str, Any] = dict(zip(names, row))
            entry["detail"] = json.loads(entry["detail"])
            out.append(entry)
        return out

    def verify_audit(self) -> dict[str, int]:
        """{"entries": n}; raises StoreError naming the first broken entry."""
        entries, broken = self._handle.verify_audit()
        if broken is not None:
            from ._errors import error_for
            raise error_for(500, f"audit entry {broken[0]} is broken: {broken[1]}")
        return {"entries": entries}

    def audit_head(self) -> str:
        return self._handle.audit_head()


def _json(what: str, value: object) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None


def _handle(store: object) -> Optional[_native.StoreHandle]:
    if store is None:
        return None
    handle = getattr(store, "_handle", None)
    if isinstance(handle, _native.StoreHandle):
        return handle
    inner = getattr(store, "_store", None)  # a ProviderConfigStore
    if isinstance(inner, Store):
        return inner._handle
    return None


def get_hardware_info(store: object = None) -> dict[str, Any]:
    """Hardware prices: cached (5 min), else the store's replicate
    hardware_info, else the defaults."""
    return cast(dict[str, Any], json.loads(_native.hardware_info_json(_handle(store))))


def set_hardware_info(info: dict[str, Any]) -> None:
    """Sets the prices (validated) for the next 5 minutes."""
    _native.hardware_info_set(_json("hardware info", info))


def clear_hardware_info_cache() -> None:
    _native.hardware_info_clear_cache()


def get_hourly_cost(hardware: Optional[str] = None, store: object = None) -> float:
    """The hourly cost of `hardware` (default gpu-l40s)."""
    return _native.hardware_hourly_cost(_handle(store), hardware)

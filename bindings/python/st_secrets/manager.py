"""The library's own SecretsManager (the top-level `st_secrets.SecretsManager`):
an independent chain per instance, configured with the library's keys, whose
`get` raises the provider's error when no provider has the key and one of
them failed. SimpleTuner's singleton API is in `st_secrets.secrets`."""

import atexit
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Optional, cast

from . import _native

# Registered at import, so it runs after the atexit handlers registered
# later: listener calls end before the interpreter does (a library thread
# entering a finalizing interpreter ends the process with SIGABRT).
atexit.register(_native.interpreter_exiting)
from ._errors import attempt

logger = logging.getLogger(__name__)


class SecretsManager(_native.ManagerBase):
    """A chain of providers checked in priority order. `config` takes the
    library's configuration keys (docs/configuration.md, section
    "Configuration keys"); None configures from the environment."""

    REPLICATE_API_TOKEN = "REPLICATE_API_TOKEN"
    HF_TOKEN = "HF_TOKEN"
    WEBHOOK_SECRET = "CLOUD_WEBHOOK_SECRET"

    def __init__(self, config: Optional[dict[str, Any]] = None) -> None:
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"config must be a dict or None, not {type(config).__name__}")
        self._use_native(None if config is None else json.dumps(config), True)

    def __repr__(self) -> str:
        return f"SecretsManager(chain={[p['name'] for p in self.providers()]})"

    # get(key, default=None) is the native base class's.

    def get_with_source(self, key: str) -> Optional[tuple[str, str]]:
        """(value, provider name), or None when no provider has it."""
        return self._get_with_source(key)

    def get_with_version(self, key: str) -> Optional[dict[str, Any]]:
        """{"value", "provider", "version", "stages"}, or None when no provider
        has the key. The version is the remote secret's (AWS VersionId, with
        its stages; the Vault KV v2 version), None for the environment, the
        file and KV v1: record it, never the value."""
        return _native.manager_get_with_version(self, key)

    def refresh(self, key: str) -> Optional[dict[str, Any]]:
        """"This value failed me": the key read again now, whatever the caches
        say: {"value", "changed", "provider", "version", "stages"}, or None
        when no provider has it. A remote secret is fetched at most once per
        refresh_min_interval, single-flight: a storm of callers sends one
        request."""
        return _native.manager_refresh(self, key)

    def report_failure(self, key: str, version: Optional[str] = None) -> Optional[dict[str, Any]]:
        """"This value failed me": a login with the key's value of `version`
        (as get_with_version gave it; None: the version held) was refused.
        The key is read again as refresh reads it, except that a remote
        secret whose version in force is the one that failed is answered with
        the version beside it (AWS AWSPENDING, then AWSPREVIOUS; the Vault KV
        v2 version before), held until the service's version in force is
        another; a leased credential is issued anew. {"value", "changed", "provider", "version", "stages"}, with
        "instead_of" naming the failed version a stand-in replaces; None when
        no provider has the key."""
        return _native.manager_report_failure(self, key, version)

    def on_change(self, callback: Callable[[dict[str, Any]], object]) -> int:
        """Calls callback({"key", "provider", "version", "stages", "removed"})
        whenever the value this manager serves for a key changes (a remote
        secret refreshed or rotated, the secrets file rewritten); never the
        value. While a listener is registered the library also watches without
        gets, on its own thread (the callback then runs there, holding the
        GIL). Returns the id for remove_listener."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        return _native.manager_on_change(self, callback)

    def remove_listener(self, listener_id: int) -> bool:
        """Unregisters a listener: no call of it starts after this returns.
        False when there is no such listener."""
        return _native.manager_remove_listener(self, listener_id)

    def get_replicate_token(self) -> Optional[str]:
        return self.get(self.REPLICATE_API_TOKEN)

    def get_hf_token(self) -> Optional[str]:
        return self.get(self.HF_TOKEN)

    def get_webhook_secret(self) -> Optional[str]:
        return self.get(self.WEBHOOK_SECRET)

    def set_secret(self, key: str, value: str) -> bool:
        """Saves to the secrets file (0600, atomic). True on success; False,
        with a logged warning (never the value), on failure."""
        return attempt(logger, logging.WARNING, "save", key, self._set, key, value)

    def set_replicate_token(self, token: str) -> bool:
        return self.set_secret(self.REPLICATE_API_TOKEN, token)

    def delete_secret(self, key: str) -> bool:
        """Removes the key from the secrets file. True when it is gone (also
        when it was not there); False on failure."""
        return attempt(logger, logging.WARNING, "delete", key, self._delete, key)

    def clear_cache(self) -> None:
        self._clear()

    def file_path(self) -> Optional[Path]:
        """The secrets file saves go to, or None."""
        return self._file_path()

    def providers(self) -> list[dict[str, Any]]:
        """The chain: [{"name", "available", "detail", "warnings", "last_error"}]."""
        return cast(list[dict[str, Any]], json.loads(self._providers_json()))

    def metrics(self) -> dict[str, Any]:
        """The remote providers' counters (the process's), by provider:
        {"requests": [{"operation", "method", "outcome", "count", "seconds",
        "buckets"}], "retries", "failovers", "stale_served", "refreshes_ahead",
        "logins", "renewals", "leases_issued", "leases_renewed",
        "leases_revoked", "tokens_revoked"}. Never a key name or a value."""
        return cast(dict[str, Any], json.loads(self._metrics_json()))

    def provenance(self) -> Optional[list[dict[str, Any]]]:
        """Which version of each secret this manager used: [{"key", "provider",
        "version", "stages", "fingerprint", "first_used", "last_used"}], never a
        value (fingerprint: hmac-sha256:<hex> of the value under the job's
        salt); None when it does not record it (the config key "provenance",
        SIMPLETUNER_PROVENANCE_FILE)."""
        text = self._provenance_json()
        return None if text is None else cast(list[dict[str, Any]], json.loads(text))


_default: Optional[SecretsManager] = None
_default_lock = threading.Lock()


def get_secrets_manager() -> SecretsManager:
    """The process-wide library manager (configured from the environment)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SecretsManager()
        return _default


def reset_secrets_manager() -> None:
    """Drops the process-wide library manager; the next use rebuilds it."""
    global _default
    with _default_lock:
        _default = None

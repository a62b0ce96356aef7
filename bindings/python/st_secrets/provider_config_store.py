"""SimpleTuner's provider-config store (`storage/provider_config_store.py`):
the `provider_config` table of <state dir>/cloud/jobs.db, here read through
the cache, written atomically and audited."""

import asyncio
import functools
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union, cast

from . import _native
from ._errors import StSecretsError
from .store import Store, _json

T = TypeVar("T")

__all__ = ["ProviderConfigStore", "get_provider_config_store"]

logger = logging.getLogger(__name__)


class ProviderConfigStore:
    """The provider configurations of one database file.

    SimpleTuner's stores are per-class singletons whose `db_path` counts at
    the first construction only, reset by its code and tests
    (`reset_instance()`, `BaseSQLiteStore._instances.clear()`) before they
    build stores on a new directory. Here there is one instance per database
    file instead, so a store is always the database it was asked for:

    - `ProviderConfigStore(path)` is the instance of that file (made on
      first use; the same object for the same resolved path) and becomes
      the current store;
    - `ProviderConfigStore()` is the current store while the default
      database location is what it was when that store became current and
      its file still exists (so code that builds the store with a path and
      code that builds it with none share one, as in SimpleTuner), else the
      default database's instance, which becomes current;
    - `reset_instance()` (or `_instances.clear()`) forgets them all; the
      next construction opens its database anew.

    A store whose file was removed while open raises StoreError naming it
    on the next call that reaches the database (never "malformed"); its
    path makes a new store when constructed again. One whose file was
    replaced follows the path. The async methods run the database work in
    the default executor, with the GIL released."""

    # (class, resolved path) -> instance; and the current store's key with
    # the default location at the time it became current.
    _instances: Dict[Any, "ProviderConfigStore"] = {}
    _current: Optional[Tuple[Any, Optional[Path]]] = None
    _init_lock = threading.RLock()
    _store: Store

    def __new__(cls, db_path: Optional[Union[str, "os.PathLike[str]"]] = None) -> "ProviderConfigStore":
        try:
            default = Path(_native.default_db_path()).resolve()
        except StSecretsError:
            default = None  # no state directory: only explicit paths open
        with cls._init_lock:
            if db_path is None:
                current = ProviderConfigStore._current
                if current is not None and current[0][0] is cls and current[1] == default:
                    instance: Optional[ProviderConfigStore] = cls._instances.get(current[0])
                    if instance is not None and Path(instance._store.path).exists():
                        return instance
                path = default  # None: Store says there is no state directory
            else:
                path = Path(os.fspath(db_path)).expanduser().resolve()
            key = (cls, path)
            instance = cls._instances.get(key)
            if instance is None or not Path(instance._store.path).exists():
                instance = super().__new__(cls)
                instance._store = Store(path)
                key = (cls, Path(instance._store.path).resolve())
                cls._instances[key] = instance
            ProviderConfigStore._current = (key, default)
            return instance

    def __init__(self, db_path: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
        pass

    def __repr__(self) -> str:
        return f"ProviderConfigStore({str(self._store.path)!r})"

    @classmethod
    def reset_instance(cls) -> None:
        """Forgets this class's stores (SimpleTuner's test reset): the next
        construction opens its database anew."""
        with cls._init_lock:
            for key in [key for key in cls._instances if key[0] is cls]:
                del cls._instances[key]
            current = ProviderConfigStore._current
            if current is not None and current[0][0] is cls:
                ProviderConfigStore._current = None

    def get_database_path(self) -> Path:
        """The database file (SimpleTuner's BaseSQLiteStore method)."""
        return Path(self._store.path)

    @property
    def db_path(self) -> Path:
        return self._store.path

    # -- sync ------------------------------------------------------------------

    def get_sync(self, provider: str) -> Dict[str, Any]:
        return self._store.get_provider_config(provider)

    def save_sync(self, provider: str, config: Dict[str, Any]) -> None:
        """Replaces the whole configuration."""
        self._store.save_provider_config(provider, config)

    def update_sync(self, provider: str, updates: Dict[str, Any]) -> Dict[str, Any]:
        """Sets the top-level keys of `updates` (a shallow update, atomic)."""
        return cast(Dict[str, Any], json.loads(self._store._handle.update_provider_config(provider, _json("updates", updates))))

    def delete_sync(self, provider: str) -> bool:
        return self._store.delete_provider_config(provider)

    def list_providers_sync(self) -> List[str]:
        return self._store.list_providers()

    # -- async -----------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    async def get(self, provider: str) -> Dict[str, Any]:
        return await self._run(self.get_sync, provider)

    async def save(self, provider: str, config: Dict[str, Any]) -> None:
        await self._run(self.save_sync, provider, config)

    async def update(self, provider: str, updates: Dict[str, Any]) -> Dict[str, Any]:
        return await self._run(self.update_sync, provider, updates)

    async def delete(self, provider: str) -> bool:
        return await self._run(self.delete_sync, provider)

    async def list_providers(self) -> List[str]:
        return await self._run(self.list_providers_sync)

    async def get_webhook_config(self, provider: str) -> Dict[str, Any]:
        config = await self.get(provider)
        return {
            "webhook_url": config.get("webhook_url"),
            "webhook_secret": config.get("webhook_secret"),
            "webhook_require_signature": config.get("webhook_require_signature", True),
            "webhook_allowed_ips": config.get("webhook_allowed_ips", []),
        }

    async def get_cost_limit_config(self, provider: str) -> Dict[str, Any]:
        config = await self.get(provider)
        return {
            "enabled": config.get("cost_limit_enabled", False),
            "amount": config.get("cost_limit_amount", 0.0),
            "period": config.get("cost_limit_period", "daily"),
            "action": config.get("cost_limit_action", "warn"),
        }

    async def get_hardware_info(self, provider: str) -> Optional[Dict[str, Any]]:
        config = await self.get(provider)
        return config.get("hardware_info")

    # SimpleTuner's AsyncJobStore facade names, so this store can be handed
    # to get_hardware_info_async and to code written against the facade.
    async def get_provider_config(self, provider: str) -> Dict[str, Any]:
        return await self.get(provider)

    async def save_provider_config(self, provider: str, config: Dict[str, Any]) -> None:
        await self.save(provider, config)


def get_provider_config_store() -> ProviderConfigStore:
    """The current ProviderConfigStore (see the class: `ProviderConfigStore()`)."""
    return ProviderConfigStore()

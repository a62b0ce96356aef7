"""SimpleTuner's provider-config store (`storage/provider_config_store.py`):
the `provider_config` table of <state dir>/cloud/jobs.db, here read through
the cache, written atomically and audited."""

import asyncio
import functools
import json
from typing import Any, Dict, List, Optional

from ._errors import ProcessSingleton
from .store import Store, _json

__all__ = ["ProviderConfigStore", "get_provider_config_store"]


class ProviderConfigStore(ProcessSingleton):
    """The provider configurations (a per-class singleton: `db_path` is used
    by the first construction only, as SimpleTuner's). The async methods run
    the database work in the default executor, with the GIL released."""

    def __init__(self, db_path=None):
        with self._lock:
            if self._initialized:
                return
            self._store = Store(db_path)
            self._initialized = True

    @property
    def db_path(self):
        return self._store.path

    # -- sync ------------------------------------------------------------------

    def get_sync(self, provider: str) -> Dict[str, Any]:
        return self._store.get_provider_config(provider)

    def save_sync(self, provider: str, config: Dict[str, Any]) -> None:
        """Replaces the whole configuration."""
        self._store.save_provider_config(provider, config)

    def update_sync(self, provider: str, updates: Dict[str, Any]) -> Dict[str, Any]:
        """Sets the top-level keys of `updates` (a shallow update, atomic)."""
        return json.loads(self._store._handle.update_provider_config(provider, _json("updates", updates)))

    def delete_sync(self, provider: str) -> bool:
        return self._store.delete_provider_config(provider)

    def list_providers_sync(self) -> List[str]:
        return self._store.list_providers()

    # -- async -----------------------------------------------------------------

    async def _run(self, fn, *args):
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
    """The process-wide ProviderConfigStore."""
    return ProviderConfigStore()

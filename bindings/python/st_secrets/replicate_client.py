"""SimpleTuner's hardware-info cache (from `replicate_client`): the prices
of Replicate's hardware, cached for 5 minutes, from the provider config's
`hardware_info` or the defaults. Prices are validated on every way in."""

import json
import logging
from typing import Any, Dict, cast

from . import _native
from ._errors import StSecretsError
from .store import _handle

__all__ = [
    "DEFAULT_HARDWARE_INFO",
    "get_hardware_info_async",
    "update_hardware_info_cache",
    "clear_hardware_info_cache",
    "get_default_hardware_cost_per_hour",
]

logger = logging.getLogger(__name__)

# The seed documentation's prices (gpu-l40s 0.000975, gpu-a100-large 0.0014
# per second); see docs/python.md's differences table.
DEFAULT_HARDWARE_INFO = json.loads(_native.default_hardware_info_json())


async def get_hardware_info_async(store: Any = None) -> Dict[str, Any]:
    """The hardware prices: cached (5 min), else the `replicate` provider
    config's non-empty `hardware_info` from `store` (this package's store, or
    any object with an async `get_provider_config`), else the defaults
    (cached too). Returns a new dict each call."""
    handle = _handle(store)
    if store is None or handle is not None:
        return cast(Dict[str, Any], json.loads(_native.hardware_info_json(handle)))
    cached = _native.hardware_info_cached()
    if cached is not None:
        return cast(Dict[str, Any], json.loads(cached))
    try:
        config = await store.get_provider_config("replicate")
        info = config.get("hardware_info") if isinstance(config, dict) else None
        if isinstance(info, dict) and info:
            _native.hardware_info_set(json.dumps(info))
            return cast(Dict[str, Any], json.loads(_native.hardware_info_cached() or json.dumps(info)))
    except (StSecretsError, TypeError, ValueError, AttributeError, OSError) as exc:
        logger.debug("Could not read hardware info from the store: %s", exc)
    return cast(Dict[str, Any], json.loads(_native.hardware_info_json(None)))


def update_hardware_info_cache(hardware_info: Dict[str, Any]) -> None:
    """Caches `hardware_info` for 5 minutes (raises InvalidArgumentError for
    an entry without a non-negative cost_per_second)."""
    try:
        text = json.dumps(hardware_info)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"hardware_info must be JSON-serialisable: {exc}") from None
    _native.hardware_info_set(text)


def clear_hardware_info_cache() -> None:
    _native.hardware_info_clear_cache()


async def get_default_hardware_cost_per_hour(store: Any = None) -> float:
    """gpu-l40s's cost_per_second times 3,600."""
    info = await get_hardware_info_async(store)
    entry = info.get("gpu-l40s") or DEFAULT_HARDWARE_INFO["gpu-l40s"]
    return float(entry.get("cost_per_second", DEFAULT_HARDWARE_INFO["gpu-l40s"]["cost_per_second"])) * 3600

"""SimpleTuner's `cache` module over the library's TTL cache.

`TTLCache` keeps the Python objects themselves (any object, picklable or
not; `get` returns the object stored), with LRU eviction (exact for each thread's operations), hit and miss
counters, and single-flight `get_or_set` (threads) and `get_or_set_async`
(coroutines of one event loop). `@cached`, the two process-wide caches and
the invalidation helpers behave as SimpleTuner's; docs/python.md lists every
difference.
"""

import asyncio
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Optional, ParamSpec, TypeVar, cast

from . import _native

__all__ = [
    "CacheEntry",
    "TTLCache",
    "cached",
    "get_provider_config_cache",
    "get_user_permission_cache",
    "invalidate_provider_cache",
    "invalidate_user_cache",
]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CacheEntry(Generic[T]):
    """SimpleTuner's entry record (wall-clock times). The cache itself keeps
    its entries natively on a monotonic clock; this class is for code that
    builds or inspects entries of its own."""

    value: T
    expires_at: float
    created_at: float = field(default_factory=time.time)

    @property
    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    @property
    def ttl_remaining(self) -> float:
        return max(0.0, self.expires_at - time.time())


class TTLCache(_native.TTLCache[T]):
    """A thread-safe TTL cache with LRU eviction, generic in its values for
    type checkers (`TTLCache[str]()`; any object at run time).

    TTLCache(default_ttl=300.0, max_size=1000, cleanup_interval=60.0), with
    get, set(key, value, ttl=None), delete, clear, invalidate_prefix,
    get_or_set(key, factory, ttl=None), get_or_set_async, cleanup and stats.
    A factory's None result is returned but not cached (as SimpleTuner)."""

    async def get_or_set_async(
        self, key: str, factory: Callable[[], Awaitable[Optional[T]]], ttl: Optional[float] = None
    ) -> Optional[T]:
        """The cached value, or `await factory()`'s, cached. Coroutines of one
        event loop asking for the same key while it is computed await that
        one computation (and its exception)."""
        value = self.get(key)
        if value is not None:
            return value
        loop = asyncio.get_running_loop()
        flights: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Optional[T]]]
        flights = self.__dict__.setdefault("_flights", {})
        slot = (loop, key)
        while True:
            pending = flights.get(slot)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this coroutine was cancelled
                # The computing coroutine was cancelled: compute here.
                value = self.get(key)
                if value is not None:
                    return value
        pending = loop.create_future()
        flights[slot] = pending
        try:
            value = await factory()
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            if value is not None:
                self.set(key, value, ttl)
            pending.set_result(value)
            return value
        finally:
            flights.pop(slot, None)


def cached(ttl: float = 60.0, key_prefix: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Caches a function's non-None results (sync or async) under
    "<key_prefix>:<name>:<args...>:<k=v...>" for `ttl` seconds; the cache is
    the wrapper's `_cache` (a TTLCache of 1,000 entries)."""
    cache: TTLCache[Any] = TTLCache(default_ttl=ttl, max_size=1000)

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        name = func.__name__

        def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if kwargs:
                return ":".join([key_prefix, name, *map(str, args),
                                 *[f"{k}={v}" for k, v in sorted(kwargs.items())]])
            return ":".join([key_prefix, name, *map(str, args)])

        get, put = cache.get, cache.set
        if asyncio.iscoroutinefunction(func):
            coroutine = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                key = key_of(args, kwargs)
                hit = get(key)
                if hit is not None:
                    return hit
                result = await coroutine(*args, **kwargs)
                put(key, result)
                return result

            setattr(async_wrapper, "_cache", cache)
            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = key_of(args, kwargs)
            hit = get(key)
            if hit is not None:
                return cast(R, hit)
            result = func(*args, **kwargs)
            put(key, result)
            return result

        setattr(sync_wrapper, "_cache", cache)
        return sync_wrapper

    return decorator


_globals_lock = threading.Lock()
_globals: dict[str, TTLCache[Any]] = {}


def _process_wide(name: str, ttl: float, size: int) -> TTLCache[Any]:
    cache = _globals.get(name)
    if cache is None:
        with _globals_lock:
            cache = _globals.get(name)
            if cache is None:
                cache = _globals[name] = TTLCache[Any](default_ttl=ttl, max_size=size)
    return cache


def get_provider_config_cache() -> TTLCache[Any]:
    """The process-wide provider-config cache (300 s, 100 entries)."""
    return _process_wide("provider_config", 300.0, 100)


def get_user_permission_cache() -> TTLCache[Any]:
    """The process-wide user-permission cache (60 s, 500 entries)."""
    return _process_wide("user_permission", 60.0, 500)


def invalidate_provider_cache(provider: str) -> None:
    """Drops the cached entries of `provider` ("provider:<name>:..."), here
    and in the library's own cache that the store reads through."""
    get_provider_config_cache().invalidate_prefix(f"provider:{provider}:")
    _native.invalidate_store_provider_cache(str(provider))


def invalidate_user_cache(user_id: object) -> None:
    """Drops the cached entries of `user_id` ("user:<id>:...")."""
    get_user_permission_cache().invalidate_prefix(f"user:{user_id}:")
    if isinstance(user_id, int) and not isinstance(user_id, bool) and -2**63 <= user_id < 2**63:
        _native.invalidate_store_user_cache(user_id)

"""TTLCache: SimpleTuner's cache API over the library's thread-safe TTL + LRU
cache (single-flight get_or_set, hit/miss counters)."""

import asyncio
import ctypes
import functools
import pickle
import threading

from . import _ffi
from ._ffi import c_void_p, lib

_BYTES, _STR, _PICKLE = b"\x00", b"\x01", b"\x02"


def _encode(value):
    if isinstance(value, bytes):
        return _BYTES + value
    if isinstance(value, str):
        return _STR + value.encode("utf-8")
    return _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data):
    tag, body = data[:1], data[1:]
    if tag == _BYTES:
        return body
    if tag == _STR:
        return body.decode("utf-8")
    return pickle.loads(body)


_local = threading.local()


_get_into = lib.st_cache_get_into


def _scratch():
    """This thread's destination for st_cache_get_into."""
    try:
        return _local.scratch
    except AttributeError:
        s = _local.scratch = _Scratch()
        return s


class _Scratch:
    __slots__ = ("buf", "cap", "len", "len_ref")

    def __init__(self):
        self.cap = 4096
        self.buf = ctypes.create_string_buffer(self.cap)
        self.len = ctypes.c_size_t()
        self.len_ref = ctypes.byref(self.len)


def _ttl(ttl):
    return -1.0 if ttl is None else float(ttl)


class TTLCache:
    """A thread-safe TTL cache with LRU eviction, holding any picklable value
    (bytes and str without pickling). Same constructor and methods as
    SimpleTuner's TTLCache; get_or_set is single-flight across threads."""

    def __class_getitem__(cls, _item):
        return cls  # TTLCache[str](...) as in SimpleTuner's docs

    def __init__(self, default_ttl=300.0, max_size=1000, cleanup_interval=60.0, _handle=None):
        if _handle is not None:
            self._handle, self._owned = _handle, False
            return
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        out = c_void_p()
        _ffi.call("st_cache_new", float(default_ttl), int(max_size), float(cleanup_interval), ctypes.byref(out))
        self._handle, self._owned = out, True

    def __del__(self):
        if getattr(self, "_owned", False) and self._handle:
            lib.st_cache_free(self._handle)
            self._handle = None

    def __repr__(self):
        s = self.stats()
        return f"TTLCache(default_ttl={s['default_ttl']}, max_size={s['max_size']}, size={s['size']})"

    def get(self, key):
        """The value, or None when absent or expired. One foreign call
        (st_cache_get_into a per-thread scratch buffer) on the common path."""
        scratch = _scratch()
        k = _ffi.text(key, "key")
        while True:
            rc = _get_into(self._handle, k, scratch.buf, scratch.cap, scratch.len_ref, None)
            if rc == _ffi.NOT_FOUND:
                return None
            if rc != 0:  # reports the failure with its message
                _ffi.call("st_cache_get_into", self._handle, k, scratch.buf, scratch.cap, scratch.len_ref)
            n = scratch.len.value
            if n <= scratch.cap:
                return _decode(ctypes.string_at(scratch.buf, n))
            scratch.buf = ctypes.create_string_buffer(n)
            scratch.cap = n

    def set(self, key, value, ttl=None):
        data = _encode(value)
        _ffi.call("st_cache_set", self._handle, _ffi.text(key, "key"), data, len(data), _ttl(ttl))

    def get_or_set(self, key, factory, ttl=None):
        """The cached value, or factory()'s, cached. While one thread runs the
        factory for a key, other threads asking for it wait for that value."""
        failure = []

        def compute(_user_data, _key, sink):
            try:
                data = _encode(factory())
            except BaseException as exc:  # re-raised below, in the caller
                failure.append(exc)
                return _ffi.CALLBACK
            return lib.st_sink_write(sink, data, len(data))

        callback = _ffi.COMPUTE_FN(compute)
        out = c_void_p()
        try:
            _ffi.call("st_cache_get_or_set", self._handle, _ffi.text(key, "key"),
                      ctypes.cast(callback, c_void_p), None, _ttl(ttl), ctypes.byref(out))
        except _ffi.StSecretsError:
            if failure:
                raise failure[0] from None
            raise
        return _decode(_ffi.take_buf(out))

    async def get_or_set_async(self, key, factory, ttl=None):
        """Async get_or_set: `factory` is an async function."""
        value = self.get(key)
        if value is not None:
            return value
        value = await factory()
        self.set(key, value, ttl)
        return value

    def delete(self, key):
        return bool(lib.st_cache_delete(self._handle, _ffi.text(key, "key")))

    def clear(self):
        return lib.st_cache_clear(self._handle)

    def invalidate_prefix(self, prefix):
        return lib.st_cache_invalidate_prefix(self._handle, _ffi.text(prefix, "prefix"))

    def cleanup(self):
        """Sweeps expired entries now; returns how many."""
        return lib.st_cache_cleanup(self._handle)

    def stats(self):
        """SimpleTuner's keys (size, max_size, expired_count, default_ttl) and
        the counters hits, misses, evictions, expirations."""
        s = _ffi.CacheStats()
        _ffi.call("st_cache_stats_get", self._handle, ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in _ffi.CacheStats._fields_}


_PROVIDER_CONFIG = TTLCache(_handle=c_void_p(lib.st_provider_config_cache()))
_USER_PERMISSION = TTLCache(_handle=c_void_p(lib.st_user_permission_cache()))


def get_provider_config_cache():
    """The process-wide provider-config cache (300 s, 100 entries), shared with
    every other user of the library in this process."""
    return _PROVIDER_CONFIG


def get_user_permission_cache():
    """The process-wide user-permission cache (60 s, 500 entries)."""
    return _USER_PERMISSION


def invalidate_provider_cache(provider):
    lib.st_invalidate_provider_cache(_ffi.text(provider, "provider"))


def invalidate_user_cache(user_id):
    lib.st_invalidate_user_cache(int(user_id))


def cached(ttl=60.0, key_prefix=""):
    """Caches a function's results (sync or async) under
    "<key_prefix>:<name>:<args>:<k=v>"; the cache is the wrapper's `_cache`."""
    cache = TTLCache(default_ttl=ttl, max_size=1000)

    def key_of(func, args, kwargs):
        parts = [key_prefix, func.__name__]
        parts.extend(str(a) for a in args)
        parts.extend(f"{k}={v}" for k, v in sorted(kwargs.items()))
        return ":".join(parts)

    def decorator(func):
        if asyncio.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                key = key_of(func, args, kwargs)
                hit = cache.get(key)
                if hit is not None:
                    return hit
                result = await func(*args, **kwargs)
                cache.set(key, result)
                return result

            async_wrapper._cache = cache
            return async_wrapper

        @functools.wraps(func)
        def sync_wrapper(*args, **kwargs):
            key = key_of(func, args, kwargs)
            hit = cache.get(key)
            if hit is not None:
                return hit
            result = func(*args, **kwargs)
            cache.set(key, result)
            return result

        sync_wrapper._cache = cache
        return sync_wrapper

    return decorator

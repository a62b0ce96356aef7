'use strict';
// The Node binding's Cache: the library's TTL cache over koffi, and the
// two process-wide caches.

const util = require('node:util');
const {
  C,
  STATS_SIZE,
  NOT_FOUND,
  CALLBACK,
  check,
  takeBuf,
  bufCall,
  toBytes,
  seconds,
  scratch,
  Handle,
} = require('./native');

/** The library's thread-safe TTL cache with LRU eviction, exact for each thread's own operations (byte values). */
class Cache extends Handle {
  /** Options in seconds; omitted values take the defaults (300 s, 1,000, 60 s). */
  constructor({ defaultTtl, maxSize, cleanupInterval } = {}, _handle = null) {
    if (_handle) {
      super(_handle, null);
      return;
    }
    const out = [null];
    const err = [null];
    check(C.st_cache_new(seconds(defaultTtl), maxSize || 0, seconds(cleanupInterval), out, err), err);
    super(out[0], C.st_cache_free);
  }

  /** The value (a Buffer), or undefined when absent or expired. One FFI call
   *  (st_cache_get_into a reused scratch buffer), then a copy into a new Buffer. */
  get(key) {
    const rc = C.st_cache_get_into(this.handle, key, scratch.buf, scratch.buf.length, scratch.len, null);
    if (rc === NOT_FOUND) return undefined;
    if (rc !== 0) return bufCall((o, e) => C.st_cache_get(this.handle, key, o, e), true); // reports the error
    const n = Number(scratch.len[0]);
    if (n > scratch.buf.length) {
      scratch.buf = Buffer.alloc(n * 2);
      return this.get(key);
    }
    return Buffer.from(scratch.buf.subarray(0, n));
  }

  /** Stores value (Buffer or string) with the default TTL. */
  set(key, value) {
    this.setTtl(key, value, undefined);
  }

  /** Stores value for ttl seconds (0: already expired; Infinity: never). */
  setTtl(key, value, ttl) {
    const bytes = toBytes(value);
    const err = [null];
    check(C.st_cache_set(this.handle, key, bytes, bytes.length, seconds(ttl), err), err);
  }

  /** The value, or fn()'s (Buffer or string), stored with the default TTL. A
   *  throwing fn caches nothing and its error is rethrown. */
  getOrSet(key, fn) {
    let failure = null;
    const compute = (_user, _key, sink) => {
      try {
        const bytes = toBytes(fn());
        return C.st_sink_write(sink, bytes, bytes.length);
      } catch (e) {
        failure = e;
        return CALLBACK;
      }
    };
    const out = [null];
    const err = [null];
    const rc = C.st_cache_get_or_set(this.handle, key, compute, null, -1, out, err);
    if (rc !== 0 && failure) {
      if (err[0]) C.st_error_free(err[0]);
      throw failure;
    }
    check(rc, err);
    return takeBuf(out[0]);
  }

  delete(key) { return C.st_cache_delete(this.handle, key); }
  clear() { return Number(C.st_cache_clear(this.handle)); }
  invalidatePrefix(prefix) { return Number(C.st_cache_invalidate_prefix(this.handle, prefix)); }
  /** Removes the expired entries now (otherwise swept lazily); how many. */
  cleanup() { return Number(C.st_cache_cleanup(this.handle)); }

  stats() {
    const out = { struct_size: STATS_SIZE };
    const err = [null];
    check(C.st_cache_stats_get(this.handle, out, err), err);
    return {
      size: Number(out.size), maxSize: Number(out.max_size), expiredCount: Number(out.expired_count),
      defaultTtl: out.default_ttl, hits: Number(out.hits), misses: Number(out.misses),
      evictions: Number(out.evictions), expirations: Number(out.expirations),
    };
  }

  [util.inspect.custom]() {
    const s = this._handle ? this.stats() : null;
    return s ? `Cache(defaultTtl=${s.defaultTtl}, maxSize=${s.maxSize}, size=${s.size})` : 'Cache(<closed>)';
  }
}

const providerCache = new Cache({}, C.st_provider_config_cache());
const permissionCache = new Cache({}, C.st_user_permission_cache());

module.exports = { Cache, providerCache, permissionCache };

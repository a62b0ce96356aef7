//! `st_cache`: the TTL cache through the C ABI.

use super::boundary::{
    bytes_arg, bytes_out_arg, call, call_or, out_arg, sized_struct_arg, str_arg, BoxedHandle,
    FfiError,
};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::cache::{self, CacheConfig, TtlCache};
use crate::secret::SecretBytes;
use crate::sys::Lazy;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

/// The default TTL of `st_cache_new`, in seconds (300).
pub const ST_CACHE_DEFAULT_TTL_S: f64 = 300.0;
/// The default capacity of `st_cache_new`, in entries (1,000).
pub const ST_CACHE_DEFAULT_MAX_SIZE: usize = 1000;
/// The default cleanup interval of `st_cache_new`, in seconds (60).
pub const ST_CACHE_DEFAULT_CLEANUP_INTERVAL_S: f64 = 60.0;
/// Pass as a `ttl_s` (or to `st_cache_new`'s `default_ttl_s` and
/// `cleanup_interval_s`) to ask for the default; any negative number or NaN
/// does the same.
pub const ST_CACHE_USE_DEFAULT: f64 = -1.0;

/// A thread-safe TTL cache of byte values with LRU eviction (see `st_cache_new`).
/// Every function may be called from any thread at the same time. Values are
/// zeroed in memory when they leave the cache.
pub struct st_cache {
    cache: Arc<TtlCache<SecretBytes>>,
}

/// Where a compute callback writes the value it computed (see
/// `st_cache_get_or_set`). Valid only during that callback.
pub struct st_sink {
    value: SecretBytes,
    written: bool,
}

/// A snapshot of a cache's counters (see `st_cache_stats_get`). Set
/// `struct_size` to `sizeof(st_cache_stats)` before the call: a later version
/// may append fields, and the library fills only as many bytes as the
/// caller's struct has.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct st_cache_stats {
    /// In: the size of the caller's struct, `sizeof(st_cache_stats)`. Out:
    /// how many bytes the library filled (the fields it knows).
    pub struct_size: usize,
    /// Stored entries, including expired ones not yet swept.
    pub size: usize,
    /// Capacity.
    pub max_size: usize,
    /// Stored entries that have expired and await a sweep.
    pub expired_count: usize,
    /// TTL, in seconds, of entries set without one (`INFINITY`: never expire).
    pub default_ttl: f64,
    /// Lookups answered from a live entry.
    pub hits: u64,
    /// Lookups that found no live entry.
    pub misses: u64,
    /// Live entries removed to make room for a new key.
    pub evictions: u64,
    /// Expired entries removed.
    pub expirations: u64,
}

// SAFETY: repr(C), a usize first, and eight 8-byte fields: no padding (the
// assertion below keeps it so on every target the library supports).
const _: () = assert!(std::mem::size_of::<st_cache_stats>() == 9 * 8);
unsafe impl super::boundary::SizedStruct for st_cache_stats {}

/// Computes the value of `key` for `st_cache_get_or_set`.
///
/// Write the value with `st_sink_write(sink, ...)` (several calls append; an
/// empty value is one call with length 0), then return `ST_OK`. Return any other
/// code to report failure: nothing is cached and `st_cache_get_or_set` returns
/// that code. `key` and `sink` are valid only during the call. The callback may
/// call any `st_cache_*` function, on this cache too, except `st_cache_get_or_set`
/// for the same key on the same thread (that returns `ST_INVALID_ARGUMENT`). It
/// must not unwind (C++ exceptions, `longjmp`) through the library.
pub type st_compute_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const c_char,
        sink: *mut st_sink,
    ) -> st_result,
>;

/// `st_compute_fn` as it is called: a C function may return any `int`, and an
/// out-of-range value must not become a Rust `st_result`. `st_result` is
/// `repr(C)` and the size of `c_int` (tested in ffi::result), so both pointer types
/// have the same ABI.
type RawComputeFn = unsafe extern "C" fn(*mut c_void, *const c_char, *mut st_sink) -> c_int;

/// A TTL from C: negative or NaN means the default (`None`), a TTL too large for
/// a `Duration` (including `INFINITY`) never expires, 0 is already expired.
fn ttl_from_c(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        None
    } else {
        Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
    }
}

fn seconds_to_c(d: Duration) -> f64 {
    if d == Duration::MAX {
        f64::INFINITY
    } else {
        d.as_secs_f64()
    }
}

/// Creates a cache. Free it with `st_cache_free`.
///
/// - `default_ttl_s`: TTL of entries set without one, in seconds. Negative or NaN
///   (e.g. `ST_CACHE_USE_DEFAULT`) means `ST_CACHE_DEFAULT_TTL_S` (300);
///   `INFINITY` means entries never expire.
/// - `max_size`: capacity in entries; 0 means `ST_CACHE_DEFAULT_MAX_SIZE` (1,000).
///   Inserting a new key into a full cache evicts the least recently used entry
///   (a `get` counts as use; the order is exact for each thread's own
///   operations, and between threads for uses more than a clock tick apart).
///   From 256 entries the cache is split into shards by key hash (at most
///   16); gets take their shard's lock shared, so they run in parallel.
/// - `cleanup_interval_s`: expired entries are swept at most this often, during
///   cache operations (no thread is started). Negative or NaN means
///   `ST_CACHE_DEFAULT_CLEANUP_INTERVAL_S` (60); 0 sweeps on every operation;
///   `INFINITY` never sweeps periodically (expired entries are still never
///   returned, and are removed when looked up or by `st_cache_cleanup`).
///
/// So `st_cache_new(-1, 0, -1, &c, &err)` gives SimpleTuner's defaults.
/// Expiry uses a monotonic clock. Returns `ST_OK` or `ST_NULL_ARGUMENT` (`out`).
#[no_mangle]
pub extern "C" fn st_cache_new(
    default_ttl_s: f64,
    max_size: usize,
    cleanup_interval_s: f64,
    out: *mut *mut st_cache,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY: NULL or writable storage for one pointer (caller's contract).
        let out = unsafe { out_arg(out, "out") }?;
        let defaults = CacheConfig::default();
        let config = CacheConfig {
            default_ttl: ttl_from_c(default_ttl_s).unwrap_or(defaults.default_ttl),
            max_size: if max_size == 0 {
                defaults.max_size
            } else {
                max_size
            },
            cleanup_interval: ttl_from_c(cleanup_interval_s).unwrap_or(defaults.cleanup_interval),
        };
        let cache = TtlCache::new(config)?;
        out.write(
            st_cache {
                cache: Arc::new(cache),
            }
            .into_raw(),
        );
        Ok(())
    })
}

static PROVIDER_CONFIG: Lazy<st_cache> = Lazy::new(|| st_cache {
    cache: Arc::clone(cache::global::provider_config_cache()),
});
static USER_PERMISSION: Lazy<st_cache> = Lazy::new(|| st_cache {
    cache: Arc::clone(cache::global::user_permission_cache()),
});

fn is_process_wide(c: *const st_cache) -> bool {
    [&PROVIDER_CONFIG, &USER_PERMISSION]
        .into_iter()
        .any(|global| global.get().is_some_and(|g| std::ptr::eq(g, c)))
}

/// Frees a cache and zeroes its values. NULL is a no-op, and so are the
/// process-wide caches (which are never freed). No other thread may use the
/// cache during or after the call.
#[no_mangle]
pub extern "C" fn st_cache_free(c: *mut st_cache) {
    call_or((), || {
        if !is_process_wide(c) {
            // SAFETY: NULL or a live st_cache from st_cache_new (caller's contract).
            unsafe { st_cache::free(c) }
        }
    })
}

/// Stores a copy of `len` bytes at `value` under `key` for `ttl_s` seconds.
/// `value` may be NULL when `len` is 0; values may contain NUL bytes.
///
/// `ttl_s`: negative or NaN means the cache's default TTL; 0 means already
/// expired (any entry for `key` is removed, nothing is stored, nothing evicted);
/// `INFINITY` never expires. Setting an existing key replaces its value and
/// evicts nothing. Returns `ST_OK`, `ST_NULL_ARGUMENT` or `ST_INVALID_UTF8`
/// (`key`).
#[no_mangle]
pub extern "C" fn st_cache_set(
    c: *mut st_cache,
    key: *const c_char,
    value: *const u8,
    len: usize,
    ttl_s: f64,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let c = unsafe { st_cache::arg(c, "c") }?;
        let key = unsafe { str_arg(key, "key") }?;
        let value = unsafe { bytes_arg(value, len, "value") }?;
        c.cache
            .set(key, SecretBytes::from(value), ttl_from_c(ttl_s));
        Ok(())
    })
}

/// Copies the live value of `key` into a new buffer at `*out` (free it with
/// `st_buf_free`), and marks the entry as recently used. Returns `ST_OK`,
/// `ST_NOT_FOUND` (absent or expired: an expired entry is never returned),
/// `ST_NULL_ARGUMENT` or `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_cache_get(
    c: *mut st_cache,
    key: *const c_char,
    out: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let c = unsafe { st_cache::arg(c, "c") }?;
        let key = unsafe { str_arg(key, "key") }?;
        let out = unsafe { out_arg(out, "out") }?;
        match c.cache.get_map(key, |v| st_buf::new_raw(v.expose())) {
            Some(buf) => {
                out.write(buf);
                Ok(())
            }
            None => Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                "no live cache entry for this key",
            )),
        }
    })
}

/// Like `st_cache_get`, copying into the caller's buffer instead of
/// allocating one (one call per get, for bindings whose every FFI call is
/// costly): writes the value's length to `*out_len` and, when it is at most
/// `cap`, the value to `dst` (as `snprintf`: when `*out_len > cap`, nothing
/// was copied; call again with a buffer of `*out_len` bytes). `dst` may be NULL
/// when `cap` is 0, to ask for the length. The caller owns the copy: zero it
/// when it holds a secret. Returns `ST_OK`, `ST_NOT_FOUND`,
/// `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_cache_get_into(
    c: *mut st_cache,
    key: *const c_char,
    dst: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all four): NULL or valid for the call (caller's contract).
        let c = unsafe { st_cache::arg(c, "c") }?;
        let key = unsafe { str_arg(key, "key") }?;
        let dst = unsafe { bytes_out_arg(dst, cap, "dst") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let len = c.cache.get_map(key, |v| {
            let bytes = v.expose();
            if let Some(room) = dst.get_mut(..bytes.len()) {
                room.copy_from_slice(bytes);
            }
            bytes.len()
        });
        match len {
            Some(len) => {
                out_len.write(len);
                Ok(())
            }
            None => Err(FfiError::new(
                st_result::ST_NOT_FOUND,
                "no live cache entry for this key",
            )),
        }
    })
}

/// Appends `len` bytes at `value` to the value being computed. `value` may be
/// NULL when `len` is 0 (that records an empty value). Only valid inside the
/// `st_compute_fn` that received `sink`. Returns `ST_OK` or `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_sink_write(sink: *mut st_sink, value: *const u8, len: usize) -> st_result {
    call_or(st_result::ST_PANIC, || {
        // SAFETY: NULL or the live sink of the running callback (caller's contract).
        let Some(sink) = (unsafe { sink.as_mut() }) else {
            return st_result::ST_NULL_ARGUMENT;
        };
        // SAFETY: `len` readable bytes at `value` (caller's contract).
        match unsafe { bytes_arg(value, len, "value") } {
            Ok(bytes) => {
                sink.value.extend_from_slice(bytes);
                sink.written = true;
                st_result::ST_OK
            }
            Err(e) => e.code,
        }
    })
}

/// Returns the live value of `key`, or computes, stores and returns it.
///
/// On a miss, `compute(user_data, key, sink)` is called on the calling thread,
/// with no lock held; the value it writes is stored for `ttl_s` (as in
/// `st_cache_set`) and copied to `*out` (free with `st_buf_free`).
///
/// Single-flight: while one caller computes `key`, other callers of `key` wait
/// and receive that result, so `compute` runs once. A failing compute stores
/// nothing; it and its waiters get its code, and a later call computes again. A
/// set, delete, clear or prefix invalidation of `key` while it is being computed
/// keeps the (possibly stale) computed value out of the cache; it is still
/// returned.
///
/// Returns `ST_OK`; the compute's own code when it fails; `ST_CALLBACK` when it
/// returns `ST_OK` without calling `st_sink_write`, or a number that is not an
/// `st_result`; `ST_INVALID_ARGUMENT` when a compute re-enters
/// `st_cache_get_or_set` for its own key on its own thread; `ST_NULL_ARGUMENT`
/// (`c`, `key`, `compute`, `out`) or `ST_INVALID_UTF8` (`key`).
#[no_mangle]
pub extern "C" fn st_cache_get_or_set(
    c: *mut st_cache,
    key: *const c_char,
    compute: st_compute_fn,
    user_data: *mut c_void,
    ttl_s: f64,
    out: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let c = unsafe { st_cache::arg(c, "c") }?;
        let key_text = unsafe { str_arg(key, "key") }?;
        let out = unsafe { out_arg(out, "out") }?;
        let compute = compute.ok_or_else(|| {
            FfiError::new(st_result::ST_NULL_ARGUMENT, "argument 'compute' is NULL")
        })?;
        // SAFETY: same ABI, see RawComputeFn.
        let compute: RawComputeFn = unsafe { std::mem::transmute(compute) };
        let value = c.cache.get_or_set(key_text, ttl_from_c(ttl_s), || {
            let mut sink = st_sink {
                value: SecretBytes::default(),
                written: false,
            };
            // SAFETY: a caller-supplied C function, called with the caller's
            // user_data, its key (valid for this whole call) and a live sink.
            let raw = unsafe { compute(user_data, key, &mut sink) };
            match st_result::from_raw(raw) {
                Some(st_result::ST_OK) if sink.written => Ok(sink.value),
                Some(st_result::ST_OK) => Err(FfiError::new(
                    st_result::ST_CALLBACK,
                    format!(
                        "compute for cache key '{key_text}' returned ST_OK without calling st_sink_write"
                    ),
                )),
                Some(code) => Err(FfiError::new(
                    code,
                    format!(
                        "compute for cache key '{key_text}' failed with {}",
                        code.name()
                    ),
                )),
                None => Err(FfiError::new(
                    st_result::ST_CALLBACK,
                    format!(
                        "compute for cache key '{key_text}' returned {raw}, which is not an st_result"
                    ),
                )),
            }
        })?;
        out.write(st_buf::new_raw(value.expose()));
        Ok(())
    })
}

/// Removes `key`. Returns true when a live entry was removed; false otherwise,
/// including for NULL or non-UTF-8 arguments.
#[no_mangle]
pub extern "C" fn st_cache_delete(c: *mut st_cache, key: *const c_char) -> bool {
    call_or(false, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let (Ok(c), Ok(key)) = (unsafe { st_cache::arg(c, "c") }, unsafe {
            str_arg(key, "key")
        }) else {
            return false;
        };
        c.cache.delete(key)
    })
}

/// Removes every entry. Returns how many live entries there were (0 for NULL).
#[no_mangle]
pub extern "C" fn st_cache_clear(c: *mut st_cache) -> usize {
    call_or(0, || {
        // SAFETY: NULL or a live st_cache (caller's contract).
        unsafe { st_cache::arg(c, "c") }.map_or(0, |c| c.cache.clear())
    })
}

/// Removes every entry whose key starts with `prefix` (an empty prefix removes
/// all). Returns how many live entries were removed; 0 for NULL or non-UTF-8
/// arguments.
#[no_mangle]
pub extern "C" fn st_cache_invalidate_prefix(c: *mut st_cache, prefix: *const c_char) -> usize {
    call_or(0, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let (Ok(c), Ok(prefix)) = (unsafe { st_cache::arg(c, "c") }, unsafe {
            str_arg(prefix, "prefix")
        }) else {
            return 0;
        };
        c.cache.invalidate_prefix(prefix)
    })
}

/// Sweeps expired entries now, whatever the cleanup interval. Returns how many
/// were removed (0 for NULL).
#[no_mangle]
pub extern "C" fn st_cache_cleanup(c: *mut st_cache) -> usize {
    call_or(0, || {
        // SAFETY: NULL or a live st_cache (caller's contract).
        unsafe { st_cache::arg(c, "c") }.map_or(0, |c| c.cache.purge_expired())
    })
}

/// Writes the cache's sizes and counters to `*stats`, whose `struct_size` the
/// caller sets to `sizeof(st_cache_stats)`: the library writes
/// `min(struct_size, its own size)` bytes and sets `struct_size` to that
/// number, so a program built against a newer header still runs. Costs a pass
/// over the entries (to count expired ones): for monitoring, not hot paths.
/// Returns `ST_OK`, `ST_NULL_ARGUMENT`, or `ST_INVALID_ARGUMENT` when
/// `struct_size` is smaller than this version's struct (0 when unset; the
/// struct is left unchanged).
#[no_mangle]
pub extern "C" fn st_cache_stats_get(
    c: *const st_cache,
    stats: *mut st_cache_stats,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let c = unsafe { st_cache::arg(c, "c") }?;
        let stats = unsafe { sized_struct_arg(stats, "stats") }?;
        let s = c.cache.stats();
        stats.write(st_cache_stats {
            struct_size: 0,
            size: s.size,
            max_size: s.max_size,
            expired_count: s.expired_count,
            default_ttl: seconds_to_c(s.default_ttl),
            hits: s.hits,
            misses: s.misses,
            evictions: s.evictions,
            expirations: s.expirations,
        });
        Ok(())
    })
}

/// The process-wide provider-configuration cache (TTL 300 s, 100 entries; keys
/// `provider:<name>:...`), shared with the library's own provider-config store.
/// Never NULL; never free it (`st_cache_free` ignores it).
#[no_mangle]
pub extern "C" fn st_provider_config_cache() -> *mut st_cache {
    call_or(std::ptr::null_mut(), || {
        std::ptr::from_ref::<st_cache>(&PROVIDER_CONFIG).cast_mut()
    })
}

/// The process-wide user-permission cache (TTL 60 s, 500 entries; keys
/// `user:<id>:...`). Never NULL; never free it (`st_cache_free` ignores it).
#[no_mangle]
pub extern "C" fn st_user_permission_cache() -> *mut st_cache {
    call_or(std::ptr::null_mut(), || {
        std::ptr::from_ref::<st_cache>(&USER_PERMISSION).cast_mut()
    })
}

/// Drops every entry of `provider` from the provider-configuration cache (keys
/// starting `provider:<provider>:`). Returns how many live entries were dropped;
/// 0 for NULL or non-UTF-8.
#[no_mangle]
pub extern "C" fn st_invalidate_provider_cache(provider: *const c_char) -> usize {
    call_or(0, || {
        // SAFETY: NULL or a NUL-terminated string (caller's contract).
        unsafe { str_arg(provider, "provider") }.map_or(0, cache::global::invalidate_provider_cache)
    })
}

/// Drops every entry of the user from the user-permission cache (keys starting
/// `user:<user_id>:`). Returns how many live entries were dropped.
#[no_mangle]
pub extern "C" fn st_invalidate_user_cache(user_id: i64) -> usize {
    call_or(0, || cache::global::invalidate_user_cache(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_match_the_rust_defaults() {
        let d = CacheConfig::default();
        assert_eq!(ST_CACHE_DEFAULT_TTL_S, d.default_ttl.as_secs_f64());
        assert_eq!(ST_CACHE_DEFAULT_MAX_SIZE, d.max_size);
        assert_eq!(
            ST_CACHE_DEFAULT_CLEANUP_INTERVAL_S,
            d.cleanup_interval.as_secs_f64()
        );
        assert_eq!(ttl_from_c(ST_CACHE_USE_DEFAULT), None);
    }

    #[test]
    fn ttl_conversion_rules() {
        assert_eq!(ttl_from_c(f64::NAN), None);
        assert_eq!(ttl_from_c(-0.5), None);
        assert_eq!(ttl_from_c(0.0), Some(Duration::ZERO));
        assert_eq!(ttl_from_c(1.5), Some(Duration::from_millis(1500)));
        assert_eq!(ttl_from_c(f64::INFINITY), Some(Duration::MAX));
        assert_eq!(ttl_from_c(1e300), Some(Duration::MAX));
        assert_eq!(seconds_to_c(Duration::MAX), f64::INFINITY);
    }
}

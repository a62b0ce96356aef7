//! TTL cache benchmark: st-secrets (C ABI and Rust API) against a mutex-plus-copy
//! floor, quick_cache and moka, on one workload (docs/benchmarks.md):
//! 1,000 entries, 32-byte keys, 64-byte values; every get returns an owned copy
//! of the value (what a C caller receives), every set stores a copy.
//!
//! Groups: `hot_get` (one key, repeatedly), `set` (overwrite, cycling over the
//! 1,000 keys), `mixed_2t` (2 threads, 80 % get / 20 % set over all keys; time
//! is wall time divided by the total operation count).
//!
//! `scripts/bench.sh cache` runs this together with the C and Python programs and
//! prints the table with ratios.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use st_secrets::cache::{CacheConfig, TtlCache};
use st_secrets::ffi::buf::{st_buf_free, st_buf_len};
use st_secrets::ffi::cache::{st_cache, st_cache_free, st_cache_get, st_cache_new, st_cache_set};
use st_secrets::ffi::result::st_result;
use st_secrets::SecretBytes;
use std::collections::HashMap;
use std::ffi::CString;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ENTRIES: usize = 1000;
const VALUE: [u8; 64] = [0x5a; 64];

fn keys() -> Vec<String> {
    (0..ENTRIES)
        .map(|i| format!("provider:replicate:conf:{i:08}"))
        .collect()
}

/// A caller's operation sequence: xorshift over the key indexes, 1 set in 5.
fn ops(seed: u64, n: usize) -> Vec<(usize, bool)> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % ENTRIES as u64) as usize, x.is_multiple_of(5))
        })
        .collect()
}

trait Contender: Sync {
    fn get(&self, key: &str, ckey: &CString) -> usize;
    fn set(&self, key: &str, ckey: &CString, value: &[u8]);
}

struct Floor(Mutex<HashMap<String, Vec<u8>>>);
impl Contender for Floor {
    fn get(&self, key: &str, _: &CString) -> usize {
        let copy = self.0.lock().unwrap().get(key).cloned();
        copy.map_or(0, |v| black_box(v).len())
    }
    fn set(&self, key: &str, _: &CString, value: &[u8]) {
        let mut map = self.0.lock().unwrap();
        match map.get_mut(key) {
            Some(v) => *v = value.to_vec(),
            None => {
                map.insert(key.to_owned(), value.to_vec());
            }
        }
    }
}

struct RustApi(TtlCache<SecretBytes>);
impl Contender for RustApi {
    fn get(&self, key: &str, _: &CString) -> usize {
        self.0
            .get_map(key, |v| black_box(v.expose().to_vec()).len())
            .unwrap_or(0)
    }
    fn set(&self, key: &str, _: &CString, value: &[u8]) {
        self.0.set(key, SecretBytes::from(value), None);
    }
}

struct CAbi(*mut st_cache);
// SAFETY: st_cache is documented thread-safe; the pointer lives as long as CAbi.
unsafe impl Sync for CAbi {}
impl Drop for CAbi {
    fn drop(&mut self) {
        st_cache_free(self.0);
    }
}
impl Contender for CAbi {
    fn get(&self, _: &str, ckey: &CString) -> usize {
        let mut buf = std::ptr::null_mut();
        let rc = st_cache_get(self.0, ckey.as_ptr(), &mut buf, std::ptr::null_mut());
        debug_assert_eq!(rc, st_result::ST_OK);
        let len = st_buf_len(black_box(buf));
        st_buf_free(buf);
        len
    }
    fn set(&self, _: &str, ckey: &CString, value: &[u8]) {
        let rc = st_cache_set(
            self.0,
            ckey.as_ptr(),
            value.as_ptr(),
            value.len(),
            -1.0,
            std::ptr::null_mut(),
        );
        debug_assert_eq!(rc, st_result::ST_OK);
    }
}

struct Quick(quick_cache::sync::Cache<String, Vec<u8>>);
impl Contender for Quick {
    fn get(&self, key: &str, _: &CString) -> usize {
        self.0.get(key).map_or(0, |v| black_box(v).len())
    }
    fn set(&self, key: &str, _: &CString, value: &[u8]) {
        self.0.insert(key.to_owned(), value.to_vec());
    }
}

struct Moka(moka::sync::Cache<String, Vec<u8>>);
impl Contender for Moka {
    fn get(&self, key: &str, _: &CString) -> usize {
        self.0.get(key).map_or(0, |v| black_box(v).len())
    }
    fn set(&self, key: &str, _: &CString, value: &[u8]) {
        self.0.insert(key.to_owned(), value.to_vec());
    }
}

fn contenders() -> Vec<(&'static str, Box<dyn Contender>)> {
    let mut c_cache = std::ptr::null_mut();
    assert_eq!(
        st_cache_new(300.0, 2 * ENTRIES, 60.0, &mut c_cache, std::ptr::null_mut()),
        st_result::ST_OK
    );
    let config = CacheConfig {
        default_ttl: Duration::from_secs(300),
        max_size: 2 * ENTRIES,
        cleanup_interval: Duration::from_secs(60),
    };
    let list: Vec<(&'static str, Box<dyn Contender>)> = vec![
        (
            "floor_mutex_hashmap_copy",
            Box::new(Floor(Mutex::new(HashMap::new()))),
        ),
        ("st_secrets_c_abi", Box::new(CAbi(c_cache))),
        (
            "st_secrets_rust_api",
            Box::new(RustApi(TtlCache::new(config).unwrap())),
        ),
        (
            "quick_cache",
            Box::new(Quick(quick_cache::sync::Cache::new(2 * ENTRIES))),
        ),
        (
            "moka",
            Box::new(Moka(
                moka::sync::Cache::builder()
                    .max_capacity(2 * ENTRIES as u64)
                    .time_to_live(Duration::from_secs(300))
                    .build(),
            )),
        ),
    ];
    let keys = keys();
    for (_, c) in &list {
        for k in &keys {
            c.set(k, &CString::new(k.as_str()).unwrap(), &VALUE);
        }
    }
    list
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let ckeys: Vec<CString> = keys
        .iter()
        .map(|k| CString::new(k.as_str()).unwrap())
        .collect();
    let list = contenders();
    let hot = ENTRIES / 2;

    let mut group = c.benchmark_group("hot_get");
    for (name, cache) in &list {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| cache.get(&keys[hot], &ckeys[hot]))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("set");
    for (name, cache) in &list {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) % ENTRIES;
                cache.set(&keys[i], &ckeys[i], &VALUE)
            })
        });
    }
    group.finish();

    let sequences = [
        ops(0x9E37_79B9_7F4A_7C15, 1 << 16),
        ops(0xD1B5_4A32_D192_ED03, 1 << 16),
    ];
    let mut group = c.benchmark_group("mixed_2t");
    for (name, cache) in &list {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(2) as usize;
                let start = Instant::now();
                std::thread::scope(|s| {
                    for seq in &sequences {
                        let (keys, ckeys, cache) = (&keys, &ckeys, cache.as_ref());
                        s.spawn(move || {
                            for n in 0..per_thread {
                                let (k, is_set) = seq[n % seq.len()];
                                if is_set {
                                    cache.set(&keys[k], &ckeys[k], &VALUE);
                                } else {
                                    black_box(cache.get(&keys[k], &ckeys[k]));
                                }
                            }
                        });
                    }
                });
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (2 * per_thread) as f64)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);

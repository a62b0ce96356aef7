use super::global::*;
use super::*;
use crate::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

fn cache(ttl_s: u64, max_size: usize, cleanup_s: u64) -> TtlCache<String> {
    TtlCache::new(CacheConfig {
        default_ttl: Duration::from_secs(ttl_s),
        max_size,
        cleanup_interval: Duration::from_secs(cleanup_s),
    })
    .unwrap()
}

/// Blocks until `n` callers wait on the flight for `key` (bounded, so a bug fails
/// the test instead of hanging it).
fn await_waiters(c: &TtlCache<String>, key: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.waiters(key) < n {
        assert!(Instant::now() < deadline, "waiters never arrived");
        thread::sleep(Duration::from_millis(1));
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn defaults_match_simpletuner() {
    let c: TtlCache<String> = TtlCache::default();
    assert_eq!(c.config().default_ttl, Duration::from_secs(300));
    assert_eq!(c.config().max_size, 1000);
    assert_eq!(c.config().cleanup_interval, Duration::from_secs(60));
    let st = c.stats();
    assert_eq!((st.size, st.max_size, st.expired_count), (0, 1000, 0));
    assert_eq!(st.default_ttl, Duration::from_secs(300));
}

#[test]
fn zero_capacity_is_rejected() {
    let err = TtlCache::<String>::new(CacheConfig {
        max_size: 0,
        ..CacheConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[test]
fn set_get_overwrite() {
    let c = cache(300, 10, 60);
    assert_eq!(c.get("a"), None);
    c.set("a", s("1"), None);
    assert_eq!(c.get("a"), Some(s("1")));
    c.set("a", s("2"), None);
    assert_eq!(c.get("a"), Some(s("2")));
    assert_eq!(c.stats().size, 1);
}

#[test]
fn default_and_per_key_ttl_expire_on_time() {
    let c = cache(10, 10, 3600);
    c.set("default", s("d"), None);
    c.set("short", s("s"), Some(Duration::from_secs(2)));
    c.set("long", s("l"), Some(Duration::from_secs(100)));
    c.advance(Duration::from_millis(1999));
    assert_eq!(c.get("short"), Some(s("s")));
    c.advance(Duration::from_millis(1));
    assert_eq!(c.get("short"), None, "expires exactly at its TTL");
    assert_eq!(c.get("default"), Some(s("d")));
    c.advance(Duration::from_secs(8));
    assert_eq!(c.get("default"), None);
    assert_eq!(c.get("long"), Some(s("l")));
    let st = c.stats();
    assert_eq!(st.expirations, 2, "{st:?}");
    assert_eq!(st.size, 1);
}

#[test]
fn zero_ttl_is_already_expired_and_evicts_nothing() {
    let c = cache(300, 2, 60);
    c.set("a", s("1"), None);
    c.set("b", s("2"), None);
    c.set("c", s("3"), Some(Duration::ZERO));
    assert_eq!(c.get("c"), None);
    assert_eq!(c.get("a"), Some(s("1")));
    assert_eq!(c.get("b"), Some(s("2")));
    assert_eq!(c.stats().evictions, 0);
    // A zero TTL on an existing key removes it.
    c.set("a", s("x"), Some(Duration::ZERO));
    assert_eq!(c.get("a"), None);
}

#[test]
fn max_ttl_never_expires() {
    let c = cache(1, 10, 60);
    c.set("forever", s("v"), Some(Duration::MAX));
    c.advance(Duration::from_secs(10 * 365 * 86400));
    assert_eq!(c.get("forever"), Some(s("v")));
    let never: TtlCache<String> = TtlCache::new(CacheConfig {
        default_ttl: Duration::MAX,
        ..CacheConfig::default()
    })
    .unwrap();
    never.set("k", s("v"), None);
    never.advance(Duration::from_secs(10 * 365 * 86400));
    assert_eq!(never.get("k"), Some(s("v")));
}

#[test]
fn lru_get_counts_as_use_and_eviction_is_exact() {
    let c = cache(300, 3, 60);
    c.set("a", s("1"), None);
    c.set("b", s("2"), None);
    c.set("c", s("3"), None);
    assert_eq!(c.get("a"), Some(s("1"))); // order, oldest first: b c a
    c.set("d", s("4"), None); // evicts b
    assert_eq!(c.get("b"), None);
    for k in ["a", "c", "d"] {
        assert!(c.get(k).is_some(), "{k} must survive");
    }
    assert_eq!(c.stats().evictions, 1);
    // Order now: a c d. Overwriting an existing key evicts nothing and refreshes it.
    c.set("a", s("1b"), None); // order: c d a
    assert_eq!(c.stats().evictions, 1);
    assert_eq!(c.stats().size, 3);
    c.set("e", s("5"), None); // evicts c
    assert_eq!(c.get("c"), None);
    assert_eq!(c.get("a"), Some(s("1b")));
    assert_eq!(c.stats().evictions, 2);
}

#[test]
fn sweep_runs_at_most_every_cleanup_interval() {
    let c = cache(1, 100, 60);
    for i in 0..10 {
        c.set(&format!("k{i}"), s("v"), None);
    }
    c.advance(Duration::from_secs(2));
    c.set("fresh", s("v"), Some(Duration::from_secs(3600)));
    // Expired but not yet swept: the interval has not passed.
    let st = c.stats();
    assert_eq!((st.size, st.expired_count), (11, 10), "{st:?}");
    c.advance(Duration::from_secs(60));
    assert_eq!(c.get("fresh"), Some(s("v"))); // any operation sweeps once due
    let st = c.stats();
    assert_eq!(
        (st.size, st.expired_count, st.expirations),
        (1, 0, 10),
        "{st:?}"
    );
}

#[test]
fn purge_expired_sweeps_on_demand() {
    let c = cache(1, 100, 3600);
    c.set("a", s("1"), None);
    c.set("b", s("2"), Some(Duration::from_secs(100)));
    c.advance(Duration::from_secs(5));
    assert_eq!(c.purge_expired(), 1);
    assert_eq!(c.purge_expired(), 0);
    assert_eq!(c.stats().size, 1);
}

#[test]
fn delete_clear_and_prefix_count_live_entries() {
    let c = cache(10, 100, 3600);
    c.set("provider:replicate:config", s("a"), None);
    c.set("provider:replicate:hw", s("b"), None);
    c.set("provider:replicated:config", s("c"), None);
    c.set("provider:aws:config", s("d"), Some(Duration::from_secs(1)));
    c.set("user:1:perm", s("e"), None);
    assert!(c.delete("user:1:perm"));
    assert!(!c.delete("user:1:perm"));
    assert_eq!(c.invalidate_prefix("provider:replicate:"), 2);
    assert_eq!(c.get("provider:replicated:config"), Some(s("c")));
    c.advance(Duration::from_secs(2));
    // aws is expired: removed but not counted as live.
    assert_eq!(c.invalidate_prefix("provider:aws:"), 0);
    assert_eq!(c.stats().expirations, 1);
    c.set("x", s("1"), None);
    assert_eq!(c.clear(), 2);
    assert_eq!(c.stats().size, 0);
    assert_eq!(c.clear(), 0);
    c.set("gone", s("1"), Some(Duration::from_secs(1)));
    c.advance(Duration::from_secs(2));
    assert!(
        !c.delete("gone"),
        "an expired entry is not reported as deleted"
    );
}

#[test]
fn hits_and_misses_are_counted() {
    let c = cache(10, 100, 3600);
    c.set("a", s("1"), None);
    c.get("a");
    c.get("a");
    c.get("nope");
    let _ = c.get_or_set::<Error, _>("a", None, || unreachable!("hit"));
    let _ = c.get_or_set::<Error, _>("b", None, || Ok(s("2")));
    let st = c.stats();
    assert_eq!((st.hits, st.misses), (3, 2), "{st:?}");
}

#[test]
fn get_or_set_computes_once_and_caches() {
    let c = cache(10, 100, 3600);
    let calls = AtomicUsize::new(0);
    for _ in 0..3 {
        let v = c
            .get_or_set::<Error, _>("k", None, || {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(s("computed"))
            })
            .unwrap();
        assert_eq!(v, "computed");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The TTL given to get_or_set applies.
    let v = c
        .get_or_set::<Error, _>("short", Some(Duration::from_secs(1)), || Ok(s("x")))
        .unwrap();
    assert_eq!(v, "x");
    c.advance(Duration::from_secs(2));
    assert_eq!(c.get("short"), None);
}

#[test]
fn failing_compute_caches_nothing() {
    let c = cache(10, 100, 3600);
    let err = c
        .get_or_set::<Error, _>("k", None, || Err(Error::Auth("denied".into())))
        .unwrap_err();
    assert_eq!(err, Error::Auth("denied".into()));
    assert_eq!(c.get("k"), None);
    assert_eq!(c.stats().size, 0);
}

/// `threads` callers race on `get_or_set(key)`; the one that computes waits
/// until all others are queued on its flight, then returns `outcome`. Returns
/// every caller's result and how many times the compute ran.
fn race_on_one_key(
    threads: usize,
    key: &'static str,
    outcome: Result<String, Error>,
) -> (Vec<Result<String, Error>>, usize, Arc<TtlCache<String>>) {
    let c = Arc::new(cache(10, 100, 3600));
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (c, calls, started) = (c.clone(), calls.clone(), started.clone());
            let outcome = outcome.clone();
            thread::spawn(move || {
                started.wait();
                c.get_or_set::<Error, _>(key, None, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    await_waiters(&c, key, threads - 1);
                    outcome
                })
            })
        })
        .collect();
    let results = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (results, calls.load(Ordering::SeqCst), c)
}

#[test]
fn single_flight_under_concurrency() {
    let (results, calls, c) = race_on_one_key(8, "slow", Ok(s("v")));
    assert!(
        results.iter().all(|r| r.as_deref() == Ok("v")),
        "{results:?}"
    );
    assert_eq!(calls, 1);
    assert_eq!(c.get("slow"), Some(s("v")));
}

#[test]
fn waiters_share_the_leaders_error() {
    let failure = Error::Timeout("upstream timed out".into());
    let (results, calls, c) = race_on_one_key(4, "bad", Err(failure.clone()));
    assert!(
        results.iter().all(|r| r.as_ref() == Err(&failure)),
        "{results:?}"
    );
    assert_eq!(calls, 1);
    assert_eq!(c.stats().size, 0);
}

#[test]
fn compute_may_use_the_cache_but_not_recurse_on_its_key() {
    let c = cache(10, 100, 3600);
    let v = c
        .get_or_set::<Error, _>("outer", None, || {
            c.set("side", s("effect"), None);
            let inner = c.get_or_set::<Error, _>("inner", None, || Ok(s("i")))?;
            let again = c.get_or_set::<Error, _>("outer", None, || Ok(s("never")));
            assert!(
                matches!(&again, Err(Error::InvalidArgument(m)) if m.contains("'outer'")),
                "{again:?}"
            );
            Ok(format!("o+{inner}"))
        })
        .unwrap();
    assert_eq!(v, "o+i");
    assert_eq!(c.get("side"), Some(s("effect")));
    assert_eq!(c.get("outer"), Some(s("o+i")));
}

#[test]
fn a_write_during_compute_keeps_the_stale_result_out() {
    for write in ["set", "delete", "clear", "prefix"] {
        let c = cache(10, 100, 3600);
        let v = c
            .get_or_set::<Error, _>("provider:x:config", None, || {
                match write {
                    "set" => c.set("provider:x:config", s("newer"), None),
                    "delete" => {
                        c.delete("provider:x:config");
                    }
                    "clear" => {
                        c.clear();
                    }
                    _ => {
                        c.invalidate_prefix("provider:x:");
                    }
                }
                Ok(s("computed-before-the-write"))
            })
            .unwrap();
        assert_eq!(v, "computed-before-the-write", "{write}");
        let expected = (write == "set").then(|| s("newer"));
        assert_eq!(c.get("provider:x:config"), expected, "{write}");
    }
}

/// Starts a thread that computes `key`; once `waiters` other callers are queued
/// on its flight, the compute ends with `finish()`. Returns once the compute runs.
fn lead_in_background<F>(
    c: &Arc<TtlCache<String>>,
    key: &'static str,
    waiters: usize,
    finish: F,
) -> thread::JoinHandle<Result<String, Error>>
where
    F: FnOnce() -> Result<String, Error> + Send + 'static,
{
    let entered = Arc::new(Barrier::new(2));
    let leader = {
        let (c, entered) = (c.clone(), entered.clone());
        thread::spawn(move || {
            c.get_or_set::<Error, _>(key, None, || {
                entered.wait();
                await_waiters(&c, key, waiters);
                finish()
            })
        })
    };
    entered.wait();
    leader
}

#[test]
fn a_panicking_compute_releases_its_waiters() {
    let c = Arc::new(cache(10, 100, 3600));
    let leader = lead_in_background(&c, "k", 1, || panic!("compute failed hard"));
    let waiter = c.get_or_set::<Error, _>("k", None, || Ok(s("retried")));
    assert_eq!(waiter.unwrap(), "retried");
    assert!(
        leader.join().is_err(),
        "the leader's panic propagates to it"
    );
    assert_eq!(c.get("k"), Some(s("retried")));
}

#[test]
fn waiters_with_another_error_type_compute_for_themselves() {
    #[derive(Clone, Debug)]
    struct Other;
    impl From<Reentrant> for Other {
        fn from(_: Reentrant) -> Self {
            Other
        }
    }
    let c = Arc::new(cache(10, 100, 3600));
    let leader = lead_in_background(&c, "k", 1, || Err(Error::Network("down".into())));
    let other = c.get_or_set::<Other, _>("k", None, || Ok(s("mine")));
    assert_eq!(other.unwrap(), "mine");
    assert!(leader.join().unwrap().is_err());
}

#[test]
fn heavy_concurrent_use_keeps_invariants() {
    let c = Arc::new(cache(3600, 64, 0));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for i in 0..20_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("k{}", x % 200);
                    match i % 7 {
                        0 => {
                            c.delete(&key);
                        }
                        1 | 2 => c.set(&key, key.clone(), None),
                        3 => {
                            let v = c
                                .get_or_set::<Error, _>(&key, None, || Ok(key.clone()))
                                .unwrap();
                            assert_eq!(v, key);
                        }
                        4 if x % 101 == 0 => {
                            c.invalidate_prefix("k1");
                        }
                        _ => {
                            if let Some(v) = c.get(&key) {
                                assert_eq!(v, key, "a key never returns another key's value");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let st = c.stats();
    assert!(st.size <= 64, "{st:?}");
    assert!(st.evictions > 0, "{st:?}");
}

#[test]
fn debug_shows_no_values() {
    let c = cache(10, 10, 10);
    c.set("k", s("super-secret-value"), None);
    let shown = format!("{c:?}");
    assert!(!shown.contains("super-secret-value"), "{shown}");
}

#[test]
fn process_wide_caches_have_simpletuner_parameters() {
    let p = provider_config_cache();
    assert_eq!(p.config().default_ttl, Duration::from_secs(300));
    assert_eq!(p.config().max_size, 100);
    let u = user_permission_cache();
    assert_eq!(u.config().default_ttl, Duration::from_secs(60));
    assert_eq!(u.config().max_size, 500);
    assert!(
        Arc::ptr_eq(p, provider_config_cache()),
        "one instance per process"
    );

    let b = |v: &str| crate::secret::SecretBytes::from(v.as_bytes());
    p.set("provider:unit-test-a:config", b("1"), None);
    p.set("provider:unit-test-a:hardware", b("2"), None);
    p.set("provider:unit-test-ab:config", b("3"), None);
    assert_eq!(invalidate_provider_cache("unit-test-a"), 2);
    assert!(p.get("provider:unit-test-ab:config").is_some());
    u.set("user:-42:perm", b("1"), None);
    u.set("user:-421:perm", b("1"), None);
    assert_eq!(invalidate_user_cache(-42), 1);
    assert!(u.get("user:-421:perm").is_some());
}

#[test]
fn get_or_set_ttl_uses_the_computed_ttl() {
    let c = cache(100, 10, 3600);
    let hit = c
        .get_or_set_ttl::<Error, _>("found", || Ok((s("v"), Some(Duration::from_secs(50)))))
        .unwrap();
    let miss = c
        .get_or_set_ttl::<Error, _>("absent", || Ok((s(""), Some(Duration::from_secs(5)))))
        .unwrap();
    assert_eq!((hit.as_str(), miss.as_str()), ("v", ""));
    c.advance(Duration::from_secs(6));
    assert_eq!(c.get("absent"), None);
    assert_eq!(c.get("found"), Some(s("v")));
    c.advance(Duration::from_secs(45));
    assert_eq!(c.get("found"), None);
}

/// A deliberately naive model of the cache's rules: a vector in recency order
/// (least recent first), expiry times on the test clock, no periodic sweep.
struct Model {
    entries: Vec<(String, String, Option<u64>)>,
    max: usize,
    now: u64,
}

impl Model {
    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _, _)| k == key)
    }
    fn live(&self, exp: Option<u64>) -> bool {
        exp.is_none_or(|t| self.now < t)
    }
    fn get(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let entry = self.entries.remove(i);
        if !self.live(entry.2) {
            return None;
        }
        let v = entry.1.clone();
        self.entries.push(entry);
        Some(v)
    }
    fn set(&mut self, key: &str, value: &str, ttl: Option<u64>) {
        let exp = ttl.map(|t| self.now + t);
        if ttl == Some(0) {
            if let Some(i) = self.position(key) {
                self.entries.remove(i);
            }
            return;
        }
        if let Some(i) = self.position(key) {
            self.entries.remove(i);
        } else if self.entries.len() >= self.max {
            self.entries.remove(0);
        }
        self.entries.push((key.to_owned(), value.to_owned(), exp));
    }
    fn delete(&mut self, key: &str) -> bool {
        match self.position(key) {
            Some(i) => {
                let e = self.entries.remove(i);
                self.live(e.2)
            }
            None => false,
        }
    }
    fn invalidate_prefix(&mut self, prefix: &str) -> usize {
        let now = self.now;
        let before: Vec<_> = std::mem::take(&mut self.entries);
        let mut live = 0;
        for e in before {
            if e.0.starts_with(prefix) {
                live += usize::from(e.2.is_none_or(|t| now < t));
            } else {
                self.entries.push(e);
            }
        }
        live
    }
}

/// Runs random operations on a cache (default TTL: never; no periodic
/// sweep) and on the model side by side, from several seeds; every result and
/// the size must agree.
fn check_against_model(max: usize, keys: &[String], prefixes: &[&str], steps: usize) {
    const SECOND: u64 = 1_000_000_000;
    for seed in 1..=8u64 {
        let cache: TtlCache<String> = TtlCache::new(CacheConfig {
            default_ttl: Duration::MAX,
            max_size: max,
            cleanup_interval: Duration::MAX,
        })
        .unwrap();
        let mut model = Model {
            entries: Vec::new(),
            max,
            now: 0,
        };
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for step in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = &keys[(x % keys.len() as u64) as usize];
            let ctx = format!("max {max}, seed {seed}, step {step}, key {key}");
            match (x >> 8) % 20 {
                0..=7 => assert_eq!(cache.get(key), model.get(key), "get: {ctx}"),
                8..=14 => {
                    let ttl =
                        [None, Some(0), Some(SECOND), Some(5 * SECOND)][((x >> 16) % 4) as usize];
                    let value = format!("v{step}");
                    cache.set(key, value.clone(), ttl.map(Duration::from_nanos));
                    model.set(key, &value, ttl);
                }
                15 | 16 => assert_eq!(cache.delete(key), model.delete(key), "delete: {ctx}"),
                17 => {
                    let prefix = prefixes[((x >> 16) % prefixes.len() as u64) as usize];
                    assert_eq!(
                        cache.invalidate_prefix(prefix),
                        model.invalidate_prefix(prefix),
                        "prefix: {ctx}"
                    );
                }
                _ => {
                    let by = [0, SECOND / 2, SECOND, 3 * SECOND][((x >> 16) % 4) as usize];
                    cache.advance(Duration::from_nanos(by));
                    model.now += by;
                }
            }
            assert_eq!(cache.stats().size, model.entries.len(), "size: {ctx}");
        }
        assert_eq!(cache.check_consistency(), model.entries.len());
    }
}

#[test]
fn random_operations_match_the_reference_model() {
    let keys: Vec<String> = ["a:1", "a:2", "a:3", "b:1", "b:2", "c", "cc", "d"]
        .iter()
        .map(|k| k.to_string())
        .collect();
    check_against_model(4, &keys, &["a:", "b", "c", ""], 5_000);
}

#[test]
fn lru_is_exact_across_shards_on_one_thread() {
    // 600 entries: 4 shards; 900 keys keep it at capacity, evicting.
    let keys: Vec<String> = (0..900)
        .map(|i| format!("{}:{i}", ["a", "b", "c"][i % 3]))
        .collect();
    assert_eq!(cache(300, 600, 60).shard_count(), 4);
    check_against_model(600, &keys, &["a:1", "b:2", "c:33", "zz"], 30_000);
}

#[test]
fn a_key_read_again_after_another_shard_is_more_recent() {
    // x and y in different shards, oldest first; then reads x, y, x and
    // every filler: the order is y, x, fillers, so the next new key evicts y.
    let c = cache(300, 256, 60);
    let x = "x".to_string();
    let y = (0..)
        .map(|i| format!("y{i}"))
        .find(|k| !std::ptr::eq(c.locate(k).1, c.locate(&x).1))
        .unwrap();
    c.set(&x, s("x"), None);
    c.set(&y, s("y"), None);
    let fillers: Vec<String> = (0..254).map(|i| format!("f{i}")).collect();
    for f in &fillers {
        c.set(f, s("f"), None);
    }
    for k in [&x, &y, &x] {
        assert!(c.get(k).is_some());
    }
    for f in &fillers {
        assert!(c.get(f).is_some());
    }
    c.set("new", s("n"), None);
    assert_eq!((c.get(&x).is_some(), c.get(&y).is_some()), (true, false));
}

#[test]
fn shard_counts_follow_capacity() {
    for (max, shards) in [
        (1, 1),
        (100, 1),
        (255, 1),
        (256, 2),
        (500, 2),
        (1000, 4),
        (2000, 8),
        (4096, 16),
        (1 << 20, 16),
    ] {
        assert_eq!(cache(300, max, 60).shard_count(), shards, "max_size {max}");
    }
}

/// Eight threads hammer one cache with gets, sets, deletes, prefix
/// invalidations, `get_or_set` and clock jumps for a bounded time; then every
/// counter must match what the threads saw, and the size its invariants.
fn hammer(max: usize) {
    const THREADS: u64 = 8;
    let c = Arc::new(cache(3600, max, 1));
    let key_space = 2 * max as u64;
    let deadline = Instant::now() + Duration::from_millis(400);
    let tallies: Vec<[u64; 4]> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                // gets that hit, gets that missed, get_or_set calls, computes
                let mut tally = [0u64; 4];
                let mut x = (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut i = 0u64;
                while !i.is_multiple_of(64) || Instant::now() < deadline {
                    i += 1;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!(
                        "{}/{}",
                        ["p", "q", "r"][(x % 3) as usize],
                        (x >> 8) % key_space
                    );
                    match (x >> 32) % 100 {
                        0..=59 => match c.get(&key) {
                            Some(v) => {
                                assert_eq!(v, key, "a key never returns another key's value");
                                tally[0] += 1;
                            }
                            None => tally[1] += 1,
                        },
                        60..=79 => {
                            let ttl = [None, Some(Duration::from_secs(1))][(x >> 40) as usize % 2];
                            c.set(&key, key.clone(), ttl);
                        }
                        80..=89 => {
                            tally[2] += 1;
                            let v = c
                                .get_or_set::<Error, _>(&key, None, || {
                                    tally[3] += 1;
                                    Ok(key.clone())
                                })
                                .unwrap();
                            assert_eq!(v, key);
                        }
                        90..=95 => {
                            c.delete(&key);
                        }
                        96 | 97 => {
                            c.invalidate_prefix(&format!("q/{}", (x >> 16) % 10));
                        }
                        98 => {
                            let st = c.stats();
                            assert!(st.size <= max, "size above capacity mid-run: {st:?}");
                            assert!(st.expired_count <= st.size, "{st:?}");
                        }
                        _ => c.advance(Duration::from_millis(200)),
                    }
                }
                tally
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let sum = |i: usize| tallies.iter().map(|t| t[i]).sum::<u64>();
    let (get_hits, get_misses, calls, computes) = (sum(0), sum(1), sum(2), sum(3));
    let st = c.stats();
    assert_eq!(
        st.hits + st.misses,
        get_hits + get_misses + calls,
        "every lookup counted once: {st:?}"
    );
    assert!(st.hits >= get_hits, "{st:?}");
    assert!(
        st.misses >= get_misses + computes,
        "each compute follows a miss: {st:?}"
    );
    assert!(st.size <= max, "{st:?}");
    assert_eq!(c.check_consistency(), st.size, "{st:?}");
    assert!(st.evictions > 0 && st.expirations > 0, "{st:?}");
    assert!(get_hits > 0 && computes > 0, "{st:?}");
    // The counters keep counting exactly after the storm.
    c.clear();
    c.set("after", s("v"), None);
    assert_eq!(c.get("after"), Some(s("v")));
    assert_eq!(c.get("absent"), None);
    let after = c.stats();
    assert_eq!(
        (after.hits, after.misses, after.size),
        (st.hits + 1, st.misses + 1, 1)
    );
}

#[test]
fn eight_threads_keep_every_count_exact_in_one_shard() {
    hammer(64);
}

#[test]
fn eight_threads_keep_every_count_exact_across_shards() {
    hammer(2048);
}

#[test]
fn a_child_forked_while_a_shard_was_held_counts_its_entries_again() {
    let c = Arc::new(cache(300, 4, 60));
    for k in ["a", "b", "c", "d"] {
        c.set(k, s(k), None);
    }
    // Another thread is inside the shard at the fork: the child loses the
    // shard's entries, and must not count them (nor wait for them) later.
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = Arc::clone(&c);
    let t = thread::spawn(move || {
        let _inside = holder.shards[0].state.read();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    let status = crate::sys::in_fork(|| {
        let ok = c.stats().size == 0
            && ["e", "f", "g", "h", "i"].iter().all(|k| {
                c.set(k, s(k), None);
                c.stats().size <= 4
            })
            && c.get("e").is_none()
            && c.get("i").is_some()
            && c.stats().size == 4;
        i32::from(!ok)
    });
    assert_eq!(status, Some(0), "the child hung or failed");
    drop(release_tx);
    t.join().unwrap();
    assert_eq!(c.stats().size, 4, "the parent keeps its entries");
}

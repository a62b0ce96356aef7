use super::secret_cache::*;
use crate::error::Error;
use crate::secrets::node;
use crate::secrets::provider::SecretMap;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Barrier;
use std::time::Duration;

fn settings() -> RemoteSettings {
    RemoteSettings {
        failure_ttl: Duration::ZERO,
        max_stale: Duration::from_secs(60),
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        ..RemoteSettings::default()
    }
}

/// A cache over `s` keeping found secrets for `ttl`, "absent" for `negative`.
fn cache_with<T: Versioned + node::entry::Shareable + Send + Sync + 'static>(
    mut s: RemoteSettings,
    ttl: Duration,
    negative: Duration,
) -> Arc<SecretCache<T>> {
    s.cache_ttl = ttl;
    s.negative_ttl = negative;
    SecretCache::scripted(s)
}

fn found(v: &str) -> Result<Fetched<String>, FetchError> {
    Ok(Fetched::Found(v.to_owned()))
}

/// How a [`SecretCache`] answered: within the TTL, or past it while the
/// service fails (the cache then holds the failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    Fresh,
    Stale,
}

/// The value `cache` answered, and whether it was stale.
fn value<'a>(
    cache: &SecretCache<String>,
    answer: &'a Arc<Fetched<String>>,
) -> (&'a str, Freshness) {
    let freshness = if cache.failure().is_some() {
        Freshness::Stale
    } else {
        Freshness::Fresh
    };
    match &**answer {
        Fetched::Found(v) => (v.as_str(), freshness),
        Fetched::Absent => ("<absent>", freshness),
    }
}

#[test]
fn one_request_per_ttl_under_concurrency() {
    let cache = cache_with(settings(), Duration::from_secs(60), Duration::from_secs(1));
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..1000 {
                    let calls = Arc::clone(&calls);
                    let a = cache
                        .get_with(move || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            found("v")
                        })
                        .unwrap();
                    assert_eq!(value(&cache, &a), ("v", Freshness::Fresh));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.requests(), 1);
}

#[test]
fn transient_failures_serve_the_stale_value_within_the_bound() {
    let mut s = settings();
    s.max_stale = Duration::from_millis(300);
    let cache = cache_with(s, Duration::ZERO, Duration::ZERO);
    assert_eq!(
        value(&cache, &cache.get_with(|| found("v1")).unwrap()),
        ("v1", Freshness::Fresh)
    );
    let down = || Err(FetchError::transient(Error::Timeout("slow".into())));
    assert_eq!(
        value(&cache, &cache.get_with(down).unwrap()),
        ("v1", Freshness::Stale)
    );
    assert_eq!(cache.failure().unwrap().code_name(), "ST_TIMEOUT");
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(
        cache.get_with(down).err().unwrap().code_name(),
        "ST_TIMEOUT"
    );
    // Recovery clears the failure.
    assert_eq!(
        value(&cache, &cache.get_with(|| found("v2")).unwrap()),
        ("v2", Freshness::Fresh)
    );
    assert!(cache.failure().is_none());
}

#[test]
fn permanent_failures_are_never_hidden_by_a_stale_value() {
    let cache = cache_with(settings(), Duration::ZERO, Duration::ZERO);
    cache.get_with(|| found("v1")).unwrap();
    let denied = || Err(FetchError::permanent(Error::Auth("denied".into())));
    assert_eq!(cache.get_with(denied).err().unwrap().code_name(), "ST_AUTH");
}

#[test]
fn a_failure_answers_for_failure_ttl() {
    let mut s = settings();
    s.failure_ttl = Duration::from_secs(60);
    let cache = cache_with(s, Duration::from_secs(60), Duration::ZERO);
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let calls = Arc::clone(&calls);
        let e = cache.get_with(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(FetchError::transient(Error::Network("refused".into())))
        });
        assert_eq!(e.err().unwrap().code_name(), "ST_NETWORK");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cache.invalidate();
    assert_eq!(
        value(&cache, &cache.get_with(|| found("v")).unwrap()).0,
        "v"
    );
}

#[test]
fn absent_is_cached_for_the_negative_ttl() {
    let cache = cache_with::<String>(settings(), Duration::from_secs(60), Duration::ZERO);
    assert_eq!(
        value(&cache, &cache.get_with(|| Ok(Fetched::Absent)).unwrap()).0,
        "<absent>"
    );
    // Negative TTL zero: asked again at once.
    assert_eq!(
        value(&cache, &cache.get_with(|| found("now")).unwrap()).0,
        "now"
    );
    assert_eq!(cache.requests(), 2);
}

#[test]
fn waiters_share_a_failure_instead_of_queueing_behind_it() {
    // Issue 24, finding 6: with failure_ttl 0, 16 threads waiting on a dead
    // server each sent a request in turn, the last one waiting 16 request
    // timeouts. Callers that join a fetch in flight share its answer,
    // failure included: one request, and nobody waits past that one fetch.
    let cache = cache_with::<String>(settings(), Duration::from_secs(60), Duration::from_secs(1));
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            std::thread::spawn(move || {
                let c = cache.clone();
                cache
                    .get_with(move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // The leader fails only once the 15 others wait on it.
                        for _ in 0..10_000 {
                            if c.waiters() == 15 {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(FetchError::transient(Error::Network(
                            "connection refused".into(),
                        )))
                    })
                    .map(|_| ())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one request for all 16 callers"
    );
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(Error::Network(m)) if m.contains("refused"))));
    // The failure is not cached (failure_ttl 0): the next caller asks again.
    let again = cache.get_with(|| found("back"));
    assert_eq!(value(&cache, &again.unwrap()), ("back", Freshness::Fresh));
}

#[test]
fn a_fetch_that_panics_lets_its_waiters_try_again() {
    let cache = cache_with::<String>(settings(), Duration::from_secs(60), Duration::from_secs(1));
    let c = cache.clone();
    let leader = std::thread::spawn(move || {
        let c2 = c.clone();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.get_with(move || {
                for _ in 0..10_000 {
                    if c2.waiters() == 1 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                panic!("fetch panicked");
            })
        }));
    });
    std::thread::sleep(Duration::from_millis(20));
    let answer = cache.get_with(|| found("second"));
    leader.join().unwrap();
    assert_eq!(value(&cache, &answer.unwrap()).0, "second");
}

/// A cache whose values pass their soft deadline soon (refresh ahead at
/// 1/1000 of a 200 s TTL: after 200 ms), with a long TTL; failed refreshes
/// back off 300 ms, then 600 ms. (Margins of 100 ms and more: the machine
/// is busy; every check is of an order of events, never of a duration.)
fn refreshing_cache() -> Arc<SecretCache<String>> {
    let mut s = settings();
    s.refresh_ahead_permille = 1;
    s.failure_ttl = Duration::from_millis(300);
    cache_with(s, Duration::from_secs(200), Duration::from_secs(200))
}

#[test]
fn past_the_soft_deadline_the_value_is_served_and_one_refresh_asked() {
    let cache = refreshing_cache();
    cache.get_with(|| found("v1")).unwrap();
    assert!(!cache.refresh_asked(), "before the soft deadline");
    std::thread::sleep(Duration::from_millis(300));
    // Every get answers from the value, none fetches; one refresh is asked.
    for _ in 0..100 {
        let answer = cache
            .get_with(|| panic!("a get with a value never fetches"))
            .unwrap();
        assert_eq!(value(&cache, &answer).0, "v1");
    }
    assert!(cache.refresh_asked());
    assert_eq!(cache.jobs_submitted(), 1, "queued once, and only once");
    let child = crate::sys::in_fork(|| {
        cache
            .get_with(|| panic!("a get with a value never fetches"))
            .unwrap();
        i32::from(cache.jobs_submitted() == 2)
    });
    assert_eq!(child, Some(1), "a forked child asks its own refresher");
    // The refresh replaces the value; the next soft deadline is a TTL away.
    cache.refresh_with(|| found("v2"));
    assert!(!cache.refresh_asked());
    assert_eq!(value(&cache, &cache.get_with(|| panic!()).unwrap()).0, "v2");
    assert_eq!(cache.requests(), 2);
}

#[test]
fn a_failed_refresh_keeps_the_value_and_backs_off() {
    let cache = refreshing_cache();
    cache.get_with(|| found("v1")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cache.get_with(|| panic!()).unwrap();
    assert!(cache.refresh_asked());
    cache.refresh_with(|| Err(FetchError::transient(Error::Timeout("slow".into()))));
    // Served as before, the failure reported; no refresh asked during the
    // backoff (failure_ttl, doubled after each failure in a row).
    assert_eq!(
        value(&cache, &cache.get_with(|| panic!()).unwrap()),
        ("v1", Freshness::Stale)
    );
    assert!(!cache.refresh_asked(), "backing off");
    std::thread::sleep(Duration::from_millis(400));
    cache.get_with(|| panic!()).unwrap();
    assert!(cache.refresh_asked(), "asked again after the backoff");
    cache.refresh_with(|| Err(FetchError::transient(Error::Timeout("slow".into()))));
    std::thread::sleep(Duration::from_millis(400));
    cache.get_with(|| panic!()).unwrap();
    assert!(
        !cache.refresh_asked(),
        "the second backoff is twice the first"
    );
    std::thread::sleep(Duration::from_millis(300));
    cache.get_with(|| panic!()).unwrap();
    assert!(cache.refresh_asked());
    cache.refresh_with(|| found("v2"));
    assert_eq!(
        value(&cache, &cache.get_with(|| panic!()).unwrap()),
        ("v2", Freshness::Fresh)
    );
}

#[test]
fn refresh_ahead_never_serves_past_the_bounds() {
    // Past the TTL and max_stale, or after a failure no retry mends, a get
    // is answered as without refresh ahead.
    let mut s = settings();
    s.refresh_ahead_permille = 500;
    s.max_stale = Duration::from_millis(200);
    let ttl = Duration::from_millis(600);
    let cache = cache_with(s.clone(), ttl, ttl);
    cache.get_with(|| found("v1")).unwrap();
    std::thread::sleep(Duration::from_millis(900)); // past TTL + max_stale
    assert_eq!(
        value(&cache, &cache.get_with(|| found("v2")).unwrap()).0,
        "v2",
        "fetched"
    );
    // A permanent failure of the refresh: past the TTL, callers see it.
    let cache = cache_with(s.clone(), ttl, ttl);
    cache.get_with(|| found("v1")).unwrap();
    std::thread::sleep(Duration::from_millis(350)); // past the soft deadline (300 ms)
    cache.get_with(|| panic!()).unwrap();
    cache.refresh_with(|| Err(FetchError::permanent(Error::Auth("denied".into()))));
    std::thread::sleep(Duration::from_millis(350)); // past the TTL
    let denied = || Err(FetchError::permanent(Error::Auth("denied".into())));
    assert_eq!(cache.get_with(denied).err().unwrap().code_name(), "ST_AUTH");
    // "No such secret" has no value: it is not refreshed ahead.
    let cache = cache_with::<String>(s, ttl, ttl);
    cache.get_with(|| Ok(Fetched::Absent)).unwrap();
    std::thread::sleep(Duration::from_millis(350));
    cache.get_with(|| Ok(Fetched::Absent)).unwrap();
    assert!(!cache.refresh_asked());
}

/// A fetch's answer: key `K` holding `value`, of version `version`.
fn map(value: &str, version: &str) -> Result<Fetched<SecretMap>, FetchError> {
    let mut m = SecretMap::default();
    m.insert("K".into(), value.into());
    Ok(Fetched::Found(m.with_version(Some(
        crate::secrets::provider::Version {
            id: version.into(),
            ..Default::default()
        },
    ))))
}

#[test]
fn a_refresh_that_finds_the_same_version_changes_nothing() {
    let mut s = settings();
    s.refresh_ahead_permille = 1;
    let cache: Arc<SecretCache<SecretMap>> =
        cache_with(s, Duration::from_secs(200), Duration::from_secs(200));
    let first = cache.get_with(move || map("a", "v1")).unwrap();
    cache.refresh_with(move || map("a", "v1"));
    let same = cache.get_with(|| panic!()).unwrap();
    assert!(
        Arc::ptr_eq(&first, &same),
        "the same version: the value held stays"
    );
    cache.refresh_with(move || map("b", "v2"));
    let newer = cache.get_with(|| panic!()).unwrap();
    assert!(!Arc::ptr_eq(&first, &newer));
    let (value, version) = cache
        .lookup_versioned_with("K", || panic!())
        .unwrap()
        .unwrap();
    assert_eq!((value.expose(), version.unwrap().id.as_str()), ("b", "v2"));
}

#[test]
fn a_forced_fetch_goes_out_at_most_once_per_interval() {
    let cache = cache_with::<String>(
        settings(),
        Duration::from_secs(200),
        Duration::from_secs(200),
    );
    cache.get_with(|| found("v1")).unwrap();
    let interval = Duration::from_millis(400);
    let answer = cache.force_with(interval, || found("v2")).unwrap();
    assert_eq!(value(&cache, &answer).0, "v2", "fetched although fresh");
    // Within the interval: what is held, no fetch.
    let answer = cache
        .force_with(interval, || panic!("within the interval"))
        .unwrap();
    assert_eq!(value(&cache, &answer).0, "v2");
    std::thread::sleep(Duration::from_millis(500));
    let answer = cache.force_with(interval, || found("v3")).unwrap();
    assert_eq!(value(&cache, &answer).0, "v3");
    assert_eq!(cache.requests(), 3);
}

#[test]
fn a_report_joining_a_fetch_begun_before_the_failure_fetches_after_it() {
    let version = |a: &Arc<Fetched<SecretMap>>| match &**a {
        Fetched::Found(m) => m.version().map(|v| v.id.clone()),
        Fetched::Absent => None,
    };
    let s = RemoteSettings {
        refresh_ahead_permille: 0,
        ..settings()
    };
    let cache: Arc<SecretCache<SecretMap>> =
        cache_with(s, Duration::from_millis(20), Duration::ZERO);
    cache.get_with(move || map("old", "v1")).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    // A get past the TTL whose check (begun before the password changed)
    // keeps v1, slowly.
    let due = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            cache
                .get_with(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    map("old", "v1")
                })
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let interval = Duration::from_secs(60);
    let answer = cache
        .report_with(interval, "v1", move || map("new", "v2"))
        .unwrap();
    assert_eq!(
        version(&answer).as_deref(),
        Some("v2"),
        "the report's own fetch, after the one it found in flight"
    );
    due.join().unwrap();
    // A second report within the interval is answered by what is held.
    let again = cache
        .report_with(interval, "v1", || panic!("held"))
        .unwrap();
    assert_eq!(version(&again).as_deref(), Some("v2"));
    assert_eq!(cache.requests(), 3);
}

/// A secret whose value says its own end: a lease of `ms` whose taken end
/// (a third early) is `ms` from now: granted as from a third of it later.
fn leased(value: &str, ms: u64) -> SecretMap {
    let mut map = SecretMap::with_capacity(1);
    map.insert("pg_password".into(), value.into());
    map.with_version(Some(crate::secrets::provider::Version {
        id: "lease-1".into(),
        ..Default::default()
    }))
    .with_lease(Some(crate::secrets::provider::Lease {
        id: crate::secret::SecretString::from("database/creds/x/1"),
        lifetime: crate::secrets::lifetime::Lifetime::since(
            crate::sys::clock::precise() + ms * 1_000_000 / 3,
            Duration::from_millis(ms),
            true,
        ),
    }))
}

#[test]
fn a_lease_is_kept_until_it_ends_renewed_in_place_and_never_served_stale() {
    // A long TTL and a long max_stale: the lease's end decides.
    let mut s = settings();
    s.refresh_ahead_permille = 0;
    let cache: Arc<SecretCache<SecretMap>> =
        cache_with(s, Duration::from_secs(60), Duration::from_secs(1));
    let pw = |c: &SecretCache<SecretMap>, step: Result<Fetched<SecretMap>, FetchError>| {
        c.lookup_with("PG_PASSWORD", move || step)
            .map(|v| v.map(|v| v.expose().to_owned()))
    };
    assert_eq!(
        pw(&cache, Ok(Fetched::Found(leased("pw-1", 900))))
            .unwrap()
            .as_deref(),
        Some("pw-1")
    );
    // Without refresh ahead, kept until its renewal is due (540 ms): within
    // it no fetch (a step that would be used panics the test if it were).
    assert_eq!(
        cache
            .lookup_with("PG_PASSWORD", || panic!("fetched within the lease"))
            .unwrap()
            .unwrap()
            .expose(),
        "pw-1"
    );
    std::thread::sleep(Duration::from_millis(650));
    // Renewed: the same version with a later end replaces the held one.
    cache.refresh_with(|| Ok(Fetched::Found(leased("pw-1", 900))));
    // Past the first lease's end the renewed value still answers.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        cache
            .lookup_with("PG_PASSWORD", || panic!("fetched within the renewed lease"))
            .unwrap()
            .unwrap()
            .expose(),
        "pw-1"
    );
    // Once the lease has ended, a transient failure is not hidden by the
    // dead value, however long max_stale is.
    std::thread::sleep(Duration::from_millis(700));
    let down = Err(FetchError::transient(Error::Timeout("slow".into())));
    assert_eq!(pw(&cache, down).unwrap_err().code_name(), "ST_TIMEOUT");
}

#[test]
fn with_refresh_ahead_an_ended_lease_is_not_served_while_its_refresh_waits() {
    // Refresh ahead on: past the soft deadline a value is served while a
    // refresh is queued, and past its TTL too while the service fails
    // transiently; not a lease that has ended.
    let cache: Arc<SecretCache<SecretMap>> =
        cache_with(settings(), Duration::from_secs(60), Duration::from_secs(1));
    let first = cache.lookup_with("PG_PASSWORD", || Ok(Fetched::Found(leased("pw-1", 300))));
    assert_eq!(first.unwrap().unwrap().expose(), "pw-1");
    std::thread::sleep(Duration::from_millis(400));
    let down = || Err(FetchError::transient(Error::Timeout("slow".into())));
    assert_eq!(
        cache
            .lookup_with("PG_PASSWORD", down)
            .unwrap_err()
            .code_name(),
        "ST_TIMEOUT"
    );
}

/// The rotation window and version-checked refreshes, through the one
/// remote provider over a scripted service that counts its calls.
mod versions {
    use super::*;
    use crate::secrets::node::{NodeDir, NodeUse, Scope};
    use crate::secrets::provider::{Provider, Read, Version};
    use crate::secrets::remote::rotation::Versions;
    use crate::secrets::remote::source::{Fetch, RemoteSource};
    use crate::sys::Mutex;
    use serde_json::Value;

    /// A secret service: versions (id, value, stages), counting what it is asked.
    #[derive(Default)]
    struct Service {
        versions: Vec<(String, String, Vec<String>)>,
        gets: AtomicUsize,
        describes: AtomicUsize,
        /// What the value reads see when they are behind the version
        /// check (a replica): `None`, the same versions.
        replica: Option<Vec<(String, String, Vec<String>)>>,
        /// The version check fails (a metadata answer too large).
        check_fails: bool,
    }

    impl Service {
        fn put(&mut self, id: &str, value: &str, stage: &str) {
            for (_, _, stages) in &mut self.versions {
                stages.retain(|s| s != stage);
            }
            self.versions
                .push((id.into(), value.into(), vec![stage.into()]));
        }

        fn stage(&mut self, id: &str, stage: &str) {
            for (v, _, stages) in &mut self.versions {
                stages.retain(|s| s != stage);
                if v == id {
                    stages.push(stage.into());
                }
            }
        }

        fn map(&self, pick: impl Fn(&(String, String, Vec<String>)) -> bool) -> Fetched<SecretMap> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let seen = self.replica.as_ref().unwrap_or(&self.versions);
            let Some((id, value, stages)) = seen.iter().find(|v| pick(v)) else {
                return Fetched::Absent;
            };
            let Value::Object(doc) = serde_json::json!({ "DB_PASSWORD": value }) else {
                unreachable!()
            };
            Fetched::Found(SecretMap::from_json_object(doc).with_version(Some(Version {
                id: id.clone(),
                stages: stages.clone(),
                instead_of: None,
                leased: false,
                ends: None,
            })))
        }
    }

    /// A directory removed when dropped, a failing test's too (the test
    /// command checks /dev/shm after its run).
    struct Removed(std::path::PathBuf);

    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Scripted(Arc<Mutex<Service>>);

    impl Fetch for Scripted {
        const NAME: &'static str = "aws";
        const ABSENT: &'static str = "absent";
        type Secret = String;

        fn fetch(&self, _name: &String) -> Result<Fetched<SecretMap>, FetchError> {
            Ok(self
                .0
                .lock()
                .map(|(_, _, s)| s.iter().any(|s| s == "AWSCURRENT")))
        }

        fn versions(&self, _name: &String) -> Option<Result<Fetched<Versions>, FetchError>> {
            let service = self.0.lock();
            service.describes.fetch_add(1, Ordering::SeqCst);
            if service.check_fails {
                return Some(Err(FetchError::permanent(crate::error::Error::Remote(
                    "the answer is larger than 4 MiB".into(),
                ))));
            }
            let with = |stage: &str| {
                service
                    .versions
                    .iter()
                    .find(|(_, _, s)| s.iter().any(|s| s == stage))
                    .map(|(id, _, _)| id.clone())
            };
            Some(Ok(Fetched::Found(Versions {
                current: with("AWSCURRENT"),
                beside: ["AWSPENDING", "AWSPREVIOUS"]
                    .iter()
                    .filter_map(|s| with(s))
                    .collect(),
                stages: service
                    .versions
                    .iter()
                    .map(|(id, _, s)| (id.clone(), s.clone()))
                    .collect(),
            })))
        }

        fn fetch_version(
            &self,
            _name: &String,
            id: &str,
        ) -> Result<Fetched<SecretMap>, FetchError> {
            Ok(self.0.lock().map(|(v, _, _)| v == id))
        }

        fn describe(&self, _names: &[String]) -> (String, Vec<String>) {
            (String::new(), Vec::new())
        }

        fn checks(&self, _names: &[String]) -> Value {
            Value::Null
        }
    }

    fn provider(
        service: &Arc<Mutex<Service>>,
        ttl_ms: u64,
        node: NodeUse,
    ) -> RemoteSource<Scripted> {
        let s = RemoteSettings {
            cache_ttl: Duration::from_millis(ttl_ms),
            refresh_ahead_permille: 0,
            refresh_min_interval: Duration::from_secs(60),
            ..settings()
        };
        let scope = Scope::new("aws", &crate::secrets::transport::Vars::empty());
        let fetcher = Ok(Scripted(Arc::clone(service)));
        RemoteSource::build(vec!["db".into()], true, fetcher, &s, node, &scope)
    }

    fn counts(service: &Arc<Mutex<Service>>) -> (usize, usize) {
        let s = service.lock();
        (
            s.gets.load(Ordering::SeqCst),
            s.describes.load(Ordering::SeqCst),
        )
    }

    fn held(p: &RemoteSource<Scripted>) -> (String, Version) {
        let (value, version) = p.read("DB_PASSWORD", Read::Cached).unwrap().unwrap();
        (value.expose().to_owned(), version.unwrap())
    }

    fn report(p: &RemoteSource<Scripted>, failed: &str) -> (String, Version) {
        report_within(p, failed, Duration::from_secs(60))
    }

    fn report_within(
        p: &RemoteSource<Scripted>,
        failed: &str,
        interval: Duration,
    ) -> (String, Version) {
        let how = Read::Fresh {
            min_interval: interval,
            failed: Some(failed),
        };
        let (value, version) = p.read("DB_PASSWORD", how).unwrap().unwrap();
        (value.expose().to_owned(), version.unwrap())
    }

    #[test]
    fn a_version_check_only_decides_to_fetch_what_is_fetched_decides_the_value() {
        let service = Arc::new(Mutex::new(Service::default()));
        service.lock().put("v1", "one", "AWSCURRENT");
        let p = provider(&service, 20, NodeUse::Off);
        assert_eq!(held(&p).0, "one");
        // The check names v2, which the reads do not have yet (a replica
        // behind, a rotation half done): the value read is the one held.
        {
            let mut s = service.lock();
            s.replica = Some(s.versions.clone());
            s.put("v2", "two", "AWSCURRENT");
        }
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(held(&p).0, "one", "never absent");
        // The reads catch up: the next check fetches v2.
        service.lock().replica = None;
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(held(&p).0, "two");
        // A check that fails (metadata over 4 MiB): the value is read.
        {
            let mut s = service.lock();
            s.check_fails = true;
            s.put("v3", "three", "AWSCURRENT");
        }
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(held(&p).0, "three");
    }

    #[test]
    fn an_unchanged_secret_is_checked_each_ttl_never_fetched_again() {
        let service = Arc::new(Mutex::new(Service::default()));
        service.lock().put("v1", "one", "AWSCURRENT");
        let p = provider(&service, 20, NodeUse::Off);
        for _ in 0..10 {
            assert_eq!(held(&p).0, "one");
            std::thread::sleep(Duration::from_millis(25));
        }
        let (gets, describes) = counts(&service);
        assert_eq!(gets, 1, "only the first fetch sends the value");
        assert!(describes >= 9, "each TTL asked the version: {describes}");
        // A new version is fetched at the next check, and only then.
        service.lock().put("v2", "two", "AWSCURRENT");
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(
            held(&p),
            (
                "two".into(),
                Version {
                    id: "v2".into(),
                    stages: vec!["AWSCURRENT".into()],
                    instead_of: None,
                    leased: false,
                    ends: None,
                }
            )
        );
        assert_eq!(counts(&service).0, 2);
    }

    #[test]
    fn a_rotation_window_is_crossed_with_one_fetch_per_node() {
        let shm = Removed(std::path::PathBuf::from(format!(
            "/dev/shm/st-secrets-rotation-test-{}",
            std::process::id()
        )));
        let dir = Arc::new(NodeDir::open(&shm.0).unwrap());
        let service = Arc::new(Mutex::new(Service::default()));
        service.lock().put("v1", "old", "AWSCURRENT");
        // Two ranks of a node, sharing the node cache.
        let ranks = [
            provider(&service, 40, NodeUse::On(Arc::clone(&dir))),
            provider(&service, 40, NodeUse::On(Arc::clone(&dir))),
        ];
        assert_eq!(held(&ranks[0]).0, "old");
        assert_eq!(held(&ranks[1]).0, "old");
        assert_eq!(counts(&service).0, 1, "one fetch for the node");
        // createSecret + setSecret: a pending version, and the old one fails.
        service.lock().put("v2", "new", "AWSPENDING");
        let (value, version) = report(&ranks[0], "v1");
        assert_eq!(value, "new");
        assert_eq!(
            (version.id.as_str(), version.instead_of.as_deref()),
            ("v2", Some("v1"))
        );
        assert_eq!(version.stages, ["AWSPENDING"]);
        // The other rank's report is answered by the node's entry.
        let (value, version) = report(&ranks[1], "v1");
        assert_eq!((value.as_str(), version.id.as_str()), ("new", "v2"));
        // A rank reporting again the version it no longer holds: no request.
        assert_eq!(report(&ranks[0], "v1").0, "new");
        assert_eq!(counts(&service).0, 2, "one more fetch for the node");
        // Past the TTL, AWSCURRENT still names the failed version: the
        // stand-in is kept, without its value sent again.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(held(&ranks[1]).1.instead_of.as_deref(), Some("v1"));
        // finishSecret: the stand-in is current, held as such.
        {
            let mut s = service.lock();
            s.stage("v2", "AWSCURRENT");
            s.stage("v1", "AWSPREVIOUS");
        }
        std::thread::sleep(Duration::from_millis(50));
        for rank in &ranks {
            let (value, version) = held(rank);
            assert_eq!((value.as_str(), version.id.as_str()), ("new", "v2"));
            assert!(
                version.stages.contains(&"AWSCURRENT".to_owned()),
                "{version:?}"
            );
            assert_eq!(version.instead_of, None);
        }
        assert_eq!(
            counts(&service).0,
            2,
            "the rotation cost one fetch of the value"
        );
        drop(ranks);
    }

    #[test]
    fn reports_are_bounded_per_interval_and_a_failing_stand_in_gives_way() {
        let service = Arc::new(Mutex::new(Service::default()));
        service.lock().put("v1", "old", "AWSCURRENT");
        service.lock().put("v2", "new", "AWSPENDING");
        let p = provider(&service, 60_000, NodeUse::Off);
        assert_eq!(held(&p).0, "old");
        assert_eq!(
            report(&p, "v2").1.id,
            "v1",
            "a version not held: what is held answers"
        );
        assert_eq!(counts(&service), (1, 0), "without a request");
        assert_eq!(report(&p, "v1").1.id, "v2");
        // The stand-in fails too, within the interval: what is held answers.
        assert_eq!(report(&p, "v2").1.id, "v2");
        assert_eq!(counts(&service), (2, 1));
        // After the interval, the version in force comes back.
        let (value, version) = report_within(&p, "v2", Duration::ZERO);
        assert_eq!((value.as_str(), version.instead_of), ("old", None));
        // Nothing beside a failed version in force: it is kept, and said so.
        service.lock().versions.retain(|(id, _, _)| id == "v1");
        let (_, version) = report_within(&p, "v1", Duration::ZERO);
        assert_eq!((version.id.as_str(), version.instead_of), ("v1", None));
        assert_eq!(counts(&service), (3, 3));
    }

    /// A dynamic secrets engine: each issue is a new credential and lease
    /// (`pw-N`, version `lease-N`); a lease held is kept (it has time left).
    struct Leasing(AtomicUsize);

    impl Fetch for Leasing {
        const NAME: &'static str = "vault";
        const ABSENT: &'static str = "absent";
        type Secret = String;

        fn fetch(&self, _name: &String) -> Result<Fetched<SecretMap>, FetchError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Fetched::Found(
                leased(&format!("pw-{n}"), 60_000).with_version(Some(Version {
                    id: format!("lease-{n}"),
                    ..Version::default()
                })),
            ))
        }

        fn fetch_held(
            &self,
            name: &String,
            held: Option<&SecretMap>,
        ) -> Result<Fetched<SecretMap>, FetchError> {
            match held {
                Some(m) if m.lease().is_some() => Ok(Fetched::Found(m.copy())),
                _ => self.fetch(name),
            }
        }

        fn describe(&self, _names: &[String]) -> (String, Vec<String>) {
            (String::new(), Vec::new())
        }

        fn checks(&self, _names: &[String]) -> Value {
            Value::Null
        }
    }

    #[test]
    fn a_leased_credential_reported_failed_is_issued_anew() {
        let s = RemoteSettings {
            cache_ttl: Duration::from_secs(60),
            refresh_min_interval: Duration::from_secs(60),
            ..settings()
        };
        let scope = Scope::new("vault", &crate::secrets::transport::Vars::empty());
        let fetcher = Ok(Leasing(AtomicUsize::new(0)));
        let p = RemoteSource::build(
            vec!["lease:pg".into()],
            true,
            fetcher,
            &s,
            NodeUse::Off,
            &scope,
        );
        let read = |how: Read<'_>| {
            let (value, version) = p.read("PG_PASSWORD", how).unwrap().unwrap();
            (value.expose().to_owned(), version.unwrap().id)
        };
        assert_eq!(read(Read::Cached), ("pw-1".into(), "lease-1".into()));
        // A plain refresh keeps a lease with time left.
        let plain = Read::Fresh {
            min_interval: Duration::ZERO,
            failed: None,
        };
        assert_eq!(read(plain).0, "pw-1");
        // Refused (its role dropped): a new credential, not the lease kept.
        let failed = |v| Read::Fresh {
            min_interval: Duration::ZERO,
            failed: Some(v),
        };
        assert_eq!(read(failed("lease-1")), ("pw-2".into(), "lease-2".into()));
        // Reported again by a caller still on it: the new one, no issue.
        assert_eq!(read(failed("lease-1")).0, "pw-2");
        assert_eq!(p.fetcher().unwrap().0.load(Ordering::SeqCst), 2);
    }
}

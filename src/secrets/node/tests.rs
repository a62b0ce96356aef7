//! The node cache within one test process: two `SecretCache`s sharing a slot
//! stand for two processes (`flock` locks belong to each open file, so two
//! opens of one lock file exclude each other as two processes do). The
//! tool's and the bindings' tests, and `cli/tests/fleet.rs`, use processes.

use super::entry::{decode, encode, Held};
use super::status::{node_cache_clear, node_cache_status};
use super::*;
use crate::error::Error;
use crate::secrets::provider::SecretMap;
use crate::secrets::remote::secret_cache::SecretCache;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh node cache directory on /dev/shm, removed at the end.
struct ShmDir(PathBuf);

impl ShmDir {
    fn new() -> ShmDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = PathBuf::from(format!(
            "/dev/shm/st-secrets-node-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        ShmDir(path)
    }

    fn open(&self) -> Arc<NodeDir> {
        Arc::new(NodeDir::open(&self.0).unwrap())
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings() -> RemoteSettings {
    RemoteSettings {
        cache_ttl: Duration::from_secs(60),
        failure_ttl: Duration::from_secs(60),
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        request_timeout: Duration::from_secs(2),
        ..RemoteSettings::default()
    }
}

fn scope(token: &str) -> Scope {
    Scope::new("test", &Vars::empty().set("VAULT_TOKEN", token))
}

/// A "process": its own cache of secret `name`, shared through `dir`.
fn process(dir: &Arc<NodeDir>, scope: &Scope, s: &RemoteSettings) -> Arc<SecretCache<SecretMap>> {
    SecretCache::scripted_through(s.clone(), Some(scope.slot(dir, "team/secret")))
}

/// Nothing reported failed (every forced fetch but a failure's report).
fn none<T>(_: &Fetched<T>) -> Against {
    Against::Nothing
}

fn map(value: &str) -> SecretMap {
    let mut m = SecretMap::with_capacity(1);
    m.insert("HF_TOKEN".into(), value.into());
    m.skip("nested".into());
    m.with_version(Some(crate::secrets::provider::Version {
        id: "v7".into(),
        stages: vec!["AWSCURRENT".into()],
        instead_of: Some("v6".into()),
        leased: false,
        ends: None,
    }))
}

fn lookup(
    cache: &SecretCache<SecretMap>,
    fetches: &Arc<AtomicUsize>,
    fetch: impl FnOnce() -> Result<Fetched<SecretMap>, FetchError> + 'static,
) -> Result<Option<String>, Error> {
    let fetches = Arc::clone(fetches);
    cache
        .lookup_with("HF_TOKEN", move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            fetch()
        })
        .map(|v| v.map(|v| v.expose().to_owned()))
}

#[test]
fn an_entry_reads_back_whole_and_a_torn_or_foreign_one_not_at_all() {
    let held = Held::Fetched(Fetched::Found(map("hf_value")));
    let bytes = encode("boot-a", 10, 20, &held).unwrap();
    let entry = decode::<SecretMap>("boot-a", bytes.expose()).unwrap();
    let Held::Fetched(Fetched::Found(back)) = &entry.held else {
        panic!("not found");
    };
    assert_eq!(back.resolve("hf-token").unwrap().1.expose(), "hf_value");
    assert!(back.holds_non_secret("nested"));
    assert_eq!(back.version().unwrap().stages, ["AWSCURRENT"]);
    assert_eq!(back.version().unwrap().instead_of.as_deref(), Some("v6"));
    assert_eq!((entry.written, entry.until), (10, 20));
    // Another boot, every truncation, and any flipped byte: refused.
    assert!(decode::<SecretMap>("boot-b", bytes.expose()).is_none());
    let b = bytes.expose();
    for cut in 0..b.len() {
        assert!(decode::<SecretMap>("boot-a", &b[..cut]).is_none(), "{cut}");
    }
    for i in 0..b.len() {
        let mut flipped = b.to_vec();
        flipped[i] ^= 0x20;
        assert!(decode::<SecretMap>("boot-a", &flipped).is_none(), "{i}");
    }
    // A failure keeps its kind, message and transience.
    let failure = FetchError::transient(Error::Timeout("did not answer".into()));
    let bytes = encode::<SecretMap>("boot-a", 1, 2, &Held::Failure(failure.clone())).unwrap();
    match decode::<SecretMap>("boot-a", bytes.expose()).unwrap().held {
        Held::Failure(f) => assert_eq!(f, failure),
        Held::Fetched(_) => panic!("not a failure"),
    }
}

#[test]
fn a_directory_is_refused_unless_private_memory_backed_and_this_users() {
    let shm = ShmDir::new();
    assert!(NodeDir::open(&shm.0).is_ok(), "created 0700");
    let mode = std::fs::metadata(&shm.0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    std::fs::set_permissions(&shm.0, std::fs::Permissions::from_mode(0o750)).unwrap();
    let why = NodeDir::open(&shm.0).unwrap_err();
    assert!(why.contains("open to other users (mode 750"), "{why}");
    std::fs::set_permissions(&shm.0, std::fs::Permissions::from_mode(0o700)).unwrap();

    let link = ShmDir::new();
    std::os::unix::fs::symlink(&shm.0, &link.0).unwrap();
    let why = NodeDir::open(&link.0).unwrap_err();
    assert!(why.contains("is a symbolic link"), "{why}");
    let _ = std::fs::remove_file(&link.0);

    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let why = NodeDir::open(&disk.path().join("node")).unwrap_err();
    assert!(why.contains("not on a memory-backed filesystem"), "{why}");

    let why = NodeDir::open(Path::new("relative/dir")).unwrap_err();
    assert!(why.contains("not an absolute path"), "{why}");

    if sys::effective_uid() == 0 {
        let theirs = ShmDir::new();
        NodeDir::open(&theirs.0).unwrap();
        std::os::unix::fs::chown(&theirs.0, Some(4321), None).unwrap();
        let why = NodeDir::open(&theirs.0).unwrap_err();
        assert!(why.contains("belongs to uid 4321"), "{why}");
    }
}

#[test]
fn a_second_process_reads_what_the_first_fetched_for_the_time_left() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let (first, second) = (
        process(&dir, &scope("t"), &s),
        process(&dir, &scope("t"), &s),
    );
    let fetches = Arc::new(AtomicUsize::new(0));
    let got = lookup(&first, &fetches, || Ok(Fetched::Found(map("hf_value"))));
    assert_eq!(got.unwrap().as_deref(), Some("hf_value"));
    let got = lookup(&second, &fetches, || {
        panic!("the second process must not fetch")
    });
    assert_eq!(got.unwrap().as_deref(), Some("hf_value"));
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!((first.requests(), second.requests()), (1, 0));
    // The entry file is 0600 and holds no other name than its hash.
    let names: Vec<String> = std::fs::read_dir(&shm.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("team")), "{names:?}");
    for n in &names {
        let mode = std::fs::metadata(shm.0.join(n))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{n}");
    }
}

#[test]
fn other_settings_or_credentials_never_share_an_entry() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let fetches = Arc::new(AtomicUsize::new(0));
    let a = process(&dir, &scope("token-a"), &s);
    lookup(&a, &fetches, || Ok(Fetched::Found(map("for_a")))).unwrap();
    let b = process(&dir, &scope("token-b"), &s);
    let got = lookup(&b, &fetches, || Ok(Fetched::Found(map("for_b"))));
    assert_eq!(got.unwrap().as_deref(), Some("for_b"));
    let c = SecretCache::scripted_through(
        s.clone(),
        Some(
            scope("token-a")
                .with("mount", "other")
                .slot(&dir, "team/secret"),
        ),
    );
    let got = lookup(&c, &fetches, || Ok(Fetched::Found(map("for_c"))));
    assert_eq!(got.unwrap().as_deref(), Some("for_c"));
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

#[test]
fn a_failure_is_shared_for_the_failure_ttl() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = || {
        Err(FetchError::transient(Error::Network(
            "connection refused".into(),
        )))
    };
    for _ in 0..5 {
        let rank = process(&dir, &scope("t"), &s);
        let err = lookup(&rank, &fetches, down).unwrap_err();
        assert_eq!(err, Error::Network("connection refused".into()));
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one attempt for five ranks"
    );
}

#[test]
fn ranks_starting_together_send_one_request() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let fetches = Arc::new(AtomicUsize::new(0));
    let ranks: Vec<_> = (0..8)
        .map(|_| {
            let rank = process(&dir, &scope("t"), &s);
            let fetches = Arc::clone(&fetches);
            std::thread::spawn(move || {
                lookup(&rank, &fetches, || {
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(Fetched::Found(map("hf_value")))
                })
                .unwrap()
            })
        })
        .collect();
    for r in ranks {
        assert_eq!(r.join().unwrap().as_deref(), Some("hf_value"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn a_holder_killed_mid_fetch_leaves_the_lock_to_the_next_process() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let slot = scope("t").slot(&dir, "team/secret");
    // util-linux flock(1) holds the secret's lock as a rank mid-fetch would.
    // With -o the lock stays with flock itself, not with its command.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(slot.lock_path())
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let probe = slot.open_lock().unwrap();
    while probe.try_lock().is_ok() {
        probe.unlock().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = holder.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let s = RemoteSettings {
        request_timeout: Duration::from_secs(60),
        ..settings()
    };
    let shared = slot.fetch(&s, Mode::Get, &none, || Ok(Fetched::Found(map("hf_value"))));
    assert!(shared.upstream);
    assert!(!shared.gave_up, "the lock was had, not waited out");
    killer.join().unwrap();
    let _ = holder.wait();
}

#[test]
fn torn_foreign_and_future_entries_are_fetched_again() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let fetches = Arc::new(AtomicUsize::new(0));
    let slot = scope("t").slot(&dir, "team/secret");
    let rank = || process(&dir, &scope("t"), &s);
    lookup(&rank(), &fetches, || Ok(Fetched::Found(map("v1")))).unwrap();
    // Torn: the file cut short.
    let whole = std::fs::read(slot.entry_path()).unwrap();
    std::fs::write(slot.entry_path(), &whole[..whole.len() - 3]).unwrap();
    let got = lookup(&rank(), &fetches, || Ok(Fetched::Found(map("v2"))));
    assert_eq!(got.unwrap().as_deref(), Some("v2"));
    // From another clock (written in this clock's future): not trusted.
    let future = clock::precise() + 3_600_000_000_000;
    let held = Held::Fetched(Fetched::Found(map("from_the_future")));
    let bytes = encode(boot_id(), future, future + 1, &held).unwrap();
    std::fs::write(slot.entry_path(), bytes.expose()).unwrap();
    let got = lookup(&rank(), &fetches, || Ok(Fetched::Found(map("v3"))));
    assert_eq!(got.unwrap().as_deref(), Some("v3"));
    // Owned by another user: never read.
    if sys::effective_uid() == 0 {
        let now = clock::precise();
        let held = Held::Fetched(Fetched::Found(map("someone_elses")));
        let bytes = encode(boot_id(), now, now + 60_000_000_000, &held).unwrap();
        std::fs::write(slot.entry_path(), bytes.expose()).unwrap();
        std::os::unix::fs::chown(slot.entry_path(), Some(4321), None).unwrap();
        let got = lookup(&rank(), &fetches, || Ok(Fetched::Found(map("v4"))));
        assert_eq!(got.unwrap().as_deref(), Some("v4"));
    }
}

#[test]
fn a_background_refresh_refetches_past_the_soft_deadline_once_for_the_node() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = RemoteSettings {
        cache_ttl: Duration::from_millis(400),
        ..settings()
    };
    let slot = scope("t").slot(&dir, "team/secret");
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = |v: &'static str| {
        fetches.fetch_add(1, Ordering::SeqCst);
        Ok(Fetched::Found(map(v)))
    };
    let first = slot.fetch(&s, Mode::Get, &none, || counted("v1"));
    assert!(first.upstream);
    // Before the soft deadline (0.75 of 400 ms) the entry answers a refresh.
    assert!(
        !slot
            .fetch(&s, Mode::Ahead, &none, || counted("v2"))
            .upstream
    );
    std::thread::sleep(Duration::from_millis(320));
    // Past it: the first refresh fetches, the next one reads what it wrote.
    assert!(
        slot.fetch(&s, Mode::Ahead, &none, || counted("v2"))
            .upstream
    );
    let next = slot.fetch(&s, Mode::Ahead, &none, || counted("v3"));
    assert!(!next.upstream);
    assert!(next.remaining.unwrap() > Duration::from_millis(300));
    // A forced fetch always asks.
    assert!(
        slot.fetch(&s, Mode::Force, &none, || counted("v4"))
            .upstream
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

#[test]
fn sweep_removes_expired_entries_and_clear_removes_all() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = RemoteSettings {
        cache_ttl: Duration::from_millis(50),
        ..settings()
    };
    let fetches = Arc::new(AtomicUsize::new(0));
    let short = SecretCache::scripted_through(s, Some(scope("t").slot(&dir, "short")));
    let long = process(&dir, &scope("t"), &settings());
    lookup(&short, &fetches, || Ok(Fetched::Found(map("a")))).unwrap();
    lookup(&long, &fetches, || Ok(Fetched::Found(map("b")))).unwrap();
    let temp = format!(".{}.tmp.tmp.1.2.3", "0".repeat(64));
    std::fs::write(shm.0.join(&temp), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(dir.sweep(false), 1, "the long entry stays");
    assert!(
        shm.0.join(&temp).exists(),
        "a writer's new temporary file stays"
    );
    assert_eq!(dir.sweep(true), 0);
    assert_eq!(std::fs::read_dir(&shm.0).unwrap().count(), 0);
}

#[test]
fn only_what_the_node_cache_made_is_ever_removed() {
    // Round 4, item 10: with node_cache_dir=$XDG_RUNTIME_DIR (which passes
    // every check) a get removed old dot files (.Xauthority, .netrc),
    // `*.entry` and `*.fail` files, and clear every dot file and `*.lock`.
    let shm = ShmDir::new();
    let dir = shm.open();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let foreign = [
        ".Xauthority",
        ".netrc",
        "session.entry",
        "job.fail",
        "pulse.lock",
        &format!("{}.entry", "A".repeat(64)),
        &format!(".{}.tmp", "0".repeat(64)),
    ];
    for name in foreign {
        let f = std::fs::File::create(shm.0.join(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    let fetches = Arc::new(AtomicUsize::new(0));
    let s = RemoteSettings {
        cache_ttl: Duration::from_millis(10),
        ..settings()
    };
    let cache = SecretCache::scripted_through(s, Some(scope("t").slot(&dir, "secret")));
    lookup(&cache, &fetches, || Ok(Fetched::Found(map("a")))).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    // A provider starting (open sweeps), a sweep, and clear.
    drop(shm.open());
    dir.sweep(false);
    dir.sweep(true);
    let mut left: Vec<String> = std::fs::read_dir(&shm.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = foreign.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(left, expected, "the node cache's own files gone, no other");
    // `status` counts only its own entries.
    let vars = Vars::empty()
        .set("SIMPLETUNER_NODE_CACHE", "1")
        .set("SIMPLETUNER_NODE_CACHE_DIR", shm.0.to_str().unwrap());
    let status = node_cache_status(&RemoteSettings::default(), &vars);
    assert_eq!((status.fresh, status.failures, status.expired), (0, 0, 0));
    // Item 18: a relative directory is refused by status and clear alike,
    // created or not.
    let relative = Vars::empty()
        .set("SIMPLETUNER_NODE_CACHE", "1")
        .set("SIMPLETUNER_NODE_CACHE_DIR", "not-created/node");
    let status = node_cache_status(&RemoteSettings::default(), &relative);
    assert!(
        status
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("not an absolute path")),
        "{status:?}"
    );
    assert_eq!(
        node_cache_clear(&RemoteSettings::default(), &relative)
            .unwrap_err()
            .code_name(),
        "ST_PERMISSION"
    );
}

#[test]
fn a_child_forked_mid_fetch_does_not_keep_the_lock() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let slot = scope("t").slot(&dir, "team/secret");
    let mut child = None;
    let shared = slot.fetch(&settings(), Mode::Get, &none, || {
        // A DataLoader worker forked while the lock is held: it inherits
        // the lock file's descriptor and lives on.
        child = Some(sys::fork_lingering(30));
        Ok(Fetched::Found(map("hf_value")))
    });
    assert!(shared.upstream);
    let probe = slot.open_lock().unwrap();
    let free = probe.try_lock().is_ok();
    sys::kill_child(child.unwrap());
    assert!(free, "the lock is free once the fetch is done");
}

#[test]
fn a_failed_refresh_leaves_the_fresh_value_and_the_node_backs_off_together() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = RemoteSettings {
        cache_ttl: Duration::from_millis(400),
        ..settings()
    };
    let slot = scope("t").slot(&dir, "team/secret");
    assert!(
        slot.fetch(&s, Mode::Get, &none, || Ok(Fetched::Found(map("v1"))))
            .upstream
    );
    std::thread::sleep(Duration::from_millis(320));
    let down = || Err(FetchError::transient(Error::Network("down".into())));
    let refresh = slot.fetch::<SecretMap>(&s, Mode::Ahead, &none, down);
    assert!(refresh.upstream && refresh.outcome.is_err());
    // A get still finds the value (the failure is beside it, not over it).
    let got = slot.fetch::<SecretMap>(&s, Mode::Get, &none, || {
        panic!("no fetch: the value is fresh")
    });
    let Ok(Fetched::Found(m)) = got.outcome else {
        panic!("the value, not the failure");
    };
    assert_eq!(m.resolve("HF_TOKEN").unwrap().1.expose(), "v1");
    // Another process's refresh past the soft deadline backs off with the
    // node while the failure is recent.
    let next = slot.fetch::<SecretMap>(&s, Mode::Ahead, &none, || panic!("the node backs off"));
    assert!(!next.upstream);
    // Once the value has expired, a get answers the failure for its TTL.
    std::thread::sleep(Duration::from_millis(100));
    let failed = slot.fetch::<SecretMap>(&s, Mode::Get, &none, || panic!("the failure answers"));
    assert!(matches!(failed.outcome, Err(f) if f.error == Error::Network("down".into())));
    // A success clears the failure.
    assert!(
        slot.fetch(&s, Mode::Force, &none, || Ok(Fetched::Found(map("v2"))))
            .upstream
    );
    assert!(!slot.fail_path().exists());
}

#[test]
fn forced_fetches_of_a_node_send_one_request_together_and_never_reuse_the_old_value() {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let slot = Arc::new(scope("t").slot(&dir, "team/secret"));
    assert!(
        slot.fetch(&s, Mode::Get, &none, || Ok(Fetched::Found(map("refused"))))
            .upstream
    );
    // Eight ranks whose credential was refused force a fetch at once.
    // (The fetch takes long enough for all of them to have asked.)
    let fetches = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(std::sync::Barrier::new(8));
    let ranks: Vec<_> = (0..8)
        .map(|_| {
            let (slot, fetches, s) = (Arc::clone(&slot), Arc::clone(&fetches), s.clone());
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let got = slot.fetch(&s, Mode::Force, &none, || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(500));
                    Ok(Fetched::Found(map("rotated")))
                });
                match got.outcome {
                    Ok(Fetched::Found(m)) => m.resolve("HF_TOKEN").unwrap().1.expose().to_owned(),
                    _ => panic!("a value"),
                }
            })
        })
        .collect();
    for r in ranks {
        assert_eq!(r.join().unwrap(), "rotated");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

/// A report of version `failed`: what a value is against it.
fn against(failed: &'static str) -> impl Fn(&Fetched<SecretMap>) -> Against {
    move |v| {
        let held = match v {
            Fetched::Found(m) => m.version().map(|v| v.id.as_str()),
            Fetched::Absent => None,
        };
        Against::of(Some(failed), held)
    }
}

/// [`map`] of version `id`.
fn of_version(value: &str, id: &str) -> SecretMap {
    map(value).with_version(Some(crate::secrets::provider::Version {
        id: id.into(),
        stages: vec!["AWSCURRENT".into()],
        instead_of: None,
        leased: false,
        ends: None,
    }))
}

/// A process's report of `v1` waiting for the node's lock while the holder
/// writes `written`: what the report answers, and whether it fetched.
fn report_while_written(written: SecretMap) -> (String, bool) {
    let shm = ShmDir::new();
    let dir = shm.open();
    let s = settings();
    let slot = Arc::new(scope("t").slot(&dir, "team/secret"));
    let held = slot.open_lock().unwrap();
    held.lock().unwrap();
    let reporter = {
        let (slot, s) = (Arc::clone(&slot), s.clone());
        std::thread::spawn(move || {
            let got = slot.fetch(&s, Mode::Force, &against("v1"), || {
                Ok(Fetched::Found(of_version("pending", "v2")))
            });
            let Ok(Fetched::Found(m)) = got.outcome else {
                panic!("a value");
            };
            let value = m.resolve("HF_TOKEN").unwrap().1.expose().to_owned();
            (value, got.upstream)
        })
    };
    // The holder: another process's refresh that began before the failure.
    std::thread::sleep(Duration::from_millis(100));
    slot.write(&s, &Ok(Fetched::Found(written)));
    std::thread::sleep(Duration::from_millis(100));
    held.unlock().unwrap();
    reporter.join().unwrap()
}

#[test]
fn a_report_waiting_for_the_lock_takes_another_version_never_the_failed_one() {
    // The refresh kept the failed version: the report checks for itself.
    assert_eq!(
        report_while_written(of_version("old", "v1")),
        ("pending".into(), true)
    );
    // Another process's report found the stand-in: it answers this one.
    assert_eq!(
        report_while_written(of_version("pending", "v2")),
        ("pending".into(), false)
    );
}

#[test]
fn the_setting_the_variable_and_a_refused_directory() {
    let shm = ShmDir::new();
    let dir = shm.0.to_str().unwrap();
    let on = Vars::empty()
        .set("SIMPLETUNER_NODE_CACHE", "1")
        .set("SIMPLETUNER_NODE_CACHE_DIR", dir);
    let remote = RemoteSettings::default();
    assert!(matches!(NodeUse::resolve(&remote, &on), NodeUse::On(_)));
    assert!(matches!(
        NodeUse::resolve(&remote, &Vars::empty()),
        NodeUse::Off
    ));
    let off = RemoteSettings {
        node_cache: Some(false),
        ..RemoteSettings::default()
    };
    assert!(matches!(NodeUse::resolve(&off, &on), NodeUse::Off));
    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let refused = RemoteSettings {
        node_cache: Some(true),
        node_cache_dir: Some(disk.path().join("node")),
        ..RemoteSettings::default()
    };
    match NodeUse::resolve(&refused, &Vars::empty()) {
        NodeUse::Refused(why) => assert!(why.contains("not on a memory-backed"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        default_dir(Some("/run/user/1000")),
        Path::new("/run/user/1000/st-secrets-node")
    );
    let uid = format!("/dev/shm/st-secrets-node-{}", sys::effective_uid());
    assert_eq!(default_dir(None), Path::new(&uid));
    assert_eq!(default_dir(Some("relative")), Path::new(&uid));
}

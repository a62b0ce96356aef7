use super::*;
use crate::secrets::FileSettings;
use crate::sys::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;

/// A test double for a remote provider: counts lookups and invalidations;
/// answers from a table or fails.
struct Remote {
    name: &'static str,
    calls: AtomicUsize,
    invalidations: AtomicUsize,
    answer: Mutex<Result<Option<&'static str>, Error>>,
}

impl Remote {
    fn new(name: &'static str, answer: Result<Option<&'static str>, Error>) -> Arc<Remote> {
        Arc::new(Remote {
            name,
            calls: AtomicUsize::new(0),
            invalidations: AtomicUsize::new(0),
            answer: Mutex::with_fresh(answer, || Ok(None)),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Provider for Remote {
    fn name(&self) -> &'static str {
        self.name
    }
    fn lookup(&self, _key: &str) -> Result<Option<SecretString>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer
            .lock()
            .clone()
            .map(|v| v.map(SecretString::from))
    }
    fn invalidate(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }
    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            name: self.name,
            available: true,
            detail: "test double".into(),
            warnings: vec![],
            failure: None,
        }
    }
}

fn file_manager(dir: &TempDir, prefix: &str) -> SecretsManager {
    SecretsManager::new(ManagerConfig {
        env_prefix: Some(prefix.into()),
        file: FileSettings {
            path: Some(dir.path().join("secrets.json")),
            ..Default::default()
        },
        ..ManagerConfig::default()
    })
    .unwrap()
}

fn value(m: &SecretsManager, key: &str) -> Option<String> {
    m.get(key).unwrap().map(|v| v.expose().to_owned())
}

#[test]
fn env_wins_over_file_live_and_empty_counts_as_unset() {
    let dir = TempDir::new().unwrap();
    let m = file_manager(&dir, "ST_UNIT_MGR1");
    m.set("HF_TOKEN", "from-file").unwrap();
    assert_eq!(
        m.get_with_source("hf-token")
            .unwrap()
            .map(|(v, s)| (v.expose().to_owned(), s)),
        Some(("from-file".to_owned(), "file"))
    );
    std::env::set_var("ST_UNIT_MGR1_HF_TOKEN", "from-env");
    assert_eq!(value(&m, "HF_TOKEN").as_deref(), Some("from-env"));
    std::env::set_var("ST_UNIT_MGR1_HF_TOKEN", "");
    assert_eq!(value(&m, "HF_TOKEN").as_deref(), Some("from-file"));
    std::env::remove_var("ST_UNIT_MGR1_HF_TOKEN");
    m.set("HF_TOKEN", "changed").unwrap();
    assert_eq!(
        value(&m, "HF_TOKEN").as_deref(),
        Some("changed"),
        "a get right after a set"
    );
    assert!(m.delete("HF_TOKEN").unwrap());
    assert!(!m.delete("HF_TOKEN").unwrap());
    assert_eq!(value(&m, "HF_TOKEN"), None);
    assert!(matches!(m.get(""), Err(Error::InvalidArgument(_))));
}

#[test]
fn absent_versus_failed() {
    let ok = Remote::new("ok", Ok(None));
    let broken = Remote::new("broken", Err(Error::Auth("token rejected".into())));
    let later = Remote::new("later", Err(Error::Timeout("slow".into())));
    let m = SecretsManager::with_providers(
        ManagerConfig::default(),
        vec![ok.clone(), broken.clone(), later.clone()],
    );
    let e = m.get("K").unwrap_err();
    assert_eq!(
        e,
        Error::Auth("provider 'broken': token rejected".into()),
        "the first failure"
    );
    let chain = m.providers();
    assert_eq!(
        chain[1].last_error,
        Some(Error::Auth("token rejected".into()))
    );
    assert_eq!(chain[0].last_error, None);
    let json: serde_json::Value = serde_json::from_str(&m.providers_json()).unwrap();
    assert_eq!(json[1]["last_error"]["code"], "ST_AUTH");
    assert_eq!(json[0]["last_error"], serde_json::Value::Null);

    // A later provider that has the key answers despite the failure before it.
    *later.answer.lock() = Ok(Some("v"));
    m.clear_cache();
    assert_eq!(value(&m, "K").as_deref(), Some("v"));
    // Recovery clears the recorded failure.
    *broken.answer.lock() = Ok(None);
    m.get("K").unwrap();
    assert_eq!(m.providers()[1].last_error, None);

    // Every provider absent: Ok(None).
    *later.answer.lock() = Ok(None);
    m.clear_cache();
    assert_eq!(m.get("K").unwrap(), None);
}

#[test]
fn the_manager_caches_nothing_and_clear_cache_invalidates_every_provider() {
    // A provider caches itself or not at all: the manager asks it on every
    // get, and passes clear_cache on as invalidate.
    let r = Remote::new("remote", Ok(Some("v")));
    let m = SecretsManager::with_providers(ManagerConfig::default(), vec![r.clone()]);
    for _ in 0..5 {
        assert_eq!(value(&m, "K").as_deref(), Some("v"));
    }
    assert_eq!(r.calls(), 5, "every get reaches the provider");
    m.clear_cache();
    assert_eq!(r.invalidations.load(Ordering::SeqCst), 1);

    *r.answer.lock() = Err(Error::Network("down".into()));
    assert!(m.get("OTHER").is_err());
    assert!(m.get("OTHER").is_err());
    assert_eq!(r.calls(), 7, "failures are not cached either");
}

#[test]
fn saving_needs_a_file_provider_and_trace_reports_lengths() {
    let r = Remote::new("remote", Ok(Some("12345")));
    let m = SecretsManager::with_providers(ManagerConfig::default(), vec![r]);
    assert!(matches!(
        m.set("K", "v"),
        Err(Error::ProviderUnavailable(_))
    ));
    assert!(matches!(m.delete("K"), Err(Error::ProviderUnavailable(_))));
    let trace = m.trace("K").unwrap();
    assert_eq!(trace[0].outcome, Ok(Some(5)));
}

#[test]
fn a_malformed_file_is_a_failure_not_an_absence() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("secrets.json"), "{not json").unwrap();
    let m = file_manager(&dir, "ST_UNIT_MGR2");
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(
        matches!(&e, Error::Parse(msg) if msg.starts_with("provider 'file': ")),
        "{e:?}"
    );
    // The environment still answers.
    std::env::set_var("ST_UNIT_MGR2_HF_TOKEN", "env-value");
    assert_eq!(value(&m, "HF_TOKEN").as_deref(), Some("env-value"));
    std::env::remove_var("ST_UNIT_MGR2_HF_TOKEN");
}

#[test]
fn configured_chain_and_debug_output() {
    let dir = TempDir::new().unwrap();
    let m = SecretsManager::new(ManagerConfig {
        providers: vec![ProviderKind::File],
        env_prefix: Some("ST_UNIT_MGR3".into()),
        file: FileSettings {
            path: Some(dir.path().join("s.json")),
            ..Default::default()
        },
        ..ManagerConfig::default()
    })
    .unwrap();
    std::env::set_var("ST_UNIT_MGR3_K", "env");
    assert_eq!(value(&m, "K"), None, "env is not in this chain");
    std::env::remove_var("ST_UNIT_MGR3_K");
    m.set("K", "hidden-value").unwrap();
    let shown = format!("{m:?}");
    assert!(
        shown.contains("file") && !shown.contains("hidden-value"),
        "{shown}"
    );
    assert_eq!(m.providers().len(), 1);
    assert_eq!(m.file_path(), Some(dir.path().join("s.json")));
}

/// A remote-like provider that lists keys (or fails to) and holds nothing.
struct Listing(Result<Vec<&'static str>, Error>);

impl Provider for Listing {
    fn name(&self) -> &'static str {
        "remote"
    }
    fn lookup(&self, _key: &str) -> Result<Option<SecretString>, Error> {
        Ok(None)
    }
    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            name: "remote",
            available: true,
            detail: String::new(),
            warnings: vec![],
            failure: None,
        }
    }
    fn keys(&self) -> Result<Vec<String>, Error> {
        self.0
            .clone()
            .map(|keys| keys.into_iter().map(String::from).collect())
    }
}

#[test]
fn keys_lists_each_key_once_for_the_first_provider_holding_it() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("secrets.json"),
        r#"{"hf-token": "a", "B": "b", "NESTED": {"x": "y"}, "NULL": null}"#,
    )
    .unwrap();
    let config = ManagerConfig {
        file: FileSettings {
            path: Some(dir.path().join("secrets.json")),
            ..Default::default()
        },
        ..ManagerConfig::default()
    };
    let file: Arc<dyn Provider> = Arc::new(FileProvider::from_settings(&config.file));
    let env: Arc<dyn Provider> = Arc::new(EnvProvider::new(None));
    let remote: Arc<dyn Provider> = Arc::new(Listing(Ok(vec!["HF_TOKEN", "C"])));
    let m = SecretsManager::with_providers(config.clone(), vec![env, Arc::clone(&file), remote]);
    let keys: Vec<(String, &str)> = m.keys().unwrap();
    let expected = [("B", "file"), ("hf-token", "file"), ("C", "remote")];
    assert_eq!(
        keys,
        expected.map(|(k, p)| (k.to_owned(), p)).to_vec(),
        "HF_TOKEN normalizes like hf-token: listed once, for the file"
    );
    assert_eq!(m.non_secret_holder("NESTED"), Some("file"));
    assert_eq!(m.non_secret_holder("nested"), Some("file"), "normalized");
    assert_eq!(m.non_secret_holder("NULL"), Some("file"));
    assert_eq!(m.non_secret_holder("B"), None);

    let down: Arc<dyn Provider> = Arc::new(Listing(Err(Error::Network("refused".into()))));
    let m = SecretsManager::with_providers(config, vec![file, down]);
    assert!(
        matches!(m.keys(), Err(Error::Network(msg)) if msg == "provider 'remote': refused"),
        "an incomplete list is an error naming the provider"
    );
}

#[test]
fn a_nul_byte_in_a_key_or_value_is_refused_by_argument() {
    // Issue 43, item 18: a binding that passes C strings cut "user\0admin"
    // at the NUL and saved it as "user"; the core refuses it for all of them.
    let dir = TempDir::new().unwrap();
    let m = file_manager(&dir, "ST_NUL_TEST");
    let named = |r: Result<(), Error>, arg: &str| match r {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains(&format!("'{arg}'")), "{msg}"),
        other => panic!("{other:?}"),
    };
    named(m.set("user\0admin", "v"), "key");
    named(m.set("user", "a\0b"), "value");
    named(m.get("user\0admin").map(|_| ()), "key");
    named(m.delete("user\0admin").map(|_| ()), "key");
    let file = m.file_provider().unwrap();
    named(file.save("user\0admin", "v"), "key");
    assert!(!m.file_path().unwrap().exists(), "nothing was saved");
}

/// Collects the events a listener is told, for the tests below.
fn listen(m: &SecretsManager) -> (u64, std::sync::mpsc::Receiver<ChangeEvent>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let id = m.on_change(move |e| {
        let _ = tx.lock().unwrap().send(e.clone());
    });
    (id, rx)
}

fn keys_of(events: &[ChangeEvent]) -> Vec<(String, bool)> {
    events.iter().map(|e| (e.key.clone(), e.removed)).collect()
}

#[test]
fn a_saved_or_rewritten_file_tells_the_keys_that_changed_and_only_those() {
    let dir = TempDir::new().unwrap();
    let m = file_manager(&dir, "ST_UNIT_EV1");
    m.set("HF_TOKEN", "one").unwrap();
    m.set("KEEP", "same").unwrap();
    let (id, rx) = listen(&m);
    m.set("HF_TOKEN", "two").unwrap();
    m.set("NEW_KEY", "x").unwrap();
    m.delete("NEW_KEY").unwrap();
    let events: Vec<ChangeEvent> = rx.try_iter().collect();
    assert_eq!(
        keys_of(&events),
        [
            ("HF_TOKEN".to_owned(), false),
            ("NEW_KEY".to_owned(), false),
            ("NEW_KEY".to_owned(), true)
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.provider == "file" && e.version.is_none()));
    // Another process rewrites the file: seen at the next re-read.
    std::fs::write(
        dir.path().join("secrets.json"),
        r#"{"HF_TOKEN": "three", "KEEP": "same"}"#,
    )
    .unwrap();
    m.clear_cache();
    assert_eq!(value(&m, "HF_TOKEN").as_deref(), Some("three"));
    let events: Vec<ChangeEvent> = rx.try_iter().collect();
    assert_eq!(keys_of(&events), [("HF_TOKEN".to_owned(), false)]);
    // The environment hides the file's key: its change is not told.
    std::env::set_var("ST_UNIT_EV1_HF_TOKEN", "from-env");
    m.set("HF_TOKEN", "four").unwrap();
    std::env::remove_var("ST_UNIT_EV1_HF_TOKEN");
    assert_eq!(rx.try_iter().count(), 0);
    // Removed: nothing more.
    assert!(m.remove_listener(id));
    assert!(!m.remove_listener(id));
    m.set("HF_TOKEN", "five").unwrap();
    assert!(rx.try_recv().is_err());
}

#[test]
fn the_watch_tells_a_change_without_any_get_and_stops_with_the_manager() {
    let dir = TempDir::new().unwrap();
    let m = file_manager(&dir, "ST_UNIT_EV2");
    m.set("HF_TOKEN", "one").unwrap();
    let (_, rx) = listen(&m);
    let listener_gone = Arc::new(());
    let held = Arc::clone(&listener_gone);
    m.on_change(move |_| {
        let _ = &held;
    });
    // Written by someone else; this process never gets again.
    let other = FileProvider::new(FileLocation::Configured(dir.path().join("secrets.json")));
    other.save("HF_TOKEN", "two").unwrap();
    let event = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the watch told the change");
    assert_eq!((event.key.as_str(), event.provider), ("HF_TOKEN", "file"));
    assert_eq!(Arc::strong_count(&listener_gone), 2);
    drop(m);
    // The manager dropped its listeners (a job may hold them a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while Arc::strong_count(&listener_gone) > 1 {
        assert!(std::time::Instant::now() < deadline, "listener kept");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_listener_may_call_the_manager_and_a_panicking_one_harms_no_other() {
    let dir = TempDir::new().unwrap();
    let m = Arc::new(file_manager(&dir, "ST_UNIT_EV3"));
    m.set("HF_TOKEN", "one").unwrap();
    m.on_change(|_| panic!("a listener's bug"));
    let weak = Arc::downgrade(&m);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    m.on_change(move |e| {
        // Calls back into the manager: no lock of the library is held.
        let m = weak.upgrade().unwrap();
        let now = m.get(&e.key).unwrap().map(|v| v.expose().to_owned());
        let _ = tx.lock().unwrap().send(now);
    });
    m.set("HF_TOKEN", "two").unwrap();
    assert_eq!(rx.try_recv().unwrap().as_deref(), Some("two"));
}

#[test]
fn held_values_are_every_providers_value_of_every_key_and_gets_are_remembered() {
    let _registry = crate::redact::TEST_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new().unwrap();
    let m = file_manager(&dir, "ST_UNIT_HELD");
    m.set("HF_TOKEN", "hf_held_in_the_file_0001").unwrap();
    m.set("OTHER", "other_value_in_the_file").unwrap();
    std::env::set_var("ST_UNIT_HELD_HF_TOKEN", "hf_held_in_the_environment");
    let held: Vec<(String, String)> = m
        .held_values()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect();
    for pair in [
        ("HF_TOKEN", "hf_held_in_the_environment"),
        ("HF_TOKEN", "hf_held_in_the_file_0001"),
        ("OTHER", "other_value_in_the_file"),
    ] {
        assert!(
            held.contains(&(pair.0.to_owned(), pair.1.to_owned())),
            "{} missing",
            pair.0
        );
    }
    assert_eq!(held.len(), 3, "each value once");
    // Holding is not serving; a get is remembered for redaction.
    let text = b"x other_value_in_the_file y";
    assert_eq!(crate::redact::redact(text, &[]), None);
    assert_eq!(
        value(&m, "OTHER").as_deref(),
        Some("other_value_in_the_file")
    );
    assert_eq!(
        crate::redact::redact(text, &[]).as_deref(),
        Some(&b"x <concealed by st-secrets> y"[..])
    );
    std::env::remove_var("ST_UNIT_HELD_HF_TOKEN");
}

/// A provider answering from a table (any key not in it: absent), as a
/// remote one would.
struct Table(&'static str, Vec<(&'static str, &'static str)>);

impl Provider for Table {
    fn name(&self) -> &'static str {
        self.0
    }
    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        Ok(self
            .1
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| SecretString::from(*v)))
    }
    fn status(&self) -> ProviderStatus {
        Remote::new(self.0, Ok(None)).status()
    }
}

/// A manager over env (prefix `prefix`), a secrets file holding `file`
/// (JSON, or YAML when `yaml`), and a remote table.
fn chain(
    dir: &TempDir,
    prefix: &str,
    file: &str,
    yaml: bool,
    remote: Vec<(&'static str, &'static str)>,
    references: bool,
) -> SecretsManager {
    let path = dir
        .path()
        .join(if yaml { "secrets.yaml" } else { "secrets.json" });
    std::fs::write(&path, file).unwrap();
    let config = ManagerConfig {
        env_prefix: Some(prefix.into()),
        references,
        ..ManagerConfig::default()
    };
    let file = Arc::new(FileProvider::from_settings(&FileSettings {
        path: Some(path),
        ..Default::default()
    }));
    SecretsManager::with_providers(
        config,
        vec![
            Arc::new(EnvProvider::new(Some(prefix.into()))),
            file,
            Arc::new(Table("aws", remote)),
        ],
    )
}

#[test]
fn references_resolve_down_the_chain_and_never_up_or_in_a_loop() {
    let dir = TempDir::new().unwrap();
    let p = "ST_UNIT_REF";
    let m = chain(
        &dir,
        p,
        r#"{"hf-token": "hf_from_the_file", "wandb": "st://wandb-prod", "loop": "st://LOOP", "own": "st://hf-token"}"#,
        false,
        vec![
            ("wandb-prod", "wandb_from_aws"),
            ("LOOP", "loop_end_in_aws"),
        ],
        true,
    );
    std::env::set_var("ST_UNIT_REF_HF_TOKEN", "st://hf-token");
    std::env::set_var("ST_UNIT_REF_W", "st://wandb");
    std::env::set_var("ST_UNIT_REF_LOOP", "st://loop");
    std::env::set_var("ST_UNIT_REF_ONLY_ENV", "st://ENV_TARGET");
    std::env::set_var("ST_UNIT_REF_ENV_TARGET", "in_the_environment_only");
    // env -> file; the provider named is the one holding the value.
    let (v, provider) = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    assert_eq!((v.expose(), provider), ("hf_from_the_file", "file"));
    // env -> file -> aws, two hops.
    let (v, provider) = m.get_with_source("w").unwrap().unwrap();
    assert_eq!((v.expose(), provider), ("wandb_from_aws", "aws"));
    // A file reference to a key it holds itself is looked up after it.
    let e = m.get("own").unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(msg) if msg.contains("'own' in provider 'file' is the reference st://hf-token") && msg.contains("(aws;")),
        "{e}"
    );
    // env LOOP -> file loop -> aws LOOP: down the chain, never back.
    assert_eq!(value(&m, "LOOP").as_deref(), Some("loop_end_in_aws"));
    // The environment is not asked for its own reference.
    let e = m.get("ONLY_ENV").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(e.to_string().contains("'ONLY_ENV' in provider 'env' is the reference st://ENV_TARGET, which no provider after 'env' holds (file, aws;"), "{e}");
    assert!(!e.to_string().contains("in_the_environment_only"));
    // Versions and refresh follow the reference too.
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider),
        ("hf_from_the_file", "file")
    );
    let refreshed = m.refresh("HF_TOKEN").unwrap().unwrap();
    assert_eq!(refreshed.found.value.expose(), "hf_from_the_file");
    assert!(
        !refreshed.changed,
        "the value held before is the resolved one"
    );
    // A reference held outside the manager's reading (run's inherited
    // variables): the same rules, from the named provider on.
    let v = m.resolve_reference("env", "hf-token").unwrap().unwrap();
    assert_eq!(v.expose(), "hf_from_the_file");
    assert!(m.resolve_reference("env", "ENV_TARGET").unwrap().is_none());
    let v = m
        .resolve_reference("no-such-provider", "ENV_TARGET")
        .unwrap()
        .unwrap();
    assert_eq!(v.expose(), "in_the_environment_only");
    assert!(m.resolve_reference("env", "").is_err());
    // A reference is not a held secret; what it resolves to is.
    let held = m.held_values().unwrap();
    assert!(held.iter().all(|(_, v)| !v.expose().starts_with("st://")));
    for name in ["HF_TOKEN", "W", "LOOP", "ONLY_ENV", "ENV_TARGET"] {
        std::env::remove_var(format!("ST_UNIT_REF_{name}"));
    }
}

#[test]
fn malformed_references_remote_values_and_references_off() {
    let dir = TempDir::new().unwrap();
    let yaml = "token: st://remote-token\nbad: \"st://has space\"\nempty: \"st://\"\n";
    let remote = vec![("remote-token", "from_aws"), ("chained", "st://token")];
    let m = chain(&dir, "ST_UNIT_REF2", yaml, true, remote.clone(), true);
    // A reference in a YAML secrets file.
    assert_eq!(value(&m, "token").as_deref(), Some("from_aws"));
    for key in ["bad", "empty"] {
        let e = m.get(key).unwrap_err();
        assert_eq!(e.code_name(), "ST_PARSE", "{e}");
        assert!(e
            .to_string()
            .contains(&format!("'{key}' in provider 'file' starts with st://")));
        assert!(!e.to_string().contains("has space"), "{e}");
    }
    // A remote secret's value is a value, whatever it looks like.
    assert_eq!(value(&m, "chained").as_deref(), Some("st://token"));
    // Off: every value as it is, as SimpleTuner returns it.
    let off = chain(&dir, "ST_UNIT_REF2", yaml, true, remote, false);
    assert_eq!(value(&off, "token").as_deref(), Some("st://remote-token"));
    assert_eq!(value(&off, "bad").as_deref(), Some("st://has space"));
    let config = ManagerConfig::from_json(r#"{"references": false}"#).unwrap();
    assert!(!config.references && ManagerConfig::default().references);
    assert!(ManagerConfig::from_json(r#"{"references": 1}"#).is_err());
}

#[test]
fn reference_errors_escape_the_keys_they_name() {
    // Round 4, item 13: a reference's key with ESC or bidi characters
    // appeared raw in the library's error messages.
    let dir = TempDir::new().unwrap();
    let doc =
        r#"{"esc\u001b]0;title\u0007": "st://tar\u202eget\u001b[2J", "bad\u001b[1m": "st://"}"#;
    let m = chain(&dir, "ST_UNIT_REF4", doc, false, vec![], true);
    let e = m.get("esc\u{1b}]0;title\u{7}").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    let text = e.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(
        text.contains("'esc\\u{1b}]0;title\\u{7}' in provider 'file' is the reference st://tar\\u{202e}get\\u{1b}[2J"),
        "{text}"
    );
    let e = m.get("bad\u{1b}[1m").unwrap_err();
    assert_eq!(e.code_name(), "ST_PARSE");
    assert!(e.to_string().contains("'bad\\u{1b}[1m'"), "{e}");
}

#[test]
fn a_reference_to_a_failing_provider_names_both() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(&path, "{").unwrap();
    let config = ManagerConfig {
        env_prefix: Some("ST_UNIT_REF3".into()),
        ..ManagerConfig::default()
    };
    let m = SecretsManager::with_providers(
        config,
        vec![
            Arc::new(EnvProvider::new(Some("ST_UNIT_REF3".into()))),
            Arc::new(FileProvider::from_settings(&FileSettings {
                path: Some(path),
                ..Default::default()
            })),
        ],
    );
    std::env::set_var("ST_UNIT_REF3_K", "st://target");
    let e = m.get("K").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("'K' in provider 'env' is the reference st://target: provider 'file'"),
        "{text}"
    );
    std::env::remove_var("ST_UNIT_REF3_K");
}

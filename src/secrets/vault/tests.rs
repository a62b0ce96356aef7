//! The Vault provider against the loopback fake server, only for what no
//! real server here does on demand: a server without the mounts endpoint
//! (older Vaults, RustyVault), 5xx answers, answers that are not Vault's
//! JSON, and where each setting is read from (the fake records the requests).
//! Everything else is tested against OpenBao in `tests/vault_openbao.rs`.

use super::*;
use crate::secret::SecretString;
use crate::secrets::config::ManagerConfig;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply};
use crate::secrets::{RemoteSettings, VaultSettings};
use std::time::Duration;

const TOKEN: &str = "hvs.CAESIJtoken-for-tests";
const FIELDS: &str = r#"{"HF_TOKEN": "hf_from_vault", "REPLICATE_API_TOKEN": "r8_from_vault"}"#;

fn config(url: &str) -> ManagerConfig {
    ManagerConfig {
        remote: RemoteSettings {
            request_timeout: Duration::from_millis(500),
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(4),
            failure_ttl: Duration::ZERO,
            ..RemoteSettings::default()
        },
        vault: VaultSettings {
            url: Some(url.into()),
            token: Some(SecretString::from(TOKEN)),
            ..Default::default()
        },
        ..ManagerConfig::default()
    }
}

/// The provider built from `c`'s Vault and remote settings.
fn provider(c: &ManagerConfig, vars: Vars) -> VaultProvider {
    VaultProvider::new(&c.vault, &c.remote, vars)
}

fn get(p: &VaultProvider, key: &str) -> Result<Option<String>, Error> {
    p.lookup(key).map(|v| v.map(|v| v.expose().to_owned()))
}

fn v1_answer() -> Reply {
    Reply::json(
        200,
        format!(r#"{{"data": {FIELDS}, "lease_duration": 2764800}}"#),
    )
}

/// A KV v1 server (no mounts endpoint, no KV v2 path) answering its n-th
/// secret read (from 0) with `answer(n)`, and the reads counted so far.
fn kv1_server(
    answer: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (FakeServer, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let reads = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&reads);
    let server = FakeServer::start(move |r| {
        if r.path.starts_with("/v1/sys/") || r.path.contains("/data/") {
            return Reply::json(404, r#"{"errors": []}"#);
        }
        answer(counted.fetch_add(1, SeqCst))
    });
    (server, reads)
}

/// A manager whose chain is the Vault provider of `c` alone.
fn vault_manager(c: &ManagerConfig) -> crate::secrets::SecretsManager {
    crate::secrets::SecretsManager::with_providers(
        c.clone(),
        vec![std::sync::Arc::new(provider(c, Vars::empty()))],
    )
}

#[test]
fn without_the_mounts_endpoint_v2_then_v1_and_the_answer_is_remembered() {
    let server = FakeServer::start(move |r| match r.path.as_str() {
        "/v1/sys/internal/ui/mounts/kv" => Reply::json(403, r#"{"errors": ["permission denied"]}"#),
        "/v1/kv/ml/keys" => v1_answer(),
        _ => Reply::json(404, r#"{"errors": []}"#),
    });
    let mut c = config(&server.url());
    c.vault.mount = Some("kv".into());
    c.vault.paths = Some(vec!["ml/keys".into()]);
    c.remote.cache_ttl = Duration::ZERO;
    let p = provider(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/sys/internal/ui/mounts/kv",
            "/v1/kv/data/ml/keys",
            "/v1/kv/ml/keys",
            "/v1/kv/ml/keys"
        ]
    );
    assert!(p.status().detail.contains("KV v1 (probe)"));
}

#[test]
fn status_classes_and_error_bodies() {
    let cases: [(Reply, &str, &str); 4] = [
        (
            Reply::json(403, r#"{"errors": ["permission denied"]}"#),
            "ST_AUTH",
            "permission denied",
        ),
        (
            Reply::json(503, r#"{"errors": ["Vault is sealed"]}"#),
            "ST_PROVIDER_UNAVAILABLE",
            "Vault is sealed",
        ),
        (
            Reply::json(500, r#"{"errors": ["internal error", "second"]}"#),
            "ST_REMOTE",
            "internal error; second",
        ),
        (
            Reply::json(400, r#"{"errors": ["bad request"]}"#),
            "ST_REMOTE",
            "bad request",
        ),
    ];
    for (reply, code, text) in cases {
        let Reply::Status(status, headers, body) = reply else {
            unreachable!()
        };
        let server =
            FakeServer::start(move |_| Reply::Status(status, headers.clone(), body.clone()));
        let mut c = config(&server.url());
        c.vault.kv_version = Some(2);
        let p = provider(&c, Vars::empty());
        let e = get(&p, "HF_TOKEN").unwrap_err();
        assert_eq!(e.code_name(), code, "{e}");
        assert!(e.message().contains(text), "{e}");
        assert!(!e.message().contains(TOKEN));
        let expected = if matches!(status, 500 | 503) { 3 } else { 1 };
        assert_eq!(server.requests(), expected, "HTTP {status}: retries");
    }
}

#[test]
fn configuration_sources() {
    // Not configured: absent without a request; a URL without auth: unavailable.
    let p = provider(&ManagerConfig::default(), Vars::empty());
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);
    assert!(!p.status().available && p.status().detail.contains("VAULT_ADDR"));
    assert!(p.diagnose().is_none());
    let p = provider(
        &ManagerConfig::default(),
        Vars::empty().set("VAULT_ADDR", "http://127.0.0.1:9"),
    );
    assert!(!p.status().available && p.status().detail.contains("authenticate"));
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);
    // Set up in part: a "not found" names it, with the identity logins and
    // the role that shows one was meant; nothing set: nothing named.
    let why = p
        .set_up_in_part()
        .expect("an address alone is set up in part");
    assert!(
        why.contains("SIMPLETUNER_VAULT_AUTH: kubernetes, jwt, cert, aws"),
        "{why}"
    );
    assert!(!why.contains("a role is set"), "{why}");
    let with_role = provider(
        &ManagerConfig::default(),
        Vars::empty()
            .set("VAULT_ADDR", "http://127.0.0.1:9")
            .set("SIMPLETUNER_VAULT_ROLE", "train"),
    );
    assert!(with_role
        .set_up_in_part()
        .unwrap()
        .contains("a role is set"));
    let token_only = provider(
        &ManagerConfig::default(),
        Vars::empty().set("BAO_TOKEN", "t"),
    );
    assert!(token_only.set_up_in_part().unwrap().contains("VAULT_ADDR"));
    assert_eq!(
        provider(&ManagerConfig::default(), Vars::empty()).set_up_in_part(),
        None
    );

    // Environment only, and the token file of the Vault CLI.
    let server = FakeServer::start(|_| v1_answer());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".vault-token"), "hvs.from-token-file\n").unwrap();
    let vars = Vars::empty()
        .home(home.path())
        .set("VAULT_ADDR", &format!("{}/", server.url()))
        .set("SIMPLETUNER_VAULT_MOUNT", "kv1")
        .set("SIMPLETUNER_VAULT_PATH", "team/keys")
        .set("VAULT_NAMESPACE", "ns1");
    let mut c = ManagerConfig {
        vault: VaultSettings {
            kv_version: Some(1),
            ..Default::default()
        },
        ..ManagerConfig::default()
    };
    let p = provider(&c, vars.clone());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    let r = server.last().unwrap();
    assert_eq!(r.path, "/v1/kv1/team/keys");
    assert_eq!(r.header("x-vault-token"), Some("hvs.from-token-file"));
    assert_eq!(r.header("x-vault-namespace"), Some("ns1"));
    // VAULT_TOKEN wins over the file, the config over both.
    let p = provider(&c, vars.clone().set("VAULT_TOKEN", "hvs.env"));
    get(&p, "HF_TOKEN").unwrap();
    assert_eq!(
        server.last().unwrap().header("x-vault-token"),
        Some("hvs.env")
    );
    c.vault.token = Some(SecretString::from("hvs.config"));
    let p = provider(&c, vars.set("VAULT_TOKEN", "hvs.env"));
    get(&p, "HF_TOKEN").unwrap();
    assert_eq!(
        server.last().unwrap().header("x-vault-token"),
        Some("hvs.config")
    );
    assert!(!format!("{p:?}").contains("hvs."));

    // OpenBao's variables, which win over Vault's when both are set (as
    // OpenBao's own clients read them).
    let bao = Vars::empty()
        .set("BAO_ADDR", &server.url())
        .set("BAO_TOKEN", "hvs.bao")
        .set("BAO_NAMESPACE", "ns-bao");
    let c = ManagerConfig {
        vault: VaultSettings {
            kv_version: Some(1),
            ..Default::default()
        },
        ..ManagerConfig::default()
    };
    get(&provider(&c, bao.clone()), "HF_TOKEN").unwrap();
    let r = server.last().unwrap();
    assert_eq!(r.header("x-vault-token"), Some("hvs.bao"));
    assert_eq!(r.header("x-vault-namespace"), Some("ns-bao"));
    let both = bao
        .clone()
        .set("VAULT_ADDR", "http://127.0.0.1:9")
        .set("VAULT_TOKEN", "hvs.vault")
        .set("VAULT_NAMESPACE", "ns-vault");
    let p = provider(&c, both);
    get(&p, "HF_TOKEN").unwrap();
    let r = server.last().unwrap();
    assert_eq!(r.header("x-vault-token"), Some("hvs.bao"));
    assert_eq!(r.header("x-vault-namespace"), Some("ns-bao"));
    assert!(p.status().detail.contains("token from BAO_TOKEN"));
    // Vault's variables alone still work.
    let vault_only = Vars::empty()
        .set("VAULT_ADDR", &server.url())
        .set("VAULT_TOKEN", "hvs.vault")
        .set("VAULT_NAMESPACE", "ns-vault");
    get(&provider(&c, vault_only), "HF_TOKEN").unwrap();
    let r = server.last().unwrap();
    assert_eq!(r.header("x-vault-token"), Some("hvs.vault"));
    assert_eq!(r.header("x-vault-namespace"), Some("ns-vault"));

    // TLS settings: a missing CA file is an error on lookup.
    let p = provider(
        &config("https://127.0.0.1:9"),
        Vars::empty().set("VAULT_CACERT", "/nonexistent/ca.pem"),
    );
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_IO");
}

#[test]
fn answers_that_are_not_objects_are_parse_errors_not_panics() {
    // Found by the vault_response fuzz target: `doc["data"].take()` panicked
    // when the server answered JSON that is not an object (here "1").
    use crate::secrets::transport::http::Response;
    for (version, body) in [
        (1, "1"),
        (2, "1"),
        (1, "[]"),
        (2, "\"text\""),
        (2, r#"{"data": 5}"#),
        (2, r#"{"data": {"data": [1]}}"#),
        (1, r#"{"data": "x"}"#),
    ] {
        let r = Response::made_up(200, vec![], body.as_bytes());
        match super::wire::secret_from(r, version) {
            Err(f) => assert!(
                matches!(f.error, Error::Parse(_)),
                "KV v{version} {body}: {:?}",
                f.error
            ),
            Ok(_) => panic!("KV v{version} {body}: accepted"),
        }
    }
    // Absent and found still read as before.
    let absent = Response::made_up(200, vec![], br#"{"data": {"data": null}}"#);
    assert!(matches!(
        super::wire::secret_from(absent, 2),
        Ok(Fetched::Absent)
    ));
    let found = Response::made_up(200, vec![], br#"{"data": {"data": {"K": "v"}}}"#);
    assert!(matches!(super::wire::secret_from(found, 2), Ok(Fetched::Found(m)) if m.len() == 1));
}

#[test]
fn agent_mode_sends_no_token_and_paths_are_read_in_order() {
    let server = FakeServer::start(|r| match r.path.as_str() {
        "/v1/secret/team/shared" => Reply::json(
            200,
            r#"{"data": {"HF_TOKEN": "hf_team", "WANDB_API_KEY": "wb"}}"#,
        ),
        "/v1/secret/project" => {
            Reply::json(200, r#"{"data": {"HF_TOKEN": "hf_p", "ONLY_P": "p"}}"#)
        }
        _ => Reply::json(404, r#"{"errors": []}"#),
    });
    let mut c = config(&server.url());
    c.vault.token = None;
    c.vault.kv_version = Some(1);
    c.vault.agent = Some(true);
    c.vault.paths = Some(vec!["team/shared".into(), "gone".into(), "project".into()]);
    // A token in the environment is not sent either: the proxy adds its own.
    let p = provider(&c, Vars::empty().set("VAULT_TOKEN", "hvs.ignored"));
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_team"));
    assert_eq!(get(&p, "ONLY_P").unwrap().as_deref(), Some("p"));
    assert_eq!(get(&p, "NONE").unwrap(), None);
    for r in server.received() {
        assert_eq!(r.header("x-vault-token"), None, "{}", r.path);
    }
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    // (The configured KV version is checked against the mount once, after
    // the first absent secret.)
    assert_eq!(
        paths,
        [
            "/v1/secret/team/shared",
            "/v1/secret/gone",
            "/v1/sys/internal/ui/mounts/secret",
            "/v1/secret/project"
        ]
    );
    let detail = p.status().detail;
    assert!(
        detail.contains("secret/team/shared, then secret/gone, then secret/project"),
        "{detail}"
    );
    assert!(detail.contains("no token sent"), "{detail}");
    // The same from the environment alone.
    let vars = Vars::empty()
        .set("BAO_ADDR", &server.url())
        .set("SIMPLETUNER_VAULT_AGENT", "1")
        .set("SIMPLETUNER_VAULT_PATH", "gone, project");
    let mut env_only = config(&server.url());
    env_only.vault = VaultSettings {
        kv_version: Some(1),
        ..Default::default()
    };
    let p = provider(&env_only, vars.clone());
    assert_eq!(get(&p, "HF_TOKEN").unwrap().as_deref(), Some("hf_p"));
    assert_eq!(server.last().unwrap().header("x-vault-token"), None);
    let p = provider(&env_only, vars.set("SIMPLETUNER_VAULT_AGENT", "maybe"));
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(e.message().contains("SIMPLETUNER_VAULT_AGENT"), "{e}");
}

#[test]
fn an_agent_sink_is_read_again_when_rewritten_and_after_a_refusal() {
    let valid = std::sync::Arc::new(std::sync::Mutex::new("hvs.first".to_owned()));
    let v = std::sync::Arc::clone(&valid);
    let server = FakeServer::start(move |r| {
        if r.header("x-vault-token") == Some(v.lock().unwrap().as_str()) {
            v1_answer()
        } else {
            Reply::json(403, r#"{"errors": ["permission denied"]}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("agent-token");
    let mut c = config(&server.url());
    c.vault.token = None;
    c.vault.kv_version = Some(1);
    c.remote.cache_ttl = Duration::ZERO;
    let vars = Vars::empty().set("SIMPLETUNER_VAULT_TOKEN_FILE", &sink.display().to_string());
    let p = provider(&c, vars);
    // Configured before the agent wrote it: named, not a crash.
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert!(e.message().contains("does not exist"), "{e}");
    std::fs::write(&sink, "hvs.first\n").unwrap();
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    // The agent re-authenticates and rewrites its sink (write and rename).
    *valid.lock().unwrap() = "hvs.second".into();
    std::fs::write(dir.path().join("tmp"), "hvs.second").unwrap();
    std::fs::rename(dir.path().join("tmp"), &sink).unwrap();
    let before = server.requests();
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(server.requests(), before + 1);
    // Rewritten in place at the same size with its modification time put
    // back (a coarse-clock file system): nothing in its metadata changed, so
    // only the 403 makes it read again; the request is repeated once with
    // the new token.
    *valid.lock().unwrap() = "hvs.thirdd".into();
    let mtime = std::fs::metadata(&sink).unwrap().modified().unwrap();
    std::fs::write(&sink, "hvs.thirdd").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&sink)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let before = server.requests();
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(server.requests(), before + 2, "refused once, then repeated");
    // Revoked and not replaced: one refusal, one re-read, then ST_AUTH.
    *valid.lock().unwrap() = "hvs.elsewhere".into();
    let before = server.requests();
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH");
    assert!(!e.message().contains("hvs."), "{e}");
    assert_eq!(server.requests(), before + 1);
    let p = provider(
        &c,
        Vars::empty().set("SIMPLETUNER_VAULT_TOKEN_FILE", &sink.display().to_string()),
    );
    assert!(
        p.status().detail.contains("SIMPLETUNER_VAULT_TOKEN_FILE"),
        "{}",
        p.status().detail
    );
}

#[test]
fn a_unix_socket_address_carries_the_requests() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("proxy.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            s.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).into_owned());
            let body = format!(r#"{{"data": {FIELDS}}}"#);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let url = format!("unix://{}", sock.display());
    let mut c = config(&url);
    c.vault.kv_version = Some(1);
    let p = provider(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    // The read first; the token's TTL is asked after it, on the
    // refresher (shared with the other tests of this process: the bound
    // leaves room for their jobs), through the socket too.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /v1/secret/simpletuner HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[1].starts_with("GET /v1/auth/token/lookup-self HTTP/1.1\r\n"));
    assert!(p.status().detail.contains(&url), "{}", p.status().detail);
    // A socket nobody listens on: a network error naming the socket.
    let gone = format!("unix://{}", dir.path().join("none.sock").display());
    let p = provider(&config(&gone), Vars::empty());
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_NETWORK");
    assert!(e.message().contains("none.sock"), "{e}");
    // Through the environment, as the Vault CLI takes it.
    let p = provider(
        &ManagerConfig::default(),
        Vars::empty()
            .set("VAULT_ADDR", &url)
            .set("VAULT_TOKEN", TOKEN),
    );
    assert!(p.status().detail.contains(&url), "{}", p.status().detail);
}

#[test]
fn a_unix_socket_whose_listener_stopped_accepting_is_bounded_by_connect_timeout() {
    // A get waited 20 s and more with connect and request timeouts of 1 s:
    // the Unix connect had no bound.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("stuck.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Fill the listener's backlog: it never accepts.
    let mut held = Vec::new();
    for _ in 0..10_000 {
        match crate::sys::connect_unix(&sock, Some(Duration::from_millis(5))) {
            Ok(s) => held.push(s),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                break;
            }
        }
    }
    assert!(!held.is_empty() && held.len() < 10_000, "{}", held.len());
    let mut c = config(&format!("unix://{}", sock.display()));
    c.vault.kv_version = Some(2);
    c.remote.connect_timeout = Duration::from_millis(200);
    c.remote.retries = 0;
    let p = provider(&c, Vars::empty());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(get(&p, "HF_TOKEN"));
    });
    // (A bound far above any real run, so that the test ends when the
    // connect is unbounded; not a timing assertion.)
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the get returned");
    let e = got.unwrap_err();
    assert_eq!(e.code_name(), "ST_TIMEOUT", "{e}");
    drop(held);
}

#[test]
fn a_token_the_server_repeats_never_reaches_a_message() {
    // A server whose error body repeats the token put it into ST_AUTH and
    // ST_REMOTE messages, the providers JSON and the doctor.
    for status in [403, 500] {
        let server = FakeServer::start(move |_| {
            Reply::json(
                status,
                format!(r#"{{"errors": ["permission denied for token {TOKEN} (sent {TOKEN})"]}}"#),
            )
        });
        let mut c = config(&server.url());
        c.vault.kv_version = Some(2);
        c.remote.retries = 0;
        let p = provider(&c, Vars::empty());
        let e = get(&p, "HF_TOKEN").unwrap_err();
        assert!(!e.to_string().contains(TOKEN), "{status}: {e}");
        assert!(e.to_string().contains("[redacted]"), "{status}: {e}");
        let st = p.status();
        let shown = format!("{} {:?}", st.detail, st.failure.map(|f| f.to_string()));
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

#[test]
fn a_server_repeating_a_value_it_served_never_puts_it_in_a_message() {
    // Issue 43, item 6: a server's error text reaches messages (`ST_REMOTE`,
    // `providers`, `doctor`); one that repeats a secret value it served
    // before must not put it there.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&calls);
    let server = FakeServer::start(move |r| match r.path.as_str() {
        path if path.starts_with("/v1/sys/") || path.contains("/data/") => {
            Reply::json(404, r#"{"errors": []}"#)
        }
        _ if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => v1_answer(),
        _ => Reply::json(
            400,
            r#"{"errors": ["field HF_TOKEN=hf_from_vault is invalid"]}"#,
        ),
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::ZERO;
    c.remote.max_stale = Duration::ZERO;
    let p = provider(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    let e = get(&p, "HF_TOKEN").unwrap_err();
    assert!(
        e.to_string().contains("HF_TOKEN=[redacted] is invalid"),
        "{e}"
    );
    let status = p.status();
    let shown = format!("{status:?}");
    assert!(!shown.contains("hf_from_vault"), "{shown}");
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn past_the_soft_deadline_gets_never_wait_for_the_refresh() {
    // Issue 39, item 1: the get after a TTL fetched while its caller (and
    // every caller queued behind it) waited. Here the server holds the
    // refresh until the test lets it go: gets meanwhile answer the value they
    // have, so a get that waited for the network would hang this test.
    use std::sync::mpsc;
    let (release, held) = mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let (server, reads) = kv1_server(move |n| {
        if n == 0 {
            return v1_answer();
        }
        let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(20));
        Reply::json(
            200,
            r#"{"data": {"HF_TOKEN": "hf_rotated"}, "lease_duration": 60}"#,
        )
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::from_secs(200);
    c.remote.refresh_ahead_permille = 1; // soft deadline after 200 ms
    let m = vault_manager(&c);
    let get = |m: &crate::secrets::SecretsManager| {
        m.get("HF_TOKEN").unwrap().map(|v| v.expose().to_owned())
    };
    assert_eq!(get(&m).as_deref(), Some("hf_from_vault"));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..1000 {
        assert_eq!(get(&m).as_deref(), Some("hf_from_vault"));
    }
    // The refresh reached the server (and is held there) while gets went on.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reads.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no refresh was sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(get(&m).as_deref(), Some("hf_from_vault"));
    release.send(()).unwrap();
    while get(&m).as_deref() != Some("hf_rotated") {
        assert!(
            std::time::Instant::now() < deadline,
            "the refreshed value never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one refresh"
    );
}

#[test]
fn a_child_forked_while_a_refresh_is_in_flight_refreshes_on_its_own() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::mpsc;
    let (release, held) = mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let (server, reads) = kv1_server(move |n| match n {
        0 => v1_answer(),
        1 => {
            // The parent's refresh, held until the test ends it.
            let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(20));
            Reply::json(200, r#"{"data": {"HF_TOKEN": "hf_parent"}}"#)
        }
        _ => Reply::json(200, r#"{"data": {"HF_TOKEN": "hf_child"}}"#),
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::from_secs(200);
    c.remote.refresh_ahead_permille = 1;
    let m = vault_manager(&c);
    let get = |m: &crate::secrets::SecretsManager| {
        m.get("HF_TOKEN").unwrap().map(|v| v.expose().to_owned())
    };
    assert_eq!(get(&m).as_deref(), Some("hf_from_vault"));
    std::thread::sleep(Duration::from_millis(300));
    get(&m);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reads.load(SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no refresh was sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Forked with the parent's refresh in flight: the child answers from the
    // value it inherited, asks its own refresher, and gets its own refresh.
    let status = crate::sys::in_fork(|| {
        if get(&m).as_deref() != Some("hf_from_vault") {
            return 1;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while get(&m).as_deref() != Some("hf_child") {
            if std::time::Instant::now() > deadline {
                return 2;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    });
    release.send(()).unwrap();
    assert_eq!(status, Some(0));
    while get(&m).as_deref() != Some("hf_parent") {
        assert!(
            std::time::Instant::now() < deadline,
            "the parent's refresh never landed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_storm_of_refreshes_sends_one_request_and_every_caller_gets_the_new_value() {
    // Issue 39, item 3: 8 threads x 12 "this value failed me" calls.
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    let (server, reads) = kv1_server(|n| {
        if n == 0 {
            return v1_answer();
        }
        std::thread::sleep(Duration::from_millis(200)); // the others pile up
        Reply::json(200, r#"{"data": {"HF_TOKEN": "hf_rotated"}}"#)
    });
    let mut c = config(&server.url());
    c.remote.refresh_min_interval = Duration::from_secs(60);
    let m = Arc::new(vault_manager(&c));
    assert_eq!(get_value(&m), "hf_from_vault");
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (m, barrier) = (Arc::clone(&m), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                (0..12)
                    .map(|_| {
                        let r = m.refresh("HF_TOKEN").unwrap().unwrap();
                        (r.found.value.expose().to_owned(), r.changed)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(answers.len(), 96);
    assert!(
        answers.iter().all(|(v, _)| v == "hf_rotated"),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(_, changed)| *changed));
    assert!(answers.iter().filter(|(_, changed)| *changed).count() < 96);
    assert_eq!(reads.load(SeqCst), 2, "the first get and one refresh");
    assert_eq!(get_value(&m), "hf_rotated");
    // Not found anywhere: None (within the interval nothing is fetched).
    assert!(m.refresh("NOT_THERE").unwrap().is_none());
    assert_eq!(reads.load(SeqCst), 2);
}

fn get_value(m: &crate::secrets::SecretsManager) -> String {
    m.get("HF_TOKEN").unwrap().unwrap().expose().to_owned()
}

#[test]
fn a_rotated_secret_is_told_once_per_changed_key_without_any_get() {
    // Issue 39, item 4 (the KV v2 version on OpenBao: tests/vault_openbao.rs).
    use std::sync::atomic::Ordering::SeqCst;
    let (server, reads) = kv1_server(|n| match n {
        0 => v1_answer(),
        _ => Reply::json(200, r#"{"data": {"HF_TOKEN": "hf_rotated"}}"#),
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::from_millis(400);
    let m = vault_manager(&c);
    assert_eq!(get_value(&m), "hf_from_vault");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    m.on_change(move |e| {
        let _ = tx.lock().unwrap().send(e.clone());
    });
    // No get from here: the watch fetches at the soft deadline.
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("told");
    let second = rx.recv_timeout(Duration::from_secs(30)).expect("told");
    let mut told = [
        (first.key.as_str(), first.removed, first.provider),
        (second.key.as_str(), second.removed, second.provider),
    ];
    told.sort();
    assert_eq!(
        told,
        [
            ("HF_TOKEN", false, "vault"),
            ("REPLICATE_API_TOKEN", true, "vault")
        ]
    );
    // Later refreshes bring the same values: nothing more is told.
    let before = reads.load(SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reads.load(SeqCst) < before + 2 {
        assert!(std::time::Instant::now() < deadline, "the watch stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rx.try_recv().is_err());
    assert_eq!(get_value(&m), "hf_rotated");
}

#[test]
fn a_cold_get_sends_only_the_read_on_the_callers_path() {
    // Round 4, item 1: the token's TTL (lookup-self) was asked before the
    // first read, on the caller's path: two requests in series, and past
    // the bound of the attempts a get is allowed against a slow server.
    // Here lookup-self is held until the get has returned: a get that
    // waited for it would fail with a timeout instead.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let server = FakeServer::start_seeing_all(move |r| {
        if r.path == "/v1/auth/token/lookup-self" {
            let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(20));
            return Reply::json(200, r#"{"data": {"ttl": 3600, "renewable": true}}"#);
        }
        v1_answer()
    });
    let mut c = config(&server.url());
    c.vault.kv_version = Some(1);
    c.remote.request_timeout = Duration::from_secs(2);
    let p = provider(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    let first = server.received();
    assert_eq!(first[0].path, "/v1/secret/simpletuner", "{first:?}");
    release.send(()).unwrap();
    // The lookup was asked, once, after the read (on the refresher, which
    // the other tests of this process share: the bound leaves room).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.requests() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/v1/secret/simpletuner", "/v1/auth/token/lookup-self"]
    );
}

#[test]
fn a_lease_near_2_pow_64_seconds_saturates() {
    // Round 4, item 14: a lease of 2^64 - 1 s from lookup-self or an
    // AppRole login overflowed `Instant + Duration`: every get panicked.
    let huge = u64::MAX;
    let server = FakeServer::start_seeing_all(move |r| match r.path.as_str() {
        "/v1/auth/token/lookup-self" => Reply::json(
            200,
            format!(r#"{{"data": {{"ttl": {huge}, "renewable": true}}}}"#),
        ),
        "/v1/auth/approle/login" | "/v1/auth/token/renew-self" => Reply::json(
            200,
            format!(
                r#"{{"auth": {{"client_token": "hvs.approle", "lease_duration": {huge}, "renewable": true}}}}"#
            ),
        ),
        _ => v1_answer(),
    });
    let mut c = config(&server.url());
    c.vault.kv_version = Some(1);
    c.remote.cache_ttl = Duration::from_millis(1);
    c.remote.refresh_ahead_permille = 0;
    let m = vault_manager(&c);
    for _ in 0..3 {
        assert_eq!(get_value(&m), "hf_from_vault");
        std::thread::sleep(Duration::from_millis(20));
    }
    let approle = Vars::empty()
        .set("VAULT_ROLE_ID", "role")
        .set("VAULT_SECRET_ID", "secret");
    let mut c = c.clone();
    c.vault.token = None;
    let p = provider(&c, approle);
    for _ in 0..3 {
        assert_eq!(
            get(&p, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_from_vault")
        );
    }
    // The fixed token's issuer, run here to see it: the lookup's huge TTL
    // and a renewal's, and the points the keeper computes from them.
    use crate::secrets::credential::Issuer;
    let p = provider(&config(&server.url()), Vars::empty());
    let fixed = super::logins::FixedToken {
        client: p.fetcher().unwrap().session.client_arc(),
        token: SecretString::from(TOKEN),
    };
    let issued = fixed.issue().unwrap();
    assert!(issued.lifetime.renews());
    let _ = (
        issued.lifetime.renew_at_jittered(),
        issued.lifetime.replace_at(),
    );
    let renewed = fixed.renew(&issued).unwrap();
    let _ = (renewed.renew_at_jittered(), renewed.replace_at());
}

#[test]
fn a_rotation_is_told_for_keys_served_through_references() {
    // Round 4, item 9: change events never fired for values served through
    // a reference (the environment's HF_TOKEN=st://HF_TOKEN hid Vault's
    // HF_TOKEN), so `run --as-files --watch` never rewrote the file.
    let (server, _reads) = kv1_server(|n| match n {
        0 => v1_answer(),
        _ => Reply::json(
            200,
            r#"{"data": {"HF_TOKEN": "hf_rotated", "REPLICATE_API_TOKEN": "r8_rotated"}}"#,
        ),
    });
    let mut c = config(&server.url());
    c.remote.cache_ttl = Duration::from_millis(400);
    let prefix = "ST_UNIT_EVREF";
    std::env::set_var(format!("{prefix}_HF_TOKEN"), "st://HF_TOKEN");
    std::env::set_var(format!("{prefix}_REPLICATE"), "st://replicate-api-token");
    std::env::set_var(format!("{prefix}_LITERAL"), "not-a-reference");
    let m = crate::secrets::SecretsManager::with_providers(
        c.clone(),
        vec![
            std::sync::Arc::new(crate::secrets::EnvProvider::new(Some(prefix.into()))),
            std::sync::Arc::new(provider(&c, Vars::empty())),
        ],
    );
    assert_eq!(get_value(&m), "hf_from_vault");
    let got = m.get("REPLICATE").unwrap().unwrap();
    assert_eq!(got.expose(), "r8_from_vault");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    m.on_change(move |e| {
        let _ = tx.lock().unwrap().send(e.clone());
    });
    let mut told = Vec::new();
    while told.len() < 3 {
        let e = rx.recv_timeout(Duration::from_secs(30)).expect("told");
        told.push((e.key, e.provider));
    }
    told.sort();
    assert_eq!(
        told,
        [
            ("HF_TOKEN".to_owned(), "vault"),
            ("REPLICATE".to_owned(), "vault"),
            ("REPLICATE_API_TOKEN".to_owned(), "vault"),
        ]
    );
    assert_eq!(get_value(&m), "hf_rotated");
    for name in ["HF_TOKEN", "REPLICATE", "LITERAL"] {
        std::env::remove_var(format!("{prefix}_{name}"));
    }
}

#[test]
fn a_cluster_is_one_line_per_node_and_a_problem_only_when_none_serves() {
    fn node(url: &str, role: &str, health: Value, last: bool) -> Value {
        json!({ "url": url, "role": role, "requests": 3, "answered_last": last, "health": health })
    }
    let up = json!({ "status": 200, "sealed": false });
    let standby = json!({ "status": 429, "sealed": false });
    let down = json!({ "error": { "code": "ST_NETWORK", "message": "cannot connect" } });
    let lines = |nodes: Vec<Value>| {
        let health: Vec<Value> = nodes.iter().map(|n| n["health"].clone()).collect();
        super::health_lines(&json!({ "nodes": nodes, "failovers": 1 }), &health)
    };
    let shown = lines(vec![
        node("http://a", "down", down.clone(), false),
        node("http://b", "active", up, true),
        node("http://c", "standby", standby, false),
    ]);
    let text: Vec<String> = shown
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["label"].as_str().unwrap(),
                l["text"].as_str().unwrap()
            )
        })
        .collect();
    let text = text.join("\n");
    assert!(
        text.contains("http://a: DOWN (ST_NETWORK: cannot connect)"),
        "{text}"
    );
    assert!(
        text.contains("http://b: active, HTTP 200, sealed: false (answered last)"),
        "{text}"
    );
    assert!(text.contains("http://c: standby, HTTP 429"), "{text}");
    assert!(!text.contains("health"), "no single health line: {text}");
    let problems = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["problem"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(problems(&shown).is_empty(), "{shown:?}");

    let shown = lines(vec![
        node("http://a", "down", down.clone(), false),
        node("http://b", "down", down, false),
    ]);
    assert_eq!(problems(&shown), ["no node of the cluster serves"]);
}

#[test]
fn a_jobs_revocations_are_sent_at_once() {
    // Every answer takes 300 ms: one after the other, 6 revocations took
    // 1.8 s (with every node down, an election wait each: 27 s for 2).
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let server = FakeServer::start(move |_| {
        m.fetch_max(n.fetch_add(1, SeqCst) + 1, SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        n.fetch_sub(1, SeqCst);
        Reply::json(204, "")
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let vars = Vars::empty().set("SIMPLETUNER_JOB_LEDGER", path.to_str().unwrap());
    let ledger = ledger::Ledger::new(&vars, false, serde_json::Value::Null);
    for i in 0..4 {
        ledger.issued(&SecretString::from(format!("database/creds/job/{i}")), None);
    }
    ledger.logged_in(&SecretString::from("hvs.login-1"));
    ledger.logged_in(&SecretString::from("hvs.login-2"));
    let job = VaultJob::new(
        &VaultSettings {
            url: Some(server.url()),
            token: Some(SecretString::from("hvs.run")),
            ..VaultSettings::default()
        },
        &RemoteSettings::default(),
        Vars::empty(),
    );
    // A job process with a Vault of its own (another address): its lines
    // are revoked there.
    let elsewhere = FakeServer::start(|_| Reply::json(204, ""));
    let theirs = ledger::Ledger::new(&vars, false, ledger::at(&[elsewhere.url()], None));
    theirs.issued(
        &SecretString::from("database/creds/other/1"),
        Some(SecretString::from("hvs.their-login")),
    );
    theirs.logged_in(&SecretString::from("hvs.their-login"));
    let revoked = job.revoke_ledger(&path).unwrap();
    assert_eq!(
        (revoked.leases, revoked.tokens),
        (5, 3),
        "{:?}",
        revoked.failed
    );
    assert_eq!(most.load(SeqCst), 6, "all six of its own in flight at once");
    let paths: Vec<String> = elsewhere
        .received()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("sys/leases/revoke"))
            && paths.iter().any(|p| p.ends_with("auth/token/revoke-self")),
        "{paths:?}"
    );
}

#[test]
fn a_ledger_is_revoked_where_its_lines_say_when_no_vault_is_configured_here() {
    // `run` whose own configuration names no Vault, its job's process one
    // configured apart (its own JSON): the lines say where, and are revoked
    // there with the tokens they list.
    let theirs_server = FakeServer::start(|_| Reply::json(204, ""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let vars = Vars::empty().set("SIMPLETUNER_JOB_LEDGER", path.to_str().unwrap());
    let theirs = ledger::Ledger::new(&vars, false, ledger::at(&[theirs_server.url()], None));
    theirs.issued(
        &SecretString::from("database/creds/job/1"),
        Some(SecretString::from("hvs.their-login")),
    );
    theirs.logged_in(&SecretString::from("hvs.their-login"));
    let job = VaultJob::new(
        &VaultSettings::default(),
        &RemoteSettings::default(),
        Vars::empty(),
    );
    let revoked = job.revoke_ledger(&path).unwrap();
    assert_eq!(
        (revoked.leases, revoked.tokens),
        (1, 1),
        "{:?}",
        revoked.failed
    );
    assert!(revoked.failed.is_empty(), "{:?}", revoked.failed);
    let paths: Vec<String> = theirs_server
        .received()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("sys/leases/revoke"))
            && paths.iter().any(|p| p.ends_with("auth/token/revoke-self")),
        "{paths:?}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // A line naming no Vault: nothing here to revoke it with; said, and
    // nothing revoked or emptied.
    let nowhere = ledger::Ledger::new(&vars, false, serde_json::Value::Null);
    nowhere.issued(&SecretString::from("database/creds/job/2"), None);
    let e = job.revoke_ledger(&path).unwrap_err();
    assert!(e.to_string().contains("not configured"), "{e}");
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
}

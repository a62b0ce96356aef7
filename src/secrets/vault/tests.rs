//! The Vault provider against the loopback fake server, for what RustyVault
//! (tested in `tests/vault_rusty.rs`) lacks: KV v2 paths, the mounts
//! endpoint, namespaces, AppRole logins and re-logins, sealed servers,
//! Vault's `{"errors": [...]}` bodies. Answers follow Vault's documented API.

use super::*;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN: &str = "hvs.CAESIJtoken-for-tests";
const FIELDS: &str = r#"{"HF_TOKEN": "hf_from_vault", "REPLICATE_API_TOKEN": "r8_from_vault"}"#;

fn config(url: &str) -> ManagerConfig {
    ManagerConfig {
        vault_url: Some(url.into()),
        vault_token: Some(SecretString::from(TOKEN)),
        remote: RemoteSettings {
            request_timeout: Duration::from_millis(500),
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(4),
            failure_ttl: Duration::ZERO,
            ..RemoteSettings::default()
        },
        ..ManagerConfig::default()
    }
}

fn get(p: &VaultProvider, key: &str) -> Result<Option<String>, Error> {
    p.lookup(key).map(|v| v.map(|v| v.expose().to_owned()))
}

fn v2_answer() -> Reply {
    Reply::json(
        200,
        format!(r#"{{"data": {{"data": {FIELDS}, "metadata": {{"version": 3}}}}}}"#),
    )
}

fn v1_answer() -> Reply {
    Reply::json(
        200,
        format!(r#"{{"data": {FIELDS}, "lease_duration": 2764800}}"#),
    )
}

fn mounts(version: &str) -> Reply {
    Reply::json(
        200,
        format!(
            r#"{{"data": {{"type": "kv", "path": "secret/", "options": {{"version": "{version}"}}}}}}"#
        ),
    )
}

/// A KV v2 server that lets the token read the mounts endpoint.
fn kv2_server(seen: Arc<parking_lot::Mutex<Vec<Request>>>) -> FakeServer {
    FakeServer::start(move |r| {
        seen.lock().push(r.clone());
        if r.header("x-vault-token") != Some(TOKEN) {
            return Reply::json(403, r#"{"errors": ["permission denied"]}"#);
        }
        match r.path.as_str() {
            "/v1/sys/internal/ui/mounts/secret" => mounts("2"),
            "/v1/secret/data/simpletuner" => v2_answer(),
            _ => Reply::json(404, r#"{"errors": []}"#),
        }
    })
}

#[test]
fn kv_v2_detected_from_the_mounts_endpoint_with_a_namespace() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let server = kv2_server(Arc::clone(&seen));
    let mut c = config(&server.url());
    c.vault_namespace = Some("ml/training".into());
    let p = VaultProvider::new(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        get(&p, "replicate-api-token").unwrap().as_deref(),
        Some("r8_from_vault")
    );
    assert_eq!(get(&p, "NOPE").unwrap(), None);
    let paths: Vec<_> = seen.lock().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/sys/internal/ui/mounts/secret",
            "/v1/secret/data/simpletuner"
        ]
    );
    for r in seen.lock().iter() {
        assert_eq!(r.header("x-vault-namespace"), Some("ml/training"));
        assert_eq!(r.method, "GET");
    }
    let detail = p.status().detail;
    assert!(
        detail.contains("KV v2 (sys/internal/ui/mounts)"),
        "{detail}"
    );
    assert!(
        detail.contains("namespace ml/training") && !detail.contains(TOKEN),
        "{detail}"
    );
}

#[test]
fn without_the_mounts_endpoint_v2_then_v1_and_the_answer_is_remembered() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let server = FakeServer::start(move |r| {
        s.lock().push(r.path.clone());
        match r.path.as_str() {
            "/v1/sys/internal/ui/mounts/kv" => {
                Reply::json(403, r#"{"errors": ["permission denied"]}"#)
            }
            "/v1/kv/ml/keys" => v1_answer(),
            _ => Reply::json(404, r#"{"errors": []}"#),
        }
    });
    let mut c = config(&server.url());
    c.vault_mount = Some("kv".into());
    c.vault_path = Some("ml/keys".into());
    c.cache_ttl = Duration::ZERO;
    let p = VaultProvider::new(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        *seen.lock(),
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
fn a_configured_kv_version_sends_no_detection_request() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let server = kv2_server(Arc::clone(&seen));
    let mut c = config(&server.url());
    c.vault_kv_version = Some(2);
    let p = VaultProvider::new(&c, Vars::empty());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(seen.lock().len(), 1);
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
        c.vault_kv_version = Some(2);
        let p = VaultProvider::new(&c, Vars::empty());
        let e = get(&p, "HF_TOKEN").unwrap_err();
        assert_eq!(e.code_name(), code, "{e}");
        assert!(e.message().contains(text), "{e}");
        assert!(!e.message().contains(TOKEN));
        let expected = if matches!(status, 500 | 503) { 3 } else { 1 };
        assert_eq!(server.requests(), expected, "HTTP {status}: retries");
    }
}

#[test]
fn missing_and_deleted_secrets_are_absent() {
    let server = FakeServer::start(|r| match r.path.as_str() {
        "/v1/secret/data/simpletuner" => Reply::json(
            200,
            r#"{"data": {"data": null, "metadata": {"deletion_time": "2026-11-01T00:00:00Z"}}}"#,
        ),
        _ => Reply::json(404, r#"{"errors": []}"#),
    });
    let mut c = config(&server.url());
    c.vault_kv_version = Some(2);
    assert_eq!(
        get(&VaultProvider::new(&c, Vars::empty()), "HF_TOKEN").unwrap(),
        None
    );
    c.vault_path = Some("other".into());
    assert_eq!(
        get(&VaultProvider::new(&c, Vars::empty()), "HF_TOKEN").unwrap(),
        None
    );
}

#[test]
fn approle_logs_in_again_when_the_lease_ends_or_the_token_is_refused() {
    let logins = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(AtomicUsize::new(0));
    let (l, rv) = (Arc::clone(&logins), Arc::clone(&revoked));
    let server = FakeServer::start(move |r| match r.path.as_str() {
        "/v1/auth/approle/login" => {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            if body["role_id"] != "role-1" || body["secret_id"] != "secret-1" {
                return Reply::json(400, r#"{"errors": ["invalid role or secret ID"]}"#);
            }
            let n = l.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                200,
                format!(
                    r#"{{"auth": {{"client_token": "hvs.approle-{n}", "lease_duration": 1, "renewable": true}}}}"#
                ),
            )
        }
        "/v1/secret/data/simpletuner" => {
            let current = format!("hvs.approle-{}", l.load(Ordering::SeqCst));
            if r.header("x-vault-token") != Some(current.as_str())
                || rv.swap(0, Ordering::SeqCst) == 1
            {
                return Reply::json(403, r#"{"errors": ["permission denied"]}"#);
            }
            v2_answer()
        }
        _ => Reply::json(404, "{}"),
    });
    let mut c = config(&server.url());
    c.vault_token = None;
    c.vault_kv_version = Some(2);
    c.cache_ttl = Duration::ZERO;
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", "role-1")
        .set("VAULT_SECRET_ID", "secret-1");
    let p = VaultProvider::new(&c, vars);
    assert!(p.status().available);
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(
        logins.load(Ordering::SeqCst),
        1,
        "the token is reused within its lease"
    );
    // The token is revoked: refused once, a new login, the read succeeds.
    revoked.store(1, Ordering::SeqCst);
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    // The lease (1 s) ends: the next read logs in first.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    assert_eq!(logins.load(Ordering::SeqCst), 3);
    assert!(p.status().detail.contains("AppRole"));

    // A wrong secret ID: the login's 400 is a refusal, never the secret ID.
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", "role-1")
        .set("VAULT_SECRET_ID", "wrong-secret-id");
    let e = get(&VaultProvider::new(&c, vars), "HF_TOKEN").unwrap_err();
    assert!(e.message().contains("invalid role or secret ID"), "{e}");
    assert!(!e.message().contains("wrong-secret-id"));
}

#[test]
fn configuration_sources() {
    // Not configured: absent without a request; a URL without auth: unavailable.
    let p = VaultProvider::new(&ManagerConfig::default(), Vars::empty());
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);
    assert!(!p.status().available && p.status().detail.contains("VAULT_ADDR"));
    assert!(p.diagnose().is_none());
    let p = VaultProvider::new(
        &ManagerConfig::default(),
        Vars::empty().set("VAULT_ADDR", "http://127.0.0.1:9"),
    );
    assert!(!p.status().available && p.status().detail.contains("authenticate"));
    assert_eq!(get(&p, "HF_TOKEN").unwrap(), None);

    // Environment only, and the token file of the Vault CLI.
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let server = FakeServer::start(move |r| {
        s.lock().push(r.clone());
        v1_answer()
    });
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".vault-token"), "hvs.from-token-file\n").unwrap();
    let vars = Vars::empty()
        .home(home.path())
        .set("VAULT_ADDR", &format!("{}/", server.url()))
        .set("SIMPLETUNER_VAULT_MOUNT", "kv1")
        .set("SIMPLETUNER_VAULT_PATH", "team/keys")
        .set("VAULT_NAMESPACE", "ns1");
    let mut c = ManagerConfig {
        vault_kv_version: Some(1),
        ..ManagerConfig::default()
    };
    let p = VaultProvider::new(&c, vars.clone());
    assert_eq!(
        get(&p, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_from_vault")
    );
    let r = seen.lock().last().cloned().unwrap();
    assert_eq!(r.path, "/v1/kv1/team/keys");
    assert_eq!(r.header("x-vault-token"), Some("hvs.from-token-file"));
    assert_eq!(r.header("x-vault-namespace"), Some("ns1"));
    // VAULT_TOKEN wins over the file, the config over both.
    let p = VaultProvider::new(&c, vars.clone().set("VAULT_TOKEN", "hvs.env"));
    get(&p, "HF_TOKEN").unwrap();
    assert_eq!(
        seen.lock().last().unwrap().header("x-vault-token"),
        Some("hvs.env")
    );
    c.vault_token = Some(SecretString::from("hvs.config"));
    let p = VaultProvider::new(&c, vars.set("VAULT_TOKEN", "hvs.env"));
    get(&p, "HF_TOKEN").unwrap();
    assert_eq!(
        seen.lock().last().unwrap().header("x-vault-token"),
        Some("hvs.config")
    );
    assert!(!format!("{p:?}").contains("hvs."));

    // TLS settings: a missing CA file is an error on lookup.
    let p = VaultProvider::new(
        &config("https://127.0.0.1:9"),
        Vars::empty().set("VAULT_CACERT", "/nonexistent/ca.pem"),
    );
    assert_eq!(get(&p, "HF_TOKEN").unwrap_err().code_name(), "ST_IO");
}

#[test]
fn two_threads_times_ten_thousand_gets_send_one_request() {
    let server = FakeServer::start(|_| {
        crate::secrets::remote::fake::Reply::After(
            Duration::from_millis(100),
            Box::new(v2_answer()),
        )
    });
    let mut c = config(&server.url());
    c.vault_kv_version = Some(2);
    let p = Arc::new(VaultProvider::new(&c, Vars::empty()));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    assert_eq!(
                        get(&p, "HF_TOKEN").unwrap().as_deref(),
                        Some("hf_from_vault")
                    );
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(server.requests(), 1);
    assert_eq!(p.requests(), 1);
}

#[test]
fn the_doctor_shows_health_token_and_kv_version_never_the_token() {
    let server = FakeServer::start(|r| match r.path.as_str() {
        "/v1/sys/health" => Reply::json(
            200,
            r#"{"initialized": true, "sealed": false, "standby": false, "version": "1.15.0"}"#,
        ),
        "/v1/auth/token/lookup-self" => Reply::json(
            200,
            format!(
                r#"{{"data": {{"id": "{TOKEN}", "display_name": "token-ci", "policies": ["default", "ml"], "ttl": 3000}}}}"#
            ),
        ),
        "/v1/sys/internal/ui/mounts/secret" => mounts("2"),
        "/v1/secret/data/simpletuner" => v2_answer(),
        _ => Reply::json(404, "{}"),
    });
    let p = VaultProvider::new(&config(&server.url()), Vars::empty());
    let d = p.diagnose().unwrap();
    assert_eq!(d["health"]["sealed"], false);
    assert_eq!(d["health"]["version"], "1.15.0");
    assert_eq!(d["token"]["valid"], true);
    assert_eq!(d["token"]["display_name"], "token-ci");
    assert_eq!(d["secret_readable"]["keys"], 2);
    assert_eq!(d["kv_version"], "KV v2 (sys/internal/ui/mounts)");
    let text = d.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains("hf_from_vault"),
        "{text}"
    );
}

#[test]
fn answers_that_are_not_objects_are_parse_errors_not_panics() {
    // Found by the vault_response fuzz target: `doc["data"].take()` panicked
    // when the server answered JSON that is not an object (here "1").
    use crate::secrets::remote::http::Response;
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
        match super::secret_from(r, version) {
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
    assert!(matches!(super::secret_from(absent, 2), Ok(Fetched::Absent)));
    let found = Response::made_up(200, vec![], br#"{"data": {"data": {"K": "v"}}}"#);
    assert!(matches!(super::secret_from(found, 2), Ok(Fetched::Found(m)) if m.len() == 1));
}

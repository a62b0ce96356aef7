//! Requests that issue a token or a lease, against the fake server: an
//! answer later than its caller can wait is a fault no real server gives on
//! demand (the fleet benchmark shows it on OpenBao under load).

use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply};
use crate::secrets::transport::{RemoteSettings, Vars};
use crate::secrets::vault::{LeasedPath, VaultProvider, VaultSettings};
use std::time::Duration;

const FIELDS: &str = r#"{"data": {"HF_TOKEN": "hf_from_vault"}, "lease_duration": 0}"#;

/// A login answering after `late`, a lease after `lease_late`, the KV v1
/// read at once.
fn server(late: Duration, lease_late: Duration) -> FakeServer {
    FakeServer::start_seeing_all(move |r| match r.path.as_str() {
        "/v1/auth/approle/login" => Reply::After(
            late,
            Box::new(Reply::json(
                200,
                r#"{"auth": {"client_token": "hvs.late-login", "lease_duration": 3600, "renewable": true}}"#,
            )),
        ),
        "/v1/database/creds/trainer" => Reply::After(
            lease_late,
            Box::new(Reply::json(
                200,
                r#"{"lease_id": "database/creds/trainer/l1", "lease_duration": 3600, "renewable": true, "data": {"username": "u", "password": "pw-from-vault"}}"#,
            )),
        ),
        "/v1/auth/token/revoke-self" | "/v1/sys/leases/revoke" => Reply::text(204, ""),
        _ => Reply::json(200, FIELDS),
    })
}

/// AppRole against `server`, each fetch bounded by 300 ms (no retries).
fn provider(server: &FakeServer, leases: bool) -> VaultProvider {
    let vault = VaultSettings {
        url: Some(server.url()),
        kv_version: Some(1),
        leases: leases.then(|| {
            [(
                "pg".to_owned(),
                LeasedPath {
                    path: "database/creds/trainer".into(),
                    data: None,
                },
            )]
            .into()
        }),
        ..Default::default()
    };
    let remote = RemoteSettings {
        request_timeout: Duration::from_millis(300),
        retries: 0,
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    };
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", "role")
        .set("VAULT_SECRET_ID", "secret");
    VaultProvider::new(&vault, &remote, vars)
}

fn paths(server: &FakeServer, path: &str) -> usize {
    server.received().iter().filter(|r| r.path == path).count()
}

#[test]
fn a_login_answered_after_its_caller_gave_up_goes_to_the_next_attempt() {
    let server = server(Duration::from_millis(700), Duration::ZERO);
    let p = provider(&server, false);
    let e = p.lookup("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_TIMEOUT", "{e}");
    assert!(e.to_string().contains("stays open"), "{e}");
    // A second attempt while the first may still answer joins it.
    let e = p.lookup("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_TIMEOUT", "{e}");
    std::thread::sleep(Duration::from_millis(400));
    let v = p.lookup("HF_TOKEN").unwrap().unwrap();
    assert_eq!(v.expose(), "hf_from_vault");
    assert_eq!(paths(&server, "/v1/auth/approle/login"), 1, "one login");
    let read = server
        .received()
        .into_iter()
        .find(|r| r.path == "/v1/secret/simpletuner")
        .unwrap();
    assert_eq!(read.header("x-vault-token"), Some("hvs.late-login"));
}

#[test]
fn a_late_login_nobody_took_is_revoked_when_the_provider_is_dropped() {
    let server = server(Duration::from_millis(450), Duration::ZERO);
    let p = provider(&server, false);
    assert_eq!(p.lookup("HF_TOKEN").unwrap_err().code_name(), "ST_TIMEOUT");
    drop(p);
    let revoked: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/auth/token/revoke-self")
        .collect();
    assert_eq!(revoked.len(), 1, "{:?}", server.received());
    assert_eq!(revoked[0].header("x-vault-token"), Some("hvs.late-login"));
}

#[test]
fn a_lease_issued_late_is_taken_by_the_next_attempt_or_revoked() {
    // A prompt login; the lease answers late.
    let server = server(Duration::ZERO, Duration::from_millis(450));
    let p = provider(&server, true);
    assert_eq!(
        p.lookup("pg_password").unwrap_err().code_name(),
        "ST_TIMEOUT"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        p.lookup("pg_password").unwrap().unwrap().expose(),
        "pw-from-vault"
    );
    assert_eq!(paths(&server, "/v1/database/creds/trainer"), 1, "one lease");
    // Late again, and nobody asks: revoked with the token that asked.
    let p2 = provider(&server, true);
    assert_eq!(
        p2.lookup("pg_password").unwrap_err().code_name(),
        "ST_TIMEOUT"
    );
    drop(p2);
    let revoked: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/sys/leases/revoke")
        .collect();
    assert!(!revoked.is_empty(), "{:?}", server.received());
    assert!(revoked[0].text().contains("database/creds/trainer/l1"));
    assert_eq!(revoked[0].header("x-vault-token"), Some("hvs.late-login"));
}

#[test]
fn revocation_with_every_node_down_ends_within_one_bound() {
    // A cluster of two: the fake (answering until the test says it is down,
    // then 503 to everything) and a port nobody listens on. Each revocation
    // used to wait out an election (15 s by default) however short the
    // request timeout; the whole revocation now ends within one request's
    // bound.
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let down = std::sync::Arc::new(AtomicBool::new(false));
    let is_down = std::sync::Arc::clone(&down);
    let fake = FakeServer::start(move |r| {
        if is_down.load(SeqCst) {
            return Reply::json(503, r#"{"errors": ["Vault is sealed"]}"#);
        }
        match r.path.as_str() {
            "/v1/auth/approle/login" => Reply::json(
                200,
                r#"{"auth": {"client_token": "hvs.login", "lease_duration": 3600, "renewable": true}}"#,
            ),
            "/v1/database/creds/trainer" => Reply::json(
                200,
                r#"{"lease_id": "database/creds/trainer/l1", "lease_duration": 3600, "renewable": true, "data": {"username": "u", "password": "pw-from-vault"}}"#,
            ),
            _ => Reply::json(200, FIELDS),
        }
    });
    let remote = RemoteSettings {
        request_timeout: Duration::from_millis(300),
        retries: 1,
        backoff_cap: Duration::from_millis(100),
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    };
    let vault = VaultSettings {
        urls: Some(vec![fake.url(), "http://127.0.0.1:1".into()]),
        kv_version: Some(1),
        election_timeout: Some(Duration::from_secs(30)),
        leases: Some(
            [(
                "pg".to_owned(),
                LeasedPath {
                    path: "database/creds/trainer".into(),
                    data: None,
                },
            )]
            .into(),
        ),
        ..Default::default()
    };
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", "role")
        .set("VAULT_SECRET_ID", "secret");
    let p = VaultProvider::new(&vault, &remote, vars);
    assert_eq!(
        p.lookup("PG_PASSWORD").unwrap().unwrap().expose(),
        "pw-from-vault"
    );
    down.store(true, SeqCst);
    let started = std::time::Instant::now();
    drop(p);
    let took = started.elapsed();
    // The bound is 0.3 s x 2 + 0.1 s; the election deadline 30 s.
    assert!(
        took < Duration::from_secs(10),
        "the revocation took {took:?}"
    );
    let tried = |path: &str| fake.received().iter().filter(|r| r.path == path).count();
    assert!(tried("/v1/sys/leases/revoke") >= 1 && tried("/v1/auth/token/revoke-self") >= 1);
}

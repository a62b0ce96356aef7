//! Logins against the loopback fake server, for what a test must see on the
//! wire: the identity read again for every login, a refused login sent
//! again only with a rotated identity, the AWS request's signed form, and
//! one login per node with the node cache. OpenBao's own jwt, kubernetes
//! and cert methods are exercised in `tests/vault_openbao.rs`.

use crate::secrets::config::ManagerConfig;
use crate::secrets::provider::Provider;
use crate::secrets::remote::fake::{FakeServer, Reply, Request};
use crate::secrets::transport::Vars;
use crate::secrets::vault::{VaultAuth, VaultProvider};
use crate::secrets::{RemoteSettings, VaultSettings};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FIELDS: &str = r#"{"data": {"HF_TOKEN": "hf_from_vault"}}"#;

/// A JWT (unsigned: the fake does not verify) naming `sub`, valid 10 min.
fn jwt(sub: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256"}"#),
        b64(&format!(r#"{{"sub":"{sub}","exp":{exp}}}"#))
    )
}

fn write_private(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(url: &str, auth: VaultAuth) -> ManagerConfig {
    ManagerConfig {
        remote: RemoteSettings {
            request_timeout: Duration::from_millis(2000),
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(4),
            failure_ttl: Duration::ZERO,
            cache_ttl: Duration::from_millis(1),
            refresh_ahead_permille: 0,
            ..RemoteSettings::default()
        },
        vault: VaultSettings {
            url: Some(url.into()),
            auth: Some(auth),
            role: Some("trainer".into()),
            kv_version: Some(1),
            ..Default::default()
        },
        ..ManagerConfig::default()
    }
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn logins(server: &FakeServer, path: &str) -> Vec<Value> {
    server
        .received()
        .iter()
        .filter(|r| r.path == path)
        .map(body)
        .collect()
}

/// A server whose login at `login_path` issues `hvs.issued-N` (N from 1)
/// unless `refuse` says no, and whose secret answers only the token
/// issued last (`stale` set: it refuses that one once too).
struct Vault {
    server: FakeServer,
    issued: Arc<AtomicUsize>,
    stale: Arc<AtomicUsize>,
}

fn vault(
    login_path: &'static str,
    refuse: impl Fn(&Value) -> bool + Send + Sync + 'static,
) -> Vault {
    let issued = Arc::new(AtomicUsize::new(0));
    let stale = Arc::new(AtomicUsize::new(0));
    let (i, st) = (Arc::clone(&issued), Arc::clone(&stale));
    let server = FakeServer::start(move |r| {
        if r.path == login_path {
            if refuse(&body(r)) {
                return Reply::json(400, r#"{"errors": ["token is expired"]}"#);
            }
            let n = i.fetch_add(1, SeqCst) + 1;
            return Reply::json(
                200,
                format!(
                    r#"{{"auth": {{"client_token": "hvs.issued-{n}", "lease_duration": 3600, "renewable": false}}}}"#
                ),
            );
        }
        let latest = format!("hvs.issued-{}", i.load(SeqCst));
        if r.header("x-vault-token") != Some(latest.as_str()) || st.swap(0, SeqCst) == 1 {
            return Reply::json(403, r#"{"errors": ["permission denied"]}"#);
        }
        Reply::json(200, FIELDS)
    });
    Vault {
        server,
        issued,
        stale,
    }
}

fn get(p: &VaultProvider) -> Result<Option<String>, crate::error::Error> {
    p.lookup("HF_TOKEN")
        .map(|v| v.map(|v| v.expose().to_owned()))
}

fn with_jwt_file(c: &mut ManagerConfig, path: &Path) {
    c.vault.jwt_file = Some(path.to_owned());
}

#[test]
fn a_jwt_login_reads_the_file_for_every_login() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let (first, second) = (jwt("spiffe://ml/trainer/1"), jwt("spiffe://ml/trainer/2"));
    write_private(&file, &first);
    let v = vault("/v1/auth/jwt/login", |_| false);
    let mut c = config(&v.server.url(), VaultAuth::Jwt);
    with_jwt_file(&mut c, &file);
    let p = VaultProvider::new(&c.vault, &c.remote, Vars::empty());
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_vault"));
    // The platform rotates the file; the server then refuses the token:
    // the new login presents the new JWT.
    write_private(&file, &second);
    v.stale.store(1, SeqCst);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_vault"));
    let sent = logins(&v.server, "/v1/auth/jwt/login");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["jwt"], first.as_str());
    assert_eq!(sent[0]["role"], "trainer");
    assert_eq!(sent[1]["jwt"], second.as_str());
    // The doctor's line names the identity, never a token.
    let status = p.fetcher().unwrap().session.describe();
    assert!(
        status.contains("JWT login at auth/jwt as role 'trainer'"),
        "{status}"
    );
    assert!(status.contains("spiffe://ml/trainer/2"), "{status}");
    assert!(
        !status.contains(&second) && !status.contains("hvs.issued"),
        "{status}"
    );
}

#[test]
fn a_refused_login_is_sent_again_only_with_a_rotated_identity() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let (old, new) = (jwt("old"), jwt("new"));
    write_private(&file, &old);
    // Refused while the file is unchanged: one login request, an error
    // naming the file and never the JWT.
    let refused_old = old.clone();
    let v = vault("/v1/auth/kubernetes/login", move |b| {
        b["jwt"] == refused_old.as_str()
    });
    let mut c = config(&v.server.url(), VaultAuth::Kubernetes);
    with_jwt_file(&mut c, &file);
    let p = VaultProvider::new(&c.vault, &c.remote, Vars::empty());
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("Kubernetes login refused (HTTP 400)"), "{e}");
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(!e.contains(&old), "{e}");
    assert_eq!(logins(&v.server, "/v1/auth/kubernetes/login").len(), 1);
    // Rotated between the refusal and the check: sent again at once.
    let (f, n) = (file.clone(), new.clone());
    let old2 = old.clone();
    let swapped = Arc::new(Mutex::new(false));
    let s2 = Arc::clone(&swapped);
    let v = vault("/v1/auth/kubernetes/login", move |b| {
        if b["jwt"] == old2.as_str() {
            // The platform rewrites the token while the server refuses.
            let mut done = s2.lock().unwrap();
            if !*done {
                write_private(&f, &n);
                *done = true;
            }
            return true;
        }
        false
    });
    write_private(&file, &old);
    let mut c = config(&v.server.url(), VaultAuth::Kubernetes);
    with_jwt_file(&mut c, &file);
    let p = VaultProvider::new(&c.vault, &c.remote, Vars::empty());
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_vault"));
    let sent = logins(&v.server, "/v1/auth/kubernetes/login");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["jwt"], new.as_str());
}

#[test]
fn a_kubernetes_login_needs_a_role_and_the_method_a_known_name() {
    let mut c = config("http://127.0.0.1:9", VaultAuth::Kubernetes);
    c.vault.role = None;
    let p = VaultProvider::new(&c.vault, &c.remote, Vars::empty());
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("needs a role"), "{e}");
    let e = crate::secrets::config::ManagerConfig::from_json(r#"{"vault_auth": "kerberos"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'vault_auth' must be one of"), "{e}");
    let mut c = config("http://127.0.0.1:9", VaultAuth::Token);
    c.vault.auth = None;
    let vars = Vars::empty().set("SIMPLETUNER_VAULT_AUTH", "kerberos");
    let p = VaultProvider::new(&c.vault, &c.remote, vars);
    let e = get(&p).unwrap_err().to_string();
    assert!(e.contains("SIMPLETUNER_VAULT_AUTH must be one of"), "{e}");
}

#[test]
fn an_aws_login_sends_a_signed_get_caller_identity() {
    use base64::Engine as _;
    let v = vault("/v1/auth/aws/login", |_| false);
    let mut c = config(&v.server.url(), VaultAuth::Aws);
    c.vault.aws_server_id = Some("vault.example.com".into());
    let secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let vars = Vars::empty()
        .set("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .set("AWS_SECRET_ACCESS_KEY", secret_key)
        .set("AWS_EC2_METADATA_DISABLED", "true");
    let p = VaultProvider::new(&c.vault, &c.remote, vars);
    assert_eq!(get(&p).unwrap().as_deref(), Some("hf_from_vault"));
    let sent = logins(&v.server, "/v1/auth/aws/login");
    assert_eq!(sent.len(), 1);
    let b = &sent[0];
    let decode = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b[k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(b["role"], "trainer");
    assert_eq!(b["iam_http_request_method"], "POST");
    assert_eq!(decode("iam_request_url"), "https://sts.amazonaws.com/");
    assert_eq!(
        decode("iam_request_body"),
        "Action=GetCallerIdentity&Version=2011-06-15"
    );
    let headers: Value = serde_json::from_str(&decode("iam_request_headers")).unwrap();
    let auth = headers["authorization"][0].as_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")
            && auth.contains("/us-east-1/sts/aws4_request"),
        "{auth}"
    );
    assert!(auth.contains("x-vault-aws-iam-server-id"), "{auth}");
    assert_eq!(headers["x-vault-aws-iam-server-id"][0], "vault.example.com");
    assert!(headers["x-amz-date"][0].is_string());
    // The secret key itself never travels.
    assert!(!String::from_utf8_lossy(&v.server.received()[0].body).contains(secret_key));
}

/// A fresh node cache directory on /dev/shm, removed at the end.
struct ShmDir(PathBuf);

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn with_the_node_cache_the_node_logs_in_once() {
    let shm = ShmDir(PathBuf::from(format!(
        "/dev/shm/st-secrets-login-test-{}",
        std::process::id()
    )));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_private(&file, &jwt("node-1"));
    let v = vault("/v1/auth/jwt/login", |_| false);
    let mut c = config(&v.server.url(), VaultAuth::Jwt);
    with_jwt_file(&mut c, &file);
    c.remote.node_cache = Some(true);
    c.remote.node_cache_dir = Some(shm.0.clone());
    // Eight "ranks": each its own provider, as each process has.
    let ranks: Vec<VaultProvider> = (0..8)
        .map(|_| VaultProvider::new(&c.vault, &c.remote, Vars::empty()))
        .collect();
    std::thread::scope(|s| {
        for p in &ranks {
            s.spawn(move || {
                for _ in 0..5 {
                    assert_eq!(get(p).unwrap().as_deref(), Some("hf_from_vault"));
                    std::thread::sleep(Duration::from_millis(3));
                }
            });
        }
    });
    assert_eq!(logins(&v.server, "/v1/auth/jwt/login").len(), 1);
    // A refusal of the shared token: one new login for the node.
    v.stale.store(1, SeqCst);
    for p in &ranks {
        assert_eq!(get(p).unwrap().as_deref(), Some("hf_from_vault"));
    }
    assert_eq!(logins(&v.server, "/v1/auth/jwt/login").len(), 2);
    assert_eq!(v.issued.load(SeqCst), 2);
    let status = ranks[0].fetcher().unwrap().session.describe();
    assert!(
        status.contains("the token shared with the node's others"),
        "{status}"
    );
}

#[test]
fn a_child_forked_during_a_jwt_login_logs_in_on_its_own() {
    // The parent's login is held by the server; a child forked meanwhile
    // must not wait for a request whose thread stayed in the parent.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_private(&file, &jwt("spiffe://ml/trainer/1"));
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    let issued = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&issued);
    let server = FakeServer::start(move |r: &Request| {
        if r.path == "/v1/auth/jwt/login" {
            let n = counted.fetch_add(1, SeqCst) + 1;
            if n == 1 {
                let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(20));
            }
            return Reply::json(
                200,
                format!(
                    r#"{{"auth": {{"client_token": "hvs.issued-{n}", "lease_duration": 3600, "renewable": false}}}}"#
                ),
            );
        }
        Reply::json(200, FIELDS)
    });
    let mut c = config(&server.url(), VaultAuth::Jwt);
    c.remote.request_timeout = Duration::from_secs(5);
    with_jwt_file(&mut c, &file);
    let p = Arc::new(VaultProvider::new(&c.vault, &c.remote, Vars::empty()));
    let parent = {
        let p = Arc::clone(&p);
        std::thread::spawn(move || get(&p).ok().flatten())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while issued.load(SeqCst) < 1 {
        assert!(std::time::Instant::now() < deadline, "no login was sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let status = crate::sys::in_fork(|| match get(&p) {
        Ok(Some(v)) if v == "hf_from_vault" => 0,
        _ => 1,
    });
    release.send(()).unwrap();
    assert_eq!(status, Some(0), "the child's own get");
    assert_eq!(parent.join().unwrap().as_deref(), Some("hf_from_vault"));
}

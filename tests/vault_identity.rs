//! Logins from the workload's identity against OpenBao's own methods: `jwt`
//! (a JWT file signed with a test key OpenBao trusts), `kubernetes` (a
//! projected-token-shaped JWT in a kubelet-style volume; OpenBao asks a
//! loopback TokenReview responder, the one fake server here, because there
//! is no kube-apiserver package) and `cert` (a node certificate on the
//! `-dev-tls` server). Logins are counted in OpenBao's audit log.
//!
//! `scripts/test-all.sh openbao` starts the servers and the responder
//! (`tests/servers.sh`), makes the keys and certificates
//! (`tests/vault/identity.py`) and sets OpenBao up
//! (`tests/vault/openbao_setup.py`); these tests are `#[ignore]`d for a bare
//! `cargo test`.

mod common;

use common::{job_token_file, text, Volume};
use serde_json::Value;
use st_secrets::job::token::JobRecord;
use st_secrets::secrets::VaultAuth;
use st_secrets::secrets::{ManagerConfig, Provider, RemoteSettings, Vars, VaultProvider};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn setup() -> Value {
    common::setup("ST_TEST_VAULT_SETUP")
}

fn identity(s: &Value, name: &str) -> PathBuf {
    Path::new(text(s, "identity_dir")).join(name)
}

/// A JWT signed with the key OpenBao's jwt and kubernetes methods trust;
/// `exp` and `iat` in `claims` are seconds from now.
fn mint(s: &Value, claims: Value) -> String {
    let mut cmd = std::process::Command::new(text(s, "python"));
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vault/identity.py"))
        .arg("mint")
        .arg(identity(s, "jwt-signing.key"))
        .arg(claims.to_string());
    common::stdout_of(cmd)
}

/// Claims shaped as a Kubernetes projected service-account token's.
fn kubernetes_claims(namespace: &str, uid: &str) -> Value {
    serde_json::json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["st-secrets"],
        "sub": format!("system:serviceaccount:{namespace}:trainer"),
        "exp": 120,
        "iat": 0,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": "trainer", "uid": uid},
            "pod": {"name": "trainer-0", "uid": "pod-uid-0"},
        },
    })
}

/// A kubelet-style volume holding `token`, in a directory removed at the end.
struct TokenVolume {
    volume: Volume,
    _dir: tempfile::TempDir,
}

impl TokenVolume {
    fn new(token: &str) -> TokenVolume {
        let dir = tempfile::tempdir().unwrap();
        TokenVolume {
            volume: Volume::new(
                dir.path().join("vol"),
                &[("token", token.as_bytes().to_vec())],
            ),
            _dir: dir,
        }
    }

    fn swap(&mut self, token: &str) {
        self.volume.swap(&[("token", token.as_bytes().to_vec())]);
    }

    fn token(&self) -> PathBuf {
        self.volume.dir.join("token")
    }
}

fn config(url: &str, auth: VaultAuth) -> ManagerConfig {
    let mut c = ManagerConfig {
        remote: RemoteSettings {
            cache_ttl: Duration::from_millis(1),
            refresh_ahead_permille: 0,
            failure_ttl: Duration::ZERO,
            ..RemoteSettings::default()
        },
        ..ManagerConfig::default()
    };
    c.vault.url = Some(url.into());
    c.vault.auth = Some(auth);
    c.vault.role = Some("trainer".into());
    c
}

fn provider(c: &ManagerConfig, vars: Vars) -> VaultProvider {
    VaultProvider::new(&c.vault, &c.remote, vars)
}

fn get(p: &VaultProvider) -> Result<String, st_secrets::Error> {
    p.lookup("HF_TOKEN").map(|v| v.unwrap().expose().to_owned())
}

/// Revokes every token the login method at `mount` issued (an operator's
/// revocation: the next read is refused and logs in again).
fn revoke_all(s: &Value, mount: &str) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let r = agent
        .put(format!(
            "{}/v1/sys/leases/revoke-prefix/auth/{mount}/login",
            text(s, "url")
        ))
        .header("X-Vault-Token", text(s, "root_token"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_jwt_login_presents_the_file_as_it_is_at_each_login() {
    let s = setup();
    let claims =
        |sub: &str| serde_json::json!({"sub": sub, "aud": "st-secrets", "exp": 120, "iat": 0});
    let mut volume = TokenVolume::new(&mint(&s, claims("spiffe://ml/trainer/a")));
    let mut c = config(text(&s, "url"), VaultAuth::Jwt);
    c.vault.jwt_file = Some(volume.token());
    let p = provider(&c, Vars::empty());
    let before = common::audited_logins(&s, "audit_log", "auth/jwt/login");
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    assert_eq!(
        common::audited_logins(&s, "audit_log", "auth/jwt/login"),
        before + 1,
        "one login, its token reused"
    );
    // The platform rotates the JWT (a `..data` swap), an operator revokes
    // the tokens: the next login presents the new JWT.
    volume.swap(&mint(&s, claims("spiffe://ml/trainer/b")));
    revoke_all(&s, "jwt");
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    assert_eq!(
        common::audited_logins(&s, "audit_log", "auth/jwt/login"),
        before + 2
    );
    let status = p.status().detail;
    assert!(status.contains("spiffe://ml/trainer/b"), "{status}");
    assert!(
        !status.contains("hvs.") && !status.contains("eyJ"),
        "{status}"
    );
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_refused_jwt_names_the_file_never_the_token() {
    let s = setup();
    // Signed, current, but for another audience: OpenBao answers 400.
    let jwt = mint(
        &s,
        serde_json::json!({"sub": "x", "aud": "elsewhere", "exp": 120}),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt");
    std::fs::write(&file, &jwt).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = config(text(&s, "url"), VaultAuth::Jwt);
    c.vault.jwt_file = Some(file.clone());
    let e = get(&provider(&c, Vars::empty())).unwrap_err();
    let text = e.to_string();
    assert_eq!(e.code_name(), "ST_AUTH", "{text}");
    assert!(text.contains("JWT login refused (HTTP 400)"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(!text.contains(&jwt), "{text}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_kubernetes_login_from_a_projected_token_volume() {
    let s = setup();
    let volume = TokenVolume::new(&mint(&s, kubernetes_claims("ml", "sa-uid-1")));
    let mut c = config(text(&s, "url"), VaultAuth::Kubernetes);
    c.vault.jwt_file = Some(volume.token());
    let p = provider(&c, Vars::empty());
    let before = common::audited_logins(&s, "audit_log", "auth/kubernetes/login");
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    assert_eq!(
        common::audited_logins(&s, "audit_log", "auth/kubernetes/login"),
        before + 1
    );
    // A service account of another namespace: refused by the role.
    let other = TokenVolume::new(&mint(&s, kubernetes_claims("other", "sa-uid-2")));
    c.vault.jwt_file = Some(other.token());
    let e = get(&provider(&c, Vars::empty())).unwrap_err().to_string();
    assert!(e.contains("Kubernetes login refused"), "{e}");
    assert!(e.contains("role 'trainer'"), "{e}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_certificate_login_on_tls() {
    let s = setup();
    let mut c = config(text(&s, "tls_url"), VaultAuth::Cert);
    c.vault.role = Some("node".into());
    c.vault.client_cert = Some(identity(&s, "node.pem"));
    c.vault.client_key = Some(identity(&s, "node.key"));
    let vars = Vars::empty().set("BAO_CACERT", text(&s, "tls_ca"));
    let p = provider(&c, vars.clone());
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    let status = p.status().detail;
    assert!(
        status.contains("TLS certificate login at auth/cert"),
        "{status}"
    );
    // Written after the provider was built (cert-manager after the pod
    // started): the first read names the missing file, the next logs in.
    let later = tempfile::tempdir().unwrap();
    let mut late = c.clone();
    late.vault.client_cert = Some(later.path().join("node.pem"));
    late.vault.client_key = Some(later.path().join("node.key"));
    let p = provider(&late, vars.clone());
    let e = get(&p).unwrap_err().to_string();
    assert!(
        e.contains("node.pem") && e.contains("does not exist"),
        "{e}"
    );
    for f in ["node.pem", "node.key"] {
        std::fs::copy(identity(&s, f), later.path().join(f)).unwrap();
    }
    assert_eq!(get(&p).unwrap(), "hf_bao_value");
    // An expired certificate: refused before it is presented, naming it.
    c.vault.client_cert = Some(identity(&s, "expired.pem"));
    c.vault.client_key = Some(identity(&s, "expired.key"));
    let e = get(&provider(&c, vars.clone())).unwrap_err().to_string();
    assert!(e.contains("expired.pem") && e.contains("expired"), "{e}");
    // A key that is not the certificate's.
    c.vault.client_cert = Some(identity(&s, "node.pem"));
    c.vault.client_key = Some(identity(&s, "review.key"));
    let e = get(&provider(&c, vars)).unwrap_err().to_string();
    assert!(e.contains("is not the key of the certificate"), "{e}");
}

/// A fresh node cache directory on /dev/shm, removed at the end.
struct ShmDir(PathBuf);

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn eight_ranks_of_a_node_log_in_once() {
    let s = setup();
    let shm = ShmDir(PathBuf::from(format!(
        "/dev/shm/st-secrets-identity-test-{}",
        std::process::id()
    )));
    let volume = TokenVolume::new(&mint(&s, kubernetes_claims("ml", "sa-uid-1")));
    let mut c = config(text(&s, "url"), VaultAuth::Kubernetes);
    c.vault.jwt_file = Some(volume.token());
    c.remote.node_cache = Some(true);
    c.remote.node_cache_dir = Some(shm.0.clone());
    let before = common::audited_logins(&s, "audit_log", "auth/kubernetes/login");
    let ranks: Vec<VaultProvider> = (0..8).map(|_| provider(&c, Vars::empty())).collect();
    std::thread::scope(|scope| {
        for p in &ranks {
            scope.spawn(move || {
                for _ in 0..10 {
                    assert_eq!(get(p).unwrap(), "hf_bao_value");
                }
            });
        }
    });
    assert_eq!(
        common::audited_logins(&s, "audit_log", "auth/kubernetes/login"),
        before + 1
    );
}

/// The server side the docs give (docs/vault.md, the block under
/// "run by tests/vault_identity.rs"), run as written on a fresh OpenBao dev
/// server: a pod's projected token and another JWT then log in with the
/// role it writes and read the secret its policy allows; a JWT for another
/// audience is refused.
#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn the_documented_server_side_lets_a_pod_and_a_jwt_log_in() {
    let s = setup();
    let page = std::fs::read_to_string(common::repo_root().join("docs/vault.md")).unwrap();
    let block = page
        .split("<!-- run by tests/vault_identity.rs -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("docs/vault.md has the server side's block");
    let bao = PathBuf::from(
        std::env::var("ST_TEST_BAO").expect("ST_TEST_BAO (scripts/test-all.sh openbao)"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (port, root) = (common::free_port(), format!("root-{}", std::process::id()));
    let url = format!("http://127.0.0.1:{port}");
    let mut server = std::process::Command::new(&bao);
    server
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={root}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env("HOME", dir.path());
    let server = common::spawn(server, dir.path().join("server.log"));
    common::wait_until(&server, "the OpenBao dev server", || {
        common::http_status(&format!("{url}/v1/sys/health"), &[]) == Some(200)
    });
    let path = format!(
        "{}:{}",
        bao.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("BAO_ADDR", &url)
        .env("BAO_TOKEN", &root)
        .env("KUBERNETES_API", text(&s, "review_url"))
        .env("KUBERNETES_CA", identity(&s, "ca.pem"))
        .env("JWT_ISSUER_KEY", identity(&s, "jwt-signing.pub"))
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "the docs' commands failed: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let put = agent
        .post(format!("{url}/v1/secret/data/simpletuner"))
        .header("X-Vault-Token", &root)
        .send(serde_json::json!({"data": {"HF_TOKEN": "hf_docs_value"}}).to_string())
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);

    let pod = TokenVolume::new(&mint(&s, kubernetes_claims("ml", "sa-uid-9")));
    let mut c = config(&url, VaultAuth::Kubernetes);
    c.vault.role = Some("train".into());
    c.vault.jwt_file = Some(pod.token());
    assert_eq!(get(&provider(&c, Vars::empty())).unwrap(), "hf_docs_value");

    let jwt = |aud: &str| serde_json::json!({"sub": "ci-job-7", "aud": aud, "exp": 120, "iat": 0});
    let job = TokenVolume::new(&mint(&s, jwt("st-secrets")));
    c.vault.auth = Some(VaultAuth::Jwt);
    c.vault.jwt_file = Some(job.token());
    assert_eq!(get(&provider(&c, Vars::empty())).unwrap(), "hf_docs_value");
    let other = TokenVolume::new(&mint(&s, jwt("another-service")));
    c.vault.jwt_file = Some(other.token());
    let e = get(&provider(&c, Vars::empty())).unwrap_err().to_string();
    assert!(e.contains("role 'train'"), "{e}");
    drop(server);
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_job_token_reads_its_users_and_accounts_secrets_and_no_others() {
    // The job's own token (st-secrets' job token, signed with the key the
    // slurm-jobs mount trusts) logs in to a role whose templated policy
    // reads the token's claims: each job reads its user's and its
    // account's secrets, and is refused another's.
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let token_for = |user: &str, account: &str, job_id: u64, audience: &str| -> PathBuf {
        let job = JobRecord {
            cluster: "test".into(),
            job_id,
            user: user.into(),
            uid: 1000,
            account: account.into(),
            partition: "gpu".into(),
            ..JobRecord::default()
        };
        job_token_file(
            &s,
            &job,
            audience,
            &dir.path().join(format!("job-{job_id}")),
        )
    };
    let read = |token: &Path, path: &str| {
        let mut c = config(text(&s, "url"), VaultAuth::Jwt);
        c.vault.jwt_file = Some(token.to_owned());
        c.vault.auth_mount = Some("slurm-jobs".into());
        c.vault.role = Some("job".into());
        c.vault.paths = Some(vec![path.into()]);
        get(&provider(&c, Vars::empty()))
    };
    let refused = |token: &Path, path: &str| {
        let e = read(token, path).unwrap_err();
        assert!(
            matches!(e.code_name(), "ST_PERMISSION" | "ST_AUTH"),
            "{path}: {e}"
        );
        assert!(!e.to_string().contains("hf_"), "{e}");
        e.to_string()
    };
    let alice = token_for("alice", "vision", 101, "openbao");
    assert_eq!(read(&alice, "users/alice/train").unwrap(), "hf_alice");
    assert_eq!(read(&alice, "accounts/vision/shared").unwrap(), "hf_vision");
    refused(&alice, "users/bob/train");
    refused(&alice, "accounts/nlp/shared");
    // The Slurm plugin's variable is the jwt login's JWT when nothing else
    // names one.
    let mut c = config(text(&s, "url"), VaultAuth::Jwt);
    c.vault.auth_mount = Some("slurm-jobs".into());
    c.vault.role = Some("job".into());
    c.vault.paths = Some(vec!["users/alice/train".into()]);
    let vars = Vars::empty().set("SIMPLETUNER_JOB_TOKEN_FILE", alice.to_str().unwrap());
    assert_eq!(get(&provider(&c, vars)).unwrap(), "hf_alice");
    let bob = token_for("bob", "nlp", 102, "openbao");
    assert_eq!(read(&bob, "users/bob/train").unwrap(), "hf_bob");
    assert_eq!(read(&bob, "accounts/nlp/shared").unwrap(), "hf_nlp");
    refused(&bob, "users/alice/train");
    // A token for another audience is refused at the login.
    let elsewhere = token_for("alice", "vision", 103, "another-service");
    let why = refused(&elsewhere, "users/alice/train");
    assert!(why.contains("login") || why.contains("aud"), "{why}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_jobs_end_disables_its_runs_entity_and_leaves_anothers_alone() {
    // The Slurm plugin's end of a job that read with its own token: the
    // entity of the token's sub is disabled (the policy lets a job's token
    // disable its own), so a copy of the token is refused at once; a role
    // mapping logins to the user is refused the disabling, not obeyed.
    use st_secrets::secrets::{EntityEnd, VaultJob};
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let job = JobRecord {
        cluster: "test".into(),
        job_id: 200 + u64::from(std::process::id() % 100_000),
        run: 1,
        user: "alice".into(),
        uid: 1000,
        account: "vision".into(),
        partition: "gpu".into(),
        ..JobRecord::default()
    };
    let token = job_token_file(&s, &job, "openbao", &dir.path().join("token"));
    let configured = |role: &str| {
        let mut c = config(text(&s, "url"), VaultAuth::Jwt);
        c.vault.auth_mount = Some("slurm-jobs".into());
        c.vault.role = Some(role.into());
        c.vault.paths = Some(vec!["users/alice/train".into()]);
        c
    };
    let vars = || Vars::empty().set("SIMPLETUNER_JOB_TOKEN_FILE", token.to_str().unwrap());
    let end = |role: &str| {
        let c = configured(role);
        VaultJob::new(&c.vault, &c.remote, vars()).disable_job_entity()
    };
    // A role whose entity is the user's: left enabled, and the job reads on.
    let e = end("by-user").unwrap_err().to_string();
    assert!(
        e.contains("not the job's own") && e.contains("user_claim"),
        "{e}"
    );
    assert_eq!(
        get(&provider(&configured("by-user"), vars())).unwrap(),
        "hf_alice"
    );
    // The job's run's own: disabled; another node's end finds it so.
    assert_eq!(
        get(&provider(&configured("job"), vars())).unwrap(),
        "hf_alice"
    );
    assert_eq!(end("job").unwrap(), EntityEnd::Disabled);
    assert_eq!(end("job").unwrap(), EntityEnd::DisabledAlready);
    let e = get(&provider(&configured("job"), vars())).unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    // Not a jwt login: refused by name.
    let mut c = configured("job");
    c.vault.auth = Some(VaultAuth::Kubernetes);
    let e = VaultJob::new(&c.vault, &c.remote, vars())
        .disable_job_entity()
        .unwrap_err();
    assert!(
        e.to_string().contains("only when the Vault login is `jwt`"),
        "{e}"
    );
}

//! OpenBao as the issuer of a job's subject tokens for a token exchange:
//! the job logs in with its Slurm job token (the slurm-jobs mount), each
//! exchange has OpenBao mint an identity token of role `wandb` (audience
//! the W&B fake's, the job's user and account as claims), and the W&B fake
//! of tests/exchange/fake_vendors.py verifies it through OpenBao's own
//! discovery document and keys on 127.0.0.1, matches its claims exactly and
//! gives the credential the API call then takes. The fake is the one the
//! interop suite proves with wandb's own SDK (no vendor endpoint runs here).
//!
//! `scripts/test-all.sh openbao` starts OpenBao and sets it up
//! (`tests/vault/openbao_setup.py`); these tests are `#[ignore]`d for a
//! bare `cargo test`.

mod common;

use common::text;
use serde_json::{json, Value};
use st_secrets::job::token::JobRecord;
use st_secrets::secrets::exchange::ExchangeSettings;
use st_secrets::secrets::{ManagerConfig, ProviderKind, SecretsManager, Vars, VaultAuth};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn setup() -> Value {
    common::setup("ST_TEST_VAULT_SETUP")
}

/// The vendors' fake, serving until dropped.
struct Vendors {
    child: Child,
    url: String,
}

impl Vendors {
    /// The fake, trusting `issuer` and matching `claims` exactly; W&B's
    /// credentials last 60 s (the identity tokens 120 s).
    fn start(s: &Value, issuer: &str, claims: &Value) -> Vendors {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exchange/fake_vendors.py");
        let mut child = Command::new(text(s, "python"))
            .arg(script)
            .arg(issuer)
            .arg(claims.to_string())
            .arg(r#"{"wandb": 60}"#)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
        Vendors {
            child,
            url: line.trim().to_owned(),
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent()
    }

    /// The fake's counts for W&B.
    fn counts(&self) -> Value {
        let mut r = Vendors::agent()
            .get(format!("{}/_counts", self.url))
            .call()
            .unwrap();
        let doc: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        doc["wandb"].clone()
    }

    /// The status of W&B's API call with `token`.
    fn api(&self, token: &str) -> u16 {
        Vendors::agent()
            .post(format!("{}/wandb/graphql", self.url))
            .header("authorization", &format!("Bearer {token}"))
            .send("{}")
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for Vendors {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A Slurm job token of `user` in `account`, for OpenBao's slurm-jobs
/// mount, at `path` (0600).
fn job_token(s: &Value, user: &str, account: &str, job_id: u64, path: &Path) -> PathBuf {
    let job = JobRecord {
        cluster: "test".into(),
        job_id,
        user: user.into(),
        uid: 1000,
        account: account.into(),
        partition: "gpu".into(),
        ..JobRecord::default()
    };
    common::job_token_file(s, &job, "openbao", path)
}

/// A manager exchanging `WANDB_API_KEY` at `vendors` for identity tokens
/// of `role`, logged in to OpenBao with the job token `token`.
fn manager(s: &Value, vendors: &Vendors, role: &str, token: &Path) -> SecretsManager {
    let mut c = ManagerConfig::default();
    c.remote.retries = 1;
    c.vault.url = Some(text(s, "url").into());
    c.vault.auth = Some(VaultAuth::Jwt);
    c.vault.auth_mount = Some("slurm-jobs".into());
    c.vault.role = Some("job".into());
    c.vault.jwt_file = Some(token.to_owned());
    let one: ExchangeSettings = serde_json::from_value(json!({
        "profile": "wandb",
        "url": format!("{}/wandb/oidc/token", vendors.url),
        "audience": "wandb-audience",
        "subject_vault_role": role,
    }))
    .unwrap();
    c.exchanges.insert("WANDB_API_KEY".into(), one);
    c.providers = vec![ProviderKind::Exchange];
    SecretsManager::with_environment(c, Vars::empty()).unwrap()
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn openbao_mints_each_jobs_subject_token_and_the_vendor_checks_it_by_discovery() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("{}/v1/identity/oidc", text(&s, "url"));
    let vendors = Vendors::start(&s, &issuer, &json!({"user": "alice", "account": "vision"}));
    let alice = job_token(&s, "alice", "vision", 301, &dir.path().join("alice"));

    // Alice's job: OpenBao's token carries her user and account, the fake
    // verifies it with OpenBao's published key and matches both.
    let m = manager(&s, &vendors, "wandb", &alice);
    let key = m.get("WANDB_API_KEY").unwrap().unwrap();
    assert!(key.expose().starts_with("wb_at_"));
    assert_eq!(vendors.api(key.expose()), 200);
    let again = m.get("WANDB_API_KEY").unwrap().unwrap();
    assert_eq!(again.expose(), key.expose(), "one exchange per lifetime");
    assert_eq!(vendors.counts()["exchange"], 1);
    assert_eq!(vendors.counts()["refused"], 0);

    // Bob's job: his identity token is OpenBao's too, but the registration
    // matches alice's claims: refused by the vendor, said without a token.
    let bob = job_token(&s, "bob", "nlp", 302, &dir.path().join("bob"));
    let e = manager(&s, &vendors, "wandb", &bob)
        .get("WANDB_API_KEY")
        .unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.to_string().contains("eyJ"), "{e}");
    assert_eq!(vendors.counts()["refused"], 1);

    // A role whose tokens are for another audience (AWS STS): refused
    // before anything is sent to the vendor.
    let e = manager(&s, &vendors, "aws", &alice)
        .get("WANDB_API_KEY")
        .unwrap_err();
    assert!(e.to_string().contains("sts.amazonaws.com"), "{e}");
    let counts = vendors.counts();
    assert_eq!(
        (counts["exchange"].as_u64(), counts["refused"].as_u64()),
        (Some(1), Some(1)),
        "nothing more reached the vendor"
    );
}

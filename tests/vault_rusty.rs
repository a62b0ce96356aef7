//! The Vault provider against a real RustyVault server (KV v1 semantics;
//! RustyVault has no KV v2 paths, no sys/internal/ui/mounts, no namespaces:
//! those are covered against the fake server in `src/vault/tests.rs`).
//!
//! `scripts/test-all.sh` installs RustyVault (`cargo install rusty_vault`,
//! into `~/.cache/st-secrets`), starts it on 127.0.0.1 with file storage in a
//! temporary directory, initialises, unseals and fills it
//! (`tests/vault/rusty_setup.py`), and runs these tests with
//! `ST_TEST_VAULT_SETUP` naming the set-up JSON; they are `#[ignore]`d for a
//! bare `cargo test`.

mod common;

use common::get;
use serde_json::Value;
use st_secrets::secrets::Vars;
use st_secrets::secrets::VaultProvider;
use st_secrets::secrets::{ManagerConfig, ProviderKind, SecretsManager};
use st_secrets::SecretString;
use std::sync::Arc;

fn setup() -> Value {
    common::setup("ST_TEST_VAULT_SETUP")
}

fn config(s: &Value) -> ManagerConfig {
    ManagerConfig {
        vault_url: Some(s["url"].as_str().unwrap().into()),
        vault_token: Some(SecretString::from(s["root_token"].as_str().unwrap())),
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    }
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn kv_v1_through_the_chain_after_the_v2_probe() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Env, ProviderKind::File, ProviderKind::Vault],
        file_path: Some(dir.path().join("secrets.json")),
        env_prefix: Some("ST_RUSTY_TEST".into()),
        ..config(&s)
    };
    let m = SecretsManager::with_environment(c, Vars::empty()).unwrap();
    let (value, source) = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    assert_eq!((value.expose(), source), ("hf_rusty_value", "vault"));
    assert_eq!(
        get(&m, "replicate-api-token").unwrap().as_deref(),
        Some("r8_rusty_value")
    );
    assert_eq!(get(&m, "NOT_THERE").unwrap(), None);
    let detail = &m.providers()[2].status.detail;
    assert!(detail.contains("KV v1 (probe)"), "{detail}");
    assert!(detail.contains("; 1 request"), "{detail}");
    m.set("HF_TOKEN", "from-file").unwrap();
    assert_eq!(m.get_with_source("HF_TOKEN").unwrap().unwrap().1, "file");
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn kv_v1_configured_and_another_path() {
    let s = setup();
    let c = ManagerConfig {
        vault_kv_version: Some(1),
        vault_path: Some("team/other".into()),
        ..config(&s)
    };
    let m = SecretsManager::with_environment(c, Vars::empty()).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    let c = ManagerConfig {
        vault_path: Some("no/such/secret".into()),
        ..config(&s)
    };
    let m = SecretsManager::with_environment(c, Vars::empty()).unwrap();
    assert_eq!(get(&m, "HF_TOKEN").unwrap(), None);
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn a_bad_token_is_st_auth_without_the_token() {
    let s = setup();
    let c = ManagerConfig {
        vault_token: Some(SecretString::from("hvs.definitely-not-valid")),
        ..config(&s)
    };
    let m = SecretsManager::with_environment(c, Vars::empty()).unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.message().contains("definitely-not-valid"), "{e}");
    assert!(e.message().contains("provider 'vault'"), "{e}");
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn environment_only_configuration_and_the_token_file() {
    let s = setup();
    let c = ManagerConfig {
        providers: vec![ProviderKind::Vault],
        ..ManagerConfig::default()
    };
    let vars = Vars::empty()
        .set("VAULT_ADDR", s["url"].as_str().unwrap())
        .set("VAULT_TOKEN", s["root_token"].as_str().unwrap());
    let m = SecretsManager::with_environment(c.clone(), vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_rusty_value")
    );

    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".vault-token"),
        s["root_token"].as_str().unwrap(),
    )
    .unwrap();
    let vars = Vars::empty()
        .home(home.path())
        .set("VAULT_ADDR", s["url"].as_str().unwrap())
        .set("SIMPLETUNER_VAULT_PATH", "team/other");
    let m = SecretsManager::with_environment(c, vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_other_path")
    );
    assert!(m.providers()[0].status.detail.contains("~/.vault-token"));
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn two_threads_times_ten_thousand_gets_send_one_request() {
    let s = setup();
    let c = ManagerConfig {
        vault_kv_version: Some(1),
        ..config(&s)
    };
    let p = Arc::new(VaultProvider::new(&c, Vars::empty()));
    common::two_threads_ten_thousand_gets(p.clone(), "hf_rusty_value");
    assert_eq!(p.requests(), 1);
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn the_doctor_checks_token_and_readability() {
    let s = setup();
    let m = SecretsManager::with_environment(config(&s), Vars::empty()).unwrap();
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let c = &d[0]["checks"];
    assert_eq!(c["token"]["valid"], true, "{c}");
    assert_eq!(c["secret_readable"]["readable"], true, "{c}");
    assert_eq!(c["secret_readable"]["keys"], 2);
    assert_eq!(c["kv_version"], "KV v1 (probe)");
    let text = d.to_string();
    assert!(!text.contains(s["root_token"].as_str().unwrap()), "{text}");
    assert!(!text.contains("hf_rusty_value"));

    let bad = ManagerConfig {
        vault_token: Some(SecretString::from("hvs.bad")),
        ..config(&s)
    };
    let m = SecretsManager::with_environment(bad, Vars::empty()).unwrap();
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    assert_eq!(d[0]["checks"]["token"]["valid"], false);
    assert_eq!(d[0]["checks"]["token"]["error"]["code"], "ST_AUTH");
}

#[test]
#[ignore = "needs RustyVault: run scripts/test-all.sh"]
fn the_tool_reads_vault_from_the_process_environment() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let tool = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_st-secrets"))
            .args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VAULT_ADDR", s["url"].as_str().unwrap())
            .env("VAULT_TOKEN", s["root_token"].as_str().unwrap())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = tool(&["get", "REPLICATE_API_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "r8_rusty_value"), "{err}");

    // run takes every key of the Vault secret into the command's environment.
    let script = "printf %s \"$REPLICATE_API_TOKEN\"";
    let (code, out, err) = tool(&["run", "--no-mask", "--", "sh", "-c", script]);
    assert_eq!((code, out.as_str()), (Some(0), "r8_rusty_value"), "{err}");
}

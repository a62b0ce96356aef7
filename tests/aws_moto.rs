//! The AWS provider against moto's real server, with SigV4 verification on
//! (`INITIAL_NO_AUTH_ACTION_COUNT`): every request below must be correctly
//! signed by a key moto's IAM knows and pass its policy evaluation.
//!
//! `scripts/test-all.sh` starts moto on 127.0.0.1, runs
//! `tests/aws/moto_setup.py` and runs these tests with `ST_TEST_MOTO_SETUP`
//! naming its output; they are `#[ignore]`d for a bare `cargo test`.

mod common;

use common::get;
use serde_json::Value;
use st_secrets::secrets::{AwsProvider, Vars};
use st_secrets::secrets::{AwsSettings, FileSettings};
use st_secrets::secrets::{ManagerConfig, Provider, ProviderKind, SecretsManager};
use std::sync::Arc;

fn setup() -> Value {
    common::setup("ST_TEST_MOTO_SETUP")
}

fn config(s: &Value, secret: &str) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Aws],
        aws: AwsSettings {
            secret_names: Some(vec![secret.into()]),
            region: Some(s["region"].as_str().unwrap().into()),
            endpoint: Some(s["url"].as_str().unwrap().into()),
            agent_url: None,
        },
        ..ManagerConfig::default()
    }
}

/// The chain env (variables `<prefix>_KEY`) > the secrets file `file` >
/// AWS (`st-secrets/test`).
fn chain(s: &Value, prefix: &str, file: std::path::PathBuf) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Env, ProviderKind::File, ProviderKind::Aws],
        env_prefix: Some(prefix.into()),
        file: FileSettings {
            path: Some(file),
            ..config(s, "st-secrets/test").file
        },
        ..config(s, "st-secrets/test")
    }
}

/// The provider built from `c`'s AWS and remote settings.
fn provider(c: &ManagerConfig, vars: Vars) -> AwsProvider {
    AwsProvider::new(&c.aws, &c.remote, vars)
}

fn keys(s: &Value, who: &str) -> Vars {
    Vars::empty()
        .set("AWS_ACCESS_KEY_ID", s[who]["id"].as_str().unwrap())
        .set("AWS_SECRET_ACCESS_KEY", s[who]["secret"].as_str().unwrap())
        .set("AWS_SESSION_TOKEN", s[who]["token"].as_str().unwrap_or(""))
        .set("AWS_EC2_METADATA_DISABLED", "true")
        .set("AWS_ENDPOINT_URL_STS", s["url"].as_str().unwrap())
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn a_get_through_the_chain_with_env_winning() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let config = chain(&s, "ST_MOTO_TEST", dir.path().join("secrets.json"));
    let m = SecretsManager::with_environment(config, keys(&s, "admin")).unwrap();
    let (value, source) = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    assert_eq!((value.expose(), source), ("hf_moto_value", "aws"));
    // Which version of the secret answered: moto's VersionId and stage.
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    let version = found.version.unwrap();
    assert_eq!(version.id, s["test_version"].as_str().unwrap());
    assert_eq!(version.stages, ["AWSCURRENT"]);
    assert_eq!(
        get(&m, "replicate-api-token").unwrap().as_deref(),
        Some("r8_moto_value")
    );
    assert_eq!(get(&m, "PORT").unwrap().as_deref(), Some("8080"));
    assert_eq!(get(&m, "NOT_THERE").unwrap(), None);
    // The file and then the environment win over AWS.
    m.set("HF_TOKEN", "from-file").unwrap();
    assert_eq!(m.get_with_source("HF_TOKEN").unwrap().unwrap().1, "file");
    // SAFETY of the test: only this test uses the ST_MOTO_TEST prefix, and
    // the moto tests run single-threaded (scripts/test-all.sh).
    std::env::set_var("ST_MOTO_TEST_HF_TOKEN", "from-env");
    let answer = m.get_with_source("HF_TOKEN").unwrap().unwrap();
    std::env::remove_var("ST_MOTO_TEST_HF_TOKEN");
    assert_eq!((answer.0.expose(), answer.1), ("from-env", "env"));
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn wrong_keys_and_denied_users_are_st_auth() {
    let s = setup();
    let wrong = keys(&s, "admin").set("AWS_SECRET_ACCESS_KEY", "not-the-right-secret-key-at-all");
    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), wrong).unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(!e.message().contains("not-the-right"), "{e}");

    let unknown = keys(&s, "admin").set("AWS_ACCESS_KEY_ID", "AKIANOTKNOWNTOMOTO00");
    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), unknown).unwrap();
    assert_eq!(m.get("HF_TOKEN").unwrap_err().code_name(), "ST_AUTH");

    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), keys(&s, "outsider"))
        .unwrap();
    let e = m.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(e.message().contains("AccessDenied"), "{e}");
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn shared_profile_files_and_session_credentials() {
    let s = setup();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[moto]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s["admin"]["id"].as_str().unwrap(),
            s["admin"]["secret"].as_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile moto]\nregion = us-east-1\n",
    )
    .unwrap();
    let mut c = config(&s, "st-secrets/test");
    c.aws.region = None; // from the profile
    let vars = Vars::empty()
        .home(home.path())
        .set("AWS_PROFILE", "moto")
        .set("AWS_EC2_METADATA_DISABLED", "true");
    let m = SecretsManager::with_environment(c, vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    assert!(m.providers()[0]
        .status
        .detail
        .contains("shared profile 'moto'"));

    // Temporary credentials from moto's STS (AssumeRole), with their token.
    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), keys(&s, "session"))
        .unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let arn = d[0]["checks"]["caller"]["arn"].as_str().unwrap();
    assert!(arn.contains("assumed-role/trainer"), "{arn}");
    // The same key without its token is refused.
    let tokenless = keys(&s, "session").set("AWS_SESSION_TOKEN", "");
    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), tokenless).unwrap();
    assert_eq!(m.get("HF_TOKEN").unwrap_err().code_name(), "ST_AUTH");
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn the_endpoint_override_by_variable() {
    let s = setup();
    let mut c = config(&s, "st-secrets/test");
    c.aws.endpoint = None;
    let vars = keys(&s, "admin").set(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        s["url"].as_str().unwrap(),
    );
    let m = SecretsManager::with_environment(c.clone(), vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let vars = keys(&s, "admin").set("AWS_ENDPOINT_URL", s["url"].as_str().unwrap());
    let m = SecretsManager::with_environment(c, vars).unwrap();
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn secret_shapes_binary_plain_and_missing() {
    let s = setup();
    let m =
        |name: &str| SecretsManager::with_environment(config(&s, name), keys(&s, "admin")).unwrap();
    assert_eq!(
        get(&m("st-secrets/binary"), "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let e = m("st-secrets/plain").get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_PARSE", "{e}");
    assert!(!e.message().contains("just-a-token"), "{e}");
    assert_eq!(
        get(&m("st-secrets/does-not-exist"), "HF_TOKEN").unwrap(),
        None
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn two_threads_times_ten_thousand_gets_send_one_request() {
    let s = setup();
    let c = config(&s, "st-secrets/test");
    let p = Arc::new(provider(&c, keys(&s, "admin")));
    common::two_threads_ten_thousand_gets(p.clone(), "hf_moto_value");
    assert_eq!(p.requests(), 1);
    assert!(
        p.status().detail.contains("; 1 request;"),
        "{}",
        p.status().detail
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn the_doctor_names_source_identity_and_readability() {
    let s = setup();
    let m =
        SecretsManager::with_environment(config(&s, "st-secrets/test"), keys(&s, "admin")).unwrap();
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let c = &d[0]["checks"];
    assert_eq!(c["credentials"], "environment variables");
    assert!(
        c["caller"]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":user/admin"),
        "{c}"
    );
    assert_eq!(c["secret_readable"]["readable"], true);
    assert_eq!(c["secret_readable"]["keys"], 3);
    let text = d.to_string();
    assert!(
        !text.contains("hf_moto_value") && !text.contains(s["admin"]["secret"].as_str().unwrap())
    );

    let m = SecretsManager::with_environment(config(&s, "st-secrets/test"), keys(&s, "outsider"))
        .unwrap();
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let c = &d[0]["checks"];
    assert!(
        c["caller"]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":user/outsider"),
        "{c}"
    );
    assert_eq!(c["secret_readable"]["readable"], false);
    assert_eq!(c["secret_readable"]["error"]["code"], "ST_AUTH");
}

/// A home whose `~/.aws` holds `credentials` and `config`.
fn aws_home(credentials: &str, config: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
    std::fs::write(home.path().join(".aws/config"), config).unwrap();
    home
}

/// A manager reading profile `profile` of `home`, with STS at moto.
fn with_profile(s: &Value, home: &std::path::Path, profile: &str, vars: Vars) -> SecretsManager {
    let vars = vars
        .home(home)
        .set("AWS_PROFILE", profile)
        .set("AWS_EC2_METADATA_DISABLED", "true")
        .set("AWS_ENDPOINT_URL_STS", s["url"].as_str().unwrap());
    SecretsManager::with_environment(config(s, "st-secrets/test"), vars).unwrap()
}

/// The ARN moto's STS gives the caller of `m`.
fn caller_arn(m: &SecretsManager) -> String {
    let d: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    d[0]["checks"]["caller"]["arn"]
        .as_str()
        .unwrap_or_else(|| panic!("{d}"))
        .to_owned()
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn profile_roles_are_assumed_with_their_source_profile_chained_and_with_options() {
    let s = setup();
    let role = s["role_arn"].as_str().unwrap();
    let home = aws_home(
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s["admin"]["id"].as_str().unwrap(),
            s["admin"]["secret"].as_str().unwrap()
        ),
        &format!(
            "[profile trainer]\nrole_arn = {role}\nsource_profile = base\n\
             external_id = ext-1234\nrole_session_name = st-secrets-it\nduration_seconds = 900\n\
             [profile chained]\nrole_arn = {role}\nsource_profile = trainer\n\
             role_session_name = second-hop\n"
        ),
    );
    let m = with_profile(&s, home.path(), "trainer", Vars::empty());
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let detail = &m.providers()[0].status.detail;
    assert!(
        detail.contains("role of shared profile 'trainer'"),
        "{detail}"
    );
    assert!(caller_arn(&m).ends_with("assumed-role/trainer/st-secrets-it"));

    // trainer's temporary credentials assume the role again.
    let m = with_profile(&s, home.path(), "chained", Vars::empty());
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    assert!(caller_arn(&m).ends_with("assumed-role/trainer/second-hop"));
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn credential_source_environment_assumes_the_role_with_the_environment_keys() {
    let s = setup();
    let home = aws_home(
        "",
        &format!(
            "[profile ci]\nrole_arn = {}\ncredential_source = Environment\n",
            s["role_arn"].as_str().unwrap()
        ),
    );
    let m = with_profile(&s, home.path(), "ci", keys(&s, "admin"));
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    assert!(caller_arn(&m).contains("assumed-role/trainer/st-secrets-"));

    // Without AWS_PROFILE the environment's keys are used as they are.
    let m = SecretsManager::with_environment(
        config(&s, "st-secrets/test"),
        keys(&s, "admin").home(home.path()),
    )
    .unwrap();
    assert!(
        caller_arn(&m).ends_with(":user/admin"),
        "{}",
        caller_arn(&m)
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn credential_process_profiles_with_static_and_temporary_credentials() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, doc: Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\ncat <<'EOF'\n{doc}\nEOF\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Through /bin/sh: a script just written can be "busy" for exec
        // while another thread forks (ETXTBSY); tests run in threads.
        format!("/bin/sh {}", p.display())
    };
    let admin = script(
        "admin-creds",
        serde_json::json!({"Version": 1, "AccessKeyId": s["admin"]["id"],
            "SecretAccessKey": s["admin"]["secret"]}),
    );
    let session = script(
        "session-creds",
        serde_json::json!({"Version": 1, "AccessKeyId": s["session"]["id"],
            "SecretAccessKey": s["session"]["secret"], "SessionToken": s["session"]["token"],
            "Expiration": "2099-01-01T00:00:00Z"}),
    );
    let home = aws_home(
        "",
        &format!(
            "[profile tool]\ncredential_process = {admin} --profile \"some name\"\n\
             [profile temporary]\ncredential_process = {session}\n"
        ),
    );
    let m = with_profile(&s, home.path(), "tool", Vars::empty());
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let detail = &m.providers()[0].status.detail;
    assert!(
        detail.contains("credential_process of shared profile 'tool'"),
        "{detail}"
    );
    assert!(caller_arn(&m).ends_with(":user/admin"));

    let m = with_profile(&s, home.path(), "temporary", Vars::empty());
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    assert!(caller_arn(&m).contains("assumed-role/trainer"));
}

/// The AWS provider configured for the agent at `url` (no region, no
/// endpoint, no credentials: the agent has them), reading `names` in order.
fn agent_config(url: &str, names: &[&str]) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Aws],
        aws: AwsSettings {
            secret_names: Some(names.iter().map(|n| (*n).to_owned()).collect()),
            agent_url: Some(url.into()),
            ..AwsSettings::default()
        },
        ..ManagerConfig::default()
    }
}

#[test]
#[ignore = "needs moto and the AWS Secrets Manager Agent: run scripts/test-all.sh moto"]
fn through_the_real_aws_agent_values_not_found_and_a_bad_token() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("awssmatoken");
    std::fs::write(&token, "agent-ssrf-token\n").unwrap();
    let (_agent, url) = common::start_aws_agent(&s, dir.path(), &token, None);
    let vars = Vars::empty()
        .set("AWS_TOKEN", &format!("file://{}", token.display()))
        .set("AWS_EC2_METADATA_DISABLED", "true");
    common::moto_record(&s);
    let c = agent_config(
        &url,
        &[
            "st-secrets/team",
            "st-secrets/nonexistent",
            "st-secrets/test",
        ],
    );
    let m = SecretsManager::with_environment(c, vars.clone()).unwrap();
    // In order: the team's value wins, a key only in the last is found, the
    // missing secret in between is skipped.
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_team_value")
    );
    assert_eq!(get(&m, "TEAM_ONLY").unwrap().as_deref(), Some("team"));
    assert_eq!(
        get(&m, "REPLICATE_API_TOKEN").unwrap().as_deref(),
        Some("r8_moto_value")
    );
    assert_eq!(get(&m, "PORT").unwrap().as_deref(), Some("8080"));
    assert_eq!(get(&m, "NOT_THERE").unwrap(), None);
    // Our side sent no signed request: every GetSecretValue moto saw came
    // from the agent, one per secret.
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        3,
        "one upstream request per secret"
    );
    // A second process on the node (a new manager) is served by the agent's
    // cache: nothing more reaches moto.
    let again =
        SecretsManager::with_environment(agent_config(&url, &["st-secrets/test"]), vars.clone())
            .unwrap();
    assert_eq!(
        get(&again, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        3
    );
    // A wrong token: ST_AUTH naming the token's source, never a token.
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-agent-token").unwrap();
    let bad = SecretsManager::with_environment(
        agent_config(&url, &["st-secrets/test"]),
        Vars::empty().set("AWS_TOKEN", &format!("file://{}", wrong.display())),
    )
    .unwrap();
    let e = bad.get("HF_TOKEN").unwrap_err();
    assert_eq!(e.code_name(), "ST_AUTH", "{e}");
    assert!(e.message().contains("wrong-token"), "{e}");
    assert!(!e.message().contains("not-the-agent-token"), "{e}");
    assert!(!e.message().contains("agent-ssrf-token"), "{e}");
    // The doctor: the agent's health and each secret's readability.
    let p = provider(&agent_config(&url, &["st-secrets/test"]), vars);
    let d = p.diagnose().unwrap();
    assert_eq!(d["ping"]["healthy"], true, "{d}");
    assert_eq!(d["secret_readable"]["readable"], true, "{d}");
}

#[test]
#[ignore = "needs moto and the AWS Secrets Manager Agent: run scripts/test-all.sh moto"]
fn a_token_file_rewritten_in_place_by_one_write_fails_no_get() {
    // `echo T > file` every 20 ms (the same token: truncate, one write)
    // while gets run, each with a new manager as a new process would:
    // round 5 found 19 of 682 refused ("Bad Token": the agent read the
    // file between the truncate and the write).
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("awssmatoken");
    std::fs::write(&token, "agent-ssrf-token\n").unwrap();
    let (_agent, url) = common::start_aws_agent(&s, dir.path(), &token, None);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (token, stop) = (token.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut f = std::fs::File::create(&token).unwrap();
                f.write_all(b"agent-ssrf-token\n").unwrap();
                drop(f);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let (mut gets, mut failed) = (0, Vec::new());
    let began = std::time::Instant::now();
    while began.elapsed() < std::time::Duration::from_secs(5) {
        let mut c = agent_config(&url, &["st-secrets/test"]);
        c.remote.cache_ttl = std::time::Duration::ZERO;
        let vars = Vars::empty().set("AWS_TOKEN", &format!("file://{}", token.display()));
        let m = SecretsManager::with_providers(c.clone(), vec![Arc::new(provider(&c, vars))]);
        gets += 1;
        match get(&m, "HF_TOKEN") {
            Ok(Some(v)) if v == "hf_moto_value" => {}
            other => failed.push(format!("{other:?}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    println!(
        "token file rewritten in place: {gets} gets, {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {gets} failed: {:?}",
        failed.len(),
        failed.first()
    );
}

#[test]
#[ignore = "needs moto and the AWS Secrets Manager Agent: run scripts/test-all.sh moto"]
fn the_agent_stopped_mid_run_gets_the_stale_value_served() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("awssmatoken");
    std::fs::write(&token, "agent-ssrf-token").unwrap();
    let (mut agent, url) = common::start_aws_agent(&s, dir.path(), &token, None);
    let mut c = agent_config(&url, &["st-secrets/test"]);
    c.remote.cache_ttl = std::time::Duration::ZERO;
    c.remote.failure_ttl = std::time::Duration::ZERO;
    c.remote.backoff_base = std::time::Duration::from_millis(1);
    let vars = Vars::empty().set("AWS_TOKEN", &format!("file://{}", token.display()));
    let p = Arc::new(provider(&c, vars));
    let m = SecretsManager::with_providers(c, vec![p.clone() as Arc<dyn Provider>]);
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    agent.stop();
    // Every fetch now fails to connect; the last good value is served, and
    // the status says why.
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_moto_value")
    );
    let status = p.status();
    assert_eq!(
        status.failure.as_ref().map(|e| e.code_name()),
        Some("ST_NETWORK"),
        "{status:?}"
    );
    assert!(
        status.warnings[0].contains("last fetch failed"),
        "{status:?}"
    );
    // Without a stale value to serve, the failure comes through.
    let mut fresh = agent_config(&url, &["st-secrets/test"]);
    fresh.remote.backoff_base = std::time::Duration::from_millis(1);
    let m =
        SecretsManager::with_environment(fresh, Vars::empty().set("AWS_TOKEN", "agent-ssrf-token"))
            .unwrap();
    assert_eq!(m.get("HF_TOKEN").unwrap_err().code_name(), "ST_NETWORK");
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn a_rotation_through_awspending_reaches_every_reader_without_a_failed_call() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::time::{Duration, Instant};
    let s = setup();
    let name = "st-secrets/rotating";
    let v1 = common::moto_rotate(&s, &["create", name, r#"{"HF_TOKEN": "hf_rotation_v1"}"#]);
    let mut c = config(&s, name);
    c.remote.cache_ttl = Duration::from_secs(2); // soft deadline at 1.5 s
    let m = Arc::new(SecretsManager::with_providers(
        c.clone(),
        vec![Arc::new(provider(&c, keys(&s, "admin")))],
    ));
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let told = Arc::clone(&events);
    m.on_change(move |e| told.lock().unwrap().push(e.clone()));
    assert_eq!(
        common::get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_rotation_v1")
    );

    // 8 readers for the whole rotation: each call's value and version.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let promoted: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (m, stop, failed, promoted) = (
                Arc::clone(&m),
                Arc::clone(&stop),
                Arc::clone(&failed),
                Arc::clone(&promoted),
            );
            std::thread::spawn(move || {
                // (the first new value's lag after the promotion, and what
                // came out of order: a new value before it or without its
                // stage, an old one after a new one).
                let (mut lag, mut out_of_order) = (None, std::collections::BTreeSet::new());
                while !stop.load(SeqCst) {
                    match m.get_with_version("HF_TOKEN") {
                        Ok(Some(f)) if f.value.expose() == "hf_rotation_v2" => {
                            let at = *promoted.lock().unwrap();
                            if at.is_none() {
                                out_of_order.insert("v2 before the promotion".to_owned());
                            }
                            lag = lag.or(at.map(|t| t.elapsed()));
                            let stages = &f.version.unwrap().stages;
                            if !stages.iter().any(|st| st == "AWSCURRENT") {
                                out_of_order.insert(format!("v2 staged {stages:?}"));
                            }
                        }
                        Ok(Some(f)) if f.value.expose() == "hf_rotation_v1" => {
                            if lag.is_some() {
                                out_of_order.insert("v1 after v2".to_owned());
                            }
                        }
                        _ => {
                            failed.fetch_add(1, SeqCst);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                (lag, out_of_order)
            })
        })
        .collect();
    // The rotation function's first step: a pending version. Callers keep
    // AWSCURRENT's value through refreshes.
    let v2 = common::moto_rotate(&s, &["pending", name, r#"{"HF_TOKEN": "hf_rotation_v2"}"#]);
    std::thread::sleep(Duration::from_secs(3));
    // The last step moves AWSCURRENT. The promotion counts from before the
    // call: moto has moved the stage before the call returns (its process
    // still exiting), and a refresh in between rightly reads v2.
    *promoted.lock().unwrap() = Some(Instant::now());
    common::moto_rotate(&s, &["promote", name, &v2, &v1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while events.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the rotation was never told");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, SeqCst);
    let lags: Vec<(Option<Duration>, std::collections::BTreeSet<String>)> =
        readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(failed.load(SeqCst), 0, "no call failed");
    assert!(
        lags.iter().all(|(lag, _)| lag.is_some()),
        "every reader on v2: {lags:?}"
    );
    assert!(
        lags.iter().all(|(_, bad)| bad.is_empty()),
        "no v2 before the promotion, no v1 after v2: {lags:?}"
    );
    let slowest = lags.iter().filter_map(|(l, _)| *l).max().unwrap();
    println!(
        "rotation reached the last reader {slowest:?} after AWSCURRENT's move began (TTL 2 s)"
    );
    // Told once, with the new version; never the value.
    let told = events.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0].key.as_str(), told[0].provider),
        ("HF_TOKEN", "aws")
    );
    assert_eq!(told[0].version.as_ref().unwrap().id, v2);
    assert!(!format!("{told:?}").contains("hf_rotation"));

    // "This value failed me" from 8 threads, 100 calls: one request.
    let mut c = config(&s, name);
    c.remote.refresh_min_interval = Duration::from_secs(60);
    let m = Arc::new(SecretsManager::with_providers(
        c.clone(),
        vec![Arc::new(provider(&c, keys(&s, "admin")))],
    ));
    assert_eq!(
        common::get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_rotation_v2")
    );
    common::moto_record(&s);
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let storm: Vec<_> = (0..8)
        .map(|i| {
            let (m, barrier) = (Arc::clone(&m), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..(if i < 4 { 13 } else { 12 }) {
                    let r = m.refresh("HF_TOKEN").unwrap().unwrap();
                    assert_eq!(r.found.value.expose(), "hf_rotation_v2");
                }
            })
        })
        .collect();
    storm.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        1,
        "100 refreshes within the interval: one request"
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn references_in_the_environment_and_a_yaml_file_resolve_through_aws() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(
        &file,
        "wandb: st://replicate-api-token\nmissing: st://NOT_IN_AWS\n",
    )
    .unwrap();
    let config = chain(&s, "ST_MOTO_REF", file);
    let m = SecretsManager::with_environment(config, keys(&s, "admin")).unwrap();
    // SAFETY of the test: only this test uses the ST_MOTO_REF prefix, and
    // the moto tests run single-threaded (scripts/test-all.sh).
    std::env::set_var("ST_MOTO_REF_HF_TOKEN", "st://HF_TOKEN");
    std::env::set_var("ST_MOTO_REF_LOOP", "st://loop");
    std::env::set_var("ST_MOTO_REF_ENV_ONLY", "st://ST_MOTO_REF_X");
    std::env::set_var("ST_MOTO_REF_ST_MOTO_REF_X", "in-env");
    // env -> AWS, with AWS's version: a launcher's HF_TOKEN=st://HF_TOKEN.
    let found = m.get_with_version("HF_TOKEN").unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider),
        ("hf_moto_value", "aws")
    );
    assert_eq!(
        found.version.unwrap().id,
        s["test_version"].as_str().unwrap()
    );
    // A reference in a YAML secrets file -> AWS.
    assert_eq!(get(&m, "wandb").unwrap().as_deref(), Some("r8_moto_value"));
    // Unknown: refused by name, after AWS said it has no such key.
    let e = m.get("missing").unwrap_err().to_string();
    assert!(
        e.contains("'missing' in provider 'file' is the reference st://NOT_IN_AWS, which no provider after 'file' holds (aws;"),
        "{e}"
    );
    // A key only the environment holds is not reached from the environment.
    let e = m.get("ENV_ONLY").unwrap_err();
    assert_eq!(e.code_name(), "ST_INVALID_ARGUMENT", "{e}");
    // env LOOP -> file has no `loop` -> AWS has none: no loop, an answer.
    assert!(m.get("LOOP").unwrap_err().to_string().contains("st://loop"));
    for v in ["HF_TOKEN", "LOOP", "ENV_ONLY", "ST_MOTO_REF_X"] {
        std::env::remove_var(format!("ST_MOTO_REF_{v}"));
    }
}

/// Accepts one HTTP request on `listener` (a stand-in for Vault's login
/// endpoint), answers it 400, and returns its body.
fn capture_one(listener: std::net::TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    use std::io::{BufRead, BufReader, Read, Write};
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer = r#"{"errors": ["captured by the test"]}"#;
        write!(
            &stream,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        body
    })
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn a_vault_aws_login_is_a_request_sts_accepts_and_a_tampered_one_it_refuses() {
    // Vault's aws method sends the login's signed GetCallerIdentity on to
    // STS: this test does the same with moto's STS, which checks SigV4.
    use base64::Engine as _;
    let s = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vault = format!("http://{}", listener.local_addr().unwrap());
    let captured = capture_one(listener);
    let mut c = ManagerConfig::default();
    c.vault.url = Some(vault);
    c.vault.auth = Some(st_secrets::secrets::VaultAuth::Aws);
    c.vault.role = Some("trainer".into());
    c.vault.aws_server_id = Some("vault.example.com".into());
    c.remote.retries = 0;
    let vars = keys(&s, "admin").set("AWS_REGION", s["region"].as_str().unwrap());
    let p = st_secrets::secrets::VaultProvider::new(&c.vault, &c.remote, vars);
    let e = p.lookup("HF_TOKEN").unwrap_err().to_string();
    assert!(e.contains("AWS IAM login refused (HTTP 400)"), "{e}");
    let body: Value = serde_json::from_slice(&captured.join().unwrap()).unwrap();
    let b64 = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(body[k].as_str().unwrap())
            .unwrap()
    };
    let url = String::from_utf8(b64("iam_request_url")).unwrap();
    assert_eq!(url, format!("{}/", s["url"].as_str().unwrap()));
    let headers: Value = serde_json::from_slice(&b64("iam_request_headers")).unwrap();
    let send = |authorization: &str| {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut request = agent.post(&url);
        for (name, values) in headers.as_object().unwrap() {
            let value = values[0].as_str().unwrap();
            let value = if name == "authorization" {
                authorization
            } else {
                value
            };
            request = request.header(name.as_str(), value);
        }
        let mut r = request.send(&b64("iam_request_body")[..]).unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let signed = headers["authorization"][0].as_str().unwrap();
    let (status, text) = send(signed);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("<Arn>") && text.contains("GetCallerIdentityResult"),
        "{text}"
    );
    // One character of the signature changed: refused.
    let mut tampered = signed.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let (status, text) = send(&tampered);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
}

/// What `m` serves for `key` once `done` says so, asking every 5 ms for at
/// most 20 TTLs (a get past the TTL is answered with the value held while
/// the refresh runs in the background).
fn settled(
    m: &SecretsManager,
    key: &str,
    ttl: std::time::Duration,
    done: impl Fn(&st_secrets::secrets::Found) -> bool,
) -> st_secrets::secrets::Found {
    let deadline = std::time::Instant::now() + ttl * 20;
    loop {
        let found = m.get_with_version(key).unwrap().unwrap();
        if done(&found) {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "never settled");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A manager of `name` on moto with `who`'s keys, its values kept `ttl`.
fn rotating(s: &Value, name: &str, who: &str, ttl: std::time::Duration) -> SecretsManager {
    let mut c = config(s, name);
    c.remote.cache_ttl = ttl;
    SecretsManager::with_providers(c.clone(), vec![Arc::new(provider(&c, keys(s, who)))])
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn an_unchanged_secret_costs_no_value_over_a_hundred_ttls() {
    use std::time::{Duration, Instant};
    let s = setup();
    let name = "st-secrets/unchanged";
    common::moto_rotate(&s, &["create", name, r#"{"HF_TOKEN": "hf_unchanged"}"#]);
    let ttl = Duration::from_millis(100);
    let m = rotating(&s, name, "admin", ttl);
    assert_eq!(
        get(&m, "HF_TOKEN").unwrap().as_deref(),
        Some("hf_unchanged")
    );
    common::moto_record(&s);
    let until = Instant::now() + ttl * 100;
    while Instant::now() < until {
        assert_eq!(
            get(&m, "HF_TOKEN").unwrap().as_deref(),
            Some("hf_unchanged")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let values = common::moto_recorded(&s, "secretsmanager.GetSecretValue");
    let checks = common::moto_recorded(&s, "secretsmanager.DescribeSecret");
    assert_eq!(values, 0, "100 TTLs of an unchanged secret sent no value");
    assert!(
        checks >= 80,
        "each TTL asked the version: {checks} DescribeSecret"
    );
    let bench = serde_json::json!({"kind": "unchanged", "ttls": 100, "rights": "DescribeSecret",
        "get_secret_value": values, "describe_secret": checks});
    println!("BENCH {bench}");
    // A new version: fetched at the next check, once.
    common::moto_record(&s);
    let v = common::moto_rotate(&s, &["pending", name, r#"{"HF_TOKEN": "hf_changed"}"#]);
    let old = m
        .get_with_version("HF_TOKEN")
        .unwrap()
        .unwrap()
        .version
        .unwrap()
        .id;
    common::moto_rotate(&s, &["promote", name, &v, &old]);
    let found = settled(&m, "HF_TOKEN", ttl, |f| f.value.expose() == "hf_changed");
    assert_eq!(found.version.unwrap().stages, ["AWSCURRENT"]);
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        1
    );

    // Credentials that may not call DescribeSecret (the trainer role):
    // refused once, then each refresh fetches the value, as before.
    let m = rotating(&s, name, "session", ttl);
    assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_changed"));
    common::moto_record(&s);
    let until = Instant::now() + ttl * 10;
    while Instant::now() < until {
        assert_eq!(get(&m, "HF_TOKEN").unwrap().as_deref(), Some("hf_changed"));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (values, checks) = (
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        common::moto_recorded(&s, "secretsmanager.DescribeSecret"),
    );
    assert_eq!(checks, 1);
    assert!(values >= 7, "{values} GetSecretValue in 10 TTLs");
    let bench = serde_json::json!({"kind": "unchanged", "ttls": 10, "rights": "GetSecretValue only",
        "get_secret_value": values, "describe_secret": checks});
    println!("BENCH {bench}");
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh moto"]
fn a_failure_reported_in_the_rotation_window_turns_to_awspending() {
    use std::time::Duration;
    let s = setup();
    let name = "st-secrets/window";
    let v1 = common::moto_rotate(&s, &["create", name, r#"{"DB_PASSWORD": "pw_old"}"#]);
    let ttl = Duration::from_millis(300);
    let m = rotating(&s, name, "admin", ttl);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let told = Arc::clone(&events);
    m.on_change(move |e| told.lock().unwrap().push(e.clone()));
    let found = m.get_with_version("DB_PASSWORD").unwrap().unwrap();
    assert_eq!(found.version.as_ref().unwrap().id, v1);
    // createSecret and setSecret: the login with pw_old now fails.
    let v2 = common::moto_rotate(&s, &["pending", name, r#"{"DB_PASSWORD": "pw_new"}"#]);
    common::moto_record(&s);
    let r = m.report_failure("DB_PASSWORD", Some(&v1)).unwrap().unwrap();
    assert_eq!(r.found.value.expose(), "pw_new");
    assert!(r.changed);
    let version = r.found.version.unwrap();
    assert_eq!(
        (version.id.as_str(), version.instead_of.as_deref()),
        (v2.as_str(), Some(v1.as_str()))
    );
    assert_eq!(version.stages, ["AWSPENDING"]);
    let told = events.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "one change event: {told:?}");
    assert_eq!(
        told[0].version.as_ref().unwrap().instead_of.as_deref(),
        Some(v1.as_str())
    );
    // A report of the version no longer held is answered without a request;
    // refreshes within the window keep the stand-in without its value.
    assert_eq!(
        m.report_failure("DB_PASSWORD", Some(&v1))
            .unwrap()
            .unwrap()
            .found
            .value
            .expose(),
        "pw_new"
    );
    std::thread::sleep(ttl * 3);
    assert_eq!(get(&m, "DB_PASSWORD").unwrap().as_deref(), Some("pw_new"));
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        1
    );
    // finishSecret: the stand-in is AWSCURRENT, held as the version in force.
    common::moto_rotate(&s, &["promote", name, &v2, &v1]);
    let found = settled(&m, "DB_PASSWORD", ttl, |f| {
        f.version.as_ref().is_some_and(|v| v.instead_of.is_none())
    });
    let version = found.version.unwrap();
    assert_eq!((found.value.expose(), version.instead_of), ("pw_new", None));
    assert_eq!(version.stages, ["AWSCURRENT"]);
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        1,
        "the rotation cost one value"
    );
    // An empty version is refused by name; a key nobody has is None.
    assert_eq!(
        m.report_failure("DB_PASSWORD", Some(""))
            .unwrap_err()
            .code_name(),
        "ST_INVALID_ARGUMENT"
    );
    assert!(m.report_failure("NOBODY_HAS_IT", None).unwrap().is_none());
}

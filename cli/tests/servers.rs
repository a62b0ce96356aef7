//! The tool against the real servers of `scripts/test-all.sh`: moto (AWS
//! Secrets Manager) and OpenBao (the Vault API), configured only through the
//! process environment, as a launcher runs it. The set-up JSON files are
//! named by `ST_TEST_MOTO_SETUP` and `ST_TEST_VAULT_SETUP` (see the library's
//! `tests/aws_moto.rs` and `tests/vault_openbao.rs`); the tests are
//! `#[ignore]`d for a bare `cargo test`.

use serde_json::Value;

/// The set-up JSON named by the environment variable `var`.
fn setup(var: &str) -> Value {
    let path = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run these tests through scripts/test-all.sh")
    });
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(s: &'a Value, name: &str) -> &'a str {
    s[name].as_str().unwrap()
}

/// Runs the tool as a launcher would: `HOME` at `home`, `PATH` kept, the
/// variables `env` and nothing else; returns its exit code, stdout and
/// stderr. A tool still running after a minute is killed and the test
/// fails (a hang is a failure here, not a stalled run).
fn tool(
    home: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_st-secrets"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            from.read_to_end(&mut text).unwrap();
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("st-secrets {args:?} did not exit within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh tool-servers"]
fn the_tool_reads_aws_from_the_process_environment() {
    let s = setup("ST_TEST_MOTO_SETUP");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SIMPLETUNER_AWS_SECRET_NAME", "st-secrets/test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", s["url"].as_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap()),
        (
            "AWS_SECRET_ACCESS_KEY",
            s["admin"]["secret"].as_str().unwrap(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let run = |args: &[&str]| tool(dir.path(), &env, args);
    let (code, out, err) = run(&["get", "HF_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "hf_moto_value"), "{err}");
    let (code, out, err) = run(&["doctor", "HF_TOKEN", "CLOUD_WEBHOOK_SECRET"]);
    assert_eq!(
        code,
        Some(1),
        "HF_TOKEN is found but CLOUD_WEBHOOK_SECRET, asked for, is not: {out}{err}"
    );
    assert!(
        out.contains("CLOUD_WEBHOOK_SECRET: not found by any provider"),
        "{out}"
    );
    let (code, out, err) = run(&["doctor"]);
    assert_eq!(
        code,
        Some(0),
        "absent well-known keys are optional: {out}{err}"
    );
    assert!(out.contains("aws checks:"), "{out}");
    assert!(out.contains("credentials  environment variables"), "{out}");
    assert!(out.contains(":user/admin (account 123456789012)"), "{out}");
    assert!(out.contains("readable (3 keys)"), "{out}");
    assert!(!out.contains("hf_moto_value"), "{out}");

    // run and env take every key of the AWS secret.
    let (code, out, err) = run(&["env", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["env"]["HF_TOKEN"], "hf_moto_value");
    assert_eq!(doc["env"].as_object().unwrap().len(), 3, "{out}");
    // Ten times: the lookup starts the library's refresher thread before
    // run blocks SIGCHLD to wait for its command, and that thread must not
    // take the signal (run waited forever when it did, one time in a few).
    for _ in 0..10 {
        let (code, out, err) = run(&[
            "run",
            "--",
            "sh",
            "-c",
            "printf '%s|' \"$HF_TOKEN\"; exit 3",
        ]);
        assert_eq!(
            (code, out.as_str()),
            (Some(3), "<concealed by st-secrets>|"),
            "{err}"
        );
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh tool-servers"]
fn the_tools_doctor_accepts_a_least_privilege_token() {
    let s = setup("ST_TEST_VAULT_SETUP");
    let token = text(&s, "least_privilege_token");

    // The tool's doctor: healthy, exit 0, the token "cannot be inspected".
    let home = tempfile::tempdir().unwrap();
    let env = [("VAULT_ADDR", text(&s, "url")), ("VAULT_TOKEN", token)];
    let (code, report, err) = tool(home.path(), &env, &["doctor", "HF_TOKEN"]);
    assert_eq!(code, Some(0), "{report}{err}");
    assert!(report.contains("cannot be inspected"), "{report}");
    assert!(!report.contains("INVALID"), "{report}");
    assert!(!report.contains(token), "{report}");
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh tool-servers"]
fn the_tool_reads_vault_from_the_process_environment() {
    let s = setup("ST_TEST_VAULT_SETUP");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BAO_ADDR", text(&s, "tls_url")),
        ("BAO_CACERT", text(&s, "tls_ca")),
        ("VAULT_TOKEN", text(&s, "root_token")),
    ];
    let tool = |args: &[&str]| tool(dir.path(), &env, args);
    let (code, out, err) = tool(&["get", "REPLICATE_API_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "r8_bao_value"), "{err}");

    // run takes every key of the Vault secret into the command's environment.
    let script = "printf %s \"$REPLICATE_API_TOKEN\"";
    let (code, out, err) = tool(&["run", "--no-mask", "--", "sh", "-c", script]);
    assert_eq!((code, out.as_str()), (Some(0), "r8_bao_value"), "{err}");
}

#[test]
#[ignore = "needs moto and OpenBao: run scripts/test-all.sh tool-servers"]
fn the_tools_doctor_reads_each_of_several_secrets_and_paths() {
    let home = tempfile::tempdir().unwrap();
    // Vault: two paths that exist, from the environment.
    let s = setup("ST_TEST_VAULT_SETUP");
    let env = [
        ("BAO_ADDR", text(&s, "url")),
        ("BAO_TOKEN", text(&s, "root_token")),
        ("SIMPLETUNER_VAULT_PATH", "team/other,simpletuner"),
    ];
    let (code, report, err) = tool(home.path(), &env, &["doctor", "HF_TOKEN"]);
    assert_eq!(code, Some(0), "{report}{err}");
    assert!(
        report.contains("read team/other readable (1 keys)"),
        "{report}"
    );
    assert!(
        report.contains("read simpletuner readable (2 keys)"),
        "{report}"
    );
    let (code, out, err) = tool(home.path(), &env, &["get", "HF_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "hf_other_path"), "{err}");
    // AWS: a team secret, then the project's, then one that does not exist:
    // lookups skip it, the doctor names it.
    let m = setup("ST_TEST_MOTO_SETUP");
    let env = [
        (
            "SIMPLETUNER_AWS_SECRET_NAME",
            "st-secrets/team,st-secrets/test,st-secrets/typo",
        ),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", m["url"].as_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", m["admin"]["id"].as_str().unwrap()),
        (
            "AWS_SECRET_ACCESS_KEY",
            m["admin"]["secret"].as_str().unwrap(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let (code, out, err) = tool(home.path(), &env, &["get", "REPLICATE_API_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "r8_moto_value"), "{err}");
    let (code, out, err) = tool(home.path(), &env, &["get", "HF_TOKEN"]);
    assert_eq!((code, out.trim()), (Some(0), "hf_team_value"), "{err}");
    let (code, report, err) = tool(home.path(), &env, &["doctor"]);
    assert_ne!(code, Some(0), "{report}{err}");
    assert!(
        report.contains("read st-secrets/team readable (2 keys)"),
        "{report}"
    );
    assert!(
        report.contains("read st-secrets/typo NOT READABLE (the secret does not exist)"),
        "{report}"
    );
}

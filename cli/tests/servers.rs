//! The tool against the real servers of `scripts/test-all.sh`: moto (AWS
//! Secrets Manager) and OpenBao (the Vault API), configured only through the
//! process environment, as a launcher runs it. The set-up JSON files are
//! named by `ST_TEST_MOTO_SETUP` and `ST_TEST_VAULT_SETUP` (see the library's
//! `tests/aws_moto.rs` and `tests/vault_openbao.rs`); the tests are
//! `#[ignore]`d for a bare `cargo test`.

// moto's request recorder, shared with the library's tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use serde_json::Value;

/// The set-up JSON named by the environment variable `var`.
fn setup(var: &str) -> Value {
    let path = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run these tests through scripts/test-all.sh")
    });
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The variables of a launcher reading moto's `st-secrets/test` with the
/// admin's keys, as the process environment gives them.
fn moto_env(s: &Value) -> Vec<(&str, &str)> {
    vec![
        ("SIMPLETUNER_AWS_SECRET_NAME", "st-secrets/test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", s["url"].as_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap()),
        (
            "AWS_SECRET_ACCESS_KEY",
            s["admin"]["secret"].as_str().unwrap(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
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
    tool_via(&[], home, env, args)
}

/// [`tool`], killed (and failed) after `seconds` rather than a minute.
fn tool_for(
    seconds: u64,
    home: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    run_tool(&[], seconds, home, env, args)
}

/// [`tool`], started by `wrapper` (a program and its arguments, the tool's
/// path and `args` after them: `unshare`, `setpriv`).
fn tool_via(
    wrapper: &[&str],
    home: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    run_tool(wrapper, 60, home, env, args)
}

fn run_tool(
    wrapper: &[&str],
    seconds: u64,
    home: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    use std::io::Read;
    use std::process::Stdio;
    let bin = env!("CARGO_BIN_EXE_st-secrets");
    let (program, first) = match wrapper {
        [] => (bin, &[][..]),
        [program, rest @ ..] => (*program, rest),
    };
    let mut command = std::process::Command::new(program);
    command.args(first);
    if !wrapper.is_empty() {
        command.arg(bin);
    }
    let mut child = command
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("st-secrets {args:?} did not exit within {seconds} s");
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
    let env = moto_env(&s);
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

/// A node cache directory on /dev/shm for one test, removed at the end.
struct NodeDir(std::path::PathBuf);

impl NodeDir {
    fn new(name: &str) -> NodeDir {
        NodeDir(std::path::PathBuf::from(format!(
            "/dev/shm/st-secrets-servers-{name}-{}",
            std::process::id()
        )))
    }
    fn text(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for NodeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh tool-servers"]
fn the_node_cache_across_processes_the_ttl_clocks_users_and_a_full_tmpfs() {
    let s = setup("ST_TEST_MOTO_SETUP");
    let home = tempfile::tempdir().unwrap();
    let node = NodeDir::new("node");
    let mut aws = moto_env(&s);
    aws.push(("SIMPLETUNER_NODE_CACHE", "1"));
    let mut env = aws.to_vec();
    env.push(("SIMPLETUNER_NODE_CACHE_DIR", node.text()));
    let fetched = || common::moto_recorded(&s, "secretsmanager.GetSecretValue");
    let get_via = |wrapper: &[&str], env: &[(&str, &str)], args: &[&str]| {
        let (code, out, err) = tool_via(wrapper, home.path(), env, args);
        assert_eq!((code, out.trim()), (Some(0), "hf_moto_value"), "{err}");
    };
    let get = |args: &[&str]| get_via(&[], &env, args);

    // One process fetches; the next reads what it stored.
    common::moto_record(&s);
    get(&["get", "HF_TOKEN"]);
    get(&["get", "HF_TOKEN"]);
    assert_eq!(fetched(), 1);
    let (code, status, err) = tool(home.path(), &env, &["node-cache", "status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(status.contains("node cache  on"), "{status}");
    assert!(status.contains("(private, memory-backed)"), "{status}");
    assert!(status.contains("1 fresh, 0 failures"), "{status}");
    assert!(!status.contains("hf_moto_value") && !status.contains("st-secrets/test"));

    // After the TTL (1 s here), one request for the node.
    let config = home.path().join("ttl.json");
    std::fs::write(&config, r#"{"cache_ttl": 1}"#).unwrap();
    let config = config.to_str().unwrap();
    let (code, _, err) = tool(home.path(), &env, &["node-cache", "clear"]);
    assert_eq!(code, Some(0), "{err}");
    get(&["--config", config, "get", "HF_TOKEN"]);
    get(&["--config", config, "get", "HF_TOKEN"]);
    assert_eq!(fetched(), 2);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    get(&["--config", config, "get", "HF_TOKEN"]);
    get(&["--config", config, "get", "HF_TOKEN"]);
    assert_eq!(fetched(), 3);

    // A clock step: a process whose CLOCK_MONOTONIC runs a day ahead (a time
    // namespace) finds the entry expired and fetches; the next ordinary
    // process finds an entry from its future, distrusts it and fetches.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    get(&["get", "HF_TOKEN"]);
    assert_eq!(fetched(), 4, "the 1 s entry expired");
    get_via(
        &["unshare", "-r", "-T", "--monotonic", "86400"],
        &env,
        &["get", "HF_TOKEN"],
    );
    assert_eq!(fetched(), 5);
    get(&["get", "HF_TOKEN"]);
    get(&["get", "HF_TOKEN"]);
    assert_eq!(fetched(), 6);

    // A full tmpfs: nothing can be stored, so each process fetches for
    // itself, and says nothing is wrong with the value.
    let full = NodeDir::new("full");
    std::fs::create_dir(&full.0).unwrap();
    let bin = env!("CARGO_BIN_EXE_st-secrets");
    let script = format!(
        "mount -t tmpfs -o size=16k,mode=0700 tmpfs \"$D\" && \
         {{ dd if=/dev/zero of=\"$D/.fill\" bs=1k count=64 2>/dev/null; true; }} && \
         \"{bin}\" get HF_TOKEN && echo && \"{bin}\" get HF_TOKEN"
    );
    let mut env = aws.to_vec();
    env.push(("SIMPLETUNER_NODE_CACHE_DIR", full.text()));
    env.push(("D", full.text()));
    let (code, out, err) = tool_via(
        &["unshare", "-rm", "sh", "-c", &script, "sh"],
        home.path(),
        &env,
        &[],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["hf_moto_value"; 2],
        "{err}"
    );
    assert_eq!(fetched(), 8);

    if effective_uid() != 0 {
        println!("not root: the second user is not tried");
        return;
    }
    // Another user on the node: the directory is root's, so it is refused
    // (the value is fetched, never read from it); in its own default
    // directory it shares with itself only.
    let other = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(other.path(), Some(4321), Some(4321)).unwrap();
    let as_other = ["setpriv", "--reuid=4321", "--regid=4321", "--clear-groups"];
    let other_get = |env: &[(&str, &str)], args: &[&str]| {
        let (code, out, err) = tool_via(&as_other, other.path(), env, args);
        assert_eq!((code, out.trim()), (Some(0), "hf_moto_value"), "{err}");
    };
    other_get(&env, &["get", "HF_TOKEN"]);
    assert_eq!(fetched(), 9);
    let (_, providers, _) = tool_via(&as_other, other.path(), &env, &["providers"]);
    assert!(
        providers.contains("belongs to uid 0, not to this user"),
        "{providers}"
    );
    let _own = NodeDir(std::path::PathBuf::from("/dev/shm/st-secrets-node-4321"));
    other_get(&aws, &["get", "HF_TOKEN"]);
    other_get(&aws, &["get", "HF_TOKEN"]);
    assert_eq!(fetched(), 10);
}

/// The effective uid, read from /proc (the test crates hold no unsafe code).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh tool-servers"]
fn a_c_launcher_reads_what_another_c_launcher_fetched() {
    // The README's example launcher (examples/launcher.c), built against the
    // library this run built, run as two ranks of one node, one after the
    // other: the second asks the node cache, not moto.
    let s = setup("ST_TEST_MOTO_SETUP");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let lib = root.join("target/debug");
    let home = tempfile::tempdir().unwrap();
    let launcher = home.path().join("launcher");
    let built = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("examples/launcher.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lst_secrets", "-o"])
        .arg(&launcher)
        .status()
        .unwrap();
    assert!(built.success());
    let node = NodeDir::new("c");
    let mut env = moto_env(&s);
    env.push(("SIMPLETUNER_NODE_CACHE", "1"));
    env.push(("SIMPLETUNER_NODE_CACHE_DIR", node.text()));
    common::moto_record(&s);
    for _ in 0..2 {
        let out = std::process::Command::new(&launcher)
            .env_clear()
            .env("HOME", home.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("HF_TOKEN               resolved by 'aws'"),
            "{text}"
        );
    }
    assert_eq!(
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        1
    );
}

/// A child that, for `seconds`, reads the identity token file each quarter
/// second (every token it reads must be unexpired) and makes a new boto3
/// session each time, which assumes `AWS_ROLE_ARN` with the file's token
/// (AssumeRoleWithWebIdentity on moto) and calls GetCallerIdentity. It
/// prints the first token (the tool must conceal it) and its counts.
const IDENTITY_CHILD: &str = r#"
import base64, json, os, sys, time
import boto3, botocore.exceptions
path = os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]
seen, expired, calls, errors, first = set(), 0, 0, [], None
end = time.time() + float(sys.argv[1])
while time.time() < end:
    token = open(path).read().strip()
    first = first or token
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    expired += claims["exp"] <= time.time()
    assert claims["aud"] == "sts.amazonaws.com", claims["aud"]
    seen.add(token)
    try:
        boto3.Session().client("sts", region_name="us-east-1").get_caller_identity()
        calls += 1
    except botocore.exceptions.ClientError as e:
        errors.append(e.response["Error"]["Code"])
    time.sleep(0.25)
print("token", first)
print(f"tokens={len(seen)} expired={expired} calls={calls} errors={errors}")
"#;

#[test]
#[ignore = "needs moto and OpenBao: run scripts/test-all.sh tool-servers"]
fn run_keeps_an_identity_token_fresh_for_a_boto3_child() {
    let (m, v) = (setup("ST_TEST_MOTO_SETUP"), setup("ST_TEST_VAULT_SETUP"));
    let home = tempfile::tempdir().unwrap();
    // A moto of its own without signature checking: the suite's moto checks
    // every request, and its checker fails on AssumeRoleWithWebIdentity,
    // which is unsigned by design (a 500: KeyError 'HTTP_AUTHORIZATION').
    let port = common::free_port();
    let moto_bin = std::path::Path::new(text(&m, "python")).with_file_name("moto_server");
    let mut serve = std::process::Command::new(moto_bin);
    serve.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let moto = common::spawn(serve, home.path().join("moto.log"));
    let moto_url = format!("http://127.0.0.1:{port}");
    common::wait_until(&moto, "moto", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // The tool logs in with a JWT of the jwt role "trainer", which may ask
    // for identity tokens of the role "aws" (4 s, audience sts.amazonaws.com).
    let identity = std::path::Path::new(text(&v, "identity_dir"));
    let mut mint = std::process::Command::new(text(&v, "python"));
    mint.arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vault/identity.py"))
        .args(["mint", identity.join("jwt-signing.key").to_str().unwrap()])
        .arg(r#"{"sub": "trainer-job", "aud": "st-secrets", "exp": 600, "iat": 0}"#);
    let minted = common::stdout_of(mint);
    let jwt_file = home.path().join("jwt");
    std::fs::write(&jwt_file, minted).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&jwt_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [
        ("BAO_ADDR", text(&v, "url")),
        ("SIMPLETUNER_VAULT_AUTH", "jwt"),
        ("SIMPLETUNER_VAULT_ROLE", "trainer"),
        ("SIMPLETUNER_VAULT_JWT_FILE", jwt_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/trainer"),
        ("AWS_ENDPOINT_URL", moto_url.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    // ST_IDENTITY_CHILD_SECONDS lengthens the run (135: about 50 refreshes).
    let child_seconds: u64 = std::env::var("ST_IDENTITY_CHILD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let (code, out, err) = tool_for(
        child_seconds + 60,
        home.path(),
        &env,
        &[
            "run",
            "--identity-token",
            "AWS_WEB_IDENTITY_TOKEN_FILE=aws:sts.amazonaws.com",
            "--",
            text(&m, "python"),
            "-c",
            IDENTITY_CHILD,
            &child_seconds.to_string(),
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("token <concealed by st-secrets>"), "{out}");
    let counts = out.lines().last().unwrap();
    println!("identity tokens in {child_seconds} s: {counts}");
    let number = |name: &str| -> usize {
        let at = counts.find(&format!("{name}=")).unwrap() + name.len() + 1;
        counts[at..].split(' ').next().unwrap().parse().unwrap()
    };
    // A 4 s token replaced two thirds through: a new one every 2.7 s.
    assert!(number("tokens") as u64 >= child_seconds / 4, "{counts}");
    assert_eq!(number("expired"), 0, "{counts}");
    assert!(number("calls") as u64 >= child_seconds, "{counts}");
    assert!(counts.ends_with("errors=[]"), "{counts}");
    // A wrong audience fails before the command starts, naming the fix.
    let (code, _, err) = tool(
        home.path(),
        &env,
        &["run", "--identity-token", "X_FILE=aws:wandb", "--", "true"],
    );
    assert_eq!(code, Some(3), "ST_REMOTE's exit code: {err}");
    assert!(
        err.contains("not 'wandb'") && err.contains("client_id"),
        "{err}"
    );
}

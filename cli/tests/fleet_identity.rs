//! The fleet started with no credential at all: N simulated nodes x R ranks,
//! each rank a process linking the library (this test binary, started again
//! as a rank), reading `HF_TOKEN` from OpenBao every 100 ms, logged in from
//! its node's identity only: a projected-token-shaped JWT (`kubernetes`), a
//! JWT (`jwt`) or the node's certificate (`cert`), in a kubelet-style
//! volume swapped (`..data`) every `ST_IDENTITY_ROTATE` seconds (10), with
//! OpenBao tokens of 30 s that cannot be renewed past 30 s. The node cache
//! is on, one directory per node.
//!
//! The secret's TTL is 2 s, so the node reads it again every 2 s, each
//! time with a live token. Checked: every read answered; the logins OpenBao's audit log recorded
//! equal those the ranks report, and each node logged in once per token
//! lifetime (at least ceil(D / 30 s), at most one per 24 s, when a token
//! that cannot be renewed further is replaced, plus the first), not once per
//! rank;
//! `st-secrets scan`, given every token OpenBao issued (read from the nodes'
//! shared login entries as the run goes), finds none in the job's directory
//! or in copies of every rank's environment (`/proc/PID/environ`). `ST_IDENTITY_SECONDS` (35) sets the run's length: the
//! test is the short form of the benchmark (`scripts/bench.sh identity`,
//! 100 rotations). `ST_FLEET_NODES` and `ST_FLEET_RANKS` set the shape (4 x 8).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{env_number, setup, text, NodeDirs, Volume};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The entry of a rank process: reads `HF_TOKEN` every 100 ms until
/// `ST_IDENTITY_UNTIL` (ms since the epoch), then prints `reads=N failed=F
/// logins=L` (L: the logins this process made, from the provider's status).
#[test]
#[ignore = "a rank of identity_fleet_logs_in_once_per_node_per_token_lifetime"]
fn identity_rank() {
    let Ok(until) = std::env::var("ST_IDENTITY_UNTIL") else {
        return;
    };
    let until = std::time::UNIX_EPOCH + Duration::from_millis(until.parse().unwrap());
    let mut config = st_secrets::secrets::ManagerConfig::from_environment();
    // The secret read again every 2 s (by one rank of the node): each read
    // needs a live token, so every token lifetime is crossed.
    config.remote.cache_ttl = Duration::from_secs(2);
    let m = st_secrets::secrets::SecretsManager::new(config).unwrap();
    let (mut reads, mut failed) = (0, 0);
    while std::time::SystemTime::now() < until {
        reads += 1;
        match m.get("HF_TOKEN") {
            Ok(Some(v)) if v.expose() == "hf_bao_value" => {}
            other => {
                failed += 1;
                eprintln!("read failed: {:?}", other.map(|v| v.is_some()));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let detail = m
        .providers()
        .into_iter()
        .find(|p| p.status.name == "vault")
        .map(|p| p.status.detail)
        .unwrap_or_default();
    let logins = detail
        .split(" logins")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("reads={reads} failed={failed} logins={logins}");
}

/// The identity python helper (`tests/vault/identity.py`).
fn identity_py(v: &Value, args: &[&str]) -> String {
    let mut cmd = Command::new(text(v, "python"));
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vault/identity.py"))
        .args(args);
    common::stdout_of(cmd)
}

/// The tokens the node's shared login entries hold now (each entry: a
/// header line, then the JSON body `{"value": TOKEN, ...}`), added to `into`.
fn collect_tokens(node_dir: &Path, into: &mut std::collections::BTreeSet<String>) {
    for e in std::fs::read_dir(node_dir).into_iter().flatten().flatten() {
        if e.path().extension().is_none_or(|x| x != "entry") {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
            continue;
        };
        if let Ok(body) = serde_json::from_slice::<Value>(&bytes[at + 1..]) {
            if let Some(t) = body["value"].as_str() {
                into.insert(t.to_owned());
            }
        }
    }
}

/// `st-secrets scan` of `paths` for `tokens` (handed to it as variables it
/// looks up with `--key`): how many places it found one.
fn scan(tokens: &std::collections::BTreeSet<String>, paths: &[PathBuf]) -> usize {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_st-secrets"));
    cmd.arg("scan").env_clear().env("HOME", home.path());
    for (i, t) in tokens.iter().enumerate() {
        cmd.arg("--key").arg(format!("ST_ISSUED_{i}"));
        cmd.env(format!("ST_ISSUED_{i}"), t);
    }
    let out = cmd.args(paths).output().unwrap();
    match out.status.code() {
        Some(0) => 0,
        Some(1) => String::from_utf8_lossy(&out.stdout).lines().count().max(1),
        _ => panic!("scan failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// What one method's run measured.
struct Measured {
    reads: u64,
    failed: u64,
    per_node: Vec<u64>,
    audited: usize,
    seconds: u64,
    leaks: usize,
    tokens: usize,
}

/// Logins at `path` the audit log recorded (the TLS server's log for
/// certificate logins).
fn audited_logins(v: &Value, path: &str) -> usize {
    let log = if path.starts_with("auth/cert") {
        "tls_audit_log"
    } else {
        "audit_log"
    };
    common::audited_logins(v, log, path)
}

fn run_method(v: &Value, method: &'static str, nodes: usize, ranks: usize) -> Measured {
    let seconds = env_number("ST_IDENTITY_SECONDS", 35);
    let rotate = Duration::from_secs(env_number("ST_IDENTITY_ROTATE", 10));
    let job = tempfile::tempdir().unwrap();
    let key = Path::new(text(v, "identity_dir")).join("jwt-signing.key");
    let key = key.to_str().unwrap().to_owned();
    let (url, login_path) = match method {
        "cert" => (text(v, "tls_url"), "auth/cert/login"),
        "kubernetes" => (text(v, "url"), "auth/kubernetes/login"),
        _ => (text(v, "url"), "auth/jwt/login"),
    };
    // Each node's identity files, as the platform would write them.
    let identity = |node: usize| -> Vec<(&'static str, Vec<u8>)> {
        match method {
            "cert" => {
                let d = Path::new(text(v, "identity_dir"));
                vec![
                    ("node.pem", std::fs::read(d.join("node.pem")).unwrap()),
                    ("node.key", std::fs::read(d.join("node.key")).unwrap()),
                ]
            }
            "kubernetes" => {
                let claims = serde_json::json!({
                    "iss": "https://kubernetes.default.svc.cluster.local",
                    "aud": ["st-secrets"], "sub": "system:serviceaccount:ml:trainer",
                    "exp": 120, "iat": 0,
                    "kubernetes.io": {"namespace": "ml",
                        "serviceaccount": {"name": "trainer", "uid": format!("uid-{node}")}},
                });
                vec![(
                    "token",
                    identity_py(v, &["mint", &key, &claims.to_string()]).into_bytes(),
                )]
            }
            _ => {
                let claims = serde_json::json!({"sub": format!("node-{node}"), "aud": "st-secrets", "exp": 120, "iat": 0});
                vec![(
                    "token",
                    identity_py(v, &["mint", &key, &claims.to_string()]).into_bytes(),
                )]
            }
        }
    };
    let mut volumes: Vec<Volume> = (0..nodes)
        .map(|n| Volume::new(job.path().join(format!("node-{n}/identity")), &identity(n)))
        .collect();
    let node_dirs = NodeDirs::new(&format!("identity-{method}"), nodes);
    let until = std::time::SystemTime::now() + Duration::from_secs(seconds);
    let until_ms = until
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let before = audited_logins(v, login_path);
    let mut children = Vec::new();
    for (n, (volume, node_dir)) in volumes.iter().zip(&node_dirs.0).enumerate() {
        for r in 0..ranks {
            // The node's ranks share its HOME (the node cache's scope
            // includes it), each working in a directory of its own.
            let home = job.path().join(format!("node-{n}/home"));
            let work = job.path().join(format!("node-{n}/rank-{r}"));
            std::fs::create_dir_all(&home).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "identity_rank",
                "--ignored",
                "--nocapture",
                "--quiet",
            ])
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ST_IDENTITY_UNTIL", &until_ms)
            .env("BAO_ADDR", url)
            .env("SIMPLETUNER_VAULT_AUTH", method)
            .env(
                "SIMPLETUNER_VAULT_ROLE",
                if method == "cert" { "node" } else { "trainer" },
            )
            .env("SIMPLETUNER_NODE_CACHE", "1")
            .env("SIMPLETUNER_NODE_CACHE_DIR", node_dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .current_dir(&home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            if method == "cert" {
                cmd.env("BAO_CACERT", text(v, "tls_ca"))
                    .env("BAO_CLIENT_CERT", volume.dir.join("node.pem"))
                    .env("BAO_CLIENT_KEY", volume.dir.join("node.key"));
            } else {
                cmd.env("SIMPLETUNER_VAULT_JWT_FILE", volume.dir.join("token"));
            }
            children.push((n, cmd.spawn().unwrap()));
        }
    }
    // The platform rotates every node's identity while the job runs. Every
    // token OpenBao issues the nodes is read from their shared login
    // entries as the run goes, and every rank's environment copied every
    // 10 s, for `st-secrets scan`.
    let mut tokens = std::collections::BTreeSet::new();
    let environs = job.path().join("environ");
    std::fs::create_dir(&environs).unwrap();
    let started = Instant::now();
    let mut next = started + rotate;
    let mut snapshot = started + Duration::from_secs(3);
    while std::time::SystemTime::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        for d in &node_dirs.0 {
            collect_tokens(d, &mut tokens);
        }
        if Instant::now() >= snapshot {
            for (i, (_, c)) in children.iter().enumerate() {
                if let Ok(environ) = std::fs::read(format!("/proc/{}/environ", c.id())) {
                    let name = format!("rank-{i}-{}", started.elapsed().as_secs());
                    std::fs::write(environs.join(name), environ).unwrap();
                }
            }
            snapshot += Duration::from_secs(10);
        }
        if Instant::now() >= next {
            for (n, volume) in volumes.iter_mut().enumerate() {
                volume.swap(&identity(n));
            }
            next += rotate;
        }
    }
    let mut per_node = vec![0; nodes];
    let (mut reads, mut failed) = (0, 0);
    for (n, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("reads="))
            .unwrap_or_else(|| {
                panic!(
                    "a rank printed nothing: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let field = |name: &str| -> u64 {
            line.split(' ')
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        reads += field("reads");
        failed += field("failed");
        per_node[n] += field("logins");
    }
    for d in &node_dirs.0 {
        collect_tokens(d, &mut tokens);
    }
    drop(node_dirs);
    // The job's directory (the ranks' homes and working directories; not
    // the identity volumes, which hold the platform's JWTs) and the
    // environments, scanned for every token issued.
    let mut paths: Vec<PathBuf> = Vec::new();
    for n in 0..nodes {
        paths.push(job.path().join(format!("node-{n}/home")));
        paths.extend((0..ranks).map(|r| job.path().join(format!("node-{n}/rank-{r}"))));
    }
    paths.push(environs);
    let leaks = scan(&tokens, &paths);
    // The control: a file holding one of them is found.
    let control = tempfile::tempdir().unwrap();
    if let Some(t) = tokens.iter().next() {
        std::fs::write(control.path().join("log.txt"), format!("token={t}\n")).unwrap();
        assert!(
            scan(&tokens, &[control.path().to_owned()]) > 0,
            "scan missed a token"
        );
    }
    Measured {
        reads,
        failed,
        per_node,
        audited: audited_logins(v, login_path) - before,
        seconds,
        leaks,
        tokens: tokens.len(),
    }
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh tool-servers"]
fn identity_fleet_logs_in_once_per_node_per_token_lifetime() {
    let v = setup("ST_TEST_VAULT_SETUP");
    let nodes = env_number("ST_FLEET_NODES", 4) as usize;
    let ranks = env_number("ST_FLEET_RANKS", 8) as usize;
    let methods =
        std::env::var("ST_IDENTITY_METHODS").unwrap_or_else(|_| "kubernetes,jwt,cert".into());
    println!(
        "\nVault API (OpenBao), logins from the identity alone: {nodes} nodes x {ranks} ranks"
    );
    for method in ["kubernetes", "jwt", "cert"] {
        if !methods.split(',').any(|m| m == method) {
            continue;
        }
        let m = run_method(&v, method, nodes, ranks);
        // A node logs in at least once per token lifetime (30 s), and at
        // most once per 80% of it (a token that cannot be renewed further
        // is replaced at 80% of its last lease), plus the first login.
        let (fewest, most) = (m.seconds.div_ceil(30), (m.seconds * 10).div_ceil(240) + 1);
        let what = match method {
            "kubernetes" => "`kubernetes`, a projected token",
            "jwt" => "`jwt`, a JWT file",
            _ => "`cert`, the node's certificate",
        };
        println!(
            "| {what} swapped every {} s for {} s, tokens of 30 s, node cache | {} library \
             processes | logins per node {:?} (audit log {}), reads {} failed {}, `scan` of \
             the job's files and environments for its {} tokens: {} found |",
            env_number("ST_IDENTITY_ROTATE", 10),
            m.seconds,
            nodes * ranks,
            m.per_node,
            m.audited,
            m.reads,
            m.failed,
            m.tokens,
            m.leaks
        );
        assert_eq!(m.failed, 0, "{method}: failed reads");
        assert_eq!(
            m.per_node.iter().sum::<u64>() as usize,
            m.audited,
            "{method}: ranks' logins vs audit log"
        );
        for (n, &l) in m.per_node.iter().enumerate() {
            assert!(
                (fewest..=most).contains(&l),
                "{method}: node {n} logged in {l} times in {} s (tokens of 30 s)",
                m.seconds
            );
        }
        // Each node's tokens were seen (the scan looked for real ones).
        assert!(m.tokens >= nodes, "{method}: {} tokens seen", m.tokens);
        assert_eq!(
            m.leaks, 0,
            "{method}: a token in an environment or the job's files"
        );
    }
}

//! The fleet measurement behind docs/benchmarks.md's "Past one machine" table:
//! N simulated nodes x R ranks, each rank a process that links the library
//! (the tool's `get`, a rank's first lookup), started together as a job
//! starts, for each arrangement a cluster can run; what reaches the real
//! servers is counted there: moto's request recorder for AWS, OpenBao's
//! audit log for Vault. Per node, the arrangements that have one get their
//! own agent or proxy process.
//!
//! Run by `scripts/test-all.sh` (step 8c) against the servers it starts, with
//! `ST_TEST_MOTO_SETUP`, `ST_TEST_VAULT_SETUP`, `ST_TEST_AWS_AGENT` (the
//! agent binary) and `ST_TEST_BAO`; `#[ignore]`d for a bare `cargo test`.
//! `ST_FLEET_NODES` and `ST_FLEET_RANKS` change the shape (default 4 x 8).
//! The table is printed (run with `--nocapture` to see it); the counts are
//! asserted exactly: they are what each arrangement is for.

// The library's integration-test helpers (starting the agents, moto's
// recorder), shared rather than copied.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{
    free_port, moto_record, moto_recorded, setup, start_aws_agent, start_bao, text, NodeDirs,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn shape() -> (usize, usize) {
    let read = |v: &str, d: usize| {
        std::env::var(v)
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(d)
    };
    (read("ST_FLEET_NODES", 4), read("ST_FLEET_RANKS", 8))
}

/// A rank: the tool, as a launcher runs it (`HOME` of its own, `PATH`,
/// and `env` only).
fn rank(home: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_st-secrets"));
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    cmd
}

/// Starts every command at once (the job starting), waits for all, and
/// checks that each printed `expect`.
/// `lines`: how many lines each prints.
fn run_all(cmds: Vec<Command>, expect: &str, lines: usize) {
    let children: Vec<(String, Child)> = cmds
        .into_iter()
        .map(|mut c| {
            let name = format!("{c:?}");
            let child = c
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    for (name, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && stdout.lines().all(|l| l.trim() == expect)
                && stdout.lines().count() == lines,
            "{name}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The per-node launcher under `st-secrets run`: R ranks started by one
/// shell, each printing `ok` and the length of what `get` answered when it
/// is the value `run` put in its environment (`run` conceals values in the
/// output, and no value goes on a command line).
fn launcher(home: &Path, env: &[(String, String)], ranks: usize) -> Command {
    let tool = env!("CARGO_BIN_EXE_st-secrets");
    let script = format!(
        "for i in $(seq {ranks}); do (v=$(\"{tool}\" get HF_TOKEN) && [ -n \"$v\" ] && \
         [ \"$v\" = \"$HF_TOKEN\" ] && echo \"ok ${{#v}}\") & done; wait"
    );
    rank(home, env, &["run", "--", "sh", "-c", &script])
}

/// What each rank of [`launcher`] prints for `value`.
fn launched(value: &str) -> String {
    format!("ok {}", value.len())
}

/// One row of the table.
struct Row {
    arrangement: &'static str,
    processes: usize,
    counts: Vec<(&'static str, usize)>,
}

fn print_table(service: &str, nodes: usize, ranks: usize, rows: &[Row]) {
    println!("\n{service}: {nodes} nodes x {ranks} ranks, one TTL (first lookups)");
    for r in rows {
        let counts: Vec<String> = r.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "| {} | {} library processes | {} |",
            r.arrangement,
            r.processes,
            counts.join(", ")
        );
    }
}

/// The node cache's rounds: every rank of every node started at once, then
/// `restarts` times again (each rank crashing and coming back within the
/// TTL), each node's ranks sharing their node's directory.
fn node_cache_rounds(
    home: &Path,
    env: &[(String, String)],
    dirs: &NodeDirs,
    ranks: usize,
    restarts: usize,
    expect: &str,
) {
    for _ in 0..=restarts {
        let mut cmds = Vec::new();
        for dir in &dirs.0 {
            let mut env = env.to_vec();
            env.push(("SIMPLETUNER_NODE_CACHE".into(), "1".into()));
            env.push((
                "SIMPLETUNER_NODE_CACHE_DIR".into(),
                dir.display().to_string(),
            ));
            cmds.extend((0..ranks).map(|_| rank(home, &env, &["get", "HF_TOKEN"])));
        }
        run_all(cmds, expect, 1);
    }
}

/// Crash-restarts of every rank in the node cache's rows.
const RESTARTS: usize = 20;

// ---- AWS ------------------------------------------------------------------

fn aws_counts(s: &Value) -> Vec<(&'static str, usize)> {
    vec![
        (
            "GetSecretValue",
            moto_recorded(s, "secretsmanager.GetSecretValue"),
        ),
        (
            "DescribeSecret",
            moto_recorded(s, "secretsmanager.DescribeSecret"),
        ),
    ]
}

#[test]
#[ignore = "needs moto and the AWS Secrets Manager Agent: run scripts/test-all.sh tool-servers"]
fn aws_requests_per_ttl_for_each_arrangement() {
    let s = setup("ST_TEST_MOTO_SETUP");
    let (nodes, ranks) = shape();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let direct: Vec<(String, String)> = vec![
        (
            "SIMPLETUNER_AWS_SECRET_NAME".into(),
            "st-secrets/test".into(),
        ),
        ("AWS_REGION".into(), text(&s, "region").into()),
        ("AWS_ENDPOINT_URL".into(), text(&s, "url").into()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            s["admin"]["id"].as_str().unwrap().into(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            s["admin"]["secret"].as_str().unwrap().into(),
        ),
    ];
    let mut rows = Vec::new();

    // Each process on its own.
    moto_record(&s);
    run_all(
        (0..nodes * ranks)
            .map(|_| rank(home, &direct, &["get", "HF_TOKEN"]))
            .collect(),
        "hf_moto_value",
        1,
    );
    let counts = aws_counts(&s);
    assert_eq!(counts[0].1, nodes * ranks, "each process fetches");
    rows.push(Row {
        arrangement: "each process on its own",
        processes: nodes * ranks,
        counts,
    });

    // `st-secrets run` around each node's launcher: the ranks inherit the
    // values in their environment.
    moto_record(&s);
    run_all(
        (0..nodes).map(|_| launcher(home, &direct, ranks)).collect(),
        &launched("hf_moto_value"),
        ranks,
    );
    let counts = aws_counts(&s);
    assert_eq!(counts[0].1, nodes, "one fetch per node");
    rows.push(Row {
        arrangement: "`st-secrets run` around the node's launcher",
        processes: nodes,
        counts,
    });

    // The AWS Secrets Manager Agent on each node.
    let token = home.join("awssmatoken");
    std::fs::write(&token, "fleet-ssrf-token").unwrap();
    let through = |agents: &[(common::Daemon, String)]| {
        let mut cmds = Vec::new();
        for (_, url) in agents {
            let env: Vec<(String, String)> = vec![
                (
                    "SIMPLETUNER_AWS_SECRET_NAME".into(),
                    "st-secrets/test".into(),
                ),
                ("SIMPLETUNER_AWS_AGENT_URL".into(), url.clone()),
                ("AWS_TOKEN".into(), format!("file://{}", token.display())),
            ];
            cmds.extend((0..ranks).map(|_| rank(home, &env, &["get", "HF_TOKEN"])));
        }
        run_all(cmds, "hf_moto_value", 1);
    };
    let agents: Vec<(common::Daemon, String)> = (0..nodes)
        .map(|_| start_aws_agent(&s, home, &token, None))
        .collect();
    moto_record(&s);
    through(&agents);
    let counts = aws_counts(&s);
    // Ranks of one node arriving together each miss the agent's cache until
    // its first answer is in (it does not merge concurrent misses): at
    // least one and at most R requests per node; reported as measured.
    assert!((nodes..=nodes * ranks).contains(&counts[0].1), "{counts:?}");
    rows.push(Row {
        arrangement: "AWS Secrets Manager Agent per node",
        processes: nodes * ranks,
        counts,
    });
    drop(agents);

    // The same with the agent told to pre-fetch the secret at start-up
    // (BatchGetSecretValue), the ranks started once it has.
    moto_record(&s);
    let agents: Vec<(common::Daemon, String)> = (0..nodes)
        .map(|_| start_aws_agent(&s, home, &token, Some("st-secrets/test")))
        .collect();
    let until = Instant::now() + Duration::from_secs(30);
    while moto_recorded(&s, "secretsmanager.BatchGetSecretValue") < nodes && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    through(&agents);
    let mut counts = aws_counts(&s);
    counts.push((
        "BatchGetSecretValue",
        moto_recorded(&s, "secretsmanager.BatchGetSecretValue"),
    ));
    assert_eq!((counts[0].1, counts[2].1), (0, nodes), "{counts:?}");
    rows.push(Row {
        arrangement: "AWS Secrets Manager Agent per node, secret pre-fetched",
        processes: nodes * ranks,
        counts,
    });
    drop(agents);
    // The node cache: no process of its own; the ranks of a node share
    // what the first of them fetched, through 20 crash-restarts of each.
    moto_record(&s);
    let dirs = NodeDirs::new("fleet-aws", nodes);
    node_cache_rounds(home, &direct, &dirs, ranks, RESTARTS, "hf_moto_value");
    let counts = aws_counts(&s);
    assert_eq!(counts[0].1, nodes, "one fetch per node: {counts:?}");
    rows.push(Row {
        arrangement:
            "node cache (`SIMPLETUNER_NODE_CACHE=1`), then 20 crash-restarts of every rank",
        processes: nodes * ranks * (RESTARTS + 1),
        counts,
    });
    print_table("AWS Secrets Manager (moto)", nodes, ranks, &rows);
}

// ---- Vault ------------------------------------------------------------------

/// Audit-log entries of requests so far: (logins, reads of the secret, all).
fn audited(s: &Value) -> (usize, usize, usize) {
    let log = std::fs::read_to_string(text(s, "audit_log")).unwrap();
    let mut n = (0, 0, 0);
    for e in log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if e["type"] != "request" {
            continue;
        }
        n.2 += 1;
        match e["request"]["path"].as_str() {
            Some("auth/approle/login") => n.0 += 1,
            Some("secret/data/simpletuner") => n.1 += 1,
            _ => {}
        }
    }
    n
}

fn vault_counts(s: &Value, before: (usize, usize, usize)) -> Vec<(&'static str, usize)> {
    // The audit device writes asynchronously to the request's answer only
    // by microseconds; a short wait keeps the count whole.
    std::thread::sleep(Duration::from_millis(300));
    let now = audited(s);
    vec![
        ("logins", now.0 - before.0),
        ("secret reads", now.1 - before.1),
        ("requests in all", now.2 - before.2),
    ]
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh tool-servers"]
fn vault_requests_per_ttl_for_each_arrangement() {
    let s = setup("ST_TEST_VAULT_SETUP");
    let (nodes, ranks) = shape();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Each process logs in with AppRole (the launcher role) and reads.
    let approle: Vec<(String, String)> = vec![
        ("BAO_ADDR".into(), text(&s, "url").into()),
        ("VAULT_ROLE_ID".into(), text(&s, "role_id").into()),
        ("VAULT_SECRET_ID".into(), text(&s, "secret_id").into()),
    ];
    let mut rows = Vec::new();

    let before = audited(&s);
    run_all(
        (0..nodes * ranks)
            .map(|_| rank(home, &approle, &["get", "HF_TOKEN"]))
            .collect(),
        "hf_bao_value",
        1,
    );
    let counts = vault_counts(&s, before);
    assert_eq!(
        (counts[0].1, counts[1].1),
        (nodes * ranks, nodes * ranks),
        "{counts:?}"
    );
    rows.push(Row {
        arrangement: "each process on its own (AppRole)",
        processes: nodes * ranks,
        counts,
    });

    let before = audited(&s);
    run_all(
        (0..nodes)
            .map(|_| launcher(home, &approle, ranks))
            .collect(),
        &launched("hf_bao_value"),
        ranks,
    );
    let counts = vault_counts(&s, before);
    assert_eq!((counts[0].1, counts[1].1), (nodes, nodes), "{counts:?}");
    rows.push(Row {
        arrangement: "`st-secrets run` around the node's launcher",
        processes: nodes,
        counts,
    });

    // A `bao proxy` per node (AppRole auto-auth, use_auto_auth_token); the
    // ranks send no token.
    let before = audited(&s);
    let mut proxies = Vec::new();
    let mut cmds = Vec::new();
    for node in 0..nodes {
        let ndir = home.join(format!("proxy-node-{node}"));
        std::fs::create_dir_all(&ndir).unwrap();
        let port = free_port();
        let extra = format!(
            "api_proxy {{\n  use_auto_auth_token = true\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n"
        );
        let hcl = common::bao_auto_auth(&s, &ndir, ("role_id", "secret_id"), None) + &extra;
        let p = start_bao("proxy", &ndir, &hcl);
        let url = format!("http://127.0.0.1:{port}");
        common::wait_until(&p, "bao proxy", || {
            common::http_status(&format!("{url}/v1/sys/health"), &[]).is_some()
        });
        proxies.push(p);
        let env: Vec<(String, String)> = vec![
            ("BAO_ADDR".into(), url),
            ("SIMPLETUNER_VAULT_AGENT".into(), "1".into()),
        ];
        cmds.extend((0..ranks).map(|_| rank(home, &env, &["get", "HF_TOKEN"])));
    }
    run_all(cmds, "hf_bao_value", 1);
    let counts = vault_counts(&s, before);
    assert_eq!(
        (counts[0].1, counts[1].1),
        (nodes, nodes * ranks),
        "{counts:?}"
    );
    rows.push(Row {
        arrangement: "`bao proxy` per node (auto-auth)",
        processes: nodes * ranks,
        counts,
    });
    drop(proxies);

    // A `bao agent` per node rendering the secret to a 0600 file that the
    // ranks' file provider reads (SIMPLETUNER_SECRETS_FILE).
    let before = audited(&s);
    let mut agents = Vec::new();
    let mut cmds = Vec::new();
    for node in 0..nodes {
        let ndir = home.join(format!("agent-node-{node}"));
        std::fs::create_dir_all(&ndir).unwrap();
        let rendered = ndir.join("secrets.json");
        let hcl = common::bao_auto_auth(&s, &ndir, ("role_id", "secret_id"), None)
            + &common::bao_template(&rendered);
        let a = start_bao("agent", &ndir, &hcl);
        common::wait_until(&a, "bao agent's template", || rendered.exists());
        agents.push(a);
        let env: Vec<(String, String)> = vec![(
            "SIMPLETUNER_SECRETS_FILE".into(),
            rendered.display().to_string(),
        )];
        cmds.extend((0..ranks).map(|_| rank(home, &env, &["get", "HF_TOKEN"])));
    }
    run_all(cmds, "hf_bao_value", 1);
    let counts = vault_counts(&s, before);
    assert_eq!((counts[0].1, counts[1].1), (nodes, nodes), "{counts:?}");
    rows.push(Row {
        arrangement: "`bao agent` template per node, read by the file provider",
        processes: nodes * ranks,
        counts,
    });
    drop(agents);
    // The node cache, as for AWS.
    let before = audited(&s);
    let dirs = NodeDirs::new("fleet-vault", nodes);
    node_cache_rounds(home, &approle, &dirs, ranks, RESTARTS, "hf_bao_value");
    let counts = vault_counts(&s, before);
    assert_eq!(counts[1].1, nodes, "one read per node: {counts:?}");
    rows.push(Row {
        arrangement:
            "node cache (`SIMPLETUNER_NODE_CACHE=1`), then 20 crash-restarts of every rank",
        processes: nodes * ranks * (RESTARTS + 1),
        counts,
    });

    print_table("Vault API (OpenBao)", nodes, ranks, &rows);
}

#[test]
#[ignore = "needs moto and the AWS Secrets Manager Agent: run scripts/test-all.sh tool-servers"]
fn the_tools_doctor_through_the_aws_agent() {
    let s = setup("ST_TEST_MOTO_SETUP");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let token = home.join("awssmatoken");
    std::fs::write(&token, "doctor-ssrf-token").unwrap();
    let (agent, url) = start_aws_agent(&s, home, &token, None);
    let env: Vec<(String, String)> = vec![
        (
            "SIMPLETUNER_AWS_SECRET_NAME".into(),
            "st-secrets/test".into(),
        ),
        ("SIMPLETUNER_AWS_AGENT_URL".into(), url.clone()),
        ("AWS_TOKEN".into(), format!("file://{}", token.display())),
    ];
    let out = rank(home, &env, &["doctor", "HF_TOKEN"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(&format!("agent        {url}")), "{report}");
    assert!(report.contains("agent ping   healthy"), "{report}");
    assert!(report.contains("awssmatoken"), "{report}");
    assert!(
        report.contains("secret read  readable (3 keys)"),
        "{report}"
    );
    assert!(!report.contains("doctor-ssrf-token"), "{report}");
    // The agent gone: the doctor says so and fails.
    drop(agent);
    let out = rank(home, &env, &["doctor"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("agent ping   NOT HEALTHY (ST_NETWORK"),
        "{report}"
    );
}

#[test]
#[ignore = "part of the fleet measurement: run scripts/test-all.sh tool-servers"]
fn the_service_down_gets_one_attempt_per_node_per_failure_ttl() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (nodes, ranks) = shape();
    // The service down: a loopback listener that closes every connection
    // at once (a fault no real server gives on demand), counting them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let config = home.join("config.json");
    std::fs::write(&config, r#"{"failure_ttl": 30}"#).unwrap();
    let env: Vec<(String, String)> = vec![
        (
            "SIMPLETUNER_AWS_SECRET_NAME".into(),
            "st-secrets/test".into(),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT_URL".into(), url),
        ("AWS_ACCESS_KEY_ID".into(), "AKIAOUTAGE".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "outage-secret".into()),
    ];
    let dirs = NodeDirs::new("fleet-outage", nodes);
    // Every rank of every node started, failing, and restarted each second.
    const ROUNDS: usize = 5;
    let start = Instant::now();
    for round in 0..ROUNDS {
        let due = start + Duration::from_secs(round as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut children = Vec::new();
        for d in &dirs.0 {
            let mut env = env.clone();
            env.push(("SIMPLETUNER_NODE_CACHE".into(), "1".into()));
            env.push(("SIMPLETUNER_NODE_CACHE_DIR".into(), d.display().to_string()));
            for _ in 0..ranks {
                let args = ["--config", config.to_str().unwrap(), "get", "HF_TOKEN"];
                children.push(
                    rank(home, &env, &args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap(),
                );
            }
        }
        for child in children {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.contains("ST_NETWORK"), "{err}");
        }
    }
    // One attempt is the first request and its retries (2 by default).
    let n = connections.load(Ordering::SeqCst);
    assert!((nodes..=nodes * 3).contains(&n), "{n} connections");
    let row = Row {
        arrangement: "node cache, the service down, every rank restarted each second for 5 s",
        processes: nodes * ranks * ROUNDS,
        counts: vec![("connections (attempts with their retries)", n)],
    };
    print_table("AWS Secrets Manager (down)", nodes, ranks, &[row]);
}

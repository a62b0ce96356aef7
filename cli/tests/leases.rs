//! Credentials that die with the job, against real servers: OpenBao's
//! database engine issuing PostgreSQL roles (tests/vault/leases_setup.py),
//! Debian's PostgreSQL, and ranks that link the library through its C ABI
//! and connect with psycopg (tests/vault/pg_rank.py). Run by
//! `scripts/test-all.sh leases`, which starts the servers.
//!
//! - The generations: `ST_LEASE_NODES` (2) x `ST_LEASE_RANKS` (4) ranks
//!   under `st-secrets run` (one run per node, the node cache on) connect
//!   every 100 ms with credentials of `default_ttl` 4 s and `max_ttl` 12 s
//!   for `ST_LEASE_SECONDS` (36: three generations; the benchmark runs 600,
//!   fifty): no authentication failure, one lease issued per node per
//!   generation (OpenBao's audit log), and nothing left when the runs end:
//!   no lease, no `v-*` role, no token of the job's logins.
//! - The peer beside it: `bao agent` rendering the same credential to a
//!   file that 8 ranks read.
//! - `run --aws-credentials`: boto3 and the AWS CLI under `run` read S3 on
//!   moto while their key is replaced and the old one deleted.
//! - The endings: a rank under `run` ended each way a job ends (and `run
//!   --kill-after` ending one that ignores SIGTERM); within 2 s of `run`'s
//!   exit no lease and no role is left. After SIGKILL of `run`
//!   itself, they go when the lease ends.
//! - A process that shares nothing revokes its own when its manager is
//!   freed.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{env_number, library, setup, text, unix_now, NodeDirs};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vault")
        .join(name)
}

/// What the servers hold now (tests/vault/leases_probe.py): live leases
/// under `prefix`, `v-*` roles, the leaser login's tokens.
fn probe(s: &Value, prefix: &str) -> Value {
    let mut cmd = Command::new(text(s, "python"));
    cmd.arg(script("leases_probe.py"))
        .arg(std::env::var("ST_TEST_LEASES_SETUP").unwrap())
        .arg(prefix);
    serde_json::from_str(&common::stdout_of(cmd)).unwrap()
}

/// The configuration of the ranks and of `run`: the leased `pg` of
/// `role`, an AppRole login (`leaser`), the node cache in `node_dir`.
fn config(s: &Value, role: &str, node_dir: Option<&Path>) -> String {
    let mut c = json!({
        "providers": ["vault"],
        "vault_url": text(s, "url"),
        "vault_auth": "approle",
        "vault_auth_mount": text(s, "approle_mount"),
        "vault_leases": {"pg": format!("database/creds/{role}")},
    });
    if let Some(dir) = node_dir {
        c["node_cache"] = json!(true);
        c["node_cache_dir"] = json!(dir);
    }
    c.to_string()
}

/// A command with only what the test gives it: no inherited Vault or AWS
/// variables, a home of its own, and the default disposition of the
/// signals the endings send (a test started under `nohup` ignores SIGHUP,
/// and an ignored signal is inherited across exec).
fn clean(program: impl AsRef<std::ffi::OsStr>, s: &Value, home: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("VAULT_ROLE_ID", text(s, "role_id"))
        .env("VAULT_SECRET_ID", text(s, "secret_id"));
    cmd
}

/// `st-secrets run` of one node: `ranks` ranks connecting every 100 ms
/// with `role`'s credential until `until` (Unix seconds), in `node_dir`'s
/// node cache; `mode` as pg_rank.py reads it.
fn node(
    s: &Value,
    home: &Path,
    node_dir: &Path,
    ranks: usize,
    until: f64,
    role: &str,
    mode: &str,
) -> Child {
    let cfg = home.join(format!(
        "{}.json",
        node_dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&cfg, config(s, role, Some(node_dir))).unwrap();
    let rank = format!(
        "'{}' '{}' '{}' \"$ST_RANK_CONFIG\" {} {until} 0.1 {mode}",
        text(s, "python"),
        script("pg_rank.py").display(),
        library().display(),
        s["pg_port"],
    );
    let launcher = format!("for i in $(seq {ranks}); do {rank} & done; wait");
    let mut cmd = clean(env!("CARGO_BIN_EXE_st-secrets"), s, home);
    cmd.arg("--config")
        .arg(&cfg)
        .args(["run", "--only", "pg_username", "--", "sh", "-c", &launcher])
        .env("ST_RANK_CONFIG", std::fs::read_to_string(&cfg).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// The JSON lines of a node's `ranks` ranks, once its `run` has exited
/// with success.
fn ranks_of(run: Child, ranks: usize) -> Vec<Value> {
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), ranks, "{stderr}");
    lines
}

/// The leaser login's tokens OpenBao holds now (their accessors).
fn login_tokens(p: &Value) -> std::collections::BTreeSet<String> {
    p["login_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the probe finds no lease under `prefix`, no role, and no
/// leaser token but those of `tokens_before` (when given); how long that
/// took.
fn gone_within(
    s: &Value,
    prefix: &str,
    tokens_before: Option<&std::collections::BTreeSet<String>>,
    bound: Duration,
) -> Duration {
    let began = Instant::now();
    loop {
        let p = probe(s, prefix);
        let new_tokens = tokens_before.map_or(0, |b| login_tokens(&p).difference(b).count());
        let left = p["leases"].as_u64().unwrap() + p["roles"].as_u64().unwrap() + new_tokens as u64;
        if left == 0 {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < bound,
            "still there {:?} after the end: {p}",
            began.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Responses at `path` in OpenBao's audit log that issued a lease.
fn audited_issues(s: &Value, path: &str) -> usize {
    common::audited(s, "audit_log", "response", path, |e| {
        e["response"]["secret"]["lease_id"].is_string()
    })
}

#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn ranks_connect_across_lease_generations_and_the_job_leaves_nothing() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let seconds = env_number("ST_LEASE_SECONDS", 36);
    let nodes = env_number("ST_LEASE_NODES", 2) as usize;
    let ranks = env_number("ST_LEASE_RANKS", 4) as usize;
    let home = tempfile::tempdir().unwrap();
    let dirs = NodeDirs::new("leases", nodes);
    let issued_before = audited_issues(&s, "database/creds/trainer");
    let tokens_before = login_tokens(&probe(&s, "database/creds/trainer"));
    let until = unix_now() + seconds as f64;
    let runs: Vec<Child> = dirs
        .0
        .iter()
        .map(|d| node(&s, home.path(), d, ranks, until, "trainer", "run"))
        .collect();
    let (mut made, mut refused, mut generations, mut failed) = (0, 0, Vec::new(), None);
    for run in runs {
        for r in ranks_of(run, ranks) {
            made += r["made"].as_u64().unwrap();
            refused += r["auth_failed"].as_u64().unwrap() + r["other_failed"].as_u64().unwrap();
            generations.push(r["generations"].as_u64().unwrap());
            if refused > 0 && failed.is_none() {
                failed = Some(r);
            }
        }
    }
    let ended = Instant::now();
    let took = gone_within(
        &s,
        "database/creds/trainer",
        Some(&tokens_before),
        Duration::from_secs(2),
    );
    let issued = audited_issues(&s, "database/creds/trainer") - issued_before;
    let most = *generations.iter().max().unwrap();
    println!(
        "leases: {nodes} node(s) x {ranks} ranks, {seconds} s: connections={made} \
         refused={refused} generations={generations:?} issued={issued} \
         nothing_left_after={:.2}s ({:.2}s from the last run's exit)",
        took.as_secs_f64(),
        ended.elapsed().as_secs_f64()
    );
    let left_tokens = login_tokens(&probe(&s, "database/creds/trainer"))
        .difference(&tokens_before)
        .count();
    println!(
        "BENCH {}",
        json!({"kind": "ranks", "nodes": nodes, "ranks": ranks, "seconds": seconds,
               "connections": made, "refused": refused, "generations": most, "issued": issued,
               "gone_after": took.as_secs_f64(), "tokens_left": left_tokens})
    );
    assert_eq!(refused, 0, "a rank was refused or failed: {failed:?}");
    // Each generation lives at most max_ttl: a run of D seconds crosses at
    // least D / 12 of them.
    assert!(most >= seconds / 12, "{generations:?}");
    // One lease per node per generation, not per rank.
    assert!(
        issued <= nodes * (most as usize + 1),
        "issued {issued} leases for {nodes} node(s) and {most} generations"
    );
}

/// A credential dropped behind the job's back (an operator revokes the
/// role's leases, and OpenBao drops their PostgreSQL roles) while the 4
/// ranks of a node under `run` connect every 100 ms with the `job` role
/// (30-s leases, so none ends by itself): each rank is refused at most once,
/// reports it (`st_secrets_report_failure`, tests/vault/pg_rank.py's
/// "report" mode) and goes on with the credential the report had issued
/// anew, one for the node; the job leaves nothing.
#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn a_credential_revoked_behind_the_job_is_reported_and_issued_anew_once() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let home = tempfile::tempdir().unwrap();
    let dirs = NodeDirs::new("leases-report", 1);
    let prefix = "database/creds/job";
    let issued_before = audited_issues(&s, prefix);
    let until = unix_now() + 12.0;
    let run = node(&s, home.path(), &dirs.0[0], 4, until, "job", "report");
    let began = Instant::now();
    while probe(&s, prefix)["leases"].as_u64().unwrap() == 0 {
        assert!(began.elapsed() < Duration::from_secs(10), "no lease issued");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(true)
            .build(),
    );
    agent
        .put(&format!(
            "{}/v1/sys/leases/revoke-prefix/{prefix}",
            text(&s, "url")
        ))
        .header("X-Vault-Token", text(&s, "root_token"))
        .send_empty()
        .unwrap();
    let revoked_at = unix_now();
    let ranks = ranks_of(run, 4);
    let refused: Vec<u64> = ranks
        .iter()
        .map(|r| r["auth_failed"].as_u64().unwrap())
        .collect();
    let issued = audited_issues(&s, prefix) - issued_before;
    let took = gone_within(&s, prefix, None, Duration::from_secs(2));
    println!(
        "revoked behind the job {:.1}s before its end: refused per rank {refused:?}, \
         connections {:?}, issued {issued}; nothing left {:.2}s after",
        until - revoked_at,
        ranks
            .iter()
            .map(|r| r["made"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        took.as_secs_f64()
    );
    for r in &ranks {
        assert_eq!(r["other_failed"].as_u64(), Some(0), "{r}");
        assert!(
            r["auth_failed"].as_u64().unwrap() <= 1,
            "refused again after the report: {r}"
        );
    }
    assert!(
        refused.iter().sum::<u64>() >= 1,
        "the revocation was never felt"
    );
    assert!(
        ranks.iter().all(|r| r["generations"].as_u64() == Some(2)),
        "{ranks:?}"
    );
    // The first credential and the one the reports had issued, for the node.
    assert_eq!(issued, 2, "leases issued for the node");
}

/// An ending: its label, `run`'s options, the rank's mode, the signal sent
/// to `run`, whether the rank is killed 1 s later, `run`'s exit status.
type Ending<'a> = (&'a str, &'a [&'a str], &'a str, Option<i32>, bool, i32);

/// The tool with the leased `pg` of `role` configured, its output.
fn tool(s: &Value, home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let cfg = home.join("c.json");
    std::fs::write(&cfg, config(s, "job", None)).unwrap();
    let out = clean(env!("CARGO_BIN_EXE_st-secrets"), s, home)
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn a_leased_credential_is_never_frozen_into_an_environment_or_printed_dead() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let home = tempfile::tempdir().unwrap();
    // run (--all, and --only): a reference, resolved by the library in the
    // command, never the value run's own lease holds.
    let show = r#"printf '%s|%s' "$PG_PASSWORD" "$PG_USERNAME""#;
    let (code, out, err) = tool(&s, home.path(), &["run", "--", "sh", "-c", show]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "st://PG_PASSWORD|st://PG_USERNAME", "{err}");
    assert!(err.contains("hold leased credentials"), "{err}");
    let (code, out, err) = tool(
        &s,
        home.path(),
        &["run", "--only", "pg_password", "--", "sh", "-c", show],
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "st://pg_password|"),
        "{err}"
    );
    // get and env --only: refused, saying what to use; env --all skips.
    for args in [
        &["get", "pg_password"][..],
        &["env", "--only", "pg_username"],
    ] {
        let (code, out, err) = tool(&s, home.path(), args);
        assert_eq!(code, Some(3), "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: nothing printed: {out}");
        assert!(
            err.contains("leased credential") && err.contains("st-secrets run --file"),
            "{err}"
        );
    }
    let (code, out, err) = tool(&s, home.path(), &["env"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("PG_PASSWORD"), "{out}");
    assert!(err.contains("skipped PG_PASSWORD"), "{err}");
    // Every lease those commands took is revoked as they ended.
    gone_within(&s, "database/creds/job", None, Duration::from_secs(5));
}

/// One ending of `run` (given `options` too): a rank that connects once,
/// then `mode`; `signal` (if any) sent to `run` once the rank is ready; with
/// `kill_child`, the rank is killed 1 s later.
fn ending(
    s: &Value,
    options: &[&str],
    mode: &str,
    signal: Option<i32>,
    kill_child: bool,
) -> (Option<i32>, f64) {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("c.json");
    let dirs = NodeDirs::new(&format!("end-{mode}"), 1);
    std::fs::write(&cfg, config(s, "job", Some(&dirs.0[0]))).unwrap();
    let ready = home.path().join("ready");
    let mut cmd = clean(env!("CARGO_BIN_EXE_st-secrets"), s, home.path());
    cmd.arg("--config")
        .arg(&cfg)
        .args(["run", "--only", "pg_password"])
        .args(options)
        .arg("--")
        .arg(text(s, "python"))
        .arg(script("pg_rank.py"))
        .arg(library())
        .arg(std::fs::read_to_string(&cfg).unwrap())
        .arg(s["pg_port"].to_string())
        .arg((unix_now() + 60.0).to_string())
        .arg("0.1")
        .arg(mode)
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = cmd.spawn().unwrap();
    let began = Instant::now();
    while !ready.exists() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the rank never connected"
        );
        if let Some(status) = run.try_wait().unwrap() {
            if !mode.starts_with("exit") && mode != "segv" {
                panic!("run ended early: {status:?}");
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let child: i32 = std::fs::read_to_string(&ready)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    if let Some(sig) = signal {
        // SAFETY: kill(2) on the run's pid, which this test started and has
        // not reaped.
        unsafe { libc::kill(run.id() as i32, sig) };
    }
    if kill_child {
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: kill(2) on the rank's pid, read from its ready file.
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    let status = run.wait().unwrap();
    let took = gone_within(s, "database/creds/job", None, Duration::from_secs(2));
    (status.code(), took.as_secs_f64())
}

#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn run_revokes_the_jobs_leases_however_the_command_ends() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let term = Some(libc::SIGTERM);
    let kill_after: &[&str] = &["--kill-after", "1"];
    let cases: [Ending; 8] = [
        ("exit 0", &[], "exit0", None, false, 0),
        ("exit 1", &[], "exit1", None, false, 1),
        ("SIGTERM", &[], "run", term, false, 128 + libc::SIGTERM),
        (
            "SIGINT",
            &[],
            "run",
            Some(libc::SIGINT),
            false,
            128 + libc::SIGINT,
        ),
        (
            "SIGHUP",
            &[],
            "run",
            Some(libc::SIGHUP),
            false,
            128 + libc::SIGHUP,
        ),
        (
            "the command's SIGSEGV",
            &[],
            "segv",
            None,
            false,
            128 + libc::SIGSEGV,
        ),
        (
            "SIGTERM, then SIGKILL 1 s later",
            &[],
            "ignore-term",
            term,
            true,
            137,
        ),
        (
            "SIGTERM ignored, run --kill-after 1",
            kill_after,
            "ignore-term",
            term,
            false,
            137,
        ),
    ];
    for (label, options, mode, signal, kill_child, want) in cases {
        let (code, took) = ending(&s, options, mode, signal, kill_child);
        println!("ending '{label}': run exited {code:?}; no lease and no role {took:.2}s after");
        println!(
            "BENCH {}",
            json!({"kind": "ending", "label": label, "gone_after": took})
        );
        assert_eq!(code, Some(want), "{label}");
    }
}

#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn after_sigkill_of_run_the_leases_end_with_their_ttl() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let home = tempfile::tempdir().unwrap();
    let dirs = NodeDirs::new("killed", 1);
    let until = unix_now() + 60.0;
    let mut run = node(&s, home.path(), &dirs.0[0], 1, until, "trainer", "run");
    let began = Instant::now();
    while probe(&s, "database/creds/trainer")["roles"]
        .as_u64()
        .unwrap()
        == 0
    {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no lease was issued"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // As a node's end kills every process of the job: run, the launcher
    // and the rank (found by their parent links: run shares this test's
    // process group).
    let pid = run.id() as i32;
    let descendants = descendants_of(pid);
    // Its job ledger's private directory, which a SIGKILL leaves behind
    // (named in its command's environment).
    let environ = std::fs::read(format!("/proc/{}/environ", descendants[0])).unwrap();
    let ledger = environ
        .split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find_map(|v| v.strip_prefix("SIMPLETUNER_JOB_LEDGER=").map(PathBuf::from))
        .expect("run names its ledger in its environment");
    for p in std::iter::once(pid).chain(descendants) {
        // SAFETY: kill(2) on processes this test started (run and its
        // children), not reaped yet.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let _ = run.wait();
    assert!(ledger.exists(), "the ledger of a killed run is left");
    std::fs::remove_dir_all(ledger.parent().unwrap()).unwrap();
    let took = gone_within(
        &s,
        "database/creds/trainer",
        None,
        Duration::from_secs(4 + 3),
    );
    println!(
        "SIGKILL of run: no lease and no role {:.2}s after (default_ttl 4 s)",
        took.as_secs_f64()
    );
    println!(
        "BENCH {}",
        json!({"kind": "killed", "gone_after": took.as_secs_f64()})
    );
}

/// Every descendant of `pid` (from /proc's parent links).
fn descendants_of(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out.remove(0);
    out
}

#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn a_lease_is_renewed_issued_again_with_a_change_event_and_revoked_when_freed() {
    let s = setup("ST_TEST_LEASES_SETUP");
    std::env::remove_var("SIMPLETUNER_JOB_LEDGER");
    std::env::set_var("VAULT_ROLE_ID", text(&s, "role_id"));
    std::env::set_var("VAULT_SECRET_ID", text(&s, "secret_id"));
    let tokens_before = login_tokens(&probe(&s, "database/creds/trainer"));
    let config =
        st_secrets::secrets::ManagerConfig::from_json(&config(&s, "trainer", None)).unwrap();
    let m = st_secrets::secrets::SecretsManager::new(config).unwrap();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    m.on_change(move |e| {
        seen.lock()
            .unwrap()
            .push((e.key.clone(), e.version.clone().map(|v| v.id)));
    });
    let mut users: Vec<(String, Instant)> = Vec::new();
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(15) {
        let user = m.get("PG_USERNAME").unwrap().unwrap().expose().to_owned();
        if users.last().is_none_or(|(u, _)| *u != user) {
            users.push((user, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        users.len() >= 2,
        "never issued again: {} generation(s)",
        users.len()
    );
    // The first generation outlived its 4 s lease: it was renewed.
    let first = users[1].1.duration_since(users[0].1);
    assert!(
        first > Duration::from_secs(6),
        "the first credential lasted {first:?}"
    );
    let events = events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|(k, v)| k == "pg_username"
                && v.as_deref().is_some_and(|v| v.starts_with("lease-"))),
        "{events:?}"
    );
    assert!(
        probe(&s, "database/creds/trainer")["leases"]
            .as_u64()
            .unwrap()
            >= 1
    );
    drop(m);
    let took = gone_within(
        &s,
        "database/creds/trainer",
        Some(&tokens_before),
        Duration::from_secs(2),
    );
    println!(
        "one process: {} generations in 15 s, the first {:.1}s; all revoked {:.2}s after the free",
        users.len(),
        first.as_secs_f64(),
        took.as_secs_f64()
    );
}

/// `run --aws-credentials`: a command's boto3 (every 0.2 s) and AWS CLI
/// (every 2 s) read S3 on moto (signatures checked) while the user's access
/// key is replaced `ST_SERVED_ROTATIONS` times (5; the benchmark 50), each
/// old key deleted 4 s after its successor is written, so a command still
/// signing with it would fail. Its credentials come from `run`'s
/// container-credentials endpoint (the chain's `credential_process`
/// source). Checked: no failed read, every key seen, 403 without the token
/// or with another, and nothing listening once `run` has ended.
#[test]
#[ignore = "needs moto: scripts/test-all.sh leases"]
fn aws_credentials_are_served_fresh_to_the_command() {
    let m = setup("ST_TEST_MOTO_SETUP");
    let rotations = env_number("ST_SERVED_ROTATIONS", 5);
    let period = 4.0;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let py = text(&m, "python");
    let served = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/aws/served_creds.py");
    let moto_setup = std::env::var("ST_TEST_MOTO_SETUP").unwrap();
    let mut prepare = Command::new(py);
    prepare
        .arg(&served)
        .args(["prepare", &moto_setup])
        .arg(dir.path());
    common::stdout_of(prepare);
    // The rotations run beside the command, from a second after it starts.
    let seconds = rotations as f64 * (period + 1.0) + 4.0;
    let until = unix_now() + seconds;
    let venv_bin = Path::new(py).parent().unwrap();
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cfg = home.path().join("c.json");
    std::fs::write(&cfg, r#"{"providers": ["env"]}"#).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_st-secrets"))
        .env_clear()
        .env("PATH", &path)
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.path().join("config"))
        .env("AWS_REGION", text(&m, "region"))
        .env("AWS_ENDPOINT_URL", text(&m, "url"))
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--aws-credentials", "--"])
        .arg(py)
        .arg(&served)
        .arg("child")
        .arg(dir.path())
        .arg(until.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut rotate = Command::new(py);
    rotate
        .arg(&served)
        .args(["rotate", &moto_setup])
        .arg(dir.path())
        .arg(rotations.to_string())
        .arg(period.to_string());
    let rotated = common::stdout_of(rotate);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed: {stderr}");
    let r: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{e}: {stderr}"));
    println!(
        "served credentials: {rotated} keys replaced (each old one deleted): boto3 calls={} \
         errors={}, AWS CLI calls={} errors={}, keys seen={}; without the token HTTP {}, \
         another token HTTP {} {:?}",
        r["calls"],
        r["errors"],
        r["cli_calls"],
        r["cli_errors"],
        r["keys_seen"],
        r["no_token"],
        r["other_token"],
        r["kinds"]
    );
    println!(
        "BENCH {}",
        json!({"kind": "served", "rotations": rotated, "result": r})
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["cli_errors"], 0, "{r}");
    assert_eq!(r["no_token"], 403);
    assert_eq!(r["other_token"], 403);
    assert_eq!(r["removed"], json!([]));
    // Fresh: the command used the last rotation's key (waited for, not
    // assumed within a time) and keys in between; a busy machine may take
    // two rotations within one of the chain's refreshes.
    assert_eq!(r["final_seen"], true, "{r}");
    assert!(r["keys_seen"].as_u64().unwrap() >= 2, "{r}");
    let port = r["port"].as_u64().unwrap() as u16;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on the endpoint's port"
    );
}

/// The peer, side by side: `bao agent` (OpenBao's Vault Agent) renders the
/// same leased credential to a file with its template (auto-auth with the
/// same AppRole), and 8 ranks read the file before each connection, every
/// 100 ms, for `ST_LEASE_SECONDS` (36); then the agent is stopped with
/// SIGTERM (a graceful exit) and what it leaves is counted. Measured, not
/// judged: the ranks ran and the agent rendered.
#[test]
#[ignore = "needs OpenBao and PostgreSQL: scripts/test-all.sh leases"]
fn peer_vault_agent_renders_the_same_credential() {
    let s = setup("ST_TEST_LEASES_SETUP");
    let seconds = env_number("ST_LEASE_SECONDS", 36);
    let ranks = env_number("ST_PEER_RANKS", 8) as usize;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("role_id"), text(&s, "role_id")).unwrap();
    std::fs::write(dir.path().join("secret_id"), text(&s, "secret_id")).unwrap();
    let rendered = dir.path().join("pg.json");
    let hcl = format!(
        "auto_auth {{\n  method \"approle\" {{\n    mount_path = \"auth/{}\"\n    config = {{\n      \
         role_id_file_path = \"{}\"\n      secret_id_file_path = \"{}\"\n      \
         remove_secret_id_file_after_reading = false\n    }}\n  }}\n}}\n\
         vault {{\n  address = \"{}\"\n}}\n\
         template {{\n  contents = \"{{{{ with secret \\\"database/creds/trainer\\\" }}}}\
         {{\\\"username\\\": \\\"{{{{ .Data.username }}}}\\\", \\\"password\\\": \
         \\\"{{{{ .Data.password }}}}\\\"}}{{{{ end }}}}\"\n  destination = \"{}\"\n  \
         perms = \"0600\"\n}}\n",
        text(&s, "approle_mount"),
        dir.path().join("role_id").display(),
        dir.path().join("secret_id").display(),
        text(&s, "url"),
        rendered.display()
    );
    let issued_before = audited_issues(&s, "database/creds/trainer");
    let mut agent = common::start_bao("agent", dir.path(), &hcl);
    common::wait_until(&agent, "the agent's template", || rendered.exists());
    let until = unix_now() + seconds as f64;
    let lib = format!("file:{}", rendered.display());
    let children: Vec<Child> = (0..ranks)
        .map(|_| {
            Command::new(text(&s, "python"))
                .arg(script("pg_rank.py"))
                .arg(&lib)
                .arg("{}")
                .arg(s["pg_port"].to_string())
                .arg(until.to_string())
                .arg("0.1")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut made, mut refused, mut generations) = (0, 0, Vec::new());
    for c in children {
        let out = c.wait_with_output().unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        made += r["made"].as_u64().unwrap();
        refused += r["auth_failed"].as_u64().unwrap() + r["other_failed"].as_u64().unwrap();
        generations.push(r["generations"].as_u64().unwrap());
    }
    let issued = audited_issues(&s, "database/creds/trainer") - issued_before;
    // SAFETY: kill(2) on the agent this test started, not reaped yet.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let began = Instant::now();
    let _ = agent.child.wait();
    let exited = began.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let left = probe(&s, "database/creds/trainer");
    println!(
        "peer bao agent: {ranks} ranks, {seconds} s: connections={made} refused={refused} \
         generations={generations:?} issued={issued}; 2 s after its graceful exit ({:.2}s): \
         leases={} roles={}",
        exited.as_secs_f64(),
        left["leases"],
        left["roles"]
    );
    println!(
        "BENCH {}",
        json!({"kind": "peer", "ranks": ranks, "seconds": seconds, "connections": made,
               "refused": refused, "generations": generations.iter().max(), "issued": issued,
               "leases_left": left["leases"], "roles_left": left["roles"]})
    );
    assert!(made > 0 && !generations.is_empty());
    // What it leaves ends with the lease (so the next test starts clean).
    gone_within(&s, "database/creds/trainer", None, Duration::from_secs(15));
}

//! The rotation window against real servers: a PostgreSQL password rotated
//! step by step through moto's stages, as a rotation function does it (a
//! new `AWSPENDING` version, the password changed in PostgreSQL,
//! `AWSCURRENT` moved `ST_ROTATION_WINDOW` seconds later: 6 here, 60 in the
//! benchmark), while `ST_ROTATION_NODES` (2) x `ST_ROTATION_RANKS` (4)
//! ranks, each a process linking the library through its C ABI
//! (tests/aws/rotation_rank.py), connect every 50 ms and report each refused
//! login (`st_secrets_report_failure`). Each node's ranks share the node
//! cache. Run by `scripts/test-all.sh leases`, which starts moto and
//! PostgreSQL.
//!
//! What must hold: at most one refused login per rank (the one that finds
//! the password changed), none after it; no other failure; at most three
//! `GetSecretValue` per node for the whole rotation (moto's recorder). The
//! peer beside it, ranks that answer a refusal with a plain refresh (what
//! the caching libraries advise: `AWSCURRENT` again), is refused until the
//! stage moves.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{env_number, library, setup, text, unix_now, NodeDirs};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/aws")
        .join(name)
}

/// The role's password in PostgreSQL set to `password` (created at first).
fn set_password(s: &Value, user: &str, password: &str) {
    let mut child = Command::new(text(s, "python"))
        .arg(script("pg_password.py"))
        .arg(std::env::var("ST_TEST_LEASES_SETUP").unwrap())
        .arg(user)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "setting the password failed"
    );
}

/// A random password (never printed).
fn password() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What one rotation did to each rank (its JSON line), with moto's counts
/// of `GetSecretValue` and `DescribeSecret` from the first step on: ranks
/// answering a refusal as `mode` says (`report`, `refresh`).
fn rotation(mode: &str) -> (Vec<Value>, usize, usize) {
    let s = setup("ST_TEST_MOTO_SETUP");
    let pg = setup("ST_TEST_LEASES_SETUP");
    let nodes = env_number("ST_ROTATION_NODES", 2) as usize;
    let ranks = env_number("ST_ROTATION_RANKS", 4) as usize;
    let window = env_number("ST_ROTATION_WINDOW", 6) as f64;
    let id = std::process::id();
    let (user, name) = (
        format!("rot_{id}_{mode}"),
        format!("st-secrets/rotation-{id}-{mode}"),
    );
    let (old, new) = (password(), password());
    set_password(&s, &user, &old);
    let v1 = common::moto_rotate(
        &s,
        &["create", &name, &json!({ "DB_PASSWORD": old }).to_string()],
    );

    common::moto_record(&s);
    let dirs = NodeDirs::new("rotation", nodes);
    let home = tempfile::tempdir().unwrap();
    let (warm, settle) = (3.0, 4.0);
    let until = unix_now() + warm + 1.0 + window + settle;
    let children: Vec<_> = (0..nodes * ranks)
        .map(|r| {
            let config = json!({
                "providers": ["aws"],
                "aws_secret_name": name,
                "aws_endpoint": text(&s, "url"),
                "aws_region": text(&s, "region"),
                "cache_ttl": 2,
                "node_cache": true,
                "node_cache_dir": dirs.0[r % nodes],
            });
            Command::new(text(&s, "python"))
                .arg(script("rotation_rank.py"))
                .arg(library())
                .arg(config.to_string())
                .arg(pg["pg_port"].to_string())
                .arg(&user)
                .arg(until.to_string())
                .arg("0.05")
                .arg(mode)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", home.path())
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap())
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    s["admin"]["secret"].as_str().unwrap(),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(warm));
    let (values_before, checks_before) = (
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        common::moto_recorded(&s, "secretsmanager.DescribeSecret"),
    );
    // createSecret, then setSecret: from here AWSCURRENT's password fails.
    let v2 = common::moto_rotate(
        &s,
        &["pending", &name, &json!({ "DB_PASSWORD": new }).to_string()],
    );
    std::thread::sleep(Duration::from_secs(1));
    set_password(&s, &user, &new);
    let changed_at = unix_now();
    std::thread::sleep(Duration::from_secs_f64(window));
    // finishSecret.
    common::moto_rotate(&s, &["promote", &name, &v2, &v1]);

    let outcomes: Vec<Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "rank failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let r: Value =
                serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
            assert_eq!(r["other_failed"], 0, "a rank failed otherwise: {r}");
            // A reporting rank holds the new version from its report on:
            // its last connection's, or, when the report came in the run's
            // last second (a loaded machine), the report's answer. (The
            // peer's ranks reach it at their next forced refresh, up to
            // `refresh_min_interval` after the promotion: possibly after
            // the run.)
            if mode == "report" {
                let last = r["versions"].as_array().unwrap().last().unwrap();
                let reported = r["reports"].as_array().and_then(|a| a.last());
                let held = reported.map(|x| &x["now"]);
                assert!(last == &json!(v2) || held == Some(&json!(v2)), "{r}");
            }
            r
        })
        .collect();
    // The ranks' counters against what moto recorded of them.
    let (all_values, all_checks) = (
        common::moto_recorded(&s, "secretsmanager.GetSecretValue"),
        common::moto_recorded(&s, "secretsmanager.DescribeSecret"),
    );
    let counted = |op: &str| -> usize {
        outcomes
            .iter()
            .flat_map(|r| {
                r["metrics"]["aws"]["requests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|q| q["operation"] == op)
            .map(|q| q["count"].as_u64().unwrap() as usize)
            .sum()
    };
    // Each counted request reached moto; moto may have one more per rank,
    // the refresh a rank's refresher had in flight when it read its
    // counters (counted when answered).
    let in_flight = nodes * ranks;
    for (op, recorded) in [
        ("GetSecretValue", all_values),
        ("DescribeSecret", all_checks),
    ] {
        let n = counted(op);
        assert!(
            n <= recorded && recorded <= n + in_flight,
            "{op}: counters {n}, moto's recorder {recorded} (at most {in_flight} in flight)"
        );
    }
    let (values, checks) = (all_values - values_before, all_checks - checks_before);
    let bench = json!({
        "kind": "rotation", "mode": mode, "nodes": nodes, "ranks": ranks, "window": window,
        "get_secret_value": values, "describe_secret": checks,
        "changed_to_end": until - changed_at, "outcomes": outcomes,
    });
    println!("BENCH {bench}");
    (outcomes, values, checks)
}

#[test]
#[ignore = "needs moto and PostgreSQL: run scripts/test-all.sh leases"]
fn a_rotation_window_refuses_each_rank_at_most_once() {
    let nodes = env_number("ST_ROTATION_NODES", 2) as usize;
    let (outcomes, values, _) = rotation("report");
    for r in &outcomes {
        assert!(
            r["refused"].as_u64().unwrap() <= 1,
            "more than one refusal: {r}"
        );
        assert_eq!(r["refused_after_first"], json!([]), "{r}");
    }
    assert!(
        values <= 3 * nodes,
        "{values} GetSecretValue for {nodes} nodes"
    );
}

#[test]
#[ignore = "needs moto and PostgreSQL: run scripts/test-all.sh leases"]
fn peer_a_plain_refresh_is_refused_until_the_stage_moves() {
    let (outcomes, _, _) = rotation("refresh");
    // The control: AWSCURRENT read again still holds the old password, so
    // the ranks are refused through the window (every 50 ms), not once.
    for r in &outcomes {
        assert!(r["refused"].as_u64().unwrap() > 1, "refused once only: {r}");
    }
}

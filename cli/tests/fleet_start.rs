//! A job's start, short form: `ST_FLEET_START_NODES` (200) processes, one
//! per simulated node, each the tool's `get`, released together through a
//! FIFO by `tests/fleet/fleet_start.py`, with their ranks in Slurm's
//! variables. Against the 3-node OpenBao raft cluster of the openbao-ha
//! suite (`ST_TEST_VAULT_CLUSTER`) with a rate-limit quota of 50 logins a
//! second on their AppRole mount and its audit devices counting, and
//! against moto (`ST_TEST_MOTO_SETUP`) behind the throttling proxy (the one
//! fake: AWS's quota is not something moto has), which boto3 is shown to
//! read as AWS's own throttling. The benchmark with thousands of nodes,
//! restarts and the peers side by side is `scripts/bench.sh fleet-start`.
//!
//! Asserted: no rank fails, one login per node, no login token left
//! unrevoked, one `GetSecretValue` passed per node. The 429s and throttled
//! answers are printed, not asserted (a loaded machine starts processes
//! late, and a rank's retry is the design's answer to that).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{env_number, free_port, repo_root, setup, spawn, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The login quota and the proxy's rate: what the store takes a second.
const RATE: u64 = 50;

fn driver() -> PathBuf {
    repo_root().join("tests/fleet/fleet_start.py")
}

/// Runs the driver with `python` and `args`; its last line of output, as JSON.
fn drive(python: &str, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(driver())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or(Value::Null)
}

/// One job of `nodes` ranks at `capacity` against the set-up in `setup_json`.
fn job(python: &str, backend: &str, setup_json: &Path, nodes: u64, work: &Path) -> Value {
    // A little under the store's rate: processes started on a loaded
    // machine arrive late, a few into the next one's second.
    let capacity = (RATE * 9 / 10).to_string();
    let j = drive(
        python,
        &[
            "job",
            backend,
            setup_json.to_str().unwrap(),
            env!("CARGO_BIN_EXE_st-secrets"),
            "ranks",
            &nodes.to_string(),
            &capacity,
            work.to_str().unwrap(),
        ],
    );
    println!("{backend}: {j}");
    assert_eq!(j["failed"], 0, "{j}");
    j
}

#[test]
#[ignore = "needs the OpenBao cluster: run scripts/test-all.sh openbao-ha"]
fn a_fleet_with_ranks_starts_against_a_login_quota_and_no_rank_fails() {
    let cluster = std::env::var("ST_TEST_VAULT_CLUSTER").expect("ST_TEST_VAULT_CLUSTER");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&cluster).unwrap()).unwrap();
    let python = state["control"][0].as_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = work.path().join("fleet.json");
    drive(
        python,
        &[
            "vault-setup",
            &cluster,
            &RATE.to_string(),
            s.to_str().unwrap(),
        ],
    );
    let nodes = env_number("ST_FLEET_START_NODES", 200);
    let began = Instant::now();
    let j = job(python, "vault", &s, nodes, work.path());
    assert_eq!(j["logins"], nodes, "one login per node: {j}");
    assert_eq!(j["unrevoked"], 0, "no token left: {j}");
    println!(
        "{nodes} nodes, {RATE} logins/s: every rank held its secret in {} s (N / C = {} s); \
         {} answers 429, {} timeouts; the job with its counting took {:?}",
        j["seconds"],
        nodes / RATE,
        j["429"],
        j["timeout"],
        began.elapsed()
    );
}

#[test]
#[ignore = "needs moto: run scripts/test-all.sh openbao-ha"]
fn a_fleet_with_ranks_starts_against_throttled_aws_and_no_rank_fails() {
    let s = setup("ST_TEST_MOTO_SETUP");
    let python = text(&s, "python");
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let counts = work.path().join("proxy-counts.json");
    std::fs::write(
        &counts,
        r#"{"passed": 0, "throttled": 0, "operations": {}}"#,
    )
    .unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(driver()).args([
        "proxy",
        &port.to_string(),
        text(&s, "url"),
        &RATE.to_string(),
        counts.to_str().unwrap(),
    ]);
    let _proxy = spawn(cmd, work.path().join("proxy.log"));
    let proxy = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the proxy did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The fake's faithfulness: AWS's SDK, sending a burst of twice the
    // rate at once, reads the refusals as AWS's own throttling (what
    // botocore retries as such).
    let boto = format!(
        r#"
import boto3, botocore, json, sys
s = json.load(open({setup:?}))
sm = boto3.client("secretsmanager", region_name=s["region"], endpoint_url={proxy:?},
    aws_access_key_id=s["admin"]["id"], aws_secret_access_key=s["admin"]["secret"],
    config=botocore.config.Config(retries={{"total_max_attempts": 1}}))
from concurrent.futures import ThreadPoolExecutor
def one(_):
    try:
        sm.get_secret_value(SecretId="st-secrets/test")
        return "ok", None
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"] + " " + str(e.response["ResponseMetadata"]["HTTPStatusCode"])
        return code, e.response
with ThreadPoolExecutor({burst}) as pool:
    said = list(pool.map(one, range({burst})))
codes = [c for c, _ in said]
throttled = next((r for _, r in said if r is not None), None)
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker
read_as = throttled is not None and ThrottledRetryableChecker().is_retryable(
    RetryContext(attempt_number=1, parsed_response=throttled))
print(json.dumps({{"codes": sorted(set(codes)), "throttling": read_as}}))
"#,
        setup = std::env::var("ST_TEST_MOTO_SETUP").unwrap(),
        burst = RATE * 2,
    );
    let out = Command::new(python).args(["-c", &boto]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(
        said["codes"],
        serde_json::json!(["ThrottlingException 400", "ok"]),
        "{said}"
    );
    assert_eq!(said["throttling"], true, "{said}");
    // Past the second the burst filled.
    std::thread::sleep(Duration::from_millis(1100));
    let mut aws = s.clone();
    aws["proxy"] = Value::from(proxy);
    aws["proxy_counts"] = Value::from(counts.to_str().unwrap());
    aws["rate"] = Value::from(RATE);
    let aws_json = work.path().join("aws.json");
    std::fs::write(&aws_json, aws.to_string()).unwrap();
    let nodes = env_number("ST_FLEET_START_NODES", 200);
    let j = job(python, "aws", &aws_json, nodes, work.path());
    assert_eq!(j["gets"], nodes, "one GetSecretValue per node: {j}");
    assert_eq!(j["passed"], nodes, "and nothing else: {j}");
    println!(
        "{nodes} nodes, {RATE} requests/s: every rank held its secret in {} s (N / C = {} s); \
         {} throttled",
        j["seconds"],
        nodes / RATE,
        j["throttled"]
    );
}

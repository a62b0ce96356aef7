//! Provenance across a job, against a real OpenBao: `ST_PROVENANCE_NODES`
//! (4) x `ST_PROVENANCE_RANKS` (8) ranks, each a process linking the library
//! through its C ABI (tests/vault/provenance_rank.py) with its own
//! provenance file and the job's salt, get a KV v2 secret every 50 ms while
//! the test writes a new version of it. Each node's ranks share the node
//! cache. Run by `scripts/test-all.sh tool-servers`.
//!
//! What must hold: every rank's file ends on the new version, first used
//! within one TTL of the write; every rank gives each version the same
//! fingerprint; no file holds a value (`st-secrets scan` finds none). The
//! ranks' counters (`st_secrets_metrics_json`) add up to what OpenBao's
//! audit log recorded of their reads; `run --metrics` writes them as text
//! that `promtool check metrics`'s checks accept (tests/promlint).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{audited, env_number, library, setup, text, unix_now, NodeDirs};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Unix seconds of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
fn unix(t: &str) -> f64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs: f64 = t[17..t.len() - 1].parse().unwrap();
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60) as f64 + secs
}

/// Writes `value` as the next version of the KV v2 secret `path`; its version.
fn write(s: &Value, path: &str, value: &str) -> String {
    let answer = ureq::post(&format!("{}/v1/secret/data/{path}", text(s, "url")))
        .header("X-Vault-Token", text(s, "root_token"))
        .send(json!({"data": {"RUN_TOKEN": value}}).to_string())
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let doc: Value = serde_json::from_str(&answer).unwrap();
    doc["data"]["version"].to_string()
}

#[test]
#[ignore = "needs OpenBao: run scripts/test-all.sh tool-servers"]
fn after_a_kv_write_every_ranks_provenance_agrees_within_one_ttl() {
    let s = setup("ST_TEST_VAULT_SETUP");
    let nodes = env_number("ST_PROVENANCE_NODES", 4) as usize;
    let ranks = env_number("ST_PROVENANCE_RANKS", 8) as usize;
    let ttl = 2.0;
    let path = format!("provenance-{}", std::process::id());
    write(&s, &path, "run_token_first_0123456789");
    let data = format!("secret/data/{path}");
    let metadata = format!("secret/metadata/{path}");
    let reads = |p: &str| {
        audited(&s, "audit_log", "request", p, |e| {
            e["request"]["operation"] == "read"
        })
    };
    let before = (reads(&data), reads(&metadata));
    let dirs = NodeDirs::new("provenance", nodes);
    let job = tempfile::tempdir().unwrap();
    let salt = job.path().join("salt");
    std::fs::write(&salt, st_secrets::secrets::provenance::new_salt().expose()).unwrap();
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&salt, private).unwrap();
    let until = unix_now() + 3.0 + ttl + 2.0;
    let children: Vec<_> = (0..nodes * ranks)
        .map(|r| {
            let config = json!({
                "providers": ["vault"],
                "vault_url": text(&s, "url"),
                "vault_token": text(&s, "root_token"),
                "vault_path": path,
                "cache_ttl": ttl,
                "node_cache": true,
                "node_cache_dir": dirs.0[r % nodes],
            });
            Command::new(text(&s, "python"))
                .arg(
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vault/provenance_rank.py"),
                )
                .arg(library())
                .arg(config.to_string())
                .arg("RUN_TOKEN")
                .arg(until.to_string())
                .arg("0.05")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", job.path())
                .env(
                    "SIMPLETUNER_PROVENANCE_FILE",
                    job.path().join(format!("rank-{r}.jsonl")),
                )
                .env("SIMPLETUNER_PROVENANCE_SALT_FILE", &salt)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let written_at = unix_now();
    let version = write(&s, &path, "run_token_second_0123456789");
    let mut lags = Vec::new();
    let mut fingerprints = std::collections::BTreeSet::new();
    let mut counted = (0, 0);
    for (r, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rank {r}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The library call agrees with the file.
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        let used = &answer["provenance"];
        counted.0 += requests(&answer["metrics"], "kv read");
        counted.1 += requests(&answer["metrics"], "kv metadata");
        assert_eq!(used[0]["version"], json!(version), "rank {r}: {used}");
        let file = job.path().join(format!("rank-{r}.jsonl"));
        let lines: Vec<Value> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "rank {r}: one line per version: {lines:?}");
        let last = &lines[1];
        assert_eq!(last["version"], json!(version), "rank {r}");
        assert_eq!(last["fingerprint"], used[0]["fingerprint"]);
        fingerprints.insert(format!(
            "{} {}",
            lines[0]["fingerprint"], last["fingerprint"]
        ));
        lags.push(unix(last["first_used"].as_str().unwrap()) - written_at);
    }
    assert_eq!(
        fingerprints.len(),
        1,
        "every rank fingerprints each version alike"
    );
    // The ranks' counters equal what the server recorded of them.
    let recorded = (reads(&data) - before.0, reads(&metadata) - before.1);
    assert_eq!(
        counted, recorded,
        "(kv reads, kv metadata reads): counters, audit log"
    );
    let slowest = lags.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        slowest <= ttl,
        "a rank used the new version {slowest:.2} s after the write"
    );
    // No value in any record.
    let scanner = tempfile::tempdir().unwrap();
    let cfg = scanner.path().join("config.json");
    let doc = json!({"providers": ["vault"], "vault_url": text(&s, "url"),
        "vault_token": text(&s, "root_token"), "vault_path": path});
    std::fs::write(&cfg, doc.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_st-secrets"))
        .arg("--config")
        .arg(&cfg)
        .args(["scan", "--key", "RUN_TOKEN"])
        .arg(job.path())
        .env_clear()
        .env("HOME", scanner.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let mut sorted = lags.clone();
    sorted.sort_by(f64::total_cmp);
    // run --metrics: its own counters and its command's, as text.
    let metrics = scanner.path().join("st-secrets.prom");
    let o = Command::new(env!("CARGO_BIN_EXE_st-secrets"))
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--metrics"])
        .arg(&metrics)
        .args(["--", env!("CARGO_BIN_EXE_st-secrets"), "--config"])
        .arg(&cfg)
        .args(["get", "RUN_TOKEN"])
        .env_clear()
        .env("HOME", scanner.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exposition = std::fs::read_to_string(&metrics).unwrap();
    let line = exposition
        .lines()
        .find(|l| l.starts_with("http_client_request_duration_seconds_count{provider=\"vault\",operation=\"kv read\""))
        .unwrap_or_else(|| panic!("no kv read count: {exposition}"));
    // run read the secret to inject it, and its command's get read it again.
    assert_eq!(line.rsplit(' ').next(), Some("2"), "{line}");
    assert!(!exposition.contains(&path), "no path in the metrics");
    // The exposition as `promtool check metrics` checks it (tests/promlint: the
    // same parser and lint, built by the suite without installing Prometheus).
    match std::env::var_os("ST_TEST_PROMLINT") {
        Some(promlint) => {
            let p = Command::new(promlint)
                .stdin(std::fs::File::open(&metrics).unwrap())
                .output()
                .unwrap();
            assert!(
                p.status.success(),
                "promlint: {}{}",
                String::from_utf8_lossy(&p.stdout),
                String::from_utf8_lossy(&p.stderr)
            );
        }
        None => assert!(
            std::env::var_os("CI").is_none(),
            "ST_TEST_PROMLINT (tests/promlint, built by the tool-servers suite) is needed in CI"
        ),
    }
    let bench = json!({"kind": "provenance", "nodes": nodes, "ranks": ranks, "ttl": ttl,
        "median_lag": sorted[sorted.len() / 2], "slowest_lag": slowest});
    println!("BENCH {bench}");
}

/// The requests of `operation` in a process's counters (the Vault provider's).
fn requests(metrics: &Value, operation: &str) -> usize {
    metrics["vault"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["operation"] == operation)
        .map(|r| r["count"].as_u64().unwrap() as usize)
        .sum()
}

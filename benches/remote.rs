//! The remote providers' benchmark against real servers started and set up
//! by `scripts/bench.sh remote`: AWS Secrets Manager against moto
//! (`ST_TEST_MOTO_SETUP`) and Vault (KV v2) against OpenBao
//! (`ST_TEST_VAULT_SETUP`). For each: the time to the first value (new
//! manager, credentials or token, request, parse), an uncached get on a warm
//! connection, a cached get (provider alone and through the default chain),
//! and the requests sent by 2 threads x 10,000 gets within one TTL. Prints
//! JSON lines for `benches/report_pairs.py`; the Python peers (boto3, hvac)
//! are `benches/python/bench_remote_peers.py`.

use serde_json::{json, Value};
use st_secrets::secrets::AwsProvider;
use st_secrets::secrets::Vars;
use st_secrets::secrets::VaultProvider;
use st_secrets::secrets::{AwsSettings, FileSettings, RemoteSettings, VaultSettings};
use st_secrets::secrets::{ManagerConfig, Provider, ProviderKind, SecretsManager};
use st_secrets::SecretString;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn emit(workload: String, samples: Vec<f64>) {
    let n = samples.len();
    println!(
        "{}",
        json!({"name": "st-secrets", "workload": workload, "median_ns": median(samples), "runs": n})
    );
}

fn per_op(f: &dyn Fn()) -> Vec<f64> {
    (0..21)
        .map(|_| {
            let n = 200_000;
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect()
}

/// Every measurement for one remote provider: `config` configures it (and
/// has it alone in the chain), `vars` is its environment, `provider` builds
/// it alone.
fn measure(
    label: &str,
    config: ManagerConfig,
    vars: &dyn Fn() -> Vars,
    provider: &dyn Fn(&ManagerConfig) -> Arc<dyn Provider>,
) {
    emit(
        format!("{label}: time to first value (new client)"),
        first_values(&config, vars),
    );

    let uncached = ManagerConfig {
        remote: RemoteSettings {
            cache_ttl: Duration::ZERO,
            ..config.clone().remote
        },
        ..config.clone()
    };
    let m = SecretsManager::with_environment(uncached, vars()).unwrap();
    m.get("HF_TOKEN").unwrap();
    let warm = (0..31)
        .map(|_| {
            let t = Instant::now();
            black_box(m.get("HF_TOKEN").unwrap().unwrap());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    emit(format!("{label}: uncached read on a warm client"), warm);

    let p = provider(&config);
    p.lookup("HF_TOKEN").unwrap();
    emit(
        format!("{label}: cached get, provider alone"),
        per_op(&|| {
            black_box(p.lookup(black_box("HF_TOKEN")).unwrap());
        }),
    );
    let dir = std::env::temp_dir().join(format!("st-bench-remote-{}", std::process::id()));
    let chain = ManagerConfig {
        providers: ProviderKind::DEFAULT_CHAIN.to_vec(),
        file: FileSettings {
            path: Some(dir.join("secrets.json")),
            ..config.clone().file
        },
        ..config.clone()
    };
    let m = SecretsManager::with_environment(chain, vars()).unwrap();
    m.get("HF_TOKEN").unwrap();
    emit(
        format!("{label}: cached get through the default chain"),
        per_op(&|| {
            black_box(m.get(black_box("HF_TOKEN")).unwrap());
        }),
    );

    let p = provider(&config);
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    black_box(p.lookup("HF_TOKEN").unwrap());
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    let detail = p.status().detail;
    println!(
        "{}",
        json!({"name": "st-secrets", "count_of": format!("{label}: requests for 2 threads x 10,000 gets"),
               "provider_detail": detail, "wall_ms": wall_ms})
    );
}

/// Times from a new manager to its first value, 31 runs.
fn first_values(config: &ManagerConfig, vars: &dyn Fn() -> Vars) -> Vec<f64> {
    (0..31)
        .map(|_| {
            let t = Instant::now();
            let m = SecretsManager::with_environment(config.clone(), vars()).unwrap();
            black_box(m.get("HF_TOKEN").unwrap().unwrap());
            t.elapsed().as_nanos() as f64
        })
        .collect()
}

fn setup(var: &str) -> Option<Value> {
    let path = std::env::var(var).ok()?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn main() {
    if let Some(s) = setup("ST_TEST_MOTO_SETUP") {
        let (id, secret) = (s["admin"]["id"].clone(), s["admin"]["secret"].clone());
        let vars = move || {
            Vars::empty()
                .set("AWS_ACCESS_KEY_ID", id.as_str().unwrap())
                .set("AWS_SECRET_ACCESS_KEY", secret.as_str().unwrap())
                .set("AWS_EC2_METADATA_DISABLED", "true")
        };
        let config = ManagerConfig {
            providers: vec![ProviderKind::Aws],
            aws: AwsSettings {
                secret_names: Some(vec!["st-secrets/test".into()]),
                region: Some("us-east-1".into()),
                endpoint: Some(s["url"].as_str().unwrap().into()),
                agent_url: None,
            },
            ..ManagerConfig::default()
        };
        let v = vars.clone();
        measure("aws", config, &vars, &move |c| {
            let p: Arc<dyn Provider> = Arc::new(AwsProvider::new(&c.aws, &c.remote, v()));
            p
        });
    }
    if let Some(s) = setup("ST_TEST_VAULT_SETUP") {
        let config = ManagerConfig {
            providers: vec![ProviderKind::Vault],
            vault: VaultSettings {
                url: Some(s["url"].as_str().unwrap().into()),
                token: Some(SecretString::from(s["root_token"].as_str().unwrap())),
                ..Default::default()
            },
            ..ManagerConfig::default()
        };
        let known = ManagerConfig {
            vault: VaultSettings {
                kv_version: Some(2),
                ..config.clone().vault
            },
            ..config.clone()
        };
        measure("vault", config, &Vars::empty, &|c| {
            let p: Arc<dyn Provider> =
                Arc::new(VaultProvider::new(&c.vault, &c.remote, Vars::empty()));
            p
        });
        // Without detection (one sys/internal/ui/mounts request fewer).
        emit(
            "vault: time to first value (new client, vault_kv_version: 2)".into(),
            first_values(&known, &Vars::empty),
        );
    }
}

//! The AWS provider's benchmark against moto's server (started and set up by
//! `scripts/bench-aws.sh`, which passes `ST_TEST_MOTO_SETUP`): a cached get,
//! the requests sent by 2 threads x 10,000 gets within one TTL, the time to
//! the first value (new manager, credentials, signed request, parse), and an
//! uncached get on a warm connection. Prints JSON lines for
//! `benches/report_pairs.py`; `benches/python/bench_aws_boto3.py` measures
//! boto3 on the same server.

use serde_json::{json, Value};
use st_secrets::aws::{AwsProvider, Vars};
use st_secrets::secrets::{ManagerConfig, Provider, ProviderKind, SecretsManager};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn emit(workload: &str, samples: Vec<f64>) {
    let n = samples.len();
    println!(
        "{}",
        json!({"name": "st-secrets", "workload": workload, "median_ns": median(samples), "runs": n})
    );
}

fn main() {
    let Ok(path) = std::env::var("ST_TEST_MOTO_SETUP") else {
        eprintln!("aws bench: ST_TEST_MOTO_SETUP is not set; run scripts/bench-aws.sh");
        return;
    };
    let s: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vars = || {
        Vars::empty()
            .set("AWS_ACCESS_KEY_ID", s["admin"]["id"].as_str().unwrap())
            .set(
                "AWS_SECRET_ACCESS_KEY",
                s["admin"]["secret"].as_str().unwrap(),
            )
            .set("AWS_EC2_METADATA_DISABLED", "true")
    };
    let config = ManagerConfig {
        aws_secret_name: Some("st-secrets/test".into()),
        aws_region: Some("us-east-1".into()),
        aws_endpoint: Some(s["url"].as_str().unwrap().into()),
        ..ManagerConfig::default()
    };

    // Time to first value: a new manager each run (its own connection).
    let only_aws = ManagerConfig {
        providers: vec![ProviderKind::Aws],
        ..config.clone()
    };
    let mut first = Vec::new();
    for _ in 0..31 {
        let t = Instant::now();
        let m = SecretsManager::with_environment(only_aws.clone(), vars()).unwrap();
        black_box(m.get("HF_TOKEN").unwrap().unwrap());
        first.push(t.elapsed().as_nanos() as f64);
    }
    emit(
        "time to first value (new client, signed GetSecretValue)",
        first,
    );

    // Uncached get on a warm connection: TTL 0, every get fetches.
    let uncached = ManagerConfig {
        cache_ttl: Duration::ZERO,
        ..only_aws.clone()
    };
    let m = SecretsManager::with_environment(uncached, vars()).unwrap();
    m.get("HF_TOKEN").unwrap();
    let mut warm = Vec::new();
    for _ in 0..31 {
        let t = Instant::now();
        black_box(m.get("HF_TOKEN").unwrap().unwrap());
        warm.push(t.elapsed().as_nanos() as f64);
    }
    emit("GetSecretValue on a warm client", warm);

    // Cached gets: the provider alone, and through the default chain
    // (env, file, aws: the environment is asked first, as in SimpleTuner).
    let p = AwsProvider::new(&config, vars());
    p.lookup("HF_TOKEN").unwrap();
    let per_op = |f: &dyn Fn()| {
        let mut samples = Vec::new();
        for _ in 0..21 {
            let n = 200_000;
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            samples.push(t.elapsed().as_nanos() as f64 / n as f64);
        }
        samples
    };
    emit(
        "cached get, provider alone",
        per_op(&|| {
            black_box(p.lookup(black_box("HF_TOKEN")).unwrap());
        }),
    );
    let dir = std::env::temp_dir().join(format!("st-bench-aws-{}", std::process::id()));
    let chain = ManagerConfig {
        file_path: Some(dir.join("secrets.json")),
        ..config.clone()
    };
    let m = SecretsManager::with_environment(chain, vars()).unwrap();
    m.get("HF_TOKEN").unwrap();
    emit(
        "cached get through the chain (env > file > aws)",
        per_op(&|| {
            black_box(m.get(black_box("HF_TOKEN")).unwrap());
        }),
    );

    // Requests for 2 threads x 10,000 gets within one TTL.
    let p = Arc::new(AwsProvider::new(&config, vars()));
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
    let requests = p.requests();
    println!(
        "{}",
        json!({"name": "st-secrets", "count_of": "requests for 2 threads x 10,000 gets", "count": requests,
               "wall_ms": t.elapsed().as_secs_f64() * 1e3})
    );
}

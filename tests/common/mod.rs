//! Helpers shared by the integration tests against real servers.

use serde_json::Value;
use st_secrets::secrets::{Provider, SecretsManager};
use std::sync::Arc;

/// The set-up JSON named by the environment variable `var` (written by the
/// server's set-up script that `scripts/test-all.sh` runs).
pub fn setup(var: &str) -> Value {
    let path = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run these tests through scripts/test-all.sh")
    });
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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

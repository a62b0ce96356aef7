//! Helpers shared by the integration tests against real servers.

use serde_json::Value;
use st_secrets::secrets::SecretsManager;

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

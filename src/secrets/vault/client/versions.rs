//! KV v2 versions without their values (`<mount>/metadata/<path>`), and a
//! version read by its number: what a refresh that keeps an unchanged
//! secret, and a report of a failed version, ask.

use super::{Client, Kv};
use crate::secrets::provider::SecretMap;
use crate::secrets::remote::rotation::Versions;
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::FetchError;
use crate::secrets::vault::wire::{expect, secret_from};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;

/// Refusals of `metadata/` in a row after which it is not asked again.
const METADATA_REFUSALS: u32 = 2;

impl Client {
    /// The versions of the KV v2 secret at `path`: the current one (none
    /// when it is deleted or destroyed) and the latest readable one before
    /// it. `None` when the mount is not known to be KV v2, reading its
    /// metadata was refused or found no route: the value is then read as
    /// without a check. Sent with the token held, never logging in for it
    /// (a policy that allows `data/` only is common); refused twice in a
    /// row, it is not asked again by this process.
    pub(in crate::secrets::vault) fn versions(
        &self,
        path: &str,
    ) -> Option<Result<Fetched<Versions>, FetchError>> {
        if !matches!(*self.kv.lock(), Kv::Known(2, _))
            || self.metadata_refusals.load(Relaxed) >= METADATA_REFUSALS
        {
            return None;
        }
        let token = self.token_held()?;
        let path = format!("{}/metadata/{path}", self.mount);
        let r = match self.send("GET", &path, Some(&token), b"") {
            Ok(r) => r,
            Err(f) => return Some(Err(f)),
        };
        match r.status {
            401 | 403 => {
                self.metadata_refusals.fetch_add(1, Relaxed);
                return None;
            }
            404 => return None, // absent, or no such route: the read says which
            _ => self.metadata_refusals.store(0, Relaxed),
        }
        let doc = match expect(r, "Vault metadata read") {
            Ok(r) => r.json().unwrap_or(Value::Null),
            Err(f) => return Some(Err(f)),
        };
        Some(Ok(Fetched::Found(versions_of(&doc["data"]))))
    }

    /// The KV v2 secret at `path` as its version `id` (a number).
    pub(in crate::secrets::vault) fn read_version(
        &self,
        path: &str,
        id: &str,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return self.read_secret(path);
        }
        let r = self.get(&format!("{}/data/{path}?version={id}", self.mount))?;
        secret_from(r, 2)
    }
}

/// The versions a KV v2 metadata answer's `data` lists.
fn versions_of(data: &Value) -> Versions {
    let readable = |n: u64| {
        let v = &data["versions"][n.to_string()];
        v.is_object()
            && v["destroyed"].as_bool() != Some(true)
            && v["deletion_time"].as_str().is_none_or(str::is_empty)
    };
    let current = data["current_version"].as_u64().filter(|&n| n > 0);
    let before = current.and_then(|n| (1..n).rev().find(|&k| readable(k)));
    Versions {
        current: current.filter(|&n| readable(n)).map(|n| n.to_string()),
        beside: before.map(|n| n.to_string()).into_iter().collect(),
        stages: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_before_is_the_latest_readable_one() {
        let data = json!({"current_version": 4, "versions": {
            "1": {"deletion_time": "", "destroyed": false},
            "2": {"deletion_time": "", "destroyed": true},
            "3": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false},
            "4": {"deletion_time": "", "destroyed": false}}});
        let v = versions_of(&data);
        assert_eq!(
            (v.current.as_deref(), v.beside),
            (Some("4"), vec!["1".to_owned()])
        );
        let deleted = json!({"current_version": 2, "versions": {
            "1": {"deletion_time": "", "destroyed": false},
            "2": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false}}});
        assert_eq!(versions_of(&deleted).current, None);
        assert_eq!(versions_of(&json!({})), Versions::default());
    }
}

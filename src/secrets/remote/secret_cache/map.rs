//! The lookups of a cached [`SecretMap`]: a key, with its version, the
//! keys held, and failures scrubbed of the values held.

use super::{SecretCache, Versioned};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::{KeyChange, SecretMap, Version};
use std::time::Duration;

/// Held values shorter than this are not scrubbed from error text: `1`,
/// `true` or a region name would blank out the message itself, and a secret
/// that short is no secret.
const SCRUB_FLOOR: usize = 8;

/// `error` with every value of `held` (values of at least [`SCRUB_FLOOR`]
/// bytes) replaced by `[redacted]` in its message: a server's error text
/// reaches messages, and one that repeats a value it served before must not
/// put it there (the credentials a request sent are scrubbed by the HTTP
/// layer).
pub(super) fn scrub(held: &SecretMap, error: Error) -> Error {
    let values = held
        .values()
        .map(|v| v.expose())
        .filter(|v| v.len() >= SCRUB_FLOOR);
    error.redacting(values)
}

impl Versioned for SecretMap {
    fn version_id(&self) -> Option<&str> {
        self.version().map(|v| v.id.as_str())
    }

    fn scrub(&self, error: Error) -> Error {
        scrub(self, error)
    }

    fn same_label(&self, other: &Self) -> bool {
        self.version() == other.version()
    }

    fn changes(now: Option<&Self>, earlier: Option<&Self>) -> Vec<KeyChange> {
        let none = SecretMap::default();
        match (now, earlier) {
            (None, None) => Vec::new(),
            (now, earlier) => now.unwrap_or(&none).changes_since(earlier.unwrap_or(&none)),
        }
    }
}

impl SecretCache<SecretMap> {
    /// [`lookup`](Self::lookup), with the version of the secret.
    pub fn lookup_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        Ok(self.with_map(|map| map.versioned(key))?.flatten())
    }

    /// `key` in the cached secret (fetched when due): the remote
    /// providers' whole lookup.
    pub fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        Ok(self
            .with_map(|map| map.resolve(key).map(|(_, v)| v.clone()))?
            .flatten())
    }

    /// `f` of the cached secret (fetched when due); `None` when the service
    /// has no such secret.
    pub fn with_map<R>(&self, f: impl FnOnce(&SecretMap) -> R) -> Result<Option<R>, Error> {
        let blob = self.get()?;
        Ok(blob.found().map(f))
    }

    /// Without fetching: `key` in what the cache holds, however old, with the
    /// secret's version.
    pub fn peek(&self, key: &str) -> Option<(SecretString, Option<Version>)> {
        self.state
            .lock()
            .good
            .as_ref()?
            .value
            .found()?
            .versioned(key)
    }

    /// [`force`](SecretCache::force), then `key` in the secret, with its
    /// version.
    pub fn force_versioned(
        &self,
        key: &str,
        min_interval: Duration,
        failed: Option<&str>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        let blob = self.force(min_interval, failed)?;
        Ok(blob.found().and_then(|map| map.versioned(key)))
    }

    /// Without fetching: `None` when the cached secret does not hold `key`
    /// (or nothing is cached), else whether its value is not a secret.
    pub fn holds(&self, key: &str) -> Option<bool> {
        let st = self.state.lock();
        let map = st.good.as_ref()?.value.found()?;
        map.resolve(key).map(|_| map.holds_non_secret(key))
    }

    /// The end of a remote provider's status detail (`"; N requests; value
    /// fetched S s ago"`) and its warnings (the last failure, if any).
    pub fn describe(&self) -> (String, Vec<String>) {
        let n = self.requests();
        let mut detail = format!("; {n} request{}", if n == 1 { "" } else { "s" });
        if let Some(age) = self.age() {
            detail.push_str(&format!("; value fetched {} s ago", age.as_secs()));
        }
        let version = self
            .state
            .lock()
            .good
            .as_ref()
            .and_then(|g| g.value.found()?.version().cloned());
        if let Some(v) = version {
            detail.push_str(&format!("; version {}", v.id));
            if !v.stages.is_empty() {
                detail.push_str(&format!(" ({})", v.stages.join(", ")));
            }
        }
        let mut warnings: Vec<String> = self
            .failure()
            .map(|e| vec![format!("the last fetch failed ({}): {e}", e.code_name())])
            .unwrap_or_default();
        let gave_up = self.gave_up.load(std::sync::atomic::Ordering::Relaxed);
        if gave_up > 0 {
            warnings.push(format!(
                "{gave_up} fetches did not wait any longer for another process of the node \
                 holding the secret's lock in the node cache"
            ));
        }
        (detail, warnings)
    }
}

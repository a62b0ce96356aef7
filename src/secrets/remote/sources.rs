//! The secrets of one remote provider, in order: AWS secret names or Vault
//! paths (`aws_secret_name` / `vault_path` as a list, shared team secrets
//! first, then the project's). Each is fetched and cached as one unit, as a
//! single secret is; a key is answered by the first secret that holds it.

use super::node::{NodeUse, Scope};
use super::secret_cache::{Fetched, SecretCache};
use super::{FetchError, RemoteSettings};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::{KeyChange, SecretMap, Version};
use serde_json::{json, Value};

/// One secret of the list and its cache.
struct Unit {
    name: String,
    cache: SecretCache<SecretMap>,
}

/// The list; see the module documentation.
pub struct Sources {
    units: Vec<Unit>,
    /// Whether the secrets are shared through the node cache.
    node: NodeUse,
}

impl Sources {
    /// The secrets `names`, in order (at least one), each with its own cache
    /// of `settings`.
    pub fn new(names: &[String], settings: &RemoteSettings) -> Sources {
        Sources {
            units: names
                .iter()
                .map(|name| Unit {
                    name: name.clone(),
                    cache: SecretCache::new(settings.clone()),
                })
                .collect(),
            node: NodeUse::Off,
        }
    }

    /// The same secrets, shared through the node cache when `node` is on,
    /// each under `scope` (the provider's configuration) and its name.
    pub fn shared(mut self, node: NodeUse, scope: &Scope) -> Sources {
        if let NodeUse::On(dir) = &node {
            self.units = self
                .units
                .into_iter()
                .map(|u| Unit {
                    cache: u.cache.shared_through(Some(scope.slot(dir, &u.name))),
                    name: u.name,
                })
                .collect();
        }
        self.node = node;
        self
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.units.iter().map(|u| u.name.as_str())
    }

    /// The names, quoted and joined for messages: `'a'`, `'a', then 'b'`.
    pub fn describe_names(&self) -> String {
        let quoted: Vec<String> = self.names().map(|n| format!("'{n}'")).collect();
        quoted.join(", then ")
    }

    /// `key` in the first secret that holds it, each fetched with
    /// `fetch(name)` when due. A secret that does not exist is skipped; a
    /// failure is reported (a later secret cannot stand in for one whose
    /// keys are unknown: it could hold the key, and it comes first).
    pub fn lookup(
        &self,
        key: &str,
        fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>,
    ) -> Result<Option<SecretString>, Error> {
        for u in &self.units {
            if let Some(v) = u.cache.lookup(key, || fetch(&u.name))? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// [`lookup`](Self::lookup), with the version of the secret that answered.
    pub fn lookup_versioned(
        &self,
        key: &str,
        fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        for u in &self.units {
            if let Some(found) = u.cache.lookup_versioned(key, || fetch(&u.name))? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Without fetching: `key` in the first secret held that has it.
    pub fn peek(&self, key: &str) -> Option<(SecretString, Option<Version>)> {
        self.units.iter().find_map(|u| u.cache.peek(key))
    }

    /// `key` fetched again now ([`SecretCache::force`]): the secret that
    /// holds it, else each in order until one does.
    pub fn refresh_key(
        &self,
        key: &str,
        min_interval: std::time::Duration,
        fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if let Some(u) = self.units.iter().find(|u| u.cache.peek(key).is_some()) {
            return u
                .cache
                .force_versioned(key, min_interval, || fetch(&u.name));
        }
        for u in &self.units {
            if let Some(found) = u
                .cache
                .force_versioned(key, min_interval, || fetch(&u.name))?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The keys of all the secrets, each once, in the order of the secrets.
    pub fn keys(
        &self,
        fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>,
    ) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for u in &self.units {
            let keys = u
                .cache
                .with_map(|| fetch(&u.name), SecretMap::keys)?
                .unwrap_or_default();
            for k in keys {
                if seen.insert(k.clone()) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }

    /// Without fetching: whether the secret that answers `key` holds a value
    /// that is not a secret.
    pub fn holds_non_secret(&self, key: &str) -> bool {
        self.units
            .iter()
            .find_map(|u| u.cache.holds(key))
            .unwrap_or(false)
    }

    /// Whether a background refresh of one of the secrets is asked for and
    /// not yet handed to this process's refresher (see
    /// [`SecretCache::take_refresh_request`]).
    pub fn take_refresh_request(&self, generation: u64) -> bool {
        let mut taken = false;
        for u in &self.units {
            taken |= u.cache.take_refresh_request(generation);
        }
        taken
    }

    /// Runs the background refreshes asked for, each secret fetched with
    /// `fetch(name)` (on the refresher's thread).
    pub fn refresh(&self, fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>) {
        for u in &self.units {
            if u.cache.refresh_asked() {
                u.cache
                    .refresh_now(|| fetch(&u.name).map_err(|e| u.cache.scrubbed(e)));
            }
        }
    }

    /// The keys whose values changed, in every secret, except keys an
    /// earlier secret of the list holds (its value is the one served).
    pub fn take_changes(&self) -> Vec<KeyChange> {
        let mut out = Vec::new();
        for (i, u) in self.units.iter().enumerate() {
            let changes = u.cache.take_changes();
            let earlier = &self.units[..i];
            out.extend(
                changes
                    .into_iter()
                    .filter(|c| earlier.iter().all(|e| e.cache.peek(&c.key).is_none())),
            );
        }
        out
    }

    /// For the watch: the refreshes that are due (see
    /// [`SecretCache::ask_if_due`]) run now, each secret fetched with
    /// `fetch(name)`.
    pub fn watch(&self, fetch: impl Fn(&str) -> Result<Fetched<SecretMap>, FetchError>) {
        for u in &self.units {
            u.cache.ask_if_due();
        }
        self.refresh(fetch);
    }

    /// Whether values are refreshed ahead (the settings are the same for
    /// every secret).
    pub fn refreshes_ahead(&self) -> bool {
        self.units.iter().any(|u| u.cache.refreshes_ahead())
    }

    /// Requests sent so far for all the secrets.
    pub fn requests(&self) -> u64 {
        self.units.iter().map(|u| u.cache.requests()).sum()
    }

    /// The first secret's last failure, while it answers for the service.
    pub fn failure(&self) -> Option<Error> {
        self.units.iter().find_map(|u| u.cache.failure())
    }

    /// The end of the provider's status detail and its warnings: for one
    /// secret as [`SecretCache::describe`]; for several, each secret's, named.
    pub fn describe(&self) -> (String, Vec<String>) {
        let (mut detail, mut warnings) = match &self.units[..] {
            [only] => only.cache.describe(),
            several => {
                let mut detail = String::new();
                let mut warnings = Vec::new();
                for u in several {
                    let (d, w) = u.cache.describe();
                    detail.push_str(&format!("; '{}'{}", u.name, d.replacen(';', ":", 1)));
                    warnings.extend(w.into_iter().map(|w| format!("'{}': {w}", u.name)));
                }
                (detail, warnings)
            }
        };
        match &self.node {
            NodeUse::Off => {}
            NodeUse::On(dir) => detail.push_str(&format!(
                "; shared through the node cache {}",
                dir.path().display()
            )),
            NodeUse::Refused(why) => warnings.push(format!(
                "the node cache is not used (values are cached per process): {why}"
            )),
        }
        (detail, warnings)
    }

    /// Forgets every cached secret.
    pub fn invalidate(&self) {
        for u in &self.units {
            u.cache.invalidate();
        }
    }
}

/// The doctor's report of reading each secret, `absent` saying what a
/// missing one means: for one secret, `{"readable": ...}`; for several, that
/// report keyed by each name.
pub fn readability(
    reads: &[(&str, Result<Fetched<SecretMap>, FetchError>)],
    absent: &str,
) -> Value {
    let report = |read: &Result<Fetched<SecretMap>, FetchError>| match read {
        Ok(Fetched::Found(map)) => json!({ "readable": true, "keys": map.len() }),
        Ok(Fetched::Absent) => json!({ "readable": false, "reason": absent }),
        Err(f) => json!({ "readable": false, "error": f.error.to_json() }),
    };
    match reads {
        [(_, only)] => report(only),
        several => Value::Object(
            several
                .iter()
                .map(|(name, read)| ((*name).to_owned(), report(read)))
                .collect(),
        ),
    }
}

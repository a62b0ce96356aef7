//! What a provider reads a document into ([`SecretMap`]): its values by
//! key, the secret's version and, for a dynamic secret, its lease; the
//! changes a provider noticed ([`KeyChange`]).

use super::keys::{normalize_key, preferred_key};
use crate::secret::SecretString;
use hashbrown::HashMap;
use zeroize::Zeroize;

/// Which version of a remote secret a value comes from: AWS's `VersionId`
/// and `VersionStages` (`AWSCURRENT`, `AWSPENDING`, ...), or the Vault KV v2
/// version number (no stages). Never a value: a run may record it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    /// The version's identifier.
    pub id: String,
    /// Its stages (AWS), in the order the service gave them.
    pub stages: Vec<String>,
    /// The version this one stands in for: the version in force was
    /// reported failed (`report_failure`) and this one, beside it (AWS
    /// `AWSPENDING` or `AWSPREVIOUS`, the KV v2 version before), is served
    /// until the service's current version is another.
    pub instead_of: Option<String>,
    /// The value is a field of a leased credential (a Vault dynamic secret,
    /// a certificate): issued for this process and revoked when it ends,
    /// so it must not be frozen where it outlives the process (an exported
    /// variable, a shell's output).
    pub leased: bool,
    /// When the value ends (a lease's end, an exchanged credential's), for
    /// a file that must say it (W&B's credentials file); set with the
    /// lease.
    pub ends: Option<std::time::SystemTime>,
}

/// A key whose value changed in a provider ([`SecretsManager::on_change`]
/// events): its name as the source spells it and the version of the secret
/// now held; never the value.
///
/// [`SecretsManager::on_change`]: crate::secrets::SecretsManager::on_change
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// The key, as the source spells it (compare with [`normalize_key`]).
    pub key: String,
    /// The version of the secret now held (remote providers; `None` for
    /// the file and a KV v1 secret).
    pub version: Option<Version>,
    /// The key is gone (or its value is no longer a secret).
    pub removed: bool,
}

/// A flat map of secrets read from a document (the secrets file, an AWS
/// secret's JSON, a Vault secret's fields): scalar values are kept as text,
/// anything else is skipped (by key, for diagnosis) and its strings zeroed.
///
/// Secrets by key, with the keys whose values were skipped.
#[derive(Default)]
pub struct SecretMap {
    values: HashMap<String, SecretString>,
    /// Each normalized name that is not itself a key, with the key
    /// [`preferred_key`] picks for it (a key spelled as its name wins
    /// whatever else there is, so it needs no entry: most keys are).
    by_name: HashMap<String, String>,
    /// Keys whose values are not scalars (or are null): not secrets, skipped.
    skipped: Vec<String>,
    /// The remote secret's version, when the service says it.
    version: Option<Version>,
    /// The lease of a dynamic secret (Vault's database credentials, a PKI
    /// certificate), when it has one (boxed: most secrets have none).
    lease: Option<Box<Lease>>,
}

/// The lease of a dynamic secret: until when its values work, and how to
/// renew or revoke it. `Debug` never shows its identifier.
#[derive(Clone)]
pub struct Lease {
    /// The service's lease identifier (empty: the secret has no lease to
    /// renew or revoke, only an end, as a PKI certificate issued without
    /// one).
    pub id: SecretString,
    /// What was granted and when: its end, and when it is renewed
    /// ([`Lifetime`](crate::secrets::lifetime::Lifetime) decides).
    pub lifetime: crate::secrets::lifetime::Lifetime,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("ttl", &self.lifetime.ttl())
            .field("renewable", &self.lifetime.renewable())
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// How long it has left now before it is taken to end (zero once it
    /// has).
    pub fn left(&self) -> std::time::Duration {
        self.lifetime.left()
    }
}

impl SecretMap {
    /// The keys and scalar values of a JSON object (strings as they are,
    /// numbers and booleans as their JSON text).
    pub fn from_json_object(map: serde_json::Map<String, serde_json::Value>) -> SecretMap {
        let mut out = SecretMap::with_capacity(map.len());
        for (key, value) in map {
            out.insert_json(key, value);
        }
        out.skipped.sort();
        out
    }

    /// Adds a JSON value: a scalar as its text, anything else skipped (its
    /// strings zeroed).
    fn insert_json(&mut self, key: String, value: serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.insert(key, s),
            serde_json::Value::Number(n) => self.insert(key, n.to_string()),
            serde_json::Value::Bool(b) => self.insert(key, b.to_string()),
            mut other => {
                zeroize_json(&mut other);
                self.skip(key);
            }
        }
    }

    /// The keys and scalar values of a JSON text that must be an object,
    /// read straight into the map (no intermediate document: half the memory
    /// and time of [`from_json_object`](Self::from_json_object) for a large
    /// file). `Ok(None)` when the object repeats a key: the caller reads it
    /// the general way, which keeps the last value as Python does.
    pub fn from_json_text(text: &str) -> Result<Option<SecretMap>, serde_json::Error> {
        use serde::de::{Deserializer, MapAccess, Visitor};
        struct Flat;
        impl<'de> Visitor<'de> for Flat {
            type Value = Option<SecretMap>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut out = SecretMap::with_capacity(access.size_hint().unwrap_or(0));
                // The skipped keys, to tell a repeat in constant time (a
                // file of many non-scalar values must not cost quadratic).
                let mut skipped: HashMap<String, ()> = HashMap::new();
                let mut repeated = false;
                while let Some(key) = access.next_key::<String>()? {
                    // Read on to the end either way: the text must be valid.
                    let mut value: serde_json::Value = access.next_value()?;
                    repeated |= out.values.contains_key(&key) || skipped.contains_key(&key);
                    if repeated {
                        zeroize_json(&mut value);
                        continue;
                    }
                    let scalar = matches!(
                        value,
                        serde_json::Value::String(_)
                            | serde_json::Value::Number(_)
                            | serde_json::Value::Bool(_)
                    );
                    if !scalar {
                        skipped.insert(key.clone(), ());
                    }
                    out.insert_json(key, value);
                }
                out.skipped.sort();
                Ok((!repeated).then_some(out))
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let map = de.deserialize_map(Flat)?;
        de.end()?;
        Ok(map)
    }

    /// An empty map with room for `n` keys.
    pub fn with_capacity(n: usize) -> SecretMap {
        SecretMap {
            values: HashMap::with_capacity(n),
            by_name: HashMap::new(),
            skipped: Vec::new(),
            version: None,
            lease: None,
        }
    }

    /// Adds a value.
    pub fn insert(&mut self, key: String, value: String) {
        let name = normalize_key(&key);
        if name != key {
            let pick = match self.by_name.get(&name) {
                Some(held) => {
                    preferred_key(&name, [held.as_str(), key.as_str()]) == Some(key.as_str())
                }
                None => true,
            };
            if pick {
                self.by_name.insert(name, key.clone());
            }
        }
        self.values.insert(key, SecretString::from(value));
    }

    /// Records a key whose value is not a secret.
    pub fn skip(&mut self, key: String) {
        self.skipped.push(key);
    }

    /// The key as given, else the key [`preferred_key`] picks among those
    /// with its normalized name (`hf-token` finds `HF_TOKEN`, else
    /// `hf_token`), with the stored key.
    pub fn resolve<'a>(&'a self, key: &str) -> Option<(&'a str, &'a SecretString)> {
        if let Some((k, v)) = self.values.get_key_value(key) {
            return Some((k, v));
        }
        let name = normalize_key(key);
        if let Some((k, v)) = self.values.get_key_value(&name) {
            return Some((k, v)); // spelled as the name: it wins
        }
        let stored = self.by_name.get(&name)?;
        self.values
            .get_key_value(stored)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Whether a key of `earlier` (a secret or a skipped one) is missing here.
    pub fn lost_keys_of(&self, earlier: &SecretMap) -> bool {
        earlier.values.keys().any(|k| !self.values.contains_key(k))
            || earlier.skipped.iter().any(|k| !self.skipped.contains(k))
    }

    /// The keys of the secrets, as stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.values.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Whether `key` (as given, else normalized) was skipped: its value is
    /// not a scalar.
    pub fn holds_non_secret(&self, key: &str) -> bool {
        let normalized = normalize_key(key);
        self.skipped.iter().any(|k| k == key || *k == normalized)
    }

    /// The same map, of version `version`.
    pub fn with_version(mut self, version: Option<Version>) -> SecretMap {
        self.version = version;
        self
    }

    /// The remote secret's version, when the service said it.
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// The same map, holding the values of `lease`.
    pub fn with_lease(mut self, lease: Option<Lease>) -> SecretMap {
        if let Some(v) = &mut self.version {
            v.leased = lease.is_some();
            v.ends = lease
                .as_ref()
                .filter(|l| !l.lifetime.endless())
                .map(|l| std::time::SystemTime::now() + l.left());
        }
        self.lease = lease.map(Box::new);
        self
    }

    /// The same map, holding a credential that ends with `lease` but is not
    /// this process's own (a node's, shared; nothing revokes it when the
    /// process exits): not [`Version::leased`], so it may be printed.
    pub fn with_shared_lease(self, lease: Option<Lease>) -> SecretMap {
        let mut map = self.with_lease(lease);
        if let Some(v) = &mut map.version {
            v.leased = false;
        }
        map
    }

    /// The lease of a dynamic secret, when it has one.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_deref()
    }

    /// A copy of the keys and values, the version and the lease (a lease
    /// renewed keeps its values).
    pub fn copy(&self) -> SecretMap {
        SecretMap {
            values: self.values.clone(),
            by_name: self.by_name.clone(),
            skipped: self.skipped.clone(),
            version: self.version.clone(),
            lease: self.lease.clone(),
        }
    }

    /// `key` (as [`resolve`](Self::resolve) finds it) with the secret's
    /// version.
    pub fn versioned(&self, key: &str) -> Option<(SecretString, Option<Version>)> {
        self.resolve(key)
            .map(|(_, v)| (v.clone(), self.version.clone()))
    }

    /// The keys whose values differ from `earlier`'s (added, changed or
    /// removed), sorted, each with this map's version.
    pub fn changes_since(&self, earlier: &SecretMap) -> Vec<KeyChange> {
        let change = |key: &String, removed| KeyChange {
            key: key.clone(),
            version: self.version.clone(),
            removed,
        };
        let mut out: Vec<KeyChange> = self
            .values
            .iter()
            .filter(|(k, v)| {
                earlier
                    .values
                    .get(*k)
                    .is_none_or(|old| old.expose() != v.expose())
            })
            .map(|(k, _)| change(k, false))
            .collect();
        out.extend(
            earlier
                .values
                .keys()
                .filter(|k| !self.values.contains_key(*k))
                .map(|k| change(k, true)),
        );
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The keys and values, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys whose values are not secrets (see [`skip`](Self::skip)).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &SecretString> {
        self.values.values()
    }

    /// How many secrets the map holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `"N keys"`, and the skipped keys when there are any (never a value).
    pub fn describe(&self) -> String {
        let n = self.values.len();
        let mut d = format!("{n} key{}", if n == 1 { "" } else { "s" });
        if !self.skipped.is_empty() {
            let mut skipped = self.skipped.clone();
            skipped.sort();
            d.push_str(&format!(
                "; skipped non-scalar or null values (not secrets): {}",
                skipped.join(", ")
            ));
        }
        d
    }
}

/// Zeroes every string inside a JSON value.
pub fn zeroize_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

//! What every provider shares, and what the manager needs from each: the
//! [`Provider`] trait and its [`ProviderStatus`], the [`SecretMap`] a
//! provider reads a document into, and SimpleTuner's key normalization.
//!
//! A leaf: the env, file and remote providers and the manager import it; it
//! imports none of them.
//!
//! Caching is each provider's own business: the environment is read live, the
//! file provider serves a parsed snapshot until the file changes, and the
//! remote providers cache their whole secret (`remote::secret_cache::SecretCache`). The manager
//! caches nothing.

use crate::error::Error;
use crate::secret::SecretString;
use crate::sys::Mutex;
use hashbrown::HashMap;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroize;

/// A provider's state, as shown by `providers_json` and the doctor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The provider's name in the chain (`env`, `file`, ...).
    pub name: &'static str,
    /// Whether the provider can answer at all (configured, file present, ...).
    pub available: bool,
    /// What it reads and anything worth knowing (never a value).
    pub detail: String,
    /// Problems a user should fix (e.g. a secrets file readable by others).
    pub warnings: Vec<String>,
    /// A failure the provider is living with (a remote provider serving its
    /// last good value while the service fails), shown as `last_error` when
    /// the manager saw none.
    pub failure: Option<Error>,
}

/// How a provider is asked for a key ([`Provider::read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// As a get: what its cache holds while fresh, else its source.
    Cached,
    /// Only what it holds, however old, without asking a remote service
    /// (the environment and the file look as a lookup does).
    Held,
    /// Its source now, whatever a cache says ("this value failed me"):
    /// remote providers fetch at most once per `min_interval`,
    /// single-flight with their gets; the file is re-read.
    Fresh {
        /// At most one request per secret in this interval.
        min_interval: Duration,
        /// The version the caller reports failed it (`report_failure`):
        /// a remote provider that still holds it, or finds it still in
        /// force, turns to the version beside it (AWS `AWSPENDING`, then
        /// `AWSPREVIOUS`; the KV v2 version before). `None`: a plain
        /// refresh.
        failed: Option<&'a str>,
    },
}

/// A source of secrets in the chain.
pub trait Provider: Send + Sync {
    /// The provider's name in the chain and in messages.
    fn name(&self) -> &'static str;

    /// The value of `key`: `Ok(None)` when the provider does not have it, an
    /// error when it could not answer (the chain goes on to the next provider).
    /// Called on every get of the manager: a provider that reads something
    /// slow caches it itself.
    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error>;

    /// `key` read as `how` says, with the version of the secret the value
    /// comes from (remote providers; `None` for the others). By default a
    /// [`lookup`](Self::lookup), after an [`invalidate`](Self::invalidate)
    /// for [`Read::Fresh`].
    fn read(
        &self,
        key: &str,
        how: Read<'_>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if matches!(how, Read::Fresh { .. }) {
            self.invalidate();
        }
        Ok(self.lookup(key)?.map(|v| (v, None)))
    }

    /// The provider's current state.
    fn status(&self) -> ProviderStatus;

    /// Forgets anything cached, so the next lookup reads the source again.
    fn invalidate(&self) {}

    /// Live checks for the doctor (remote providers: credentials, identity,
    /// whether the secret is readable), as a JSON object without values;
    /// `None` when the provider has nothing to check beyond its status.
    fn diagnose(&self) -> Option<serde_json::Value> {
        None
    }

    /// The keys the provider holds secrets under, as stored (the tool's `run`
    /// and `env` inject them all). Providers that cannot list their keys (the
    /// environment, which a child inherits anyway) list none.
    fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    /// Whether the provider holds `key` with a value that is not a secret (an
    /// object, a list or null), which a lookup answers as absent: lets a "not
    /// found" say why. Only what the provider already has is looked at.
    fn holds_non_secret(&self, _key: &str) -> bool {
        false
    }

    /// Why the provider is not used though part of it is set (a Vault
    /// address with no way to log in), for a "not found" to name; `None`
    /// when it is used, or nothing of it is set.
    fn set_up_in_part(&self) -> Option<String> {
        None
    }

    /// Whether a value of the form `st://KEY` this provider holds is a
    /// [reference](crate::secrets::reference) the manager resolves through the providers
    /// after it (the environment and the file: where a launcher puts
    /// what a job carries), rather than a value. `false` by default: a
    /// remote secret's value is always a value.
    fn resolves_references(&self) -> bool {
        false
    }

    /// Called once by the manager the provider joins: where to tell the
    /// keys whose values change when the provider reads its source again,
    /// and what to check while anyone listens. A provider that never
    /// notices changes ignores it (the default).
    fn connect(&self, _sink: Arc<dyn ChangeSink>) {}
}

/// What a provider tells its manager ([`Provider::connect`]).
pub trait ChangeSink: Send + Sync {
    /// `changes` noticed in the provider's source: told to the manager's
    /// listeners on this thread (they may call the manager), unless a
    /// provider earlier in the chain holds the key. Call it with no lock
    /// held.
    fn changed(&self, changes: Vec<KeyChange>);

    /// Registers `check`, run on the refresher's thread every
    /// [`WATCH_INTERVAL`](crate::secrets::WATCH_INTERVAL) while anyone
    /// listens (it reads what is due again, and tells what changed), until
    /// it returns `false` (what it checks is gone).
    fn watch(&self, check: Check);
}

/// A check [`ChangeSink::watch`] runs: `false` once what it checks is gone.
pub type Check = Box<dyn Fn() -> bool + Send + Sync>;

/// A provider's hold on the sink it was connected to (none before).
pub(crate) struct SinkSlot(Mutex<Option<Arc<dyn ChangeSink>>>);

impl Default for SinkSlot {
    fn default() -> Self {
        SinkSlot(Mutex::with_fresh(None, || None))
    }
}

impl SinkSlot {
    /// Holds `sink`, in place of any before.
    pub(crate) fn connect(&self, sink: Arc<dyn ChangeSink>) {
        *self.0.lock() = Some(sink);
    }

    /// Tells the sink `changes` (nothing when there are none or no sink).
    pub(crate) fn tell(&self, changes: Vec<KeyChange>) {
        if changes.is_empty() {
            return;
        }
        let sink = self.0.lock().clone();
        if let Some(sink) = sink {
            sink.changed(changes);
        }
    }
}

/// Refuses a string argument holding a NUL byte: no provider can hold it (an
/// environment variable, a C caller and most tools end a string there), so
/// a key or value with one would be read back cut short, or not at all.
pub(crate) fn check_text(argument: &str, text: &str) -> Result<(), Error> {
    if text.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "argument '{argument}' holds a NUL byte, which a C string cannot carry; refused"
        )));
    }
    Ok(())
}

/// What starts a reference: `st://KEY` names the secret KEY instead of
/// holding a value (an environment variable or a secrets-file value the
/// manager resolves, an env file's value, a template's `{{ st://KEY }}`).
pub const REFERENCE_SCHEME: &str = "st://";

/// Whether `c` ends a reference's key (a key has no whitespace and no
/// braces, so `{{ st://KEY }}` closes where it should).
pub fn ends_reference_key(c: char) -> bool {
    c.is_whitespace() || c == '{' || c == '}'
}

/// The key of `value` when the whole of it is a reference `st://KEY`.
pub fn reference(value: &str) -> Option<&str> {
    let key = value.strip_prefix(REFERENCE_SCHEME)?;
    (!key.is_empty() && !key.contains(ends_reference_key)).then_some(key)
}

/// SimpleTuner's key normalization: upper case, `-` and `.` as `_`
/// (`replicate-api-token` is `REPLICATE_API_TOKEN`).
pub fn normalize_key(key: &str) -> String {
    if key.is_ascii() {
        // The common case, in one pass and one allocation (a 500,000-key
        // file normalizes every key once per load).
        let mut out = String::with_capacity(key.len());
        out.extend(key.bytes().map(|b| match b {
            b'-' | b'.' => '_',
            b => char::from(b.to_ascii_uppercase()),
        }));
        return out;
    }
    key.to_uppercase().replace(['-', '.'], "_")
}

/// The one rule for keys of one provider that normalize to the same name
/// (`A-B`, `A_B` and `a.b` are all `A_B`), used by every lookup, every
/// command and every binding: the key spelled exactly as the name wins;
/// else the first in byte order. `None` when there is no candidate.
pub fn preferred_key<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<&str> = None;
    for key in candidates {
        if key == name {
            return Some(key);
        }
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_text_read_straight_reads_as_its_document() {
        let describe = |m: &SecretMap| {
            let mut keys = m.keys();
            keys.sort();
            let values: Vec<String> = keys
                .iter()
                .map(|k| m.resolve(k).unwrap().1.expose().to_owned())
                .collect();
            (
                keys,
                values,
                m.describe(),
                m.resolve("hf-token").map(|(k, _)| k.to_owned()),
            )
        };
        for text in [
            r#"{"HF_TOKEN": "a\u00e9\n", "hf_token": "b", "hf-token": "c"}"#,
            r#"{"N": 123456789012345678901234567890, "F": 1.50, "E": 1e3, "B": true}"#,
            r#"{"Z": null, "L": [1, "x"], "O": {"k": "v"}, "S": "s"}"#,
            r#" { } "#,
        ] {
            let straight = SecretMap::from_json_text(text).unwrap().unwrap();
            let serde_json::Value::Object(map) = serde_json::from_str(text).unwrap() else {
                panic!("{text}")
            };
            assert_eq!(
                describe(&straight),
                describe(&SecretMap::from_json_object(map)),
                "{text}"
            );
        }
        // A repeated key is left to the general way (the last value wins).
        assert!(SecretMap::from_json_text(r#"{"A": "1", "A": "2"}"#)
            .unwrap()
            .is_none());
        assert!(SecretMap::from_json_text(r#"{"A": {}, "A": "2"}"#)
            .unwrap()
            .is_none());
        for bad in [
            r#"["A"]"#,
            r#""A""#,
            r#"{"A": "1"} x"#,
            r#"{"A": "1""#,
            "{\"A\": 01}",
        ] {
            assert!(SecretMap::from_json_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scalars_are_kept_and_the_rest_skipped() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"HF_TOKEN": "hf_x", "PORT": 8080, "ON": true, "NESTED": {"a": "b"}, "NONE": null}"#,
        )
        .unwrap();
        let serde_json::Value::Object(map) = v else {
            unreachable!()
        };
        let m = SecretMap::from_json_object(map);
        assert_eq!(m.len(), 3);
        assert_eq!(m.resolve("hf-token").unwrap().1.expose(), "hf_x");
        assert_eq!(m.resolve("PORT").unwrap().1.expose(), "8080");
        assert_eq!(m.resolve("ON").unwrap().1.expose(), "true");
        assert!(m.resolve("NESTED").is_none());
        assert_eq!(
            m.describe(),
            "3 keys; skipped non-scalar or null values (not secrets): NESTED, NONE"
        );
    }

    #[test]
    fn keys_are_normalized_as_simpletuner_does() {
        assert_eq!(normalize_key("replicate-api-token"), "REPLICATE_API_TOKEN");
        assert_eq!(normalize_key("hf.token"), "HF_TOKEN");
        assert_eq!(normalize_key("HF_TOKEN"), "HF_TOKEN");
    }
}

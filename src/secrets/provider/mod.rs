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

mod keys;
mod map;

pub(crate) use keys::check_text;
pub use keys::{ends_reference_key, normalize_key, preferred_key, reference, REFERENCE_SCHEME};
pub use map::{zeroize_json, KeyChange, Lease, SecretMap, Version};

use crate::error::Error;
use crate::secret::SecretString;
use crate::sys::Mutex;
use std::sync::Arc;
use std::time::Duration;

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

#[cfg(test)]
mod tests;

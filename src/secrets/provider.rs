//! The provider interface: what the manager needs from every source of
//! secrets (environment, file, and the remote providers).

use crate::secret::SecretString;
use crate::Error;

/// Who keeps a provider's answers between gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Nobody: the provider is asked on every get (the environment, so that a
    /// variable set at any time wins).
    Live,
    /// The provider itself (the file provider serves a parsed snapshot until
    /// the file changes).
    SelfCached,
    /// The manager: answers are cached for `cache_ttl`, misses for
    /// `negative_ttl` (remote providers).
    Manager,
}

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

/// A source of secrets in the chain.
pub trait Provider: Send + Sync {
    /// The provider's name in the chain and in messages.
    fn name(&self) -> &'static str;

    /// Who caches this provider's answers.
    fn caching(&self) -> Caching;

    /// The value of `key`: `Ok(None)` when the provider does not have it, an
    /// error when it could not answer (the chain goes on to the next provider).
    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error>;

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
}

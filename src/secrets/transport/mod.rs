//! How the library reaches a service, and the words every layer above
//! shares: one HTTP client with short timeouts ([`http`]), HTTP over a Unix
//! socket ([`unix`]), URLs ([`url`]), what a request sent, scrubbed from
//! what the server says back ([`sent`]), retries with capped exponential
//! backoff and jitter and a fetch's bound ([`retry`]), the environment the
//! remote providers read ([`Vars`]), the counters of what was done
//! ([`meter`]); [`RemoteSettings`], [`FetchError`] and [`Fetched`].
//!
//! A fleet's admission of a first request and the pace a node keeps after
//! a server pushed back are decided above (`secrets::node::fleet`) and
//! handed in as a value ([`gate::Gate`], in the settings' `fleet`): this
//! layer imports nothing above it.

pub(crate) mod gate;
pub(crate) mod http;
pub mod meter;
pub mod retry;
pub(crate) mod sent;
pub(crate) mod unix;
pub(crate) mod url;
pub(crate) mod vars;

pub use vars::Vars;

use crate::error::Error;
use std::time::Duration;

/// What a fetch found: the secret, or that it does not exist (cached for the
/// negative TTL; every key is then absent).
pub enum Fetched<T> {
    /// The secret.
    Found(T),
    /// No such secret.
    Absent,
}

/// Default TTL of secrets fetched by the remote providers.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Default TTL of "no such secret" answers of the remote providers.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// Caching, timeouts, retries and staleness of the remote providers (the
/// list: `secrets::remote_provider`), and of the credentials they hold.
/// Every value but the backoff can be set in the manager configuration
/// (docs/configuration.md, "Configuration keys").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSettings {
    /// How long a fetched secret is kept (`cache_ttl`): 300 s.
    pub cache_ttl: Duration,
    /// How long "no such secret" is kept (`negative_ttl`): 30 s.
    pub negative_ttl: Duration,
    /// Bound on establishing a connection (TCP and TLS): 2 s.
    pub connect_timeout: Duration,
    /// Bound on one whole request, connection included: 5 s.
    pub request_timeout: Duration,
    /// Further attempts after a transient failure: 2 (3 attempts in all).
    pub retries: u32,
    /// First backoff before a retry (doubled each time, with jitter): 100 ms.
    pub backoff_base: Duration,
    /// Largest backoff: 2 s.
    pub backoff_cap: Duration,
    /// How long past its TTL the last good value may still be served while
    /// the service fails transiently: 1 h. Zero: never serve stale values.
    pub max_stale: Duration,
    /// After a failed fetch, how long gets answer from what is known (the
    /// stale value or the failure) before the service is asked again: 5 s, so
    /// a launcher asking for several keys pays one timeout, not one each.
    pub failure_ttl: Duration,
    /// The soft deadline, in thousandths of the TTL (`refresh_ahead`, a
    /// fraction): from it a get that finds the value asks for a refresh in
    /// the background and is answered at once; 750. Zero: no refresh ahead
    /// (the get past the TTL fetches, as the first one does).
    pub refresh_ahead_permille: u32,
    /// A caller's "fetch this again now" (`st_secrets_refresh`) sends at most
    /// one request per secret per this interval (`refresh_min_interval`):
    /// 10 s. The others are answered with what is held.
    pub refresh_min_interval: Duration,
    /// Share fetched values with the other processes of this user on the
    /// node (`node_cache`); `None`: as `SIMPLETUNER_NODE_CACHE` says (off).
    pub node_cache: Option<bool>,
    /// The node cache's directory (`node_cache_dir`); `None`:
    /// `SIMPLETUNER_NODE_CACHE_DIR`, else `$XDG_RUNTIME_DIR/st-secrets-node`,
    /// else `/dev/shm/st-secrets-node-<uid>`.
    pub node_cache_dir: Option<std::path::PathBuf>,
    /// A fleet's start (`fleet_capacity`, `fleet_deadline`) and the node's
    /// place in it.
    pub fleet: gate::FleetSettings,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            max_stale: Duration::from_secs(3600),
            failure_ttl: Duration::from_secs(5),
            refresh_ahead_permille: 750,
            refresh_min_interval: Duration::from_secs(10),
            node_cache: None,
            node_cache_dir: None,
            fleet: gate::FleetSettings::default(),
        }
    }
}

impl RemoteSettings {
    /// The longest one fetch takes, retries included: `request_timeout` for
    /// each of its attempts and the longest backoff before each retry. A
    /// cluster's nodes share it: trying another node is not another fetch.
    pub fn fetch_bound(&self) -> Duration {
        self.request_timeout
            .saturating_mul(self.retries.saturating_add(1))
            .saturating_add(self.backoff_cap.saturating_mul(self.retries))
    }

    /// These settings for a node slot holding a credential (a login's
    /// token, an OAuth access token): its entry lasts as long as the
    /// credential's own lifetime says, never cut to `cache_ttl` (which is
    /// about secrets' freshness) nor refreshed ahead; absence is not kept;
    /// a failure is kept for `failure_ttl`; the node's other processes wait
    /// for the one issuing `longer` than one fetch's bound (an issuer that
    /// may wait for its server: the slot's waits are all its settings'
    /// timeout is read for, its requests being the issuer's).
    pub(crate) fn for_credential(&self, longer: Duration) -> RemoteSettings {
        RemoteSettings {
            cache_ttl: crate::secrets::lifetime::LONGEST,
            negative_ttl: Duration::ZERO,
            refresh_ahead_permille: 1000,
            request_timeout: self.request_timeout.saturating_add(longer),
            ..self.clone()
        }
    }

    /// How long a found value is kept: its own time when it says one (a
    /// lease's end, a login token's renewal), at most `cache_ttl`. Without
    /// refresh ahead, a value that says when it is due for renewal
    /// (`refresh_at`, monotonic ns) is kept until then only, so that the get
    /// that fetches it again renews it while it still works.
    pub(crate) fn kept_for(&self, own: Option<Duration>, refresh_at: Option<u64>) -> Duration {
        let due = refresh_at
            .filter(|_| self.refresh_ahead_permille == 0)
            .map(|at| Duration::from_nanos(at.saturating_sub(crate::sys::clock::precise())));
        match due.or(own) {
            None => self.cache_ttl,
            Some(t) => t.min(self.cache_ttl),
        }
    }
}

/// A failed remote operation: the error, and whether trying again may help
/// (timeouts, connection failures, 5xx, throttling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    /// What happened.
    pub error: Error,
    /// Whether a retry, or serving a stale value, is appropriate.
    pub transient: bool,
    /// How long the server asked to wait before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The operation already waited as long as it may (a Vault write that
    /// waited out an election): transient for the cache, which may serve a
    /// stale value, but not retried again.
    pub spent: bool,
}

impl FetchError {
    /// A failure worth retrying.
    pub fn transient(error: Error) -> FetchError {
        FetchError {
            error,
            transient: true,
            retry_after: None,
            spent: false,
        }
    }

    /// A failure that retrying will not fix (auth, parse, configuration).
    pub fn permanent(error: Error) -> FetchError {
        FetchError {
            error,
            transient: false,
            retry_after: None,
            spent: false,
        }
    }

    /// The same failure, with the wait the server asked for.
    pub fn retry_after(self, wait: Option<Duration>) -> FetchError {
        FetchError {
            retry_after: wait,
            ..self
        }
    }
}

impl From<Error> for FetchError {
    fn from(error: Error) -> FetchError {
        FetchError::permanent(error)
    }
}

#[cfg(test)]
mod tests;

//! The machinery shared by the remote providers (AWS Secrets Manager and
//! HashiCorp Vault): one HTTP client with short timeouts ([`http`]), retries
//! with capped exponential backoff and jitter ([`with_retries`]), and a cache
//! of the whole fetched secret ([`BlobCache`]) that sends one request per TTL
//! however many threads ask, and serves the last good value, within a bound,
//! while the service fails transiently.

#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod http;
pub(crate) mod vars;

pub use vars::Vars;

use crate::secret::SecretString;
use crate::secrets::provider::SecretMap;
use crate::Error;
use parking_lot::Mutex;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timeouts, retries and staleness of the remote providers. Every value can
/// be set in the manager configuration (see the README's "Remote providers").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSettings {
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
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            max_stale: Duration::from_secs(3600),
            failure_ttl: Duration::from_secs(5),
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
}

impl FetchError {
    /// A failure worth retrying.
    pub fn transient(error: Error) -> FetchError {
        FetchError {
            error,
            transient: true,
            retry_after: None,
        }
    }

    /// A failure that retrying will not fix (auth, parse, configuration).
    pub fn permanent(error: Error) -> FetchError {
        FetchError {
            error,
            transient: false,
            retry_after: None,
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

/// Runs `attempt` until it succeeds, fails permanently, or `settings.retries`
/// retries are spent, sleeping a jittered, capped exponential backoff between
/// attempts (half the backoff fixed, half random). When the server asked for
/// a wait (`Retry-After`), that wait (plus a second: the header counts whole
/// seconds, rounded down) is kept instead, as long as the retry still starts
/// within the request timeout of the first attempt; a longer wait ends the
/// retries, and the error says how long the server asked for.
pub fn with_retries<T>(
    settings: &RemoteSettings,
    mut attempt: impl FnMut() -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let started = Instant::now();
    let mut retry = 0;
    loop {
        match attempt() {
            Err(f) if f.transient && retry < settings.retries => {
                // Retry-After counts whole seconds, and servers round down
                // (OpenBao's rate limiter says 0 while it still refuses):
                // asking again after exactly that long is asking too early.
                let wait = match f.retry_after {
                    None => backoff(settings, retry),
                    Some(asked) => {
                        let wait = asked + RETRY_AFTER_MARGIN;
                        if started.elapsed() + wait > settings.request_timeout {
                            let note = format!(
                                "the server asked to retry after {}, past the request \
                                 timeout of {:?}; not retried",
                                seconds(asked),
                                settings.request_timeout
                            );
                            return Err(FetchError {
                                error: f.error.with_note(note),
                                ..f
                            });
                        }
                        wait
                    }
                };
                std::thread::sleep(wait);
                retry += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Added to a `Retry-After` wait: the rest of the second the server left out.
const RETRY_AFTER_MARGIN: Duration = Duration::from_secs(1);

/// `asked` for a message: `"2 s"`, `"1.5 s"`.
fn seconds(asked: Duration) -> String {
    format!("{} s", (asked.as_secs_f64() * 10.0).round() / 10.0)
}

/// The wait before retry number `retry` (0-based).
pub fn backoff(settings: &RemoteSettings, retry: u32) -> Duration {
    let full = settings
        .backoff_base
        .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .min(settings.backoff_cap);
    full / 2 + full.mul_f64(random_unit() / 2.0)
}

/// `ttl` shortened by up to 10% at random, so that processes started together
/// do not refresh together.
pub fn jittered(ttl: Duration) -> Duration {
    ttl.mul_f64(1.0 - random_unit() / 10.0)
}

/// A server message, kept to one line of at most 200 characters, with long
/// base64-like runs (which could be key material) replaced.
pub fn shorten(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<String> = one_line
        .split(' ')
        .map(|w| {
            let secretish = w.len() >= 32
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'));
            if secretish {
                "[redacted]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() > 200 {
        let mut s: String = joined.chars().take(200).collect();
        s.push_str("...");
        s
    } else {
        joined
    }
}

/// A number in [0, 1): the standard library's randomly keyed hasher over a
/// counter (jitter needs spread, not cryptographic strength).
fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What a fetch found: the secret, or that it does not exist (cached for the
/// negative TTL; every key is then absent).
pub enum Fetched<T> {
    /// The secret.
    Found(T),
    /// No such secret.
    Absent,
}

/// The last successful fetch of a [`BlobCache`].
struct LastGood<T> {
    /// What the fetch found (shared with callers, so a get copies no secret).
    value: Arc<Fetched<T>>,
    /// When it was fetched (for the doctor's "fetched N s ago").
    fetched: Instant,
    /// Until when it is served without asking the service again (its TTL,
    /// jittered); after that it is only served stale, on a transient failure.
    fresh_until: Instant,
}

/// Everything a [`BlobCache`] knows about its secret, under one lock.
struct BlobState<T> {
    /// The last successful fetch, if any.
    good: Option<LastGood<T>>,
    /// The last failure and until when it answers for the service.
    failure: Option<(FetchError, Instant)>,
}

/// A [`BlobCache`] answer: the fetched secret and how fresh it is.
pub type Answer<T> = Result<(Arc<Fetched<T>>, Freshness), Error>;

/// How a [`BlobCache`] answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Within its TTL.
    Fresh,
    /// Past its TTL, served because the service fails transiently.
    Stale,
}

/// The whole fetched secret of a remote provider, cached for a TTL, fetched
/// by one thread at a time (the others wait and share its answer), with
/// stale-on-error. Cheap on the hot path: one uncontended lock and an `Arc`
/// clone.
pub struct BlobCache<T> {
    state: Mutex<BlobState<T>>,
    flight: Mutex<()>,
    requests: AtomicU64,
    settings: RemoteSettings,
    ttl: Duration,
    negative_ttl: Duration,
}

impl<T> BlobCache<T> {
    /// A cache keeping found secrets for `ttl` and "absent" for
    /// `negative_ttl` (each shortened by up to 10% at random).
    pub fn new(settings: RemoteSettings, ttl: Duration, negative_ttl: Duration) -> Self {
        BlobCache {
            state: Mutex::new(BlobState {
                good: None,
                failure: None,
            }),
            flight: Mutex::new(()),
            requests: AtomicU64::new(0),
            settings,
            ttl,
            negative_ttl,
        }
    }

    /// The cached secret, fetching it with `fetch` when it is due. While a
    /// fetch is in flight other callers wait for it and share its answer.
    ///
    /// # Errors
    /// The fetch's error, unless it was transient and a value fetched less
    /// than `max_stale` past its TTL exists (that value is served instead).
    /// A failure answers for the service for `failure_ttl`.
    pub fn get(&self, fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>) -> Answer<T> {
        if let Some(answer) = self.known(Instant::now()) {
            return answer;
        }
        let _flight = self.flight.lock();
        if let Some(answer) = self.known(Instant::now()) {
            return answer;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = fetch();
        let now = Instant::now();
        let mut state = self.state.lock();
        match outcome {
            Ok(value) => {
                let ttl = match value {
                    Fetched::Found(_) => self.ttl,
                    Fetched::Absent => self.negative_ttl,
                };
                let value = Arc::new(value);
                state.good = Some(LastGood {
                    value: Arc::clone(&value),
                    fetched: now,
                    fresh_until: now + jittered(ttl),
                });
                state.failure = None;
                Ok((value, Freshness::Fresh))
            }
            Err(failure) => {
                state.failure = Some((failure, now + self.settings.failure_ttl));
                Self::answer_failing(&state, &self.settings, now)
            }
        }
    }

    /// The answer without a fetch, when one is not due.
    fn known(&self, now: Instant) -> Option<Answer<T>> {
        let state = self.state.lock();
        match (&state.good, &state.failure) {
            (Some(good), _) if now < good.fresh_until => {
                Some(Ok((Arc::clone(&good.value), Freshness::Fresh)))
            }
            (_, Some((_, until))) if now < *until => {
                Some(Self::answer_failing(&state, &self.settings, now))
            }
            _ => None,
        }
    }

    fn answer_failing(state: &BlobState<T>, settings: &RemoteSettings, now: Instant) -> Answer<T> {
        let (failure, _) = state.failure.as_ref().expect("called with a failure");
        match &state.good {
            Some(good)
                if failure.transient
                    && now.saturating_duration_since(good.fresh_until) <= settings.max_stale =>
            {
                Ok((Arc::clone(&good.value), Freshness::Stale))
            }
            _ => Err(failure.error.clone()),
        }
    }

    /// Forgets the value and any failure: the next get fetches.
    pub fn invalidate(&self) {
        let mut state = self.state.lock();
        state.good = None;
        state.failure = None;
    }

    /// Fetches started so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The last failure, while it answers for the service.
    pub fn failure(&self) -> Option<Error> {
        let state = self.state.lock();
        state.failure.as_ref().map(|(f, _)| f.error.clone())
    }

    /// Age of the cached value, if any.
    pub fn age(&self) -> Option<Duration> {
        self.state.lock().good.as_ref().map(|g| g.fetched.elapsed())
    }
}

impl BlobCache<SecretMap> {
    /// `key` in the cached secret (fetched with `fetch` when due): the
    /// remote providers' whole lookup.
    pub fn lookup(
        &self,
        key: &str,
        fetch: impl FnOnce() -> Result<Fetched<SecretMap>, FetchError>,
    ) -> Result<Option<SecretString>, Error> {
        Ok(self
            .with_map(fetch, |map| map.resolve(key).map(|(_, v)| v.clone()))?
            .flatten())
    }

    /// `f` of the cached secret (fetched with `fetch` when due); `None` when
    /// the service has no such secret.
    pub fn with_map<R>(
        &self,
        fetch: impl FnOnce() -> Result<Fetched<SecretMap>, FetchError>,
        f: impl FnOnce(&SecretMap) -> R,
    ) -> Result<Option<R>, Error> {
        let (blob, _) = self.get(fetch)?;
        Ok(match &*blob {
            Fetched::Found(map) => Some(f(map)),
            Fetched::Absent => None,
        })
    }

    /// Whether the cached secret, without fetching, holds `key` with a value
    /// that is not a secret.
    pub fn holds_non_secret(&self, key: &str) -> bool {
        let st = self.state.lock();
        st.good.as_ref().is_some_and(|g| match &*g.value {
            Fetched::Found(map) => map.holds_non_secret(key),
            Fetched::Absent => false,
        })
    }

    /// The end of a remote provider's status detail (`"; N requests; value
    /// fetched S s ago"`) and its warnings (the last failure, if any).
    pub fn describe(&self) -> (String, Vec<String>) {
        let n = self.requests();
        let mut detail = format!("; {n} request{}", if n == 1 { "" } else { "s" });
        if let Some(age) = self.age() {
            detail.push_str(&format!("; value fetched {} s ago", age.as_secs()));
        }
        let warnings = self
            .failure()
            .map(|e| vec![format!("the last fetch failed ({}): {e}", e.code_name())])
            .unwrap_or_default();
        (detail, warnings)
    }
}

#[cfg(test)]
mod tests;

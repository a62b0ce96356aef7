//! [`SecretCache`]: what a remote provider fetched, kept for its TTL.

use super::node::entry::Shareable;
use super::node::{Mode, Shared, Slot};
pub use super::Fetched;
use super::{jittered, FetchError, RemoteSettings};
use crate::error::Error;
use crate::secrets::provider::{KeyChange, PendingChanges, SecretMap};
use crate::sys::{Flight, Mutex};

mod map;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl<T: Versioned> Fetched<T> {
    /// Whether both are the same version of the secret, as the service said
    /// (`false` when it said none).
    fn same_version(&self, other: &Fetched<T>) -> bool {
        match (self, other) {
            (Fetched::Found(a), Fetched::Found(b)) => {
                a.version_id().is_some() && a.version_id() == b.version_id()
            }
            _ => false,
        }
    }
}

/// What a cache holds, with the version the service gave it, if any.
pub trait Versioned {
    /// The version's identifier.
    fn version_id(&self) -> Option<&str>;

    /// The keys that differ between `earlier` and `now` (`None`: the
    /// secret did not exist), for change events.
    fn changes(_now: Option<&Self>, _earlier: Option<&Self>) -> Vec<KeyChange> {
        Vec::new()
    }
}

impl Versioned for SecretMap {
    fn version_id(&self) -> Option<&str> {
        self.version().map(|v| v.id.as_str())
    }

    fn changes(now: Option<&Self>, earlier: Option<&Self>) -> Vec<KeyChange> {
        let none = SecretMap::default();
        match (now, earlier) {
            (None, None) => Vec::new(),
            (now, earlier) => now.unwrap_or(&none).changes_since(earlier.unwrap_or(&none)),
        }
    }
}

impl Versioned for String {
    fn version_id(&self) -> Option<&str> {
        None
    }
}

impl Shareable for String {
    fn encode(&self) -> Option<crate::secret::SecretBytes> {
        Some(crate::secret::SecretBytes::from(self.as_bytes()))
    }
    fn decode(body: &[u8]) -> Option<String> {
        String::from_utf8(body.to_vec()).ok()
    }
}

impl<T> Fetched<T> {
    fn found(&self) -> Option<&T> {
        match self {
            Fetched::Found(t) => Some(t),
            Fetched::Absent => None,
        }
    }
}

/// The last successful fetch of a [`SecretCache`].
struct LastGood<T> {
    /// What the fetch found (shared with callers, so a get copies no secret).
    value: Arc<Fetched<T>>,
    /// When it was fetched (for the doctor's "fetched N s ago").
    fetched: Instant,
    /// Until when it is served without asking the service again (its TTL,
    /// jittered); after that it is only served stale, on a transient failure.
    fresh_until: Instant,
    /// From when a get asks for a refresh in the background (the soft
    /// deadline: `refresh_ahead` of the TTL), while the value is served.
    refresh_after: Instant,
}

/// Everything a [`SecretCache`] knows about its secret, under one lock.
struct CacheState<T> {
    /// The last successful fetch, if any.
    good: Option<LastGood<T>>,
    /// The last failure and until when it answers for the service.
    failure: Option<(FetchError, Instant)>,
    /// The fetch in flight, if any: callers arriving meanwhile wait for it
    /// and share its answer, failure included (`None`: the fetching caller
    /// panicked; its waiters try again).
    flight: Option<Arc<Flight<Option<Answer<T>>>>>,
    /// A background refresh is running.
    refreshing: bool,
    /// Background refreshes failed in a row (the backoff's exponent).
    refresh_failures: u32,
    /// No background refresh is asked for before this (after a failed one).
    refresh_not_before: Option<Instant>,
    /// When a caller last forced a fetch ([`SecretCache::force`]).
    forced_at: Option<Instant>,
    /// The last fetch's answer, kept through an invalidation: what the next
    /// one is compared with, for change events.
    seen: Option<Arc<Fetched<T>>>,
}

impl<T> CacheState<T> {
    fn new() -> Self {
        CacheState {
            good: None,
            failure: None,
            flight: None,
            refreshing: false,
            refresh_failures: 0,
            refresh_not_before: None,
            forced_at: None,
            seen: None,
        }
    }

    /// In a forked child: the parent's fetch in flight and its background
    /// refresh are not coming here.
    fn after_fork(&mut self) {
        self.flight = None;
        self.refreshing = false;
    }

    /// Forgets `flight` when it is the one in flight.
    fn end_flight(&mut self, flight: &Arc<Flight<Option<Answer<T>>>>) {
        if self.flight.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
            self.flight = None;
        }
    }
}

/// Ends a flight whose fetch panicked, so its waiters do not hang.
struct Leading<'a, T> {
    cache: &'a SecretCache<T>,
    flight: &'a Arc<Flight<Option<Answer<T>>>>,
    armed: bool,
}

impl<T> Drop for Leading<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            self.cache.state.lock().end_flight(self.flight);
            self.flight.complete(None);
        }
    }
}

/// A [`SecretCache`] answer: the fetched secret, shared.
pub type Answer<T> = Result<Arc<Fetched<T>>, Error>;

/// A remote provider's whole fetched secret (every key of the AWS secret or
/// the Vault path), cached for a TTL, fetched by one thread at a time (the
/// others wait and share its answer, a failure too: no caller waits longer
/// than the one fetch it joined), with stale-on-error: past its TTL the
/// last good value is served, within `max_stale`, while the service fails
/// transiently. Cheap on the hot path: one uncontended lock and an `Arc`
/// clone.
pub struct SecretCache<T> {
    state: Mutex<CacheState<T>>,
    requests: AtomicU64,
    settings: RemoteSettings,
    /// A background refresh is asked for: [`IDLE`], [`ASKED`] (a get found
    /// the soft deadline passed), or the fork generation it was queued in
    /// plus [`QUEUED`] (handed to the refresher; a child, whose refresher
    /// is not the parent's, asks again). Lock-free: the manager checks it
    /// after each lookup.
    refresh: AtomicU64,
    /// Keys whose values changed, for the manager's change events.
    changes: PendingChanges,
    /// This secret's place in the node cache, when it is shared.
    node: Option<Slot>,
    /// Fetches this process made itself after waiting out another
    /// process's (a holder hung past one fetch's bound).
    gave_up: AtomicU64,
}

/// [`SecretCache::refresh`]: nothing asked.
const IDLE: u64 = 0;
/// [`SecretCache::refresh`]: asked, not handed to the refresher yet.
const ASKED: u64 = 1;
/// [`SecretCache::refresh`]: handed to the refresher in fork generation
/// `value - QUEUED`.
const QUEUED: u64 = 2;

impl<T: Versioned + Shareable> SecretCache<T> {
    /// A cache keeping found secrets for `settings.cache_ttl` and "absent"
    /// for `settings.negative_ttl` (each shortened by up to 10% at random).
    pub fn new(settings: RemoteSettings) -> Self {
        SecretCache {
            state: Mutex::with_fresh(CacheState::new(), CacheState::new)
                .after_fork(CacheState::after_fork),
            requests: AtomicU64::new(0),
            settings,
            refresh: AtomicU64::new(IDLE),
            changes: PendingChanges::new(),
            node: None,
            gave_up: AtomicU64::new(0),
        }
    }

    /// The same cache, sharing its fetches through the node cache's `slot`.
    pub fn shared_through(mut self, slot: Option<Slot>) -> Self {
        self.node = slot;
        self
    }

    /// `fetch`'s answer, through the node cache when the secret is shared
    /// (and values are kept at all): with how long it answers for when
    /// another process fetched it. Counts the requests sent.
    fn fetch_shared(
        &self,
        mode: Mode,
        fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>,
    ) -> (Result<Fetched<T>, FetchError>, Option<Duration>) {
        let shared = match &self.node {
            Some(slot) if !self.settings.cache_ttl.is_zero() => {
                slot.fetch(&self.settings, mode, fetch)
            }
            _ => Shared {
                outcome: fetch(),
                remaining: None,
                upstream: true,
                gave_up: false,
            },
        };
        if shared.upstream {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        if shared.gave_up {
            self.gave_up.fetch_add(1, Ordering::Relaxed);
        }
        (shared.outcome, shared.remaining)
    }

    /// The keys whose values changed since the last call (each fetch that
    /// brought another version than the one before notes them).
    pub fn take_changes(&self) -> Vec<KeyChange> {
        self.changes.take()
    }

    /// Notes what changed from the last fetch's answer to `value`, now held.
    fn took(&self, state: &mut CacheState<T>, value: &Arc<Fetched<T>>) {
        if let Some(seen) = &state.seen {
            if !Arc::ptr_eq(seen, value) && !seen.same_version(value) {
                self.changes.note(T::changes(value.found(), seen.found()));
            }
        }
        state.seen = Some(Arc::clone(value));
    }

    /// For the watch (no get needed): asks for the background refresh of a
    /// held answer once it is due (its soft deadline, or its TTL without
    /// refresh ahead and for "absent"), as a get would.
    pub fn ask_if_due(&self) {
        if self.settings.cache_ttl.is_zero() {
            return; // nothing is kept: every get fetches
        }
        let now = Instant::now();
        let state = self.state.lock();
        let Some(good) = &state.good else {
            return;
        };
        let found = matches!(*good.value, Fetched::Found(_));
        let due = if found && self.refreshes_ahead() {
            good.refresh_after
        } else {
            good.fresh_until
        };
        if now >= due && state.flight.is_none() {
            self.ask_refresh(&state, now);
        }
    }

    /// Asks for a background refresh, unless one runs or the backoff after
    /// a failed one has not passed (a get past the soft deadline, the watch).
    fn ask_refresh(&self, state: &CacheState<T>, now: Instant) {
        if !state.refreshing && state.refresh_not_before.is_none_or(|t| now >= t) {
            let _ = self
                .refresh
                .compare_exchange(IDLE, ASKED, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// The secret fetched again now, whatever its TTL says ("this value
    /// failed me"): single-flight with every other get, and at most once per
    /// `min_interval` (a storm of callers whose credential was refused sends
    /// one request; the others, and every call within the interval, get what
    /// the cache holds, fetching only if it holds nothing).
    pub fn force(
        &self,
        min_interval: Duration,
        fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>,
    ) -> Answer<T> {
        // Decided under one lock: the forcing caller registers its flight
        // before any other caller can look, so those within the interval
        // find it and wait for it.
        let (lead, in_flight) = {
            let now = Instant::now();
            let mut state = self.state.lock();
            let recent = state
                .forced_at
                .is_some_and(|t| now.saturating_duration_since(t) < min_interval);
            match (&state.flight, recent) {
                (Some(flight), _) => (false, Some(Arc::clone(flight))),
                (None, false) => {
                    state.forced_at = Some(now);
                    let flight = Arc::new(Flight::new());
                    state.flight = Some(Arc::clone(&flight));
                    (true, Some(flight))
                }
                (None, true) => (false, None),
            }
        };
        match (lead, in_flight) {
            // A failure is answered as any fetch's (stale-on-error within
            // max_stale).
            (true, Some(flight)) => self.lead(&flight, Mode::Force, fetch),
            // A fetch in flight (the forced one, most likely) is waited for.
            (false, Some(flight)) => match flight.wait() {
                Some(answer) => answer,
                None => self.get(fetch),
            },
            // Within the interval, nothing in flight: what is held answers.
            _ => self.get(fetch),
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
        let mut fetch = Some(fetch);
        loop {
            let flight = {
                let mut state = self.state.lock();
                if let Some(answer) = self.known(&mut state, Instant::now()) {
                    return answer;
                }
                match &state.flight {
                    Some(flight) => Err(Arc::clone(flight)),
                    None => {
                        let flight = Arc::new(Flight::new());
                        state.flight = Some(Arc::clone(&flight));
                        Ok(flight)
                    }
                }
            };
            let flight = match flight {
                Ok(lead) => lead,
                Err(follow) => match follow.wait() {
                    Some(answer) => return answer,
                    None => continue,
                },
            };
            let fetch = fetch
                .take()
                .expect("a caller leads at most one flight, so fetch is taken once");
            return self.lead(&flight, Mode::Get, fetch);
        }
    }

    /// Runs the fetch of `flight` (registered as the one in flight by the
    /// caller), records it and hands the answer to its waiters.
    fn lead(
        &self,
        flight: &Arc<Flight<Option<Answer<T>>>>,
        mode: Mode,
        fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>,
    ) -> Answer<T> {
        let mut leading = Leading {
            cache: self,
            flight,
            armed: true,
        };
        let (outcome, remaining) = self.fetch_shared(mode, fetch);
        leading.armed = false;
        let answer = self.record(flight, outcome, remaining);
        flight.complete(Some(answer.clone()));
        answer
    }

    /// Stores what the fetch of `flight` brought (answering for `remaining`
    /// when another process fetched it, else for its TTL) and ends the
    /// flight, under one lock; the answer for its callers.
    fn record(
        &self,
        flight: &Arc<Flight<Option<Answer<T>>>>,
        outcome: Result<Fetched<T>, FetchError>,
        remaining: Option<Duration>,
    ) -> Answer<T> {
        let now = Instant::now();
        let mut state = self.state.lock();
        state.end_flight(flight);
        match outcome {
            Ok(value) => {
                let ttl = self.ttl_of(&value, remaining);
                let value = Arc::new(value);
                self.took(&mut state, &value);
                state.good = Some(self.last_good(Arc::clone(&value), ttl, now));
                state.failure = None;
                Ok(value)
            }
            Err(failure) => {
                let until = now + remaining.unwrap_or(self.settings.failure_ttl);
                state.failure = Some((failure, until));
                Self::answer_failing(&state, &self.settings, now)
            }
        }
    }

    /// How long `value` is kept: `remaining` when another process fetched
    /// it (its time left in the node cache), else its kind's TTL.
    fn ttl_of(&self, value: &Fetched<T>, remaining: Option<Duration>) -> Duration {
        remaining.unwrap_or(match value {
            Fetched::Found(_) => self.settings.cache_ttl,
            Fetched::Absent => self.settings.negative_ttl,
        })
    }

    /// What a fetch now brought, kept for `ttl` (jittered), its soft
    /// deadline at `refresh_ahead` of that.
    fn last_good(&self, value: Arc<Fetched<T>>, ttl: Duration, now: Instant) -> LastGood<T> {
        let ttl = jittered(ttl);
        let ahead = ttl.mul_f64(f64::from(self.settings.refresh_ahead_permille) / 1000.0);
        LastGood {
            value,
            fetched: now,
            fresh_until: now + ttl,
            refresh_after: now + ahead,
        }
    }

    /// Whether values are refreshed in the background (`refresh_ahead`
    /// above 0, and a TTL: with `cache_ttl` 0 every get fetches).
    pub fn refreshes_ahead(&self) -> bool {
        self.settings.refresh_ahead_permille > 0 && !self.settings.cache_ttl.is_zero()
    }

    /// The answer without a fetch, when one is not due. With refresh ahead,
    /// a found value past its soft deadline is served while a refresh is
    /// asked for, and so is one past its TTL within `max_stale` (unless the
    /// last failure was one a retry cannot mend): no caller of a key that
    /// has a value waits for the network.
    fn known(&self, state: &mut CacheState<T>, now: Instant) -> Option<Answer<T>> {
        if let Some(good) = &state.good {
            let found = matches!(*good.value, Fetched::Found(_));
            let refresh = found && self.refreshes_ahead() && now >= good.refresh_after;
            let serve = now < good.fresh_until
                || (refresh
                    && now.saturating_duration_since(good.fresh_until) <= self.settings.max_stale
                    && state.failure.as_ref().is_none_or(|(f, _)| f.transient));
            if serve {
                let value = Arc::clone(&good.value);
                if refresh {
                    self.ask_refresh(state, now);
                }
                return Some(Ok(value));
            }
        }
        match &state.failure {
            Some((_, until)) if now < *until => {
                Some(Self::answer_failing(state, &self.settings, now))
            }
            _ => None,
        }
    }

    /// Whether a background refresh is asked for and not yet handed to the
    /// refresher of this process; the first caller to see it takes it (the
    /// others see `false`), to hand it over.
    pub fn take_refresh_request(&self, generation: u64) -> bool {
        match self.refresh.load(Ordering::Acquire) {
            IDLE => false,
            asked @ ASKED => self
                .refresh
                .compare_exchange(
                    asked,
                    QUEUED + generation,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok(),
            // Queued by the parent, before a fork: its refresher is not here.
            queued if queued != QUEUED + generation => self
                .refresh
                .compare_exchange(
                    queued,
                    QUEUED + generation,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok(),
            _ => false,
        }
    }

    /// Whether a background refresh is asked for (queued or not).
    pub fn refresh_asked(&self) -> bool {
        self.refresh.load(Ordering::Acquire) != IDLE
    }

    fn answer_failing(state: &CacheState<T>, settings: &RemoteSettings, now: Instant) -> Answer<T> {
        let (failure, _) = state.failure.as_ref().expect("called with a failure");
        match &state.good {
            Some(good)
                if failure.transient
                    && now.saturating_duration_since(good.fresh_until) <= settings.max_stale =>
            {
                Ok(Arc::clone(&good.value))
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

    /// Test hook: how many callers wait on the fetch in flight.
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> usize {
        // The table and the leader hold one reference each; every waiter one more.
        let state = self.state.lock();
        state
            .flight
            .as_ref()
            .map_or(0, |f| Arc::strong_count(f).saturating_sub(2))
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

    /// Runs the background refresh asked for, if any (on the refresher's
    /// thread): one fetch, whose value replaces the cached one; a failure
    /// keeps it (and is what the status and, past the TTL, a permanent
    /// failure's callers see), and the next refresh waits `failure_ttl`,
    /// doubled after each failure in a row, at most the TTL.
    pub fn refresh_now(&self, fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>) {
        {
            let mut state = self.state.lock();
            self.refresh.store(IDLE, Ordering::Release);
            if state.refreshing || state.flight.is_some() || state.good.is_none() {
                return; // a fetch is on its way anyway
            }
            state.refreshing = true;
        }
        let (outcome, remaining) = self.fetch_shared(Mode::Ahead, fetch);
        let now = Instant::now();
        let mut state = self.state.lock();
        state.refreshing = false;
        match outcome {
            Ok(value) => {
                let ttl = self.ttl_of(&value, remaining);
                // The same version again changes nothing: the value held
                // stays (only its TTL starts again).
                let value = match &state.good {
                    Some(good) if good.value.same_version(&value) => Arc::clone(&good.value),
                    _ => Arc::new(value),
                };
                self.took(&mut state, &value);
                state.good = Some(self.last_good(value, ttl, now));
                state.failure = None;
                state.refresh_failures = 0;
                state.refresh_not_before = None;
            }
            Err(failure) => {
                state.refresh_failures = state.refresh_failures.saturating_add(1);
                let wait = self
                    .settings
                    .failure_ttl
                    .max(Duration::from_millis(10))
                    .saturating_mul(1 << (state.refresh_failures - 1).min(16))
                    .min(self.settings.cache_ttl.max(self.settings.failure_ttl));
                state.refresh_not_before = Some(now + wait);
                let until = now + remaining.unwrap_or(self.settings.failure_ttl);
                state.failure = Some((failure, until));
            }
        }
    }
}

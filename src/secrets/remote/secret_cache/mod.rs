//! [`SecretCache`]: what a remote provider fetched, kept for its TTL.
//!
//! The cache owns its loader (the fetch of its one secret, given when it is
//! made), so everything that happens to a remote secret happens here: a get
//! that finds the soft deadline passed schedules the refresh itself (a job
//! on the refresher holding a weak reference to the cache), the watch
//! checks it the same way, and what a fetch changed is pushed to the
//! `changed` hook once no lock is held. Doing something on every remote
//! fetch is a change to this file.

use crate::error::Error;
use crate::secrets::node::entry::Shareable;
use crate::secrets::node::{Against, Mode, Shared, Slot};
use crate::secrets::provider::KeyChange;
use crate::secrets::transport::retry::jittered;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings};
use crate::sys::refresher::{self, Job};
use crate::sys::{Flight, ForkFlag, Leading, Mutex};

mod force;
mod map;
mod versioned;
use versioned::ended;
pub use versioned::{Reason, Versioned};
#[cfg(test)]
pub(crate) mod script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

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

/// A [`SecretCache`] answer: the fetched secret, shared.
pub type Answer<T> = Result<Arc<Fetched<T>>, Error>;

/// A cache's loader: its secret fetched now, retries included, given what
/// the cache holds (a lease held is renewed rather than issued again; a
/// version held that is still current is kept) and why it is fetched.
pub type Load<T> =
    Box<dyn Fn(Option<&T>, Reason<'_>) -> Result<Fetched<T>, FetchError> + Send + Sync>;

/// Where a cache pushes the keys a fetch changed (no lock held).
pub type Changed = Box<dyn Fn(Vec<KeyChange>) + Send + Sync>;

/// Where a cache's refreshes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// The process's refresher thread.
    Refresher,
    /// Nowhere until a test runs them ([`SecretCache::run_asked`]).
    #[cfg(test)]
    ByHand,
}

impl Runner {
    fn submit(self, job: Job) {
        match self {
            Runner::Refresher => refresher::submit(job),
            #[cfg(test)]
            Runner::ByHand => drop(job),
        }
    }

    fn prestart(self) {
        match self {
            Runner::Refresher => refresher::prestart(),
            #[cfg(test)]
            Runner::ByHand => {}
        }
    }
}

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
    /// Fetches the secret.
    load: Load<T>,
    /// Told the keys each fetch changed.
    changed: Changed,
    /// Where the refreshes it schedules run.
    runner: Runner,
    /// A background refresh is queued to this process's refresher (a
    /// child, whose refresher is not the parent's, queues again).
    queued: ForkFlag,
    /// Itself, for the jobs it hands the refresher.
    me: Weak<SecretCache<T>>,
    /// This secret's place in the node cache, when it is shared.
    node: Option<Slot>,
    /// Fetches this process made itself after waiting out another
    /// process's (a holder hung past one fetch's bound).
    gave_up: AtomicU64,
    /// The provider it counts for ([`meter`](crate::secrets::transport::meter)).
    label: std::sync::OnceLock<&'static str>,
    /// Refresh jobs handed to the runner (tests count them).
    #[cfg(test)]
    jobs: AtomicU64,
}

impl<T: Versioned + Shareable + Send + Sync + 'static> SecretCache<T> {
    /// A cache keeping found secrets for `settings.cache_ttl` and "absent"
    /// for `settings.negative_ttl` (each shortened by up to 10% at random),
    /// fetching with `load` (through the node cache's `node` slot when the
    /// secret is shared), telling `changed` what each fetch changed, its
    /// refreshes run by `runner`.
    pub fn new(
        settings: RemoteSettings,
        node: Option<Slot>,
        load: Load<T>,
        changed: Changed,
        runner: Runner,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| SecretCache {
            state: Mutex::with_fresh(CacheState::new(), CacheState::new)
                .after_fork(CacheState::after_fork),
            requests: AtomicU64::new(0),
            settings,
            load,
            changed,
            runner,
            queued: ForkFlag::new(),
            me: me.clone(),
            node,
            gave_up: AtomicU64::new(0),
            label: std::sync::OnceLock::new(),
            #[cfg(test)]
            jobs: AtomicU64::new(0),
        })
    }

    /// The cache, its stale answers and refreshes ahead counted for
    /// `provider` ([`meter`](crate::secrets::transport::meter)).
    pub fn counted_as(self: Arc<Self>, provider: &'static str) -> Arc<Self> {
        let _ = self.label.set(provider);
        self
    }

    /// Adds to the counters of the provider it counts for.
    fn count(&self, f: impl FnOnce(&mut crate::secrets::transport::meter::Counts)) {
        if let Some(provider) = self.label.get() {
            crate::secrets::transport::meter::add(provider, f);
        }
    }

    /// The loader's answer, its failure scrubbed of the values held.
    fn load(&self, why: Reason<'_>) -> Result<Fetched<T>, FetchError> {
        let held = self
            .state
            .lock()
            .good
            .as_ref()
            .map(|g| Arc::clone(&g.value));
        (self.load)(held.as_deref().and_then(Fetched::found), why).map_err(|mut failure| {
            let state = self.state.lock();
            if let Some(held) = state.good.as_ref().and_then(|g| g.value.found()) {
                failure.error = held.scrub(failure.error);
            }
            failure
        })
    }

    /// The loader's answer, through the node cache when the secret is
    /// shared (and values are kept at all): with how long it answers for
    /// when another process fetched it. Counts the requests sent. A
    /// failure's report is answered by another process's entry of another
    /// version than the one reported.
    fn fetch_shared(
        &self,
        mode: Mode,
        why: Reason<'_>,
    ) -> (Result<Fetched<T>, FetchError>, Option<Duration>) {
        let fetch = || self.load(why);
        let judge = |v: &Fetched<T>| Against::of(why.failed(), v.found().and_then(T::version_id));
        let shared = match &self.node {
            Some(slot) if !self.settings.cache_ttl.is_zero() => {
                slot.fetch(&self.settings, mode, &judge, fetch)
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

    /// What changed from the last fetch's answer to `value`, now held.
    fn took(&self, state: &mut CacheState<T>, value: &Arc<Fetched<T>>) -> Vec<KeyChange> {
        let mut changes = Vec::new();
        if let Some(seen) = &state.seen {
            if !Arc::ptr_eq(seen, value) && !seen.same_version(value) {
                changes = T::changes(value.found(), seen.found());
            }
        }
        state.seen = Some(Arc::clone(value));
        changes
    }

    /// Pushes `changes` to the hook (with no lock held).
    fn tell(&self, changes: Vec<KeyChange>) {
        if !changes.is_empty() {
            (self.changed)(changes);
        }
    }

    /// The watch's check (on the refresher's thread, no get needed): the
    /// refresh of a held answer runs now once it is due (its soft
    /// deadline, or its TTL without refresh ahead and for "absent"), as a
    /// get would have asked, and so does one a get queued.
    pub fn check(&self) {
        if self.settings.cache_ttl.is_zero() {
            return; // nothing is kept: every get fetches
        }
        {
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
        self.run_asked();
    }

    /// Queues a background refresh, unless one is queued or runs, or the
    /// backoff after a failed one has not passed (a get past the soft
    /// deadline, the watch); `true` when this call queued it (the caller
    /// hands the job over once the lock is released).
    fn ask_refresh(&self, state: &CacheState<T>, now: Instant) -> bool {
        !state.refreshing && state.refresh_not_before.is_none_or(|t| now >= t) && self.queued.set()
    }

    /// The job that runs the refresh queued (holding only a weak reference:
    /// a cache dropped meanwhile is not refreshed).
    fn refresh_job(&self) -> Job {
        let me = self.me.clone();
        Box::new(move || {
            if let Some(cache) = me.upgrade() {
                cache.run_asked();
            }
        })
    }

    /// Runs the background refresh queued, if any (the refresher's job,
    /// the watch; a test's hand).
    pub fn run_asked(&self) {
        if self.queued.take() {
            self.refresh_now();
        }
    }

    /// The cached secret, fetched when it is due. While a fetch is in
    /// flight other callers wait for it and share its answer.
    ///
    /// # Errors
    /// The fetch's error, unless it was transient and a value fetched less
    /// than `max_stale` past its TTL exists (that value is served instead).
    /// A failure answers for the service for `failure_ttl`.
    pub fn get(&self) -> Answer<T> {
        loop {
            let flight = {
                let mut state = self.state.lock();
                if let Some((answer, queued)) = self.known(&mut state, Instant::now()) {
                    drop(state);
                    if queued {
                        #[cfg(test)]
                        self.jobs.fetch_add(1, Ordering::Relaxed);
                        self.runner.submit(self.refresh_job());
                    } else if self.refreshes_ahead() {
                        self.runner.prestart();
                    }
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
            return self.lead(&flight, Mode::Get, Reason::Due);
        }
    }

    /// Runs the fetch of `flight` (registered as the one in flight by the
    /// caller), records it, hands the answer to its waiters and tells what
    /// it changed.
    fn lead(
        &self,
        flight: &Arc<Flight<Option<Answer<T>>>>,
        mode: Mode,
        why: Reason<'_>,
    ) -> Answer<T> {
        let leading = Leading::new(&**flight, None, || {
            self.state.lock().end_flight(flight);
        });
        let (outcome, remaining) = self.fetch_shared(mode, why);
        leading.disarm();
        let (answer, changes) = self.record(flight, outcome, remaining);
        flight.complete(Some(answer.clone()));
        self.tell(changes);
        answer
    }

    /// Stores what the fetch of `flight` brought (answering for `remaining`
    /// when another process fetched it, else for its TTL) and ends the
    /// flight, under one lock; the answer for its callers, and what changed.
    fn record(
        &self,
        flight: &Arc<Flight<Option<Answer<T>>>>,
        outcome: Result<Fetched<T>, FetchError>,
        remaining: Option<Duration>,
    ) -> (Answer<T>, Vec<KeyChange>) {
        let now = Instant::now();
        let mut state = self.state.lock();
        state.end_flight(flight);
        match outcome {
            Ok(value) => {
                let ttl = self.ttl_of(&value, remaining);
                let value = Arc::new(value);
                let changes = self.took(&mut state, &value);
                state.good = Some(self.last_good(Arc::clone(&value), ttl, now));
                state.failure = None;
                (Ok(value), changes)
            }
            Err(failure) => {
                let until = now + remaining.unwrap_or(self.settings.failure_ttl);
                state.failure = Some((failure, until));
                (self.answer_failing(&state, now), Vec::new())
            }
        }
    }

    /// How long `value` is kept: `remaining` when another process fetched
    /// it (its time left in the node cache), else its kind's TTL.
    fn ttl_of(&self, value: &Fetched<T>, remaining: Option<Duration>) -> Duration {
        remaining.unwrap_or(match value {
            Fetched::Found(v) => self.settings.kept_for(v.ttl(), v.refresh_at()),
            Fetched::Absent => self.settings.negative_ttl,
        })
    }

    /// What a fetch now brought, kept for `ttl` (jittered), its soft
    /// deadline at `refresh_ahead` of that, or when the value itself says
    /// it is due (a lease: its lifetime's renewal point).
    fn last_good(&self, value: Arc<Fetched<T>>, ttl: Duration, now: Instant) -> LastGood<T> {
        let ttl = jittered(ttl);
        let own = match &*value {
            Fetched::Found(v) => v.refresh_at(),
            Fetched::Absent => None,
        };
        let ahead = match own {
            Some(at) => crate::secrets::lifetime::instant(at)
                .saturating_duration_since(now)
                .min(ttl),
            None => ttl.mul_f64(f64::from(self.settings.refresh_ahead_permille) / 1000.0),
        };
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

    /// The answer without a fetch, when one is not due, and whether a
    /// refresh was queued for the caller to hand over. With refresh ahead,
    /// a found value past its soft deadline is served while a refresh is
    /// queued, and so is one past its TTL within `max_stale` (unless the
    /// last failure was one a retry cannot mend): no caller of a key that
    /// has a value waits for the network.
    fn known(&self, state: &mut CacheState<T>, now: Instant) -> Option<(Answer<T>, bool)> {
        if let Some(good) = &state.good {
            let found = matches!(*good.value, Fetched::Found(_));
            let refresh = found && self.refreshes_ahead() && now >= good.refresh_after;
            let fresh = now < good.fresh_until;
            let serve = fresh
                || (refresh
                    && now.saturating_duration_since(good.fresh_until) <= self.settings.max_stale
                    && state.failure.as_ref().is_none_or(|(f, _)| f.transient)
                    && !ended(&good.value));
            if serve {
                if !fresh {
                    self.count(|c| c.stale_served += 1);
                }
                let value = Arc::clone(&good.value);
                let queued = refresh && self.ask_refresh(state, now);
                return Some((Ok(value), queued));
            }
        }
        match &state.failure {
            Some((_, until)) if now < *until => Some((self.answer_failing(state, now), false)),
            _ => None,
        }
    }

    /// Refresh jobs handed to the runner so far.
    #[cfg(test)]
    pub(crate) fn jobs_submitted(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Whether a background refresh is queued in this process.
    #[cfg(test)]
    pub fn refresh_asked(&self) -> bool {
        self.queued.is_set()
    }

    fn answer_failing(&self, state: &CacheState<T>, now: Instant) -> Answer<T> {
        let (failure, _) = state.failure.as_ref().expect("called with a failure");
        match &state.good {
            Some(good)
                if failure.transient
                    && now.saturating_duration_since(good.fresh_until)
                        <= self.settings.max_stale
                    && !ended(&good.value) =>
            {
                if now >= good.fresh_until {
                    self.count(|c| c.stale_served += 1);
                }
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

    /// The background refresh (on the refresher's thread): one fetch, whose
    /// value replaces the cached one; a failure keeps it (and is what the
    /// status and, past the TTL, a permanent failure's callers see), and the
    /// next refresh waits `failure_ttl`, doubled after each failure in a
    /// row, at most the TTL. Clears the refresh queued.
    pub fn refresh_now(&self) {
        {
            let mut state = self.state.lock();
            self.queued.clear();
            if state.refreshing || state.flight.is_some() || state.good.is_none() {
                return; // a fetch is on its way anyway
            }
            state.refreshing = true;
        }
        self.count(|c| c.refreshes_ahead += 1);
        let (outcome, remaining) = self.fetch_shared(Mode::Ahead, Reason::Due);
        let now = Instant::now();
        let mut state = self.state.lock();
        state.refreshing = false;
        let mut changes = Vec::new();
        match outcome {
            Ok(value) => {
                let ttl = self.ttl_of(&value, remaining);
                // The same version again changes nothing: the value held
                // stays (only its TTL starts again), unless it says its own
                // end (a lease renewed: the new end is kept) or the version
                // is labelled otherwise now (its stages moved).
                let own_end = value.found().is_some_and(|v| v.ttl().is_some());
                let relabelled = |held: &Fetched<T>| match (held, &value) {
                    (Fetched::Found(a), Fetched::Found(b)) => !a.same_label(b),
                    _ => false,
                };
                let value = match &state.good {
                    Some(good)
                        if good.value.same_version(&value)
                            && !own_end
                            && !relabelled(&good.value) =>
                    {
                        Arc::clone(&good.value)
                    }
                    _ => Arc::new(value),
                };
                changes = self.took(&mut state, &value);
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
        drop(state);
        self.tell(changes);
    }
}

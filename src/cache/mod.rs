//! A thread-safe TTL cache with exact LRU eviction and single-flight `get_or_set`.
//!
//! [`TtlCache`] is the Rust counterpart of SimpleTuner's `TTLCache` (same
//! defaults: 300 s TTL, 1,000 entries, 60 s cleanup interval; same operations),
//! with these guarantees the seed does not give:
//!
//! - **Expiry on a monotonic clock.** Wall-clock jumps do not expire or revive
//!   entries. An expired entry is never returned.
//! - **Real LRU.** A `get` (or `get_or_set` hit) counts as use; `set` of an
//!   existing key refreshes it and evicts nothing; inserting a new key at
//!   capacity evicts exactly the least recently used entry.
//! - **Lazy sweeping.** Expired entries are removed when they are looked up, and
//!   all of them at most once per `cleanup_interval`, during an operation (no
//!   background thread); [`TtlCache::purge_expired`] sweeps on demand.
//! - **Single-flight `get_or_set`.** While one caller computes key K, other
//!   callers of K wait and receive that caller's value (or its error); compute
//!   runs once. The compute runs with no lock held, so it may use the same cache.
//!   A write to K (`set`, `delete`, `clear`, `invalidate_prefix`) while K is being
//!   computed keeps the computed value out of the cache (it is still returned to
//!   the callers that asked for it), so an invalidation is never undone by a
//!   compute that started before it.
//! - **Counters** for hits, misses, evictions and expirations.
//!
//! Counting rule: the numbers returned by `delete`, `clear` and
//! `invalidate_prefix` count *live* entries only; expired entries they remove on
//! the way are counted in `expirations`, so results do not depend on when the
//! last sweep happened.

pub mod global;

use crate::sync::{Flight, Mutex};
use lru::LruCache;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Default time to live of an entry: 300 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default capacity: 1,000 entries.
pub const DEFAULT_MAX_SIZE: usize = 1000;
/// Default interval between sweeps of expired entries: 60 s.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Construction parameters of a [`TtlCache`].
///
/// `Duration::MAX` as a TTL or interval means "never" (entries do not expire;
/// no periodic sweep). A zero `cleanup_interval` sweeps on every operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// TTL of entries set without one.
    pub default_ttl: Duration,
    /// Maximum number of entries (at least 1).
    pub max_size: usize,
    /// Minimum time between two sweeps of expired entries.
    pub cleanup_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            default_ttl: DEFAULT_TTL,
            max_size: DEFAULT_MAX_SIZE,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
        }
    }
}

/// A snapshot of a cache's state and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// Stored entries, including expired ones not yet swept (as SimpleTuner's `size`).
    pub size: usize,
    /// Capacity.
    pub max_size: usize,
    /// Stored entries that have expired and await a sweep.
    pub expired_count: usize,
    /// TTL of entries set without one.
    pub default_ttl: Duration,
    /// Lookups answered from a live entry.
    pub hits: u64,
    /// Lookups that found no live entry.
    pub misses: u64,
    /// Live entries removed to make room for a new key.
    pub evictions: u64,
    /// Expired entries removed (on lookup, by a sweep, or on the way of another operation).
    pub expirations: u64,
}

/// Returned by [`TtlCache::get_or_set`] when a compute asks for its own key on
/// the thread that is computing it, which would otherwise wait for itself forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reentrant {
    key: String,
}

impl fmt::Display for Reentrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "get_or_set for cache key '{}' was re-entered by its own compute function",
            self.key
        )
    }
}

impl std::error::Error for Reentrant {}

struct Entry<V> {
    value: V,
    /// `None`: never expires.
    expires_at: Option<Instant>,
}

impl<V> Entry<V> {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

/// What waiters of a flight receive.
enum Outcome<V> {
    Value(V),
    /// The compute's error, type-erased so that callers with other error types can
    /// recognise it is not theirs (they then compute for themselves).
    Failed(Arc<dyn Any + Send + Sync>),
    /// The compute panicked; waiters retry.
    Abandoned,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Value(v) => Outcome::Value(v.clone()),
            Outcome::Failed(e) => Outcome::Failed(Arc::clone(e)),
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
}

enum Lookup<'a, V> {
    Hit(&'a V),
    Expired,
    Miss,
}

struct FlightSlot<V> {
    flight: Arc<Flight<Outcome<V>>>,
    leader: ThreadId,
    /// Set by a write to the key while the compute runs: the result is not stored.
    invalidated: bool,
}

struct State<V> {
    entries: LruCache<String, Entry<V>>,
    flights: HashMap<String, FlightSlot<V>>,
    /// `None`: no periodic sweep.
    next_sweep: Option<Instant>,
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
}

/// A thread-safe TTL cache from `String` keys to values of type `V`. See the
/// [module documentation](self) for the guarantees.
pub struct TtlCache<V> {
    config: CacheConfig,
    state: Mutex<State<V>>,
    /// Test-only clock offset, so expiry can be tested without sleeping.
    #[cfg(test)]
    skew: std::sync::atomic::AtomicU64,
}

impl<V> fmt::Debug for TtlCache<V> {
    /// Shows the configuration only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self::new(CacheConfig::default()).expect("the default configuration is valid")
    }
}

impl<V> TtlCache<V> {
    /// A cache with the given configuration.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when `max_size` is 0.
    pub fn new(config: CacheConfig) -> Result<Self, crate::Error> {
        if config.max_size == 0 {
            return Err(crate::Error::InvalidArgument(
                "cache max_size must be at least 1".into(),
            ));
        }
        Ok(TtlCache {
            config,
            // A child whose parent held the lock at fork starts empty; one
            // whose parent did not keeps the entries, without the parent's
            // computes in flight (their leaders do not exist in the child).
            state: Mutex::with_fresh(State::new(config.cleanup_interval), State::fresh)
                .after_fork(|st| st.flights.clear()),
            #[cfg(test)]
            skew: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The configuration this cache was built with.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    fn now(&self) -> Instant {
        let now = Instant::now();
        #[cfg(test)]
        let now = now + Duration::from_nanos(self.skew.load(std::sync::atomic::Ordering::Relaxed));
        now
    }

    /// Test hook: moves this cache's clock forward.
    #[cfg(test)]
    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).expect("test durations fit in u64 nanoseconds");
        self.skew
            .fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test hook: how many callers wait on the flight computing `key`.
    #[cfg(test)]
    fn waiters(&self, key: &str) -> usize {
        // The table and the leader hold one reference each; every waiter one more.
        self.state
            .lock()
            .flights
            .get(key)
            .map_or(0, |slot| Arc::strong_count(&slot.flight).saturating_sub(2))
    }

    fn expiry(&self, now: Instant, ttl: Option<Duration>) -> Option<Instant> {
        now.checked_add(ttl.unwrap_or(self.config.default_ttl))
    }

    /// Runs `f` on the live value of `key` while the cache is locked (so the value
    /// need not be cloned first), counting a hit; `None` and a miss otherwise.
    /// Keep `f` short: it holds the lock.
    pub fn get_map<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let now = self.now();
        let mut st = self.state.lock();
        st.maybe_sweep(now, self.config.cleanup_interval);
        match st.lookup(key, now) {
            Lookup::Hit(v) => Some(f(v)),
            Lookup::Expired => {
                st.drop_expired(key);
                None
            }
            Lookup::Miss => None,
        }
    }

    /// Removes expired entries now; returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        let now = self.now();
        let mut st = self.state.lock();
        let removed = st.sweep(now);
        st.next_sweep = now.checked_add(self.config.cleanup_interval);
        removed
    }

    /// Stores `value` under `key` for `ttl` (`None`: the default TTL;
    /// `Duration::MAX`: never expires; zero: already expired, so any entry for
    /// `key` is removed and nothing is stored). Setting an existing key refreshes
    /// its LRU position and evicts nothing; a new key at capacity evicts the least
    /// recently used entry.
    pub fn set(&self, key: &str, value: V, ttl: Option<Duration>) {
        let now = self.now();
        let expires_at = self.expiry(now, ttl);
        let mut st = self.state.lock();
        st.maybe_sweep(now, self.config.cleanup_interval);
        st.invalidate_flight(key);
        st.store(key, value, now, expires_at, self.config.max_size);
    }

    /// Removes `key`; true when a live entry was removed.
    pub fn delete(&self, key: &str) -> bool {
        let now = self.now();
        let mut st = self.state.lock();
        st.invalidate_flight(key);
        match st.entries.pop(key) {
            Some(e) if e.is_expired(now) => {
                st.expirations += 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Removes every entry; returns how many live entries there were.
    pub fn clear(&self) -> usize {
        self.remove_where(|_| true)
    }

    /// Removes every entry whose key starts with `prefix`; returns how many live
    /// entries were removed.
    pub fn invalidate_prefix(&self, prefix: &str) -> usize {
        self.remove_where(|k| k.starts_with(prefix))
    }

    fn remove_where(&self, doomed: impl Fn(&str) -> bool) -> usize {
        let now = self.now();
        let mut st = self.state.lock();
        for (key, slot) in st.flights.iter_mut() {
            if doomed(key) {
                slot.invalidated = true;
            }
        }
        let (mut live, mut expired) = (0usize, 0u64);
        st.entries.retain(|k, e| {
            if !doomed(k) {
                return true;
            }
            if e.is_expired(now) {
                expired += 1;
            } else {
                live += 1;
            }
            false
        });
        st.expirations += expired;
        live
    }

    /// Counters and sizes. Counts expired entries, so it costs a pass over the
    /// entries: call it for monitoring, not on a hot path.
    pub fn stats(&self) -> CacheStats {
        let now = self.now();
        let st = self.state.lock();
        CacheStats {
            size: st.entries.len(),
            max_size: self.config.max_size,
            expired_count: st.entries.iter().filter(|(_, e)| e.is_expired(now)).count(),
            default_ttl: self.config.default_ttl,
            hits: st.hits,
            misses: st.misses,
            evictions: st.evictions,
            expirations: st.expirations,
        }
    }
}

impl<V: Clone> TtlCache<V> {
    /// The live value of `key`, if any (a hit refreshes its LRU position).
    pub fn get(&self, key: &str) -> Option<V> {
        self.get_map(key, V::clone)
    }

    /// The live value of `key`, or the value `compute` returns, which is then
    /// stored for `ttl` (as in [`set`](Self::set)).
    ///
    /// Single-flight: while one caller computes `key`, other callers of `key`
    /// wait for it and receive its value, or a clone of its error when they use
    /// the same error type. A failing compute stores nothing. If the computing
    /// caller panics, the waiters retry (one of them computes).
    ///
    /// `compute` runs without any lock held and may use this cache, except to
    /// `get_or_set` its own key on its own thread: that returns
    /// `E::from(Reentrant)` instead of deadlocking. Cycles across threads
    /// (thread 1 computes A and waits for B while thread 2 computes B and waits
    /// for A) do deadlock, as with any lock; do not build them.
    pub fn get_or_set<E, F>(&self, key: &str, ttl: Option<Duration>, compute: F) -> Result<V, E>
    where
        F: FnOnce() -> Result<V, E>,
        E: From<Reentrant> + Clone + Send + Sync + 'static,
    {
        self.get_or_set_ttl(key, || compute().map(|v| (v, ttl)))
    }

    /// Like [`get_or_set`](Self::get_or_set), for values whose TTL depends on
    /// what was computed (a cached miss lives shorter than a cached hit): the
    /// compute returns the value and its TTL (`None`: the default TTL).
    pub fn get_or_set_ttl<E, F>(&self, key: &str, compute: F) -> Result<V, E>
    where
        F: FnOnce() -> Result<(V, Option<Duration>), E>,
        E: From<Reentrant> + Clone + Send + Sync + 'static,
    {
        let mut compute = Some(compute);
        let mut counted = false;
        loop {
            let now = self.now();
            let flight = {
                let mut st = self.state.lock();
                st.maybe_sweep(now, self.config.cleanup_interval);
                if counted {
                    if let Some(v) = st.peek_live(key, now) {
                        return Ok(v.clone());
                    }
                } else {
                    counted = true;
                    match st.lookup(key, now) {
                        Lookup::Hit(v) => return Ok(v.clone()),
                        Lookup::Expired => st.drop_expired(key),
                        Lookup::Miss => {}
                    }
                }
                match st.flights.get(key) {
                    Some(slot) if slot.leader == thread::current().id() => {
                        return Err(E::from(Reentrant {
                            key: key.to_owned(),
                        }));
                    }
                    Some(slot) => Err(Arc::clone(&slot.flight)),
                    None => {
                        let flight = Arc::new(Flight::new());
                        st.flights.insert(
                            key.to_owned(),
                            FlightSlot {
                                flight: Arc::clone(&flight),
                                leader: thread::current().id(),
                                invalidated: false,
                            },
                        );
                        Ok(flight)
                    }
                }
            };
            let flight = match flight {
                Ok(lead) => lead,
                Err(follow) => match follow.wait() {
                    Outcome::Value(v) => return Ok(v),
                    Outcome::Failed(e) => match e.downcast_ref::<E>() {
                        Some(e) => return Err(e.clone()),
                        None => continue,
                    },
                    Outcome::Abandoned => continue,
                },
            };
            let compute = compute
                .take()
                .expect("a caller leads at most one flight, so compute is taken once");
            let mut guard = LeadGuard {
                cache: self,
                key,
                flight: &flight,
                armed: true,
            };
            let result = compute();
            guard.armed = false;
            let now = self.now();
            {
                let mut st = self.state.lock();
                let keep = st.end_flight(key, &flight);
                if let (Ok((v, ttl)), true) = (&result, keep) {
                    let expires_at = self.expiry(now, *ttl);
                    st.store(key, v.clone(), now, expires_at, self.config.max_size);
                }
            }
            let result = result.map(|(v, _)| v);
            flight.complete(match &result {
                Ok(v) => Outcome::Value(v.clone()),
                Err(e) => Outcome::Failed(Arc::new(e.clone())),
            });
            return result;
        }
    }
}

/// Releases a flight whose compute panicked, so its waiters do not hang.
struct LeadGuard<'a, V: Clone> {
    cache: &'a TtlCache<V>,
    key: &'a str,
    flight: &'a Arc<Flight<Outcome<V>>>,
    armed: bool,
}

impl<V: Clone> Drop for LeadGuard<'_, V> {
    fn drop(&mut self) {
        if self.armed {
            self.cache.state.lock().end_flight(self.key, self.flight);
            self.flight.complete(Outcome::Abandoned);
        }
    }
}

impl<V> State<V> {
    fn new(cleanup_interval: Duration) -> Self {
        State {
            entries: LruCache::unbounded(),
            flights: HashMap::new(),
            next_sweep: Instant::now().checked_add(cleanup_interval),
            hits: 0,
            misses: 0,
            evictions: 0,
            expirations: 0,
        }
    }

    /// The state of a child forked while a thread of its parent held the
    /// lock: empty, swept on first use.
    fn fresh() -> Self {
        State::new(Duration::ZERO)
    }

    /// Looks `key` up, refreshing its LRU position and counting a hit or a miss.
    /// An expired entry is reported, not returned; the caller removes it with
    /// [`State::drop_expired`] (the borrow rules keep that out of this function).
    fn lookup(&mut self, key: &str, now: Instant) -> Lookup<'_, V> {
        match self.entries.get(key) {
            Some(e) if !e.is_expired(now) => {
                self.hits += 1;
                Lookup::Hit(&e.value)
            }
            Some(_) => {
                self.misses += 1;
                Lookup::Expired
            }
            None => {
                self.misses += 1;
                Lookup::Miss
            }
        }
    }

    fn drop_expired(&mut self, key: &str) {
        if self.entries.pop(key).is_some() {
            self.expirations += 1;
        }
    }

    /// The live value of `key`, without touching the counters (for retries of one call).
    fn peek_live(&mut self, key: &str, now: Instant) -> Option<&V> {
        match self.entries.get(key) {
            Some(e) if !e.is_expired(now) => Some(&e.value),
            _ => None,
        }
    }

    fn store(
        &mut self,
        key: &str,
        value: V,
        now: Instant,
        expires_at: Option<Instant>,
        max_size: usize,
    ) {
        if expires_at.is_some_and(|t| t <= now) {
            // A zero TTL: "already expired". Nothing is stored, nothing evicted.
            if self.entries.pop(key).is_some() {
                self.expirations += 1;
            }
            return;
        }
        if let Some(e) = self.entries.get_mut(key) {
            e.value = value;
            e.expires_at = expires_at;
            return;
        }
        if self.entries.len() >= max_size {
            if let Some((_, old)) = self.entries.pop_lru() {
                if old.is_expired(now) {
                    self.expirations += 1;
                } else {
                    self.evictions += 1;
                }
            }
        }
        self.entries
            .push(key.to_owned(), Entry { value, expires_at });
    }

    fn invalidate_flight(&mut self, key: &str) {
        if let Some(slot) = self.flights.get_mut(key) {
            slot.invalidated = true;
        }
    }

    /// Removes `flight` from the table; true when its result may be stored.
    fn end_flight(&mut self, key: &str, flight: &Arc<Flight<Outcome<V>>>) -> bool {
        match self.flights.get(key) {
            Some(slot) if Arc::ptr_eq(&slot.flight, flight) => {
                let keep = !slot.invalidated;
                self.flights.remove(key);
                keep
            }
            _ => false,
        }
    }

    fn maybe_sweep(&mut self, now: Instant, interval: Duration) {
        if self.next_sweep.is_some_and(|t| now >= t) {
            self.sweep(now);
            self.next_sweep = now.checked_add(interval);
        }
    }

    fn sweep(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| !e.is_expired(now));
        let removed = before - self.entries.len();
        self.expirations += removed as u64;
        removed
    }
}

impl From<Reentrant> for crate::Error {
    fn from(r: Reentrant) -> Self {
        crate::Error::InvalidArgument(r.to_string())
    }
}

#[cfg(test)]
mod tests;

//! A thread-safe TTL cache with LRU eviction, reads in parallel, and
//! single-flight `get_or_set`.
//!
//! [`TtlCache`] is the Rust counterpart of SimpleTuner's `TTLCache` (same
//! defaults: 300 s TTL, 1,000 entries, 60 s cleanup interval; same operations),
//! with these guarantees the seed does not give:
//!
//! - **Expiry on a monotonic clock.** Wall-clock jumps do not expire or revive
//!   entries. An expired entry is never returned (a hot get reads the coarse
//!   monotonic clock and turns to the precise one only in an entry's last
//!   second; see `sys::clock`).
//! - **LRU.** A `get` (or `get_or_set` hit) counts as use; `set` of an
//!   existing key refreshes it and evicts nothing; inserting a new key at
//!   capacity evicts the least recently used entry. The order is **exact for
//!   every sequence of operations made on one thread**, whatever the size, and
//!   for operations of several threads more than one clock tick (1 to 10 ms)
//!   apart; uses by different threads within one tick of each other, which
//!   have no order a caller could observe anyway, are ordered by a hybrid
//!   logical clock (see the private module `eviction`, which holds that
//!   order and its proof).
//! - **Reads in parallel.** The entries are split over shards by key hash
//!   (one shard below 256 entries of capacity, at most 16); a read takes its
//!   shard's lock shared, so readers of one key, or of keys anywhere, do not
//!   wait for each other. Only writes (a set, a delete, an eviction, a sweep)
//!   take a shard's lock exclusively.
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
//! - **Exact counters** for hits, misses, evictions and expirations: every
//!   event is counted once, by the shard it happened in.
//!
//! Counting rule: the numbers returned by `delete`, `clear` and
//! `invalidate_prefix` count *live* entries only; expired entries they remove on
//! the way are counted in `expirations`, so results do not depend on when the
//! last sweep happened.
//!

mod eviction;
mod flight;
pub mod global;
mod shard;

use crate::sys::clock;
use crate::sys::{ForkFlag, Mutex};
use shard::{Entry, Shard, ShardState, NEVER};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// The coarse monotonic clock the caches read, in nanoseconds
/// (`CLOCK_MONOTONIC_COARSE` where there is one: a few nanoseconds to read,
/// 1 to 10 ms behind the precise clock; the precise one elsewhere). For a
/// caller that keeps answers of its own on the caches' clock (the Python
/// extension).
#[inline]
pub fn coarse_clock() -> u64 {
    clock::coarse()
}

/// The hasher the caches key their tables with (hashbrown's default,
/// seeded per process): for a caller's own tables of keys.
pub type KeyHasher = hashbrown::DefaultHashBuilder;

/// Default time to live of an entry: 300 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default capacity: 1,000 entries.
pub const DEFAULT_MAX_SIZE: usize = 1000;
/// Default interval between sweeps of expired entries: 60 s.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// At most this many shards.
const MAX_SHARDS: usize = 16;
/// Capacity per shard below which a cache gets no more shards.
const ENTRIES_PER_SHARD: usize = 128;

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

/// What a shared-lock lookup found.
enum Read<R> {
    Hit(R),
    Expired,
    Absent,
}

/// A thread-safe TTL cache from `String` keys to values of type `V`. See the
/// [module documentation](self) for the guarantees.
pub struct TtlCache<V> {
    config: CacheConfig,
    shards: Box<[Shard<V>]>,
    /// `shards.len() - 1` (a power of two minus one).
    mask: usize,
    hasher: KeyHasher,
    /// Coarse-clock time of the next periodic sweep ([`NEVER`]: none).
    next_sweep: AtomicU64,
    /// Entries stored plus slots reserved for entries being inserted: never
    /// above `max_size`. A slot is reserved before a new key is inserted
    /// (evicting first when the cache is full), released when an entry is
    /// removed.
    len: AtomicUsize,
    /// Set in the fork generation `len` was counted in: a child whose
    /// parent had a thread inside a shard loses that shard's entries, and
    /// the parent's reservations in progress, so it counts again before its
    /// first reservation (see [`recount`](Self::recount)).
    counted: ForkFlag,
    /// Serialises recounts.
    recounting: Mutex<()>,
    /// Test-only clock offset, so expiry can be tested without sleeping.
    #[cfg(test)]
    skew: AtomicU64,
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

/// Nanoseconds of `d`, [`NEVER`] when they do not fit.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER)
}

impl<V> TtlCache<V> {
    /// A cache with the given configuration.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument) when `max_size` is 0.
    pub fn new(config: CacheConfig) -> Result<Self, crate::error::Error> {
        if config.max_size == 0 {
            return Err(crate::error::Error::InvalidArgument(
                "cache max_size must be at least 1".into(),
            ));
        }
        let per = config.max_size / ENTRIES_PER_SHARD;
        let shards = if per < 2 {
            1
        } else {
            // The largest power of two not above `per`.
            (1usize << per.ilog2()).min(MAX_SHARDS)
        };
        Ok(TtlCache {
            config,
            shards: (0..shards).map(|_| Shard::new()).collect(),
            mask: shards - 1,
            hasher: KeyHasher::default(),
            next_sweep: AtomicU64::new(
                clock::coarse().saturating_add(nanos(config.cleanup_interval)),
            ),
            len: AtomicUsize::new(0),
            counted: ForkFlag::set_here(),
            recounting: Mutex::new(()),
            #[cfg(test)]
            skew: AtomicU64::new(0),
        })
    }

    /// The configuration this cache was built with.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// How many shards the entries are spread over (see the module documentation).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    #[cfg(test)]
    fn skewed(&self, t: u64) -> u64 {
        t.saturating_add(self.skew.load(Relaxed))
    }
    #[cfg(not(test))]
    #[inline(always)]
    fn skewed(&self, t: u64) -> u64 {
        t
    }

    #[inline]
    fn coarse(&self) -> u64 {
        self.skewed(clock::coarse())
    }

    fn precise(&self) -> u64 {
        self.skewed(clock::precise())
    }

    /// Whether an entry expiring at `expires_at` is live, given the coarse
    /// clock's `coarse_now` (see [`clock`]).
    #[inline]
    fn is_live(&self, expires_at: u64, coarse_now: u64) -> bool {
        if coarse_now.saturating_add(clock::SLACK) < expires_at {
            true
        } else if coarse_now >= expires_at {
            false
        } else {
            self.precise() < expires_at
        }
    }

    /// Test hook: moves this cache's clock forward.
    #[cfg(test)]
    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).expect("test durations fit in u64 nanoseconds");
        self.skew.fetch_add(nanos, Relaxed);
    }

    /// Test hook: how many callers wait on the flight computing `key`.
    #[cfg(test)]
    fn waiters(&self, key: &str) -> usize {
        use std::sync::Arc;
        let (_, shard) = self.locate(key);
        // The table and the leader hold one reference each; every waiter one more.
        shard
            .state
            .read()
            .flights
            .get(key)
            .map_or(0, |slot| Arc::strong_count(&slot.flight).saturating_sub(2))
    }

    /// Test hook: checks that every shard's index, table and published
    /// figures agree; returns the number of entries.
    #[cfg(test)]
    fn check_consistency(&self) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut st = shard.state.write();
            assert_eq!(st.table.len(), st.order.len(), "one index record per entry");
            for e in st.table.iter() {
                assert_eq!(st.order.get(&e.filed), Some(&e.hash), "entry filed");
                assert!(e.filed <= e.stamp.load(Relaxed), "filed at most last use");
            }
            let oldest = shard.oldest.load(Relaxed);
            assert!(
                st.settle().map_or(NEVER, |(s, _)| s) >= oldest,
                "lower bound"
            );
            total += st.table.len();
        }
        assert_eq!(self.len.load(Relaxed), total, "counted size");
        total
    }

    /// The precise expiry of an entry set now with `ttl` (`None`: the
    /// default); `None` for a zero TTL (already expired).
    fn expiry(&self, ttl: Option<Duration>) -> Option<u64> {
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        if ttl.is_zero() {
            return None;
        }
        let ttl = nanos(ttl);
        Some(if ttl == NEVER {
            NEVER
        } else {
            self.precise().saturating_add(ttl)
        })
    }

    #[inline]
    fn locate(&self, key: &str) -> (u64, &Shard<V>) {
        let hash = self.hasher.hash_one(key);
        // The table uses the low bits and the top seven; shards use others.
        (hash, &self.shards[(hash >> 40) as usize & self.mask])
    }

    /// Sweeps every shard when the periodic sweep is due (one caller wins).
    #[inline]
    fn maybe_sweep(&self, coarse_now: u64) {
        let due = self.next_sweep.load(Relaxed);
        if coarse_now >= due {
            self.sweep_due(due, coarse_now);
        }
    }

    #[cold]
    fn sweep_due(&self, due: u64, coarse_now: u64) {
        let next = coarse_now.saturating_add(nanos(self.config.cleanup_interval));
        if self
            .next_sweep
            .compare_exchange(due, next, Relaxed, Relaxed)
            .is_ok()
        {
            self.sweep();
        }
    }

    /// Removes the expired entries of every shard; returns how many.
    fn sweep(&self) -> usize {
        let now = self.precise();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut st = shard.state.write();
            let before = st.table.len();
            st.remove_where(|e| e.expires_at <= now);
            let gone = before - st.table.len();
            shard.publish(&st);
            self.len.fetch_sub(gone, Relaxed);
            drop(st);
            Shard::<V>::count(&shard.expirations, gone as u64);
            removed += gone;
        }
        removed
    }

    /// Looks `key` up under the shared lock; on a live entry stamps it,
    /// counts a hit and runs `f`. Counts nothing otherwise.
    #[inline]
    fn read<R>(
        &self,
        shard: &Shard<V>,
        hash: u64,
        key: &str,
        now: u64,
        f: impl FnOnce(&V) -> R,
    ) -> Read<R> {
        let st = shard.state.read();
        match st.find(hash, key) {
            Some(e) if self.is_live(e.expires_at, now) => {
                shard.touch(e, now);
                let r = f(&e.value);
                drop(st);
                shard.hits.fetch_add(1, Relaxed);
                Read::Hit(r)
            }
            Some(_) => Read::Expired,
            None => Read::Absent,
        }
    }

    /// Removes `key`'s entry if it is (still) expired, counting it.
    fn drop_expired(&self, shard: &Shard<V>, hash: u64, key: &str) {
        let now = self.precise();
        let mut st = shard.state.write();
        if st.find(hash, key).is_some_and(|e| e.expires_at <= now) {
            self.remove(shard, &mut st, hash, key);
            drop(st);
            shard.expirations.fetch_add(1, Relaxed);
        }
    }

    /// Runs `f` on the live value of `key` while its shard is locked for
    /// reading (so the value need not be cloned first), counting a hit; `None`
    /// and a miss otherwise. Keep `f` short: writers of the shard wait for it.
    pub fn get_map<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let now = self.coarse();
        self.maybe_sweep(now);
        let (hash, shard) = self.locate(key);
        match self.read(shard, hash, key, now, f) {
            Read::Hit(r) => Some(r),
            Read::Expired => {
                shard.misses.fetch_add(1, Relaxed);
                self.drop_expired(shard, hash, key);
                None
            }
            Read::Absent => {
                shard.misses.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// Removes expired entries now; returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        let removed = self.sweep();
        self.next_sweep.store(
            self.coarse()
                .saturating_add(nanos(self.config.cleanup_interval)),
            Relaxed,
        );
        removed
    }

    /// Stores `value` under `key` for `ttl` (`None`: the default TTL;
    /// `Duration::MAX`: never expires; zero: already expired, so any entry for
    /// `key` is removed and nothing is stored). Setting an existing key refreshes
    /// its LRU position and evicts nothing; a new key at capacity evicts the least
    /// recently used entry.
    pub fn set(&self, key: &str, value: V, ttl: Option<Duration>) {
        self.maybe_sweep(self.coarse());
        let expires_at = self.expiry(ttl);
        let (hash, shard) = self.locate(key);
        let Some(expires_at) = expires_at else {
            let mut st = shard.state.write();
            st.invalidate_flight(key);
            self.remove_stale(shard, &mut st, hash, key);
            return;
        };
        let mut st = shard.state.write();
        st.invalidate_flight(key);
        let Some(value) = self.replace(shard, &mut st, hash, key, value, expires_at) else {
            return;
        };
        // A new key: a slot first (evicting without holding this lock).
        drop(st);
        self.reserve();
        let mut st = shard.state.write();
        st.invalidate_flight(key);
        self.insert_reserved(shard, &mut st, hash, key, value, expires_at);
    }

    /// For a zero TTL ("already expired"): removes any entry of `key`,
    /// counting it as an expiration; nothing is stored, nothing evicted.
    fn remove_stale(&self, shard: &Shard<V>, st: &mut ShardState<V>, hash: u64, key: &str) {
        if self.remove(shard, st, hash, key).is_some() {
            shard.expirations.fetch_add(1, Relaxed);
        }
    }

    /// Under `key`'s shard's exclusive lock: removes its entry, releasing
    /// its slot.
    fn remove(
        &self,
        shard: &Shard<V>,
        st: &mut ShardState<V>,
        hash: u64,
        key: &str,
    ) -> Option<Entry<V>> {
        let entry = st.take(hash, key)?;
        shard.publish(st);
        self.len.fetch_sub(1, Relaxed);
        Some(entry)
    }

    /// Under `key`'s shard's exclusive lock: gives an existing entry `value`
    /// (refreshing its use); returns `value` back when there is no entry.
    fn replace(
        &self,
        shard: &Shard<V>,
        st: &mut ShardState<V>,
        hash: u64,
        key: &str,
        value: V,
        expires_at: u64,
    ) -> Option<V> {
        match st.find_mut(hash, key) {
            Some(e) => {
                e.value = value;
                e.expires_at = expires_at;
                *e.stamp.get_mut() = shard.stamp(self.coarse());
                None
            }
            None => Some(value),
        }
    }

    /// Under `key`'s shard's exclusive lock, holding a slot from
    /// [`reserve`](Self::reserve): inserts the entry, or gives `value` to an
    /// entry another thread inserted meanwhile and releases the slot.
    fn insert_reserved(
        &self,
        shard: &Shard<V>,
        st: &mut ShardState<V>,
        hash: u64,
        key: &str,
        value: V,
        expires_at: u64,
    ) {
        let Some(value) = self.replace(shard, st, hash, key, value, expires_at) else {
            self.len.fetch_sub(1, Relaxed);
            return;
        };
        let stamp = shard.stamp(self.coarse());
        st.table.insert_unique(
            hash,
            Entry {
                key: key.into(),
                hash,
                value,
                expires_at,
                stamp: AtomicU64::new(stamp),
                filed: stamp,
            },
            |e| e.hash,
        );
        st.order.insert(stamp, hash);
        shard.publish(st);
    }

    /// Removes `key`; true when a live entry was removed.
    pub fn delete(&self, key: &str) -> bool {
        let (hash, shard) = self.locate(key);
        let now = self.precise();
        let mut st = shard.state.write();
        st.invalidate_flight(key);
        let Some(e) = self.remove(shard, &mut st, hash, key) else {
            return false;
        };
        drop(st);
        if e.expires_at <= now {
            shard.expirations.fetch_add(1, Relaxed);
            false
        } else {
            true
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
        let now = self.precise();
        let mut live = 0usize;
        for shard in self.shards.iter() {
            let mut st = shard.state.write();
            for (key, slot) in st.flights.iter_mut() {
                if doomed(key) {
                    slot.invalidated = true;
                }
            }
            let (mut expired, mut gone) = (0u64, 0usize);
            st.remove_where(|e| {
                if !doomed(&e.key) {
                    return false;
                }
                if e.expires_at <= now {
                    expired += 1;
                } else {
                    live += 1;
                }
                gone += 1;
                true
            });
            shard.publish(&st);
            self.len.fetch_sub(gone, Relaxed);
            drop(st);
            Shard::<V>::count(&shard.expirations, expired);
        }
        live
    }

    /// Counters and sizes. Counts expired entries, so it costs a pass over the
    /// entries: call it for monitoring, not on a hot path. Each counter is
    /// exact; taken while other threads use the cache, the counters are read
    /// shard by shard, not at one instant. `size` never exceeds `max_size`
    /// (it includes, at that instant, entries other threads are inserting).
    pub fn stats(&self) -> CacheStats {
        self.recount_after_fork();
        let now = self.precise();
        let size = self.len.load(Relaxed);
        let mut expired_count = 0;
        let (mut hits, mut misses, mut evictions, mut expirations) = (0, 0, 0, 0);
        for shard in self.shards.iter() {
            let st = shard.state.read();
            expired_count += st.table.iter().filter(|e| e.expires_at <= now).count();
            drop(st);
            hits += shard.hits.load(Relaxed);
            misses += shard.misses.load(Relaxed);
            evictions += shard.evictions.load(Relaxed);
            expirations += shard.expirations.load(Relaxed);
        }
        CacheStats {
            size,
            max_size: self.config.max_size,
            expired_count: expired_count.min(size),
            default_ttl: self.config.default_ttl,
            hits,
            misses,
            evictions,
            expirations,
        }
    }
}

impl From<Reentrant> for crate::error::Error {
    fn from(r: Reentrant) -> Self {
        crate::error::Error::InvalidArgument(r.to_string())
    }
}

#[cfg(test)]
mod tests;

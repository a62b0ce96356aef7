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
//!   second; see the README's "How reads scale").
//! - **LRU.** A `get` (or `get_or_set` hit) counts as use; `set` of an
//!   existing key refreshes it and evicts nothing; inserting a new key at
//!   capacity evicts the least recently used entry. The order is **exact for
//!   every sequence of operations made on one thread**, whatever the size, and
//!   for operations of several threads more than one clock tick (1 to 10 ms)
//!   apart; uses by different threads within one tick of each other, which
//!   have no order a caller could observe anyway, are ordered by a hybrid
//!   logical clock (see "Shards" below).
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
//! # Shards
//!
//! Each shard keeps its entries in a hash table, and the order of use in
//! *stamps*: a read stores a new stamp in the entry (an atomic store under
//! the shared lock) and nothing else; an ordered index of stamps is corrected
//! lazily, under the exclusive lock, when an eviction needs the shard's least
//! recently used entry (an entry whose stamp moved is re-filed under its new
//! stamp, so the index's first entry is exactly the shard's least recently
//! used). An eviction takes the entry with the lowest stamp of all shards.
//! Stamps come from a hybrid logical clock: each stamp is above the coarse
//! clock's time, above the shard's last stamp, and above the calling
//! thread's last stamp, so the stamps of one thread's operations rise in the
//! order it made them, in every shard.
//!
//! `clear` and `invalidate_prefix` visit the shards one after another: an
//! entry set by another thread while they run may survive them or not (as if
//! set just after or just before). A child process forked while another
//! thread of its parent held a shard's lock starts with that shard empty.

pub mod global;

use crate::sys::clock;
use crate::sys::{Flight, Mutex, RwLock};
use hashbrown::HashTable;
use std::any::Any;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Duration;

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
/// An expiry or a time that never comes; also "no stamp" (an empty shard).
const NEVER: u64 = u64::MAX;

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
    key: Box<str>,
    hash: u64,
    value: V,
    /// On the precise clock; [`NEVER`]: never expires.
    expires_at: u64,
    /// The stamp of the last use (stored by readers under the shared lock).
    stamp: AtomicU64,
    /// The stamp the shard's order index files this entry under (at most
    /// `stamp`; changed under the exclusive lock only).
    filed: u64,
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

struct FlightSlot<V> {
    flight: Arc<Flight<Outcome<V>>>,
    leader: ThreadId,
    /// Set by a write to the key while the compute runs: the result is not stored.
    invalidated: bool,
}

/// What a shard's lock protects.
struct ShardState<V> {
    table: HashTable<Entry<V>>,
    /// Entries by [`Entry::filed`] stamp (to their hash): one record per entry.
    order: BTreeMap<u64, u64>,
    flights: HashMap<String, FlightSlot<V>>,
}

/// One shard: its lock, and what readers update beside it. Aligned to keep
/// two shards' counters off one cache line.
#[repr(align(128))]
struct Shard<V> {
    state: RwLock<ShardState<V>>,
    /// The last stamp handed out in this shard.
    clock: AtomicU64,
    /// A lower bound of the stamps in this shard ([`NEVER`]: empty), read
    /// without the lock to choose where to evict from.
    oldest: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

thread_local! {
    /// The last stamp this thread took, in any shard and any cache.
    static LAST_STAMP: Cell<u64> = const { Cell::new(0) };
}

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
    hasher: hashbrown::DefaultHashBuilder,
    /// Coarse-clock time of the next periodic sweep ([`NEVER`]: none).
    next_sweep: AtomicU64,
    /// Entries stored plus slots reserved for entries being inserted: never
    /// above `max_size`. A slot is reserved before a new key is inserted
    /// (evicting first when the cache is full), released when an entry is
    /// removed.
    len: AtomicUsize,
    /// The fork generation `len` was counted in: a child whose parent had a
    /// thread inside a shard loses that shard's entries, and the parent's
    /// reservations in progress, so it counts again before its first
    /// reservation (see [`recount`](Self::recount)).
    counted_in: AtomicU64,
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

impl<V> ShardState<V> {
    fn new() -> Self {
        ShardState {
            table: HashTable::new(),
            order: BTreeMap::new(),
            flights: HashMap::new(),
        }
    }

    fn find(&self, hash: u64, key: &str) -> Option<&Entry<V>> {
        self.table.find(hash, |e| &*e.key == key)
    }

    fn find_mut(&mut self, hash: u64, key: &str) -> Option<&mut Entry<V>> {
        self.table.find_mut(hash, |e| &*e.key == key)
    }

    /// Removes the entry of `key` and its index record.
    fn take(&mut self, hash: u64, key: &str) -> Option<Entry<V>> {
        self.take_where(hash, |e| &*e.key == key)
    }

    /// Removes the entry of `hash` that `is` picks, and its index record.
    fn take_where(&mut self, hash: u64, is: impl FnMut(&Entry<V>) -> bool) -> Option<Entry<V>> {
        let (entry, _) = self.table.find_entry(hash, is).ok()?.remove();
        self.order.remove(&entry.filed);
        Some(entry)
    }

    /// Removes every entry `doomed` picks, with its index record.
    fn remove_where(&mut self, mut doomed: impl FnMut(&Entry<V>) -> bool) {
        let ShardState { table, order, .. } = self;
        table.retain(|e| {
            if doomed(e) {
                order.remove(&e.filed);
                false
            } else {
                true
            }
        });
    }

    /// Corrects the index until its first record is exact; returns that
    /// record (the shard's least recently used entry), `None` when empty.
    fn settle(&mut self) -> Option<(u64, u64)> {
        let ShardState { table, order, .. } = self;
        loop {
            let (&filed, &hash) = order.first_key_value()?;
            let entry = table
                .find_mut(hash, |e| e.filed == filed)
                .expect("every index record has its entry");
            let used = *entry.stamp.get_mut();
            if used == filed {
                return Some((filed, hash));
            }
            // Used since it was filed: re-filed under its last use. Each
            // entry moves at most once per call (its stamp cannot change
            // under the exclusive lock), so this ends.
            order.pop_first();
            entry.filed = used;
            order.insert(used, hash);
        }
    }

    fn invalidate_flight(&mut self, key: &str) {
        if let Some(slot) = self.flights.get_mut(key) {
            slot.invalidated = true;
        }
    }

    /// Whether `flight` is still the key's and its result may be stored.
    fn flight_keeps(&self, key: &str, flight: &Arc<Flight<Outcome<V>>>) -> bool {
        matches!(self.flights.get(key),
            Some(slot) if Arc::ptr_eq(&slot.flight, flight) && !slot.invalidated)
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
}

impl<V> Shard<V> {
    fn new() -> Self {
        Shard {
            // A child whose parent held the lock at fork starts with this
            // shard empty; one whose parent did not keeps the entries,
            // without the parent's computes in flight (their leaders do not
            // exist in the child).
            state: RwLock::with_fresh(ShardState::new(), ShardState::new)
                .after_fork(|st| st.flights.clear()),
            clock: AtomicU64::new(0),
            oldest: AtomicU64::new(NEVER),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        }
    }

    /// A new stamp: above `now` (a monotonic time, in units of about a
    /// millisecond in the upper 40 bits), above this shard's last stamp and
    /// above the calling thread's last stamp. Unique within the shard.
    #[inline]
    fn stamp(&self, now: u64) -> u64 {
        let physical = (now >> 20) << 24;
        LAST_STAMP.with(|mine| {
            let floor = physical.max(mine.get().saturating_add(1));
            let mut last = self.clock.load(Relaxed);
            loop {
                let next = last.saturating_add(1).max(floor).min(NEVER - 1);
                match self
                    .clock
                    .compare_exchange_weak(last, next, Relaxed, Relaxed)
                {
                    Ok(_) => {
                        mine.set(next);
                        return next;
                    }
                    Err(seen) => last = seen,
                }
            }
        })
    }

    /// Records a use of `e` (under the shared lock). An entry that is
    /// already the last one stamped in its shard, within the current
    /// millisecond, and not older than anything the calling thread used,
    /// keeps its stamp: a new one would order nothing differently, and a hot
    /// key read by several threads then writes neither the entry nor the
    /// shard's clock. The thread's last stamp becomes the entry's, so its
    /// next uses, in any shard, come after this one.
    #[inline]
    fn touch(&self, e: &Entry<V>, now: u64) {
        let current = e.stamp.load(Relaxed);
        if current >> 24 == now >> 20 && current == self.clock.load(Relaxed) {
            let kept = LAST_STAMP.with(|mine| {
                // Not when this thread has used something since (in another
                // shard): then this use must come after that one.
                let fresh = mine.get() <= current;
                if fresh {
                    mine.set(current);
                }
                fresh
            });
            if kept {
                return;
            }
        }
        e.stamp.store(self.stamp(now), Relaxed);
    }

    /// Publishes the shard's oldest stamp for evictions; call under the
    /// exclusive lock after a change.
    fn publish(&self, st: &ShardState<V>) {
        self.oldest.store(
            st.order.first_key_value().map_or(NEVER, |(&s, _)| s),
            Relaxed,
        );
    }

    fn count(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
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
            hasher: hashbrown::DefaultHashBuilder::default(),
            next_sweep: AtomicU64::new(
                clock::coarse().saturating_add(nanos(config.cleanup_interval)),
            ),
            len: AtomicUsize::new(0),
            counted_in: AtomicU64::new(crate::sys::generation()),
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

    /// Takes a slot for a new entry, evicting least recently used entries
    /// while the cache is full. Call holding no shard lock. When every slot
    /// is held by another thread's insert in progress (nothing to evict), it
    /// yields until one is done: such an insert holds its slot only between
    /// two short critical sections.
    fn reserve(&self) {
        self.recount_after_fork();
        let max = self.config.max_size;
        loop {
            let len = self.len.load(Relaxed);
            if len < max {
                if self
                    .len
                    .compare_exchange_weak(len, len + 1, Relaxed, Relaxed)
                    .is_ok()
                {
                    return;
                }
            } else if !self.evict_one() {
                thread::yield_now();
            }
        }
    }

    /// In a child process, before its first reservation: counts the entries
    /// again, with every shard locked (a parent's thread may have held a
    /// shard, whose entries the child lost, or a slot, that no thread of the
    /// child will release).
    fn recount_after_fork(&self) {
        let generation = crate::sys::generation();
        if self.counted_in.load(Relaxed) == generation {
            return;
        }
        self.recount(generation);
    }

    #[cold]
    fn recount(&self, generation: u64) {
        let _one = self.recounting.lock();
        if self.counted_in.load(Relaxed) == generation {
            return;
        }
        // In shard order, as no other path holds two shard locks.
        let all: Vec<_> = self.shards.iter().map(|s| s.state.write()).collect();
        self.len
            .store(all.iter().map(|st| st.table.len()).sum(), Relaxed);
        self.counted_in.store(generation, Relaxed);
    }

    /// Evicts the entry with the lowest stamp of all shards; false when
    /// there was none.
    fn evict_one(&self) -> bool {
        // A shard's published `oldest` is a lower bound of its stamps, exact
        // once settled: settle the shard with the lowest bound until the one
        // settled is not above any other bound. Each try settles one shard,
        // so after as many tries as shards every bound is exact.
        let tries = self.shards.len() + 1;
        for attempt in 0..=tries {
            let Some((i, shard)) = self
                .shards
                .iter()
                .enumerate()
                .filter(|(_, s)| s.oldest.load(Relaxed) != NEVER)
                .min_by_key(|(_, s)| s.oldest.load(Relaxed))
            else {
                return false;
            };
            let mut st = shard.state.write();
            let Some((stamp, hash)) = st.settle() else {
                shard.publish(&st);
                continue;
            };
            let others = self
                .shards
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, s)| s.oldest.load(Relaxed))
                .min()
                .unwrap_or(NEVER);
            if stamp > others && attempt < tries {
                shard.publish(&st);
                continue;
            }
            let now = self.precise();
            let entry = st
                .take_where(hash, |e| e.filed == stamp)
                .expect("a settled record has its entry");
            shard.publish(&st);
            self.len.fetch_sub(1, Relaxed);
            drop(st);
            if entry.expires_at <= now {
                shard.expirations.fetch_add(1, Relaxed);
            } else {
                shard.evictions.fetch_add(1, Relaxed);
            }
            return true;
        }
        false
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
        let (hash, shard) = self.locate(key);
        let mut compute = Some(compute);
        let mut counted = false;
        loop {
            let now = self.coarse();
            self.maybe_sweep(now);
            if !counted {
                // The common case, a hit, under the shared lock.
                if let Read::Hit(v) = self.read(shard, hash, key, now, V::clone) {
                    return Ok(v);
                }
            }
            let flight = {
                let mut st = shard.state.write();
                let now = self.precise();
                let mut expired = false;
                let found = match st.find(hash, key) {
                    Some(e) if e.expires_at > now => {
                        e.stamp.store(shard.stamp(self.coarse()), Relaxed);
                        Some(e.value.clone())
                    }
                    Some(_) => {
                        expired = true;
                        None
                    }
                    None => None,
                };
                if expired {
                    self.remove(shard, &mut st, hash, key);
                    shard.expirations.fetch_add(1, Relaxed);
                }
                if !counted {
                    counted = true;
                    let counter = if found.is_some() {
                        &shard.hits
                    } else {
                        &shard.misses
                    };
                    counter.fetch_add(1, Relaxed);
                }
                if let Some(v) = found {
                    return Ok(v);
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
            match &result {
                Ok((v, ttl)) => self.store_computed(shard, hash, key, &flight, v, *ttl),
                Err(_) => {
                    shard.state.write().end_flight(key, &flight);
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

impl<V: Clone> TtlCache<V> {
    /// Ends the flight of `key` and stores what it computed, unless a write
    /// to the key while it ran invalidated it.
    fn store_computed(
        &self,
        shard: &Shard<V>,
        hash: u64,
        key: &str,
        flight: &Arc<Flight<Outcome<V>>>,
        value: &V,
        ttl: Option<Duration>,
    ) {
        let expires_at = self.expiry(ttl);
        let mut st = shard.state.write();
        let Some(expires_at) = expires_at else {
            if st.end_flight(key, flight) {
                self.remove_stale(shard, &mut st, hash, key);
            }
            return;
        };
        if !st.flight_keeps(key, flight) {
            st.end_flight(key, flight);
            return;
        }
        let Some(value) = self.replace(shard, &mut st, hash, key, value.clone(), expires_at) else {
            st.end_flight(key, flight);
            return;
        };
        // A new key. The flight stays registered while a slot is reserved,
        // so a write to the key meanwhile still keeps this value out.
        drop(st);
        self.reserve();
        let mut st = shard.state.write();
        if st.end_flight(key, flight) {
            self.insert_reserved(shard, &mut st, hash, key, value, expires_at);
        } else {
            self.len.fetch_sub(1, Relaxed);
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
            let (_, shard) = self.cache.locate(self.key);
            shard.state.write().end_flight(self.key, self.flight);
            self.flight.complete(Outcome::Abandoned);
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

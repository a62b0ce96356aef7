//! A shard of the cache: its entries in a hash table, the index of their
//! stamps (the order of use, see [`super::eviction`]), the computes in
//! flight, and the counters readers update beside the lock.

use crate::sys::{Flight, RwLock};
use hashbrown::HashTable;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::ThreadId;

/// An expiry or a time that never comes; also "no stamp" (an empty shard).
pub(super) const NEVER: u64 = u64::MAX;

/// What waiters of a flight receive.
pub(super) enum Outcome<V> {
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

pub(super) struct FlightSlot<V> {
    pub(super) flight: Arc<Flight<Outcome<V>>>,
    pub(super) leader: ThreadId,
    /// Set by a write to the key while the compute runs: the result is not stored.
    pub(super) invalidated: bool,
}

pub(super) struct Entry<V> {
    pub(super) key: Box<str>,
    pub(super) hash: u64,
    pub(super) value: V,
    /// On the precise clock; [`NEVER`]: never expires.
    pub(super) expires_at: u64,
    /// The stamp of the last use (stored by readers under the shared lock).
    pub(super) stamp: AtomicU64,
    /// The stamp the shard's order index files this entry under (at most
    /// `stamp`; changed under the exclusive lock only).
    pub(super) filed: u64,
}

/// What a shard's lock protects.
pub(super) struct ShardState<V> {
    pub(super) table: HashTable<Entry<V>>,
    /// Entries by [`Entry::filed`] stamp (to their hash): one record per entry.
    pub(super) order: BTreeMap<u64, u64>,
    pub(super) flights: HashMap<String, FlightSlot<V>>,
}

/// One shard: its lock, and what readers update beside it. Aligned to keep
/// two shards' counters off one cache line.
#[repr(align(128))]
pub(super) struct Shard<V> {
    pub(super) state: RwLock<ShardState<V>>,
    /// The last stamp handed out in this shard.
    pub(super) clock: AtomicU64,
    /// A lower bound of the stamps in this shard ([`NEVER`]: empty), read
    /// without the lock to choose where to evict from.
    pub(super) oldest: AtomicU64,
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) expirations: AtomicU64,
}

impl<V> ShardState<V> {
    pub(super) fn new() -> Self {
        ShardState {
            table: HashTable::new(),
            order: BTreeMap::new(),
            flights: HashMap::new(),
        }
    }

    pub(super) fn find(&self, hash: u64, key: &str) -> Option<&Entry<V>> {
        self.table.find(hash, |e| &*e.key == key)
    }

    pub(super) fn find_mut(&mut self, hash: u64, key: &str) -> Option<&mut Entry<V>> {
        self.table.find_mut(hash, |e| &*e.key == key)
    }

    /// Removes the entry of `key` and its index record.
    pub(super) fn take(&mut self, hash: u64, key: &str) -> Option<Entry<V>> {
        self.take_where(hash, |e| &*e.key == key)
    }

    /// Removes the entry of `hash` that `is` picks, and its index record.
    pub(super) fn take_where(
        &mut self,
        hash: u64,
        is: impl FnMut(&Entry<V>) -> bool,
    ) -> Option<Entry<V>> {
        let (entry, _) = self.table.find_entry(hash, is).ok()?.remove();
        self.order.remove(&entry.filed);
        Some(entry)
    }

    /// Removes every entry `doomed` picks, with its index record.
    pub(super) fn remove_where(&mut self, mut doomed: impl FnMut(&Entry<V>) -> bool) {
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
}

impl<V> Shard<V> {
    pub(super) fn new() -> Self {
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

    /// Publishes the shard's oldest stamp for evictions; call under the
    /// exclusive lock after a change.
    pub(super) fn publish(&self, st: &ShardState<V>) {
        self.oldest.store(
            st.order.first_key_value().map_or(NEVER, |(&s, _)| s),
            Relaxed,
        );
    }

    pub(super) fn count(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}

//! The order of use across shards, and eviction by it: the cache's LRU.
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

//!
//! # Why the order is exact for one thread
//!
//! Let a thread use entry A, then entry B (in any shards). The stamp of the
//! use of B is above the thread's last stamp ([`Shard::stamp`] takes the
//! maximum of the coarse time, the shard's clock and `LAST_STAMP`, plus one),
//! which is at least A's stamp; [`Shard::touch`] keeps A's stamp only when
//! no later stamp was taken by this thread, and then sets `LAST_STAMP` to it.
//! So B's stamp is above A's. A shard's index files each entry under a stamp
//! at most its current one; [`ShardState::settle`] re-files entries until the
//! index's first record is an entry's current stamp, which is then the
//! lowest current stamp of the shard (every other record is a lower bound of
//! its entry's stamp and is not below the first). A shard publishes its first
//! record as `oldest` after every change under its exclusive lock, a lower
//! bound of its stamps. [`TtlCache::evict_one`] settles the shard with the
//! lowest bound and evicts its first entry only when that stamp is not above
//! any other shard's bound; otherwise it publishes the exact bound and tries
//! the next lowest. Each try makes one more bound exact, so after as many
//! tries as shards every bound is exact and the entry evicted has the lowest
//! stamp of the cache, i.e. the least recently used one. Uses by different
//! threads within one tick are ordered by the clock's tie-breaking (the
//! shard's clock), which no caller can observe.

use super::shard::{Entry, Shard, ShardState, NEVER};
use super::TtlCache;
use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;

thread_local! {
    /// The last stamp this thread took, in any shard and any cache.
    static LAST_STAMP: Cell<u64> = const { Cell::new(0) };
}

impl<V> ShardState<V> {
    /// Corrects the index until its first record is exact; returns that
    /// record (the shard's least recently used entry), `None` when empty.
    pub(super) fn settle(&mut self) -> Option<(u64, u64)> {
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
}

impl<V> Shard<V> {
    /// A new stamp: above `now` (a monotonic time, in units of about a
    /// millisecond in the upper 40 bits), above this shard's last stamp and
    /// above the calling thread's last stamp. Unique within the shard.
    #[inline]
    pub(super) fn stamp(&self, now: u64) -> u64 {
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
    pub(super) fn touch(&self, e: &Entry<V>, now: u64) {
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
}

impl<V> TtlCache<V> {
    /// Takes a slot for a new entry, evicting least recently used entries
    /// while the cache is full. Call holding no shard lock. When every slot
    /// is held by another thread's insert in progress (nothing to evict), it
    /// yields until one is done: such an insert holds its slot only between
    /// two short critical sections.
    pub(super) fn reserve(&self) {
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
    pub(super) fn recount_after_fork(&self) {
        if self.counted.is_set() {
            return;
        }
        self.recount();
    }

    #[cold]
    fn recount(&self) {
        let _one = self.recounting.lock();
        if self.counted.is_set() {
            return;
        }
        // In shard order, as no other path holds two shard locks.
        let all: Vec<_> = self.shards.iter().map(|s| s.state.write()).collect();
        self.len
            .store(all.iter().map(|st| st.table.len()).sum(), Relaxed);
        self.counted.set();
    }

    /// Evicts the entry with the lowest stamp of all shards; false when
    /// there was none.
    pub(super) fn evict_one(&self) -> bool {
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
}

//! Single-flight `get_or_set`: while one caller computes a key, the other
//! callers of that key wait for its outcome; a write to the key while it
//! computes keeps the computed value out of the cache.

use super::shard::{FlightSlot, Outcome, Shard, ShardState};
use super::{Read, Reentrant, TtlCache};
use crate::sys::{Flight, Leading};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

impl<V> ShardState<V> {
    pub(super) fn invalidate_flight(&mut self, key: &str) {
        if let Some(slot) = self.flights.get_mut(key) {
            slot.invalidated = true;
        }
    }

    /// Whether `flight` is still the key's and its result may be stored.
    pub(super) fn flight_keeps(&self, key: &str, flight: &Arc<Flight<Outcome<V>>>) -> bool {
        matches!(self.flights.get(key),
            Some(slot) if Arc::ptr_eq(&slot.flight, flight) && !slot.invalidated)
    }

    /// Removes `flight` from the table; true when its result may be stored.
    pub(super) fn end_flight(&mut self, key: &str, flight: &Arc<Flight<Outcome<V>>>) -> bool {
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
            let guard = Leading::new(&*flight, Outcome::Abandoned, || {
                shard.state.write().end_flight(key, &flight);
            });
            let result = compute();
            guard.disarm();
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

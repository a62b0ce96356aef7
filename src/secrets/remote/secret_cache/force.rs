//! The forced fetch of a [`SecretCache`]: a caller's refresh, and a
//! caller's report that the version it holds failed it ("this value failed
//! me"), single-flight with the cache's gets and bounded per interval.

use super::{Answer, Mode, Reason, SecretCache, Versioned};
use crate::secrets::node::entry::Shareable;
use crate::secrets::node::Against;
use crate::sys::Flight;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a forced fetch does, as decided under the cache's lock.
enum Forcing<T> {
    /// Fetch, as the flight registered.
    Lead(Arc<Flight<Option<Answer<T>>>>),
    /// Wait for the fetch in flight.
    Join(Arc<Flight<Option<Answer<T>>>>),
    /// The value held answers a report of another version.
    Held(Answer<T>),
    /// Within the interval of the last forced fetch.
    Recent,
}

impl<T: Versioned + Shareable + Send + Sync + 'static> SecretCache<T> {
    /// The secret fetched again now, whatever its TTL says ("this value
    /// failed me"): single-flight with every other get, and at most once per
    /// `min_interval` (a storm of callers whose credential was refused sends
    /// one request; the others, and every call within the interval, get what
    /// the cache holds, fetching only if it holds nothing). `failed`: the
    /// version the caller reports failed it; when the value held is of
    /// another version already, that answers without a request, and when a
    /// get's or a refresh's fetch in flight (begun before the failure was
    /// known) answers with that version, the report's own fetch follows.
    pub fn force(&self, min_interval: Duration, failed: Option<&str>) -> Answer<T> {
        let mut joined = false;
        loop {
            match self.forcing(min_interval, failed) {
                Forcing::Lead(flight) => {
                    return self.lead(&flight, Mode::Force, Reason::forced(failed));
                }
                // A fetch in flight (the forced one, most likely) is waited
                // for.
                Forcing::Join(flight) => match flight.wait() {
                    Some(answer) => {
                        let held = answer.as_ref().ok().and_then(|v| v.found()?.version_id());
                        if joined || Against::of(failed, held) != Against::Failed {
                            return answer;
                        }
                        // Decided again, once: after another caller's
                        // forced fetch the interval answers with what it
                        // brought; after a get's, this report fetches.
                        joined = true;
                    }
                    None => return self.get(),
                },
                Forcing::Held(answer) => return answer,
                // Within the interval, nothing in flight: what is held
                // answers.
                Forcing::Recent => return self.get(),
            }
        }
    }

    /// What a forced fetch does, decided under one lock: the forcing caller
    /// registers its flight before any other caller can look, so those
    /// within the interval find it and wait for it.
    fn forcing(&self, min_interval: Duration, failed: Option<&str>) -> Forcing<T> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if let Some(good) = &state.good {
            let held = good.value.found().and_then(T::version_id);
            if Against::of(failed, held) == Against::Other {
                return Forcing::Held(Ok(Arc::clone(&good.value)));
            }
        }
        let recent = state
            .forced_at
            .is_some_and(|t| now.saturating_duration_since(t) < min_interval);
        match (&state.flight, recent) {
            (Some(flight), _) => Forcing::Join(Arc::clone(flight)),
            (None, false) => {
                state.forced_at = Some(now);
                let flight = Arc::new(Flight::new());
                state.flight = Some(Arc::clone(&flight));
                // A failure is answered as any fetch's (stale-on-error
                // within max_stale).
                Forcing::Lead(flight)
            }
            (None, true) => Forcing::Recent,
        }
    }
}

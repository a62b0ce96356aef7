//! Retries and the bound of a fetch: [`with_retries`] (backoff, a
//! server's `Retry-After`, a fleet's first fetch), the deadline of the
//! fetch running on a thread, and the jitter of a refresh.

use super::meter;
use super::{FetchError, RemoteSettings};
use std::time::{Duration, Instant};

/// Runs `attempt` until it succeeds, fails permanently, or `settings.retries`
/// retries are spent, sleeping a jittered, capped exponential backoff between
/// attempts (half the backoff fixed, half random). When the server asked for
/// a wait (`Retry-After`), that wait (plus a second: the header counts whole
/// seconds, rounded down) is kept instead, as long as the retry still starts
/// within the request timeout of the first attempt; a longer wait ends the
/// retries, and the error says how long the server asked for.
///
/// The whole fetch is bounded by [`RemoteSettings::fetch_bound`] (a nested
/// fetch, a login inside a get, shares the outer one's): each request,
/// each node of a cluster tried in turn, is given what is left of it, and
/// no retry starts past it.
///
/// In a fleet (the gate the fleet handed in with the node's place,
/// [`Gate`](super::gate::Gate)), the process's first fetch first waits for
/// the node's slot, then is tried until the fleet deadline instead.
pub fn with_retries<T>(
    settings: &RemoteSettings,
    mut attempt: impl FnMut() -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    // Admitted: the admission's first fetch, and the admission to ask
    // again between its attempts.
    let admitted = (settings.fleet.gate.admission())
        .and_then(|admission| Some((admission, admission.admit(settings)?)));
    let first = admitted.map(|(_, first)| first);
    let started = Instant::now();
    let _bound = FetchBound::set(first.map_or(started + settings.fetch_bound(), |f| f.deadline));
    let mut retry = 0;
    loop {
        match (attempt(), admitted) {
            (Err(f), _) if f.transient && !f.spent && time_left() == Some(Duration::ZERO) => {
                let note = match first {
                    Some(_) => format!(
                        "waited for its first secret as long as the fleet deadline of {:?} \
                         allows (fleet_deadline)",
                        settings.fleet.deadline
                    ),
                    None => format!("the fetch's bound of {:?} is spent", settings.fetch_bound()),
                };
                return Err(FetchError {
                    error: f.error.with_note(note),
                    spent: true,
                    ..f
                });
            }
            (Err(f), Some((admission, first))) if f.transient && !f.spent => {
                let wait =
                    admission.first_fetch_wait(settings, retry, f.retry_after, first.requeue);
                std::thread::sleep(wait.min(time_left().unwrap_or(wait)));
                retry += 1;
                meter::add_current(|c| c.retries += 1);
            }
            (Err(f), None) if f.transient && !f.spent && retry < settings.retries => {
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
                std::thread::sleep(wait.min(time_left().unwrap_or(wait)));
                retry += 1;
                meter::add_current(|c| c.retries += 1);
            }
            (outcome, admitted) => {
                if let (Some((admission, _)), true) = (admitted, outcome.is_ok()) {
                    admission.held();
                }
                return outcome;
            }
        }
    }
}

thread_local! {
    /// When the fetch this thread runs must have ended.
    static DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    /// When the work this thread runs must have ended, whatever waits
    /// inside it (an election included): a job's ending.
    static HARD: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The time left of this thread's hard bound ([`FetchBound::hard`]), if any.
pub(crate) fn hard_left() -> Option<Duration> {
    HARD.with(std::cell::Cell::get)
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// The time the fetch running on this thread has left (zero once spent);
/// `None` outside a fetch.
pub(crate) fn time_left() -> Option<Duration> {
    DEADLINE
        .with(std::cell::Cell::get)
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// Gives the fetch running on this thread at least `d` from now: after a
/// wait that had a deadline of its own (a metadata server's start), the
/// rest of the fetch is not left with nothing.
pub(crate) fn extend_bound(d: Duration) {
    DEADLINE.with(|deadline| {
        if let Some(at) = deadline.get() {
            deadline.set(Some(at.max(Instant::now() + d)));
        }
    });
}

/// The deadline of the fetch on this thread while it lives: the earlier of
/// the one set before (an outer fetch's) and its own; the one before comes
/// back when it is dropped.
pub(crate) struct FetchBound(Option<Instant>);

impl FetchBound {
    /// No fetch bound while it lives: a write waiting out a cluster's
    /// election has that deadline instead (`vault_election_timeout`).
    pub(crate) fn lifted() -> FetchBound {
        // A hard bound stays: it is the deadline of everything inside it.
        let hard = HARD.with(std::cell::Cell::get);
        FetchBound(DEADLINE.with(|d| d.replace(hard)))
    }

    /// A bound nothing inside lifts while it lives (a revocation at a job's
    /// ending: every request, every node, every election wait ends by
    /// `until`). [`time_left`] is bounded by it too.
    pub(crate) fn hard(until: Instant) -> (FetchBound, HardBound) {
        let before = HARD.with(|h| h.replace(Some(until)));
        (FetchBound::set(until), HardBound(before))
    }

    fn set(own: Instant) -> FetchBound {
        let before = DEADLINE.with(std::cell::Cell::get);
        DEADLINE.with(|d| d.set(Some(before.map_or(own, |b| b.min(own)))));
        FetchBound(before)
    }
}

/// The hard bound of [`FetchBound::hard`], restored when dropped.
pub(crate) struct HardBound(Option<Instant>);

impl Drop for HardBound {
    fn drop(&mut self) {
        HARD.with(|h| h.set(self.0));
    }
}

impl Drop for FetchBound {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.0));
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
    full / 2 + full.mul_f64(crate::sys::random_unit() / 2.0)
}

/// `ttl` shortened by up to 10% at random, so that processes started together
/// do not refresh together.
pub fn jittered(ttl: Duration) -> Duration {
    ttl.mul_f64(1.0 - crate::sys::random_unit() / 10.0)
}

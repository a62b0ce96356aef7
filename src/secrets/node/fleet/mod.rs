//! A fleet's start: the nodes of a job ask the secret store for their first
//! secret in turn, not all at once.
//!
//! - **Admission by rank**: a node whose scheduler says its rank ([`Place`])
//!   sends its first request (a login, a fetch) in its slot, `rank /
//!   fleet_capacity` seconds (plus a random part of one slot) into a period
//!   of N / capacity seconds of the wall clock ([`slot_wait`]), so a job of
//!   N nodes reaches the store at the store's pace within one period,
//!   however its processes are late to start; a process that wakes late
//!   for its slot (its node busy) goes once more, after the schedule's end
//!   or in its slot of the next period, whichever is first ([`woke_late`]),
//!   rather than in a later rank's. A node that knows the node
//!   count but not its rank takes a random slot of the period; one that
//!   knows its rank only, rank / capacity after its first need. A process
//!   no scheduler speaks of does not wait. The wait is not part of any
//!   request's timeout. The processes of a node compute the same slot; with
//!   the node cache on, the first fetches and the others read its entry.
//! - **The fleet deadline**: in a fleet, the first fetch of the process is
//!   tried again after every transient failure (throttling, a timeout, a
//!   node not answering) until `fleet_deadline` after the process first
//!   needed the store, each wait growing at random up to half a minute and
//!   never shorter than the server asked for (a slot later than the
//!   deadline still leaves one fetch's time after it). Once the process
//!   held a secret, the usual `retries` apply.
//!
//! What a node does when the server pushes back on any request is
//! [`pace`]'s.

pub(crate) mod pace;
pub(crate) mod place;

use crate::error::Error;
use crate::secrets::transport::gate::{Admission, FirstFetch, FleetSettings, Gate, Pacing};
use crate::secrets::transport::vars::Vars;
use crate::secrets::transport::RemoteSettings;
use crate::sys::Mutex;
use std::time::{Duration, Instant};

/// The longest wait between two attempts of a first fetch in a fleet.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

impl RemoteSettings {
    /// These settings with the node's place read from `vars`, and the
    /// fleet's gate when a scheduler places it.
    ///
    /// # Errors
    /// As [`place::read`].
    pub(crate) fn placed(&self, vars: &Vars) -> Result<RemoteSettings, Error> {
        let mut placed = self.clone();
        placed.fleet.place = place::read(vars)?;
        placed.fleet.gate = match placed.fleet.place {
            Some(_) => gate(),
            None => Gate::default(),
        };
        Ok(placed)
    }
}

/// The fleet as the transport calls it: this module's admission, and a
/// [`pace::Pace`] for each client.
struct Fleet;

static FLEET: Fleet = Fleet;

impl Admission for Fleet {
    fn admit(&self, settings: &RemoteSettings) -> Option<FirstFetch> {
        admit(settings)
    }

    fn first_fetch_wait(
        &self,
        settings: &RemoteSettings,
        retry: u32,
        asked: Option<Duration>,
        requeue: Option<(Instant, Duration)>,
    ) -> Duration {
        first_fetch_wait(settings, retry, asked, requeue)
    }

    fn held(&self) {
        held();
    }

    fn pace(&self) -> Box<dyn Pacing> {
        Box::new(pace::Pace::default())
    }
}

/// The gate the transport is handed with the node's place.
pub(crate) fn gate() -> Gate {
    Gate::of(&FLEET)
}

/// The process's start in its fleet.
struct Start {
    /// When it first needed the store.
    first_need: Option<Instant>,
    /// Its slot, once drawn.
    slot: Option<Instant>,
    /// The band after the job's schedule where a refused first fetch, or
    /// a process that woke too late for its slot, goes: its start and
    /// length.
    requeue: Option<(Instant, Duration)>,
    /// It woke too late for its slot once, and took a later one.
    deferred: bool,
    /// It went in its slot: later first fetches (one inside it, another
    /// thread's) do not wait.
    went: bool,
    /// It has held a secret: the fleet's rules no longer apply.
    held: bool,
}

/// The process's start; a forked child keeps its parent's (the node's slot
/// is the same, and a secret held is held).
static START: Mutex<Start> = Mutex::lazy(|| Start {
    first_need: None,
    slot: None,
    requeue: None,
    deferred: false,
    went: false,
    held: false,
});

/// How long from `unix_now` (seconds since the epoch) until a node's slot.
///
/// With the node count N known, the slots repeat every N / capacity
/// seconds of the wall clock (which the job's nodes share, to the
/// millisecond with NTP), rank r's at r / capacity into each period: the
/// first such time is the node's slot. Nodes that start seconds apart, or
/// whose processes reach the store late (thousands starting on few
/// cores), still go out in rank order at the store's pace, never two in a
/// slot; a node waits at most one period. With the rank alone, the slot is
/// rank / capacity after the first need (`unix_now`); with the count
/// alone, a random one of the period's.
fn slot_wait(settings: &FleetSettings, random: f64, unix_now: f64) -> Duration {
    let Some(place) = &settings.place else {
        return Duration::ZERO;
    };
    let capacity = f64::from(settings.capacity.max(1));
    // Within its slot a rank goes out a random quarter of a slot late.
    let wait = match (place.rank, period(settings)) {
        (Some(rank), None) => (f64::from(rank) + random / 4.0) / capacity,
        (rank, Some(period)) => {
            let period = period.as_secs_f64();
            let phase = match rank {
                Some(rank) => (f64::from(rank) + random / 4.0) / capacity,
                None => period * random,
            };
            (phase - unix_now.rem_euclid(period)).rem_euclid(period)
        }
        (None, None) => 0.0,
    };
    Duration::try_from_secs_f64(wait).unwrap_or_default()
}

/// N / capacity, when the node count N is known.
fn period(settings: &FleetSettings) -> Option<Duration> {
    let nodes = settings.place.as_ref()?.nodes?;
    Duration::try_from_secs_f64(f64::from(nodes) / f64::from(settings.capacity.max(1))).ok()
}

/// Seconds since the epoch, now.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Waits for this node's slot when the process has not held a secret yet
/// and a scheduler places it in a fleet; then the first fetch's deadline.
/// `None`: not in a fleet, or a secret was held: the usual retries apply.
fn admit(settings: &RemoteSettings) -> Option<FirstFetch> {
    settings.fleet.place.as_ref()?;
    loop {
        let (slot, first_fetch) = {
            let mut start = START.lock();
            if start.held {
                return None;
            }
            let first = *start.first_need.get_or_insert_with(Instant::now);
            if start.slot.is_none() {
                let wait = slot_wait(&settings.fleet, crate::sys::random_unit(), unix_now());
                start.slot = Some(Instant::now() + wait);
                // Refused ranks go again after the schedule, not into its
                // full seconds. It ends a period after the job's start (this
                // node's first need stands for it) and later by as much as
                // the nodes' starts are spread (the ranks that started past
                // their slot take it a period on), which a twentieth of the
                // period stands for; they go spread over another twentieth
                // (each at least a second).
                start.requeue = period(&settings.fleet).map(|period| {
                    let twentieth = (period / 20).max(Duration::from_secs(1));
                    (first + period + twentieth, twentieth)
                });
            }
            let at = start.slot.unwrap_or(first);
            // A slot past the deadline (more nodes than the capacity
            // serves in it) still has one fetch's time.
            let deadline = (first + settings.fleet.deadline).max(at + settings.fetch_bound());
            let first_fetch = FirstFetch {
                deadline,
                requeue: start.requeue,
            };
            if start.went {
                // The process went in its slot (this is a fetch inside
                // that one, a login, or another thread's): no wait.
                return Some(first_fetch);
            }
            (at, first_fetch)
        };
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
        let mut start = START.lock();
        if start.went || start.slot != Some(slot) {
            // Another thread went, or moved the slot.
            continue;
        }
        let late = woke_late(
            &settings.fleet,
            slot,
            Instant::now(),
            start.deferred,
            start.requeue,
            crate::sys::random_unit(),
        );
        if let Some(later) = late {
            start.slot = Some(later);
            start.deferred = true;
            continue;
        }
        start.went = true;
        return Some(first_fetch);
    }
}

/// How late past its slot a process may wake and still go in it.
///
/// Later, it would go in the slot of a later rank, which goes too: the
/// store's window counts one request more than the schedule gives it.
/// A whole stream 25 ms late puts at most 2.5% of the capacity into the
/// next second of the store's window (two and a half slots at the default
/// capacity).
const LATE: Duration = Duration::from_millis(25);

/// The slot of a process that woke at `now`, past `slot` by more than
/// [`LATE`] (its node busy: thousands of processes starting on few cores, a
/// stalled clock), once (`deferred`: it did so already): the earlier of its
/// slot of the next period and a point drawn (`random`) in the spread after
/// the job's schedule (`requeue`, where refused first fetches go too). A
/// rank early in the period goes seconds after the schedule's end rather
/// than a whole period after its slot; a late one keeps its own slot of the
/// next period, which no rank of this start uses. `None`: it goes now.
/// Without the node count there is no period to go back to: it goes.
fn woke_late(
    settings: &FleetSettings,
    slot: Instant,
    now: Instant,
    deferred: bool,
    requeue: Option<(Instant, Duration)>,
    random: f64,
) -> Option<Instant> {
    let period = period(settings)?;
    if deferred || now.saturating_duration_since(slot) <= LATE {
        return None;
    }
    let next = slot + period;
    Some(requeue.map_or(next, |(end, spread)| {
        next.min((end + spread.mul_f64(random)).max(now))
    }))
}

/// The process held a secret: its next fetches retry as usual.
fn held() {
    START.lock().held = true;
}

/// How long a process may wait for another fetching the same secret for it
/// (the node cache's lock): the time to its slot and its first fetch's
/// deadline in a fleet, else `fallback`.
pub(crate) fn wait_bound(settings: &RemoteSettings, fallback: Duration) -> Duration {
    if settings.fleet.place.is_none() {
        return fallback;
    }
    let start = START.lock();
    if start.held {
        return fallback;
    }
    let first = start.first_need.unwrap_or_else(Instant::now);
    let slot = start.slot.unwrap_or(first) + settings.fetch_bound();
    (first + settings.fleet.deadline)
        .max(slot)
        .saturating_duration_since(Instant::now())
        .max(fallback)
}

/// The wait before attempt `retry + 2` of a first fetch in a fleet: at
/// random up to a bound that doubles from the backoff base to half a
/// minute ("full jitter"), and never shorter than the server asked for
/// (with a random part of a second: a `Retry-After: 0` from a rate limiter
/// counting whole seconds is not an invitation to ask again at once). The
/// first retry of a node that knows the node count goes after the job's
/// schedule (`requeue`: its end and a spread): until then every second of
/// the store is some rank's, and a retry in one pushes that rank out.
fn first_fetch_wait(
    settings: &RemoteSettings,
    retry: u32,
    asked: Option<Duration>,
    requeue: Option<(Instant, Duration)>,
) -> Duration {
    if let (0, Some((end, spread))) = (retry, requeue) {
        let after = end.saturating_duration_since(Instant::now())
            + spread.mul_f64(crate::sys::random_unit());
        return after.max(first_fetch_wait(settings, retry, asked, None));
    }
    let bound = settings
        .backoff_base
        .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
        .min(LONGEST_WAIT);
    let own = bound.mul_f64(crate::sys::random_unit());
    match asked {
        Some(asked) => own.max(asked + Duration::from_secs_f64(crate::sys::random_unit())),
        None => own,
    }
}

/// Forgets the process's start (tests).
#[cfg(test)]
pub(crate) fn forget() {
    *START.lock() = Start {
        first_need: None,
        slot: None,
        requeue: None,
        deferred: false,
        went: false,
        held: false,
    };
}

#[cfg(test)]
mod tests;

//! The refresher: one thread per process that runs the library's background
//! work: the refreshes the remote secrets' caches schedule (refresh ahead: a
//! value past its soft deadline is served while it is fetched again here, so
//! no caller of a key that has a value waits for the network) and, while
//! someone listens for changes, the manager's watch of the sources.
//!
//! Started on first need. A forked child does not have its parent's thread:
//! the first request in a child starts the child's own (the fork generation
//! tells). The thread runs the jobs handed to it one at a time, each when
//! it is due; a job that panics is caught and the thread goes on.

use super::{spawn_thread, ForkFlag, Mutex};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Work for the refresher's thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// A job and when it is due.
type Timed = (Instant, Job);

/// The channel to this process's refresher (a parent's, in a forked child,
/// until [`RUNNING`] says otherwise: its thread is not here).
static REFRESHER: Mutex<Option<Sender<Timed>>> = Mutex::lazy(|| None);

/// Set in the fork generation whose refresher runs: lets [`prestart`] cost
/// one atomic load once it has.
static RUNNING: ForkFlag = ForkFlag::new();

/// Starts this process's refresher if it has none, so that the first
/// refresh asked for does not pay for a thread's creation in a caller's get
/// (about 100 us): called where a value that will be refreshed ahead is
/// served; once the refresher runs, one atomic load.
#[inline]
pub(crate) fn prestart() {
    if !RUNNING.is_set() {
        submit(Box::new(|| {}));
    }
}

/// Hands `job` to the refresher, to run now (after the jobs before it),
/// starting the thread when this process has none. Costs a lock and a
/// channel send (once per refresh asked, not per get). When no thread can
/// be started the job is dropped: a refresh ahead then does not happen (the
/// value is served until its TTL, and the get after that fetches, as
/// without refresh ahead).
pub(crate) fn submit(job: Job) {
    submit_at(Instant::now(), job);
}

/// Hands `job` to the refresher, to run once `delay` has passed.
pub(crate) fn submit_after(delay: Duration, job: Job) {
    let now = Instant::now();
    // A delay past what `Instant` holds: as far as it holds (never due).
    let due = now
        .checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now);
    submit_at(due, job);
}

fn submit_at(due: Instant, job: Job) {
    let mut refresher = REFRESHER.lock();
    if let (true, Some(sender)) = (RUNNING.is_set(), refresher.as_ref()) {
        match sender.send((due, job)) {
            Ok(()) => return,
            Err(returned) => return start(&mut refresher, returned.0),
        }
    }
    start(&mut refresher, (due, job));
}

fn start(slot: &mut Option<Sender<Timed>>, first: Timed) {
    let (sender, receiver) = channel::<Timed>();
    let spawned = spawn_thread("st-secrets-refresh", move || {
        // Jobs not due yet, in no order (a handful at most).
        let mut waiting: Vec<Timed> = Vec::new();
        loop {
            let now = Instant::now();
            let (due, later): (Vec<Timed>, Vec<Timed>) =
                waiting.drain(..).partition(|(at, _)| *at <= now);
            waiting = later;
            for (_, job) in due {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            let next = waiting.iter().map(|(at, _)| *at).min();
            let received = match next {
                Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(timed) => waiting.push(timed),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    if spawned.is_ok() && sender.send(first).is_ok() {
        *slot = Some(sender);
        RUNNING.set();
    } else {
        *slot = None;
        RUNNING.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresher_leaves_the_hosts_signals_to_the_hosts_threads() {
        // `st-secrets run` blocks SIGCHLD to wait for it: a refresher
        // started before that (by the first remote answer) must not take it.
        let (tell, told) = std::sync::mpsc::channel();
        submit(Box::new(move || {
            let _ = tell.send([libc::SIGCHLD, libc::SIGTERM].map(crate::sys::blocked_here));
        }));
        let blocked = told.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(blocked, [true, true]);
    }
}

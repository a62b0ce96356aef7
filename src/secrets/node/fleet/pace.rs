//! A client's pace with one server: after the server pushed back, the next
//! request waits. For now only in a fleet (a process a scheduler places):
//! elsewhere the retries of
//! [`with_retries`](crate::secrets::transport::retry::with_retries) alone
//! answer a push back, as before.
//!
//! A push back is an answer that says so (HTTP 429, 503, AWS's throttling
//! error codes), a request that timed out, or an answer slower than half
//! the request timeout. Each doubles the gap kept before the next request
//! (from 100 ms to half a minute), and the next request goes out a random
//! part of that gap later, or after the wait the server asked for
//! (`Retry-After`) with a random part of a second added (rate limiters
//! count whole seconds and round down). Each answer that is neither takes
//! 100 ms off the gap: multiplicative decrease, additive increase of the
//! request rate. An answer saying the server's rate limit has nothing left
//! (`X-Ratelimit-Remaining: 0`, as OpenBao's quotas send) holds the next
//! request until the limit resets (`X-Ratelimit-Reset`).
//!
//! With the node cache on, a push back one process met is written to a
//! file of the node cache's directory (one per server: the wall-clock time
//! until which requests wait, and the gap), which the node's other
//! processes read before their next request to that server: the node
//! slows down as one.

use crate::secrets::node::note::{unix_ms, NodeNote};
use crate::secrets::transport::gate::{Pacing, Signal};
use crate::sys::Mutex;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The gap after the first push back.
const FIRST_GAP: Duration = Duration::from_millis(100);
/// The longest gap.
const LONGEST_GAP: Duration = Duration::from_secs(30);
/// What an answer that is not a push back takes off the gap.
const STEP: Duration = Duration::from_millis(100);
/// The pace state.
#[derive(Default)]
struct State {
    gap: Duration,
    not_before: Option<Instant>,
    /// The note the node's processes share it through, if any.
    shared: Option<NodeNote>,
}

/// Writes the wait until `until` and `gap` for the node's others.
fn publish(note: &NodeNote, until: Instant, gap: Duration) {
    let left = until.saturating_duration_since(Instant::now());
    note.write(&json!({
        "until_ms": unix_ms(SystemTime::now() + left),
        "gap_ms": u64::try_from(gap.as_millis()).unwrap_or(u64::MAX),
    }));
}

/// What another process published since this one last looked: until when
/// to wait, and its gap.
fn adopt(note: &NodeNote) -> Option<(Instant, Duration)> {
    let doc = note.read_changed("pace", 4096)?;
    let wall = unix_ms(SystemTime::now());
    // A push back long past (an earlier job's) says nothing now.
    let until = doc["until_ms"]
        .as_u64()
        .filter(|&u| u.saturating_add(60_000) > wall)?;
    let left = Duration::from_millis(until.saturating_sub(wall)).min(LONGEST_GAP);
    let gap = Duration::from_millis(doc["gap_ms"].as_u64()?).min(LONGEST_GAP);
    Some((Instant::now() + left, gap))
}

/// One client's pace with one server (a forked child starts afresh).
pub(crate) struct Pace(Mutex<State>);

impl Default for Pace {
    fn default() -> Self {
        Pace(Mutex::with_fresh(State::default(), State::default))
    }
}

/// A random part of a second.
fn part_of_a_second() -> Duration {
    Duration::from_secs_f64(crate::sys::random_unit())
}

impl Pacing for Pace {
    fn share(&self, dir: &Path, server: &str) {
        self.0.lock().shared = Some(NodeNote::new(dir, "pace", "st-secrets pace 1", &[server]));
    }

    fn wait(&self) -> Duration {
        let mut s = self.0.lock();
        if let Some((until, gap)) = s.shared.as_ref().and_then(adopt) {
            s.gap = s.gap.max(gap);
            s.not_before = Some(s.not_before.map_or(until, |t| t.max(until)));
        }
        s.not_before.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }

    fn note(&self, signal: Signal) {
        let mut s = self.0.lock();
        let now = Instant::now();
        let until = match signal {
            Signal::Fine => {
                s.gap = s.gap.saturating_sub(STEP);
                return;
            }
            Signal::Spent(reset) => now + reset + part_of_a_second(),
            Signal::Pushed(asked) => {
                s.gap = (s.gap * 2).clamp(FIRST_GAP, LONGEST_GAP);
                let own = s.gap.mul_f64(0.5 + crate::sys::random_unit() / 2.0);
                now + asked.map_or(own, |a| own.max(a + part_of_a_second()))
            }
        };
        let until = s.not_before.map_or(until, |t| t.max(until));
        s.not_before = Some(until);
        let gap = s.gap;
        if let Some(note) = &s.shared {
            publish(note, until, gap);
        }
    }
}

impl Pace {
    /// The gap kept now (tests and statuses).
    #[cfg(test)]
    pub(crate) fn gap(&self) -> Duration {
        self.0.lock().gap
    }
}

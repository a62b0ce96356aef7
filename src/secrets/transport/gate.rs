//! A fleet's start as the transport sees it: its settings and the node's
//! place ([`FleetSettings`], [`Place`]), what an answer says of the
//! server's load ([`Signal`]), and the [`Gate`] through which the fleet
//! (`secrets::node::fleet`, which knows the node's slot and shares the pace
//! with the node's other processes) admits the first request and paces the
//! others. The fleet hands its gate in with the node's place
//! (`RemoteSettings::placed`); the transport calls it and imports nothing
//! of the fleet.

use super::RemoteSettings;
use std::path::Path;
use std::time::{Duration, Instant};

/// Default of `fleet_capacity`: node starts per second.
pub const DEFAULT_CAPACITY: u32 = 100;

/// Default of `fleet_deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

/// The fleet's start, as configured, and this node's place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    /// Node starts per second the secret store takes (`fleet_capacity`).
    pub capacity: u32,
    /// How long a rank may wait for its first secret (`fleet_deadline`).
    pub deadline: Duration,
    /// The node's place, read from the environment when a provider is
    /// built; `None`: no scheduler says (no admission, no fleet deadline).
    pub place: Option<Place>,
    /// What admits the node's first request and paces its requests, set
    /// with `place` by the fleet (`secrets::node::fleet`).
    pub(crate) gate: Gate,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            capacity: DEFAULT_CAPACITY,
            deadline: DEFAULT_DEADLINE,
            place: None,
            gate: Gate::default(),
        }
    }
}

impl FleetSettings {
    /// The node's place and what it means, for statuses; `None` outside a
    /// fleet.
    pub(crate) fn describe(&self) -> Option<String> {
        let place = self.place.as_ref()?;
        let node = match (place.rank, place.nodes) {
            (Some(r), Some(n)) => format!("node {r} of {n}"),
            (Some(r), None) => format!("node {r}"),
            (None, Some(n)) => format!("one of {n} nodes, its slot drawn at random"),
            (None, None) => "a node".to_owned(),
        };
        Some(format!(
            "{node} of its job ({}): its first request in its slot at {} nodes/s, its first \
             fetch tried for up to {} s",
            place.from,
            self.capacity,
            self.deadline.as_secs()
        ))
    }
}

/// A node's place in its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The node's rank, from 0; `None`: no scheduler says it.
    pub rank: Option<u32>,
    /// The job's node count; `None`: no scheduler says it.
    pub nodes: Option<u32>,
    /// The variables they were read from, for statuses
    /// (`"SLURM_NODEID, SLURM_NNODES"`).
    pub from: String,
}

/// What the first fetch in a fleet may still take: until when.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FirstFetch {
    /// The fleet deadline.
    pub deadline: Instant,
    /// The end of the job's schedule and the spread after it, where a
    /// refused first attempt goes again ([`first_fetch_wait`]).
    pub requeue: Option<(Instant, Duration)>,
}

/// What admits a fleet's first request and keeps the pace with a server.
pub(crate) trait Admission: Sync {
    /// Waits for the node's slot when the process has not held a secret
    /// yet; then the first fetch's deadline. `None`: the usual retries apply.
    fn admit(&self, settings: &RemoteSettings) -> Option<FirstFetch>;
    /// The wait before attempt `retry + 2` of a first fetch, the server
    /// having asked for `asked`, refused first fetches going again after
    /// `requeue`.
    fn first_fetch_wait(
        &self,
        settings: &RemoteSettings,
        retry: u32,
        asked: Option<Duration>,
        requeue: Option<(Instant, Duration)>,
    ) -> Duration;
    /// The process held a secret: its next fetches retry as usual.
    fn held(&self);
    /// A new pace with one server, for one client.
    fn pace(&self) -> Box<dyn Pacing>;
}

/// One client's pace with one server: how long the next request waits.
pub(crate) trait Pacing: Send + Sync {
    /// Shares the pace with the node's other processes through `dir` (the
    /// node cache's directory), for the server at `server`.
    fn share(&self, dir: &Path, server: &str);
    /// How long the next request should wait.
    fn wait(&self) -> Duration;
    /// Takes in what an exchange said.
    fn note(&self, signal: Signal);
}

/// The fleet's admission, handed in with the node's place; closed (no
/// admission, no pace) outside a fleet.
#[derive(Clone, Copy, Default)]
pub(crate) struct Gate(Option<&'static dyn Admission>);

impl Gate {
    /// The gate of `admission`.
    pub(crate) fn of(admission: &'static dyn Admission) -> Gate {
        Gate(Some(admission))
    }

    /// The admission handed in; `None` outside a fleet.
    pub(crate) fn admission(self) -> Option<&'static dyn Admission> {
        self.0
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Gate(fleet)"
        } else {
            "Gate(closed)"
        })
    }
}

/// Gates are alike when both admit or neither does (there is one fleet).
impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        self.0.is_some() == other.0.is_some()
    }
}

impl Eq for Gate {}

/// The longest wait a rate limit's reset may ask for.
const LONGEST_RESET: Duration = Duration::from_secs(60);

/// AWS's error codes of a request refused for its rate (`x-amzn-ErrorType`).
const AWS_THROTTLING: [&str; 7] = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// What an exchange said of the server's load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Signal {
    /// Answered in good time.
    Fine,
    /// Pushed back; with the wait it asked for, if it asked.
    Pushed(Option<Duration>),
    /// The rate limit has nothing left until this long from now.
    Spent(Duration),
}

impl Signal {
    /// What an answer of `status` with `header`s says, the server having
    /// asked to wait `asked` (`Retry-After`), answered after `took` with
    /// `timeout` as the request's bound.
    pub(crate) fn of<'h>(
        status: u16,
        header: impl Fn(&str) -> Option<&'h str>,
        asked: Option<Duration>,
        took: Duration,
        timeout: Duration,
    ) -> Signal {
        let aws_throttled = status == 400
            && header("x-amzn-errortype").is_some_and(|t| {
                let code = t.split(':').next().unwrap_or_default().trim();
                AWS_THROTTLING.contains(&code)
            });
        if status == 429 || status == 503 || aws_throttled {
            return Signal::Pushed(asked);
        }
        if took > timeout / 2 {
            return Signal::Pushed(None);
        }
        let remaining = header("x-ratelimit-remaining").map(str::trim);
        if remaining == Some("0") {
            let reset = header("x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::ZERO, Duration::from_secs);
            return Signal::Spent(reset.min(LONGEST_RESET));
        }
        Signal::Fine
    }
}

//! The nodes of a Vault/OpenBao cluster (`vault_urls`, or `BAO_ADDR` /
//! `VAULT_ADDR` holding a comma-separated list) and how a request finds one
//! that answers.
//!
//! - **Order.** A read goes first to the preferred node (the last one that
//!   answered: sticky), a write (login, renewal) to the node known to be
//!   active, else the preferred one; then to the others in the configured
//!   order, those that failed lately last.
//! - **Failover.** A refused or timed-out connection, a 503 (sealed,
//!   standby not ready), a 500 saying the node is not active or knows no
//!   active node, a 412 (the node has not applied the index sent), and a
//!   307/308 that cannot be followed pass the request to the next node.
//! - **Elections.** A write that no node takes is tried again, with
//!   jittered backoff, until the election deadline (`vault_election_timeout`,
//!   15 s, shortened by up to 10% at random per process); a read makes one
//!   round and leaves retries to the caller's budget (its cache serves the
//!   value held meanwhile).
//! - **Redirects.** A 307/308 is followed at most once per round, and only
//!   to a configured node, never from https to http.
//! - **Read-your-writes.** The highest `X-Vault-Index` any answer carried
//!   is sent with each read, with `X-Vault-Inconsistent:
//!   forward-active-node`: a standby behind it forwards the read to the
//!   active node, so no read returns older state than one this process has
//!   seen. For a while after a caller expects a change (`refresh`: another
//!   writer's version may not be on a standby yet), reads go to the active
//!   node first, and a 404 from a node not known to be active is asked
//!   again of the others before it counts as absent.
//! - **Roles** (`sys/health`: 200 active, 429 standby, 473 performance
//!   standby, 501 not initialised, 503 sealed) are learnt for the doctor
//!   and, after a failed round, to send writes to the new active node.

use super::wire::errors_summary;
use crate::error::Error;
use crate::secrets::node::note::NodeNote;
use crate::secrets::transport::http::{Address, Http, Response};
use crate::secrets::transport::retry::{backoff, jittered};
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::{FetchError, RemoteSettings};
use crate::sys::Mutex;
use index::Index;
pub use role::Role;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The default election deadline of writes.
pub const DEFAULT_ELECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a node that failed is tried after the others.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// After a write or an expected change, how long a 404 from a node not
/// known to be active is asked again of the others.
const CONSISTENCY_WINDOW: Duration = Duration::from_secs(10);

/// Role sweeps (`sys/health` of every node) after failed rounds are at
/// most this frequent.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct NodeState {
    role: Role,
    /// Tried after the others until then.
    failed_until: Option<Instant>,
}

/// One configured node.
pub struct Node {
    pub address: Address,
    http: Http,
    state: Mutex<NodeState>,
    requests: AtomicU64,
}

/// What one node did with a request.
enum Outcome {
    Answered(Response),
    /// Passed on to the next node, and why.
    Next(FetchError),
}

/// The nodes, and what is known of them; see the module documentation.
pub struct Cluster {
    pub nodes: Vec<Node>,
    preferred: AtomicUsize,
    answered: AtomicUsize,
    index: Mutex<Option<Index>>,
    consistent_until: Mutex<Option<Instant>>,
    swept_at: Mutex<Option<Instant>>,
    election: Duration,
    /// A node said it knows no active node since the last write looked.
    electing: AtomicBool,
    settings: RemoteSettings,
    /// Failovers, counted once in the meter's registry.
    counted: crate::secrets::transport::meter::Local,
    /// What the processes of this node share of the cluster, with the node
    /// cache on.
    shared: Option<NodeNote>,
}

/// No node has answered yet.
const NONE: usize = usize::MAX;

impl Cluster {
    /// Presents `cert` (a TLS client certificate) to every node from the
    /// next connection on.
    pub fn present(&self, cert: &Option<ureq::tls::ClientCert>) {
        for node in &self.nodes {
            node.http.present(cert.clone());
        }
    }

    /// The cluster of `addresses` (at least one), each with its own
    /// connections from `http`; what it learns shared with the node's
    /// other processes through `node_dir` (the node cache's directory).
    pub fn new(
        addresses: Vec<Address>,
        http: impl Fn(&Address) -> Result<Http, Error>,
        settings: &RemoteSettings,
        election: Duration,
        node_dir: Option<&Path>,
    ) -> Result<Cluster, Error> {
        let shared = node_dir
            .filter(|_| addresses.len() > 1)
            .map(|dir| shared::view(dir, &addresses));
        let nodes = addresses
            .into_iter()
            .map(|address| {
                let http = http(&address)?;
                if let Some(dir) = node_dir {
                    http.share_pace(dir, &address.shown);
                }
                Ok(Node {
                    http,
                    address,
                    state: Mutex::new(NodeState::default()),
                    requests: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Cluster {
            nodes,
            preferred: AtomicUsize::new(0),
            answered: AtomicUsize::new(NONE),
            index: Mutex::new(None),
            consistent_until: Mutex::new(None),
            swept_at: Mutex::new(None),
            election,
            electing: AtomicBool::new(false),
            settings: settings.clone(),
            counted: crate::secrets::transport::meter::Local::new("vault"),
            shared,
        })
    }

    /// The addresses, for messages: one, or `a, b, c`.
    pub fn shown(&self) -> String {
        let all: Vec<String> = self
            .nodes
            .iter()
            .map(|n| redact_url(&n.address.shown))
            .collect();
        all.join(", ")
    }

    /// The address for statuses; for several nodes, each with its role,
    /// and which answered last.
    pub fn describe(&self) -> String {
        if self.nodes.len() == 1 {
            return redact_url(&self.nodes[0].address.shown);
        }
        let report = self.report();
        let each: Vec<String> = report["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                format!(
                    "{} ({}, {} requests{})",
                    n["url"].as_str().unwrap_or_default(),
                    n["role"].as_str().unwrap_or_default(),
                    n["requests"],
                    if n["answered_last"] == true {
                        ", answered last"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        format!(
            "the cluster of {} nodes {} ({} failovers)",
            self.nodes.len(),
            each.join(", "),
            report["failovers"]
        )
    }

    /// A caller expects a newer value than the one held (a refresh): for a
    /// while, a 404 is confirmed with the other nodes.
    pub fn expect_change(&self) {
        *self.consistent_until.lock() = Some(Instant::now() + CONSISTENCY_WINDOW);
    }

    fn in_window(&self) -> bool {
        self.consistent_until
            .lock()
            .is_some_and(|t| Instant::now() < t)
    }

    /// Sends `method path_and_query` (`/v1/...`) to the cluster as the
    /// module documentation says; `wait`: wait out an election (a write).
    pub fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        wait: bool,
    ) -> Result<Response, FetchError> {
        let write = method != "GET";
        // An election is waited out, up to a hard bound (a job's ending).
        let deadline = wait.then(|| {
            let election = Instant::now() + jittered(self.election);
            crate::secrets::transport::retry::hard_left()
                .map_or(election, |left| election.min(Instant::now() + left))
        });
        let _election = wait.then(crate::secrets::transport::retry::FetchBound::lifted);
        let mut round = 0;
        loop {
            let failure = match self.round(method, path_and_query, headers, body, write) {
                Ok(r) => return Ok(r),
                Err(f) => f,
            };
            // One node that does not answer is down, not electing (unless
            // it says it knows no active node): its failure is the caller's
            // at once, as before clusters.
            let electing = self.nodes.len() > 1 || self.electing.swap(false, Ordering::Relaxed);
            let Some(deadline) = deadline.filter(|_| failure.transient && electing) else {
                return Err(failure);
            };
            // An election: find the new active node, wait a little, again.
            self.sweep_roles();
            let wait = backoff(&self.settings, round).min(Duration::from_secs(1));
            if Instant::now() + wait >= deadline {
                return Err(FetchError {
                    error: failure.error.with_note(format!(
                        "no node took the request within the election deadline of {:?}",
                        self.election
                    )),
                    spent: true,
                    ..failure
                });
            }
            std::thread::sleep(wait);
            round += 1;
        }
    }

    /// The nodes in the order a request tries them.
    fn order(&self, write: bool) -> Vec<usize> {
        self.adopt();
        let now = Instant::now();
        let n = self.nodes.len();
        // A write, and a read expecting a change (after a refresh: another
        // writer's new version may not be on a standby yet), go to the
        // active node first; its role learnt now if none is known.
        let to_active = write || self.in_window();
        if to_active && n > 1 && self.active().is_none() {
            self.sweep_roles();
        }
        let first = to_active
            .then(|| self.active())
            .flatten()
            .unwrap_or_else(|| self.preferred.load(Ordering::Relaxed))
            .min(n - 1);
        let mut order: Vec<usize> = (0..n).map(|i| (first + i) % n).collect();
        // Those that failed lately go last (a stable sort keeps the order).
        order.sort_by_key(|&i| {
            self.nodes[i]
                .state
                .lock()
                .failed_until
                .is_some_and(|t| now < t)
        });
        order
    }

    /// The node known to be active, if any.
    fn active(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|node| node.state.lock().role == Role::Active)
    }

    /// One round: each node in order until one answers.
    fn round(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        write: bool,
    ) -> Result<Response, FetchError> {
        let order = self.order(write);
        let mut failures: Vec<(usize, FetchError)> = Vec::new();
        let mut redirected = false;
        let confirm_absence = !write && self.in_window();
        let mut absent: Option<Response> = None;
        for (k, &asked) in order.iter().enumerate() {
            // Another node is not another fetch: none is tried once the
            // fetch's bound is spent.
            if k > 0 && crate::secrets::transport::retry::time_left() == Some(Duration::ZERO) {
                break;
            }
            // The node whose answer this is: `asked`, or the one it
            // redirected to.
            let mut i = asked;
            let outcome = match self.one(i, method, path, headers, body, write) {
                Ok(Outcome::Answered(r)) if r.status == 307 || r.status == 308 => {
                    self.set_role(i, Role::Standby);
                    match (redirected, self.redirect_target(i, &r)) {
                        (false, Ok(j)) if j != i => {
                            redirected = true;
                            i = j;
                            match self.one(j, method, path, headers, body, write) {
                                Ok(Outcome::Answered(r2)) if !matches!(r2.status, 307 | 308) => {
                                    Ok(Outcome::Answered(r2))
                                }
                                Ok(Outcome::Answered(r2)) => {
                                    Ok(Outcome::Next(self.redirect_error(
                                        j,
                                        &r2,
                                        "a second redirect is not followed",
                                    )))
                                }
                                other => other,
                            }
                        }
                        (true, _) => Ok(Outcome::Next(self.redirect_error(
                            i,
                            &r,
                            "one redirect per request is followed",
                        ))),
                        (_, Err(why)) => Ok(Outcome::Next(self.redirect_error(i, &r, why))),
                        (false, Ok(_)) => Ok(Outcome::Next(self.redirect_error(
                            i,
                            &r,
                            "it names the node itself",
                        ))),
                    }
                }
                other => other,
            };
            match outcome {
                Ok(Outcome::Answered(r)) => {
                    let from = self.answering(i);
                    if r.status == 404
                        && confirm_absence
                        && from != Role::Active
                        && k + 1 < order.len()
                    {
                        absent = Some(r);
                        continue;
                    }
                    self.chose(i, !failures.is_empty());
                    return Ok(r);
                }
                Ok(Outcome::Next(f)) | Err(f) => failures.push((i, f)),
            }
        }
        if let Some(r) = absent {
            return Ok(r);
        }
        Err(self.no_node(failures))
    }

    /// Sends the request to node `i` and sorts its answer.
    fn one(
        &self,
        i: usize,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        write: bool,
    ) -> Result<Outcome, FetchError> {
        let node = &self.nodes[i];
        let url = format!("{}{path}", node.address.base());
        let index = (!write)
            .then(|| self.index.lock().as_ref().map(|x| x.raw.clone()))
            .flatten();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(index) = &index {
            all.push(("x-vault-index", index));
            all.push(("x-vault-inconsistent", "forward-active-node"));
        }
        let r = match self.exchange(i, method, &url, &all, body) {
            Ok(r) => r,
            Err(f) if f.transient => return Ok(Outcome::Next(f)),
            Err(f) => return Err(f),
        };
        if let Some(seen) = r.header("x-vault-index").map(Index::parse) {
            let mut held = self.index.lock();
            if held.as_ref().is_none_or(|h| seen.newer_than(h)) {
                *held = Some(seen);
            }
        }
        let summary = errors_summary(&r);
        let next = |role: Role, what: &str| {
            self.failed(i, role);
            Ok(Outcome::Next(
                FetchError::transient(Error::ProviderUnavailable(format!(
                    "Vault at {}: {what} (HTTP {}){summary}",
                    redact_url(&node.address.shown),
                    r.status
                )))
                .retry_after(r.retry_after()),
            ))
        };
        match r.status {
            503 => next(Role::Unavailable, "sealed or not ready"),
            501 => next(Role::Unavailable, "not initialised"),
            500 if not_active(&summary) => {
                self.electing.store(true, Ordering::Relaxed);
                next(Role::Standby, "no active node known to it (an election?)")
            }
            412 => next(Role::Standby, "it has not yet applied the last index seen"),
            // A KV mount just made v2 answers 400 on every node until its
            // data is upgraded (on standbys: "Waiting for the primary to
            // upgrade..."): a moment, not a refusal.
            400 if kv_upgrading(&summary) => {
                next(Role::Unknown, "its KV mount is being upgraded to v2")
            }
            // OpenBao's answer for an index it has not applied, when it
            // does not forward: a 429 with no error text.
            429 if index.is_some() && summary.is_empty() => {
                next(Role::Standby, "it has not yet applied the last index seen")
            }
            // A stale index (a cluster restored or replaced): forgotten,
            // and the request sent again without it.
            400 if index.is_some() && summary.contains("X-Vault-Index") => {
                *self.index.lock() = None;
                self.one(i, method, path, headers, body, write)
            }
            _ => Ok(Outcome::Answered(r)),
        }
    }

    /// The configured node a redirect names, or why it is not followed.
    fn redirect_target(&self, from: usize, r: &Response) -> Result<usize, &'static str> {
        let location = r.header("location").ok_or("it names no Location")?;
        let target = origin(location).ok_or("its Location is not an absolute http(s) URL")?;
        let j = self
            .nodes
            .iter()
            .position(|n| origin(&n.address.shown).as_deref() == Some(target.as_str()))
            .ok_or("it names an address that is not configured (list every node in vault_urls)")?;
        let scheme = |s: &str| {
            s.split("://")
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        if scheme(&self.nodes[from].address.shown) == "https" && scheme(location) == "http" {
            return Err("it goes from https to http");
        }
        Ok(j)
    }

    fn redirect_error(&self, i: usize, r: &Response, why: &str) -> FetchError {
        let to = r.header("location").map(redact_url).unwrap_or_default();
        self.failed(i, Role::Standby);
        FetchError::transient(Error::Remote(format!(
            "{}: redirected (HTTP {}) to {to}, not followed: {why}",
            redact_url(&self.nodes[i].address.shown),
            r.status
        )))
    }

    /// Node `i` answered: it no longer counts as failed; its role.
    fn answering(&self, i: usize) -> Role {
        let mut s = self.nodes[i].state.lock();
        s.failed_until = None;
        if matches!(s.role, Role::Down | Role::Unavailable) {
            s.role = Role::Unknown;
        }
        s.role
    }

    /// Node `i` answered (after others failed: a failover): it is
    /// preferred from now on.
    fn chose(&self, i: usize, failed_over: bool) {
        self.preferred.store(i, Ordering::Relaxed);
        self.answered.store(i, Ordering::Relaxed);
        if failed_over {
            self.counted.failover();
            self.publish();
        }
    }

    /// Writes what this process learnt for the node's others.
    fn publish(&self) {
        let Some(note) = &self.shared else {
            return;
        };
        let now = Instant::now();
        let failed = (self.nodes.iter().enumerate())
            .filter_map(|(i, n)| {
                Some((i, n.state.lock().failed_until?.checked_duration_since(now)?))
            })
            .collect();
        let preferred = Some(self.preferred.load(Ordering::Relaxed));
        shared::publish(note, &shared::Learnt { preferred, failed });
    }

    /// Takes in what another process of the node published, if it changed
    /// since it was last seen.
    fn adopt(&self) {
        let Some(learnt) = self
            .shared
            .as_ref()
            .and_then(|note| shared::adopt(note, self.nodes.len(), DOWN_FOR))
        else {
            return;
        };
        if let Some(p) = learnt.preferred {
            self.preferred.store(p, Ordering::Relaxed);
        }
        let now = Instant::now();
        for (i, left) in learnt.failed {
            self.nodes[i].state.lock().failed_until = Some(now + left);
        }
    }

    fn failed(&self, i: usize, role: Role) {
        let mut s = self.nodes[i].state.lock();
        s.role = role;
        s.failed_until = Some(Instant::now() + DOWN_FOR);
    }

    fn set_role(&self, i: usize, role: Role) {
        self.nodes[i].state.lock().role = role;
    }

    /// The error when no node answered: each node's reason.
    fn no_node(&self, failures: Vec<(usize, FetchError)>) -> FetchError {
        if failures.len() == 1 {
            return failures.into_iter().next().map(|(_, f)| f).expect("one");
        }
        let transient = failures.iter().all(|(_, f)| f.transient);
        let retry_after = failures.iter().filter_map(|(_, f)| f.retry_after).min();
        let reasons: Vec<String> = failures
            .iter()
            .map(|(_, f)| f.error.message().to_owned())
            .collect();
        let error = Error::ProviderUnavailable(format!(
            "Vault: no node of the cluster answered ({})",
            reasons.join("; ")
        ));
        FetchError {
            error,
            transient,
            retry_after,
            spent: false,
        }
    }

    /// Every node's role from `sys/health` (asked in the root namespace),
    /// at most once per [`SWEEP_EVERY`].
    fn sweep_roles(&self) {
        {
            let mut at = self.swept_at.lock();
            if at.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        for i in 0..self.nodes.len() {
            let _ = self.health(i);
        }
    }

    /// Node `i`'s `sys/health` answer (its role is learnt from it).
    pub fn health(&self, i: usize) -> Result<Response, FetchError> {
        let url = format!("{}/v1/sys/health", self.nodes[i].address.base());
        let r = self.exchange(i, "GET", &url, &[("x-vault-request", "true")], b"")?;
        if r.status != 404 {
            self.set_role(i, Role::from_health(r.status));
        }
        Ok(r)
    }

    /// One exchange with node `i`, counted; a node that does not answer
    /// (a transient failure) is marked down.
    fn exchange(
        &self,
        i: usize,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let node = &self.nodes[i];
        node.requests.fetch_add(1, Ordering::Relaxed);
        node.http
            .send("Vault", method, url, headers, body)
            .inspect_err(|f| {
                if f.transient {
                    self.failed(i, Role::Down);
                }
            })
    }

    /// The nodes for statuses and the doctor: address, role, requests, and
    /// which answered last; failovers so far.
    pub fn report(&self) -> Value {
        let answered = self.answered.load(Ordering::Relaxed);
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({
                    "url": redact_url(&n.address.shown),
                    "role": n.state.lock().role.name(),
                    "requests": n.requests.load(Ordering::Relaxed),
                    "answered_last": i == answered,
                })
            })
            .collect();
        json!({ "nodes": nodes, "failovers": self.counted.failovers() })
    }
}

/// Whether a 400's errors say the KV mount is being upgraded to v2.
fn kv_upgrading(summary: &str) -> bool {
    summary.contains("from non-versioned to versioned data")
}

/// Whether a 500's errors say the node is not active and knows no active
/// node (an election under way).
fn not_active(summary: &str) -> bool {
    let s = summary.to_ascii_lowercase();
    s.contains("local node not active") || s.contains("active cluster node not found")
}

/// `scheme://host:port` of an absolute http(s) URL, lower-cased, with the
/// default port made explicit.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?.to_ascii_lowercase();
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(':') {
        Some(p) => !host_port[p..].contains(']'),
        None => false,
    };
    Some(if has_port {
        format!("{scheme}://{host_port}")
    } else {
        format!("{scheme}://{host_port}:{default}")
    })
}

mod index;
mod role;
mod shared;

#[cfg(test)]
mod tests;

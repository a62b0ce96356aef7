//! The remote providers' counters, per provider and per process: requests
//! by operation, method and outcome with their network time (a histogram,
//! as OpenTelemetry's `http.client.request.duration`), retries, failovers,
//! stale values served, refreshes ahead, logins, renewals, leases issued,
//! renewed and revoked. Never a key name, a path or a value hash: an
//! operation is one of a fixed set of names (`GetSecretValue`,
//! `DescribeSecret`, `kv read`, `login`, ...).
//!
//! Nothing here is on a cached get's path: only requests and what follows
//! one are counted. A request is counted under the provider whose work the
//! thread is doing ([`scope`]). A forked child starts from zero.
//!
//! With `SIMPLETUNER_METRICS_DIR` (set by `st-secrets run --metrics`), each
//! process writes its counters to `<dir>/<pid>.json` after a request (at
//! most once a second) and when a manager is dropped; `run` adds them up.

mod counts;
mod export;

pub use counts::{
    add, add_current, flush, from_json, merge, request, scope, snapshot, to_json, Counts, Local,
    Scope, Tally, BUCKETS, METRICS_DIR,
};
pub use export::{gather, openmetrics, write_textfile};

#[cfg(test)]
mod tests;

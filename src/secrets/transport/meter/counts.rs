//! The counters themselves: each provider's, this process's, and the
//! requests counted under the provider whose work the thread is doing.

use crate::sys::{ForkFlag, Mutex};
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The variable naming the directory each process writes its counters to.
pub const METRICS_DIR: &str = "SIMPLETUNER_METRICS_DIR";

/// The histogram's bucket bounds in seconds: OpenTelemetry's advice for
/// `http.client.request.duration`.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Requests of one operation, method and outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// How many.
    pub count: u64,
    /// Their network time, in seconds.
    pub seconds: f64,
    /// How many took at most each of [`BUCKETS`] (cumulative).
    pub buckets: [u64; BUCKETS.len()],
}

/// One provider's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// By (operation, HTTP method, outcome: the status code, or the error
    /// type of a request that got no answer: `timeout`, `network`, `tls`).
    pub requests: BTreeMap<(String, String, String), Tally>,
    /// Further attempts after a transient failure.
    pub retries: u64,
    /// Requests a cluster's node answered after another failed.
    pub failovers: u64,
    /// Values served past their TTL while the service failed.
    pub stale_served: u64,
    /// Background refreshes run.
    pub refreshes_ahead: u64,
    /// Logins answered.
    pub logins: u64,
    /// Token renewals answered.
    pub renewals: u64,
    /// Leased secrets issued.
    pub leases_issued: u64,
    /// Leases renewed.
    pub leases_renewed: u64,
    /// Leases revoked (or found gone).
    pub leases_revoked: u64,
    /// Login tokens revoked (or found gone).
    pub tokens_revoked: u64,
}

/// The process's counters, by provider.
#[derive(Default)]
struct Registry {
    counts: BTreeMap<&'static str, Counts>,
    /// The live instances' own counters, added to `counts` when read.
    locals: Vec<(&'static str, Weak<LocalCounts>)>,
    /// When the counters were last written to the metrics directory.
    written: Option<Instant>,
}

/// Counters one provider instance shows in its own status (a session's
/// logins, a cluster's failovers), kept by the registry so that each event
/// is counted once: the process's totals add up the live instances' and,
/// when an instance is dropped, fold its counts in. A forked child counts
/// from zero, as the registry does.
pub struct Local {
    provider: &'static str,
    counts: Arc<LocalCounts>,
    /// Registered in this process's generation (a child registers anew).
    registered: ForkFlag,
}

/// A [`Local`]'s counters.
#[derive(Default)]
struct LocalCounts {
    logins: AtomicU64,
    /// Logins that got no answer.
    failed_logins: AtomicU64,
    /// The slowest login's wait, in microseconds.
    slowest_login_us: AtomicU64,
    failovers: AtomicU64,
}

impl LocalCounts {
    /// Adds what the registry counts of these to `c`.
    fn add_to(&self, c: &mut Counts) {
        c.logins += self.logins.load(Relaxed);
        c.failovers += self.failovers.load(Relaxed);
    }
}

impl Local {
    /// The counters of an instance of `provider`.
    pub fn new(provider: &'static str) -> Local {
        Local {
            provider,
            counts: Arc::new(LocalCounts::default()),
            registered: ForkFlag::new(),
        }
    }

    /// The counters, registered in this process (zeroed first in a child
    /// that inherited its parent's).
    fn here(&self) -> &LocalCounts {
        if self.registered.set() {
            let c = &self.counts;
            for n in [
                &c.logins,
                &c.failed_logins,
                &c.slowest_login_us,
                &c.failovers,
            ] {
                n.store(0, Relaxed);
            }
            let mut r = registry().lock();
            r.locals.retain(|(_, w)| w.strong_count() > 0);
            r.locals.push((self.provider, Arc::downgrade(c)));
        }
        &self.counts
    }

    /// A login that waited `waited`, answered or not.
    pub fn login(&self, waited: Duration, answered: bool) {
        let c = self.here();
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        c.slowest_login_us.fetch_max(us, Relaxed);
        match answered {
            true => c.logins.fetch_add(1, Relaxed),
            false => c.failed_logins.fetch_add(1, Relaxed),
        };
    }

    /// A request answered by another node after one failed.
    pub fn failover(&self) {
        self.here().failovers.fetch_add(1, Relaxed);
    }

    /// Logins answered, those that got no answer, and the slowest wait.
    pub fn logins(&self) -> (u64, u64, Duration) {
        let c = self.here();
        (
            c.logins.load(Relaxed),
            c.failed_logins.load(Relaxed),
            Duration::from_micros(c.slowest_login_us.load(Relaxed)),
        )
    }

    /// Failovers so far.
    pub fn failovers(&self) -> u64 {
        self.here().failovers.load(Relaxed)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if !self.registered.is_set() {
            return;
        }
        let mut r = registry().lock();
        let ours = Arc::downgrade(&self.counts);
        r.locals.retain(|(_, w)| !w.ptr_eq(&ours));
        self.counts
            .add_to(r.counts.entry(self.provider).or_default());
    }
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(Registry::default()).after_fork(|r| *r = Registry::default()))
}

thread_local! {
    /// The provider whose work this thread is doing ("": none).
    static CURRENT: Cell<&'static str> = const { Cell::new("") };
}

/// While the guard lives, this thread's requests count for `provider`.
pub struct Scope(&'static str);

/// Counts this thread's requests for `provider` until the guard drops.
pub fn scope(provider: &'static str) -> Scope {
    Scope(CURRENT.with(|c| c.replace(provider)))
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Adds to `provider`'s counters.
pub fn add(provider: &'static str, f: impl FnOnce(&mut Counts)) {
    if provider.is_empty() {
        return;
    }
    f(registry().lock().counts.entry(provider).or_default());
}

/// Adds to the counters of the provider this thread works for, if any.
pub fn add_current(f: impl FnOnce(&mut Counts)) {
    add(CURRENT.with(Cell::get), f);
}

/// A request (`what` the caller's name for it, to `url`) that took
/// `elapsed` and ended with `outcome`, counted for the provider this thread
/// works for; then the counters are written out if they are due.
pub fn request(what: &str, method: &str, url: &str, outcome: &str, elapsed: Duration) {
    let provider = CURRENT.with(Cell::get);
    if provider.is_empty() {
        return;
    }
    let key = (
        operation(what, method, url),
        method.to_owned(),
        outcome.to_owned(),
    );
    let due = {
        let mut r = registry().lock();
        let t = r
            .counts
            .entry(provider)
            .or_default()
            .requests
            .entry(key)
            .or_default();
        let secs = elapsed.as_secs_f64();
        t.count += 1;
        t.seconds += secs;
        for (b, bound) in t.buckets.iter_mut().zip(BUCKETS) {
            *b += u64::from(secs <= bound);
        }
        let due = r
            .written
            .is_none_or(|w| w.elapsed() >= Duration::from_secs(1));
        if due {
            r.written = Some(Instant::now());
        }
        due
    };
    if due {
        flush();
    }
}

/// The operation of a request: the AWS action as named by its caller; for
/// Vault, one of a fixed set of names read from the path (never the path:
/// it names secrets).
fn operation(what: &str, method: &str, url: &str) -> String {
    if what != "Vault" {
        return what.to_owned();
    }
    let path = url.split("/v1/").nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let name = match path {
        "sys/health" => "health",
        "auth/token/renew-self" => "token renew",
        "auth/token/revoke-self" => "token revoke",
        "auth/token/lookup-self" => "token lookup",
        "sys/leases/renew" => "lease renew",
        "sys/leases/revoke" => "lease revoke",
        p if p.starts_with("auth/") && p.ends_with("/login") => "login",
        p if p.starts_with("auth/") && p.contains("/login/") => "login",
        p if p.starts_with("sys/internal/ui/mounts") => "mounts",
        p if p.starts_with("identity/oidc/token/") => "identity token",
        p if p.contains("/metadata/") => "kv metadata",
        p if p.contains("/data/") => "kv read",
        _ if method == "GET" => "read",
        _ => "write",
    };
    name.to_owned()
}

/// The process's counters now, by provider.
pub fn snapshot() -> BTreeMap<String, Counts> {
    let r = registry().lock();
    let mut out: BTreeMap<String, Counts> = r
        .counts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    for (provider, local) in &r.locals {
        if let Some(local) = local.upgrade() {
            local.add_to(out.entry((*provider).to_owned()).or_default());
        }
    }
    out
}

/// The scalar counters of [`Counts`], by their JSON and metric names.
pub(super) fn scalars(c: &Counts) -> [(&'static str, u64); 10] {
    [
        ("retries", c.retries),
        ("failovers", c.failovers),
        ("stale_served", c.stale_served),
        ("refreshes_ahead", c.refreshes_ahead),
        ("logins", c.logins),
        ("renewals", c.renewals),
        ("leases_issued", c.leases_issued),
        ("leases_renewed", c.leases_renewed),
        ("leases_revoked", c.leases_revoked),
        ("tokens_revoked", c.tokens_revoked),
    ]
}

/// [`scalars`], to set or add to (in the same order).
pub(super) fn scalars_mut(c: &mut Counts) -> [(&'static str, &mut u64); 10] {
    [
        ("retries", &mut c.retries),
        ("failovers", &mut c.failovers),
        ("stale_served", &mut c.stale_served),
        ("refreshes_ahead", &mut c.refreshes_ahead),
        ("logins", &mut c.logins),
        ("renewals", &mut c.renewals),
        ("leases_issued", &mut c.leases_issued),
        ("leases_renewed", &mut c.leases_renewed),
        ("leases_revoked", &mut c.leases_revoked),
        ("tokens_revoked", &mut c.tokens_revoked),
    ]
}

/// `counts` as JSON: `{"<provider>": {"requests": [{"operation",
/// "method", "outcome", "count", "seconds", "buckets"}], "retries", ...}}`.
pub fn to_json(counts: &BTreeMap<String, Counts>) -> Value {
    let mut out = Map::new();
    for (provider, c) in counts {
        let requests: Vec<Value> = c
            .requests
            .iter()
            .map(|((op, method, outcome), t)| {
                json!({"operation": op, "method": method, "outcome": outcome,
                    "count": t.count, "seconds": t.seconds, "buckets": t.buckets})
            })
            .collect();
        let mut one = Map::new();
        one.insert("requests".into(), Value::Array(requests));
        for (name, n) in scalars(c) {
            one.insert(name.into(), n.into());
        }
        out.insert(provider.clone(), Value::Object(one));
    }
    Value::Object(out)
}

/// Counters read back from [`to_json`]'s form (what cannot be read is 0).
pub fn from_json(v: &Value) -> BTreeMap<String, Counts> {
    let mut out = BTreeMap::new();
    let Some(providers) = v.as_object() else {
        return out;
    };
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    for (provider, p) in providers {
        let mut c = Counts::default();
        for r in p["requests"].as_array().into_iter().flatten() {
            let key =
                ["operation", "method", "outcome"].map(|f| r[f].as_str().unwrap_or("").to_owned());
            let mut t = Tally {
                count: n(&r["count"]),
                seconds: r["seconds"].as_f64().unwrap_or(0.0),
                ..Tally::default()
            };
            for (b, v) in t
                .buckets
                .iter_mut()
                .zip(r["buckets"].as_array().into_iter().flatten())
            {
                *b = n(v);
            }
            c.requests.insert(key.into(), t);
        }
        for (name, value) in scalars_mut(&mut c) {
            *value = n(&p[name]);
        }
        out.insert(provider.clone(), c);
    }
    out
}

/// Adds `from` into `into`.
pub fn merge(into: &mut BTreeMap<String, Counts>, from: BTreeMap<String, Counts>) {
    for (provider, mut c) in from {
        let to = into.entry(provider).or_default();
        for (key, t) in std::mem::take(&mut c.requests) {
            let sum = to.requests.entry(key).or_default();
            sum.count += t.count;
            sum.seconds += t.seconds;
            for (a, b) in sum.buckets.iter_mut().zip(t.buckets) {
                *a += b;
            }
        }
        for ((_, sum), (_, n)) in scalars_mut(to).into_iter().zip(scalars(&c)) {
            *sum += n;
        }
    }
}

/// Writes the counters to `<SIMPLETUNER_METRICS_DIR>/<pid>.json` (a 0600
/// file renamed into place), when that variable names a directory of this
/// user's. Never fails a caller: a write that fails is skipped.
pub fn flush() {
    let Some(dir) = std::env::var_os(METRICS_DIR).filter(|d| !d.is_empty()) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let body = to_json(&snapshot()).to_string();
    let name = format!("{}.json", std::process::id());
    let _ = crate::fsutil::replace_atomically(&dir, &name, &dir.join(&name), body.as_bytes());
}

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
fn scalars(c: &Counts) -> [(&'static str, u64); 10] {
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
fn scalars_mut(c: &mut Counts) -> [(&'static str, &mut u64); 10] {
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

/// Escapes a label value of the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `counts` in the Prometheus / OpenMetrics text format, as a node
/// exporter's textfile collector reads it: `http_client_request_duration_seconds`
/// (OpenTelemetry's name and attributes `http_request_method`,
/// `http_response_status_code`, `error_type`, with `provider` and
/// `operation`) and one `st_secrets_<name>_total` counter per scalar.
pub fn openmetrics(counts: &BTreeMap<String, Counts>) -> String {
    let mut out = String::new();
    out.push_str("# HELP http_client_request_duration_seconds Duration of the remote providers' HTTP requests.\n");
    out.push_str("# TYPE http_client_request_duration_seconds histogram\n");
    for (provider, c) in counts {
        for ((op, method, outcome), t) in &c.requests {
            let status = if outcome.bytes().all(|b| b.is_ascii_digit()) {
                format!("http_response_status_code=\"{}\"", label(outcome))
            } else {
                format!("error_type=\"{}\"", label(outcome))
            };
            let labels = format!(
                "provider=\"{}\",operation=\"{}\",http_request_method=\"{}\",{status}",
                label(provider),
                label(op),
                label(method)
            );
            for (bound, n) in BUCKETS.iter().zip(t.buckets) {
                out.push_str(&format!(
                    "http_client_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}\n"
                ));
            }
            out.push_str(&format!(
                "http_client_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                t.count
            ));
            out.push_str(&format!(
                "http_client_request_duration_seconds_sum{{{labels}}} {}\n",
                t.seconds
            ));
            out.push_str(&format!(
                "http_client_request_duration_seconds_count{{{labels}}} {}\n",
                t.count
            ));
        }
    }
    let names = scalars(&Counts::default()).map(|(n, _)| n);
    for (i, name) in names.iter().enumerate() {
        // The Prometheus text format names a counter's family with its
        // `_total`, as node exporters read it.
        out.push_str(&format!(
            "# HELP st_secrets_{name}_total The remote providers' {}.\n",
            name.replace('_', " ")
        ));
        out.push_str(&format!("# TYPE st_secrets_{name}_total counter\n"));
        for (provider, c) in counts {
            let n = scalars(c)[i].1;
            out.push_str(&format!(
                "st_secrets_{name}_total{{provider=\"{}\"}} {n}\n",
                label(provider)
            ));
        }
    }
    out
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

/// The largest counters file [`gather`] reads: far above what a process
/// writes (a few KiB), far below what could starve `run` of memory.
const MAX_COUNTS_FILE: u64 = 1 << 20;

/// Adds up the counters of a job's processes: the `*.json` files in `dir`
/// (a job's `SIMPLETUNER_METRICS_DIR`, this process's written first). Each is
/// read as a secret file is: opened without blocking, a regular file only,
/// at most 1 MiB. A file that is refused or unreadable is skipped and its
/// name and reason returned (never its content), so a process of the job
/// cannot hang or starve the one summing them.
///
/// # Errors
/// [`crate::error::Error::Io`] when `dir` cannot be listed.
pub fn gather(
    dir: &std::path::Path,
) -> Result<(BTreeMap<String, Counts>, Vec<String>), crate::error::Error> {
    flush();
    let mut sum = BTreeMap::new();
    let mut skipped = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| crate::error::Error::io("cannot read", dir, &e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| crate::error::Error::io("cannot read", dir, &e))?
            .path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match crate::fsutil::read_regular(&path, "counters file", MAX_COUNTS_FILE) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(doc) => merge(&mut sum, from_json(&doc)),
                Err(_) => skipped.push(format!(
                    "counters file {} is not JSON; skipped",
                    crate::error::printable(&path.display().to_string())
                )),
            },
            Ok(None) => {} // gone meanwhile
            Err(e) => skipped.push(format!("{e}; skipped")),
        }
    }
    Ok((sum, skipped))
}

/// Replaces `file` with `text` for a node exporter's textfile collector:
/// a new temporary file of an unpredictable name beside it (`O_EXCL`,
/// never through a link another user planted), mode 0644 (the collector
/// runs as another user; the text holds no key and no value), renamed into
/// place. The directory must be one whose entries only their owners can
/// replace: a directory anyone may write to without the sticky bit is
/// refused, naming it.
///
/// # Errors
/// [`crate::error::Error::InvalidArgument`] for such a directory, [`crate::error::Error::Io`]
/// when writing or renaming fails (the temporary file is removed).
pub fn write_textfile(file: &std::path::Path, text: &str) -> Result<(), crate::error::Error> {
    use std::os::unix::fs::MetadataExt;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let meta =
        std::fs::metadata(dir).map_err(|e| crate::error::Error::io("cannot inspect", dir, &e))?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(crate::error::Error::InvalidArgument(format!(
            "directory {} may be written by anyone and has no sticky bit, so another user could \
             replace the metrics file; use a collector directory only its owner writes (or set \
             its sticky bit: chmod +t)",
            crate::error::printable(&dir.display().to_string())
        )));
    }
    let name = file
        .file_name()
        .map_or("metrics".into(), |n| n.to_string_lossy().into_owned());
    let temp = crate::fsutil::write_temp(
        dir,
        &crate::fsutil::temp_prefix(&name),
        text.as_bytes(),
        0o644,
    )?;
    std::fs::rename(&temp, file).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        crate::error::Error::io("cannot replace", file, &e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_for_the_scoped_provider_by_operation_never_a_path() {
        let before = snapshot().get("metertest").cloned().unwrap_or_default();
        request(
            "Vault",
            "GET",
            "http://x/v1/secret/data/team/x",
            "200",
            Duration::from_millis(3),
        );
        {
            let _s = scope("metertest");
            request(
                "Vault",
                "GET",
                "http://x/v1/secret/data/team/x?version=2",
                "200",
                Duration::from_millis(3),
            );
            request(
                "Vault",
                "GET",
                "http://x/v1/secret/metadata/team/x",
                "403",
                Duration::from_millis(30),
            );
            request(
                "Vault",
                "POST",
                "http://x/v1/auth/jwt/login",
                "200",
                Duration::from_secs(20),
            );
            request(
                "GetSecretValue",
                "POST",
                "https://aws/",
                "timeout",
                Duration::from_millis(7),
            );
            add_current(|c| c.retries += 1);
        }
        add_current(|c| c.retries += 100); // no provider: not counted
        let now = snapshot().remove("metertest").unwrap();
        let read = &now.requests[&("kv read".into(), "GET".into(), "200".into())];
        assert_eq!(
            read.count,
            1 + before
                .requests
                .get(&("kv read".into(), "GET".into(), "200".into()))
                .map_or(0, |t| t.count)
        );
        assert_eq!(
            read.buckets[0], read.count,
            "3 ms is within the first bucket"
        );
        let login = &now.requests[&("login".into(), "POST".into(), "200".into())];
        assert_eq!(
            login.buckets[BUCKETS.len() - 1],
            0,
            "20 s is past the last bucket"
        );
        assert!(now
            .requests
            .contains_key(&("kv metadata".into(), "GET".into(), "403".into())));
        assert!(now.requests.contains_key(&(
            "GetSecretValue".into(),
            "POST".into(),
            "timeout".into()
        )));
        assert_eq!(now.retries, before.retries + 1);
        let text = to_json(&snapshot()).to_string();
        assert!(!text.contains("team"), "no path in the counters: {text}");
    }

    #[test]
    fn counters_read_back_and_add_up_field_by_field() {
        let mut c = Counts::default();
        for (i, (_, v)) in scalars_mut(&mut c).into_iter().enumerate() {
            *v = i as u64 + 1;
        }
        c.requests.insert(
            ("kv read".into(), "GET".into(), "200".into()),
            Tally {
                count: 2,
                seconds: 0.5,
                buckets: [2; 14],
            },
        );
        let one = BTreeMap::from([("vault".to_owned(), c)]);
        assert_eq!(from_json(&to_json(&one)), one);
        let mut sum = one.clone();
        merge(&mut sum, one.clone());
        let doubled = &sum["vault"];
        assert_eq!(
            scalars(doubled).map(|(_, n)| n),
            scalars(&one["vault"]).map(|(_, n)| 2 * n)
        );
        assert_eq!(doubled.requests.values().next().unwrap().count, 4);
    }
}

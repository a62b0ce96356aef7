//! [`RemoteSource`]: the one provider of remote secrets, over any service
//! that can [`Fetch`] a named secret (AWS Secrets Manager, GCP Secret
//! Manager, Azure Key Vault, Vault/OpenBao).
//!
//! It holds the fetcher, the secrets in order (AWS secret names or Vault
//! paths: `aws_secret_name` / `vault_path` as a list, shared team secrets
//! first, then the project's) each in its own [`SecretCache`] made with its
//! loader, and their places in the node cache. A key is answered by the
//! first secret that holds it. Everything a remote secret does beyond one
//! fetch (caching, refresh ahead, change events, the node cache) happens
//! in the cache; everything a service knows (transport, credentials, wire)
//! in its [`Fetch`].

use super::rotation::{self, Choice, Versions};
use super::secret_cache::{Reason, Runner, SecretCache};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::node::{Against, NodeUse, Scope};
use crate::secrets::provider::{
    ChangeSink, KeyChange, Provider, ProviderStatus, Read, SecretMap, SinkSlot, Version,
};
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings};
use serde_json::{json, Value};
use std::sync::Arc;

/// A remote service: fetches one named secret, and says what it is for
/// status lines and the doctor. Implemented by each remote provider (the
/// list: `secrets::remote_provider`): AWS, GCP, Azure (transport,
/// credentials, wire each), Vault (client, session) and the token
/// exchanges; built by the kit ([`Backend`](crate::secrets::Backend)).
pub trait Fetch: Send + Sync + 'static {
    /// The provider's name in the chain (`aws`, `gcp`, `azure`, `vault`,
    /// `exchange`).
    const NAME: &'static str;

    /// What the doctor says of a secret that does not exist.
    const ABSENT: &'static str;

    /// Whether each secret holds one key, named as the secret (a token
    /// exchange's): a lookup then fetches that secret only, never the
    /// others of the list.
    const ONE_KEY_EACH: bool = false;

    /// What names a secret of the list (an AWS secret's name; a Vault KV
    /// path or leased secret); shown as its `Display`.
    type Secret: Clone + std::fmt::Display + Send + Sync + 'static;

    /// The secret `name` fetched now, retries included.
    fn fetch(&self, name: &Self::Secret) -> Result<Fetched<SecretMap>, FetchError>;

    /// The secret `name` fetched now, given what is held of it (a lease
    /// held is renewed): [`fetch`](Self::fetch) unless the service leases.
    fn fetch_held(
        &self,
        name: &Self::Secret,
        _held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        self.fetch(name)
    }

    /// What the service says of secret `name`'s versions without sending a
    /// value (AWS `DescribeSecret`, KV v2 `metadata/`), so that a refresh
    /// keeps a version still current and a failed version's report finds
    /// the one beside it; `None` when it cannot say (through an agent, KV
    /// v1, a leased secret, or not permitted): the secret is then fetched
    /// whole.
    fn versions(&self, _name: &Self::Secret) -> Option<Result<Fetched<Versions>, FetchError>> {
        None
    }

    /// The secret `name` at version `id`, one [`versions`](Self::versions)
    /// named.
    fn fetch_version(
        &self,
        name: &Self::Secret,
        _id: &str,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        self.fetch(name)
    }

    /// The status detail naming the secrets `names` (the caches' part is
    /// appended), and the service's own warnings.
    fn describe(&self, names: &[Self::Secret]) -> (String, Vec<String>);

    /// The detail of a configured provider that cannot work.
    fn unusable(_names: &[Self::Secret], error: &Error) -> String {
        error.to_string()
    }

    /// The doctor's live checks of the service before the secrets are read
    /// (credentials, identity, health), as a JSON object without values.
    fn checks(&self, names: &[Self::Secret]) -> Value;

    /// A caller expects a newer value than the one held (`refresh`): the
    /// next fetches must not read older state (a cluster's standby).
    fn expect_change(&self) {}

    /// The doctor's checks after the secrets were read (`any_read`: one
    /// was), added to `out`.
    fn after_reads(&self, _out: &mut Value, _any_read: bool) {}
}

/// One secret of the list and its cache.
struct Unit {
    name: String,
    cache: Arc<SecretCache<SecretMap>>,
}

/// A service that works: its fetcher and the caches of its secrets.
struct Live<F> {
    fetcher: Arc<F>,
    units: Vec<Unit>,
}

/// The remote provider over the service `F`; see the module documentation.
pub struct RemoteSource<F: Fetch> {
    /// The secrets, in order.
    names: Vec<F::Secret>,
    /// Whether the provider is configured at all (unconfigured: every key
    /// is absent, quietly).
    configured: bool,
    /// Whether something of it is set though it is not configured (an
    /// address without a way to log in): a "not found" names it.
    in_part: bool,
    /// The service and its caches, or the configuration problem every
    /// lookup reports.
    live: Result<Live<F>, Error>,
    /// Whether the secrets are shared through the node cache.
    node: NodeUse,
    /// The node's place in its job, for the status (`None`: not in one).
    fleet: Option<String>,
    /// The manager's change sink.
    sink: Arc<SinkSlot>,
}

impl<F: Fetch> std::fmt::Debug for RemoteSource<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource")
            .field("provider", &F::NAME)
            .field("secrets", &self.shown_names())
            .field("configured", &self.configured)
            .finish_non_exhaustive()
    }
}

impl<F: Fetch> RemoteSource<F> {
    /// The provider of the secrets `names` (in order, at least one when
    /// configured) through `fetcher`, each cached as `settings` say and
    /// shared through the node cache when `node` is on, under `scope` (the
    /// provider's configuration) and its name.
    pub(crate) fn build(
        names: Vec<F::Secret>,
        configured: bool,
        fetcher: Result<F, Error>,
        settings: &RemoteSettings,
        node: NodeUse,
        scope: &Scope,
    ) -> Self {
        let sink = Arc::new(SinkSlot::default());
        let live = fetcher.map(|fetcher| {
            let fetcher = Arc::new(fetcher);
            let mut units: Vec<Unit> = Vec::with_capacity(names.len());
            for name in &names {
                let slot = match &node {
                    NodeUse::On(dir) => Some(scope.slot(dir, &name.to_string())),
                    _ => None,
                };
                let load = {
                    let (fetcher, name) = (Arc::clone(&fetcher), name.clone());
                    Box::new(move |held: Option<&SecretMap>, why: Reason<'_>| {
                        let _counted = crate::secrets::transport::meter::scope(F::NAME);
                        load_checked(&*fetcher, &name, held, why)
                    })
                };
                let changed = told_unless_earlier(&units, &sink);
                let cache =
                    SecretCache::new(settings.clone(), slot, load, changed, Runner::Refresher)
                        .counted_as(F::NAME);
                units.push(Unit {
                    name: name.to_string(),
                    cache,
                });
            }
            Live { fetcher, units }
        });
        RemoteSource {
            names,
            configured,
            in_part: false,
            live,
            node,
            fleet: settings.fleet.describe(),
            sink,
        }
    }

    /// Marks the provider as set up in part when `in_part` ([`Provider::set_up_in_part`]).
    pub(crate) fn marked_in_part(mut self, in_part: bool) -> Self {
        self.in_part = in_part;
        self
    }

    /// Requests for the secrets sent so far (fetches, each with its
    /// retries; cache hits send none).
    pub fn requests(&self) -> u64 {
        self.units().iter().map(|u| u.cache.requests()).sum()
    }

    /// The service's fetcher, when it can work (tests look inside).
    #[cfg(test)]
    pub(crate) fn fetcher(&self) -> Option<&F> {
        self.live.as_ref().ok().map(|l| &*l.fetcher)
    }

    /// The caches, in order (none when the service cannot work).
    fn units(&self) -> &[Unit] {
        self.live.as_ref().map_or(&[], |l| &l.units[..])
    }

    /// The caches, when the provider is configured; its configuration
    /// problem, when it cannot work; `Ok(None)` when it is not configured.
    fn asked(&self) -> Result<Option<&[Unit]>, Error> {
        if !self.configured {
            return Ok(None);
        }
        match &self.live {
            Ok(live) => Ok(Some(&live.units)),
            Err(e) => Err(e.clone()),
        }
    }

    /// The secrets as their names are shown.
    fn shown_names(&self) -> Vec<String> {
        self.names.iter().map(ToString::to_string).collect()
    }

    /// The secrets of `units` that may hold `key`, in order: all of them,
    /// or with [`Fetch::ONE_KEY_EACH`] the one named as the key.
    fn may_hold<'u>(units: &'u [Unit], key: &'u str) -> impl Iterator<Item = &'u Unit> {
        units.iter().filter(move |u| {
            !F::ONE_KEY_EACH
                || u.name == key
                || crate::secrets::provider::normalize_key(&u.name)
                    == crate::secrets::provider::normalize_key(key)
        })
    }

    /// `key` fetched again now ([`SecretCache::force`]): the secret that
    /// holds it, else each in order until one does.
    fn refresh_key(
        units: &[Unit],
        key: &str,
        min_interval: std::time::Duration,
        failed: Option<&str>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if let Some(u) = units.iter().find(|u| u.cache.peek(key).is_some()) {
            return u.cache.force_versioned(key, min_interval, failed);
        }
        for u in Self::may_hold(units, key) {
            if let Some(found) = u.cache.force_versioned(key, min_interval, failed)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The end of the status detail and its warnings: for one secret as
    /// [`SecretCache::describe`]; for several, each secret's, named.
    fn describe_caches(&self) -> (String, Vec<String>) {
        let (mut detail, mut warnings) = match self.units() {
            [only] => only.cache.describe(),
            several => {
                let mut detail = String::new();
                let mut warnings = Vec::new();
                for u in several {
                    let (d, w) = u.cache.describe();
                    detail.push_str(&format!("; '{}'{}", u.name, d.replacen(';', ":", 1)));
                    warnings.extend(w.into_iter().map(|w| format!("'{}': {w}", u.name)));
                }
                (detail, warnings)
            }
        };
        match &self.node {
            NodeUse::Off => {}
            NodeUse::On(dir) => detail.push_str(&format!(
                "; shared through the node cache {}",
                dir.path().display()
            )),
            NodeUse::Refused(why) => warnings.push(format!(
                "the node cache is not used (values are cached per process): {why}"
            )),
        }
        if let Some(fleet) = &self.fleet {
            detail.push_str(&format!("; {fleet}"));
        }
        (detail, warnings)
    }
}

/// The secret `name` fetched as its cache's loader. When its time came
/// with a version held, when a version was reported failed, or when the
/// value held stands in for one that failed, the service is first asked
/// which versions it has: a version held that is still the one to hold is
/// kept without sending the value (its stages as they are now), another is
/// fetched by its identifier. Otherwise (a first fetch, a caller's plain
/// refresh, a lease, KV v1) or when the service cannot say, the secret is
/// fetched as before. A value of the version reported failed is never
/// handed to the fetcher to keep: a leased credential is then issued anew,
/// not renewed (a role dropped, a lease revoked early).
fn load_checked<F: Fetch>(
    fetcher: &F,
    name: &F::Secret,
    held: Option<&SecretMap>,
    why: Reason<'_>,
) -> Result<Fetched<SecretMap>, FetchError> {
    let keepable = held.filter(|m| {
        Against::of(why.failed(), m.version().map(|v| v.id.as_str())) != Against::Failed
    });
    let version = held
        .filter(|m| m.lease().is_none())
        .and_then(SecretMap::version);
    let instead_of = version.and_then(|v| v.instead_of.as_deref());
    let failed = why.failed().or(instead_of);
    let check = failed.is_some() || (why == Reason::Due && version.is_some());
    if !check {
        return fetcher.fetch_held(name, keepable);
    }
    // A version check only decides whether to fetch: when it cannot say
    // (refused, failed, too large, "absent" from a replica behind), the
    // secret is read as without one, and that read decides.
    let versions = match fetcher.versions(name) {
        Some(Ok(Fetched::Found(v))) => v,
        _ => return fetcher.fetch_held(name, keepable),
    };
    match rotation::choose(&versions, version, failed) {
        Choice::Keep(v) => Ok(Fetched::Found(
            held.map_or_else(SecretMap::default, SecretMap::copy)
                .with_version(Some(v)),
        )),
        Choice::Fetch(v) => Ok(match fetcher.fetch_version(name, &v.id)? {
            Fetched::Found(map) => {
                // The service's own label of what it sent, with what it
                // stands in for.
                let stages = map.version().map(|got| got.stages.clone());
                let version = Version {
                    stages: stages.filter(|s| !s.is_empty()).unwrap_or(v.stages),
                    ..v
                };
                Fetched::Found(map.with_version(Some(version)))
            }
            // The version the check named is not there yet (a replica
            // behind, a rotation half done): what a plain read finds.
            Fetched::Absent => fetcher.fetch_held(name, keepable)?,
        }),
        Choice::Plain => fetcher.fetch_held(name, keepable),
    }
}

/// The change hook of the next secret of the list: tells `sink` what
/// changed, except keys one of the `earlier` secrets holds (its value is
/// the one served).
fn told_unless_earlier(earlier: &[Unit], sink: &Arc<SinkSlot>) -> super::secret_cache::Changed {
    let earlier: Vec<Arc<SecretCache<SecretMap>>> =
        earlier.iter().map(|u| Arc::clone(&u.cache)).collect();
    let sink = Arc::clone(sink);
    Box::new(move |changes: Vec<KeyChange>| {
        let told = changes
            .into_iter()
            .filter(|c| earlier.iter().all(|e| e.peek(&c.key).is_none()))
            .collect();
        sink.tell(told);
    })
}

impl<F: Fetch> Provider for RemoteSource<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let Some(units) = self.asked()? else {
            return Ok(None);
        };
        // A secret that does not exist is skipped; a failure is reported (a
        // later secret cannot stand in for one whose keys are unknown: it
        // could hold the key, and it comes first).
        for u in Self::may_hold(units, key) {
            if let Some(v) = u.cache.lookup(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn read(
        &self,
        key: &str,
        how: Read<'_>,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if how == Read::Held {
            return Ok(self
                .configured
                .then(|| self.units().iter().find_map(|u| u.cache.peek(key)))
                .flatten());
        }
        let Some(units) = self.asked()? else {
            return Ok(None);
        };
        if let Read::Fresh {
            min_interval,
            failed,
        } = how
        {
            if let Ok(live) = &self.live {
                live.fetcher.expect_change();
            }
            return Self::refresh_key(units, key, min_interval, failed);
        }
        for u in Self::may_hold(units, key) {
            if let Some(found) = u.cache.lookup_versioned(key)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        let Some(units) = self.asked()? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for u in units {
            for k in u.cache.with_map(SecretMap::keys)?.unwrap_or_default() {
                if seen.insert(k.clone()) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.units()
            .iter()
            .find_map(|u| u.cache.holds(key))
            .unwrap_or(false)
    }

    fn set_up_in_part(&self) -> Option<String> {
        match (&self.live, self.in_part && !self.configured) {
            (Err(e), true) => Some(e.to_string()),
            _ => None,
        }
    }

    fn status(&self) -> ProviderStatus {
        let names = &self.names;
        let (detail, warnings) = match (&self.live, self.configured) {
            (Err(e), false) => (e.to_string(), Vec::new()),
            (Err(e), true) => (F::unusable(names, e), Vec::new()),
            (Ok(live), _) => {
                let (head, mut warnings) = live.fetcher.describe(names);
                let (tail, w) = self.describe_caches();
                warnings.extend(w);
                (format!("{head}{tail}"), warnings)
            }
        };
        ProviderStatus {
            name: F::NAME,
            available: self.configured,
            detail,
            warnings,
            failure: self.units().iter().find_map(|u| u.cache.failure()),
        }
    }

    fn invalidate(&self) {
        for u in self.units() {
            u.cache.invalidate();
        }
    }

    fn diagnose(&self) -> Option<Value> {
        if !self.configured {
            return None;
        }
        let live = match &self.live {
            Ok(live) => live,
            Err(e) => {
                let names = self.shown_names().join(", ");
                let lines = [line("configuration", error_text(e), Some(error_text(e)))];
                return Some(json!({ "secret": names, "error": e.to_json(), "lines": lines }));
            }
        };
        let _counted = crate::secrets::transport::meter::scope(F::NAME);
        let mut out = live.fetcher.checks(&self.names);
        let reads: Vec<_> = self
            .names
            .iter()
            .map(|n| (n.to_string(), live.fetcher.fetch(n)))
            .collect();
        out["secret_readable"] = readability(&reads, F::ABSENT);
        live.fetcher
            .after_reads(&mut out, reads.iter().any(|(_, r)| r.is_ok()));
        let single = reads.len() == 1;
        for (name, read) in &reads {
            let label = match single {
                true => "secret read".to_owned(),
                false => format!("read {name}"),
            };
            push_line(&mut out, read_line(&label, read, F::ABSENT));
        }
        Some(out)
    }

    fn connect(&self, sink: Arc<dyn ChangeSink>) {
        self.sink.connect(Arc::clone(&sink));
        for u in self.units() {
            let cache = Arc::downgrade(&u.cache);
            sink.watch(Box::new(move || {
                cache.upgrade().map(|c| c.check()).is_some()
            }));
        }
    }
}

/// A line of the doctor's report of a provider: what was checked
/// (`label`), what was found (`text`), and the problem it is, if it is one
/// (the doctor lists it, naming the provider).
pub(crate) fn line(label: &str, text: impl Into<String>, problem: Option<String>) -> Value {
    json!({ "label": label, "text": text.into(), "ok": problem.is_none(), "problem": problem })
}

/// Appends `line` to the report's `lines`.
pub(crate) fn push_line(report: &mut Value, line: Value) {
    match report["lines"].as_array_mut() {
        Some(lines) => lines.push(line),
        None => report["lines"] = json!([line]),
    }
}

/// The line of a check that failed with `e`: `shown (CODE: message)`, the
/// problem `what: CODE: message`.
pub(crate) fn failed_line(label: &str, shown: &str, what: &str, e: &Error) -> Value {
    let why = error_text(e);
    line(
        label,
        format!("{shown} ({why})"),
        Some(format!("{what}: {why}")),
    )
}

/// `CODE: message` of an error, for a line.
pub(crate) fn error_text(e: &Error) -> String {
    format!("{}: {}", e.code_name(), e.message())
}

/// The doctor's line of reading a secret: readable with its key count, or
/// not, and why (`absent`: what a missing one means).
fn read_line(label: &str, read: &Result<Fetched<SecretMap>, FetchError>, absent: &str) -> Value {
    let why = match read {
        Ok(Fetched::Found(map)) => {
            return line(label, format!("readable ({} keys)", map.len()), None)
        }
        Ok(Fetched::Absent) => absent.to_owned(),
        Err(f) => error_text(&f.error),
    };
    line(
        label,
        format!("NOT READABLE ({why})"),
        Some(format!("{label}: not readable: {why}")),
    )
}

/// The doctor's report of reading each secret, `absent` saying what a
/// missing one means: for one secret, `{"readable": ...}`; for several, that
/// report keyed by each name.
fn readability(reads: &[(String, Result<Fetched<SecretMap>, FetchError>)], absent: &str) -> Value {
    let report = |read: &Result<Fetched<SecretMap>, FetchError>| match read {
        Ok(Fetched::Found(map)) => json!({ "readable": true, "keys": map.len() }),
        Ok(Fetched::Absent) => json!({ "readable": false, "reason": absent }),
        Err(f) => json!({ "readable": false, "error": f.error.to_json() }),
    };
    match reads {
        [(_, only)] => report(only),
        several => Value::Object(
            several
                .iter()
                .map(|(name, read)| (name.clone(), report(read)))
                .collect(),
        ),
    }
}

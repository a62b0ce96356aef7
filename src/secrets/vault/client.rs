//! The Vault client: authentication (a token, or logins repeated as the
//! token expires or is refused: [`session`]), requests in the configured
//! namespace, and reading the secret with the mount's KV version, detected
//! or checked.

mod revoke;
mod versions;
pub(super) use revoke::revoke as revoke_ledger;
mod session;

use super::auth::Auth;
use super::cluster::{Cluster, DEFAULT_ELECTION_TIMEOUT};
use super::settings::{either, VaultSettings};
use super::wire::{errors_summary, expect, mount_version, not_found_kind, secret_from, NotFound};
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, SecretMap};
use crate::secrets::remote::http::{Address, Http, Response, Trust};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{shorten, FetchError, RemoteSettings, Vars};
use crate::sys::{refresher, Mutex};
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What is known of the lease of the token in use (a fixed token, a token
/// file's, an AppRole login's), to renew it (`auth/token/renew-self`) at
/// two thirds of its TTL, up to its max TTL.
struct Lease {
    /// The token the lease belongs to: another one (a file rewritten, a new
    /// login) starts over.
    token: SecretString,
    /// When to renew it; `None`: being looked up or renewed on the
    /// refresher, not renewable, no TTL, or its max TTL is reached (an
    /// AppRole token is then replaced by a login at 80%).
    renew_at: Option<Instant>,
}

/// Renewals stop when the TTL granted falls under this (the max TTL is
/// near): the token then lives out its time, and an AppRole one is replaced
/// by a new login.
pub(super) const MIN_RENEWED_TTL: Duration = Duration::from_secs(2);

/// Leases and TTLs a server grants are taken as at most this long (ten
/// years): a lease near 2^64 s must not overflow a deadline.
const LONGEST_LEASE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `fraction` of the lease `lease` (as a server granted it) after `now`,
/// saturating at [`LONGEST_LEASE`].
pub(super) fn part_of(now: Instant, lease: Duration, fraction: f64) -> Instant {
    let wait = lease.min(LONGEST_LEASE).mul_f64(fraction);
    now.checked_add(wait).unwrap_or(now)
}

/// The KV version of the mount, and how it was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kv {
    Unknown { asked_mounts: bool },
    Known(u8, &'static str),
}

/// What the mounts endpoint said of a configured KV version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// Not asked yet.
    NotYet,
    /// Asked: it matches, or the endpoint could not tell.
    NoMismatch,
    /// The mount has this other version.
    Mismatch(u8),
}

/// What one read of the secret found.
enum Read {
    Found(SecretMap),
    Absent,
    /// A 404 warning that the mount is KV v2 (read with a v1 path).
    MountIsV2,
}

pub(super) struct Client {
    /// This client, for the jobs it hands the refresher (its token's
    /// lookup and renewal run there, never on a caller's path).
    me: Weak<Client>,
    /// The nodes: one address, or a cluster's.
    pub(super) cluster: Cluster,
    pub(super) mount: String,
    pub(super) namespace: Option<String>,
    pub(super) auth: Auth,
    /// The TLS client certificate's files, when configured.
    pub(super) client_cert: Option<super::identity::CertFiles>,
    token: Mutex<Option<session::Token>>,
    /// With the node cache on, the login's token is shared by the node's
    /// processes through this slot: one login per node, not per rank.
    login_slot: Option<crate::secrets::remote::node::Slot>,
    /// The settings the slot is used with (the token's own TTL rules).
    login_settings: RemoteSettings,
    /// The lease of the token in use, for its renewal.
    lease: Mutex<Option<Lease>>,
    /// Renewals sent (`renew-self` calls that succeeded), for statuses.
    pub(super) renewals: std::sync::atomic::AtomicU64,
    /// Logins answered, and the slowest one's wait in microseconds (an
    /// election waited out shows here).
    pub(super) logins: std::sync::atomic::AtomicU64,
    pub(super) failed_logins: std::sync::atomic::AtomicU64,
    pub(super) slowest_login_us: std::sync::atomic::AtomicU64,
    /// Leased secrets issued, and leases renewed.
    pub(super) leases_issued: std::sync::atomic::AtomicU64,
    pub(super) lease_renewals: std::sync::atomic::AtomicU64,
    /// The leases and login tokens to revoke.
    pub(super) ledger: super::ledger::Ledger,
    kv: Mutex<Kv>,
    /// A configured KV version checked against `sys/internal/ui/mounts`
    /// (after the first "absent").
    checked: Mutex<Checked>,
    /// Refusals of KV v2 `metadata/` in a row (a policy that allows
    /// `data/` only): past two, not asked again, every refresh reads the
    /// value.
    metadata_refusals: std::sync::atomic::AtomicU32,
}

impl Client {
    /// The client for the nodes `urls` (at least one) with `auth`, its
    /// mount, path, namespace and TLS trust from the settings and the
    /// environment.
    pub(super) fn new(
        settings: &VaultSettings,
        remote: &RemoteSettings,
        vars: &Vars,
        urls: Vec<Address>,
        auth: Auth,
        node_dir: Option<&std::path::Path>,
        login_slot: Option<crate::secrets::remote::node::Slot>,
    ) -> Result<Arc<Client>, Error> {
        let skip =
            either(vars, var::VAULT_SKIP_VERIFY, var::BAO_SKIP_VERIFY).is_some_and(|(v, _)| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes")
            });
        let trust = match (skip, either(vars, var::VAULT_CACERT, var::BAO_CACERT)) {
            (true, _) => Trust::Insecure,
            (false, Some((p, _))) => Trust::Bundle(expand_home(p.into())),
            (false, None) => Trust::Default,
        };
        let pick = |c: &Option<String>, var: &str, default: &str| {
            c.clone()
                .or_else(|| vars.get(var).map(|v| v.trim_matches('/').to_owned()))
                .unwrap_or_else(|| default.to_owned())
        };
        let cluster = Cluster::new(
            urls,
            |a| {
                Http::to(
                    remote,
                    &trust,
                    "BAO_CACERT (or VAULT_CACERT)",
                    a.socket.clone(),
                )
            },
            remote,
            settings
                .election_timeout
                .unwrap_or(DEFAULT_ELECTION_TIMEOUT),
            node_dir,
        )?;
        // A client certificate configured is presented from the start (a
        // listener may require one) when it loads now; a certificate login
        // loads it again for each login, so one written later (cert-manager
        // after the pod started) is used then, and the status says why not.
        let client_cert = super::login::client_cert_files(settings, vars)?;
        if let Some(Ok(cert)) = client_cert.as_ref().map(|f| f.load()) {
            cluster.present(&Some(cert));
        }
        let ledger = super::ledger::Ledger::new(vars, login_slot.is_some());
        Ok(Arc::new_cyclic(|me| Client {
            me: me.clone(),
            cluster,
            mount: pick(&settings.mount, var::SIMPLETUNER_VAULT_MOUNT, "secret"),
            namespace: settings.namespace.clone().or_else(|| {
                either(vars, var::VAULT_NAMESPACE, var::BAO_NAMESPACE).map(|(ns, _)| ns.to_owned())
            }),
            auth,
            client_cert,
            token: Mutex::new(None),
            login_slot,
            login_settings: session::slot_settings(remote),
            lease: Mutex::new(None),
            renewals: std::sync::atomic::AtomicU64::new(0),
            logins: std::sync::atomic::AtomicU64::new(0),
            failed_logins: std::sync::atomic::AtomicU64::new(0),
            slowest_login_us: std::sync::atomic::AtomicU64::new(0),
            leases_issued: std::sync::atomic::AtomicU64::new(0),
            lease_renewals: std::sync::atomic::AtomicU64::new(0),
            ledger,
            kv: {
                let configured = settings.kv_version;
                let initial = move || match configured {
                    Some(v) => Kv::Known(v, "configured"),
                    None => Kv::Unknown {
                        asked_mounts: false,
                    },
                };
                Mutex::with_rebuild(initial(), initial)
            },
            checked: Mutex::with_fresh(Checked::NotYet, || Checked::NotYet),
            metadata_refusals: std::sync::atomic::AtomicU32::new(0),
        }))
    }

    /// The token to send: the fixed one, the file's, or the AppRole one
    /// (logging in when needed); `None` in agent mode.
    pub(super) fn token(&self) -> Result<Option<SecretString>, FetchError> {
        match &self.auth {
            Auth::Token(t, _) => Ok(Some(t.clone())),
            // A token file's writer (an agent, `bao login`) looks after its
            // token: renewing an agent's token from every process of a node
            // multiplies the requests and upsets the agent's own renewals.
            Auth::File(f) => Ok(Some(f.get()?)),
            Auth::Agent => Ok(None),
            Auth::Login(_) => self.login_token(false).map(Some),
        }
    }

    /// Sends `auth/token/renew-self` for `token`: the lease granted and
    /// whether it is still renewable, `None` when refused or not answered.
    fn renew(&self, token: &SecretString) -> Option<(Duration, bool)> {
        let r = self
            .send_once("POST", "auth/token/renew-self", Some(token), b"{}")
            .ok()?;
        if r.status != 200 {
            return None;
        }
        let mut doc = r.json()?;
        let lease = doc["auth"]["lease_duration"].as_u64();
        let renewable = doc["auth"]["renewable"].as_bool().unwrap_or(false);
        zeroize_json(&mut doc);
        self.renewals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::secrets::remote::meter::add("vault", |c| c.renewals += 1);
        Some((Duration::from_secs(lease?), renewable))
    }

    /// Keeps `token` (a fixed one, just used for a read the server did not
    /// refuse) alive without costing the caller a request: a token not seen
    /// before has its TTL asked (`auth/token/lookup-self`), and a token two
    /// thirds through its TTL is renewed, both on the refresher after the
    /// read, so that a renewable token (from the environment, a
    /// file, or an AppRole login) lives as long as its max TTL allows. A
    /// failure there is not the read's: the read goes on with the token,
    /// and its own answer says whether the token still works.
    fn keep_alive(&self, token: &SecretString) {
        let now = Instant::now();
        let mut lease = self.lease.lock();
        let due = match lease.as_ref() {
            Some(l) if l.token.expose() == token.expose() => match l.renew_at {
                Some(at) if now >= at => true,
                _ => return,
            },
            _ => false, // a token not looked at yet
        };
        // Nothing more is asked for this token until the job has answered.
        *lease = Some(Lease {
            token: token.clone(),
            renew_at: None,
        });
        drop(lease);
        let (me, token) = (self.me.clone(), token.clone());
        refresher::submit(Box::new(move || {
            if let Some(client) = me.upgrade() {
                client.settle_lease(&token, due);
            }
        }));
    }

    /// The refresher's half of [`keep_alive`](Self::keep_alive): renews
    /// `token` (`due`) or asks its TTL, and says when to renew it next.
    pub(super) fn settle_lease(&self, token: &SecretString, due: bool) {
        let now = Instant::now();
        let (ttl, renewable) = if due {
            match self.renew(token) {
                Some((ttl, renewable)) => (Some(ttl), Some(renewable)),
                None => (None, None),
            }
        } else {
            // lookup-self: data.ttl and data.renewable.
            let answer = self
                .send("GET", "auth/token/lookup-self", Some(token), b"")
                .ok()
                .filter(|r| r.status == 200);
            let mut doc = answer.and_then(|r| r.json()).unwrap_or(Value::Null);
            let found = (
                doc["data"]["ttl"].as_u64().map(Duration::from_secs),
                doc["data"]["renewable"].as_bool(),
            );
            zeroize_json(&mut doc);
            found
        };
        let renew_at = match (ttl, renewable) {
            // Near the max TTL each renewal grants less: the renewals come
            // closer together until the TTL falls under MIN_RENEWED_TTL.
            (Some(ttl), Some(true)) if ttl >= MIN_RENEWED_TTL => Some(part_of(now, ttl, 2.0 / 3.0)),
            // Not answered (a transient failure, or a token not allowed to
            // look itself up): look again a while later.
            (None, _) if !due => Some(now + Duration::from_secs(30)),
            _ => None,
        };
        let mut lease = self.lease.lock();
        if let Some(l) = lease
            .as_mut()
            .filter(|l| l.token.expose() == token.expose())
        {
            l.renew_at = renew_at;
        }
    }

    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        self.send_in(self.namespace.as_deref(), method, path, token, body)
    }

    /// [`send`](Self::send) in `namespace` (`None`: the root namespace,
    /// where `sys/health` must be asked).
    pub(super) fn send_in(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        self.request(namespace, method, path, token, body, method != "GET")
    }

    /// [`send`](Self::send) without waiting out an election: a renewal's
    /// token is still valid, and the login that replaces it later waits
    /// instead (a renewal runs on a read's path; it must not hold it up).
    fn send_once(
        &self,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let namespace = self.namespace.as_deref();
        self.request(namespace, method, path, token, body, false)
    }

    /// One request through the cluster; `wait`: a write that waits out an
    /// election.
    fn request(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
        wait: bool,
    ) -> Result<Response, FetchError> {
        let path = format!("/v1/{path}");
        let mut headers = vec![("x-vault-request", "true")];
        if let Some(t) = token {
            headers.push(("x-vault-token", t.expose()));
        }
        if let Some(ns) = namespace {
            headers.push(("x-vault-namespace", ns));
        }
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        // Writes wait out an election, except a renewal (`send_once`).
        self.cluster.send(method, &path, &headers, body, wait)
    }

    /// A GET with the token: [`call`](Self::call).
    pub(super) fn get(&self, path: &str) -> Result<Response, FetchError> {
        self.call("GET", path, b"")
    }

    /// The token in use, without a login or a request (`None`: none yet, or
    /// agent mode).
    pub(super) fn token_held(&self) -> Option<SecretString> {
        match &self.auth {
            Auth::Login(_) => self.token.lock().as_ref().map(session::Token::value),
            _ => self.token().ok().flatten(),
        }
    }

    /// A request with the token. After a refusal (403), once: a login's
    /// token is replaced by a new login; a token file is read again, and
    /// the request repeated when its token changed (an agent
    /// re-authenticated and rewrote it).
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let token = self.token()?;
        let r = self.send(method, path, token.as_ref(), body)?;
        if r.status != 403 {
            if let (Auth::Token(..), Some(token)) = (&self.auth, &token) {
                self.keep_alive(token);
            }
            return Ok(r);
        }
        match (&self.auth, &token) {
            (Auth::Login(_), _) => {
                let token = self.login_token(true)?;
                self.send(method, path, Some(&token), body)
            }
            (Auth::File(f), Some(used)) => match f.changed_since(used)? {
                Some(new) => self.send(method, path, Some(&new), body),
                None => Ok(r),
            },
            _ => Ok(r),
        }
    }

    /// The mount's KV version when known or learnable from
    /// `sys/internal/ui/mounts` (asked once).
    pub(super) fn kv_version(&self) -> Result<Option<u8>, FetchError> {
        let asked = match *self.kv.lock() {
            Kv::Known(v, _) => return Ok(Some(v)),
            Kv::Unknown { asked_mounts } => asked_mounts,
        };
        if asked {
            return Ok(None);
        }
        let r = self.ask_mounts()?;
        let learnt = if r.status == 200 {
            mount_version(&r)
        } else if r.status == 404 {
            self.not_found(&r, "Vault mount lookup", self.mount_route())?;
            None // a server without that endpoint: probe instead
        } else if matches!(r.status, 403 | 405) {
            None // not allowed (or no such mount), or no such endpoint: probe instead
        } else {
            return Err(expect(r, "Vault mount lookup").err().unwrap_or_else(|| {
                FetchError::transient(Error::Remote("Vault mount lookup failed".into()))
            }));
        };
        *self.kv.lock() = match learnt {
            Some(v) => Kv::Known(v, "sys/internal/ui/mounts"),
            None => Kv::Unknown { asked_mounts: true },
        };
        Ok(learnt)
    }

    /// The secret at `path` in the mount.
    pub(super) fn read_secret(&self, path: &str) -> Result<Fetched<SecretMap>, FetchError> {
        if let Checked::Mismatch(actual) = *self.checked.lock() {
            return Err(self.mismatch(actual));
        }
        match self.kv_version()? {
            Some(version) => match self.read_as(version, path)? {
                Read::Found(map) => Ok(Fetched::Found(map)),
                Read::Absent => self.absent_with_configured_version(),
                Read::MountIsV2 => Err(self.mismatch(2)),
            },
            None => {
                // As documented: try v2, fall back to v1; remember what worked.
                if let Read::Found(map) = self.read_as(2, path)? {
                    *self.kv.lock() = Kv::Known(2, "probe");
                    return Ok(Fetched::Found(map));
                }
                match self.read_as(1, path)? {
                    Read::Found(map) => {
                        *self.kv.lock() = Kv::Known(1, "probe");
                        Ok(Fetched::Found(map))
                    }
                    Read::MountIsV2 => {
                        *self.kv.lock() = Kv::Known(2, "probe");
                        Ok(Fetched::Absent)
                    }
                    Read::Absent => Ok(Fetched::Absent),
                }
            }
        }
    }

    /// `sys/internal/ui/mounts/<mount>`: the mount's type and options.
    fn ask_mounts(&self) -> Result<Response, FetchError> {
        self.get(&format!("sys/internal/ui/mounts/{}", self.mount))
    }

    /// One read of the secret at `path` as KV `version`.
    fn read_as(&self, version: u8, path: &str) -> Result<Read, FetchError> {
        let path = if version == 2 {
            format!("{}/data/{path}", self.mount)
        } else {
            format!("{}/{path}", self.mount)
        };
        let r = self.get(&path)?;
        if r.status == 404 {
            return self.not_found(&r, "Vault read", self.mount_route());
        }
        Ok(match secret_from(r, version)? {
            Fetched::Found(map) => Read::Found(map),
            Fetched::Absent => Read::Absent,
        })
    }

    /// "Absent" under a configured KV version, unless the mount turns out to
    /// have the other version (asked once of `sys/internal/ui/mounts`: a
    /// KV v2 path on a v1 mount reads as plainly absent).
    fn absent_with_configured_version(&self) -> Result<Fetched<SecretMap>, FetchError> {
        let Kv::Known(configured, "configured") = *self.kv.lock() else {
            return Ok(Fetched::Absent);
        };
        if *self.checked.lock() != Checked::NotYet {
            return Ok(Fetched::Absent);
        }
        let actual = match self.ask_mounts() {
            Ok(r) if r.status == 200 => mount_version(&r),
            _ => None, // not allowed or not there: nothing learnt
        };
        match actual.filter(|&a| a != configured) {
            Some(actual) => {
                *self.checked.lock() = Checked::Mismatch(actual);
                Err(self.mismatch(actual))
            }
            None => {
                *self.checked.lock() = Checked::NoMismatch;
                Ok(Fetched::Absent)
            }
        }
    }

    /// The error for a configured KV version the mount does not have.
    fn mismatch(&self, actual: u8) -> FetchError {
        let configured = if actual == 2 { 1 } else { 2 };
        FetchError::permanent(Error::ProviderUnavailable(format!(
            "Vault: the mount '{}' is KV v{actual}, but vault_kv_version is {configured}: set it \
             to {actual}, or leave it out to detect the version",
            self.mount
        )))
    }

    /// The secret's mount as a missing route, and what to check.
    fn mount_route(&self) -> (String, &'static str) {
        (
            format!("mount '{}'", shorten(&self.mount)),
            "check vault_mount or SIMPLETUNER_VAULT_MOUNT",
        )
    }

    /// What a 404 means: plain absence, a KV v2 mount read with a v1 path
    /// (the server's warning), or an error when its body names a missing
    /// route (`route`: what the path needs, such as a mount or an auth
    /// method, and what to do about it) or namespace.
    fn not_found(
        &self,
        r: &Response,
        what: &str,
        route: (String, &str),
    ) -> Result<Read, FetchError> {
        let namespace = self.namespace.as_deref().unwrap_or_default();
        let missing = |text: String| Err(FetchError::permanent(Error::ProviderUnavailable(text)));
        match not_found_kind(r) {
            NotFound::Absent => Ok(Read::Absent),
            NotFound::MountIsV2 => Ok(Read::MountIsV2),
            NotFound::NoNamespace => missing(format!(
                "{what}: the server has no namespace '{}' (check vault_namespace, \
                 VAULT_NAMESPACE or BAO_NAMESPACE)",
                shorten(namespace)
            )),
            NotFound::NoRoute => {
                let within = if namespace.is_empty() {
                    String::new()
                } else {
                    format!(" in namespace '{}'", shorten(namespace))
                };
                missing(format!(
                    "{what}: the server has no {}{within} ({})",
                    route.0, route.1
                ))
            }
            NotFound::Errors => Err(FetchError::permanent(Error::Remote(format!(
                "{what}: not found (HTTP 404){}",
                errors_summary(r)
            )))),
        }
    }

    /// How the token is obtained, with the logins' count and the slowest
    /// one's wait.
    pub(super) fn auth_description(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.auth {
            Auth::Login(_) => format!(
                "{} ({} logins{}, {} failed to reach a node, the slowest {:.3} s)",
                self.auth.describe(),
                self.logins.load(Relaxed),
                if self.login_slot.is_some() {
                    " by this process, the token shared with the node's others"
                } else {
                    ""
                },
                self.failed_logins.load(Relaxed),
                self.slowest_login_us.load(Relaxed) as f64 / 1e6
            ),
            other => other.describe(),
        }
    }

    pub(super) fn kv_description(&self) -> String {
        match *self.kv.lock() {
            Kv::Known(v, how) => format!("KV v{v} ({how})"),
            Kv::Unknown { .. } => "KV version not detected yet".into(),
        }
    }
}

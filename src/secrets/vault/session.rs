//! The Vault token, whatever its source, and the login loop: a fixed token
//! (from the configuration or the environment), a token file's (an agent's
//! sink, read again when it changes), a login's (AppRole, Kubernetes, JWT,
//! TLS certificate, AWS IAM), or none behind an agent.
//!
//! Every renewal runs on the refresher, by the one rule of [`Lifetime`],
//! as Vault's `LifetimeWatcher` does: once a token's lifetime is known, its
//! renewal (`auth/token/renew-self`) is scheduled on the refresher for the
//! point the rule names, and each renewal schedules the next, while the
//! token may be renewed; never on a caller's path. A fixed token's TTL is
//! first asked there (`auth/token/lookup-self`) after a read the server did
//! not refuse. A login's token is used until it is due for replacement
//! (80% through, once it can no longer be renewed), then logged in again
//! on the next caller's path (it has no token to use), and at once after
//! the server refused it. A forked child schedules its own (the parent's
//! refresher is not the child's). A token file's writer (an agent,
//! `bao login`) looks after its own token: renewing an agent's token from
//! every process of a node multiplies the requests and upsets the agent's
//! own renewals.
//!
//! With the node cache on, a login's token is one per node: it is written
//! to the node cache's directory (an entry like a secret's, 0600 on tmpfs)
//! for as long as its lifetime says, and the process that finds it due
//! renews it or logs in again under the entry's lock while the others wait
//! and read what it wrote. A login that failed is shared for
//! `failure_ttl`, so an outage or a refused identity costs one login per
//! node per failure TTL, not one per rank. A refused token is replaced by
//! a forced login that the node's simultaneous refusals share.

use super::auth::Auth;
use super::client::Client;
use super::identity::CertFiles;
use super::issuing::{Issues, Issuing};
use super::ledger::Ledger;
use super::login::Login;
use super::wire::{self, errors_summary, expect};
use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::lifetime::{self, Lifetime};
use crate::secrets::provider::zeroize_json;
use crate::secrets::remote::http::Response;
use crate::secrets::remote::meter;
use crate::secrets::remote::node::entry::Shareable;
use crate::secrets::remote::node::{Against, Mode, Slot};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::{FetchError, RemoteSettings};
use crate::sys::{refresher, ForkFlag, Mutex};
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// After a lookup of a fixed token's TTL got no answer, it is asked again
/// this much later.
const LOOKUP_AGAIN: Duration = Duration::from_secs(30);

/// What the refresher does for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Job {
    /// Ask its TTL (`auth/token/lookup-self`).
    Lookup,
    /// Renew it (`auth/token/renew-self`).
    Renew,
}

/// The token in use and what is known of its lifetime.
struct Held {
    token: SecretString,
    /// `None`: not known yet (a fixed token not looked up).
    lifetime: Option<Lifetime>,
    /// A login's: until when it is used (monotonic ns; `None`: no end).
    until: Option<u64>,
    /// What the refresher does next, and from when (monotonic ns).
    next: Option<(u64, Job)>,
    /// A job is scheduled on this process's refresher.
    scheduled: ForkFlag,
}

/// A token as a login or renewal issued it: what the node's processes share.
pub(super) struct Issued {
    token: SecretString,
    lifetime: Lifetime,
}

impl Shareable for Issued {
    fn encode(&self) -> Option<SecretBytes> {
        let mut out = SecretBytes::with_capacity(256);
        let mut doc = serde_json::json!({
            "token": self.token.expose(),
            "lease": self.lifetime.ttl().as_secs(),
            "renewable": self.lifetime.renewable(),
            "start": self.lifetime.start(),
        });
        serde_json::to_writer(&mut out, &doc).ok()?;
        zeroize_json(&mut doc);
        Some(out)
    }

    fn decode(body: &[u8]) -> Option<Issued> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let issued = Issued {
            token: SecretString::from(doc["token"].as_str()?),
            lifetime: Lifetime::since(
                doc["start"].as_u64()?,
                Duration::from_secs(doc["lease"].as_u64()?),
                doc["renewable"].as_bool()?,
            ),
        };
        zeroize_json(&mut doc);
        Some(issued)
    }

    /// Shared until it is due (renewed or replaced).
    fn ttl(&self) -> Option<Duration> {
        let at = self.lifetime.next_at()?;
        Some(Duration::from_nanos(
            at.saturating_sub(crate::sys::clock::precise()),
        ))
    }
}

/// The token's owner; see the module documentation.
pub(super) struct Session {
    /// This session, for the jobs it hands the refresher.
    me: Weak<Session>,
    client: Arc<Client>,
    pub(super) auth: Auth,
    /// The TLS client certificate's files, when configured.
    pub(super) client_cert: Option<CertFiles>,
    held: Mutex<Option<Held>>,
    /// With the node cache on, a login's token is shared by the node's
    /// processes through this slot, used with its own settings.
    slot: Option<(Slot, RemoteSettings)>,
    /// Where logins are recorded for their revocation.
    ledger: Arc<Ledger>,
    /// Logins and lease requests in flight: sent once, read to the end.
    issuing: Issuing,
    /// Logins answered, those that reached no node, and the slowest one's
    /// wait (an election waited out shows here), counted once in the
    /// meter's registry: for its status line.
    counted: meter::Local,
}

impl Session {
    pub(super) fn new(
        client: Arc<Client>,
        auth: Auth,
        client_cert: Option<CertFiles>,
        slot: Option<Slot>,
        remote: &RemoteSettings,
        ledger: Arc<Ledger>,
    ) -> Arc<Session> {
        let slot_settings = remote.for_credential(Duration::ZERO);
        Arc::new_cyclic(|me| Session {
            me: me.clone(),
            client,
            auth,
            client_cert,
            held: Mutex::with_fresh(None, || None),
            slot: slot.map(|s| (s, slot_settings)),
            ledger,
            issuing: Issuing::new(remote.request_timeout),
            counted: meter::Local::new("vault"),
        })
    }

    /// The client the token is sent with.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The token to send: the fixed one, the file's, or the login's
    /// (logging in when needed); `None` in agent mode.
    pub(super) fn token(&self) -> Result<Option<SecretString>, FetchError> {
        match &self.auth {
            Auth::Token(t, _) => Ok(Some(t.clone())),
            Auth::File(f) => Ok(Some(f.get()?)),
            Auth::Agent => Ok(None),
            Auth::Login(_) => self.login_token(false).map(Some),
        }
    }

    /// The token in use, without a login or a request (`None`: none yet, or
    /// agent mode).
    pub(super) fn token_held(&self) -> Option<SecretString> {
        match &self.auth {
            Auth::Login(_) => self.held.lock().as_ref().map(|h| h.token.clone()),
            _ => self.token().ok().flatten(),
        }
    }

    /// A GET with the token: [`call`](Self::call).
    pub(super) fn get(&self, path: &str) -> Result<Response, FetchError> {
        self.call("GET", path, b"")
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
        self.call_as(method, path, body, None)
    }

    /// [`call`](Self::call) for a request that issues a lease: sent once and
    /// read to the end ([`Issuing`]).
    pub(super) fn call_issuing(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        self.call_as(method, path, body, Some(Issues::Lease))
    }

    /// The provider is dropped: what requests still in flight issued is
    /// revoked ([`Issuing::settle`]).
    pub(super) fn settle_in_flight(&self) {
        self.issuing.settle();
    }

    fn call_as(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        issues: Option<Issues>,
    ) -> Result<Response, FetchError> {
        let send = |token: Option<&SecretString>| match issues {
            None => self.client.send(method, path, token, body),
            Some(kind) => self
                .issuing
                .send(&self.client, (method, path), token, body, kind),
        };
        let token = self.token()?;
        let r = send(token.as_ref())?;
        if r.status != 403 {
            if let (Auth::Token(..), Some(token)) = (&self.auth, &token) {
                self.watch(token, true);
            }
            return Ok(r);
        }
        match (&self.auth, &token) {
            (Auth::Login(_), _) => {
                let token = self.login_token(true)?;
                send(Some(&token))
            }
            (Auth::File(f), Some(used)) => match f.changed_since(used)? {
                Some(new) => send(Some(&new)),
                None => Ok(r),
            },
            _ => Ok(r),
        }
    }

    /// Makes sure the refresher has `token`'s next job: its TTL's lookup
    /// (a token not seen before, when `fixed`) or its renewal, each at the
    /// point its lifetime names. The one way a token is renewed.
    fn watch(&self, token: &SecretString, fixed: bool) {
        let mut held = self.held.lock();
        let known = held
            .as_ref()
            .is_some_and(|h| h.token.expose() == token.expose());
        if !known {
            if !fixed {
                return;
            }
            *held = Some(Held {
                token: token.clone(),
                lifetime: None,
                until: None,
                next: Some((crate::sys::clock::precise(), Job::Lookup)),
                scheduled: ForkFlag::new(),
            });
        }
        if let Some(h) = held.as_mut() {
            self.schedule(h);
        }
    }

    /// Schedules `h`'s next job on the refresher, unless one is already.
    fn schedule(&self, h: &mut Held) {
        let Some((at, job)) = h.next else {
            return;
        };
        if !h.scheduled.set() {
            return;
        }
        let delay = Duration::from_nanos(at.saturating_sub(crate::sys::clock::precise()));
        let (me, token) = (self.me.clone(), h.token.clone());
        refresher::submit_after(
            delay,
            Box::new(move || {
                if let Some(session) = me.upgrade() {
                    session.settle(&token, job);
                }
            }),
        );
    }

    /// The refresher's half of [`watch`](Self::watch): renews `token` or
    /// asks its TTL, and says what is due next.
    pub(super) fn settle(&self, token: &SecretString, job: Job) {
        let found = match job {
            Job::Renew => self.renew(token),
            Job::Lookup => self.look_up(token),
        };
        let mut held = self.held.lock();
        let Some(h) = held.as_mut().filter(|h| h.token.expose() == token.expose()) else {
            return;
        };
        h.scheduled.clear();
        match found {
            Some(l) => {
                h.lifetime = Some(l);
                h.until = l.replace_at();
                h.next = l.renew_at_jittered().map(|at| (at, Job::Renew));
            }
            // Not answered (a transient failure, or a token not allowed to
            // look itself up): look again a while later.
            None if job == Job::Lookup => {
                h.next = Some((lifetime::from_now(LOOKUP_AGAIN), Job::Lookup));
            }
            // A renewal refused: the token lives out its time (a login's
            // is then replaced).
            None => h.next = None,
        }
        self.schedule(h);
    }

    /// `auth/token/lookup-self`: the token's TTL and whether it is
    /// renewable.
    fn look_up(&self, token: &SecretString) -> Option<Lifetime> {
        let answer = self
            .client
            .send("GET", "auth/token/lookup-self", Some(token), b"")
            .ok()
            .filter(|r| r.status == 200);
        let mut doc = answer.and_then(|r| r.json()).unwrap_or(Value::Null);
        let found = (
            doc["data"]["ttl"].as_u64().map(Duration::from_secs),
            doc["data"]["renewable"].as_bool(),
        );
        zeroize_json(&mut doc);
        match found {
            (Some(ttl), Some(renewable)) => Some(Lifetime::new(ttl, renewable)),
            _ => None,
        }
    }

    /// `auth/token/renew-self` for `token`: what was granted, `None` when
    /// refused or not answered. Sent without waiting out an election (the
    /// token is still valid; the login that replaces it later waits).
    fn renew(&self, token: &SecretString) -> Option<Lifetime> {
        let r = self
            .client
            .send_once("POST", "auth/token/renew-self", Some(token), b"{}")
            .ok()?;
        if r.status != 200 {
            return None;
        }
        let mut doc = r.json()?;
        let lease = wire::seconds(&doc["auth"]["lease_duration"]);
        let renewable = doc["auth"]["renewable"].as_bool().unwrap_or(false);
        zeroize_json(&mut doc);
        meter::add("vault", |c| c.renewals += 1);
        Some(Lifetime::new(lease?, renewable))
    }

    /// The login's token: the one held until it is due for replacement
    /// (its renewal handed to the refresher when due), else renewed or
    /// logged in again through the node's shared entry with the node cache
    /// on, or logged in again; `force`: the server refused the one held,
    /// replace it.
    pub(super) fn login_token(&self, force: bool) -> Result<SecretString, FetchError> {
        let Auth::Login(login) = &self.auth else {
            return Err(FetchError::permanent(Error::Internal(
                "a login token asked of a session without a login".into(),
            )));
        };
        let mut held = self.held.lock();
        // The token the server refused: another process of the node may
        // have replaced it already (its entry then answers, no login).
        let refused = match force {
            true => held.take().map(|h| h.token),
            false => None,
        };
        if let Some(h) = held.as_mut() {
            if h.until.is_none_or(|at| !lifetime::passed(at)) {
                // Its renewal is on the refresher (a forked child's own).
                self.schedule(h);
                return Ok(h.token.clone());
            }
        }
        let before = held.take();
        let (issued, until, shared) = match &self.slot {
            None => (self.log_in(login)?, None, false),
            Some((slot, settings)) => {
                let mode = if force { Mode::Force } else { Mode::Get };
                let judge = |entry: &Fetched<Issued>| {
                    let token = match entry {
                        Fetched::Found(i) => Some(i.token.expose()),
                        Fetched::Absent => None,
                    };
                    Against::of(refused.as_ref().map(SecretString::expose), token)
                };
                let answer = slot.fetch(settings, mode, &judge, || {
                    self.renew_or_log_in(login, before.as_ref())
                        .map(Fetched::Found)
                });
                let issued = match answer.outcome? {
                    Fetched::Found(issued) => issued,
                    Fetched::Absent => {
                        return Err(FetchError::transient(Error::Internal(
                            "the node's shared login entry is empty".into(),
                        )))
                    }
                };
                (issued, answer.remaining, true)
            }
        };
        // A shared token is used until its entry ends (the node renews it
        // through the entry: nothing for the refresher); this process's own
        // until its lifetime says it is replaced, renewed meanwhile.
        let l = issued.lifetime;
        let until = match (until, shared) {
            (Some(left), _) => Some(lifetime::from_now(left)),
            (None, true) => l.next_at(),
            (None, false) => l.replace_at(),
        };
        let mut h = Held {
            token: issued.token.clone(),
            lifetime: Some(l),
            until,
            next: (!shared)
                .then(|| l.renew_at_jittered().map(|at| (at, Job::Renew)))
                .flatten(),
            scheduled: ForkFlag::new(),
        };
        self.schedule(&mut h);
        *held = Some(h);
        Ok(issued.token)
    }

    /// For the node's shared entry: the token this process held renewed,
    /// when it may be, else a new login.
    fn renew_or_log_in(&self, login: &Login, held: Option<&Held>) -> Result<Issued, FetchError> {
        let renewable = held.filter(|h| h.lifetime.is_some_and(|l| l.renewable()));
        if let Some(h) = renewable {
            if let Some(l) = self.renew(&h.token).filter(Lifetime::renews) {
                return Ok(Issued {
                    token: h.token.clone(),
                    lifetime: l,
                });
            }
        }
        self.log_in(login)
    }

    /// One login. A JWT or certificate login refused (400 or 403) is sent
    /// once more when the identity read again differs from the one
    /// refused: the platform may have rotated it in between.
    fn log_in(&self, login: &Login) -> Result<Issued, FetchError> {
        let mut request = login.request()?;
        let mut retried = false;
        loop {
            if let Some(cert) = &request.cert {
                self.client.cluster.present(&Some(cert.clone()));
            }
            let what = login.what();
            let began = Instant::now();
            let r = self.issuing.send(
                &self.client,
                ("POST", &request.path),
                None,
                request.body.expose().as_bytes(),
                Issues::Token,
            );
            self.counted.login(began.elapsed(), r.is_ok());
            let r = r?;
            let r = match r.status {
                400 | 403 => {
                    if login.rereads_identity() && !retried {
                        if let Ok(next) = login.request() {
                            if next.identity != request.identity {
                                (request, retried) = (next, true);
                                continue;
                            }
                        }
                    }
                    return Err(FetchError::permanent(Error::Auth(format!(
                        "Vault {what} refused (HTTP {}){}: {}",
                        r.status,
                        errors_summary(&r),
                        login.hint()
                    ))));
                }
                404 => {
                    self.client.not_found(
                        &r,
                        what,
                        (
                            format!("auth method at auth/{}", login.mount),
                            "enable it, or set vault_auth_mount",
                        ),
                    )?;
                    return Err(FetchError::permanent(Error::Remote(format!(
                        "Vault {what}: not found (HTTP 404){}",
                        errors_summary(&r)
                    ))));
                }
                _ => expect(r, what)?,
            };
            let mut doc = r.json().unwrap_or(Value::Null);
            let token = doc["auth"]["client_token"].as_str().map(SecretString::from);
            let lease = wire::seconds(&doc["auth"]["lease_duration"]).map_or(0, |d| d.as_secs());
            let renewable = doc["auth"]["renewable"].as_bool().unwrap_or(false);
            zeroize_json(&mut doc);
            let token = token.ok_or_else(|| {
                FetchError::transient(Error::Remote(format!(
                    "Vault {what}: the answer holds no client_token"
                )))
            })?;
            self.ledger.logged_in(&token);
            return Ok(Issued {
                token,
                lifetime: Lifetime::new(Duration::from_secs(lease), renewable),
            });
        }
    }

    /// How the token is obtained, with the logins' count and the slowest
    /// one's wait.
    pub(super) fn describe(&self) -> String {
        match &self.auth {
            Auth::Login(_) => {
                let (logins, failed, slowest) = self.counted.logins();
                format!(
                    "{} ({logins} logins{}, {failed} failed to reach a node, the slowest {:.3} s)",
                    self.auth.describe(),
                    if self.slot.is_some() {
                        " by this process, the token shared with the node's others"
                    } else {
                        ""
                    },
                    slowest.as_secs_f64()
                )
            }
            other => other.describe(),
        }
    }

    /// The problems a status should show now: the identity's files, and a
    /// client certificate configured that does not load (a certificate
    /// login says it itself).
    pub(super) fn warnings(&self) -> Vec<String> {
        let mut warnings = self.auth.warnings();
        let cert_login = matches!(&self.auth, Auth::Login(l) if l.is_cert());
        if let (Some(files), false) = (&self.client_cert, cert_login) {
            if let Err(e) = files.load() {
                warnings.push(format!("the TLS client certificate is not presented: {e}"));
            }
        }
        warnings
    }
}

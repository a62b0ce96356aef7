//! The Vault token, whatever its source: a fixed token (from the
//! configuration or the environment), a token file's (an agent's sink, read
//! again when it changes), a login's (AppRole, Kubernetes, JWT, TLS
//! certificate, AWS IAM: [`Logins`], held by a
//! [`Keeper`]), or none behind an agent.
//!
//! A login's token is the keeper's: used until it is due for replacement,
//! renewed ahead on the refresher, replaced once after the server refused
//! it, one per node with the node cache on (see
//! [`credential`](crate::secrets::credential)). A fixed token's TTL
//! is first asked on the refresher (`auth/token/lookup-self`) after a read
//! the server did not refuse, and the token then renewed there by the same
//! rule and the same request ([`renew_self`]); never on a caller's path. A
//! token file's writer (an agent, `bao login`) looks after its own token:
//! renewing an agent's token from every process of a node multiplies the
//! requests and upsets the agent's own renewals.

use super::auth::Auth;
use super::client::Client;
use super::identity::CertFiles;
use super::issuing::{Issues, Issuing};
use super::ledger::Ledger;
use super::logins::{renew_self, Logins};
use crate::secret::SecretString;
use crate::secrets::credential::Keeper;
use crate::secrets::lifetime::{self, Lifetime};
use crate::secrets::node::Slot;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::Response;
use crate::secrets::transport::meter;
use crate::secrets::transport::{FetchError, RemoteSettings};
use crate::sys::{refresher, ForkFlag, Mutex};
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// After a lookup of a fixed token's TTL got no answer, it is asked again
/// this much later.
const LOOKUP_AGAIN: Duration = Duration::from_secs(30);

/// What the refresher does for a fixed token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Job {
    /// Ask its TTL (`auth/token/lookup-self`).
    Lookup,
    /// Renew it (`auth/token/renew-self`).
    Renew,
}

/// A fixed token and what the refresher does next for it.
struct Watched {
    token: SecretString,
    /// What the refresher does next, and from when (monotonic ns).
    next: Option<(u64, Job)>,
    /// A job is scheduled on this process's refresher.
    scheduled: ForkFlag,
}

/// The token's owner; see the module documentation.
pub(super) struct Session {
    /// This session, for the jobs it hands the refresher.
    me: Weak<Session>,
    client: Arc<Client>,
    pub(super) auth: Auth,
    /// The TLS client certificate's files, when configured.
    pub(super) client_cert: Option<CertFiles>,
    /// A login's tokens.
    keeper: Option<Arc<Keeper<SecretString>>>,
    /// A fixed token, once a read with it was not refused.
    watched: Mutex<Option<Watched>>,
    /// Logins and lease requests in flight: sent once, read to the end.
    issuing: Arc<Issuing>,
}

impl Session {
    /// The session of `auth`; a login's token shared through `slot` with the
    /// node's processes when given.
    pub(super) fn new(
        client: Arc<Client>,
        auth: Auth,
        client_cert: Option<CertFiles>,
        slot: Option<Slot>,
        remote: &RemoteSettings,
        ledger: Arc<Ledger>,
    ) -> Arc<Session> {
        let issuing = Arc::new(Issuing::new(remote.request_timeout));
        let keeper = match &auth {
            Auth::Login(login) => {
                let logins = Logins {
                    client: Arc::clone(&client),
                    login: Arc::clone(login),
                    ledger,
                    issuing: Arc::clone(&issuing),
                };
                let slot = slot.map(|s| (s, remote.clone()));
                Some(Keeper::new("vault", Box::new(logins), slot))
            }
            _ => None,
        };
        Arc::new_cyclic(|me| Session {
            me: me.clone(),
            client,
            auth,
            client_cert,
            keeper,
            watched: Mutex::with_fresh(None, || None),
            issuing,
        })
    }

    /// The client the token is sent with.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The token to send: the fixed one, the file's, or the login's
    /// (logging in when needed); `None` in agent mode.
    pub(super) fn token(&self) -> Result<Option<SecretString>, FetchError> {
        match (&self.auth, &self.keeper) {
            (_, Some(keeper)) => keeper.get().map(Some),
            (Auth::Token(t, _), _) => Ok(Some(t.clone())),
            (Auth::File(f), _) => Ok(Some(f.get()?)),
            _ => Ok(None),
        }
    }

    /// The token in use, without a login or a request (`None`: none yet, or
    /// agent mode).
    pub(super) fn token_held(&self) -> Option<SecretString> {
        match &self.keeper {
            Some(keeper) => keeper.held().map(|(token, _)| token),
            None => self.token().ok().flatten(),
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
                self.watch(token);
            }
            return Ok(r);
        }
        match (&self.keeper, &self.auth, &token) {
            (Some(keeper), _, Some(refused)) => send(Some(&keeper.instead_of(refused)?)),
            (None, Auth::File(f), Some(used)) => match f.changed_since(used)? {
                Some(new) => send(Some(&new)),
                None => Ok(r),
            },
            _ => Ok(r),
        }
    }

    /// Makes sure the refresher has the fixed `token`'s next job: its
    /// TTL's lookup (a token not seen before) or its renewal, each at the
    /// point its lifetime names.
    fn watch(&self, token: &SecretString) {
        let mut watched = self.watched.lock();
        let known = watched
            .as_ref()
            .is_some_and(|w| w.token.expose() == token.expose());
        if !known {
            *watched = Some(Watched {
                token: token.clone(),
                next: Some((crate::sys::clock::precise(), Job::Lookup)),
                scheduled: ForkFlag::new(),
            });
        }
        if let Some(w) = watched.as_mut() {
            self.schedule(w);
        }
    }

    /// Schedules `w`'s next job on the refresher, unless one is already.
    fn schedule(&self, w: &mut Watched) {
        let Some((at, job)) = w.next else {
            return;
        };
        if !w.scheduled.set() {
            return;
        }
        let delay = Duration::from_nanos(at.saturating_sub(crate::sys::clock::precise()));
        let (me, token) = (self.me.clone(), w.token.clone());
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
            Job::Renew => renew_self(&self.client, token).inspect(|_| {
                meter::add("vault", |c| c.renewals += 1);
            }),
            Job::Lookup => self.look_up(token),
        };
        let mut watched = self.watched.lock();
        let Some(w) = watched
            .as_mut()
            .filter(|w| w.token.expose() == token.expose())
        else {
            return;
        };
        w.scheduled.clear();
        w.next = match found {
            Some(l) => l.renew_at_jittered().map(|at| (at, Job::Renew)),
            // Not answered (a transient failure, or a token not allowed to
            // look itself up): look again a while later.
            None if job == Job::Lookup => Some((lifetime::from_now(LOOKUP_AGAIN), Job::Lookup)),
            // A renewal refused: the token lives out its time.
            None => None,
        };
        self.schedule(w);
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

    /// How the token is obtained, with the logins' count and the slowest
    /// one's wait.
    pub(super) fn describe(&self) -> String {
        match &self.keeper {
            Some(keeper) => {
                let (logins, failed, slowest) = keeper.issues();
                format!(
                    "{} ({logins} logins{}, {failed} failed to reach a node, the slowest {:.3} s)",
                    self.auth.describe(),
                    if keeper.shared() {
                        " by this process, the token shared with the node's others"
                    } else {
                        ""
                    },
                    slowest.as_secs_f64()
                )
            }
            None => self.auth.describe(),
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

//! The Vault token, whatever its source: a fixed token (from the
//! configuration or the environment), a token file's (an agent's sink, read
//! again when it changes), a login's (AppRole, Kubernetes, JWT, TLS
//! certificate, AWS IAM: [`Logins`], held by a
//! [`Keeper`]), or none behind an agent.
//!
//! A login's token and a fixed token are each held by a keeper (see
//! [`credential`](crate::secrets::credential)), with its one clock: a
//! login's used until it is due for replacement, renewed ahead on the
//! refresher, replaced once after the server refused it, one per node with
//! the node cache on; a fixed token preloaded ([`Keeper::preloaded`]), its
//! TTL asked on the refresher (`auth/token/lookup-self`) after the first
//! answer the server did not refuse, and the token then renewed there by
//! the same rule and the same request ([`FixedToken`]); never on a
//! caller's path. This module only chooses among the sources. A token file's writer (an agent, `bao login`) looks
//! after its own token: renewing an agent's token from every process of a
//! node multiplies the requests and upsets the agent's own renewals.

use super::auth::Auth;
use super::client::Client;
use super::identity::CertFiles;
use super::issuing::{Issues, Issuing};
use super::ledger::Ledger;
use super::logins::{FixedToken, Logins};
use crate::secret::SecretString;
use crate::secrets::credential::Keeper;
use crate::secrets::node::Slot;
use crate::secrets::transport::http::Response;
use crate::secrets::transport::{FetchError, RemoteSettings};
use std::sync::Arc;

/// The token's owner; see the module documentation.
pub(super) struct Session {
    client: Arc<Client>,
    pub(super) auth: Auth,
    /// The TLS client certificate's files, when configured.
    pub(super) client_cert: Option<CertFiles>,
    /// A login's tokens, or the fixed token.
    keeper: Option<Arc<Keeper<SecretString>>>,
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
            Auth::Token(token, _) => {
                let fixed = FixedToken {
                    client: Arc::clone(&client),
                    token: token.clone(),
                };
                Some(Keeper::preloaded("vault", Box::new(fixed), token.clone()))
            }
            _ => None,
        };
        Arc::new(Session {
            client,
            auth,
            client_cert,
            keeper,
            issuing,
        })
    }

    /// The client the token is sent with.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The client, shared (tests).
    #[cfg(test)]
    pub(super) fn client_arc(&self) -> Arc<Client> {
        Arc::clone(&self.client)
    }

    /// The token to send: the fixed one, the file's, or the login's
    /// (logging in when needed); `None` in agent mode.
    pub(super) fn token(&self) -> Result<Option<SecretString>, FetchError> {
        match (&self.auth, &self.keeper) {
            (_, Some(keeper)) => keeper.get().map(Some),
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
            if let (Some(keeper), Auth::Token(..)) = (&self.keeper, &self.auth) {
                keeper.start();
            }
            return Ok(r);
        }
        match (&self.keeper, &self.auth, &token) {
            (Some(keeper), Auth::Login(_), Some(refused)) => {
                send(Some(&keeper.instead_of(refused)?))
            }
            (None, Auth::File(f), Some(used)) => match f.changed_since(used)? {
                Some(new) => send(Some(&new)),
                None => Ok(r),
            },
            _ => Ok(r),
        }
    }

    /// How the token is obtained, with the logins' count and the slowest
    /// one's wait.
    pub(super) fn describe(&self) -> String {
        match (&self.keeper, &self.auth) {
            (Some(keeper), Auth::Login(_)) => {
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
            _ => self.auth.describe(),
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

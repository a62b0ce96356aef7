//! A Vault login as an [`Issuer`] of tokens, for the session's
//! [`Keeper`](crate::secrets::credential::Keeper) to hold: issuing
//! is the login (AppRole, Kubernetes, JWT, TLS certificate, AWS IAM),
//! renewing is `auth/token/renew-self`. Each login's token is recorded in
//! the ledger for its revocation; a login is sent once and read to the end
//! ([`Issuing`]). A fixed token is an issuer too ([`FixedToken`]): issuing
//! asks its lifetime (`auth/token/lookup-self`), renewing is the same
//! `renew-self`.

use super::client::Client;
use super::issuing::{Issues, Issuing};
use super::ledger::Ledger;
use super::login::Login;
use super::wire::{self, errors_summary, expect};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::{Issued, Issuer};
use crate::secrets::lifetime::Lifetime;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::FetchError;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The tokens of one login method.
pub(super) struct Logins {
    pub(super) client: Arc<Client>,
    pub(super) login: Arc<Login>,
    /// Where logins are recorded for their revocation.
    pub(super) ledger: Arc<Ledger>,
    /// Logins and lease requests in flight: sent once, read to the end.
    pub(super) issuing: Arc<Issuing>,
}

impl Issuer<SecretString> for Logins {
    /// One login. A JWT or certificate login refused (400 or 403) is sent
    /// once more when the identity read again differs from the one
    /// refused: the platform may have rotated it in between.
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let login = &self.login;
        let mut request = login.request()?;
        let mut retried = false;
        loop {
            if let Some(cert) = &request.cert {
                self.client.cluster.present(&Some(cert.clone()));
            }
            let what = login.what();
            let r = self.issuing.send(
                &self.client,
                ("POST", &request.path),
                None,
                request.body.expose().as_bytes(),
                Issues::Token,
            )?;
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
            let doc = r.json().unwrap_or(Value::Null);
            let lease = wire::seconds(&doc["auth"]["lease_duration"]).map_or(0, |d| d.as_secs());
            let renewable = doc["auth"]["renewable"].as_bool().unwrap_or(false);
            let token = wire::take_string(Some(doc), &["auth", "client_token"]);
            let token = token.map(SecretString::from).ok_or_else(|| {
                FetchError::transient(Error::Remote(format!(
                    "Vault {what}: the answer holds no client_token"
                )))
            })?;
            self.ledger.logged_in(&token);
            return Ok(Issued {
                value: token,
                lifetime: Lifetime::new(Duration::from_secs(lease), renewable),
            });
        }
    }

    fn renew(&self, held: &Issued<SecretString>) -> Option<Lifetime> {
        renew_self(&self.client, &held.value)
    }

    fn describe(&self) -> String {
        self.login.describe()
    }
}

/// `auth/token/renew-self` for `token`: what was granted, `None` when
/// refused or not answered. Sent without waiting out an election (the
/// token is still valid; the login that replaces it later waits).
pub(super) fn renew_self(client: &Client, token: &SecretString) -> Option<Lifetime> {
    let r = client
        .send_once("POST", "auth/token/renew-self", Some(token), b"{}")
        .ok()?;
    if r.status != 200 {
        return None;
    }
    let mut doc = r.json()?;
    let lease = wire::seconds(&doc["auth"]["lease_duration"]);
    let renewable = doc["auth"]["renewable"].as_bool().unwrap_or(false);
    zeroize_json(&mut doc);
    Some(Lifetime::new(lease?, renewable))
}

/// A fixed token (the configuration's or the environment's): preloaded in
/// its keeper, which asks its lifetime on the refresher once the server
/// took it, and renews it by the same rule as a login's.
pub(super) struct FixedToken {
    pub(super) client: Arc<Client>,
    pub(super) token: SecretString,
}

impl Issuer<SecretString> for FixedToken {
    /// `auth/token/lookup-self`: the token with its TTL when it is
    /// renewable. One that is not, or that the server will not look up (no
    /// policy for it, no longer valid), is used as it is and nothing more
    /// is asked: endless to the keeper. A lookup not answered is tried
    /// again.
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let r = self
            .client
            .send("GET", "auth/token/lookup-self", Some(&self.token), b"")?;
        let lifetime = match r.status {
            200 => {
                let mut doc = r.json().unwrap_or(Value::Null);
                let found = (
                    doc["data"]["ttl"].as_u64().map(Duration::from_secs),
                    doc["data"]["renewable"].as_bool(),
                );
                zeroize_json(&mut doc);
                // One that cannot be renewed cannot be replaced either:
                // used as it is until the server refuses it.
                match found {
                    (Some(ttl), Some(true)) => Lifetime::new(ttl, true),
                    _ => Lifetime::new(Duration::ZERO, false),
                }
            }
            400..=499 => Lifetime::new(Duration::ZERO, false),
            status => {
                return Err(FetchError::transient(Error::Remote(format!(
                    "Vault token lookup: HTTP {status}{}",
                    errors_summary(&r)
                ))))
            }
        };
        Ok(Issued {
            value: self.token.clone(),
            lifetime,
        })
    }

    fn renew(&self, held: &Issued<SecretString>) -> Option<Lifetime> {
        renew_self(&self.client, &held.value)
    }

    fn describe(&self) -> String {
        "a fixed token".into()
    }

    fn logs_in(&self) -> bool {
        false
    }
}

//! The token of a login (AppRole, Kubernetes, JWT, TLS certificate, AWS
//! IAM): logged in on first use, renewed at two thirds of its lease while
//! it may be, and replaced by a new login at 80% after that, or at once
//! after the server refused it.
//!
//! With the node cache on, the token is one per node: it is written to the
//! node cache's directory (an entry like a secret's, 0600 on tmpfs) for as
//! long as it is good, and the process that finds it due renews it or logs
//! in again under the entry's lock while the others wait and read what it
//! wrote. A login that failed is shared for `failure_ttl`, so an outage or
//! a refused identity costs one login per node per failure TTL, not one
//! per rank. A refused token is replaced by a forced login that the
//! node's simultaneous refusals share.

use super::super::auth::Auth;
use super::super::login::{Login, Method};
use super::super::wire::{errors_summary, expect};
use super::{part_of, Client, MIN_RENEWED_TTL};
use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::provider::zeroize_json;
use crate::secrets::remote::node::entry::Shareable;
use crate::secrets::remote::node::{Against, Mode};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::{FetchError, RemoteSettings};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A login's token as this process holds it.
pub(in crate::secrets::vault) struct Token {
    value: SecretString,
    /// When to log in again (80% of the lease, or the shared entry's end);
    /// `None`: never expires.
    renew_at: Option<Instant>,
    /// When to renew it instead (two thirds of the lease), while it is
    /// renewable and its max TTL leaves more than [`MIN_RENEWED_TTL`]; never
    /// for a token shared by the node (renewed through the entry).
    renew_due: Option<Instant>,
    renewable: bool,
}

/// A token as a login or renewal issued it: what the node's processes share.
pub(in crate::secrets::vault) struct Issued {
    token: SecretString,
    lease: Duration,
    renewable: bool,
}

impl Token {
    /// The token.
    pub(in crate::secrets::vault) fn value(&self) -> SecretString {
        self.value.clone()
    }
}

impl Issued {
    /// How long it is used before a renewal (two thirds of the lease) or a
    /// new login (80%); `None`: it never expires.
    fn good_for(&self) -> Option<Duration> {
        if self.lease.is_zero() {
            return None;
        }
        let part = if self.renewable && self.lease >= MIN_RENEWED_TTL {
            2.0 / 3.0
        } else {
            0.8
        };
        Some(self.lease.min(super::LONGEST_LEASE).mul_f64(part))
    }
}

impl Shareable for Issued {
    fn encode(&self) -> Option<SecretBytes> {
        let mut out = SecretBytes::with_capacity(256);
        let mut doc = serde_json::json!({
            "token": self.token.expose(),
            "lease": self.lease.as_secs(),
            "renewable": self.renewable,
        });
        serde_json::to_writer(&mut out, &doc).ok()?;
        zeroize_json(&mut doc);
        Some(out)
    }

    fn decode(body: &[u8]) -> Option<Issued> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let issued = Issued {
            token: SecretString::from(doc["token"].as_str()?),
            lease: Duration::from_secs(doc["lease"].as_u64()?),
            renewable: doc["renewable"].as_bool()?,
        };
        zeroize_json(&mut doc);
        Some(issued)
    }

    fn ttl(&self) -> Option<Duration> {
        self.good_for()
    }
}

/// The settings a login's node-cache slot is used with: its entry lasts
/// as long as the token's own rule says ([`Issued::ttl`]), a failure as
/// long as the provider's `failure_ttl`.
pub(super) fn slot_settings(remote: &RemoteSettings) -> RemoteSettings {
    RemoteSettings {
        cache_ttl: super::LONGEST_LEASE,
        negative_ttl: Duration::ZERO,
        refresh_ahead_permille: 1000,
        ..remote.clone()
    }
}

impl Client {
    /// The login's token: the one held while it is good, else renewed or
    /// logged in again (through the node's shared entry with the node cache
    /// on); `force`: the server refused the one held, replace it.
    pub(in crate::secrets::vault) fn login_token(
        &self,
        force: bool,
    ) -> Result<SecretString, FetchError> {
        let Auth::Login(login) = &self.auth else {
            return Err(FetchError::permanent(Error::Internal(
                "a login token asked of a client without a login".into(),
            )));
        };
        let mut cached = self.token.lock();
        let now = Instant::now();
        // The token the server refused: another process of the node may
        // have replaced it already (its entry then answers, no login).
        let refused = match force {
            true => cached.take().map(|t| t.value),
            false => None,
        };
        if let Some(t) = cached.as_mut() {
            // Renewed at two thirds of its lease while it may be, up to its
            // max TTL; logged in again at 80% after that.
            if t.renew_due.is_some_and(|at| now >= at) {
                t.renew_due = None;
                if let Some((lease, renewable)) = self.renew(&t.value) {
                    t.renew_at = Some(part_of(now, lease, 0.8));
                    t.renew_due = (renewable && lease >= MIN_RENEWED_TTL)
                        .then(|| part_of(now, lease, 2.0 / 3.0));
                }
            }
            if t.renew_at.is_none_or(|at| now < at) {
                return Ok(t.value.clone());
            }
        }
        let held = cached.take();
        let (issued, good_for, shared) = match &self.login_slot {
            None => {
                let issued = self.log_in(login)?;
                let good = issued.lease;
                (issued, (!good.is_zero()).then(|| good.mul_f64(0.8)), false)
            }
            Some(slot) => {
                let mode = if force { Mode::Force } else { Mode::Get };
                let judge = |entry: &Fetched<Issued>| {
                    let token = match entry {
                        Fetched::Found(i) => Some(i.token.expose()),
                        Fetched::Absent => None,
                    };
                    Against::of(refused.as_ref().map(SecretString::expose), token)
                };
                let answer = slot.fetch(&self.login_settings, mode, &judge, || {
                    self.renew_or_log_in(login, held.as_ref())
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
                let good = answer.remaining.or_else(|| issued.good_for());
                (issued, good, true)
            }
        };
        let now = Instant::now();
        let lease = issued.lease;
        *cached = Some(Token {
            value: issued.token.clone(),
            renew_at: good_for.map(|g| now.checked_add(g).unwrap_or(now)),
            renew_due: (!shared && issued.renewable && lease >= MIN_RENEWED_TTL)
                .then(|| part_of(now, lease, 2.0 / 3.0)),
            renewable: issued.renewable,
        });
        Ok(issued.token)
    }

    /// For the node's shared entry: the token this process held renewed,
    /// when it may be, else a new login.
    fn renew_or_log_in(&self, login: &Login, held: Option<&Token>) -> Result<Issued, FetchError> {
        if let Some(t) = held.filter(|t| t.renewable) {
            if let Some((lease, renewable)) = self.renew(&t.value) {
                if lease >= MIN_RENEWED_TTL {
                    return Ok(Issued {
                        token: t.value.clone(),
                        lease,
                        renewable,
                    });
                }
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
                self.cluster.present(&Some(cert.clone()));
            }
            let what = login.what();
            let began = Instant::now();
            let r = self.send(
                "POST",
                &request.path,
                None,
                request.body.expose().as_bytes(),
            );
            let waited = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.slowest_login_us.fetch_max(waited, Relaxed);
            let r = r.inspect_err(|_| {
                self.failed_logins.fetch_add(1, Relaxed);
            })?;
            self.logins.fetch_add(1, Relaxed);
            crate::secrets::remote::meter::add("vault", |c| c.logins += 1);
            let from_file = matches!(login.method, Method::Jwt { .. } | Method::Cert { .. });
            let r = match r.status {
                400 | 403 => {
                    if from_file && !retried {
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
                    self.not_found(
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
            let lease = doc["auth"]["lease_duration"].as_u64().unwrap_or(0);
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
                lease: Duration::from_secs(lease).min(super::LONGEST_LEASE),
                renewable,
            });
        }
    }
}

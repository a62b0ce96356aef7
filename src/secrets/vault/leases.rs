//! Dynamic secrets with a lease (`vault_leases`): database credentials, PKI
//! certificates, anything Vault issues with a `lease_id`. [`Leases`]
//! issues, renews, records and revokes them.
//!
//! Each is a secret of the provider's list ([`Secret::Leased`](super::Secret)),
//! fetched and cached as a KV secret is (refresh ahead, the node cache,
//! change events), with two differences. Its TTL is what its
//! [`Lifetime`] leaves before it is taken to end: it is kept, and shared by
//! the node's processes, until then. And its fetch is given what is held,
//! and the lifetime decides ([`Lifetime::due`]): keep it as it is (no
//! request), renew it (`sys/leases/renew`, asking for its whole TTL
//! again), or issue a new one while the old one still works for what its
//! lease has left (the grace in which every process moves to the new one)
//! when the renewal is granted less than asked (the lease's `max_ttl` is
//! near) or refused, or the lease cannot be renewed. A secret with no lease
//! but an end (a PKI certificate issued without `generate_lease`) is
//! issued again the same way. Every lease issued is recorded in the
//! [`Ledger`], for its revocation when the job ends.

use super::client::Client;
use super::ledger::{Ledger, Listed, Revoked};
use super::session::Session;
use super::settings::LeasedPath;
use super::wire::{self, errors_summary, expect};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::lifetime::{Due, Lifetime};
use crate::secrets::provider::{zeroize_json, Lease, SecretMap, Version};
use crate::secrets::transport::http::Response;
use crate::secrets::transport::retry::{with_retries, FetchBound};
use crate::secrets::transport::Fetched;
use crate::secrets::transport::{meter, FetchError, RemoteSettings};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The leased secrets of a provider, and what they were issued with.
pub(super) struct Leases {
    session: Arc<Session>,
    /// The leased secrets (`vault_leases`), by name.
    pub(super) specs: BTreeMap<String, LeasedPath>,
    ledger: Arc<Ledger>,
    settings: RemoteSettings,
    /// Where this process's Vault is, as the ledger says it.
    at: Value,
    /// A client for another Vault a job's ledger names (a job process with
    /// its own configuration): its addresses and namespace.
    elsewhere: Elsewhere,
}

/// Makes a client for the Vault at the addresses and namespace given, with
/// this process's TLS settings.
pub(super) type Elsewhere =
    Box<dyn Fn(Vec<String>, Option<String>) -> Result<Client, Error> + Send + Sync>;

impl Leases {
    pub(super) fn new(
        session: Arc<Session>,
        specs: BTreeMap<String, LeasedPath>,
        ledger: Arc<Ledger>,
        settings: RemoteSettings,
        (at, elsewhere): (Value, Elsewhere),
    ) -> Leases {
        Leases {
            session,
            specs,
            ledger,
            settings,
            at,
            elsewhere,
        }
    }

    /// The leased secret `name`: what is `held` kept, renewed, or issued
    /// again, as the module documentation says.
    pub(super) fn fetch(
        &self,
        name: &str,
        held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        if let Some((map, lease)) = held.and_then(|m| m.lease().map(|l| (m, l))) {
            match lease.lifetime.due(!lease.id.expose().is_empty()) {
                Due::Keep => return Ok(Fetched::Found(map.copy())),
                Due::Renew => match self.renew(lease) {
                    // Granted in full: the same values, for longer.
                    Ok(granted) => {
                        if let Some(lifetime) = lease.lifetime.renewed(granted) {
                            let renewed = Lease {
                                id: lease.id.clone(),
                                lifetime,
                            };
                            return Ok(Fetched::Found(map.copy().with_lease(Some(renewed))));
                        }
                    }
                    Err(f) if f.transient => return Err(f),
                    // Gone: a new one.
                    Err(_) => {}
                },
                Due::Replace => {}
            }
        }
        with_retries(&self.settings, || self.issue(name))
    }

    /// `sys/leases/renew` for the whole TTL again: the time granted.
    fn renew(&self, lease: &Lease) -> Result<Duration, FetchError> {
        let body = SecretString::from(
            json!({
                "lease_id": lease.id.expose(),
                "increment": lease.lifetime.ttl().as_secs(),
            })
            .to_string(),
        );
        let r = self
            .session
            .call("PUT", "sys/leases/renew", body.expose().as_bytes())?;
        let r = expect(r, "Vault lease renewal")?;
        let doc = r.json().unwrap_or(Value::Null);
        meter::add("vault", |c| c.leases_renewed += 1);
        wire::seconds(&doc["lease_duration"]).ok_or_else(|| {
            FetchError::transient(Error::Remote(
                "Vault lease renewal: the answer holds no lease_duration".into(),
            ))
        })
    }

    /// The leased secret `name` issued now: read, or written with its data.
    fn issue(&self, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        let Some(spec) = self.specs.get(name) else {
            return Err(FetchError::permanent(Error::Internal(format!(
                "no leased secret named '{name}'"
            ))));
        };
        let what = format!("Vault leased secret '{name}' ({})", spec.path);
        let r = match &spec.data {
            None => self.session.call_issuing("GET", &spec.path, b"")?,
            Some(data) => self
                .session
                .call_issuing("PUT", &spec.path, data.as_bytes())?,
        };
        if r.status == 404 || r.status == 400 {
            return Err(FetchError::permanent(Error::ProviderUnavailable(format!(
                "{what}: refused (HTTP {}){} (is the engine mounted, the role there, and its \
                 data complete?)",
                r.status,
                errors_summary(&r)
            ))));
        }
        let r = expect(r, &what)?;
        let Some(mut doc) = r.json() else {
            return Err(FetchError::transient(Error::Remote(format!(
                "{what}: the answer is not JSON"
            ))));
        };
        let map = leased_map(name, &mut doc);
        zeroize_json(&mut doc);
        let map = map.map_err(|e| FetchError::permanent(Error::Remote(format!("{what}: {e}"))))?;
        meter::add("vault", |c| c.leases_issued += 1);
        if let Some(lease) = map.lease().filter(|l| !l.id.expose().is_empty()) {
            self.ledger.issued(&lease.id, self.session.token_held());
        }
        Ok(Fetched::Found(map))
    }

    /// Revokes what this process got, when it shares nothing (no job
    /// ledger, no node cache: the ledger keeps nothing otherwise): its
    /// manager is being freed.
    pub(super) fn revoke_own(&self) {
        let own = self.ledger.take_own();
        if !own.leases.is_empty() || !own.logins.is_empty() {
            let token = self.session.token_held();
            let _ = revoke_all(self.session.client(), &own, &self.settings, token.as_ref());
        }
    }

    /// Revokes everything the job's ledger file at `path` lists; the file
    /// is then emptied.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read (missing, not a private
    /// file of this user, too large).
    pub(super) fn revoke_ledger(&self, path: &std::path::Path) -> Result<Revoked, Error> {
        let token = self.session.token_held();
        let own = (&self.at, self.session.client(), token.as_ref());
        revoke_listed(path, Ok(own), &self.elsewhere, &self.settings)
    }
}

/// Revokes the lease `id`, with `token` (the one that issued it) or `own`
/// (the process's session's).
fn revoke_lease(
    client: &Client,
    id: &SecretString,
    token: Option<&SecretString>,
    own: Option<&SecretString>,
) -> Result<(), String> {
    let Some(token) = token.or(own) else {
        return Err(
            "no token to revoke it with (the ledger names none, and no Vault is configured)".into(),
        );
    };
    let body = SecretString::from(json!({ "lease_id": id.expose() }).to_string());
    // 400 "invalid lease": expired or revoked already.
    gone(
        client.send(
            "PUT",
            "sys/leases/revoke",
            Some(token),
            body.expose().as_bytes(),
        ),
        400,
    )
}

/// Revokes the login token `token` (`auth/token/revoke-self`: its
/// leases go with it).
fn revoke_token(client: &Client, token: &SecretString) -> Result<(), String> {
    // 403: the token is no longer valid (expired, revoked).
    gone(
        client.send("POST", "auth/token/revoke-self", Some(token), b""),
        403,
    )
}

/// Revokes the leases listed and the login tokens, all at once (at
/// most [`AT_ONCE`] requests in flight), all within one bound (a
/// request's: [`RemoteSettings::fetch_bound`]) that no election wait
/// lifts: with every node down the revocation gives up at the bound,
/// not after each request's election in turn.
pub(super) fn revoke_all(
    client: &Client,
    listed: &Listed,
    settings: &RemoteSettings,
    own: Option<&SecretString>,
) -> Revoked {
    enum Item<'a> {
        Lease(&'a SecretString, Option<&'a SecretString>),
        Login(&'a SecretString),
    }
    let items: Vec<Item<'_>> = listed
        .leases
        .iter()
        .map(|(id, token)| Item::Lease(id, token.as_ref()))
        .chain(listed.logins.iter().map(Item::Login))
        .collect();
    let mut out = Revoked::default();
    // One bound for the whole revocation, whatever the ending: one
    // request's (its timeout, retries and backoff), however many nodes
    // are down and however long an election would be waited out.
    let until = std::time::Instant::now() + settings.fetch_bound();
    for batch in items.chunks(AT_ONCE) {
        let answers: Vec<Result<(), String>> = std::thread::scope(|s| {
            let running: Vec<_> = batch
                .iter()
                .map(|item| {
                    s.spawn(move || {
                        let _bound = FetchBound::hard(until);
                        let _counted = meter::scope("vault");
                        match item {
                            Item::Lease(id, token) => revoke_lease(client, id, *token, own),
                            Item::Login(token) => revoke_token(client, token),
                        }
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|_| Err("revocation failed".into())))
                .collect()
        });
        for (item, answer) in batch.iter().zip(answers) {
            match (item, answer) {
                (Item::Lease(..), Ok(())) => {
                    out.leases += 1;
                    meter::add("vault", |c| c.leases_revoked += 1);
                }
                // A login token's leases go with it.
                (Item::Lease(_, Some(t)), Err(_)) if listed.logins.contains(t) => out.leases += 1,
                (Item::Lease(..), Err(e)) => out.failed.push(format!("a lease: {e}")),
                (Item::Login(_), Ok(())) => {
                    out.tokens += 1;
                    meter::add("vault", |c| c.tokens_revoked += 1);
                }
                (Item::Login(_), Err(e)) => out.failed.push(format!("a login token: {e}")),
            }
        }
    }
    out
}

/// Revokes everything the job's ledger file at `path` lists, then empties
/// it: a line of this process's Vault (`own`: where it is, its client and
/// its session's token) there; a line naming another Vault (a job process
/// configured apart, or this process configured with none) there, with a
/// client `elsewhere` makes and the tokens the line names.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read (missing, not a private file
/// of this user, too large); with no Vault of its own (`own` is why), that
/// error when a line names no Vault (nothing revoked, the file kept).
pub(super) fn revoke_listed(
    path: &std::path::Path,
    own: Result<(&Value, &Client, Option<&SecretString>), &Error>,
    elsewhere: &Elsewhere,
    settings: &RemoteSettings,
) -> Result<Revoked, Error> {
    let lines = super::ledger::read(path)?;
    if let Err(why) = own {
        if lines
            .iter()
            .any(|(at, _)| super::ledger::where_at(at).is_none())
        {
            return Err(why.clone());
        }
    }
    let own = own.ok();
    let mut out = Revoked::default();
    for (at, listed) in lines {
        let other =
            super::ledger::where_at(&at).filter(|_| own.is_none_or(|(here, ..)| at != *here));
        let failed = |why: String| Revoked {
            failed: vec![format!(
                "{} leases and {} login tokens: {why}",
                listed.leases.len(),
                listed.logins.len()
            )],
            ..Revoked::default()
        };
        let revoked = match (other.map(|(addresses, ns)| elsewhere(addresses, ns)), own) {
            (Some(Ok(client)), _) => revoke_all(&client, &listed, settings, None),
            (Some(Err(e)), _) => failed(format!("of another Vault: {e}")),
            (None, Some((_, client, token))) => revoke_all(client, &listed, settings, token),
            // Returned as the error above.
            (None, None) => Revoked::default(),
        };
        out.leases += revoked.leases;
        out.tokens += revoked.tokens;
        out.failed.extend(revoked.failed);
    }
    super::ledger::empty(path);
    Ok(out)
}

/// The most revocations in flight at once.
const AT_ONCE: usize = 16;

/// Whether a revocation's `answer` says the thing is gone: a success, or
/// `already` (the server's way of saying it was gone before); else why not.
fn gone(answer: Result<Response, FetchError>, already: u16) -> Result<(), String> {
    match answer {
        Ok(r) if (200..300).contains(&r.status) || r.status == already => Ok(()),
        Ok(r) => Err(format!("HTTP {}{}", r.status, errors_summary(&r))),
        Err(f) => Err(f.error.to_string()),
    }
}

/// The secret of an issuing answer: each scalar field of `data` as the key
/// `NAME_FIELD`, its version (the lease, or a certificate's serial number)
/// and its lease (`lease_id`, `lease_duration`, `renewable`; or, without a
/// lease, a certificate's `expiration`).
fn leased_map(name: &str, doc: &mut Value) -> Result<SecretMap, String> {
    let lease_id = doc["lease_id"].as_str().unwrap_or("").to_owned();
    let lease_id = SecretString::from(lease_id);
    let duration = wire::seconds(&doc["lease_duration"]).map_or(0, |d| d.as_secs());
    let renewable = doc["renewable"].as_bool().unwrap_or(false);
    let data = match doc.get_mut("data").map(Value::take) {
        Some(Value::Object(o)) => o,
        _ => return Err("the answer holds no data".into()),
    };
    let serial = data
        .get("serial_number")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // A certificate's end, as Unix seconds.
    let expiration = data.get("expiration").and_then(Value::as_u64);
    let mut prefixed = serde_json::Map::with_capacity(data.len());
    for (field, value) in data {
        prefixed.insert(format!("{name}_{field}"), value);
    }
    let map = SecretMap::from_json_object(prefixed);
    let ttl = if duration > 0 {
        Some(duration)
    } else {
        expiration.map(|end| end.saturating_sub(unix_now()))
    };
    let Some(ttl) = ttl.filter(|t| *t > 0) else {
        return Err("the answer has no lease and no end (is this a leased secret?)".into());
    };
    let version = if lease_id.expose().is_empty() {
        serial.unwrap_or_else(|| format!("issued-{}", unix_now()))
    } else {
        // The lease names the version without being shown: its hash.
        let digest = Sha256::digest(lease_id.expose().as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("lease-{hex}")
    };
    let renewable = renewable && !lease_id.expose().is_empty();
    Ok(map
        .with_version(Some(Version {
            id: version,
            ..Version::default()
        }))
        .with_lease(Some(Lease {
            id: lease_id,
            lifetime: Lifetime::new(Duration::from_secs(ttl), renewable),
        })))
}

/// Seconds since the Unix epoch (a certificate's `expiration` is in them).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuing_answer_is_a_map_with_its_lease() {
        let mut doc = serde_json::json!({
            "lease_id": "database/creds/trainer/AbC", "lease_duration": 4, "renewable": true,
            "data": {"username": "v-root-trainer-x", "password": "pw-1"}
        });
        let map = leased_map("pg", &mut doc).unwrap();
        assert_eq!(map.keys(), ["pg_password", "pg_username"]);
        let lease = map.lease().unwrap();
        assert!(lease.lifetime.renewable());
        assert_eq!(lease.lifetime.ttl(), Duration::from_secs(4));
        // Taken to end a third early.
        assert!(
            lease.left() <= Duration::from_millis(2667) && lease.left() > Duration::from_secs(2)
        );
        let version = map.version().unwrap();
        assert!(version.id.starts_with("lease-") && !version.id.contains("AbC"));
        assert!(version.leased, "a leased credential's fields say so");
        assert!(!format!("{lease:?}").contains("AbC"));
    }

    #[test]
    fn a_lease_duration_of_minus_one_or_1e30_is_taken_as_ten_years() {
        for duration in [
            serde_json::json!(-1),
            serde_json::json!(1e30),
            serde_json::json!(u64::MAX),
        ] {
            let mut doc = serde_json::json!({
                "lease_id": "database/creds/trainer/AbC", "lease_duration": duration,
                "renewable": true, "data": {"username": "u", "password": "p"}
            });
            let map = leased_map("pg", &mut doc).unwrap();
            let lease = map.lease().unwrap();
            assert_eq!(
                lease.lifetime.ttl(),
                crate::secrets::lifetime::LONGEST,
                "{duration}"
            );
        }
    }

    #[test]
    fn a_certificate_without_a_lease_ends_at_its_expiration() {
        let mut doc = serde_json::json!({
            "lease_id": "", "lease_duration": 0, "renewable": false,
            "data": {"certificate": "PEM", "private_key": "KEY", "serial_number": "1a:2b",
                     "ca_chain": ["PEM"], "expiration": unix_now() + 60}
        });
        let map = leased_map("tls", &mut doc).unwrap();
        let lease = map.lease().unwrap();
        assert!(!lease.lifetime.renewable() && lease.id.expose().is_empty());
        assert!(
            lease.lifetime.ttl() >= Duration::from_secs(59)
                && lease.left() < Duration::from_secs(59)
        );
        assert_eq!(map.version().unwrap().id, "1a:2b");
        assert!(map.holds_non_secret("tls_ca_chain"));
        let mut none = serde_json::json!({"data": {"username": "u"}});
        assert!(leased_map("x", &mut none).is_err());
    }
}

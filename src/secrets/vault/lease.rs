//! Dynamic secrets with a lease (`vault_leases`): database credentials, PKI
//! certificates, anything Vault issues with a `lease_id`.
//!
//! Each is a secret of the provider's list (named `lease:NAME`), fetched
//! and cached as a KV secret is (refresh ahead, the node cache, change
//! events), with two differences. Its TTL is the lease's, taken to end a
//! third early (at most a minute): it is kept, and shared by the node's
//! processes, until then, so refresh ahead asks for it again about
//! half-way through the lease. And its fetch is given what is held: a lease
//! with more than 40% of its TTL left is kept as it is (no request); one
//! past that is renewed (`sys/leases/renew`, asking for its whole TTL
//! again); a renewal granted less than asked (the lease's `max_ttl` is
//! near) or refused, and a lease that cannot be renewed, make a new secret
//! issued while the old one still works, for what its lease has left (the
//! grace in which every process moves to the new one). A secret with no
//! lease but an end (a PKI certificate issued without `generate_lease`) is
//! issued again the same way. The ledger ([`super::ledger`]) records every
//! lease issued, for its revocation when the job ends.

use super::wire::expect;
use super::Vault;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, Lease, SecretMap, Version};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::{with_retries, FetchError};
use crate::sys::clock;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The prefix of a leased secret's name in the provider's list.
pub(super) const PREFIX: &str = "lease:";

/// A lease is renewed once less than this part of its TTL is left.
const RENEW_WHEN_LEFT: f64 = 0.4;

impl Vault {
    /// The leased secret `name` (of `vault_leases`): what is `held` kept,
    /// renewed, or issued again, as the module documentation says.
    pub(super) fn leased(
        &self,
        name: &str,
        held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        if let Some((map, lease)) = held.and_then(|m| m.lease().map(|l| (m, l))) {
            let left = lease.left();
            if left > lease.ttl.mul_f64(RENEW_WHEN_LEFT) {
                return Ok(Fetched::Found(map.copy()));
            }
            if lease.renewable && !lease.id.expose().is_empty() && !left.is_zero() {
                match self.renew_lease(lease) {
                    // Granted in full: the same values, for longer.
                    Ok(granted) if granted.as_secs() >= lease.ttl.as_secs() => {
                        let renewed = Lease {
                            ends: ends_in(granted),
                            ..lease.clone()
                        };
                        return Ok(Fetched::Found(map.copy().with_lease(Some(renewed))));
                    }
                    // Capped by its max TTL, or gone: a new one.
                    Ok(_) => {}
                    Err(f) if f.transient => return Err(f),
                    Err(_) => {}
                }
            }
        }
        with_retries(&self.settings, || self.issue(name))
    }

    /// `sys/leases/renew` for the whole TTL again: the time granted.
    fn renew_lease(&self, lease: &Lease) -> Result<Duration, FetchError> {
        let body = serde_json::json!({
            "lease_id": lease.id.expose(),
            "increment": lease.ttl.as_secs(),
        })
        .to_string();
        let body = SecretString::from(body);
        let r = self
            .client
            .call("PUT", "sys/leases/renew", body.expose().as_bytes())?;
        let r = expect(r, "Vault lease renewal")?;
        let doc = r.json().unwrap_or(Value::Null);
        self.client
            .lease_renewals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::secrets::remote::meter::add("vault", |c| c.leases_renewed += 1);
        doc["lease_duration"]
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| {
                FetchError::transient(Error::Remote(
                    "Vault lease renewal: the answer holds no lease_duration".into(),
                ))
            })
    }

    /// The leased secret `name` issued now: read, or written with its data.
    fn issue(&self, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        let Some(spec) = self.leases.get(name) else {
            return Err(FetchError::permanent(Error::Internal(format!(
                "no leased secret named '{name}'"
            ))));
        };
        let what = format!("Vault leased secret '{name}' ({})", spec.path);
        let r = match &spec.data {
            None => self.client.call("GET", &spec.path, b"")?,
            Some(data) => self.client.call("PUT", &spec.path, data.as_bytes())?,
        };
        if r.status == 404 || r.status == 400 {
            return Err(FetchError::permanent(Error::ProviderUnavailable(format!(
                "{what}: refused (HTTP {}){} (is the engine mounted, the role there, and its \
                 data complete?)",
                r.status,
                super::wire::errors_summary(&r)
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
        self.client
            .leases_issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::secrets::remote::meter::add("vault", |c| c.leases_issued += 1);
        if let Some(lease) = map.lease().filter(|l| !l.id.expose().is_empty()) {
            self.client
                .ledger
                .issued(&lease.id, self.client.token_held());
        }
        Ok(Fetched::Found(map))
    }
}

/// When a lease granted `d` now is taken to end, in the monotonic clock: a
/// third of it earlier, at most a minute (the server counts whole seconds,
/// and a credential fetched just before its end is used a moment later: a
/// connection set up on a loaded machine takes over a second).
fn ends_in(d: Duration) -> u64 {
    let d = d.saturating_sub((d / 3).min(Duration::from_secs(60)));
    clock::precise().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The secret of an issuing answer: each scalar field of `data` as the key
/// `NAME_FIELD`, its version (the lease, or a certificate's serial number)
/// and its lease (`lease_id`, `lease_duration`, `renewable`; or, without a
/// lease, a certificate's `expiration`).
fn leased_map(name: &str, doc: &mut Value) -> Result<SecretMap, String> {
    let lease_id = doc["lease_id"].as_str().unwrap_or("").to_owned();
    let lease_id = SecretString::from(lease_id);
    let duration = doc["lease_duration"].as_u64().unwrap_or(0);
    let renewable = doc["renewable"].as_bool().unwrap_or(false);
    let data = match doc.get_mut("data").map(Value::take) {
        Some(Value::Object(o)) => o,
        _ => return Err("the answer holds no data".into()),
    };
    let serial = data
        .get("serial_number")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // A certificate's end, as Unix seconds, turned into the monotonic clock.
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
    let ttl = Duration::from_secs(ttl);
    Ok(map
        .with_version(Some(Version {
            id: version,
            ..Version::default()
        }))
        .with_lease(Some(Lease {
            renewable: renewable && !lease_id.expose().is_empty(),
            id: lease_id,
            ttl,
            ends: ends_in(ttl),
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
        assert!(lease.renewable);
        assert_eq!(lease.ttl, Duration::from_secs(4));
        // Taken to end a third early.
        assert!(
            lease.left() <= Duration::from_millis(2667) && lease.left() > Duration::from_secs(2)
        );
        let version = map.version().unwrap();
        assert!(version.id.starts_with("lease-") && !version.id.contains("AbC"));
        assert!(!format!("{lease:?}").contains("AbC"));
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
        assert!(!lease.renewable && lease.id.expose().is_empty());
        assert!(lease.ttl >= Duration::from_secs(59) && lease.left() < Duration::from_secs(59));
        assert_eq!(map.version().unwrap().id, "1a:2b");
        assert!(map.holds_non_secret("tls_ca_chain"));
        let mut none = serde_json::json!({"data": {"username": "u"}});
        assert!(leased_map("x", &mut none).is_err());
    }
}

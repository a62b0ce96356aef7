//! A kept value ([`Credential`]) as it was issued ([`Issued`]): its
//! lifetime, and its form in the node cache's shared entry.

use crate::secret::{SecretBytes, SecretString};
use crate::secrets::lifetime::Lifetime;
use crate::secrets::node::entry::Shareable;
use crate::secrets::provider::zeroize_json;
use crate::sys::clock;
use serde_json::Value;
use std::time::Duration;

/// The lifetime taken for a token whose issuer did not say one: five
/// minutes (it is replaced after four).
pub const UNSAID_TTL: Duration = Duration::from_secs(300);

/// A kept value: what a [`Keeper`](super::Keeper) holds and shares.
pub trait Credential: Clone + Send + Sync + 'static {
    /// Its fields for the node's shared entry (zeroed after writing).
    fn to_json(&self) -> Value;

    /// The value of fields [`to_json`](Self::to_json) wrote.
    fn from_json(doc: &Value) -> Option<Self>;

    /// What tells this value from the next, to know whether the one a
    /// service refused is still the one held: the token itself, an access
    /// key id. Compared only, never shown.
    fn id(&self) -> &str;

    /// When a value of `lifetime` is replaced (monotonic ns; `None`:
    /// never): 80% through.
    fn replace_at(lifetime: &Lifetime) -> Option<u64> {
        lifetime.replace_at()
    }

    /// Until when a value whose replacement failed may still be answered:
    /// for a token, not past its replacement point.
    fn usable_until(lifetime: &Lifetime) -> Option<u64> {
        Self::replace_at(lifetime)
    }
}

impl Credential for SecretString {
    fn to_json(&self) -> Value {
        Value::String(self.expose().to_owned())
    }

    fn from_json(doc: &Value) -> Option<Self> {
        doc.as_str().map(SecretString::from)
    }

    fn id(&self) -> &str {
        self.expose()
    }
}

/// A value as it was issued, and its lifetime.
pub struct Issued<T> {
    /// The credential.
    pub value: T,
    /// Its lifetime, from when its request was sent.
    pub lifetime: Lifetime,
}

impl<T> std::fmt::Debug for Issued<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("ttl", &self.lifetime.ttl())
            .field("renewable", &self.lifetime.renewable())
            .finish_non_exhaustive()
    }
}

impl Issued<SecretString> {
    /// An OAuth 2.0 access token granted for `expires_in` seconds (the
    /// answer's field; [`UNSAID_TTL`] when absent) from `sent` (monotonic
    /// nanoseconds).
    pub fn token(token: SecretString, expires_in: Option<Duration>, sent: u64) -> Self {
        Issued {
            value: token,
            lifetime: Lifetime::since(sent, expires_in.unwrap_or(UNSAID_TTL), false),
        }
    }
}

impl<T: Credential> Issued<T> {
    /// When it is replaced (monotonic ns; `u64::MAX`: never).
    pub(super) fn replace_at(&self) -> u64 {
        T::replace_at(&self.lifetime).unwrap_or(u64::MAX)
    }

    /// Until when it may be answered after a failed replacement.
    pub(super) fn usable_until(&self) -> u64 {
        T::usable_until(&self.lifetime).unwrap_or(u64::MAX)
    }
}

impl<T: Credential> Shareable for Issued<T> {
    fn encode(&self) -> Option<SecretBytes> {
        let mut out = SecretBytes::with_capacity(256);
        let mut doc = serde_json::json!({
            "value": self.value.to_json(),
            "ttl": self.lifetime.ttl().as_secs_f64(),
            "renewable": self.lifetime.renewable(),
            "start": self.lifetime.start(),
        });
        serde_json::to_writer(&mut out, &doc).ok()?;
        zeroize_json(&mut doc);
        Some(out)
    }

    fn decode(body: &[u8]) -> Option<Issued<T>> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let issued = (|| {
            Some(Issued {
                value: T::from_json(&doc["value"])?,
                lifetime: Lifetime::since(
                    doc["start"].as_u64()?,
                    Duration::try_from_secs_f64(doc["ttl"].as_f64()?).ok()?,
                    doc["renewable"].as_bool()?,
                ),
            })
        })();
        zeroize_json(&mut doc);
        issued
    }

    /// Shared until it is due for replacement.
    fn ttl(&self) -> Option<Duration> {
        Some(Duration::from_nanos(
            self.replace_at().saturating_sub(clock::precise()),
        ))
    }

    /// Renewed (by the first of the node's refreshers to get there) two
    /// thirds through.
    fn refresh_at(&self) -> Option<u64> {
        self.lifetime.renew_at()
    }
}

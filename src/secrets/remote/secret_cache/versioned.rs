//! What a [`SecretCache`](super::SecretCache) holds and why it fetches:
//! the version a value carries ([`Versioned`]), the reason given to the
//! loader ([`Reason`]), and the small facts of an answer (`found`,
//! `same_version`, `ended`).

use crate::error::Error;
use crate::secrets::node::entry::Shareable;
use crate::secrets::provider::KeyChange;
use crate::secrets::transport::Fetched;
use std::time::Duration;

/// Why a cache fetches its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason<'a> {
    /// Its time came (a get past the TTL, a refresh ahead): a version held
    /// that is still the service's current one is kept without its value.
    Due,
    /// A caller's refresh: fetched whole.
    Forced,
    /// A caller reported this version failed it.
    Failed(&'a str),
}

impl<'a> Reason<'a> {
    /// The reason of a forced fetch, `failed` the version reported.
    pub(super) fn forced(failed: Option<&'a str>) -> Self {
        failed.map_or(Reason::Forced, Reason::Failed)
    }

    /// The version reported failed, if any.
    pub fn failed(self) -> Option<&'a str> {
        match self {
            Reason::Failed(f) => Some(f),
            _ => None,
        }
    }
}

impl<T: Versioned> Fetched<T> {
    /// Whether both are the same version of the secret, as the service said
    /// (`false` when it said none).
    pub(super) fn same_version(&self, other: &Fetched<T>) -> bool {
        match (self, other) {
            (Fetched::Found(a), Fetched::Found(b)) => {
                a.version_id().is_some() && a.version_id() == b.version_id()
            }
            _ => false,
        }
    }
}

/// What a cache holds, with the version the service gave it, if any.
pub trait Versioned {
    /// The version's identifier.
    fn version_id(&self) -> Option<&str>;

    /// The keys that differ between `earlier` and `now` (`None`: the
    /// secret did not exist), for change events.
    fn changes(_now: Option<&Self>, _earlier: Option<&Self>) -> Vec<KeyChange> {
        Vec::new()
    }

    /// Whether `other` carries the same version as this in every respect
    /// (its stages, what it stands in for), not only the same identifier.
    fn same_label(&self, _other: &Self) -> bool {
        true
    }

    /// `error` with what this holds taken out of its message (a server's
    /// error text that repeats a value it served before).
    fn scrub(&self, error: Error) -> Error {
        error
    }
}

impl Versioned for String {
    fn version_id(&self) -> Option<&str> {
        None
    }
}

impl Shareable for String {
    fn encode(&self) -> Option<crate::secret::SecretBytes> {
        Some(crate::secret::SecretBytes::from(self.as_bytes()))
    }
    fn decode(body: &[u8]) -> Option<String> {
        String::from_utf8(body.to_vec()).ok()
    }
}

impl<T> Fetched<T> {
    pub(super) fn found(&self) -> Option<&T> {
        match self {
            Fetched::Found(t) => Some(t),
            Fetched::Absent => None,
        }
    }
}

/// Whether `value` says its own life is over (a lease that ended): never
/// served stale, since it no longer works.
pub(super) fn ended<T: Shareable>(value: &Fetched<T>) -> bool {
    matches!(value, Fetched::Found(v) if v.ttl() == Some(Duration::ZERO))
}

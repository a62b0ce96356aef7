//! The KV secrets engine: the mount's version (configured, learnt from
//! `sys/internal/ui/mounts/<mount>` when the token may read it, else by
//! probing v2 then v1, remembered), a secret read as that version, its
//! versions without their values (KV v2 `metadata/`), and a version read
//! by its number.

use super::client::Missing;
use super::session::Session;
use super::wire::{expect, mount_version, secret_from};
use crate::error::shorten;
use crate::error::Error;
use crate::secrets::provider::SecretMap;
use crate::secrets::remote::rotation::Versions;
use crate::secrets::transport::{FetchError, Fetched};
use crate::sys::Mutex;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// Refusals of `metadata/` in a row after which it is not asked again.
const METADATA_REFUSALS: u32 = 2;

/// The KV version of the mount, and how it was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
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
    Found(Box<SecretMap>),
    Missing(Missing),
}

/// The KV mount and what is known of it.
pub(super) struct Kv {
    session: Arc<Session>,
    pub(super) mount: String,
    version: Mutex<Version>,
    /// A configured KV version checked against `sys/internal/ui/mounts`
    /// (after the first "absent").
    checked: Mutex<Checked>,
    /// Refusals of KV v2 `metadata/` in a row (a policy that allows
    /// `data/` only): past two, not asked again, every refresh reads the
    /// value.
    metadata_refusals: AtomicU32,
}

impl Kv {
    /// The mount `mount`, of the `configured` version if one is.
    pub(super) fn new(session: Arc<Session>, mount: String, configured: Option<u8>) -> Kv {
        let initial = move || match configured {
            Some(v) => Version::Known(v, "configured"),
            None => Version::Unknown {
                asked_mounts: false,
            },
        };
        Kv {
            session,
            mount,
            version: Mutex::with_rebuild(initial(), initial),
            checked: Mutex::with_fresh(Checked::NotYet, || Checked::NotYet),
            metadata_refusals: AtomicU32::new(0),
        }
    }

    /// The mount's KV version when known or learnable from
    /// `sys/internal/ui/mounts` (asked once).
    fn version(&self) -> Result<Option<u8>, FetchError> {
        let asked = match *self.version.lock() {
            Version::Known(v, _) => return Ok(Some(v)),
            Version::Unknown { asked_mounts } => asked_mounts,
        };
        if asked {
            return Ok(None);
        }
        let r = self.ask_mounts()?;
        let learnt = if r.status == 200 {
            mount_version(&r)
        } else if r.status == 404 {
            self.session
                .client()
                .not_found(&r, "Vault mount lookup", self.mount_route())?;
            None // a server without that endpoint: probe instead
        } else if matches!(r.status, 403 | 405) {
            None // not allowed (or no such mount), or no such endpoint: probe instead
        } else {
            return Err(expect(r, "Vault mount lookup").err().unwrap_or_else(|| {
                FetchError::transient(Error::Remote("Vault mount lookup failed".into()))
            }));
        };
        *self.version.lock() = match learnt {
            Some(v) => Version::Known(v, "sys/internal/ui/mounts"),
            None => Version::Unknown { asked_mounts: true },
        };
        Ok(learnt)
    }

    /// The secret at `path` in the mount.
    pub(super) fn read(&self, path: &str) -> Result<Fetched<SecretMap>, FetchError> {
        if let Checked::Mismatch(actual) = *self.checked.lock() {
            return Err(self.mismatch(actual));
        }
        match self.version()? {
            Some(version) => match self.read_as(version, path)? {
                Read::Found(map) => Ok(Fetched::Found(*map)),
                Read::Missing(Missing::Absent) => self.absent_with_configured_version(),
                Read::Missing(Missing::MountIsV2) => Err(self.mismatch(2)),
            },
            None => {
                // As documented: try v2, fall back to v1; remember what worked.
                if let Read::Found(map) = self.read_as(2, path)? {
                    *self.version.lock() = Version::Known(2, "probe");
                    return Ok(Fetched::Found(*map));
                }
                match self.read_as(1, path)? {
                    Read::Found(map) => {
                        *self.version.lock() = Version::Known(1, "probe");
                        Ok(Fetched::Found(*map))
                    }
                    Read::Missing(Missing::MountIsV2) => {
                        *self.version.lock() = Version::Known(2, "probe");
                        Ok(Fetched::Absent)
                    }
                    Read::Missing(Missing::Absent) => Ok(Fetched::Absent),
                }
            }
        }
    }

    /// `sys/internal/ui/mounts/<mount>`: the mount's type and options.
    fn ask_mounts(&self) -> Result<crate::secrets::transport::http::Response, FetchError> {
        self.session
            .get(&format!("sys/internal/ui/mounts/{}", self.mount))
    }

    /// One read of the secret at `path` as KV `version`.
    fn read_as(&self, version: u8, path: &str) -> Result<Read, FetchError> {
        let path = if version == 2 {
            format!("{}/data/{path}", self.mount)
        } else {
            format!("{}/{path}", self.mount)
        };
        let r = self.session.get(&path)?;
        if r.status == 404 {
            let missing = self
                .session
                .client()
                .not_found(&r, "Vault read", self.mount_route())?;
            return Ok(Read::Missing(missing));
        }
        Ok(match secret_from(r, version)? {
            Fetched::Found(map) => Read::Found(Box::new(map)),
            Fetched::Absent => Read::Missing(Missing::Absent),
        })
    }

    /// "Absent" under a configured KV version, unless the mount turns out to
    /// have the other version (asked once of `sys/internal/ui/mounts`: a
    /// KV v2 path on a v1 mount reads as plainly absent).
    fn absent_with_configured_version(&self) -> Result<Fetched<SecretMap>, FetchError> {
        let Version::Known(configured, "configured") = *self.version.lock() else {
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

    /// The versions of the KV v2 secret at `path`: the current one (none
    /// when it is deleted or destroyed) and the latest readable one before
    /// it. `None` when the mount is not known to be KV v2, reading its
    /// metadata was refused or found no route: the value is then read as
    /// without a check. Sent with the token held, never logging in for it
    /// (a policy that allows `data/` only is common); refused twice in a
    /// row, it is not asked again by this process.
    pub(super) fn versions(&self, path: &str) -> Option<Result<Fetched<Versions>, FetchError>> {
        if !matches!(*self.version.lock(), Version::Known(2, _))
            || self.metadata_refusals.load(Relaxed) >= METADATA_REFUSALS
        {
            return None;
        }
        let token = self.session.token_held()?;
        let path = format!("{}/metadata/{path}", self.mount);
        let r = match self.session.client().send("GET", &path, Some(&token), b"") {
            Ok(r) => r,
            Err(f) => return Some(Err(f)),
        };
        match r.status {
            401 | 403 => {
                self.metadata_refusals.fetch_add(1, Relaxed);
                return None;
            }
            404 => return None, // absent, or no such route: the read says which
            _ => self.metadata_refusals.store(0, Relaxed),
        }
        let doc = match expect(r, "Vault metadata read") {
            Ok(r) => r.json().unwrap_or(Value::Null),
            Err(f) => return Some(Err(f)),
        };
        Some(Ok(Fetched::Found(versions_of(&doc["data"]))))
    }

    /// The KV v2 secret at `path` as its version `id` (a number).
    pub(super) fn read_version(
        &self,
        path: &str,
        id: &str,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return self.read(path);
        }
        let r = self
            .session
            .get(&format!("{}/data/{path}?version={id}", self.mount))?;
        secret_from(r, 2)
    }

    /// The version and how it was learnt, for statuses.
    pub(super) fn describe(&self) -> String {
        match *self.version.lock() {
            Version::Known(v, how) => format!("KV v{v} ({how})"),
            Version::Unknown { .. } => "KV version not detected yet".into(),
        }
    }
}

/// The versions a KV v2 metadata answer's `data` lists.
fn versions_of(data: &Value) -> Versions {
    let readable = |n: u64| {
        let v = &data["versions"][n.to_string()];
        v.is_object()
            && v["destroyed"].as_bool() != Some(true)
            && v["deletion_time"].as_str().is_none_or(str::is_empty)
    };
    let current = data["current_version"].as_u64().filter(|&n| n > 0);
    // The versions listed, never every number below the current one: a
    // `current_version` of 2^64-1 names no more versions than the list.
    let listed = data["versions"].as_object().into_iter().flatten();
    let before = current.and_then(|n| {
        listed
            .filter_map(|(k, _)| k.parse::<u64>().ok())
            .filter(|&k| k < n && readable(k))
            .max()
    });
    Versions {
        current: current.filter(|&n| readable(n)).map(|n| n.to_string()),
        beside: before.map(|n| n.to_string()).into_iter().collect(),
        stages: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_before_is_the_latest_readable_one() {
        let data = json!({"current_version": 4, "versions": {
            "1": {"deletion_time": "", "destroyed": false},
            "2": {"deletion_time": "", "destroyed": true},
            "3": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false},
            "4": {"deletion_time": "", "destroyed": false}}});
        let v = versions_of(&data);
        assert_eq!(
            (v.current.as_deref(), v.beside),
            (Some("4"), vec!["1".to_owned()])
        );
        let deleted = json!({"current_version": 2, "versions": {
            "1": {"deletion_time": "", "destroyed": false},
            "2": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false}}});
        assert_eq!(versions_of(&deleted).current, None);
        assert_eq!(versions_of(&json!({})), Versions::default());
        // Metadata that lies: a current version far past the listed ones.
        for current in [u64::MAX, 10_000_000_000] {
            let lying = json!({"current_version": current, "versions": {
                "1": {"deletion_time": "", "destroyed": false},
                "2": {"deletion_time": "", "destroyed": false}}});
            let v = versions_of(&lying);
            assert_eq!((v.current, v.beside), (None, vec!["2".to_owned()]));
        }
    }
}

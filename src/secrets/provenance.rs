//! Provenance: which version of each secret a process used, and a
//! fingerprint that identifies the value without revealing it, for a run to
//! attach to its experiment (W&B, MLflow).
//!
//! Off unless asked (the config key `provenance`, or
//! `SIMPLETUNER_PROVENANCE_FILE`): a get then records, per key, the provider,
//! the version (AWS `VersionId` and stages, the Vault KV v2 version), when
//! it was first and last used, and `hmac-sha256:<hex>`, the HMAC-SHA256 of
//! the value under a salt (as Vault's audit devices hash values). The salt
//! is the job's when `SIMPLETUNER_PROVENANCE_SALT_FILE` names one (`run
//! --provenance` makes it), so that every process of the job gives a value
//! the same fingerprint; else the process's own, random. With a file, one
//! JSON line is appended there (in one write, to a regular 0600 file of
//! this user, never through a link) each time a key is first used and each
//! time its version or value changes.

use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::provider::{normalize_key, Version};
use crate::secrets::transport::{vars as var, Vars};
use crate::sys::Mutex;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The shortest salt a salt file may hold.
const MIN_SALT: usize = 16;

/// A new salt: 32 random bytes as url-safe text (what `run --provenance`
/// writes to the job's salt file).
pub fn new_salt() -> SecretString {
    SecretString::from(fernet::Fernet::generate_key())
}

/// Whether a manager records what it used (the config key `provenance`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProvenanceSetting {
    /// As `SIMPLETUNER_PROVENANCE_FILE` says: a file when it is set, else off.
    #[default]
    FromEnvironment,
    /// Nothing recorded (`false`).
    Off,
    /// Recorded in memory (`true`).
    Memory,
    /// Recorded, and appended to this file (a path).
    File(PathBuf),
}

/// What a process used of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    /// The key, as it was first asked for.
    pub key: String,
    /// The provider that answered.
    pub provider: &'static str,
    /// The remote secret's version (`None`: the environment, the file, KV v1).
    pub version: Option<Version>,
    /// `hmac-sha256:<hex>` of the value under the salt.
    pub fingerprint: String,
    /// When this version was first used, and last.
    pub first_used: SystemTime,
    /// When it was last used.
    pub last_used: SystemTime,
}

impl Used {
    /// Its JSON object (never the value).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "key": self.key,
            "provider": self.provider,
            "version": self.version.as_ref().map(|v| v.id.as_str()),
            "stages": self.version.as_ref().map_or(&[][..], |v| &v.stages[..]),
            "fingerprint": self.fingerprint,
            "first_used": rfc3339(self.first_used),
            "last_used": rfc3339(self.last_used),
        });
        if let Some(failed) = self.version.as_ref().and_then(|v| v.instead_of.as_deref()) {
            v["instead_of"] = failed.into();
        }
        v
    }
}

/// A process's record of what it used (see the module documentation).
pub struct Provenance {
    salt: SecretBytes,
    file: Option<PathBuf>,
    used: Mutex<HashMap<String, Used>>,
}

impl std::fmt::Debug for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provenance")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Provenance {
    /// A record appending to `file` if given, fingerprinting under the salt
    /// of `salt_file` (else a random one).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a salt file shorter than 16 bytes;
    /// [`Error::Permission`] for one group or others may read or write;
    /// [`Error::Io`] when it cannot be read.
    pub fn new(file: Option<PathBuf>, salt_file: Option<&Path>) -> Result<Provenance, Error> {
        let salt = match salt_file {
            Some(path) => {
                // With the salt, a short value's fingerprint is a lookup
                // away: a salt others may read or write is refused.
                let private = |meta: &std::fs::Metadata| {
                    use std::os::unix::fs::MetadataExt;
                    if meta.mode() & 0o077 == 0 {
                        return Ok(());
                    }
                    Err(Error::Permission(format!(
                        "the provenance salt file {} may be read or written by group or \
                         others (mode {:04o}); with it, short values can be recovered from \
                         their fingerprints: refusing it (chmod 600)",
                        path.display(),
                        meta.mode() & 0o777
                    )))
                };
                let what = "the provenance salt file";
                let bytes = crate::fsutil::read_required_checked(path, what, 4096, private)?;
                let salt = SecretBytes::from(bytes);
                if salt.expose().len() < MIN_SALT {
                    return Err(Error::InvalidArgument(format!(
                        "the provenance salt file {} holds fewer than {MIN_SALT} bytes",
                        path.display()
                    )));
                }
                salt
            }
            None => SecretBytes::from(new_salt().expose().as_bytes()),
        };
        Ok(Provenance {
            salt,
            file,
            used: Mutex::with_fresh(HashMap::new(), HashMap::new),
        })
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.salt.expose()).expect("any key length");
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// `key`'s value, from `provider` at `version`, was used now.
    pub fn record(
        &self,
        key: &str,
        provider: &'static str,
        value: &SecretString,
        version: Option<&Version>,
    ) {
        let now = SystemTime::now();
        let name = normalize_key(key);
        let mut used = self.used.lock();
        if let Some(u) = used.get_mut(&name) {
            let same_version = u.provider == provider && u.version.as_ref() == version;
            // A version names its value; without one the value itself is compared.
            if same_version
                && (version.is_some() || u.fingerprint == self.fingerprint(value.expose_bytes()))
            {
                u.last_used = now;
                return;
            }
        }
        let entry = Used {
            key: key.to_owned(),
            provider,
            version: version.cloned(),
            fingerprint: self.fingerprint(value.expose_bytes()),
            first_used: now,
            last_used: now,
        };
        if let Some(path) = &self.file {
            let mut line = entry.to_json();
            line["pid"] = std::process::id().into();
            crate::fsutil::append_private(
                path,
                format!("{line}\n").as_bytes(),
                true,
                crate::sys::effective_uid(),
            );
        }
        used.insert(name, entry);
    }

    /// What was used, one entry per key (its current version), by key.
    pub fn used(&self) -> Vec<Used> {
        let mut out: Vec<Used> = self.used.lock().values().cloned().collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// [`used`](Self::used) as a JSON array.
    pub fn to_json(&self) -> Value {
        Value::Array(self.used().iter().map(Used::to_json).collect())
    }
}

/// The record a manager keeps as `setting` and the environment `vars` say
/// (`SIMPLETUNER_PROVENANCE_FILE`, `SIMPLETUNER_PROVENANCE_SALT_FILE`).
///
/// # Errors
/// As [`Provenance::new`], for the salt file.
pub(crate) fn from_settings(
    setting: &ProvenanceSetting,
    vars: &Vars,
) -> Result<Option<Provenance>, Error> {
    let file = match setting {
        ProvenanceSetting::Off => return Ok(None),
        ProvenanceSetting::Memory => None,
        ProvenanceSetting::File(path) => Some(path.clone()),
        ProvenanceSetting::FromEnvironment => match vars.get(var::SIMPLETUNER_PROVENANCE_FILE) {
            Some(path) => Some(expand_home(PathBuf::from(path))),
            None => return Ok(None),
        },
    };
    let salt = vars
        .get(var::SIMPLETUNER_PROVENANCE_SALT_FILE)
        .map(PathBuf::from);
    Provenance::new(file, salt.as_deref()).map(Some)
}

/// `t` as RFC 3339 UTC with milliseconds.
fn rfc3339(t: SystemTime) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    DateTime::from(t)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn version(id: &str) -> Version {
        Version {
            id: id.into(),
            ..Version::default()
        }
    }

    #[test]
    fn one_line_per_version_or_value_and_the_salt_decides_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let (file, salt) = (dir.path().join("provenance.jsonl"), dir.path().join("salt"));
        std::fs::write(&salt, "0123456789abcdef-the-jobs-salt").unwrap();
        for mode in [0o644, 0o640, 0o602, 0o620] {
            std::fs::set_permissions(&salt, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Provenance::new(None, Some(&salt)).map(|_| ()).unwrap_err();
            assert_eq!(e.code_name(), "ST_PERMISSION", "{mode:o}: {e}");
            assert!(e.to_string().contains(&salt.display().to_string()), "{e}");
        }
        std::fs::set_permissions(&salt, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = Provenance::new(Some(file.clone()), Some(&salt)).unwrap();
        let value = SecretString::from("hf_secret_value");
        for _ in 0..3 {
            p.record("hf-token", "aws", &value, Some(&version("v1")));
        }
        p.record(
            "HF_TOKEN",
            "aws",
            &SecretString::from("hf_next"),
            Some(&version("v2")),
        );
        p.record("PORT", "env", &SecretString::from("8080"), None);
        p.record("PORT", "env", &SecretString::from("8080"), None);
        p.record("PORT", "env", &SecretString::from("9090"), None);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(!text.contains("hf_secret_value") && !text.contains("hf_next"));
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let used = p.used();
        assert_eq!(used.len(), 2);
        assert_eq!(used[0].version.as_ref().unwrap().id, "v2");
        // The same salt gives the same fingerprint in another process;
        // another salt, another one.
        let again = Provenance::new(None, Some(&salt)).unwrap();
        assert_eq!(again.fingerprint(b"hf_next"), used[0].fingerprint);
        assert_ne!(
            Provenance::new(None, None).unwrap().fingerprint(b"hf_next"),
            used[0].fingerprint
        );
        assert!(used[0].fingerprint.starts_with("hmac-sha256:") && used[0].fingerprint.len() == 76);
        // A short salt is refused; a file not 0600 gets no line.
        std::fs::write(&salt, "short").unwrap();
        assert!(Provenance::new(None, Some(&salt)).is_err());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.record("OTHER", "env", &value, None);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 4);
    }
}

//! A token kept in a file that something else rewrites: a Vault Agent's
//! token sink, `~/.vault-token`, the AWS Secrets Manager Agent's SSRF token
//! file. Read on first use, read again whenever the file changed (its
//! device, inode, size or modification time), and read again on demand
//! after the server refused the token (an agent may have just rewritten it).

use crate::error::Error;
use crate::secret::SecretString;
use crate::sys::Mutex;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Largest token file read: 64 KiB (tokens are a few hundred bytes).
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// What identifies one version of the file.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

/// A token file; see the module documentation.
pub struct TokenFile {
    path: PathBuf,
    /// What it is, in messages ("Vault token file").
    what: &'static str,
    /// Where its path came from, in messages ("SIMPLETUNER_VAULT_TOKEN_FILE").
    source: String,
    last: Mutex<Option<(Stamp, SecretString)>>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// The file at `path`, `what` it holds, and `source`, where its path was
    /// set; nothing is read yet.
    pub fn new(path: PathBuf, what: &'static str, source: impl Into<String>) -> TokenFile {
        TokenFile {
            path,
            what,
            source: source.into(),
            last: Mutex::with_fresh(None, || None),
        }
    }

    /// Where its path was set, and the path ("SIMPLETUNER_VAULT_TOKEN_FILE
    /// (/run/agent/token)"), for messages and statuses.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.source, self.path.display())
    }

    /// The token: the one read before if the file has not changed since,
    /// else the file's content read now (surrounding whitespace removed).
    ///
    /// # Errors
    /// [`Error::ProviderUnavailable`] when the file is missing or empty;
    /// [`Error::Io`] / [`Error::Permission`] when it cannot be read, is not a
    /// regular file or is larger than 64 KiB. Never the token.
    pub fn get(&self) -> Result<SecretString, Error> {
        let stamp = Stamp::of(&self.path);
        let mut last = self.last.lock();
        if let (Some(now), Some((then, token))) = (stamp, last.as_ref()) {
            if now == *then {
                return Ok(token.clone());
            }
        }
        let token = self.read()?;
        if let Some(stamp) = stamp {
            *last = Some((stamp, token.clone()));
        }
        Ok(token)
    }

    /// After the server refused `used`: the file's token read now if it
    /// differs from `used` (the writer replaced it), else `None`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn changed_since(&self, used: &SecretString) -> Result<Option<SecretString>, Error> {
        *self.last.lock() = None;
        let token = self.get()?;
        Ok((token.expose() != used.expose()).then_some(token))
    }

    fn read(&self) -> Result<SecretString, Error> {
        let bytes = crate::fsutil::read_regular(&self.path, self.what, MAX_TOKEN_FILE)?
            .ok_or_else(|| {
                Error::ProviderUnavailable(format!(
                    "{} {} does not exist (set by {})",
                    self.what,
                    self.path.display(),
                    self.source
                ))
            })?;
        let text = crate::secret::SecretBytes::from(bytes);
        let token = std::str::from_utf8(text.expose())
            .map_err(|_| {
                Error::Parse(format!(
                    "{} {} is not UTF-8 text",
                    self.what,
                    self.path.display()
                ))
            })?
            .trim();
        if token.is_empty() {
            return Err(Error::ProviderUnavailable(format!(
                "{} {} is empty (set by {})",
                self.what,
                self.path.display(),
                self.source
            )));
        }
        Ok(SecretString::from(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_again_when_rewritten_and_errors_never_hold_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sink");
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        let e = f.get().unwrap_err();
        assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE");
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::write(&p, "s.first\n").unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.first");
        // An agent writes a new file and renames it over the old one.
        let tmp = dir.path().join("sink.tmp");
        std::fs::write(&tmp, "s.second-token").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.second-token");
        let used = f.get().unwrap();
        assert!(f.changed_since(&used).unwrap().is_none());
        std::fs::write(&p, "s.third-token!").unwrap();
        assert_eq!(
            f.changed_since(&used).unwrap().unwrap().expose(),
            "s.third-token!"
        );
        std::fs::write(&p, " \n").unwrap();
        let e = f.get().unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        std::fs::write(&p, b"hvs.\xffsensitive").unwrap();
        let e = f.get().unwrap_err();
        assert_eq!(e.code_name(), "ST_PARSE");
        assert!(!e.to_string().contains("sensitive"), "{e}");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let e = f.get().unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

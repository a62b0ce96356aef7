//! `run --file NAME=st://KEY`: secrets handed to a command as files, for
//! programs that read a credentials file (`GOOGLE_APPLICATION_CREDENTIALS`,
//! a netrc, a kubeconfig, a docker config) instead of a variable.
//!
//! The files live in one private directory made for the run, on a
//! memory-backed filesystem where there is one: the first of
//! `$XDG_RUNTIME_DIR`, `/dev/shm` and the temp dir that is acceptable and
//! memory-backed (tmpfs or ramfs), else the first acceptable one (with a
//! warning that the values touch a disk). A base is acceptable when it is a
//! directory that is either the user's own and not writable by group or
//! others (`$XDG_RUNTIME_DIR`), or a shared sticky one (`/dev/shm`, `/tmp`:
//! others can create entries there but not remove or rename ours). The
//! private directory is created with a random name and mode 0700 and then
//! checked again (a directory, not a link, the user's own, mode 0700);
//! each file is created new (never through an existing name) with mode
//! 0600 from its first byte. [`SecretDir`]'s drop removes them all; `run`
//! keeps it alive until its command has ended, whichever way it ends.

use st_secrets::job::delivery;
use st_secrets::Error;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Whether `path` is on a memory-backed filesystem (the library's check,
/// the one its node cache makes).
fn memory_backed(path: &Path) -> bool {
    st_secrets::secrets::memory_backed(path) == Some(true)
}

/// Why `base` cannot hold the private directory, if it cannot.
fn refusal(base: &Path, uid: u32) -> Option<String> {
    let meta = match std::fs::metadata(base) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", base.display())),
    };
    let mode = meta.mode();
    let private = meta.uid() == uid && mode & 0o022 == 0;
    let sticky = mode & 0o1000 != 0 && (meta.uid() == uid || meta.uid() == 0);
    if !meta.is_dir() {
        Some(format!("{} is not a directory", base.display()))
    } else if private || sticky {
        None
    } else {
        Some(format!(
            "{} is writable by others and not sticky (mode {:o}, owner {})",
            base.display(),
            mode & 0o7777,
            meta.uid()
        ))
    }
}

/// The candidates for the private directory's base, in order.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if d.is_absolute() {
            out.push(d);
        }
    }
    out.push(PathBuf::from("/dev/shm"));
    out.push(std::env::temp_dir());
    out
}

pub use delivery::plain_name;

/// Creates the directories of `name` in `dir` that are not there (0700).
fn make_parents(dir: &Path, name: &str) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    let Some((parents, _)) = name.rsplit_once('/') else {
        return Ok(());
    };
    let path = dir.join(parents);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&path)
        .map_err(|e| Error::io("cannot create", &path, &e))
}

/// The private directory of one run and the files written in it.
pub struct SecretDir {
    dir: Option<tempfile::TempDir>,
}

impl SecretDir {
    /// Creates the private directory (see the module's documentation).
    pub fn create() -> Result<SecretDir, Error> {
        let uid = crate::sys::uid();
        let mut refused = Vec::new();
        let mut acceptable = Vec::new();
        for base in candidates() {
            match refusal(&base, uid) {
                None => acceptable.push(base),
                Some(why) => refused.push(why),
            }
        }
        let base = match acceptable.iter().find(|b| memory_backed(b)) {
            Some(b) => b.clone(),
            None => {
                let b = acceptable.first().cloned().ok_or_else(|| {
                    Error::Permission(format!(
                        "no safe directory for --file: {}",
                        refused.join("; ")
                    ))
                })?;
                // Said once per process: a run makes several directories
                // (files, ledger, metrics), all on the same base.
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "st-secrets: warning: no memory-backed directory for --file \
                         (XDG_RUNTIME_DIR, /dev/shm); the files go to {} on disk, and are removed \
                         when the command ends",
                        b.display()
                    )
                });
                b
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("st-secrets-run.")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| Error::io("cannot create a private directory in", &base, &e))?;
        let meta = std::fs::symlink_metadata(dir.path())
            .map_err(|e| Error::io("cannot inspect", dir.path(), &e))?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o7777 != 0o700 {
            return Err(Error::Permission(format!(
                "{} is not a private directory of this user after its creation (mode {:o}, \
                 owner {})",
                dir.path().display(),
                meta.mode() & 0o7777,
                meta.uid()
            )));
        }
        Ok(SecretDir { dir: Some(dir) })
    }

    /// The private directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Writes `value` to a new file `name` (mode 0600) in the directory;
    /// its path.
    pub fn write(&self, name: &str, value: &[u8]) -> Result<PathBuf, Error> {
        delivery::check_name(name)?;
        make_parents(self.path(), name)?;
        let path = self.path().join(name);
        let mut file = delivery::create_new_private(&path)?;
        file.write_all(value)
            .map_err(|e| Error::io("cannot write", &path, &e))?;
        Ok(path)
    }

    /// Replaces file `name`'s contents with `value` atomically: a new 0600
    /// file beside it, renamed over it (a reader sees the old file or the
    /// new one, never part of one).
    pub fn replace(dir: &Path, name: &str, value: &[u8]) -> Result<(), Error> {
        delivery::replace_file(dir, name, value)
    }

    /// Removes the files and the directory now, saying so on stderr if it
    /// cannot (drop does the same, silently).
    pub fn remove(mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_owned();
            if let Err(e) = dir.close() {
                eprintln!(
                    "st-secrets: warning: cannot remove {}: {e}; remove it by hand",
                    path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_must_be_private_or_sticky() {
        let t = tempfile::TempDir::new().unwrap();
        let uid = crate::sys::uid();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        for (mode, ok) in [
            (0o700, true),
            (0o755, true),
            (0o775, false),
            (0o777, false),
            (0o1777, true),
        ] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(refusal(&d, uid).is_none(), ok, "mode {mode:o}");
        }
        // Another owner's private directory is refused, a file too.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(refusal(&d, uid + 1).is_some());
        let f = t.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert!(refusal(&f, uid).is_some());
        assert!(refusal(&t.path().join("absent"), uid).is_some());
    }

    #[test]
    fn files_are_private_new_and_gone_with_the_directory() {
        let d = SecretDir::create().unwrap();
        let dir = d.path().to_owned();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().mode() & 0o7777,
            0o700,
            "{}",
            dir.display()
        );
        let p = d.write("NETRC", b"machine x password y").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"machine x password y");
        assert!(d.write("NETRC", b"again").is_err(), "never over a name");
        d.remove();
        assert!(!dir.exists());
    }
}

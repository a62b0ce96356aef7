//! File-system steps for secret files, shared by the secrets file and the
//! credential key file: private directories, temporary files that are 0600
//! from their first byte, and durable renames.

use crate::Error;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Creates `dir` and its missing parents with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, &e))
}

/// Writes `bytes` to a new file `<dir>/<prefix><pid>.<nanos>`, created with
/// mode 0600 (set explicitly, whatever the umask, before the first byte) and
/// synced to disk. Returns its path; the caller renames or links it, and
/// removes it on failure.
pub(crate) fn write_private_temp(dir: &Path, prefix: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let temp = dir.join(format!("{prefix}{}.{nanos}", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| Error::io("cannot create temporary file", &temp, &e))?;
        // The umask can only clear bits of 0600; set it exactly anyway.
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| Error::io("cannot set permissions on", &temp, &e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("cannot write", &temp, &e))?;
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", &temp, &e))
    })();
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Makes a rename or link inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", dir, &e))
}

/// Creates `path` holding `contents` (mode 0600, directory 0700), atomically
/// and never over an existing file: the contents go to a 0600 temporary file
/// that is then hard-linked to `path`, which fails if the name exists. Returns
/// `Ok(false)` when `path` already existed (another process won a race): the
/// caller then reads that file instead.
pub(crate) fn create_secret_file_once(path: &Path, contents: &[u8]) -> Result<bool, Error> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = write_private_temp(dir, &format!(".{name}.tmp."), contents)?;
    let linked = match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("cannot create", path, &e)),
    };
    let _ = std::fs::remove_file(&temp);
    if linked? {
        sync_dir(dir)?;
        return Ok(true);
    }
    Ok(false)
}

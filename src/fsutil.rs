//! File-system steps for secret files, shared by the secrets file and the
//! credential key file: reading them safely (regular files only, never
//! blocking, bounded in size), private directories, temporary files that are
//! 0600 from their first byte, and durable renames.

use crate::error::Error;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest file [`read_regular`] reads unless told otherwise: 4 MiB, as
/// the remote providers' bodies.
pub(crate) const DEFAULT_MAX_FILE_SIZE: u64 = 4 << 20;

/// Reads the file at `path` (`what` names it in messages), following a
/// symlink: `Ok(None)` when it does not exist (a dangling symlink included).
///
/// It is opened without blocking (`O_NONBLOCK`: a FIFO or a device at the
/// path cannot hang the caller) and refused unless it is a regular file, and
/// refused before reading when it is larger than `max` bytes; at most `max`
/// bytes are ever read (a file growing meanwhile is refused too), so memory
/// stays bounded.
///
/// # Errors
/// [`Error::Io`] naming the path: not a regular file, too large, or a read
/// failure; [`Error::Permission`] when access is denied.
pub(crate) fn read_regular(path: &Path, what: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
    read_checked(path, what, max, |_| Ok(()))
}

/// [`read_regular`], with `check` run on the opened file's own metadata
/// (`fstat`) before a byte is read: an owner or mode check that cannot be
/// raced by renaming another file over the path between check and read.
pub(crate) fn read_checked(
    path: &Path,
    what: &str,
    max: u64,
    check: impl FnOnce(&std::fs::Metadata) -> Result<(), Error>,
) -> Result<Option<Vec<u8>>, Error> {
    use std::io::Read;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&format!("cannot open {what}"), path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&format!("cannot inspect {what}"), path, &e))?;
    if !meta.is_file() {
        return Err(Error::Io(format!(
            "{what} {} is not a regular file (it is {}); refusing to read it",
            path.display(),
            kind_of(&meta.file_type())
        )));
    }
    let too_large = |size: u64| {
        Error::Io(format!(
            "{what} {} is {size} bytes, above the limit of {max} bytes; refusing to read it",
            path.display()
        ))
    };
    check(&meta)?;
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&format!("cannot read {what}"), path, &e))?;
    if bytes.len() as u64 > max {
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(too_large(max.saturating_add(1)));
    }
    Ok(Some(bytes))
}

/// [`read_regular`] of a file that must exist: a missing one is
/// [`Error::Io`] "`what` PATH does not exist".
pub(crate) fn read_required(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, Error> {
    read_required_checked(path, what, max, |_| Ok(()))
}

/// [`read_checked`] of a file that must exist, as [`read_required`].
pub(crate) fn read_required_checked(
    path: &Path,
    what: &str,
    max: u64,
    check: impl FnOnce(&std::fs::Metadata) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    read_checked(path, what, max, check)?
        .ok_or_else(|| Error::Io(format!("{what} {} does not exist", path.display())))
}

/// What a non-regular file is, for messages.
pub(crate) fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens (creating it 0600 if needed) the lock file at `path` for an
/// exclusive `flock`: never through a symlink (`O_NOFOLLOW`), never blocking
/// on open, and only when it is a regular file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::Io(format!(
                    "lock file {} is a symbolic link; refusing to follow it (remove it)",
                    path.display()
                ))
            } else {
                Error::io("cannot open lock file", path, &e)
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect lock file", path, &e))?;
    if !meta.is_file() {
        return Err(Error::Io(format!(
            "lock file {} is not a regular file (it is {}); refusing to use it",
            path.display(),
            kind_of(&meta.file_type())
        )));
    }
    Ok(file)
}

/// Creates `dir` and its missing parents with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, &e))
}

/// Writes `bytes` to a new file `<dir>/<prefix><pid>.<nanos>.<sequence>`, created with
/// mode 0600 (set explicitly, whatever the umask, before the first byte) and
/// synced to disk. Returns its path; the caller renames or links it, and
/// removes it on failure.
pub(crate) fn write_private_temp(dir: &Path, prefix: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    write_temp(dir, prefix, bytes, 0o600)
}

/// [`write_private_temp`] with the file's `mode` (0644 for a file another
/// user reads): always a new file (`O_EXCL`, never through a link planted
/// at the name), its mode set on the open file.
pub(crate) fn write_temp(
    dir: &Path,
    prefix: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<PathBuf, Error> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Two threads can read the same nanoseconds (the ranks of one process
    // opening one store together did, once in about 100 rounds): a
    // process-wide sequence number keeps their names apart.
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{prefix}{}.{nanos}.{seq}", std::process::id()));
    let written = (|| {
        // create_new (O_EXCL) never follows a symlink at the name; O_NOFOLLOW
        // says so again.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
            .map_err(|e| Error::io("cannot create temporary file", &temp, &e))?;
        // Created 0600 (the umask can only clear bits); set exactly.
        file.set_permissions(Permissions::from_mode(mode))
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

/// `path`'s directory (`.` for a bare name) and file name.
fn dir_and_name(path: &Path) -> (&Path, Option<String>) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    (dir, name)
}

/// The prefix of the temporary files written for `name`:
/// `.<name>.tmp.` (then `<pid>.<nanos>.<sequence>`).
pub(crate) fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp.")
}

/// Writes `bytes` to `target` (named `name`, in `dir`) atomically: a 0600
/// temporary file renamed over it, then the directory synced.
pub(crate) fn replace_atomically(
    dir: &Path,
    name: &str,
    target: &Path,
    bytes: &[u8],
) -> Result<(), Error> {
    replace_with(dir, name, target, bytes, |_| Ok(()))
}

/// [`replace_atomically`], the new file given the owner, group and ACL of
/// the one it replaces (when there is one, never through a link), so that
/// whoever was let read it reads the new one: a job's file rewritten by
/// root for the job's user.
pub(crate) fn replace_keeping_access(
    dir: &Path,
    name: &str,
    target: &Path,
    bytes: &[u8],
) -> Result<(), Error> {
    replace_with(dir, name, target, bytes, |temp| {
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
                .open(p)
        };
        match open(target) {
            Ok(old) => {
                let new = open(temp).map_err(|e| Error::io("cannot open", temp, &e))?;
                crate::sys::copy_access(&old, &new)
                    .map_err(|e| Error::io("cannot give the new file the access of", target, &e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot open", target, &e)),
        }
    })
}

/// The one atomic replacement: `bytes` to a new 0600 temporary file beside
/// `target`, `prepare`d (its path given), renamed over `target`, the
/// directory synced; the temporary file removed on any failure.
fn replace_with(
    dir: &Path,
    name: &str,
    target: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&Path) -> Result<(), Error>,
) -> Result<(), Error> {
    let temp = write_private_temp(dir, &temp_prefix(name), bytes)?;
    let replaced = prepare(&temp).and_then(|()| {
        std::fs::rename(&temp, target).map_err(|e| Error::io("cannot replace", target, &e))
    });
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
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
    let (dir, name) = dir_and_name(path);
    create_private_dir(dir)?;
    let temp = write_private_temp(dir, &temp_prefix(&name.unwrap_or_default()), contents)?;
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

/// Creates a FIFO at `path` (tests of the non-regular-file checks), with
/// the `mkfifo` command: the domain modules hold no `unsafe` code.
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Appends `bytes` to `path` in one write, only to a regular file of user
/// `uid` (the caller's effective one) that no one else may read or write
/// (0600), never through a symlink, never blocking on open; with `create`,
/// a missing file is made 0600. Best effort: a failure to write loses the bytes (the callers'
/// records never fail their callers).
pub(crate) fn append_private(path: &Path, bytes: &[u8], create: bool, uid: u32) {
    let file = OpenOptions::new()
        .append(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    if let Ok(mut file) = file {
        use std::os::unix::fs::MetadataExt;
        let ok = file
            .metadata()
            .is_ok_and(|m| m.is_file() && m.uid() == uid && m.mode() & 0o077 == 0);
        if ok {
            let _ = file.write_all(bytes);
        }
    }
}

/// Whether the POSIX access ACL of `path` (`system.posix_acl_access`)
/// lets nobody but its owner and the user `uid` in: the group bits of a
/// file with such an ACL are its mask, not a group's (the Slurm plugin's
/// files: root's, read by the job's user alone). False without an ACL.
pub(crate) fn acl_only_for(path: &Path, uid: u32) -> bool {
    let Some(buf) = crate::sys::xattr(path, c"system.posix_acl_access", 4 + 8 * 32) else {
        return false;
    };
    let n = buf.len();
    if n < 4 || (n - 4) % 8 != 0 || buf[..4] != 2u32.to_le_bytes() {
        return false;
    }
    // (tag, perm, id): the owner (1) and the mask (0x10) say nothing of
    // who else; a named user (2) must be `uid`; the group (4), named
    // groups (8) and others (0x20) must have no permission.
    buf[4..n].chunks_exact(8).all(|e| {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        match tag {
            0x01 | 0x10 => true,
            0x02 => id == uid,
            _ => perm == 0,
        }
    })
}

//! The store's connection: opened per process (a child forked from a
//! process using a store opens its own on first use), in WAL mode, created
//! whole or not at all, reopened when the file the path names is replaced,
//! read-only on a full disk; and the store's database errors, which name the
//! path and never a stored value.

use crate::error::Error;
use crate::fsutil;
use crate::sys::MutexGuard;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How long a writer waits for another process's transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS provider_config (
        provider TEXT PRIMARY KEY,
        config TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS st_credentials (
        provider TEXT NOT NULL,
        name TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (provider, name)
    );
    CREATE TABLE IF NOT EXISTS st_audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
";

/// A database error, with the database's path and never a stored value. A
/// full disk is an I/O error saying so, not a database problem.
pub(super) fn db_error(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) || disk_full(path) {
        return Error::Io(format!(
            "{}: the disk is full; nothing was written ({e})",
            path.display()
        ));
    }
    Error::Store(format!("{}: {what}: {e}", path.display()))
}

/// Whether the filesystem holding `path` has no space left for an
/// unprivileged writer.
fn disk_full(path: &Path) -> bool {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::sys::free_bytes(dir).is_some_and(|free| free < 64 << 10)
}

/// This process's connection to the database: none in a child forked from
/// the process that opened it, until its first use there.
pub(super) struct Conn {
    pub(super) db: Option<Connection>,
    /// Forked while another thread of the parent was inside SQLite with
    /// this store: SQLite keeps each file's lock state per process, and the
    /// child's copy records locks the child does not hold, so no connection
    /// to this database is safe in the child.
    pub(super) forked_mid_call: bool,
    /// Opened read-only because the disk was full (SQLite could not create
    /// its shared-memory file): reads work, writes reopen or fail with
    /// [`Error::Io`].
    pub(super) read_only: bool,
    pub(super) busy_timeout: Duration,
    /// The file the connection has open (device and inode), to tell when
    /// the path no longer names it.
    pub(super) file: Option<FileId>,
    /// `PRAGMA data_version` of this connection when this store last
    /// checked it (`None`: not yet, or a new connection): it changes when
    /// any other connection (another store, another process, SimpleTuner's
    /// own) commits to the database.
    pub(super) data_version: Option<i64>,
}

/// A file's device and inode numbers.
pub(super) type FileId = (u64, u64);

/// The device and inode of the file at `path`, or the error reading them.
pub(super) fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

impl Conn {
    /// In a child forked while no thread used the store: the inherited
    /// connection is closed, never used (that would share it with the
    /// parent). Closing releases only this process's share of SQLite's
    /// per-file lock records (the parent's locks are its own), so the
    /// connection opened next takes real locks of its own.
    pub(super) fn after_fork(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = db.close();
        }
        self.read_only = false;
        self.data_version = None;
    }

    /// A child forked while a thread of the parent was inside a call.
    pub(super) fn forked_mid_call() -> Conn {
        Conn {
            db: None,
            forked_mid_call: true,
            read_only: false,
            busy_timeout: BUSY_TIMEOUT,
            file: None,
            data_version: None,
        }
    }
}

/// The connection of a [`Conn`] guard.
pub(super) struct ConnGuard<'a>(pub(super) MutexGuard<'a, Conn>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0
            .db
            .as_ref()
            .expect("opened before the guard is handed out")
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.0
            .db
            .as_mut()
            .expect("opened before the guard is handed out")
    }
}

/// Opens `path` for reading and writing, in WAL mode, with the schema.
pub(super) fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
    let conn = Connection::open(path).map_err(|e| db_error(path, "cannot open", e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| db_error(path, "cannot configure", e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| db_error(path, "not a usable SQLite database", e))?;
    conn.execute_batch(SCHEMA)
        .map_err(|e| db_error(path, "cannot create tables", e))?;
    Ok(conn)
}

/// Opens `path` as [`connect`] does; on a full disk, where SQLite cannot
/// create the shared-memory file a WAL database needs, read-only as an
/// immutable file instead (true in the second place), which is exact while
/// no write-ahead log holds changes not yet in the file.
pub(super) fn connect_or_read_only(
    path: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, bool), Error> {
    refuse_other_names(path)?;
    let e = match connect(path, busy_timeout) {
        Ok(conn) => return Ok((conn, false)),
        Err(e @ Error::Io(_)) if disk_full(path) => e,
        Err(e) => return Err(e),
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        // Changes in the log an immutable reader would not see.
        return Err(e);
    }
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|_| e.clone())?;
    conn.query_row("SELECT count(*) FROM provider_config", [], |_| Ok(()))
        .map_err(|_| e)?;
    Ok((conn, true))
}

/// `path` for a SQLite `file:` URI: `%`, `?` and `#` (and bytes outside
/// printable ASCII) percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            0x21..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Refuses a database file that has another name (a hard link): SQLite
/// keeps the write-ahead log and its shared memory beside the *name* a
/// database is opened by, so two names are two logs over one file, and
/// writers through the two names lose each other's commits ("disk I/O
/// error", or every save gone). The link [`create_database`] makes for an
/// instant (its temporary, named with this directory's temporary prefix)
/// does not count, so ranks opening a database being created are not
/// refused.
fn refuse_other_names(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = path
        .file_name()
        .map(|n| fsutil::temp_prefix(&n.to_string_lossy()))
        .unwrap_or_default();
    // The link count and the temporaries are read apart: a creator may
    // remove its temporary in between. A count that moved meanwhile is
    // read again (three times at most; a creation still under way then is
    // given the benefit of the doubt).
    for _ in 0..3 {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(()); // opening reports what is wrong with it
        };
        if meta.nlink() <= 1 {
            return Ok(());
        }
        let ours = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter(|e| {
                std::fs::symlink_metadata(e.path())
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
            })
            .count() as u64;
        let again = std::fs::metadata(path).map_or(0, |m| m.nlink());
        if again != meta.nlink() {
            continue;
        }
        let names = meta.nlink().saturating_sub(ours);
        if names > 1 {
            return Err(Error::Store(format!(
                "{}: the database file has {names} names (hard links); SQLite keeps its \
                 write-ahead log beside the name a database is opened by, so two names \
                 would be two logs and saves would be lost: remove the other links and \
                 open it by one name",
                path.display()
            )));
        }
        return Ok(());
    }
    Ok(())
}

/// Creates the database at `path` whole or not at all: the schema is written
/// into a 0600 temporary file beside it, which is then hard-linked to `path`
/// (never over an existing file). The ranks of a job starting together on a
/// fresh node each build one; the first link wins and the others open it, so
/// nobody ever sees a database half made (an empty file).
pub(super) fn create_database(dir: &Path, path: &Path) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = fsutil::write_private_temp(dir, &fsutil::temp_prefix(&name), b"")?;
    let built = connect(&temp, BUSY_TIMEOUT).and_then(|conn| {
        conn.close()
            .map_err(|(_, e)| db_error(&temp, "cannot close the new database", e))
    });
    let linked = built.and_then(|()| match std::fs::hard_link(&temp, path) {
        Ok(()) => fsutil::sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("cannot create database", path, &e)),
    });
    let _ = std::fs::remove_file(&temp);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = temp.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    linked
}

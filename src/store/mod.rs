//! The provider configuration store: provider settings in an embedded SQLite
//! database, read through the process-wide provider-config cache, every change
//! recorded in a tamper-evident audit trail; provider API tokens encrypted at
//! rest; hardware pricing (see [`hardware`]).
//!
//! The database is `<state dir>/cloud/jobs.db`, the state dir being
//! `SIMPLETUNER_STATE_DIR`, else `SIMPLETUNER_CONFIG_DIR`, else
//! `~/.simpletuner`. Its `provider_config` table is SimpleTuner's own
//! (`provider TEXT PRIMARY KEY, config TEXT NOT NULL DEFAULT '{}', updated_at
//! TEXT NOT NULL`), so an existing SimpleTuner database opens and reads as it
//! is; st-secrets adds the tables `st_audit_log` and `st_credentials`. WAL
//! mode and a busy timeout let several processes use it at once; every write is
//! one `BEGIN IMMEDIATE` transaction that also appends its audit entry, so no
//! change is ever committed without its record.

pub mod audit;
mod clock;
pub mod hardware;

pub use audit::{AuditEntry, AuditReport};

use crate::cache::global::provider_config_cache;
use crate::error::Error;
use crate::fsutil;
use crate::secret::{SecretBytes, SecretString};
use crate::sys::{Mutex, MutexGuard};
use clock::utc_now_iso;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde_json::{Map, Value};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process's transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a provider's configuration is cached.
pub const CONFIG_TTL: Duration = Duration::from_secs(300);

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

/// The state directory: `SIMPLETUNER_STATE_DIR`, else `SIMPLETUNER_CONFIG_DIR`,
/// else `~/.simpletuner`.
pub fn state_dir() -> Result<PathBuf, Error> {
    crate::paths::state_dir()
        .ok_or_else(|| Error::Store("no state directory: set SIMPLETUNER_STATE_DIR or HOME".into()))
}

/// Where a store records its audit head after each write, beside the
/// database at `db`: `.<name>.audit-head` (see [`Store::recorded_audit_head`]).
pub fn recorded_head_path(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.with_file_name(format!(".{name}.audit-head"))
}

/// The default database: `<state dir>/cloud/jobs.db`.
pub fn default_db_path() -> Result<PathBuf, Error> {
    Ok(state_dir()?.join("cloud").join("jobs.db"))
}

/// Counts of a credential re-encryption pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Credentials re-encrypted under the current key.
    pub rotated: usize,
    /// Credentials already under the current key.
    pub current: usize,
    /// Credentials no known key opens (left as they are).
    pub failed: usize,
}

/// An open provider-configuration store. Thread-safe (one connection behind a
/// lock); several processes may open the same database. A child forked from
/// a process using a store opens its own connection on first use (SQLite's
/// locks are per process: a connection must never be shared across `fork`).
pub struct Store {
    conn: Mutex<Conn>,
    path: PathBuf,
    /// Appended to cache keys so that stores on different databases in one
    /// process never share entries (empty for the default database).
    cache_suffix: String,
    audit_key: SecretBytes,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A database error, with the database's path and never a stored value. A
/// full disk is an I/O error saying so, not a database problem.
fn db_error(path: &Path, what: &str, e: rusqlite::Error) -> Error {
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
struct Conn {
    db: Option<Connection>,
    /// Forked while another thread of the parent was inside SQLite with
    /// this store: SQLite keeps each file's lock state per process, and the
    /// child's copy records locks the child does not hold, so no connection
    /// to this database is safe in the child.
    forked_mid_call: bool,
    /// Opened read-only because the disk was full (SQLite could not create
    /// its shared-memory file): reads work, writes reopen or fail with
    /// [`Error::Io`].
    read_only: bool,
    busy_timeout: Duration,
    /// The file the connection has open (device and inode), to tell when
    /// the path no longer names it.
    file: Option<FileId>,
}

/// A file's device and inode numbers.
type FileId = (u64, u64);

/// The device and inode of the file at `path`, or the error reading them.
fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

impl Conn {
    /// In a child forked while no thread used the store: the inherited
    /// connection is closed, never used (that would share it with the
    /// parent). Closing releases only this process's share of SQLite's
    /// per-file lock records (the parent's locks are its own), so the
    /// connection opened next takes real locks of its own.
    fn after_fork(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = db.close();
        }
        self.read_only = false;
    }

    /// A child forked while a thread of the parent was inside a call.
    fn forked_mid_call() -> Conn {
        Conn {
            db: None,
            forked_mid_call: true,
            read_only: false,
            busy_timeout: BUSY_TIMEOUT,
            file: None,
        }
    }
}

/// The connection of a [`Conn`] guard.
struct ConnGuard<'a>(MutexGuard<'a, Conn>);

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
fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
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
fn connect_or_read_only(path: &Path, busy_timeout: Duration) -> Result<(Connection, bool), Error> {
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

/// Creates the database at `path` whole or not at all: the schema is written
/// into a 0600 temporary file beside it, which is then hard-linked to `path`
/// (never over an existing file). The ranks of a job starting together on a
/// fresh node each build one; the first link wins and the others open it, so
/// nobody ever sees a database half made (an empty file).
fn create_database(dir: &Path, path: &Path) -> Result<(), Error> {
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

impl Store {
    /// Opens (creating when needed, mode 0600 in a 0700 directory) the database
    /// at `path`, or the default one. The audit key is `SIMPLETUNER_AUDIT_KEY`,
    /// else the file `audit.key` beside the database (generated once, 0600).
    ///
    /// # Errors
    /// [`Error::Store`] when the file is not a SQLite database, is corrupt, or
    /// cannot be opened; [`Error::Key`] when the audit key cannot be sourced.
    pub fn open(path: Option<&Path>) -> Result<Store, Error> {
        let default = default_db_path().ok();
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => default.clone().ok_or_else(|| {
                Error::Store("no state directory: set SIMPLETUNER_STATE_DIR or HOME".into())
            })?,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            fsutil::create_private_dir(dir)?;
        }
        if !path.exists() {
            create_database(dir, &path)?;
        }
        // An existing empty file is not a database this library made (it
        // creates one whole): most likely a truncated jobs.db. SQLite would
        // take it for a new, empty database and the provider configurations
        // and the audit trail would silently vanish.
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.is_file() && meta.len() == 0 {
                return Err(Error::Store(format!(
                    "database {} exists but is empty (0 bytes): truncated? Refusing to start a \
                     new database over it; restore it, or move it away to start afresh",
                    path.display()
                )));
            }
        }
        let (conn, read_only) = connect_or_read_only(&path, BUSY_TIMEOUT)?;
        let file = file_id(&path).ok();
        let cache_suffix = if Some(&path) == default.as_ref() {
            String::new()
        } else {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::canonicalize(&path)
                .unwrap_or_else(|_| path.clone())
                .hash(&mut h);
            format!(":db{:016x}", h.finish())
        };
        let audit_key = audit::source_key(dir)?;
        Ok(Store {
            conn: Mutex::with_fresh(
                Conn {
                    db: Some(conn),
                    forked_mid_call: false,
                    read_only,
                    busy_timeout: BUSY_TIMEOUT,
                    file,
                },
                Conn::forked_mid_call,
            )
            .after_fork(Conn::after_fork),
            path,
            cache_suffix,
            audit_key,
        })
    }

    /// Sets how long a write waits for other processes' transactions before
    /// failing with [`Error::Store`] ("database is locked"); default 5 s.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let mut conn = self.conn.lock();
        conn.busy_timeout = timeout;
        if let Some(db) = &conn.db {
            db.busy_timeout(timeout)
                .map_err(|e| db_error(&self.path, "cannot configure", e))?;
        }
        Ok(())
    }

    /// This process's connection (opened here on first use in a forked
    /// child), to the file the path names now: a database file replaced
    /// since it was opened (restored from a backup, moved in by another
    /// program) is opened anew and this process's cached configurations
    /// dropped; one removed is an [`Error::Store`] saying so (SQLite would
    /// go on writing to the unlinked file, or call it malformed once its
    /// write-ahead log went with it), never a new empty database made
    /// silently.
    fn reader(&self) -> Result<ConnGuard<'_>, Error> {
        let mut conn = self.conn.lock();
        if conn.forked_mid_call {
            return Err(Error::Store(format!(
                "{}: this process was forked while another thread was using this store; \
                 SQLite's locks do not survive that, so the store cannot be used here: \
                 open stores after forking, or fork while no thread uses them",
                self.path.display()
            )));
        }
        if conn.db.is_some() && conn.file.is_some() {
            match file_id(&self.path) {
                Ok(now) if Some(now) == conn.file => {}
                Ok(_) => {
                    if let Some(db) = conn.db.take() {
                        // The write-ahead log beside the path is the old
                        // file's, and SQLite would replay it into the new one
                        // (it does not checkpoint on closing a moved file):
                        // empty it into the old file first. (A connection
                        // opened read-only on a full disk cannot, and never
                        // wrote to it.)
                        let emptied = if conn.read_only {
                            Ok(0)
                        } else {
                            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                                r.get::<_, i64>(0)
                            })
                        };
                        if emptied != Ok(0) {
                            // Kept on the old file until the log can be
                            // emptied (another process reading it now).
                            conn.db = Some(db);
                            return Err(Error::Store(format!(
                                "{}: the database file was replaced while this store had it \
                                 open, and the old file's write-ahead log beside it cannot be \
                                 emptied yet (another process is using the old file); nothing \
                                 was read or written: try again",
                                self.path.display()
                            )));
                        }
                        self.forget_cached(&db);
                        let _ = db.close();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(self.removed_error());
                }
                Err(_) => {}
            }
        }
        if conn.db.is_none() {
            if conn.file.is_some() && !self.path.exists() {
                return Err(self.removed_error());
            }
            let (db, read_only) = connect_or_read_only(&self.path, conn.busy_timeout)?;
            let now = file_id(&self.path).ok();
            if conn.file.is_some() && now != conn.file {
                self.forget_cached(&db);
            }
            conn.file = now;
            conn.db = Some(db);
            conn.read_only = read_only;
        }
        Ok(ConnGuard(conn))
    }

    /// Drops this store's cached configuration of every provider `db` holds
    /// (the file replaced, and the one replacing it, are each passed here).
    fn forget_cached(&self, db: &Connection) {
        let Ok(mut stmt) = db.prepare("SELECT provider FROM provider_config") else {
            return;
        };
        let Ok(rows) = stmt.query_map([], |row| row.get::<_, String>(0)) else {
            return;
        };
        let cache = provider_config_cache();
        for provider in rows.flatten() {
            cache.delete(&self.config_cache_key(&provider));
        }
    }

    /// The database file this store opened is gone.
    fn removed_error(&self) -> Error {
        let dir = match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) if !d.exists() => " (its directory is gone too)",
            _ => "",
        };
        Error::Store(format!(
            "{}: the database file was removed while this store had it open{dir}; nothing \
             was read or written: restore the file, or open the store again to start a \
             new database there",
            self.path.display()
        ))
    }

    /// A connection that can write: one opened read-only on a full disk is
    /// reopened, or the write fails with [`Error::Io`] saying the disk is full.
    fn writer(&self) -> Result<ConnGuard<'_>, Error> {
        let mut conn = self.reader()?;
        if conn.0.read_only {
            let db = connect(&self.path, conn.0.busy_timeout)?;
            conn.0.file = file_id(&self.path).ok();
            conn.0.db = Some(db);
            conn.0.read_only = false;
        }
        Ok(conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn config_cache_key(&self, provider: &str) -> String {
        format!("provider:{provider}:config{}", self.cache_suffix)
    }

    /// The provider's configuration as a JSON object (`{}` when it has none),
    /// from the process-wide provider-config cache (`provider:<name>:config`,
    /// 5 minutes), read from the database on a miss.
    pub fn get_provider_config(&self, provider: &str) -> Result<String, Error> {
        let bytes = self.with_provider_config(provider, <[u8]>::to_vec)?;
        String::from_utf8(bytes)
            .map_err(|_| Error::Internal("cached configuration is not UTF-8".into()))
    }

    /// Runs `f` on the provider's configuration (UTF-8 JSON text) as
    /// [`get_provider_config`](Self::get_provider_config) finds it; on a cache
    /// hit, in place, without copying it first.
    pub fn with_provider_config<R>(
        &self,
        provider: &str,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        check_name("provider", provider)?;
        let key = self.config_cache_key(provider);
        let cache = provider_config_cache();
        let mut f = Some(f);
        if let Some(hit) = cache.get_map(&key, |b| (f.take().expect("called once"))(b.expose())) {
            return Ok(hit);
        }
        let bytes = cache.get_or_set(&key, Some(CONFIG_TTL), || {
            self.read_provider_config(provider)
                .map(|s| SecretBytes::from(s.into_bytes()))
        })?;
        Ok((f.take().expect("not called on a hit"))(bytes.expose()))
    }

    /// The provider's configuration read from the database, bypassing the cache.
    pub fn read_provider_config(&self, provider: &str) -> Result<String, Error> {
        check_name("provider", provider)?;
        let conn = self.reader()?;
        let text = read_config_row(&conn, &self.path, provider)?;
        Ok(text.unwrap_or_else(|| "{}".to_owned()))
    }

    /// Replaces the provider's configuration with `config_json` (a JSON
    /// object), in one transaction with its audit entry, then drops the
    /// provider's cached entries (`provider:<name>:`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for malformed JSON, a value that is not an
    /// object, or an invalid `hardware_info`; [`Error::Store`] for database
    /// failures (nothing is written then).
    pub fn save_provider_config(&self, provider: &str, config_json: &str) -> Result<(), Error> {
        check_name("provider", provider)?;
        let new = parse_object("config", config_json)?;
        self.write_config(provider, "config.save", |_| Ok(new))?;
        Ok(())
    }

    /// Applies `patch_json` to the provider's configuration as a JSON merge
    /// patch (RFC 7396: keys with `null` are removed, objects merge
    /// recursively, anything else replaces) atomically: the read and the write
    /// are one transaction, so concurrent merges from several processes lose
    /// nothing. Returns the new configuration.
    pub fn merge_provider_config(&self, provider: &str, patch_json: &str) -> Result<String, Error> {
        check_name("provider", provider)?;
        let patch = parse_object("patch", patch_json)?;
        self.write_config(provider, "config.merge", |mut current| {
            merge_patch(&mut current, Value::Object(patch));
            Ok(current)
        })
    }

    /// Sets the top-level keys of `updates_json` (a JSON object) in the
    /// provider's configuration, replacing their values whole (SimpleTuner's
    /// `update`: a shallow `dict.update`, here atomic: read and write are one
    /// transaction). Returns the new configuration.
    pub fn update_provider_config(
        &self,
        provider: &str,
        updates_json: &str,
    ) -> Result<String, Error> {
        check_name("provider", provider)?;
        let updates = parse_object("updates", updates_json)?;
        self.write_config(provider, "config.update", |mut current| {
            current.extend(updates);
            Ok(current)
        })
    }

    /// Deletes the provider's configuration (audited as `config.delete`, with
    /// the keys it had), then drops its cached entries; `Ok(false)` when it
    /// had none.
    pub fn delete_provider_config(&self, provider: &str) -> Result<bool, Error> {
        check_name("provider", provider)?;
        let removed = self.write(|tx| {
            let Some(text) = read_config_row(tx, &self.path, provider)? else {
                return Ok(false);
            };
            let old = parse_stored(&self.path, provider, &text)?;
            tx.execute(
                "DELETE FROM provider_config WHERE provider = ?1",
                params![provider],
            )
            .map_err(|e| db_error(&self.path, "cannot delete the configuration", e))?;
            self.record(
                tx,
                "config.delete",
                provider,
                "",
                &key_changes(&old, &Map::new()),
            )?;
            Ok(true)
        })?;
        crate::cache::global::invalidate_provider_cache(provider);
        Ok(removed)
    }

    /// The providers that have a configuration, in name order.
    pub fn list_providers(&self) -> Result<Vec<String>, Error> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare("SELECT provider FROM provider_config ORDER BY provider ASC")
            .map_err(|e| db_error(&self.path, "cannot list providers", e))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| db_error(&self.path, "cannot list providers", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_error(&self.path, "cannot list providers", e))
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction and commits it; when
    /// `body` fails, nothing is written. Every write of the store goes through
    /// here, its audit entries ([`Store::record`]) in the same transaction.
    fn write<R>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&self.path, "cannot begin a write", e))?;
        let result = body(&tx)?;
        tx.commit()
            .map_err(|e| db_error(&self.path, "cannot commit", e))?;
        drop(conn);
        self.record_head();
        Ok(result)
    }

    /// Appends an audit entry inside a write transaction.
    fn record(
        &self,
        tx: &Transaction<'_>,
        action: &str,
        provider: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), Error> {
        audit::append(tx, &self.audit_key, action, provider, subject, detail)
            .map_err(|e| db_error(&self.path, "cannot write the audit entry", e))
    }

    fn write_config(
        &self,
        provider: &str,
        action: &str,
        change: impl FnOnce(Map<String, Value>) -> Result<Map<String, Value>, Error>,
    ) -> Result<String, Error> {
        let text = self.write(|tx| {
            let old = match read_config_row(tx, &self.path, provider)? {
                Some(text) => parse_stored(&self.path, provider, &text)?,
                None => Map::new(),
            };
            let new = change(old.clone())?;
            if let Some(info) = new.get("hardware_info") {
                hardware::validate(info)?;
            }
            let text = Value::Object(new.clone()).to_string();
            tx.execute(
                "INSERT INTO provider_config (provider, config, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(provider) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
                params![provider, text, utc_now_iso()],
            )
            .map_err(|e| db_error(&self.path, "cannot save the configuration", e))?;
            self.record(tx, action, provider, "", &key_changes(&old, &new))?;
            Ok(text)
        })?;
        crate::cache::global::invalidate_provider_cache(provider);
        Ok(text)
    }

    /// Stores a provider credential (an API token), encrypted with the
    /// credential key, and records it in the audit trail (name only).
    pub fn set_credential(&self, provider: &str, name: &str, value: &str) -> Result<(), Error> {
        check_name("provider", provider)?;
        check_name("credential name", name)?;
        let ciphertext = crate::crypto::encrypt(value)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO st_credentials (provider, name, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(provider, name) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                params![provider, name, ciphertext, utc_now_iso()],
            )
            .map_err(|e| db_error(&self.path, "cannot save the credential", e))?;
            self.record(tx, "credential.set", provider, name, "{}")
        })
    }

    /// A provider credential, decrypted; `Ok(None)` when there is none. Each
    /// successful read is recorded in the audit trail as a use.
    pub fn get_credential(
        &self,
        provider: &str,
        name: &str,
    ) -> Result<Option<SecretString>, Error> {
        check_name("provider", provider)?;
        check_name("credential name", name)?;
        let ciphertext: Option<String> = self
            .reader()?
            .query_row(
                "SELECT ciphertext FROM st_credentials WHERE provider = ?1 AND name = ?2",
                params![provider, name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| db_error(&self.path, "cannot read the credential", e))?;
        let Some(ciphertext) = ciphertext else {
            return Ok(None);
        };
        let value = crate::crypto::decrypt(&ciphertext)
            .map_err(|e| e.context(format!("credential '{name}' of provider '{provider}'")))?;
        self.write(|tx| self.record(tx, "credential.use", provider, name, "{}"))?;
        Ok(Some(value))
    }

    /// Deletes a provider credential; `Ok(false)` when there was none.
    pub fn delete_credential(&self, provider: &str, name: &str) -> Result<bool, Error> {
        check_name("provider", provider)?;
        check_name("credential name", name)?;
        self.write(|tx| {
            let removed = tx
                .execute(
                    "DELETE FROM st_credentials WHERE provider = ?1 AND name = ?2",
                    params![provider, name],
                )
                .map_err(|e| db_error(&self.path, "cannot delete the credential", e))?;
            if removed > 0 {
                self.record(tx, "credential.delete", provider, name, "{}")?;
            }
            Ok(removed > 0)
        })
    }

    /// Re-encrypts every stored credential under the current credential key
    /// (one transaction; credentials no known key opens are left as they are).
    pub fn rotate_credentials(&self) -> Result<RotationReport, Error> {
        let cipher = crate::crypto::cipher()?;
        self.write(|tx| {
            let read_error = |e| db_error(&self.path, "cannot read credentials", e);
            let rows: Vec<(String, String, String)> = tx
                .prepare("SELECT provider, name, ciphertext FROM st_credentials ORDER BY provider, name")
                .map_err(read_error)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(read_error)?
                .collect::<Result<_, _>>()
                .map_err(read_error)?;
            let mut report = RotationReport::default();
            for (provider, name, ciphertext) in rows {
                match cipher.reencrypt(&ciphertext) {
                    Ok(r) if r.changed => {
                        tx.execute(
                            "UPDATE st_credentials SET ciphertext = ?1, updated_at = ?2 WHERE provider = ?3 AND name = ?4",
                            params![r.ciphertext, utc_now_iso(), provider, name],
                        )
                        .map_err(|e| db_error(&self.path, "cannot update a credential", e))?;
                        self.record(tx, "credential.rotate", &provider, &name, "{}")?;
                        report.rotated += 1;
                    }
                    Ok(_) => report.current += 1,
                    Err(_) => report.failed += 1,
                }
            }
            Ok(report)
        })
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, Error> {
        audit::entries(&*self.reader()?, limit)
            .map_err(|e| db_error(&self.path, "cannot read the audit trail", e))
    }

    /// Checks the whole audit chain; reports the first broken entry.
    pub fn verify_audit(&self) -> Result<AuditReport, Error> {
        audit::verify(&*self.reader()?, &self.audit_key)
            .map_err(|e| db_error(&self.path, "cannot read the audit trail", e))
    }

    /// The audit chain's head as an external anchor, `COUNT:HASH`: keep it
    /// outside this machine and check it later with
    /// [`verify_audit_against`](Self::verify_audit_against). (The chain alone
    /// cannot show that its newest entries were deleted: what is left still
    /// links up.)
    pub fn audit_head(&self) -> Result<String, Error> {
        let report = self.verify_audit()?;
        Ok(format!("{}:{}", report.entries, report.head))
    }

    /// [`verify_audit`](Self::verify_audit), and the chain still holds the
    /// anchor `expected` (`COUNT:HASH` from [`audit_head`](Self::audit_head)):
    /// at least COUNT entries, the COUNT-th with that hash.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an anchor that is not `COUNT:HASH`;
    /// [`Error::Store`] when the chain is shorter than the anchor (entries
    /// were removed) or its COUNT-th entry differs (the chain was rewritten).
    pub fn verify_audit_against(&self, expected: &str) -> Result<AuditReport, Error> {
        let (count, hash) = expected
            .split_once(':')
            .and_then(|(c, h)| Some((c.parse::<usize>().ok()?, h)))
            .filter(|(_, h)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "an audit anchor is COUNT:HASH (from 'st-secrets audit head')".into(),
                )
            })?;
        let report = self.verify_audit()?;
        if report.first_broken.is_some() {
            return Ok(report);
        }
        if report.entries < count {
            return Err(Error::Store(format!(
                "the audit trail has {} entries, fewer than the anchor's {count}: entries were removed",
                report.entries
            )));
        }
        let at = audit::hash_at(&*self.reader()?, count)
            .map_err(|e| db_error(&self.path, "cannot read the audit trail", e))?;
        if at.as_deref() != Some(hash) {
            return Err(Error::Store(format!(
                "audit entry {count} does not match the anchor: the trail was rewritten"
            )));
        }
        Ok(report)
    }

    /// The audit head this store recorded beside the database after its last
    /// write (`.<name>.audit-head`), as `(count, hash)`; `None` when there is
    /// none. A database that now has fewer entries was truncated or replaced
    /// (the doctor says so).
    pub fn recorded_audit_head(&self) -> Option<(usize, String)> {
        let bytes = fsutil::read_regular(&self.head_path(), "audit head", 1024).ok()??;
        let text = String::from_utf8(bytes).ok()?;
        let (count, hash) = text.trim().split_once(':')?;
        Some((count.parse().ok()?, hash.to_owned()))
    }

    fn head_path(&self) -> PathBuf {
        recorded_head_path(&self.path)
    }

    /// Records the audit head beside the database (best effort: the write
    /// itself has committed; a failure here only weakens the doctor's check).
    /// Not synced to disk: it is a hint for the doctor, not the anchor.
    fn record_head(&self) {
        use std::io::Write;
        let Ok(Ok((count, hash))) = self.reader().map(|c| audit::head(&c)) else {
            return;
        };
        let target = self.head_path();
        let temp = target.with_extension(format!("tmp{}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .and_then(|mut f| f.write_all(format!("{count}:{hash}\n").as_bytes()));
        if written.is_err() || std::fs::rename(&temp, &target).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

fn read_config_row(
    conn: &Connection,
    path: &Path,
    provider: &str,
) -> Result<Option<String>, Error> {
    let text: Option<String> = conn
        .prepare_cached("SELECT config FROM provider_config WHERE provider = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![provider], |row| row.get(0))
                .optional()
        })
        .map_err(|e| db_error(path, "cannot read the configuration", e))?;
    if let Some(t) = &text {
        parse_stored(path, provider, t)?;
    }
    Ok(text)
}

/// A stored configuration, which must be a JSON object. SimpleTuner reads a
/// malformed one as `{}`; here it is an error, so that nothing is built (and
/// later saved) on top of a row that lost its data.
pub(crate) fn parse_stored(
    path: &Path,
    provider: &str,
    text: &str,
) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::Store(format!(
            "{}: the stored configuration of provider '{provider}' is not a JSON object",
            path.display()
        ))),
    }
}

fn parse_object(what: &str, text: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::InvalidArgument(format!(
            "the {what} must be a JSON object"
        ))),
        Err(e) => Err(Error::invalid_json(&format!("the {what}"), &e)),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!("the {what} is empty")));
    }
    Ok(())
}

/// RFC 7396 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Map<String, Value>, patch: Value) {
    let Value::Object(patch) = patch else {
        return;
    };
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(p) => {
                let slot = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(t) = slot {
                    merge_patch(t, Value::Object(p));
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

/// Which top-level keys a change added, removed or changed: names only, never
/// values (configurations hold webhook secrets and the like).
fn key_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let names = |f: &dyn Fn(&String) -> bool, m: &Map<String, Value>| -> Vec<String> {
        m.keys().filter(|k| f(k)).cloned().collect()
    };
    let added = names(&|k| !old.contains_key(k), new);
    let removed = names(&|k| !new.contains_key(k), old);
    let changed = names(&|k| old.get(k).is_some_and(|v| new.get(k) != Some(v)), new);
    serde_json::json!({"added": added, "removed": removed, "changed": changed}).to_string()
}

#[cfg(test)]
mod tests;

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

mod access;
pub mod audit;
mod clock;
mod connection;
mod credentials;
pub mod hardware;

pub use audit::{AuditEntry, AuditReport};
pub use connection::BUSY_TIMEOUT;
use connection::{connect_or_read_only, create_database, db_error, file_id, Conn};

use crate::cache::global::provider_config_cache;
use crate::error::Error;
use crate::fsutil;
use crate::secret::SecretBytes;
use crate::sys::Mutex;
use clock::utc_now_iso;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{Map, Value};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a provider's configuration is cached at most (a change by any
/// other connection ends it at once).
pub const CONFIG_TTL: Duration = Duration::from_secs(300);

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
                    data_version: None,
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn config_cache_key(&self, provider: &str) -> String {
        format!("provider:{provider}:config{}", self.cache_suffix)
    }

    /// The provider's configuration as a JSON object (`{}` when it has none),
    /// from the process-wide provider-config cache (`provider:<name>:config`,
    /// 5 minutes) while the database has not changed since this store last
    /// looked (`PRAGMA data_version`: any other connection's commit drops
    /// the database's cached entries), read from the database otherwise.
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
        self.drop_cached_if_changed()?;
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
                hardware::table::validate(info)?;
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

pub(super) fn check_name(what: &str, name: &str) -> Result<(), Error> {
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

//! The store's way to its connection: opened on first use in this process,
//! following the path when the file is replaced, refusing when it is
//! removed, reopened for writing after a full disk, and the check that
//! drops cached configurations when another connection changed the
//! database.

use super::connection::{connect, connect_or_read_only, db_error, file_id, ConnGuard};
use super::Store;
use crate::cache::global::provider_config_cache;
use crate::error::Error;
use rusqlite::Connection;

impl Store {
    /// This process's connection (opened here on first use in a forked
    /// child), to the file the path names now: a database file replaced
    /// since it was opened (restored from a backup, moved in by another
    /// program) is opened anew and this process's cached configurations
    /// dropped; one removed is an [`Error::Store`] saying so (SQLite would
    /// go on writing to the unlinked file, or call it malformed once its
    /// write-ahead log went with it), never a new empty database made
    /// silently.
    pub(super) fn reader(&self) -> Result<ConnGuard<'_>, Error> {
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
            conn.data_version = None;
        }
        Ok(ConnGuard(conn))
    }

    /// Drops this store's cached configuration of every provider `db` holds
    /// (the file replaced, and the one replacing it, are each passed here).
    pub(super) fn forget_cached(&self, db: &Connection) {
        let Ok(mut stmt) = db.prepare("SELECT provider FROM provider_config") else {
            return;
        };
        let Ok(rows) = stmt.query_map([], |row| row.get::<_, String>(0)) else {
            return;
        };
        let cache = provider_config_cache();
        for provider in rows.flatten() {
            cache.delete(&self.config_cache_key(&provider));
            // What is derived from it (the hardware prices of `replicate`).
            crate::cache::global::invalidate_provider_cache(&provider);
        }
    }

    /// The database file this store opened is gone.
    pub(super) fn removed_error(&self) -> Error {
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
    pub(super) fn writer(&self) -> Result<ConnGuard<'_>, Error> {
        let mut conn = self.reader()?;
        if conn.0.read_only {
            let db = connect(&self.path, conn.0.busy_timeout)?;
            conn.0.file = file_id(&self.path).ok();
            conn.0.db = Some(db);
            conn.0.data_version = None;
            conn.0.read_only = false;
        }
        Ok(conn)
    }

    /// Drops this database's cached configurations when another
    /// connection (another store object, another process, SimpleTuner's own
    /// store) committed to it since this store last looked: SQLite's
    /// `PRAGMA data_version` on this store's connection, one query on the
    /// open connection. So the cache serves a configuration only while the
    /// database has not changed, whoever changes it.
    pub(super) fn drop_cached_if_changed(&self) -> Result<(), Error> {
        // The open connection as it is (a replaced or removed file is found
        // by the read that follows a change, through `reader`); a store
        // without one yet goes through `reader`, which opens it.
        let guard = self.conn.lock();
        let mut conn = if guard.db.is_some() && !guard.forked_mid_call {
            ConnGuard(guard)
        } else {
            drop(guard);
            self.reader()?
        };
        let now: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| db_error(&self.path, "cannot read the data version", e))?;
        if conn.0.data_version != Some(now) {
            // Also the first look: entries cached by another store object
            // of this process may predate a change this one cannot date.
            conn.0.data_version = Some(now);
            self.forget_cached(&conn);
        }
        Ok(())
    }
}

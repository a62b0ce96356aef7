//! The audit trail: one row per change, chained with HMAC-SHA256.
//!
//! Each entry's `hash` is the HMAC, under the audit key, of the entry's fields
//! (id, time, action, provider, subject, detail) and the previous entry's
//! hash (64 zeros for the first), every field length-prefixed so that none
//! can be shifted into another. Editing an entry breaks its own hash; removing
//! or reordering one breaks the next entry's link. (Removing entries from the
//! end leaves a shorter, valid chain: compare counts with a copy kept
//! elsewhere if that matters.) Details hold key names, never values.
//!
//! The key: `SIMPLETUNER_AUDIT_KEY` (non-empty), else the file `audit.key`
//! beside the database, generated once (0600) and never replaced.

use crate::error::Error;
use crate::fsutil;
use crate::secret::SecretBytes;
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection};
use sha2::Sha256;
use std::path::Path;

/// The environment variable holding the audit HMAC key.
pub const ENV_AUDIT_KEY: &str = "SIMPLETUNER_AUDIT_KEY";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Position in the chain.
    pub id: i64,
    /// UTC time (ISO 8601).
    pub at: String,
    /// `config.save`, `config.merge`, `credential.set`, `credential.use`,
    /// `credential.delete`, `credential.rotate`.
    pub action: String,
    /// The provider concerned.
    pub provider: String,
    /// The credential's name, for credential actions.
    pub subject: String,
    /// JSON details: for configuration changes, the keys added, removed and
    /// changed (names only).
    pub detail: String,
}

/// The outcome of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: usize,
    /// The first entry whose hash or link does not verify, and why.
    pub first_broken: Option<(i64, String)>,
    /// The hash of the last entry checked (the chain's head); 64 zeros for
    /// an empty chain. With `entries`, the external anchor `COUNT:HASH`.
    pub head: String,
}

impl AuditReport {
    /// True when the whole chain verifies.
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// The audit key, as documented in the module.
pub(crate) fn source_key(db_dir: &Path) -> Result<SecretBytes, Error> {
    if let Some(k) = std::env::var_os(ENV_AUDIT_KEY).filter(|k| !k.is_empty()) {
        return Ok(SecretBytes::from(k.into_encoded_bytes()));
    }
    let path = db_dir.join("audit.key");
    for _ in 0..2 {
        match fsutil::read_regular(&path, "audit key file", 64 << 10) {
            Ok(Some(bytes)) if !bytes.is_empty() => return Ok(SecretBytes::from(bytes)),
            Ok(Some(_)) => {
                return Err(Error::Key(format!(
                "the audit key file {} is empty; it is not replaced (that would break the chain)",
                path.display()
            )))
            }
            Ok(None) => {
                let key = fernet::Fernet::generate_key();
                if fsutil::create_secret_file_once(&path, key.as_bytes())
                    .map_err(|e| Error::Key(format!("cannot save a new audit key: {e}")))?
                {
                    return Ok(SecretBytes::from(key.into_bytes()));
                }
                // Another process created it first: read theirs.
            }
            Err(e) => {
                return Err(Error::Key(format!(
                    "{e} (the audit key file is not replaced)"
                )))
            }
        }
    }
    Err(Error::Key(format!(
        "cannot read or create {}",
        path.display()
    )))
}

/// The number of entries and the newest one's hash (64 zeros when empty),
/// without verifying anything: one indexed read. The count is the newest
/// entry's id: ids are AUTOINCREMENT from 1 and never reused, so the two are
/// equal while no entry was deleted (and a deletion is what the doctor's
/// comparison looks for).
pub(crate) fn head(conn: &Connection) -> rusqlite::Result<(usize, String)> {
    match conn.query_row(
        "SELECT id, hash FROM st_audit_log ORDER BY id DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    ) {
        Ok((id, hash)) => Ok((usize::try_from(id).unwrap_or(0), hash)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok((0, GENESIS.to_owned())),
        Err(e) => Err(e),
    }
}

/// The hash of the `n`-th entry (1-based, in chain order), if there is one.
pub(crate) fn hash_at(conn: &Connection, n: usize) -> rusqlite::Result<Option<String>> {
    if n == 0 {
        return Ok(Some(GENESIS.to_owned()));
    }
    let offset = i64::try_from(n - 1).unwrap_or(i64::MAX);
    match conn.query_row(
        "SELECT hash FROM st_audit_log ORDER BY id ASC LIMIT 1 OFFSET ?1",
        [offset],
        |r| r.get(0),
    ) {
        Ok(h) => Ok(Some(h)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

fn entry_hash(key: &SecretBytes, e: &AuditEntry, prev_hash: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    let id = e.id.to_string();
    for field in [
        "v1",
        &id,
        &e.at,
        &e.action,
        &e.provider,
        &e.subject,
        &e.detail,
        prev_hash,
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends an entry inside the caller's (write) transaction.
pub(crate) fn append(
    conn: &Connection,
    key: &SecretBytes,
    action: &str,
    provider: &str,
    subject: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    let prev: String = conn
        .query_row(
            "SELECT hash FROM st_audit_log ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(GENESIS.to_owned()),
            other => Err(other),
        })?;
    let at = super::clock::utc_now_iso();
    conn.execute(
        "INSERT INTO st_audit_log (at, action, provider, subject, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')",
        params![at, action, provider, subject, detail, prev],
    )?;
    let entry = AuditEntry {
        id: conn.last_insert_rowid(),
        at,
        action: action.into(),
        provider: provider.into(),
        subject: subject.into(),
        detail: detail.into(),
    };
    conn.execute(
        "UPDATE st_audit_log SET hash = ?1 WHERE id = ?2",
        params![entry_hash(key, &entry, &prev), entry.id],
    )?;
    Ok(())
}

fn read_all(
    conn: &Connection,
    sql: &str,
    limit: i64,
) -> rusqlite::Result<Vec<(AuditEntry, String, String)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![limit], |r| {
        Ok((
            AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                provider: r.get(3)?,
                subject: r.get(4)?,
                detail: r.get(5)?,
            },
            r.get(6)?,
            r.get(7)?,
        ))
    })?;
    rows.collect()
}

const COLUMNS: &str =
    "id, at, action, provider, subject, detail, prev_hash, hash FROM st_audit_log";

pub(crate) fn entries(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!("SELECT {COLUMNS} ORDER BY id DESC LIMIT ?1");
    Ok(read_all(conn, &sql, limit)?
        .into_iter()
        .map(|(e, _, _)| e)
        .collect())
}

pub(crate) fn verify(conn: &Connection, key: &SecretBytes) -> rusqlite::Result<AuditReport> {
    let sql = format!("SELECT {COLUMNS} WHERE ?1 >= 0 ORDER BY id ASC");
    let rows = read_all(conn, &sql, 0)?;
    let mut expected_prev = GENESIS.to_owned();
    for (index, (entry, prev, hash)) in rows.iter().enumerate() {
        let broken = if *prev != expected_prev {
            Some("does not link to the entry before it (an entry was removed, added or reordered)")
        } else if entry_hash(key, entry, prev) != *hash {
            Some("its content does not match its hash (edited, or written with another audit key)")
        } else {
            None
        };
        if let Some(why) = broken {
            return Ok(AuditReport {
                entries: index + 1,
                first_broken: Some((entry.id, why.to_owned())),
                head: hash.clone(),
            });
        }
        expected_prev = hash.clone();
    }
    Ok(AuditReport {
        entries: rows.len(),
        first_broken: None,
        head: expected_prev,
    })
}

//! Provider credentials (API tokens) encrypted at rest with the credential
//! key, each set, use, deletion and re-encryption recorded in the audit
//! trail by name only.

use super::connection::db_error;
use super::{check_name, clock::utc_now_iso, RotationReport, Store};
use crate::error::Error;
use crate::secret::SecretString;
use rusqlite::{params, OptionalExtension};

impl Store {
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
}

//! Revocation: the leases and login tokens a process or a job recorded in
//! its [`Ledger`](super::super::ledger::Ledger), revoked through the
//! client's nodes.

use super::Client;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::zeroize_json;
use crate::secrets::vault::ledger::Revoked;
use serde_json::{json, Value};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest ledger file read back: 64 MiB (a line is about 200 bytes).
const MAX_LEDGER: u64 = 64 << 20;

impl Client {
    /// Revokes the lease `id`, with `token` (the one that issued it) or the
    /// client's own.
    fn revoke_lease(&self, id: &SecretString, token: Option<&SecretString>) -> Result<(), String> {
        let own = match token {
            Some(_) => None,
            None => self.token_held(),
        };
        let token = token.or(own.as_ref());
        let body = SecretString::from(json!({ "lease_id": id.expose() }).to_string());
        // 400 "invalid lease": expired or revoked already.
        gone(
            self.send("PUT", "sys/leases/revoke", token, body.expose().as_bytes()),
            400,
        )
    }

    /// Revokes the login token `token` (`auth/token/revoke-self`: its leases
    /// go with it).
    fn revoke_token(&self, token: &SecretString) -> Result<(), String> {
        // 403: the token is no longer valid (expired, revoked).
        gone(
            self.send("POST", "auth/token/revoke-self", Some(token), b""),
            403,
        )
    }

    /// Revokes `leases`, then `logins`.
    fn revoke_all(
        &self,
        leases: &[(SecretString, Option<SecretString>)],
        logins: &[SecretString],
    ) -> Revoked {
        let _counted = crate::secrets::remote::meter::scope("vault");
        let mut out = Revoked::default();
        for (id, token) in leases {
            match self.revoke_lease(id, token.as_ref()) {
                Ok(()) => {
                    out.leases += 1;
                    crate::secrets::remote::meter::add("vault", |c| c.leases_revoked += 1);
                }
                // A login token's leases go with it below.
                Err(_) if token.as_ref().is_some_and(|t| logins.contains(t)) => out.leases += 1,
                Err(e) => out.failed.push(format!("a lease: {e}")),
            }
        }
        for token in logins {
            match self.revoke_token(token) {
                Ok(()) => {
                    out.tokens += 1;
                    crate::secrets::remote::meter::add("vault", |c| c.tokens_revoked += 1);
                }
                Err(e) => out.failed.push(format!("a login token: {e}")),
            }
        }
        out
    }

    /// Revokes what this process got, when it shares nothing (no job
    /// ledger, no node cache: the ledger keeps nothing otherwise): its
    /// manager is being freed.
    pub(in crate::secrets::vault) fn revoke_own(&self) {
        let own = self.ledger.take_own();
        if !own.leases.is_empty() || !own.logins.is_empty() {
            let _ = self.revoke_all(&own.leases, &own.logins);
        }
    }
}

/// Whether a revocation's `answer` says the thing is gone: a success, or
/// `already` (the server's way of saying it was gone before); else why not.
fn gone(
    answer: Result<crate::secrets::remote::http::Response, crate::secrets::remote::FetchError>,
    already: u16,
) -> Result<(), String> {
    match answer {
        Ok(r) if (200..300).contains(&r.status) || r.status == already => Ok(()),
        Ok(r) => Err(format!(
            "HTTP {}{}",
            r.status,
            crate::secrets::vault::wire::errors_summary(&r)
        )),
        Err(f) => Err(f.error.to_string()),
    }
}

/// Revokes everything the job's ledger file at `path` lists, through
/// `client`'s nodes; the file is then emptied.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read (missing, not a private file
/// of this user, too large).
pub(in crate::secrets::vault) fn revoke(client: &Client, path: &Path) -> Result<Revoked, Error> {
    let bytes = crate::fsutil::read_required(path, "job ledger", MAX_LEDGER)
        .map(crate::secret::SecretBytes::from)?;
    let mut leases: Vec<(SecretString, Option<SecretString>)> = Vec::new();
    let mut logins: Vec<SecretString> = Vec::new();
    for line in bytes.expose().split(|b| *b == b'\n') {
        let Ok(mut doc) = serde_json::from_slice::<Value>(line) else {
            continue; // a torn last line (a writer killed mid-write)
        };
        let text = |v: &Value| v.as_str().map(SecretString::from);
        if let Some(id) = text(&doc["lease"]) {
            if !leases.iter().any(|(l, _)| l.expose() == id.expose()) {
                leases.push((id, text(&doc["token"])));
            }
        } else if let Some(token) = text(&doc["login"]) {
            if !logins.iter().any(|t| t.expose() == token.expose()) {
                logins.push(token);
            }
        }
        zeroize_json(&mut doc);
    }
    let out = client.revoke_all(&leases, &logins);
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    Ok(out)
}

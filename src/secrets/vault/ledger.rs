//! What a job must revoke when it ends: the leases the library issued and
//! the tokens it logged in with.
//!
//! Each process remembers its own. Under `st-secrets run` the job's ledger
//! file (`SIMPLETUNER_JOB_LEDGER`, a 0600 file in the run's private
//! directory that `run` created) gets one line per lease issued
//! (`{"lease": ID, "token": TOKEN}`, the token that issued it) and per
//! login (`{"login": TOKEN}`), appended with one `write` each, by every
//! process of the job (the node's ranks share their leases and logins
//! through the node cache, so no rank may revoke them alone); `run`
//! revokes them all once its command has ended ([`revoke`]). Without a
//! ledger file, a process that shares nothing (no node cache) revokes its
//! own when its manager is freed.

use super::client::Client;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::zeroize_json;
use crate::secrets::remote::vars as var;
use crate::secrets::remote::Vars;
use crate::sys::Mutex;
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest ledger file read back: 64 MiB (a line is about 200 bytes).
const MAX_LEDGER: u64 = 64 << 20;

/// What this process issued and logged in with, and the job's ledger file.
pub(super) struct Ledger {
    /// The job's ledger file, when `run` gave one.
    job: Option<PathBuf>,
    /// The process that recorded `own` (a forked child revokes nothing of
    /// its parent's).
    pid: u32,
    /// Leases (with the token that issued them) and login tokens this
    /// process got.
    own: Mutex<Own>,
}

#[derive(Default)]
struct Own {
    leases: Vec<(SecretString, Option<SecretString>)>,
    logins: Vec<SecretString>,
}

impl Ledger {
    pub(super) fn new(vars: &Vars) -> Ledger {
        Ledger {
            job: vars.get(var::SIMPLETUNER_JOB_LEDGER).map(PathBuf::from),
            pid: std::process::id(),
            own: Mutex::with_fresh(Own::default(), Own::default),
        }
    }

    /// A lease issued with `token`.
    pub(super) fn issued(&self, lease: &SecretString, token: Option<SecretString>) {
        let line =
            json!({ "lease": lease.expose(), "token": token.as_ref().map(SecretString::expose) });
        self.append(line);
        if self.pid == std::process::id() {
            self.own.lock().leases.push((lease.clone(), token));
        }
    }

    /// A login's token.
    pub(super) fn logged_in(&self, token: &SecretString) {
        self.append(json!({ "login": token.expose() }));
        if self.pid == std::process::id() {
            self.own.lock().logins.push(token.clone());
        }
    }

    /// Appends `line` to the job's ledger in one write: only to the regular
    /// 0600 file of this user that `run` made (never created here).
    fn append(&self, mut line: Value) {
        let Some(path) = &self.job else {
            return;
        };
        let text = SecretString::from(format!("{line}\n"));
        zeroize_json(&mut line);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path);
        if let Ok(mut file) = file {
            let ok = file.metadata().is_ok_and(|m| {
                m.is_file() && m.uid() == crate::sys::effective_uid() && m.mode() & 0o077 == 0
            });
            if ok {
                let _ = file.write_all(text.expose().as_bytes());
            }
        }
    }

    /// What this process got, taken (once): for its revocation when its
    /// manager is freed. Nothing in a forked child, nor under a job's
    /// ledger.
    fn take_own(&self) -> Own {
        if self.pid != std::process::id() || self.job.is_some() {
            return Own::default();
        }
        std::mem::take(&mut *self.own.lock())
    }
}

/// What a revocation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Leases revoked (or found already gone).
    pub leases: usize,
    /// Login tokens revoked (or found already gone), with their leases.
    pub tokens: usize,
    /// What could not be revoked, and why (no value, no lease ID).
    pub failed: Vec<String>,
}

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
        match self.send("PUT", "sys/leases/revoke", token, body.expose().as_bytes()) {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            // "invalid lease": expired or revoked already.
            Ok(r) if r.status == 400 => Ok(()),
            Ok(r) => Err(format!(
                "HTTP {}{}",
                r.status,
                super::wire::errors_summary(&r)
            )),
            Err(f) => Err(f.error.to_string()),
        }
    }

    /// Revokes the login token `token` (`auth/token/revoke-self`: its leases
    /// go with it).
    fn revoke_token(&self, token: &SecretString) -> Result<(), String> {
        match self.send("POST", "auth/token/revoke-self", Some(token), b"") {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            // Refused: the token is no longer valid (expired, revoked).
            Ok(r) if r.status == 403 => Ok(()),
            Ok(r) => Err(format!(
                "HTTP {}{}",
                r.status,
                super::wire::errors_summary(&r)
            )),
            Err(f) => Err(f.error.to_string()),
        }
    }

    /// Revokes `leases`, then `logins`.
    fn revoke_all(
        &self,
        leases: &[(SecretString, Option<SecretString>)],
        logins: &[SecretString],
    ) -> Revoked {
        let mut out = Revoked::default();
        for (id, token) in leases {
            match self.revoke_lease(id, token.as_ref()) {
                Ok(()) => out.leases += 1,
                // A login token's leases go with it below.
                Err(_) if token.as_ref().is_some_and(|t| logins.contains(t)) => out.leases += 1,
                Err(e) => out.failed.push(format!("a lease: {e}")),
            }
        }
        for token in logins {
            match self.revoke_token(token) {
                Ok(()) => out.tokens += 1,
                Err(e) => out.failed.push(format!("a login token: {e}")),
            }
        }
        out
    }

    /// Revokes what this process got, when it shares nothing (no job
    /// ledger, no node cache): its manager is being freed.
    pub(super) fn revoke_own(&self) {
        if self.shares_logins() {
            return;
        }
        let own = self.ledger.take_own();
        if !own.leases.is_empty() || !own.logins.is_empty() {
            let _ = self.revoke_all(&own.leases, &own.logins);
        }
    }
}

/// Revokes everything the job's ledger file at `path` lists, through
/// `client`'s nodes; the file is then emptied.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read (missing, not a private file
/// of this user, too large).
pub(super) fn revoke(client: &Client, path: &Path) -> Result<Revoked, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lines_go_only_to_a_private_ledger_file_and_a_fork_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let vars = Vars::empty().set(var::SIMPLETUNER_JOB_LEDGER, path.to_str().unwrap());
        let ledger = Ledger::new(&vars);
        ledger.logged_in(&SecretString::from("s.token-1"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"",
            "a group-readable ledger is not written"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        ledger.issued(
            &SecretString::from("database/creds/x/1"),
            Some(SecretString::from("s.token-1")),
        );
        ledger.logged_in(&SecretString::from("s.token-2"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["lease"], "database/creds/x/1");
        assert_eq!(lines[0]["token"], "s.token-1");
        assert_eq!(lines[1]["login"], "s.token-2");
        // Under a job's ledger, the process revokes nothing itself.
        assert!(ledger.take_own().leases.is_empty());
        // Without one, it takes its own once; a forked child nothing.
        let own = Ledger::new(&Vars::empty());
        own.issued(&SecretString::from("l"), None);
        let child = Ledger {
            pid: 0,
            ..Ledger::new(&Vars::empty())
        };
        child.issued(&SecretString::from("l2"), None);
        assert!(child.take_own().leases.is_empty());
        assert_eq!(own.take_own().leases.len(), 1);
        assert!(own.take_own().leases.is_empty());
        // A symlink is not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let before = std::fs::read(&path).unwrap();
        Ledger::new(&Vars::empty().set(var::SIMPLETUNER_JOB_LEDGER, link.to_str().unwrap()))
            .logged_in(&SecretString::from("s.token-3"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}

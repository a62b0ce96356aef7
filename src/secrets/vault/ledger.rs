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
//! revokes them all once its command has ended ([`read`], then
//! [`Leases`](super::leases::Leases) revokes). Without a ledger file, a
//! process that shares nothing (no node cache) revokes its own when its
//! manager is freed. The file's format is written and read here only.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::Vars;
use crate::sys::Mutex;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What this process issued and logged in with, and the job's ledger file.
pub(super) struct Ledger {
    /// The job's ledger file, when `run` gave one that is still there.
    job: Option<PathBuf>,
    /// Whether the process keeps `own` (to revoke it when freed): one that
    /// shares nothing (no job ledger, no node cache).
    keeps: bool,
    /// Where this process's Vault is (its nodes and namespace), written in
    /// each line: `run` revokes a line with the Vault that issued it.
    at: Value,
    /// Leases (with the token that issued them) and login tokens of the
    /// process whose id is given: a forked child starts a list of its own,
    /// and revokes what it got, never its parent's.
    own: Mutex<(u32, Listed)>,
}

/// Leases (with the token that issued them) and login tokens.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) leases: Vec<(SecretString, Option<SecretString>)>,
    pub(super) logins: Vec<SecretString>,
}

impl Ledger {
    /// The ledger `vars` name (the job's), for a process whose logins are
    /// `shared` with the node's others or not.
    ///
    /// A ledger named but gone (a stale `SIMPLETUNER_JOB_LEDGER`: its job
    /// ended and `run` removed it) is no ledger: nobody would revoke what
    /// is written there, so the process keeps and revokes its own.
    pub(super) fn new(vars: &Vars, shared: bool, at: Value) -> Ledger {
        let job = vars
            .get(var::SIMPLETUNER_JOB_LEDGER)
            .map(PathBuf::from)
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
        Ledger {
            keeps: job.is_none() && !shared,
            at,
            job,
            own: Mutex::with_fresh((0, Listed::default()), || (0, Listed::default())),
        }
    }

    /// This process's own list (a forked child's starts empty), when it
    /// keeps one.
    fn own(&self) -> Option<crate::sys::MutexGuard<'_, (u32, Listed)>> {
        if !self.keeps {
            return None;
        }
        let mut own = self.own.lock();
        let me = std::process::id();
        if own.0 != me {
            *own = (me, Listed::default());
        }
        Some(own)
    }

    /// A lease issued with `token`.
    pub(super) fn issued(&self, lease: &SecretString, token: Option<SecretString>) {
        let line = json!({
            "lease": lease.expose(),
            "token": token.as_ref().map(SecretString::expose),
            "at": self.at,
        });
        self.append(line);
        if let Some(mut own) = self.own() {
            own.1.leases.push((lease.clone(), token));
        }
    }

    /// A login's token.
    pub(super) fn logged_in(&self, token: &SecretString) {
        self.append(json!({ "login": token.expose(), "at": self.at }));
        if let Some(mut own) = self.own() {
            own.1.logins.push(token.clone());
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
        crate::fsutil::append_private(
            path,
            text.expose().as_bytes(),
            false,
            crate::sys::effective_uid(),
        );
    }

    /// What this process got, taken (once): for its revocation when its
    /// manager is freed. In a forked child, what the child got (never its
    /// parent's); nothing under a job's ledger.
    pub(super) fn take_own(&self) -> Listed {
        self.own()
            .map(|mut own| std::mem::take(&mut own.1))
            .unwrap_or_default()
    }
}

/// The largest ledger file read back: 64 MiB (a line is about 200 bytes).
const MAX_LEDGER: u64 = 64 << 20;

/// Where a Vault is, as the ledger's lines say it: its nodes' addresses
/// and its namespace.
pub(super) fn at(addresses: &[String], namespace: Option<&str>) -> Value {
    json!({ "vault": addresses, "namespace": namespace })
}

/// What [`at`] wrote: the addresses and the namespace; `None` for a line
/// without it (the Vault of whoever reads the ledger).
pub(super) fn where_at(at: &Value) -> Option<(Vec<String>, Option<String>)> {
    let addresses: Vec<String> = at["vault"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .take(crate::secrets::transport::vars::MAX_LISTED)
        .collect();
    (!addresses.is_empty()).then(|| (addresses, at["namespace"].as_str().map(str::to_owned)))
}

/// What the job's ledger file at `path` lists, each lease and login once,
/// by the Vault that issued them ([`at`]; `Value::Null` for lines that do
/// not say).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read (missing, not a private file
/// of this user, too large).
pub(super) fn read(path: &Path) -> Result<Vec<(Value, Listed)>, Error> {
    // A ledger someone else could edit could send its tokens elsewhere (a
    // line names the Vault it revokes at): only this user's private file.
    let private = |meta: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        let uid = crate::sys::effective_uid();
        if meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(Error::Permission(format!(
                "job ledger {} is not private to user {uid} (owner {}, mode {:o}); refusing to read it",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        Ok(())
    };
    let bytes = crate::fsutil::read_required_checked(path, "job ledger", MAX_LEDGER, private)
        .map(crate::secret::SecretBytes::from)?;
    let mut groups: Vec<(Value, Listed)> = Vec::new();
    for line in bytes.expose().split(|b| *b == b'\n') {
        let Ok(mut doc) = serde_json::from_slice::<Value>(line) else {
            continue; // a torn last line (a writer killed mid-write)
        };
        let at = doc["at"].take();
        let i = match groups.iter().position(|(a, _)| *a == at) {
            Some(i) => i,
            None => {
                groups.push((at, Listed::default()));
                groups.len() - 1
            }
        };
        let out = &mut groups[i].1;
        let text = |v: &Value| v.as_str().map(SecretString::from);
        if let Some(id) = text(&doc["lease"]) {
            if !out.leases.iter().any(|(l, _)| l.expose() == id.expose()) {
                out.leases.push((id, text(&doc["token"])));
            }
        } else if let Some(token) = text(&doc["login"]) {
            if !out.logins.iter().any(|t| t.expose() == token.expose()) {
                out.logins.push(token);
            }
        }
        zeroize_json(&mut doc);
    }
    Ok(groups)
}

/// Empties the ledger file at `path` (its entries revoked), never through
/// a link.
pub(super) fn empty(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
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
        let ledger = Ledger::new(&vars, false, Value::Null);
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
        assert_eq!(read(&path).unwrap()[0].1.logins.len(), 1);
        // Read back only while private: a line names where its tokens go.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = read(&path).err().unwrap();
        assert!(
            matches!(e, Error::Permission(_)) && e.to_string().contains("not private"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
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
        let own = Ledger::new(&Vars::empty(), false, Value::Null);
        own.issued(&SecretString::from("l"), None);
        // A forked child: what its parent got is not its own (the list is
        // another process's), what it gets itself is.
        let child = Ledger::new(&Vars::empty(), false, Value::Null);
        child.issued(&SecretString::from("parent's"), None);
        child.own.lock().0 = 1; // as seen from a child: another pid's list
        assert!(child.take_own().leases.is_empty());
        child.own.lock().0 = 1;
        child.issued(&SecretString::from("child's"), None);
        let taken = child.take_own();
        assert_eq!(taken.leases.len(), 1);
        assert_eq!(taken.leases[0].0.expose(), "child's");
        // A stale ledger (its job ended, the file gone): the process keeps
        // and revokes its own.
        let gone = dir.path().join("ended-job-ledger");
        let stale = Ledger::new(
            &Vars::empty().set(var::SIMPLETUNER_JOB_LEDGER, gone.to_str().unwrap()),
            false,
            Value::Null,
        );
        stale.logged_in(&SecretString::from("s.token-stale"));
        assert_eq!(stale.take_own().logins.len(), 1);
        assert!(!gone.exists(), "never created");
        // Nor one whose logins the node's processes share.
        let shared = Ledger::new(&Vars::empty(), true, Value::Null);
        shared.issued(&SecretString::from("l3"), None);
        assert!(shared.take_own().leases.is_empty());
        assert_eq!(own.take_own().leases.len(), 1);
        assert!(own.take_own().leases.is_empty());
        // A symlink is not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let before = std::fs::read(&path).unwrap();
        Ledger::new(
            &Vars::empty().set(var::SIMPLETUNER_JOB_LEDGER, link.to_str().unwrap()),
            false,
            Value::Null,
        )
        .logged_in(&SecretString::from("s.token-3"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}

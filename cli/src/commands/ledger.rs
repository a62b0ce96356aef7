//! `run`'s job ledger: the private file where every process of the job
//! (`run` itself, the command, its ranks) records the Vault leases it
//! issued and the tokens it logged in with (`SIMPLETUNER_JOB_LEDGER`), and
//! their revocation once the command has ended, however it ended (a
//! failure of `run` itself after the ledger was made revokes too: drop).

use crate::context::Globals;
use crate::secretfiles::SecretDir;
use st_secrets::job::vars::SIMPLETUNER_JOB_LEDGER;
use st_secrets::secrets::{Vars, VaultJob};
use st_secrets::{Error, ManagerConfig};
use std::path::PathBuf;

/// The job's ledger: an empty 0600 file in a new private directory.
pub struct JobLedger {
    dir: Option<SecretDir>,
    path: PathBuf,
    /// The chain's configuration (its Vault settings revoke), when it reads.
    config: Option<ManagerConfig>,
}

impl JobLedger {
    /// Creates the ledger and names it in this process's environment (before
    /// any manager is built: this process's leases and logins are the
    /// job's too) and so in the command's.
    pub fn open(g: &Globals) -> Result<JobLedger, Error> {
        let dir = SecretDir::create()?;
        let path = dir.write("job-ledger", b"")?;
        // Before any thread of this process reads the environment.
        std::env::set_var(SIMPLETUNER_JOB_LEDGER, &path);
        Ok(JobLedger {
            dir: Some(dir),
            path,
            config: g.config().ok(),
        })
    }

    /// Revokes what the ledger lists (with the chain's Vault settings), says
    /// on stderr what could not be, and removes the ledger.
    pub fn finish(mut self) {
        self.revoke();
    }

    fn revoke(&mut self) {
        let Some(dir) = self.dir.take() else {
            return;
        };
        let listed = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if let (true, Some(c)) = (listed > 0, &self.config) {
            let vault = VaultJob::new(&c.vault, &c.remote, Vars::from_process());
            match vault.revoke_ledger(&self.path) {
                Ok(done) => {
                    for failure in &done.failed {
                        eprintln!("st-secrets: run: not revoked: {failure}");
                    }
                }
                Err(e) => eprintln!("st-secrets: run: the job's leases: {e}"),
            }
        }
        dir.remove();
    }
}

impl Drop for JobLedger {
    fn drop(&mut self) {
        self.revoke();
    }
}

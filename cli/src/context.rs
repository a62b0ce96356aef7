//! What every command works on: the global options, and the secrets
//! manager and store they configure.

use crate::outcome::CliError;
use st_secrets::secrets::{EnvProvider, ManagerConfig, Provider, SecretsManager};
use st_secrets::store::Store;
use st_secrets::Error;
use std::path::PathBuf;

/// The global options every command sees.
#[derive(Clone)]
pub struct Globals {
    /// `--config FILE`: the chain's JSON configuration.
    pub config: Option<PathBuf>,
    /// `--json`: print a JSON document.
    pub json: bool,
    /// `--db FILE`: the store's database.
    pub db: Option<PathBuf>,
}

impl Globals {
    /// The configuration `--config` (else the environment) gives.
    pub fn config(&self) -> Result<ManagerConfig, CliError> {
        Ok(match &self.config {
            None => ManagerConfig::from_environment(),
            Some(path) => ManagerConfig::from_file(path)?,
        })
    }

    /// The secrets manager `--config` (else the environment) configures.
    pub fn manager(&self) -> Result<SecretsManager, CliError> {
        Ok(SecretsManager::new(self.config()?)?)
    }

    /// The store at `--db` (else the default database).
    pub fn store(&self) -> Result<Store, CliError> {
        Ok(Store::open(self.db.as_deref())?)
    }
}

/// The refusal to print or export `key`, a field of a leased credential:
/// issued for this process and revoked when it exits, so the value shown
/// would already be dead (and fields read by separate commands come from
/// separate credentials). Says what to use instead.
pub fn leased_refusal(key: &str) -> CliError {
    let key = crate::io::printable(key);
    CliError::Error(Error::InvalidArgument(format!(
        "'{key}' is a field of a leased credential, issued for this command and revoked when \
         it exits: a value printed or exported here would already be dead; run the program \
         under `st-secrets run` instead (it gets st://{key}, which the library resolves and \
         keeps current), or, for a program that reads a file, `st-secrets run --file \
         NAME=st://{key} --watch -- PROGRAM`"
    )))
}

/// Why `key` was not found: no provider has it, or one holds it with a value
/// that is not a secret.
pub fn not_found_message(m: &SecretsManager, key: &str) -> String {
    let shown = crate::io::printable(key);
    match m.non_secret_holder(key) {
        Some(p) => format!(
            "secret '{shown}' is in the {p} provider, but its value is an object, a list or \
             null, not a secret (only strings, numbers and booleans are)"
        ),
        None => {
            let looked: Vec<_> = m
                .providers()
                .into_iter()
                .filter(|e| e.status.available)
                .map(|e| e.status.name)
                .collect();
            format!(
                "secret '{shown}' was not found (looked in: {}){}",
                looked.join(", "),
                m.not_used_note()
            )
        }
    }
}

/// The environment variable that holds `key` for this chain, if it is set.
pub fn environment_holder(m: &SecretsManager, key: &str) -> Option<String> {
    let env = EnvProvider::new(m.config().env_prefix.clone());
    match env.lookup(key) {
        Ok(Some(_)) => Some(env.variable_name(key)),
        _ => None,
    }
}

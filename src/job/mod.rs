//! What a scheduler asks of the library for a job, over the secrets
//! manager: the job's secrets handed to its processes as files
//! ([`delivery`]), the job's own signed token ([`token`]), and the
//! variables `st-secrets run` sets for its command's processes ([`vars`]).
//! The C ABI's job calls (`st_secrets_write_files`, `st_secrets_refresh_files`,
//! the job token's) and the tool's `run`, `watch` and `job-token` are built
//! on it. The job's end (its leases and login revoked, its entity disabled)
//! is Vault's (`VaultJob`).

pub mod delivery;
pub mod token;

/// The variables `st-secrets run` sets for its command's processes, read by
/// the library in each of them: named here once.
pub mod vars {
    pub use crate::secrets::transport::meter::METRICS_DIR as SIMPLETUNER_METRICS_DIR;
    pub use crate::secrets::transport::vars::{
        SIMPLETUNER_JOB_LEDGER, SIMPLETUNER_PROVENANCE_FILE, SIMPLETUNER_PROVENANCE_SALT_FILE,
    };
}

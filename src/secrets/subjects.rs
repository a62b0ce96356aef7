//! The subject tokens a service mints for a token exchange, made where the
//! chain is built: OpenBao's or Vault's identity tokens with the job's one
//! login, and the GCP metadata server's. The exchange asks through
//! [`Mints`]; this module answers with the providers' clients, so that the
//! exchange imports no provider.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::exchange::{Mint, Mints};
use crate::secrets::gcp::credentials::Metadata;
use crate::secrets::transport::http::{Http, Trust};
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::secrets::vault::{VaultJob, VaultSettings};
use crate::sys::Mutex;
use std::sync::Arc;

/// The minters of one chain's exchanges.
pub(crate) struct ChainMints {
    vault: VaultSettings,
    /// The job's Vault login, made by the first exchange that needs it and
    /// shared by every other: one session per identity.
    job: Mutex<Option<Arc<VaultJob>>>,
}

impl ChainMints {
    /// Minters with the `vault_*` settings `vault` for Vault's tokens.
    pub(crate) fn new(vault: &VaultSettings) -> ChainMints {
        ChainMints {
            vault: vault.clone(),
            job: Mutex::new(None),
        }
    }
}

impl Mints for ChainMints {
    fn vault_role(&self, role: &str, remote: &RemoteSettings, vars: &Vars) -> Box<dyn Mint> {
        let job = Arc::clone(
            self.job
                .lock()
                .get_or_insert_with(|| Arc::new(VaultJob::new(&self.vault, remote, vars.clone()))),
        );
        Box::new(VaultRole {
            role: role.to_owned(),
            job,
        })
    }

    fn gcp_metadata(&self, remote: &RemoteSettings, vars: &Vars) -> Result<Box<dyn Mint>, Error> {
        let settings = crate::secrets::gcp::metadata_settings(remote);
        let http = Arc::new(Http::new(&settings, &Trust::Default, "")?);
        Ok(Box::new(GcpIdentity(Metadata::of(vars, &http, &settings)?)))
    }
}

/// Identity tokens of one OIDC role, minted with the job's login.
struct VaultRole {
    role: String,
    job: Arc<VaultJob>,
}

impl Mint for VaultRole {
    fn mint(&self, audience: Option<&str>) -> Result<SecretString, FetchError> {
        self.job
            .identity_token(&self.role, audience)
            .map(|t| t.token)
            .map_err(|e| match e {
                Error::Network(_) | Error::Timeout(_) => FetchError::transient(e),
                e => FetchError::permanent(e),
            })
    }

    fn describe(&self) -> String {
        format!("Vault identity tokens of role '{}'", self.role)
    }
}

/// The metadata server's identity tokens.
struct GcpIdentity(Metadata);

impl Mint for GcpIdentity {
    fn mint(&self, audience: Option<&str>) -> Result<SecretString, FetchError> {
        self.0.identity(audience.unwrap_or_default())
    }

    fn describe(&self) -> String {
        "the GCP metadata server's identity tokens".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchanges_of_a_chain_share_one_vault_login() {
        let mints = ChainMints::new(&VaultSettings::default());
        let (remote, vars) = (RemoteSettings::default(), Vars::empty());
        assert!(
            mints.job.lock().is_none(),
            "no login before an exchange asks"
        );
        let hf = mints.vault_role("hf", &remote, &vars);
        let first = Arc::clone(mints.job.lock().as_ref().unwrap());
        let wandb = mints.vault_role("wandb", &remote, &vars);
        assert!(Arc::ptr_eq(&first, mints.job.lock().as_ref().unwrap()));
        // Held by the maker, both minters and this test: one session.
        assert_eq!(Arc::strong_count(&first), 4);
        assert_eq!(hf.describe(), "Vault identity tokens of role 'hf'");
        drop((hf, wandb));
        assert_eq!(Arc::strong_count(&first), 2);
    }
}

//! The Vault provider's settings, and how each falls back to the
//! environment.

use crate::secret::SecretString;
use crate::secrets::remote::Vars;

/// The Vault provider's settings: the configuration keys `vault_*`
/// (README, "Configuration keys"). `None` falls back to the environment, as the
/// module documentation of the provider says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultSettings {
    /// Vault's address (`vault_url`).
    pub url: Option<String>,
    /// A token (`vault_token`).
    pub token: Option<SecretString>,
    /// The secret's path in the mount (`vault_path`).
    pub path: Option<String>,
    /// The KV mount (`vault_mount`).
    pub mount: Option<String>,
    /// The namespace (`vault_namespace`).
    pub namespace: Option<String>,
    /// The mount's KV version, 1 or 2 (`vault_kv_version`); `None`: detected
    /// once per mount.
    pub kv_version: Option<u8>,
}

/// The first of `vault` and `bao` that is set, with its name: OpenBao's own
/// variables, read after Vault's.
pub(crate) fn either<'v>(
    vars: &'v Vars,
    vault: &'static str,
    bao: &'static str,
) -> Option<(&'v str, &'static str)> {
    vars.get(vault)
        .map(|v| (v, vault))
        .or_else(|| vars.get(bao).map(|v| (v, bao)))
}

//! The Vault provider's settings, and how each falls back to the
//! environment.

use crate::secret::SecretString;
use crate::secrets::remote::Vars;
use std::path::PathBuf;

/// The Vault provider's settings: the configuration keys `vault_*`
/// (docs/configuration.md, "Configuration keys"). `None` falls back to the environment, as the
/// module documentation of the provider says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultSettings {
    /// Vault's address (`vault_url`): an http(s) URL, or `unix://PATH` for a
    /// proxy or agent listening on a Unix socket.
    pub url: Option<String>,
    /// The addresses of a cluster's nodes (`vault_urls`), instead of `url`:
    /// each request goes to one that answers.
    pub urls: Option<Vec<String>>,
    /// How long a write (a login, a renewal) waits for a cluster to elect
    /// an active node (`vault_election_timeout`); `None`: 15 s.
    pub election_timeout: Option<std::time::Duration>,
    /// A token (`vault_token`).
    pub token: Option<SecretString>,
    /// A file holding the token, read again when it changes
    /// (`vault_token_file`): a Vault Agent's file sink.
    pub token_file: Option<PathBuf>,
    /// Send no token: a Vault Agent or Proxy with `use_auto_auth_token`
    /// adds its own (`vault_agent`).
    pub agent: Option<bool>,
    /// The secrets' paths in the mount, looked up in order (`vault_path`).
    pub paths: Option<Vec<String>>,
    /// The KV mount (`vault_mount`).
    pub mount: Option<String>,
    /// The namespace (`vault_namespace`).
    pub namespace: Option<String>,
    /// The mount's KV version, 1 or 2 (`vault_kv_version`); `None`: detected
    /// once per mount.
    pub kv_version: Option<u8>,
}

/// The first of `bao` and `vault` that is set, with its name: OpenBao's own
/// variables win when both are set, as OpenBao's clients read them.
pub(crate) fn either<'v>(
    vars: &'v Vars,
    vault: &'static str,
    bao: &'static str,
) -> Option<(&'v str, &'static str)> {
    vars.get(bao)
        .map(|v| (v, bao))
        .or_else(|| vars.get(vault).map(|v| (v, vault)))
}

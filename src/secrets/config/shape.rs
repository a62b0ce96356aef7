//! What a configuration is: the providers of the chain by name
//! ([`ProviderKind`]), the settings of each ([`ManagerConfig`]), and the
//! shape of one configuration key ([`ConfigKey`]), which the keys' lists
//! (this module's parent and `remote`) fill in.

use crate::error::Error;
use crate::secrets::aws::AwsSettings;
use crate::secrets::azure::AzureSettings;
use crate::secrets::exchange::ExchangeSettingsMap;
use crate::secrets::file::FileSettings;
use crate::secrets::gcp::GcpSettings;
use crate::secrets::mounted::MountedSettings;
use crate::secrets::provenance::ProvenanceSetting;
use crate::secrets::transport::RemoteSettings;
use crate::secrets::vault::VaultSettings;
use serde_json::Value;
/// A provider of the chain, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// `env`: environment variables.
    Env,
    /// `mounted`: directories of one file per key (Kubernetes Secret
    /// volumes, `/run/secrets`, systemd credentials).
    Mounted,
    /// `file`: the JSON/YAML secrets file.
    File,
    /// `aws`: AWS Secrets Manager.
    Aws,
    /// `gcp`: GCP Secret Manager.
    Gcp,
    /// `azure`: Azure Key Vault.
    Azure,
    /// `vault`: HashiCorp Vault (KV v2, falling back to v1).
    Vault,
    /// `exchange`: token exchanges (`exchanges`), a third-party API's
    /// short-lived credential for the workload's own token.
    Exchange,
}

impl ProviderKind {
    /// The default chain, in priority order.
    /// Remote providers that are not configured stay in the chain, unavailable,
    /// answering "absent" without any network traffic.
    pub const DEFAULT_CHAIN: [ProviderKind; 7] = [
        ProviderKind::Env,
        ProviderKind::Mounted,
        ProviderKind::File,
        ProviderKind::Aws,
        ProviderKind::Gcp,
        ProviderKind::Azure,
        ProviderKind::Vault,
    ];

    /// Every kind with its name in `providers`: the one list.
    pub const ALL: [(&'static str, ProviderKind); 8] = [
        ("env", ProviderKind::Env),
        ("mounted", ProviderKind::Mounted),
        ("file", ProviderKind::File),
        ("aws", ProviderKind::Aws),
        ("gcp", ProviderKind::Gcp),
        ("azure", ProviderKind::Azure),
        ("vault", ProviderKind::Vault),
        ("exchange", ProviderKind::Exchange),
    ];

    /// The provider's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("env", |(n, _)| n)
    }

    pub(super) fn parse(name: &str) -> Result<ProviderKind, Error> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let known = Self::ALL.map(|(n, _)| n).join(", ");
                Error::InvalidArgument(format!(
                    "config key 'providers': unknown provider '{name}' (known: {known})"
                ))
            })
    }
}

/// The manager's settings: the chain, and each provider's own settings
/// (each provider is built from its part alone). Every field is a key of
/// the configuration JSON: docs/configuration.md's "Configuration keys" table, generated
/// from `config_keys()`, says which and what each defaults to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerConfig {
    /// The chain, in priority order (`providers`).
    pub providers: Vec<ProviderKind>,
    /// The environment provider: variables are read as `<prefix>_<KEY>`
    /// (`env_prefix`).
    pub env_prefix: Option<String>,
    /// Whether a value `st://KEY` in the environment or the secrets file is
    /// resolved as a reference to KEY through the providers after it
    /// (`references`).
    pub references: bool,
    /// The mounted-secrets provider (`mounted_dirs`; files of at most
    /// `max_file_size`).
    pub mounted: MountedSettings,
    /// The file provider (`file_path`, `max_file_size`).
    pub file: FileSettings,
    /// AWS Secrets Manager (`aws_*`).
    pub aws: AwsSettings,
    /// GCP Secret Manager (`gcp_*`).
    pub gcp: GcpSettings,
    /// Azure Key Vault (`azure_*`).
    pub azure: AzureSettings,
    /// HashiCorp Vault / OpenBao (`vault_*`).
    pub vault: VaultSettings,
    /// Token exchanges by the names of the secrets they give
    /// (`exchanges`).
    pub exchanges: ExchangeSettingsMap,
    /// Caching, timeouts, retries and staleness of the remote providers.
    pub remote: RemoteSettings,
    /// Whether the manager records which version of each secret it used
    /// (`provenance`).
    pub provenance: ProvenanceSetting,
}

/// One key of the configuration JSON: the one place that names it, says
/// what its value is, and applies it. Parsing, the list of known keys in
/// error messages, and the docs' table all come from [`config_keys`]; a
/// test checks docs/configuration.md and the C header's `st_secrets_new` documentation
/// against it.
// `value` and `doc` are read by the docs check only (for now).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct ConfigKey {
    /// The key in the JSON object.
    pub(crate) name: &'static str,
    /// Its value's type and range, as the docs' table shows it.
    pub(crate) value: &'static str,
    /// What it sets, and the default when it is absent or `null`.
    pub(crate) doc: &'static str,
    /// Checks `value` and sets it in the configuration.
    pub(in crate::secrets::config) apply: fn(&mut ManagerConfig, &str, &Value) -> Result<(), Error>,
}

//! The Vault provider's settings, and how each falls back to the
//! environment.

use crate::secret::SecretString;
use crate::secrets::transport::Vars;
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
    /// How to log in (`vault_auth`); `None`: inferred from what is set
    /// (agent, token, token file, AppRole).
    pub auth: Option<VaultAuth>,
    /// The role a login asks for (`vault_role`).
    pub role: Option<String>,
    /// Where the login method is mounted (`vault_auth_mount`); `None`: the
    /// method's name.
    pub auth_mount: Option<String>,
    /// The JWT file of a `jwt` or `kubernetes` login (`vault_jwt_file`).
    pub jwt_file: Option<PathBuf>,
    /// An AppRole login's role ID (`vault_role_id`), with its secret ID in
    /// `secret_id_file` (`vault_secret_id_file`), read again for every login.
    pub role_id: Option<String>,
    pub secret_id_file: Option<PathBuf>,
    /// The TLS client certificate (PEM) presented to the servers
    /// (`vault_client_cert`); a `cert` login needs it.
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM) (`vault_client_key`).
    pub client_key: Option<PathBuf>,
    /// The `X-Vault-AWS-IAM-Server-ID` an `aws` login signs
    /// (`vault_aws_server_id`).
    pub aws_server_id: Option<String>,
    /// Dynamic secrets with a lease, by name (`vault_leases`).
    pub leases: Option<std::collections::BTreeMap<String, LeasedPath>>,
}

/// A dynamic secret of `vault_leases`: its path (outside the KV mount),
/// and the data a write to it sends (`None`: it is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeasedPath {
    /// The path, such as `database/creds/ROLE` or `pki/issue/ROLE`.
    pub path: String,
    /// The JSON object written to it, when it is written (PKI).
    pub data: Option<String>,
}

/// A way to log in to Vault (`vault_auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token, or a token file (`vault_token`, `vault_token_file`, ...).
    Token,
    /// No token: a Vault Agent or Proxy adds its own.
    Agent,
    /// AppRole (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`).
    AppRole,
    /// Kubernetes: the pod's projected service-account token.
    Kubernetes,
    /// JWT/OIDC: any JWT file (SPIFFE JWT-SVID, CI and platform tokens).
    Jwt,
    /// TLS certificates: the client certificate presented.
    Cert,
    /// AWS IAM: a signed `sts:GetCallerIdentity` request.
    Aws,
}

impl VaultAuth {
    /// Every method, with its name in `vault_auth`.
    pub const ALL: [(&'static str, VaultAuth); 7] = [
        ("token", VaultAuth::Token),
        ("agent", VaultAuth::Agent),
        ("approle", VaultAuth::AppRole),
        ("kubernetes", VaultAuth::Kubernetes),
        ("jwt", VaultAuth::Jwt),
        ("cert", VaultAuth::Cert),
        ("aws", VaultAuth::Aws),
    ];

    /// The method named `name` (as `vault_auth` spells it).
    pub fn parse(name: &str) -> Option<VaultAuth> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// Every method's name, for messages: `token, agent, approle, ...`.
    pub fn names() -> String {
        Self::ALL.map(|(n, _)| n).join(", ")
    }

    /// Its name, which is also the default mount of a login method.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("token", |(n, _)| n)
    }
}

/// Where a Kubernetes pod's projected service-account token is mounted.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

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

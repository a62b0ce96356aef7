//! Configuration of a [`SecretsManager`](super::SecretsManager): from a JSON
//! object (the C API's `config_json`, the tool's `--config FILE`) over the
//! defaults taken from the environment.
//!
//! Values are checked one by one, with messages that name the key and never
//! repeat a value (a configuration can hold a token).

use super::aws::AwsSettings;
use super::azure::AzureSettings;
use super::file::FileSettings;
use super::gcp::GcpSettings;
use super::mounted::{MountedProvider, MountedSettings};
use super::provenance::ProvenanceSetting;
use super::vault::{VaultAuth, VaultSettings};
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::transport::RemoteSettings;
use serde_json::Value;
pub(crate) use shape::ConfigKey;
pub use shape::{ManagerConfig, ProviderKind};
use std::path::PathBuf;
use values::{
    in_key, leases, names, nonempty, positive_seconds, seconds, string, url, vault_address,
    UniqueKeys,
};

/// Largest `max_file_size`: 1 GiB.
pub const MAX_MAX_FILE_SIZE: u64 = 1 << 30;
/// Environment variable naming the secrets file (an st-secrets addition).
pub const ENV_SECRETS_FILE: &str = "SIMPLETUNER_SECRETS_FILE";

/// The configuration keys of the chain and each provider, in the docs'
/// order; [`remote::REMOTE_KEYS`] follow.
const PROVIDER_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "file_path",
        value: "string",
        doc: "the secrets file (`~/` expanded; used even before it exists); default `SIMPLETUNER_SECRETS_FILE`, else the first of `~/.simpletuner/secrets.json`, `.yaml`, `.yml`",
        apply: |c, k, v| {
            c.file.path = Some(expand_home(PathBuf::from(string(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "env_prefix",
        value: "string",
        doc: "variables are read as `<prefix>_<KEY>`; default none",
        apply: |c, k, v| {
            c.env_prefix = Some(string(k, v)?.to_owned());
            Ok(())
        },
    },
    ConfigKey {
        name: "references",
        value: "true or false",
        doc: "a value `st://KEY` in the environment or the secrets file is a reference, resolved through the providers after the one holding it; `false`: such values are returned as they are (SimpleTuner's behaviour); default true",
        apply: |c, k, v| {
            c.references = v.as_bool().ok_or_else(|| {
                Error::InvalidArgument(format!("config key '{k}' must be true or false"))
            })?;
            Ok(())
        },
    },
    ConfigKey {
        name: "provenance",
        value: "true, false, or string",
        doc: "record which version of each secret was used, with a fingerprint of its value (`st_secrets_provenance_json`): `true` in memory, a path: also one JSON line appended there per key and version; default `SIMPLETUNER_PROVENANCE_FILE` when set, else off",
        apply: |c, k, v| {
            c.provenance = match v {
                Value::Bool(true) => ProvenanceSetting::Memory,
                Value::Bool(false) => ProvenanceSetting::Off,
                other => ProvenanceSetting::File(expand_home(PathBuf::from(nonempty(k, other)?))),
            };
            Ok(())
        },
    },
    ConfigKey {
        name: "mounted_dirs",
        value: "string, or list of strings",
        doc: "directories of one file per key (a Kubernetes Secret volume, the Secrets Store CSI driver, `/run/secrets`), read in order by the `mounted` provider, then `$CREDENTIALS_DIRECTORY`; default `SIMPLETUNER_SECRETS_DIRS` (colon-separated), else none",
        apply: |c, k, v| {
            c.mounted.dirs = Some(
                names(k, v, |s| s.trim().to_owned())?
                    .into_iter()
                    .map(|d| expand_home(PathBuf::from(d)))
                    .collect(),
            );
            Ok(())
        },
    },
    ConfigKey {
        name: "max_file_size",
        value: "bytes, 1 to 1073741824",
        doc: "secrets files larger than this are refused before they are read; default 4194304 (4 MiB)",
        apply: |c, k, v| {
            c.file.max_size = v
                .as_u64()
                .filter(|n| (1..=MAX_MAX_FILE_SIZE).contains(n))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "config key '{k}' must be a whole number of bytes from 1 to {MAX_MAX_FILE_SIZE}"
                    ))
                })?;
            Ok(())
        },
    },
    ConfigKey {
        name: "cache_ttl",
        value: "seconds, 0 to 315360000",
        doc: "how long the remote providers keep a fetched secret; default 300",
        apply: |c, k, v| {
            c.remote.cache_ttl = seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "negative_ttl",
        value: "seconds, 0 to 315360000",
        doc: "how long the remote providers keep \"no such secret\"; default 30",
        apply: |c, k, v| {
            c.remote.negative_ttl = seconds(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "providers",
        value: "list of `env`, `mounted`, `file`, `aws`, `vault`",
        doc: "the chain in priority order; default `[\"env\", \"mounted\", \"file\", \"aws\", \"vault\"]`",
        apply: |c, k, v| {
            c.providers = chain(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "aws_secret_name",
        value: "string, or list of strings",
        doc: "the Secrets Manager secret, or several looked up in order (shared team secrets first, then the project's); default `SIMPLETUNER_AWS_SECRET_NAME` (comma-separated for several; unset: the provider is unavailable)",
        apply: |c, k, v| {
            c.aws.secret_names = Some(names(k, v, |s| s.trim().to_owned())?);
            Ok(())
        },
    },
    ConfigKey {
        name: "aws_agent_url",
        value: "https URL, or http to loopback",
        doc: "send the AWS provider's requests to the AWS Secrets Manager Agent at this URL (`http://127.0.0.1:2773`), unsigned, with its SSRF token (`AWS_TOKEN`, a value or `file://PATH`, else `/var/run/awssmatoken`); default `SIMPLETUNER_AWS_AGENT_URL`",
        apply: |c, k, v| {
            c.aws.agent_url = Some(url(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "aws_region",
        value: "string",
        doc: "default `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's region",
        apply: |c, k, v| {
            c.aws.region = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "aws_endpoint",
        value: "http(s) URL",
        doc: "default `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, the regional endpoint",
        apply: |c, k, v| {
            c.aws.endpoint = Some(url(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "gcp_secret",
        value: "string, or list of strings",
        doc: "the Secret Manager secrets, in order (`projects/P/[locations/L/]secrets/S[/versions/V]`, or `S` in `gcp_project`); default `SIMPLETUNER_GCP_SECRET` (comma-separated; unset: the provider is unavailable)",
        apply: |c, k, v| {
            let listed = names(k, v, |s| s.trim().to_owned())?;
            let parse = crate::secrets::gcp::SecretRef::parse;
            listed.iter().try_for_each(|i| parse(i).map(drop)).map_err(in_key(k))?;
            c.gcp.secrets = Some(listed);
            Ok(())
        },
    },
    ConfigKey {
        name: "gcp_project",
        value: "string",
        doc: "the project of secrets named by id; default `GOOGLE_CLOUD_PROJECT`, the credentials file's, the metadata server's",
        apply: |c, k, v| {
            c.gcp.project = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "gcp_location",
        value: "string",
        doc: "the location of secrets named by id (a regional endpoint); default `SIMPLETUNER_GCP_LOCATION`, else global",
        apply: |c, k, v| {
            c.gcp.location = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "gcp_endpoint",
        value: "https URL, or http to loopback",
        doc: "default `SIMPLETUNER_GCP_ENDPOINT`, else Google's global or regional endpoint",
        apply: |c, k, v| {
            c.gcp.endpoint = Some(url(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "gcp_metadata_wait",
        value: "seconds, 0.001 to 3600",
        doc: "how long a process waits for a metadata server not answering yet (a node just started) before its first token: 30",
        apply: |c, k, v| {
            c.gcp.metadata_wait = Some(positive_seconds(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "azure_vault",
        value: "https URL, or http to loopback",
        doc: "the Key Vault (`https://NAME.vault.azure.net`); default `SIMPLETUNER_AZURE_VAULT_URL` (unset: the provider is unavailable)",
        apply: |c, k, v| {
            let u = url(k, v)?;
            crate::secrets::azure::vault_url(&u).map_err(in_key(k))?;
            c.azure.vault = Some(u);
            Ok(())
        },
    },
    ConfigKey {
        name: "azure_secret",
        value: "string, or list of strings",
        doc: "the vault's secrets, in order (`NAME` or `NAME/VERSION`); default `SIMPLETUNER_AZURE_SECRET` (comma-separated)",
        apply: |c, k, v| {
            let listed = names(k, v, |s| s.trim().to_owned())?;
            let parse = crate::secrets::azure::SecretName::parse;
            listed.iter().try_for_each(|i| parse(i).map(drop)).map_err(in_key(k))?;
            c.azure.secrets = Some(listed);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_url",
        value: "http(s) URL, or `unix://PATH`",
        doc: "Vault's address, or the Unix socket of a Vault/OpenBao Agent or Proxy; default `BAO_ADDR`, else `VAULT_ADDR` (unset: the provider is unavailable)",
        apply: |c, k, v| {
            let address = vault_address(k, v)?;
            if address.contains(',') {
                return Err(Error::InvalidArgument(format!(
                    "config key '{k}' holds several addresses: list a cluster's nodes in \
                     'vault_urls'"
                )));
            }
            c.vault.url = Some(address);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_urls",
        value: "list of http(s) URLs or `unix://PATH`",
        doc: "the addresses of a cluster's nodes, instead of `vault_url`: each request goes to one that answers (failover, elections waited out, redirects only to these); default `BAO_ADDR`, else `VAULT_ADDR`, holding a comma-separated list",
        apply: |c, k, v| {
            let urls = names(k, v, |s| s.trim().to_owned())?;
            let mut checked = Vec::with_capacity(urls.len());
            for (i, u) in urls.iter().enumerate() {
                let item = Value::String(u.clone());
                checked.push(vault_address(&format!("{k}' item '{i}"), &item)?);
            }
            c.vault.urls = Some(checked);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_election_timeout",
        value: "seconds, 0.001 to 3600",
        doc: "how long a login to Vault waits for a cluster to elect an active node before it fails; default 15 (shortened by up to 10% at random per process)",
        apply: |c, k, v| {
            c.vault.election_timeout = Some(positive_seconds(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_agent",
        value: "true or false",
        doc: "send no token: a Vault Agent or Proxy (or `bao agent` / `bao proxy`) at `vault_url` with `use_auto_auth_token` adds its own; default `SIMPLETUNER_VAULT_AGENT`, else false",
        apply: |c, k, v| {
            c.vault.agent = Some(v.as_bool().ok_or_else(|| {
                Error::InvalidArgument(format!("config key '{k}' must be true or false"))
            })?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_token",
        value: "string",
        doc: "default `BAO_TOKEN`, else `VAULT_TOKEN`, else the token file (`vault_token_file`), else an AppRole login (`VAULT_ROLE_ID` and `VAULT_SECRET_ID`)",
        apply: |c, k, v| {
            c.vault.token = Some(SecretString::from(nonempty(k, v)?));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_token_file",
        value: "string",
        doc: "a file holding the token (`~/` expanded), such as a Vault Agent's file sink: read again when it changes and once more when the server refuses the token; default `SIMPLETUNER_VAULT_TOKEN_FILE`, else `~/.vault-token` when it holds a token",
        apply: |c, k, v| {
            c.vault.token_file = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_auth",
        value: "`token`, `agent`, `approle`, `kubernetes`, `jwt`, `cert` or `aws`",
        doc: "how to log in: `kubernetes`, `jwt` (a JWT file), `cert` (the TLS client certificate), `aws` (a signed `sts:GetCallerIdentity`); default `SIMPLETUNER_VAULT_AUTH`, else inferred: agent, token, token file, AppRole",
        apply: |c, k, v| {
            let name = nonempty(k, v)?;
            c.vault.auth = Some(VaultAuth::parse(&name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "config key '{k}' must be one of {}",
                    VaultAuth::names()
                ))
            })?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_role",
        value: "string",
        doc: "the role a `kubernetes`, `jwt` or `aws` login asks for (a `cert` login: the certificate role's name, else any that matches); default `SIMPLETUNER_VAULT_ROLE`",
        apply: |c, k, v| {
            c.vault.role = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_auth_mount",
        value: "string",
        doc: "where the login method is mounted (`auth/<mount>/login`); default `SIMPLETUNER_VAULT_AUTH_MOUNT`, else the method's name",
        apply: |c, k, v| {
            c.vault.auth_mount = Some(nonempty(k, v)?.trim_matches('/').to_owned());
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_jwt_file",
        value: "string",
        doc: "the JWT a `jwt` or `kubernetes` login sends (`~/` expanded), read again for every login; default `SIMPLETUNER_VAULT_JWT_FILE`, else for `jwt` the Slurm job's token (`SIMPLETUNER_JOB_TOKEN_FILE`), else `/var/run/secrets/kubernetes.io/serviceaccount/token`",
        apply: |c, k, v| {
            c.vault.jwt_file = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_role_id",
        value: "string",
        doc: "an AppRole login's role ID, with `vault_secret_id_file` (both or neither): the machine's identity in the configuration; default `VAULT_ROLE_ID` (with `VAULT_SECRET_ID`)",
        apply: |c, k, v| {
            c.vault.role_id = Some(nonempty(k, v)?.to_owned());
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_secret_id_file",
        value: "string",
        doc: "a file holding the AppRole secret ID (`~/` expanded; yours or root's, not writable by others, readable by everyone only in a kubelet volume), read again for every login; with `vault_role_id`",
        apply: |c, k, v| {
            c.vault.secret_id_file = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_client_cert",
        value: "string",
        doc: "a PEM file with the TLS client certificate (and its chain) presented to Vault, read again for every login; a `cert` login needs it; default `BAO_CLIENT_CERT`, else `VAULT_CLIENT_CERT`",
        apply: |c, k, v| {
            c.vault.client_cert = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_client_key",
        value: "string",
        doc: "the PEM file of the client certificate's private key; default `BAO_CLIENT_KEY`, else `VAULT_CLIENT_KEY`",
        apply: |c, k, v| {
            c.vault.client_key = Some(expand_home(PathBuf::from(nonempty(k, v)?)));
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_aws_server_id",
        value: "string",
        doc: "the `X-Vault-AWS-IAM-Server-ID` header an `aws` login signs (the auth method's `iam_server_id_header_value`); default `SIMPLETUNER_VAULT_AWS_SERVER_ID`, else none",
        apply: |c, k, v| {
            c.vault.aws_server_id = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_path",
        value: "string, or list of strings",
        doc: "the secret's path in the mount, or several looked up in order; default `SIMPLETUNER_VAULT_PATH` (comma-separated for several), else `simpletuner`",
        apply: |c, k, v| {
            c.vault.paths = Some(names(k, v, |s| s.trim().trim_matches('/').to_owned())?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_leases",
        value: "object: name to path, or to `{\"path\", \"data\"}`",
        doc: "dynamic secrets with a lease (`database/creds/ROLE`; `pki/issue/ROLE` with `data`, sent as a write): each field is the key `NAME_FIELD`, renewed or issued again before it ends; alone, no KV path is read but `vault_path`",
        apply: |c, k, v| {
            c.vault.leases = Some(leases(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_mount",
        value: "string",
        doc: "the KV mount; default `SIMPLETUNER_VAULT_MOUNT`, else `secret`",
        apply: |c, k, v| {
            c.vault.mount = Some(nonempty(k, v)?.trim_matches('/').to_owned());
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_namespace",
        value: "string",
        doc: "Vault Enterprise / OpenBao namespace; default `VAULT_NAMESPACE`, else `BAO_NAMESPACE`",
        apply: |c, k, v| {
            c.vault.namespace = Some(nonempty(k, v)?);
            Ok(())
        },
    },
    ConfigKey {
        name: "exchanges",
        value: "object: secret name to its exchange",
        doc: "each named secret is the short-lived credential a token endpoint gives for the job's token ([token exchanges](token-exchange.md)); puts `exchange` after `env`",
        apply: |c, k, v| {
            c.exchanges = values::exchanges(k, v)?;
            Ok(())
        },
    },
    ConfigKey {
        name: "vault_kv_version",
        value: "1 or 2",
        doc: "the mount's KV version; default detected once per mount",
        apply: |c, k, v| {
            c.vault.kv_version = Some(match v.as_u64() {
                Some(1) => 1,
                Some(2) => 2,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "config key '{k}' must be 1 or 2"
                    )))
                }
            });
            Ok(())
        },
    },
];

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            providers: ProviderKind::DEFAULT_CHAIN.to_vec(),
            env_prefix: None,
            references: true,
            mounted: MountedSettings::default(),
            file: FileSettings::default(),
            aws: AwsSettings::default(),
            gcp: GcpSettings::default(),
            azure: AzureSettings::default(),
            vault: VaultSettings::default(),
            exchanges: Default::default(),
            remote: RemoteSettings::default(),
            provenance: ProvenanceSetting::default(),
        }
    }
}

impl ManagerConfig {
    /// The configuration taken from the environment: the defaults,
    /// `SIMPLETUNER_SECRETS_FILE` as the secrets file,
    /// `SIMPLETUNER_SECRETS_DIRS` as the mounted directories when set, and
    /// the `exchange` provider after `env` when `SIMPLETUNER_EXCHANGES` is.
    pub fn from_environment() -> ManagerConfig {
        let mut config = ManagerConfig::default();
        config.file.path = std::env::var_os(ENV_SECRETS_FILE)
            .filter(|v| !v.is_empty())
            .map(|v| expand_home(PathBuf::from(v)));
        config.mounted.dirs = MountedProvider::dirs_from_environment();
        // Exchanges named by the environment: the provider right after
        // the environment's (it reads and checks the variable itself).
        let var = crate::secrets::transport::vars::SIMPLETUNER_EXCHANGES;
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            let at = usize::from(config.providers.first() == Some(&ProviderKind::Env));
            config.providers.insert(at, ProviderKind::Exchange);
        }
        config
    }

    /// [`from_json`](Self::from_json) of the file at `path` (the tool's
    /// `--config FILE`), read safely: a regular file of at most 1 MiB, opened
    /// without blocking.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Permission`] naming the file; else as
    /// [`from_json`](Self::from_json), with the file named.
    pub fn from_file(path: &std::path::Path) -> Result<ManagerConfig, Error> {
        let bytes = crate::fsutil::read_required(path, "config file", 1 << 20)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::InvalidArgument(format!("config file {} is not UTF-8", path.display()))
        })?;
        ManagerConfig::from_json(text)
            .map_err(|e| e.context(format!("config file {}", path.display())))
    }

    /// [`from_environment`](Self::from_environment) overridden by the keys of a
    /// JSON object. `{}` changes nothing; `null` values mean "the default".
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key: an empty text, malformed
    /// JSON, not an object, a key given twice, an unknown key, a value of the
    /// wrong type or out of range.
    pub fn from_json(text: &str) -> Result<ManagerConfig, Error> {
        let mut config = ManagerConfig::from_environment();
        if text.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "configuration is empty: pass a JSON object (\"{}\" for the defaults) or NULL"
                    .into(),
            ));
        }
        let UniqueKeys { map, duplicate } =
            serde_json::from_str(text).map_err(|e| config_json_error(&e))?;
        if let Some(key) = duplicate {
            return Err(Error::InvalidArgument(format!(
                "configuration: config key '{key}' is given twice"
            )));
        }
        for (key, value) in &map {
            let spec = config_keys()
                .find(|k| k.name == key)
                .ok_or_else(|| unknown(key))?;
            if !value.is_null() {
                (spec.apply)(&mut config, key, value)?;
            }
        }
        // The exchanges' provider comes right after the environment's
        // unless the chain is given, which must then place it.
        if !config.exchanges.is_empty() && !config.providers.contains(&ProviderKind::Exchange) {
            if map.get("providers").is_some_and(|v| !v.is_null()) {
                return Err(Error::InvalidArgument(
                    "config key 'exchanges' is set but 'providers' does not list 'exchange': \
                     place it in the chain"
                        .into(),
                ));
            }
            let at = usize::from(config.providers.first() == Some(&ProviderKind::Env));
            config.providers.insert(at, ProviderKind::Exchange);
        }
        Ok(config)
    }
}

/// A configuration that serde_json could not read: the position only (its
/// own message can quote the text, and the text can hold a token).
fn config_json_error(e: &serde_json::Error) -> Error {
    if e.classify() == serde_json::error::Category::Data {
        return Error::InvalidArgument("configuration must be a JSON object".into());
    }
    Error::invalid_json("configuration", e)
}

fn unknown(key: &str) -> Error {
    Error::InvalidArgument(format!(
        "unknown config key '{key}' (known keys: {})",
        config_keys().map(|k| k.name).collect::<Vec<_>>().join(", ")
    ))
}

fn chain(key: &str, value: &Value) -> Result<Vec<ProviderKind>, Error> {
    let names = value.as_array().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "config key '{key}' must be a list of provider names"
        ))
    })?;
    let mut kinds = Vec::new();
    for name in names {
        let kind = ProviderKind::parse(string(key, name)?)?;
        if kinds.contains(&kind) {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}': provider '{}' is listed twice",
                kind.name()
            )));
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// Every configuration key, in the docs' order.
pub(crate) fn config_keys() -> impl Iterator<Item = &'static ConfigKey> {
    PROVIDER_KEYS.iter().chain(remote::REMOTE_KEYS)
}

mod remote;
mod shape;
mod values;

#[cfg(test)]
mod tests;

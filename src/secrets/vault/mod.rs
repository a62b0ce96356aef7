//! The HashiCorp Vault provider: the fields of one KV secret are the keys.
//! KV v2 (`<mount>/data/<path>`, values under `data.data`) with a fallback to
//! v1 (`<mount>/<path>`, values under `data`), decided once per mount
//! (`sys/internal/ui/mounts/<mount>` when the token may read it, else by
//! probing) unless `vault_kv_version` says. Tokens from config, `VAULT_TOKEN`
//! or `~/.vault-token`, or an AppRole login that is repeated when the token
//! expires or is refused. Requests go through the shared remote machinery
//! ([`remote`](crate::secrets::remote)): one request per TTL, stale-on-error, retries, short
//! timeouts.
//!
//! Configuration, each in this order: URL `vault_url`, `VAULT_ADDR`,
//! `BAO_ADDR`; token `vault_token`, `VAULT_TOKEN`, `BAO_TOKEN`,
//! `~/.vault-token`, else AppRole (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`); path
//! `vault_path`, `SIMPLETUNER_VAULT_PATH`, `simpletuner`; mount
//! `vault_mount`, `SIMPLETUNER_VAULT_MOUNT`, `secret`; namespace
//! `vault_namespace`, `VAULT_NAMESPACE`, `BAO_NAMESPACE` (sent as
//! `X-Vault-Namespace`); TLS `VAULT_CACERT`, `BAO_CACERT`,
//! `VAULT_SKIP_VERIFY`, `BAO_SKIP_VERIFY`. (OpenBao's CLI reads the `BAO_`
//! names; the `VAULT_` ones win when both are set.)
//!
//! A 404 is "absent" only when the server says nothing more: one naming a
//! missing route or namespace, or warning that the path does not fit the
//! mount's KV version, is a configuration error that names what to fix.

mod client;
pub(crate) mod settings;
pub(crate) mod wire;

pub use settings::VaultSettings;

use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, Provider, ProviderStatus, SecretMap};
use crate::secrets::remote::http::redact_url;
use crate::secrets::remote::secret_cache::{Fetched, SecretCache};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{with_retries, FetchError, RemoteSettings, Vars};
use crate::Error;
use client::{Auth, Client};
use serde_json::{json, Value};
use settings::either;
use wire::expect;

/// The Vault provider.
pub struct VaultProvider {
    client: Result<Client, Error>,
    configured: bool,
    cache: SecretCache<SecretMap>,
    settings: RemoteSettings,
}

impl std::fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultProvider")
            .field("configured", &self.configured)
            .finish_non_exhaustive()
    }
}

impl VaultProvider {
    /// The provider for `settings`, reading `vars`. Configuration problems
    /// (unreadable CA file) are reported on every lookup and in the status.
    pub fn new(vault: &VaultSettings, remote: &RemoteSettings, vars: Vars) -> VaultProvider {
        let url = vault.url.clone().or_else(|| {
            either(&vars, var::VAULT_ADDR, var::BAO_ADDR)
                .map(|(u, _)| u.trim_end_matches('/').to_owned())
        });
        let auth = Auth::resolve(vault, &vars);
        let configured = url.is_some() && auth.is_some();
        let client = match (url, auth) {
            (None, _) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault is not configured: set vault_url or VAULT_ADDR (or BAO_ADDR)"
                    .into(),
            )),
            (Some(_), None) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault has no way to authenticate: set vault_token, VAULT_TOKEN \
                 (or BAO_TOKEN) or ~/.vault-token, or VAULT_ROLE_ID and VAULT_SECRET_ID for \
                 AppRole"
                    .into(),
            )),
            (Some(url), Some(auth)) => Client::new(vault, remote, &vars, url, auth),
        };
        VaultProvider {
            client,
            configured,
            cache: SecretCache::new(remote.clone()),
            settings: remote.clone(),
        }
    }

    /// Requests for the secret sent so far (fetches; cache hits send none).
    pub fn requests(&self) -> u64 {
        self.cache.requests()
    }

    fn fetch(&self, c: &Client) -> Result<Fetched<SecretMap>, FetchError> {
        with_retries(&self.settings, || c.read_secret())
    }
}

impl Provider for VaultProvider {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        if !self.configured {
            return Ok(None);
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        self.cache.lookup(key, || self.fetch(client))
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        if !self.configured {
            return Ok(Vec::new());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        Ok(self
            .cache
            .with_map(|| self.fetch(client), SecretMap::keys)?
            .unwrap_or_default())
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.cache.holds_non_secret(key)
    }

    fn status(&self) -> ProviderStatus {
        let mut warnings = Vec::new();
        let detail = match &self.client {
            Err(e) => e.to_string(),
            Ok(c) => {
                let auth = match &c.auth {
                    Auth::Token(_, source) => format!("token from {source}"),
                    Auth::AppRole { .. } => "AppRole login".to_owned(),
                };
                let (tail, w) = self.cache.describe();
                warnings = w;
                format!(
                    "{}/{} at {}{}; {}; {auth}{tail}",
                    c.mount,
                    c.path,
                    redact_url(&c.url),
                    c.namespace
                        .as_ref()
                        .map(|ns| format!(" (namespace {ns})"))
                        .unwrap_or_default(),
                    c.kv_description(),
                )
            }
        };
        ProviderStatus {
            name: "vault",
            available: self.configured,
            detail,
            warnings,
            failure: self.cache.failure(),
        }
    }

    fn invalidate(&self) {
        self.cache.invalidate();
    }

    fn diagnose(&self) -> Option<Value> {
        if !self.configured {
            return None;
        }
        let c = match &self.client {
            Ok(c) => c,
            Err(e) => return Some(json!({ "error": e.to_json() })),
        };
        let mut out = json!({
            "url": redact_url(&c.url),
            "secret": format!("{}/{}", c.mount, c.path),
            "namespace": c.namespace,
        });
        // Asked in the root namespace: OpenBao refuses sys/health in others.
        out["health"] = match c.send_in(None, "GET", "sys/health", None, b"") {
            Ok(r) if r.status == 404 => json!({ "supported": false }),
            Ok(r) => {
                let doc = r.json().unwrap_or(Value::Null);
                json!({
                    "status": r.status,
                    "initialized": doc["initialized"],
                    "sealed": doc["sealed"],
                    "standby": doc["standby"],
                    "version": doc["version"],
                })
            }
            Err(f) => json!({ "error": f.error.to_json() }),
        };
        let read = self.fetch(c);
        let lookup = c
            .get("auth/token/lookup-self")
            .and_then(|r| expect(r, "token lookup"));
        out["token"] = match lookup {
            Ok(r) => {
                let mut doc = r.json().unwrap_or(Value::Null);
                // Only what is safe to show: never "id" (the token itself).
                let shown = json!({
                    "valid": true,
                    "display_name": doc["data"]["display_name"],
                    "policies": doc["data"]["policies"],
                    "ttl": doc["data"]["ttl"],
                    "expire_time": doc["data"]["expire_time"],
                });
                zeroize_json(&mut doc);
                shown
            }
            // A least-privilege token (no default policy) may not look itself
            // up: when it can read the secret, it works; it just cannot be
            // inspected. (A bad token is refused both.)
            Err(f) if f.error.code_name() == "ST_AUTH" && read.is_ok() => json!({
                "valid": null,
                "inspectable": false,
                "reason": "cannot be inspected (permission denied on auth/token/lookup-self)",
            }),
            Err(f) => json!({ "valid": false, "error": f.error.to_json() }),
        };
        out["secret_readable"] = match read {
            Ok(Fetched::Found(map)) => json!({ "readable": true, "keys": map.len() }),
            Ok(Fetched::Absent) => json!({ "readable": false, "reason": "no secret at the path" }),
            Err(f) => json!({ "readable": false, "error": f.error.to_json() }),
        };
        out["kv_version"] = json!(c.kv_description());
        Some(out)
    }
}

#[cfg(test)]
mod tests;

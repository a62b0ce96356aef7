//! The HashiCorp Vault provider: the fields of KV secrets are the keys.
//! KV v2 (`<mount>/data/<path>`, values under `data.data`) with a fallback to
//! v1 (`<mount>/<path>`, values under `data`), decided once per mount
//! (`sys/internal/ui/mounts/<mount>` when the token may read it, else by
//! probing) unless `vault_kv_version` says. Several paths are looked up in
//! order, each fetched and cached as one unit
//! ([`Sources`](crate::secrets::remote::sources::Sources)). Tokens from config,
//! `BAO_TOKEN` / `VAULT_TOKEN`, a token file read again when it changes (an
//! agent's sink, `~/.vault-token`), or an AppRole login that is repeated when
//! the token expires or is refused; or no token at all, for a Vault Agent or
//! Proxy that adds its own. Requests go through the shared remote machinery
//! ([`remote`](crate::secrets::remote)): one request per TTL, stale-on-error,
//! retries, short timeouts.
//!
//! Configuration, each in this order (OpenBao's `BAO_` variables win over
//! Vault's `VAULT_` ones when both are set, as OpenBao's clients read them):
//! URL `vault_url`, `BAO_ADDR`, `VAULT_ADDR` (http(s), or `unix://PATH`);
//! authentication `vault_agent` / `SIMPLETUNER_VAULT_AGENT` (no token), else
//! token `vault_token`, `BAO_TOKEN`, `VAULT_TOKEN`, else token file
//! `vault_token_file`, `SIMPLETUNER_VAULT_TOKEN_FILE`, `~/.vault-token`, else
//! AppRole (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`); paths `vault_path` (a
//! string or a list), `SIMPLETUNER_VAULT_PATH` (comma-separated),
//! `simpletuner`; mount `vault_mount`, `SIMPLETUNER_VAULT_MOUNT`, `secret`;
//! namespace `vault_namespace`, `BAO_NAMESPACE`, `VAULT_NAMESPACE` (sent as
//! `X-Vault-Namespace`); TLS `BAO_CACERT`, `VAULT_CACERT`, `BAO_SKIP_VERIFY`,
//! `VAULT_SKIP_VERIFY`.
//!
//! A 404 is "absent" only when the server says nothing more: one naming a
//! missing route or namespace, or warning that the path does not fit the
//! mount's KV version, is a configuration error that names what to fix.

mod client;
pub(crate) mod settings;
pub(crate) mod wire;

pub use settings::VaultSettings;

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::{
    zeroize_json, KeyChange, Provider, ProviderStatus, SecretMap, Version,
};
use crate::secrets::remote::http::{redact_url, Address};
use crate::secrets::remote::node::{NodeUse, Scope};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::sources::{self, Sources};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{with_retries, FetchError, RemoteSettings, Vars};
use client::{Auth, Client};
use serde_json::{json, Value};
use settings::either;
use wire::expect;

/// The Vault provider.
pub struct VaultProvider {
    client: Result<Client, Error>,
    configured: bool,
    sources: Sources,
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
        let url = vault
            .url
            .clone()
            .or_else(|| either(&vars, var::VAULT_ADDR, var::BAO_ADDR).map(|(u, _)| u.to_owned()))
            .map(|u| Address::parse(&u));
        let paths = vault
            .paths
            .clone()
            .or_else(|| {
                vars.list(var::SIMPLETUNER_VAULT_PATH)
                    .map(|l| l.iter().map(|p| p.trim_matches('/').to_owned()).collect())
            })
            .unwrap_or_else(|| vec!["simpletuner".to_owned()]);
        let node = match url {
            Some(_) => NodeUse::resolve(remote, &vars),
            None => NodeUse::Off,
        };
        let scope = Scope::new("vault", &vars)
            .with("settings", &format!("{vault:?}"))
            .with("token", vault.token.as_ref().map_or("", |t| t.expose()));
        let auth = Auth::resolve(vault, &vars);
        let configured = url.is_some() && matches!(auth, Ok(Some(_)) | Err(_));
        let client = match (url, auth) {
            (None, _) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault is not configured: set vault_url or BAO_ADDR (or VAULT_ADDR)"
                    .into(),
            )),
            (Some(_), Err(e)) => Err(e),
            (Some(_), Ok(None)) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault has no way to authenticate: set vault_token, BAO_TOKEN \
                 (or VAULT_TOKEN), vault_token_file or SIMPLETUNER_VAULT_TOKEN_FILE, or \
                 ~/.vault-token, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole, or \
                 vault_agent (SIMPLETUNER_VAULT_AGENT=1) behind a Vault Agent or Proxy"
                    .into(),
            )),
            (Some(url), Ok(Some(auth))) => Client::new(vault, remote, &vars, url, auth),
        };
        VaultProvider {
            client,
            configured,
            sources: Sources::new(&paths, remote).shared(node, &scope),
            settings: remote.clone(),
        }
    }

    /// Requests for the secret sent so far (fetches; cache hits send none).
    pub fn requests(&self) -> u64 {
        self.sources.requests()
    }

    /// Each secret as `<mount>/<path>`, in order.
    fn secrets(&self, c: &Client) -> Vec<String> {
        self.sources
            .names()
            .map(|p| format!("{}/{p}", c.mount))
            .collect()
    }

    fn fetch(&self, c: &Client, path: &str) -> Result<Fetched<SecretMap>, FetchError> {
        with_retries(&self.settings, || c.read_secret(path))
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
        self.sources.lookup(key, |path| self.fetch(client, path))
    }

    fn lookup_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if !self.configured {
            return Ok(None);
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        self.sources
            .lookup_versioned(key, |path| self.fetch(client, path))
    }

    fn peek(&self, key: &str) -> Option<(SecretString, Option<Version>)> {
        self.configured.then(|| self.sources.peek(key)).flatten()
    }

    fn refresh_key(
        &self,
        key: &str,
        min_interval: std::time::Duration,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        if !self.configured {
            return Ok(None);
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        self.sources
            .refresh_key(key, min_interval, |path| self.fetch(client, path))
    }

    fn take_refresh_request(&self, generation: u64) -> bool {
        self.configured && self.sources.take_refresh_request(generation)
    }

    fn refresh_in_background(&self) {
        if let (true, Ok(client)) = (self.configured, &self.client) {
            self.sources.refresh(|path| self.fetch(client, path));
        }
    }

    fn refreshes_in_background(&self) -> bool {
        self.configured && self.sources.refreshes_ahead()
    }

    fn take_changes(&self) -> Vec<KeyChange> {
        self.sources.take_changes()
    }

    fn watch(&self) {
        if let (true, Ok(client)) = (self.configured, &self.client) {
            self.sources.watch(|path| self.fetch(client, path));
        }
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        if !self.configured {
            return Ok(Vec::new());
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        self.sources.keys(|path| self.fetch(client, path))
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.sources.holds_non_secret(key)
    }

    fn status(&self) -> ProviderStatus {
        let mut warnings = Vec::new();
        let detail = match &self.client {
            Err(e) => e.to_string(),
            Ok(c) => {
                let auth = c.auth.describe();
                let (tail, w) = self.sources.describe();
                warnings = c.auth.warnings();
                warnings.extend(w);
                format!(
                    "{} at {}{}; {}; {auth}{tail}",
                    self.secrets(c).join(", then "),
                    redact_url(&c.url.shown),
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
            failure: self.sources.failure(),
        }
    }

    fn invalidate(&self) {
        self.sources.invalidate();
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
            "url": redact_url(&c.url.shown),
            "secret": self.secrets(c).join(", "),
            "auth": c.auth.describe(),
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
        let reads: Vec<(&str, Result<Fetched<SecretMap>, FetchError>)> = self
            .sources
            .names()
            .map(|p| (p, self.fetch(c, p)))
            .collect();
        let any_read = reads.iter().any(|(_, r)| r.is_ok());
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
            Err(f) if f.error.code_name() == "ST_AUTH" && any_read => json!({
                "valid": null,
                "inspectable": false,
                "reason": "cannot be inspected (permission denied on auth/token/lookup-self)",
            }),
            Err(f) => json!({ "valid": false, "error": f.error.to_json() }),
        };
        out["secret_readable"] = sources::readability(&reads, "no secret at the path");
        out["kv_version"] = json!(c.kv_description());
        Some(out)
    }
}

#[cfg(test)]
mod tests;

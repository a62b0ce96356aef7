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
//! Configuration, each in this order: URL `vault_url`, `VAULT_ADDR`; token
//! `vault_token`, `VAULT_TOKEN`, `~/.vault-token`, else AppRole
//! (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`); path `vault_path`,
//! `SIMPLETUNER_VAULT_PATH`, `simpletuner`; mount `vault_mount`,
//! `SIMPLETUNER_VAULT_MOUNT`, `secret`; namespace `vault_namespace`,
//! `VAULT_NAMESPACE` (sent as `X-Vault-Namespace`); TLS `VAULT_CACERT`,
//! `VAULT_SKIP_VERIFY`.

use super::config::ManagerConfig;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, SecretMap};
use crate::secrets::provider::{Provider, ProviderStatus};
use crate::secrets::remote::http::{redact_url, Http, Response, Trust};
use crate::secrets::remote::{
    shorten, with_retries, BlobCache, FetchError, Fetched, RemoteSettings, Vars,
};
use crate::Error;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How a token is obtained.
enum Auth {
    /// A fixed token, and where it came from.
    Token(SecretString, &'static str),
    /// AppRole: logged in on first use, again when the token expires or is
    /// refused.
    AppRole {
        role_id: SecretString,
        secret_id: SecretString,
    },
}

struct Token {
    value: SecretString,
    /// When to log in again (80% of the lease); `None`: never expires.
    renew_at: Option<Instant>,
}

/// The KV version of the mount, and how it was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kv {
    Unknown { asked_mounts: bool },
    Known(u8, &'static str),
}

struct Client {
    http: Http,
    url: String,
    mount: String,
    path: String,
    namespace: Option<String>,
    auth: Auth,
    token: Mutex<Option<Token>>,
    kv: Mutex<Kv>,
}

/// The Vault provider.
pub struct VaultProvider {
    client: Result<Client, Error>,
    configured: bool,
    cache: BlobCache<SecretMap>,
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
    /// The provider for `config`, reading `vars`. Configuration problems
    /// (unreadable CA file) are reported on every lookup and in the status.
    pub fn new(config: &ManagerConfig, vars: Vars) -> VaultProvider {
        let settings = config.remote.clone();
        let url = config.vault_url.clone().or_else(|| {
            vars.get("VAULT_ADDR")
                .map(|u| u.trim_end_matches('/').to_owned())
        });
        let auth = Self::auth(config, &vars);
        let configured = url.is_some() && auth.is_some();
        let client = match (url, auth) {
            (None, _) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault is not configured: set vault_url or VAULT_ADDR".into(),
            )),
            (Some(_), None) => Err(Error::ProviderUnavailable(
                "HashiCorp Vault has no way to authenticate: set vault_token, VAULT_TOKEN or \
                 ~/.vault-token, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole"
                    .into(),
            )),
            (Some(url), Some(auth)) => Self::client(config, &vars, url, auth),
        };
        VaultProvider {
            client,
            configured,
            cache: BlobCache::new(settings.clone(), config.cache_ttl, config.negative_ttl),
            settings,
        }
    }

    fn auth(config: &ManagerConfig, vars: &Vars) -> Option<Auth> {
        if let Some(t) = &config.vault_token {
            return Some(Auth::Token(t.clone(), "config vault_token"));
        }
        if let Some(t) = vars.get("VAULT_TOKEN") {
            return Some(Auth::Token(SecretString::from(t), "VAULT_TOKEN"));
        }
        if let Some(t) = vars
            .home_file(".vault-token")
            .and_then(|p| {
                crate::fsutil::read_regular(&p, "Vault token file", 64 << 10)
                    .ok()
                    .flatten()
            })
            .map(|b| SecretString::from(String::from_utf8_lossy(&b).into_owned()))
            .filter(|t| !t.expose().trim().is_empty())
        {
            return Some(Auth::Token(
                SecretString::from(t.expose().trim()),
                "~/.vault-token",
            ));
        }
        match (vars.get("VAULT_ROLE_ID"), vars.get("VAULT_SECRET_ID")) {
            (Some(r), Some(s)) => Some(Auth::AppRole {
                role_id: SecretString::from(r),
                secret_id: SecretString::from(s),
            }),
            _ => None,
        }
    }

    fn client(
        config: &ManagerConfig,
        vars: &Vars,
        url: String,
        auth: Auth,
    ) -> Result<Client, Error> {
        let skip = vars
            .get("VAULT_SKIP_VERIFY")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes"));
        let trust = match (skip, vars.get("VAULT_CACERT")) {
            (true, _) => Trust::Insecure,
            (false, Some(p)) => Trust::Bundle(expand_home(p.into())),
            (false, None) => Trust::Default,
        };
        let pick = |c: &Option<String>, var: &str, default: &str| {
            c.clone()
                .or_else(|| vars.get(var).map(|v| v.trim_matches('/').to_owned()))
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Client {
            http: Http::new(&config.remote, &trust)?,
            url,
            mount: pick(&config.vault_mount, "SIMPLETUNER_VAULT_MOUNT", "secret"),
            path: pick(&config.vault_path, "SIMPLETUNER_VAULT_PATH", "simpletuner"),
            namespace: config
                .vault_namespace
                .clone()
                .or_else(|| vars.get("VAULT_NAMESPACE").map(str::to_owned)),
            auth,
            token: Mutex::new(None),
            kv: Mutex::new(match config.vault_kv_version {
                Some(v) => Kv::Known(v, "configured"),
                None => Kv::Unknown {
                    asked_mounts: false,
                },
            }),
        })
    }

    /// Requests for the secret sent so far (fetches; cache hits send none).
    pub fn requests(&self) -> u64 {
        self.cache.requests()
    }

    fn fetch(&self, c: &Client) -> Result<Fetched<SecretMap>, FetchError> {
        with_retries(&self.settings, || c.read_secret())
    }
}

impl Client {
    /// A token: the fixed one, or the AppRole one (logging in when needed).
    fn token(&self) -> Result<SecretString, FetchError> {
        let mut cached = self.token.lock();
        match &self.auth {
            Auth::Token(t, _) => Ok(t.clone()),
            Auth::AppRole { role_id, secret_id } => {
                if let Some(t) = cached
                    .as_ref()
                    .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
                {
                    return Ok(t.value.clone());
                }
                let body = SecretString::from(
                    json!({"role_id": role_id.expose(), "secret_id": secret_id.expose()})
                        .to_string(),
                );
                let r = self.send("POST", "auth/approle/login", None, body.expose().as_bytes())?;
                let r = expect(r, "AppRole login")?;
                let mut doc = r.json().unwrap_or(Value::Null);
                let token = doc["auth"]["client_token"].as_str().map(SecretString::from);
                let lease = doc["auth"]["lease_duration"].as_u64().unwrap_or(0);
                zeroize_json(&mut doc);
                let token = token.ok_or_else(|| {
                    FetchError::transient(Error::Remote(
                        "AppRole login: the answer holds no client_token".into(),
                    ))
                })?;
                *cached = Some(Token {
                    value: token.clone(),
                    renew_at: (lease > 0)
                        .then(|| Instant::now() + Duration::from_secs(lease).mul_f64(0.8)),
                });
                Ok(token)
            }
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let url = format!("{}/v1/{path}", self.url);
        let mut headers = vec![("x-vault-request", "true")];
        if let Some(t) = token {
            headers.push(("x-vault-token", t.expose()));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("x-vault-namespace", ns));
        }
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        self.http.send("Vault", method, &url, &headers, body)
    }

    /// A GET with the token; a refused AppRole token logs in again once.
    fn get(&self, path: &str) -> Result<Response, FetchError> {
        let token = self.token()?;
        let r = self.send("GET", path, Some(&token), b"")?;
        if r.status == 403 && matches!(self.auth, Auth::AppRole { .. }) {
            *self.token.lock() = None;
            let token = self.token()?;
            return self.send("GET", path, Some(&token), b"");
        }
        Ok(r)
    }

    /// The mount's KV version when known or learnable from
    /// `sys/internal/ui/mounts` (asked once).
    fn kv_version(&self) -> Result<Option<u8>, FetchError> {
        let asked = match *self.kv.lock() {
            Kv::Known(v, _) => return Ok(Some(v)),
            Kv::Unknown { asked_mounts } => asked_mounts,
        };
        if asked {
            return Ok(None);
        }
        let r = self.get(&format!("sys/internal/ui/mounts/{}", self.mount))?;
        let learnt = if r.status == 200 {
            let doc = r.json().unwrap_or(Value::Null);
            let version = doc["data"]["options"]["version"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    doc["data"]["options"]["version"]
                        .as_u64()
                        .map(|v| v.to_string())
                });
            match (doc["data"]["type"].as_str(), version.as_deref()) {
                (Some("kv"), Some("2")) => Some(2),
                (Some("kv") | Some("generic"), _) => Some(1),
                _ => None,
            }
        } else if matches!(r.status, 403..=405) {
            None // not allowed, or a server without that endpoint: probe instead
        } else {
            return Err(expect(r, "Vault mount lookup").err().unwrap_or_else(|| {
                FetchError::transient(Error::Remote("Vault mount lookup failed".into()))
            }));
        };
        *self.kv.lock() = match learnt {
            Some(v) => Kv::Known(v, "sys/internal/ui/mounts"),
            None => Kv::Unknown { asked_mounts: true },
        };
        Ok(learnt)
    }

    fn read_secret(&self) -> Result<Fetched<SecretMap>, FetchError> {
        let v2 = format!("{}/data/{}", self.mount, self.path);
        let v1 = format!("{}/{}", self.mount, self.path);
        match self.kv_version()? {
            Some(2) => secret_from(self.get(&v2)?, 2),
            Some(_) => secret_from(self.get(&v1)?, 1),
            None => {
                // As documented: try v2, fall back to v1; remember what worked.
                if let found @ Fetched::Found(_) = secret_from(self.get(&v2)?, 2)? {
                    *self.kv.lock() = Kv::Known(2, "probe");
                    return Ok(found);
                }
                let answer = secret_from(self.get(&v1)?, 1)?;
                if matches!(answer, Fetched::Found(_)) {
                    *self.kv.lock() = Kv::Known(1, "probe");
                }
                Ok(answer)
            }
        }
    }

    fn kv_description(&self) -> String {
        match *self.kv.lock() {
            Kv::Known(v, how) => format!("KV v{v} ({how})"),
            Kv::Unknown { .. } => "KV version not detected yet".into(),
        }
    }
}

/// The status classes of Vault's API.
pub(crate) fn expect(r: Response, what: &str) -> Result<Response, FetchError> {
    if (200..300).contains(&r.status) {
        return Ok(r);
    }
    let summary = errors_summary(&r);
    let text = |kind: &str| format!("{what}: {kind} (HTTP {}){summary}", r.status);
    Err(match r.status {
        401 | 403 => FetchError::permanent(Error::Auth(text("permission denied"))),
        503 => FetchError::transient(Error::ProviderUnavailable(text(
            "Vault is sealed or unavailable",
        ))),
        429 | 500..=599 => FetchError::transient(Error::Remote(text("server error"))),
        _ => FetchError::permanent(Error::Remote(text("request refused"))),
    })
}

/// `": first error; second error"` from `{"errors": [...]}` (or RustyVault's
/// `{"error": "..."}`), each shortened; empty when there is none.
pub(crate) fn errors_summary(r: &Response) -> String {
    let Some(doc) = r.json() else {
        return String::new();
    };
    let mut items: Vec<String> = doc["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .take(3)
        .map(shorten)
        .filter(|e| !e.is_empty())
        .collect();
    if let Some(e) = doc["error"].as_str() {
        items.push(shorten(e));
    }
    if items.is_empty() {
        String::new()
    } else {
        format!(": {}", items.join("; "))
    }
}

/// The secret's fields from a KV read (`version` 2: under `data.data`).
pub(crate) fn secret_from(r: Response, version: u8) -> Result<Fetched<SecretMap>, FetchError> {
    if r.status == 404 {
        return Ok(Fetched::Absent);
    }
    let r = expect(r, "Vault read")?;
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(
            "Vault read: the answer is not JSON".into(),
        )));
    };
    // Taken out by hand, never by `doc["data"]` on a mutable value: that
    // panics when the server's answer is not an object (found by fuzzing).
    let outer = match &mut doc {
        Value::Object(o) => o.remove("data").unwrap_or(Value::Null),
        _ => Value::Bool(false), // not an object: refused below
    };
    let data = match (version, outer) {
        (2, Value::Object(mut o)) => o.remove("data").unwrap_or(Value::Null),
        (2, Value::Null) => Value::Null,
        (2, mut other) => {
            zeroize_json(&mut other);
            Value::Bool(false)
        }
        (_, data) => data,
    };
    zeroize_json(&mut doc);
    match data {
        Value::Object(map) => Ok(Fetched::Found(SecretMap::from_json_object(map))),
        // KV v2: a deleted or destroyed latest version reads as data: null.
        Value::Null => Ok(Fetched::Absent),
        mut other => {
            zeroize_json(&mut other);
            Err(FetchError::permanent(Error::Parse(format!(
                "Vault read: the secret's data is not an object of fields (KV v{version})"
            ))))
        }
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
        out["health"] = match c.send("GET", "sys/health", None, b"") {
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
        out["token"] = match c
            .get("auth/token/lookup-self")
            .and_then(|r| expect(r, "token lookup"))
        {
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
            Err(f) => json!({ "valid": false, "error": f.error.to_json() }),
        };
        out["secret_readable"] = match self.fetch(c) {
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

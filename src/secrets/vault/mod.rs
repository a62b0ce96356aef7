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

/// What the mounts endpoint said of a configured KV version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// Not asked yet.
    NotYet,
    /// Asked: it matches, or the endpoint could not tell.
    NoMismatch,
    /// The mount has this other version.
    Mismatch(u8),
}

/// What one read of the secret found.
enum Read {
    Found(SecretMap),
    Absent,
    /// A 404 warning that the mount is KV v2 (read with a v1 path).
    MountIsV2,
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
    /// A configured KV version checked against `sys/internal/ui/mounts`
    /// (after the first "absent").
    checked: Mutex<Checked>,
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
            either(&vars, "VAULT_ADDR", "BAO_ADDR").map(|(u, _)| u.trim_end_matches('/').to_owned())
        });
        let auth = Self::auth(config, &vars);
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
        if let Some((t, name)) = either(vars, "VAULT_TOKEN", "BAO_TOKEN") {
            return Some(Auth::Token(SecretString::from(t), name));
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
        let skip = either(vars, "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY").is_some_and(|(v, _)| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes")
        });
        let trust = match (skip, either(vars, "VAULT_CACERT", "BAO_CACERT")) {
            (true, _) => Trust::Insecure,
            (false, Some((p, _))) => Trust::Bundle(expand_home(p.into())),
            (false, None) => Trust::Default,
        };
        let pick = |c: &Option<String>, var: &str, default: &str| {
            c.clone()
                .or_else(|| vars.get(var).map(|v| v.trim_matches('/').to_owned()))
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Client {
            http: Http::new(&config.remote, &trust, "VAULT_CACERT (or BAO_CACERT)")?,
            url,
            mount: pick(&config.vault_mount, "SIMPLETUNER_VAULT_MOUNT", "secret"),
            path: pick(&config.vault_path, "SIMPLETUNER_VAULT_PATH", "simpletuner"),
            namespace: config.vault_namespace.clone().or_else(|| {
                either(vars, "VAULT_NAMESPACE", "BAO_NAMESPACE").map(|(ns, _)| ns.to_owned())
            }),
            auth,
            token: Mutex::new(None),
            kv: Mutex::new(match config.vault_kv_version {
                Some(v) => Kv::Known(v, "configured"),
                None => Kv::Unknown {
                    asked_mounts: false,
                },
            }),
            checked: Mutex::new(Checked::NotYet),
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
                let r = match r.status {
                    // Vault and OpenBao answer 400 for a wrong role or secret ID.
                    400 => {
                        return Err(FetchError::permanent(Error::Auth(format!(
                            "AppRole login refused (HTTP 400){}: check VAULT_ROLE_ID and \
                             VAULT_SECRET_ID",
                            errors_summary(&r)
                        ))))
                    }
                    404 => {
                        self.not_found(
                            &r,
                            "AppRole login",
                            (
                                "AppRole method at auth/approle".into(),
                                "enable it, or use a token",
                            ),
                        )?;
                        return Err(FetchError::permanent(Error::Remote(format!(
                            "AppRole login: not found (HTTP 404){}",
                            errors_summary(&r)
                        ))));
                    }
                    _ => expect(r, "AppRole login")?,
                };
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
        self.send_in(self.namespace.as_deref(), method, path, token, body)
    }

    /// [`send`](Self::send) in `namespace` (`None`: the root namespace,
    /// where `sys/health` must be asked).
    fn send_in(
        &self,
        namespace: Option<&str>,
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
        if let Some(ns) = namespace {
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
        let r = self.ask_mounts()?;
        let learnt = if r.status == 200 {
            mount_version(&r)
        } else if r.status == 404 {
            self.not_found(&r, "Vault mount lookup", self.mount_route())?;
            None // a server without that endpoint: probe instead
        } else if matches!(r.status, 403 | 405) {
            None // not allowed (or no such mount), or no such endpoint: probe instead
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
        if let Checked::Mismatch(actual) = *self.checked.lock() {
            return Err(self.mismatch(actual));
        }
        match self.kv_version()? {
            Some(version) => match self.read_as(version)? {
                Read::Found(map) => Ok(Fetched::Found(map)),
                Read::Absent => self.absent_with_configured_version(),
                Read::MountIsV2 => Err(self.mismatch(2)),
            },
            None => {
                // As documented: try v2, fall back to v1; remember what worked.
                if let Read::Found(map) = self.read_as(2)? {
                    *self.kv.lock() = Kv::Known(2, "probe");
                    return Ok(Fetched::Found(map));
                }
                match self.read_as(1)? {
                    Read::Found(map) => {
                        *self.kv.lock() = Kv::Known(1, "probe");
                        Ok(Fetched::Found(map))
                    }
                    Read::MountIsV2 => {
                        *self.kv.lock() = Kv::Known(2, "probe");
                        Ok(Fetched::Absent)
                    }
                    Read::Absent => Ok(Fetched::Absent),
                }
            }
        }
    }

    /// `sys/internal/ui/mounts/<mount>`: the mount's type and options.
    fn ask_mounts(&self) -> Result<Response, FetchError> {
        self.get(&format!("sys/internal/ui/mounts/{}", self.mount))
    }

    /// One read of the secret as KV `version`.
    fn read_as(&self, version: u8) -> Result<Read, FetchError> {
        let path = if version == 2 {
            format!("{}/data/{}", self.mount, self.path)
        } else {
            format!("{}/{}", self.mount, self.path)
        };
        let r = self.get(&path)?;
        if r.status == 404 {
            return self.not_found(&r, "Vault read", self.mount_route());
        }
        Ok(match secret_from(r, version)? {
            Fetched::Found(map) => Read::Found(map),
            Fetched::Absent => Read::Absent,
        })
    }

    /// "Absent" under a configured KV version, unless the mount turns out to
    /// have the other version (asked once of `sys/internal/ui/mounts`: a
    /// KV v2 path on a v1 mount reads as plainly absent).
    fn absent_with_configured_version(&self) -> Result<Fetched<SecretMap>, FetchError> {
        let Kv::Known(configured, "configured") = *self.kv.lock() else {
            return Ok(Fetched::Absent);
        };
        if *self.checked.lock() != Checked::NotYet {
            return Ok(Fetched::Absent);
        }
        let actual = match self.ask_mounts() {
            Ok(r) if r.status == 200 => mount_version(&r),
            _ => None, // not allowed or not there: nothing learnt
        };
        match actual.filter(|&a| a != configured) {
            Some(actual) => {
                *self.checked.lock() = Checked::Mismatch(actual);
                Err(self.mismatch(actual))
            }
            None => {
                *self.checked.lock() = Checked::NoMismatch;
                Ok(Fetched::Absent)
            }
        }
    }

    /// The error for a configured KV version the mount does not have.
    fn mismatch(&self, actual: u8) -> FetchError {
        let configured = if actual == 2 { 1 } else { 2 };
        FetchError::permanent(Error::ProviderUnavailable(format!(
            "Vault: the mount '{}' is KV v{actual}, but vault_kv_version is {configured}: set it \
             to {actual}, or leave it out to detect the version",
            self.mount
        )))
    }

    /// The secret's mount as a missing route, and what to check.
    fn mount_route(&self) -> (String, &'static str) {
        (
            format!("mount '{}'", shorten(&self.mount)),
            "check vault_mount or SIMPLETUNER_VAULT_MOUNT",
        )
    }

    /// What a 404 means: plain absence, a KV v2 mount read with a v1 path
    /// (the server's warning), or an error when its body names a missing
    /// route (`route`: what the path needs, such as a mount or an auth
    /// method, and what to do about it) or namespace.
    fn not_found(
        &self,
        r: &Response,
        what: &str,
        route: (String, &str),
    ) -> Result<Read, FetchError> {
        let namespace = self.namespace.as_deref().unwrap_or_default();
        let missing = |text: String| Err(FetchError::permanent(Error::ProviderUnavailable(text)));
        match not_found_kind(r) {
            NotFound::Absent => Ok(Read::Absent),
            NotFound::MountIsV2 => Ok(Read::MountIsV2),
            NotFound::NoNamespace => missing(format!(
                "{what}: the server has no namespace '{}' (check vault_namespace, \
                 VAULT_NAMESPACE or BAO_NAMESPACE)",
                shorten(namespace)
            )),
            NotFound::NoRoute => {
                let within = if namespace.is_empty() {
                    String::new()
                } else {
                    format!(" in namespace '{}'", shorten(namespace))
                };
                missing(format!(
                    "{what}: the server has no {}{within} ({})",
                    route.0, route.1
                ))
            }
            NotFound::Errors => Err(FetchError::permanent(Error::Remote(format!(
                "{what}: not found (HTTP 404){}",
                errors_summary(r)
            )))),
        }
    }

    fn kv_description(&self) -> String {
        match *self.kv.lock() {
            Kv::Known(v, how) => format!("KV v{v} ({how})"),
            Kv::Unknown { .. } => "KV version not detected yet".into(),
        }
    }
}

/// What a 404 answer says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotFound {
    /// Nothing more (`{"errors": []}`, a deleted KV v2 version): absent.
    Absent,
    /// A warning that the mount is KV v2 (a v1 path was read).
    MountIsV2,
    /// "namespace not found".
    NoNamespace,
    /// "no handler for route": no mount or auth method at that path.
    NoRoute,
    /// Other errors.
    Errors,
}

/// Reads a 404's body (Vault's and OpenBao's wording).
pub(crate) fn not_found_kind(r: &Response) -> NotFound {
    let Some(doc) = r.json() else {
        return NotFound::Absent;
    };
    let strings = |field: &str| -> Vec<String> {
        doc[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let errors = strings("errors");
    if errors.iter().any(|e| e.contains("namespace not found")) {
        NotFound::NoNamespace
    } else if errors.iter().any(|e| e.contains("no handler for route")) {
        NotFound::NoRoute
    } else if !errors.is_empty() {
        NotFound::Errors
    } else if strings("warnings")
        .iter()
        .any(|w| w.contains("versioned K/V"))
    {
        NotFound::MountIsV2
    } else {
        NotFound::Absent
    }
}

/// The KV version of a `sys/internal/ui/mounts/<mount>` answer, if it is a
/// KV mount.
fn mount_version(r: &Response) -> Option<u8> {
    let doc = r.json().unwrap_or(Value::Null);
    let version = &doc["data"]["options"]["version"];
    let version = version
        .as_str()
        .map(str::to_owned)
        .or_else(|| version.as_u64().map(|v| v.to_string()));
    match (doc["data"]["type"].as_str(), version.as_deref()) {
        (Some("kv"), Some("2")) => Some(2),
        (Some("kv") | Some("generic"), _) => Some(1),
        _ => None,
    }
}

/// The first of `vault` and `bao` that is set, with its name: OpenBao's own
/// variables, read after Vault's.
fn either<'v>(
    vars: &'v Vars,
    vault: &'static str,
    bao: &'static str,
) -> Option<(&'v str, &'static str)> {
    vars.get(vault)
        .map(|v| (v, vault))
        .or_else(|| vars.get(bao).map(|v| (v, bao)))
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
        )))
        .retry_after(r.retry_after()),
        429 => FetchError::transient(Error::Remote(text("too many requests")))
            .retry_after(r.retry_after()),
        500..=599 => FetchError::transient(Error::Remote(text("server error"))),
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

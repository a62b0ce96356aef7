//! The Azure Key Vault provider: secrets read with the REST API's
//! `GET {vault}/secrets/{name}[/{version}]?api-version=7.5` over `ureq`,
//! with a bearer token from Azure's credentials ([`identity`]) kept by
//! [`Keeper`], and the shared remote machinery ([`remote`]): one request
//! per TTL, refresh ahead, stale-on-error, retries, the node cache, the
//! fleet's admission.
//!
//! Key Vault names its token's tenant and scope in the `WWW-Authenticate`
//! challenge of a request sent without one: the first token of a process
//! (or of a node, with the node cache) follows one such request. The
//! challenge's scope must be the vault's host or a domain of it
//! (`https://vault.azure.net` for `https://v.vault.azure.net`), as Azure's
//! SDKs check; a challenge naming another host is refused, and its
//! authority is never where credentials go (they go to
//! `AZURE_AUTHORITY_HOST`).
//!
//! A secret is named `NAME` (its current version) or `NAME/VERSION`. Its
//! attributes are honoured: a disabled secret, one not valid yet (`nbf`)
//! or expired (`exp`) is an error naming it, never served. A value holding
//! a JSON object gives its keys (as an AWS secret's); any other value is
//! one value, under the secret's name (`hf-token` is `HF_TOKEN`).
//!
//! Configuration, each in this order:
//! - the vault: config `azure_vault`, `SIMPLETUNER_AZURE_VAULT_URL`;
//! - secrets: config `azure_secret` (a string or a list),
//!   `SIMPLETUNER_AZURE_SECRET` (comma-separated); the provider is
//!   available when both are set;
//! - credentials: [`identity`]'s order.

pub mod identity;

use crate::error::shorten;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::oauth::{oauth_failure, secure_url};
use crate::secrets::credential::{Issued, Issuer, Keeper};
use crate::secrets::provider::{zeroize_json, SecretMap, Version};
use crate::secrets::remote::kit::{self, Backend, Configured, Kit};
use crate::secrets::remote::source::{failed_line, line, push_line, Fetch, RemoteSource};
use crate::secrets::transport::http::{Http, Response, Trust};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The Key Vault REST API version requested.
pub const API_VERSION: &str = "7.5";

/// The Azure provider's settings: the configuration keys `azure_*`
/// (docs/configuration.md, "Configuration keys"). `None` falls back to the
/// environment, as the module documentation says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AzureSettings {
    /// The vault's URL (`azure_vault`): `https://NAME.vault.azure.net`.
    pub vault: Option<String>,
    /// The secrets, looked up in order (`azure_secret`).
    pub secrets: Option<Vec<String>>,
}

/// A secret as configured: `NAME` or `NAME/VERSION`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretName {
    name: String,
    version: Option<String>,
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}/{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl SecretName {
    /// Parses one configured name.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the item and what is wrong in it.
    pub fn parse(given: &str) -> Result<SecretName, Error> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "Azure secret '{}': {why} (NAME or NAME/VERSION)",
                shorten(given)
            ))
        };
        let (name, version) = match given.trim().split_once('/') {
            Some((n, v)) => (n, Some(v)),
            None => (given.trim(), None),
        };
        let name_ok = !name.is_empty()
            && name.len() <= 127
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok {
            return Err(bad("a secret's name has 1 to 127 letters, digits and -"));
        }
        if let Some(v) = version {
            if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("a version is Key Vault's 32 hexadecimal digits"));
            }
        }
        Ok(SecretName {
            name: name.to_owned(),
            version: version.map(str::to_ascii_lowercase),
        })
    }
}

/// A vault URL: `https://HOST[:PORT]` (http only to this host), with no
/// path; returned without a trailing `/`, with its host.
///
/// # Errors
/// [`Error::InvalidArgument`] naming what is wrong.
pub fn vault_url(url: &str) -> Result<(String, String), Error> {
    let url = url.trim().trim_end_matches('/');
    secure_url(url, "the Azure Key Vault URL")?;
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let bad = || {
        Error::InvalidArgument(format!(
            "the Azure Key Vault URL {} is not https://NAME.vault.azure.net (a host, no path)",
            redact_url(url)
        ))
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad());
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => rest.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((url.to_owned(), host.to_ascii_lowercase()))
}

/// What a vault's `401` says: the tenant and the scope of its tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The tenant of the challenge's authority (none for AD FS).
    pub tenant: Option<String>,
    /// The scope tokens are asked for (`https://vault.azure.net/.default`).
    pub scope: String,
}

/// The challenge of `header` (`Bearer authorization="https://login.
/// microsoftonline.com/TENANT", resource="https://vault.azure.net"`, or
/// with `scope=`), checked against the vault's `host`.
///
/// # Errors
/// [`Error::Auth`]: not a Bearer challenge, no authority or resource, or a
/// resource that is not the vault's host or a domain of it.
pub fn challenge_of(header: &str, host: &str) -> Result<Challenge, Error> {
    let refuse = |why: String| Error::Auth(format!("the vault's challenge {why}"));
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refuse(format!(
            "is not a Bearer challenge ('{}')",
            shorten(scheme)
        )));
    }
    let mut found = std::collections::HashMap::new();
    for item in params.split(',') {
        if let Some((k, v)) = item.split_once('=') {
            found.insert(
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            );
        }
    }
    let authority = found
        .get("authorization")
        .or_else(|| found.get("authorization_uri"))
        .ok_or_else(|| refuse("names no authority".into()))?;
    let tenant = authority
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').nth(1))
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("adfs"))
        .map(str::to_owned);
    if tenant
        .as_deref()
        .is_some_and(|t| !identity::valid_tenant(t))
    {
        return Err(refuse("names no tenant in its authority".into()));
    }
    let scope = match (found.get("scope"), found.get("resource")) {
        (Some(s), _) if !s.is_empty() => s.clone(),
        (_, Some(r)) if !r.is_empty() => format!("{}/.default", r.trim_end_matches('/')),
        _ => return Err(refuse("names no resource or scope".into())),
    };
    let resource_host = scope
        .strip_prefix("https://")
        .and_then(|r| r.split(['/', ':']).next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let ours = !resource_host.is_empty()
        && (host == resource_host || host.ends_with(&format!(".{resource_host}")));
    if !ours {
        return Err(refuse(format!(
            "names the resource '{}', which is not the vault's host {host} or a domain of it: \
             no token is asked for it",
            shorten(&scope)
        )));
    }
    Ok(Challenge { tenant, scope })
}

/// The token issuer of one vault: its challenge, asked once (a request
/// without a token), then the credential's token for its scope.
struct VaultIssuer {
    credential: identity::Credential,
    challenge: Arc<Mutex<Option<Challenge>>>,
    vault: String,
    host: String,
    http: Arc<Http>,
    settings: RemoteSettings,
}

impl VaultIssuer {
    fn challenge(&self) -> Result<Challenge, FetchError> {
        if let Some(c) = self.challenge.lock().clone() {
            return Ok(c);
        }
        let url = format!(
            "{}/secrets?api-version={API_VERSION}&maxresults=1",
            self.vault
        );
        let what = "Key Vault challenge";
        let c = with_retries(&self.settings, || {
            let r = self.http.send(what, "GET", &url, &[], b"")?;
            match (r.status, r.header("www-authenticate")) {
                (401, Some(h)) => challenge_of(h, &self.host).map_err(FetchError::permanent),
                (401, None) => Err(FetchError::permanent(Error::Auth(format!(
                    "{what}: HTTP 401 without WWW-Authenticate: {} is not a Key Vault",
                    redact_url(&self.vault)
                )))),
                (200..=299, _) => Err(FetchError::permanent(Error::Auth(format!(
                    "{what}: {} answered a request without a token: it is not a Key Vault",
                    redact_url(&self.vault)
                )))),
                _ => Err(oauth_failure(what, &r)),
            }
        })?;
        *self.challenge.lock() = Some(c.clone());
        Ok(c)
    }
}

impl Issuer<SecretString> for VaultIssuer {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let c = self.challenge()?;
        self.credential.token(&c.scope, c.tenant.as_deref())
    }

    fn describe(&self) -> String {
        self.credential.describe()
    }
}

/// Everything needed to call the vault, once the configuration resolved.
struct Client {
    http: Arc<Http>,
    bearer: Arc<Keeper<SecretString>>,
    challenge: Arc<Mutex<Option<Challenge>>>,
    vault: String,
    host: String,
}

/// Azure Key Vault, as [`RemoteSource`] fetches from it.
pub struct Azure {
    client: Client,
    settings: RemoteSettings,
}

/// The Azure Key Vault provider.
pub type AzureProvider = RemoteSource<Azure>;

impl Backend for Azure {
    type Settings = AzureSettings;
    /// The vault's URL.
    type Found = String;

    fn configured(
        azure: &AzureSettings,
        _remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<SecretName, String>, Error> {
        let parsed = kit::listed(
            azure.secrets.as_deref(),
            vars,
            var::SIMPLETUNER_AZURE_SECRET,
            SecretName::parse,
        );
        let vault = azure.vault.clone().or_else(|| {
            vars.get(var::SIMPLETUNER_AZURE_VAULT_URL)
                .map(str::to_owned)
        });
        Ok(match (parsed, vault) {
            (Ok(Some(names)), Some(vault)) => Configured::Yes {
                names,
                found: vault,
            },
            // A malformed list: not configured, saying why.
            (Err(why), _) => Configured::No {
                why,
                in_part: false,
            },
            (Ok(_), _) => Configured::No {
                why: Error::ProviderUnavailable(format!(
                    "Azure Key Vault is not configured: set azure_vault or {} and azure_secret \
                     or {}",
                    var::SIMPLETUNER_AZURE_VAULT_URL,
                    var::SIMPLETUNER_AZURE_SECRET
                )),
                in_part: false,
            },
        })
    }

    fn connect(_azure: &AzureSettings, vault: String, kit: &Kit<'_>) -> Result<Azure, Error> {
        Ok(Azure {
            client: client(&vault, kit)?,
            settings: kit.remote.clone(),
        })
    }
}

/// The client: HTTP, credentials and the vault.
fn client(vault: &str, kit: &Kit<'_>) -> Result<Client, Error> {
    let (remote, vars) = (kit.remote, &kit.vars);
    let (vault, host) = vault_url(vault)?;
    let http = Arc::new(Http::new(remote, &Trust::Default, "")?);
    // Managed identity endpoints answer on the host: short timeouts.
    let managed_settings = RemoteSettings {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        ..remote.clone()
    };
    let managed = Arc::new(Http::new(&managed_settings, &Trust::Default, "")?);
    let credential = identity::find(vars, &http, remote, &managed, &managed_settings)?;
    let slot = kit
        .slot("token", &[("token", &credential.describe())])
        .map(|slot| (slot, remote.clone()));
    kit.share_pace(&http, &vault);
    let challenge = Arc::new(Mutex::new(None));
    let issuer = VaultIssuer {
        credential,
        challenge: Arc::clone(&challenge),
        vault: vault.clone(),
        host: host.clone(),
        http: Arc::clone(&http),
        settings: remote.clone(),
    };
    Ok(Client {
        http,
        bearer: Keeper::new("azure", Box::new(issuer), slot),
        challenge,
        vault,
        host,
    })
}

impl Client {
    fn url(&self, s: &SecretName) -> String {
        format!(
            "{}/secrets/{}/{}?api-version={API_VERSION}",
            self.vault,
            s.name,
            s.version.as_deref().unwrap_or("")
        )
    }

    /// One GET of `s` with the token held; a token the vault refuses is
    /// replaced once, after the vault's new challenge is read (a vault
    /// moved to another tenant names it there).
    fn get(&self, s: &SecretName) -> Result<Response, FetchError> {
        let url = self.url(s);
        let send = |token: &SecretString| {
            let auth = SecretString::from(format!("Bearer {}", token.expose()));
            self.http.send(
                "GetSecret",
                "GET",
                &url,
                &[("authorization", auth.expose())],
                b"",
            )
        };
        let token = self.bearer.get()?;
        let r = send(&token)?;
        if r.status != 401 {
            return Ok(r);
        }
        if let Some(h) = r.header("www-authenticate") {
            let c = challenge_of(h, &self.host).map_err(FetchError::permanent)?;
            *self.challenge.lock() = Some(c);
        }
        let token = self.bearer.instead_of(&token)?;
        send(&token)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A time in seconds since the epoch, as RFC 3339.
fn when(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| format!("{secs} s after the epoch"))
}

/// The secret in a GET answer for `s`.
pub(crate) fn secret_from(s: &SecretName, r: Response) -> Result<Fetched<SecretMap>, FetchError> {
    let what = format!("GetSecret of secret '{s}'");
    if r.status != 200 {
        let doc = r.json().unwrap_or(Value::Null);
        let inner = doc["error"]["innererror"]["code"]
            .as_str()
            .unwrap_or_default();
        return match (r.status, inner) {
            (404, _) => Ok(Fetched::Absent),
            (403, "SecretDisabled") => Err(disabled(&what)),
            (403, "SecretExpired") => Err(FetchError::permanent(Error::Remote(format!(
                "{what}: the secret expired (exp); name another version"
            )))),
            _ => Err(oauth_failure(&what, &r)),
        };
    }
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(format!(
            "{what}: the answer is not JSON"
        ))));
    };
    let out = read_secret(s, &what, &doc);
    zeroize_json(&mut doc);
    out.map(Fetched::Found)
}

fn disabled(what: &str) -> FetchError {
    FetchError::permanent(Error::Remote(format!(
        "{what}: the secret is disabled; enable it or name another version (no other version \
         is read in its place)"
    )))
}

/// The value of a GET answer `doc`, its attributes honoured.
fn read_secret(s: &SecretName, what: &str, doc: &Value) -> Result<SecretMap, FetchError> {
    let attributes = &doc["attributes"];
    if attributes["enabled"] == Value::Bool(false) {
        return Err(disabled(what));
    }
    let now = now_secs();
    if let Some(nbf) = attributes["nbf"].as_u64().filter(|n| *n > now) {
        return Err(FetchError::permanent(Error::Remote(format!(
            "{what}: the secret is not valid before {} (nbf)",
            when(nbf)
        ))));
    }
    if let Some(exp) = attributes["exp"].as_u64().filter(|e| *e <= now) {
        return Err(FetchError::permanent(Error::Remote(format!(
            "{what}: the secret expired at {} (exp)",
            when(exp)
        ))));
    }
    let Some(text) = doc["value"].as_str() else {
        return Err(FetchError::permanent(Error::Parse(format!(
            "{what}: the answer holds no value"
        ))));
    };
    // The version the vault served, from its id (…/secrets/NAME/VERSION).
    let version = doc["id"]
        .as_str()
        .and_then(|id| id.rsplit_once('/'))
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
        .map(|id| Version {
            stages: Vec::new(),
            id,
            instead_of: None,
            leased: false,
            ends: None,
        });
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => SecretMap::from_json_object(map),
        Ok(mut other) => {
            zeroize_json(&mut other);
            one_value(s, text)
        }
        Err(_) => one_value(s, text),
    };
    Ok(map.with_version(version))
}

/// A value that is not a JSON object: one value, under the secret's name.
fn one_value(s: &SecretName, text: &str) -> SecretMap {
    let mut map = SecretMap::with_capacity(1);
    map.insert(s.name.clone(), text.to_owned());
    map
}

impl Fetch for Azure {
    const NAME: &'static str = "azure";
    const ABSENT: &'static str = "the secret or the version does not exist";
    type Secret = SecretName;

    fn fetch(&self, s: &SecretName) -> Result<Fetched<SecretMap>, FetchError> {
        with_retries(&self.settings, || {
            let r = self.client.get(s)?;
            secret_from(s, r)
        })
    }

    fn unusable(names: &[SecretName], error: &Error) -> String {
        format!("secret {}: {error}", quoted(names))
    }

    fn describe(&self, names: &[SecretName]) -> (String, Vec<String>) {
        let head = format!(
            "secret {} in {}; credentials: {}",
            quoted(names),
            redact_url(&self.client.vault),
            self.client.bearer.describe("token")
        );
        (head, Vec::new())
    }

    fn checks(&self, names: &[SecretName]) -> Value {
        let c = &self.client;
        let secret = names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let credentials = c.bearer.describe("token");
        let vault = redact_url(&c.vault);
        let mut out = json!({
            "secret": secret,
            "vault": vault,
            "credentials": credentials,
            "lines": [
                line("secret", &secret, None),
                line("vault", &vault, None),
                line("credentials", &credentials, None),
            ],
        });
        match c.bearer.get() {
            Ok(_) => {
                let scope = c.challenge.lock().as_ref().map(|c| c.scope.clone());
                let scope = scope.unwrap_or_else(|| "of another process".to_owned());
                push_line(
                    &mut out,
                    line("token", format!("issued (scope {scope})"), None),
                );
                out["token"] = json!("issued");
            }
            Err(f) => {
                push_line(&mut out, failed_line("token", "NONE", "token", &f.error));
                out["token_error"] = f.error.to_json();
            }
        }
        out
    }
}

/// The names, quoted and joined for messages: `'a'`, `'a', then 'b'`.
fn quoted(names: &[SecretName]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", then ")
}

#[cfg(test)]
mod tests;

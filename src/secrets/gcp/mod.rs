//! The GCP Secret Manager provider: secret versions read with the REST
//! API's `access` (`GET /v1/projects/P/secrets/S/versions/V:access`, or a
//! regional endpoint's `projects/P/locations/L/...`) over `ureq`, with a
//! bearer token from Google's credentials ([`credentials`]) kept by
//! [`Keeper`], and the shared remote machinery ([`remote`]): one request per
//! TTL, refresh ahead, stale-on-error, retries, the node cache, the fleet's
//! admission.
//!
//! A secret is named as Google names it, `projects/P/secrets/S`, with
//! `/versions/V` (a number or an alias; `latest` when absent) and with
//! `locations/L/` for a regional secret, or by its id `S` alone (and
//! `S/versions/V`) in the project configured. `latest` is what Google
//! documents: the most recently created version; when that one is
//! disabled, the read is an error naming the version, never the version
//! before. The payload's CRC32C is checked when the service sends it. A
//! payload holding a JSON object gives its keys (as an AWS secret's); any
//! other payload is one value, under the secret's id as its key.
//!
//! Configuration, each in this order:
//! - secrets: config `gcp_secret` (a string or a list),
//!   `SIMPLETUNER_GCP_SECRET` (comma-separated); the provider is available
//!   when one is set;
//! - project (for secrets named by id): config `gcp_project`,
//!   `GOOGLE_CLOUD_PROJECT`, the credentials file's `project_id`, the
//!   metadata server's project;
//! - location (a regional endpoint for secrets named by id): config
//!   `gcp_location`, `SIMPLETUNER_GCP_LOCATION`;
//! - endpoint: config `gcp_endpoint`, `SIMPLETUNER_GCP_ENDPOINT`, else
//!   Google's (`https://secretmanager.googleapis.com`, or
//!   `https://secretmanager.L.rep.googleapis.com` for location L);
//! - credentials: [`credentials`]'s order.

mod aws_subject;
pub mod credentials;
pub mod external;
pub mod google;

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::oauth;
use crate::secrets::credential::Keeper;
use crate::secrets::provider::{zeroize_json, SecretMap, Version};
use crate::secrets::remote::kit::{self, Backend, Configured, Kit};
use crate::secrets::remote::source::{failed_line, line, push_line, Fetch, RemoteSource};
use crate::secrets::transport::http::{Http, Response, Trust};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use crate::sys::Mutex;
use base64::Engine;
use google::valid_project;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// `remote` for the metadata server, which answers on the node: short
/// timeouts, as google-auth's 3 s.
pub(crate) fn metadata_settings(remote: &RemoteSettings) -> RemoteSettings {
    RemoteSettings {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        ..remote.clone()
    }
}

/// How long a process waits for a metadata server that does not answer
/// yet before its first token, by default.
pub const DEFAULT_METADATA_WAIT: Duration = Duration::from_secs(30);

/// The GCP provider's settings: the configuration keys `gcp_*`
/// (docs/configuration.md, "Configuration keys"). `None` falls back to the
/// environment, as the module documentation says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcpSettings {
    /// The secrets, looked up in order (`gcp_secret`).
    pub secrets: Option<Vec<String>>,
    /// The project of secrets named by id (`gcp_project`).
    pub project: Option<String>,
    /// The location of secrets named by id: a regional endpoint
    /// (`gcp_location`).
    pub location: Option<String>,
    /// The Secret Manager endpoint (`gcp_endpoint`).
    pub endpoint: Option<String>,
    /// How long a process waits for the metadata server before its first
    /// token (`gcp_metadata_wait`): 30 s.
    pub metadata_wait: Option<Duration>,
}

/// A secret version as configured: `projects/P/[locations/L/]secrets/S[/versions/V]`,
/// or `S[/versions/V]` in the configured project and location.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// As configured (its `Display`, and its node cache entry's name).
    given: String,
    project: Option<String>,
    location: Option<String>,
    secret: String,
    version: String,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

fn valid_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl SecretRef {
    /// Parses one configured name.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the item and what is wrong in it.
    pub fn parse(given: &str) -> Result<SecretRef, Error> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "GCP secret '{}': {why} (projects/P/secrets/S[/versions/V], \
                 projects/P/locations/L/secrets/S[/versions/V], or S[/versions/V])",
                crate::error::shorten(given)
            ))
        };
        let parts: Vec<&str> = given.trim().split('/').collect();
        let (project, location, rest) = match parts.as_slice() {
            ["projects", p, "locations", l, "secrets", rest @ ..] => (Some(*p), Some(*l), rest),
            ["projects", p, "secrets", rest @ ..] => (Some(*p), None, rest),
            ["projects", ..] => return Err(bad("not a secret's resource name")),
            rest => (None, None, rest),
        };
        let (secret, version) = match rest {
            [s] => (*s, "latest"),
            [s, "versions", v] => (*s, *v),
            _ => return Err(bad("not a secret's name")),
        };
        if !valid_id(secret, 255) {
            return Err(bad("a secret id has 1 to 255 letters, digits, - and _"));
        }
        if !valid_id(version, 63) {
            return Err(bad("a version is a number, latest, or an alias"));
        }
        if let Some(p) = project.filter(|p| !valid_project(p)) {
            let _ = p;
            return Err(bad("the project is not a project ID"));
        }
        if location.is_some_and(|l| !valid_location(l)) {
            return Err(bad(
                "the location is not a location (us-east1, europe-west4, ...)",
            ));
        }
        Ok(SecretRef {
            given: given.trim().to_owned(),
            project: project.map(str::to_owned),
            location: location.map(str::to_owned),
            secret: secret.to_owned(),
            version: version.to_owned(),
        })
    }
}

fn valid_location(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Everything needed to call the service, once the configuration resolved.
struct Client {
    http: Arc<Http>,
    bearer: Arc<Keeper<SecretString>>,
    endpoint: Option<String>,
    location: Option<String>,
    /// The project of secrets named by id, when configuration or the
    /// credentials name it; else asked of the metadata server once.
    project: Option<String>,
    asked_project: Mutex<Option<String>>,
    metadata: Arc<Http>,
    metadata_settings: RemoteSettings,
    vars: Arc<Vars>,
    origin: credentials::Origin,
}

/// GCP Secret Manager, as [`RemoteSource`] fetches from it.
pub struct Gcp {
    client: Client,
    settings: RemoteSettings,
}

/// The GCP Secret Manager provider.
pub type GcpProvider = RemoteSource<Gcp>;

impl Backend for Gcp {
    type Settings = GcpSettings;
    type Found = ();

    fn configured(
        gcp: &GcpSettings,
        _remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<SecretRef, ()>, Error> {
        let parsed = kit::listed(
            gcp.secrets.as_deref(),
            vars,
            var::SIMPLETUNER_GCP_SECRET,
            SecretRef::parse,
        );
        Ok(match parsed {
            Ok(Some(names)) => Configured::Yes { names, found: () },
            // A malformed list: not configured, saying why.
            Err(why) => Configured::No {
                why,
                in_part: false,
            },
            Ok(None) => Configured::No {
                why: Error::ProviderUnavailable(format!(
                    "GCP Secret Manager is not configured: set gcp_secret or {}",
                    var::SIMPLETUNER_GCP_SECRET
                )),
                in_part: false,
            },
        })
    }

    fn connect(gcp: &GcpSettings, _: (), kit: &Kit<'_>) -> Result<Gcp, Error> {
        Ok(Gcp {
            client: client(gcp, kit)?,
            settings: kit.remote.clone(),
        })
    }
}

/// The client: HTTP, credentials and where requests go.
fn client(gcp: &GcpSettings, kit: &Kit<'_>) -> Result<Client, Error> {
    let (remote, vars) = (kit.remote, kit.vars.clone());
    let endpoint = gcp
        .endpoint
        .as_deref()
        .or_else(|| vars.get(var::SIMPLETUNER_GCP_ENDPOINT))
        .map(|e| e.trim_end_matches('/').to_owned());
    if let Some(e) = &endpoint {
        oauth::secure_url(e, "the GCP Secret Manager endpoint")?;
    }
    let location = gcp
        .location
        .clone()
        .or_else(|| vars.get(var::SIMPLETUNER_GCP_LOCATION).map(str::to_owned));
    if let Some(l) = location.as_deref().filter(|l| !valid_location(l)) {
        return Err(Error::InvalidArgument(format!(
            "the GCP location '{}' is not a location (us-east1, europe-west4, ...)",
            crate::error::shorten(l)
        )));
    }
    let http = Arc::new(Http::new(remote, &Trust::Default, "")?);
    let metadata_settings = metadata_settings(remote);
    let metadata = Arc::new(Http::new(&metadata_settings, &Trust::Default, "")?);
    let wait = gcp.metadata_wait.unwrap_or(DEFAULT_METADATA_WAIT);
    let found = credentials::find(&vars, &http, remote, wait, &metadata, &metadata_settings)?;
    let origin = format!("{:?}", found.origin);
    let slot = kit
        .slot("token", &[("token", &origin)])
        .map(|slot| (slot, remote.clone()));
    if let Some(e) = &endpoint {
        kit.share_pace(&http, e);
    }
    let project = gcp
        .project
        .clone()
        .or_else(|| vars.get(var::GOOGLE_CLOUD_PROJECT).map(str::to_owned))
        .or(found.project);
    if let Some(p) = project.as_deref().filter(|p| !valid_project(p)) {
        return Err(Error::InvalidArgument(format!(
            "the GCP project '{}' is not a project ID",
            crate::error::shorten(p)
        )));
    }
    Ok(Client {
        http,
        bearer: Keeper::new("gcp", found.issuer, slot),
        endpoint,
        location,
        project,
        asked_project: Mutex::new(None),
        metadata,
        metadata_settings,
        vars: Arc::new(vars),
        origin: found.origin,
    })
}

impl Client {
    /// The project of `s`: its own, else the configured one, else the
    /// metadata server's (asked until it answers once).
    fn project_of(&self, s: &SecretRef) -> Result<String, FetchError> {
        if let Some(p) = s.project.as_deref().or(self.project.as_deref()) {
            return Ok(p.to_owned());
        }
        let mut asked = self.asked_project.lock();
        if let Some(p) = asked.as_ref() {
            return Ok(p.clone());
        }
        let p = credentials::metadata_project(&self.vars, &self.metadata, &self.metadata_settings)
            .map_err(|f| FetchError {
                error: f.error.with_note(format!(
                    "GCP secret '{s}' names no project: set gcp_project or {}, or name it \
                     projects/P/secrets/S",
                    var::GOOGLE_CLOUD_PROJECT
                )),
                ..f
            })?;
        *asked = Some(p.clone());
        Ok(p)
    }

    /// The version's resource name and the URL of its `access`.
    fn access_url(&self, s: &SecretRef) -> Result<(String, String), FetchError> {
        let project = self.project_of(s)?;
        let location = s.location.as_deref().or(match s.project {
            // A full name without a location is global, whatever is configured.
            Some(_) => None,
            None => self.location.as_deref(),
        });
        let name = match location {
            Some(l) => format!(
                "projects/{project}/locations/{l}/secrets/{}/versions/{}",
                s.secret, s.version
            ),
            None => format!(
                "projects/{project}/secrets/{}/versions/{}",
                s.secret, s.version
            ),
        };
        let base = match (&self.endpoint, location) {
            (Some(e), _) => e.clone(),
            (None, Some(l)) => format!("https://secretmanager.{l}.rep.googleapis.com"),
            (None, None) => "https://secretmanager.googleapis.com".to_owned(),
        };
        Ok((format!("{base}/v1/{name}:access"), name))
    }

    /// One `access` of `s` with the token held, replaced once when the
    /// service refuses it.
    fn access(&self, s: &SecretRef) -> Result<Response, FetchError> {
        let (url, _) = self.access_url(s)?;
        let send = |token: &SecretString| {
            let auth = SecretString::from(format!("Bearer {}", token.expose()));
            self.http.send(
                "AccessSecretVersion",
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
        let token = self.bearer.instead_of(&token)?;
        send(&token)
    }
}

/// The secret in an `access` answer of `s`.
pub(crate) fn secret_from(s: &SecretRef, r: Response) -> Result<Fetched<SecretMap>, FetchError> {
    let what = format!("AccessSecretVersion of secret '{s}'");
    if r.status != 200 {
        return match r.status {
            404 => Ok(Fetched::Absent),
            400 if r.body.expose().windows(8).any(|w| w == b"DISABLED") => {
                Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: version '{}' is disabled; enable it or name another version \
                     (no other version is read in its place)",
                    s.version
                ))))
            }
            400 if r.body.expose().windows(9).any(|w| w == b"DESTROYED") => {
                Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: version '{}' is destroyed; name another version",
                    s.version
                ))))
            }
            _ => Err(oauth::oauth_failure(&what, &r)),
        };
    }
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(format!(
            "{what}: the answer is not JSON"
        ))));
    };
    let out = read_payload(s, &what, &doc);
    zeroize_json(&mut doc);
    out.map(Fetched::Found)
}

/// The payload of an `access` answer `doc`, checked and read into keys.
fn read_payload(s: &SecretRef, what: &str, doc: &Value) -> Result<SecretMap, FetchError> {
    let parse = |m: String| FetchError::permanent(Error::Parse(format!("{what}: {m}")));
    let data = doc["payload"]["data"].as_str().unwrap_or_default();
    let bytes = crate::secret::SecretBytes::from(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| parse("the payload is not base64".into()))?,
    );
    // dataCrc32c: an int64 as a JSON string (or number), when sent.
    let sent_crc = match &doc["payload"]["dataCrc32c"] {
        Value::String(t) => Some(t.parse::<u64>().ok()),
        Value::Number(n) => Some(n.as_u64()),
        _ => None,
    };
    if let Some(crc) = sent_crc {
        if crc != Some(u64::from(crc32c(bytes.expose()))) {
            // Corrupted on its way (or a proxy's doing): asked again.
            return Err(FetchError::transient(Error::Remote(format!(
                "{what}: the payload does not match its CRC32C (dataCrc32c)"
            ))));
        }
    }
    let text = std::str::from_utf8(bytes.expose())
        .map_err(|_| parse("the payload is not UTF-8 text".into()))?;
    // The version number the service resolved, from its name.
    let number = doc["name"]
        .as_str()
        .and_then(|n| n.rsplit_once("/versions/"))
        .map(|(_, v)| v.to_owned());
    let version = number.map(|id| Version {
        stages: match id == s.version {
            true => Vec::new(),
            false => vec![s.version.clone()],
        },
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

/// A payload that is not a JSON object: one value, under the secret's id.
fn one_value(s: &SecretRef, text: &str) -> SecretMap {
    let mut map = SecretMap::with_capacity(1);
    map.insert(s.secret.clone(), text.to_owned());
    map
}

/// CRC32C (Castagnoli), the checksum Secret Manager sends.
fn crc32c(bytes: &[u8]) -> u32 {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    CASTAGNOLI.checksum(bytes)
}

impl Fetch for Gcp {
    const NAME: &'static str = "gcp";
    const ABSENT: &'static str = "the secret or the version does not exist";
    type Secret = SecretRef;

    fn fetch(&self, s: &SecretRef) -> Result<Fetched<SecretMap>, FetchError> {
        with_retries(&self.settings, || {
            let r = self.client.access(s)?;
            secret_from(s, r)
        })
    }

    fn unusable(names: &[SecretRef], error: &Error) -> String {
        format!("secret {}: {error}", quoted(names))
    }

    fn describe(&self, names: &[SecretRef]) -> (String, Vec<String>) {
        let c = &self.client;
        let project = c.project.as_deref().unwrap_or("the metadata server's");
        let endpoint = match (&c.endpoint, &c.location) {
            (Some(e), _) => redact_url(e),
            (None, Some(l)) => format!("https://secretmanager.{l}.rep.googleapis.com"),
            (None, None) => "https://secretmanager.googleapis.com".to_owned(),
        };
        let head = format!(
            "secret {} in project {project} at {endpoint}; credentials: {}",
            quoted(names),
            c.bearer.describe("token")
        );
        (head, Vec::new())
    }

    fn checks(&self, names: &[SecretRef]) -> Value {
        let c = &self.client;
        let secret = names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let credentials = c.bearer.describe("token");
        let mut out = json!({
            "secret": secret,
            "credentials": credentials,
            "origin": format!("{:?}", c.origin),
            "lines": [
                line("secret", &secret, None),
                line("credentials", &credentials, None),
            ],
        });
        match names.first().map(|s| c.access_url(s)) {
            Some(Ok((_, name))) => {
                push_line(&mut out, line("first version", &name, None));
                out["first_version"] = json!(name);
            }
            Some(Err(f)) => {
                push_line(
                    &mut out,
                    failed_line("project", "unknown", "project", &f.error),
                );
                out["project_error"] = f.error.to_json();
            }
            None => {}
        }
        match c.bearer.get() {
            Ok(_) => {
                push_line(&mut out, line("token", "issued", None));
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
fn quoted(names: &[SecretRef]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", then ")
}

#[cfg(test)]
mod tests;

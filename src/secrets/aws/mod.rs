//! The AWS Secrets Manager provider: secrets holding JSON objects of keys,
//! fetched with `GetSecretValue` (JSON 1.1 protocol) over `ureq`, signed
//! with SigV4 (the `aws-sigv4` crate), with the AWS credential chain
//! ([`credentials`]) and the shared remote machinery ([`remote`](crate::secrets::remote)):
//! one request per TTL, stale-on-error, retries, short timeouts. Several
//! secrets are looked up in order, each fetched and cached as one unit
//! ([`Sources`](crate::secrets::remote::sources::Sources)). With
//! `aws_agent_url` the requests go to the AWS Secrets Manager Agent on the
//! node instead ([`agent`]).
//!
//! Configuration, each in this order:
//! - secret names: config `aws_secret_name` (a string or a list),
//!   `SIMPLETUNER_AWS_SECRET_NAME` (comma-separated); the provider is
//!   available when one is set;
//! - the agent: config `aws_agent_url`, `SIMPLETUNER_AWS_AGENT_URL`; its
//!   token `AWS_TOKEN` (or `file://PATH`), `/var/run/awssmatoken`;
//! - without the agent, region: config `aws_region`, `AWS_REGION`,
//!   `AWS_DEFAULT_REGION`, the profile's `region` in `~/.aws/config`
//!   (`AWS_CONFIG_FILE`, `AWS_PROFILE`);
//! - endpoint: config `aws_endpoint`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`,
//!   `AWS_ENDPOINT_URL`, else `https://secretsmanager.<region>.amazonaws.com`;
//! - TLS trust: `AWS_CA_BUNDLE`, else Mozilla's roots.

pub(crate) mod agent;
pub(crate) mod credentials;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod process;
pub(crate) mod profile;
pub(crate) mod sso;
pub(crate) mod sts;
pub(crate) mod wire;

use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, KeyChange, SecretMap, Version};
use crate::secrets::provider::{Provider, ProviderStatus};
use crate::secrets::remote::http::{redact_url, Http, Response, Trust};
use crate::secrets::remote::node::{NodeUse, Scope};
use crate::secrets::remote::secret_cache::Fetched;
use crate::secrets::remote::sources::{self, Sources};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{with_retries, FetchError, RemoteSettings, Vars};
use base64::Engine;
use credentials::CredentialChain;
use identity::Credentials;
use serde_json::{json, Value};
use std::sync::Arc;
use wire::ServiceError;

/// The AWS provider's settings: the configuration keys `aws_*` (docs/configuration.md,
/// "Configuration keys"). `None` falls back to the environment, as the module
/// documentation says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The secrets' names or ARNs, looked up in order (`aws_secret_name`).
    pub secret_names: Option<Vec<String>>,
    /// The AWS Secrets Manager Agent to send requests to instead of the
    /// service (`aws_agent_url`).
    pub agent_url: Option<String>,
    /// The region (`aws_region`).
    pub region: Option<String>,
    /// The Secrets Manager endpoint URL (`aws_endpoint`).
    pub endpoint: Option<String>,
}

/// Everything needed to call the service, once the configuration resolved.
struct Client {
    http: Arc<Http>,
    credentials: CredentialChain,
    region: String,
    endpoint: String,
}

/// How the provider reaches Secrets Manager.
enum Transport {
    /// The service itself, with signed requests.
    Direct(Client),
    /// The AWS Secrets Manager Agent on the node.
    Agent(agent::Agent),
}

/// The AWS Secrets Manager provider.
pub struct AwsProvider {
    /// The secrets, in order; `None` when no name is configured.
    sources: Option<Sources>,
    client: Result<Transport, Error>,
    settings: RemoteSettings,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sources.iter().flat_map(Sources::names).collect();
        f.debug_struct("AwsProvider")
            .field("secret_names", &names)
            .finish_non_exhaustive()
    }
}

/// Where the resolved region came from.
fn resolve_region(aws: &AwsSettings, vars: &Vars) -> Result<Option<String>, Error> {
    if let Some(r) = aws
        .region
        .as_deref()
        .or_else(|| vars.get(var::AWS_REGION))
        .or_else(|| vars.get(var::AWS_DEFAULT_REGION))
    {
        return Ok(Some(r.to_owned()));
    }
    let Some(path) = vars.aws_file(var::AWS_CONFIG_FILE, "config") else {
        return Ok(None);
    };
    let name = vars.get(var::AWS_PROFILE).unwrap_or("default");
    Ok(profile::load(&path, profile::FileKind::Config, name)?
        .and_then(|p| p.get("region").map(str::to_owned)))
}

impl AwsProvider {
    /// The provider for `aws`, reading `vars` (see the module
    /// documentation). Configuration problems (no region, unreadable CA
    /// bundle) do not fail here: the provider reports them on every lookup and
    /// in its status, and the rest of the chain keeps working.
    pub fn new(aws: &AwsSettings, remote: &RemoteSettings, vars: Vars) -> AwsProvider {
        let names = aws
            .secret_names
            .clone()
            .or_else(|| vars.list(var::SIMPLETUNER_AWS_SECRET_NAME));
        let agent_url = aws
            .agent_url
            .clone()
            .or_else(|| vars.get(var::SIMPLETUNER_AWS_AGENT_URL).map(str::to_owned));
        let node = match names {
            Some(_) => NodeUse::resolve(remote, &vars),
            None => NodeUse::Off,
        };
        let scope = Scope::new("aws", &vars)
            .with("settings", &format!("{aws:?}"))
            .with("agent", agent_url.as_deref().unwrap_or(""));
        let client = match (&names, agent_url) {
            (None, _) => Err(Error::ProviderUnavailable(format!(
                "AWS Secrets Manager is not configured: set aws_secret_name or {}",
                var::SIMPLETUNER_AWS_SECRET_NAME
            ))),
            (Some(_), Some(url)) => agent_transport(&url, remote, &vars),
            (Some(_), None) => Self::client(aws, remote, vars).map(Transport::Direct),
        };
        AwsProvider {
            sources: names.map(|n| Sources::new(&n, remote).shared(node, &scope)),
            client,
            settings: remote.clone(),
        }
    }

    fn client(aws: &AwsSettings, remote: &RemoteSettings, vars: Vars) -> Result<Client, Error> {
        let region = resolve_region(aws, &vars)?.ok_or_else(|| {
            Error::ProviderUnavailable(
                "no AWS region: set aws_region, AWS_REGION or AWS_DEFAULT_REGION, or a region \
                 in the profile of ~/.aws/config"
                    .into(),
            )
        })?;
        let endpoint = aws
            .endpoint
            .as_deref()
            .or_else(|| vars.get(var::AWS_ENDPOINT_URL_SECRETS_MANAGER))
            .or_else(|| vars.get(var::AWS_ENDPOINT_URL))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let trust = vars
            .get(var::AWS_CA_BUNDLE)
            .map_or(Trust::Default, |p| Trust::Bundle(expand_home(p.into())));
        let http = Arc::new(Http::new(remote, &trust, var::AWS_CA_BUNDLE)?);
        let vars = Arc::new(vars);
        Ok(Client {
            credentials: CredentialChain::new(
                vars,
                Arc::clone(&http),
                remote.clone(),
                Some(region.clone()),
            )?,
            http,
            region,
            endpoint,
        })
    }

    /// Requests for the secret sent so far (fetches, each with its retries;
    /// cache hits send none).
    pub fn requests(&self) -> u64 {
        self.sources.as_ref().map_or(0, Sources::requests)
    }

    /// Fetches the secret `name` now, bypassing the cache.
    fn fetch(&self, transport: &Transport, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        match transport {
            Transport::Direct(client) => self.fetch_direct(client, name),
            Transport::Agent(agent) => with_retries(&self.settings, || agent.fetch(name)),
        }
    }

    /// Fetches the secret `name` from the service: its `AWSCURRENT` version,
    /// asked for by name (the service's default, and what a server that
    /// loses track of its default version after a rotation, as moto's does,
    /// still answers right).
    fn fetch_direct(&self, client: &Client, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        let body = json!({ "SecretId": name, "VersionStage": "AWSCURRENT" }).to_string();
        let call = |creds: &Credentials| {
            client.call(
                creds,
                "secretsmanager",
                "GetSecretValue",
                &client.endpoint,
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", "secretsmanager.GetSecretValue"),
                ],
                body.as_bytes(),
            )
        };
        with_retries(&self.settings, || {
            let creds = client.credentials.get()?;
            match secret_from(name, call(&creds)?) {
                // Temporary credentials the service calls expired (a clock
                // skew, or revoked early): fetch new ones and try once more.
                Err(Refusal::ExpiredCredentials(_)) if creds.expires.is_some() => {
                    client.credentials.invalidate();
                    let creds = client.credentials.get()?;
                    secret_from(name, call(&creds)?).map_err(Refusal::into_fetch_error)
                }
                other => other.map_err(Refusal::into_fetch_error),
            }
        })
    }

    /// The caller identity (STS `GetCallerIdentity`) of `creds`.
    fn caller_identity(&self, client: &Client, creds: &Credentials) -> Result<Value, FetchError> {
        let url = client.credentials.sts_endpoint();
        let body = wire::form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]);
        let r = with_retries(&self.settings, || {
            wire::require_success(
                "STS GetCallerIdentity",
                client.call(
                    creds,
                    "sts",
                    "STS GetCallerIdentity",
                    &url,
                    &[wire::FORM_CONTENT_TYPE],
                    body.as_bytes(),
                )?,
            )
        })?;
        let text = String::from_utf8_lossy(r.body.expose());
        Ok(json!({
            "arn": wire::xml_text(&text, "Arn"),
            "account": wire::xml_text(&text, "Account"),
            "user_id": wire::xml_text(&text, "UserId"),
        }))
    }
}

impl Client {
    /// Signs and sends one request.
    fn call(
        &self,
        creds: &Credentials,
        service: &str,
        what: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let request = wire::Signed {
            credentials: creds,
            region: &self.region,
            service,
            url,
            headers,
            body,
        };
        request.send(&self.http, what)
    }
}

/// Why `GetSecretValue` gave no secret.
pub(crate) enum Refusal {
    /// The service said the temporary credentials expired.
    ExpiredCredentials(FetchError),
    /// Anything else.
    Other(FetchError),
}

impl Refusal {
    fn into_fetch_error(self) -> FetchError {
        match self {
            Refusal::ExpiredCredentials(f) | Refusal::Other(f) => f,
        }
    }
}

/// The secret in a `GetSecretValue` answer: `SecretString`, or
/// `SecretBinary` (base64), holding a JSON object of keys.
pub(crate) fn secret_from(name: &str, r: Response) -> Result<Fetched<SecretMap>, Refusal> {
    const WHAT: &str = "GetSecretValue";
    if r.status != 200 {
        let e = ServiceError::parse(r.body.expose(), r.header("x-amzn-errortype"));
        if e.code == "ResourceNotFoundException" {
            return Ok(Fetched::Absent);
        }
        let expired = e.is_expired_token();
        let failure = e.into_fetch_error(&format!("{WHAT} of secret '{name}'"), r.status);
        return Err(if expired {
            Refusal::ExpiredCredentials(failure)
        } else {
            Refusal::Other(failure)
        });
    }
    let Some(Value::Object(mut doc)) = r.json() else {
        return Err(Refusal::Other(FetchError::transient(Error::Remote(
            format!("{WHAT} of secret '{name}': the answer is not a JSON object"),
        ))));
    };
    let parse = |m: String| Refusal::Other(FetchError::permanent(Error::Parse(m)));
    let version = match doc.get("VersionId") {
        Some(Value::String(id)) => Some(Version {
            id: id.clone(),
            stages: match doc.get("VersionStages") {
                Some(Value::Array(stages)) => stages
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
        }),
        _ => None,
    };
    let (field, text) = match (doc.remove("SecretString"), doc.remove("SecretBinary")) {
        (Some(Value::String(s)), _) => ("SecretString", SecretString::from(s)),
        (_, Some(Value::String(b64))) => {
            let b64 = SecretString::from(b64);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.expose())
                .map_err(|_| parse(format!("secret '{name}': SecretBinary is not base64")))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let mut bytes = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut bytes);
                parse(format!(
                    "secret '{name}': SecretBinary is not UTF-8 JSON text"
                ))
            })?;
            ("SecretBinary", SecretString::from(text))
        }
        _ => {
            return Err(parse(format!(
                "secret '{name}' holds neither SecretString nor SecretBinary"
            )))
        }
    };
    let mut rest = Value::Object(doc);
    zeroize_json(&mut rest);
    match serde_json::from_str::<Value>(text.expose()) {
        Ok(Value::Object(map)) => Ok(Fetched::Found(
            SecretMap::from_json_object(map).with_version(version),
        )),
        Ok(mut other) => {
            zeroize_json(&mut other);
            Err(parse(format!(
                "secret '{name}': {field} is JSON but not an object; st-secrets reads secrets \
                 of the form {{\"KEY\": \"value\", ...}}"
            )))
        }
        Err(e) => Err(parse(format!(
            "secret '{name}': {field} is not JSON (line {}, column {}); st-secrets reads \
             secrets of the form {{\"KEY\": \"value\", ...}}",
            e.line(),
            e.column()
        ))),
    }
}

/// The agent transport for `url`: an http(s) URL.
fn agent_transport(url: &str, remote: &RemoteSettings, vars: &Vars) -> Result<Transport, Error> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::InvalidArgument(format!(
            "{} must be an http:// or https:// URL (such as http://127.0.0.1:2773)",
            var::SIMPLETUNER_AWS_AGENT_URL
        )));
    }
    agent::Agent::new(url, remote, vars).map(Transport::Agent)
}

impl AwsProvider {
    /// The secrets and the transport, when configured; `Ok(None)`: no secret
    /// name, the provider answers "absent".
    fn parts(&self) -> Result<Option<(&Sources, &Transport)>, Error> {
        let Some(sources) = &self.sources else {
            return Ok(None);
        };
        let transport = self.client.as_ref().map_err(Clone::clone)?;
        Ok(Some((sources, transport)))
    }
}

impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let Some((sources, transport)) = self.parts()? else {
            return Ok(None);
        };
        sources.lookup(key, |name| self.fetch(transport, name))
    }

    fn lookup_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        let Some((sources, transport)) = self.parts()? else {
            return Ok(None);
        };
        sources.lookup_versioned(key, |name| self.fetch(transport, name))
    }

    fn peek(&self, key: &str) -> Option<(SecretString, Option<Version>)> {
        self.sources.as_ref()?.peek(key)
    }

    fn refresh_key(
        &self,
        key: &str,
        min_interval: std::time::Duration,
    ) -> Result<Option<(SecretString, Option<Version>)>, Error> {
        let Some((sources, transport)) = self.parts()? else {
            return Ok(None);
        };
        sources.refresh_key(key, min_interval, |name| self.fetch(transport, name))
    }

    fn take_refresh_request(&self, generation: u64) -> bool {
        self.sources
            .as_ref()
            .is_some_and(|s| s.take_refresh_request(generation))
    }

    fn refresh_in_background(&self) {
        if let Ok(Some((sources, transport))) = self.parts() {
            sources.refresh(|name| self.fetch(transport, name));
        }
    }

    fn refreshes_in_background(&self) -> bool {
        self.sources.as_ref().is_some_and(Sources::refreshes_ahead)
    }

    fn take_changes(&self) -> Vec<KeyChange> {
        self.sources
            .as_ref()
            .map(Sources::take_changes)
            .unwrap_or_default()
    }

    fn watch(&self) {
        if let Ok(Some((sources, transport))) = self.parts() {
            sources.watch(|name| self.fetch(transport, name));
        }
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        let Some((sources, transport)) = self.parts()? else {
            return Ok(Vec::new());
        };
        sources.keys(|name| self.fetch(transport, name))
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.sources
            .as_ref()
            .is_some_and(|s| s.holds_non_secret(key))
    }

    fn status(&self) -> ProviderStatus {
        let mut warnings = Vec::new();
        let (available, detail) = match (&self.sources, &self.client) {
            (None, Err(e)) => (false, e.to_string()),
            (None, Ok(_)) => (false, String::new()),
            (Some(s), Err(e)) => (true, format!("secret {}: {e}", s.describe_names())),
            (Some(s), Ok(t)) => {
                let (tail, w) = s.describe();
                warnings = w;
                let d = match t {
                    Transport::Direct(c) => {
                        let creds = c
                            .credentials
                            .source()
                            .map_or_else(|| "not resolved yet".to_owned(), |s| s.describe());
                        format!(
                            "secret {} in {} at {}; credentials: {creds}{tail}",
                            s.describe_names(),
                            c.region,
                            redact_url(&c.endpoint),
                        )
                    }
                    Transport::Agent(a) => {
                        warnings.splice(0..0, a.token_warnings());
                        format!(
                            "secret {} through the AWS Secrets Manager Agent at {}; SSRF token \
                         from {}{tail}",
                            s.describe_names(),
                            redact_url(&a.url),
                            a.token_source(),
                        )
                    }
                };
                (true, d)
            }
        };
        ProviderStatus {
            name: "aws",
            available,
            detail,
            warnings,
            failure: self.sources.as_ref().and_then(Sources::failure),
        }
    }

    fn invalidate(&self) {
        if let Some(s) = &self.sources {
            s.invalidate();
        }
    }

    fn diagnose(&self) -> Option<Value> {
        let sources = self.sources.as_ref()?;
        let names: Vec<&str> = sources.names().collect();
        let secret = names.join(", ");
        let transport = match &self.client {
            Ok(t) => t,
            Err(e) => return Some(json!({ "secret": secret, "error": e.to_json() })),
        };
        let mut out = match transport {
            Transport::Direct(client) => {
                let mut out = json!({
                    "secret": secret,
                    "region": client.region,
                    "endpoint": redact_url(&client.endpoint),
                });
                match client.credentials.get() {
                    Ok(creds) => {
                        out["credentials"] = json!(creds.source.describe());
                        out["caller"] = match self.caller_identity(client, &creds) {
                            Ok(identity) => identity,
                            Err(f) => json!({ "error": f.error.to_json() }),
                        };
                    }
                    Err(f) => out["credentials_error"] = f.error.to_json(),
                }
                out
            }
            Transport::Agent(agent) => json!({
                "secret": secret,
                "agent": redact_url(&agent.url),
                "token_source": agent.token_source(),
                "ping": agent.ping(),
            }),
        };
        let reads: Vec<_> = names
            .iter()
            .map(|n| (*n, self.fetch(transport, n)))
            .collect();
        out["secret_readable"] = sources::readability(&reads, "the secret does not exist");
        Some(out)
    }
}

#[cfg(test)]
mod tests;

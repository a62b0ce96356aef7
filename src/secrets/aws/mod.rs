//! The AWS Secrets Manager provider: one secret holding a JSON object of
//! keys, fetched with `GetSecretValue` (JSON 1.1 protocol) over `ureq`,
//! signed with SigV4 (the `aws-sigv4` crate), with the AWS credential chain
//! ([`credentials`]) and the shared remote machinery ([`remote`](crate::secrets::remote)):
//! one request per TTL, stale-on-error, retries, short timeouts.
//!
//! Configuration, each in this order:
//! - secret name: config `aws_secret_name`, `SIMPLETUNER_AWS_SECRET_NAME`
//!   (the provider is available when one is set);
//! - region: config `aws_region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the
//!   profile's `region` in `~/.aws/config` (`AWS_CONFIG_FILE`, `AWS_PROFILE`);
//! - endpoint: config `aws_endpoint`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`,
//!   `AWS_ENDPOINT_URL`, else `https://secretsmanager.<region>.amazonaws.com`;
//! - TLS trust: `AWS_CA_BUNDLE`, else Mozilla's roots.

pub(crate) mod credentials;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod process;
pub(crate) mod profile;
pub(crate) mod sso;
pub(crate) mod sts;
pub(crate) mod wire;

use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::provider::{zeroize_json, SecretMap};
use crate::secrets::provider::{Provider, ProviderStatus};
use crate::secrets::remote::http::{redact_url, Http, Response, Trust};
use crate::secrets::remote::secret_cache::{Fetched, SecretCache};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{with_retries, FetchError, RemoteSettings, Vars};
use crate::Error;
use base64::Engine;
use credentials::CredentialChain;
use identity::Credentials;
use serde_json::{json, Value};
use std::sync::Arc;
use wire::ServiceError;

/// The AWS provider's settings: the configuration keys `aws_*` (README,
/// "Configuration keys"). `None` falls back to the environment, as the module
/// documentation says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The secret's name or ARN (`aws_secret_name`).
    pub secret_name: Option<String>,
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

/// The AWS Secrets Manager provider.
pub struct AwsProvider {
    secret_name: Option<String>,
    client: Result<Client, Error>,
    cache: SecretCache<SecretMap>,
    settings: RemoteSettings,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("secret_name", &self.secret_name)
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
        let secret_name = aws.secret_name.clone().or_else(|| {
            vars.get(var::SIMPLETUNER_AWS_SECRET_NAME)
                .map(str::to_owned)
        });
        let settings = remote.clone();
        let client = match &secret_name {
            None => Err(Error::ProviderUnavailable(format!(
                "AWS Secrets Manager is not configured: set aws_secret_name or {}",
                var::SIMPLETUNER_AWS_SECRET_NAME
            ))),
            Some(_) => Self::client(aws, remote, vars),
        };
        AwsProvider {
            secret_name,
            client,
            cache: SecretCache::new(settings.clone()),
            settings,
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
        self.cache.requests()
    }

    /// Fetches the secret now, bypassing the cache (the doctor's check).
    fn fetch(&self, client: &Client, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        let body = json!({ "SecretId": name }).to_string();
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
        Ok(Value::Object(map)) => Ok(Fetched::Found(SecretMap::from_json_object(map))),
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

impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let Some(name) = &self.secret_name else {
            return Ok(None);
        };
        let client = self.client.as_ref().map_err(Clone::clone)?;
        self.cache.lookup(key, || self.fetch(client, name))
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        let Some(name) = &self.secret_name else {
            return Ok(Vec::new());
        };
        let client = self.client.as_ref().map_err(Clone::clone)?;
        Ok(self
            .cache
            .with_map(|| self.fetch(client, name), SecretMap::keys)?
            .unwrap_or_default())
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.cache.holds_non_secret(key)
    }

    fn status(&self) -> ProviderStatus {
        let mut warnings = Vec::new();
        let (available, detail) = match (&self.secret_name, &self.client) {
            (None, Err(e)) => (false, e.to_string()),
            (None, Ok(_)) => (false, String::new()),
            (Some(name), Err(e)) => (true, format!("secret '{name}': {e}")),
            (Some(name), Ok(c)) => {
                let creds = c
                    .credentials
                    .source()
                    .map_or_else(|| "not resolved yet".to_owned(), |s| s.describe());
                let (tail, w) = self.cache.describe();
                warnings = w;
                let d = format!(
                    "secret '{name}' in {} at {}; credentials: {creds}{tail}",
                    c.region,
                    redact_url(&c.endpoint),
                );
                (true, d)
            }
        };
        ProviderStatus {
            name: "aws",
            available,
            detail,
            warnings,
            failure: self.cache.failure(),
        }
    }

    fn invalidate(&self) {
        self.cache.invalidate();
    }

    fn diagnose(&self) -> Option<Value> {
        let name = self.secret_name.as_ref()?;
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return Some(json!({ "secret": name, "error": e.to_json() })),
        };
        let mut out = json!({
            "secret": name,
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
        out["secret_readable"] = match self.fetch(client, name) {
            Ok(Fetched::Found(map)) => json!({ "readable": true, "keys": map.len() }),
            Ok(Fetched::Absent) => {
                json!({ "readable": false, "reason": "the secret does not exist" })
            }
            Err(f) => json!({ "readable": false, "error": f.error.to_json() }),
        };
        Some(out)
    }
}

#[cfg(test)]
mod tests;

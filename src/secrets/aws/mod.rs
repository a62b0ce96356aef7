//! The AWS Secrets Manager provider: secrets holding JSON objects of keys,
//! fetched with `GetSecretValue` (JSON 1.1 protocol) over `ureq`, signed
//! with SigV4 (the `aws-sigv4` crate), with the AWS credential chain
//! ([`aws_identity`](crate::secrets::aws_identity)) and the shared remote machinery ([`remote`](crate::secrets::remote)):
//! one request per TTL, stale-on-error, retries, short timeouts. Several
//! secrets are looked up in order, each fetched and cached as one unit
//! ([`RemoteSource`]: this module is its [`Fetch`]). With
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
pub(crate) mod answer;
mod versions;

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::aws_identity::credentials::{https, CredentialChain};
use crate::secrets::aws_identity::identity::Credentials;
use crate::secrets::aws_identity::{profile, wire};
use crate::secrets::node::{Scope, Slot};
use crate::secrets::provider::SecretMap;
use crate::secrets::remote::kit::{self, Backend, Configured, Kit};
use crate::secrets::remote::rotation::Versions;
use crate::secrets::remote::source::{failed_line, line, push_line, Fetch, RemoteSource};
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use answer::{secret_from, Refusal};
use serde_json::{json, Value};
use std::sync::Arc;

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
struct Direct {
    http: Arc<Http>,
    credentials: CredentialChain,
    region: String,
    endpoint: String,
}

/// How the provider reaches Secrets Manager.
enum Transport {
    /// The service itself, with signed requests.
    Direct(Box<Direct>),
    /// The AWS Secrets Manager Agent on the node.
    Agent(Box<agent::Agent>),
}

/// AWS Secrets Manager, as [`RemoteSource`] fetches from it.
pub struct Aws {
    transport: Transport,
    settings: RemoteSettings,
    /// `DescribeSecret` was refused (the credentials may call
    /// `GetSecretValue` only): not asked again.
    no_describe: std::sync::atomic::AtomicBool,
}

/// The AWS Secrets Manager provider.
pub type AwsProvider = RemoteSource<Aws>;

/// The region: the configuration's, else `AWS_REGION`, `AWS_DEFAULT_REGION`,
/// else the profile's in `~/.aws/config`; `None` when none says.
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

impl Backend for Aws {
    type Settings = AwsSettings;
    /// The agent's address, when requests go through it.
    type Found = Option<String>;

    fn configured(
        aws: &AwsSettings,
        _remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<String, Option<String>>, Error> {
        let listed = kit::listed(
            aws.secret_names.as_deref(),
            vars,
            var::SIMPLETUNER_AWS_SECRET_NAME,
            |s| Ok(s.to_owned()),
        );
        let names = match listed {
            Ok(Some(names)) => names,
            // A list the variable cannot hold: not configured, saying why.
            Err(why) => {
                return Ok(Configured::No {
                    why,
                    in_part: false,
                })
            }
            Ok(None) => {
                return Ok(Configured::No {
                    why: Error::ProviderUnavailable(format!(
                        "AWS Secrets Manager is not configured: set aws_secret_name or {}",
                        var::SIMPLETUNER_AWS_SECRET_NAME
                    )),
                    in_part: false,
                })
            }
        };
        let agent = aws
            .agent_url
            .clone()
            .or_else(|| vars.get(var::SIMPLETUNER_AWS_AGENT_URL).map(str::to_owned));
        Ok(Configured::Yes {
            names,
            found: agent,
        })
    }

    fn scope(_aws: &AwsSettings, agent: &Option<String>, scope: Scope) -> Scope {
        scope.with("agent", agent.as_deref().unwrap_or(""))
    }

    fn connect(aws: &AwsSettings, agent: Option<String>, kit: &Kit<'_>) -> Result<Aws, Error> {
        let transport = match agent {
            Some(url) => agent_transport(&url, kit.remote, &kit.vars)?,
            None => {
                // The node's processes share the chain's credentials.
                let slot = match CredentialChain::worth_sharing(&kit.vars) {
                    true => kit.slot("credentials", &[]),
                    false => None,
                };
                let direct = client(aws, kit.remote, kit.vars.clone(), slot)?;
                // The node's processes slow down together when the service
                // pushes back.
                kit.share_pace(&direct.http, &direct.endpoint);
                Transport::Direct(Box::new(direct))
            }
        };
        Ok(Aws {
            transport,
            settings: kit.remote.clone(),
            no_describe: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// The HTTP client of AWS requests (the service, STS, the container
/// endpoint), trusting `AWS_CA_BUNDLE` when set.
fn client(
    aws: &AwsSettings,
    remote: &RemoteSettings,
    vars: Vars,
    slot: Option<Slot>,
) -> Result<Direct, Error> {
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
    let http = https(remote, &vars)?;
    let vars = Arc::new(vars);
    Ok(Direct {
        credentials: CredentialChain::shared(
            vars,
            Arc::clone(&http),
            remote.clone(),
            Some(region.clone()),
            slot,
        )?,
        http,
        region,
        endpoint,
    })
}

impl Aws {
    /// Fetches the secret `name` from the service: its version `id`, else
    /// its `AWSCURRENT` version (asked for by name: the service's default,
    /// and what a server that loses track of its default version after a
    /// rotation, as moto's does, still answers right).
    fn fetch_direct(
        &self,
        client: &Direct,
        name: &str,
        id: Option<&str>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        let body = match id {
            Some(id) => json!({ "SecretId": name, "VersionId": id }),
            None => json!({ "SecretId": name, "VersionStage": "AWSCURRENT" }),
        };
        self.send_secret(client, "GetSecretValue", &body.to_string(), |r| {
            secret_from(name, r)
        })
    }

    /// `DescribeSecret` of `name`: its versions and their stages, no value.
    fn describe_direct(
        &self,
        client: &Direct,
        name: &str,
    ) -> Result<Fetched<Versions>, FetchError> {
        let body = json!({ "SecretId": name }).to_string();
        self.send_secret(client, "DescribeSecret", &body, |r| {
            versions::versions_from(name, r).map_err(|(e, status)| {
                let expired = e.is_expired_token();
                let failure =
                    e.into_fetch_error(&format!("DescribeSecret of secret '{name}'"), status);
                if expired {
                    Refusal::ExpiredCredentials(failure)
                } else {
                    Refusal::Other(failure)
                }
            })
        })
    }

    /// Sends the Secrets Manager call `target` with `body`, retries
    /// included, its answer read by `read`.
    fn send_secret<T>(
        &self,
        client: &Direct,
        target: &str,
        body: &str,
        read: impl Fn(Response) -> Result<T, Refusal>,
    ) -> Result<T, FetchError> {
        let header = format!("secretsmanager.{target}");
        let call = |creds: &Credentials| {
            client.call(
                creds,
                "secretsmanager",
                target,
                &client.endpoint,
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", &header),
                ],
                body.as_bytes(),
            )
        };
        with_retries(&self.settings, || {
            let creds = client.credentials.get()?;
            match read(call(&creds)?) {
                // Temporary credentials the service calls expired (a clock
                // skew, or revoked early): fetch new ones and try once more.
                Err(Refusal::ExpiredCredentials(_)) if creds.expires.is_some() => {
                    let creds = client.credentials.instead_of(&creds)?;
                    read(call(&creds)?).map_err(Refusal::into_fetch_error)
                }
                other => other.map_err(Refusal::into_fetch_error),
            }
        })
    }

    /// The caller identity (STS `GetCallerIdentity`) of `creds`.
    fn caller_identity(&self, client: &Direct, creds: &Credentials) -> Result<Value, FetchError> {
        let url = client.credentials.sts_endpoint();
        let body = crate::secrets::transport::url::form(&[
            ("Action", "GetCallerIdentity"),
            ("Version", "2011-06-15"),
        ]);
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

impl Direct {
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

/// The agent transport for `url`: an http(s) URL.
fn agent_transport(url: &str, remote: &RemoteSettings, vars: &Vars) -> Result<Transport, Error> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::InvalidArgument(format!(
            "{} must be an http:// or https:// URL (such as http://127.0.0.1:2773)",
            var::SIMPLETUNER_AWS_AGENT_URL
        )));
    }
    agent::Agent::new(url, remote, vars).map(|a| Transport::Agent(Box::new(a)))
}

impl Fetch for Aws {
    const NAME: &'static str = "aws";
    const ABSENT: &'static str = "the secret does not exist";
    type Secret = String;

    /// The secret `name` fetched now: from the service (its `AWSCURRENT`
    /// version), or through the agent.
    fn fetch(&self, name: &String) -> Result<Fetched<SecretMap>, FetchError> {
        match &self.transport {
            Transport::Direct(client) => self.fetch_direct(client, name, None),
            Transport::Agent(agent) => with_retries(&self.settings, || agent.fetch(name)),
        }
    }

    /// `DescribeSecret`, straight to the service (the agent answers
    /// `GetSecretValue` only), unless the credentials may not call it: then
    /// never again by this process, and every refresh fetches the value.
    fn versions(&self, name: &String) -> Option<Result<Fetched<Versions>, FetchError>> {
        use std::sync::atomic::Ordering::Relaxed;
        let Transport::Direct(client) = &self.transport else {
            return None;
        };
        if self.no_describe.load(Relaxed) {
            return None;
        }
        match self.describe_direct(client, name) {
            Err(f) if matches!(f.error, Error::Auth(_)) => {
                self.no_describe.store(true, Relaxed);
                None
            }
            other => Some(other),
        }
    }

    fn fetch_version(&self, name: &String, id: &str) -> Result<Fetched<SecretMap>, FetchError> {
        match &self.transport {
            Transport::Direct(client) => self.fetch_direct(client, name, Some(id)),
            Transport::Agent(_) => self.fetch(name),
        }
    }

    fn unusable(names: &[String], error: &Error) -> String {
        format!("secret {}: {error}", quoted(names))
    }

    fn describe(&self, names: &[String]) -> (String, Vec<String>) {
        match &self.transport {
            Transport::Direct(c) => {
                let creds = format!(
                    "{} ({})",
                    c.credentials
                        .source()
                        .map_or_else(|| "not resolved yet".to_owned(), |s| s.describe()),
                    c.credentials.resolutions()
                );
                let head = format!(
                    "secret {} in {} at {}; credentials: {creds}",
                    quoted(names),
                    c.region,
                    redact_url(&c.endpoint),
                );
                (head, Vec::new())
            }
            Transport::Agent(a) => {
                let head = format!(
                    "secret {} through the AWS Secrets Manager Agent at {}; SSRF token from {}",
                    quoted(names),
                    redact_url(&a.url),
                    a.token_source(),
                );
                (head, a.token_warnings())
            }
        }
    }

    fn checks(&self, names: &[String]) -> Value {
        let secret = names.join(", ");
        match &self.transport {
            Transport::Direct(client) => {
                let endpoint = redact_url(&client.endpoint);
                let mut out = json!({
                    "secret": secret,
                    "region": client.region,
                    "endpoint": endpoint,
                    "lines": [
                        line("secret", &secret, None),
                        line("region", &client.region, None),
                        line("endpoint", &endpoint, None),
                    ],
                });
                match client.credentials.get() {
                    Ok(creds) => {
                        let source = creds.source.describe();
                        push_line(&mut out, line("credentials", &source, None));
                        out["credentials"] = json!(source);
                        out["caller"] = match self.caller_identity(client, &creds) {
                            Ok(identity) => {
                                let text = format!(
                                    "{} (account {})",
                                    identity["arn"].as_str().unwrap_or("?"),
                                    identity["account"].as_str().unwrap_or("?")
                                );
                                push_line(&mut out, line("caller", text, None));
                                identity
                            }
                            Err(f) => {
                                let l =
                                    failed_line("caller", "unknown", "caller identity", &f.error);
                                push_line(&mut out, l);
                                json!({ "error": f.error.to_json() })
                            }
                        };
                    }
                    Err(f) => {
                        push_line(
                            &mut out,
                            failed_line("credentials", "NONE", "credentials", &f.error),
                        );
                        out["credentials_error"] = f.error.to_json();
                    }
                }
                out
            }
            Transport::Agent(agent) => {
                let (url, source, ping) =
                    (redact_url(&agent.url), agent.token_source(), agent.ping());
                let health = match ping["healthy"] == true {
                    true => line("agent ping", "healthy", None),
                    false => {
                        let why = match ping["error"].as_object() {
                            Some(e) => format!(
                                "{}: {}",
                                e["code"].as_str().unwrap_or("ST_INTERNAL"),
                                e["message"].as_str().unwrap_or_default()
                            ),
                            None => format!("HTTP {}", ping["status"]),
                        };
                        let problem = format!("agent ping: {why}");
                        line("agent ping", format!("NOT HEALTHY ({why})"), Some(problem))
                    }
                };
                json!({
                    "secret": secret,
                    "agent": url,
                    "token_source": source,
                    "ping": ping,
                    "lines": [
                        line("secret", &secret, None),
                        line("agent", &url, None),
                        line("agent token", &source, None),
                        health,
                    ],
                })
            }
        }
    }
}

/// The names, quoted and joined for messages: `'a'`, `'a', then 'b'`.
fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", then ")
}

// The AWS credential chain on its own, for a command that `st-secrets run`
// serves credentials to (the container-credentials protocol): whatever the
// chain finds, refreshed five minutes before it expires.

/// The chain of the AWS settings and environment, with the credentials it
/// found last.
pub struct AwsCredentialChain {
    chain: CredentialChain,
    region: Option<String>,
}

/// Credentials the chain gave. `Debug` shows neither secret.
pub struct AwsCredentials {
    /// The access key ID (not a secret: AWS shows it in error messages).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire.
    pub expires: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl AwsCredentialChain {
    /// The chain `aws` and `vars` configure (no secret name needed).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::InvalidArgument`]: an unreadable CA bundle
    /// or profile file.
    pub fn new(
        aws: &AwsSettings,
        remote: &RemoteSettings,
        vars: Vars,
    ) -> Result<AwsCredentialChain, Error> {
        let region = resolve_region(aws, &vars)?;
        let http = https(remote, &vars)?;
        Ok(AwsCredentialChain {
            chain: CredentialChain::new(Arc::new(vars), http, remote.clone(), region.clone())?,
            region,
        })
    }

    /// The region the settings, the environment or the profile name.
    pub fn region(&self) -> Option<String> {
        self.region.clone()
    }

    /// The current credentials: those held until five minutes before they
    /// expire, then the chain's new answer.
    ///
    /// # Errors
    /// The chain's: no source configured, a refused role, an unreachable
    /// service (while held credentials have not expired, they answer).
    pub fn get(&self) -> Result<AwsCredentials, Error> {
        let c = self.chain.get().map_err(|f| f.error)?;
        Ok(AwsCredentials {
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            session_token: c.session_token.clone(),
            expires: c.expires,
        })
    }
}

#[cfg(test)]
mod tests;

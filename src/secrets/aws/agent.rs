//! The AWS Secrets Manager Agent (now the AWS Workload Credentials
//! Provider; the same API as the Parameters and Secrets Lambda extension):
//! a node-local daemon that fetches secrets from Secrets Manager with its own
//! credentials, caches them, and answers `GET /secretsmanager/get?secretId=`
//! on loopback with the `GetSecretValue` JSON. With `aws_agent_url` set the
//! AWS provider asks it instead of the service: no signing, no credential
//! chain, one upstream request per node and TTL however many processes ask.
//!
//! Requests carry the agent's SSRF token in `X-Aws-Parameters-Secrets-Token`:
//! `AWS_TOKEN` (the token, or `file://PATH` naming a file holding it), else
//! the file `/var/run/awssmatoken`. A token file is read again when it
//! changes and after the agent refuses the token.

use super::answer::{secret_from, Refusal};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::token_file::TokenFile;
use crate::secrets::provider::SecretMap;
use crate::secrets::transport::http::{Http, Response, Trust};
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The header carrying the SSRF token.
pub const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";
/// The token file the agent's install writes when `AWS_TOKEN` is unset.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/awssmatoken";
/// What the agent is called in messages.
const WHAT: &str = "AWS Secrets Manager Agent";

/// Where the SSRF token comes from.
enum Token {
    /// `AWS_TOKEN` holds it.
    Value(SecretString),
    /// A file holds it.
    File(TokenFile),
}

/// The agent at one URL.
pub(super) struct Agent {
    http: Http,
    /// Its URL, without a trailing `/`.
    pub(super) url: String,
    token: Token,
}

impl Agent {
    /// The agent at `url`, its token as `vars` say.
    pub(super) fn new(url: &str, remote: &RemoteSettings, vars: &Vars) -> Result<Agent, Error> {
        // Every request carries the SSRF token: never in the clear across a
        // network.
        crate::secrets::aws_identity::metadata::check_plain_http(url).map_err(|why| {
            Error::InvalidArgument(format!("aws_agent_url {}: {why}", redact_url(url)))
        })?;
        let token = match vars.get(var::AWS_TOKEN) {
            Some(v) => match v.strip_prefix("file://") {
                Some(path) => Token::File(TokenFile::new(
                    crate::paths::expand_home(PathBuf::from(path)),
                    "AWS Secrets Manager Agent token file",
                    "AWS_TOKEN",
                )),
                None => Token::Value(SecretString::from(v.trim())),
            },
            None => Token::File(TokenFile::new(
                PathBuf::from(DEFAULT_TOKEN_FILE),
                "AWS Secrets Manager Agent token file",
                "the default (AWS_TOKEN is unset)",
            )),
        };
        Ok(Agent {
            http: Http::new(remote, &Trust::Default, "")?,
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Where the token comes from, for statuses and messages (never the
    /// token).
    pub(super) fn token_source(&self) -> String {
        match &self.token {
            Token::Value(_) => "AWS_TOKEN".to_owned(),
            Token::File(f) => format!("the file {}", f.describe()),
        }
    }

    /// The token file's warnings, if the token comes from one.
    pub(super) fn token_warnings(&self) -> Vec<String> {
        match &self.token {
            Token::Value(_) => Vec::new(),
            Token::File(f) => f.warnings(),
        }
    }

    fn token(&self) -> Result<SecretString, FetchError> {
        match &self.token {
            Token::Value(v) => Ok(v.clone()),
            Token::File(f) => Ok(f.get()?),
        }
    }

    fn send(&self, url: &str, token: &SecretString) -> Result<Response, FetchError> {
        self.http
            .send(WHAT, "GET", url, &[(TOKEN_HEADER, token.expose())], b"")
    }

    /// The secret `name`, as the agent has it. After a refusal (403) of a
    /// token read from a file, the file is read again and the request
    /// repeated once when the token changed.
    pub(super) fn fetch(&self, name: &str) -> Result<Fetched<SecretMap>, FetchError> {
        let mut url = format!("{}/secretsmanager/get?secretId=", self.url);
        crate::secrets::transport::url::escape_into(&mut url, name);
        let token = self.token()?;
        let mut r = self.send(&url, &token)?;
        if r.status == 403 {
            if let Token::File(f) = &self.token {
                if let Some(new) = f.changed_since(&token)? {
                    r = self.send(&url, &new)?;
                }
            }
        }
        self.answer(name, r)
    }

    /// What an answer of the agent means.
    fn answer(&self, name: &str, r: Response) -> Result<Fetched<SecretMap>, FetchError> {
        let at = redact_url(&self.url);
        let said = || {
            let text = String::from_utf8_lossy(r.body.expose());
            let text = text.trim();
            if text.is_empty() || text.len() > 200 || text.starts_with('{') {
                String::new()
            } else {
                format!(": {}", crate::error::shorten(text))
            }
        };
        let aws_error = serde_json::from_slice::<Value>(r.body.expose())
            .ok()
            .is_some_and(|v| v.get("__type").is_some());
        match r.status {
            200 => secret_from(name, r).map_err(Refusal::into_fetch_error),
            // The agent's own refusal ("Bad Token"); an AWS error passed
            // through (a role it could not assume) has a JSON body.
            403 if !aws_error => Err(FetchError::permanent(Error::Auth(format!(
                "{WHAT} at {at} refused the SSRF token from {} (HTTP 403{}): it must be the \
                 token the agent was started with",
                self.token_source(),
                said()
            )))),
            404 if !aws_error => Ok(Fetched::Absent),
            429 | 500..=599 if !aws_error => Err(FetchError::transient(Error::Remote(format!(
                "{WHAT} at {at}: secret '{name}': HTTP {}{}",
                r.status,
                said()
            )))
            .retry_after(r.retry_after())),
            _ if !aws_error => Err(FetchError::permanent(Error::Remote(format!(
                "{WHAT} at {at}: secret '{name}': unexpected answer HTTP {}{}",
                r.status,
                said()
            )))),
            _ => {
                let retry = r.retry_after();
                secret_from(name, r)
                    .map_err(Refusal::into_fetch_error)
                    .map_err(|f| f.retry_after(retry))
            }
        }
    }

    /// The agent's health check (`GET /ping`, which needs no token), for the
    /// doctor.
    pub(super) fn ping(&self) -> Value {
        let url = format!("{}/ping", self.url);
        match self.http.send(WHAT, "GET", &url, &[], b"") {
            Ok(r) => json!({ "status": r.status, "healthy": r.status == 200 }),
            Err(f) => json!({ "healthy": false, "error": f.error.to_json() }),
        }
    }
}

//! The AWS endpoints that hand out credentials without signing: container
//! credentials (ECS, EKS Pod Identity) and EC2 instance metadata (IMDSv2).

use super::identity::{Credentials, Source};
use super::wire::require_success;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::read_token;
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::url::{self, PlainHttp};
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use std::path::PathBuf;

/// The instance metadata service, when `AWS_EC2_METADATA_SERVICE_ENDPOINT`
/// does not say otherwise.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The ECS container credentials host of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";

/// The container credentials endpoint (ECS, EKS Pod Identity), named by
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `..._FULL_URI`, with its
/// authorization token, through `http`.
pub(crate) fn container(
    http: &Http,
    settings: &RemoteSettings,
    vars: &Vars,
) -> Result<Credentials, FetchError> {
    let url = match vars.get(var::AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) {
        Some(relative) => format!("{ECS_HOST}{relative}"),
        None => {
            let full = vars
                .get(var::AWS_CONTAINER_CREDENTIALS_FULL_URI)
                .unwrap_or_default();
            check_container_url(full)?;
            full.to_owned()
        }
    };
    let token = match vars.get(var::AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) {
        Some(file) => {
            let path = PathBuf::from(file);
            Some(SecretString::from(
                read_token(&path, var::AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)?
                    .expose()
                    .trim(),
            ))
        }
        None => vars
            .get(var::AWS_CONTAINER_AUTHORIZATION_TOKEN)
            .map(SecretString::from),
    };
    let mut headers = vec![("accept", "application/json")];
    if let Some(t) = &token {
        headers.push(("authorization", t.expose()));
    }
    let what = "container credentials";
    let response = with_retries(settings, || {
        require_success(what, http.send(what, "GET", &url, &headers, b"")?)
    })?;
    credentials_from_json(what, &response, Source::Container)
}

/// EC2 instance metadata (IMDSv2: a session token, the role's name, its
/// credentials), through `imds` (short timeouts).
pub(crate) fn instance_metadata(imds: &Http, vars: &Vars) -> Result<Credentials, FetchError> {
    let base = vars
        .get(var::AWS_EC2_METADATA_SERVICE_ENDPOINT)
        .unwrap_or(IMDS_ENDPOINT)
        .trim_end_matches('/')
        .to_owned();
    let what = "instance metadata";
    let token = require_success(
        what,
        imds.send(
            what,
            "PUT",
            &format!("{base}/latest/api/token"),
            &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")],
            b"",
        )?,
    )?;
    let token = SecretString::from(String::from_utf8_lossy(token.body.expose()).trim());
    let auth = [("x-aws-ec2-metadata-token", token.expose())];
    let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = imds.send(what, "GET", &roles_url, &auth, b"")?;
    if roles.status == 404 {
        return Err(FetchError::permanent(Error::Auth(
            "the instance has no IAM role attached".into(),
        )));
    }
    let roles = require_success(what, roles)?;
    let role = String::from_utf8_lossy(roles.body.expose())
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if role.is_empty() || role.contains(['/', '?', '#']) {
        return Err(FetchError::permanent(Error::Remote(format!(
            "{what}: no usable IAM role name in the answer"
        ))));
    }
    let response = require_success(
        what,
        imds.send(what, "GET", &format!("{roles_url}{role}"), &auth, b"")?,
    )?;
    credentials_from_json(what, &response, Source::InstanceMetadata)
}

/// The JSON credentials document of the container and metadata endpoints.
pub(crate) fn credentials_from_json(
    what: &str,
    r: &Response,
    source: Source,
) -> Result<Credentials, FetchError> {
    let invalid = || {
        FetchError::transient(Error::Remote(format!(
            "{what}: the answer is not a credentials document"
        )))
    };
    let mut doc = r.json().ok_or_else(invalid)?;
    let text =
        |doc: &serde_json::Value, k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(code) = text(&doc, "Code").filter(|c| c != "Success") {
        crate::secrets::provider::zeroize_json(&mut doc);
        return Err(FetchError::permanent(Error::Auth(format!(
            "{what}: the endpoint answered with code '{}'",
            crate::error::shorten(&code)
        ))));
    }
    let creds = match (text(&doc, "AccessKeyId"), text(&doc, "SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: text(&doc, "Token").map(SecretString::from),
            expires: text(&doc, "Expiration")
                .as_deref()
                .and_then(parse_timestamp),
            source,
        }),
        _ => Err(invalid()),
    };
    crate::secrets::provider::zeroize_json(&mut doc);
    creds
}

/// Plain HTTP is allowed to loopback and to the link-local container hosts
/// only, as in the AWS SDKs; anything else must use HTTPS.
fn check_container_url(url: &str) -> Result<(), FetchError> {
    check_plain_http(url).map_err(|why| {
        FetchError::permanent(Error::InvalidArgument(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {}: {why}",
            redact_url(url)
        )))
    })
}

/// The AWS SDKs' rule for a URL a credential or token is sent to: `https`
/// anywhere; plain `http` only to loopback (`127.0.0.0/8`, `::1`,
/// `localhost`) and the link-local container hosts (`169.254.170.2`,
/// `169.254.170.23`, `fd00:ec2::23`), where the traffic stays on the
/// machine or its task. Also applied to `aws_agent_url`, whose requests carry
/// the agent's SSRF token. `Err` says why.
pub(crate) fn check_plain_http(url: &str) -> Result<(), &'static str> {
    url::check(url, PlainHttp::LoopbackAndContainerHosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_urls() {
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://localhost/x",
            "http://[::1]:9/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://creds.example.com/x",
        ] {
            assert!(check_container_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/x",
            "http://example.com/x",
            "ftp://127.0.0.1/",
            "nope",
        ] {
            assert!(check_container_url(bad).is_err(), "{bad}");
        }
    }
}

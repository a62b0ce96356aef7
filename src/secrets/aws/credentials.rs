//! The AWS credential chain, in the order the AWS SDKs use: environment,
//! shared profile files, web identity (EKS IRSA), container credentials (ECS,
//! EKS Pod Identity), EC2 instance metadata (IMDSv2). The first source that is
//! configured answers; temporary credentials are fetched again five minutes
//! before they expire.

use super::identity::{Credentials, Source};
use super::profile::{self, FileKind};
use super::wire::{self, require_success};
use crate::secret::SecretString;
use crate::secrets::remote::http::{redact_url, Http, Response, Trust};
use crate::secrets::remote::{with_retries, FetchError, RemoteSettings, Vars};
use crate::Error;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instance metadata service, when `AWS_EC2_METADATA_SERVICE_ENDPOINT`
/// does not say otherwise.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The ECS container credentials host of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";

/// The largest token file read: 64 KiB (a JWT is a few KiB).
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// A token file (web identity, container authorization), read safely: a
/// regular file, bounded, never blocking; missing is an error naming `what`.
fn read_token_file(path: &std::path::Path, what: &str) -> Result<SecretString, Error> {
    let bytes = crate::fsutil::read_required(path, what, MAX_TOKEN_FILE)?;
    Ok(SecretString::from(
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// The chain, with the credentials it found last.
pub struct CredentialChain {
    vars: Arc<Vars>,
    http: Arc<Http>,
    imds: Http,
    settings: RemoteSettings,
    region: Option<String>,
    cached: Mutex<Option<Arc<Credentials>>>,
}

impl CredentialChain {
    /// A chain reading `vars`, sending requests through `http` (STS,
    /// container endpoint) and a 1-second client for instance metadata.
    pub fn new(
        vars: Arc<Vars>,
        http: Arc<Http>,
        settings: RemoteSettings,
        region: Option<String>,
    ) -> Result<CredentialChain, Error> {
        let imds_settings = RemoteSettings {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            ..settings.clone()
        };
        Ok(CredentialChain {
            imds: Http::new(&imds_settings, &Trust::Default, "")?,
            vars,
            http,
            settings,
            region,
            cached: Mutex::new(None),
        })
    }

    /// Current credentials: the cached ones unless they expire within
    /// [`REFRESH_BEFORE_EXPIRY`], else the chain's answer. When refreshing
    /// fails, credentials that have not yet expired are used meanwhile.
    pub fn get(&self) -> Result<Arc<Credentials>, FetchError> {
        let mut cached = self.cached.lock();
        let now = SystemTime::now();
        if let Some(c) = cached.as_ref().filter(|c| !c.due(now)) {
            return Ok(Arc::clone(c));
        }
        match self.resolve() {
            Ok(c) => {
                let c = Arc::new(c);
                *cached = Some(Arc::clone(&c));
                Ok(c)
            }
            Err(f) => match cached.as_ref().filter(|c| !c.expired(now)) {
                Some(c) => Ok(Arc::clone(c)),
                None => Err(f),
            },
        }
    }

    /// Drops the cached credentials (after the service said they expired).
    pub fn invalidate(&self) {
        *self.cached.lock() = None;
    }

    /// Where the cached credentials came from, if any are cached.
    pub fn source(&self) -> Option<Source> {
        self.cached.lock().as_ref().map(|c| c.source.clone())
    }

    /// The STS endpoint: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the
    /// regional endpoint, else the global one.
    pub fn sts_endpoint(&self) -> String {
        self.vars
            .get("AWS_ENDPOINT_URL_STS")
            .or_else(|| self.vars.get("AWS_ENDPOINT_URL"))
            .map(str::to_owned)
            .or_else(|| {
                self.region
                    .as_ref()
                    .map(|r| format!("https://sts.{r}.amazonaws.com"))
            })
            .unwrap_or_else(|| "https://sts.amazonaws.com".into())
    }

    fn resolve(&self) -> Result<Credentials, FetchError> {
        let v = &self.vars;
        match (v.get("AWS_ACCESS_KEY_ID"), v.get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                return Ok(Credentials {
                    access_key_id: id.to_owned(),
                    secret_access_key: SecretString::from(secret),
                    session_token: v.get("AWS_SESSION_TOKEN").map(SecretString::from),
                    expires: None,
                    source: Source::Environment,
                })
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(FetchError::permanent(Error::Auth(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
                )))
            }
            (None, None) => {}
        }
        if let Some(c) = self.shared_profile()? {
            return Ok(c);
        }
        if let (Some(file), Some(role)) =
            (v.get("AWS_WEB_IDENTITY_TOKEN_FILE"), v.get("AWS_ROLE_ARN"))
        {
            return self.web_identity(file, role);
        }
        if v.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || v.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        {
            return self.container();
        }
        let imds = if v
            .get("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"))
        {
            "instance metadata disabled by AWS_EC2_METADATA_DISABLED".to_owned()
        } else {
            match self.instance_metadata() {
                Ok(c) => return Ok(c),
                // The error names the instance metadata service already.
                Err(f) => f.error.to_string(),
            }
        };
        Err(FetchError::permanent(Error::Auth(format!(
            "no AWS credentials found (tried: environment, shared profile '{}', web identity, \
             container; {imds})",
            self.profile_name()
        ))))
    }

    fn profile_name(&self) -> &str {
        self.vars.get("AWS_PROFILE").unwrap_or("default")
    }

    fn shared_profile(&self) -> Result<Option<Credentials>, FetchError> {
        let name = self.profile_name();
        let credentials_file = self
            .vars
            .aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_file = self.vars.aws_file("AWS_CONFIG_FILE", "config");
        let mut found_any = false;
        for (path, kind) in [
            (credentials_file, FileKind::Credentials),
            (config_file, FileKind::Config),
        ] {
            let Some(path) = path else { continue };
            let Some(p) = profile::load(&path, kind, name)? else {
                continue;
            };
            found_any = true;
            if let (Some(id), Some(secret)) =
                (p.get("aws_access_key_id"), p.get("aws_secret_access_key"))
            {
                return Ok(Some(Credentials {
                    access_key_id: id.to_owned(),
                    secret_access_key: SecretString::from(secret),
                    session_token: p.get("aws_session_token").map(SecretString::from),
                    expires: None,
                    source: Source::Profile(name.to_owned()),
                }));
            }
            for unsupported in [
                "role_arn",
                "credential_process",
                "sso_session",
                "sso_start_url",
                "web_identity_token_file",
            ] {
                if p.get(unsupported).is_some() {
                    return Err(FetchError::permanent(Error::ProviderUnavailable(format!(
                        "AWS profile '{name}' ({}) uses {unsupported}, which st-secrets does not \
                         support; give the profile static keys, or use environment, web identity, \
                         container or instance credentials",
                        path.display()
                    ))));
                }
            }
        }
        if !found_any && self.vars.get("AWS_PROFILE").is_some() {
            return Err(FetchError::permanent(Error::Auth(format!(
                "AWS_PROFILE names profile '{name}', which is in neither the shared credentials \
                 nor the config file"
            ))));
        }
        Ok(None)
    }

    fn web_identity(&self, token_file: &str, role_arn: &str) -> Result<Credentials, FetchError> {
        let path = PathBuf::from(token_file);
        let token = read_token_file(&path, "AWS_WEB_IDENTITY_TOKEN_FILE")?;
        let session = self.vars.get("AWS_ROLE_SESSION_NAME").map_or_else(
            || {
                let ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                format!("st-secrets-{ms}")
            },
            str::to_owned,
        );
        let body = SecretString::from(wire::form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.expose().trim()),
        ]));
        let url = self.sts_endpoint();
        let what = "STS AssumeRoleWithWebIdentity";
        let response = with_retries(&self.settings, || {
            let r = self.http.send(
                what,
                "POST",
                &url,
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body.expose().as_bytes(),
            )?;
            require_success(what, r)
        })?;
        let text = String::from_utf8_lossy(response.body.expose()).into_owned();
        let text = SecretString::from(text);
        let field = |tag| wire::xml_text(text.expose(), tag);
        match (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        ) {
            (Some(id), Some(secret), Some(token)) => Ok(Credentials {
                access_key_id: id,
                secret_access_key: SecretString::from(secret),
                session_token: Some(SecretString::from(token)),
                expires: field("Expiration")
                    .as_deref()
                    .and_then(wire::parse_timestamp),
                source: Source::WebIdentity,
            }),
            _ => Err(FetchError::transient(Error::Remote(format!(
                "{what}: the answer of {} holds no credentials",
                redact_url(&url)
            )))),
        }
    }

    fn container(&self) -> Result<Credentials, FetchError> {
        let url = match self.vars.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            Some(relative) => format!("{ECS_HOST}{relative}"),
            None => {
                let full = self
                    .vars
                    .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .unwrap_or_default();
                check_container_url(full)?;
                full.to_owned()
            }
        };
        let token = match self.vars.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => {
                let path = PathBuf::from(file);
                Some(SecretString::from(
                    read_token_file(&path, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")?
                        .expose()
                        .trim(),
                ))
            }
            None => self
                .vars
                .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(SecretString::from),
        };
        let mut headers = vec![("accept", "application/json")];
        if let Some(t) = &token {
            headers.push(("authorization", t.expose()));
        }
        let what = "container credentials";
        let response = with_retries(&self.settings, || {
            require_success(what, self.http.send(what, "GET", &url, &headers, b"")?)
        })?;
        credentials_from_json(what, &response, Source::Container)
    }

    fn instance_metadata(&self) -> Result<Credentials, FetchError> {
        let base = self
            .vars
            .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or(IMDS_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        let what = "instance metadata";
        let token = require_success(
            what,
            self.imds.send(
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
        let roles = self.imds.send(what, "GET", &roles_url, &auth, b"")?;
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
            self.imds
                .send(what, "GET", &format!("{roles_url}{role}"), &auth, b"")?,
        )?;
        credentials_from_json(what, &response, Source::InstanceMetadata)
    }
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
            crate::secrets::remote::shorten(&code)
        ))));
    }
    let creds = match (text(&doc, "AccessKeyId"), text(&doc, "SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: text(&doc, "Token").map(SecretString::from),
            expires: text(&doc, "Expiration")
                .as_deref()
                .and_then(wire::parse_timestamp),
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
    let bad = |why: &str| {
        FetchError::permanent(Error::InvalidArgument(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {}: {why}",
            redact_url(url)
        )))
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("not a URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    match scheme {
        "https" => Ok(()),
        "http" => {
            let allowed = host == "localhost"
                || host == "::1"
                || host == "169.254.170.2"
                || host == "169.254.170.23"
                || host.eq_ignore_ascii_case("fd00:ec2::23")
                || host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if allowed {
                Ok(())
            } else {
                Err(bad(
                    "plain HTTP is allowed to loopback and the container hosts only",
                ))
            }
        }
        _ => Err(bad("the scheme must be http or https")),
    }
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

    #[test]
    fn refresh_window() {
        let now = SystemTime::now();
        let mut c = Credentials {
            access_key_id: "AKIA".into(),
            secret_access_key: SecretString::from("s"),
            session_token: None,
            expires: None,
            source: Source::Environment,
        };
        assert!(!c.due(now));
        c.expires = Some(now + Duration::from_secs(200));
        assert!(c.due(now) && !c.expired(now));
        c.expires = Some(now + Duration::from_secs(3600));
        assert!(!c.due(now));
        assert!(format!("{c:?}").contains("Environment") && !format!("{c:?}").contains("AKIA"));
    }
}

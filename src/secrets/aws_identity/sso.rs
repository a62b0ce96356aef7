//! IAM Identity Center (SSO) credentials, as the AWS SDKs get them: the
//! access token `aws sso login` cached under `~/.aws/sso/cache/` (the file
//! named by the SHA-1 of the `sso_session` name, or of the start URL for
//! the legacy `sso_start_url` profiles), then the portal's
//! `GetRoleCredentials` for the profile's account and role. st-secrets never
//! logs in itself (that needs a browser): an expired or missing token is an
//! error telling the user to run `aws sso login`.

use super::identity::{Credentials, Source};
use super::wire;
use crate::error::shorten;
use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use sha1::{Digest, Sha1};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest cached token file read: 64 KiB.
const MAX_TOKEN_CACHE: u64 = 64 << 10;

/// What a profile says about its SSO login.
pub struct SsoProfile<'a> {
    /// The profile's name.
    pub profile: &'a str,
    /// `sso_session`, when the profile uses the current form.
    pub session: Option<&'a str>,
    /// The start URL (of the session section, or the legacy profile's).
    pub start_url: &'a str,
    /// The region of the portal.
    pub region: &'a str,
    /// `sso_account_id`.
    pub account_id: &'a str,
    /// `sso_role_name`.
    pub role_name: &'a str,
}

impl SsoProfile<'_> {
    /// The command that refreshes the cached token.
    fn login_command(&self) -> String {
        match self.session {
            Some(s) => format!("aws sso login --sso-session {s}"),
            None => format!("aws sso login --profile {}", self.profile),
        }
    }

    /// The cache file's name: the hex SHA-1 of the session name, or of the
    /// start URL for legacy profiles.
    fn cache_file_name(&self) -> String {
        let key = self.session.unwrap_or(self.start_url);
        let digest = Sha1::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.json")
    }
}

/// The role credentials of `p`, through `http` (the portal endpoint is
/// `AWS_ENDPOINT_URL_SSO`, else `https://portal.sso.<region>.amazonaws.com`).
pub fn credentials(
    http: &Http,
    settings: &RemoteSettings,
    vars: &Vars,
    p: &SsoProfile<'_>,
) -> Result<Credentials, FetchError> {
    let login = p.login_command();
    let auth = |why: String| FetchError::permanent(Error::Auth(why));
    let Some(path) = vars.home_file(&format!(".aws/sso/cache/{}", p.cache_file_name())) else {
        return Err(auth(format!(
            "no home directory to find the SSO token of AWS profile '{}' in",
            p.profile
        )));
    };
    let Some(bytes) = crate::fsutil::read_regular(&path, "cached SSO token", MAX_TOKEN_CACHE)?
    else {
        return Err(auth(format!(
            "AWS profile '{}' uses IAM Identity Center and no SSO token is cached ({}); run \
             `{login}`",
            p.profile,
            path.display()
        )));
    };
    let bytes = SecretBytes::from(bytes);
    let token = read_cached_token(bytes.expose(), SystemTime::now()).map_err(|why| {
        auth(format!(
            "the cached SSO token of AWS profile '{}' ({}) {why}; run `{login}`",
            p.profile,
            path.display()
        ))
    })?;

    let base = vars
        .get(var::AWS_ENDPOINT_URL_SSO)
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://portal.sso.{}.amazonaws.com", p.region));
    let query = crate::secrets::transport::url::form(&[
        ("account_id", p.account_id),
        ("role_name", p.role_name),
    ]);
    let url = format!("{base}/federation/credentials?{query}");
    let what = "SSO GetRoleCredentials";
    let headers = [
        ("x-amz-sso_bearer_token", token.expose()),
        ("accept", "application/json"),
    ];
    let response = with_retries(settings, || {
        let r = http.send(what, "GET", &url, &headers, b"")?;
        match r.status {
            200..=299 => Ok(r),
            401 | 403 => Err(auth(format!(
                "{what}: the SSO token was refused (HTTP {}) for account {} and role {}; run \
                 `{login}`",
                r.status,
                shorten(p.account_id),
                shorten(p.role_name)
            ))),
            429 | 500..=599 => Err(FetchError::transient(Error::Remote(format!(
                "{what}: HTTP {}",
                r.status
            )))
            .retry_after(r.retry_after())),
            s => {
                let e = wire::ServiceError::parse(r.body.expose(), r.header("x-amzn-errortype"));
                let message = if e.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.message)
                };
                Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: HTTP {s}{message}"
                ))))
            }
        }
    })?;
    role_credentials(&response, p.profile)
}

/// The access token of a cached token document, unless it expired by `now`
/// (the reason otherwise, for a message).
pub(crate) fn read_cached_token(doc: &[u8], now: SystemTime) -> Result<SecretString, String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(doc).map_err(|_| "is not JSON".to_owned())?;
    let token = doc["accessToken"].as_str().map(SecretString::from);
    let expires = doc["expiresAt"].as_str().map(str::to_owned);
    zeroize_json(&mut doc);
    let token = token.ok_or("holds no accessToken")?;
    let expires = expires.ok_or("holds no expiresAt")?;
    // The AWS CLI v2 has written both `...Z` and `...UTC`.
    let at = parse_timestamp(&expires.replace("UTC", "Z"))
        .ok_or("has an expiresAt that is not an ISO 8601 time")?;
    if at <= now {
        return Err(format!("expired at {}", shorten(&expires)));
    }
    Ok(token)
}

/// `{"roleCredentials": {...}}` of `GetRoleCredentials`.
pub(crate) fn role_credentials(r: &Response, profile: &str) -> Result<Credentials, FetchError> {
    let bad = || {
        FetchError::transient(Error::Remote(
            "SSO GetRoleCredentials: the answer holds no role credentials".into(),
        ))
    };
    let mut doc = r.json().ok_or_else(bad)?;
    let c = &doc["roleCredentials"];
    let text = |k: &str| c[k].as_str().map(str::to_owned);
    let result = match (text("accessKeyId"), text("secretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: text("sessionToken").map(SecretString::from),
            expires: c["expiration"]
                .as_u64()
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
            source: Source::Sso(profile.to_owned()),
        }),
        _ => Err(bad()),
    };
    zeroize_json(&mut doc);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_is_named_as_the_aws_cli_names_it() {
        // The AWS CLI's own example: `aws sso login --sso-session my-sso`
        // writes the SHA-1 of "my-sso".
        let p = SsoProfile {
            profile: "dev",
            session: Some("my-sso"),
            start_url: "https://example.awsapps.com/start",
            region: "us-east-1",
            account_id: "123456789012",
            role_name: "ReadOnly",
        };
        let expected: String = Sha1::digest(b"my-sso")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(p.cache_file_name(), format!("{expected}.json"));
        assert_eq!(expected.len(), 40);
        let legacy = SsoProfile { session: None, ..p };
        assert_ne!(legacy.cache_file_name(), format!("{expected}.json"));
        assert_eq!(legacy.login_command(), "aws sso login --profile dev");
    }

    #[test]
    fn cached_tokens_are_read_until_they_expire() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000); // 2027-01-15
        let doc = |at: &str| {
            format!(
                r#"{{"accessToken": "aoa-secret", "expiresAt": "{at}", "region": "us-east-1"}}"#
            )
        };
        let t = read_cached_token(doc("2027-01-16T00:00:00Z").as_bytes(), now).unwrap();
        assert_eq!(t.expose(), "aoa-secret");
        assert!(read_cached_token(doc("2027-01-16T00:00:00UTC").as_bytes(), now).is_ok());
        let e = read_cached_token(doc("2027-01-14T00:00:00Z").as_bytes(), now).unwrap_err();
        assert!(e.starts_with("expired at 2027-01-14"), "{e}");
        for bad in [&b"{}"[..], b"[", br#"{"accessToken": "aoa-secret"}"#] {
            let e = read_cached_token(bad, now).unwrap_err();
            assert!(!e.contains("aoa-secret"), "{e}");
        }
    }
}

//! AWS STS as a credential source: `AssumeRole` (signed with the credentials
//! of the profile's source) and `AssumeRoleWithWebIdentity` (EKS IRSA, a web
//! identity token file).

use super::identity::{Credentials, Source};
use super::wire::{self, require_success};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::{FetchError, RemoteSettings};
use std::time::{SystemTime, UNIX_EPOCH};

/// STS at `endpoint`, in `region` (for signing), through `http`.
pub(crate) struct Sts<'a> {
    pub http: &'a Http,
    pub settings: &'a RemoteSettings,
    pub endpoint: String,
    pub region: &'a str,
}

impl Sts<'_> {
    /// STS `AssumeRole` of `role_arn` with `base` credentials and the
    /// profile's `role_session_name`, `external_id` and `duration_seconds`
    /// (read with `option`); a profile with `mfa_serial` is refused.
    pub fn assume_role<'p>(
        &self,
        base: &Credentials,
        role_arn: &str,
        option: impl Fn(&str) -> Option<&'p str>,
        profile: &str,
    ) -> Result<Credentials, FetchError> {
        let bad = |text: String| FetchError::permanent(Error::InvalidArgument(text));
        if option("mfa_serial").is_some() {
            return Err(FetchError::permanent(Error::ProviderUnavailable(format!(
                "AWS profile '{profile}' needs an MFA code (mfa_serial), and st-secrets never \
                 prompts; use a credential_process tool that asks for it (such as aws-vault)"
            ))));
        }
        let duration = match option("duration_seconds") {
            None => None,
            Some(d) => match d.parse::<u32>() {
                Ok(n) if (900..=43_200).contains(&n) => Some(n.to_string()),
                _ => {
                    return Err(bad(format!(
                        "AWS profile '{profile}' has duration_seconds '{}'; it must be a whole \
                         number from 900 to 43200",
                        crate::error::shorten(d)
                    )))
                }
            },
        };
        let session = option("role_session_name").map_or_else(session_name, str::to_owned);
        let mut pairs = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session.as_str()),
        ];
        if let Some(external) = option("external_id") {
            pairs.push(("ExternalId", external));
        }
        if let Some(d) = &duration {
            pairs.push(("DurationSeconds", d));
        }
        let body = SecretString::from(crate::secrets::transport::url::form(&pairs));
        let what = "STS AssumeRole";
        let response = with_retries(self.settings, || {
            let request = wire::Signed {
                credentials: base,
                region: self.region,
                service: "sts",
                url: &self.endpoint,
                headers: &[wire::FORM_CONTENT_TYPE],
                body: body.expose().as_bytes(),
            };
            require_success(what, request.send(self.http, what)?)
        })?;
        sts_credentials(
            what,
            &self.endpoint,
            &response,
            Source::AssumedRole(profile.to_owned()),
        )
    }

    /// STS `AssumeRoleWithWebIdentity` of `role_arn` with `token` (unsigned),
    /// as `session` (default: `st-secrets-<ms since 1970>`).
    pub fn assume_role_with_web_identity(
        &self,
        token: &SecretString,
        role_arn: &str,
        session: Option<&str>,
    ) -> Result<Credentials, FetchError> {
        let session = session.map_or_else(session_name, str::to_owned);
        let body = SecretString::from(crate::secrets::transport::url::form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.expose().trim()),
        ]));
        let what = "STS AssumeRoleWithWebIdentity";
        let response = with_retries(self.settings, || {
            let r = self.http.send(
                what,
                "POST",
                &self.endpoint,
                &[wire::FORM_CONTENT_TYPE],
                body.expose().as_bytes(),
            )?;
            require_success(what, r)
        })?;
        sts_credentials(what, &self.endpoint, &response, Source::WebIdentity)
    }
}

/// A role session name when none is configured: `st-secrets-<ms since 1970>`.
fn session_name() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("st-secrets-{ms}")
}

/// The credentials of an STS answer (`AssumeRole`, `AssumeRoleWithWebIdentity`).
fn sts_credentials(
    what: &str,
    url: &str,
    response: &Response,
    source: Source,
) -> Result<Credentials, FetchError> {
    let text = SecretString::from(String::from_utf8_lossy(response.body.expose()).into_owned());
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
            expires: field("Expiration").as_deref().and_then(parse_timestamp),
            source,
        }),
        _ => Err(FetchError::transient(Error::Remote(format!(
            "{what}: the answer of {} holds no credentials",
            redact_url(url)
        )))),
    }
}

//! The AWS wire formats st-secrets speaks: SigV4 signing (through the
//! `aws-sigv4` crate), form bodies of the query protocol (STS), the few XML
//! elements read from STS answers, ISO 8601 timestamps, and error bodies of
//! both protocols.

use super::identity::Credentials;
use crate::error::shorten;
use crate::error::Error;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::FetchError;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// The content type of the query protocol's form bodies (STS).
pub const FORM_CONTENT_TYPE: (&str, &str) = (
    "content-type",
    "application/x-www-form-urlencoded; charset=utf-8",
);

/// A POST request signed with SigV4: the one way every signed call
/// (GetSecretValue, STS) is built and sent.
pub struct Signed<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl Signed<'_> {
    /// Signs the request and sends it through `http` (`what` names it in
    /// errors).
    pub fn send(&self, http: &Http, what: &str) -> Result<Response, FetchError> {
        let signed = signature_headers(
            self.credentials,
            self.region,
            self.service,
            "POST",
            self.url,
            self.headers,
            self.body,
        )?;
        let mut all: Vec<(&str, &str)> = self.headers.to_vec();
        all.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        http.send(what, "POST", self.url, &all, self.body)
    }
}

/// The body of `sts:GetCallerIdentity` in the query protocol.
pub const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// An `sts:GetCallerIdentity` request signed and not sent: the proof of an
/// AWS identity another service sends on to STS to learn who signed it
/// (Vault's `aws` login; Google's workload identity federation).
pub struct CallerIdentity {
    /// Every header to send: those asked for, then the signature's.
    pub headers: Vec<(String, String)>,
    /// The body (empty when the action is in the URL's query).
    pub body: &'static str,
}

impl CallerIdentity {
    /// The request to STS at `url` in `region`, signed with `credentials`,
    /// with `headers`: the action in a form body, or, with `in_query`, in
    /// `url`'s query (as Google's libraries send it).
    ///
    /// # Errors
    /// The request cannot be signed (a malformed URL or header).
    pub fn signed(
        credentials: &Credentials,
        region: &str,
        url: &str,
        headers: &[(&str, &str)],
        in_query: bool,
    ) -> Result<CallerIdentity, FetchError> {
        let body = if in_query { "" } else { GET_CALLER_IDENTITY };
        let signed = signature_headers(
            credentials,
            region,
            "sts",
            "POST",
            url,
            headers,
            body.as_bytes(),
        )?;
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(signed)
            .collect();
        Ok(CallerIdentity { headers, body })
    }

    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The headers that sign a request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary credentials), to send along with
/// `headers`.
pub fn signature_headers(
    credentials: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, FetchError> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_owned(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        credentials.expires,
        "st-secrets",
    )
    .into();
    let failed = |what: &str| {
        FetchError::permanent(Error::Internal(format!(
            "cannot sign the {service} request: {what}"
        )))
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| failed("incomplete signing parameters"))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| failed("the request cannot be signed (URL or headers)"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|_| failed("signing failed"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The text of the first `<tag>...</tag>` element of an XML document, with
/// the five predefined entities decoded. Enough for STS answers, whose
/// elements of interest are unique leaves.
pub fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&close)?;
    Some(
        doc[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// An error answer of an AWS service: its code (`AccessDeniedException`,
/// `ExpiredToken`, ...) and message, from a JSON 1.1 body, an
/// `x-amzn-ErrorType` header, or a query-protocol XML body.
pub struct ServiceError {
    /// The error code, `Unknown` when the answer carries none.
    pub code: String,
    /// The service's message, shortened and with anything that looks like
    /// the signing secret or session token removed.
    pub message: String,
}

impl ServiceError {
    /// Reads the error of an answer with status `status`.
    pub fn parse(body: &[u8], error_type_header: Option<&str>) -> ServiceError {
        let text = String::from_utf8_lossy(body);
        let (code, message) = if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            let code = v
                .get("__type")
                .or_else(|| v.get("code"))
                .and_then(|c| c.as_str())
                .map(str::to_owned);
            let message = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str())
                .map(str::to_owned);
            (code, message)
        } else {
            (xml_text(&text, "Code"), xml_text(&text, "Message"))
        };
        let code = code
            .or_else(|| error_type_header.map(str::to_owned))
            .map(|c| {
                // "aws.protocoltests#FooError:http://..." -> "FooError"
                let c = c.rsplit('#').next().unwrap_or(&c).to_owned();
                c.split(':').next().unwrap_or(&c).to_owned()
            })
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "Unknown".to_owned());
        let message = message.map(|m| shorten(&m)).unwrap_or_default();
        ServiceError { code, message }
    }

    /// Whether the code says the credentials were rejected or lack access.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code.as_str(),
            "AccessDeniedException"
                | "AccessDenied"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "RequestExpired"
                | "InvalidIdentityToken"
                | "IDPRejectedClaim"
                | "NotAuthorized"
        )
    }

    /// Whether the code says the temporary credentials expired.
    pub fn is_expired_token(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ExpiredTokenException" | "ExpiredToken" | "RequestExpired"
        )
    }

    /// Whether the code says the caller is being throttled.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "RequestThrottled"
                | "SlowDown"
                | "IDPCommunicationError"
        )
    }

    /// The error as a [`FetchError`] of `what`: auth codes give [`Error::Auth`];
    /// 5xx, 429 and throttling codes a transient [`Error::Remote`]; the rest a
    /// permanent [`Error::Remote`].
    pub fn into_fetch_error(self, what: &str, status: u16) -> FetchError {
        let text = if self.message.is_empty() {
            format!("{what}: {} (HTTP {status})", self.code)
        } else {
            format!("{what}: {} (HTTP {status}): {}", self.code, self.message)
        };
        if self.is_auth() {
            FetchError::permanent(Error::Auth(text))
        } else if status >= 500 || status == 429 || self.is_throttling() {
            FetchError::transient(Error::Remote(text))
        } else {
            FetchError::permanent(Error::Remote(text))
        }
    }
}

/// The response if its status is 200, else its error as a [`FetchError`].
pub(crate) fn require_success(what: &str, r: Response) -> Result<Response, FetchError> {
    if r.status == 200 {
        return Ok(r);
    }
    let e = ServiceError::parse(r.body.expose(), r.header("x-amzn-errortype"));
    let mut failure = e.into_fetch_error(what, r.status);
    if matches!(r.status, 401 | 403) {
        failure = FetchError::permanent(Error::Auth(failure.error.message().to_owned()));
    }
    Err(failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn xml_leaves_are_read_and_unescaped() {
        let doc = "<R><Credentials><AccessKeyId>ASIA1</AccessKeyId>\
                   <SessionToken> a&amp;b&lt; </SessionToken></Credentials></R>";
        assert_eq!(xml_text(doc, "AccessKeyId").unwrap(), "ASIA1");
        assert_eq!(xml_text(doc, "SessionToken").unwrap(), "a&b<");
        assert!(xml_text(doc, "Expiration").is_none());
        assert!(xml_text("<A>unterminated", "A").is_none());
    }

    #[test]
    fn timestamps() {
        let t = |s| {
            crate::secrets::lifetime::parse_timestamp(s)
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
        };
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2026-11-21T21:31:09Z"), Some(1_795_296_669));
        assert_eq!(t("2026-11-21T21:31:09.123Z"), Some(1_795_296_669));
        assert_eq!(t("2026-11-21T21:31:09+00:00"), Some(1_795_296_669));
        assert_eq!(t("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(t("2026-11-21T23:31:09+02:00"), Some(1_795_296_669));
        for bad in [
            "",
            "2026-11-21",
            "2026-13-01T00:00:00Z",
            "2026-11-21T25:00:00Z",
            "x-y-zTa:b:cZ",
            "2026-02-30T00:00:00Z",
            "99999999999999-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn service_errors_are_classified() {
        let e = ServiceError::parse(
            br#"{"__type":"com.amazonaws.secretsmanager#AccessDeniedException","message":"no"}"#,
            None,
        );
        assert_eq!(e.code, "AccessDeniedException");
        let f = e.into_fetch_error("GetSecretValue", 400);
        assert_eq!(f.error.code_name(), "ST_AUTH");
        assert!(!f.transient);
        let e = ServiceError::parse(b"", Some("ThrottlingException:http://internal"));
        assert_eq!(e.code, "ThrottlingException");
        assert!(e.into_fetch_error("x", 400).transient);
        let xml = b"<ErrorResponse><Error><Code>ExpiredToken</Code><Message>gone</Message></Error></ErrorResponse>";
        let e = ServiceError::parse(xml, None);
        assert!(e.is_expired_token() && e.is_auth());
        let e = ServiceError::parse(b"<html>bad gateway</html>", None);
        assert_eq!(e.code, "Unknown");
        let f = e.into_fetch_error("x", 502);
        assert!(f.transient && f.error.code_name() == "ST_REMOTE");
    }
}

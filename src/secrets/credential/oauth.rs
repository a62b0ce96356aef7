//! The OAuth 2.0 wire the cloud providers' credentials share: credentials
//! files read safely, their fields, the URLs credentials may be sent to,
//! token requests (form POSTs) and their answers, and the errors of the
//! services (OAuth's `error`/`error_description`; Google's and Azure's
//! `{"error": {...}}`).

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::{self, Readers};
use crate::secrets::credential::Issued;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::url::redact_url;
use crate::secrets::transport::{FetchError, RemoteSettings};
use crate::sys::clock;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// The largest credentials file read.
const MAX_CREDENTIALS_FILE: u64 = 1 << 20;

/// A credentials file's JSON object, read bounded and refused when group
/// or others may write it.
pub(crate) fn read_json_file(path: &Path, what: &str) -> Result<Map<String, Value>, Error> {
    // The identity-file rule: owned by this user or root, not writable by
    // others (what the file names is who the process becomes).
    let bytes = identity_file::read(path, what, MAX_CREDENTIALS_FILE, Readers::Anyone)?;
    let doc = serde_json::from_slice::<Value>(bytes.expose());
    drop(bytes);
    match doc {
        Ok(Value::Object(map)) => Ok(map),
        Ok(mut other) => {
            zeroize_json(&mut other);
            Err(Error::Parse(format!(
                "{what} {} is JSON but not an object",
                path.display()
            )))
        }
        Err(e) => Err(Error::Parse(format!(
            "{what} {} is not JSON (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))),
    }
}

/// A field of a credentials document that must be a non-empty string.
pub(crate) fn field(doc: &Map<String, Value>, name: &str, file: &Path) -> Result<String, Error> {
    match doc.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(Error::Parse(format!(
            "credentials file {}: '{name}' is not a non-empty string",
            file.display()
        ))),
        None => Err(Error::Parse(format!(
            "credentials file {}: no '{name}'",
            file.display()
        ))),
    }
}

/// An optional string field.
pub(crate) fn optional(doc: &Map<String, Value>, name: &str) -> Option<String> {
    doc.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Refuses a URL credentials would be sent to unless it is https, or
/// http to this host (an emulator, a test server).
pub(crate) fn secure_url(url: &str, what: &str) -> Result<(), Error> {
    crate::secrets::transport::url::check(url, crate::secrets::transport::url::PlainHttp::Loopback)
        .map_err(|why| {
            Error::InvalidArgument(format!(
                "{what} {}: {why}; credentials are sent there",
                redact_url(url)
            ))
        })
}

/// The access token of an OAuth 2.0 token answer (`access_token`,
/// `expires_in` as a number or a string, or, as Azure's App Service
/// answers, `expires_on` in seconds since the epoch), or the failure it
/// says; `sent` is when the request was sent (monotonic nanoseconds).
pub(crate) fn token_answer(
    what: &str,
    r: Response,
    sent: u64,
) -> Result<Issued<SecretString>, FetchError> {
    token_answer_saying(what, r, sent).map(|(issued, _)| issued)
}

/// [`token_answer`], with the `expires_in` the answer itself said (`None`
/// when it said none), for a caller that holds no credential of unknown
/// lifetime.
pub(crate) fn token_answer_saying(
    what: &str,
    r: Response,
    sent: u64,
) -> Result<(Issued<SecretString>, Option<u64>), FetchError> {
    if r.status != 200 {
        return Err(oauth_failure(what, &r));
    }
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(format!(
            "{what}: the answer is not JSON"
        ))));
    };
    let token = doc["access_token"].as_str().filter(|t| !t.is_empty());
    let seconds = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    };
    let said = seconds(&doc["expires_in"]);
    let expires_in = said.or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        seconds(&doc["expires_on"]).map(|on| on.saturating_sub(now))
    });
    let out = match token {
        Some(t) => Ok((
            Issued::token(
                SecretString::from(t),
                expires_in.map(Duration::from_secs),
                sent,
            ),
            said,
        )),
        None => Err(FetchError::permanent(Error::Auth(format!(
            "{what}: the answer holds no access_token"
        )))),
    };
    zeroize_json(&mut doc);
    out
}

/// The failure an OAuth 2.0, Google or Azure error answer says: refused
/// identities are permanent [`Error::Auth`]; 429 and 5xx are transient,
/// with the wait `Retry-After` asks.
pub(crate) fn oauth_failure(what: &str, r: &Response) -> FetchError {
    let doc = r.json().unwrap_or(Value::Null);
    // OAuth's {"error": "invalid_grant", "error_description": "..."},
    // Google's {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "..."}},
    // Azure's {"error": {"code": "Forbidden", "message": "...", "innererror": {"code": "..."}}}.
    let text_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let (code, message) = match &doc["error"] {
        Value::String(code) => (
            code.clone(),
            doc["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        Value::Object(e) => {
            let mut code = text_of(e.get("status").or(e.get("code")));
            let inner = text_of(e.get("innererror").and_then(|i| i.get("code")));
            if !inner.is_empty() {
                code = format!("{code} ({inner})");
            }
            (code, text_of(e.get("message")))
        }
        _ => (String::new(), String::new()),
    };
    let mut text = format!("{what}: HTTP {}", r.status);
    if !code.is_empty() {
        text.push_str(&format!(" {}", crate::error::shorten(&code)));
    }
    if !message.is_empty() {
        text.push_str(&format!(": {}", crate::error::shorten(&message)));
    }
    match r.status {
        429 | 500..=599 => FetchError::transient(Error::Remote(text)).retry_after(r.retry_after()),
        400 | 401 | 403 => FetchError::permanent(Error::Auth(text)),
        _ => FetchError::permanent(Error::Remote(text)),
    }
}

/// A form POST to an OAuth 2.0 token endpoint, retries included.
pub(crate) fn post_form(
    http: &Http,
    settings: &RemoteSettings,
    what: &str,
    url: &str,
    pairs: &[(&str, &str)],
) -> Result<Issued<SecretString>, FetchError> {
    let body = SecretString::from(crate::secrets::transport::url::form(pairs));
    with_retries(settings, || {
        let sent = clock::precise();
        let r = http.send(
            what,
            "POST",
            url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.expose().as_bytes(),
        )?;
        token_answer(what, r, sent)
    })
}

/// The RSA key of the PEM private key `pem` (PKCS #8 or PKCS #1): a
/// service account's, a job token's signing key. Else what is wrong with
/// it, for the caller's message ("is not a PEM private key", ...).
pub(crate) fn rsa_key_from_pem(pem: &[u8]) -> Result<ring::signature::RsaKeyPair, &'static str> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| "is not a PEM private key")?;
    match &der {
        PrivateKeyDer::Pkcs8(k) => ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err("is not an RSA key"),
    }
    .map_err(|_| "is not an RSA key ring accepts (2048 to 8192 bits)")
}

/// A JWT of `header` and `claims` signed with `key` (SHA-256, with
/// `padding`: `RSA_PKCS1_SHA256` for RS256, `RSA_PSS_SHA256` for PS256),
/// as a service account's or a client certificate's assertion; `None`
/// when signing failed.
pub(crate) fn signed_jwt(
    key: &ring::signature::RsaKeyPair,
    padding: &'static dyn ring::signature::RsaEncoding,
    header: &Value,
    claims: &Value,
) -> Option<SecretString> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .ok()?;
    Some(SecretString::from(format!(
        "{signed}.{}",
        b64.encode(&signature)
    )))
}

//! What a `GetSecretValue` answer says, whoever sent the request (the
//! service or the agent on the node): the secret (`SecretString`, or
//! `SecretBinary` in base64, holding a JSON object of keys), or why there
//! is none.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::aws_identity::wire::ServiceError;
use crate::secrets::provider::{zeroize_json, SecretMap, Version};
use crate::secrets::transport::http::Response;
use crate::secrets::transport::{FetchError, Fetched};
use base64::Engine;
use serde_json::Value;

/// Why `GetSecretValue` gave no secret.
pub(crate) enum Refusal {
    /// The service said the temporary credentials expired.
    ExpiredCredentials(FetchError),
    /// Anything else.
    Other(FetchError),
}

impl Refusal {
    pub(crate) fn into_fetch_error(self) -> FetchError {
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
            instead_of: None,
            leased: false,
            ends: None,
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

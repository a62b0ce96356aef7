//! Vault's answers: the status classes of its API, its error lists, what a
//! 404 says, a mount's KV version, and the secret's fields in a KV read.

use crate::error::shorten;
use crate::error::Error;
use crate::secrets::provider::{zeroize_json, SecretMap, Version};
use crate::secrets::transport::http::Response;
use crate::secrets::transport::{FetchError, Fetched};
use serde_json::Value;
use std::time::Duration;

/// What a 404 answer says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotFound {
    /// Nothing more (`{"errors": []}`, a deleted KV v2 version): absent.
    Absent,
    /// A warning that the mount is KV v2 (a v1 path was read).
    MountIsV2,
    /// "namespace not found".
    NoNamespace,
    /// "no handler for route": no mount or auth method at that path.
    NoRoute,
    /// Other errors.
    Errors,
}

/// Reads a 404's body (Vault's and OpenBao's wording).
pub(crate) fn not_found_kind(r: &Response) -> NotFound {
    let Some(doc) = r.json() else {
        return NotFound::Absent;
    };
    let strings = |field: &str| -> Vec<String> {
        doc[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let errors = strings("errors");
    if errors.iter().any(|e| e.contains("namespace not found")) {
        NotFound::NoNamespace
    } else if errors.iter().any(|e| e.contains("no handler for route")) {
        NotFound::NoRoute
    } else if !errors.is_empty() {
        NotFound::Errors
    } else if strings("warnings")
        .iter()
        .any(|w| w.contains("versioned K/V"))
    {
        NotFound::MountIsV2
    } else {
        NotFound::Absent
    }
}

/// The KV version of a `sys/internal/ui/mounts/<mount>` answer, if it is a
/// KV mount.
pub(crate) fn mount_version(r: &Response) -> Option<u8> {
    let doc = r.json().unwrap_or(Value::Null);
    let version = &doc["data"]["options"]["version"];
    let version = version
        .as_str()
        .map(str::to_owned)
        .or_else(|| version.as_u64().map(|v| v.to_string()));
    match (doc["data"]["type"].as_str(), version.as_deref()) {
        (Some("kv"), Some("2")) => Some(2),
        (Some("kv") | Some("generic"), _) => Some(1),
        _ => None,
    }
}

/// The status classes of Vault's API.
pub(crate) fn expect(r: Response, what: &str) -> Result<Response, FetchError> {
    if (200..300).contains(&r.status) {
        return Ok(r);
    }
    let summary = errors_summary(&r);
    let text = |kind: &str| format!("{what}: {kind} (HTTP {}){summary}", r.status);
    Err(match r.status {
        401 | 403 => FetchError::permanent(Error::Auth(text("permission denied"))),
        503 => FetchError::transient(Error::ProviderUnavailable(text(
            "Vault is sealed or unavailable",
        )))
        .retry_after(r.retry_after()),
        429 => FetchError::transient(Error::Remote(text("too many requests")))
            .retry_after(r.retry_after()),
        500..=599 => FetchError::transient(Error::Remote(text("server error"))),
        _ => FetchError::permanent(Error::Remote(text("request refused"))),
    })
}

/// `": first error; second error"` from `{"errors": [...]}` (or RustyVault's
/// `{"error": "..."}`), each shortened; empty when there is none.
pub(crate) fn errors_summary(r: &Response) -> String {
    let Some(doc) = r.json() else {
        return String::new();
    };
    let mut items: Vec<String> = doc["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .take(3)
        .map(shorten)
        .filter(|e| !e.is_empty())
        .collect();
    if let Some(e) = doc["error"].as_str() {
        items.push(shorten(e));
    }
    if items.is_empty() {
        String::new()
    } else {
        format!(": {}", items.join("; "))
    }
}

/// The secret's fields from a KV read (`version` 2: under `data.data`).
pub(crate) fn secret_from(r: Response, version: u8) -> Result<Fetched<SecretMap>, FetchError> {
    if r.status == 404 {
        return Ok(Fetched::Absent);
    }
    let r = expect(r, "Vault read")?;
    let Some(mut doc) = r.json() else {
        return Err(FetchError::transient(Error::Remote(
            "Vault read: the answer is not JSON".into(),
        )));
    };
    // Taken out by hand, never by `doc["data"]` on a mutable value: that
    // panics when the server's answer is not an object (found by fuzzing).
    let outer = match &mut doc {
        Value::Object(o) => o.remove("data").unwrap_or(Value::Null),
        _ => Value::Bool(false), // not an object: refused below
    };
    let mut kv_version = None;
    let data = match (version, outer) {
        (2, Value::Object(mut o)) => {
            kv_version = o
                .get("metadata")
                .and_then(|m| m.get("version"))
                .and_then(Value::as_u64)
                .map(|v| Version {
                    id: v.to_string(),
                    ..Version::default()
                });
            o.remove("data").unwrap_or(Value::Null)
        }
        (2, Value::Null) => Value::Null,
        (2, mut other) => {
            zeroize_json(&mut other);
            Value::Bool(false)
        }
        (_, data) => data,
    };
    zeroize_json(&mut doc);
    match data {
        Value::Object(map) => Ok(Fetched::Found(
            SecretMap::from_json_object(map).with_version(kv_version),
        )),
        // KV v2: a deleted or destroyed latest version reads as data: null.
        Value::Null => Ok(Fetched::Absent),
        mut other => {
            zeroize_json(&mut other);
            Err(FetchError::permanent(Error::Parse(format!(
                "Vault read: the secret's data is not an object of fields (KV v{version})"
            ))))
        }
    }
}

/// The string at `path` of an answer's JSON, the whole answer zeroed
/// before it is dropped (it may hold a token beside the string).
pub(crate) fn take_string(doc: Option<Value>, path: &[&str]) -> Option<String> {
    let mut doc = doc?;
    let out = path
        .iter()
        .try_fold(&doc, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .map(str::to_owned);
    zeroize_json(&mut doc);
    out
}

/// A duration in seconds as Vault answers it (`lease_duration`, `ttl`):
/// whole seconds, else a number taken as at most [`LONGEST`] (ten years): a
/// huge one (`1e30`) and a negative one (`-1`, "no end") alike, so that no
/// answer makes an error or an overflow; `None` when it is not a number.
///
/// [`LONGEST`]: crate::secrets::lifetime::LONGEST
pub(crate) fn seconds(v: &Value) -> Option<Duration> {
    use crate::secrets::lifetime::LONGEST;
    if let Some(s) = v.as_u64() {
        return Some(Duration::from_secs(s).min(LONGEST));
    }
    let f = v.as_f64()?;
    Some(if f < 0.0 || !f.is_finite() || f >= LONGEST.as_secs_f64() {
        LONGEST
    } else {
        Duration::from_secs_f64(f)
    })
}

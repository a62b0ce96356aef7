//! The values of configuration keys: each checked, with a message that
//! names the key and never repeats the value.

use crate::error::Error;
use crate::secrets::transport::unix;
use crate::secrets::vault::LeasedPath;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest number of seconds a duration setting takes: ten years.
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

pub(super) fn string<'a>(key: &str, value: &'a Value) -> Result<&'a str, Error> {
    value
        .as_str()
        .ok_or_else(|| Error::InvalidArgument(format!("config key '{key}' must be a string")))
}

/// A duration in seconds: a number from 0 to [`MAX_SECONDS`] (ten years).
/// Anything else, including numbers too large for a `Duration`, is an error
/// naming the key (never a panic).
pub(super) fn seconds(key: &str, value: &Value) -> Result<Duration, Error> {
    value
        .as_f64()
        .filter(|s| s.is_finite() && (0.0..=MAX_SECONDS).contains(s))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "config key '{key}' must be a number of seconds from 0 to {MAX_SECONDS}"
            ))
        })
}

pub(super) fn nonempty(key: &str, value: &Value) -> Result<String, Error> {
    let s = string(key, value)?;
    if s.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "config key '{key}' must not be empty"
        )));
    }
    Ok(s.to_owned())
}

/// A non-empty string, or a non-empty list of them, each passed through
/// `clean` and still non-empty: the secret names and paths.
use crate::secrets::transport::vars::MAX_LISTED;

pub(super) fn names(
    key: &str,
    value: &Value,
    clean: fn(&str) -> String,
) -> Result<Vec<String>, Error> {
    let items: Vec<String> = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}' must not be an empty list"
            )))
        }
        Value::Array(items) if items.len() > MAX_LISTED => {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}' lists {} items; at most {MAX_LISTED} are taken",
                items.len()
            )))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(clean).ok_or_else(|| {
                    Error::InvalidArgument(format!("config key '{key}': item {i} must be a string"))
                })
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) => vec![clean(s)],
        _ => {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}' must be a string or a list of strings"
            )))
        }
    };
    if items.iter().any(String::is_empty) {
        return Err(Error::InvalidArgument(format!(
            "config key '{key}' must not hold an empty name"
        )));
    }
    Ok(items)
}

pub(super) fn url(key: &str, value: &Value) -> Result<String, Error> {
    let s = nonempty(key, value)?;
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Err(Error::InvalidArgument(format!(
            "config key '{key}' must be an http:// or https:// URL"
        )));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

pub(super) fn positive_seconds(key: &str, value: &Value) -> Result<Duration, Error> {
    let d = seconds(key, value)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
        return Err(Error::InvalidArgument(format!(
            "config key '{key}' must be between 0.001 and 3600 seconds"
        )));
    }
    Ok(d)
}

pub(super) fn count(key: &str, value: &Value, max: u64) -> Result<u32, Error> {
    value
        .as_u64()
        .filter(|n| *n <= max)
        .map(|n| n as u32)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "config key '{key}' must be a whole number from 0 to {max}"
            ))
        })
}

/// The top-level object of a configuration, with the first key given twice
/// (JSON allows it and serde_json keeps the last: here that would silently
/// drop one of two settings, so `from_json` refuses it).
pub(super) struct UniqueKeys {
    pub(super) map: serde_json::Map<String, Value>,
    pub(super) duplicate: Option<String>,
}

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut keys = UniqueKeys {
                    map: serde_json::Map::new(),
                    duplicate: None,
                };
                while let Some(key) = a.next_key::<String>()? {
                    let value: Value = a.next_value()?;
                    if keys.map.insert(key.clone(), value).is_some() {
                        keys.duplicate.get_or_insert(key);
                    }
                }
                Ok(keys)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A Vault address: an http(s) URL, or `unix://PATH`.
pub(super) fn vault_address(k: &str, v: &Value) -> Result<String, Error> {
    let s = nonempty(k, v)?;
    if !s.starts_with(unix::SCHEME) {
        return url(k, v);
    }
    if unix::socket_path(&s).is_none() {
        return Err(Error::InvalidArgument(format!(
            "config key '{k}' names no socket: write unix:///path/to/socket"
        )));
    }
    Ok(s)
}

/// `vault_leases`: an object of names, each a path (read with GET) or
/// `{"path": ..., "data": {...}}` (written with the data: `pki/issue/ROLE`
/// takes its `common_name` so).
pub(super) fn leases(k: &str, v: &Value) -> Result<BTreeMap<String, LeasedPath>, Error> {
    let object = v.as_object().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "config key '{k}' must be an object of names, each a path or {{\"path\": ..., \"data\": {{...}}}}"
        ))
    })?;
    let mut out = BTreeMap::new();
    for (name, spec) in object {
        let what = format!("{k}' name '{}", crate::error::shorten(name));
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::InvalidArgument(format!(
                "config key '{what}' is not a name: use letters, digits, '_' and '-'"
            )));
        }
        let (path, data) = match spec {
            Value::String(_) => (nonempty(&what, spec)?, None),
            Value::Object(o) => {
                if let Some(extra) = o.keys().find(|x| *x != "path" && *x != "data") {
                    return Err(Error::InvalidArgument(format!(
                        "config key '{what}': unknown field '{}' (known: path, data)",
                        crate::error::shorten(extra)
                    )));
                }
                let path = o.get("path").cloned().unwrap_or(Value::Null);
                let path = nonempty(&format!("{what}' field 'path"), &path)?;
                let data = match o.get("data") {
                    None | Some(Value::Null) => None,
                    Some(d @ Value::Object(_)) => Some(d.to_string()),
                    Some(_) => {
                        return Err(Error::InvalidArgument(format!(
                            "config key '{what}' field 'data' must be an object"
                        )))
                    }
                };
                (path, data)
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "config key '{what}' must be a path or {{\"path\": ..., \"data\": {{...}}}}"
                )))
            }
        };
        let path = path.trim().trim_matches('/').to_owned();
        if path.is_empty()
            || path
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(Error::InvalidArgument(format!(
                "config key '{what}' is not a path such as database/creds/ROLE"
            )));
        }
        out.insert(name.clone(), LeasedPath { path, data });
    }
    Ok(out)
}

/// An error of a key's value, said as the key's.
pub(super) fn in_key(k: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| Error::InvalidArgument(format!("config key '{k}': {}", e.message()))
}

/// `exchanges`: an object of secret names, each an exchange's settings.
pub(super) fn exchanges(
    k: &str,
    v: &Value,
) -> Result<crate::secrets::exchange::ExchangeSettingsMap, Error> {
    crate::secrets::exchange::settings_map(v)
        .map_err(|e| Error::InvalidArgument(format!("config key '{k}': {}", e.message())))
}

//! The values of configuration keys: each checked, with a message that
//! names the key and never repeats the value.

use crate::error::Error;
use serde_json::Value;
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
pub(super) fn names(
    key: &str,
    value: &Value,
    clean: fn(&str) -> String,
) -> Result<Vec<String>, Error> {
    const LIMIT: usize = 64;
    let items: Vec<String> = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}' must not be an empty list"
            )))
        }
        Value::Array(items) if items.len() > LIMIT => {
            return Err(Error::InvalidArgument(format!(
                "config key '{key}' lists {} items; at most {LIMIT} are taken",
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

//! Hardware pricing: what each GPU type costs per second, SimpleTuner's
//! defaults unless the store's `replicate` configuration has a valid,
//! non-empty `hardware_info`. The answer is cached process-wide for 5 minutes
//! (key `provider:replicate:hardware_info` of the provider-config cache, so a
//! save of the `replicate` configuration drops it too), with a manual set and
//! clear.

use super::Store;
use crate::cache::global::provider_config_cache;
use crate::error::Error;
use crate::secret::SecretBytes;
use serde_json::{json, Value};
use std::time::Duration;

/// The hardware whose price is the default (SimpleTuner's default GPU).
pub const DEFAULT_HARDWARE: &str = "gpu-l40s";
/// How long the hardware information is cached.
pub const TTL: Duration = Duration::from_secs(300);
const CACHE_KEY: &str = "provider:replicate:hardware_info";

/// The highest `cost_per_second` accepted: 100 (USD 360,000 an hour), far
/// above any real price, so that a mistyped or hostile value cannot make
/// costs overflow to infinity.
pub const MAX_COST_PER_SECOND: f64 = 100.0;

/// SimpleTuner's default pricing.
pub fn defaults() -> Value {
    json!({
        "gpu-l40s": {"name": "L40S (48GB)", "cost_per_second": 0.000975},
        "gpu-a100-large": {"name": "A100 (80GB)", "cost_per_second": 0.0014},
    })
}

/// Checks hardware information: an object of entries, each an object with a
/// number `cost_per_second` from 0 to [`MAX_COST_PER_SECOND`] (and optionally
/// a string `name`).
pub fn validate(info: &Value) -> Result<(), Error> {
    let entries = info.as_object().ok_or_else(|| {
        Error::InvalidArgument("hardware_info must be a JSON object of hardware entries".into())
    })?;
    for (id, entry) in entries {
        let cost = entry.get("cost_per_second").and_then(Value::as_f64);
        if !entry.is_object()
            || !cost.is_some_and(|c| c.is_finite() && (0.0..=MAX_COST_PER_SECOND).contains(&c))
        {
            return Err(Error::InvalidArgument(format!(
                "hardware_info entry '{id}' must be an object with a number cost_per_second \
                 from 0 to {MAX_COST_PER_SECOND}"
            )));
        }
        if entry.get("name").is_some_and(|n| !n.is_string()) {
            return Err(Error::InvalidArgument(format!(
                "hardware_info entry '{id}': name must be a string"
            )));
        }
    }
    Ok(())
}

/// The hardware information as JSON text: cached, else the store's `replicate`
/// `hardware_info` when valid and non-empty, else the defaults (also when
/// `store` is `None`).
pub fn info(store: Option<&Store>) -> Result<String, Error> {
    let bytes = provider_config_cache().get_or_set(CACHE_KEY, Some(TTL), || {
        let configured = match store {
            Some(s) => {
                let config: Value = serde_json::from_str(&s.get_provider_config("replicate")?)
                    .map_err(|_| Error::Internal("stored configuration is not JSON".into()))?;
                config
                    .get("hardware_info")
                    .filter(|i| i.as_object().is_some_and(|m| !m.is_empty()) && validate(i).is_ok())
                    .cloned()
            }
            None => None,
        };
        Ok::<_, Error>(SecretBytes::from(
            configured.unwrap_or_else(defaults).to_string().into_bytes(),
        ))
    })?;
    String::from_utf8(bytes.expose().to_vec())
        .map_err(|_| Error::Internal("cached hardware info is not UTF-8".into()))
}

/// Sets the hardware information (validated) for the next 5 minutes.
pub fn set(info_json: &str) -> Result<(), Error> {
    let info: Value =
        serde_json::from_str(info_json).map_err(|e| Error::invalid_json("hardware info", &e))?;
    validate(&info)?;
    if info.as_object().is_some_and(|m| m.is_empty()) {
        return Err(Error::InvalidArgument(
            "hardware info has no entries".into(),
        ));
    }
    provider_config_cache().set(
        CACHE_KEY,
        SecretBytes::from(info.to_string().into_bytes()),
        Some(TTL),
    );
    Ok(())
}

/// The cached hardware information, if any (nothing is read or cached).
pub fn cached() -> Option<String> {
    provider_config_cache()
        .get_map(CACHE_KEY, |b| String::from_utf8(b.expose().to_vec()).ok())
        .flatten()
}

/// Drops the cached hardware information.
pub fn clear_cache() {
    provider_config_cache().delete(CACHE_KEY);
}

/// The hourly cost of `hardware` (default: [`DEFAULT_HARDWARE`]): its
/// `cost_per_second` times 3,600.
pub fn hourly_cost(store: Option<&Store>, hardware: Option<&str>) -> Result<f64, Error> {
    let id = hardware.unwrap_or(DEFAULT_HARDWARE);
    let info: Value = serde_json::from_str(&info(store)?)
        .map_err(|_| Error::Internal("hardware info is not JSON".into()))?;
    let cost = info
        .get(id)
        .and_then(|e| e.get("cost_per_second"))
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::NotFound(format!("no price for hardware '{id}'")))?;
    // Prices pass `validate` on every way in; a result that is still not a
    // finite, non-negative number is refused rather than returned.
    let hourly = cost * 3600.0;
    if !hourly.is_finite() || hourly < 0.0 {
        return Err(Error::InvalidArgument(format!(
            "the price of hardware '{id}' is out of range"
        )));
    }
    Ok(hourly)
}

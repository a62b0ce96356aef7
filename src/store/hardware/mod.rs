//! Hardware pricing: what each GPU type costs per second, SimpleTuner's
//! defaults unless the store's `replicate` configuration has a valid,
//! non-empty `hardware_info`. The answer is cached process-wide for 5 minutes
//! (key `provider:replicate:hardware_info` of the provider-config cache, so a
//! save of the `replicate` configuration drops it too), with a manual set and
//! clear.

pub(super) mod table;

use super::Store;
use crate::cache::global::provider_config_cache;
use crate::error::Error;
use crate::secret::SecretBytes;
use serde_json::Value;
use std::time::Duration;

/// How long the hardware information is cached.
pub const TTL: Duration = Duration::from_secs(300);
const CACHE_KEY: &str = "provider:replicate:hardware_info";

pub use table::{defaults, validate, DEFAULT_HARDWARE, MAX_COST_PER_SECOND};

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

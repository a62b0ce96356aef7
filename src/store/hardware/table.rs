//! The hardware table's rule and SimpleTuner's default prices, which the
//! store checks a saved `hardware_info` against.

use crate::error::Error;
use serde_json::{json, Value};

/// The hardware whose price is the default (SimpleTuner's default GPU).
pub const DEFAULT_HARDWARE: &str = "gpu-l40s";

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

//! The `X-Vault-Index` header: kept as the highest seen, to send with reads.

use serde_json::Value;

/// The highest `X-Vault-Index` seen: OpenBao's is base64 of
/// `{"cluster": ..., "value": "N"}`; another form (Vault's) is opaque and
/// the latest one is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) raw: String,
    order: Option<(String, u64)>,
}

impl Index {
    pub(super) fn parse(raw: &str) -> Index {
        use base64::Engine as _;
        let order = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|doc| {
                let value = doc["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .or_else(|| doc["value"].as_u64())?;
                Some((
                    doc["cluster"].as_str().unwrap_or_default().to_owned(),
                    value,
                ))
            });
        Index {
            raw: raw.trim().to_owned(),
            order,
        }
    }

    /// Whether `self`, just seen, should replace `held`.
    pub(super) fn newer_than(&self, held: &Index) -> bool {
        match (&self.order, &held.order) {
            (Some((c, v)), Some((hc, hv))) => c != hc || v > hv,
            _ => self.raw != held.raw,
        }
    }
}

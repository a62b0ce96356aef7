//! A flat map of secrets read from a document (the secrets file, an AWS
//! secret's JSON, a Vault secret's fields): scalar values are kept as text,
//! anything else is skipped (by key, for diagnosis) and its strings zeroed.

use super::env::normalize_key;
use crate::secret::SecretString;
use std::collections::HashMap;
use zeroize::Zeroize;

/// Secrets by key, with the keys whose values were skipped.
#[derive(Default)]
pub struct SecretMap {
    values: HashMap<String, SecretString>,
    /// Keys whose values are not scalars (or are null): not secrets, skipped.
    skipped: Vec<String>,
}

impl SecretMap {
    /// The keys and scalar values of a JSON object (strings as they are,
    /// numbers and booleans as their JSON text).
    pub fn from_json_object(map: serde_json::Map<String, serde_json::Value>) -> SecretMap {
        let mut out = SecretMap::default();
        for (key, value) in map {
            match value {
                serde_json::Value::String(s) => out.insert(key, s),
                serde_json::Value::Number(n) => out.insert(key, n.to_string()),
                serde_json::Value::Bool(b) => out.insert(key, b.to_string()),
                mut other => {
                    zeroize_json(&mut other);
                    out.skip(key);
                }
            }
        }
        out.skipped.sort();
        out
    }

    /// Adds a value.
    pub fn insert(&mut self, key: String, value: String) {
        self.values.insert(key, SecretString::from(value));
    }

    /// Records a key whose value is not a secret.
    pub fn skip(&mut self, key: String) {
        self.skipped.push(key);
    }

    /// The key as given, else its normalized form (`hf-token` finds
    /// `HF_TOKEN`), with the stored key.
    pub fn resolve<'a>(&'a self, key: &str) -> Option<(&'a str, &'a SecretString)> {
        if let Some((k, v)) = self.values.get_key_value(key) {
            return Some((k, v));
        }
        let normalized = normalize_key(key);
        self.values
            .get_key_value(&normalized)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// How many secrets the map holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the map holds no secret.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `"N keys"`, and the skipped keys when there are any (never a value).
    pub fn describe(&self) -> String {
        let n = self.values.len();
        let mut d = format!("{n} key{}", if n == 1 { "" } else { "s" });
        if !self.skipped.is_empty() {
            let mut skipped = self.skipped.clone();
            skipped.sort();
            d.push_str(&format!(
                "; skipped non-scalar or null values (not secrets): {}",
                skipped.join(", ")
            ));
        }
        d
    }
}

/// Zeroes every string inside a JSON value.
pub fn zeroize_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_kept_and_the_rest_skipped() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"HF_TOKEN": "hf_x", "PORT": 8080, "ON": true, "NESTED": {"a": "b"}, "NONE": null}"#,
        )
        .unwrap();
        let serde_json::Value::Object(map) = v else {
            unreachable!()
        };
        let m = SecretMap::from_json_object(map);
        assert_eq!(m.len(), 3);
        assert_eq!(m.resolve("hf-token").unwrap().1.expose(), "hf_x");
        assert_eq!(m.resolve("PORT").unwrap().1.expose(), "8080");
        assert_eq!(m.resolve("ON").unwrap().1.expose(), "true");
        assert!(m.resolve("NESTED").is_none());
        assert_eq!(
            m.describe(),
            "3 keys; skipped non-scalar or null values (not secrets): NESTED, NONE"
        );
    }
}

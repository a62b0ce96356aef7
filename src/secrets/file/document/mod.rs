//! The secrets file's document: JSON or YAML parsed into a map that can be
//! edited (a key saved or deleted) and written back keeping its format, its
//! other keys and their order; and its snapshot of scalar values for lookups.

mod yaml;

/// Every YAML document of `text` (a `---` stream), read with the secrets
/// file's limits: aliases may grow the documents by no more than the
/// text's size plus 1 MiB, nesting stops at 128 levels; merge keys are not
/// applied. The error says what is wrong (and where), never any content.
pub fn yaml_documents(text: &str) -> Result<Vec<yaml_serde::Value>, String> {
    yaml::parse_documents(text).map_err(|e| e.describe())
}

use crate::error::Error;
use crate::secrets::provider::{normalize_key, preferred_key, zeroize_json, SecretMap};
use std::path::Path;
use zeroize::Zeroize;

/// The file's format, from its extension (`.yaml` and `.yml` are YAML; any
/// other is JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Yaml,
}

impl Format {
    pub(super) fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml") => {
                Format::Yaml
            }
            _ => Format::Json,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        }
    }
}

/// A parsed secrets file, editable without losing its format or key order.
pub(super) enum Document {
    Json(serde_json::Map<String, serde_json::Value>),
    Yaml(yaml_serde::Mapping),
}

impl Document {
    pub(super) fn empty(format: Format) -> Document {
        match format {
            Format::Json => Document::Json(serde_json::Map::new()),
            Format::Yaml => Document::Yaml(yaml_serde::Mapping::new()),
        }
    }

    /// Parses a file's bytes. Error messages give the file and the line, never
    /// any of the content (parser messages can quote values, so they are not
    /// passed on).
    pub(super) fn parse(bytes: &[u8], format: Format, path: &Path) -> Result<Document, Error> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::Parse(format!(
                "{}: not valid UTF-8 (at byte {})",
                path.display(),
                e.valid_up_to()
            ))
        })?;
        if text.trim().is_empty() {
            return Ok(Document::empty(format));
        }
        match format {
            Format::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => Ok(Document::Json(map)),
                Ok(_) => Err(Error::Parse(format!(
                    "{}: the top level must be a JSON object of key: value pairs",
                    path.display()
                ))),
                Err(e) => Err(Error::Parse(format!(
                    "{}: invalid JSON at line {}, column {}",
                    path.display(),
                    e.line(),
                    e.column()
                ))),
            },
            Format::Yaml => match yaml::parse(text) {
                Ok(yaml_serde::Value::Mapping(map)) => Ok(Document::Yaml(map)),
                Ok(yaml_serde::Value::Null) => Ok(Document::empty(format)),
                Ok(_) => Err(Error::Parse(format!(
                    "{}: the top level must be a YAML mapping of key: value pairs",
                    path.display()
                ))),
                Err(e) => Err(e.into_error(path)),
            },
        }
    }

    /// [`parse`](Self::parse) and [`into_snapshot`](Self::into_snapshot)
    /// in one: a JSON file is read straight into the snapshot (half the
    /// memory and time for a large one), with the same errors.
    pub(super) fn snapshot(bytes: &[u8], format: Format, path: &Path) -> Result<SecretMap, Error> {
        if format == Format::Json {
            if let Ok(text) = std::str::from_utf8(bytes) {
                if !text.trim().is_empty() {
                    if let Ok(Some(map)) = SecretMap::from_json_text(text) {
                        return Ok(map);
                    }
                }
            }
        }
        // Errors, repeated keys and YAML: the general way.
        Document::parse(bytes, format, path).map(Document::into_snapshot)
    }

    /// The scalar values as strings; nested and null values are skipped.
    pub(super) fn into_snapshot(mut self) -> SecretMap {
        let mut snapshot = SecretMap::with_capacity(match &self {
            Document::Json(_) => 0,
            Document::Yaml(map) => map.len(),
        });
        match &mut self {
            Document::Json(map) => return SecretMap::from_json_object(std::mem::take(map)),
            Document::Yaml(map) => {
                for (key, value) in std::mem::take(map) {
                    let Some(key) = yaml_scalar(key) else {
                        continue;
                    };
                    match value {
                        yaml_serde::Value::String(s) => {
                            snapshot.insert(key, s);
                        }
                        yaml_serde::Value::Number(n) => {
                            snapshot.insert(key, n.to_string());
                        }
                        yaml_serde::Value::Bool(b) => {
                            snapshot.insert(key, b.to_string());
                        }
                        mut other => {
                            snapshot.skip(key);
                            zeroize_yaml(&mut other);
                        }
                    }
                }
            }
        }
        snapshot
    }

    /// The stored key a lookup of `key` would read.
    pub(super) fn resolve(&self, key: &str) -> Option<String> {
        let keys: Vec<&str> = match self {
            Document::Json(m) => m.keys().map(String::as_str).collect(),
            Document::Yaml(m) => m.keys().filter_map(|k| k.as_str()).collect(),
        };
        if keys.contains(&key) {
            return Some(key.to_owned());
        }
        let name = normalize_key(key);
        preferred_key(&name, keys.into_iter().filter(|k| normalize_key(k) == name))
            .map(str::to_owned)
    }

    pub(super) fn set(&mut self, key: &str, value: &str) {
        let key = self.resolve(key).unwrap_or_else(|| key.to_owned());
        match self {
            Document::Json(m) => {
                if let Some(mut old) = m.insert(key, serde_json::Value::String(value.to_owned())) {
                    zeroize_json(&mut old);
                }
            }
            Document::Yaml(m) => {
                let old = m.insert(
                    yaml_serde::Value::String(key),
                    yaml_serde::Value::String(value.to_owned()),
                );
                if let Some(mut old) = old {
                    zeroize_yaml(&mut old);
                }
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> bool {
        let Some(key) = self.resolve(key) else {
            return false;
        };
        match self {
            Document::Json(m) => m.shift_remove(&key).map(|mut v| zeroize_json(&mut v)),
            Document::Yaml(m) => m.shift_remove(&key).map(|mut v| zeroize_yaml(&mut v)),
        }
        .is_some()
    }

    pub(super) fn render(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let fail = |what: &dyn std::fmt::Display| {
            Error::Internal(format!("cannot serialise {}: {what}", path.display()))
        };
        match self {
            Document::Json(m) => {
                let mut out =
                    serde_json::to_vec_pretty(m).map_err(|_| fail(&"JSON serialisation failed"))?;
                out.push(b'\n');
                Ok(out)
            }
            Document::Yaml(m) => yaml_serde::to_string(m)
                .map(String::into_bytes)
                .map_err(|_| fail(&"YAML serialisation failed")),
        }
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        match self {
            Document::Json(m) => m.values_mut().for_each(zeroize_json),
            Document::Yaml(m) => m.values_mut().for_each(zeroize_yaml),
        }
    }
}

fn yaml_scalar(v: yaml_serde::Value) -> Option<String> {
    match v {
        yaml_serde::Value::String(s) => Some(s),
        yaml_serde::Value::Number(n) => Some(n.to_string()),
        yaml_serde::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Zeroes the strings inside a value before it is dropped (best effort: the
/// parsers may have made copies we cannot reach).
fn zeroize_yaml(v: &mut yaml_serde::Value) {
    match v {
        yaml_serde::Value::String(s) => s.zeroize(),
        yaml_serde::Value::Sequence(a) => a.iter_mut().for_each(zeroize_yaml),
        yaml_serde::Value::Mapping(m) => m.values_mut().for_each(zeroize_yaml),
        yaml_serde::Value::Tagged(t) => zeroize_yaml(&mut t.value),
        _ => {}
    }
}

/// The fuzz target of the secrets file: parse (JSON or YAML), and when that
/// succeeds, save a key into it, render, parse again and read the key back.
/// Panics only on a broken invariant.
#[cfg(fuzzing)]
pub(crate) fn fuzz_document(bytes: &[u8], yaml: bool) {
    let path = Path::new(if yaml { "secrets.yaml" } else { "secrets.json" });
    let format = Format::of(path);
    let Ok(mut doc) = Document::parse(bytes, format, path) else {
        return;
    };
    doc.set("FUZZ_KEY", "fuzz value");
    let Ok(out) = doc.render(path) else {
        return;
    };
    let again = Document::parse(&out, format, path).expect("what st-secrets writes, it reads");
    let snapshot = again.into_snapshot();
    assert_eq!(
        snapshot
            .resolve("FUZZ_KEY")
            .map(|(_, v)| v.expose().to_owned())
            .as_deref(),
        Some("fuzz value"),
        "a saved key reads back"
    );
}

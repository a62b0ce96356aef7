//! The environment provider: always available, highest priority, read live.

use super::provider::{normalize_key, Provider, ProviderStatus};
use crate::error::Error;
use crate::secret::SecretString;

/// Reads secrets from environment variables.
///
/// Key normalization (as SimpleTuner): upper-cased, `-` and `.` become `_`
/// (`replicate-api-token` reads `REPLICATE_API_TOKEN`); with a prefix `P` the
/// variable is `P_<normalized key>`. An empty variable counts as unset, so an
/// empty `HF_TOKEN=` does not hide a token kept elsewhere.
#[derive(Clone, Debug, Default)]
pub struct EnvProvider {
    prefix: Option<String>,
}

impl EnvProvider {
    /// A provider reading `<prefix>_<KEY>` (or `<KEY>` without a prefix).
    pub fn new(prefix: Option<String>) -> Self {
        EnvProvider {
            prefix: prefix.filter(|p| !p.is_empty()),
        }
    }

    /// The environment variable `key` is read from.
    pub fn variable_name(&self, key: &str) -> String {
        let normalized = normalize_key(key);
        match &self.prefix {
            Some(prefix) => format!("{prefix}_{normalized}"),
            None => normalized,
        }
    }
}

impl Provider for EnvProvider {
    fn name(&self) -> &'static str {
        "env"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let name = self.variable_name(key);
        if name.contains(['=', '\0']) {
            return Ok(None); // no environment variable can have this name
        }
        match std::env::var_os(&name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v
                .into_string()
                .map(|s| Some(SecretString::from(s)))
                .map_err(|_| {
                    Error::Parse(format!("environment variable {name} is not valid UTF-8"))
                }),
        }
    }

    fn resolves_references(&self) -> bool {
        true
    }

    fn status(&self) -> ProviderStatus {
        let naming = match &self.prefix {
            Some(p) => format!("{p}_<KEY>"),
            None => "<KEY>".to_owned(),
        };
        ProviderStatus {
            name: self.name(),
            available: true,
            detail: format!(
                "environment variables named {naming} (key upper-cased, '-' and '.' as '_'); \
                 empty variables count as unset"
            ),
            warnings: Vec::new(),
            failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_prefix() {
        let p = EnvProvider::new(Some("SIMPLETUNER".into()));
        assert_eq!(p.variable_name("hf-token"), "SIMPLETUNER_HF_TOKEN");
        assert_eq!(
            EnvProvider::new(Some(String::new())).variable_name("a"),
            "A"
        );
    }

    #[test]
    fn reads_live_and_treats_empty_as_unset() {
        // Unique names: tests run in parallel threads of one process.
        let p = EnvProvider::new(Some("ST_UNIT_ENV".into()));
        std::env::set_var("ST_UNIT_ENV_SOME_TOKEN", "v1");
        assert_eq!(p.lookup("some-token").unwrap().unwrap().expose(), "v1");
        std::env::set_var("ST_UNIT_ENV_SOME_TOKEN", "v2");
        assert_eq!(p.lookup("some.token").unwrap().unwrap().expose(), "v2");
        std::env::set_var("ST_UNIT_ENV_SOME_TOKEN", "");
        assert_eq!(p.lookup("some-token").unwrap(), None);
        std::env::remove_var("ST_UNIT_ENV_SOME_TOKEN");
        assert_eq!(p.lookup("some-token").unwrap(), None);
        assert_eq!(p.lookup("a=b").unwrap(), None);
    }

    #[test]
    fn non_utf8_values_are_a_parse_error_without_the_value() {
        use std::os::unix::ffi::OsStrExt;
        let p = EnvProvider::new(Some("ST_UNIT_ENV8".into()));
        std::env::set_var("ST_UNIT_ENV8_K", std::ffi::OsStr::from_bytes(b"sec\xffret"));
        let e = p.lookup("k").unwrap_err();
        assert!(
            matches!(&e, Error::Parse(m) if m.contains("ST_UNIT_ENV8_K") && !m.contains("sec"))
        );
        std::env::remove_var("ST_UNIT_ENV8_K");
    }
}

//! The environment provider: always available, highest priority, read live.
//! A variable that is unset may be given as a file instead: `NAME_FILE`
//! holding the path of a file whose content is the value (the convention
//! of Docker images and of `st-secrets run --as-files`), read on every
//! lookup as the secrets file is read: a regular file, opened without
//! blocking, at most 4 MiB, trailing line breaks removed.

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

impl EnvProvider {
    /// The value of variable `name` given as a file by `NAME_FILE`; `None`
    /// when that is unset or empty.
    fn value_file(name: &str) -> Result<Option<SecretString>, Error> {
        let var = format!("{name}_FILE");
        let Some(path) = std::env::var_os(&var).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let path = std::path::PathBuf::from(path);
        let what = format!("the file {var} names");
        let mut bytes =
            crate::fsutil::read_regular(&path, &what, crate::fsutil::DEFAULT_MAX_FILE_SIZE)?
                .ok_or_else(|| {
                    Error::Io(format!(
                        "{var} names {}, which does not exist",
                        path.display()
                    ))
                })?;
        while bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        String::from_utf8(bytes)
            .map(|s| Some(SecretString::from(s)))
            .map_err(|e| {
                zeroize::Zeroize::zeroize(&mut e.into_bytes());
                Error::Parse(format!(
                    "{} (named by {var}) is not UTF-8 text",
                    path.display()
                ))
            })
    }
}

impl Provider for EnvProvider {
    fn name(&self) -> &'static str {
        "env"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        let name = self.variable_name(key);
        match Self::variable(&name)? {
            Some(value) => Ok(Some(value)),
            // The key as written, where it names another variable: what the
            // Slurm plugin and `run` set for `--st-secrets=tls_private_key`
            // (`tls_private_key`, `tls_private_key_FILE`) is found too.
            None => match self.written_name(key) {
                Some(written) if written != name => Self::variable(&written),
                _ => Ok(None),
            },
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
                "environment variables named {naming} (key upper-cased, '-' and '.' as '_'), \
                 else the file {naming}_FILE names, else the same with the key as written; \
                 empty variables count as unset"
            ),
            warnings: Vec::new(),
            failure: None,
        }
    }
}

impl EnvProvider {
    /// The variable named by `key` as written (with the prefix), when that is
    /// a variable's name (letters, digits, `_`, not starting with a digit).
    fn written_name(&self, key: &str) -> Option<String> {
        let name = match &self.prefix {
            Some(prefix) => format!("{prefix}_{key}"),
            None => key.to_owned(),
        };
        let mut chars = name.chars();
        let first = chars.next()?;
        ((first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
    }

    /// Variable `name`'s value, else the file `name`_FILE names.
    fn variable(name: &str) -> Result<Option<SecretString>, Error> {
        if name.contains(['=', '\0']) {
            return Ok(None); // no environment variable can have this name
        }
        match std::env::var_os(name) {
            None => Self::value_file(name),
            Some(v) if v.is_empty() => Self::value_file(name),
            Some(v) => v
                .into_string()
                .map(|s| Some(SecretString::from(s)))
                .map_err(|_| {
                    Error::Parse(format!("environment variable {name} is not valid UTF-8"))
                }),
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
    fn an_unset_variable_may_be_given_as_a_file() {
        let p = EnvProvider::new(Some("ST_UNIT_ENVFILE".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "hf_from_file\n").unwrap();
        std::env::set_var("ST_UNIT_ENVFILE_HF_TOKEN_FILE", &file);
        assert_eq!(
            p.lookup("hf-token").unwrap().unwrap().expose(),
            "hf_from_file"
        );
        // The variable itself wins; the file is read on every lookup.
        std::env::set_var("ST_UNIT_ENVFILE_HF_TOKEN", "hf_from_env");
        assert_eq!(
            p.lookup("HF_TOKEN").unwrap().unwrap().expose(),
            "hf_from_env"
        );
        std::env::remove_var("ST_UNIT_ENVFILE_HF_TOKEN");
        std::fs::write(&file, "hf_rotated").unwrap();
        assert_eq!(
            p.lookup("HF_TOKEN").unwrap().unwrap().expose(),
            "hf_rotated"
        );
        // An empty file is unset; a missing one, a directory, a FIFO or a
        // file too large is an error naming the variable and the path.
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(p.lookup("HF_TOKEN").unwrap(), None);
        for (path, says) in [
            (dir.path().join("missing"), "does not exist"),
            (dir.path().to_owned(), "not a regular file"),
        ] {
            std::env::set_var("ST_UNIT_ENVFILE_HF_TOKEN_FILE", &path);
            let e = p.lookup("HF_TOKEN").unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains(&path.display().to_string()),
                "{e}"
            );
            assert!(e.contains("ST_UNIT_ENVFILE_HF_TOKEN_FILE"), "{e}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 5 << 20]).unwrap();
        std::env::set_var("ST_UNIT_ENVFILE_HF_TOKEN_FILE", &big);
        let e = p.lookup("HF_TOKEN").unwrap_err().to_string();
        assert!(e.contains("above the limit"), "{e}");
        std::env::remove_var("ST_UNIT_ENVFILE_HF_TOKEN_FILE");
        assert_eq!(p.lookup("HF_TOKEN").unwrap(), None);
    }

    #[test]
    fn a_key_is_found_under_its_name_as_written_in_every_layout() {
        // What the Slurm plugin and `run` set for `--st-secrets=tls_private_key`.
        let p = EnvProvider::new(Some("ST_UNIT_ENVW".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tls_private_key");
        std::fs::write(&file, "key-from-file\n").unwrap();
        std::env::set_var("ST_UNIT_ENVW_tls_private_key_FILE", &file);
        assert_eq!(
            p.lookup("tls_private_key").unwrap().unwrap().expose(),
            "key-from-file"
        );
        std::env::set_var("ST_UNIT_ENVW_tls_private_key", "key-from-env");
        assert_eq!(
            p.lookup("tls_private_key").unwrap().unwrap().expose(),
            "key-from-env"
        );
        // The upper-cased name (SimpleTuner's) wins; a written name that is
        // no variable's is not read.
        std::env::set_var("ST_UNIT_ENVW_TLS_PRIVATE_KEY", "upper");
        assert_eq!(
            p.lookup("tls_private_key").unwrap().unwrap().expose(),
            "upper"
        );
        assert_eq!(p.written_name("tls-private-key"), None);
        assert_eq!(p.written_name("9a"), Some("ST_UNIT_ENVW_9a".into()));
        assert_eq!(EnvProvider::new(None).written_name("9a"), None);
        for v in ["TLS_PRIVATE_KEY", "tls_private_key", "tls_private_key_FILE"] {
            std::env::remove_var(format!("ST_UNIT_ENVW_{v}"));
        }
        assert_eq!(p.lookup("tls_private_key").unwrap(), None);
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

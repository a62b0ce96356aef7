//! The shared AWS config and credentials files (`~/.aws/config`,
//! `~/.aws/credentials`), read as the AWS CLI reads them: INI sections,
//! `[name]` in the credentials file, `[profile name]` (or `[default]`) in the
//! config file; indented lines are sub-settings of the line above and are
//! skipped; `#` and `;` start comments.

use crate::secret::SecretString;
use crate::Error;
use std::collections::HashMap;
use std::path::Path;

/// One profile's settings (keys lower-cased). Values may be secrets.
#[derive(Default)]
pub struct Profile {
    values: HashMap<String, SecretString>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.values.keys().collect();
        keys.sort();
        f.debug_struct("Profile").field("keys", &keys).finish()
    }
}

impl Profile {
    /// A setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.expose())
            .filter(|v| !v.is_empty())
    }
}

/// Which file a profile is read from (they name sections differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/credentials`: `[name]`.
    Credentials,
    /// `~/.aws/config`: `[profile name]`, or `[default]`.
    Config,
    /// `~/.aws/config`'s `[sso-session name]` sections.
    SsoSession,
}

/// The profile `name` of the file at `path`: `Ok(None)` when the file or the
/// profile does not exist.
///
/// # Errors
/// [`Error::Io`] / [`Error::Permission`] when the file exists but cannot be
/// read (its content is never quoted).
pub fn load(path: &Path, kind: FileKind, name: &str) -> Result<Option<Profile>, Error> {
    let text = match crate::fsutil::read_regular(path, "AWS profile file", MAX_PROFILE_FILE)? {
        Some(bytes) => SecretString::from(String::from_utf8_lossy(&bytes).into_owned()),
        None => return Ok(None),
    };
    Ok(parse(text.expose(), kind, name))
}

/// The largest AWS profile file read: 1 MiB.
const MAX_PROFILE_FILE: u64 = 1 << 20;

pub(crate) fn parse(text: &str, kind: FileKind, name: &str) -> Option<Profile> {
    let mut found: Option<Profile> = None;
    let mut in_section = false;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue; // a sub-setting (e.g. under "s3 =")
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default().trim();
            in_section = section_matches(header, kind, name);
            if in_section && found.is_none() {
                found = Some(Profile::default());
            }
            continue;
        }
        if !in_section {
            continue;
        }
        if let (Some(profile), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
            let v = v.trim();
            let v = v
                .split_once([' ', '\t'])
                .filter(|(_, rest)| rest.trim_start().starts_with(['#', ';']))
                .map_or(v, |(value, _)| value);
            profile
                .values
                .insert(k.trim().to_ascii_lowercase(), SecretString::from(v));
        }
    }
    found
}

fn section_matches(header: &str, kind: FileKind, name: &str) -> bool {
    match kind {
        FileKind::Credentials => header == name,
        FileKind::Config => {
            let profile = header
                .strip_prefix("profile")
                .filter(|rest| rest.starts_with([' ', '\t']))
                .map(str::trim);
            profile == Some(name) || (name == "default" && header == "default")
        }
        FileKind::SsoSession => {
            header
                .strip_prefix("sso-session")
                .filter(|rest| rest.starts_with([' ', '\t']))
                .map(str::trim)
                == Some(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# comment
[default]
region = eu-west-1

[profile training]
region=us-west-2 ; trailing comment
s3 =
  max_concurrent_requests = 20
role_arn = arn:aws:iam::123:role/x

[sso-session corp]
region = ap-south-1
";

    #[test]
    fn config_sections() {
        let p = parse(CONFIG, FileKind::Config, "training").unwrap();
        assert_eq!(p.get("region"), Some("us-west-2"));
        assert_eq!(p.get("role_arn"), Some("arn:aws:iam::123:role/x"));
        assert_eq!(p.get("max_concurrent_requests"), None);
        assert_eq!(
            parse(CONFIG, FileKind::Config, "default")
                .unwrap()
                .get("region"),
            Some("eu-west-1")
        );
        assert!(parse(CONFIG, FileKind::Config, "corp").is_none());
        assert!(parse(CONFIG, FileKind::Credentials, "training").is_none());
    }

    #[test]
    fn credentials_sections_and_debug_hides_values() {
        let text = "[ci]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t/value\n";
        let p = parse(text, FileKind::Credentials, "ci").unwrap();
        assert_eq!(p.get("aws_secret_access_key"), Some("s3cr3t/value"));
        let debug = format!("{p:?}");
        assert!(debug.contains("aws_access_key_id") && !debug.contains("s3cr3t"));
    }

    #[test]
    fn missing_and_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none"), FileKind::Config, "default")
            .unwrap()
            .is_none());
        // A directory cannot be read as a file.
        let e = load(dir.path(), FileKind::Config, "default").unwrap_err();
        assert_eq!(e.code_name(), "ST_IO");
    }
}

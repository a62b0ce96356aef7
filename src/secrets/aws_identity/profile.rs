//! The shared AWS config and credentials files (`~/.aws/config`,
//! `~/.aws/credentials`), read by the rules the AWS SDKs share and test with
//! one suite (`profile-parser-tests.json`, vendored under `tests/data/aws/`
//! and run in full by this module's tests): `[name]` sections in the
//! credentials file, `[profile name]` (and `[default]`, which
//! `[profile default]` overrides) and `[sso-session name]` in the config
//! file; indented lines continue the property above (joined with a newline,
//! or read as `name = value` sub-properties under an empty one); `#` and `;`
//! start comments, and end a value only after whitespace. A line that breaks
//! the rules fails the whole file with its line number, as the SDKs do.

use crate::error::Error;
use crate::secret::SecretString;
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
/// read; [`Error::Parse`] naming the file and the line that breaks the
/// rules (never its content).
pub fn load(path: &Path, kind: FileKind, name: &str) -> Result<Option<Profile>, Error> {
    let text = match crate::fsutil::read_regular(path, "AWS profile file", MAX_PROFILE_FILE)? {
        Some(bytes) => SecretString::from(String::from_utf8_lossy(&bytes).into_owned()),
        None => return Ok(None),
    };
    let source = match kind {
        FileKind::Credentials => Source::Credentials,
        FileKind::Config | FileKind::SsoSession => Source::Config,
    };
    let mut file = parse_file(text.expose(), source).map_err(|e| {
        Error::Parse(format!(
            "AWS profile file {}: line {}: {}",
            path.display(),
            e.line,
            e.message
        ))
    })?;
    Ok(match kind {
        FileKind::SsoSession => file.sso_sessions.remove(name),
        _ => file.profiles.remove(name),
    })
}

/// The largest AWS profile file read: 1 MiB.
const MAX_PROFILE_FILE: u64 = 1 << 20;

/// Which of the two files a text is (they name sections differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Config,
    Credentials,
}

/// Every section of one file, duplicates merged (later properties win).
#[derive(Debug, Default)]
pub(crate) struct ProfileFile {
    pub profiles: HashMap<String, Profile>,
    pub sso_sessions: HashMap<String, Profile>,
}

/// A line that breaks the rules: its number (from 1) and what is wrong,
/// never the line itself (it may hold a secret).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: &'static str,
}

/// Where the lines read so far put the parser.
enum At {
    /// Before any section.
    Start,
    /// In a section (`None`: one whose name is not valid, read and dropped)
    /// before any property.
    Section(Option<Target>),
    /// After property `key` of a section; `sub` when its own line gave it no
    /// value, so indented lines below are `name = value` sub-properties.
    Property {
        target: Option<Target>,
        key: Option<String>,
        sub: bool,
    },
}

/// The section properties go to.
#[derive(Clone)]
enum Target {
    Profile(String),
    /// `[default]` in the config file: read, but dropped when the file also
    /// has `[profile default]`.
    BareDefault,
    SsoSession(String),
}

/// Reads a whole config or credentials file.
pub(crate) fn parse_file(text: &str, source: Source) -> Result<ProfileFile, SyntaxError> {
    let mut file = ProfileFile::default();
    let mut bare_default = Profile::default();
    let (mut prefixed_default, mut bare_seen) = (false, false);
    let mut at = At::Start;
    // The continuation lines of the current property, not yet joined.
    let mut continued: Vec<&str> = Vec::new();
    for (number, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let error = |message| SyntaxError {
            line: number + 1,
            message,
        };
        if line.trim().is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation of the property above.
            let (target, key, sub) = match &at {
                At::Start => return Err(error("Expected a profile definition")),
                At::Section(_) => {
                    return Err(error("Expected a property definition, found continuation"))
                }
                At::Property { target, key, sub } => (target, key, *sub),
            };
            let text = line.trim();
            if sub {
                let Some((name, _)) = text.split_once('=') else {
                    return Err(error("Expected an '=' sign defining a sub-property"));
                };
                if name.trim().is_empty() {
                    return Err(error("Sub-property did not have a name"));
                }
            }
            if target.is_some() && key.is_some() {
                // Joined once, when the property ends: appending line by
                // line copied the value each time (quadratic in the lines).
                continued.push(text);
            }
            continue;
        }
        flush_continued(&mut file, &mut bare_default, &at, &mut continued);
        if let Some(header) = line.strip_prefix('[') {
            let Some((header, rest)) = header.split_once(']') else {
                return Err(error("Profile definition must end with ']'"));
            };
            let rest = rest.trim_start();
            if !(rest.is_empty() || rest.starts_with(['#', ';'])) {
                return Err(error("Profile definition must end with ']'"));
            }
            let target = section_target(header.trim(), source);
            match &target {
                Some(Target::Profile(name)) if source == Source::Config && name == "default" => {
                    prefixed_default = true;
                }
                Some(Target::BareDefault) => bare_seen = true,
                _ => {}
            }
            if let Some(target) = &target {
                section_of(&mut file, &mut bare_default, target);
            }
            at = At::Section(target);
            continue;
        }
        // A property.
        let target = match &at {
            At::Start => return Err(error("Expected a profile definition")),
            At::Section(t) | At::Property { target: t, .. } => t.clone(),
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(error("Expected an '=' sign defining a property"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(error("Property did not have a name"));
        }
        let value = strip_comment(value.trim());
        let key = valid_name(key).then(|| key.to_ascii_lowercase());
        if let (Some(t), Some(k)) = (&target, &key) {
            section_of(&mut file, &mut bare_default, t)
                .values
                .insert(k.clone(), SecretString::from(value));
        }
        at = At::Property {
            target,
            key,
            sub: value.is_empty(),
        };
    }
    flush_continued(&mut file, &mut bare_default, &at, &mut continued);
    if source == Source::Config && bare_seen && !prefixed_default {
        // `[default]` counts only when no `[profile default]` is there.
        file.profiles.insert("default".into(), bare_default);
    }
    Ok(file)
}

/// Appends the pending continuation lines to the property `at` names, each
/// after a newline, in one allocation; empties `lines`.
fn flush_continued(
    file: &mut ProfileFile,
    bare_default: &mut Profile,
    at: &At,
    lines: &mut Vec<&str>,
) {
    if lines.is_empty() {
        return;
    }
    if let At::Property {
        target: Some(target),
        key: Some(key),
        ..
    } = at
    {
        let value = section_of(file, bare_default, target)
            .values
            .entry(key.clone())
            .or_default();
        let extra: usize = lines.iter().map(|l| l.len() + 1).sum();
        let mut joined = String::with_capacity(value.expose().len() + extra);
        joined.push_str(value.expose());
        for line in lines.iter() {
            joined.push('\n');
            joined.push_str(line);
        }
        *value = SecretString::from(joined);
    }
    lines.clear();
}

/// The section a header names, or `None` for one the file's kind ignores
/// (`[foo]` in the config file, `[profile foo]` in the credentials file, a
/// name with characters outside the allowed set).
fn section_target(header: &str, source: Source) -> Option<Target> {
    let named = |prefix: &str| {
        header
            .strip_prefix(prefix)
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(str::trim)
    };
    let target = match source {
        Source::Credentials => Target::Profile(header.to_owned()),
        Source::Config if header == "default" => Target::BareDefault,
        Source::Config => {
            if let Some(name) = named("profile") {
                Target::Profile(name.to_owned())
            } else if let Some(name) = named("sso-session") {
                Target::SsoSession(name.to_owned())
            } else {
                return None;
            }
        }
    };
    match &target {
        Target::Profile(n) | Target::SsoSession(n) if !valid_name(n) => None,
        _ => Some(target),
    }
}

/// The section `target` names (made when new).
fn section_of<'a>(
    file: &'a mut ProfileFile,
    bare_default: &'a mut Profile,
    target: &Target,
) -> &'a mut Profile {
    match target {
        Target::Profile(n) => file.profiles.entry(n.clone()).or_default(),
        Target::SsoSession(n) => file.sso_sessions.entry(n.clone()).or_default(),
        Target::BareDefault => bare_default,
    }
}

/// Profile and property names: letters, digits and `- / . % @ _ : +`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/.%@_:+".contains(c))
}

/// A value without its comment: `#` or `;` after whitespace starts one (one
/// right after the value is part of it).
fn strip_comment(value: &str) -> &str {
    let cut = value
        .char_indices()
        .find(|&(i, c)| (c == '#' || c == ';') && i > 0 && value[..i].ends_with([' ', '\t']))
        .map_or(value.len(), |(i, _)| i);
    value[..cut].trim_end()
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

    fn parse(text: &str, kind: FileKind, name: &str) -> Option<Profile> {
        let source = match kind {
            FileKind::Credentials => Source::Credentials,
            _ => Source::Config,
        };
        let mut file = parse_file(text, source).unwrap();
        match kind {
            FileKind::SsoSession => file.sso_sessions.remove(name),
            _ => file.profiles.remove(name),
        }
    }

    #[test]
    fn continuation_lines_are_joined_in_linear_work() {
        // 5,000 continuation lines (about 300 KB): joined line by line, the
        // value was copied at each one (about 750 MB allocated in all);
        // joined once, the allocations stay a small multiple of the file.
        let line = "  credential_process_part_0123456789_0123456789_abcdef\n";
        let text = format!(
            "[profile p]\nnote = first\n{}region = x\n",
            line.repeat(5000)
        );
        let (file, bytes) =
            crate::sys::counting::bytes_allocated_by(|| parse_file(&text, Source::Config).unwrap());
        let note = file.profiles["p"].get("note").unwrap();
        assert_eq!(note.lines().count(), 5001);
        assert!(note.starts_with("first\ncredential_process_part_"));
        assert_eq!(file.profiles["p"].get("region"), Some("x"));
        assert!(
            bytes < 16 * text.len() as u64,
            "{bytes} bytes allocated to parse {} bytes",
            text.len()
        );
    }

    #[test]
    fn config_sections() {
        let p = parse(CONFIG, FileKind::Config, "training").unwrap();
        assert_eq!(p.get("region"), Some("us-west-2"));
        assert_eq!(p.get("role_arn"), Some("arn:aws:iam::123:role/x"));
        assert_eq!(p.get("max_concurrent_requests"), None);
        assert_eq!(p.get("s3"), Some("\nmax_concurrent_requests = 20"));
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

    /// A case's result as the suite writes it: `{"profiles": {..},
    /// "sso_sessions": {..}}`, or the error's message.
    fn suite_result(
        config: Option<&str>,
        credentials: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let read = |text: Option<&str>, source| match text {
            Some(t) => parse_file(t, source).map_err(|e| format!("line {}: {}", e.line, e.message)),
            None => Ok(ProfileFile::default()),
        };
        let config = read(config, Source::Config)?;
        let credentials = read(credentials, Source::Credentials)?;
        let object = |sections: Vec<&HashMap<String, Profile>>| {
            let mut out = serde_json::Map::new();
            for map in sections {
                for (name, profile) in map {
                    let entry = out
                        .entry(name.clone())
                        .or_insert_with(|| serde_json::json!({}));
                    for (k, v) in &profile.values {
                        entry[k] = v.expose().into();
                    }
                }
            }
            serde_json::Value::Object(out)
        };
        Ok(serde_json::json!({
            // The credentials file's properties win.
            "profiles": object(vec![&config.profiles, &credentials.profiles]),
            "sso_sessions": object(vec![&config.sso_sessions]),
        }))
    }

    /// AWS's shared suite (tests/data/aws/profile-parser-tests.json), every
    /// case of it.
    #[test]
    fn aws_shared_profile_parser_suite() {
        let suite: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/data/aws/profile-parser-tests.json"
        ))
        .unwrap();
        let cases = suite["tests"].as_array().unwrap();
        assert_eq!(cases.len(), 65, "the vendored suite has 65 cases");
        let mut failures = Vec::new();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let input = &case["input"];
            let got = suite_result(
                input["configFile"].as_str(),
                input["credentialsFile"].as_str(),
            );
            let output = &case["output"];
            let ok = match (&got, output.get("errorContaining")) {
                (Err(message), Some(expected)) => message.contains(expected.as_str().unwrap()),
                (Ok(got), None) => {
                    let want = &output["config"];
                    got["profiles"] == want["profiles"]
                        && want
                            .get("sso_sessions")
                            .is_none_or(|s| got["sso_sessions"] == *s)
                }
                _ => false,
            };
            if !ok {
                failures.push(format!("{name}: got {got:?}, want {output}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

//! `credential_process`: credentials from a program the profile names, as
//! the AWS SDKs run it: split into words like a POSIX shell would (no shell
//! is started), no standard input, its standard output read as the JSON
//! document of version 1 (`Version`, `AccessKeyId`, `SecretAccessKey`,
//! optional `SessionToken` and ISO 8601 `Expiration`).
//!
//! Unlike the SDKs, its standard error is never shown (tools print tokens
//! there when they fail), and it is stopped after [`PROCESS_TIMEOUT`]
//! ([`program`] runs it).

use super::identity::{Credentials, Source};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::program;
use crate::secrets::lifetime::parse_timestamp;
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::FetchError;
use std::time::Duration;

/// How long the program may run: a minute (time for a tool that asks for a
/// touch of a security key, not for a hung one).
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` (the profile `profile`'s `credential_process`) and reads
/// its credentials.
///
/// # Errors
/// Permanent [`Error::Auth`] when the program cannot be started, fails,
/// takes longer than `timeout` or prints something else than a version 1
/// document; [`Error::InvalidArgument`] when `command` cannot be split.
pub fn run(command: &str, profile: &str, timeout: Duration) -> Result<Credentials, FetchError> {
    let what = format!("credential_process of AWS profile '{profile}'");
    let fail = |why: String| FetchError::permanent(Error::Auth(format!("{what}: {why}")));
    let words = shlex::split(command)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            FetchError::permanent(Error::InvalidArgument(format!(
                "{what}: the command cannot be split into words (an unclosed quote?)"
            )))
        })?;
    let output = program::run(&words, &[], timeout, &fail)?;
    parse(output.expose(), &what, Source::Process(profile.to_owned()))
}

/// The version 1 document (`what` names the program in messages).
pub(crate) fn parse(output: &[u8], what: &str, source: Source) -> Result<Credentials, FetchError> {
    let fail = |why: &str| FetchError::permanent(Error::Auth(format!("{what}: {why}")));
    let mut doc: serde_json::Value =
        serde_json::from_slice(output).map_err(|_| fail("its output is not a JSON document"))?;
    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let version = doc.get("Version").and_then(serde_json::Value::as_u64);
    let result = match (version, text("AccessKeyId"), text("SecretAccessKey")) {
        (Some(1), Some(id), Some(secret)) => {
            let expiration = text("Expiration");
            match expiration.as_deref().map(parse_timestamp) {
                Some(None) => Err(fail("its Expiration is not an ISO 8601 time")),
                expires => Ok(Credentials {
                    access_key_id: id,
                    secret_access_key: SecretString::from(secret),
                    session_token: text("SessionToken").map(SecretString::from),
                    expires: expires.flatten(),
                    source,
                }),
            }
        }
        (Some(1), _, _) => Err(fail("its output lacks AccessKeyId or SecretAccessKey")),
        _ => Err(fail("its output is not a version 1 credentials document")),
    };
    zeroize_json(&mut doc);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    /// A command running a shell script. Run through `/bin/sh` rather than
    /// executed itself: a file written while another test thread forks can
    /// briefly be "busy" for exec (ETXTBSY), never for reading.
    fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        format!("/bin/sh {}", p.display())
    }

    #[test]
    fn a_program_gives_credentials_with_words_split_as_a_shell_would() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "creds",
            r#"[ "$1" = "two words" ] || exit 3
echo "a token on stderr: sk-never-shown" >&2
printf '{"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "s3cr3t", "SessionToken": "tok", "Expiration": "2099-01-01T00:00:00Z"}'"#,
        );
        let c = run(&format!("{p} 'two words'"), "dev", PROCESS_TIMEOUT).unwrap();
        assert_eq!(c.access_key_id, "AKIDPROCESS");
        assert_eq!(c.secret_access_key.expose(), "s3cr3t");
        assert_eq!(c.session_token.as_ref().unwrap().expose(), "tok");
        assert!(c.expires.is_some());
        assert_eq!(c.source, Source::Process("dev".into()));
        // No shell: a ';' is an argument, not a second command.
        let e = run(&format!("{p} x; echo pwned"), "dev", PROCESS_TIMEOUT).unwrap_err();
        assert!(
            e.error.message().contains("exited with status 3"),
            "{:?}",
            e
        );
    }

    #[test]
    fn failures_say_what_happened_and_never_show_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let fails = script(
            dir.path(),
            "fails",
            "echo 'sk-secret-in-stderr' >&2; exit 2",
        );
        let e = run(&fails, "dev", PROCESS_TIMEOUT).unwrap_err();
        assert_eq!(e.error.code_name(), "ST_AUTH");
        assert!(!e.transient);
        assert!(
            e.error.message().contains("exited with status 2"),
            "{}",
            e.error
        );
        assert!(!e.error.message().contains("sk-secret"), "{}", e.error);

        let slow = script(dir.path(), "slow", "exec sleep 30");
        let started = Instant::now();
        let e = run(&slow, "dev", Duration::from_millis(300)).unwrap_err();
        assert!(e.error.message().contains("did not finish"), "{}", e.error);
        assert!(started.elapsed() < Duration::from_secs(20));

        let missing = dir.path().join("missing").display().to_string(); // no such program
        let e = run(&missing, "dev", PROCESS_TIMEOUT).unwrap_err();
        assert!(e.error.message().contains("cannot start"), "{}", e.error);
        let e = run("'unclosed", "dev", PROCESS_TIMEOUT).unwrap_err();
        assert_eq!(e.error.code_name(), "ST_INVALID_ARGUMENT");
        let e = run("   ", "dev", PROCESS_TIMEOUT).unwrap_err();
        assert_eq!(e.error.code_name(), "ST_INVALID_ARGUMENT");

        let huge = script(dir.path(), "huge", "head -c 200000 /dev/zero");
        let e = run(&huge, "dev", PROCESS_TIMEOUT).unwrap_err();
        assert!(e.error.message().contains("larger than"), "{}", e.error);
    }

    #[test]
    fn documents_other_than_version_1_are_refused_without_quoting_them() {
        let src = || Source::Process("p".into());
        for bad in [
            &br#"{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "sk-x"}"#[..],
            br#"{"AccessKeyId": "A", "SecretAccessKey": "sk-x"}"#,
            br#"{"Version": 1, "AccessKeyId": "A"}"#,
            br#"{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "sk-x", "Expiration": "soon"}"#,
            b"AccessKeyId=A sk-x",
            b"[1]",
        ] {
            let e = parse(bad, "cp", src()).unwrap_err();
            assert_eq!(e.error.code_name(), "ST_AUTH");
            assert!(!e.error.message().contains("sk-x"), "{}", e.error);
        }
        let ok = parse(
            br#"{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "s"}"#,
            "cp",
            src(),
        )
        .unwrap();
        assert!(ok.expires.is_none() && ok.session_token.is_none());
    }
}

//! The crate-wide error type.
//!
//! Every variant carries a human-readable message. Messages name keys, files,
//! providers and operations, never a secret value, a token or key material: the
//! code that builds them is written that way, and secret-holding types
//! (see [`crate::secret`]) have redacted `Debug` output so that even a careless
//! `{:?}` cannot leak one.
//!
//! A leaf: every module returns this type, and it imports none of them. The
//! C ABI maps each kind to its `st_result` code with one exhaustive `match`
//! (`src/ffi/error.rs`).

use std::fmt;

/// Declares [`Error`] from one table: variant, stable code name, meaning.
macro_rules! error_kinds {
    ($($variant:ident => $code:literal, $doc:literal;)*) => {
        /// An error from any st-secrets operation. The variant says what kind of
        /// failure it is (its [`code_name`](Error::code_name) is the C result
        /// code); the message says what happened.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Error {
            $(#[doc = $doc] $variant(String),)*
        }

        impl Error {
            /// Every code name, in declaration order.
            pub const CODE_NAMES: &'static [&'static str] = &[$($code),*];

            /// An error of the kind named `code` with an empty message (tests
            /// that go over every kind).
            #[cfg(test)]
            pub(crate) fn sample(code: &str) -> Error {
                match code {
                    $($code => Error::$variant(String::new()),)*
                    _ => panic!("no error kind has the code {code}"),
                }
            }

            /// The message, without the kind.
            pub fn message(&self) -> &str {
                match self {
                    $(Error::$variant(m) => m,)*
                }
            }

            /// The stable name of this kind of error, the same as the C result
            /// code (`"ST_PARSE"`, ...), for JSON output and every binding.
            pub fn code_name(&self) -> &'static str {
                match self {
                    $(Error::$variant(_) => $code,)*
                }
            }

            /// The same kind of error with `; note` put after the message.
            pub fn with_note(self, note: impl fmt::Display) -> Error {
                match self {
                    $(Error::$variant(m) => Error::$variant(format!("{m}; {note}")),)*
                }
            }

            /// The same kind of error with `context: ` put before the message.
            pub fn context(self, context: impl fmt::Display) -> Error {
                match self {
                    $(Error::$variant(m) => Error::$variant(format!("{context}: {m}")),)*
                }
            }
        }
    };
}

error_kinds! {
    NotFound => "ST_NOT_FOUND", "A key is absent, a cache entry missed or expired.";
    InvalidArgument => "ST_INVALID_ARGUMENT", "An argument or configuration value is out of range or malformed.";
    Io => "ST_IO", "Reading or writing a file failed.";
    Parse => "ST_PARSE", "A file or document could not be parsed.";
    Permission => "ST_PERMISSION", "The operating system refused access.";
    ProviderUnavailable => "ST_PROVIDER_UNAVAILABLE", "A provider is not configured or cannot be used.";
    Network => "ST_NETWORK", "A remote service could not be reached.";
    Timeout => "ST_TIMEOUT", "A remote service did not answer in time.";
    Auth => "ST_AUTH", "Credentials were rejected or access was denied.";
    Remote => "ST_REMOTE", "A remote service answered with an error.";
    InvalidToken => "ST_INVALID_TOKEN", "A ciphertext is tampered with, was made under another key, or is malformed.";
    Key => "ST_KEY", "The encryption key could not be sourced.";
    Store => "ST_STORE", "The provider-configuration database failed.";
    Internal => "ST_INTERNAL", "A bug or an unexpected state inside st-secrets.";
}

impl Error {
    /// An I/O failure of `action` on `path`, classified: permission problems
    /// become [`Error::Permission`], everything else [`Error::Io`] (a full disk
    /// says so). The message names the path and the OS error, nothing else.
    pub fn io(action: &str, path: &std::path::Path, e: &std::io::Error) -> Error {
        let message = format!("{action} {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                Error::Permission(message)
            }
            std::io::ErrorKind::StorageFull => Error::Io(format!("{message} (disk full)")),
            _ => Error::Io(message),
        }
    }
}

impl Error {
    /// An argument that is not valid JSON: [`Error::InvalidArgument`] naming
    /// `what` and the position only. The parser's own message is not passed
    /// on: it can quote the text, and the text can hold a token.
    pub fn invalid_json(what: &str, e: &serde_json::Error) -> Error {
        Error::InvalidArgument(format!(
            "{what} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    }
}

impl Error {
    /// `{"code": "ST_...", "message": "..."}`, as in the providers JSON and
    /// the doctor's report.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code_name(), "message": self.message() })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::path::Path;

    #[test]
    fn a_note_goes_after_the_message() {
        let e = Error::Parse("/x/secrets.json: line 1".into()).with_note("left untouched");
        assert_eq!(
            e,
            Error::Parse("/x/secrets.json: line 1; left untouched".into())
        );
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::Auth("denied".into()).context("provider 'aws'");
        assert_eq!(e, Error::Auth("provider 'aws': denied".into()));
        assert_eq!(e.code_name(), "ST_AUTH");
    }

    #[test]
    fn io_errors_are_classified() {
        let p = Path::new("/x/secrets.json");
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(
            matches!(Error::io("read", p, &denied), Error::Permission(m) if m.contains("/x/secrets.json"))
        );
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(matches!(Error::io("write", p, &full), Error::Io(m) if m.contains("disk full")));
    }
}

//! The crate-wide error type, and the result codes of every interface.
//!
//! Every variant carries a human-readable message. Messages name keys, files,
//! providers and operations, never a secret value, a token or key material: the
//! code that builds them is written that way, and secret-holding types
//! (see [`SecretString`](crate::SecretString)) have redacted `Debug` output so that even a careless
//! `{:?}` cannot leak one.
//!
//! [`st_result`] is the one list of result codes, each with its one
//! wording: the C header's enum is generated from it (cbindgen reads this
//! file), and `ResultCodes!` derives its [`st_result::ALL`],
//! [`st_result::name`] and [`st_result::description`] from the same
//! declaration, so no second list exists to drift. Each [`Error`] kind names
//! its code in the table below, and its documentation is the code's; the C
//! ABI, the tool's JSON and every binding take the code from there.
//!
//! A leaf: every module returns this type, and it imports none of them.

use macro_rules_attribute::derive;
use std::ffi::CStr;
use std::fmt;

/// Derives a result enum's `ALL` (every code, in declaration order), `name`
/// and `c_name` (the variant's name) and `description` (its documentation,
/// its lines joined) from its declaration: only documented `NAME = NUMBER`
/// variants may stand in it.
macro_rules! ResultCodes {
    (
        $(#[$attr:meta])*
        $vis:vis enum $Enum:ident {
            $(
                $(#[doc = $doc:literal])+
                $Code:ident = $number:literal,
            )*
        }
    ) => {
        impl $Enum {
            /// Every code, in declaration order.
            pub const ALL: &'static [$Enum] = &[$($Enum::$Code),*];

            /// The code's name (`"ST_NOT_FOUND"`, ...), as `st_result_name` returns it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($Enum::$Code => stringify!($Code),)*
                }
            }

            /// The code's name as a C string.
            pub const fn c_name(self) -> &'static CStr {
                match self {
                    $($Enum::$Code => {
                        // Checked when compiled: a C string literal's cost.
                        const NAME: &CStr = match CStr::from_bytes_with_nul(
                            concat!(stringify!($Code), "\0").as_bytes(),
                        ) {
                            Ok(name) => name,
                            Err(_) => panic!("a variant's name holds no NUL"),
                        };
                        NAME
                    })*
                }
            }

            /// What the code means: the enumerator's documentation, as the
            /// header has it.
            pub const fn description(self) -> &'static str {
                match self {
                    $($Enum::$Code => concat!($($doc),+).trim_ascii_start(),)*
                }
            }
        }
    };
}

/// The result of every fallible function. The numbers are stable: a code keeps
/// its number forever and a retired number is never reused. New codes may be
/// added, so callers should treat unknown values as failures.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ResultCodes!)]
pub enum st_result {
    /// Success.
    ST_OK = 0,
    /// The key is absent, the cache entry missed or expired.
    ST_NOT_FOUND = 1,
    /// A pointer argument was NULL.
    ST_NULL_ARGUMENT = 100,
    /// A string argument was not valid UTF-8.
    ST_INVALID_UTF8 = 101,
    /// An argument was out of range or malformed.
    ST_INVALID_ARGUMENT = 102,
    /// Reading or writing a file failed.
    ST_IO = 200,
    /// A file, document or configuration could not be parsed.
    ST_PARSE = 201,
    /// The operating system refused access.
    ST_PERMISSION = 202,
    /// A provider is not configured or cannot be used.
    ST_PROVIDER_UNAVAILABLE = 300,
    /// A remote service could not be reached.
    ST_NETWORK = 301,
    /// A remote service did not answer in time.
    ST_TIMEOUT = 302,
    /// Credentials were rejected or access was denied.
    ST_AUTH = 303,
    /// A remote service returned an error.
    ST_REMOTE = 304,
    /// A ciphertext was tampered with, made under another key, or malformed.
    ST_INVALID_TOKEN = 400,
    /// The encryption key could not be sourced.
    ST_KEY = 401,
    /// The provider-configuration database failed.
    ST_STORE = 500,
    /// A caller's callback reported a failure the library could not classify.
    ST_CALLBACK = 600,
    /// A panic inside the library was caught at the boundary (a bug: please report).
    ST_PANIC = 900,
    /// An unexpected internal state (a bug: please report).
    ST_INTERNAL = 901,
}

impl st_result {
    /// The code with this number, if there is one. C may hand any `int` where an
    /// `st_result` is expected; Rust must not hold an invalid enum value, so every
    /// `st_result` that comes *from* C passes through here.
    pub fn from_raw(raw: i32) -> Option<st_result> {
        st_result::ALL.iter().copied().find(|r| *r as i32 == raw)
    }
}

/// Declares [`Error`] from one table: variant, result code, meaning.
macro_rules! error_kinds {
    ($($variant:ident => $code:ident;)*) => {
        /// An error from any st-secrets operation. The variant says what kind of
        /// failure it is (its [`code_name`](Error::code_name) is the C result
        /// code); the message says what happened.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Error {
            $(
                #[doc = concat!("[`", stringify!($code), "`](st_result::", stringify!($code), "): \
                                 what the code's documentation says.")]
                $variant(String),
            )*
        }

        impl Error {
            /// One error of each kind, with an empty message (tests that go
            /// over every kind).
            #[cfg(test)]
            pub(crate) fn samples() -> Vec<Error> {
                vec![$(Error::$variant(String::new())),*]
            }

            /// The result code of this kind of error: one exhaustive `match`,
            /// so a new kind does not compile until it names its code.
            pub fn code(&self) -> st_result {
                match self {
                    $(Error::$variant(_) => st_result::$code,)*
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
                self.code().name()
            }

            /// The error of the kind whose [`code_name`](Error::code_name)
            /// is `name`, with `message`; `None` for a name of no kind.
            pub(crate) fn with_code_name(name: &str, message: String) -> Option<Error> {
                $(if name == st_result::$code.name() {
                    return Some(Error::$variant(message));
                })*
                None
            }

            /// The same kind of error with `; note` put after the message.
            pub fn with_note(self, note: impl fmt::Display) -> Error {
                match self {
                    $(Error::$variant(m) => Error::$variant(format!("{m}; {note}")),)*
                }
            }

            /// The same kind of error with every occurrence of each of
            /// `secrets` in its message replaced by `[redacted]`.
            pub(crate) fn redacting<'a>(self, secrets: impl Iterator<Item = &'a str>) -> Error {
                match self {
                    $(Error::$variant(mut m) => {
                        for secret in secrets {
                            if !secret.is_empty() && m.contains(secret) {
                                let redacted = m.replace(secret, "[redacted]");
                                zeroize::Zeroize::zeroize(&mut m);
                                m = redacted;
                            }
                        }
                        Error::$variant(m)
                    })*
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
    NotFound => ST_NOT_FOUND;
    InvalidArgument => ST_INVALID_ARGUMENT;
    Io => ST_IO;
    Parse => ST_PARSE;
    Permission => ST_PERMISSION;
    ProviderUnavailable => ST_PROVIDER_UNAVAILABLE;
    Network => ST_NETWORK;
    Timeout => ST_TIMEOUT;
    Auth => ST_AUTH;
    Remote => ST_REMOTE;
    InvalidToken => ST_INVALID_TOKEN;
    Key => ST_KEY;
    Store => ST_STORE;
    Internal => ST_INTERNAL;
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

/// `text` (a key, a file or member name: anything a message names that
/// came from outside) safe to print on a terminal: control characters
/// (escape sequences, line breaks), and invisible format characters (bidi
/// overrides, zero-width) as `\u{..}` escapes, backslashes doubled, so a
/// name cannot forge a line, move the cursor or reorder what follows; and
/// at most [`PRINTABLE_CHARS`] characters of it, then how many more there
/// were (a server's 64 KiB header is not a message). Every message naming
/// such text uses it, the tool's output too.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * PRINTABLE_CHARS));
    let mut chars = text.chars();
    for c in chars.by_ref().take(PRINTABLE_CHARS) {
        let format = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}');
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || format {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    let more = chars.count();
    if more > 0 {
        out.push_str(&format!("... ({more} more characters)"));
    }
    out
}

/// How many characters of an outside text [`printable`] shows.
pub const PRINTABLE_CHARS: usize = 512;

/// A server message, kept to one line of at most 200 characters, with long
/// base64-like runs (which could be key material) replaced.
pub fn shorten(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<String> = one_line
        .split(' ')
        .map(|w| {
            let secretish = w.len() >= 32
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'));
            if secretish {
                "[redacted]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() > 200 {
        let mut s: String = joined.chars().take(200).collect();
        s.push_str("...");
        s
    } else {
        joined
    }
}

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

    #[test]
    fn messages_lose_key_like_words() {
        let m = shorten("bad key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\nend");
        assert_eq!(m, "bad key [redacted] end");
        assert_eq!(shorten(&"x ".repeat(300)).chars().count(), 203);
    }
}

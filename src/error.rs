//! The crate-wide error type.
//!
//! Every variant carries a human-readable message. Messages name keys, files,
//! providers and operations, never a secret value, a token or key material: the
//! code that builds them is written that way, and secret-holding types
//! (see [`crate::secret`]) have redacted `Debug` output so that even a careless
//! `{:?}` cannot leak one.

use std::fmt;

/// An error from any st-secrets operation. The variant says what kind of failure
/// it is (the C ABI maps each to an `st_result` code); the message says what
/// happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key is absent, a cache entry missed or expired.
    NotFound(String),
    /// An argument is out of range or malformed.
    InvalidArgument(String),
    /// Reading or writing a file failed.
    Io(String),
    /// A file or document could not be parsed.
    Parse(String),
    /// The operating system refused access.
    Permission(String),
    /// A provider is not configured or cannot be used.
    ProviderUnavailable(String),
    /// A remote service could not be reached.
    Network(String),
    /// A remote service did not answer in time.
    Timeout(String),
    /// Credentials were rejected or access was denied.
    Auth(String),
    /// A remote service answered with an error.
    Remote(String),
    /// A ciphertext is tampered with, was made under another key, or is malformed.
    InvalidToken(String),
    /// The encryption key could not be sourced.
    Key(String),
    /// The provider-configuration database failed.
    Store(String),
    /// A bug or an unexpected state inside st-secrets.
    Internal(String),
}

impl Error {
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound(m)
            | Error::InvalidArgument(m)
            | Error::Io(m)
            | Error::Parse(m)
            | Error::Permission(m)
            | Error::ProviderUnavailable(m)
            | Error::Network(m)
            | Error::Timeout(m)
            | Error::Auth(m)
            | Error::Remote(m)
            | Error::InvalidToken(m)
            | Error::Key(m)
            | Error::Store(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<crate::cache::Reentrant> for Error {
    fn from(r: crate::cache::Reentrant) -> Self {
        Error::InvalidArgument(r.to_string())
    }
}

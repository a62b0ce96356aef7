//! The result codes and the error object's contents: a leaf of the C ABI
//! that the boundary and every entry point import. The domain `Error`
//! (crate::Error) maps to [`st_result`] here, with one exhaustive `match`.

use std::borrow::Cow;
use std::ffi::{c_int, CStr, CString};

/// The result of every fallible function. The numbers are stable: a code keeps
/// its number forever and a retired number is never reused. New codes may be
/// added, so callers should treat unknown values as failures.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// Every code, for `st_result::from_raw` and tests. Its completeness is
/// checked against the generated header (the enum's own list) by
/// `every_header_code_is_listed`; [`st_result::name`] is an exhaustive `match`.
/// The Python extension builds its exception classes from it.
pub const ALL_RESULTS: &[st_result] = {
    use st_result::*;
    &[
        ST_OK,
        ST_NOT_FOUND,
        ST_NULL_ARGUMENT,
        ST_INVALID_UTF8,
        ST_INVALID_ARGUMENT,
        ST_IO,
        ST_PARSE,
        ST_PERMISSION,
        ST_PROVIDER_UNAVAILABLE,
        ST_NETWORK,
        ST_TIMEOUT,
        ST_AUTH,
        ST_REMOTE,
        ST_INVALID_TOKEN,
        ST_KEY,
        ST_STORE,
        ST_CALLBACK,
        ST_PANIC,
        ST_INTERNAL,
    ]
};

impl st_result {
    /// The code with this number, if there is one. C may hand any `int` where an
    /// `st_result` is expected; Rust must not hold an invalid enum value, so every
    /// `st_result` that comes *from* C passes through here.
    pub(crate) fn from_raw(raw: c_int) -> Option<st_result> {
        ALL_RESULTS.iter().copied().find(|r| *r as c_int == raw)
    }

    /// The code's name (`ST_NOT_FOUND`, ...), as `st_result_name` returns it.
    pub fn name(self) -> &'static CStr {
        use st_result::*;
        match self {
            ST_OK => c"ST_OK",
            ST_NOT_FOUND => c"ST_NOT_FOUND",
            ST_NULL_ARGUMENT => c"ST_NULL_ARGUMENT",
            ST_INVALID_UTF8 => c"ST_INVALID_UTF8",
            ST_INVALID_ARGUMENT => c"ST_INVALID_ARGUMENT",
            ST_IO => c"ST_IO",
            ST_PARSE => c"ST_PARSE",
            ST_PERMISSION => c"ST_PERMISSION",
            ST_PROVIDER_UNAVAILABLE => c"ST_PROVIDER_UNAVAILABLE",
            ST_NETWORK => c"ST_NETWORK",
            ST_TIMEOUT => c"ST_TIMEOUT",
            ST_AUTH => c"ST_AUTH",
            ST_REMOTE => c"ST_REMOTE",
            ST_INVALID_TOKEN => c"ST_INVALID_TOKEN",
            ST_KEY => c"ST_KEY",
            ST_STORE => c"ST_STORE",
            ST_CALLBACK => c"ST_CALLBACK",
            ST_PANIC => c"ST_PANIC",
            ST_INTERNAL => c"ST_INTERNAL",
        }
    }
}

impl st_result {
    /// What the code means: the enumerator's documentation in the header
    /// (checked against it by `every_header_code_is_listed`). The Python
    /// package's exception classes take their docstrings from it.
    pub fn description(self) -> &'static str {
        use st_result::*;
        match self {
            ST_OK => "Success.",
            ST_NOT_FOUND => "The key is absent, the cache entry missed or expired.",
            ST_NULL_ARGUMENT => "A pointer argument was NULL.",
            ST_INVALID_UTF8 => "A string argument was not valid UTF-8.",
            ST_INVALID_ARGUMENT => "An argument was out of range or malformed.",
            ST_IO => "Reading or writing a file failed.",
            ST_PARSE => "A file, document or configuration could not be parsed.",
            ST_PERMISSION => "The operating system refused access.",
            ST_PROVIDER_UNAVAILABLE => "A provider is not configured or cannot be used.",
            ST_NETWORK => "A remote service could not be reached.",
            ST_TIMEOUT => "A remote service did not answer in time.",
            ST_AUTH => "Credentials were rejected or access was denied.",
            ST_REMOTE => "A remote service returned an error.",
            ST_INVALID_TOKEN => {
                "A ciphertext was tampered with, made under another key, or malformed."
            }
            ST_KEY => "The encryption key could not be sourced.",
            ST_STORE => "The provider-configuration database failed.",
            ST_CALLBACK => "A caller's callback reported a failure the library could not classify.",
            ST_PANIC => {
                "A panic inside the library was caught at the boundary (a bug: please report)."
            }
            ST_INTERNAL => "An unexpected internal state (a bug: please report).",
        }
    }
}

/// Each kind of domain error as its C code: one exhaustive `match`, so a
/// new [`Error`](crate::Error) kind does not compile until it has a code.
impl From<&crate::Error> for st_result {
    fn from(e: &crate::Error) -> st_result {
        use crate::Error as E;
        match e {
            E::NotFound(_) => st_result::ST_NOT_FOUND,
            E::InvalidArgument(_) => st_result::ST_INVALID_ARGUMENT,
            E::Io(_) => st_result::ST_IO,
            E::Parse(_) => st_result::ST_PARSE,
            E::Permission(_) => st_result::ST_PERMISSION,
            E::ProviderUnavailable(_) => st_result::ST_PROVIDER_UNAVAILABLE,
            E::Network(_) => st_result::ST_NETWORK,
            E::Timeout(_) => st_result::ST_TIMEOUT,
            E::Auth(_) => st_result::ST_AUTH,
            E::Remote(_) => st_result::ST_REMOTE,
            E::InvalidToken(_) => st_result::ST_INVALID_TOKEN,
            E::Key(_) => st_result::ST_KEY,
            E::Store(_) => st_result::ST_STORE,
            E::Internal(_) => st_result::ST_INTERNAL,
        }
    }
}

/// An error on its way to C: a result code and a message (never a secret).
#[derive(Clone, Debug)]
pub(crate) struct FfiError {
    pub(crate) code: st_result,
    pub(crate) message: Cow<'static, str>,
}

impl FfiError {
    pub(crate) fn new(code: st_result, message: impl Into<Cow<'static, str>>) -> Self {
        FfiError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(arg: &'static str) -> Self {
        FfiError::new(
            st_result::ST_NULL_ARGUMENT,
            format!("argument '{arg}' is NULL"),
        )
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string payload");
        FfiError::new(
            st_result::ST_PANIC,
            format!("internal panic caught at the C boundary: {what}"),
        )
    }
}

impl From<crate::Error> for FfiError {
    fn from(e: crate::Error) -> Self {
        FfiError::new(st_result::from(&e), e.to_string())
    }
}

impl From<crate::cache::Reentrant> for FfiError {
    fn from(r: crate::cache::Reentrant) -> Self {
        FfiError::from(crate::Error::from(r))
    }
}

/// An error: a result code and a message. Owned by the caller, who frees it
/// with `st_error_free`. Messages never contain secret values, tokens or keys.
pub struct st_error {
    pub(crate) code: st_result,
    pub(crate) message: CString,
}

impl st_error {
    pub(crate) fn new(e: FfiError) -> Self {
        // Messages are built by this library; an interior NUL would be a bug, and
        // is replaced rather than allowed to truncate or fail.
        let text = e.message.replace('\0', "\u{FFFD}");
        st_error {
            code: e.code,
            message: CString::new(text).expect("NUL bytes were replaced"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_a_distinct_name() {
        let mut names = std::collections::HashSet::new();
        for &r in ALL_RESULTS {
            assert_eq!(st_result::from_raw(r as c_int), Some(r));
            let name = r.name().to_str().unwrap();
            assert!(name.starts_with("ST_"));
            assert!(names.insert(name));
        }
        assert_eq!(st_result::from_raw(2), None);
        assert_eq!(st_result::from_raw(-1), None);
    }

    #[test]
    fn every_header_code_is_listed() {
        // The header is generated from the enum, so its enumerators are the
        // enum's: ALL_RESULTS must hold each, with the same number.
        let header = include_str!("../../include/st_secrets.h");
        let start = header.find("typedef enum").expect("the st_result enum");
        let end = start + header[start..].find("} st_result;").expect("its end");
        let mut listed = 0;
        let mut doc = String::new();
        for line in header[start..end].lines() {
            if line.trim().starts_with("/**") || line.trim().starts_with('*') {
                doc.push_str(
                    line.trim()
                        .trim_start_matches("/**")
                        .trim_start_matches('*'),
                );
                continue;
            }
            let line = line.trim().trim_end_matches(',');
            if let Some((name, number)) = line.split_once(" = ") {
                let number: c_int = number.parse().unwrap();
                let code = st_result::from_raw(number)
                    .unwrap_or_else(|| panic!("{name} = {number} is missing from ALL_RESULTS"));
                assert_eq!(code.name().to_str().unwrap(), name);
                assert!(
                    doc.contains(code.description()),
                    "{name}'s description differs from its documentation in the header: {doc:?}"
                );
                listed += 1;
            }
            doc.clear();
        }
        assert_eq!(
            listed,
            ALL_RESULTS.len(),
            "ALL_RESULTS lists a code the header lacks"
        );
    }

    #[test]
    fn every_domain_error_maps_to_the_code_of_its_name() {
        for name in crate::Error::CODE_NAMES {
            let e = crate::Error::sample(name);
            let code = st_result::from(&e);
            assert_eq!(code.name().to_str().unwrap(), *name);
            assert_ne!(code, st_result::ST_OK);
        }
        let e = FfiError::from(crate::Error::Timeout("slow".into()));
        assert_eq!(
            (e.code, e.message.as_ref()),
            (st_result::ST_TIMEOUT, "slow")
        );
    }

    #[test]
    fn size_matches_c_int() {
        // The compute callback is called through an `int`-returning pointer type
        // (see ffi::cache); that is only sound while this holds.
        assert_eq!(
            std::mem::size_of::<st_result>(),
            std::mem::size_of::<c_int>()
        );
    }
}

//! Result codes and the owned error object.

use super::boundary::{call_or, BoxedHandle, FfiError};
use std::ffi::{c_char, c_int, CStr, CString};

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

/// Every code, for lookups and tests.
pub(crate) const ALL_RESULTS: [st_result; 19] = {
    use st_result::*;
    [
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

    pub(crate) fn name(self) -> &'static CStr {
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

/// An error: a result code and a message. Owned by the caller, who frees it
/// with `st_error_free`. Messages never contain secret values, tokens or keys.
pub struct st_error {
    code: st_result,
    message: CString,
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

/// The name of a result code as a static string, e.g. `"ST_NOT_FOUND"`;
/// `"ST_UNKNOWN"` for a number that is not a code.
///
/// Takes an `int` rather than an `st_result` so that any number is safe to pass
/// (a C enum may hold values outside its list). Never returns NULL; the string
/// must not be freed.
#[no_mangle]
pub extern "C" fn st_result_name(r: c_int) -> *const c_char {
    st_result::from_raw(r)
        .map_or(c"ST_UNKNOWN", st_result::name)
        .as_ptr()
}

/// The result code of an error; `ST_NULL_ARGUMENT` when `e` is NULL.
#[no_mangle]
pub extern "C" fn st_error_code(e: *const st_error) -> st_result {
    call_or(st_result::ST_PANIC, || {
        // SAFETY: NULL or a live st_error (caller's contract).
        match unsafe { st_error::arg(e, "e") } {
            Ok(e) => e.code,
            Err(_) => st_result::ST_NULL_ARGUMENT,
        }
    })
}

/// The error's message, NUL-terminated UTF-8, valid until `st_error_free(e)`.
/// Returns a static `"(null error)"` when `e` is NULL. Never contains secrets.
#[no_mangle]
pub extern "C" fn st_error_message(e: *const st_error) -> *const c_char {
    call_or(c"(panic)".as_ptr(), || {
        // SAFETY: NULL or a live st_error (caller's contract).
        match unsafe { st_error::arg(e, "e") } {
            Ok(e) => e.message.as_ptr(),
            Err(_) => c"(null error)".as_ptr(),
        }
    })
}

/// Frees an error. NULL is a no-op. Freeing the same error twice is undefined
/// behaviour, as with `free`.
#[no_mangle]
pub extern "C" fn st_error_free(e: *mut st_error) {
    // SAFETY: NULL or a live st_error made by this library (caller's contract).
    call_or((), || unsafe { st_error::free(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_a_distinct_name() {
        let mut names = std::collections::HashSet::new();
        for r in ALL_RESULTS {
            assert_eq!(st_result::from_raw(r as c_int), Some(r));
            let name = r.name().to_str().unwrap();
            assert!(name.starts_with("ST_"));
            assert!(names.insert(name));
        }
        assert_eq!(st_result::from_raw(2), None);
        assert_eq!(st_result::from_raw(-1), None);
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

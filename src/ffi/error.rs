//! The error object's accessors: `st_result_name`, `st_error_code`,
//! `st_error_message`, `st_error_free`. The object's contents are in
//! [`result`](super::result); the codes are declared once, in
//! [`crate::error::st_result`].

use super::boundary::{call_or, BoxedHandle};
use super::result::{st_error, st_result};
use std::ffi::{c_char, c_int};

/// The name of a result code as a static string, e.g. `"ST_NOT_FOUND"`;
/// `"ST_UNKNOWN"` for a number that is not a code.
///
/// Takes an `int` rather than an `st_result` so that any number is safe to pass
/// (a C enum may hold values outside its list). Never returns NULL; the string
/// must not be freed.
#[no_mangle]
pub extern "C" fn st_result_name(r: c_int) -> *const c_char {
    st_result::from_raw(r)
        .map_or(c"ST_UNKNOWN", st_result::c_name)
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

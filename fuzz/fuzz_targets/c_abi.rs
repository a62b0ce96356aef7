//! Fuzz target: the C ABI's string and buffer entry points, called as C
//! would call them, with the input split into NUL-terminated strings and raw
//! byte buffers. Every call must return a result (never crash); owned
//! objects are freed.
#![no_main]
use ::st_secrets::ffi::buf::st_buf_free;
use ::st_secrets::ffi::cache::{
    st_cache_delete, st_cache_free, st_cache_get, st_cache_get_into, st_cache_invalidate_prefix,
    st_cache_new, st_cache_set,
};
use ::st_secrets::ffi::crypto::st_decrypt_with_secret;
use ::st_secrets::ffi::error::{st_error_free, st_result_name};
use ::st_secrets::ffi::result::{st_error, st_result};
use ::st_secrets::ffi::secrets::{st_secrets_free, st_secrets_new};
use ::st_secrets::ffi::store::{st_hardware_info_clear_cache, st_hardware_info_set};
use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};

/// Up to four NUL-free pieces of the input, as C strings (arbitrary bytes,
/// not necessarily UTF-8).
fn pieces(data: &[u8]) -> Vec<CString> {
    data.split(|b| *b == 0)
        .take(4)
        .map(|p| CString::new(p).expect("split at NUL"))
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = pieces(data);
    let arg = |i: usize| p.get(i).map_or(null(), |s| s.as_ptr()) as *const c_char;
    let mut err = null_mut();
    let free_err = |e: &mut *mut st_error| {
        st_error_free(*e);
        *e = null_mut();
    };

    // Configuration JSON from C.
    let mut m = null_mut();
    if st_secrets_new(arg(0), &mut m, &mut err) == st_result::ST_OK {
        st_secrets_free(m);
    }
    free_err(&mut err);

    // Ciphertexts and secrets of any bytes (the derivation is cached by secret).
    let mut out = null_mut();
    if st_decrypt_with_secret(c"fuzz-secret".as_ptr(), arg(1), &mut out, &mut err)
        == st_result::ST_OK
    {
        st_buf_free(out);
    }
    free_err(&mut err);

    // Cache keys and values of any bytes, any length.
    let mut c = null_mut();
    assert_eq!(
        st_cache_new(-1.0, 4, -1.0, &mut c, &mut err),
        st_result::ST_OK
    );
    let _ = st_cache_set(c, arg(2), data.as_ptr(), data.len(), -1.0, &mut err);
    free_err(&mut err);
    let mut b = null_mut();
    if st_cache_get(c, arg(2), &mut b, &mut err) == st_result::ST_OK {
        st_buf_free(b);
    }
    free_err(&mut err);
    let mut small = [0u8; 8];
    let mut len = 0usize;
    let _ = st_cache_get_into(
        c,
        arg(2),
        small.as_mut_ptr(),
        small.len(),
        &mut len,
        &mut err,
    );
    free_err(&mut err);
    let _ = st_cache_invalidate_prefix(c, arg(3));
    let _ = st_cache_delete(c, arg(3));
    st_cache_free(c);

    // Hardware pricing JSON, and any number as a result code.
    let _ = st_hardware_info_set(arg(3), &mut err);
    free_err(&mut err);
    st_hardware_info_clear_cache();
    let n = i32::from_le_bytes(
        data.get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]),
    );
    assert!(!st_result_name(n).is_null());
});

//! `st_redact` and `st_redactor`: the leak guard through the C ABI.

use super::boundary::{bytes_arg, call, call_or, out_arg, BoxedHandle, FfiError};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::redact::{self, Redactor};
use crate::secret::SecretBytes;
use crate::sys::Mutex;

/// Flag for `st_redact` and `st_redactor_new`: also conceal every value the
/// manager's providers hold now (each key of the secrets file and of the
/// remote secrets, in every provider, and SimpleTuner's well-known keys),
/// not only the values served so far. Reads the file and fetches the
/// remote secrets (cached) once per call.
pub const ST_REDACT_HELD: u32 = 1;

/// A stream being redacted (`st_redactor_new`). Calls on one stream are
/// serialised by a lock; use one stream per output.
pub struct st_redactor {
    redactor: Mutex<Redactor>,
}

/// The values `flags` asks for beyond the served ones.
///
/// # Safety
/// `m` is NULL or a live `st_secrets`.
unsafe fn extra(
    m: *mut super::secrets::st_secrets,
    flags: u32,
) -> Result<Vec<(String, SecretBytes)>, FfiError> {
    if flags & !ST_REDACT_HELD != 0 {
        return Err(FfiError::new(
            st_result::ST_INVALID_ARGUMENT,
            format!("flags: unknown bits {:#x}", flags & !ST_REDACT_HELD),
        ));
    }
    if flags & ST_REDACT_HELD == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: NULL or a live handle (caller's contract).
    let manager = unsafe { super::secrets::manager(m) }?;
    Ok(manager
        .held_values()?
        .into_iter()
        .map(|(key, value)| (key, value.into_bytes()))
        .collect())
}

/// Copies `data` (`len` bytes, NULL when 0) into a new buffer at `*out`
/// with every secret value concealed: each value any manager of this
/// process has served (`st_secrets_get` and its variants, in any binding),
/// and with `ST_REDACT_HELD` each value `m`'s providers hold now (`m` NULL:
/// the default manager; ignored without the flag). A value is found raw and
/// encoded: base64 and URL-safe base64 at any alignment, percent-encoded,
/// inside a JSON string, hexadecimal. Every occurrence is replaced by
/// `<concealed by st-secrets>` (a run of adjacent ones by one); all other
/// bytes are kept. Values shorter than 8 bytes are not matched (they would
/// match innocent text; no credential is that short).
///
/// Returns `ST_OK` (also when nothing was concealed: `*out` is then a copy);
/// `ST_INVALID_ARGUMENT` (unknown flag bits); with `ST_REDACT_HELD`, a
/// provider's failure (as `st_secrets_get`); `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_redact(
    m: *mut super::secrets::st_secrets,
    flags: u32,
    data: *const u8,
    len: usize,
    out: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let data = unsafe { bytes_arg(data, len, "data") }?;
        let out = unsafe { out_arg(out, "out") }?;
        let extra = unsafe { extra(m, flags) }?;
        match redact::redact(data, &extra) {
            Some(redacted) => out.write(st_buf::new_raw(&redacted)),
            None => out.write(st_buf::new_raw(data)),
        }
        Ok(())
    })
}

/// Starts a redacted stream at `*out` (free with `st_redactor_free`): bytes
/// given to `st_redactor_write` in any pieces come back as `st_redact`
/// would conceal them, also a value split across writes. The values are
/// those of `st_redact` with the same `m` and `flags` (the held ones read
/// now); values served after the stream started are concealed from the
/// next write on.
///
/// Returns `ST_OK`; as `st_redact` otherwise.
#[no_mangle]
pub extern "C" fn st_redactor_new(
    m: *mut super::secrets::st_secrets,
    flags: u32,
    out: *mut *mut st_redactor,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let out = unsafe { out_arg(out, "out") }?;
        let extra = unsafe { extra(m, flags) }?;
        let redactor = Mutex::new(Redactor::new(extra));
        out.write(st_redactor { redactor }.into_raw());
        Ok(())
    })
}

/// Takes `data` (`len` bytes, NULL when 0) into the stream `r`; `*out`
/// receives a new buffer (possibly empty) with what can be passed on now,
/// concealed. Only a tail that could be the start of a value is held back
/// (at most the longest form of a value, less one byte), until the next
/// write or `st_redactor_finish`; anything else comes out at once.
///
/// Returns `ST_OK`; `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_redactor_write(
    r: *mut st_redactor,
    data: *const u8,
    len: usize,
    out: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all): NULL or valid for the call (caller's contract).
        let r = unsafe { st_redactor::arg(r, "r") }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        let out = unsafe { out_arg(out, "out") }?;
        let mut passed = Vec::with_capacity(data.len() + 64);
        r.redactor.lock().write(data, &mut passed);
        out.write(st_buf::new_raw(&passed));
        Ok(())
    })
}

/// Ends the stream `r`: `*out` receives a new buffer with what was held
/// back. The stream may be written to again afterwards (a new stream).
///
/// Returns `ST_OK`; `ST_NULL_ARGUMENT`.
#[no_mangle]
pub extern "C" fn st_redactor_finish(
    r: *mut st_redactor,
    out: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let r = unsafe { st_redactor::arg(r, "r") }?;
        let out = unsafe { out_arg(out, "out") }?;
        let mut rest = Vec::new();
        r.redactor.lock().finish(&mut rest);
        out.write(st_buf::new_raw(&rest));
        Ok(())
    })
}

/// Frees a stream (what it held back is dropped: call `st_redactor_finish`
/// first). NULL is a no-op.
#[no_mangle]
pub extern "C" fn st_redactor_free(r: *mut st_redactor) {
    // SAFETY: NULL or a live st_redactor from st_redactor_new (caller's contract).
    call_or((), || unsafe { st_redactor::free(r) })
}

//! Credential encryption through the C ABI.

use super::boundary::{call, call_or, out_arg, str_arg};
use super::buf::st_buf;
use super::result::{st_error, st_result};
use crate::crypto;
use std::ffi::c_char;

/// Encrypts `plaintext` (UTF-8) with the process-wide credential key into a new
/// buffer at `*out_ciphertext` (free with `st_buf_free`): SimpleTuner's stored
/// format, the url-safe base64 of a Fernet token (it starts with `Z0FBQUFB`).
///
/// The key is sourced on first use and cached for the process:
/// `SIMPLETUNER_CREDENTIAL_KEY` when non-empty; else the key file
/// (`SIMPLETUNER_CREDENTIAL_KEY_FILE`, default `~/.simpletuner/credential.key`),
/// first line trimmed; else a new random secret saved there (mode 0600,
/// directory 0700). An existing key file is never replaced. The secret goes
/// through PBKDF2-HMAC-SHA256 (100,000 iterations), so the first call takes tens
/// of milliseconds. Thread-safe.
///
/// Returns `ST_OK`; `ST_KEY` when the key cannot be sourced (key file
/// unreadable or empty, no home directory, a new key cannot be saved);
/// `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_encrypt(
    plaintext: *const c_char,
    out_ciphertext: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let plaintext = unsafe { str_arg(plaintext, "plaintext") }?;
        let out = unsafe { out_arg(out_ciphertext, "out_ciphertext") }?;
        let ciphertext = crypto::encrypt(plaintext)?;
        out.write(st_buf::new_raw(ciphertext.as_bytes()));
        Ok(())
    })
}

/// Decrypts a stored ciphertext (or a bare Fernet token, `gAAAAA...`) with the
/// process-wide key, trying previous keys when the current one fails
/// (`SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS`, one secret per line, and the key
/// file's lines after the first). The plaintext goes to a new buffer at
/// `*out_plaintext` (free with `st_buf_free`, which zeroes it). No TTL and no
/// clock-skew limit are enforced.
///
/// Returns `ST_OK`; `ST_INVALID_TOKEN` for an empty, malformed or tampered
/// ciphertext or a wrong key (the message never contains plaintext or key
/// material); `ST_KEY`; `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_decrypt(
    ciphertext: *const c_char,
    out_plaintext: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let ciphertext = unsafe { str_arg(ciphertext, "ciphertext") }?;
        let out = unsafe { out_arg(out_plaintext, "out_plaintext") }?;
        let plaintext = crypto::decrypt(ciphertext)?;
        out.write(st_buf::new_raw(plaintext.expose_bytes()));
        Ok(())
    })
}

/// `st_encrypt` with an explicit master secret instead of the sourced one (for
/// tools and tests). The derived key is cached per secret (up to 16 secrets).
/// Returns `ST_OK`, `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_encrypt_with_secret(
    master_secret: *const c_char,
    plaintext: *const c_char,
    out_ciphertext: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let secret = unsafe { str_arg(master_secret, "master_secret") }?;
        let plaintext = unsafe { str_arg(plaintext, "plaintext") }?;
        let out = unsafe { out_arg(out_ciphertext, "out_ciphertext") }?;
        let ciphertext = crypto::cipher_for_secret(secret).encrypt(plaintext);
        out.write(st_buf::new_raw(ciphertext.as_bytes()));
        Ok(())
    })
}

/// `st_decrypt` with an explicit master secret (no previous keys). Returns
/// `ST_OK`, `ST_INVALID_TOKEN`, `ST_NULL_ARGUMENT`, `ST_INVALID_UTF8`.
#[no_mangle]
pub extern "C" fn st_decrypt_with_secret(
    master_secret: *const c_char,
    ciphertext: *const c_char,
    out_plaintext: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (all three): NULL or valid for the call (caller's contract).
        let secret = unsafe { str_arg(master_secret, "master_secret") }?;
        let ciphertext = unsafe { str_arg(ciphertext, "ciphertext") }?;
        let out = unsafe { out_arg(out_plaintext, "out_plaintext") }?;
        let plaintext = crypto::cipher_for_secret(secret).decrypt(ciphertext)?;
        out.write(st_buf::new_raw(plaintext.expose_bytes()));
        Ok(())
    })
}

/// Re-encrypts a ciphertext readable under the current or a previous key so
/// that it is under the current key, into a new buffer at `*out_ciphertext`.
/// Idempotent: a ciphertext already under the current key comes back byte for
/// byte (compare to skip a needless write). For key rotation: keep the old
/// secret as a previous key, re-encrypt every stored credential, then drop it;
/// an interrupted rotation loses nothing, since both keys still open.
///
/// Returns `ST_OK` and the errors of `st_decrypt`.
#[no_mangle]
pub extern "C" fn st_reencrypt(
    ciphertext: *const c_char,
    out_ciphertext: *mut *mut st_buf,
    err: *mut *mut st_error,
) -> st_result {
    call(err, || {
        // SAFETY (both): NULL or valid for the call (caller's contract).
        let ciphertext = unsafe { str_arg(ciphertext, "ciphertext") }?;
        let out = unsafe { out_arg(out_ciphertext, "out_ciphertext") }?;
        let r = crypto::reencrypt(ciphertext)?;
        out.write(st_buf::new_raw(r.ciphertext.as_bytes()));
        Ok(())
    })
}

/// Forgets the cached process-wide key: the next encryption or decryption
/// sources it again (after the environment or the key file changed).
#[no_mangle]
pub extern "C" fn st_crypto_reset() {
    call_or((), crypto::reset)
}

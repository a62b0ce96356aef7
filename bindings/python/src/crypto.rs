//! Credential encryption with the process-wide key. Sourcing the key runs
//! PBKDF2 (100,000 rounds) and may read or create the key file: detached,
//! so other Python threads go on meanwhile.

use crate::errors::OrRaise;
use pyo3::prelude::*;
use pyo3::types::PyString;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(reencrypt, m)?)?;
    m.add_function(wrap_pyfunction!(reset_cipher, m)?)?;
    m.add_function(wrap_pyfunction!(derive_key, m)?)?;
    Ok(())
}

/// The stored form (url-safe base64 of a Fernet token) of `plaintext`.
#[pyfunction]
fn encrypt(py: Python<'_>, plaintext: &str) -> PyResult<String> {
    py.detach(|| st_secrets::crypto::encrypt(plaintext))
        .or_raise(py)
}

/// The plaintext of a stored credential.
#[pyfunction]
fn decrypt<'py>(py: Python<'py>, ciphertext: &str) -> PyResult<Bound<'py, PyString>> {
    let plain = py
        .detach(|| st_secrets::crypto::decrypt(ciphertext))
        .or_raise(py)?;
    Ok(PyString::new(py, plain.expose()))
}

/// `(ciphertext under the current key, whether it changed)`.
#[pyfunction]
fn reencrypt(py: Python<'_>, ciphertext: &str) -> PyResult<(String, bool)> {
    let r = py
        .detach(|| st_secrets::crypto::reencrypt(ciphertext))
        .or_raise(py)?;
    Ok((r.ciphertext, r.changed))
}

/// Forgets the process-wide key: it is sourced again at next use.
#[pyfunction]
fn reset_cipher() {
    st_secrets::crypto::reset();
}

/// The Fernet key (44 url-safe base64 bytes) PBKDF2 derives from `secret`.
#[pyfunction]
fn derive_key<'py>(py: Python<'py>, secret: &str) -> Bound<'py, pyo3::types::PyBytes> {
    let key = py.detach(|| st_secrets::crypto::derive_key(secret));
    pyo3::types::PyBytes::new(py, key.expose().as_bytes())
}

//! The leak guard's core for `st_secrets.redact`: the values served in this
//! process (by any binding), concealed in bytes and text, and a stream.

use crate::errors::OrRaise;
use crate::secrets::ManagerBase;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use st_secrets::redact::{self, Redactor as Stream};
use std::sync::Arc;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(redact_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(redact_text, m)?)?;
    m.add_function(wrap_pyfunction!(remember, m)?)?;
    m.add_function(wrap_pyfunction!(manager_remember_held, m)?)?;
    m.add_function(wrap_pyfunction!(served_count, m)?)?;
    m.add_function(wrap_pyfunction!(forget_served, m)?)?;
    m.add_function(wrap_pyfunction!(served_generation, m)?)?;
    m.add_class::<Redactor>()?;
    m.add("MIN_LEN", redact::MIN_LEN)?;
    Ok(())
}

/// `data` with every served value concealed; None when none is in it.
#[pyfunction]
fn redact_bytes<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyBytes>> {
    redact::redact(data, &[]).map(|out| PyBytes::new(py, &out))
}

/// `text` with every served value concealed; None when none is in it.
#[pyfunction]
fn redact_text(text: &str) -> Option<String> {
    // Whole values and placeholders replace whole byte runs of valid UTF-8
    // input; an encoded form may cut a character only when the value does.
    redact::redact(text.as_bytes(), &[]).map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// Conceals `value` from now on too (a value this process got another way).
#[pyfunction]
fn remember(key: &str, value: &str) {
    redact::remember(key, value.as_bytes());
}

/// Remembers every value the manager's providers hold now; how many.
#[pyfunction]
fn manager_remember_held(py: Python<'_>, manager: &Bound<'_, ManagerBase>) -> PyResult<usize> {
    let m = Arc::clone(&manager.get().native()?.manager);
    let held = py.detach(|| m.held_values()).or_raise(py)?;
    for (key, value) in &held {
        redact::remember(key, value.expose().as_bytes());
    }
    Ok(held.len())
}

/// How many values are remembered.
#[pyfunction]
fn served_count() -> usize {
    redact::served_count()
}

/// Forgets every remembered value.
#[pyfunction]
fn forget_served() {
    redact::forget_served()
}

/// Changes whenever the remembered values do.
#[pyfunction]
fn served_generation() -> u64 {
    redact::generation()
}

/// A byte stream redacted in pieces: a value split across writes is found.
#[pyclass(module = "st_secrets._native")]
pub struct Redactor {
    inner: Stream,
}

#[pymethods]
impl Redactor {
    #[new]
    fn new() -> Self {
        Redactor {
            inner: Stream::default(),
        }
    }

    /// What can be passed on now (a possible start of a value is held).
    fn write<'py>(&mut self, py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(data.len() + 32);
        self.inner.write(data, &mut out);
        PyBytes::new(py, &out)
    }

    /// What was held back (the end of the stream).
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        self.inner.finish(&mut out);
        PyBytes::new(py, &out)
    }
}

//! Library errors as Python exceptions: the classes live in
//! `st_secrets._errors` (one per result code, built from [`result_codes`]);
//! this module raises them with the error's code and message (messages never
//! hold a secret: the crate builds them that way).

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use st_secrets::error::st_result;
use std::time::Duration;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(result_codes, m)?)?;
    Ok(())
}

/// Every result code but ST_OK as `(number, name, description)`, e.g.
/// `(201, "ST_PARSE", "A file, document or configuration could not be
/// parsed.")`: the package's exception classes are built from it.
#[pyfunction]
fn result_codes() -> Vec<(i32, String, &'static str)> {
    st_result::ALL
        .iter()
        .filter(|r| **r != st_result::ST_OK)
        .map(|r| (*r as i32, r.name().to_string(), r.description()))
        .collect()
}

static ERROR_FOR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The package's exception for `e` (its class by code, e.g. `ParseError`).
pub fn to_py(py: Python<'_>, e: &st_secrets::Error) -> PyErr {
    raise_code(py, e.code() as i32, &e.to_string())
}

/// The package's exception for result code `code` with `message`.
pub fn raise_code(py: Python<'_>, code: i32, message: &str) -> PyErr {
    let make = ERROR_FOR.get_or_try_init(py, || {
        py.import("st_secrets._errors")?
            .getattr("error_for")
            .map(Bound::unbind)
    });
    match make.and_then(|f| f.call1(py, (code, message))) {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

/// `Result<T, st_secrets::Error>` to a Python result.
pub trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, st_secrets::Error> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

/// A number of seconds given as `arg`: a number, NaN refused, negative as
/// zero (already expired, as SimpleTuner treats it), infinity as "never".
pub fn seconds(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be a number of seconds, not bool"
        )));
    }
    let s: f64 = v.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg} must be a number of seconds, not {}",
            type_name(v)
        ))
    })?;
    if s.is_nan() {
        return Err(PyValueError::new_err(format!("{arg} must not be NaN")));
    }
    if s <= 0.0 {
        return Ok(Duration::ZERO);
    }
    Ok(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

/// The name of `v`'s type, for messages (never its value).
pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// The internal error for a broken promise of this module.
pub fn internal(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!("st_secrets internal error: {what}"))
}

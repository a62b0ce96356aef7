//! Versions, "this value failed me" and change events of the library's
//! chain: the methods `get_with_version`, `refresh`, `on_change` and
//! `remove_listener` of `st_secrets.SecretsManager` call these.

use crate::errors::OrRaise;
use crate::secrets::ManagerBase;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use st_secrets::secrets::{ChangeEvent, Found, Version};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set when the interpreter starts to exit: no listener call starts after
/// it (a library thread attaching to a finalizing interpreter is ended by
/// CPython in the middle of Rust code: the process aborted).
static EXITING: AtomicBool = AtomicBool::new(false);

/// Listener calls under way (past the `EXITING` check).
static CALLING: AtomicUsize = AtomicUsize::new(0);

/// How long exit waits for the listener calls under way to end.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Called by the package's `atexit` handler (registered at import, so it
/// runs after the handlers registered later): stops new listener calls,
/// then lets those under way finish (the GIL released meanwhile, so that
/// one waiting for it can run), for at most [`EXIT_WAIT`].
#[pyfunction]
fn interpreter_exiting(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    let until = Instant::now() + EXIT_WAIT;
    while CALLING.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        py.detach(|| std::thread::sleep(Duration::from_millis(1)));
    }
}

/// Runs `call` unless the interpreter is exiting, counted in [`CALLING`].
fn unless_exiting(call: impl FnOnce()) {
    if EXITING.load(Ordering::SeqCst) {
        return;
    }
    CALLING.fetch_add(1, Ordering::SeqCst);
    if !EXITING.load(Ordering::SeqCst) {
        call();
    }
    CALLING.fetch_sub(1, Ordering::SeqCst);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(interpreter_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(manager_get_with_version, m)?)?;
    m.add_function(wrap_pyfunction!(manager_refresh, m)?)?;
    m.add_function(wrap_pyfunction!(manager_report_failure, m)?)?;
    m.add_function(wrap_pyfunction!(manager_on_change, m)?)?;
    m.add_function(wrap_pyfunction!(manager_remove_listener, m)?)?;
    Ok(())
}

/// `{"provider", "version", "stages"}` of a value or a change, with
/// `"instead_of"` when the version stands in for one reported failed.
fn info<'py>(
    py: Python<'py>,
    provider: &str,
    version: Option<&Version>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("provider", provider)?;
    d.set_item("version", version.map(|v| v.id.as_str()))?;
    d.set_item("stages", version.map_or(&[][..], |v| &v.stages[..]))?;
    if let Some(failed) = version.and_then(|v| v.instead_of.as_deref()) {
        d.set_item("instead_of", failed)?;
    }
    Ok(d)
}

/// `{"value", "provider", "version", "stages"}` of what a lookup found.
fn found_dict<'py>(py: Python<'py>, found: &Found) -> PyResult<Bound<'py, PyDict>> {
    let d = info(py, found.provider, found.version.as_ref())?;
    d.set_item("value", found.value.expose())?;
    Ok(d)
}

/// `{"value", "provider", "version", "stages"}`, or None when no provider
/// has the key.
#[pyfunction]
fn manager_get_with_version<'py>(
    py: Python<'py>,
    manager: &Bound<'py, ManagerBase>,
    key: &str,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let m = Arc::clone(&manager.get().native()?.manager);
    let found = py.detach(|| m.get_with_version(key)).or_raise(py)?;
    found.map(|f| found_dict(py, &f)).transpose()
}

/// `{"value", "changed", "provider", "version", "stages"}`, or None.
#[pyfunction]
fn manager_refresh<'py>(
    py: Python<'py>,
    manager: &Bound<'py, ManagerBase>,
    key: &str,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let chain = manager.get().native()?;
    let m = Arc::clone(&chain.manager);
    let refreshed = py.detach(|| m.refresh(key));
    // A kept answer may be the value that failed.
    chain.forget(py);
    let Some(r) = refreshed.or_raise(py)? else {
        return Ok(None);
    };
    let d = found_dict(py, &r.found)?;
    d.set_item("changed", r.changed)?;
    Ok(Some(d))
}

/// "This value failed me" (`version`: the one refused; None: the one held):
/// `{"value", "changed", "provider", "version", "stages"}` with
/// `"instead_of"` for a stand-in, or None.
#[pyfunction]
#[pyo3(signature = (manager, key, version=None))]
fn manager_report_failure<'py>(
    py: Python<'py>,
    manager: &Bound<'py, ManagerBase>,
    key: &str,
    version: Option<&str>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let chain = manager.get().native()?;
    let m = Arc::clone(&chain.manager);
    let reported = py.detach(|| m.report_failure(key, version));
    // The value held before may be the one that failed.
    chain.forget(py);
    let Some(r) = reported.or_raise(py)? else {
        return Ok(None);
    };
    let d = found_dict(py, &r.found)?;
    d.set_item("changed", r.changed)?;
    Ok(Some(d))
}

/// Registers `callback`, called with `{"key", "provider", "version",
/// "stages", "removed"}` for each change (on the thread that noticed it,
/// holding the GIL). An exception it raises goes to `sys.unraisablehook`.
/// Once the interpreter exits, no call starts.
#[pyfunction]
fn manager_on_change(manager: &Bound<'_, ManagerBase>, callback: Py<PyAny>) -> PyResult<u64> {
    let m = &manager.get().native()?.manager;
    Ok(m.on_change(move |event: &ChangeEvent| {
        unless_exiting(|| {
            Python::attach(|py| {
                let told = info(py, event.provider, event.version.as_ref()).and_then(|d| {
                    d.set_item("key", &event.key)?;
                    d.set_item("removed", event.removed)?;
                    callback.call1(py, (d,))
                });
                if let Err(e) = told {
                    e.write_unraisable(py, Some(callback.bind(py)));
                }
            })
        })
    }))
}

/// Unregisters listener `id`; False when there is none.
#[pyfunction]
fn manager_remove_listener(manager: &Bound<'_, ManagerBase>, id: u64) -> PyResult<bool> {
    Ok(manager.get().native()?.manager.remove_listener(id))
}

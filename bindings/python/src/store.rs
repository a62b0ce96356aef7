//! The provider-configuration store (SQLite, read through the cache,
//! audited, credentials encrypted at rest) and hardware pricing. Every call
//! that touches the database or the key runs detached.

use crate::errors::OrRaise;
use pyo3::prelude::*;
use pyo3::types::PyString;
use st_secrets::store::{hardware, Store};
use std::path::PathBuf;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StoreHandle>()?;
    m.add_function(wrap_pyfunction!(hardware_info_json, m)?)?;
    m.add_function(wrap_pyfunction!(hardware_info_set, m)?)?;
    m.add_function(wrap_pyfunction!(hardware_info_clear_cache, m)?)?;
    m.add_function(wrap_pyfunction!(hardware_hourly_cost, m)?)?;
    m.add_function(wrap_pyfunction!(default_hardware_info_json, m)?)?;
    m.add_function(wrap_pyfunction!(hardware_info_cached, m)?)?;
    m.add_function(wrap_pyfunction!(default_db_path, m)?)?;
    Ok(())
}

/// An open store; configurations cross as JSON text.
#[pyclass(name = "StoreHandle", module = "st_secrets._native", frozen)]
pub struct StoreHandle {
    store: Store,
}

#[pymethods]
impl StoreHandle {
    /// Opens `path`, or `<state dir>/cloud/jobs.db` when None.
    #[new]
    #[pyo3(signature = (path = None))]
    fn new(py: Python<'_>, path: Option<PathBuf>) -> PyResult<Self> {
        let store = py.detach(|| Store::open(path.as_deref())).or_raise(py)?;
        Ok(StoreHandle { store })
    }

    fn path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    fn get_provider_config(&self, py: Python<'_>, provider: &str) -> PyResult<String> {
        py.detach(|| self.store.get_provider_config(provider))
            .or_raise(py)
    }

    fn save_provider_config(
        &self,
        py: Python<'_>,
        provider: &str,
        config_json: &str,
    ) -> PyResult<()> {
        py.detach(|| self.store.save_provider_config(provider, config_json))
            .or_raise(py)
    }

    fn merge_provider_config(
        &self,
        py: Python<'_>,
        provider: &str,
        patch_json: &str,
    ) -> PyResult<String> {
        py.detach(|| self.store.merge_provider_config(provider, patch_json))
            .or_raise(py)
    }

    fn update_provider_config(
        &self,
        py: Python<'_>,
        provider: &str,
        updates_json: &str,
    ) -> PyResult<String> {
        py.detach(|| self.store.update_provider_config(provider, updates_json))
            .or_raise(py)
    }

    fn delete_provider_config(&self, py: Python<'_>, provider: &str) -> PyResult<bool> {
        py.detach(|| self.store.delete_provider_config(provider))
            .or_raise(py)
    }

    fn list_providers(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.store.list_providers()).or_raise(py)
    }

    fn set_credential(
        &self,
        py: Python<'_>,
        provider: &str,
        name: &str,
        value: &str,
    ) -> PyResult<()> {
        py.detach(|| self.store.set_credential(provider, name, value))
            .or_raise(py)
    }

    fn get_credential<'py>(
        &self,
        py: Python<'py>,
        provider: &str,
        name: &str,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        let found = py
            .detach(|| self.store.get_credential(provider, name))
            .or_raise(py)?;
        Ok(found.map(|v| PyString::new(py, v.expose())))
    }

    fn delete_credential(&self, py: Python<'_>, provider: &str, name: &str) -> PyResult<bool> {
        py.detach(|| self.store.delete_credential(provider, name))
            .or_raise(py)
    }

    /// `(rotated, current, failed)`.
    fn rotate_credentials(&self, py: Python<'_>) -> PyResult<(usize, usize, usize)> {
        let r = py.detach(|| self.store.rotate_credentials()).or_raise(py)?;
        Ok((r.rotated, r.current, r.failed))
    }

    /// The newest `limit` entries as `(id, at, action, provider, subject, detail)`.
    #[allow(clippy::type_complexity)]
    fn audit_entries(
        &self,
        py: Python<'_>,
        limit: usize,
    ) -> PyResult<Vec<(i64, String, String, String, String, String)>> {
        let entries = py.detach(|| self.store.audit_entries(limit)).or_raise(py)?;
        Ok(entries
            .into_iter()
            .map(|e| (e.id, e.at, e.action, e.provider, e.subject, e.detail))
            .collect())
    }

    /// `(entries, first broken entry as (id, why) or None)`.
    fn verify_audit(&self, py: Python<'_>) -> PyResult<(usize, Option<(i64, String)>)> {
        let r = py.detach(|| self.store.verify_audit()).or_raise(py)?;
        Ok((r.entries, r.first_broken))
    }

    /// The chain's anchor `COUNT:HASH`.
    fn audit_head(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.store.audit_head()).or_raise(py)
    }
}

#[pyfunction]
#[pyo3(signature = (store = None))]
fn hardware_info_json(py: Python<'_>, store: Option<&StoreHandle>) -> PyResult<String> {
    py.detach(|| hardware::info(store.map(|s| &s.store)))
        .or_raise(py)
}

#[pyfunction]
fn hardware_info_set(py: Python<'_>, info_json: &str) -> PyResult<()> {
    hardware::set(info_json).or_raise(py)
}

#[pyfunction]
fn hardware_info_clear_cache() {
    hardware::clear_cache();
}

#[pyfunction]
#[pyo3(signature = (store = None, hardware_id = None))]
fn hardware_hourly_cost(
    py: Python<'_>,
    store: Option<&StoreHandle>,
    hardware_id: Option<&str>,
) -> PyResult<f64> {
    py.detach(|| hardware::hourly_cost(store.map(|s| &s.store), hardware_id))
        .or_raise(py)
}

/// Where `StoreHandle(None)` opens its database now (from
/// `SIMPLETUNER_STATE_DIR`, `SIMPLETUNER_CONFIG_DIR` and `HOME` as they are
/// at this call).
#[pyfunction]
fn default_db_path(py: Python<'_>) -> PyResult<PathBuf> {
    st_secrets::store::default_db_path().or_raise(py)
}

/// The built-in hardware prices as JSON.
#[pyfunction]
fn default_hardware_info_json() -> String {
    hardware::defaults().to_string()
}

/// The cached hardware information (JSON), or None; reads nothing.
#[pyfunction]
fn hardware_info_cached() -> Option<String> {
    hardware::cached()
}

//! `TTLCache`: the crate's [`TtlCache`] holding Python objects themselves,
//! so `get` returns the very object stored (as SimpleTuner's cache does) and
//! any object can be cached, picklable or not.
//!
//! Two rules keep Python code from running while the cache is locked (a
//! value's `__del__` may use the cache again, which would wait for itself):
//! values are dropped through [`bury`] after the lock is released, and the
//! single-flight `get_or_set` waits with the thread detached from the
//! interpreter, attaching only to run the factory.

use crate::errors::{internal, seconds, OrRaise};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use st_secrets::cache::{CacheConfig, Reentrant, TtlCache};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TtlCachePy>()?;
    m.add_function(wrap_pyfunction!(invalidate_store_provider_cache, m)?)?;
    m.add_function(wrap_pyfunction!(invalidate_store_user_cache, m)?)?;
    Ok(())
}

/// A stored object. Its drop (under the cache's lock, on eviction or
/// replacement) only moves the reference to the graveyard.
struct Stored(Option<Py<PyAny>>);

impl Drop for Stored {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            graveyard_push(obj);
        }
    }
}

impl Stored {
    fn object(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.0
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| internal("a cached value was taken before its entry was dropped"))
    }
}

type Value = Arc<Stored>;

/// References dropped by the caches, waiting for [`bury`]: a lock-free
/// stack (a push is one compare-and-swap, a burial takes the whole stack),
/// so a child forked while another thread pushed has no lock to wait for.
static GRAVEYARD: AtomicPtr<Grave> = AtomicPtr::new(std::ptr::null_mut());

struct Grave {
    obj: Py<PyAny>,
    next: *mut Grave,
}

fn graveyard_push(obj: Py<PyAny>) {
    let grave = Box::into_raw(Box::new(Grave {
        obj,
        next: std::ptr::null_mut(),
    }));
    let mut head = GRAVEYARD.load(Ordering::Acquire);
    loop {
        // SAFETY: `grave` is ours until the exchange publishes it.
        unsafe { (*grave).next = head };
        match GRAVEYARD.compare_exchange_weak(head, grave, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// Releases the references dropped by the cache, with no cache lock held
/// (so a `__del__` that runs may use any cache). One atomic load when there
/// is nothing to release.
fn bury(_py: Python<'_>) {
    if GRAVEYARD.load(Ordering::Acquire).is_null() {
        return;
    }
    let mut next = GRAVEYARD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    while !next.is_null() {
        // SAFETY: the swap took the whole stack: these graves are ours alone.
        let grave = unsafe { Box::from_raw(next) };
        next = grave.next;
        drop(grave.obj); // attached: the reference is released now
    }
}

/// A thread-safe TTL cache with exact LRU eviction, SimpleTuner's
/// `TTLCache` API, and single-flight `get_or_set`.
#[pyclass(name = "TTLCache", module = "st_secrets.cache", subclass, frozen)]
pub struct TtlCachePy {
    inner: Arc<TtlCache<Value>>,
    /// `default_ttl` as given (SimpleTuner's `stats()` echoes it, an int
    /// staying an int).
    default_ttl: Py<PyAny>,
}

fn ttl_arg(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match ttl {
        Some(t) if !t.is_none() => seconds("ttl", t).map(Some),
        _ => Ok(None),
    }
}

/// What a factory produced when it produced no value to cache.
#[derive(Clone)]
enum Computed {
    /// The factory returned None: returned to the callers, not cached.
    Nothing,
    /// The factory raised: every caller waiting for it raises the same.
    Raised(Arc<PyErr>),
    /// The factory asked for its own key.
    Reentrant(String),
}

impl From<Reentrant> for Computed {
    fn from(r: Reentrant) -> Self {
        Computed::Reentrant(r.to_string())
    }
}

#[pymethods]
impl TtlCachePy {
    #[new]
    #[pyo3(signature = (default_ttl = None, max_size = None, cleanup_interval = None))]
    fn new(
        py: Python<'_>,
        default_ttl: Option<&Bound<'_, PyAny>>,
        max_size: Option<&Bound<'_, PyAny>>,
        cleanup_interval: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let default_ttl_obj = match default_ttl {
            Some(t) if !t.is_none() => t.clone().unbind(),
            _ => 300.0f64.into_pyobject(py)?.into_any().unbind(),
        };
        let max_size = match max_size {
            Some(m) if !m.is_none() => {
                if m.is_instance_of::<pyo3::types::PyBool>() {
                    return Err(PyTypeError::new_err("max_size must be an int, not bool"));
                }
                let n: i128 = m.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "max_size must be an int, not {}",
                        crate::errors::type_name(m)
                    ))
                })?;
                if n < 0 {
                    return Err(PyValueError::new_err("max_size must not be negative"));
                }
                // SimpleTuner's cache with max_size 0 holds one entry.
                usize::try_from(n).unwrap_or(usize::MAX).max(1)
            }
            _ => 1000,
        };
        let config = CacheConfig {
            default_ttl: seconds("default_ttl", default_ttl_obj.bind(py))?,
            max_size,
            cleanup_interval: match cleanup_interval {
                Some(c) if !c.is_none() => seconds("cleanup_interval", c)?,
                _ => Duration::from_secs(60),
            },
        };
        Ok(TtlCachePy {
            inner: Arc::new(TtlCache::new(config).or_raise(py)?),
            default_ttl: default_ttl_obj,
        })
    }

    /// `TTLCache[str]` (SimpleTuner's generic spelling) is the class itself.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, PyType>, item: &Bound<'_, PyAny>) -> Py<PyType> {
        let _ = item; // TTLCache[T] is TTLCache whatever T is
        cls.clone().unbind()
    }

    /// The live value of `key` (the object stored), or None.
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Option<Py<PyAny>>> {
        self.inner.get_map(key, |v| v.object(py)).transpose()
    }

    /// Stores `value` for `ttl` seconds (None: the default TTL; 0 or less:
    /// already expired, so nothing is kept).
    #[pyo3(signature = (key, value, ttl = None))]
    fn set(
        &self,
        py: Python<'_>,
        key: &str,
        value: Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ttl = ttl_arg(ttl)?;
        self.inner
            .set(key, Arc::new(Stored(Some(value.unbind()))), ttl);
        bury(py);
        Ok(())
    }

    /// Removes `key`; True when a live entry was removed.
    fn delete(&self, py: Python<'_>, key: &str) -> bool {
        let removed = self.inner.delete(key);
        bury(py);
        removed
    }

    /// Removes every entry; returns how many live entries there were.
    fn clear(&self, py: Python<'_>) -> usize {
        let n = self.inner.clear();
        bury(py);
        n
    }

    /// Removes the entries whose key starts with `prefix`; returns how many
    /// live ones there were.
    fn invalidate_prefix(&self, py: Python<'_>, prefix: &str) -> usize {
        let n = self.inner.invalidate_prefix(prefix);
        bury(py);
        n
    }

    /// Sweeps expired entries now; returns how many.
    fn cleanup(&self, py: Python<'_>) -> usize {
        let n = self.inner.purge_expired();
        bury(py);
        n
    }

    /// SimpleTuner's keys (`size`, `max_size`, `expired_count`,
    /// `default_ttl` as given) and the counters `hits`, `misses`,
    /// `evictions`, `expirations`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("size", s.size)?;
        d.set_item("max_size", s.max_size)?;
        d.set_item("expired_count", s.expired_count)?;
        d.set_item("default_ttl", self.default_ttl.bind(py))?;
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("expirations", s.expirations)?;
        Ok(d)
    }

    /// The cached value, or `factory()`'s, cached (a None result is returned
    /// but not cached, as SimpleTuner). Single-flight: while one thread runs
    /// the factory for `key`, other threads asking for it wait (without
    /// holding the GIL) and receive that result, or its exception.
    #[pyo3(signature = (key, factory, ttl = None))]
    fn get_or_set(
        &self,
        py: Python<'_>,
        key: &str,
        factory: Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        if let Some(hit) = self.get(py, key)? {
            return Ok(Some(hit));
        }
        let ttl = ttl_arg(ttl)?;
        let factory = factory.unbind();
        let inner = Arc::clone(&self.inner);
        let key = key.to_owned();
        let outcome = py.detach(move || {
            inner.get_or_set(&key, ttl, || {
                Python::attach(|py| match factory.call0(py) {
                    Ok(v) if v.is_none(py) => Err(Computed::Nothing),
                    Ok(v) => Ok(Arc::new(Stored(Some(v)))),
                    Err(e) => Err(Computed::Raised(Arc::new(e))),
                })
            })
        });
        bury(py);
        match outcome {
            Ok(v) => v.object(py).map(Some),
            Err(Computed::Nothing) => Ok(None),
            Err(Computed::Raised(e)) => Err(e.clone_ref(py)),
            Err(Computed::Reentrant(m)) => Err(PyRuntimeError::new_err(m)),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let s = self.inner.stats();
        let ttl = self
            .default_ttl
            .bind(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_default();
        format!(
            "TTLCache(default_ttl={ttl}, max_size={}, size={})",
            s.max_size, s.size
        )
    }
}

impl Drop for TtlCachePy {
    /// Releases the cached objects with the cache (a flight still running on
    /// another thread keeps the native cache alive, empty, until it ends).
    fn drop(&mut self) {
        self.inner.clear();
        Python::attach(bury);
    }
}

/// Invalidates the library's own process-wide provider-config cache (the
/// one the store reads through) for `provider`; returns how many entries.
#[pyfunction]
fn invalidate_store_provider_cache(provider: &str) -> usize {
    st_secrets::cache::global::invalidate_provider_cache(provider)
}

/// Invalidates the library's own process-wide permission cache for `user_id`.
#[pyfunction]
fn invalidate_store_user_cache(user_id: i64) -> usize {
    st_secrets::cache::global::invalidate_user_cache(user_id)
}

//! The secrets chain for Python: `ManagerBase` (the base class of both
//! Python `SecretsManager` classes, with the native `get`) and
//! `NativeProvider` (one provider of the chain, for SimpleTuner's provider
//! classes).
//!
//! # The answer cache of `get`
//!
//! A Python caller pays for every foreign call, so `get` keeps the answers
//! that came from the environment or the secrets file and checks, on each
//! call, that they still hold, which costs far less than asking again:
//!
//! - the environment: the C `environ` array is compared with a copy taken
//!   when the answers were kept: the same string pointers in the same order
//!   mean no variable was set, changed or removed. C libraries never change
//!   an environment string in place (`setenv` and Python's `os.environ`
//!   install a new string; glibc reuses one only for the same `NAME=VALUE`),
//!   so equal pointers mean equal values. On any difference every answer is
//!   dropped. (A program that hands `putenv` a buffer and edits it
//!   afterwards defeats this; nothing in Python does.)
//! - the secrets file: a file answer holds while the file provider's
//!   generation is unchanged. Changes through this process (a save, a
//!   delete) bump it at once; a change by another process is seen when the
//!   provider re-checks the file's metadata, which a get asks for at most
//!   every 100 ms of the coarse monotonic clock (the precise clock reads the
//!   TSC, which costs more in a virtual machine than the rest of a get), and
//!   the provider does at most every 0.5 s: so within 0.6 s.
//!
//! Answers from the remote providers are not kept here (they have their own
//! TTL cache), nor are misses. The environment is read with the GIL held, so
//! no Python thread changes it meanwhile; native threads that call `setenv`
//! race with this as they race with every `getenv`.

use crate::errors::{internal, to_py, OrRaise};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use st_secrets::cache::KeyHasher;
use st_secrets::secrets::{
    self as lib, EnvProvider, FileProvider, ManagerConfig, Provider, ProviderKind, Vars,
};
use st_secrets::SecretsManager;
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ManagerBase>()?;
    m.add_class::<NativeProvider>()?;
    m.add_function(wrap_pyfunction!(env_provider, m)?)?;
    m.add_function(wrap_pyfunction!(file_provider, m)?)?;
    m.add_function(wrap_pyfunction!(remote_provider, m)?)?;
    Ok(())
}

/// What answered an entry of the answer cache, and how to tell it still holds.
#[derive(Clone, Copy)]
enum Origin {
    /// The environment (valid while `environ` is unchanged).
    Env,
    /// The secrets file, at this generation.
    File(u64),
}

struct Answer {
    value: Py<PyString>,
    origin: Origin,
}

/// A kept answer found by the key object itself: callers pass the same
/// (interned) string object every time, so comparing its address skips
/// reading, hashing and comparing the key. The slot holds a reference to the
/// key object, so its address cannot be reused by another string.
struct Recent {
    key: Py<PyString>,
    value: Py<PyString>,
    origin: Origin,
}

const RECENT_SLOTS: usize = 8;

/// The kept answers with the `environ` they were taken under.
#[derive(Default)]
struct Answers {
    /// `environ`'s string pointers when the answers were kept.
    environ: Vec<usize>,
    by_key: HashMap<String, Answer, KeyHasher>,
    recent: [Option<Recent>; RECENT_SLOTS],
}

fn recent_slot(key: &Bound<'_, PyString>) -> usize {
    (key.as_ptr() as usize >> 4) % RECENT_SLOTS
}

impl Answers {
    /// Drops every answer when the environment changed since they were kept.
    fn check_environment(&mut self) {
        if !environ_matches(&self.environ) {
            self.clear();
            self.environ.clear();
            environ_into(&mut self.environ);
        }
    }

    fn clear(&mut self) {
        self.by_key.clear();
        self.recent = Default::default();
    }
}

extern "C" {
    static environ: *const *const libc::c_char;
}

/// Whether `environ` holds exactly the pointers of `snapshot`.
fn environ_matches(snapshot: &[usize]) -> bool {
    // SAFETY: `environ` is a NULL-terminated array of C strings; it is read
    // with the GIL held (see the module documentation).
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return snapshot.is_empty();
        }
        for &expected in snapshot {
            if *p as usize != expected {
                return false;
            }
            p = p.add(1);
        }
        (*p).is_null()
    }
}

fn environ_into(out: &mut Vec<usize>) {
    // SAFETY: as in `environ_matches`.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            out.push(*p as usize);
            p = p.add(1);
        }
    }
}

/// A value only touched by a thread attached to the interpreter (it takes a
/// `Python` token, which a detached closure cannot hold): the GIL serialises
/// access, so no lock of its own is needed. The extension is built for the
/// stable ABI, which only GIL builds of CPython load.
struct GilCell<T>(UnsafeCell<T>);

// SAFETY: every access goes through `with`, which requires the GIL.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    fn new(value: T) -> Self {
        GilCell(UnsafeCell::new(value))
    }

    /// Runs `f` on the value. `f` must not run Python code (which could
    /// release the GIL or re-enter): it only reads, inserts and drops Python
    /// strings, whose deallocation runs no Python code.
    fn with<R>(&self, _attached: Python<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the GIL is held (the token proves it), and `f` neither
        // releases it nor calls `with` again, so this is the only reference.
        f(unsafe { &mut *self.0.get() })
    }
}

/// How often a get asks the file provider to check the file's metadata.
const FILE_CHECK_MS: u64 = 100;

/// Milliseconds of the library's coarse clock (the caches' own).
fn coarse_ms() -> u64 {
    st_secrets::cache::coarse_clock() / 1_000_000
}

/// The chain of a manager configured by the library (env > mounted > file > aws > gcp > azure > vault).
pub(crate) struct NativeChain {
    pub(crate) manager: Arc<SecretsManager>,
    /// Whether the environment provider comes first (answers are kept only
    /// then: otherwise a kept file answer could hide a later provider's).
    env_first: bool,
    /// The file provider, when it comes right after the environment.
    file: Option<Arc<FileProvider>>,
    answers: GilCell<Answers>,
    /// When the file's metadata was last asked to be checked (coarse ms).
    file_checked_ms: std::sync::atomic::AtomicU64,
    /// Raise library errors from `get` (the library's class) instead of
    /// reporting them to `_on_error` (SimpleTuner's, which logs and returns
    /// the default).
    strict: bool,
}

impl NativeChain {
    fn new(manager: SecretsManager, strict: bool) -> NativeChain {
        let names: Vec<&str> = manager.chain().iter().map(|p| p.name()).collect();
        let env_first = names.first() == Some(&"env");
        let file_second = env_first && names.get(1) == Some(&"file");
        NativeChain {
            env_first,
            file: if file_second {
                manager.file_provider()
            } else {
                None
            },
            manager: Arc::new(manager),
            answers: GilCell::new(Answers::default()),
            file_checked_ms: std::sync::atomic::AtomicU64::new(0),
            strict,
        }
    }

    /// The kept answer for `key` if it still holds (`key_obj` is `key` as
    /// the caller's string object).
    fn cached(
        &self,
        py: Python<'_>,
        key_obj: &Bound<'_, PyString>,
    ) -> PyResult<Option<Py<PyString>>> {
        let slot = recent_slot(key_obj);
        let found = self.answers.with(py, |answers| {
            answers.check_environment();
            if let Some(r) = &answers.recent[slot] {
                if r.key.as_ptr() == key_obj.as_ptr() {
                    return PyResult::Ok(Some((r.value.clone_ref(py), r.origin)));
                }
            }
            let key = key_obj.to_str()?;
            let Some(answer) = answers.by_key.get(key) else {
                return Ok(None);
            };
            let found = (answer.value.clone_ref(py), answer.origin);
            answers.recent[slot] = Some(Recent {
                key: key_obj.clone().unbind(),
                value: answer.value.clone_ref(py),
                origin: answer.origin,
            });
            Ok(Some(found))
        })?;
        let Some((value, origin)) = found else {
            return Ok(None);
        };
        let generation = match origin {
            Origin::Env => return Ok(Some(value)),
            Origin::File(generation) => generation,
        };
        Ok(self
            .file
            .as_ref()
            .filter(|f| self.file_generation(f) == generation)
            .map(|_| value))
    }

    /// The file provider's generation, checking the file at most every
    /// `FILE_CHECK_MS` (see the module documentation).
    fn file_generation(&self, file: &FileProvider) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = coarse_ms();
        if now.wrapping_sub(self.file_checked_ms.load(Relaxed)) >= FILE_CHECK_MS {
            self.file_checked_ms.store(now, Relaxed);
            file.generation()
        } else {
            file.generation_unchecked()
        }
    }

    /// Asks the chain (detached: a remote provider may take seconds), and
    /// keeps an environment or file answer when neither changed meanwhile.
    fn lookup(
        &self,
        py: Python<'_>,
        key: &str,
    ) -> Result<Option<(Py<PyString>, &'static str)>, st_secrets::Error> {
        let mut environ_before = Vec::new();
        if self.env_first {
            environ_into(&mut environ_before);
        }
        let generation = self.file.as_ref().map(|f| f.generation());
        let manager = Arc::clone(&self.manager);
        let found = py.detach(|| manager.get_with_source(key))?;
        let Some((value, source)) = found else {
            return Ok(None);
        };
        let value = PyString::new(py, value.expose()).unbind();
        let origin = match (source, generation) {
            ("env", _) if self.env_first => Some(Origin::Env),
            ("file", Some(g)) if self.env_first => Some(Origin::File(g)),
            _ => None,
        };
        if let Some(origin) = origin {
            let answer = Answer {
                value: value.clone_ref(py),
                origin,
            };
            self.answers.with(py, |answers| {
                answers.check_environment();
                // Kept only when the environment the chain read is the one
                // the answers now stand for.
                if answers.environ == environ_before {
                    answers.by_key.insert(key.to_owned(), answer);
                    // A slot may still hold this key's previous (stale) answer.
                    answers.recent = Default::default();
                }
            });
        }
        Ok(Some((value, source)))
    }

    pub(crate) fn forget(&self, py: Python<'_>) {
        self.answers.with(py, Answers::clear);
    }
}

// One per manager, read on every get: kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
enum Core {
    Native(NativeChain),
    /// A chain of the caller's own provider objects, run by the Python class.
    Python,
}

/// The base class of `st_secrets.SecretsManager` and
/// `st_secrets.secrets.SecretsManager`: the chain, and a `get` that costs
/// one call when the answer is known.
#[pyclass(name = "ManagerBase", module = "st_secrets._native", subclass, frozen)]
pub struct ManagerBase {
    core: OnceLock<Core>,
}

impl ManagerBase {
    pub(crate) fn native(&self) -> PyResult<&NativeChain> {
        match self.core.get() {
            Some(Core::Native(c)) => Ok(c),
            Some(Core::Python) => Err(PyRuntimeError::new_err(
                "this SecretsManager runs the providers it was given; the library's chain is not in it",
            )),
            None => Err(PyRuntimeError::new_err(
                "SecretsManager.__init__ has not run",
            )),
        }
    }

    fn install(&self, core: Core) -> PyResult<()> {
        self.core
            .set(core)
            .map_err(|_| internal("a SecretsManager was configured twice"))
    }
}

#[pymethods]
impl ManagerBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        ManagerBase {
            core: OnceLock::new(),
        }
    }

    /// Configures the library's chain from a JSON configuration (None: from
    /// the environment). `strict`: `get` raises library errors.
    #[pyo3(signature = (config_json, strict))]
    fn _use_native(&self, py: Python<'_>, config_json: Option<&str>, strict: bool) -> PyResult<()> {
        let config = match config_json {
            Some(text) => ManagerConfig::from_json(text).or_raise(py)?,
            None => ManagerConfig::from_environment(),
        };
        let manager = SecretsManager::new(config).or_raise(py)?;
        self.install(Core::Native(NativeChain::new(manager, strict)))
    }

    /// Leaves `get` to the Python class's `_python_get` (caller's providers).
    fn _use_python(&self) -> PyResult<()> {
        self.install(Core::Python)
    }

    /// The value from the first provider that has it, else `default`.
    #[pyo3(signature = (key, default = None))]
    fn get(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        default: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let chain = match this.core.get() {
            Some(Core::Native(c)) => c,
            Some(Core::Python) => {
                return slf
                    .call_method1("_python_get", (key, default))
                    .map(Bound::unbind)
            }
            None => {
                return Err(PyRuntimeError::new_err(
                    "SecretsManager.__init__ has not run",
                ))
            }
        };
        let key_str = key.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "key must be a str, not {}",
                crate::errors::type_name(key)
            ))
        })?;
        if let Some(v) = chain.cached(py, key_str)? {
            return Ok(v.into_any());
        }
        match chain.lookup(py, key_str.to_str()?) {
            Ok(Some((v, _))) => Ok(v.into_any()),
            Ok(None) => Ok(default.map_or_else(|| py.None(), Bound::unbind)),
            Err(e) if chain.strict => Err(to_py(py, &e)),
            Err(e) => slf
                .call_method1("_on_error", (key, to_py(py, &e), default))
                .map(Bound::unbind),
        }
    }

    /// `(value, provider name)`, or None when no provider has the key.
    fn _get_with_source(
        &self,
        py: Python<'_>,
        key: &str,
    ) -> PyResult<Option<(Py<PyString>, &'static str)>> {
        self.native()?.lookup(py, key).or_raise(py)
    }

    /// Saves to the secrets file (atomic, 0600); raises on failure.
    fn _set(&self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        let chain = self.native()?;
        let manager = Arc::clone(&chain.manager);
        let done = py.detach(|| manager.set(key, value));
        chain.forget(py);
        done.or_raise(py)
    }

    /// Removes `key` from the secrets file; False when it was not there.
    fn _delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let chain = self.native()?;
        let manager = Arc::clone(&chain.manager);
        let done = py.detach(|| manager.delete(key));
        chain.forget(py);
        done.or_raise(py)
    }

    /// Forgets every cached answer (this object's and the providers').
    fn _clear(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(Core::Native(chain)) = self.core.get() {
            chain.forget(py);
            chain.manager.clear_cache();
        }
        Ok(())
    }

    /// The secrets file saves go to (None when no location can be known).
    fn _file_path(&self) -> PyResult<Option<PathBuf>> {
        Ok(self.native()?.manager.file_path())
    }

    /// The chain as JSON (`[{"name", "available", "detail", "warnings",
    /// "last_error"}]`).
    fn _providers_json(&self) -> PyResult<String> {
        Ok(self.native()?.manager.providers_json())
    }

    /// The remote providers' counters as JSON.
    fn _metrics_json(&self) -> PyResult<String> {
        Ok(self.native()?.manager.metrics_json())
    }

    /// What the manager used as JSON, or None when it does not record it.
    fn _provenance_json(&self) -> PyResult<Option<String>> {
        Ok(self.native()?.manager.provenance_json())
    }

    /// The chain's providers, in order.
    fn _chain(&self) -> PyResult<Vec<NativeProvider>> {
        let chain = self.native()?;
        let file = chain.manager.file_provider();
        Ok(chain
            .manager
            .chain()
            .into_iter()
            .map(|p| match (&file, p.name()) {
                (Some(f), "file") => NativeProvider::of_file(Arc::clone(f)),
                _ => NativeProvider::of(p),
            })
            .collect())
    }

    /// Whether the library's chain is in use (not the caller's providers).
    fn _is_native(&self) -> bool {
        matches!(self.core.get(), Some(Core::Native(_)))
    }
}

/// One provider: the environment, a secrets file, AWS Secrets Manager or Vault.
#[pyclass(name = "NativeProvider", module = "st_secrets._native", frozen)]
pub struct NativeProvider(Kind);

enum Kind {
    Dyn(Arc<dyn Provider>),
    File(Arc<FileProvider>),
}

impl NativeProvider {
    fn of(p: Arc<dyn Provider>) -> Self {
        NativeProvider(Kind::Dyn(p))
    }

    fn of_file(f: Arc<FileProvider>) -> Self {
        NativeProvider(Kind::File(f))
    }

    fn provider(&self) -> &dyn Provider {
        match &self.0 {
            Kind::Dyn(p) => p.as_ref(),
            Kind::File(f) => f.as_ref(),
        }
    }

    fn file(&self) -> PyResult<&FileProvider> {
        match &self.0 {
            Kind::File(f) => Ok(f),
            Kind::Dyn(p) => Err(PyRuntimeError::new_err(format!(
                "the '{}' provider has no secrets file",
                p.name()
            ))),
        }
    }
}

#[pymethods]
impl NativeProvider {
    /// `env`, `mounted`, `file`, `aws`, `gcp`, `azure` or `vault`.
    #[getter]
    fn name(&self) -> &'static str {
        self.provider().name()
    }

    /// The value of `key`, or None; raises when the provider cannot answer.
    fn lookup(&self, py: Python<'_>, key: &str) -> PyResult<Option<Py<PyString>>> {
        let found = match &self.0 {
            Kind::Dyn(p) if p.name() != "env" => {
                let p = Arc::clone(p);
                py.detach(|| p.lookup(key))
            }
            _ => self.provider().lookup(key),
        };
        Ok(found
            .or_raise(py)?
            .map(|v| PyString::new(py, v.expose()).unbind()))
    }

    /// Whether the provider can answer (configured; for a file: it exists).
    fn available(&self) -> bool {
        self.provider().status().available
    }

    /// `{"name", "available", "detail", "warnings"}` (never a value).
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.provider().status();
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        d.set_item("available", s.available)?;
        d.set_item("detail", s.detail)?;
        d.set_item("warnings", s.warnings)?;
        Ok(d)
    }

    /// Forgets what the provider cached.
    fn invalidate(&self) {
        self.provider().invalidate();
    }

    /// The file a file provider reads and saves to (None when unknown).
    fn path(&self) -> PyResult<Option<PathBuf>> {
        Ok(self.file()?.path())
    }

    /// Saves `key` to the file (atomic, 0600); raises on failure.
    fn save(&self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        let f = self.file()?;
        py.detach(|| f.save(key, value)).or_raise(py)
    }

    /// Removes `key` from the file; False when it was not there.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let f = self.file()?;
        py.detach(|| f.delete(key)).or_raise(py)
    }

    fn __repr__(&self) -> String {
        format!("NativeProvider({})", self.provider().name())
    }
}

/// The environment provider reading `<prefix>_<KEY>` (no prefix: `<KEY>`).
#[pyfunction]
#[pyo3(signature = (prefix = None))]
fn env_provider(prefix: Option<String>) -> NativeProvider {
    NativeProvider::of(Arc::new(EnvProvider::new(prefix)))
}

/// A secrets-file provider for `path` (`~` expanded), or, when None, the
/// manager's default (`SIMPLETUNER_SECRETS_FILE`, else the first of
/// `~/.simpletuner/secrets.{json,yaml,yml}`).
#[pyfunction]
#[pyo3(signature = (path = None))]
fn file_provider(py: Python<'_>, path: Option<PathBuf>) -> PyResult<NativeProvider> {
    let config = match path {
        Some(p) => {
            let text = p.to_str().ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err("file_path is not valid UTF-8")
            })?;
            let json = serde_json::json!({ "file_path": text }).to_string();
            ManagerConfig::from_json(&json).or_raise(py)?
        }
        None => ManagerConfig::from_environment(),
    };
    Ok(NativeProvider::of_file(Arc::new(
        FileProvider::from_settings(&config.file),
    )))
}

/// An `aws`, `gcp`, `azure` or `vault` provider from a JSON configuration (the manager's
/// keys: `aws_secret_name`, `aws_region`, `vault_url`, ...); unset keys fall
/// back to the environment as in the manager.
#[pyfunction]
fn remote_provider(py: Python<'_>, kind: &str, config_json: &str) -> PyResult<NativeProvider> {
    let config = ManagerConfig::from_json(config_json).or_raise(py)?;
    let remote = ProviderKind::ALL
        .iter()
        .find(|(name, _)| *name == kind)
        .and_then(|(_, k)| lib::remote_provider(*k, &config, Vars::from_process()));
    let Some(p) = remote else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "kind must be 'aws', 'gcp', 'azure' or 'vault', not {kind:?}"
        )));
    };
    Ok(NativeProvider::of(p))
}

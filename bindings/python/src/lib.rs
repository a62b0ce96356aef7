//! `st_secrets._native`: the Python package's extension module, over the
//! st-secrets crate's Rust API (not its C ABI).
//!
//! | module | what it gives Python |
//! |---|---|
//! | `errors` | library errors as the package's exception classes (`st_secrets._errors`) |
//! | `cache` | `TTLCache`, holding the Python objects themselves |
//! | `secrets` | the secrets chain (`ManagerBase`, with the fast `get`) and single providers |
//! | `events` | the chain's versions, `refresh` and change listeners |
//! | `redact` | the leak guard: served values concealed in bytes, text and a stream (`st_secrets.redact`) |
//! | `crypto` | credential encryption (key derivation with the GIL released) |
//! | `store` | the provider-config store and hardware pricing |
//! | `tool` | the `st-secrets` command line (the tool's own source, compiled in here) |
//!
//! Anything that may wait (a remote fetch, PBKDF2, SQLite, a single-flight
//! wait) runs with the thread detached from the interpreter, so other Python
//! threads go on meanwhile.

use pyo3::prelude::*;

mod cache;
mod crypto;
mod errors;
mod events;
mod redact;
mod secrets;
mod store;
mod tool;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("VERSION", st_secrets::VERSION)?;
    errors::register(m)?;
    cache::register(m)?;
    secrets::register(m)?;
    events::register(m)?;
    redact::register(m)?;
    crypto::register(m)?;
    store::register(m)?;
    tool::register(m)?;
    Ok(())
}

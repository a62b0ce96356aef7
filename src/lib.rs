//! st-secrets: the secrets-and-cache core of SimpleTuner's cloud launcher, with a C ABI.
//!
//! # Module map
//!
//! Every import points down this list; no module imports from one that
//! imports it (checked by `tests/layout.rs`). The domain modules are safe
//! Rust and know nothing about C; all `unsafe` lives in [`ffi`].
//!
//! | module | what it holds | imports |
//! |---|---|---|
//! | `error` | [`Error`]: the crate's error; `Display` never shows a secret | nothing |
//! | `secret` | [`SecretBytes`], [`SecretString`]: buffers zeroed on drop | nothing |
//! | `paths` | home directory, `~` expansion, `~/.simpletuner`, the state dir | nothing |
//! | `fsutil`, `lazy` | private 0600 files and renames; a resettable process-wide value | `error` |
//! | [`cache`] | [`TtlCache`] (TTL + LRU + single-flight) and the two process-wide caches | `error`, `secret` |
//! | [`crypto`] | [`Cipher`]: SimpleTuner-compatible Fernet credential encryption | `cache`, `paths`, `fsutil`, `lazy` |
//! | [`store`] | [`Store`]: the SQLite provider-config store, audit trail, hardware prices | `cache`, `crypto`, `paths`, `fsutil` |
//! | [`secrets`] | [`SecretsManager`] and its providers, below | all of the above |
//! | [`ffi`] | the C ABI (`include/st_secrets.h` is generated from it) | the domain modules |
//!
//! Inside [`secrets`], again one direction: `provider` (the [`Provider`]
//! trait, [`ProviderStatus`], the secret map, key normalization: a leaf) <-
//! `remote` (HTTP, retries, the single-flight stale-on-error secret cache) <-
//! the providers `env`, `file`, `aws`, `vault` <- `config` <- the manager.
//!
//! # The Rust API
//!
//! What this file re-exports, and the public items of the [`cache`],
//! [`crypto`], [`store`] and [`secrets`] namespaces. Everything else
//! (request signing, HTTP, wire formats, file locking) is `pub(crate)`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod cache;
pub mod crypto;
mod error;
pub mod ffi;
mod fsutil;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz_api;
mod lazy;
mod paths;
mod secret;
pub mod secrets;
pub mod store;

pub use cache::{CacheConfig, CacheStats, TtlCache};
pub use crypto::Cipher;
pub use error::Error;
pub use fsutil::write_private_file;
pub use secret::{SecretBytes, SecretString};
pub use secrets::{
    default_manager, reset_default, ManagerConfig, Provider, ProviderKind, ProviderStatus,
    SecretsManager,
};
pub use store::Store;

/// The crate version, `MAJOR.MINOR.PATCH`, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

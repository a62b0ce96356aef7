//! st-secrets: the secrets-and-cache core of SimpleTuner's cloud launcher, with a C ABI.
//!
//! Module map (the domain modules are safe Rust and know nothing about C; all
//! `unsafe` lives in [`ffi`]):
//!
//! - [`error`]: the crate's [`Error`] type; its `Display` never contains a secret.
//! - [`secret`]: byte buffers that zero themselves when dropped.
//! - [`cache`]: the generic TTL + LRU cache and the two process-wide caches.
//! - [`secrets`]: the secrets manager, its providers and configuration.
//! - [`remote`]: what the remote providers share: HTTP client, retries,
//!   the single-flight, stale-on-error secret cache.
//! - [`aws`]: the AWS Secrets Manager provider and the AWS credential chain.
//! - [`vault`]: the HashiCorp Vault provider (KV v2 with v1 fallback).
//! - [`crypto`]: credential encryption (SimpleTuner-compatible Fernet).
//! - [`ffi`]: the C ABI (`include/st_secrets.h` is generated from it).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod aws;
pub mod cache;
pub mod crypto;
pub mod error;
pub mod ffi;
mod fsutil;
mod lazy;
pub mod remote;
pub mod secret;
pub mod secrets;
pub mod store;
pub mod vault;

pub use error::Error;

/// The crate version, `MAJOR.MINOR.PATCH`, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

//! The provider machinery of the remote services (AWS Secrets Manager, GCP
//! Secret Manager, Azure Key Vault, HashiCorp Vault): the one provider of
//! remote secrets ([`source::RemoteSource`]) over each service's
//! [`source::Fetch`], the cache of a remote secret
//! ([`secret_cache::SecretCache`]) that sends one request per TTL however
//! many threads ask, refreshes ahead, and serves the last good value,
//! within a bound, while the service fails transiently; the version checks
//! and a rotation's stand-in ([`rotation`]); the [`kit`] a backend builds
//! its provider with. (The general-purpose
//! [`TtlCache`](crate::cache::TtlCache) of the C API's `st_cache` is
//! another thing: the providers do not use it.)
//!
//! The layers below, each importing only what is below it: credentials
//! (`secrets::credential`), the node cache and a fleet's start
//! (`secrets::node`), the transport (`secrets::transport`).

#[cfg(test)]
pub(crate) mod fake;
pub mod kit;
pub(crate) mod rotation;
pub(crate) mod secret_cache;
pub(crate) mod source;

#[cfg(test)]
mod tests;

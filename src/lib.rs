//! st-secrets: the secrets-and-cache core of SimpleTuner's cloud launcher, with a C ABI.
//!
//! # Module map
//!
//! The one map of the crate (docs/testing.md links it). Every import points up
//! this table: a module imports only from the modules its row names (and
//! from its own submodules), and no module imports from one that imports
//! it. `tests/layout.rs` reads the `imports` column and fails when the code
//! imports anything the row does not name, or when a row names an import the
//! code no longer makes; it also refuses a path through this file's
//! re-exports (`crate::Error`), so every import names the module that defines
//! the item (`crate::error::Error`). Test modules (`tests`) may import what
//! they test; `fuzz_api` (built only under `cfg(fuzzing)`) reaches into the
//! parsers it feeds.
//!
//! `unsafe` is denied in the whole crate (`#![deny(unsafe_code)]` below) and
//! allowed in two modules only: [`ffi`], the C ABI, and `sys`, the system
//! layer (secret memory, the fork-safe locks, the clocks, `statvfs`, a bounded Unix-socket
//! connect, extended attributes, the tests' fork helper and counting allocator). The domain
//! modules are safe Rust and know nothing about C.
//!
//! | module | what it holds | imports |
//! |---|---|---|
//! | `error` | [`Error`]: the crate's error, `Display` never shows a secret; [`st_result`](error::st_result), the one list of result codes | nothing |
//! | `secret` | [`SecretBytes`], [`SecretString`]: buffers in secret memory, zeroed on drop | `sys` |
//! | `paths` | home directory, `~` expansion, `~/.simpletuner`, the state dir | nothing |
//! | `sys` | the system layer, where `unsafe` may live: secret memory (out of core dumps, locked where allowed, zeroed on free), locks that keep working in a child after `fork()`, a `static` built on first use that never blocks, the monotonic clocks, free space, whether a filesystem is memory-backed, extended attributes, a bounded Unix-socket connect, the library's threads with the host's signals blocked | nothing |
//! | `fsutil` | private 0600 files, atomic replacement, bounded reads, lock files, what a file's ACL lets in | `error`, `sys` |
//! | `lazy` | a resettable process-wide value | `error`, `sys` |
//! | `cache` | [`TtlCache`] (TTL + LRU + single-flight) and the two process-wide caches; the C API's `st_cache` | `error`, `secret`, `sys` |
//! | `crypto` | [`Cipher`]: SimpleTuner-compatible Fernet credential encryption, key sourcing | `error`, `secret`, `sys`, `paths`, `fsutil`, `lazy` |
//! | `store` | [`Store`]: the SQLite provider-config store (read through `cache`), audit trail, hardware prices | `error`, `secret`, `sys`, `paths`, `fsutil`, `cache`, `crypto` |
//! | `redact` | the leak guard's core: the values served (remembered once each), their encoded forms, the one matcher (`Patterns`, the `Masker` stream) that redaction, `run`'s masking and `scan` share | `secret`, `sys`, `error` |
//! | `secrets::lifetime` | the one rule for everything that expires (a token, a lease, an identity token, AWS credentials): when it is renewed, replaced, taken to end | `sys` |
//! | `secrets::provider` | the [`Provider`] trait, [`ProviderStatus`], the secret map (a leased one with its lifetime), key normalization, the changes a provider noticed | `error`, `secret`, `sys`, `secrets::lifetime` |
//! | `secrets::transport` | how the library reaches a service, and the words every layer above shares: `RemoteSettings`, `FetchError`, `Fetched`; one HTTP client with short timeouts (`http`), HTTP over a Unix socket, URLs, what a request sent scrubbed from answers (`sent`), retries and a fetch's bound (`retry`), the environment the remote providers read (`Vars`, the allow-list of variable names), the counters (`meter`); a fleet's start as values handed in (`gate`: the fleet's settings, the node's place, its admission and pace) | `error`, `secret`, `sys`, `paths`, `fsutil`, `secrets::provider`, `secrets::lifetime` |
//! | `secrets::node` | the node cache the processes of a node share (an entry per secret or credential, its lock, the node's notes), and a fleet's start (`fleet`: admission by rank, the fleet deadline, the pace with a server shared by the node), handed to the transport as its gate | `error`, `secret`, `sys`, `fsutil`, `secrets::provider`, `secrets::lifetime`, `secrets::transport` |
//! | `secrets::credential` | credentials: one keeper for every held credential (`keeper`), the one rule for an identity file and the JWT claim reader (`identity_file`), token files read again when they change (`token_file`), the OAuth 2.0 wire the clouds' credentials share (`oauth`), credential helper programs (`program`) | `error`, `secret`, `sys`, `fsutil`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::node` |
//! | `secrets::remote` | the provider machinery of the remote services: `SecretCache` (a fetched secret, single-flight, stale-on-error), `RemoteSource` (the one remote provider over each service's `Fetch`, several secrets in order), the version checks and a rotation's stand-in (`rotation`), the kit a backend builds its provider with (`kit`) | `error`, `secret`, `sys`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::node` |
//! | `secrets::env` | the environment provider (and `NAME_FILE` for an unset `NAME`) | `error`, `secret`, `fsutil`, `secrets::provider` |
//! | `secrets::mounted` | the mounted-secrets provider (`MountedSettings`): directories of one file per key, a kubelet volume read one generation at a time | `error`, `secret`, `sys`, `paths`, `fsutil`, `secrets::provider` |
//! | `secrets::file` | the JSON/YAML secrets file provider (`FileSettings`); `document`: the file's editable document | `error`, `secret`, `sys`, `paths`, `fsutil`, `secrets::provider` |
//! | `secrets::aws_identity` | the AWS identity its three users share (Secrets Manager, Vault's `aws` login, `run --aws-credentials`): the credential chain, STS, metadata endpoints, profiles, SSO, `credential_process`; the SigV4 signer and AWS's wire | `error`, `secret`, `paths`, `fsutil`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::node`, `secrets::credential` |
//! | `secrets::aws` | AWS Secrets Manager (`AwsSettings`): `GetSecretValue`, `DescribeSecret`'s versions; the AWS Secrets Manager Agent transport | `error`, `secret`, `paths`, `secrets::provider`, `secrets::transport`, `secrets::node`, `secrets::credential`, `secrets::remote`, `secrets::aws_identity` |
//! | `secrets::gcp` | GCP Secret Manager (`GcpSettings`): secret names, `access` and its payload (CRC32C, keys or one value); Google's credentials (service account keys, gcloud's user credentials, workload identity federation, the metadata server), each an issuer of the tokens `secrets::credential` keeps | `error`, `secret`, `sys`, `paths`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::credential`, `secrets::remote`, `secrets::aws_identity` |
//! | `secrets::azure` | Azure Key Vault (`AzureSettings`): secret names, the vault's challenge (tenant and scope, checked against the vault's host), a secret's attributes and value (keys or one value); Azure's credentials (client secret or certificate, workload identity, managed identity), each a credential the tokens `secrets::credential` keeps come from | `error`, `secret`, `sys`, `paths`, `secrets::provider`, `secrets::transport`, `secrets::credential`, `secrets::remote` |
//! | `secrets::vault` | HashiCorp Vault / OpenBao (`VaultSettings`): the client (requests to the nodes), the session (the token whatever its source; a login is an issuer the credential keeper holds, one login per node with the node cache; an identity token kept fresh for a job), KV v2/v1, leased secrets and the job's ledger; logins (AppRole, and the workload's identity: Kubernetes, JWT, TLS certificate, AWS IAM signed with the shared AWS identity); a cluster's nodes (failover, elections, `X-Vault-Index`, what a failover taught shared in the node cache's directory) | `error`, `secret`, `sys`, `paths`, `fsutil`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::node`, `secrets::credential`, `secrets::remote`, `secrets::aws_identity` |
//! | `secrets::exchange` | token exchanges: a third-party API's short-lived credential (Hugging Face, OpenAI, Anthropic, W&B, OpenRouter, any RFC 8693 or RFC 7523 endpoint) for the workload's own token; each endpoint's wire (`profile`), where the subject token comes from (`subject`: a file, the Slurm job's, or one a service mints, through `Mints`, which the chain's builder gives), the subject token's and the answer's checks | `error`, `secret`, `sys`, `paths`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::credential`, `secrets::remote` |
//! | `secrets::provenance` | which version of each secret a manager used, with a fingerprint of each value (HMAC-SHA256 under the job's salt), and the file of JSON lines it appends to | `error`, `secret`, `sys`, `paths`, `fsutil`, `secrets::provider`, `secrets::transport` |
//! | `secrets::config` | [`ManagerConfig`]: each provider's settings; `config_keys()`, the one list of configuration keys | `error`, `secret`, `paths`, `fsutil`, `secrets::transport`, `secrets::mounted`, `secrets::file`, `secrets::aws`, `secrets::gcp`, `secrets::azure`, `secrets::vault`, `secrets::exchange`, `secrets::provenance` |
//! | `secrets` | [`SecretsManager`]: builds the chain from the configuration, asks it in order; `events`: change listeners and the watch (on `sys`'s refresher thread); `subjects`: the subject tokens OpenBao's identity tokens (one login for every exchange) and GCP's metadata server mint for the exchanges | `error`, `secret`, `sys`, `lazy`, `redact`, `secrets::provider`, `secrets::transport`, `secrets::node`, `secrets::remote`, `secrets::env`, `secrets::mounted`, `secrets::file`, `secrets::aws`, `secrets::gcp`, `secrets::azure`, `secrets::vault`, `secrets::exchange`, `secrets::config`, `secrets::provenance` |
//! | `job` | what a scheduler asks for a job, over the secrets manager: `delivery`, secrets handed to a job's processes as files (`run --as-files`' conventions: a token file, a netrc, an AWS credentials file, a vendor's file for an exchanged credential, `NAME_FILE`; or one file per key with `st://KEY`), written new, 0600, to the job's user, a short-lived credential's file rewritten atomically as it is renewed; `token`, the job's own short-lived RS256 JWT a site signs from the scheduler's record of it (cluster, job, user, account, partition, QOS) and the JWKS and OpenID discovery documents that publish the site's keys; `vars`, the variables `st-secrets run` sets for its command | `error`, `secret`, `sys`, `fsutil`, `secrets::provider`, `secrets::lifetime`, `secrets::transport`, `secrets::credential`, `secrets::exchange`, `secrets::config`, `secrets` |
//! | `ffi` | the C ABI (`include/st_secrets.h` is generated from it): result codes, boundary helpers, one file per type family, the handle table | `error`, `secret`, `sys`, `redact`, `cache`, `crypto`, `store`, `secrets::lifetime`, `secrets`, `job` |
//! | (root) | this map and the re-exports below | `error`, `secret`, `cache`, `crypto`, `store`, `secrets` |
//!
//! The command-line tool is its own crate (`cli/`, with its own map in
//! `cli/src/lib.rs`) over this crate's Rust API.
//!
//! # The Rust API
//!
//! What this file re-exports, and the public items of the [`cache`],
//! [`crypto`], [`store`] and [`secrets`] namespaces. Everything else
//! (request signing, HTTP, wire formats, file locking) is `pub(crate)`.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cache;
pub mod crypto;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
mod fsutil;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz_api;
pub mod job;
mod lazy;
mod paths;
pub mod redact;
mod secret;
pub mod secrets;
pub mod store;
#[allow(unsafe_code)]
mod sys;

pub use cache::{CacheConfig, CacheStats, TtlCache};
pub use crypto::Cipher;
pub use error::Error;
pub use secret::{SecretBytes, SecretString};
pub use secrets::{
    default_manager, reset_default, ManagerConfig, Provider, ProviderKind, ProviderStatus,
    SecretsManager,
};
pub use store::Store;

/// The crate version, `MAJOR.MINOR.PATCH`, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

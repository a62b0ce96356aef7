//! The AWS identity, shared by its three users (the Secrets Manager
//! provider, Vault's `aws` login, and the credentials `st-secrets run`
//! serves its command): the credential chain ([`credentials`]: the
//! environment, profiles with roles, SSO and `credential_process`, web
//! identity, the container and instance metadata endpoints, each refreshed
//! as [`Lifetime`](crate::secrets::lifetime) says) and the wire every AWS
//! request speaks ([`wire`]: the SigV4 signer, the query protocol's forms,
//! the error bodies of both protocols).

pub(crate) mod credentials;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod process;
pub(crate) mod profile;
pub(crate) mod sso;
pub(crate) mod sts;
pub(crate) mod wire;

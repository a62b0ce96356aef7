//! Token exchanges: the short-lived credential of a third-party API (Hugging
//! Face, OpenAI, Anthropic, Weights & Biases, OpenRouter, or any RFC 8693 or
//! RFC 7523 token endpoint) obtained by presenting the workload's own token
//! (its subject token: a projected Kubernetes service-account token, a Slurm
//! job's token, a JWT-SVID), instead of a long-lived API key.
//!
//! An [`Exchange`] is one secret's: its [`Profile`] (the endpoint's wire),
//! the subject token's file, the profile's fields. Each exchange reads the
//! subject token again and checks it before sending it anywhere: a JWT whose
//! `exp` has passed (or comes within [`MIN_SUBJECT_LEFT`]), whose `nbf` or
//! `iat` is ahead of this host's clock by more than [`CLOCK_SKEW`] (the
//! clock is off), that is for another audience than the profile's, or (for
//! an endpoint that takes each JWT once) that was sent already, is refused
//! by name. The answer must say its lifetime (`expires_in`): a credential
//! of unknown lifetime is not held, nor one that would outlive the subject
//! token; a redirect is never followed (the credential's request goes to
//! the configured host only), and an answer larger than the HTTP layer's
//! bound is refused there. Retries are the remote machinery's, bounded.

mod one;
mod profile;
mod source;
pub(crate) mod subject;
mod vendor;
pub use one::{key_pair, Exchange, Exchanged, Token, CLOCK_SKEW, MIN_SUBJECT_LEFT};
pub use profile::{ExchangeSettings, Profile, Request};
pub use source::{settings_map, ExchangeConfig, ExchangeProvider, ExchangeSettingsMap, Exchanges};
pub use subject::{Mint, Mints};
pub use vendor::VendorFile;

#[cfg(test)]
mod tests;

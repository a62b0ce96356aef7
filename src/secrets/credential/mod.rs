//! Credentials: what the library authenticates with, held and written where
//! programs read them. The [`keeper`] holds every credential the library
//! holds, by the one rule of [`Lifetime`](crate::secrets::lifetime::Lifetime);
//! [`identity_file`] is the one rule for a file holding a credential given
//! to the library (and the one JWT claim reader); [`token_file`] reads such
//! a file again when it changes; [`oauth`] is the OAuth 2.0 wire the
//! clouds' credentials share; [`program`] runs a credential helper.
//!
//! Below it: the node cache (`secrets::node`), through which a node's
//! processes share one credential, and the transport.

pub(crate) mod identity_file;
pub(crate) mod keeper;
pub(crate) mod oauth;
pub(crate) mod program;
pub(crate) mod token_file;

pub(crate) use keeper::{Credential, Issued, Issuer, Keeper};

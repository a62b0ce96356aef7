//! Google's OAuth 2.0 endpoints as its credentials name them: the scope
//! every token is asked for, the token endpoint, and a credentials file's
//! `token_uri`; what a project ID may be.

use crate::error::Error;
use crate::secrets::credential::oauth::{optional, secure_url};
use serde_json::{Map, Value};
use std::path::Path;

/// The scope every token is asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's OAuth 2.0 token endpoint.
pub const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A credentials document's `token_uri` (Google's token endpoint when it
/// names none), refused unless credentials may be sent there.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the file ([`secure_url`]).
pub(crate) fn token_uri(doc: &Map<String, Value>, file: &Path) -> Result<String, Error> {
    let uri = optional(doc, "token_uri").unwrap_or_else(|| TOKEN_URI.to_owned());
    secure_url(
        &uri,
        &format!("credentials file {}: 'token_uri'", file.display()),
    )?;
    Ok(uri)
}

/// A project ID (`my-project-123`) or a domain-scoped one
/// (`example.com:my-project`).
pub fn valid_project(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 100
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
}

//! A set of AWS credentials and where it came from: what the credential
//! chain ([`super::credentials`]) produces and the request signer
//! ([`super::wire`]) consumes. A leaf of the AWS provider.

use crate::error::Error;
use crate::secret::SecretString;
use std::time::SystemTime;

/// Where credentials came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`).
    Environment,
    /// A profile of the shared credentials or config file.
    Profile(String),
    /// STS `AssumeRoleWithWebIdentity` with a token file.
    WebIdentity,
    /// The container credentials endpoint.
    Container,
    /// EC2 instance metadata (IMDSv2).
    InstanceMetadata,
    /// STS `AssumeRole` for a profile's `role_arn` (the profile's name).
    AssumedRole(String),
    /// A profile's `credential_process` (the profile's name).
    Process(String),
    /// IAM Identity Center (SSO) for a profile (the profile's name).
    Sso(String),
}

impl Source {
    /// A short description for the doctor and `providers_json`.
    pub fn describe(&self) -> String {
        match self {
            Source::Environment => "environment variables".into(),
            Source::Profile(p) => format!("shared profile '{p}'"),
            Source::WebIdentity => "web identity (AssumeRoleWithWebIdentity)".into(),
            Source::Container => "container credentials endpoint".into(),
            Source::InstanceMetadata => "EC2 instance metadata (IMDSv2)".into(),
            Source::AssumedRole(p) => format!("role of shared profile '{p}' (STS AssumeRole)"),
            Source::Process(p) => format!("credential_process of shared profile '{p}'"),
            Source::Sso(p) => format!("IAM Identity Center (SSO) for shared profile '{p}'"),
        }
    }
}

/// A set of credentials. `Debug` shows the source and expiry only.
pub struct Credentials {
    /// The access key id (not a secret; shown by AWS in error messages).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire.
    pub expires: Option<SystemTime>,
    /// Where they came from.
    pub source: Source,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub(crate) fn due(&self, now: SystemTime) -> bool {
        crate::secrets::lifetime::aws_due(self.expires, now)
    }

    pub(crate) fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// The largest token file read: 64 KiB (a JWT is a few KiB).
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// A token file (web identity, container authorization), read safely: a
/// regular file, bounded, never blocking, refused when group or others may
/// write it (checked on the opened file); missing is an error naming `what`.
pub(crate) fn read_token_file(path: &std::path::Path, what: &str) -> Result<SecretString, Error> {
    let check =
        |meta: &std::fs::Metadata| crate::fsutil::refuse_writable_by_others(path, what, meta);
    let bytes = crate::secret::SecretBytes::from(crate::fsutil::read_required_checked(
        path,
        what,
        MAX_TOKEN_FILE,
        check,
    )?);
    Ok(SecretString::from(
        String::from_utf8_lossy(bytes.expose()).into_owned(),
    ))
}

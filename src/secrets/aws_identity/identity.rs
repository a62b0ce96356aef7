//! A set of AWS credentials and where it came from: what the credential
//! chain ([`super::credentials`]) produces and the request signer
//! ([`super::wire`]) consumes. A leaf of the AWS provider.

use crate::secret::SecretString;
use crate::secrets::credential::Credential;
use crate::secrets::lifetime::{Lifetime, AWS_REFRESH_BEFORE};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// Their lifetime from `now` in the node's monotonic clock: until they
    /// expire (a nanosecond when they have), endless without an expiry.
    pub(crate) fn lifetime(&self, now: SystemTime) -> Lifetime {
        let ttl = match self.expires {
            None => Duration::ZERO,
            Some(e) => e
                .duration_since(now)
                .unwrap_or_default()
                .max(Duration::from_nanos(1)),
        };
        Lifetime::new(ttl, false)
    }
}

/// AWS's rule for a keeper: replaced [`AWS_REFRESH_BEFORE`] before they
/// expire, as the AWS SDKs do, and used until then when their replacement
/// fails. What the node's processes share: the keys, the expiry (as its
/// lifetime) and the source.
impl Credential for Arc<Credentials> {
    fn to_json(&self) -> Value {
        let (kind, profile) = match &self.source {
            Source::Environment => ("environment", None),
            Source::Profile(p) => ("profile", Some(p)),
            Source::WebIdentity => ("web-identity", None),
            Source::Container => ("container", None),
            Source::InstanceMetadata => ("instance-metadata", None),
            Source::AssumedRole(p) => ("assumed-role", Some(p)),
            Source::Process(p) => ("process", Some(p)),
            Source::Sso(p) => ("sso", Some(p)),
        };
        json!({
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key.expose(),
            "session_token": self.session_token.as_ref().map(SecretString::expose),
            "expires": self.expires.and_then(|e| e.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64()),
            "source": kind,
            "profile": profile,
        })
    }

    fn from_json(doc: &Value) -> Option<Self> {
        let profile = || doc["profile"].as_str().map(str::to_owned);
        let source = match doc["source"].as_str()? {
            "environment" => Source::Environment,
            "profile" => Source::Profile(profile()?),
            "web-identity" => Source::WebIdentity,
            "container" => Source::Container,
            "instance-metadata" => Source::InstanceMetadata,
            "assumed-role" => Source::AssumedRole(profile()?),
            "process" => Source::Process(profile()?),
            "sso" => Source::Sso(profile()?),
            _ => return None,
        };
        let expires = match &doc["expires"] {
            Value::Null => None,
            e => Some(UNIX_EPOCH + Duration::try_from_secs_f64(e.as_f64()?).ok()?),
        };
        Some(Arc::new(Credentials {
            access_key_id: doc["access_key_id"].as_str()?.to_owned(),
            secret_access_key: SecretString::from(doc["secret_access_key"].as_str()?),
            session_token: doc["session_token"].as_str().map(SecretString::from),
            expires,
            source,
        }))
    }

    fn id(&self) -> &str {
        &self.access_key_id
    }

    fn replace_at(lifetime: &Lifetime) -> Option<u64> {
        let early = lifetime.ttl().saturating_sub(AWS_REFRESH_BEFORE);
        (!lifetime.endless()).then(|| Lifetime::since(lifetime.start(), early, false).end())
    }

    fn usable_until(lifetime: &Lifetime) -> Option<u64> {
        (!lifetime.endless()).then(|| lifetime.end())
    }
}

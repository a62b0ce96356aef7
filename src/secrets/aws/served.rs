//! The AWS credential chain on its own, for a command that `st-secrets run`
//! serves credentials to (the container-credentials protocol): whatever the
//! chain finds (static keys, an assumed role, IAM Identity Center, a web
//! identity, a `credential_process`), refreshed five minutes before it
//! expires, as the provider's own requests use it.

use super::credentials::CredentialChain;
use super::resolve_region;
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::remote::http::{Http, Trust};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{RemoteSettings, Vars};
use std::sync::Arc;
use std::time::SystemTime;

/// The chain of the AWS settings and environment, with the credentials it
/// found last.
pub struct AwsCredentialChain {
    chain: CredentialChain,
    region: Option<String>,
}

/// Credentials the chain gave. `Debug` shows neither secret.
pub struct AwsCredentials {
    /// The access key ID (not a secret: AWS shows it in error messages).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire.
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl AwsCredentialChain {
    /// The chain `aws` and `vars` configure (no secret name needed).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::InvalidArgument`]: an unreadable CA bundle
    /// or profile file.
    pub fn new(
        aws: &super::AwsSettings,
        remote: &RemoteSettings,
        vars: Vars,
    ) -> Result<AwsCredentialChain, Error> {
        let region = resolve_region(aws, &vars)?;
        let trust = vars
            .get(var::AWS_CA_BUNDLE)
            .map_or(Trust::Default, |p| Trust::Bundle(expand_home(p.into())));
        let http = Arc::new(Http::new(remote, &trust, var::AWS_CA_BUNDLE)?);
        Ok(AwsCredentialChain {
            chain: CredentialChain::new(Arc::new(vars), http, remote.clone(), region.clone())?,
            region,
        })
    }

    /// The region the settings, the environment or the profile name.
    pub fn region(&self) -> Option<String> {
        self.region.clone()
    }

    /// The current credentials: those held until five minutes before they
    /// expire, then the chain's new answer.
    ///
    /// # Errors
    /// The chain's: no source configured, a refused role, an unreachable
    /// service (while held credentials have not expired, they answer).
    pub fn get(&self) -> Result<AwsCredentials, Error> {
        let c = self.chain.get().map_err(|f| f.error)?;
        Ok(AwsCredentials {
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            session_token: c.session_token.clone(),
            expires: c.expires,
        })
    }
}

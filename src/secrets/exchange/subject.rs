//! Where an exchange's subject token comes from: a file its issuer rewrites
//! (a projected Kubernetes service-account token, a JWT-SVID), the Slurm
//! job's token for the vendor's audience (the plugin's
//! `job_token_audience.NAME=`), an OpenBao or Vault identity token minted
//! for each exchange with the job's own login, or the GCP metadata server's
//! identity token for the vendor's audience, minted for each exchange. The
//! token is read or minted again for every exchange and never kept.

use super::profile::ExchangeSettings;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file;
use crate::secrets::gcp::credentials::Metadata;
use crate::secrets::transport::http::{Http, Trust};
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::secrets::vault::{VaultJob, VaultSettings};
use std::path::PathBuf;
use std::sync::Arc;

/// One exchange's source of subject tokens.
pub(super) enum Subject {
    /// A file, read again for each exchange.
    File(PathBuf),
    /// The Slurm job's token for audience `name`, which the plugin writes
    /// beside the job's token (`SIMPLETUNER_JOB_TOKEN_FILE`) as
    /// `token.NAME`: its path, or why there is none (not in a job).
    JobToken {
        name: String,
        path: Result<PathBuf, Error>,
    },
    /// An identity token of OIDC role `role`, minted with the job's login.
    Vault { role: String, vault: Box<VaultJob> },
    /// The metadata server's identity token.
    Gcp(Box<Metadata>),
}

impl Subject {
    /// The source `settings` name (exactly one of `subject_token_file`,
    /// `subject_job_token`, `subject_vault_role`, `subject_gcp_metadata`),
    /// with `vault` for the job's login, reading `vars`. Nothing is sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the fields: none or several set,
    /// a job token's name that is not a plain name, a GCP subject without
    /// an audience to ask for.
    pub(super) fn new(
        key: &str,
        settings: &ExchangeSettings,
        audience: Option<&str>,
        vault: &VaultSettings,
        remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Subject, Error> {
        super::profile::Profile::check_subject(settings, key)?;
        if settings.subject_token_file.is_some() {
            let path = settings.subject_file(vars).unwrap_or_default();
            return Ok(Subject::File(path));
        }
        if let Some(name) = &settings.subject_job_token {
            let path = settings.subject_file(vars).ok_or_else(|| {
                Error::ProviderUnavailable(format!(
                    "exchange for '{key}': the Slurm job's token for '{name}' is not here: {} is \
                     not set (not a job step of a cluster whose plugin mints job tokens)",
                    var::SIMPLETUNER_JOB_TOKEN_FILE
                ))
            });
            return Ok(Subject::JobToken {
                name: name.clone(),
                path,
            });
        }
        if let Some(role) = &settings.subject_vault_role {
            return Ok(Subject::Vault {
                role: role.clone(),
                vault: Box::new(VaultJob::new(vault, remote, vars.clone())),
            });
        }
        if audience.is_none() {
            return Err(Error::InvalidArgument(format!(
                "exchange for '{key}': subject_gcp_metadata needs the audience to ask the \
                 metadata server for: set audience"
            )));
        }
        let settings = crate::secrets::gcp::metadata_settings(remote);
        let http = Arc::new(Http::new(&settings, &Trust::Default, "")?);
        Ok(Subject::Gcp(Box::new(Metadata::of(
            vars, &http, &settings,
        )?)))
    }

    /// A subject token now, for `audience` where it is minted: the file's
    /// text, or a token minted for this exchange. `what` names it in
    /// errors.
    pub(super) fn token(
        &self,
        what: &str,
        audience: Option<&str>,
    ) -> Result<SecretString, FetchError> {
        match self {
            Subject::File(path) => read_file(path, what),
            Subject::JobToken { path, .. } => match path {
                Ok(path) => read_file(path, what),
                Err(why) => Err(FetchError::permanent(why.clone())),
            },
            Subject::Vault { role, vault } => vault
                .identity_token(role, audience)
                .map(|t| t.token)
                .map_err(|e| match e {
                    Error::Network(_) | Error::Timeout(_) => FetchError::transient(e),
                    e => FetchError::permanent(e),
                }),
            Subject::Gcp(metadata) => metadata.identity(audience.unwrap_or_default()),
        }
    }

    /// Where the tokens come from, for the status (never a token).
    pub(super) fn describe(&self) -> String {
        match self {
            Subject::File(path) => format!("subject token {}", path.display()),
            Subject::JobToken { name, path } => match path {
                Ok(path) => format!("the Slurm job's token for '{name}' ({})", path.display()),
                Err(_) => format!("the Slurm job's token for '{name}' (not in a job)"),
            },
            Subject::Vault { role, .. } => format!("Vault identity tokens of role '{role}'"),
            Subject::Gcp(_) => "the GCP metadata server's identity tokens".into(),
        }
    }
}

/// A subject token file's text, read now.
fn read_file(path: &std::path::Path, what: &str) -> Result<SecretString, FetchError> {
    let bytes = identity_file::read(
        path,
        what,
        identity_file::MAX_TOKEN,
        identity_file::Readers::Anyone,
    )
    .map_err(FetchError::permanent)?;
    let text = std::str::from_utf8(bytes.expose())
        .map(|t| SecretString::from(t.trim()))
        .map_err(|_| {
            FetchError::permanent(Error::Parse(format!(
                "{what} ({}) is not text",
                path.display()
            )))
        });
    drop(bytes);
    text
}

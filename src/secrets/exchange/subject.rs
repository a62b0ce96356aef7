//! Where an exchange's subject token comes from: a file its issuer rewrites
//! (a projected Kubernetes service-account token, a JWT-SVID), the Slurm
//! job's token for the vendor's audience (the plugin's
//! `job_token_audience.NAME=`), an OpenBao or Vault identity token minted
//! for each exchange with the job's own login, or the GCP metadata server's
//! identity token for the vendor's audience, minted for each exchange. The
//! token is read or minted again for every exchange and never kept.
//!
//! The tokens minted by a service ([`Mint`]) are made where the chain is
//! built ([`Mints`]): the exchange imports no provider, and the exchanges
//! of a process share one Vault login.

use super::profile::ExchangeSettings;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use std::path::PathBuf;

/// A service minting a subject token for each exchange: OpenBao's or
/// Vault's identity tokens with the job's login, the GCP metadata server's.
pub trait Mint: Send + Sync {
    /// A token minted now, for `audience` where it is asked for.
    ///
    /// # Errors
    /// The service's refusal or failure, transient where trying again may
    /// help.
    fn mint(&self, audience: Option<&str>) -> Result<SecretString, FetchError>;

    /// Where the tokens come from, for the status (never a token).
    fn describe(&self) -> String;
}

/// What makes the [`Mint`]s the exchanges' settings name, given by whoever
/// builds the chain.
pub trait Mints: Send + Sync {
    /// Identity tokens of the OIDC role `role`, minted with the job's Vault
    /// login (one login for every exchange of the process), with `remote`'s
    /// timeouts and the node's place, reading `vars`.
    fn vault_role(&self, role: &str, remote: &RemoteSettings, vars: &Vars) -> Box<dyn Mint>;

    /// The GCP metadata server's identity tokens, with `remote`'s
    /// settings, reading `vars`.
    ///
    /// # Errors
    /// As the metadata server's client is built (its CA, its host).
    fn gcp_metadata(&self, remote: &RemoteSettings, vars: &Vars) -> Result<Box<dyn Mint>, Error>;
}

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
    /// A token a service mints for each exchange.
    Minted(Box<dyn Mint>),
}

impl Subject {
    /// The source `settings` name (exactly one of `subject_token_file`,
    /// `subject_job_token`, `subject_vault_role`, `subject_gcp_metadata`),
    /// minted by what `mints` makes, reading `vars`. Nothing is sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the fields: none or several set,
    /// a job token's name that is not a plain name, a GCP subject without
    /// an audience to ask for.
    pub(super) fn new(
        key: &str,
        settings: &ExchangeSettings,
        audience: Option<&str>,
        mints: &dyn Mints,
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
            return Ok(Subject::Minted(mints.vault_role(role, remote, vars)));
        }
        if audience.is_none() {
            return Err(Error::InvalidArgument(format!(
                "exchange for '{key}': subject_gcp_metadata needs the audience to ask the \
                 metadata server for: set audience"
            )));
        }
        Ok(Subject::Minted(mints.gcp_metadata(remote, vars)?))
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
            Subject::Minted(mint) => mint.mint(audience),
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
            Subject::Minted(mint) => mint.describe(),
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

//! How the Vault provider authenticates: a token, a token file, an AppRole
//! login, or nothing behind an agent; chosen from the settings and the
//! environment.

use super::settings::{either, VaultSettings};
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::remote::token_file::TokenFile;
use crate::secrets::remote::vars as var;
use crate::secrets::remote::Vars;

/// How a token is obtained.
pub(super) enum Auth {
    /// A fixed token, and where it came from.
    Token(SecretString, &'static str),
    /// A file holding the token (an agent's sink, `~/.vault-token`), read
    /// again when it changes and once more after a refusal.
    File(TokenFile),
    /// AppRole: logged in on first use, again when the token expires or is
    /// refused.
    AppRole {
        role_id: SecretString,
        secret_id: SecretString,
    },
    /// No token is sent: the Vault Agent or Proxy in between adds its own
    /// (`use_auto_auth_token`).
    Agent,
}

impl Auth {
    /// The token file's warnings, if the token comes from one.
    pub(super) fn warnings(&self) -> Vec<String> {
        match self {
            Auth::File(f) => f.warnings(),
            _ => Vec::new(),
        }
    }

    /// How the token is obtained, for statuses.
    pub(super) fn describe(&self) -> String {
        match self {
            Auth::Token(_, source) => format!("token from {source}"),
            Auth::File(f) => format!("token from {}, read again when it changes", f.describe()),
            Auth::AppRole { .. } => "AppRole login".to_owned(),
            Auth::Agent => "no token sent: the agent or proxy adds its own".to_owned(),
        }
    }

    /// How to authenticate, from the settings and the environment, in this
    /// order: agent mode (`vault_agent`, `SIMPLETUNER_VAULT_AGENT`), a token
    /// (`vault_token`, `BAO_TOKEN`, `VAULT_TOKEN`), a token file
    /// (`vault_token_file`, `SIMPLETUNER_VAULT_TOKEN_FILE`, then
    /// `~/.vault-token` when it holds a token), AppRole; `None`: no way is
    /// configured.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `SIMPLETUNER_VAULT_AGENT` that is not
    /// a yes or no.
    pub(super) fn resolve(settings: &VaultSettings, vars: &Vars) -> Result<Option<Auth>, Error> {
        let agent = match settings.agent {
            Some(a) => a,
            None => vars.flag(var::SIMPLETUNER_VAULT_AGENT)?.unwrap_or(false),
        };
        if agent {
            return Ok(Some(Auth::Agent));
        }
        if let Some(t) = &settings.token {
            return Ok(Some(Auth::Token(t.clone(), "config vault_token")));
        }
        if let Some((t, name)) = either(vars, var::VAULT_TOKEN, var::BAO_TOKEN) {
            return Ok(Some(Auth::Token(SecretString::from(t), name)));
        }
        if let Some(p) = &settings.token_file {
            return Ok(Some(Auth::File(TokenFile::new(
                p.clone(),
                "Vault token file",
                "config vault_token_file",
            ))));
        }
        if let Some(p) = vars.get(var::SIMPLETUNER_VAULT_TOKEN_FILE) {
            return Ok(Some(Auth::File(TokenFile::new(
                expand_home(p.into()),
                "Vault token file",
                var::SIMPLETUNER_VAULT_TOKEN_FILE,
            ))));
        }
        if let Some(file) = vars
            .home_file(".vault-token")
            .map(|p| TokenFile::new(p, "Vault token file", "~/.vault-token"))
            .filter(|f| f.get().is_ok())
        {
            return Ok(Some(Auth::File(file)));
        }
        Ok(
            match (vars.get(var::VAULT_ROLE_ID), vars.get(var::VAULT_SECRET_ID)) {
                (Some(r), Some(s)) => Some(Auth::AppRole {
                    role_id: SecretString::from(r),
                    secret_id: SecretString::from(s),
                }),
                _ => None,
            },
        )
    }
}

//! How the Vault provider authenticates: a token, a token file, a login
//! (AppRole, or the workload's identity: [`super::login`]), or nothing
//! behind an agent; chosen from the settings and the environment.

use super::login::{Login, SecretId};
use super::settings::{either, VaultAuth, VaultSettings, KUBERNETES_TOKEN_FILE};
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::Readers;
use crate::secrets::credential::token_file::TokenFile;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::Vars;
use std::sync::Arc;

/// How a token is obtained.
pub(super) enum Auth {
    /// A fixed token, and where it came from.
    Token(SecretString, &'static str),
    /// A file holding the token (an agent's sink, `~/.vault-token`), read
    /// again when it changes and once more after a refusal.
    File(TokenFile),
    /// A login (AppRole, Kubernetes, JWT, TLS certificate, AWS IAM): on
    /// first use, again when the token expires or is refused.
    Login(Arc<Login>),
    /// No token is sent: the Vault Agent or Proxy in between adds its own
    /// (`use_auto_auth_token`).
    Agent,
}

impl Auth {
    /// The token file's warnings, if the token comes from one.
    pub(super) fn warnings(&self) -> Vec<String> {
        match self {
            Auth::File(f) => f.warnings(),
            Auth::Login(l) => l.warnings(),
            _ => Vec::new(),
        }
    }

    /// How the token is obtained, for statuses.
    pub(super) fn describe(&self) -> String {
        match self {
            Auth::Token(_, source) => format!("token from {source}"),
            Auth::File(f) => format!("token from {}, read again when it changes", f.describe()),
            Auth::Login(l) => l.describe(),
            Auth::Agent => "no token sent: the agent or proxy adds its own".to_owned(),
        }
    }

    /// How to authenticate: the method `vault_auth` (or
    /// `SIMPLETUNER_VAULT_AUTH`) names, else, in this order: agent mode (`vault_agent`, `SIMPLETUNER_VAULT_AGENT`), a token
    /// (`vault_token`, `BAO_TOKEN`, `VAULT_TOKEN`), a token file
    /// (`vault_token_file`, `SIMPLETUNER_VAULT_TOKEN_FILE`, then
    /// `~/.vault-token` when it holds a token), AppRole; `None`: no way is
    /// configured.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `SIMPLETUNER_VAULT_AGENT` that is not
    /// a yes or no, an unknown `SIMPLETUNER_VAULT_AUTH`, or a method missing
    /// what it needs.
    pub(super) fn resolve(
        settings: &VaultSettings,
        remote: &crate::secrets::transport::RemoteSettings,
        vars: &Vars,
    ) -> Result<Option<Auth>, Error> {
        let method = match (settings.auth, vars.get(var::SIMPLETUNER_VAULT_AUTH)) {
            (Some(m), _) => Some(m),
            (None, Some(name)) => Some(VaultAuth::parse(name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} must be one of {}",
                    var::SIMPLETUNER_VAULT_AUTH,
                    VaultAuth::names()
                ))
            })?),
            (None, None) => None,
        };
        match method {
            None => Self::inferred(settings, vars),
            Some(VaultAuth::Agent) => Ok(Some(Auth::Agent)),
            Some(VaultAuth::Token) => {
                Ok(Self::token(settings, vars).or_else(|| Self::token_file(settings, vars)))
            }
            Some(VaultAuth::AppRole) => Ok(Self::approle(settings, vars)),
            Some(m) => {
                Login::identity(m, settings, remote, vars).map(|l| Some(Auth::Login(Arc::new(l))))
            }
        }
    }

    /// The way inferred from what is set, when no method is named.
    fn inferred(settings: &VaultSettings, vars: &Vars) -> Result<Option<Auth>, Error> {
        let agent = match settings.agent {
            Some(a) => a,
            None => vars.flag(var::SIMPLETUNER_VAULT_AGENT)?.unwrap_or(false),
        };
        if agent {
            return Ok(Some(Auth::Agent));
        }
        Ok(Self::token(settings, vars)
            .or_else(|| Self::token_file(settings, vars))
            .or_else(|| {
                vars.home_file(".vault-token")
                    .map(|p| TokenFile::new(p, "Vault token file", "~/.vault-token"))
                    .filter(|f| f.get().is_ok())
                    .map(Auth::File)
            })
            .or_else(|| Self::approle(settings, vars)))
    }

    /// A token: `vault_token`, `BAO_TOKEN`, `VAULT_TOKEN`.
    fn token(settings: &VaultSettings, vars: &Vars) -> Option<Auth> {
        if let Some(t) = &settings.token {
            return Some(Auth::Token(t.clone(), "config vault_token"));
        }
        either(vars, var::VAULT_TOKEN, var::BAO_TOKEN)
            .map(|(t, name)| Auth::Token(SecretString::from(t), name))
    }

    /// A token file: `vault_token_file`, `SIMPLETUNER_VAULT_TOKEN_FILE`.
    fn token_file(settings: &VaultSettings, vars: &Vars) -> Option<Auth> {
        if let Some(p) = &settings.token_file {
            return Some(Auth::File(TokenFile::new(
                p.clone(),
                "Vault token file",
                "config vault_token_file",
            )));
        }
        vars.get(var::SIMPLETUNER_VAULT_TOKEN_FILE).map(|p| {
            Auth::File(TokenFile::new(
                expand_home(p.into()),
                "Vault token file",
                var::SIMPLETUNER_VAULT_TOKEN_FILE,
            ))
        })
    }

    /// AppRole: `vault_role_id` with `vault_secret_id_file`, else when
    /// `VAULT_ROLE_ID` and `VAULT_SECRET_ID` are both set.
    /// At `vault_auth_mount` (`SIMPLETUNER_VAULT_AUTH_MOUNT`), else `approle`.
    fn approle(settings: &VaultSettings, vars: &Vars) -> Option<Auth> {
        let mount = settings.auth_mount.clone().or_else(|| {
            vars.get(var::SIMPLETUNER_VAULT_AUTH_MOUNT)
                .map(|m| m.trim_matches('/').to_owned())
        });
        if let (Some(r), Some(f)) = (&settings.role_id, &settings.secret_id_file) {
            // The machine's identity: another user's file, or one everyone
            // may read, is refused (a kubelet volume's files may be read).
            let file = TokenFile::identity(
                f.clone(),
                "AppRole secret ID file",
                "config vault_secret_id_file",
                Readers::KubeletVolume,
            );
            return Some(Auth::Login(Arc::new(Login::approle(
                SecretString::from(r.as_str()),
                SecretId::File(file),
                mount.as_ref(),
            ))));
        }
        match (vars.get(var::VAULT_ROLE_ID), vars.get(var::VAULT_SECRET_ID)) {
            (Some(r), Some(s)) => Some(Auth::Login(Arc::new(Login::approle(
                SecretString::from(r),
                SecretId::Value(SecretString::from(s)),
                mount.as_ref(),
            )))),
            _ => None,
        }
    }
}

/// Why a Vault with an address is not used: nothing says how to log in.
/// Names every way, and what is set that shows the one meant.
pub(super) fn no_way_to_authenticate(vault: &VaultSettings, vars: &Vars) -> Error {
    let identity: Vec<_> = VaultAuth::ALL
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                VaultAuth::Kubernetes | VaultAuth::Jwt | VaultAuth::Cert | VaultAuth::Aws
            )
        })
        .map(|(n, _)| *n)
        .collect();
    let mut message = format!(
        "HashiCorp Vault has an address but no way to authenticate: set vault_token, BAO_TOKEN \
         (or VAULT_TOKEN), vault_token_file or SIMPLETUNER_VAULT_TOKEN_FILE, or ~/.vault-token; \
         VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole; vault_agent (SIMPLETUNER_VAULT_AGENT=1) \
         behind a Vault Agent or Proxy; or vault_auth ({}: {}) to log in with the workload's \
         identity",
        var::SIMPLETUNER_VAULT_AUTH,
        identity.join(", ")
    );
    if vault.role_id.is_some() != vault.secret_id_file.is_some() {
        message.push_str(" (vault_role_id and vault_secret_id_file go together: only one is set)");
    } else if vault.role.is_some() || vars.get(var::SIMPLETUNER_VAULT_ROLE).is_some() {
        message.push_str(&format!(
            " (a role is set, vault_role or {}, but no vault_auth names the login it is for)",
            var::SIMPLETUNER_VAULT_ROLE
        ));
    } else if std::path::Path::new(KUBERNETES_TOKEN_FILE).is_file() {
        message.push_str(&format!(
            " (this is a Kubernetes pod: {}=kubernetes logs in with its service-account token)",
            var::SIMPLETUNER_VAULT_AUTH
        ));
    }
    Error::ProviderUnavailable(message)
}

//! Logins: AppRole, and the workload's platform identity (Kubernetes, JWT,
//! TLS certificate, AWS IAM). Each login builds its request from the
//! identity as it is now (the JWT file and the certificate files are read
//! again every time; AWS credentials come from the chain, which refreshes
//! them), so a platform that rotates the identity never meets a stale one.

use super::identity::{CertFiles, JwtFile};
use super::settings::{VaultAuth, VaultSettings};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::aws_identity::credentials::{https, CredentialChain};
use crate::secrets::aws_identity::wire::{CallerIdentity, FORM_CONTENT_TYPE};
use crate::secrets::credential::token_file::TokenFile;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use ureq::tls::ClientCert;

/// A login method: the identity it presents, as it is now.
pub(super) trait Method: Send + Sync {
    /// Its name in messages ("Kubernetes login").
    fn what(&self) -> &'static str;

    /// The body of a login now, the client certificate to present (a
    /// `cert` login), and what it presents for statuses (never a secret).
    ///
    /// # Errors
    /// The identity's own: a JWT file missing, refused or expired, a
    /// certificate that does not load, AWS credentials not found.
    fn body(&self) -> Result<(Value, Option<ClientCert>, String), FetchError>;

    /// What to check when the server refuses the login.
    fn hint(&self) -> String;

    /// The role it asks for, when one is configured.
    fn role(&self) -> Option<&str> {
        None
    }

    /// What it presents, said before its first login.
    fn presents(&self) -> Option<String> {
        None
    }

    /// The identity's file problems a status should show now.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the identity is read from files a platform rotates: a
    /// refused login is sent once more with the identity read again.
    fn rereads(&self) -> bool {
        false
    }

    /// Whether the identity is the TLS client certificate.
    fn is_cert(&self) -> bool {
        false
    }

    /// Whether it is a `jwt` login (a JWT/OIDC token, not Kubernetes').
    fn is_jwt(&self) -> bool {
        false
    }
}

/// The problem an identity file has now, if any, for a status.
fn problems<T>(read: Result<T, Error>) -> Vec<String> {
    read.err().map(|e| e.to_string()).into_iter().collect()
}

/// ` and that role 'R' allows it`, for a hint.
fn role_hint(role: Option<&str>) -> String {
    role.map(|r| format!(" and that role '{r}' allows it"))
        .unwrap_or_default()
}

/// AppRole: a role ID and a secret ID.
struct AppRole {
    role_id: SecretString,
    secret_id: SecretId,
}

/// Where an AppRole login's secret ID comes from.
pub(super) enum SecretId {
    /// `VAULT_SECRET_ID`.
    Value(SecretString),
    /// `vault_secret_id_file`, read again when it changes.
    File(TokenFile),
}

impl Method for AppRole {
    fn what(&self) -> &'static str {
        "AppRole login"
    }

    fn body(&self) -> Result<(Value, Option<ClientCert>, String), FetchError> {
        let read;
        let secret_id = match &self.secret_id {
            SecretId::Value(v) => v,
            SecretId::File(f) => {
                read = f.get().map_err(FetchError::permanent)?;
                &read
            }
        };
        let body = json!({"role_id": self.role_id.expose(), "secret_id": secret_id.expose()});
        Ok((body, None, "AppRole role ID".to_owned()))
    }

    fn hint(&self) -> String {
        match &self.secret_id {
            SecretId::Value(_) => "check VAULT_ROLE_ID and VAULT_SECRET_ID".into(),
            SecretId::File(f) => format!("check vault_role_id and {}", f.describe()),
        }
    }

    /// The secret ID file's problems (another user's, readable by
    /// everyone, writable by others), as `doctor` and the status show them.
    fn warnings(&self) -> Vec<String> {
        match &self.secret_id {
            SecretId::Value(_) => Vec::new(),
            SecretId::File(f) => f.warnings(),
        }
    }
}

/// Kubernetes or JWT/OIDC: the JWT in a file, for a role.
struct Jwt {
    kubernetes: bool,
    file: JwtFile,
    role: Option<String>,
}

impl Method for Jwt {
    fn what(&self) -> &'static str {
        if self.kubernetes {
            "Kubernetes login"
        } else {
            "JWT login"
        }
    }

    fn is_jwt(&self) -> bool {
        !self.kubernetes
    }

    fn body(&self) -> Result<(Value, Option<ClientCert>, String), FetchError> {
        let jwt = self.file.read().map_err(FetchError::permanent)?;
        let mut body = json!({ "jwt": jwt.token.expose() });
        if let Some(r) = &self.role {
            body["role"] = json!(r);
        }
        let shown = format!(
            "the JWT in {}{}",
            self.file.path.display(),
            jwt.subject
                .map(|s| format!(" (subject {s})"))
                .unwrap_or_default()
        );
        Ok((body, None, shown))
    }

    fn hint(&self) -> String {
        format!(
            "check the JWT in {} (set by {}){}",
            self.file.path.display(),
            self.file.source,
            role_hint(self.role())
        )
    }

    fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    fn presents(&self) -> Option<String> {
        Some(format!(
            "the JWT in {} (set by {})",
            self.file.path.display(),
            self.file.source
        ))
    }

    fn warnings(&self) -> Vec<String> {
        problems(self.file.read())
    }

    fn rereads(&self) -> bool {
        true
    }
}

/// A TLS certificate: the client certificate is presented on the
/// connection; the body names a certificate role, if configured.
struct Cert {
    files: CertFiles,
    role: Option<String>,
}

impl Method for Cert {
    fn what(&self) -> &'static str {
        "TLS certificate login"
    }

    fn body(&self) -> Result<(Value, Option<ClientCert>, String), FetchError> {
        let cert = self.files.load().map_err(FetchError::permanent)?;
        let mut body = json!({});
        if let Some(r) = &self.role {
            body["name"] = json!(r);
        }
        let shown = format!("the certificate in {}", self.files.cert.display());
        Ok((body, Some(cert), shown))
    }

    fn hint(&self) -> String {
        format!(
            "check that the server trusts the certificate in {}{}",
            self.files.cert.display(),
            role_hint(self.role())
        )
    }

    fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    fn presents(&self) -> Option<String> {
        Some(format!("the certificate in {}", self.files.cert.display()))
    }

    fn warnings(&self) -> Vec<String> {
        problems(self.files.load())
    }

    fn rereads(&self) -> bool {
        true
    }

    fn is_cert(&self) -> bool {
        true
    }
}

/// AWS IAM: an `sts:GetCallerIdentity` request signed with the AWS
/// credential chain's credentials, which Vault sends on to STS.
struct Aws {
    chain: CredentialChain,
    sts_url: String,
    region: String,
    server_id: Option<String>,
    role: Option<String>,
}

impl Method for Aws {
    fn what(&self) -> &'static str {
        "AWS IAM login"
    }

    fn body(&self) -> Result<(Value, Option<ClientCert>, String), FetchError> {
        let creds = self.chain.get()?;
        let mut headers = vec![FORM_CONTENT_TYPE];
        if let Some(id) = &self.server_id {
            headers.push(("x-vault-aws-iam-server-id", id.as_str()));
        }
        let signed = CallerIdentity::signed(&creds, &self.region, &self.sts_url, &headers, false)?;
        let mut all = serde_json::Map::new();
        for (k, v) in signed.headers {
            all.insert(k, json!([v]));
        }
        let b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        };
        let headers_json = SecretString::from(Value::Object(all).to_string());
        let mut body = json!({
            "iam_http_request_method": "POST",
            "iam_request_url": b64(self.sts_url.as_bytes()),
            "iam_request_body": b64(signed.body.as_bytes()),
            "iam_request_headers": b64(headers_json.expose().as_bytes()),
        });
        if let Some(r) = &self.role {
            body["role"] = json!(r);
        }
        let shown = format!(
            "AWS credentials from {} (key {})",
            creds.source.describe(),
            creds.access_key_id
        );
        Ok((body, None, shown))
    }

    fn hint(&self) -> String {
        format!(
            "check the AWS credentials (the AWS credential chain){}",
            role_hint(self.role())
        )
    }

    fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }
}

/// A login method, where it is mounted, and what the last login
/// presented (for statuses: never a token).
pub(super) struct Login {
    method: Box<dyn Method>,
    pub(super) mount: String,
    presented: Mutex<Option<String>>,
}

/// A login request, ready to send.
pub(super) struct Request {
    pub(super) path: String,
    pub(super) body: SecretString,
    /// The TLS client certificate to present, for a `cert` login.
    pub(super) cert: Option<ClientCert>,
    /// The SHA-256 of the identity presented (the body and the
    /// certificate): a refused login is sent again only with another.
    pub(super) identity: [u8; 32],
}

impl Login {
    /// An AppRole login at `auth/approle`.
    pub(super) fn approle(
        role_id: SecretString,
        secret_id: SecretId,
        mount: Option<&String>,
    ) -> Login {
        Login::at(Box::new(AppRole { role_id, secret_id }), mount, "approle")
    }

    fn at(method: Box<dyn Method>, mount: Option<&String>, default: &str) -> Login {
        Login {
            method,
            mount: mount.map_or_else(|| default.to_owned(), Clone::clone),
            presented: Mutex::new(None),
        }
    }

    /// The identity login `method` configured by `settings` and `vars`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]: what the method needs is not set (a
    /// role, the certificate files).
    pub(super) fn identity(
        method: VaultAuth,
        settings: &VaultSettings,
        remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Login, Error> {
        let role = settings
            .role
            .clone()
            .or_else(|| vars.get(var::SIMPLETUNER_VAULT_ROLE).map(str::to_owned));
        let mount = settings.auth_mount.clone().or_else(|| {
            vars.get(var::SIMPLETUNER_VAULT_AUTH_MOUNT)
                .map(|m| m.trim_matches('/').to_owned())
        });
        let name = method.name();
        let need_role = |role: Option<String>| {
            role.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "Vault: a {name} login needs a role: set vault_role or SIMPLETUNER_VAULT_ROLE"
                ))
            })
        };
        let m: Box<dyn Method> = match method {
            VaultAuth::Kubernetes | VaultAuth::Jwt => {
                let kubernetes = method == VaultAuth::Kubernetes;
                // A jwt login's workload identity where nothing names one:
                // the Slurm job's own token (the plugin's), else Kubernetes'.
                let job_token = vars
                    .get(var::SIMPLETUNER_JOB_TOKEN_FILE)
                    .filter(|_| !kubernetes);
                let (path, source) = match (
                    &settings.jwt_file,
                    vars.get(var::SIMPLETUNER_VAULT_JWT_FILE),
                    job_token,
                ) {
                    (Some(p), _, _) => (p.clone(), "config vault_jwt_file".to_owned()),
                    (None, Some(p), _) => (
                        crate::paths::expand_home(p.into()),
                        var::SIMPLETUNER_VAULT_JWT_FILE.to_owned(),
                    ),
                    (None, None, Some(p)) => (p.into(), var::SIMPLETUNER_JOB_TOKEN_FILE.to_owned()),
                    (None, None, None) => (
                        super::settings::KUBERNETES_TOKEN_FILE.into(),
                        "the Kubernetes default".to_owned(),
                    ),
                };
                Box::new(Jwt {
                    kubernetes,
                    file: JwtFile { path, source },
                    // OpenBao's jwt method may have a default role.
                    role: if kubernetes {
                        Some(need_role(role)?)
                    } else {
                        role
                    },
                })
            }
            VaultAuth::Cert => Box::new(Cert {
                files: client_cert_files(settings, vars)?.ok_or_else(|| {
                    Error::InvalidArgument(
                        "Vault: a cert login needs the client certificate and key: set \
                         vault_client_cert and vault_client_key (or BAO_CLIENT_CERT and \
                         BAO_CLIENT_KEY)"
                            .into(),
                    )
                })?,
                role,
            }),
            VaultAuth::Aws => {
                let explicit = vars.get(var::AWS_ENDPOINT_URL_STS);
                let region = vars
                    .get(var::AWS_REGION)
                    .or_else(|| vars.get(var::AWS_DEFAULT_REGION))
                    .filter(|_| explicit.is_some())
                    .unwrap_or("us-east-1")
                    .to_owned();
                let http = https(remote, vars)?;
                let chain = CredentialChain::new(
                    Arc::new(vars.clone()),
                    http,
                    remote.clone(),
                    Some(region.clone()),
                )?;
                Box::new(Aws {
                    chain,
                    // Vault's default STS endpoint is the global one.
                    sts_url: format!(
                        "{}/",
                        explicit
                            .unwrap_or("https://sts.amazonaws.com")
                            .trim_end_matches('/')
                    ),
                    region,
                    server_id: settings.aws_server_id.clone().or_else(|| {
                        vars.get(var::SIMPLETUNER_VAULT_AWS_SERVER_ID)
                            .map(str::to_owned)
                    }),
                    role,
                })
            }
            VaultAuth::Token | VaultAuth::Agent | VaultAuth::AppRole => {
                return Err(Error::Internal(format!("{name} is not an identity login")))
            }
        };
        Ok(Login::at(m, mount.as_ref(), name))
    }

    /// Whether the identity is read from files that a platform rotates (a
    /// refused login is sent once more with the identity read again).
    pub(super) fn rereads_identity(&self) -> bool {
        self.method.rereads()
    }

    /// Whether it is a TLS certificate login.
    pub(super) fn is_cert(&self) -> bool {
        self.method.is_cert()
    }

    /// Whether it is a `jwt` login (a JWT/OIDC token, not Kubernetes').
    pub(super) fn is_jwt(&self) -> bool {
        self.method.is_jwt()
    }

    /// The method's name, in messages ("Kubernetes login").
    pub(super) fn what(&self) -> &'static str {
        self.method.what()
    }

    /// What to check when the server refuses the login (HTTP 400).
    pub(super) fn hint(&self) -> String {
        self.method.hint()
    }

    /// The login request, from the identity as it is now.
    ///
    /// # Errors
    /// The identity's own: a JWT file missing, refused or expired, a
    /// certificate that does not load, AWS credentials not found.
    pub(super) fn request(&self) -> Result<Request, FetchError> {
        let path = format!("auth/{}/login", self.mount);
        let (mut body, cert, shown) = self.method.body()?;
        let text = SecretString::from(body.to_string());
        crate::secrets::provider::zeroize_json(&mut body);
        let identity = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(text.expose().as_bytes());
            for c in cert.iter().flat_map(|c| c.certs()) {
                h.update(c.der());
            }
            h.finalize().into()
        };
        *self.presented.lock() = Some(shown);
        Ok(Request {
            path,
            body: text,
            cert,
            identity,
        })
    }

    /// How the token is obtained, and what the last login presented.
    pub(super) fn describe(&self) -> String {
        let role = self
            .method
            .role()
            .map(|r| format!(" as role '{r}'"))
            .unwrap_or_default();
        let presented = self
            .presented
            .lock()
            .clone()
            .or_else(|| self.method.presents())
            .map(|p| format!(", presenting {p}"))
            .unwrap_or_default();
        format!("{} at auth/{}{role}{presented}", self.what(), self.mount)
    }

    /// The identity's file problems a status should show now.
    pub(super) fn warnings(&self) -> Vec<String> {
        self.method.warnings()
    }
}

/// The TLS client certificate's files: `vault_client_cert` and
/// `vault_client_key`, else `BAO_CLIENT_CERT` / `VAULT_CLIENT_CERT` and
/// their keys; `None` when neither is set.
///
/// # Errors
/// [`Error::InvalidArgument`] when one is set without the other.
pub(super) fn client_cert_files(
    settings: &VaultSettings,
    vars: &Vars,
) -> Result<Option<CertFiles>, Error> {
    use super::settings::either;
    let cert = settings.client_cert.clone().or_else(|| {
        either(vars, var::VAULT_CLIENT_CERT, var::BAO_CLIENT_CERT)
            .map(|(p, _)| crate::paths::expand_home(p.into()))
    });
    let key = settings.client_key.clone().or_else(|| {
        either(vars, var::VAULT_CLIENT_KEY, var::BAO_CLIENT_KEY)
            .map(|(p, _)| crate::paths::expand_home(p.into()))
    });
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(CertFiles { cert, key })),
        (None, None) => Ok(None),
        _ => Err(Error::InvalidArgument(
            "Vault: the TLS client certificate and its key go together: set both \
             vault_client_cert and vault_client_key (or BAO_CLIENT_CERT and BAO_CLIENT_KEY)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests;

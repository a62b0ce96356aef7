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
use crate::secrets::aws_identity::wire::{signature_headers, FORM_CONTENT_TYPE};
use crate::secrets::remote::vars as var;
use crate::secrets::remote::{FetchError, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::json;
use std::sync::Arc;

/// What identity a login presents.
pub(super) enum Method {
    /// AppRole: a role ID and a secret ID.
    AppRole {
        role_id: SecretString,
        secret_id: SecretString,
    },
    /// Kubernetes or JWT/OIDC: the JWT in a file, for a role.
    Jwt {
        kubernetes: bool,
        file: JwtFile,
        role: Option<String>,
    },
    /// A TLS certificate: the client certificate is presented on the
    /// connection; the body names a certificate role, if configured.
    Cert {
        files: CertFiles,
        role: Option<String>,
    },
    /// AWS IAM: an `sts:GetCallerIdentity` request signed with the AWS
    /// credential chain's credentials, which Vault sends on to STS.
    Aws {
        chain: Box<CredentialChain>,
        sts_url: String,
        region: String,
        server_id: Option<String>,
        role: Option<String>,
    },
}

/// A login method, where it is mounted, and what the last login
/// presented (for statuses: never a token).
pub(super) struct Login {
    pub(super) method: Method,
    pub(super) mount: String,
    presented: Mutex<Option<String>>,
}

/// A login request, ready to send.
pub(super) struct Request {
    pub(super) path: String,
    pub(super) body: SecretString,
    /// The TLS client certificate to present, for a `cert` login.
    pub(super) cert: Option<ureq::tls::ClientCert>,
    /// The SHA-256 of the identity presented (the body and the
    /// certificate): a refused login is sent again only with another.
    pub(super) identity: [u8; 32],
}

/// The body of AWS's `GetCallerIdentity` in the query protocol.
const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

impl Login {
    /// An AppRole login at `auth/approle`.
    pub(super) fn approle(
        role_id: SecretString,
        secret_id: SecretString,
        mount: Option<&String>,
    ) -> Login {
        Login::at(Method::AppRole { role_id, secret_id }, mount, "approle")
    }

    fn at(method: Method, mount: Option<&String>, default: &str) -> Login {
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
        let m = match method {
            VaultAuth::Kubernetes | VaultAuth::Jwt => {
                let (path, source) = match (
                    &settings.jwt_file,
                    vars.get(var::SIMPLETUNER_VAULT_JWT_FILE),
                ) {
                    (Some(p), _) => (p.clone(), "config vault_jwt_file".to_owned()),
                    (None, Some(p)) => (
                        crate::paths::expand_home(p.into()),
                        var::SIMPLETUNER_VAULT_JWT_FILE.to_owned(),
                    ),
                    (None, None) => (
                        super::settings::KUBERNETES_TOKEN_FILE.into(),
                        "the Kubernetes default".to_owned(),
                    ),
                };
                let kubernetes = method == VaultAuth::Kubernetes;
                Method::Jwt {
                    kubernetes,
                    file: JwtFile { path, source },
                    // OpenBao's jwt method may have a default role.
                    role: if kubernetes {
                        Some(need_role(role)?)
                    } else {
                        role
                    },
                }
            }
            VaultAuth::Cert => Method::Cert {
                files: client_cert_files(settings, vars)?.ok_or_else(|| {
                    Error::InvalidArgument(
                        "Vault: a cert login needs the client certificate and key: set \
                         vault_client_cert and vault_client_key (or BAO_CLIENT_CERT and \
                         BAO_CLIENT_KEY)"
                            .into(),
                    )
                })?,
                role,
            },
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
                Method::Aws {
                    chain: Box::new(chain),
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
                }
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
        matches!(self.method, Method::Jwt { .. } | Method::Cert { .. })
    }

    /// Whether it is a TLS certificate login.
    pub(super) fn is_cert(&self) -> bool {
        matches!(self.method, Method::Cert { .. })
    }

    /// The method's name, in messages ("Kubernetes login").
    pub(super) fn what(&self) -> &'static str {
        match &self.method {
            Method::AppRole { .. } => "AppRole login",
            Method::Jwt {
                kubernetes: true, ..
            } => "Kubernetes login",
            Method::Jwt { .. } => "JWT login",
            Method::Cert { .. } => "TLS certificate login",
            Method::Aws { .. } => "AWS IAM login",
        }
    }

    /// What to check when the server refuses the login (HTTP 400).
    pub(super) fn hint(&self) -> String {
        let role = |r: &Option<String>| {
            r.as_deref()
                .map(|r| format!(" and that role '{r}' allows it"))
                .unwrap_or_default()
        };
        match &self.method {
            Method::AppRole { .. } => "check VAULT_ROLE_ID and VAULT_SECRET_ID".into(),
            Method::Jwt { file, role: r, .. } => format!(
                "check the JWT in {} (set by {}){}",
                file.path.display(),
                file.source,
                role(r)
            ),
            Method::Cert { files, role: r } => format!(
                "check that the server trusts the certificate in {}{}",
                files.cert.display(),
                role(r)
            ),
            Method::Aws { role: r, .. } => format!(
                "check the AWS credentials (the AWS credential chain){}",
                role(r)
            ),
        }
    }

    /// The login request, from the identity as it is now.
    ///
    /// # Errors
    /// The identity's own: a JWT file missing, refused or expired, a
    /// certificate that does not load, AWS credentials not found.
    pub(super) fn request(&self) -> Result<Request, FetchError> {
        let path = format!("auth/{}/login", self.mount);
        let (body, cert, shown) = match &self.method {
            Method::AppRole { role_id, secret_id } => (
                json!({"role_id": role_id.expose(), "secret_id": secret_id.expose()}),
                None,
                "AppRole role ID".to_owned(),
            ),
            Method::Jwt { file, role, .. } => {
                let jwt = file.read().map_err(FetchError::permanent)?;
                let mut body = json!({ "jwt": jwt.token.expose() });
                if let Some(r) = role {
                    body["role"] = json!(r);
                }
                let shown = format!(
                    "the JWT in {}{}",
                    file.path.display(),
                    jwt.subject
                        .map(|s| format!(" (subject {s})"))
                        .unwrap_or_default()
                );
                (body, None, shown)
            }
            Method::Cert { files, role } => {
                let cert = files.load().map_err(FetchError::permanent)?;
                let mut body = json!({});
                if let Some(r) = role {
                    body["name"] = json!(r);
                }
                (
                    body,
                    Some(cert),
                    format!("the certificate in {}", files.cert.display()),
                )
            }
            Method::Aws {
                chain,
                sts_url,
                region,
                server_id,
                role,
            } => {
                let creds = chain.get()?;
                let mut headers = vec![FORM_CONTENT_TYPE];
                if let Some(id) = server_id {
                    headers.push(("x-vault-aws-iam-server-id", id.as_str()));
                }
                let signed = signature_headers(
                    &creds,
                    region,
                    "sts",
                    "POST",
                    sts_url,
                    &headers,
                    GET_CALLER_IDENTITY.as_bytes(),
                )?;
                let mut all = serde_json::Map::new();
                for (k, v) in headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .chain(signed)
                {
                    all.insert(k, json!([v]));
                }
                let b64 = |b: &[u8]| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(b)
                };
                let headers_json = SecretString::from(serde_json::Value::Object(all).to_string());
                let mut body = json!({
                    "iam_http_request_method": "POST",
                    "iam_request_url": b64(sts_url.as_bytes()),
                    "iam_request_body": b64(GET_CALLER_IDENTITY.as_bytes()),
                    "iam_request_headers": b64(headers_json.expose().as_bytes()),
                });
                if let Some(r) = role {
                    body["role"] = json!(r);
                }
                let shown = format!(
                    "AWS credentials from {} (key {})",
                    creds.source.describe(),
                    creds.access_key_id
                );
                (body, None, shown)
            }
        };
        let text = SecretString::from(body.to_string());
        let mut body = body;
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
        let role = match &self.method {
            Method::Jwt { role: Some(r), .. }
            | Method::Cert { role: Some(r), .. }
            | Method::Aws { role: Some(r), .. } => format!(" as role '{r}'"),
            _ => String::new(),
        };
        let presented = self
            .presented
            .lock()
            .clone()
            .map(|p| format!(", presenting {p}"))
            .unwrap_or_else(|| match &self.method {
                Method::Jwt { file, .. } => format!(
                    ", presenting the JWT in {} (set by {})",
                    file.path.display(),
                    file.source
                ),
                Method::Cert { files, .. } => {
                    format!(", presenting the certificate in {}", files.cert.display())
                }
                _ => String::new(),
            });
        format!("{} at auth/{}{role}{presented}", self.what(), self.mount)
    }

    /// The identity's file problems a status should show now.
    pub(super) fn warnings(&self) -> Vec<String> {
        let problem = match &self.method {
            Method::Jwt { file, .. } => file.read().err(),
            Method::Cert { files, .. } => files.load().err(),
            _ => None,
        };
        problem.map(|e| e.to_string()).into_iter().collect()
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

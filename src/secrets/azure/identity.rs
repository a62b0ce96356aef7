//! Azure's credentials, found in azure-identity's order
//! (`DefaultAzureCredential`, its non-interactive part):
//!
//! 1. the environment: `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` with
//!    `AZURE_CLIENT_SECRET` (a client secret), else with
//!    `AZURE_CLIENT_CERTIFICATE_PATH` (a PEM file holding the certificate and
//!    its unencrypted private key: a PS256 assertion, as MSAL signs it);
//! 2. workload identity (AKS): `AZURE_FEDERATED_TOKEN_FILE` with
//!    `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`, the file read again at each
//!    exchange (the kubelet replaces it);
//! 3. managed identity: App Service and Container Apps' `IDENTITY_ENDPOINT`
//!    with `IDENTITY_HEADER`, else the instance metadata service (IMDS,
//!    `AZURE_POD_IDENTITY_AUTHORITY_HOST` or `http://169.254.169.254`);
//!    `AZURE_CLIENT_ID` names a user-assigned identity.
//!
//! Microsoft Entra's token endpoint is `AZURE_AUTHORITY_HOST` (else
//! `https://login.microsoftonline.com`)`/TENANT/oauth2/v2.0/token`; a
//! vault's challenge names the tenant and the scope, never where the
//! credentials go. Each credential answers for one scope at a time; its
//! tokens' lifetime is the [`Keeper`](crate::secrets::credential::Keeper)'s
//! to keep. Messages name the variable or the file, never a value.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::oauth::{
    oauth_failure, post_form, secure_url, signed_jwt, token_answer,
};
use crate::secrets::credential::Issued;
use crate::secrets::transport::http::Http;
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::clock;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Microsoft Entra's authority when `AZURE_AUTHORITY_HOST` is not set.
pub const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The instance metadata service when `AZURE_POD_IDENTITY_AUTHORITY_HOST`
/// is not set.
pub const IMDS_HOST: &str = "http://169.254.169.254";
/// How long a client assertion is valid (MSAL's ten minutes).
const ASSERTION_LIFETIME: u64 = 600;
/// The largest certificate file read.
const MAX_CERTIFICATE_FILE: u64 = 1 << 20;

/// The credential `find` chose: what issues tokens for a scope
/// (`https://vault.azure.net/.default`), for the vault's issuer.
pub enum Credential {
    /// A service principal or a federated workload, with Microsoft Entra.
    Entra(Entra),
    /// A managed identity (App Service's endpoint or the instance's).
    Managed(Managed),
}

impl Credential {
    /// A new token for `scope`, in `tenant` when the vault names one.
    ///
    /// # Errors
    /// The issuer's: transient when it did not answer or answered with a
    /// server error, permanent when it refused the identity.
    pub fn token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<Issued<SecretString>, FetchError> {
        match self {
            Credential::Entra(e) => e.token(scope, tenant),
            Credential::Managed(m) => m.token(scope),
        }
    }

    /// What it is, for the status and the doctor, never a secret.
    pub fn describe(&self) -> String {
        match self {
            Credential::Entra(e) => e.describe(),
            Credential::Managed(m) => m.describe(),
        }
    }
}

/// The credentials of `vars`, in azure-identity's order (see the module
/// documentation). Nothing is sent here.
///
/// # Errors
/// [`Error::InvalidArgument`], [`Error::Parse`], [`Error::Io`] or
/// [`Error::Permission`] naming the variable or the file.
pub fn find(
    vars: &Vars,
    http: &Arc<Http>,
    settings: &RemoteSettings,
    managed: &Arc<Http>,
    managed_settings: &RemoteSettings,
) -> Result<Credential, Error> {
    let tenant = vars.get(var::AZURE_TENANT_ID);
    let client = vars.get(var::AZURE_CLIENT_ID);
    let entra = |tenant: &str, client: &str, grant: Grant| -> Result<Credential, Error> {
        Ok(Credential::Entra(Entra::new(
            vars, tenant, client, grant, http, settings,
        )?))
    };
    if let (Some(t), Some(c)) = (tenant, client) {
        if let Some(secret) = vars.get(var::AZURE_CLIENT_SECRET) {
            let grant = Grant::Secret(SecretString::from(secret));
            return entra(t, c, grant);
        }
        if let Some(path) = vars.get(var::AZURE_CLIENT_CERTIFICATE_PATH) {
            if vars.get(var::AZURE_CLIENT_CERTIFICATE_PASSWORD).is_some() {
                return Err(Error::InvalidArgument(format!(
                    "{} is set: a password-protected certificate is not read; give \
                     {} a PEM file with the certificate and its unencrypted key (0600)",
                    var::AZURE_CLIENT_CERTIFICATE_PASSWORD,
                    var::AZURE_CLIENT_CERTIFICATE_PATH
                )));
            }
            let path = crate::paths::expand_home(PathBuf::from(path));
            let grant = Grant::Certificate(Box::new(Certificate::read(&path)?));
            return entra(t, c, grant);
        }
        if let Some(path) = vars.get(var::AZURE_FEDERATED_TOKEN_FILE) {
            let path = crate::paths::expand_home(PathBuf::from(path));
            return entra(t, c, Grant::Federated(path));
        }
    }
    let client_id = client.map(str::to_owned);
    match (
        vars.get(var::IDENTITY_ENDPOINT),
        vars.get(var::IDENTITY_HEADER),
    ) {
        (Some(endpoint), Some(header)) => {
            // App Service's endpoint is http on the container's own network.
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                return Err(Error::InvalidArgument(format!(
                    "{} must be an http(s) URL",
                    var::IDENTITY_ENDPOINT
                )));
            }
            Ok(Credential::Managed(Managed {
                endpoint: endpoint.to_owned(),
                header: Some(SecretString::from(header)),
                client_id,
                http: Arc::clone(managed),
                settings: managed_settings.clone(),
            }))
        }
        _ => {
            let host = vars
                .get(var::AZURE_POD_IDENTITY_AUTHORITY_HOST)
                .unwrap_or(IMDS_HOST)
                .trim_end_matches('/');
            if !host.starts_with("http://") && !host.starts_with("https://") {
                return Err(Error::InvalidArgument(format!(
                    "{} must be an http(s) URL",
                    var::AZURE_POD_IDENTITY_AUTHORITY_HOST
                )));
            }
            Ok(Credential::Managed(Managed {
                endpoint: format!("{host}/metadata/identity/oauth2/token"),
                header: None,
                client_id,
                http: Arc::clone(managed),
                settings: managed_settings.clone(),
            }))
        }
    }
}

/// How an application proves itself to Microsoft Entra.
enum Grant {
    /// `AZURE_CLIENT_SECRET`.
    Secret(SecretString),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`.
    Certificate(Box<Certificate>),
    /// `AZURE_FEDERATED_TOKEN_FILE`, read at each exchange.
    Federated(PathBuf),
}

/// A client credentials grant at Microsoft Entra's token endpoint.
pub struct Entra {
    authority: String,
    tenant: String,
    client_id: String,
    grant: Grant,
    http: Arc<Http>,
    settings: RemoteSettings,
}

/// A tenant as Entra names one: a GUID or a domain.
pub(crate) fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 253
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl Entra {
    fn new(
        vars: &Vars,
        tenant: &str,
        client_id: &str,
        grant: Grant,
        http: &Arc<Http>,
        settings: &RemoteSettings,
    ) -> Result<Entra, Error> {
        let authority = vars
            .get(var::AZURE_AUTHORITY_HOST)
            .unwrap_or(AUTHORITY_HOST)
            .trim_end_matches('/');
        let authority = match authority.contains("://") {
            true => authority.to_owned(),
            false => format!("https://{authority}"),
        };
        secure_url(&authority, var::AZURE_AUTHORITY_HOST)?;
        if !valid_tenant(tenant) {
            return Err(Error::InvalidArgument(format!(
                "{} is not a tenant (a GUID or a domain)",
                var::AZURE_TENANT_ID
            )));
        }
        Ok(Entra {
            authority,
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            grant,
            http: Arc::clone(http),
            settings: settings.clone(),
        })
    }
}

impl Entra {
    fn token(&self, scope: &str, tenant: Option<&str>) -> Result<Issued<SecretString>, FetchError> {
        // The vault's tenant must be the one configured (azure-identity's
        // default): credentials are not sent to another tenant.
        if let Some(t) = tenant.filter(|t| !t.eq_ignore_ascii_case(&self.tenant)) {
            return Err(FetchError::permanent(Error::Auth(format!(
                "the vault is in tenant '{t}', not {} '{}': no token is asked for it",
                var::AZURE_TENANT_ID,
                self.tenant
            ))));
        }
        let url = format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant);
        let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        let what = "Microsoft Entra token";
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", scope),
        ];
        let assertion = match &self.grant {
            Grant::Secret(secret) => {
                form.push(("client_secret", secret.expose()));
                None
            }
            Grant::Certificate(c) => Some(c.assertion(&self.client_id, &url)?),
            Grant::Federated(path) => Some(
                crate::secrets::credential::identity_file::read_token(path, "federated token file")
                    .map_err(|e| {
                        FetchError::permanent(
                            e.with_note(format!("named by {}", var::AZURE_FEDERATED_TOKEN_FILE)),
                        )
                    })?,
            ),
        };
        if let Some(a) = &assertion {
            form.push(("client_assertion_type", jwt_bearer));
            form.push(("client_assertion", a.expose()));
        }
        post_form(&self.http, &self.settings, what, &url, &form)
    }

    fn describe(&self) -> String {
        let how = match &self.grant {
            Grant::Secret(_) => format!("a client secret ({})", var::AZURE_CLIENT_SECRET),
            Grant::Certificate(c) => format!("a certificate ({})", c.file.display()),
            Grant::Federated(p) => format!("workload identity ({})", p.display()),
        };
        format!(
            "application {} in tenant {} with {how}",
            self.client_id, self.tenant
        )
    }
}

/// A certificate and its key (one PEM file), for client assertions.
struct Certificate {
    key: ring::signature::RsaKeyPair,
    /// The certificate's SHA-256 thumbprint, base64url (`x5t#S256`).
    thumbprint: String,
    file: PathBuf,
}

impl Certificate {
    fn read(path: &Path) -> Result<Certificate, Error> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let what = "Azure client certificate file";
        // The identity-file rule; it holds the private key: readable by
        // everyone only in a kubelet volume.
        let bytes = crate::secrets::credential::identity_file::read(
            path,
            what,
            MAX_CERTIFICATE_FILE,
            crate::secrets::credential::identity_file::Readers::KubeletVolume,
        )?;
        let bad = |why: &str| Error::Parse(format!("{what} {}: {why}", path.display()));
        let cert = CertificateDer::pem_slice_iter(bytes.expose())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| bad("no PEM certificate in it"))?;
        let der = PrivateKeyDer::from_pem_slice(bytes.expose()).map_err(|_| {
            bad("no unencrypted PEM private key in it (an encrypted key or a PKCS#12 file is not read)")
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => {
                ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
            }
            PrivateKeyDer::Pkcs1(k) => ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(bad("its key is not an RSA key")),
        }
        .map_err(|_| bad("its key is not an RSA key ring accepts (2048 to 8192 bits)"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Ok(Certificate {
            key,
            thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
            file: path.to_owned(),
        })
    }

    /// A client assertion for `audience` (the token endpoint), PS256 with
    /// the certificate's SHA-256 thumbprint, as MSAL makes it.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<SecretString, FetchError> {
        let rng = ring::rand::SystemRandom::new();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        let failed = |_| {
            FetchError::permanent(Error::Internal(format!(
                "signing a client assertion with {} failed",
                self.file.display()
            )))
        };
        ring::rand::SecureRandom::fill(&rng, &mut jti).map_err(failed)?;
        let header =
            serde_json::json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        signed_jwt(
            &self.key,
            &ring::signature::RSA_PSS_SHA256,
            &header,
            &claims,
        )
        .ok_or_else(|| failed(ring::error::Unspecified))
    }
}

/// A managed identity: App Service's and Container Apps' identity endpoint
/// (with its header) or the instance metadata service (`Metadata: true`).
pub struct Managed {
    endpoint: String,
    header: Option<SecretString>,
    client_id: Option<String>,
    http: Arc<Http>,
    settings: RemoteSettings,
}

impl Managed {
    fn once(&self, resource: &str) -> Result<Issued<SecretString>, FetchError> {
        let what = match self.header {
            Some(_) => "managed identity token (IDENTITY_ENDPOINT)",
            None => "managed identity token (IMDS)",
        };
        let version = match self.header {
            Some(_) => "2019-08-01",
            None => "2018-02-01",
        };
        let mut query = vec![("api-version", version), ("resource", resource)];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id));
        }
        let url = format!(
            "{}?{}",
            self.endpoint,
            crate::secrets::transport::url::form(&query)
        );
        let headers: Vec<(&str, &str)> = match &self.header {
            Some(h) => vec![("x-identity-header", h.expose())],
            None => vec![("metadata", "true")],
        };
        let sent = clock::precise();
        let r = self.http.send(what, "GET", &url, &headers, b"")?;
        match r.status {
            200 => token_answer(what, r, sent),
            // IMDS: 404 while an identity is being assigned, 410 while it
            // upgrades (azure-identity retries both).
            404 | 410 => Err(FetchError::transient(Error::Remote(format!(
                "{what}: HTTP {} (the identity service is not ready)",
                r.status
            )))
            .retry_after(r.retry_after())),
            400 => Err(FetchError::permanent(Error::Auth(format!(
                "{what}: HTTP 400: no managed identity is assigned{}",
                match &self.client_id {
                    Some(id) => format!(" with client id {id} ({})", var::AZURE_CLIENT_ID),
                    None => String::new(),
                }
            )))),
            _ => Err(oauth_failure(what, &r)),
        }
    }
}

impl Managed {
    fn token(&self, scope: &str) -> Result<Issued<SecretString>, FetchError> {
        // Managed identities take a resource, not a scope.
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        with_retries(&self.settings, || self.once(resource))
    }

    fn describe(&self) -> String {
        let whose = match &self.client_id {
            Some(id) => format!("user-assigned identity {id}"),
            None => "system-assigned identity".to_owned(),
        };
        match self.header {
            Some(_) => format!("managed {whose} at {}", self.endpoint),
            None => format!("managed {whose} at the instance metadata service"),
        }
    }
}

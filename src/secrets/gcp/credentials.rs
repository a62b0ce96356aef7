//! Google's credentials, found in the order of Google's client libraries
//! (google-auth's `default()`):
//!
//! 1. the file `GOOGLE_APPLICATION_CREDENTIALS` names;
//! 2. gcloud's application-default credentials,
//!    `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
//!    `~/.config/gcloud/application_default_credentials.json`;
//! 3. the metadata server (Compute Engine, GKE's Workload Identity, Cloud
//!    Run): `GCE_METADATA_HOST`, else `metadata.google.internal`.
//!
//! A file is a service account's key (`service_account`: a JWT assertion
//! signed RS256 with its key, exchanged at its `token_uri`), a user's
//! refresh token (`authorized_user`, what `gcloud auth
//! application-default login` writes) or workload identity federation
//! (`external_account`, [`super::external`]). Each is an
//! [`Issuer`](crate::secrets::credential::Issuer) of access tokens for
//! the `cloud-platform` scope; their lifetime is
//! the [`Keeper`](crate::secrets::credential::Keeper)'s to keep.
//!
//! Files are read bounded and refused when group or others may write them
//! (anyone could choose the identity). Messages name the file and the
//! field, never a value.

use super::external::External;
use super::google::{token_uri, SCOPE, TOKEN_URI};
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file;
use crate::secrets::credential::oauth::{
    field, oauth_failure, optional, post_form, read_json_file, signed_jwt, token_answer,
};
use crate::secrets::credential::{Issued, Issuer};
use crate::secrets::provider::zeroize_json;
use crate::secrets::transport::http::{Http, Response};
use crate::secrets::transport::retry::{backoff, with_retries, FetchBound};
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};
use crate::sys::clock;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The metadata server's host when `GCE_METADATA_HOST` is not set.
pub const METADATA_HOST: &str = "metadata.google.internal";
/// How long a service account's assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;

/// Where the credentials come from, for the status and the doctor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    Variable(PathBuf),
    /// gcloud's application-default credentials file.
    Gcloud(PathBuf),
    /// The metadata server.
    Metadata,
}

/// The credentials found: what issues their tokens, and the project they
/// name (a key file's `project_id`), if any.
pub struct Found {
    /// What issues the tokens.
    pub issuer: Box<dyn Issuer<SecretString>>,
    /// The project of a key file or of the metadata server, when known.
    pub project: Option<String>,
    /// Where they came from.
    pub origin: Origin,
}

/// The credentials of `vars`, in Google's order (see the module
/// documentation); the metadata server is asked through `metadata` with
/// `metadata_settings` (short timeouts), waited for up to `metadata_wait`.
/// Nothing is sent here.
///
/// # Errors
/// [`Error::InvalidArgument`], [`Error::Parse`], [`Error::Io`] or
/// [`Error::Permission`] naming the file: unreadable, malformed, of a type
/// not read, or writable by others.
pub fn find(
    vars: &Vars,
    http: &Arc<Http>,
    settings: &RemoteSettings,
    metadata_wait: Duration,
    metadata: &Arc<Http>,
    metadata_settings: &RemoteSettings,
) -> Result<Found, Error> {
    if let Some(path) = vars.get(var::GOOGLE_APPLICATION_CREDENTIALS) {
        let path = crate::paths::expand_home(PathBuf::from(path));
        return from_file(&path, Origin::Variable(path.clone()), vars, http, settings);
    }
    let gcloud = match vars.get(var::CLOUDSDK_CONFIG) {
        Some(dir) => Some(crate::paths::expand_home(PathBuf::from(dir))),
        None => vars.home_file(".config/gcloud"),
    };
    if let Some(path) = gcloud.map(|d| d.join("application_default_credentials.json")) {
        if path.exists() {
            return from_file(&path, Origin::Gcloud(path.clone()), vars, http, settings);
        }
    }
    let host = vars.get(var::GCE_METADATA_HOST).unwrap_or(METADATA_HOST);
    Ok(Found {
        issuer: Box::new(Metadata::new(
            host,
            metadata,
            metadata_settings,
            metadata_wait,
        )?),
        project: None,
        origin: Origin::Metadata,
    })
}

/// The project the metadata server of `vars` names (for secrets named
/// without one, when nothing else names it).
///
/// # Errors
/// As a request's, and [`Error::InvalidArgument`] for a malformed
/// `GCE_METADATA_HOST`.
pub fn metadata_project(
    vars: &Vars,
    http: &Arc<Http>,
    settings: &RemoteSettings,
) -> Result<String, FetchError> {
    let host = vars.get(var::GCE_METADATA_HOST).unwrap_or(METADATA_HOST);
    Metadata::new(host, http, settings, Duration::ZERO)?.project()
}

fn from_file(
    path: &Path,
    origin: Origin,
    vars: &Vars,
    http: &Arc<Http>,
    settings: &RemoteSettings,
) -> Result<Found, Error> {
    let what = "Google credentials file";
    let mut doc = read_json_file(path, what)?;
    let kind = optional(&doc, "type").unwrap_or_default();
    let project = optional(&doc, "project_id");
    let issuer: Result<Box<dyn Issuer<SecretString>>, Error> = match kind.as_str() {
        "service_account" => {
            ServiceAccount::from_doc(&doc, path, http, settings).map(|s| Box::new(s) as _)
        }
        "authorized_user" => {
            AuthorizedUser::from_doc(&doc, path, http, settings).map(|s| Box::new(s) as _)
        }
        "external_account" => {
            External::from_doc(&doc, path, vars, http, settings).map(|s| Box::new(s) as _)
        }
        "" => Err(Error::Parse(format!(
            "{what} {}: no 'type' (service_account, authorized_user or external_account)",
            path.display()
        ))),
        other => Err(Error::InvalidArgument(format!(
            "{what} {}: credentials of type '{}' are not read (service_account, \
             authorized_user and external_account are)",
            path.display(),
            crate::error::shorten(other)
        ))),
    };
    let mut v = Value::Object(std::mem::take(&mut doc));
    zeroize_json(&mut v);
    Ok(Found {
        issuer: issuer?,
        project,
        origin,
    })
}

/// A service account's key: a JWT assertion signed with it is exchanged
/// for an access token (RFC 7523's `jwt-bearer` grant).
pub struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    key: ring::signature::RsaKeyPair,
    token_uri: String,
    file: PathBuf,
    http: Arc<Http>,
    settings: RemoteSettings,
}

impl ServiceAccount {
    fn from_doc(
        doc: &Map<String, Value>,
        file: &Path,
        http: &Arc<Http>,
        settings: &RemoteSettings,
    ) -> Result<ServiceAccount, Error> {
        let email = field(doc, "client_email", file)?;
        let pem = SecretString::from(field(doc, "private_key", file)?);
        let bad = |why: &str| {
            Error::Parse(format!(
                "credentials file {}: 'private_key' {why}",
                file.display()
            ))
        };
        let key = crate::secrets::credential::oauth::rsa_key_from_pem(pem.expose().as_bytes())
            .map_err(bad)?;
        let token_uri = token_uri(doc, file)?;
        Ok(ServiceAccount {
            email,
            key_id: optional(doc, "private_key_id"),
            key,
            token_uri,
            file: file.to_owned(),
            http: Arc::clone(http),
            settings: settings.clone(),
        })
    }

    /// The signed assertion, valid for an hour from now.
    fn assertion(&self) -> Result<SecretString, FetchError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::String(kid.clone());
        }
        // The audience is Google's token endpoint whatever `token_uri` says,
        // as Google documents it and its libraries send it.
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": TOKEN_URI,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        signed_jwt(
            &self.key,
            &ring::signature::RSA_PKCS1_SHA256,
            &header,
            &claims,
        )
        .ok_or_else(|| {
            FetchError::permanent(Error::Internal(format!(
                "signing the assertion of service account {} failed",
                self.email
            )))
        })
    }
}

impl Issuer<SecretString> for ServiceAccount {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        let assertion = self.assertion()?;
        post_form(
            &self.http,
            &self.settings,
            "service account token",
            &self.token_uri,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.expose()),
            ],
        )
    }

    fn describe(&self) -> String {
        format!(
            "service account {} (key file {})",
            self.email,
            self.file.display()
        )
    }
}

/// A user's refresh token (gcloud's `application-default login`).
pub struct AuthorizedUser {
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
    token_uri: String,
    file: PathBuf,
    http: Arc<Http>,
    settings: RemoteSettings,
}

impl AuthorizedUser {
    fn from_doc(
        doc: &Map<String, Value>,
        file: &Path,
        http: &Arc<Http>,
        settings: &RemoteSettings,
    ) -> Result<AuthorizedUser, Error> {
        let token_uri = token_uri(doc, file)?;
        Ok(AuthorizedUser {
            client_id: field(doc, "client_id", file)?,
            client_secret: SecretString::from(field(doc, "client_secret", file)?),
            refresh_token: SecretString::from(field(doc, "refresh_token", file)?),
            token_uri,
            file: file.to_owned(),
            http: Arc::clone(http),
            settings: settings.clone(),
        })
    }
}

impl Issuer<SecretString> for AuthorizedUser {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        post_form(
            &self.http,
            &self.settings,
            "user credentials' token",
            &self.token_uri,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("refresh_token", self.refresh_token.expose()),
            ],
        )
    }

    fn describe(&self) -> String {
        format!(
            "user credentials of client {} (file {})",
            self.client_id,
            self.file.display()
        )
    }
}

/// The metadata server's token for the instance's (or the pod's) service
/// account. Until the server first answers, a process waits for it up to
/// `wait` (refused connections, 503s and timeouts: a node or a pod just
/// started, before GKE's metadata server is ready), whatever the fetch's
/// own bound; after that, failures are retried as any request's.
pub struct Metadata {
    root: String,
    host: String,
    http: Arc<Http>,
    settings: RemoteSettings,
    wait: Duration,
    answered: AtomicBool,
}

impl Metadata {
    fn new(
        host: &str,
        http: &Arc<Http>,
        settings: &RemoteSettings,
        wait: Duration,
    ) -> Result<Metadata, Error> {
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(Error::InvalidArgument(format!(
                "{} must be a host or host:port, without a scheme or path",
                var::GCE_METADATA_HOST
            )));
        }
        Ok(Metadata {
            root: format!("http://{host}/computeMetadata/v1/"),
            host: host.to_owned(),
            http: Arc::clone(http),
            settings: settings.clone(),
            wait,
            answered: AtomicBool::new(false),
        })
    }

    /// One GET of `path` under the metadata root, checked to come from a
    /// metadata server (`Metadata-Flavor: Google`).
    fn get(&self, what: &str, path: &str) -> Result<Response, FetchError> {
        let url = format!("{}{path}", self.root);
        let r = self
            .http
            .send(what, "GET", &url, &[("metadata-flavor", "Google")], b"")
            .map_err(|f| self.not_on_gcp(f))?;
        if r.status == 200 && r.header("metadata-flavor") != Some("Google") {
            return Err(FetchError::permanent(Error::Auth(format!(
                "{what}: {} answered without Metadata-Flavor: Google; it is not a metadata \
                 server",
                self.host
            ))));
        }
        Ok(r)
    }

    /// A host that cannot be resolved is no metadata server: not on GCP.
    /// (Asked of the resolver again, not read from the message: a failure to
    /// connect is a network error too.)
    fn not_on_gcp(&self, f: FetchError) -> FetchError {
        if matches!(f.error, Error::Network(_)) && !self.resolves() {
            return self.no_credentials();
        }
        f
    }

    fn no_credentials(&self) -> FetchError {
        FetchError::permanent(Error::ProviderUnavailable(format!(
            "no Google credentials: {} is not set, there is no gcloud application-default \
             credentials file, and the metadata server {} cannot be resolved (not on GCP)",
            var::GOOGLE_APPLICATION_CREDENTIALS,
            self.host
        )))
    }

    /// Whether the host resolves (before waiting for it: a machine that is
    /// not on GCP is told at once).
    fn resolves(&self) -> bool {
        use std::net::{SocketAddr, ToSocketAddrs};
        if self.host.parse::<SocketAddr>().is_ok() {
            return true;
        }
        let with_port = match self.host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => self.host.clone(),
            _ => format!("{}:80", self.host),
        };
        with_port
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.next().is_some())
    }

    fn token_once(&self) -> Result<Issued<SecretString>, FetchError> {
        let what = "metadata server token";
        let sent = clock::precise();
        let r = self.get(what, "instance/service-accounts/default/token")?;
        if r.status == 404 {
            return Err(FetchError::permanent(Error::Auth(format!(
                "{what}: the instance or pod has no service account (HTTP 404)"
            ))));
        }
        token_answer(what, r, sent)
    }

    /// The metadata server of `vars` (`GCE_METADATA_HOST`, else Google's),
    /// asked through `http` with `settings`, for identity tokens.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed `GCE_METADATA_HOST`.
    pub fn of(vars: &Vars, http: &Arc<Http>, settings: &RemoteSettings) -> Result<Metadata, Error> {
        let host = vars.get(var::GCE_METADATA_HOST).unwrap_or(METADATA_HOST);
        Metadata::new(host, http, settings, Duration::ZERO)
    }

    /// An ID token of the instance's or pod's service account for
    /// `audience`, signed by Google now (`format=full`: with the instance's
    /// claims), as the metadata server's `identity` endpoint gives it.
    ///
    /// # Errors
    /// As a request's; [`Error::Auth`]: no service account;
    /// [`Error::Remote`]: an answer that is not a JWT.
    pub fn identity(&self, audience: &str) -> Result<SecretString, FetchError> {
        let what = "metadata server identity token";
        if !self.resolves() {
            return Err(self.no_credentials());
        }
        let path = format!(
            "instance/service-accounts/default/identity?{}",
            crate::secrets::transport::url::form(&[("audience", audience), ("format", "full")])
        );
        with_retries(&self.settings, || {
            let r = self.get(what, &path)?;
            if r.status == 404 {
                return Err(FetchError::permanent(Error::Auth(format!(
                    "{what}: the instance or pod has no service account (HTTP 404)"
                ))));
            }
            if r.status != 200 {
                return Err(oauth_failure(what, &r));
            }
            let token = std::str::from_utf8(r.body.expose())
                .ok()
                .map(str::trim)
                .filter(|t| {
                    u64::try_from(t.len()).is_ok_and(|n| n <= identity_file::MAX_TOKEN)
                        && t.split('.').count() == 3
                })
                .map(SecretString::from);
            token.ok_or_else(|| {
                FetchError::permanent(Error::Remote(format!("{what}: the answer is not a JWT")))
            })
        })
    }

    /// The project the metadata server names.
    ///
    /// # Errors
    /// As a request's.
    pub fn project(&self) -> Result<String, FetchError> {
        let what = "metadata server project";
        with_retries(&self.settings, || {
            let r = self.get(what, "project/project-id")?;
            if r.status != 200 {
                return Err(oauth_failure(what, &r));
            }
            let text = String::from_utf8_lossy(r.body.expose()).trim().to_owned();
            match super::google::valid_project(&text) {
                true => Ok(text),
                false => Err(FetchError::permanent(Error::Remote(format!(
                    "{what}: the answer is not a project ID"
                )))),
            }
        })
    }
}

impl Issuer<SecretString> for Metadata {
    fn issue(&self) -> Result<Issued<SecretString>, FetchError> {
        if self.answered.load(Relaxed) {
            return with_retries(&self.settings, || self.token_once());
        }
        // Not answered yet: waited for up to `wait`, the fetch's bound
        // lifted, unless the host is not there at all.
        if !self.resolves() {
            return Err(self.no_credentials());
        }
        let lifted = FetchBound::lifted();
        let until = Instant::now() + self.wait;
        let mut retry = 0;
        loop {
            match self.token_once() {
                Ok(issued) => {
                    self.answered.store(true, Relaxed);
                    drop(lifted);
                    crate::secrets::transport::retry::extend_bound(self.settings.fetch_bound());
                    return Ok(issued);
                }
                Err(f) if f.transient && Instant::now() < until => {
                    let pause = f
                        .retry_after
                        .unwrap_or_else(|| backoff(&self.settings, retry.min(4)));
                    std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
                    retry += 1;
                    crate::secrets::transport::meter::add_current(|c| c.retries += 1);
                }
                Err(f) if f.transient => {
                    return Err(FetchError {
                        error: f.error.with_note(format!(
                            "the metadata server did not answer within {:?} \
                             (gcp_metadata_wait)",
                            self.wait
                        )),
                        spent: true,
                        ..f
                    })
                }
                Err(f) => return Err(f),
            }
        }
    }

    fn describe(&self) -> String {
        format!("the metadata server at {}", self.host)
    }

    /// `gcp_metadata_wait`: the server is waited for until it first answers.
    fn longest_wait(&self) -> Duration {
        self.wait
    }
}

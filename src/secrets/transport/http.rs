//! One blocking HTTP client for the remote providers: `ureq` over rustls,
//! short timeouts, an optional CA bundle, failures classified into st-secrets
//! errors that say whether a retry can help.

use super::gate::{Pacing, Signal};
use super::unix::UnixConnector;
use super::url::redact_url;
use super::{FetchError, RemoteSettings};
use crate::error::Error;
use crate::secret::SecretBytes;
use crate::sys::Mutex;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// The largest response body read (a Secrets Manager secret is at most
/// 64 KiB; a Vault secret rarely more).
const MAX_BODY: u64 = 4 << 20;

/// The longest `Retry-After` taken in (a day); longer is read as a day.
const MAX_RETRY_AFTER: u64 = 86_400;

/// An answer: status, headers and body (the body may hold secrets and is
/// zeroed when dropped).
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    headers: Vec<(String, String)>,
    /// The body.
    pub body: SecretBytes,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// A response made up by the fuzz targets and tests.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn made_up(status: u16, headers: Vec<(String, String)>, body: &[u8]) -> Response {
        Response {
            status,
            headers,
            body: SecretBytes::from(body.to_vec()),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The wait a `Retry-After` header asks for: seconds, or an HTTP date
    /// (a date in the past is no wait); `None` without a readable header.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.header("retry-after")?.trim();
        let wait = match value.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => {
                let date = aws_smithy_types::DateTime::from_str(
                    value,
                    aws_smithy_types::date_time::Format::HttpDate,
                )
                .ok()?;
                std::time::SystemTime::try_from(date)
                    .ok()?
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
            }
        };
        Some(wait.min(Duration::from_secs(MAX_RETRY_AFTER)))
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body.expose()).ok()
    }
}

/// Where TLS trust comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Mozilla's roots (webpki-roots).
    #[default]
    Default,
    /// The certificates of a PEM bundle (`AWS_CA_BUNDLE`, `VAULT_CACERT`).
    Bundle(std::path::PathBuf),
    /// No verification at all (`VAULT_SKIP_VERIFY`); for tests and labs only.
    Insecure,
}

/// An agent (its pool of keep-alive connections) of this process.
struct Pool {
    agent: ureq::Agent,
    config: ureq::config::Config,
    /// A Unix socket every connection goes to, instead of TCP.
    socket: Option<PathBuf>,
}

impl Pool {
    fn new(config: ureq::config::Config, socket: Option<PathBuf>) -> Self {
        Pool {
            agent: Pool::agent(&config, &socket),
            config,
            socket,
        }
    }

    fn agent(config: &ureq::config::Config, socket: &Option<PathBuf>) -> ureq::Agent {
        match socket {
            None => ureq::Agent::new_with_config(config.clone()),
            Some(path) => ureq::Agent::with_parts(
                config.clone(),
                UnixConnector { path: path.clone() },
                ureq::unversioned::resolver::DefaultResolver::default(),
            ),
        }
    }

    /// In a forked child: a new pool. The parent's connections are never
    /// used here (both processes would write requests to and read responses
    /// from one socket) and never closed (the agent is forgotten, not
    /// dropped: its own lock may have been held at the fork).
    fn after_fork(&mut self) {
        let fresh = Pool::agent(&self.config, &self.socket);
        std::mem::forget(std::mem::replace(&mut self.agent, fresh));
    }
}

/// Where requests go: `url` itself, or, for a `unix://PATH` address, the
/// socket at PATH with the URL `http://localhost` (requests are sent to
/// `base() + "/v1/..."`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The address as configured (shown in messages and statuses).
    pub shown: String,
    /// The socket of a `unix://` address.
    pub socket: Option<PathBuf>,
}

impl Address {
    /// `address` (an http(s) URL or `unix://PATH`), without a trailing `/`.
    pub fn parse(address: &str) -> Address {
        let shown = address.trim_end_matches('/').to_owned();
        Address {
            socket: super::unix::socket_path(&shown),
            shown,
        }
    }

    /// The URL requests are built on.
    pub fn base(&self) -> &str {
        if self.socket.is_some() {
            UNIX_BASE
        } else {
            &self.shown
        }
    }
}

/// OpenTelemetry's `error.type` of a request that got no answer.
fn error_type(f: &FetchError) -> &'static str {
    match f.error {
        Error::Timeout(_) => "timeout",
        Error::Network(ref m) if m.contains("TLS") => "tls",
        Error::Network(_) => "network",
        _ => "other",
    }
}

/// The URL of requests sent over a Unix socket.
const UNIX_BASE: &str = "http://localhost";

thread_local! {
    /// How long this thread's requests wait for their answer, when they
    /// issue something ([`patiently`]).
    static PATIENCE: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Runs `f` with every request it sends waiting up to `patience` for its
/// answer (connecting is still bounded by the connect timeout), whatever a
/// fetch's bound says: a request that makes the server issue a token or a
/// lease is not given up while the server may still answer it.
pub(crate) fn patiently<T>(patience: Duration, f: impl FnOnce() -> T) -> T {
    let before = PATIENCE.with(|p| p.replace(Some(patience)));
    let out = f();
    PATIENCE.with(|p| p.set(before));
    out
}

/// A client with its settings; cheap to share behind an `Arc`. Each process
/// has its own connections: a child forked from a process using it starts
/// with an empty pool.
pub struct Http {
    pool: Mutex<Pool>,
    /// Per-request bound on the whole exchange.
    request_timeout: Duration,
    /// Where the user sets the CA bundle (`"AWS_CA_BUNDLE"`), named when a
    /// server's certificate is not trusted.
    ca_setting: &'static str,
    /// The Unix socket requests go to, if any.
    socket: Option<PathBuf>,
    /// What the configuration was built from, to build it again with a
    /// client certificate ([`present`](Self::present)).
    settings: RemoteSettings,
    tls: TlsConfig,
    /// How long the next request waits after the server pushed back: in a
    /// fleet only, from its gate (elsewhere the retries alone answer a push
    /// back).
    pace: Option<Box<dyn Pacing>>,
}

/// The agent configuration of `settings` with `tls`.
fn agent_config(settings: &RemoteSettings, tls: TlsConfig) -> ureq::config::Config {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(settings.connect_timeout))
        .timeout_global(Some(settings.request_timeout))
        .max_redirects(0)
        .user_agent(concat!("st-secrets/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
}

/// `tls` with the client certificate `cert` instead of its own.
fn with_client_cert(tls: &TlsConfig, cert: Option<ureq::tls::ClientCert>) -> TlsConfig {
    TlsConfig::builder()
        .root_certs(tls.root_certs().clone())
        .disable_verification(tls.disable_verification())
        .client_cert(cert)
        .build()
}

impl Http {
    /// A client with `settings`' timeouts and `trust`; `ca_setting` names
    /// where the user sets the CA bundle (`"AWS_CA_BUNDLE"`), for the message
    /// when a server's certificate is not trusted.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] / [`Error::Io`] when the CA bundle cannot be
    /// read or holds no certificate.
    pub fn new(
        settings: &RemoteSettings,
        trust: &Trust,
        ca_setting: &'static str,
    ) -> Result<Http, Error> {
        Http::to(settings, trust, ca_setting, None)
    }

    /// [`new`](Self::new), sending every request over the Unix socket
    /// `socket` when it is `Some` (see [`Address`]).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn to(
        settings: &RemoteSettings,
        trust: &Trust,
        ca_setting: &'static str,
        socket: Option<PathBuf>,
    ) -> Result<Http, Error> {
        let tls = match trust {
            Trust::Default => TlsConfig::builder().build(),
            Trust::Bundle(path) => TlsConfig::builder()
                .root_certs(RootCerts::Specific(std::sync::Arc::new(load_bundle(path)?)))
                .build(),
            Trust::Insecure => TlsConfig::builder().disable_verification(true).build(),
        };
        let config = agent_config(settings, tls.clone());
        let (fresh, fresh_socket) = (config.clone(), socket.clone());
        Ok(Http {
            pool: Mutex::with_rebuild(Pool::new(config, socket.clone()), move || {
                Pool::new(fresh.clone(), fresh_socket.clone())
            })
            .after_fork(Pool::after_fork),
            request_timeout: settings.request_timeout,
            ca_setting,
            socket,
            settings: settings.clone(),
            tls,
            pace: settings.fleet.gate.admission().map(|a| a.pace()),
        })
    }

    /// Shares how long to wait after the server at `server` pushed back
    /// with the node's other processes, through `dir` (the node cache's
    /// directory).
    pub fn share_pace(&self, dir: &Path, server: &str) {
        if let Some(pace) = &self.pace {
            pace.share(dir, server);
        }
    }

    /// Presents `cert` (a TLS client certificate and its key) to the
    /// server from the next connection on; `None`: none. The pool's
    /// connections are dropped, so that none made with the previous
    /// certificate is used again.
    pub fn present(&self, cert: Option<ureq::tls::ClientCert>) {
        let tls = with_client_cert(&self.tls, cert);
        let config = agent_config(&self.settings, tls);
        *self.pool.lock() = Pool::new(config, self.socket.clone());
    }

    /// Sends one request. `what` names it in messages (`"GetSecretValue"`).
    ///
    /// # Errors
    /// A [`FetchError`]: timeouts ([`Error::Timeout`]) and connection failures
    /// ([`Error::Network`]) are transient; TLS and URL problems are not.
    pub fn send(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let (headers_sent, body_sent) = (headers, body);
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body).map_err(|_| {
            FetchError::permanent(Error::InvalidArgument(format!(
                "{what}: cannot build a request for {}",
                redact_url(url)
            )))
        })?;
        // After the server pushed back; at most half what the fetch has
        // left, so that the request still has time to be answered. (In a
        // fleet only, for now: see `pace`.)
        let pace = self.pace.as_deref();
        let wait = pace.map_or(Duration::ZERO, Pacing::wait);
        if !wait.is_zero() {
            std::thread::sleep(super::retry::time_left().map_or(wait, |left| wait.min(left / 2)));
        }
        let agent = self.pool.lock().agent.clone();
        // Within a fetch, at most what the fetch has left (a cluster's
        // nodes tried in turn share one bound).
        // A request that issues something waits for its answer as long as
        // its patience says, whatever the fetch has left.
        let request = match (PATIENCE.with(Cell::get), super::retry::time_left()) {
            (Some(patience), _) => agent
                .configure_request(request)
                .timeout_global(Some(patience))
                .build(),
            (None, Some(left)) if left < self.request_timeout => agent
                .configure_request(request)
                .timeout_global(Some(left.max(Duration::from_millis(1))))
                .build(),
            _ => request,
        };
        let started = std::time::Instant::now();
        let counted = |outcome: &str| {
            super::meter::request(what, method, url, outcome, started.elapsed());
        };
        let response = agent.run(request).map_err(|e| {
            let f = self.classify(what, url, e);
            counted(error_type(&f));
            if let (Some(pace), Error::Timeout(_)) = (pace, &f.error) {
                pace.note(Signal::Pushed(None));
            }
            f
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = response
            .into_body()
            .into_with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| {
                let f = self.classify(what, url, e);
                counted(error_type(&f));
                f
            })?;
        counted(&status.to_string());
        if status >= 300 {
            // Error text reaches messages: a server that repeats a
            // credential this request carried ("Bad Token: <token>") must
            // not put it there.
            super::sent::scrub_answer(&mut body, headers_sent, body_sent);
        }
        let response = Response {
            status,
            headers,
            body: SecretBytes::from(body),
        };
        // A standby's `sys/health` answers 429: a role, not a push back.
        if let Some(pace) = pace.filter(|_| !url.contains("/v1/sys/health")) {
            pace.note(Signal::of(
                response.status,
                |name| response.header(name),
                response.retry_after(),
                started.elapsed(),
                self.request_timeout,
            ));
        }
        Ok(response)
    }

    fn classify(&self, what: &str, url: &str, e: ureq::Error) -> FetchError {
        let at = match &self.socket {
            Some(path) => format!(
                "{}{}{}",
                super::unix::SCHEME,
                path.display(),
                redact_url(url.strip_prefix(UNIX_BASE).unwrap_or(url))
            ),
            None => redact_url(url),
        };
        // rustls' errors arrive wrapped in an I/O error from the handshake,
        // or as themselves; either way a refused certificate is told apart
        // from a network failure: retrying cannot fix it, and a stale value
        // must not hide it.
        let tls = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        if let Some(r) = tls {
            return FetchError::permanent(Error::Network(self.tls_message(what, &at, r)));
        }
        match e {
            ureq::Error::Timeout(t) => FetchError::transient(Error::Timeout(format!(
                "{what}: {at} did not answer in time ({t}; request timeout {:?})",
                self.request_timeout
            ))),
            ureq::Error::HostNotFound => FetchError::transient(Error::Network(format!(
                "{what}: cannot resolve the host of {at}"
            ))),
            ureq::Error::ConnectionFailed => {
                FetchError::transient(Error::Network(format!("{what}: cannot connect to {at}")))
            }
            ureq::Error::Io(io) => FetchError::transient(Error::Network(format!(
                "{what}: connection to {at} failed: {}",
                io.kind()
            ))),
            ureq::Error::Protocol(p) => FetchError::transient(Error::Network(format!(
                "{what}: {at} answered with malformed HTTP ({p})"
            ))),
            ureq::Error::BodyExceedsLimit(_) => FetchError::permanent(Error::Remote(format!(
                "{what}: the answer of {at} is larger than {MAX_BODY} bytes"
            ))),
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                FetchError::permanent(Error::InvalidArgument(format!("{what}: invalid URL {at}")))
            }
            ureq::Error::Tls(m) => {
                FetchError::permanent(Error::Network(format!("{what}: TLS with {at} failed: {m}")))
            }
            other => FetchError::transient(Error::Network(format!(
                "{what}: request to {at} failed: {other}"
            ))),
        }
    }

    /// The message for a failed TLS handshake: an untrusted certificate says
    /// so and names the setting that adds a CA.
    fn tls_message(&self, what: &str, at: &str, e: &rustls::Error) -> String {
        use rustls::{CertificateError, Error as E};
        let untrusted = |why: &str| {
            let hint = if self.ca_setting.is_empty() {
                String::new()
            } else {
                format!(
                    "; if it is signed by a private CA, set {} to that CA's PEM file",
                    self.ca_setting
                )
            };
            format!("{what}: the TLS certificate of {at} is not trusted ({why}){hint}")
        };
        match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => {
                    untrusted("it is signed by an unknown certificate authority")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    untrusted("it has expired")
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    untrusted("it is not valid for this host name")
                }
                CertificateError::BadSignature | CertificateError::BadEncoding => {
                    untrusted("it is malformed or badly signed")
                }
                other => untrusted(&format!("{other:?}")),
            },
            E::NoCertificatesPresented => untrusted("the server presented none"),
            other => format!("{what}: TLS with {at} failed: {other}"),
        }
    }
}

fn load_bundle(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = crate::fsutil::read_required(path, "CA bundle", 16 << 20)?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "CA bundle {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let with = |v: &str| {
            Response::made_up(429, vec![("Retry-After".into(), v.into())], b"").retry_after()
        };
        assert_eq!(with("2"), Some(Duration::from_secs(2)));
        assert_eq!(with(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            with("99999999999"),
            Some(Duration::from_secs(MAX_RETRY_AFTER))
        );
        assert_eq!(with("soon"), None);
        assert_eq!(with("-1"), None);
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let date = aws_smithy_types::DateTime::from(later)
            .fmt(aws_smithy_types::date_time::Format::HttpDate)
            .unwrap();
        let wait = with(&date).unwrap();
        assert!(
            (Duration::from_secs(118)..=Duration::from_secs(120)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(Response::made_up(429, vec![], b"").retry_after(), None);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = Http::new(&RemoteSettings::default(), &Trust::Bundle(p), "")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = Http::new(
            &RemoteSettings::default(),
            &Trust::Bundle(dir.path().join("missing.pem")),
            "",
        )
        .err()
        .unwrap();
        assert_eq!(e.code_name(), "ST_IO");
    }
}

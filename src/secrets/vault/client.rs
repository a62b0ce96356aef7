//! The Vault client: requests to the nodes (one address, or a cluster's:
//! [`Cluster`]) in the configured namespace, with the token given. Whose
//! token ([`Session`](super::session::Session)), which KV version
//! ([`Kv`](super::kv::Kv)) and which lease ([`Leases`](super::leases::Leases))
//! are theirs to know.

use super::cluster::{Cluster, DEFAULT_ELECTION_TIMEOUT};
use super::identity::CertFiles;
use super::settings::{either, VaultSettings};
use super::wire::{errors_summary, not_found_kind, NotFound};
use crate::error::shorten;
use crate::error::Error;
use crate::paths::expand_home;
use crate::secret::SecretString;
use crate::secrets::transport::http::{Address, Http, Response, Trust};
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, RemoteSettings, Vars};

/// What a 404 that is not an error says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    /// Nothing there.
    Absent,
    /// A warning that the mount is KV v2 (read with a v1 path).
    MountIsV2,
}

pub(super) struct Client {
    /// The nodes: one address, or a cluster's.
    pub(super) cluster: Cluster,
    /// The namespace requests are sent in (`X-Vault-Namespace`).
    pub(super) namespace: Option<String>,
}

impl Client {
    /// The client for the nodes `urls` (at least one), its namespace and
    /// TLS trust from the settings and the environment; `cert`, the client
    /// certificate configured, presented from the start when it loads now
    /// (a listener may require one; a certificate login loads it again for
    /// each login, so one written later is used then).
    pub(super) fn new(
        settings: &VaultSettings,
        remote: &RemoteSettings,
        vars: &Vars,
        urls: Vec<Address>,
        node_dir: Option<&std::path::Path>,
        cert: Option<&CertFiles>,
    ) -> Result<Client, Error> {
        let skip =
            either(vars, var::VAULT_SKIP_VERIFY, var::BAO_SKIP_VERIFY).is_some_and(|(v, _)| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t" | "yes")
            });
        let trust = match (skip, either(vars, var::VAULT_CACERT, var::BAO_CACERT)) {
            (true, _) => Trust::Insecure,
            (false, Some((p, _))) => Trust::Bundle(expand_home(p.into())),
            (false, None) => Trust::Default,
        };
        let cluster = Cluster::new(
            urls,
            |a| {
                Http::to(
                    remote,
                    &trust,
                    "BAO_CACERT (or VAULT_CACERT)",
                    a.socket.clone(),
                )
            },
            remote,
            settings
                .election_timeout
                .unwrap_or(DEFAULT_ELECTION_TIMEOUT),
            node_dir,
        )?;
        if let Some(Ok(cert)) = cert.map(CertFiles::load) {
            cluster.present(&Some(cert));
        }
        Ok(Client {
            cluster,
            namespace: settings.namespace.clone().or_else(|| {
                either(vars, var::VAULT_NAMESPACE, var::BAO_NAMESPACE).map(|(ns, _)| ns.to_owned())
            }),
        })
    }

    /// One request in the namespace; a write waits out an election.
    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        self.send_in(self.namespace.as_deref(), method, path, token, body)
    }

    /// [`send`](Self::send) in `namespace` (`None`: the root namespace,
    /// where `sys/health` must be asked).
    pub(super) fn send_in(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        self.request(namespace, method, path, token, body, method != "GET")
    }

    /// [`send`](Self::send) without waiting out an election: a renewal's
    /// token is still valid, and the login that replaces it later waits
    /// instead.
    pub(super) fn send_once(
        &self,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
    ) -> Result<Response, FetchError> {
        let namespace = self.namespace.as_deref();
        self.request(namespace, method, path, token, body, false)
    }

    /// One request through the cluster; `wait`: a write that waits out an
    /// election.
    fn request(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        token: Option<&SecretString>,
        body: &[u8],
        wait: bool,
    ) -> Result<Response, FetchError> {
        let path = format!("/v1/{path}");
        let mut headers = vec![("x-vault-request", "true")];
        if let Some(t) = token {
            headers.push(("x-vault-token", t.expose()));
        }
        if let Some(ns) = namespace {
            headers.push(("x-vault-namespace", ns));
        }
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        self.cluster.send(method, &path, &headers, body, wait)
    }

    /// What a 404 means: plain absence, a KV v2 mount read with a v1 path
    /// (the server's warning), or an error when its body names a missing
    /// route (`route`: what the path needs, such as a mount or an auth
    /// method, and what to do about it) or namespace.
    pub(super) fn not_found(
        &self,
        r: &Response,
        what: &str,
        route: (String, &str),
    ) -> Result<Missing, FetchError> {
        let namespace = self.namespace.as_deref().unwrap_or_default();
        let missing = |text: String| Err(FetchError::permanent(Error::ProviderUnavailable(text)));
        match not_found_kind(r) {
            NotFound::Absent => Ok(Missing::Absent),
            NotFound::MountIsV2 => Ok(Missing::MountIsV2),
            NotFound::NoNamespace => missing(format!(
                "{what}: the server has no namespace '{}' (check vault_namespace, \
                 VAULT_NAMESPACE or BAO_NAMESPACE)",
                shorten(namespace)
            )),
            NotFound::NoRoute => {
                let within = if namespace.is_empty() {
                    String::new()
                } else {
                    format!(" in namespace '{}'", shorten(namespace))
                };
                missing(format!(
                    "{what}: the server has no {}{within} ({})",
                    route.0, route.1
                ))
            }
            NotFound::Errors => Err(FetchError::permanent(Error::Remote(format!(
                "{what}: not found (HTTP 404){}",
                errors_summary(r)
            )))),
        }
    }

    /// Where requests go, for statuses: the nodes and the namespace.
    pub(super) fn describe(&self) -> String {
        format!(
            "{}{}",
            self.cluster.describe(),
            self.namespace
                .as_ref()
                .map(|ns| format!(" (namespace {ns})"))
                .unwrap_or_default()
        )
    }
}

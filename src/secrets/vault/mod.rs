//! The HashiCorp Vault provider: the fields of KV secrets are the keys.
//! KV v2 (`<mount>/data/<path>`, values under `data.data`) with a fallback to
//! v1 (`<mount>/<path>`, values under `data`), decided once per mount
//! (`sys/internal/ui/mounts/<mount>` when the token may read it, else by
//! probing) unless `vault_kv_version` says. Several paths are looked up in
//! order, each fetched and cached as one unit ([`RemoteSource`]: this
//! module is its [`Fetch`]). Tokens from config,
//! `BAO_TOKEN` / `VAULT_TOKEN`, a token file read again when it changes (an
//! agent's sink, `~/.vault-token`), or an AppRole login that is repeated when
//! the token expires or is refused; or no token at all, for a Vault Agent or
//! Proxy that adds its own. Requests go through the shared remote machinery
//! ([`remote`](crate::secrets::remote)): one request per TTL, stale-on-error,
//! retries, short timeouts.
//!
//! Configuration, each in this order (OpenBao's `BAO_` variables win over
//! Vault's `VAULT_` ones when both are set, as OpenBao's clients read them):
//! URL `vault_urls` (a cluster's nodes: [`cluster`]) or `vault_url`,
//! `BAO_ADDR`, `VAULT_ADDR` (either a comma-separated list of nodes; each
//! http(s), or `unix://PATH`);
//! authentication the method `vault_auth` / `SIMPLETUNER_VAULT_AUTH` names
//! (a login from the workload's identity, [`login`]: `kubernetes`, `jwt`,
//! `cert`, `aws`), else `vault_agent` / `SIMPLETUNER_VAULT_AGENT` (no
//! token), else token `vault_token`, `BAO_TOKEN`, `VAULT_TOKEN`, else token
//! file `vault_token_file`, `SIMPLETUNER_VAULT_TOKEN_FILE`, `~/.vault-token`,
//! else AppRole (`VAULT_ROLE_ID` + `VAULT_SECRET_ID`); a login's token is
//! kept by the [`session`], shared per node with the node cache; paths `vault_path` (a
//! string or a list), `SIMPLETUNER_VAULT_PATH` (comma-separated),
//! `simpletuner`; mount `vault_mount`, `SIMPLETUNER_VAULT_MOUNT`, `secret`;
//! namespace `vault_namespace`, `BAO_NAMESPACE`, `VAULT_NAMESPACE` (sent as
//! `X-Vault-Namespace`); TLS `BAO_CACERT`, `VAULT_CACERT`, `BAO_SKIP_VERIFY`,
//! `VAULT_SKIP_VERIFY`.
//!
//! A 404 is "absent" only when the server says nothing more: one naming a
//! missing route or namespace, or warning that the path does not fit the
//! mount's KV version, is a configuration error that names what to fix.

mod auth;
mod client;
mod cluster;
mod connect;
mod identity;
mod issuing;
mod job_end;
pub use job_end::EntityEnd;
mod kept;
pub use kept::{IdentityToken, KeptIdentityToken};
mod kv;
mod leases;
mod ledger;
mod login;
mod logins;
mod session;
pub(crate) mod settings;
pub(crate) mod wire;

use crate::secret::SecretString;
pub use ledger::Revoked;
pub use settings::{LeasedPath, VaultAuth, VaultSettings};

use crate::error::Error;
use crate::secrets::credential::identity_file;
use crate::secrets::lifetime::Lifetime;
use crate::secrets::provider::{zeroize_json, SecretMap};
use crate::secrets::remote::kit;
use crate::secrets::remote::rotation::Versions;
use crate::secrets::remote::source::{failed_line, line, push_line, Fetch, RemoteSource};
use crate::secrets::transport::http::Address;
use crate::secrets::transport::retry::with_retries;
use crate::secrets::transport::vars as var;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use kv::Kv;
use leases::Leases;
use serde_json::{json, Value};
use session::Session;
use settings::either;
use std::sync::Arc;
use wire::expect;

/// HashiCorp Vault or OpenBao, as [`RemoteSource`] fetches from it: the
/// token's session over the client, the KV mount, and the leased secrets.
pub struct Vault {
    session: Arc<Session>,
    kv: Kv,
    leases: Leases,
    settings: RemoteSettings,
}

/// A secret of the Vault provider's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultSecret {
    /// A KV secret: its path in the mount.
    Kv(String),
    /// A leased secret of `vault_leases`: its name.
    Leased(String),
}

impl std::fmt::Display for VaultSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultSecret::Kv(path) => f.write_str(path),
            VaultSecret::Leased(name) => write!(f, "leased {name}"),
        }
    }
}

impl Drop for Vault {
    /// The manager is freed: a process that shares nothing revokes the
    /// leases it issued and the tokens it logged in with.
    fn drop(&mut self) {
        self.session.settle_in_flight();
        self.leases.revoke_own();
    }
}

/// The Vault provider.
pub type VaultProvider = RemoteSource<Vault>;

/// Vault for a tool that runs a job, beside the chain: the identity tokens
/// it hands the job, and the revocation of the job's ledger once the job
/// has ended. Built from the configuration with no cache and no node
/// cache entry (its login is its own, recorded in the job's ledger as
/// every login is).
pub struct VaultJob {
    vault: Result<Vault, Error>,
    /// Clients for the Vaults a ledger's lines name, and the settings they
    /// are revoked with: a job's process configured apart (its own JSON)
    /// records where its Vault is, whether or not this one names any.
    elsewhere: leases::Elsewhere,
    remote: RemoteSettings,
}

impl VaultJob {
    /// Vault as `settings` and `vars` configure it.
    pub fn new(settings: &VaultSettings, remote: &RemoteSettings, vars: Vars) -> VaultJob {
        VaultJob {
            elsewhere: connect::elsewhere(settings, remote, &vars),
            remote: remote.clone(),
            vault: kit::alone(settings, remote, vars),
        }
    }

    /// [`Vault::identity_token`].
    ///
    /// # Errors
    /// As [`Vault::identity_token`]; the configuration's problem.
    pub fn identity_token(
        &self,
        role: &str,
        audience: Option<&str>,
    ) -> Result<IdentityToken, Error> {
        self.vault
            .as_ref()
            .map_err(Clone::clone)?
            .identity_token(role, audience)
    }

    /// Keeps `first` (a token of `role` for `audience`, as
    /// [`identity_token`](Self::identity_token) gave it) fresh: each
    /// replacement (with its lifetime), or each failure to replace it (the
    /// token held stays until it ends), is told to `on_change` on the
    /// library's refresher thread, until the returned handle is dropped.
    pub fn keep_identity_token(
        self: &Arc<Self>,
        role: &str,
        audience: Option<&str>,
        first: IdentityToken,
        on_change: impl Fn(Result<(&SecretString, Lifetime), &Error>) + Send + Sync + 'static,
    ) -> KeptIdentityToken {
        let (job, role, audience) = (
            Arc::clone(self),
            role.to_owned(),
            audience.map(str::to_owned),
        );
        let mint = move || job.identity_token(&role, audience.as_deref());
        KeptIdentityToken::keep(mint, first, on_change)
    }

    /// [`Vault::revoke_ledger`]; with no Vault configured here, each line
    /// at the Vault it names, with the tokens it lists (a job's process
    /// configured apart records where its Vault is).
    ///
    /// # Errors
    /// As [`Vault::revoke_ledger`]; with no Vault configured, the
    /// configuration's problem when a line names no Vault (nothing revoked).
    pub fn revoke_ledger(&self, path: &std::path::Path) -> Result<Revoked, Error> {
        match &self.vault {
            Ok(vault) => vault.revoke_ledger(path),
            Err(why) => leases::revoke_listed(path, Err(why), &self.elsewhere, &self.remote),
        }
    }

    /// Whether `vars` ask the end of a job to disable the entity of its
    /// token: `SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY=1` (the Slurm plugin's).
    pub fn asked_to_disable_entity(vars: &Vars) -> bool {
        vars.get(var::SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY) == Some("1")
    }

    /// [`Vault::disable_job_entity`].
    ///
    /// # Errors
    /// As [`Vault::disable_job_entity`]; the configuration's problem when it
    /// names no Vault.
    pub fn disable_job_entity(&self) -> Result<EntityEnd, Error> {
        self.vault
            .as_ref()
            .map_err(Clone::clone)?
            .disable_job_entity()
    }
}

impl Vault {
    /// An identity token of OIDC role `role`, signed now for the entity of
    /// the session's token (a login's: a root or orphan token has no
    /// entity, and the server refuses). With `audience`, the token must be
    /// for it (the role's `client_id`), or this fails naming both.
    ///
    /// # Errors
    /// The session's own (login refused); [`Error::Auth`]: the server
    /// refused (no entity, no policy for the role);
    /// [`Error::ProviderUnavailable`]: no such role; [`Error::Remote`]: an
    /// answer without a token, or for another audience.
    pub fn identity_token(
        &self,
        role: &str,
        audience: Option<&str>,
    ) -> Result<IdentityToken, Error> {
        let what = format!(
            "Vault identity token of role '{}'",
            crate::error::shorten(role)
        );
        let fetch = || {
            let r = self.session.get(&format!("identity/oidc/token/{role}"))?;
            if r.status == 400 || r.status == 404 {
                return Err(FetchError::permanent(Error::ProviderUnavailable(format!(
                    "{what}: refused (HTTP {}){} (is the role there, and does its key allow \
                     its client_id?)",
                    r.status,
                    wire::errors_summary(&r)
                ))));
            }
            expect(r, &what)
        };
        let r = with_retries(&self.settings, fetch).map_err(|f| f.error)?;
        let mut doc = r.json().unwrap_or(Value::Null);
        let token = doc["data"]["token"].as_str().map(SecretString::from);
        let ttl = wire::seconds(&doc["data"]["ttl"]).unwrap_or_default();
        zeroize_json(&mut doc);
        let token =
            token.ok_or_else(|| Error::Remote(format!("{what}: the answer holds no token")))?;
        let audiences = identity_file::jwt_claims(token.expose())
            .map(|c| identity_file::audiences(&c))
            .unwrap_or_default();
        if let Some(wanted) = audience {
            if !audiences.iter().any(|a| a == wanted) {
                return Err(Error::Remote(format!(
                    "{what} is for audience {audiences:?}, not '{wanted}': set the role's \
                     client_id to '{wanted}'"
                )));
            }
        }
        Ok(IdentityToken {
            token,
            lifetime: crate::secrets::lifetime::Lifetime::new(ttl, false),
            audiences,
        })
    }

    /// Disables the entity of the job's token (the JWT this Vault's `jwt`
    /// login sends) at the job's end, after checking that it is the job's
    /// run's own (a copy of the token is refused from then on).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]: the configured login is not a `jwt` one;
    /// [`Error::Auth`]: the login refused otherwise than with 403 (an
    /// expired token: a copy is refused anyway), or the store refused the
    /// update (the job's policy lacks the grant); [`Error::Remote`]: the
    /// entity is not the job's own, or an answer without what it must hold.
    pub fn disable_job_entity(&self) -> Result<EntityEnd, Error> {
        job_end::disable(&self.session)
    }

    /// Revokes every lease and login token the job's ledger file at `path`
    /// lists (`st-secrets run`, once its command has ended), then empties
    /// it. A lease is revoked with the token that issued it
    /// (`sys/leases/revoke`), a login token with itself
    /// (`auth/token/revoke-self`, its leases with it).
    ///
    /// # Errors
    /// [`Error::Io`]: the file cannot be read. What could not be revoked is
    /// listed in the answer.
    pub fn revoke_ledger(&self, path: &std::path::Path) -> Result<Revoked, Error> {
        self.leases.revoke_ledger(path)
    }
}

/// The nodes' addresses: `vault_urls`, else `vault_url`, else `BAO_ADDR` /
/// `VAULT_ADDR` (a comma-separated list for a cluster's nodes); `None`
/// when none is set.
fn addresses(vault: &VaultSettings, vars: &Vars) -> Result<Option<Vec<Address>>, Error> {
    let listed = match (&vault.urls, &vault.url) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidArgument(
                "Vault: both vault_url and vault_urls are set: set one (vault_urls for a \
                 cluster's nodes)"
                    .into(),
            ))
        }
        (Some(urls), None) => urls.clone(),
        (None, Some(url)) => vec![url.clone()],
        (None, None) => match either(vars, var::VAULT_ADDR, var::BAO_ADDR) {
            Some((_, name)) => vars.list(name)?.unwrap_or_default(),
            None => return Ok(None),
        },
    };
    let mut out: Vec<Address> = Vec::new();
    for u in listed {
        let a = Address::parse(&u);
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

impl Vault {
    /// Each secret as `<mount>/<path>`, a leased one as its path.
    fn secrets(&self, secrets: &[VaultSecret]) -> Vec<String> {
        secrets
            .iter()
            .map(|s| match s {
                VaultSecret::Leased(name) => format!(
                    "{} (leased, {name})",
                    self.leases.specs.get(name).map_or("?", |l| l.path.as_str())
                ),
                VaultSecret::Kv(p) => format!("{}/{p}", self.kv.mount),
            })
            .collect()
    }
}

impl Fetch for Vault {
    const NAME: &'static str = "vault";
    const ABSENT: &'static str = "no secret at the path";
    type Secret = VaultSecret;

    fn fetch(&self, secret: &VaultSecret) -> Result<Fetched<SecretMap>, FetchError> {
        self.fetch_held(secret, None)
    }

    fn fetch_held(
        &self,
        secret: &VaultSecret,
        held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        match secret {
            VaultSecret::Leased(name) => self.leases.fetch(name, held),
            VaultSecret::Kv(path) => with_retries(&self.settings, || self.kv.read(path)),
        }
    }

    fn versions(&self, secret: &VaultSecret) -> Option<Result<Fetched<Versions>, FetchError>> {
        let VaultSecret::Kv(path) = secret else {
            return None;
        };
        let mut unsaid = false;
        let answer = with_retries(&self.settings, || {
            self.kv.versions(path).unwrap_or_else(|| {
                unsaid = true;
                Ok(Fetched::Absent)
            })
        });
        (!unsaid).then_some(answer)
    }

    fn fetch_version(
        &self,
        secret: &VaultSecret,
        id: &str,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        match secret {
            VaultSecret::Leased(_) => self.fetch(secret),
            VaultSecret::Kv(path) => {
                with_retries(&self.settings, || self.kv.read_version(path, id))
            }
        }
    }

    fn expect_change(&self) {
        self.session.client().cluster.expect_change();
    }

    fn describe(&self, secrets: &[VaultSecret]) -> (String, Vec<String>) {
        let head = format!(
            "{} at {}; {}; {}",
            self.secrets(secrets).join(", then "),
            self.session.client().describe(),
            self.kv.describe(),
            self.session.describe(),
        );
        (head, self.session.warnings())
    }

    fn checks(&self, secrets: &[VaultSecret]) -> Value {
        let c = self.session.client();
        let (url, secret, auth) = (
            c.cluster.shown(),
            self.secrets(secrets).join(", "),
            self.session.auth.describe(),
        );
        let mut out = json!({
            "url": url,
            "secret": secret,
            "auth": auth,
            "namespace": c.namespace,
            "lines": [line("secret", &secret, None), line("url", &url, None), line("auth", &auth, None)],
        });
        if let Some(ns) = &c.namespace {
            push_line(&mut out, line("namespace", ns, None));
        }
        // Asked of each node, in the root namespace (OpenBao refuses
        // sys/health in others); each node's role is learnt from it.
        let health: Vec<Value> = (0..c.cluster.nodes.len())
            .map(|i| match c.cluster.health(i) {
                Ok(r) if r.status == 404 => json!({ "supported": false }),
                Ok(r) => {
                    let doc = r.json().unwrap_or(Value::Null);
                    json!({
                        "status": r.status,
                        "initialized": doc["initialized"],
                        "sealed": doc["sealed"],
                        "standby": doc["standby"],
                        "version": doc["version"],
                    })
                }
                Err(f) => json!({ "error": f.error.to_json() }),
            })
            .collect();
        let mut cluster = c.cluster.report();
        if let Some(nodes) = cluster["nodes"].as_array_mut() {
            for (node, h) in nodes.iter_mut().zip(&health) {
                node["health"] = h.clone();
            }
        }
        for l in health_lines(&cluster, &health) {
            push_line(&mut out, l);
        }
        out["health"] = health.into_iter().next().unwrap_or(Value::Null);
        out["cluster"] = cluster;
        out
    }

    fn after_reads(&self, out: &mut Value, any_read: bool) {
        let lookup = self
            .session
            .get("auth/token/lookup-self")
            .and_then(|r| expect(r, "token lookup"));
        let (token, shown) = match lookup {
            Ok(r) => {
                let mut doc = r.json().unwrap_or(Value::Null);
                // Only what is safe to show: never "id" (the token itself).
                let shown = json!({
                    "valid": true,
                    "display_name": doc["data"]["display_name"],
                    "policies": doc["data"]["policies"],
                    "ttl": doc["data"]["ttl"],
                    "expire_time": doc["data"]["expire_time"],
                });
                zeroize_json(&mut doc);
                let text = format!(
                    "valid ({}, policies {})",
                    shown["display_name"].as_str().unwrap_or("?"),
                    shown["policies"]
                );
                (shown, line("token", text, None))
            }
            // A least-privilege token (no default policy) may not look itself
            // up: when it can read the secret, it works; it just cannot be
            // inspected (not a problem: the read says whether it works). A
            // bad token is refused both.
            Err(f) if f.error.code_name() == "ST_AUTH" && any_read => {
                let reason = "cannot be inspected (permission denied on auth/token/lookup-self)";
                let shown = json!({ "valid": null, "inspectable": false, "reason": reason });
                (shown, line("token", reason, None))
            }
            Err(f) => {
                let l = failed_line("token", "INVALID", "token", &f.error);
                (json!({ "valid": false, "error": f.error.to_json() }), l)
            }
        };
        out["token"] = token;
        let kv = self.kv.describe();
        // The KV version goes with the head lines (secret, url, auth,
        // namespace), before the nodes'.
        if let Some(lines) = out["lines"].as_array_mut() {
            let head = lines
                .iter()
                .take_while(|l| {
                    matches!(
                        l["label"].as_str(),
                        Some("secret" | "url" | "auth" | "namespace")
                    )
                })
                .count();
            lines.insert(head, line("kv", &kv, None));
        }
        push_line(out, shown);
        out["kv_version"] = json!(kv);
    }
}

/// The doctor's lines of the nodes' health: one per node for a cluster
/// (one node down is not a problem while another serves), else one.
fn health_lines(cluster: &Value, health: &[Value]) -> Vec<Value> {
    let error = |e: &Value| {
        format!(
            "{}: {}",
            e["code"].as_str().unwrap_or("ST_INTERNAL"),
            e["message"].as_str().unwrap_or_default()
        )
    };
    let nodes = cluster["nodes"].as_array().filter(|n| n.len() > 1);
    let Some(nodes) = nodes else {
        let Some(h) = health.first() else {
            return Vec::new();
        };
        return vec![match (h.get("error"), h["supported"].as_bool()) {
            (Some(e), _) => line(
                "health",
                format!("unknown ({})", error(e)),
                Some(format!("health: {}", error(e))),
            ),
            (None, Some(false)) => line(
                "health",
                "not reported by this server (no sys/health)",
                None,
            ),
            _ => line(
                "health",
                format!(
                    "HTTP {}, sealed: {}, version {}",
                    h["status"],
                    h["sealed"],
                    h["version"].as_str().unwrap_or("?")
                ),
                None,
            ),
        }];
    };
    let mut out: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let h = &n["health"];
            let state = match h.get("error") {
                Some(e) => format!("DOWN ({})", error(e)),
                None => format!(
                    "{}, HTTP {}, sealed: {}",
                    n["role"].as_str().unwrap_or("?"),
                    h["status"],
                    h["sealed"]
                ),
            };
            let last = if n["answered_last"] == true {
                " (answered last)"
            } else {
                ""
            };
            line(
                "node",
                format!("{}: {state}{last}", n["url"].as_str().unwrap_or("?")),
                None,
            )
        })
        .collect();
    if !nodes.iter().any(|n| n["health"]["sealed"] == false) {
        out.push(line(
            "cluster",
            "no node serves",
            Some("no node of the cluster serves".to_owned()),
        ));
    }
    out
}

#[cfg(test)]
mod tests;

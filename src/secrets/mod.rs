//! The secrets manager: a chain of providers checked in priority order
//! (environment > mounted files > the secrets file > AWS > GCP > Azure >
//! Vault),
//! SimpleTuner's `SecretsManager`.
//!
//! Result rules of [`SecretsManager::get`]: the first provider that has the key
//! answers. A provider that fails (unreadable file, network, auth) is skipped
//! and the chain goes on; the failure is remembered and shown by
//! [`SecretsManager::providers`]. When no provider has the key, the answer is
//! "absent" (`Ok(None)`) only if every provider said so; otherwise it is the
//! first failure, its message naming the provider, because "absent" would hide
//! a broken provider.
//!
//! A value `st://KEY` in the environment or the secrets file is a
//! reference, resolved through the providers after the one holding it
//! (`references`).
//!
//! Caching is the providers' own: the manager asks every provider on every
//! get. The environment is read live (it always wins, even over a value a
//! later provider cached); the file provider serves its parsed snapshot until
//! the file changes; the remote providers keep their whole secret in a
//! `SecretCache`, values for `cache_ttl` and "absent" for `negative_ttl` (see
//! `remote`).
//!
//! Where each submodule stands: the module map in `src/lib.rs`.

pub(crate) mod aws;
pub(crate) mod aws_identity;
pub(crate) mod azure;
mod chain;
pub(crate) mod config;
pub(crate) mod credential;
pub(crate) mod env;
mod events;
pub mod exchange;
pub(crate) mod file;
pub(crate) mod gcp;
pub mod lifetime;
pub(crate) mod mounted;
pub(crate) mod node;
pub mod provenance;
pub(crate) mod provider;
mod references;
pub(crate) mod remote;
pub(crate) mod subjects;
pub(crate) mod transport;
pub(crate) mod vault;

pub use crate::sys::memory_backed;
pub use crate::sys::secmem::{secret_memory, SecretMemory};
pub use aws::{Aws, AwsCredentialChain, AwsCredentials, AwsProvider, AwsSettings};
pub use azure::{Azure, AzureProvider, AzureSettings};
pub use config::{ManagerConfig, ProviderKind};
pub use env::EnvProvider;
pub use events::{ChangeEvent, Listener, WATCH_INTERVAL};
pub use file::{yaml_documents, FileLocation, FileProvider, FileSettings};
pub use gcp::{Gcp, GcpProvider, GcpSettings};
pub use mounted::{MountedProvider, MountedSettings};
pub use node::status::{node_cache_clear, node_cache_status, NodeCacheStatus};
pub use provenance::{Provenance, ProvenanceSetting};
pub use provider::{
    ends_reference_key, normalize_key, preferred_key, reference, ChangeSink, Check, KeyChange,
    Provider, ProviderStatus, Read, Version, REFERENCE_SCHEME,
};
pub use remote::kit::{Backend, Configured, Kit};
pub use remote::rotation::Versions;
pub use remote::source::{Fetch, RemoteSource};
pub use transport::meter;
pub use transport::{RemoteSettings, Vars};
pub use vault::{
    EntityEnd, IdentityToken, KeptIdentityToken, LeasedPath, Revoked, Vault, VaultAuth, VaultJob,
    VaultProvider, VaultSecret, VaultSettings,
};

use crate::error::Error;
use crate::lazy::ResettableLazy;
use crate::secret::SecretString;
use chain::{Chain, ChainLink};
use events::Notifier;
use std::sync::Arc;

/// The Replicate API token.
pub const REPLICATE_API_TOKEN: &str = "REPLICATE_API_TOKEN";
/// The Hugging Face token.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// The secret for validating cloud webhooks (HMAC).
pub const WEBHOOK_SECRET: &str = "CLOUD_WEBHOOK_SECRET";

/// A value, the provider that answered, and the version of the remote
/// secret it comes from ([`SecretsManager::get_with_version`]). `Debug`
/// shows no value.
#[derive(Debug)]
pub struct Found {
    /// The value.
    pub value: SecretString,
    /// The provider: `env`, `file`, `aws`, `vault` (or a custom one's name).
    pub provider: &'static str,
    /// The remote secret's version, when the service says it.
    pub version: Option<Version>,
}

/// What [`SecretsManager::refresh`] read, and whether it differs from the
/// value held before.
#[derive(Debug)]
pub struct Refreshed {
    /// The value read now, its provider and version.
    pub found: Found,
    /// It differs from what would have been served before (`true` when
    /// nothing was held).
    pub changed: bool,
}

/// One provider's answer for a key, as the doctor reports it (never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// The provider.
    pub provider: &'static str,
    /// `Ok(Some(n))`: has the key, `n` bytes long; `Ok(None)`: absent.
    pub outcome: Result<Option<usize>, Error>,
}

/// A provider's status with the last failure seen by the manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    /// The provider's own status.
    pub status: ProviderStatus,
    /// The last failure of a lookup (cleared by a successful one).
    pub last_error: Option<Error>,
}

/// A chain of providers. Thread-safe; share it behind an `Arc`.
pub struct SecretsManager {
    /// The providers, in order, and their listeners.
    chain: Chain,
    /// The built-in file provider, when the chain has one: saves and deletes
    /// go to it.
    file: Option<Arc<FileProvider>>,
    config: ManagerConfig,
    /// What this manager used, when it records it (`provenance`).
    provenance: Option<Provenance>,
}

impl std::fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.chain.links.iter().map(|l| l.provider.name()).collect();
        f.debug_struct("SecretsManager")
            .field("chain", &names)
            .finish_non_exhaustive()
    }
}

/// The remote provider `kind` (`aws`, `gcp`, `azure`, `vault`, `exchange`:
/// every kind of [`ProviderKind::ALL`] but `env`, `mounted` and `file`) as
/// `config` configures it, reading `vars`; `None` for a kind that is not
/// remote. The one list of remote providers: a new backend is its module,
/// its [`Backend`] and its line here.
pub fn remote_provider(
    kind: ProviderKind,
    config: &ManagerConfig,
    vars: Vars,
) -> Option<Arc<dyn Provider>> {
    let remote = &config.remote;
    Some(match kind {
        ProviderKind::Aws => Arc::new(AwsProvider::new(&config.aws, remote, vars)),
        ProviderKind::Gcp => Arc::new(GcpProvider::new(&config.gcp, remote, vars)),
        ProviderKind::Azure => Arc::new(AzureProvider::new(&config.azure, remote, vars)),
        ProviderKind::Vault => Arc::new(VaultProvider::new(&config.vault, remote, vars)),
        ProviderKind::Exchange => Arc::new(exchange::ExchangeProvider::new(
            &exchange::ExchangeConfig {
                exchanges: config.exchanges.clone(),
                mints: Arc::new(subjects::ChainMints::new(&config.vault)),
            },
            remote,
            vars,
        )),
        ProviderKind::Env | ProviderKind::Mounted | ProviderKind::File => return None,
    })
}

impl SecretsManager {
    /// A manager with the chain `config.providers`. Without a home directory
    /// (and no `file_path`), the file provider stays in the chain, unavailable,
    /// saying why; the other providers work.
    ///
    /// # Errors
    /// Only a provenance salt file that cannot be read or is too short
    /// (`SIMPLETUNER_PROVENANCE_SALT_FILE`): a provider whose configuration
    /// is invalid (no region, an unreadable CA file) reports it on every
    /// lookup and in its status, and the rest of the chain works.
    pub fn new(config: ManagerConfig) -> Result<SecretsManager, Error> {
        SecretsManager::with_environment(config, Vars::from_process())
    }

    /// Like [`new`](Self::new), with the remote providers reading `vars`
    /// instead of the process environment (tests, embedding).
    pub fn with_environment(config: ManagerConfig, vars: Vars) -> Result<SecretsManager, Error> {
        let provenance = provenance::from_settings(&config.provenance, &vars)?;
        let mut file = None;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for kind in &config.providers {
            match kind {
                ProviderKind::Env => {
                    providers.push(Arc::new(EnvProvider::new(config.env_prefix.clone())))
                }
                ProviderKind::Mounted => {
                    providers.push(MountedProvider::new(&config.mounted, config.file.max_size))
                }
                ProviderKind::File => {
                    let f = Arc::new(FileProvider::from_settings(&config.file));
                    file = Some(Arc::clone(&f));
                    providers.push(f);
                }
                remote => providers.extend(remote_provider(*remote, &config, vars.clone())),
            }
        }
        let mut manager = SecretsManager::with_providers(config, providers);
        manager.file = file;
        manager.provenance = provenance;
        Ok(manager)
    }

    /// A manager over any providers, in priority order (for providers of your
    /// own). Saving and deleting need the built-in file provider, so a manager
    /// made here cannot save.
    pub fn with_providers(config: ManagerConfig, providers: Vec<Arc<dyn Provider>>) -> Self {
        let notifier = Notifier::new(providers.clone(), config.references);
        let links = providers
            .into_iter()
            .enumerate()
            .map(|(index, provider)| ChainLink::new(provider, index))
            .collect();
        SecretsManager {
            chain: Chain {
                links,
                references: config.references,
                notifier,
            },
            file: None,
            config,
            provenance: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The value of `key` from the first provider that has it; `Ok(None)` when
    /// every provider answered "absent". See the module documentation.
    pub fn get(&self, key: &str) -> Result<Option<SecretString>, Error> {
        Ok(self.get_with_source(key)?.map(|(value, _)| value))
    }

    /// Like [`get`](Self::get), also naming the provider that answered.
    pub fn get_with_source(
        &self,
        key: &str,
    ) -> Result<Option<(SecretString, &'static str)>, Error> {
        if self.provenance.is_some() {
            return Ok(self.get_with_version(key)?.map(|f| (f.value, f.provider)));
        }
        check_key(key)?;
        self.chain
            .first_in_chain(0, key, |link, key| link.lookup(key))
    }

    /// Like [`get_with_source`](Self::get_with_source), also giving the
    /// version of the remote secret the value comes from (AWS `VersionId`
    /// and stages, the Vault KV v2 version; `None` for the environment, the
    /// file, and a KV v1 secret), so a run can record which version it
    /// used, never the value.
    pub fn get_with_version(&self, key: &str) -> Result<Option<Found>, Error> {
        check_key(key)?;
        let found = self
            .chain
            .first_in_chain(0, key, |link, key| link.read(key, Read::Cached))?;
        let found = found.map(|((value, version), provider)| Found {
            value,
            provider,
            version,
        });
        self.used(key, found.as_ref());
        Ok(found)
    }

    /// Records `found` as used for `key` when this manager keeps its
    /// provenance.
    fn used(&self, key: &str, found: Option<&Found>) {
        if let (Some(p), Some(f)) = (&self.provenance, found) {
            p.record(key, f.provider, &f.value, f.version.as_ref());
        }
    }

    /// Which version of each secret this manager used, and when, with a
    /// fingerprint of each value (never the value); `None` when it does
    /// not record it (the config key `provenance`,
    /// `SIMPLETUNER_PROVENANCE_FILE`).
    pub fn provenance(&self) -> Option<Vec<provenance::Used>> {
        self.provenance.as_ref().map(Provenance::used)
    }

    /// The remote providers' counters, as JSON: per provider, requests by
    /// operation, method and outcome with their network time, retries,
    /// failovers, stale values served, refreshes ahead, logins, renewals,
    /// leases issued, renewed and revoked. They are the process's (several
    /// managers in one process share them), and never name a key or a value.
    pub fn metrics_json(&self) -> String {
        transport::meter::to_json(&transport::meter::snapshot()).to_string()
    }

    /// [`provenance`](Self::provenance) as a JSON array (`None`: not recorded).
    pub fn provenance_json(&self) -> Option<String> {
        self.provenance.as_ref().map(|p| p.to_json().to_string())
    }

    /// "This value failed me": `key` read again now, whatever the caches
    /// say, through the chain in order (the environment is looked at, the
    /// file re-read, a remote secret fetched), and whether the value differs
    /// from what this process would have served before. A remote secret is
    /// fetched at most once per `refresh_min_interval`, single-flight with
    /// its gets: a storm of callers sends one request, the others get the
    /// value held. `Ok(None)` when no provider has the key.
    pub fn refresh(&self, key: &str) -> Result<Option<Refreshed>, Error> {
        self.read_again(key, None)
    }

    /// "This value failed me": the caller's login with `key`'s value of
    /// `version` (as [`get_with_version`](Self::get_with_version) gave
    /// it; `None`: the version held) was refused. As [`refresh`](Self::refresh),
    /// except for a remote secret whose version in force is the one that
    /// failed: the version beside it is held instead (AWS `AWSPENDING`,
    /// then `AWSPREVIOUS`; the KV v2 version before), until the service's
    /// current version is another (a rotation's window: the credential
    /// changed before `AWSCURRENT` moved). A leased credential of the
    /// version that failed is issued anew, not renewed. When the value held
    /// is already of another version (a rank of the node, or a thread of
    /// this process, reported first), it answers without a request. The answer says
    /// which version is now held ([`Version::instead_of`] names the one it
    /// stands in for); the change event says it too.
    pub fn report_failure(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Refreshed>, Error> {
        check_key(key)?;
        if version.is_some_and(str::is_empty) {
            return Err(Error::InvalidArgument(
                "report_failure: the version is empty (pass none for the version held)".into(),
            ));
        }
        let held = self
            .chain
            .first_in_chain(0, key, |link, key| link.read(key, Read::Held))
            .ok()
            .flatten()
            .and_then(|((_, v), _)| v.map(|v| v.id));
        let failed = version.map(str::to_owned).or(held);
        self.read_again(key, failed.as_deref())
    }

    /// `key` read again now through the chain, `failed` the version
    /// reported failed, if any: [`refresh`](Self::refresh).
    fn read_again(&self, key: &str, failed: Option<&str>) -> Result<Option<Refreshed>, Error> {
        check_key(key)?;
        let before = self.chain.peek_resolved(0, key);
        let fresh = Read::Fresh {
            min_interval: self.config.remote.refresh_min_interval,
            failed,
        };
        let found = self
            .chain
            .first_in_chain(0, key, |link, key| link.read(key, fresh))?;
        if let Some(((value, version), provider)) = &found {
            if let Some(p) = &self.provenance {
                p.record(key, provider, value, version.as_ref());
            }
        }
        Ok(found.map(|((value, version), provider)| Refreshed {
            changed: before
                .as_ref()
                .is_none_or(|old| old.expose_bytes() != value.expose_bytes()),
            found: Found {
                value,
                provider,
                version,
            },
        }))
    }

    /// Calls `listener` whenever the value this manager serves for a key
    /// changes, with the key, the provider and the new version (never the
    /// value): see [`ChangeEvent`]. Changes are noticed when a provider
    /// reads its source again (a remote secret refreshed ahead, fetched
    /// after its TTL or by [`refresh`](Self::refresh); the file re-read),
    /// and, while a listener is registered, by a watch on the refresher's
    /// thread every [`WATCH_INTERVAL`] (remote secrets already read are
    /// fetched at their soft deadline; the file is checked), so a process
    /// that does not get hears of a rotation too. The first read of a
    /// source is no change; the environment is not watched.
    ///
    /// `listener` runs on the thread that noticed (a caller of `get` or
    /// `refresh`, or the refresher's), with no lock of the library held; it
    /// may call the manager. A panic in it is caught. Returns the id for
    /// [`remove_listener`](Self::remove_listener).
    pub fn on_change(&self, listener: impl Fn(&ChangeEvent) + Send + Sync + 'static) -> u64 {
        self.chain.notifier.add(Arc::new(listener))
    }

    /// Unregisters listener `id`: no call starts after this returns (one
    /// running on another thread ends on its own; the listener is dropped
    /// when it has). `false` when no such listener is registered.
    pub fn remove_listener(&self, id: u64) -> bool {
        self.chain.notifier.remove(id)
    }

    /// The value of the reference `st://target` held by the provider named
    /// `held_by`, outside this manager's own reading of it (a variable
    /// `st-secrets run` inherits is the environment's, whatever the
    /// manager's `env_prefix`): `target` looked up in the providers after
    /// that one (`references`); the whole chain when none has that name.
    /// Remembered for redaction under `target`, as a get is.
    ///
    /// # Errors
    /// As a get of `target`; [`Error::InvalidArgument`] for an empty key.
    pub fn resolve_reference(
        &self,
        held_by: &str,
        target: &str,
    ) -> Result<Option<SecretString>, Error> {
        check_key(target)?;
        self.chain.resolve_from(held_by, target)
    }

    /// Every provider's answer for `key` (lengths only), for diagnosis.
    pub fn trace(&self, key: &str) -> Result<Vec<ProviderAnswer>, Error> {
        check_key(key)?;
        Ok(self
            .chain
            .links
            .iter()
            .map(|link| ProviderAnswer {
                provider: link.provider.name(),
                outcome: link.lookup(key).map(|v| v.map(|v| v.len())),
            })
            .collect())
    }

    /// The keys the file and remote providers hold secrets under, each with
    /// the provider holding it, in chain order; a key two providers hold (as
    /// given or normalized alike) is listed once, for the first. The
    /// environment lists none. Remote providers fetch their secret (cached).
    ///
    /// # Errors
    /// The first provider that cannot list its keys (with its name), since an
    /// incomplete list would silently start a command without some secrets.
    pub fn keys(&self) -> Result<Vec<(String, &'static str)>, Error> {
        let mut seen = std::collections::HashSet::new();
        let mut out = self.all_keys()?;
        out.retain(|(key, _)| seen.insert(provider::normalize_key(key)));
        Ok(out)
    }

    /// Every key of every file and remote provider, each with its provider,
    /// in chain order and each provider's sorted order: [`keys`](Self::keys)
    /// before keys normalizing alike are merged (the tool names those
    /// collisions).
    ///
    /// # Errors
    /// As [`keys`](Self::keys).
    pub fn all_keys(&self) -> Result<Vec<(String, &'static str)>, Error> {
        let mut out = Vec::new();
        for link in &self.chain.links {
            let name = link.provider.name();
            let keys = link
                .provider
                .keys()
                .map_err(|e| e.context(format!("provider '{name}'")))?;
            out.extend(keys.into_iter().map(|key| (key, name)));
        }
        Ok(out)
    }

    /// Every value the providers hold now, each with its key: every key
    /// the file and remote providers list (remote secrets fetched, as by
    /// [`keys`](Self::keys)), asked of every provider (a key's value in the
    /// environment, the file and a remote secret are three values), and
    /// SimpleTuner's well-known keys ([`HF_TOKEN`], [`REPLICATE_API_TOKEN`],
    /// [`WEBHOOK_SECRET`]). What the leak guard looks for beyond the values
    /// served; never logged.
    ///
    /// # Errors
    /// As [`keys`](Self::keys); a provider failing on one key.
    pub fn held_values(&self) -> Result<Vec<(String, SecretString)>, Error> {
        let mut keys: Vec<String> = self.all_keys()?.into_iter().map(|(k, _)| k).collect();
        keys.extend([HF_TOKEN, REPLICATE_API_TOKEN, WEBHOOK_SECRET].map(String::from));
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        let mut out: Vec<(String, SecretString)> = Vec::new();
        for key in keys {
            for link in &self.chain.links {
                let name = link.provider.name();
                let found = link
                    .lookup(&key)
                    .map_err(|e| e.context(format!("provider '{name}'")))?;
                if let Some(value) = found {
                    if matches!(self.chain.reference_of(link, &key, &value), Ok(Some(_))) {
                        continue; // a reference names a key; it is no secret
                    }
                    if !out
                        .iter()
                        .any(|(_, v)| v.expose_bytes() == value.expose_bytes())
                    {
                        out.push((key.clone(), value));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The first provider holding `key` with a value that is not a secret
    /// (an object, a list or null), which gets answer as absent; looks only
    /// at what the providers have already read.
    pub fn non_secret_holder(&self, key: &str) -> Option<&'static str> {
        self.chain
            .links
            .iter()
            .find(|l| l.provider.holds_non_secret(key))
            .map(|l| l.provider.name())
    }

    /// The providers set up in part but not used (a Vault address with no
    /// way to log in), each with why: what a "not found" names beside the
    /// providers it looked in.
    pub fn set_up_in_part(&self) -> Vec<(&'static str, String)> {
        self.chain
            .links
            .iter()
            .filter_map(|l| Some((l.provider.name(), l.provider.set_up_in_part()?)))
            .collect()
    }

    /// [`set_up_in_part`](Self::set_up_in_part) as the text a "not found"
    /// message ends with (`; vault is set up in part and not used: ...`),
    /// empty when there is none.
    pub fn not_used_note(&self) -> String {
        self.set_up_in_part()
            .into_iter()
            .map(|(name, why)| format!("; {name} is set up in part and not used: {why}"))
            .collect()
    }

    /// Saves `key` to the secrets file (created with mode 0600 when needed).
    /// A get right after sees the new value, unless the environment holds it.
    ///
    /// # Errors
    /// [`Error::ProviderUnavailable`] when the chain has no file provider;
    /// [`Error::Parse`] when the file is malformed (it is left untouched);
    /// [`Error::Io`] / [`Error::Permission`] when it cannot be written.
    pub fn set(&self, key: &str, value: &str) -> Result<(), Error> {
        check_key(key)?;
        provider::check_text("value", value)?;
        self.saving_file("save")?.save(key, value)
    }

    /// Deletes `key` from the secrets file (the key as given, else its
    /// normalized form, as a lookup would read it); `Ok(false)` when absent.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        self.saving_file("delete")?.delete(key)
    }

    /// The secrets file this manager reads and writes, if its chain has one.
    pub fn file_path(&self) -> Option<std::path::PathBuf> {
        self.file.as_ref().and_then(|f| f.path())
    }

    /// The built-in file provider's [`generation`](FileProvider::generation)
    /// (`None` when the chain has none): unchanged means a file answer is
    /// unchanged.
    pub fn file_generation(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.generation())
    }

    /// The built-in file provider saves and deletes go to, if the chain has one.
    pub fn file_provider(&self) -> Option<Arc<FileProvider>> {
        self.file.clone()
    }

    /// The providers of the chain, in priority order.
    pub fn chain(&self) -> Vec<Arc<dyn Provider>> {
        self.chain
            .links
            .iter()
            .map(|l| Arc::clone(&l.provider))
            .collect()
    }

    /// Drops every cached answer: the next gets read every source again.
    pub fn clear_cache(&self) {
        for link in &self.chain.links {
            link.provider.invalidate();
        }
    }

    /// The chain, in order, with each provider's state and last failure.
    pub fn providers(&self) -> Vec<ChainEntry> {
        self.chain
            .links
            .iter()
            .map(|link| {
                let status = link.provider.status();
                let last_error = link.last_error.lock().clone().or(status.failure.clone());
                ChainEntry { status, last_error }
            })
            .collect()
    }

    /// [`providers`](Self::providers) as the JSON array of the C API:
    /// `[{"name", "available", "detail", "warnings", "last_error"}]`, where
    /// `last_error` is null or `{"code": "ST_...", "message": ...}`.
    pub fn providers_json(&self) -> String {
        self.chain_json(false)
    }

    /// The doctor's view as JSON: [`providers_json`](Self::providers_json)
    /// with each provider's live checks under `"checks"` (remote providers:
    /// credential source, caller identity, whether the secret is readable;
    /// `null` for the others). Sends requests; never shows a value.
    pub fn diagnose_json(&self) -> String {
        self.chain_json(true)
    }

    fn chain_json(&self, checks: bool) -> String {
        let list: Vec<serde_json::Value> = self
            .chain
            .links
            .iter()
            .zip(self.providers())
            .map(|(link, entry)| {
                let mut v = serde_json::json!({
                    "name": entry.status.name,
                    "available": entry.status.available,
                    "detail": entry.status.detail,
                    "warnings": entry.status.warnings,
                    "last_error": entry.last_error.map(|e| e.to_json()),
                });
                if checks {
                    v["checks"] = link.provider.diagnose().into();
                }
                v
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    fn saving_file(&self, action: &str) -> Result<&FileProvider, Error> {
        self.file.as_deref().ok_or_else(|| {
            Error::ProviderUnavailable(format!(
                "cannot {action} secrets: the provider chain has no 'file' provider"
            ))
        })
    }
}

impl Drop for SecretsManager {
    fn drop(&mut self) {
        // A background job may hold the notifier a moment longer: it calls
        // no listener after this.
        self.chain.notifier.close();
        // The job's metrics directory gets this process's last counts.
        transport::meter::flush();
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("secret key is empty".into()));
    }
    provider::check_text("key", key)
}

static DEFAULT: ResettableLazy<SecretsManager> = ResettableLazy::new();

/// The process-wide manager, configured from the environment on first use.
pub fn default_manager() -> Result<Arc<SecretsManager>, Error> {
    DEFAULT.get_or_try_init(|| SecretsManager::new(ManagerConfig::from_environment()))
}

/// Drops the process-wide manager; the next use builds it again (reading the
/// environment again). Managers already handed out keep working.
pub fn reset_default() {
    DEFAULT.reset();
}

#[cfg(test)]
mod tests;

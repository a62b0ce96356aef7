//! The exchange provider: the secrets `exchanges` names, each the
//! credential its [`Exchange`] gives, held by the one credential
//! [`Keeper`]: used until 80% of its lifetime, then exchanged again; with
//! the node cache on, one exchange per node per lifetime, the node's
//! processes reading what the one exchanging wrote (0600, memory-backed).
//! A credential the API refused (`report_failure`) is exchanged again once
//! for the node, not once per process: the keeper replaces the refused
//! value only while it is still the one held.
//!
//! Each credential is served with a version named by a fingerprint of it
//! (the first 12 hex digits of its SHA-256: it tells one credential from
//! the next, never the credential) and with its end as a lease without an
//! identifier, so that the cache holding it refetches before it ends.

use super::one::{Exchange, Token};
use super::profile::{ExchangeSettings, Profile};
use super::subject::Mints;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::Keeper;
use crate::secrets::provider::{Lease, SecretMap, Version};
use crate::secrets::remote::kit::{Backend, Configured, Kit};
use crate::secrets::remote::source::{Fetch, RemoteSource};
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The exchanges by the names of the secrets they give.
pub type ExchangeSettingsMap = BTreeMap<String, ExchangeSettings>;

/// The exchanges of `v` (the `exchanges` key's or `SIMPLETUNER_EXCHANGES`'
/// object): secret names, each an exchange's settings, checked.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the secret and the field: not an
/// object, a name that is not a secret's, an unknown field, a profile's
/// field missing or not its, no subject token source or several.
pub fn settings_map(v: &Value) -> Result<ExchangeSettingsMap, Error> {
    let entries = v.as_object().ok_or_else(|| {
        Error::InvalidArgument("must be an object of secret names, each an exchange".into())
    })?;
    let mut out = BTreeMap::new();
    for (name, one) in entries {
        if name.is_empty()
            || name.len() > 128
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidArgument(format!(
                "'{}' is not a secret's name",
                crate::error::shorten(name)
            )));
        }
        let settings: ExchangeSettings = serde_json::from_value(one.clone()).map_err(|e| {
            Error::InvalidArgument(format!(
                "'{name}': {}",
                crate::error::shorten(&e.to_string())
            ))
        })?;
        Profile::parse(&settings.profile)?.check(&settings, name)?;
        Profile::check_subject(&settings, name)?;
        out.insert(name.clone(), settings);
    }
    for (name, one) in &out {
        if let Some((id, _)) = pair_names(name, one) {
            if id == *name || out.contains_key(&id) {
                return Err(Error::InvalidArgument(format!(
                    "exchange for '{name}': access_key_id_name '{}' is another exchange's secret \
                     or its own",
                    crate::error::shorten(&id)
                )));
            }
        }
    }
    Ok(out)
}

/// What the exchange provider is configured with: the exchanges, and what
/// makes the minters of the subject tokens a service mints for each
/// exchange (`subject_vault_role`, `subject_gcp_metadata`), given by
/// whoever builds the chain.
pub struct ExchangeConfig {
    /// `exchanges`.
    pub exchanges: ExchangeSettingsMap,
    /// The minters' maker.
    pub mints: Arc<dyn Mints>,
}

impl std::fmt::Debug for ExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeConfig")
            .field("exchanges", &self.exchanges)
            .finish_non_exhaustive()
    }
}

/// The exchange provider in the chain.
pub type ExchangeProvider = RemoteSource<Exchanges>;

/// One secret's keeper, and for a key pair the names of both its secrets
/// (the access key ID's, the secret key's): the two share the keeper.
struct Kept {
    keeper: Arc<Keeper<Token>>,
    pair: Option<(String, String)>,
}

/// The configured exchanges, each with its keeper.
pub struct Exchanges {
    kept: BTreeMap<String, Kept>,
    /// The credential this process last served of each secret: the one a
    /// `report_failure` of it refers to.
    served: Mutex<HashMap<String, SecretString>>,
}

impl Exchanges {
    fn kept(&self, name: &str) -> Result<&Kept, FetchError> {
        self.kept.get(name).ok_or_else(|| {
            FetchError::permanent(Error::NotFound(format!("no exchange gives '{name}'")))
        })
    }

    /// `token` as the secret `name`'s map (both secrets of a key pair),
    /// with its version and its end.
    fn served(&self, name: &str, kept: &Kept, token: Token) -> Result<SecretMap, FetchError> {
        let token = token.0;
        let lifetime = kept
            .keeper
            .held()
            .filter(|(held, _)| held.0.expose() == token.expose())
            .map(|(_, l)| l);
        let id = fingerprint(&token);
        let mut map = SecretMap::with_capacity(2);
        match &kept.pair {
            Some((id_name, secret_name)) => {
                let (key_id, secret) = super::one::key_pair(&token).ok_or_else(|| {
                    FetchError::permanent(Error::Internal(format!(
                        "the key pair held for '{name}' is not one"
                    )))
                })?;
                map.insert(id_name.clone(), key_id.expose().to_owned());
                map.insert(secret_name.clone(), secret.expose().to_owned());
            }
            None => {
                map.insert(name.to_owned(), token.expose().to_owned());
            }
        }
        self.served.lock().insert(name.to_owned(), token);
        Ok(map
            .with_version(Some(Version {
                id,
                stages: Vec::new(),
                instead_of: None,
                leased: false,
                ends: None,
            }))
            .with_shared_lease(lifetime.map(|lifetime| Lease {
                id: SecretString::from(""),
                lifetime,
            })))
    }
}

/// For an exchange giving a key pair, the names of its two secrets: the
/// access key ID's (`access_key_id_name`, `AWS_ACCESS_KEY_ID` by default)
/// and the secret key's (the entry's own).
fn pair_names(name: &str, one: &ExchangeSettings) -> Option<(String, String)> {
    let profile = Profile::parse(&one.profile).ok()?;
    profile.pair().then(|| {
        let id = one
            .access_key_id_name
            .clone()
            .unwrap_or_else(|| "AWS_ACCESS_KEY_ID".into());
        (id, name.to_owned())
    })
}

/// The first 12 hex digits of the SHA-256 of `token`.
fn fingerprint(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose().as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl Fetch for Exchanges {
    const NAME: &'static str = "exchange";
    const ABSENT: &'static str = "no exchange gives it";
    const ONE_KEY_EACH: bool = true;
    type Secret = String;

    fn fetch(&self, name: &String) -> Result<Fetched<SecretMap>, FetchError> {
        let kept = self.kept(name)?;
        let token = kept.keeper.get()?;
        Ok(Fetched::Found(self.served(name, kept, token)?))
    }

    /// Without a value to keep, after this process served one: the value
    /// served was reported failed, and is replaced once for the node.
    fn fetch_held(
        &self,
        name: &String,
        held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        let kept = self.kept(name)?;
        let refused = match held {
            Some(_) => None,
            None => self.served.lock().get(name).cloned(),
        };
        let token = match refused {
            Some(refused) => kept.keeper.instead_of(&Token(refused))?,
            None => kept.keeper.get()?,
        };
        Ok(Fetched::Found(self.served(name, kept, token)?))
    }

    fn describe(&self, names: &[String]) -> (String, Vec<String>) {
        let each: Vec<String> = names
            .iter()
            .filter_map(|n| {
                self.kept
                    .get(n)
                    .map(|k| format!("'{n}': {}", k.keeper.describe("credential")))
            })
            .collect();
        (each.join("; "), Vec::new())
    }

    fn checks(&self, names: &[String]) -> Value {
        json!({ "exchanges": names })
    }
}

impl Backend for Exchanges {
    type Settings = ExchangeConfig;
    /// The exchanges: the configuration's, else `SIMPLETUNER_EXCHANGES`'.
    type Found = ExchangeSettingsMap;

    fn configured(
        settings: &ExchangeConfig,
        _remote: &RemoteSettings,
        vars: &Vars,
    ) -> Result<Configured<String, ExchangeSettingsMap>, Error> {
        let var = crate::secrets::transport::vars::SIMPLETUNER_EXCHANGES;
        let exchanges = match vars.get(var).filter(|_| settings.exchanges.is_empty()) {
            Some(text) => {
                let doc: Value = serde_json::from_str(text).map_err(|e| {
                    Error::InvalidArgument(format!(
                        "{var} is not JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                settings_map(&doc)
                    .map_err(|e| Error::InvalidArgument(format!("{var}: {}", e.message())))?
            }
            None => settings.exchanges.clone(),
        };
        Ok(if exchanges.is_empty() {
            Configured::No {
                why: Error::ProviderUnavailable(format!(
                    "no token exchange is configured: set exchanges or {var}"
                )),
                in_part: false,
            }
        } else {
            Configured::Yes {
                names: exchanges
                    .iter()
                    .flat_map(|(name, one)| {
                        let id = pair_names(name, one).map(|(id, _)| id);
                        id.into_iter().chain(std::iter::once(name.clone()))
                    })
                    .collect(),
                found: exchanges,
            }
        })
    }

    fn connect(
        settings: &ExchangeConfig,
        found: ExchangeSettingsMap,
        kit: &Kit<'_>,
    ) -> Result<Self, Error> {
        let mut kept = BTreeMap::new();
        for (name, one) in &found {
            let exchange =
                Exchange::new(name, one, kit.remote, settings.mints.as_ref(), &kit.vars)?;
            let slot = kit
                .slot(&format!("exchange-{name}"), &[])
                .map(|s| (s, kit.remote.clone()));
            let keeper = Keeper::new("exchange", Box::new(exchange), slot);
            let pair = pair_names(name, one);
            if let Some((id, _)) = &pair {
                kept.insert(
                    id.clone(),
                    Kept {
                        keeper: Arc::clone(&keeper),
                        pair: pair.clone(),
                    },
                );
            }
            kept.insert(name.clone(), Kept { keeper, pair });
        }
        Ok(Exchanges {
            kept,
            served: Mutex::new(HashMap::new()),
        })
    }
}

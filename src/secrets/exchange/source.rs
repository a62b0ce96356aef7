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
use super::profile::ExchangeSettings;
use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::provider::{Lease, SecretMap, Version};
use crate::secrets::remote::credential::Keeper;
use crate::secrets::remote::kit::{Backend, Configured, Kit};
use crate::secrets::remote::source::{Fetch, RemoteSource};
use crate::secrets::remote::{FetchError, Fetched, RemoteSettings, Vars};
use crate::sys::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The exchanges by the names of the secrets they give.
pub type ExchangeSettingsMap = BTreeMap<String, ExchangeSettings>;

/// The exchange provider in the chain.
pub type ExchangeProvider = RemoteSource<Exchanges>;

/// The configured exchanges, each with its keeper.
pub struct Exchanges {
    kept: BTreeMap<String, Arc<Keeper<Token>>>,
    /// The credential this process last served of each secret: the one a
    /// `report_failure` of it refers to.
    served: Mutex<HashMap<String, SecretString>>,
}

impl Exchanges {
    fn keeper(&self, name: &str) -> Result<&Arc<Keeper<Token>>, FetchError> {
        self.kept.get(name).ok_or_else(|| {
            FetchError::permanent(Error::NotFound(format!("no exchange gives '{name}'")))
        })
    }

    /// `token` as the secret `name`'s map, with its version and its end.
    fn served(&self, name: &str, keeper: &Keeper<Token>, token: Token) -> SecretMap {
        let token = token.0;
        let lifetime = keeper
            .held()
            .filter(|(held, _)| held.0.expose() == token.expose())
            .map(|(_, l)| l);
        let id = fingerprint(&token);
        let mut map = SecretMap::with_capacity(1);
        map.insert(name.to_owned(), token.expose().to_owned());
        self.served.lock().insert(name.to_owned(), token);
        map.with_version(Some(Version {
            id,
            stages: Vec::new(),
            instead_of: None,
            leased: false,
            ends: None,
        }))
        .with_shared_lease(lifetime.map(|lifetime| Lease {
            id: SecretString::from(""),
            lifetime,
        }))
    }
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
        let keeper = self.keeper(name)?;
        let token = keeper.get()?;
        Ok(Fetched::Found(self.served(name, keeper, token)))
    }

    /// Without a value to keep, after this process served one: the value
    /// served was reported failed, and is replaced once for the node.
    fn fetch_held(
        &self,
        name: &String,
        held: Option<&SecretMap>,
    ) -> Result<Fetched<SecretMap>, FetchError> {
        let keeper = self.keeper(name)?;
        let refused = match held {
            Some(_) => None,
            None => self.served.lock().get(name).cloned(),
        };
        let token = match refused {
            Some(refused) => keeper.instead_of(&Token(refused))?,
            None => keeper.get()?,
        };
        Ok(Fetched::Found(self.served(name, keeper, token)))
    }

    fn describe(&self, names: &[String]) -> (String, Vec<String>) {
        let each: Vec<String> = names
            .iter()
            .filter_map(|n| {
                self.kept
                    .get(n)
                    .map(|k| format!("'{n}': {}", k.describe("credential")))
            })
            .collect();
        (each.join("; "), Vec::new())
    }

    fn checks(&self, names: &[String]) -> Value {
        json!({ "exchanges": names })
    }
}

impl Backend for Exchanges {
    type Settings = ExchangeSettingsMap;
    type Found = ();

    fn configured(
        settings: &ExchangeSettingsMap,
        _remote: &RemoteSettings,
        _vars: &Vars,
    ) -> Result<Configured<String, ()>, Error> {
        Ok(if settings.is_empty() {
            Configured::No {
                why: Error::ProviderUnavailable(
                    "no token exchange is configured: set exchanges".into(),
                ),
                in_part: false,
            }
        } else {
            Configured::Yes {
                names: settings.keys().cloned().collect(),
                found: (),
            }
        })
    }

    fn connect(settings: &ExchangeSettingsMap, _found: (), kit: &Kit<'_>) -> Result<Self, Error> {
        let mut kept = BTreeMap::new();
        for (name, one) in settings {
            let exchange = Exchange::new(name, one, kit.remote)?;
            let slot = kit
                .slot(&format!("exchange-{name}"), &[])
                .map(|s| (s, kit.remote.clone()));
            kept.insert(
                name.clone(),
                Keeper::new("exchange", Box::new(exchange), slot),
            );
        }
        Ok(Exchanges {
            kept,
            served: Mutex::new(HashMap::new()),
        })
    }
}

//! The files of a token exchange's credential where its vendor's SDK reads
//! one (W&B's credentials file, Anthropic's profile), and a manager as the
//! source of a job's files ([`ManagerValues`]).

use super::conventions::{anthropic_exchanged, wandb_exchanged, Delivery};
use super::write::{JobValues, Wanted};
use crate::error::{printable, Error};
use crate::secret::SecretString;
use crate::secrets::config::ManagerConfig;
use crate::secrets::exchange::{ExchangeSettings, Profile, VendorFile};
use crate::secrets::provider::normalize_key;
use crate::secrets::transport::Vars;
use crate::secrets::SecretsManager;
use std::time::SystemTime;

/// The exchange giving `key` in `config` (the secret an entry names, or the
/// access key ID of one giving a key pair), if one does.
pub fn exchange_of<'a>(config: &'a ManagerConfig, key: &str) -> Option<&'a ExchangeSettings> {
    let key = normalize_key(key);
    config.exchanges.iter().find_map(|(name, one)| {
        let id = Profile::parse(&one.profile)
            .ok()
            .filter(|p| p.pair())
            .map(|_| {
                one.access_key_id_name
                    .as_deref()
                    .unwrap_or("AWS_ACCESS_KEY_ID")
            });
        (normalize_key(name) == key || id.is_some_and(|id| normalize_key(id) == key)).then_some(one)
    })
}

/// The file for variable `var` when its key `key` is a W&B or Anthropic
/// exchange's credential in `config` (`vars`: the environment the subject
/// token's file is named in); `None` for any other key.
///
/// # Errors
/// [`Error::InvalidArgument`] for a W&B credential whose subject token is
/// minted for each exchange (OpenBao's, GCP's): wandb reads its
/// credentials file only beside an identity token file.
pub fn exchanged_delivery(
    config: &ManagerConfig,
    var: &str,
    key: &str,
    vars: &Vars,
) -> Result<Option<Delivery>, Error> {
    let Some(exchange) = exchange_of(config, key) else {
        return Ok(None);
    };
    Ok(
        match Profile::parse(&exchange.profile)?.vendor_file(exchange, vars) {
            Some(VendorFile::Wandb {
                base_url,
                subject_file,
            }) => {
                let Some(subject) = subject_file else {
                    return Err(Error::InvalidArgument(format!(
                        "{var} (secret '{}') is a W&B credential, which wandb reads from its \
                     credentials file only beside an identity token file; its subject token is \
                     minted for each exchange and has none: name the subject with \
                     subject_token_file or subject_job_token, or read the key through the library",
                        printable(key)
                    )));
                };
                Some(wandb_exchanged(var, &base_url, &subject))
            }
            Some(VendorFile::Anthropic {
                base_url,
                organization_id,
            }) => Some(anthropic_exchanged(var, &base_url, &organization_id)),
            None => None,
        },
    )
}

/// A manager as the source of a job's files: its chain's values, its
/// exchanges, and the process's environment.
pub struct ManagerValues<'a> {
    manager: &'a SecretsManager,
    vars: Vars,
}

impl<'a> ManagerValues<'a> {
    /// `manager`'s values, the files planned in the process's environment.
    pub fn new(manager: &'a SecretsManager) -> ManagerValues<'a> {
        ManagerValues {
            manager,
            vars: Vars::from_process(),
        }
    }
}

impl JobValues for ManagerValues<'_> {
    fn value(&self, key: &str) -> Result<Option<(SecretString, Option<SystemTime>)>, Error> {
        Ok(self
            .manager
            .get_with_version(key)?
            .map(|f| (f.value, f.version.and_then(|v| v.ends))))
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn exchanged(&self, w: &Wanted) -> Result<Option<Delivery>, Error> {
        exchanged_delivery(self.manager.config(), &w.var, &w.key, &self.vars)
    }

    fn short_lived(&self, key: &str) -> bool {
        exchange_of(self.manager.config(), key).is_some()
    }
}

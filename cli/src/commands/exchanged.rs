//! The files of `run`'s plan, and `run --as-files` for a key a token
//! exchange gives, where its vendor's SDK reads one: W&B's credentials file
//! (beside the subject token's file, which wandb needs to use it),
//! Anthropic's SDK profile for a token kept current elsewhere. The credential is read again with its end (the
//! chain's cache serves it; nothing is exchanged again).

use super::export::{Resolved, Var};
use crate::outcome::{usage, CliError};
use st_secrets::secrets::delivery::{self, Delivery};
use st_secrets::secrets::{exchange::Profile, normalize_key, Vars};
use st_secrets::SecretString;

/// A file of the run with what goes into it: a `--file`'s, or one of
/// `--as-files`'s plan.
pub(super) struct Planned {
    pub(super) label: String,
    pub(super) delivery: Delivery,
    pub(super) keys: Vec<String>,
    pub(super) values: Vec<SecretString>,
    /// When the values end, for a file that says it (W&B's, Anthropic's).
    pub(super) ends: Option<std::time::SystemTime>,
}

/// The file of secret variable `v` when its key is a W&B or Anthropic
/// exchange's; `None` for any other key.
pub(super) fn plan(resolved: &Resolved, v: &Var) -> Result<Option<Planned>, CliError> {
    let config = resolved.manager.config();
    let Some((_, exchange)) = config
        .exchanges
        .iter()
        .find(|(k, _)| normalize_key(k) == normalize_key(&v.key))
    else {
        return Ok(None);
    };
    let profile = Profile::parse(&exchange.profile)?;
    let endpoint = profile.endpoint(exchange);
    let (label, delivery) = match profile {
        Profile::Wandb => {
            let Some(subject) = exchange.subject_file(&Vars::from_process()) else {
                return Err(usage(format!(
                    "--as-files: {} (secret '{}') is a W&B credential, which wandb reads from \
                     its credentials file only beside an identity token file; its subject token \
                     is minted for each exchange and has none: name the subject with \
                     subject_token_file or subject_job_token, or read the key through the library",
                    v.name,
                    crate::io::printable(&v.key)
                )));
            };
            (
                "WANDB_CREDENTIALS_FILE",
                delivery::wandb_exchanged(&v.name, &endpoint, &subject),
            )
        }
        Profile::Anthropic => (
            "ANTHROPIC_CONFIG_DIR",
            delivery::anthropic_exchanged(
                &v.name,
                &endpoint,
                exchange.organization_id.as_deref().unwrap_or_default(),
            ),
        ),
        _ => return Ok(None),
    };
    let Some(found) = resolved.manager.get_with_version(&v.key)? else {
        return Ok(None);
    };
    Ok(Some(Planned {
        label: label.into(),
        delivery,
        keys: vec![v.key.clone()],
        ends: found.version.and_then(|version| version.ends),
        values: vec![found.value],
    }))
}

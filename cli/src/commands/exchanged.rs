//! The files of `run`'s plan, and `run --as-files` for a key a token
//! exchange gives, where its vendor's SDK reads one: W&B's credentials file
//! (beside the subject token's file, which wandb needs to use it),
//! Anthropic's SDK profile for a token kept current elsewhere. The credential is read again with its end (the
//! chain's cache serves it; nothing is exchanged again).

use super::export::{Resolved, Var};
use crate::outcome::{usage, CliError};
use st_secrets::job::delivery::{self, Delivery};
use st_secrets::secrets::Vars;
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
    let delivery = delivery::exchanged_delivery(config, &v.name, &v.key, &Vars::from_process())
        .map_err(|e| usage(format!("--as-files: {e}")))?;
    let Some(delivery) = delivery else {
        return Ok(None);
    };
    let Some(found) = resolved.manager.get_with_version(&v.key)? else {
        return Ok(None);
    };
    Ok(Some(Planned {
        label: delivery.path_var.clone(),
        delivery,
        keys: vec![v.key.clone()],
        ends: found.version.and_then(|version| version.ends),
        values: vec![found.value],
    }))
}

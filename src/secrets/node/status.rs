//! `st-secrets node-cache status` and `clear`: what the node cache holds,
//! counted without a value or a secret's name, and removing it.

use super::entry::{self, Held};
use super::{boot_id, read_bytes, wanted, NoValue, NodeDir, Own};
use crate::error::Error;
use crate::secrets::transport::{RemoteSettings, Vars};
use crate::sys::clock;
use std::path::PathBuf;

/// What `st-secrets node-cache status` reports (never a value or a name:
/// entries are named by hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCacheStatus {
    /// Whether the configuration asks for the node cache.
    pub enabled: bool,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether the directory exists.
    pub exists: bool,
    /// Why the directory is refused, when it exists and is.
    pub refused: Option<String>,
    /// Entries that answer now: found or absent secrets.
    pub fresh: usize,
    /// Entries that answer now with a failure.
    pub failures: usize,
    /// Entries past their time (removed when a provider starts).
    pub expired: usize,
    /// The bytes of all the entries.
    pub bytes: u64,
}

/// The node cache `remote` and `vars` (the process environment, for the
/// tool) configure: where, whether usable, what it holds. Creates nothing.
pub fn node_cache_status(remote: &RemoteSettings, vars: &Vars) -> NodeCacheStatus {
    let (enabled, dir) = wanted(remote, vars);
    let mut status = NodeCacheStatus {
        enabled,
        exists: std::fs::symlink_metadata(&dir).is_ok(),
        refused: None,
        fresh: 0,
        failures: 0,
        expired: 0,
        bytes: 0,
        dir,
    };
    // A relative directory is refused whether it exists or not (the
    // providers refuse it: "not created yet" would hide that).
    if !status.exists && status.dir.is_absolute() {
        return status;
    }
    if let Err(why) = NodeDir::check(&status.dir) {
        status.refused = Some(why);
        return status;
    }
    let now = clock::precise();
    for item in std::fs::read_dir(&status.dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = item.file_name();
        if !name.to_str().and_then(Own::of).is_some_and(Own::is_held) {
            continue;
        }
        let Some(bytes) = read_bytes(&item.path()) else {
            continue;
        };
        status.bytes += bytes.len() as u64;
        match entry::decode::<NoValue>(boot_id(), bytes.expose()) {
            Some(e) if e.until > now && e.written <= now => match e.held {
                Held::Failure(_) => status.failures += 1,
                Held::Fetched(_) => status.fresh += 1,
            },
            _ => status.expired += 1,
        }
    }
    status
}

/// Removes every entry of the node cache `remote` and `vars` configure
/// (an entry whose secret is being fetched right now is left to its
/// fetcher); the number left. Refused, with the reason, when the directory
/// is not one the node cache would use.
///
/// # Errors
/// [`Error::Permission`] naming the reason the directory is refused.
pub fn node_cache_clear(remote: &RemoteSettings, vars: &Vars) -> Result<usize, Error> {
    let (_, dir) = wanted(remote, vars);
    if std::fs::symlink_metadata(&dir).is_err() && dir.is_absolute() {
        return Ok(0);
    }
    NodeDir::check(&dir).map_err(Error::Permission)?;
    Ok(NodeDir { path: dir }.sweep(true))
}

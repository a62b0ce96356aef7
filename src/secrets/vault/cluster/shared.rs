//! What the processes of a node share of a cluster through the node
//! cache's directory: after a failover, the node that answered and those
//! that failed, so that one process finds a dead node, not every rank.

use super::{Cluster, DOWN_FOR};
use crate::secrets::remote::http::Address;
use crate::sys::Mutex;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The file, in the node cache's directory, where the processes of a node
/// share what they learnt of the cluster: the node that answered last
/// after a failover, and the nodes that failed, until when. One process
/// finds a dead node; the others start with the node that answers.
pub(super) struct SharedView {
    dir: PathBuf,
    name: String,
    /// The file as last read or written (modification time, length).
    seen: Mutex<Option<(SystemTime, u64)>>,
}

impl SharedView {
    pub(super) fn new(dir: &Path, addresses: &[Address]) -> SharedView {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"st-secrets vault cluster 1\0");
        for a in addresses {
            h.update(a.shown.as_bytes());
            h.update(b"\0");
        }
        let name: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        SharedView {
            dir: dir.to_owned(),
            name: format!("vault-cluster-{name}.json"),
            seen: Mutex::new(None),
        }
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::symlink_metadata(self.dir.join(&self.name)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cluster {
    /// Writes what this process learnt for the node's others (best effort:
    /// a failure only means they find the dead node themselves).
    pub(super) fn publish(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let failed: Vec<Value> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let until = n.state.lock().failed_until?.checked_duration_since(now)?;
                Some(json!([i, unix_ms(wall + until)]))
            })
            .collect();
        let doc = json!({
            "preferred": self.preferred.load(Ordering::Relaxed),
            "failed": failed,
        });
        let path = shared.dir.join(&shared.name);
        let written = crate::fsutil::replace_atomically(
            &shared.dir,
            &shared.name,
            &path,
            doc.to_string().as_bytes(),
        );
        if written.is_ok() {
            *shared.seen.lock() = shared.stamp();
        }
    }

    /// Takes in what another process of the node published, if the file
    /// changed since it was last seen.
    pub(super) fn adopt(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let stamp = shared.stamp();
        {
            let mut seen = shared.seen.lock();
            if stamp.is_none() || *seen == stamp {
                return;
            }
            *seen = stamp;
        }
        let path = shared.dir.join(&shared.name);
        let Ok(Some(bytes)) = crate::fsutil::read_regular(&path, "cluster hints", 64 << 10) else {
            return;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        let n = self.nodes.len();
        if let Some(p) = doc["preferred"]
            .as_u64()
            .and_then(|p| usize::try_from(p).ok())
        {
            if p < n {
                self.preferred.store(p, Ordering::Relaxed);
            }
        }
        let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
        for item in doc["failed"].as_array().into_iter().flatten() {
            let (Some(i), Some(until)) = (item[0].as_u64(), item[1].as_u64()) else {
                continue;
            };
            let Some(node) = usize::try_from(i).ok().and_then(|i| self.nodes.get(i)) else {
                continue;
            };
            if until > wall {
                let left = Duration::from_millis(until - wall).min(DOWN_FOR);
                node.state.lock().failed_until = Some(now + left);
            }
        }
    }
}

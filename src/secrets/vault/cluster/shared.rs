//! What the processes of a node share of a cluster through the node
//! cache's directory: after a failover, the node that answered and those
//! that failed, so that one process finds a dead node, not every rank.

use super::{Cluster, DOWN_FOR};
use crate::secrets::remote::http::Address;
use crate::secrets::remote::node::note::{unix_ms, NodeNote};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// The note, in the node cache's directory, where the processes of a node
/// share what they learnt of the cluster: the node that answered last
/// after a failover, and the nodes that failed, until when. One process
/// finds a dead node; the others start with the node that answers.
pub(super) fn view(dir: &Path, addresses: &[Address]) -> NodeNote {
    let shown: Vec<&str> = addresses.iter().map(|a| a.shown.as_str()).collect();
    NodeNote::new(dir, "vault-cluster", "st-secrets vault cluster 1", &shown)
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
        shared.write(&doc);
    }

    /// Takes in what another process of the node published, if the file
    /// changed since it was last seen.
    pub(super) fn adopt(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let Some(doc) = shared.read_changed("cluster hints", 64 << 10) else {
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

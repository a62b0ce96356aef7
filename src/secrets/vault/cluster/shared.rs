//! What the processes of a node share of a cluster through the node
//! cache's directory: after a failover, the node that answered and those
//! that failed, so that one process finds a dead node, not every rank.

use crate::secrets::node::note::{unix_ms, NodeNote};
use crate::secrets::transport::http::Address;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The note, in the node cache's directory, where the processes of a node
/// share what they learnt of the cluster: the node that answered last
/// after a failover, and the nodes that failed, until when. One process
/// finds a dead node; the others start with the node that answers.
pub(super) fn view(dir: &Path, addresses: &[Address]) -> NodeNote {
    let shown: Vec<&str> = addresses.iter().map(|a| a.shown.as_str()).collect();
    NodeNote::new(dir, "vault-cluster", "st-secrets vault cluster 1", &shown)
}

/// What one process learnt of the cluster: the node that answered last
/// after a failover, and the nodes that failed, each with how long it is
/// taken to stay down.
pub(super) struct Learnt {
    pub preferred: Option<usize>,
    pub failed: Vec<(usize, Duration)>,
}

/// Writes what this process learnt for the node's others (best effort: a
/// failure only means they find the dead node themselves).
pub(super) fn publish(note: &NodeNote, learnt: &Learnt) {
    let wall = SystemTime::now();
    let failed: Vec<Value> = learnt
        .failed
        .iter()
        .map(|(i, left)| json!([i, unix_ms(wall + *left)]))
        .collect();
    note.write(&json!({
        "preferred": learnt.preferred,
        "failed": failed,
    }));
}

/// What another process of the node published of a cluster of `nodes`
/// nodes, if the note changed since it was last seen; no node is taken
/// down for longer than `longest`.
pub(super) fn adopt(note: &NodeNote, nodes: usize, longest: Duration) -> Option<Learnt> {
    let doc = note.read_changed("cluster hints", 64 << 10)?;
    let preferred = doc["preferred"]
        .as_u64()
        .and_then(|p| usize::try_from(p).ok())
        .filter(|&p| p < nodes);
    let wall = unix_ms(SystemTime::now());
    let failed = doc["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let i = usize::try_from(item[0].as_u64()?)
                .ok()
                .filter(|&i| i < nodes)?;
            let until = item[1].as_u64().filter(|&u| u > wall)?;
            Some((i, Duration::from_millis(until - wall).min(longest)))
        })
        .collect();
    Some(Learnt { preferred, failed })
}

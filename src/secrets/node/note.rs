//! A note the processes of a node share through the node cache's
//! directory: a small JSON document about one server or cluster (how hard
//! it pushed back, which of its nodes failed), written whole by whoever
//! learnt something and read by the others only when it changed. Best
//! effort both ways: a process that cannot write or read it finds the same
//! thing out itself.

use crate::sys::Mutex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One note file.
pub(crate) struct NodeNote {
    dir: PathBuf,
    name: String,
    /// The file as last read or written (modification time, length).
    seen: Mutex<Option<(SystemTime, u64)>>,
}

impl NodeNote {
    /// The note `kind-<hash>.json` in `dir`, the hash (SHA-256, 16 bytes)
    /// over `domain` and `parts`, so that notes on different servers, or of
    /// different formats, never share a file.
    pub(crate) fn new(dir: &Path, kind: &str, domain: &str, parts: &[&str]) -> NodeNote {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for part in std::iter::once(domain).chain(parts.iter().copied()) {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        let hash: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        NodeNote {
            dir: dir.to_owned(),
            name: format!("{kind}-{hash}.json"),
            seen: Mutex::new(None),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::symlink_metadata(self.path()).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// Writes `doc` over the note (a 0600 file renamed into place).
    pub(crate) fn write(&self, doc: &Value) {
        let written = crate::fsutil::replace_atomically(
            &self.dir,
            &self.name,
            &self.path(),
            doc.to_string().as_bytes(),
        );
        if written.is_ok() {
            *self.seen.lock() = self.stamp();
        }
    }

    /// The note, if it changed since this process last read or wrote it
    /// and is a regular file of at most `max` bytes of JSON.
    pub(crate) fn read_changed(&self, what: &str, max: u64) -> Option<Value> {
        let stamp = self.stamp();
        {
            let mut seen = self.seen.lock();
            if stamp.is_none() || *seen == stamp {
                return None;
            }
            *seen = stamp;
        }
        let bytes = crate::fsutil::read_regular(&self.path(), what, max).ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Milliseconds since the epoch: how notes say when, since the processes
/// reading them do not share a monotonic clock's origin.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

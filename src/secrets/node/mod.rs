//! The node cache: the processes of one user on one node with the same
//! provider settings share what one of them fetched, with no process of
//! their own (opt-in: `node_cache`, `SIMPLETUNER_NODE_CACHE=1`).
//!
//! - **Where**: `node_cache_dir`, else `$XDG_RUNTIME_DIR/st-secrets-node`,
//!   else `/dev/shm/st-secrets-node-<uid>`. Used only when it is a directory
//!   (not a symlink) of this user's, mode 0700 (no group or world bits), on
//!   tmpfs or ramfs; otherwise refused with the reason (the providers then
//!   cache per process and say why in their status).
//! - **What**: one entry file per secret (`entry`), named by the SHA-256 of
//!   the provider's settings, the environment variables it reads
//!   (credentials included) and the secret's name, so two configurations
//!   never share; written 0600 to a temporary name and renamed.
//! - **Who fetches**: a process that finds no fresh entry takes the
//!   secret's lock file (`flock`, released by the kernel when its holder
//!   dies), reads again, and only then fetches and writes the entry; the
//!   others wait for the lock, polling the entry, at most as long as one
//!   fetch with its retries may take (a first fetch in a fleet: the node's
//!   slot and the fleet deadline), then fetch themselves. Failures are
//!   written too, beside the value (never over it), for `failure_ttl`:
//!   during an outage the node sends one attempt per failure TTL whatever
//!   the number of processes, and a refresh that failed leaves the value it
//!   could not replace to the others.
//!
//! [`entry`] is the files' format; [`note`] the small notes on servers the
//! processes share (pace, a cluster's failed nodes); [`status`] what
//! `st-secrets node-cache status` and `clear` do.

pub(crate) mod entry;
pub(crate) mod fleet;
pub(crate) mod note;
pub(crate) mod status;

use crate::error::Error;
use crate::secret::SecretBytes;
use crate::secrets::transport::{FetchError, Fetched, RemoteSettings, Vars};
use crate::sys::{self, clock};
use entry::{Entry, Held, Shareable};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest entry read (a Vault secret can be large; AWS's are at most
/// 64 KiB).
const MAX_ENTRY: u64 = 8 << 20;

/// How an entry is looked for: what for, written since when (monotonic
/// ns; 0: any), and what its value is to a forced fetch reporting a
/// version that failed.
struct Look<'a, T> {
    mode: Mode,
    since: u64,
    judge: &'a dyn Fn(&Fetched<T>) -> Against,
}

/// What a value is to a forced fetch reporting the version that failed
/// its caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Against {
    /// Nothing was reported, or the value has no version.
    Nothing,
    /// The value is of the version reported failed: even written after the
    /// report it does not answer it (another process's refresh that began
    /// before the failure wrote it); the report's own check does.
    Failed,
    /// The value is of another version: it answers the report whenever it
    /// was written.
    Other,
}

impl Against {
    /// What a value of version `held` is to a report that version `failed`
    /// failed (`None`: nothing reported; the value has no version).
    pub fn of(failed: Option<&str>, held: Option<&str>) -> Against {
        match (failed, held) {
            (Some(f), Some(id)) if id == f => Against::Failed,
            (Some(_), Some(_)) => Against::Other,
            _ => Against::Nothing,
        }
    }
}

/// What a fetch through the node cache is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A get: a fresh entry answers.
    Get,
    /// A background refresh: an entry past its soft deadline is fetched
    /// again (by the first process to get there).
    Ahead,
    /// A caller's "fetch this again now": the service is asked, and the
    /// entry rewritten.
    Force,
}

/// The node cache's directory, checked.
#[derive(Debug)]
pub struct NodeDir {
    path: PathBuf,
}

/// Whether a provider uses the node cache.
#[derive(Debug, Clone)]
pub enum NodeUse {
    /// Not asked for.
    Off,
    /// In use.
    On(Arc<NodeDir>),
    /// Asked for and refused: why.
    Refused(String),
}

impl NodeUse {
    /// The node cache as `remote` and the environment `vars` ask for it.
    pub fn resolve(remote: &RemoteSettings, vars: &Vars) -> NodeUse {
        let (on, path) = wanted(remote, vars);
        if !on {
            return NodeUse::Off;
        }
        match NodeDir::open(&path) {
            Ok(dir) => NodeUse::On(Arc::new(dir)),
            Err(why) => NodeUse::Refused(why),
        }
    }
}

/// Whether the node cache is asked for, and its directory.
fn wanted(remote: &RemoteSettings, vars: &Vars) -> (bool, PathBuf) {
    use crate::secrets::transport::vars::{
        SIMPLETUNER_NODE_CACHE, SIMPLETUNER_NODE_CACHE_DIR, XDG_RUNTIME_DIR,
    };
    let on = remote.node_cache.unwrap_or_else(|| {
        vars.get(SIMPLETUNER_NODE_CACHE)
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
    });
    let path = remote
        .node_cache_dir
        .clone()
        .or_else(|| vars.get(SIMPLETUNER_NODE_CACHE_DIR).map(PathBuf::from))
        .unwrap_or_else(|| default_dir(vars.get(XDG_RUNTIME_DIR)));
    (on, path)
}

/// `$XDG_RUNTIME_DIR/st-secrets-node`, else `/dev/shm/st-secrets-node-<uid>`.
pub fn default_dir(runtime_dir: Option<&str>) -> PathBuf {
    match runtime_dir.filter(|d| Path::new(d).is_absolute()) {
        Some(d) => Path::new(d).join("st-secrets-node"),
        None => PathBuf::from(format!("/dev/shm/st-secrets-node-{}", sys::effective_uid())),
    }
}

impl NodeDir {
    /// The directory at `path`, created 0700 when missing; refused (the
    /// reason) unless it is a directory of this user's, not a symlink, with
    /// no group or world access, on a memory-backed filesystem.
    pub fn open(path: &Path) -> Result<NodeDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        if path.is_absolute() {
            match std::fs::DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(format!(
                        "cannot create the node cache directory {}: {e}",
                        path.display()
                    ))
                }
            }
        }
        NodeDir::check(path)?;
        let dir = NodeDir {
            path: path.to_owned(),
        };
        dir.sweep(false);
        Ok(dir)
    }

    /// Why the directory at `path` is not one the node cache uses, if it
    /// is not.
    fn check(path: &Path) -> Result<(), String> {
        let shown = path.display();
        if !path.is_absolute() {
            return Err(format!(
                "the node cache directory {shown} is not an absolute path"
            ));
        }
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot inspect the node cache directory {shown}: {e}"))?;
        if meta.file_type().is_symlink() {
            return Err(format!(
                "the node cache directory {shown} is a symbolic link"
            ));
        }
        if !meta.is_dir() {
            return Err(format!(
                "the node cache directory {shown} is not a directory"
            ));
        }
        if meta.uid() != sys::effective_uid() {
            return Err(format!(
                "the node cache directory {shown} belongs to uid {}, not to this user",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "the node cache directory {shown} is open to other users (mode {:o}; it must be 0700)",
                meta.mode() & 0o7777
            ));
        }
        match sys::memory_backed(path) {
            Some(true) => Ok(()),
            Some(false) => Err(format!(
                "the node cache directory {shown} is not on a memory-backed filesystem \
                 (tmpfs or ramfs): secrets would rest on disk"
            )),
            None => Err(format!("cannot ask which filesystem holds {shown}")),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what nobody needs: entries past their time (or, with `all`,
    /// every entry) whose lock is free, and temporary files left by a
    /// writer that died (older than a minute). Only names the node cache
    /// makes are touched ([`Own`]): the directory may be one that holds
    /// other files (`$XDG_RUNTIME_DIR`). The number of entries left.
    pub fn sweep(&self, all: bool) -> usize {
        let Ok(list) = std::fs::read_dir(&self.path) else {
            return 0;
        };
        let now = clock::precise();
        let mut left = 0;
        for item in list.flatten() {
            let name = item.file_name();
            let Some(own) = name.to_str().and_then(Own::of) else {
                continue;
            };
            let path = item.path();
            let key = match own {
                Own::Temp => {
                    let old = item
                        .metadata()
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(60));
                    if old || all {
                        let _ = std::fs::remove_file(&path);
                    }
                    continue;
                }
                Own::Lock(_) => {
                    if all {
                        if let Ok(lock) = crate::fsutil::open_lock_file(&path) {
                            if lock.try_lock().is_ok() {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                    }
                    continue;
                }
                Own::Entry(key) | Own::Fail(key) => key,
            };
            let slot = Slot {
                dir: Arc::new(NodeDir {
                    path: self.path.clone(),
                }),
                key: key.to_owned(),
            };
            let expired = || {
                read_bytes(&path).is_none_or(|bytes| {
                    entry::decode::<NoValue>(boot_id(), bytes.expose())
                        .is_none_or(|e| e.until <= now)
                })
            };
            let Ok(lock) = slot.open_lock() else {
                continue;
            };
            if lock.try_lock().is_ok() && (all || expired()) {
                // The lock file stays (a process may be about to wait on
                // it: a new one would let two fetch at once) unless all go.
                let _ = std::fs::remove_file(&path);
                if all {
                    let _ = std::fs::remove_file(slot.lock_path());
                }
            } else {
                left += 1;
            }
        }
        left
    }
}

/// A name the node cache makes in its directory: a secret's entry, failure
/// or lock (`<key>.entry`, `.fail`, `.lock`, the key 64 lowercase hex
/// digits: a SHA-256), or a temporary file of one (`.<key>.tmp.tmp.…`).
/// Nothing else in the directory is the node cache's to read or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Own<'a> {
    Entry(&'a str),
    Fail(&'a str),
    Lock(&'a str),
    Temp,
}

impl<'a> Own<'a> {
    fn of(name: &'a str) -> Option<Own<'a>> {
        let is_key =
            |k: &str| k.len() == 64 && k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if let Some(rest) = name.strip_prefix('.') {
            let (key, tail) = rest.split_at_checked(64)?;
            return (is_key(key) && tail.starts_with(".tmp.tmp.")).then_some(Own::Temp);
        }
        let (key, suffix) = name.split_at_checked(64)?;
        if !is_key(key) {
            return None;
        }
        match suffix {
            ".entry" => Some(Own::Entry(key)),
            ".fail" => Some(Own::Fail(key)),
            ".lock" => Some(Own::Lock(key)),
            _ => None,
        }
    }

    /// Whether it is an entry or a failure (what `status` counts).
    fn is_held(self) -> bool {
        matches!(self, Own::Entry(_) | Own::Fail(_))
    }
}

/// A value type for [`NodeDir::sweep`], which reads only an entry's times.
struct NoValue;

impl Shareable for NoValue {
    fn encode(&self) -> Option<SecretBytes> {
        None
    }
    fn decode(_: &[u8]) -> Option<NoValue> {
        Some(NoValue)
    }
}

/// The fingerprint of a provider's configuration: its kind, settings and
/// the environment it reads (credentials included, hashed, never stored).
#[derive(Clone)]
pub struct Scope(Sha256);

impl Scope {
    /// A scope for provider `kind` configured by `vars`.
    pub fn new(kind: &str, vars: &Vars) -> Scope {
        let mut h = Sha256::new();
        h.update(b"st-secrets-node 1\0");
        h.update(kind.as_bytes());
        h.update(b"\0");
        vars.fingerprint(&mut h);
        Scope(h)
    }

    /// Adds a setting.
    pub fn with(mut self, label: &str, value: &str) -> Scope {
        for part in [label.as_bytes(), b"=", value.as_bytes(), b"\0"] {
            self.0.update(part);
        }
        self
    }

    /// The slot of secret `name` in `dir`.
    pub fn slot(&self, dir: &Arc<NodeDir>, name: &str) -> Slot {
        let mut h = self.0.clone();
        h.update(b"secret\0");
        h.update(name.as_bytes());
        Slot {
            dir: Arc::clone(dir),
            key: entry::hex(&h.finalize()),
        }
    }
}

/// One secret's entry and lock in the node cache.
pub struct Slot {
    dir: Arc<NodeDir>,
    key: String,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("key", &self.key).finish()
    }
}

/// What a fetch through the node cache brought.
pub struct Shared<T> {
    /// The answer.
    pub outcome: Result<Fetched<T>, FetchError>,
    /// How long it answers for, when it came from an entry (its time left).
    pub remaining: Option<Duration>,
    /// Whether the service was asked.
    pub upstream: bool,
    /// Whether this process stopped waiting for another's fetch (its
    /// holder hung past one fetch's bound) and fetched itself.
    pub gave_up: bool,
}

impl Slot {
    fn entry_path(&self) -> PathBuf {
        self.dir.path.join(format!("{}.entry", self.key))
    }

    fn fail_path(&self) -> PathBuf {
        self.dir.path.join(format!("{}.fail", self.key))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.path.join(format!("{}.lock", self.key))
    }

    fn open_lock(&self) -> Result<File, Error> {
        crate::fsutil::open_lock_file(&self.lock_path())
    }

    /// The answer for `mode`: a fresh entry's, else `fetch`'s (by this
    /// process, under the secret's lock, when it is the first), written
    /// for the others.
    /// A forced fetch reporting a version that failed also takes an entry
    /// `judge` finds of another version, whenever it was written, and never
    /// one of the failed version.
    pub fn fetch<T: Shareable>(
        &self,
        settings: &RemoteSettings,
        mode: Mode,
        judge: &dyn Fn(&Fetched<T>) -> Against,
        fetch: impl FnOnce() -> Result<Fetched<T>, FetchError>,
    ) -> Shared<T> {
        // A forced fetch takes only what was written after it was asked
        // (another process's forced fetch it waited for), never what the
        // caller found wanting, unless `judge` finds it of another version.
        let since = if mode == Mode::Force {
            clock::precise()
        } else {
            0
        };
        let look = Look { mode, since, judge };
        if let Some(hit) = self.read(settings, &look) {
            return hit;
        }
        let lock = self.open_lock().ok();
        let held = match &lock {
            Some(file) => self.wait_for_lock(file, settings, &look),
            None => Ok(false),
        };
        let held = match held {
            Ok(held) => held,
            Err(hit) => return hit,
        };
        if held {
            if let Some(hit) = self.read(settings, &look) {
                return hit;
            }
        }
        let outcome = fetch();
        self.write(settings, &outcome);
        if let (Some(file), true) = (&lock, held) {
            // Explicitly: a child forked meanwhile holds a copy of the
            // descriptor, which would keep the lock until it exits.
            let _ = file.unlock();
        }
        Shared {
            outcome,
            remaining: None,
            upstream: true,
            gave_up: lock.is_some() && !held,
        }
    }

    /// Takes the lock, waiting at most as long as one fetch with its
    /// retries may take (in a fleet, its first); `Err` with an entry another process wrote
    /// meanwhile, `Ok(false)` when the lock could not be had.
    fn wait_for_lock<T: Shareable>(
        &self,
        file: &File,
        settings: &RemoteSettings,
        look: &Look<'_, T>,
    ) -> Result<bool, Shared<T>> {
        // In a fleet, the holder may wait for the node's slot and try
        // until the fleet deadline.
        let bound = fleet::wait_bound(settings, settings.fetch_bound())
            .saturating_add(Duration::from_secs(1));
        let deadline = Instant::now() + bound;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(_)) => return Ok(false),
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
            if let Some(hit) = self.read(settings, look) {
                return Err(hit);
            }
        }
    }

    /// The valid entry at `path` that answers now: whole, of this boot,
    /// not written in this clock's future (another clock: a time
    /// namespace) and not past its time.
    fn load<T: Shareable>(path: &Path, now: u64, since: u64) -> Option<Entry<T>> {
        let bytes = read_bytes(path)?;
        let entry: Entry<T> = entry::decode(boot_id(), bytes.expose())?;
        (since <= entry.written && entry.written <= now && now < entry.until).then_some(entry)
    }

    /// The node's answer for `look.mode` now (written since `look.since`
    /// and not of a version reported failed, or of another version), if it
    /// has one: the value's entry while it is fresh
    /// (for a background refresh, before its soft deadline, or while a
    /// failure is recent: the node backs off together), else a recent
    /// failure. A failure is kept beside the value, never over it: a
    /// refresh that failed leaves the fresh value to the others.
    fn read<T: Shareable>(
        &self,
        settings: &RemoteSettings,
        look: &Look<'_, T>,
    ) -> Option<Shared<T>> {
        let (mode, since) = (look.mode, look.since);
        let now = clock::precise();
        let judged = |e: &Entry<T>| match &e.held {
            Held::Fetched(v) => (look.judge)(v),
            Held::Failure(_) => Against::Nothing,
        };
        let value = Self::load::<T>(&self.entry_path(), now, since)
            .filter(|e| judged(e) != Against::Failed)
            .or_else(|| {
                (since > 0)
                    .then(|| Self::load::<T>(&self.entry_path(), now, 0))
                    .flatten()
                    .filter(|e| judged(e) == Against::Other)
            });
        let failure = || Self::load::<T>(&self.fail_path(), now, since);
        let entry = match value {
            Some(e) if mode == Mode::Ahead => {
                let span = e.until - e.written;
                let permille = u64::from(settings.refresh_ahead_permille.min(1000));
                // A value that says when it is due (a lease) is refreshed
                // then; another at `refresh_ahead` of its span.
                let own = match &e.held {
                    Held::Fetched(Fetched::Found(v)) => v.refresh_at(),
                    _ => None,
                };
                let soft = own.unwrap_or(e.written + span / 1000 * permille);
                if now >= soft && failure().is_none() {
                    return None;
                }
                e
            }
            Some(e) => e,
            None => failure()?,
        };
        let own_ttl = match &entry.held {
            Held::Fetched(Fetched::Found(_)) => settings.cache_ttl,
            Held::Fetched(Fetched::Absent) => settings.negative_ttl,
            Held::Failure(_) => settings.failure_ttl,
        };
        let left = Duration::from_nanos(entry.until - now).min(own_ttl);
        let outcome = match entry.held {
            Held::Fetched(value) => Ok(value),
            Held::Failure(f) => Err(f),
        };
        Some(Shared {
            outcome,
            remaining: Some(left),
            upstream: false,
            gave_up: false,
        })
    }

    /// Writes what a fetch brought, for the TTL its kind has: a value to
    /// the entry (and the failure beside it goes), a failure beside it. A
    /// failure to write leaves the others to fetch for themselves.
    fn write<T: Shareable>(
        &self,
        settings: &RemoteSettings,
        outcome: &Result<Fetched<T>, FetchError>,
    ) {
        let (ttl, held, path) = match outcome {
            Ok(Fetched::Found(v)) => (
                settings.kept_for(v.ttl(), v.refresh_at()),
                Held::Fetched(Fetched::Found(Borrowed(v))),
                self.entry_path(),
            ),
            Ok(Fetched::Absent) => (
                settings.negative_ttl,
                Held::Fetched(Fetched::Absent),
                self.entry_path(),
            ),
            Err(f) => (
                settings.failure_ttl,
                Held::Failure(f.clone()),
                self.fail_path(),
            ),
        };
        let now = clock::precise();
        let until = now.saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX));
        let Some(bytes) = entry::encode(boot_id(), now, until, &held) else {
            return;
        };
        let name = format!("{}.tmp", self.key);
        if let Ok(temp) = crate::fsutil::write_private_temp(
            &self.dir.path,
            &crate::fsutil::temp_prefix(&name),
            bytes.expose(),
        ) {
            if std::fs::rename(&temp, &path).is_err() {
                let _ = std::fs::remove_file(&temp);
            }
        }
        if outcome.is_ok() {
            let _ = std::fs::remove_file(self.fail_path());
        }
    }
}

/// A value written without a copy.
struct Borrowed<'a, T>(&'a T);

impl<T: Shareable> Shareable for Borrowed<'_, T> {
    fn encode(&self) -> Option<SecretBytes> {
        self.0.encode()
    }
    fn ttl(&self) -> Option<Duration> {
        self.0.ttl()
    }
    fn refresh_at(&self) -> Option<u64> {
        self.0.refresh_at()
    }
    fn decode(_: &[u8]) -> Option<Self> {
        None
    }
}

/// The bytes of the regular file at `path`, owned by this user, at most
/// [`MAX_ENTRY`]; `None` for anything else.
fn read_bytes(path: &Path) -> Option<SecretBytes> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != sys::effective_uid() || meta.len() > MAX_ENTRY {
        return None;
    }
    let len = usize::try_from(meta.len()).ok()?;
    let mut out = SecretBytes::with_capacity(len);
    let mut chunk = zeroize::Zeroizing::new([0u8; 4096]);
    loop {
        let n = file.read(&mut chunk[..]).ok()?;
        if n == 0 {
            break;
        }
        if (out.len() + n) as u64 > MAX_ENTRY {
            return None;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Some(out)
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`), read once.
fn boot_id() -> &'static str {
    static BOOT: sys::Lazy<String> = sys::Lazy::new(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    });
    BOOT.as_str()
}

#[cfg(test)]
mod tests;

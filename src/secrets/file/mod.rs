//! The file provider: a flat JSON or YAML mapping of secrets on disk.
//!
//! Reading: the parsed file is kept as a snapshot; its metadata (device, inode,
//! size, modification and change times) is checked at most every
//! [`CHECK_INTERVAL`](snapshot::CHECK_INTERVAL), so a change made by another process is seen within a
//! second while gets stay cheap. A file modified in the last two seconds is
//! re-read at each check whatever its metadata says, so that a same-size
//! rewrite within one timestamp tick is not missed.
//!
//! One thread re-reads while the others go on with the last snapshot (no get
//! waits for a parse). A re-read never replaces a good snapshot with less:
//!
//! - a file that does not parse (a writer is half-way, or it is broken) keeps
//!   the last good snapshot, and the status says why;
//! - a file that changed while it was read is read again at the next check;
//! - a file rewritten in place (the same inode: SimpleTuner's own
//!   `set_secret` truncates and writes) that lost keys within the last
//!   [`RACY_WINDOW`], or YAML that does not end with a line break (a plain
//!   scalar cut short still parses), is taken for a writer half-way: the last
//!   snapshot is kept until the file has settled, then what it holds is
//!   taken. A file replaced by rename (as this library writes) or removed is
//!   taken at once;
//! - before the first snapshot, lookups wait for the first load (there is
//!   nothing to answer from), which looks again at a racy file that reads as
//!   empty, broken or cut short ([`FIRST_LOAD_RETRIES`]).
//!
//! Writing (`save`, `delete`): under an exclusive lock on a lock file beside the
//! secrets file (so several processes lose no update), the current file is read
//! and parsed again (a malformed file is never overwritten), edited in place
//! keeping its format, its other keys and their order, and written atomically:
//! a temporary file created with mode 0600 (set explicitly, whatever the umask,
//! before the first byte), fsynced, renamed over the target, and the directory
//! fsynced. Directories created for it get mode 0700. YAML comments are not
//! kept (the YAML library drops them).

pub(crate) mod document;
mod snapshot;
pub use document::yaml_documents;
#[cfg(test)]
use snapshot::CHECK_INTERVAL;
use snapshot::{existing_default, Due, Shared, Stamp, State};
pub use snapshot::{FileLocation, DEFAULT_NAMES};

use super::provider::{ChangeSink, Provider, ProviderStatus, SinkSlot};
use crate::error::Error;
use crate::fsutil;
use crate::paths;
use crate::secret::SecretString;
use crate::sys::Mutex;
use document::{Document, Format};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroize;

/// The file provider's settings: the configuration keys `file_path` and
/// `max_file_size` (docs/configuration.md, "Configuration keys").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSettings {
    /// The secrets file; `None`: `SIMPLETUNER_SECRETS_FILE` when the
    /// configuration comes from the environment, else the first of
    /// `~/.simpletuner/secrets.json`, `.yaml`, `.yml` that exists (saving
    /// creates `secrets.json`).
    pub path: Option<PathBuf>,
    /// Secrets files larger than this many bytes are refused before they are
    /// read (default 4 MiB).
    pub max_size: u64,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            path: None,
            max_size: fsutil::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// The JSON/YAML secrets file provider. Thread-safe.
pub struct FileProvider {
    shared: Arc<Shared>,
    /// Serialises this process's writers (other processes: the lock file).
    writer: Mutex<()>,
}

/// Files of this size or more with a snapshot to serve are re-read on a
/// thread of their own (a 4 MB file takes a second or more to parse); smaller
/// ones by the caller that finds them changed (a few milliseconds at most),
/// which then answers from what it read.
const BACKGROUND_REREAD_SIZE: u64 = 64 << 10;

impl std::fmt::Debug for FileProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileProvider")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

impl FileProvider {
    /// A provider for `location`. Nothing is read until the first lookup.
    pub fn new(location: FileLocation) -> Self {
        FileProvider {
            shared: Arc::new(Shared {
                location,
                state: Mutex::with_fresh(State::new(), State::new).after_fork(State::after_fork),
                max_size: AtomicU64::new(fsutil::DEFAULT_MAX_FILE_SIZE),
                generation: AtomicU64::new(0),
                sink: SinkSlot::default(),
                first_load: Mutex::new(()),
                #[cfg(test)]
                gate: Mutex::new(()),
            }),
            writer: Mutex::new(()),
        }
    }

    /// The manager's file provider for `settings`: its `path`, else the
    /// default files in `~/.simpletuner`; without a home directory (and no
    /// `path`) a provider that is unavailable and says why.
    pub fn from_settings(settings: &FileSettings) -> Self {
        let location = match (&settings.path, paths::simpletuner_dir()) {
            (Some(p), _) => FileLocation::Configured(p.clone()),
            (None, Some(dir)) => FileLocation::Default(dir),
            (None, None) => FileLocation::Unknown(
                "no secrets file: no home directory ($HOME is unset and the account has no \
                 home in the password database); set file_path or SIMPLETUNER_SECRETS_FILE"
                    .into(),
            ),
        };
        FileProvider::new(location).with_max_size(settings.max_size)
    }

    /// The same provider refusing files larger than `bytes` (default 4 MiB,
    /// the manager's `max_file_size`).
    pub fn with_max_size(self, bytes: u64) -> Self {
        self.shared.max_size.store(bytes, Ordering::Relaxed);
        self
    }

    /// The file that is read now, or that a save would create; `None` when no
    /// location can be known.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.shared.location {
            FileLocation::Configured(p) => Some(p.clone()),
            FileLocation::Default(dir) => {
                Some(existing_default(dir).unwrap_or_else(|| dir.join(DEFAULT_NAMES[0])))
            }
            FileLocation::Unknown(_) => None,
        }
    }

    /// A number that changes whenever what a lookup answers may have changed
    /// (the file was re-read, saved or invalidated), after the same freshness
    /// check a lookup makes. Equal numbers mean equal answers: callers that
    /// keep answers of their own (the Python extension) check it instead of
    /// looking the key up again.
    pub fn generation(&self) -> u64 {
        self.refresh_if_due(Instant::now());
        self.shared.generation.load(Ordering::Acquire)
    }

    /// [`generation`](Self::generation) without the freshness check: changes
    /// made through this provider (saves, invalidations) show at once, a
    /// change of the file by someone else only after a later `generation`
    /// or lookup checked the metadata.
    pub fn generation_unchecked(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Stores `value` under `key` (an existing key keeps its place; a new one
    /// goes last). Creates the file (and its directory, 0700) when needed.
    pub fn save(&self, key: &str, value: &str) -> Result<(), Error> {
        super::provider::check_text("key", key)?;
        super::provider::check_text("value", value)?;
        self.edit(|doc| {
            doc.set(key, value);
            Ok(true)
        })
        .map(|_| ())
    }

    /// Removes the key a lookup of `key` would read (the key as given, else its
    /// normalized form); `Ok(false)` when there is none.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        if self.path().is_none_or(|p| fs::symlink_metadata(p).is_err()) {
            return Ok(false); // no file: nothing to delete, and nothing to create
        }
        self.edit(|doc| Ok(doc.remove(key)))
    }

    /// Re-reads the file when its check is due ([`refresh_if_due`]).
    fn refresh_if_due(&self, now: Instant) {
        refresh_if_due(&self.shared, now);
    }

    /// The file read now (`None`: no file exists in default mode).
    fn current_path(&self) -> Option<PathBuf> {
        self.shared.current_path()
    }

    /// Runs `change` on the current document under the write locks; writes the
    /// file when it reports a change. Returns what `change` returned.
    fn edit(
        &self,
        change: impl FnOnce(&mut Document) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let _this_process = self.writer.lock();
        let target = match (&self.shared.location, self.path()) {
            (_, Some(p)) => p,
            (FileLocation::Unknown(why), None) => {
                return Err(Error::ProviderUnavailable(format!(
                    "cannot save secrets: {why}"
                )))
            }
            (_, None) => return Err(Error::Internal("no secrets file path".into())),
        };
        // Write through a symlink to the file it points at.
        let target = fs::canonicalize(&target).unwrap_or(target);
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "secrets file path {} has no file name",
                    target.display()
                ))
            })?;
        if !dir.exists() {
            fsutil::create_private_dir(&dir)?;
        }
        let lock_path = dir.join(format!(".{name}.lock"));
        let lock = fsutil::open_lock_file(&lock_path)?;
        lock.lock()
            .map_err(|e| Error::io("cannot lock", &lock_path, &e))?;
        remove_stale_temporaries(&dir, &name);

        let format = Format::of(&target);
        let mut doc = match fsutil::read_regular(&target, "secrets file", self.shared.max_size())? {
            Some(mut bytes) => {
                let parsed = Document::parse(&bytes, format, &target);
                bytes.zeroize();
                parsed.map_err(|e| e.with_note("the file was left untouched"))?
            }
            None => Document::empty(format),
        };
        let changed = change(&mut doc)?;
        if changed {
            let mut bytes = doc.render(&target)?;
            if bytes.len() as u64 > self.shared.max_size() {
                let size = bytes.len();
                bytes.zeroize();
                // Written, every later read would refuse the file.
                return Err(Error::Io(format!(
                    "{}: the file would be {size} bytes, above the limit of {} bytes (max_file_size); nothing was written",
                    target.display(),
                    self.shared.max_size()
                )));
            }
            let written = fsutil::replace_atomically(&dir, &name, &target, &bytes);
            bytes.zeroize();
            written?;
            // Serve what was written at once, whatever re-read is running.
            let path = self.current_path();
            let meta = path.as_deref().and_then(|p| fs::metadata(p).ok());
            let snapshot = doc.into_snapshot();
            let mut st = self.shared.state.lock();
            st.stamp = meta.as_ref().map(Stamp::of);
            st.mode = meta.as_ref().map(|m| m.mode() & 0o7777);
            st.path = path;
            self.shared.serve(&mut st, Ok(Arc::new(snapshot)));
            st.kept = None;
        }
        drop(lock); // releases the lock
        self.invalidate();
        self.shared.tell_changes();
        Ok(changed)
    }
}

impl Provider for FileProvider {
    fn name(&self) -> &'static str {
        "file"
    }

    fn resolves_references(&self) -> bool {
        true
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        self.refresh_if_due(Instant::now());
        let snapshot = self.shared.state.lock().snapshot.clone()?;
        Ok(snapshot.resolve(key).map(|(_, v)| v.clone()))
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        self.refresh_if_due(Instant::now());
        let snapshot = self.shared.state.lock().snapshot.clone()?;
        Ok(snapshot.keys())
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        let st = self.shared.state.lock();
        st.snapshot.as_ref().is_ok_and(|s| s.holds_non_secret(key))
    }

    fn status(&self) -> ProviderStatus {
        self.refresh_if_due(Instant::now());
        let st = self.shared.state.lock();
        let mut warnings = Vec::new();
        if let (Some(p), Some(e)) = (&st.path, &st.kept) {
            warnings.push(format!(
                "{} changed and does not parse ({e}); serving the version read before",
                p.display()
            ));
        }
        let (available, detail) = match (&st.path, &st.stamp, &st.snapshot) {
            (Some(p), Some(_), Ok(s)) => {
                let d = format!(
                    "{} ({}): {}",
                    p.display(),
                    Format::of(p).name(),
                    s.describe()
                );
                (true, d)
            }
            (Some(p), Some(_), Err(e)) => (true, format!("{}: unreadable: {e}", p.display())),
            _ => (
                false,
                match &self.shared.location {
                    FileLocation::Configured(p) => {
                        format!("{} does not exist yet; saving creates it", p.display())
                    }
                    FileLocation::Default(dir) => format!(
                        "no secrets file ({} in {}); saving creates {}",
                        DEFAULT_NAMES.join(", "),
                        dir.display(),
                        dir.join(DEFAULT_NAMES[0]).display()
                    ),
                    FileLocation::Unknown(why) => why.clone(),
                },
            ),
        };
        if let (Some(p), Some(mode)) = (&st.path, st.mode) {
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "{} is readable or writable by group or others (mode {mode:04o}); run: chmod 600 {}",
                    p.display(),
                    p.display()
                ));
            }
        }
        ProviderStatus {
            name: self.name(),
            available,
            detail,
            warnings,
            failure: None,
        }
    }

    fn connect(&self, sink: Arc<dyn ChangeSink>) {
        self.shared.sink.connect(Arc::clone(&sink));
        let shared = Arc::downgrade(&self.shared);
        sink.watch(Box::new(move || {
            let Some(shared) = shared.upgrade() else {
                return false;
            };
            refresh_if_due(&shared, Instant::now());
            true
        }));
    }

    fn invalidate(&self) {
        let mut st = self.shared.state.lock();
        st.next_check = None;
        st.forced = true;
        st.epoch = st.epoch.wrapping_add(1);
        self.shared.generation.fetch_add(1, Ordering::Release);
    }
}

/// Re-reads the file when its check is due and no other thread is
/// re-reading it (the others go on with the last snapshot). A file of
/// [`BACKGROUND_REREAD_SIZE`] or more with a snapshot to serve is re-read
/// on a thread of its own, so that the caller who found it changed does
/// not wait for the parse either. Before the first snapshot there is
/// nothing to go on with: callers queue for the first load, which takes
/// an in-place rewrite caught half-way for what it is (see
/// [`reread::FIRST_LOAD_RETRIES`]).
fn refresh_if_due(shared: &Arc<Shared>, now: Instant) {
    let loaded = shared.state.lock().loaded; // (not held while waiting below)
    let _first_load = (!loaded).then(|| shared.first_load.lock());
    let due = {
        let mut st = shared.state.lock();
        let first = !st.loaded;
        if !first && (st.reloading || st.next_check.is_some_and(|t| now < t)) {
            return;
        }
        st.reloading = true;
        Due {
            now,
            path: st.path.clone(),
            stamp: st.stamp,
            good: if first {
                None
            } else {
                st.snapshot.as_ref().ok().map(Arc::clone)
            },
            epoch: st.epoch,
            forced: std::mem::take(&mut st.forced),
            first,
        }
    };
    let large = || {
        shared
            .current_path()
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.len() >= BACKGROUND_REREAD_SIZE)
    };
    if due.good.is_some() && large() {
        let (path, stamp, good, epoch, forced) = (
            due.path.clone(),
            due.stamp,
            due.good.clone(),
            due.epoch,
            due.forced,
        );
        let reader = Arc::clone(shared);
        let spawned = crate::sys::spawn_thread("st-secrets-reread", move || {
            #[cfg(test)]
            drop(reader.gate.lock());
            reader.refresh(due)
        });
        if spawned.is_ok() {
            return;
        }
        // No thread to be had (the re-read mark is still set): here, then.
        let due = Due {
            now,
            path,
            stamp,
            good,
            epoch,
            forced,
            first: false,
        };
        return shared.refresh(due);
    }
    shared.refresh(due);
}

/// Writers hold the lock while their temporary file exists, so any temporary
/// file found under the lock was left by a writer that died: remove it.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = fsutil::temp_prefix(name);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! The snapshot the file provider serves: where the file is, the state kept
//! of it, and re-reading it (what changed since the snapshot, and whether
//! what is on disk now may be a writer caught half-way; the rules are in the
//! module's documentation, [`super`]).

use super::document::{Document, Format};
use crate::error::Error;
use crate::fsutil;
use crate::secrets::provider::{KeyChange, SecretMap, SinkSlot};
use crate::sys::Mutex;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroize;

/// How often, at most, the file's metadata is checked for changes.
pub(super) const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The default file names, checked in this order in the default directory.
pub const DEFAULT_NAMES: [&str; 3] = ["secrets.json", "secrets.yaml", "secrets.yml"];

/// Where the provider's file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileLocation {
    /// A configured path, used even when it does not exist yet.
    Configured(PathBuf),
    /// The first of `DEFAULT_NAMES` that exists in this directory
    /// (`~/.simpletuner`); saving creates `secrets.json` there when none does.
    Default(PathBuf),
    /// No location can be known (no configured path, no home directory): the
    /// provider answers "absent" and cannot save; the reason is its detail.
    Unknown(String),
}

pub(super) struct State {
    /// The file currently read (`None`: no file exists in default mode).
    pub(super) path: Option<PathBuf>,
    /// The version loaded (`None`: the file did not exist).
    pub(super) stamp: Option<Stamp>,
    /// The parsed file, or why it could not be read.
    pub(super) snapshot: Result<Arc<SecretMap>, Error>,
    /// A snapshot was loaded (or saved): before that, lookups wait for the
    /// first load instead of answering from the empty initial snapshot.
    pub(super) loaded: bool,
    /// Why the current version of the file is not what is served (it does
    /// not parse), while the last good snapshot is.
    pub(super) kept: Option<Error>,
    pub(super) mode: Option<u32>,
    /// When the metadata is next checked (`None`: at the next lookup).
    pub(super) next_check: Option<Instant>,
    /// A thread is re-reading the file: the others use the snapshot.
    pub(super) reloading: bool,
    /// Bumped by saves and invalidations: a re-read that started before
    /// one is dropped (it may hold an older version).
    pub(super) epoch: u64,
    /// Invalidated: the next re-read takes the file as it is, without the
    /// wait for an in-place rewrite to settle.
    pub(super) forced: bool,
    /// Keys whose values changed, told to the sink once the lock is
    /// released ([`Shared::tell_changes`]).
    pub(super) noticed: Vec<KeyChange>,
}

impl State {
    pub(super) fn new() -> Self {
        State {
            path: None,
            stamp: None,
            snapshot: Ok(Arc::default()),
            loaded: false,
            kept: None,
            mode: None,
            next_check: None,
            reloading: false,
            epoch: 0,
            forced: false,
            noticed: Vec::new(),
        }
    }

    /// In a forked child: the parent's re-read is not coming here.
    pub(super) fn after_fork(&mut self) {
        self.reloading = false;
    }
}

/// Clears the re-reading mark if a re-read panics.
pub(super) struct Reloading<'a>(&'a Mutex<State>);

impl Drop for Reloading<'_> {
    fn drop(&mut self) {
        self.0.lock().reloading = false;
    }
}

/// A re-read that is due: what was loaded, as it was when the re-read
/// started.
pub(super) struct Due {
    pub(super) now: Instant,
    pub(super) path: Option<PathBuf>,
    pub(super) stamp: Option<Stamp>,
    pub(super) good: Option<Arc<SecretMap>>,
    pub(super) epoch: u64,
    pub(super) forced: bool,
    /// Nothing was loaded yet.
    pub(super) first: bool,
}

/// What a re-read in the background needs.
pub(super) struct Shared {
    pub(super) location: FileLocation,
    pub(super) state: Mutex<State>,
    /// Files larger than this are refused before they are read.
    pub(super) max_size: AtomicU64,
    /// Bumped whenever the snapshot may have changed (reloaded, saved,
    /// invalidated): see [`FileProvider::generation`].
    pub(super) generation: AtomicU64,
    /// The manager's change sink.
    pub(super) sink: SinkSlot,
    /// Held by the thread doing the first load (the others wait on it: there
    /// is no snapshot to serve them yet).
    pub(super) first_load: Mutex<()>,
    /// Tests hold it to keep a background re-read from starting.
    #[cfg(test)]
    pub(super) gate: Mutex<()>,
}

pub(super) fn existing_default(dir: &Path) -> Option<PathBuf> {
    DEFAULT_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
}

/// A file modified more recently than this is re-read at every check, whatever
/// its metadata says (git's "racy timestamp" rule).
pub(super) const RACY_WINDOW: Duration = Duration::from_secs(2);

/// How many times the first load of a file that is being rewritten in place
/// (modified within [`RACY_WINDOW`], and empty, unparsable or changing while
/// read) is tried again, after 1, 2, 4 ... ms, before the file is taken as
/// it is: at most 63 ms, and only when there is no snapshot yet.
pub(super) const FIRST_LOAD_RETRIES: u32 = 6;

/// What identifies one version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(super) fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// What a re-read found.
pub(super) enum Reread {
    /// The file is as loaded: nothing to do.
    Same,
    /// A new version to serve (or the error to answer with).
    New {
        path: Option<PathBuf>,
        stamp: Option<Stamp>,
        snapshot: Result<Arc<SecretMap>, Error>,
        mode: Option<u32>,
    },
    /// A version that does not parse; the last good snapshot stays.
    Broken { stamp: Option<Stamp>, error: Error },
    /// A version that may be half-written: look again at the next check.
    Unsettled,
}

impl Shared {
    /// Re-reads the file for `due` (the re-read mark set) and serves what it
    /// found, unless a save or an invalidation came meanwhile.
    pub(super) fn refresh(&self, due: Due) {
        let reloading = Reloading(&self.state);
        let mut attempt = 0;
        let found = loop {
            let last = !due.first || attempt == FIRST_LOAD_RETRIES;
            let found = self.reread(
                due.path.as_deref(),
                due.stamp,
                due.good.as_deref(),
                due.forced || (due.first && last),
                due.first,
            );
            if last || !matches!(found, Reread::Unsettled) {
                break found;
            }
            std::thread::sleep(Duration::from_millis(1 << attempt));
            attempt += 1;
        };
        let mut st = self.state.lock();
        st.next_check = due.now.checked_add(CHECK_INTERVAL);
        if st.epoch != due.epoch {
            // Saved or invalidated meanwhile: what was read may be older.
            st.next_check = None;
            st.forced |= due.forced;
        } else {
            match found {
                Reread::Same | Reread::Unsettled => {}
                Reread::New {
                    path,
                    stamp,
                    snapshot,
                    mode,
                } => {
                    self.generation.fetch_add(1, Ordering::Release);
                    st.path = path;
                    st.stamp = stamp;
                    self.serve(&mut st, snapshot);
                    st.mode = mode;
                    st.kept = None;
                }
                Reread::Broken { stamp, error } => {
                    st.stamp = stamp;
                    st.kept = Some(error);
                }
            }
        }
        st.reloading = false;
        drop(st);
        std::mem::forget(reloading);
        self.tell_changes();
    }

    /// Tells the sink what the last re-read or save changed (with no lock
    /// held: listeners run here).
    pub(super) fn tell_changes(&self) {
        let noticed = std::mem::take(&mut self.state.lock().noticed);
        self.sink.tell(noticed);
    }

    /// Serves `snapshot` from now on, noting the keys whose values differ
    /// from the snapshot served before (the first load changes nothing).
    pub(super) fn serve(&self, st: &mut State, snapshot: Result<Arc<SecretMap>, Error>) {
        if let (true, Ok(old), Ok(new)) = (st.loaded, &st.snapshot, &snapshot) {
            if !Arc::ptr_eq(old, new) {
                st.noticed.extend(new.changes_since(old));
            }
        }
        st.snapshot = snapshot;
        st.loaded = true;
    }

    /// The file read now (`None`: no file exists in default mode).
    pub(super) fn current_path(&self) -> Option<PathBuf> {
        match &self.location {
            FileLocation::Configured(p) => Some(p.clone()),
            FileLocation::Default(dir) => existing_default(dir),
            FileLocation::Unknown(_) => None,
        }
    }

    pub(super) fn max_size(&self) -> u64 {
        self.max_size.load(Ordering::Relaxed)
    }

    /// Looks at the file (without the lock): what changed since the version
    /// `loaded` of `loaded_path`, whose snapshot is `good` when it parsed;
    /// `first`: nothing was loaded yet.
    pub(super) fn reread(
        &self,
        loaded_path: Option<&Path>,
        loaded: Option<Stamp>,
        good: Option<&SecretMap>,
        forced: bool,
        first: bool,
    ) -> Reread {
        let path = self.current_path();
        let meta = path.as_deref().map(fs::metadata);
        let stamp = match &meta {
            Some(Ok(m)) => Some(Stamp::of(m)),
            _ => None,
        };
        // A file modified within the last RACY_WINDOW may have changed again
        // without its metadata changing (same size, a timestamp granularity of a
        // second on some filesystems): re-read it until it has settled.
        let racy = match &meta {
            Some(Ok(m)) => m
                .modified()
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_none_or(|age| age < RACY_WINDOW),
            _ => false,
        };
        let same_path = path.as_deref() == loaded_path;
        if same_path && stamp == loaded && good.is_some() && !racy {
            return Reread::Same;
        }
        let (p, m) = match (&path, meta) {
            (Some(p), Some(Ok(m))) => (p, m),
            (Some(p), Some(Err(e))) if e.kind() != std::io::ErrorKind::NotFound => {
                return Reread::New {
                    snapshot: Err(Error::io("cannot read secrets file", p, &e)),
                    mode: None,
                    path,
                    stamp,
                }
            }
            _ => {
                return Reread::New {
                    path,
                    stamp,
                    snapshot: Ok(Arc::default()),
                    mode: None,
                }
            }
        };
        let Loaded {
            map: loaded_now,
            open_ended,
        } = load(p, self.max_size());
        let after = fs::metadata(p).ok().map(|m| Stamp::of(&m));
        if after != stamp && !forced {
            return Reread::Unsettled; // changed while it was read
        }
        let kept_good = good.filter(|_| same_path);
        // A file rewritten in place (the version loaded's inode) or read for
        // the first time while it is being written may be a writer half-way:
        // empty, partly written (a YAML plain scalar cut short still parses),
        // or broken. Worth another look before it is served.
        let in_place = loaded.is_some_and(|l| l.dev == m.dev() && l.ino == m.ino());
        let half_written = racy
            && !forced
            && match (&loaded_now, kept_good) {
                (Ok(map), Some(good)) => in_place && (open_ended || map.lost_keys_of(good)),
                (Ok(map), None) => first && (open_ended || map.len() == 0),
                (Err(Error::Parse(_)), None) => first,
                _ => false,
            };
        if half_written {
            return Reread::Unsettled;
        }
        match (loaded_now, kept_good) {
            (Err(error @ Error::Parse(_)), Some(_)) => Reread::Broken { stamp, error },
            (snapshot, _) => Reread::New {
                // The metadata read before the file (unchanged since, or forced).
                mode: Some(m.mode() & 0o7777),
                path: path.clone(),
                stamp,
                snapshot: snapshot.map(Arc::new),
            },
        }
    }
}

/// What [`load`] read.
struct Loaded {
    map: Result<SecretMap, Error>,
    /// A YAML text that does not end with a line break: what a writer
    /// caught half-way leaves (a truncated plain scalar still parses, as a
    /// shorter value), and what no YAML writer ends a document with.
    open_ended: bool,
}

/// Reads and parses the file into a snapshot of its scalar values.
fn load(path: &Path, max_size: u64) -> Loaded {
    let mut bytes = match fsutil::read_regular(path, "secrets file", max_size) {
        Ok(Some(bytes)) => bytes,
        // Removed since its metadata was read.
        Ok(None) => {
            return Loaded {
                map: Ok(SecretMap::default()),
                open_ended: false,
            }
        }
        Err(e) => {
            return Loaded {
                map: Err(e),
                open_ended: false,
            }
        }
    };
    let format = Format::of(path);
    let open_ended = format == Format::Yaml && bytes.last().is_some_and(|&b| b != b'\n');
    let map = Document::snapshot(&bytes, format, path);
    bytes.zeroize();
    Loaded { map, open_ended }
}

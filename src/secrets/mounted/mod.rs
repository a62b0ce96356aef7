//! The mounted-secrets provider: directories the platform fills with one
//! file per key (a Kubernetes Secret volume, the Secrets Store CSI driver,
//! Docker and Podman's `/run/secrets`, systemd's `$CREDENTIALS_DIRECTORY`).
//! The file's name is the key (normalized as every key is), its content the
//! value (trailing line breaks removed, as `$(< file)` does).
//!
//! **Generations, never a mix.** The kubelet (and the CSI driver, which
//! uses its writer) updates a volume by writing a new timestamped directory,
//! pointing `..data_tmp` at it and renaming that over `..data`; the names a
//! pod sees are symlinks through `..data`. A volume with `..data` is read
//! as one generation: the link is read on every lookup (one `readlink`),
//! and a new target is loaded whole from that directory (never through the
//! links, which a second swap could move mid-read), then checked to be
//! still current; a generation that vanished while it was read is read
//! again from the newer one, and a volume swapped under each of nine reads
//! keeps the generation held. One swap is one change event carrying every
//! key it changed. A directory without `..data` is listed again at most
//! every [`CHECK_INTERVAL`] and reloaded when a file's identity, size or
//! modification time changed.
//!
//! Files are read as the secrets file is: regular files only, opened
//! without blocking, at most `max_file_size` bytes; a file readable or
//! writable by group or others, or owned by another user (root's excepted),
//! is named in the status's warnings (a kubelet volume's 0644 is its
//! default mode, and not warned about). Hidden names (`.` first) and
//! subdirectories are not keys; a file that is not UTF-8 is skipped.

use super::provider::{ChangeSink, Provider, ProviderStatus, SecretMap, SinkSlot};
use crate::error::Error;
use crate::secret::SecretString;
use crate::sys::Mutex;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a directory without `..data` is listed again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How many times a generation that vanished while it was read (the
/// kubelet swapped again and removed it) is read again from the newer one.
const SWAP_RETRIES: usize = 8;

/// The mounted-secrets provider's settings (`mounted_dirs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountedSettings {
    /// The directories, looked up in order; `None`: `SIMPLETUNER_SECRETS_DIRS`
    /// (colon-separated) when the configuration comes from the environment.
    /// `$CREDENTIALS_DIRECTORY` (systemd) is looked up after them when set.
    pub dirs: Option<Vec<PathBuf>>,
}

/// The environment variable listing the directories.
pub const ENV_SECRETS_DIRS: &str = "SIMPLETUNER_SECRETS_DIRS";
/// systemd's credentials directory of the service.
pub const ENV_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// What identifies one state of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Generation {
    /// Not read yet, or not there.
    None,
    /// A kubelet volume: the target of `..data`.
    Kubelet(OsString),
    /// A plain directory: each file's name, device, inode, size and
    /// modification time.
    Plain(Vec<(OsString, u64, u64, u64, i64, i64)>),
}

/// One directory and what was last read of it.
struct Mount {
    path: PathBuf,
    /// Where it was configured, in statuses.
    source: &'static str,
    state: Mutex<State>,
}

struct State {
    generation: Generation,
    map: Arc<SecretMap>,
    /// When a plain directory was last listed.
    checked: Option<Instant>,
    /// Files named in the status (modes, owners, skipped contents).
    warnings: Vec<String>,
    /// Why the directory could not be read, if it could not.
    problem: Option<String>,
}

/// Reads secrets from mounted directories; see the module documentation.
pub struct MountedProvider {
    mounts: Vec<Mount>,
    max_size: u64,
    sink: SinkSlot,
    me: std::sync::Weak<MountedProvider>,
}

impl MountedProvider {
    /// The provider of `settings`' directories (then `$CREDENTIALS_DIRECTORY`),
    /// reading files of at most `max_size` bytes.
    pub fn new(settings: &MountedSettings, max_size: u64) -> Arc<MountedProvider> {
        let mut mounts: Vec<Mount> = Vec::new();
        let mut add = |path: PathBuf, source: &'static str| {
            if !path.as_os_str().is_empty() && !mounts.iter().any(|m| m.path == path) {
                mounts.push(Mount {
                    path,
                    source,
                    state: Mutex::with_fresh(State::empty(), State::empty),
                });
            }
        };
        for d in settings.dirs.iter().flatten() {
            add(d.clone(), "mounted_dirs");
        }
        if let Some(d) = std::env::var_os(ENV_CREDENTIALS_DIRECTORY) {
            add(PathBuf::from(d), ENV_CREDENTIALS_DIRECTORY);
        }
        Arc::new_cyclic(|me| MountedProvider {
            mounts,
            max_size,
            sink: SinkSlot::default(),
            me: me.clone(),
        })
    }

    /// The directories from `SIMPLETUNER_SECRETS_DIRS` (colon-separated,
    /// `~/` expanded); `None` when it is unset or empty.
    pub fn dirs_from_environment() -> Option<Vec<PathBuf>> {
        let v = std::env::var_os(ENV_SECRETS_DIRS).filter(|v| !v.is_empty())?;
        Some(
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .map(crate::paths::expand_home)
                .collect(),
        )
    }

    /// Each directory's current map, reading what changed; the changes are
    /// told to the manager (one batch per directory that changed).
    fn current(&self, mount: &Mount) -> Result<Arc<SecretMap>, Error> {
        let (map, changes) = mount.current(self.max_size)?;
        self.sink.tell(changes);
        Ok(map)
    }
}

impl State {
    fn empty() -> State {
        State {
            generation: Generation::None,
            map: Arc::new(SecretMap::default()),
            checked: None,
            warnings: Vec::new(),
            problem: None,
        }
    }
}

impl Mount {
    /// The map of the directory's current generation, and the keys that
    /// changed since the one held before (none on the first read).
    fn current(
        &self,
        max: u64,
    ) -> Result<(Arc<SecretMap>, Vec<super::provider::KeyChange>), Error> {
        let mut state = self.state.lock();
        let link = self.path.join("..data");
        let mut tries = 0;
        let (generation, map, warnings) = loop {
            match std::fs::read_link(&link) {
                Ok(target) => {
                    let generation = Generation::Kubelet(target.clone().into_os_string());
                    if state.generation == generation {
                        return Ok((Arc::clone(&state.map), Vec::new()));
                    }
                    if !inside_volume(&self.path, &target) {
                        let e = Error::Permission(format!(
                            "{} points outside the volume (to {}); refusing to read it as the \
                             volume's secrets (the kubelet's link names one directory beside it)",
                            printable_path(&link),
                            printable_path(&target)
                        ));
                        return self.failed(&mut state, e);
                    }
                    let read = self.load(&self.path.join(&target), max, true);
                    // Still the generation read, and read whole: it counts.
                    let still = std::fs::read_link(&link).is_ok_and(|t| t == target);
                    match read {
                        Ok((map, warnings)) if still => break (generation, map, warnings),
                        Err(e) if still => return self.failed(&mut state, e),
                        // Swapped under every read (faster than it can be
                        // read): the generation held stays, never an error;
                        // with none held yet, the failure is said.
                        _ if tries >= SWAP_RETRIES && state.generation != Generation::None => {
                            return Ok((Arc::clone(&state.map), Vec::new()))
                        }
                        Err(e) if tries >= SWAP_RETRIES => return self.failed(&mut state, e),
                        Ok(_) if tries >= SWAP_RETRIES => {
                            let e = Error::Io(format!(
                                "the volume {} was swapped under each of {} reads",
                                printable_path(&self.path),
                                SWAP_RETRIES + 1
                            ));
                            return self.failed(&mut state, e);
                        }
                        _ => tries += 1, // swapped meanwhile: read the newer one
                    }
                }
                Err(_) => {
                    let now = Instant::now();
                    if state
                        .checked
                        .is_some_and(|at| now.duration_since(at) < CHECK_INTERVAL)
                    {
                        return Ok((Arc::clone(&state.map), Vec::new()));
                    }
                    state.checked = Some(now);
                    let generation = match plain_generation(&self.path) {
                        Ok(g) => g,
                        Err(e) => return self.failed(&mut state, e),
                    };
                    if state.generation == generation {
                        return Ok((Arc::clone(&state.map), Vec::new()));
                    }
                    match self.load(&self.path, max, false) {
                        Ok((map, warnings)) => break (generation, map, warnings),
                        Err(e) => return self.failed(&mut state, e),
                    }
                }
            }
        };
        let changes = if state.generation == Generation::None {
            Vec::new()
        } else {
            map.changes_since(&state.map)
        };
        state.generation = generation;
        state.map = Arc::new(map);
        state.warnings = warnings;
        state.problem = None;
        Ok((Arc::clone(&state.map), changes))
    }

    /// A directory that cannot be read: absent when it does not exist
    /// (nothing mounted), else the error, kept for the status.
    fn failed(
        &self,
        state: &mut State,
        e: Error,
    ) -> Result<(Arc<SecretMap>, Vec<super::provider::KeyChange>), Error> {
        state.problem = Some(e.to_string());
        if !self.path.exists() {
            state.generation = Generation::None;
            state.map = Arc::new(SecretMap::default());
            return Ok((Arc::clone(&state.map), Vec::new()));
        }
        Err(e)
    }

    /// Every key file of `dir`, with the warnings about them.
    fn load(&self, dir: &Path, max: u64, kubelet: bool) -> Result<(SecretMap, Vec<String>), Error> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot list the mounted secrets directory", dir, &e))?;
        let mut map = SecretMap::default();
        let mut warnings = Vec::new();
        let me = crate::sys::effective_uid();
        // The directory decides which file a name is: its owner and anyone
        // who may write to it choose the values as a file's owner does.
        for d in [self.path.as_path(), dir] {
            if let Ok(meta) = std::fs::metadata(d) {
                if meta.uid() != me && meta.uid() != 0 {
                    warnings.push(format!(
                        "directory {} is owned by another user (uid {}): whoever owns it chooses \
                         the values",
                        printable_path(d),
                        meta.uid()
                    ));
                } else if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
                    warnings.push(format!(
                        "directory {} may be written by group or others without the sticky bit \
                         (mode {:04o}): they choose the values",
                        printable_path(d),
                        meta.mode() & 0o7777
                    ));
                }
            }
            if !kubelet {
                break;
            }
        }
        let mut names: Vec<OsString> = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::io("cannot list the mounted secrets directory", dir, &e))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().first() != Some(&b'.') {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            // A symlink (a plain directory's own links) is followed; a
            // subdirectory is not a key.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                continue;
            }
            let shown = self.path.join(&name);
            // In a shared (sticky) directory another user may plant a link
            // to a file of ours: the link's owner chose it.
            if let Ok(link) = std::fs::symlink_metadata(&path) {
                if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
                    warnings.push(format!(
                        "{} is a link made by another user (uid {}): whoever made it chooses \
                         the value",
                        printable_path(&shown),
                        link.uid()
                    ));
                }
            }
            let Some(mut bytes) = crate::fsutil::read_regular(&path, "mounted secret", max)? else {
                return Err(Error::Io(format!(
                    "mounted secret {} vanished while it was read",
                    printable_path(&shown)
                )));
            };
            let mode = meta.mode() & 0o777;
            if !kubelet && mode & 0o077 != 0 && !crate::fsutil::acl_only_for(&path, me) {
                warnings.push(format!(
                    "{} is readable or writable by group or others (mode {mode:04o})",
                    printable_path(&shown)
                ));
            }
            if meta.uid() != me && meta.uid() != 0 {
                warnings.push(format!(
                    "{} is owned by another user (uid {}): whoever owns it chooses the value",
                    printable_path(&shown),
                    meta.uid()
                ));
            }
            while bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            let key = name.to_string_lossy().into_owned();
            match String::from_utf8(bytes) {
                Ok(value) => map.insert(key, value),
                Err(e) => {
                    zeroize::Zeroize::zeroize(&mut e.into_bytes());
                    warnings.push(format!(
                        "{} is not UTF-8 text: skipped (read it as a file)",
                        printable_path(&shown)
                    ));
                    map.skip(key);
                }
            }
        }
        Ok((map, warnings))
    }

    /// What a status says of the directory.
    fn describe(&self) -> (bool, String, Vec<String>) {
        let state = self.state.lock();
        let kind = match &state.generation {
            Generation::Kubelet(target) => {
                format!("a kubelet volume at {}", printable_path(Path::new(target)))
            }
            _ => "a directory".to_owned(),
        };
        match &state.problem {
            Some(p) if self.path.exists() => (
                true,
                format!("{} (from {}): {p}", printable_path(&self.path), self.source),
                state.warnings.clone(),
            ),
            _ if !self.path.exists() => (
                false,
                format!(
                    "{} (from {}) does not exist",
                    printable_path(&self.path),
                    self.source
                ),
                Vec::new(),
            ),
            _ => (
                true,
                format!(
                    "{} (from {}): {kind}, {} keys",
                    printable_path(&self.path),
                    self.source,
                    state.map.keys().len()
                ),
                state.warnings.clone(),
            ),
        }
    }
}

/// A path in a message: through the one `printable` rule (a file name may
/// hold escapes and line breaks).
fn printable_path(path: &Path) -> String {
    crate::error::printable(&path.to_string_lossy())
}

/// Whether a `..data` target names a directory beside it in the volume
/// `dir`, as the kubelet's does (`..2024_01_01_00_00_00.123`): one plain
/// name, never absolute, never `..`, never a link leading elsewhere.
fn inside_volume(dir: &Path, target: &Path) -> bool {
    let mut parts = target.components();
    let one_name = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    one_name
        && !std::fs::symlink_metadata(dir.join(target)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The identity of a plain directory's files now.
fn plain_generation(dir: &Path) -> Result<Generation, Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot list the mounted secrets directory", dir, &e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if let Ok(m) = std::fs::metadata(entry.path()) {
            out.push((
                entry.file_name(),
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
            ));
        }
    }
    out.sort();
    Ok(Generation::Plain(out))
}

impl Provider for MountedProvider {
    fn name(&self) -> &'static str {
        "mounted"
    }

    fn lookup(&self, key: &str) -> Result<Option<SecretString>, Error> {
        for mount in &self.mounts {
            let map = self.current(mount)?;
            if let Some((_, v)) = map.resolve(key) {
                return Ok(Some(v.clone()));
            }
        }
        Ok(None)
    }

    fn invalidate(&self) {
        for mount in &self.mounts {
            let mut state = mount.state.lock();
            state.checked = None;
        }
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = Vec::new();
        for mount in &self.mounts {
            for k in self.current(mount)?.keys() {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }

    fn holds_non_secret(&self, key: &str) -> bool {
        self.mounts
            .iter()
            .any(|m| m.state.lock().map.holds_non_secret(key))
    }

    fn status(&self) -> ProviderStatus {
        if self.mounts.is_empty() {
            return ProviderStatus {
                name: self.name(),
                available: false,
                detail: format!(
                    "no directory configured (mounted_dirs, {ENV_SECRETS_DIRS}, \
                     {ENV_CREDENTIALS_DIRECTORY})"
                ),
                warnings: Vec::new(),
                failure: None,
            };
        }
        let mut available = false;
        let mut details = Vec::new();
        let mut warnings = Vec::new();
        for mount in &self.mounts {
            let _ = self.current(mount);
            let (there, detail, w) = mount.describe();
            available |= there;
            details.push(detail);
            warnings.extend(w);
        }
        ProviderStatus {
            name: self.name(),
            available,
            detail: format!("one file per key in {}", details.join("; then ")),
            warnings,
            failure: None,
        }
    }

    fn connect(&self, sink: Arc<dyn ChangeSink>) {
        self.sink.connect(Arc::clone(&sink));
        let me = self.me.clone();
        sink.watch(Box::new(move || {
            let Some(me) = me.upgrade() else {
                return false;
            };
            for mount in &me.mounts {
                let _ = me.current(mount);
            }
            true
        }));
    }
}

#[cfg(test)]
mod tests;

//! Writing a job's files: the list of secrets it asks for, the files
//! fetched and written new ([`write_files`]), and those of short-lived
//! credentials rewritten in place as they are renewed ([`refresh_files`]).

use super::conventions::{file_path, plan, refusal, render_files, Delivery, Render};
use crate::error::{printable, Error};
use crate::secret::SecretString;
use crate::secrets::lifetime;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What [`write_files`] and [`refresh_files`] write: the values, and what
/// decides the files (the manager's, in the C ABI: [`super::ManagerValues`]).
pub trait JobValues {
    /// The value of `key` and when it ends (a lease's, an exchanged
    /// credential's); `None` when no provider holds it.
    fn value(&self, key: &str) -> Result<Option<(SecretString, Option<SystemTime>)>, Error>;
    /// A variable of the environment the files are planned in
    /// (`WANDB_BASE_URL`, `AWS_PROFILE`).
    fn var(&self, name: &str) -> Option<String>;
    /// The file of `w` when its key is a token exchange's credential that
    /// its vendor's SDK reads from a file of its own (W&B's credentials
    /// file, Anthropic's profile); `None` for any other key.
    fn exchanged(&self, w: &Wanted) -> Result<Option<Delivery>, Error>;
    /// Whether `key`'s value is short-lived and renewed by the library (a
    /// token exchange's credential): [`refresh_files`] rewrites its file.
    fn short_lived(&self, key: &str) -> bool;
}

/// How [`write_files`] lays a job's secrets out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The conventions of the module's table: a token file, a netrc, an
    /// AWS credentials file, a vendor's file for an exchanged credential,
    /// `NAME_FILE`.
    Conventions,
    /// One file per key and `NAME=st://KEY`, for processes that read their
    /// secrets through the library.
    Keys,
}

impl Layout {
    /// `"files"` or `"refs"`, the names the C ABI and the Slurm plugin take.
    pub fn from_name(name: &str) -> Result<Layout, Error> {
        match name {
            "files" => Ok(Layout::Conventions),
            "refs" => Ok(Layout::Keys),
            other => Err(Error::InvalidArgument(format!(
                "layout '{}' is not one of files, refs",
                printable(other)
            ))),
        }
    }
}

/// One secret a job asks for: the variable its processes know it by, and
/// the key it is read under (the variable's own name unless given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub var: String,
    pub key: String,
}

/// The most secrets one list may name.
pub const MAX_WANTED: usize = 256;

/// `NAME[=KEY],...`: each `NAME` a variable name (a letter or `_`, then
/// letters, digits, `_`), each `KEY` a key without spaces, commas, `=`, `/`
/// or control characters, and not starting with `.`; no variable twice.
/// Errors name the item, which is a name, never a value.
pub fn parse_wanted(list: &str) -> Result<Vec<Wanted>, Error> {
    let bad = |item: &str, why: &str| {
        Error::InvalidArgument(format!(
            "'{}' in the list of secrets: {why}",
            printable(item)
        ))
    };
    let mut out: Vec<Wanted> = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(Error::InvalidArgument(
                "the list of secrets has an empty item (NAME[=KEY],...)".into(),
            ));
        }
        let (var, key) = item.split_once('=').unwrap_or((item, item));
        let var_ok = var
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !var_ok {
            return Err(bad(
                item,
                "not a variable name (a letter or _, then letters, digits, _)",
            ));
        }
        if !plain_file_name(key) || key.contains('=') {
            return Err(bad(item, "not a key (no spaces, /, = or a leading dot)"));
        }
        if out.iter().any(|w| w.var == var) {
            return Err(bad(item, "the variable is named twice"));
        }
        out.push(Wanted {
            var: var.to_owned(),
            key: key.to_owned(),
        });
        if out.len() > MAX_WANTED {
            return Err(Error::InvalidArgument(format!(
                "the list of secrets names more than {MAX_WANTED}"
            )));
        }
    }
    Ok(out)
}

/// A name that is one plain file in a directory.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name
            .bytes()
            .any(|b| b == b'/' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// One file of a job: its delivery and the indexes in `wanted` of the
/// values it holds, in the delivery's order.
struct Planned {
    delivery: Delivery,
    from: Vec<usize>,
}

/// The files of `wanted` laid out as `layout` (with
/// `Layout::Keys`, one plain file per key, its first variable's).
fn planned(
    wanted: &[Wanted],
    layout: Layout,
    values: &dyn JobValues,
) -> Result<Vec<Planned>, Error> {
    let mut out = Vec::new();
    if layout == Layout::Keys {
        for (i, w) in wanted.iter().enumerate() {
            if !out.iter().any(|p: &Planned| p.delivery.file == w.key) {
                out.push(Planned {
                    delivery: Delivery {
                        file: w.key.clone(),
                        path_var: w.var.clone(),
                        from: vec![w.var.clone()],
                        render: Render::Plain,
                        also: Vec::new(),
                    },
                    from: vec![i],
                });
            }
        }
        return Ok(out);
    }
    let mut rest = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        match values.exchanged(w)? {
            Some(delivery) => out.push(Planned {
                delivery,
                from: vec![i],
            }),
            None => rest.push(w.var.as_str()),
        }
    }
    for delivery in plan(&rest, |n| values.var(n)) {
        let from = delivery
            .from
            .iter()
            .filter_map(|f| wanted.iter().position(|w| &w.var == f))
            .collect();
        out.push(Planned { delivery, from });
    }
    Ok(out)
}

/// Fetches every value of `wanted`, in order: a key no provider holds is
/// [`Error::NotFound`] naming the variable and the key; a provider's
/// failure names them too.
type Fetched = Vec<(SecretString, Option<SystemTime>)>;

fn fetch_all(wanted: &[&Wanted], values: &dyn JobValues) -> Result<Fetched, Error> {
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let found = values
            .value(&w.key)
            .map_err(|e| e.context(format!("{} (key '{}')", w.var, w.key)))?;
        out.push(found.ok_or_else(|| {
            Error::NotFound(format!(
                "{}: the key '{}' is set nowhere in the chain",
                w.var, w.key
            ))
        })?);
    }
    Ok(out)
}

/// `dir` as a directory the files may go to: a directory (not a link) on
/// a memory-backed filesystem (tmpfs or ramfs).
fn check_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::io("cannot use", dir, &e)),
    }
    if crate::sys::memory_backed(dir) != Some(true) {
        return Err(Error::InvalidArgument(format!(
            "{} is not on a memory-backed filesystem (tmpfs or ramfs): the values would touch a disk",
            dir.display()
        )));
    }
    Ok(())
}

/// A file's name in the job's directory and its bytes.
type Named = (String, zeroize::Zeroizing<Vec<u8>>);

/// The bytes of each file of `p` for `fetched` (the values of `wanted`),
/// each with its name in the directory; a value the file cannot hold is
/// refused naming its variables.
fn contents(p: &Planned, fetched: &Fetched) -> Result<Vec<Named>, Error> {
    let d = &p.delivery;
    let parts: Vec<&[u8]> = p
        .from
        .iter()
        .map(|&i| fetched[i].0.expose_bytes())
        .collect();
    if let Some(why) = parts.iter().find_map(|v| refusal(&d.render, v)) {
        return Err(Error::InvalidArgument(format!(
            "{}: {why} (its value cannot go into {})",
            d.from.join(", "),
            d.file
        )));
    }
    let ends = p.from.first().and_then(|&i| fetched[i].1);
    Ok(render_files(&d.render, &parts, ends)
        .into_iter()
        .map(|(name, bytes)| (file_path(&d.file, &name), bytes))
        .collect())
}

/// Fetches every secret of `wanted` from `values`, then writes them into
/// `dir` laid out as `layout`, each file created new with mode 0600 (a
/// delivery that is a directory, as Anthropic's profile, made 0700) and,
/// with `owner` (uid, gid), handed to that user before anything is written
/// to it. Returns the variables the job's processes get, in order (each a
/// path, the directory, `st://KEY`, or what a vendor's SDK needs beside
/// its file): what to put in their environment.
///
/// `dir` must exist, be a directory (not a link) and be on a memory-backed
/// filesystem (tmpfs or ramfs). A key no provider holds is
/// [`Error::NotFound`] naming the variable and the key; nothing is written
/// unless every value was found. A failure after the first file removes
/// the files written.
pub fn write_files(
    wanted: &[Wanted],
    dir: &Path,
    layout: Layout,
    owner: Option<(u32, u32)>,
    values: &dyn JobValues,
) -> Result<Vec<(String, String)>, Error> {
    check_dir(dir)?;
    let files = planned(wanted, layout, values)?;
    let fetched = fetch_all(&wanted.iter().collect::<Vec<_>>(), values)?;
    let mut written = Written {
        paths: Vec::new(),
        done: false,
    };
    let mut vars = Vec::new();
    for p in &files {
        let d = &p.delivery;
        for (name, bytes) in contents(p, &fetched)? {
            written.write(dir, &name, &bytes, owner)?;
        }
        match layout {
            Layout::Keys => {}
            Layout::Conventions => {
                let path = dir.join(&d.file);
                vars.push((d.path_var.clone(), path.to_string_lossy().into_owned()));
                vars.extend(d.also.iter().cloned());
            }
        }
    }
    if layout == Layout::Keys {
        vars = wanted
            .iter()
            .map(|w| (w.var.clone(), format!("st://{}", w.key)))
            .collect();
        vars.push((
            "SIMPLETUNER_SECRETS_DIRS".to_owned(),
            dir.to_string_lossy().into_owned(),
        ));
    }
    written.done = true;
    Ok(vars)
}

/// What [`refresh_files`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// The files rewritten (their names in the directory).
    pub rewritten: Vec<String>,
    /// When to look again: as [`lifetime::look_again_in`] the time left to
    /// the soonest end of the short-lived values (a quarter, at least a
    /// second);
    /// `None` when none of the files holds a short-lived value.
    pub next: Option<SystemTime>,
}

/// Rewrites, in `dir` where [`write_files`] wrote them for the same
/// `wanted` and `layout`, the files holding a short-lived value
/// ([`JobValues::short_lived`]: a token exchange's credential) whose
/// contents changed: each replaced atomically (a new file renamed over
/// it, so a reader sees the old or the new, never part of one), with the
/// owner, group and ACL of the file it replaces. The other files are not
/// read again (a leased secret would be issued anew). A file whose value
/// cannot be had keeps its contents and the error is returned, after the
/// others were rewritten.
pub fn refresh_files(
    wanted: &[Wanted],
    dir: &Path,
    layout: Layout,
    values: &dyn JobValues,
) -> Result<Refreshed, Error> {
    check_dir(dir)?;
    let mut out = Refreshed::default();
    let mut first_error = None;
    let now = SystemTime::now();
    for p in planned(wanted, layout, values)? {
        if !p.from.iter().any(|&i| values.short_lived(&wanted[i].key)) {
            continue;
        }
        let own: Vec<&Wanted> = p.from.iter().map(|&i| &wanted[i]).collect();
        let fetched = match fetch_all(&own, values) {
            Ok(f) => f,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let short = own
            .iter()
            .zip(&fetched)
            .filter(|(w, _)| values.short_lived(&w.key));
        for (_, (_, ends)) in short {
            let left = ends
                .and_then(|e| e.duration_since(now).ok())
                .unwrap_or_default();
            let at = now + lifetime::look_again_in(left);
            out.next = Some(out.next.map_or(at, |n| n.min(at)));
        }
        let local = Planned {
            delivery: p.delivery.clone(),
            from: (0..own.len()).collect(),
        };
        let files = match contents(&local, &fetched) {
            Ok(f) => f,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        for (name, bytes) in files {
            let target = dir.join(&name);
            let same = crate::fsutil::read_regular(&target, "a job's file", bytes.len() as u64 + 1)
                .ok()
                .flatten()
                .map(zeroize::Zeroizing::new)
                .is_some_and(|old| old.as_slice() == bytes.as_slice());
            if same {
                continue;
            }
            match replace_file(dir, &name, &bytes) {
                Ok(()) => out.rewritten.push(name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Replaces the file `name` of `dir` (a plain name, or plain names joined
/// by `/` inside the delivery's directory) with `bytes` atomically, the new
/// file given the owner, group and ACL of the old: `run --watch`'s
/// rewrites and [`refresh_files`]'.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    check_name(name)?;
    let target = dir.join(name);
    let (parent, base) = match name.rsplit_once('/') {
        Some((p, b)) => (dir.join(p), b),
        None => (dir.to_owned(), name),
    };
    crate::fsutil::replace_keeping_access(&parent, base, &target, bytes)
}

/// `name` as a path in a job's directory: plain names joined by `/` (a
/// delivery that is a directory names its files so), as an error naming it
/// otherwise.
pub fn check_name(name: &str) -> Result<(), Error> {
    if name.split('/').all(plain_name) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "'{}' is not a plain file name (no '/', not '.' or '..'): refused",
        printable(name)
    )))
}

/// Whether `name` can name a file of a job's directory: one plain file
/// name (not empty, no `/` or NUL, not `.` or `..`), so that nothing is
/// written outside it.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Creates `path` new (never through an existing name or a link) with mode
/// 0600 from its first byte, for writing: every secret file a job gets,
/// here and in `run --file`.
pub fn create_new_private(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, &e))
}

/// The files and directories [`write_files`] made, removed on drop unless
/// it finished.
struct Written {
    paths: Vec<PathBuf>,
    done: bool,
}

impl Written {
    /// Writes `bytes` to the new file `name` of `dir`, making the
    /// directories of a nested name first (0700, handed as the file).
    fn write(
        &mut self,
        dir: &Path,
        name: &str,
        bytes: &[u8],
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, Error> {
        check_name(name)?;
        let hand = |path: &Path, f: &std::fs::File| match owner {
            Some((uid, gid)) => std::os::unix::fs::fchown(f, Some(uid), Some(gid))
                .map_err(|e| Error::io("cannot hand to the job's user", path, &e)),
            None => Ok(()),
        };
        let mut at = dir.to_owned();
        let mut parts: Vec<&str> = name.split('/').collect();
        let file = parts.pop().unwrap_or_default();
        for part in parts {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&at)
                .map_err(|e| Error::io("cannot create directory", &at, &e))?;
            self.paths.push(at.clone());
            let d = std::fs::File::open(&at).map_err(|e| Error::io("cannot open", &at, &e))?;
            hand(&at, &d)?;
        }
        let path = at.join(file);
        let f = create_new_private(&path)?;
        self.paths.push(path.clone());
        hand(&path, &f)?;
        (&f).write_all(bytes)
            .map_err(|e| Error::io("cannot write", &path, &e))?;
        Ok(path)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.done {
            // Files before the directories holding them: the reverse order.
            for p in self.paths.iter().rev() {
                let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
            }
        }
    }
}

//! A token kept in a file that something else rewrites: a Vault Agent's
//! token sink, `~/.vault-token`, the AWS Secrets Manager Agent's SSRF token
//! file. Read on first use, read again whenever the file changed (its
//! device, inode, size, modification time, mode or owner: a new mode or
//! owner is judged again), and read again on demand
//! after the server refused the token (an agent may have just rewritten it).

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::{self, Readers};
use crate::sys::Mutex;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Largest token file read: 64 KiB (tokens are a few hundred bytes).
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// How long a file being rewritten in place is waited for before the last
/// good token (or an error) answers, and the pause between reads; while
/// it reads empty and was changed less than [`SETTLE_LONG`] ago (a writer
/// between its truncate and its write, descheduled on a busy machine),
/// until it has been that long.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);
const SETTLE_LONG: std::time::Duration = std::time::Duration::from_secs(2);
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// The pause before a refused token, its file rewritten in place since it
/// was read, is sent once more.
const REWRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// What identifies one version of the file.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    /// A new mode or owner is a new version, judged again.
    mode: u32,
    uid: u32,
}

impl Stamp {
    /// Whether this version was written less than `ago` before now.
    fn within(&self, ago: std::time::Duration) -> bool {
        let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        let written = std::time::Duration::new(
            u64::try_from(self.mtime.0).unwrap_or(0),
            u32::try_from(self.mtime.1).unwrap_or(0),
        );
        since.saturating_sub(written) < ago
    }

    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            mode: m.mode(),
            uid: m.uid(),
        })
    }
}

/// A token file; see the module documentation.
pub struct TokenFile {
    path: PathBuf,
    /// What it is, in messages ("Vault token file").
    what: &'static str,
    /// Where its path came from, in messages ("SIMPLETUNER_VAULT_TOKEN_FILE").
    source: String,
    /// Read under the identity-file rule (a secret that is the machine's
    /// identity, such as an AppRole secret ID), or only refused when others
    /// may write it (a file an agent of another user may write, warned of).
    rule: Option<Readers>,
    last: Mutex<Option<(Stamp, SecretString)>>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// The file at `path`, `what` it holds, and `source`, where its path was
    /// set; nothing is read yet.
    pub fn new(path: PathBuf, what: &'static str, source: impl Into<String>) -> TokenFile {
        TokenFile {
            path,
            what,
            source: source.into(),
            rule: None,
            last: Mutex::with_fresh(None, || None),
        }
    }

    /// As [`new`](Self::new), the file read under the identity-file rule
    /// with `readers` (owned by this user or root, not writable by others,
    /// readable by others only as `readers` allows).
    pub fn identity(
        path: PathBuf,
        what: &'static str,
        source: impl Into<String>,
        readers: Readers,
    ) -> TokenFile {
        TokenFile {
            rule: Some(readers),
            ..TokenFile::new(path, what, source)
        }
    }

    /// Where its path was set, and the path ("SIMPLETUNER_VAULT_TOKEN_FILE
    /// (/run/agent/token)"), for messages and statuses.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.source, self.path.display())
    }

    /// What a status should say about the file, read now (nothing about
    /// its content): writable by group or others (a get refuses it), or
    /// owned by another user than this process's (root excepted: the files
    /// agents and orchestrators write, such as Kubernetes' projected tokens,
    /// are root's), who then chooses the token sent.
    pub fn warnings(&self) -> Vec<String> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Vec::new();
        };
        if let Some(readers) = self.rule {
            let what = format!("{} (set by {})", self.what, self.source);
            return identity_file::check_owner_and_mode(&self.path, &what, &meta, readers)
                .err()
                .map(|e| e.message().to_owned())
                .into_iter()
                .collect();
        }
        let mut out = Vec::new();
        if meta.mode() & 0o022 != 0 {
            out.push(format!(
                "{} {} (set by {}) is writable by group or others (mode {:o}): it is refused \
                 (chmod go-w)",
                self.what,
                self.path.display(),
                self.source,
                meta.mode() & 0o777
            ));
        }
        let me = crate::sys::effective_uid();
        if meta.uid() != me && meta.uid() != 0 {
            out.push(format!(
                "{} {} (set by {}) is owned by another user (uid {}, this process runs as \
                 {me}): whoever owns it chooses the token sent",
                self.what,
                self.path.display(),
                self.source,
                meta.uid()
            ));
        }
        out
    }

    /// The token: the one read before if the file has not changed since,
    /// else the file's content read now (surrounding whitespace removed).
    ///
    /// A writer rewriting the file in place (`echo T > file` truncates, then
    /// writes) is waited out: a read counts when the file did not change
    /// while it was read and holds a token, and is tried again for at most
    /// [`SETTLE`] otherwise (a file reading empty that was changed in the
    /// last 2 s: until it has been 2 s). After that, the last good token of the same
    /// file answers while the file reads empty or as a prefix of it (the new
    /// stamp is not kept, so the next get reads again). An empty or cut
    /// token is never sent.
    ///
    /// # Errors
    /// [`Error::ProviderUnavailable`] when the file is missing or empty;
    /// [`Error::Io`] / [`Error::Permission`] when it cannot be read, is not a
    /// regular file or is larger than 64 KiB. Never the token.
    pub fn get(&self) -> Result<SecretString, Error> {
        let mut last = self.last.lock();
        self.current(&mut last, false)
    }

    /// After the server refused `used`: the file's token read again now
    /// (waited out as [`get`](Self::get) does) if it differs from `used`
    /// (the writer replaced it); the same token too, after a pause of
    /// [`REWRITE_PAUSE`], when the file was rewritten since `used` was read
    /// from it (in place, `echo T > file`: the peer that checks it, the AWS
    /// agent, may have read it half-written); else `None`. A file that
    /// stays empty is reported, not answered with a token the server may
    /// have refused.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn changed_since(&self, used: &SecretString) -> Result<Option<SecretString>, Error> {
        let mut last = self.last.lock();
        let read_at = last
            .as_ref()
            .filter(|(_, t)| t.expose() == used.expose())
            .map(|(stamp, _)| *stamp);
        let token = self.current(&mut last, true)?;
        if token.expose() != used.expose() {
            return Ok(Some(token));
        }
        if read_at.is_some() && read_at != Stamp::of(&self.path) {
            drop(last);
            std::thread::sleep(REWRITE_PAUSE);
            return self.get().map(Some);
        }
        Ok(None)
    }

    /// The token, from `last` when the file has not changed (unless
    /// `again`), else read until a read is whole (see [`get`](Self::get)).
    fn current(
        &self,
        last: &mut Option<(Stamp, SecretString)>,
        again: bool,
    ) -> Result<SecretString, Error> {
        let started = std::time::Instant::now();
        loop {
            let before = Stamp::of(&self.path);
            if let (false, Some(now), Some((then, token))) = (again, before, last.as_ref()) {
                if now == *then {
                    return Ok(token.clone());
                }
            }
            let read = self.read()?;
            let settled = before.is_some() && Stamp::of(&self.path) == before;
            // The same file (inode) reading empty, or as a strict prefix of
            // the token it held: a writer half-way through rewriting it.
            let halfway = match (before, last.as_ref()) {
                (Some(now), Some((then, good))) if now.dev == then.dev && now.ino == then.ino => {
                    match &read {
                        None => true,
                        Some(t) => {
                            t.expose().len() < good.expose().len()
                                && good.expose().starts_with(t.expose())
                        }
                    }
                }
                _ => false,
            };
            let whole = settled && !halfway && read.is_some();
            let writing = read.is_none() && before.is_some_and(|b| b.within(SETTLE_LONG));
            let bound = if writing { SETTLE_LONG } else { SETTLE };
            if whole || started.elapsed() >= bound {
                if let (Some(stamp), Some(token), false) = (before, &read, halfway) {
                    if settled {
                        *last = Some((stamp, token.clone()));
                    }
                }
                return match (read, last.as_ref()) {
                    (Some(t), _) if !halfway => Ok(t),
                    // Still half-written: the last good token, unless the
                    // server just refused and the file stays empty.
                    (Some(_), Some((_, good))) => Ok(good.clone()),
                    (None, Some((_, good))) if halfway && !again => Ok(good.clone()),
                    _ => Err(self.empty()),
                };
            }
            std::thread::sleep(SETTLE_PAUSE);
        }
    }

    fn empty(&self) -> Error {
        Error::ProviderUnavailable(format!(
            "{} {} is empty (set by {})",
            self.what,
            self.path.display(),
            self.source
        ))
    }

    /// The file's token; `None` when it holds none (empty or blank).
    fn read(&self) -> Result<Option<SecretString>, Error> {
        // As SSH does for keys: a file others may write chooses the token
        // this process sends (an agent's token, the SSRF token). Checked on
        // the opened file, so a rename between check and read cannot win.
        let check = |meta: &std::fs::Metadata| {
            if let Some(readers) = self.rule {
                let what = format!("{} (set by {})", self.what, self.source);
                return identity_file::check_owner_and_mode(&self.path, &what, meta, readers);
            }
            if meta.mode() & 0o022 == 0 {
                return Ok(());
            }
            Err(Error::Permission(format!(
                "{} {} (set by {}) is writable by group or others (mode {:o}): \
                 whoever can write it chooses the token sent; refusing it \
                 (chmod go-w)",
                self.what,
                self.path.display(),
                self.source,
                meta.mode() & 0o777
            )))
        };
        let bytes = crate::fsutil::read_checked(&self.path, self.what, MAX_TOKEN_FILE, check)?
            .ok_or_else(|| {
                Error::ProviderUnavailable(format!(
                    "{} {} does not exist (set by {})",
                    self.what,
                    self.path.display(),
                    self.source
                ))
            })?;
        let text = crate::secret::SecretBytes::from(bytes);
        let token = std::str::from_utf8(text.expose())
            .map_err(|_| {
                Error::Parse(format!(
                    "{} {} is not UTF-8 text",
                    self.what,
                    self.path.display()
                ))
            })?
            .trim();
        Ok((!token.is_empty()).then(|| SecretString::from(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_again_when_rewritten_and_errors_never_hold_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sink");
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        let e = f.get().unwrap_err();
        assert_eq!(e.code_name(), "ST_PROVIDER_UNAVAILABLE");
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::write(&p, "s.first\n").unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.first");
        // An agent writes a new file and renames it over the old one.
        let tmp = dir.path().join("sink.tmp");
        std::fs::write(&tmp, "s.second-token").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.second-token");
        let used = f.get().unwrap();
        assert!(f.changed_since(&used).unwrap().is_none());
        std::fs::write(&p, "s.third-token!").unwrap();
        assert_eq!(
            f.changed_since(&used).unwrap().unwrap().expose(),
            "s.third-token!"
        );
        // Emptied after a refusal: the truth is read (not the last token).
        std::fs::write(&p, " \n").unwrap();
        let e = f.changed_since(&used).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        std::fs::write(&p, b"hvs.\xffsensitive").unwrap();
        let e = f.get().unwrap_err();
        assert_eq!(e.code_name(), "ST_PARSE");
        assert!(!e.to_string().contains("sensitive"), "{e}");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let e = f.get().unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_file_rewritten_in_place_keeps_its_token_while_half_written() {
        // `echo T > file` every 20 ms: 51 of 751 Vault gets failed ("token
        // file is empty", then 403) on reads between truncate and write.
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sink");
        std::fs::write(&p, "s.token-abcdef\n").unwrap();
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        assert_eq!(f.get().unwrap().expose(), "s.token-abcdef");
        // Truncated in place (same inode): the last good token answers.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.token-abcdef");
        // Half written: still the last good token.
        w.write_all(b"s.tok").unwrap();
        assert_eq!(f.get().unwrap().expose(), "s.token-abcdef");
        // Written whole, a new token: read.
        w.write_all(b"en-ghijkl\n").unwrap();
        drop(w);
        assert_eq!(f.get().unwrap().expose(), "s.token-ghijkl");
    }

    #[test]
    fn a_reader_that_meets_a_file_being_rewritten_never_sends_a_cut_token() {
        // Round 4: `echo TOKEN > file` every 20 ms still failed about 2% of
        // gets ("token file is empty", 403), each get a new process with no
        // last good token to fall back on. Every reader here is new, and the
        // writer truncates, writes half, then the rest, every 2 ms (ten
        // times the failing case). With no pause at all the file is hardly
        // ever whole: on a loaded 2-core machine one reader of 300 found it
        // empty or changing on every try of its 250 ms, which no real writer
        // does.
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sink");
        std::fs::write(&p, "s.token-abcdef\n").unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let writer = {
            let (p, stop) = (p.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut w = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&p)
                        .unwrap();
                    w.write_all(b"s.tok").unwrap();
                    w.write_all(b"en-abcdef\n").unwrap();
                    drop(w);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        let mut bad = Vec::new();
        for _ in 0..300 {
            let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
            match f.get() {
                Ok(t) if t.expose() == "s.token-abcdef" => {}
                Ok(t) => bad.push(format!("cut token of {} bytes", t.expose().len())),
                Err(e) => bad.push(e.to_string()),
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            bad.is_empty(),
            "{} of 300 reads failed: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
        // Found empty by a new reader, written 30 ms later: waited for.
        std::fs::File::create(&p).unwrap();
        let later = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(30));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .write_all(b"s.new")
                    .unwrap();
            })
        };
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        assert_eq!(f.get().unwrap().expose(), "s.new");
        later.join().unwrap();
        // A writer descheduled 600 ms between its truncate and its write (a
        // busy machine: one get in 1,773 met one past 250 ms): waited for,
        // as the file was changed just now.
        std::fs::File::create(&p).unwrap();
        let slow = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(600));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .write_all(b"s.slow")
                    .unwrap();
            })
        };
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        assert_eq!(f.get().unwrap().expose(), "s.slow");
        slow.join().unwrap();
        // An empty file changed long ago is no writer at work: refused at
        // once (within the short settle).
        std::fs::File::create(&p).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let began = std::time::Instant::now();
        let f = TokenFile::new(p.clone(), "Vault token file", "vault_token_file");
        assert!(f.get().is_err());
        assert!(began.elapsed() < SETTLE_LONG, "{:?}", began.elapsed());
    }

    #[test]
    fn a_token_file_others_can_write_or_another_user_owns_is_reported() {
        // Issue 43, item 8: `doctor` said "no problems found" for a token
        // file of mode 0666 or owned by another user.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "hvs.secret-token").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = TokenFile::new(p.clone(), "Vault token file", "VAULT_TOKEN_FILE");
        assert!(f.warnings().is_empty());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let w = f.warnings();
        assert!(
            w.len() == 1 && w[0].contains("writable by group or others"),
            "{w:?}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Another owner: only root can make such a file here (the test
        // command runs as root on its machines).
        if crate::sys::effective_uid() == 0 {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let w = f.warnings();
            assert!(
                w.len() == 1 && w[0].contains("owned by another user (uid 65534"),
                "{w:?}"
            );
            assert!(!w[0].contains("secret-token"));
            // What the provider's status (and so `providers`, `doctor`) says.
            let vault = crate::secrets::VaultProvider::new(
                &crate::secrets::VaultSettings {
                    url: Some("http://127.0.0.1:9".into()),
                    token_file: Some(p.clone()),
                    ..Default::default()
                },
                &crate::secrets::RemoteSettings::default(),
                crate::secrets::Vars::empty(),
            );
            let status = crate::secrets::Provider::status(&vault);
            assert!(
                status
                    .warnings
                    .iter()
                    .any(|w| w.contains("owned by another user")),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_token_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "hvs.secret-token").unwrap();
        let f = TokenFile::new(
            p.clone(),
            "AWS Secrets Manager Agent token file",
            "AWS_TOKEN",
        );
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = f.get().unwrap_err();
            assert_eq!(e.code_name(), "ST_PERMISSION", "{mode:o}");
            assert!(e.to_string().contains("writable by group or others"), "{e}");
            assert!(!e.to_string().contains("secret-token"), "{e}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(f.get().unwrap().expose(), "hvs.secret-token");
    }

    #[test]
    fn an_identity_file_others_may_read_or_another_user_owns_is_refused_and_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret-id");
        std::fs::write(&p, "s3cret-id-value\n").unwrap();
        let f = TokenFile::identity(
            p.clone(),
            "AppRole secret ID file",
            "test",
            Readers::KubeletVolume,
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(f.get().unwrap().expose(), "s3cret-id-value");
        assert!(f.warnings().is_empty());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = f.get().unwrap_err();
        assert_eq!(e.code_name(), "ST_PERMISSION", "{e}");
        assert!(e.message().contains("readable by everyone"), "{e}");
        assert!(!e.message().contains("s3cret"), "{e}");
        assert!(f.warnings()[0].contains("readable by everyone"));
        if crate::sys::effective_uid() == 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let e = f.get().unwrap_err();
            assert!(e.message().contains("owned by another user"), "{e}");
            assert!(f.warnings()[0].contains("owned by another user"));
        }
    }
}

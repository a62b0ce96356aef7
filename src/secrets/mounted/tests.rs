use super::*;
use crate::secrets::provider::{Check, KeyChange};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

fn write(path: &Path, text: &[u8], mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn provider(dirs: &[&Path]) -> Arc<MountedProvider> {
    MountedProvider::new(
        &MountedSettings {
            dirs: Some(dirs.iter().map(|d| d.to_path_buf()).collect()),
        },
        4 << 20,
    )
}

fn get(p: &MountedProvider, key: &str) -> Option<String> {
    p.lookup(key).unwrap().map(|v| v.expose().to_owned())
}

/// A sink that keeps every batch of changes told.
struct Batches(std::sync::Mutex<Vec<Vec<KeyChange>>>);

impl Default for Batches {
    fn default() -> Self {
        Batches(std::sync::Mutex::new(Vec::new()))
    }
}

impl ChangeSink for Batches {
    fn changed(&self, changes: Vec<KeyChange>) {
        self.0.lock().unwrap().push(changes);
    }
    fn watch(&self, _check: Check) {}
}

#[test]
fn a_directory_of_files_is_read_one_key_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("HF_TOKEN"), b"hf_mounted\n", 0o600);
    write(&d.join("wandb-api-key"), b"wandb_mounted\r\n", 0o600);
    write(&d.join(".hidden"), b"not a key", 0o600);
    write(&d.join("binary"), &[0xff, 0xfe, 0x00, 0x01], 0o600);
    write(&d.join("open"), b"readable", 0o644);
    std::fs::create_dir(d.join("sub")).unwrap();
    write(&d.join("sub/INNER"), b"not a key", 0o600);
    let p = provider(&[d]);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("hf_mounted"));
    assert_eq!(get(&p, "hf-token").as_deref(), Some("hf_mounted"));
    assert_eq!(get(&p, "WANDB_API_KEY").as_deref(), Some("wandb_mounted"));
    assert_eq!(get(&p, ".hidden"), None);
    assert_eq!(get(&p, "INNER"), None);
    assert_eq!(get(&p, "binary"), None);
    assert!(p.holds_non_secret("binary"));
    let mut keys = p.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["HF_TOKEN", "open", "wandb-api-key"]);
    let status = p.status();
    assert!(status.available);
    assert!(status.detail.contains("3 keys"), "{}", status.detail);
    let warnings = status.warnings.join("\n");
    assert!(warnings.contains("binary is not UTF-8 text"), "{warnings}");
    assert!(
        warnings.contains("open is readable or writable by group or others"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("readable\n") && !warnings.contains("hf_mounted"),
        "{warnings}"
    );
}

#[test]
fn a_missing_directory_is_absent_and_a_change_is_seen_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let d = dir.path().join("secrets");
    std::fs::create_dir(&d).unwrap();
    write(&d.join("HF_TOKEN"), b"first", 0o600);
    let p = provider(&[&missing, &d]);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("first"));
    let status = p.status();
    assert!(
        status.detail.contains("does not exist"),
        "{}",
        status.detail
    );
    let batches = Arc::new(Batches::default());
    p.sink.connect(batches.clone());
    // Rewritten (a new inode): seen after at most CHECK_INTERVAL.
    write(&d.join("HF_TOKEN.new"), b"second", 0o600);
    std::fs::rename(d.join("HF_TOKEN.new"), d.join("HF_TOKEN")).unwrap();
    std::thread::sleep(CHECK_INTERVAL + Duration::from_millis(50));
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("second"));
    let told = batches.0.lock().unwrap().clone();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].len(), 1);
    assert_eq!(told[0][0].key, "HF_TOKEN");
    // A file too large is an error naming it, never its content.
    write(&d.join("BIG"), &vec![b'x'; 5 << 20], 0o600);
    p.invalidate();
    let e = p.lookup("HF_TOKEN").unwrap_err().to_string();
    assert!(e.contains("BIG") && e.contains("above the limit"), "{e}");
}

/// A kubelet-style volume; see `tests/vault_identity.rs`'s twin.
struct Volume {
    dir: tempfile::TempDir,
    generation: usize,
}

impl Volume {
    fn new(keys: &[&str]) -> Volume {
        let mut v = Volume {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        v.swap(keys);
        for k in keys {
            std::os::unix::fs::symlink(format!("..data/{k}"), v.dir.path().join(k)).unwrap();
        }
        v
    }

    /// The kubelet's atomic writer: a new timestamped directory with every
    /// file, `..data_tmp` pointing at it renamed over `..data`, the old
    /// directory removed. Each value is `<key>-<generation>`.
    fn swap(&mut self, keys: &[&str]) {
        self.generation += 1;
        let name = format!("..2026_11_25_12_00_00.{}", self.generation);
        let stamped = self.dir.path().join(&name);
        std::fs::create_dir(&stamped).unwrap();
        for k in keys {
            write(
                &stamped.join(k),
                format!("{k}-{}", self.generation).as_bytes(),
                0o644,
            );
        }
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        let old = std::fs::read_link(self.dir.path().join("..data")).ok();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }
}

fn generation_of(value: &str) -> usize {
    value.rsplit('-').next().unwrap().parse().unwrap()
}

/// 8 threads read `p` (each read: the snapshot a lookup answers from,
/// every key of it) while `swap` runs; the reads that mix generations or
/// go back to an older one, and the reads made.
fn read_while(p: &MountedProvider, keys: &[&str], swap: impl FnOnce()) -> (usize, usize) {
    let done = AtomicUsize::new(0);
    let mixed = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (done, mixed, reads) = (&done, &mixed, &reads);
            s.spawn(move || {
                let mut last = 0;
                while done.load(Ordering::Relaxed) == 0 {
                    let map = p.current(&p.mounts[0]).unwrap();
                    let gens: Vec<usize> = keys
                        .iter()
                        .map(|k| generation_of(map.resolve(k).unwrap().1.expose()))
                        .collect();
                    if gens.iter().any(|g| *g != gens[0]) || gens[0] < last {
                        mixed.fetch_add(1, Ordering::Relaxed);
                    }
                    last = gens[0];
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        swap();
        done.store(1, Ordering::Relaxed);
    });
    (mixed.into_inner(), reads.into_inner())
}

#[test]
fn a_kubelet_volume_swapped_1000_times_is_never_read_as_a_mix() {
    const KEYS: [&str; 3] = ["HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY"];
    let mut volume = Volume::new(&KEYS);
    let p = provider(&[volume.dir.path()]);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("HF_TOKEN-1"));
    let batches = Arc::new(Batches::default());
    p.sink.connect(batches.clone());
    // As fast as the writer goes: swaps land while generations are read
    // (a generation removed mid-read is read again from the newer one).
    let (mixed, reads) = read_while(&p, &KEYS, || {
        for _ in 0..1000 {
            volume.swap(&KEYS);
        }
    });
    assert_eq!(mixed, 0, "reads mixing generations, of {reads}");
    assert!(reads > 100, "{reads}");
    let _ = get(&p, "HF_TOKEN");
    let told = std::mem::take(&mut *batches.0.lock().unwrap());
    // Each generation the provider took is one event with every key.
    assert!(!told.is_empty() && told.len() <= 1000, "{}", told.len());
    assert!(told.iter().all(|b| b.len() == KEYS.len()));
    // Paced so that each swap is taken before the next: one event each.
    let first = volume.generation;
    let (mixed, _) = read_while(&p, &KEYS, || {
        for g in first + 1..=first + 100 {
            volume.swap(&KEYS);
            while get(&p, "HF_TOKEN").map(|v| generation_of(&v)) != Some(g) {
                std::thread::yield_now();
            }
        }
    });
    assert_eq!(mixed, 0);
    let told = batches.0.lock().unwrap().clone();
    assert_eq!(told.len(), 100, "one change event per swap");
    assert!(told.iter().all(|b| b.len() == KEYS.len()));
}

#[test]
fn a_directory_others_control_is_named_and_a_data_link_leaving_the_volume_is_refused() {
    use std::os::unix::fs::symlink;
    // The victim's own 0600 file, served through a directory anyone may
    // write to (no sticky bit) and, as root, one owned by another user.
    let home = tempfile::tempdir().unwrap();
    write(&home.path().join("own"), b"victims-own-value", 0o600);
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    symlink(home.path().join("own"), shared.path().join("HF_TOKEN")).unwrap();
    let p = provider(&[shared.path()]);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("victims-own-value"));
    let warnings = p.status().warnings.join("\n");
    assert!(
        warnings.contains("may be written by group or others without the sticky bit"),
        "{warnings}"
    );
    if crate::sys::effective_uid() == 0 {
        let theirs = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(theirs.path(), Some(65534), Some(65534)).unwrap();
        symlink(home.path().join("own"), theirs.path().join("HF_TOKEN")).unwrap();
        std::os::unix::fs::lchown(theirs.path().join("HF_TOKEN"), Some(65534), None).unwrap();
        let p = provider(&[theirs.path()]);
        assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("victims-own-value"));
        let warnings = p.status().warnings.join("\n");
        assert!(
            warnings.contains("is owned by another user (uid 65534)"),
            "{warnings}"
        );
        assert!(
            warnings.contains("is a link made by another user"),
            "{warnings}"
        );
    }
    // A kubelet volume whose ..data leaves it: refused, never read.
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("HF_TOKEN"), b"from-outside", 0o600);
    let escape = outside.path().to_string_lossy().into_owned();
    for target in ["../outside", escape.as_str(), "/proc/self", "..link"] {
        let volume = Volume::new(&["HF_TOKEN"]);
        let data = volume.dir.path().join("..data");
        std::fs::remove_file(&data).unwrap();
        if target == "..link" {
            symlink(outside.path(), volume.dir.path().join("..link")).unwrap();
        }
        symlink(target, &data).unwrap();
        let p = provider(&[volume.dir.path()]);
        let e = p.lookup("HF_TOKEN").unwrap_err();
        assert!(
            e.to_string().contains("points outside the volume"),
            "{target}: {e}"
        );
        assert_eq!(e.code_name(), "ST_PERMISSION");
    }
}

#[test]
fn file_names_with_terminal_escapes_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["A\u{1b}[2Jx", "B\u{202e}txt", "C\nforged line"] {
        write(&dir.path().join(name), &[0xff, 0xfe], 0o644);
    }
    let p = provider(&[dir.path()]);
    let _ = p.keys();
    let warnings = p.status().warnings.join("\n");
    assert_eq!(warnings.lines().count(), 6, "{warnings}");
    for raw in ['\u{1b}', '\u{202e}'] {
        assert!(!warnings.contains(raw), "{warnings}");
    }
    assert!(warnings.contains("A\\u{1b}[2Jx"), "{warnings}");
}

/// An access ACL as the Slurm plugin sets one: the owner, one named user
/// (`user`), the mask r, nothing for the group or others.
#[cfg(target_os = "linux")]
fn set_acl(path: &Path, user: u32) -> bool {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, user),
        (4, 0, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(id.to_le_bytes());
    }
    crate::sys::set_xattr(path, c"system.posix_acl_access", &acl)
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_whose_acl_lets_in_only_this_user_is_not_warned_of() {
    // tmpfs keeps ACLs where the kernel has them; elsewhere nothing to see.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let d = dir.path();
    write(&d.join("MINE"), b"mine", 0o600);
    write(&d.join("OTHERS"), b"others", 0o600);
    let me = crate::sys::effective_uid();
    if !set_acl(&d.join("MINE"), me) || !set_acl(&d.join("OTHERS"), me.wrapping_add(1)) {
        return;
    }
    let p = provider(&[d]);
    assert_eq!(get(&p, "MINE").as_deref(), Some("mine"));
    let warnings = p.status().warnings.join("\n");
    assert!(!warnings.contains("MINE"), "{warnings}");
    assert!(
        warnings.contains("OTHERS is readable or writable by group or others (mode 0640)"),
        "{warnings}"
    );
}

use super::snapshot::Reread;
use super::*;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, SystemTime};
use tempfile::TempDir;

fn provider_at(path: &Path) -> FileProvider {
    FileProvider::new(FileLocation::Configured(path.to_path_buf()))
}

fn get(p: &FileProvider, key: &str) -> Option<String> {
    p.lookup(key).unwrap().map(|v| v.expose().to_owned())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn reads_json_scalars_and_skips_nested() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(
        &path,
        r#"{"HF_TOKEN": "hf_x", "port": 8080, "ratio": 0.5, "on": true, "none": null,
            "nested": {"a": "b"}, "list": [1, 2]}"#,
    )
    .unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("hf_x"));
    assert_eq!(get(&p, "port").as_deref(), Some("8080"));
    assert_eq!(get(&p, "ratio").as_deref(), Some("0.5"));
    assert_eq!(get(&p, "on").as_deref(), Some("true"));
    assert_eq!(get(&p, "none"), None);
    assert_eq!(get(&p, "nested"), None);
    let status = p.status();
    assert!(status.available);
    assert!(
        status.detail.contains("list, nested, none"),
        "{}",
        status.detail
    );
    assert!(status.detail.contains("4 keys"), "{}", status.detail);
}

#[test]
fn reads_yaml_and_normalized_keys() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.yml");
    fs::write(
        &path,
        "REPLICATE_API_TOKEN: r8_x\n123: numeric-key\nflag: yes\n",
    )
    .unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "replicate-api-token").as_deref(), Some("r8_x"));
    assert_eq!(get(&p, "123").as_deref(), Some("numeric-key"));
    assert_eq!(get(&p, "flag").as_deref(), Some("yes"));
    for empty in ["", "\n", "~\n"] {
        fs::write(&path, empty).unwrap();
        p.invalidate();
        assert_eq!(get(&p, "flag"), None);
    }
}

#[test]
fn default_locations_in_order_and_picked_up_when_created() {
    let dir = TempDir::new().unwrap();
    let p = FileProvider::new(FileLocation::Default(dir.path().to_path_buf()));
    assert_eq!(get(&p, "K"), None);
    assert!(!p.status().available);
    assert_eq!(p.path(), Some(dir.path().join("secrets.json")));
    fs::write(dir.path().join("secrets.yml"), "K: from-yml\n").unwrap();
    thread::sleep(CHECK_INTERVAL + Duration::from_millis(100));
    assert_eq!(get(&p, "K").as_deref(), Some("from-yml"));
    fs::write(dir.path().join("secrets.yaml"), "K: from-yaml\n").unwrap();
    p.invalidate();
    assert_eq!(get(&p, "K").as_deref(), Some("from-yaml"));
    fs::write(dir.path().join("secrets.json"), r#"{"K": "from-json"}"#).unwrap();
    p.invalidate();
    assert_eq!(get(&p, "K").as_deref(), Some("from-json"));
    assert_eq!(p.path(), Some(dir.path().join("secrets.json")));
}

#[test]
fn changes_by_another_writer_are_seen_within_a_second() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("s.json");
    fs::write(&path, r#"{"K": "old"}"#).unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "K").as_deref(), Some("old"));
    // Same size, written in place, modification time set back to the old one:
    // still noticed (here the change time gives it away; on filesystems whose
    // timestamps are too coarse for that, the racy-window re-read does, which
    // userspace cannot reproduce in a test since it cannot pin the ctime).
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, r#"{"K": "new"}"#).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    thread::sleep(CHECK_INTERVAL + Duration::from_millis(100));
    assert_eq!(get(&p, "K").as_deref(), Some("new"));
    fs::remove_file(&path).unwrap();
    thread::sleep(CHECK_INTERVAL + Duration::from_millis(100));
    assert_eq!(get(&p, "K"), None);
}

#[test]
fn malformed_files_report_file_and_line_never_content() {
    let dir = TempDir::new().unwrap();
    let json = dir.path().join("bad.json");
    fs::write(&json, "{\n  \"HF_TOKEN\": \"hf_supersecret\",\n  oops\n}").unwrap();
    let e = provider_at(&json).lookup("HF_TOKEN").unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, Error::Parse(_)));
    assert!(m.contains("bad.json") && m.contains("line 3"), "{m}");
    assert!(!m.contains("supersecret"), "{m}");

    let yaml = dir.path().join("bad.yaml");
    fs::write(&yaml, "A: hf_supersecret\nB: [unclosed\n").unwrap();
    let m = provider_at(&yaml).lookup("A").unwrap_err().to_string();
    assert!(m.contains("bad.yaml") && m.contains("line"), "{m}");
    assert!(!m.contains("supersecret"), "{m}");

    fs::write(&json, r#"["hf_supersecret"]"#).unwrap();
    let m = provider_at(&json).lookup("A").unwrap_err().to_string();
    assert!(m.contains("top level") && !m.contains("supersecret"), "{m}");

    fs::write(&json, b"{\"A\": \"\xff\"}").unwrap();
    let m = provider_at(&json).lookup("A").unwrap_err().to_string();
    assert!(m.contains("UTF-8"), "{m}");
}

#[test]
fn a_malformed_file_is_never_overwritten() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let broken = "{\"KEEP\": \"precious\",";
    fs::write(&path, broken).unwrap();
    let p = provider_at(&path);
    let e = p.save("NEW", "v").unwrap_err();
    assert!(
        matches!(&e, Error::Parse(m) if m.contains("the file was left untouched")),
        "{e:?}"
    );
    assert!(p.delete("KEEP").is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn save_creates_file_and_directories_with_private_modes() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a/b/secrets.json");
    let p = provider_at(&path);
    assert!(!p.status().available);
    p.save("HF_TOKEN", "hf_1").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    assert_eq!(get(&p, "HF_TOKEN").as_deref(), Some("hf_1"), "seen at once");
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "{\n  \"HF_TOKEN\": \"hf_1\"\n}\n");
}

#[test]
fn save_keeps_yaml_format_other_keys_and_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.yaml");
    fs::write(
        &path,
        "zeta: 1\nalpha: two\nnested:\n  k: v\nHF_TOKEN: old\n",
    )
    .unwrap();
    fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
    let p = provider_at(&path);
    assert!(p.status().warnings[0].contains("mode 0644"));
    p.save("hf-token", "new").unwrap(); // resolves to the existing HF_TOKEN
    p.save("added", "x").unwrap();
    assert!(p.delete("alpha").unwrap());
    assert!(!p.delete("alpha").unwrap());
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "zeta: 1\nnested:\n  k: v\nHF_TOKEN: new\nadded: x\n");
    assert_eq!(mode(&path), 0o600, "a save tightens the mode");
    assert!(!p
        .status()
        .warnings
        .iter()
        .any(|w| w.contains("does not parse")));
}

#[test]
fn deleting_from_a_missing_file_creates_nothing() {
    let dir = TempDir::new().unwrap();
    let home = dir.path().join(".simpletuner");
    let p = FileProvider::new(FileLocation::Default(home.clone()));
    assert!(!p.delete("K").unwrap());
    assert!(!home.exists());
}

#[test]
fn save_keeps_json_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"b": "1", "a": {"x": 1}, "c": 3}"#).unwrap();
    let p = provider_at(&path);
    p.save("a2", "v").unwrap();
    p.save("b", "changed").unwrap();
    assert!(p.delete("c").unwrap());
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "{\n  \"b\": \"changed\",\n  \"a\": {\n    \"x\": 1\n  },\n  \"a2\": \"v\"\n}\n"
    );
}

#[test]
fn concurrent_saves_lose_nothing() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let p = Arc::new(provider_at(&path));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                for i in 0..20 {
                    p.save(&format!("k{t}_{i}"), &format!("v{t}_{i}")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // A second provider (a fresh reader) sees all 160 keys.
    let fresh = provider_at(&path);
    for t in 0..8 {
        for i in 0..20 {
            assert_eq!(get(&fresh, &format!("k{t}_{i}")), Some(format!("v{t}_{i}")));
        }
    }
}

#[test]
fn stale_temporary_files_are_cleaned_and_symlinks_written_through() {
    let dir = TempDir::new().unwrap();
    let real = dir.path().join("real.json");
    let link = dir.path().join("secrets.json");
    fs::write(&real, "{}").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let stale = dir.path().join(".real.json.tmp.99999.1");
    fs::write(&stale, "left by a crashed writer").unwrap();
    let p = provider_at(&link);
    p.save("K", "v").unwrap();
    assert!(!stale.exists());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real).unwrap().contains("\"K\""));
}

#[test]
fn unreadable_paths_fail_with_the_path() {
    let dir = TempDir::new().unwrap();
    // A directory where the file should be.
    let path = dir.path().join("secrets.json");
    fs::create_dir(&path).unwrap();
    let p = provider_at(&path);
    let e = p.lookup("K").unwrap_err();
    assert!(e.to_string().contains("secrets.json"), "{e}");
    assert!(p.save("K", "v").is_err());
}

#[test]
fn an_unknown_location_answers_absent_and_cannot_save() {
    let p = FileProvider::new(FileLocation::Unknown("no home directory".into()));
    assert_eq!(p.path(), None);
    assert_eq!(get(&p, "K"), None);
    let status = p.status();
    assert!(
        !status.available && status.detail == "no home directory",
        "{status:?}"
    );
    assert!(
        matches!(p.save("K", "v"), Err(Error::ProviderUnavailable(m)) if m.contains("no home"))
    );
    assert!(!p.delete("K").unwrap());
}

#[test]
fn a_fifo_at_the_secrets_path_is_st_io_not_a_hang() {
    // Finding 2 of the hardening issue: get, set and status used to block
    // for ever on the FIFO's open (holding the provider's state lock).
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    crate::fsutil::mkfifo(&path);
    let p = provider_at(&path);
    let e = p.lookup("K").unwrap_err();
    assert!(
        matches!(&e, Error::Io(m) if m.contains("FIFO") && m.contains("secrets.json")),
        "{e:?}"
    );
    let e = p.save("K", "v").unwrap_err();
    assert!(matches!(&e, Error::Io(m) if m.contains("FIFO")), "{e:?}");
    // A symlink to a FIFO is followed, then refused the same way.
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(provider_at(&link).lookup("K"), Err(Error::Io(_))));
}

#[test]
fn a_file_above_the_size_limit_is_refused_before_it_is_read() {
    // Finding 4: a 1 GB file used to be read whole (19 s, 2.1 GB of memory).
    // A sparse file costs no disk and shows the size check comes first.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let f = fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    let started = std::time::Instant::now();
    let e = provider_at(&path).lookup("K").unwrap_err();
    assert!(
        matches!(&e, Error::Io(m) if m.contains("1073741824 bytes") && m.contains("limit of 4194304")),
        "{e:?}"
    );
    assert!(matches!(
        provider_at(&path).save("K", "v"),
        Err(Error::Io(_))
    ));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        1 << 30,
        "nothing was written"
    );
    // (not a timing assertion: only a sanity bound far above any real run)
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // The limit is configurable: a small file under a raised or lowered limit.
    fs::write(&path, r#"{"K": "v"}"#).unwrap();
    let small = provider_at(&path).with_max_size(5);
    assert!(matches!(small.lookup("K"), Err(Error::Io(m)) if m.contains("limit of 5")));
    assert_eq!(
        get(&provider_at(&path).with_max_size(64), "K").as_deref(),
        Some("v")
    );
}

#[test]
fn a_save_that_would_cross_max_file_size_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let p = provider_at(&path).with_max_size(64);
    p.save("A", "short").unwrap();
    let before = fs::read(&path).unwrap();
    let e = p.save("B", &"x".repeat(100)).unwrap_err();
    assert!(
        matches!(&e, Error::Io(m) if m.contains("above the limit of 64") && m.contains("nothing was written")),
        "{e:?}"
    );
    assert!(
        !e.to_string().contains("xxxx"),
        "the value is not in the message"
    );
    assert_eq!(fs::read(&path).unwrap(), before, "the file is as it was");
    assert_eq!(get(&p, "A").as_deref(), Some("short"), "and still reads");
    assert_eq!(get(&p, "B"), None);
}

#[test]
fn a_symlink_at_the_lock_file_name_is_never_followed() {
    // Finding 5: the lock file used to be opened through a planted symlink,
    // creating a missing target or opening an existing one for writing.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let lock = dir.path().join(".secrets.json.lock");
    let victim = dir.path().join("victim");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let e = provider_at(&path).save("K", "v").unwrap_err();
    assert!(
        matches!(&e, Error::Io(m) if m.contains("symbolic link")),
        "{e:?}"
    );
    assert!(!victim.exists(), "a missing target is not created");

    fs::write(&victim, "precious").unwrap();
    fs::set_permissions(&victim, Permissions::from_mode(0o644)).unwrap();
    assert!(provider_at(&path).save("K", "v").is_err());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode(&victim), 0o644, "an existing target is not touched");

    // A lock path that is not a regular file is refused too.
    fs::remove_file(&lock).unwrap();
    crate::fsutil::mkfifo(&lock);
    let e = provider_at(&path).save("K", "v").unwrap_err();
    assert!(
        matches!(&e, Error::Io(m) if m.contains("not a regular file")),
        "{e:?}"
    );
    fs::remove_file(&lock).unwrap();
    provider_at(&path).save("K", "v").unwrap();
    assert_eq!(get(&provider_at(&path), "K").as_deref(), Some("v"));
}

#[test]
fn generation_changes_exactly_when_an_answer_may_have_changed() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"A": "1"}"#).unwrap();
    // Settled: older than the racy window, so a check that finds nothing
    // changed does not re-read it.
    let old = SystemTime::now() - Duration::from_secs(10);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let p = provider_at(&path);
    let g0 = p.generation();
    assert_eq!(p.generation(), g0, "nothing changed");
    p.invalidate();
    let g1 = p.generation();
    assert_ne!(g1, g0, "an invalidation may change answers");
    assert_eq!(p.generation(), g1);
    p.save("B", "2").unwrap();
    let g2 = p.generation();
    assert_ne!(g2, g1, "a save changes answers");
    assert_eq!(get(&p, "B").as_deref(), Some("2"));
}

/// Rewrites `path` in place (same inode), as SimpleTuner's `set_secret` and
/// `open(path, "w")` do: truncate, then write.
fn rewrite_in_place(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_file_rewritten_in_place_never_loses_keys_half_way() {
    // Issue 24, finding 5: a reader that looks while a writer has truncated
    // the file (or written part of it) answered "not found" for keys present
    // in every version.
    for (name, partial) in [
        ("secrets.json", ""),
        ("secrets.json", "{\"A\": \"1\", \"B\": \"2"),
        ("secrets.yaml", ""),
        ("secrets.yaml", "A: '1'\n"),
        // A plain scalar cut short still parses, as a shorter value.
        ("secrets.yml", "A: '1'\nB: 2"),
    ] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(name);
        let whole = if name.ends_with("json") {
            "{\"A\": \"1\", \"B\": \"2\"}"
        } else {
            "A: '1'\nB: 22\n"
        };
        fs::write(&path, whole).unwrap();
        let p = provider_at(&path);
        let b = if name.ends_with("json") { "2" } else { "22" };
        assert_eq!(get(&p, "B").as_deref(), Some(b));
        rewrite_in_place(&path, partial);
        p.shared.state.lock().next_check = None; // the next check is due now
        assert_eq!(get(&p, "A").as_deref(), Some("1"), "{name} {partial:?}");
        assert_eq!(get(&p, "B").as_deref(), Some(b), "{name} {partial:?}");
        rewrite_in_place(&path, whole);
        p.shared.state.lock().next_check = None;
        assert_eq!(get(&p, "B").as_deref(), Some(b));
    }
}

#[test]
fn an_unparsable_file_keeps_the_last_good_snapshot_and_says_so() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"A": "1"}"#).unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "A").as_deref(), Some("1"));
    fs::write(&path, r#"{"A": "#).unwrap(); // replaced by rename or not: broken
    p.invalidate();
    assert_eq!(get(&p, "A").as_deref(), Some("1"));
    let status = p.status();
    assert!(
        status.warnings.iter().any(|w| w.contains("does not parse")),
        "{:?}",
        status.warnings
    );
    fs::write(&path, r#"{"A": "2"}"#).unwrap();
    p.invalidate();
    assert_eq!(get(&p, "A").as_deref(), Some("2"));
    assert!(!p
        .status()
        .warnings
        .iter()
        .any(|w| w.contains("does not parse")));
}

#[test]
fn a_file_replaced_by_rename_or_invalidated_is_taken_at_once() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"A": "1", "B": "2"}"#).unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "B").as_deref(), Some("2"));
    let temp = dir.path().join("new.json");
    fs::write(&temp, r#"{"A": "1"}"#).unwrap();
    fs::rename(&temp, &path).unwrap();
    p.shared.state.lock().next_check = None;
    assert_eq!(
        get(&p, "B"),
        None,
        "a new inode is a deliberate replacement"
    );
    rewrite_in_place(&path, r#"{"A": "1", "B": "3"}"#);
    p.invalidate();
    assert_eq!(get(&p, "B").as_deref(), Some("3"));
    rewrite_in_place(&path, r#"{"A": "1"}"#);
    p.invalidate();
    assert_eq!(
        get(&p, "B"),
        None,
        "an explicit invalidation takes the file as it is"
    );
}

#[test]
fn readers_do_not_wait_for_a_reread() {
    // Issue 24, finding 5: every get blocked for the whole re-parse of a
    // changed 4 MB file. While one thread re-reads, the others answer from
    // the snapshot they have.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"A": "1"}"#).unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "A").as_deref(), Some("1"));
    fs::write(&path, r#"{"A": "2"}"#).unwrap();
    {
        let mut st = p.shared.state.lock();
        st.reloading = true; // another thread is re-reading
        st.next_check = None;
    }
    assert_eq!(
        get(&p, "A").as_deref(),
        Some("1"),
        "served at once from the snapshot"
    );
    p.shared.state.lock().reloading = false;
    assert_eq!(get(&p, "A").as_deref(), Some("2"));
}

#[test]
fn a_save_is_seen_at_once_even_during_a_reread() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let p = provider_at(&path);
    p.shared.state.lock().reloading = true; // a re-read in progress elsewhere
    p.save("K", "v1").unwrap();
    assert_eq!(get(&p, "K").as_deref(), Some("v1"));
    p.shared.state.lock().reloading = false;
}

#[test]
fn numbers_come_back_as_the_file_writes_them() {
    // Issue 24, finding 10: a JSON integer beyond 64 bits came back rounded
    // (1.2345678901234568e+29); one in YAML made the whole file unreadable;
    // YAML merge keys were ignored.
    let dir = TempDir::new().unwrap();
    let json = dir.path().join("secrets.json");
    fs::write(
        &json,
        r#"{"BIG": 123456789012345678901234567890, "F": 1.50, "E": 1e3, "S": "s"}"#,
    )
    .unwrap();
    let p = provider_at(&json);
    assert_eq!(
        get(&p, "BIG").as_deref(),
        Some("123456789012345678901234567890")
    );
    assert_eq!(get(&p, "F").as_deref(), Some("1.50"));
    assert_eq!(
        get(&p, "E").as_deref(),
        Some("1e+3"),
        "the exponent's sign is spelled out"
    );
    let yaml = dir.path().join("secrets.yaml");
    fs::write(
        &yaml,
        "defaults: &d\n  REGION: eu\n  TIER: gold\n<<: *d\nTIER: platinum\n\
         BIG: 123456789012345678901234567890\nTOKEN: t\n",
    )
    .unwrap();
    let p = provider_at(&yaml);
    assert_eq!(get(&p, "TOKEN").as_deref(), Some("t"));
    assert_eq!(
        get(&p, "BIG").as_deref(),
        Some("123456789012345678901234567890")
    );
    assert_eq!(get(&p, "REGION").as_deref(), Some("eu"), "merged");
    assert_eq!(
        get(&p, "TIER").as_deref(),
        Some("platinum"),
        "its own key wins"
    );
    p.save("NEW", "n").unwrap();
    assert_eq!(
        get(&p, "BIG").as_deref(),
        Some("123456789012345678901234567890")
    );
    assert_eq!(get(&p, "REGION").as_deref(), Some("eu"));
}

#[test]
fn a_yaml_bomb_under_the_size_limit_is_refused_by_name() {
    // Issue 24, finding 4: a 115 KB file cost 645 MB for one get.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.yaml");
    let mut text = format!("big: &b \"{}\"\n", "x".repeat(64 << 10));
    for i in 0..10_000 {
        text.push_str(&format!("k{i}: *b\n"));
    }
    fs::write(&path, text).unwrap();
    let e = provider_at(&path).lookup("big").unwrap_err();
    assert!(matches!(e, Error::Parse(_)), "{e}");
    assert!(e.to_string().contains("aliases"), "{e}");
}

#[test]
fn the_first_lookups_wait_for_the_first_load() {
    // Issue 43, item 1: threads that looked while another thread made the
    // first load answered from the empty initial snapshot ("not found" for
    // keys every version of the file holds).
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.yaml");
    fs::write(&path, "A: '1'\n").unwrap();
    let p = provider_at(&path);
    p.shared.state.lock().reloading = true; // another thread is re-reading
    assert_eq!(get(&p, "A").as_deref(), Some("1"), "nothing to serve yet");
}

#[test]
fn a_first_load_that_catches_a_writer_half_way_looks_again() {
    for (name, text) in [
        ("secrets.json", ""),
        ("secrets.json", "{\"A\": \"1"),
        ("secrets.yaml", ""),
        ("secrets.yaml", "A: 1"),
    ] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap(); // just written: within the racy window
        let p = provider_at(&path);
        assert!(
            matches!(
                p.shared.reread(None, None, None, false, true),
                Reread::Unsettled
            ),
            "{name} {text:?}"
        );
        assert!(
            matches!(
                p.shared.reread(None, None, None, true, true),
                Reread::New { .. }
            ),
            "the last attempt takes the file as it is: {name} {text:?}"
        );
    }
    // A file that settled is taken at once, empty or not.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.yaml");
    fs::write(&path, "").unwrap();
    let old = SystemTime::now() - Duration::from_secs(10);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let p = provider_at(&path);
    assert_eq!(get(&p, "A"), None);
}

#[test]
fn readers_racing_an_in_place_writer_never_miss_a_key() {
    // The attack of issue 43, item 1 (scaled down): a writer rewrites a
    // 2-key file in place (truncate, then the text in small writes) while 4
    // threads read from a provider they share from the start.
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    for name in ["secrets.yaml", "secrets.json"] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(name);
        let text = |g: u32| {
            if name.ends_with("json") {
                format!("{{\"A\": \"g{g:04}x\", \"B\": \"g{g:04}x\"}}")
            } else {
                format!("A: g{g:04}x\nB: g{g:04}x\n")
            }
        };
        fs::write(&path, text(0)).unwrap();
        let p = Arc::new(provider_at(&path));
        // The first load is taken before the writer starts: a first load
        // that meets a writer half-way looks again a bounded number of
        // times (`a_first_load_that_catches_a_writer_half_way_looks_again`),
        // which a writer descheduled longer than that on a busy machine
        // outlasts; what this test holds is the steady state.
        assert!(p.lookup("B").unwrap().is_some());
        let stop = Arc::new(AtomicBool::new(false));
        let (bad, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (p, stop, bad, total) = (p.clone(), stop.clone(), bad.clone(), total.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        total.fetch_add(1, Ordering::Relaxed);
                        let whole = matches!(p.lookup("B"),
                            Ok(Some(v)) if v.expose().len() == 6 && v.expose().ends_with('x'));
                        if !whole {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for g in 1..60 {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            for chunk in text(g).as_bytes().chunks(3) {
                f.write_all(chunk).unwrap();
                thread::yield_now();
            }
            drop(f);
            thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().for_each(|r| r.join().unwrap());
        let (bad, total) = (bad.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
        assert_eq!(
            bad, 0,
            "{name}: {bad} of {total} gets missed B or got it cut short"
        );
    }
}

#[test]
fn a_large_file_is_reread_while_its_finder_goes_on() {
    // Issue 43, item 3: the get that found a 4 MB file changed waited for the
    // whole parse (up to 5 s on a busy machine). From BACKGROUND_REREAD_SIZE
    // on, the re-read runs on a thread of its own and every caller answers
    // from the snapshot meanwhile.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("secrets.json");
    let text = |v: &str| {
        let mut map = serde_json::Map::new();
        for i in 0..8_000 {
            map.insert(format!("KEY_{i:05}"), format!("value-{i:05}").into());
        }
        map.insert("A".into(), v.into());
        serde_json::to_string(&map).unwrap()
    };
    fs::write(&path, text("1")).unwrap();
    assert!(fs::metadata(&path).unwrap().len() >= BACKGROUND_REREAD_SIZE);
    let p = provider_at(&path);
    assert_eq!(get(&p, "A").as_deref(), Some("1"));
    fs::write(&path, text("2")).unwrap();
    let generation = p.generation_unchecked();
    let gate = p.shared.gate.lock(); // a background re-read waits for it
    p.shared.state.lock().next_check = None;
    assert_eq!(
        get(&p, "A").as_deref(),
        Some("1"),
        "the get that found the change answered at once"
    );
    assert_eq!(p.generation_unchecked(), generation);
    drop(gate);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&p, "A").as_deref() != Some("2") {
        assert!(
            Instant::now() < deadline,
            "the background re-read never landed"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_ne!(p.generation_unchecked(), generation);
}

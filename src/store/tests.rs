use super::*;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;

fn open(dir: &TempDir) -> Store {
    Store::open(Some(&dir.path().join("cloud/jobs.db"))).unwrap()
}

fn raw(dir: &TempDir) -> Connection {
    Connection::open(dir.path().join("cloud/jobs.db")).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn opens_private_and_rejects_garbage() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(mode(&dir.path().join("cloud")), 0o700);
    assert_eq!(mode(&dir.path().join("cloud/audit.key")), 0o600);
    assert_eq!(store.get_provider_config("replicate").unwrap(), "{}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database, not at all, no").unwrap();
    let e = Store::open(Some(&garbage)).unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("garbage.db")),
        "{e:?}"
    );
}

#[test]
fn reads_a_simpletuner_database_as_is() {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir_all(dir.path().join("cloud")).unwrap();
    {
        // What SimpleTuner's ProviderConfigStore creates and writes.
        let c = raw(&dir);
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS provider_config (provider TEXT PRIMARY KEY,
             config TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL)",
        )
        .unwrap();
        c.execute(
            "INSERT OR REPLACE INTO provider_config (provider, config, updated_at) VALUES (?, ?, ?)",
            params![
                "replicate",
                r#"{"webhook_url": "https://example.invalid/hook", "cost_limit_amount": 50.0}"#,
                "2025-01-02T03:04:05.678901+00:00"
            ],
        )
        .unwrap();
    }
    let store = open(&dir);
    let got = json(&store.get_provider_config("replicate").unwrap());
    assert_eq!(got["webhook_url"], "https://example.invalid/hook");
    assert_eq!(got["cost_limit_amount"], 50.0);
}

#[test]
fn read_through_cache_until_the_database_changes() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("p1", r#"{"a": 1}"#).unwrap();
    assert_eq!(json(&store.get_provider_config("p1").unwrap())["a"], 1);
    // While the database is unchanged, the cache answers: a value planted
    // there is what the store returns.
    crate::cache::global::provider_config_cache().set(
        &store.config_cache_key("p1"),
        SecretBytes::from(br#"{"a": 9}"#.to_vec()),
        None,
    );
    assert_eq!(
        json(&store.get_provider_config("p1").unwrap())["a"],
        9,
        "served from the cache"
    );
    // Another writer (another process) changes the row behind the cache:
    // the change is served at once.
    raw(&dir)
        .execute(
            "UPDATE provider_config SET config = '{\"a\": 2}' WHERE provider = 'p1'",
            [],
        )
        .unwrap();
    assert_eq!(json(&store.get_provider_config("p1").unwrap())["a"], 2);
    assert_eq!(json(&store.read_provider_config("p1").unwrap())["a"], 2);
    assert!(crate::cache::global::invalidate_provider_cache("p1") >= 1);
    assert_eq!(
        json(&store.get_provider_config("p1").unwrap())["a"],
        2,
        "re-read"
    );
    // A save through the store invalidates at once.
    store.save_provider_config("p1", r#"{"a": 3}"#).unwrap();
    assert_eq!(json(&store.get_provider_config("p1").unwrap())["a"], 3);
}

#[test]
fn bad_input_and_corrupt_rows() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    for bad in [
        "{",
        "[1, 2]",
        "\"text\"",
        r#"{"hardware_info": {"x": {"cost_per_second": -1}}}"#,
    ] {
        let e = store.save_provider_config("p", bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e:?}");
    }
    assert!(matches!(
        store.get_provider_config(""),
        Err(Error::InvalidArgument(_))
    ));
    raw(&dir)
        .execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES ('broken', '{oops', 'x')",
            [],
        )
        .unwrap();
    let e = store.get_provider_config("broken").unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("'broken'")),
        "{e:?}"
    );
    let e = store
        .merge_provider_config("broken", r#"{"a": 1}"#)
        .unwrap_err();
    assert!(
        matches!(e, Error::Store(_)),
        "a merge never builds on a damaged row"
    );
    assert_eq!(
        raw(&dir)
            .query_row(
                "SELECT config FROM provider_config WHERE provider='broken'",
                [],
                |r| r.get::<_, String>(0)
            )
            .unwrap(),
        "{oops"
    );
}

#[test]
fn a_locked_database_is_a_store_error_not_a_hang() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.set_busy_timeout(Duration::from_millis(200)).unwrap();
    let holder = raw(&dir);
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = store.save_provider_config("p", "{}").unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("locked")),
        "{e:?}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    store.save_provider_config("p", "{}").unwrap();
}

#[test]
fn merge_patch_semantics_and_concurrent_merges() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .save_provider_config(
            "m",
            r#"{"keep": 1, "drop": 2, "nested": {"x": 1, "y": 2}, "scalar": 5}"#,
        )
        .unwrap();
    let merged = store
        .merge_provider_config("m", r#"{"drop": null, "nested": {"y": null, "z": 3}, "scalar": {"now": "object"}, "new": true}"#)
        .unwrap();
    assert_eq!(
        json(&merged),
        json(
            r#"{"keep": 1, "nested": {"x": 1, "z": 3}, "scalar": {"now": "object"}, "new": true}"#
        )
    );
    // Stores opened separately (as by separate processes) merging at once.
    let path = store.path().to_path_buf();
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = path.clone();
            s.spawn(move || {
                let mine = Store::open(Some(&path)).unwrap();
                for i in 0..10 {
                    mine.merge_provider_config("m", &format!(r#"{{"k{t}_{i}": {i}}}"#))
                        .unwrap();
                }
            });
        }
    });
    let all = json(&store.read_provider_config("m").unwrap());
    for t in 0..4 {
        for i in 0..10 {
            assert_eq!(all[format!("k{t}_{i}")], i, "lost update k{t}_{i}");
        }
    }
    let report = store.verify_audit().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.entries, 42);
}

#[test]
fn audit_records_key_names_only_and_detects_tampering() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .save_provider_config(
            "replicate",
            r#"{"webhook_secret": "whsec_SHOULD_NOT_APPEAR", "a": 1}"#,
        )
        .unwrap();
    store
        .save_provider_config("replicate", r#"{"webhook_secret": "whsec_OTHER", "b": 2}"#)
        .unwrap();
    store.merge_provider_config("other", r#"{"x": 1}"#).unwrap();
    let entries = store.audit_entries(10).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].action, "config.merge", "newest first");
    let d = json(&entries[1].detail);
    assert_eq!(
        d,
        json(r#"{"added": ["b"], "removed": ["a"], "changed": ["webhook_secret"]}"#)
    );
    let raw_text: Vec<String> = raw(&dir)
        .prepare("SELECT detail || subject || action FROM st_audit_log")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        raw_text.iter().all(|t| !t.contains("whsec_")),
        "{raw_text:?}"
    );
    assert!(store.verify_audit().unwrap().ok());

    // A hand-edited entry is found.
    raw(&dir)
        .execute(
            "UPDATE st_audit_log SET provider = 'forged' WHERE id = 2",
            [],
        )
        .unwrap();
    let report = store.verify_audit().unwrap();
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.0),
        Some(2),
        "{report:?}"
    );
    raw(&dir)
        .execute(
            "UPDATE st_audit_log SET provider = 'replicate' WHERE id = 2",
            [],
        )
        .unwrap();
    assert!(store.verify_audit().unwrap().ok(), "restored");
    // A removed entry breaks the next one's link.
    raw(&dir)
        .execute("DELETE FROM st_audit_log WHERE id = 2", [])
        .unwrap();
    let report = store.verify_audit().unwrap();
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.0),
        Some(3),
        "{report:?}"
    );
    assert!(report.first_broken.unwrap().1.contains("link"));
}

#[test]
fn audit_with_another_key_does_not_verify() {
    let dir = TempDir::new().unwrap();
    open(&dir).save_provider_config("p", "{}").unwrap();
    std::fs::write(dir.path().join("cloud/audit.key"), "a different key").unwrap();
    let report = open(&dir).verify_audit().unwrap();
    assert_eq!(report.first_broken.map(|b| b.0), Some(1));
}

/// Credentials use the process-wide credential key, sourced from the
/// environment: everything that changes it runs in this one test.
#[test]
fn credentials_encrypted_at_rest_audited_and_rotated() {
    std::env::set_var("SIMPLETUNER_CREDENTIAL_KEY", "store-unit-test-key-A");
    std::env::remove_var("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS");
    crate::crypto::reset();
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .set_credential("replicate", "api_token", "r8_PLAINTEXT_TOKEN")
        .unwrap();
    store
        .set_credential("hf", "token", "hf_PLAINTEXT_TOKEN")
        .unwrap();
    let column: String = raw(&dir)
        .query_row(
            "SELECT ciphertext FROM st_credentials WHERE provider = 'replicate'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(column.starts_with("Z0FBQUFB") && !column.contains("PLAINTEXT"));
    assert_eq!(
        store
            .get_credential("replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "r8_PLAINTEXT_TOKEN"
    );
    assert_eq!(store.get_credential("replicate", "missing").unwrap(), None);
    let actions: Vec<String> = store
        .audit_entries(10)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["credential.use", "credential.set", "credential.set"]
    );

    // Rotate to key B, keeping A as a previous key.
    std::env::set_var("SIMPLETUNER_CREDENTIAL_KEY", "store-unit-test-key-B");
    std::env::set_var(
        "SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS",
        "store-unit-test-key-A",
    );
    crate::crypto::reset();
    let report = store.rotate_credentials().unwrap();
    assert_eq!(
        report,
        RotationReport {
            rotated: 2,
            current: 0,
            failed: 0
        }
    );
    assert_eq!(store.rotate_credentials().unwrap().current, 2, "idempotent");
    // Without key A, everything still opens.
    std::env::remove_var("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS");
    crate::crypto::reset();
    assert_eq!(
        store
            .get_credential("hf", "token")
            .unwrap()
            .unwrap()
            .expose(),
        "hf_PLAINTEXT_TOKEN"
    );
    assert!(store.delete_credential("hf", "token").unwrap());
    assert!(!store.delete_credential("hf", "token").unwrap());
    assert!(store.verify_audit().unwrap().ok());
    std::env::remove_var("SIMPLETUNER_CREDENTIAL_KEY");
    crate::crypto::reset();
}

/// The hardware cache is process-wide: every hardware check is in this test.
#[test]
fn hardware_info_defaults_store_override_set_and_clear() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    hardware::clear_cache();
    assert_eq!(
        json(&hardware::info(Some(&store)).unwrap()),
        hardware::defaults()
    );
    let hourly = hardware::hourly_cost(Some(&store), None).unwrap();
    assert!((hourly - 3.51).abs() < 1e-9, "{hourly}");

    store
        .merge_provider_config(
            "replicate",
            r#"{"hardware_info": {"gpu-h100": {"name": "H100", "cost_per_second": 0.0015}}}"#,
        )
        .unwrap();
    // The save dropped the cached info: the store's now wins.
    let info = json(&hardware::info(Some(&store)).unwrap());
    assert_eq!(info["gpu-h100"]["cost_per_second"], 0.0015);
    assert!(matches!(
        hardware::hourly_cost(Some(&store), None),
        Err(Error::NotFound(_))
    ));

    // An empty hardware_info does not win.
    store
        .merge_provider_config("replicate", r#"{"hardware_info": null}"#)
        .unwrap();
    store
        .merge_provider_config("replicate", r#"{"hardware_info": {}}"#)
        .unwrap();
    assert_eq!(
        json(&hardware::info(Some(&store)).unwrap()),
        hardware::defaults()
    );

    hardware::set(r#"{"gpu-x": {"name": "X", "cost_per_second": 0.01}}"#).unwrap();
    assert!((hardware::hourly_cost(None, Some("gpu-x")).unwrap() - 36.0).abs() < 1e-9);
    for bad in [
        "{",
        "[]",
        "{}",
        r#"{"g": {"cost_per_second": "1"}}"#,
        r#"{"g": 5}"#,
    ] {
        assert!(
            matches!(hardware::set(bad), Err(Error::InvalidArgument(_))),
            "{bad}"
        );
    }
    hardware::clear_cache();
    assert_eq!(json(&hardware::info(None).unwrap()), hardware::defaults());
    hardware::clear_cache();
    prices_are_range_checked_and_costs_are_finite();
}

#[test]
fn timestamps_look_like_pythons_isoformat() {
    let t = utc_now_iso();
    assert_eq!(t.len(), "2026-11-21T20:35:22.123456+00:00".len(), "{t}");
    assert!(t.ends_with("+00:00") && t.as_bytes()[10] == b'T', "{t}");
}

/// Called by `hardware_info_defaults_store_override_set_and_clear` (the
/// hardware cache is process-wide).
fn prices_are_range_checked_and_costs_are_finite() {
    // Finding 7 of the hardening issue: cost_per_second 1e308 gave an hourly
    // cost of +inf with ST_OK.
    for bad in [
        r#"{"gpu-x": {"cost_per_second": 1e308}}"#,
        r#"{"gpu-x": {"cost_per_second": 100.5}}"#,
        r#"{"gpu-x": {"cost_per_second": -0.001}}"#,
    ] {
        assert!(
            matches!(hardware::set(bad), Err(Error::InvalidArgument(m)) if m.contains("'gpu-x'")),
            "{bad}"
        );
    }
    let dir = TempDir::new().unwrap();
    let store = Store::open(Some(&dir.path().join("jobs.db"))).unwrap();
    let bad = r#"{"hardware_info": {"gpu-x": {"cost_per_second": 1e308}}}"#;
    assert!(matches!(
        store.save_provider_config("replicate", bad),
        Err(Error::InvalidArgument(_))
    ));
    hardware::set(r#"{"gpu-x": {"cost_per_second": 100}}"#).unwrap();
    assert_eq!(
        hardware::hourly_cost(None, Some("gpu-x")).unwrap(),
        360_000.0
    );
    hardware::clear_cache();
}

#[test]
fn a_truncated_database_is_refused_and_removed_entries_fail_the_anchor() {
    // Finding 8 of the hardening issue: a 0-byte jobs.db used to open as a
    // new, empty database; deleting the newest audit entries left a chain
    // that still verified.
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    for i in 0..4 {
        store
            .save_provider_config("replicate", &format!(r#"{{"n": {i}}}"#))
            .unwrap();
    }
    let anchor = store.audit_head().unwrap();
    assert!(anchor.starts_with("4:"), "{anchor}");
    assert_eq!(
        store.recorded_audit_head().map(|(n, h)| format!("{n}:{h}")),
        Some(anchor.clone())
    );
    assert_eq!(store.verify_audit_against(&anchor).unwrap().entries, 4);
    assert!(matches!(
        store.verify_audit_against("4:nothex"),
        Err(Error::InvalidArgument(_))
    ));

    // Delete the two newest entries: the rest still verifies, the anchor does not.
    raw(&dir)
        .execute("DELETE FROM st_audit_log WHERE id > 2", [])
        .unwrap();
    let report = store.verify_audit().unwrap();
    assert_eq!((report.entries, report.first_broken), (2, None));
    let e = store.verify_audit_against(&anchor).unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("fewer than the anchor's 4")),
        "{e:?}"
    );
    // ...and what the store recorded after its last write says so too.
    assert_eq!(store.recorded_audit_head().unwrap().0, 4);
    drop(store);

    // Truncate the database to 0 bytes: refused, not a new empty store.
    std::fs::File::create(dir.path().join("cloud/jobs.db")).unwrap();
    let e = Store::open(Some(&dir.path().join("cloud/jobs.db"))).unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("is empty (0 bytes)")),
        "{e:?}"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("cloud/jobs.db"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn delete_and_list_are_audited_and_invalidate_the_cache() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("zeta", r#"{"a": 1}"#).unwrap();
    store.save_provider_config("alpha", r#"{"b": 2}"#).unwrap();
    assert_eq!(store.list_providers().unwrap(), ["alpha", "zeta"]);
    assert_eq!(json(&store.get_provider_config("zeta").unwrap())["a"], 1);
    assert!(store.delete_provider_config("zeta").unwrap());
    assert_eq!(
        store.get_provider_config("zeta").unwrap(),
        "{}",
        "not served from the cache"
    );
    assert!(
        !store.delete_provider_config("zeta").unwrap(),
        "already gone"
    );
    assert_eq!(store.list_providers().unwrap(), ["alpha"]);
    let newest = &store.audit_entries(1).unwrap()[0];
    assert_eq!(
        (newest.action.as_str(), newest.provider.as_str()),
        ("config.delete", "zeta")
    );
    assert_eq!(json(&newest.detail)["removed"], json(r#"["a"]"#));
    assert_eq!(
        store.verify_audit().unwrap().entries,
        3,
        "the miss wrote nothing"
    );
    assert!(store.delete_provider_config("").is_err());
}

#[test]
fn update_replaces_top_level_values_whole() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .save_provider_config("p", r#"{"hw": {"a": 1, "b": 2}, "keep": true}"#)
        .unwrap();
    let new = json(
        &store
            .update_provider_config("p", r#"{"hw": {"c": 3}, "gone": null}"#)
            .unwrap(),
    );
    assert_eq!(new, json(r#"{"hw": {"c": 3}, "keep": true, "gone": null}"#));
    assert_eq!(json(&store.get_provider_config("p").unwrap()), new);
    assert_eq!(store.audit_entries(1).unwrap()[0].action, "config.update");
    assert!(store.update_provider_config("p", "[1]").is_err());
}

#[test]
fn ranks_starting_together_on_a_fresh_node_all_open_the_store() {
    // Issue 24, finding 3: when 8 processes opened a store that did not
    // exist yet, 2 to 7 of them failed with "exists but is empty (0 bytes):
    // truncated?": the guard fired on a file another one had just created.
    // The database now appears whole or not at all (built aside, then
    // linked into place).
    for round in 0..20 {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("cloud/jobs.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let opened: Vec<Result<(), Error>> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = Store::open(Some(&path))?;
                    store.save_provider_config("p", r#"{"a": 1}"#).map(|_| ())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        for r in opened {
            assert!(r.is_ok(), "round {round}: {}", r.unwrap_err());
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn a_child_forked_mid_call_refuses_the_store_and_says_why() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("p", r#"{"a": 1}"#).unwrap();
    // Hold the store's lock as a thread inside SQLite would at the fork.
    let guard = store.conn.lock();
    let status = crate::sys::in_fork(|| match store.read_provider_config("p") {
        Err(Error::Store(m)) if m.contains("forked while another thread") => 0,
        _ => 1,
    });
    drop(guard);
    assert_eq!(status, Some(0));
    assert_eq!(store.read_provider_config("p").unwrap(), r#"{"a":1}"#);
}

#[test]
fn a_removed_database_file_is_named_never_malformed() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("p", r#"{"a": 1}"#).unwrap();
    std::fs::remove_file(store.path()).unwrap();
    for res in [
        store.save_provider_config("p", r#"{"a": 2}"#).map(|_| ()),
        store.read_provider_config("p").map(|_| ()),
        store.list_providers().map(|_| ()),
    ] {
        let e = res.unwrap_err();
        assert!(
            matches!(&e, Error::Store(m) if m.contains("jobs.db")
                && m.contains("was removed while this store had it open")
                && !m.contains("malformed") && !m.contains("directory is gone")),
            "{e:?}"
        );
    }
    assert!(!store.path().exists(), "no new database made silently");

    // SimpleTuner's tests remove the whole temporary directory.
    let dir2 = TempDir::new().unwrap();
    let store2 = open(&dir2);
    store2.save_provider_config("p", r#"{"a": 1}"#).unwrap();
    std::fs::remove_dir_all(dir2.path().join("cloud")).unwrap();
    let e = store2.save_provider_config("p", r#"{"a": 2}"#).unwrap_err();
    assert!(
        matches!(&e, Error::Store(m) if m.contains("directory is gone too")),
        "{e:?}"
    );
    assert_eq!(e.code_name(), "ST_STORE");
    // Opening again starts a new database there.
    let again = open(&dir2);
    assert_eq!(again.get_provider_config("p").unwrap(), "{}");
}

#[test]
fn a_replaced_database_file_is_followed_and_its_cached_entries_dropped() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .save_provider_config("p", r#"{"from": "old"}"#)
        .unwrap();
    assert_eq!(
        json(&store.get_provider_config("p").unwrap())["from"],
        "old"
    );

    // Another program writes a new database and moves it over the path.
    let other_dir = TempDir::new().unwrap();
    let other = open(&other_dir);
    other
        .save_provider_config("p", r#"{"from": "new"}"#)
        .unwrap();
    other
        .save_provider_config("q", r#"{"only": "new"}"#)
        .unwrap();
    drop(other);
    std::fs::rename(other_dir.path().join("cloud/jobs.db"), store.path()).unwrap();

    // The next call that reaches the database follows the path.
    assert_eq!(store.list_providers().unwrap(), ["p", "q"]);
    assert_eq!(
        json(&store.get_provider_config("p").unwrap())["from"],
        "new"
    );
    store.save_provider_config("q", r#"{"b": 2}"#).unwrap();
    assert_eq!(
        json(
            &raw(&dir)
                .query_row(
                    "SELECT config FROM provider_config WHERE provider = 'q'",
                    [],
                    |r| r.get::<_, String>(0)
                )
                .unwrap()
        )["b"],
        2
    );
}

#[test]
fn a_change_by_another_connection_is_served_at_once() {
    // The cache served another connection's change up to CONFIG_TTL (300 s)
    // late: SimpleTuner's own store, another worker, `st-secrets config set`.
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("p", r#"{"a": 1}"#).unwrap();
    assert_eq!(store.get_provider_config("p").unwrap(), r#"{"a":1}"#);
    // SimpleTuner's way: its own sqlite3 connection.
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    raw.execute(
        "UPDATE provider_config SET config = '{\"a\":2}' WHERE provider = 'p'",
        [],
    )
    .unwrap();
    assert_eq!(store.get_provider_config("p").unwrap(), r#"{"a":2}"#);
    // Another store object on the same file, in this process.
    let other = Store::open(Some(store.path())).unwrap();
    other.save_provider_config("p", r#"{"a": 3}"#).unwrap();
    assert_eq!(store.get_provider_config("p").unwrap(), r#"{"a":3}"#);
    assert_eq!(other.get_provider_config("p").unwrap(), r#"{"a":3}"#);
    // Another process: Python's sqlite3, as SimpleTuner writes. (Not a
    // fork of this test binary: SQLite's own global locks may be held by
    // another test's thread at the instant of a fork.)
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute(\"UPDATE provider_config SET config = '{\\\"a\\\":4}' WHERE provider = 'p'\")\n\
             c.commit()",
        )
        .arg(store.path())
        .status()
        .expect("python3 runs");
    assert!(status.success());
    assert_eq!(store.get_provider_config("p").unwrap(), r#"{"a":4}"#);
}

#[test]
fn a_database_with_two_names_is_refused_by_both() {
    // Through a hard link a second handle got "disk I/O error", and two
    // processes saving through the two names lost every save.
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.save_provider_config("p", r#"{"a": 1}"#).unwrap();
    drop(store);
    let db = dir.path().join("cloud/jobs.db");
    let link = dir.path().join("cloud/linked.db");
    std::fs::hard_link(&db, &link).unwrap();
    for name in [&link, &db] {
        let e = Store::open(Some(name)).unwrap_err();
        assert!(
            matches!(&e, Error::Store(m) if m.contains("2 names (hard links)")),
            "{}: {e:?}",
            name.display()
        );
    }
    std::fs::remove_file(&link).unwrap();
    let store = Store::open(Some(&db)).unwrap();
    assert_eq!(store.read_provider_config("p").unwrap(), r#"{"a":1}"#);
}

#[test]
fn the_bundled_sqlite_leaves_out_what_the_store_never_uses() {
    // .cargo/config.toml's LIBSQLITE3_FLAGS: no full-text search, R-trees,
    // dbstat or extension loading; JSON and the rest of SQL stay.
    let db = Connection::open_in_memory().unwrap();
    let used = |option: &str| -> i64 {
        db.query_row("SELECT sqlite_compileoption_used(?1)", [option], |r| {
            r.get(0)
        })
        .unwrap()
    };
    for off in [
        "ENABLE_FTS3",
        "ENABLE_FTS5",
        "ENABLE_RTREE",
        "ENABLE_DBSTAT_VTAB",
    ] {
        assert_eq!(used(off), 0, "{off}");
    }
    assert_eq!(used("OMIT_LOAD_EXTENSION"), 1);
    for table in ["fts5(x)", "fts4(x)", "rtree(id, a, b)"] {
        let sql = format!("CREATE VIRTUAL TABLE t USING {table}");
        assert!(db.execute_batch(&sql).is_err(), "{sql}");
    }
    let n: i64 = db
        .query_row("SELECT json_extract('{\"a\": 2}', '$.a')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

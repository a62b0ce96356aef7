use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

fn secret(s: &str) -> Option<SecretString> {
    Some(SecretString::from(s))
}

fn sources(dir: &TempDir, env_key: Option<&str>, env_previous: Option<&str>) -> KeySources {
    KeySources {
        env_key: env_key.and_then(secret),
        env_previous: env_previous.and_then(secret),
        key_file: Some(dir.path().join("sub/credential.key")),
    }
}

#[test]
fn derivation_matches_simpletuner() {
    assert_eq!(
        derive_key("testsecret").expose(),
        "DWixgjuI6Tq7JrIaCIyEqlobd9hmG-tRBSGtMtvXsuk="
    );
}

#[test]
fn stored_format_round_trip_and_bare_tokens() {
    let c = Cipher::from_secrets("testsecret", &[]);
    for plaintext in ["r8_abc", "", "ünïcødé ✓", &"x".repeat(5000)] {
        let stored = c.encrypt(plaintext);
        assert!(stored.starts_with("Z0FBQUFB"), "{stored}");
        assert_eq!(c.decrypt(&stored).unwrap().expose(), plaintext);
        let token = String::from_utf8(URL_SAFE.decode(&stored).unwrap()).unwrap();
        assert!(token.starts_with("gAAAAA"));
        assert_eq!(
            c.decrypt(&token).unwrap().expose(),
            plaintext,
            "a bare token"
        );
        assert_eq!(
            c.decrypt(&format!("  {stored}\n")).unwrap().expose(),
            plaintext
        );
    }
}

#[test]
fn errors_are_invalid_token_without_secrets() {
    let c = Cipher::from_secrets("testsecret", &[]);
    let other = Cipher::from_secrets("another", &[]);
    let stored = c.encrypt("sk-PLAINTEXT-VALUE");
    let mut tampered = URL_SAFE.decode(&stored).unwrap();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = URL_SAFE.encode(tampered);
    for bad in [
        "",
        "   ",
        "%%%not base64%%%",
        "Zm9v",
        &tampered,
        "gAAAAAbroken",
    ] {
        let e = c.decrypt(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidToken(_)), "{bad:?}: {e:?}");
    }
    let e = other.decrypt(&stored).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, Error::InvalidToken(_)));
    for leak in [
        "PLAINTEXT",
        "testsecret",
        "another",
        derive_key("testsecret").expose(),
    ] {
        assert!(!m.contains(leak), "{m}");
    }
    assert!(!format!("{c:?}").contains("testsecret"));
}

#[test]
fn tokens_from_the_future_and_the_past_open() {
    let c = Cipher::from_secrets("testsecret", &[]);
    let key = Fernet::new(derive_key("testsecret").expose()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for at in [
        0,
        1,
        now - 10 * 365 * 86400,
        now + 3600,
        now + 10 * 365 * 86400,
        u64::MAX,
    ] {
        let token = key.encrypt_at_time(b"v", at);
        assert_eq!(c.decrypt(&token).unwrap().expose(), "v", "timestamp {at}");
    }
}

#[test]
fn previous_keys_and_reencryption() {
    let old = Cipher::from_secrets("old-secret", &[]);
    let stored_old = old.encrypt("token-1");
    let rotated = Cipher::from_secrets("new-secret", &["older", "old-secret"]);
    assert_eq!(rotated.previous_keys(), 2);
    assert_eq!(rotated.decrypt(&stored_old).unwrap().expose(), "token-1");
    let r = rotated.reencrypt(&stored_old).unwrap();
    assert!(r.changed);
    let new_only = Cipher::from_secrets("new-secret", &[]);
    assert_eq!(new_only.decrypt(&r.ciphertext).unwrap().expose(), "token-1");
    // Idempotent: a current ciphertext comes back as it is.
    let again = rotated.reencrypt(&r.ciphertext).unwrap();
    assert_eq!(
        again,
        Reencrypted {
            ciphertext: r.ciphertext.clone(),
            changed: false
        }
    );
    assert!(new_only.reencrypt(&stored_old).is_err());
}

#[test]
fn sourcing_order_env_then_file_then_generated() {
    let dir = TempDir::new().unwrap();
    // Nothing yet: a key is generated and saved, 0600 in a 0700 directory.
    let generated = Cipher::from_sources(&sources(&dir, None, None)).unwrap();
    let path = dir.path().join("sub/credential.key");
    assert_eq!(generated.origin(), &KeyOrigin::Generated(path.clone()));
    let saved = fs::read_to_string(&path).unwrap();
    assert_eq!(saved.len(), 43, "32 random bytes as url-safe text");
    assert!(saved
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let stored = generated.encrypt("x");

    // Next time the file is used (trimmed), and not rewritten.
    fs::write(&path, format!("  {saved}\n")).unwrap();
    let from_file = Cipher::from_sources(&sources(&dir, None, None)).unwrap();
    assert_eq!(from_file.origin(), &KeyOrigin::File(path.clone()));
    assert_eq!(from_file.decrypt(&stored).unwrap().expose(), "x");

    // The environment wins; the file's secret becomes a previous one.
    let from_env = Cipher::from_sources(&sources(&dir, Some("env-secret"), None)).unwrap();
    assert_eq!(from_env.origin(), &KeyOrigin::Environment);
    assert_eq!(from_env.decrypt(&stored).unwrap().expose(), "x");
    let under_env = from_env.encrypt("y");
    assert_eq!(
        Cipher::from_secrets("env-secret", &[])
            .decrypt(&under_env)
            .unwrap()
            .expose(),
        "y"
    );
}

#[test]
fn key_file_lines_after_the_first_and_env_previous_are_previous_keys() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sub/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let by_old = Cipher::from_secrets("old", &[]).encrypt("a");
    let by_older = Cipher::from_secrets("older", &[]).encrypt("b");
    fs::write(&path, "current\nold\n\n").unwrap();
    let c = Cipher::from_sources(&sources(&dir, None, Some("older\nunused"))).unwrap();
    assert_eq!(c.previous_keys(), 3);
    assert_eq!(c.decrypt(&by_old).unwrap().expose(), "a");
    assert_eq!(c.decrypt(&by_older).unwrap().expose(), "b");
    assert!(Cipher::from_secrets("current", &[])
        .decrypt(&c.encrypt("z"))
        .is_ok());
}

#[test]
fn an_existing_key_file_is_never_replaced() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sub/credential.key");
    fs::create_dir_all(&path).unwrap(); // a directory: exists, cannot be read
    let e = Cipher::from_sources(&sources(&dir, None, None)).unwrap_err();
    assert!(
        matches!(&e, Error::Key(m) if m.contains("not replaced")),
        "{e:?}"
    );
    assert!(path.is_dir(), "left as it was");
    // With the key in the environment, the unreadable file does not matter.
    assert!(Cipher::from_sources(&sources(&dir, Some("env"), None)).is_ok());

    fs::remove_dir(&path).unwrap();
    fs::write(&path, "\n  \n").unwrap();
    let e = Cipher::from_sources(&sources(&dir, None, None)).unwrap_err();
    assert!(matches!(&e, Error::Key(m) if m.contains("empty")), "{e:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "\n  \n");

    let none = KeySources {
        env_key: None,
        env_previous: None,
        key_file: None,
    };
    assert!(matches!(Cipher::from_sources(&none), Err(Error::Key(_))));
}

#[test]
fn concurrent_first_use_agrees_on_one_key() {
    let dir = TempDir::new().unwrap();
    let src = sources(&dir, None, None);
    let ciphers: Vec<Cipher> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Cipher::from_sources(&src).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let token = ciphers[0].encrypt("shared");
    for c in &ciphers {
        assert_eq!(c.decrypt(&token).unwrap().expose(), "shared");
    }
}

#[test]
fn explicit_secret_ciphers_are_cached() {
    let a = cipher_for_secret("explicit-test-secret");
    let b = cipher_for_secret("explicit-test-secret");
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(
        &a,
        &cipher_for_secret("another-explicit-secret")
    ));
}

#[test]
fn a_dangling_symlink_key_file_is_st_key_not_endless_recursion() {
    // Finding 1 of the hardening issue: the hard link of a new key fails with
    // EEXIST (the symlink is there), which used to be taken for a lost race
    // and retried without bound (a stack overflow).
    let dir = TempDir::new().unwrap();
    let s = sources(&dir, None, None);
    let path = s.key_file.clone().unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(dir.path().join("missing-target"), &path).unwrap();
    let e = Cipher::from_sources(&s).unwrap_err();
    match &e {
        Error::Key(m) => {
            assert!(m.contains(&path.display().to_string()), "{m}");
            assert!(m.contains("symbolic link"), "{m}");
        }
        other => panic!("want ST_KEY, got {other:?}"),
    }
    assert!(
        !dir.path().join("missing-target").exists(),
        "nothing is created through the link"
    );
}

#[test]
fn a_fifo_or_directory_key_file_is_refused_without_blocking() {
    // Finding 2: a FIFO at the key path used to block the reader for ever.
    let dir = TempDir::new().unwrap();
    let s = sources(&dir, None, None);
    let path = s.key_file.clone().unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    crate::fsutil::mkfifo(&path);
    let e = Cipher::from_sources(&s).unwrap_err();
    assert!(
        matches!(&e, Error::Key(m) if m.contains("FIFO") && m.contains("credential.key")),
        "{e:?}"
    );
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let e = Cipher::from_sources(&s).unwrap_err();
    assert!(
        matches!(&e, Error::Key(m) if m.contains("directory")),
        "{e:?}"
    );
}

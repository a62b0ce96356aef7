//! The identity files' checks: every bad input is a clear error naming the
//! file, never its content. Certificates are made with Debian's `openssl`.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A compact JWT (unsigned: only its claims are read here) with `claims`.
fn jwt(claims: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2lnbmF0dXJlLXNlY3JldC1wYXJ0",
        b64(r#"{"alg":"RS256"}"#),
        b64(claims)
    )
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt_file(path: &Path) -> JwtFile {
    JwtFile {
        path: path.to_owned(),
        source: "a test".into(),
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The error, checked to name the file and to hold none of `secret`.
fn refused(r: Result<impl Sized, Error>, path: &Path, secret: &str) -> Error {
    let Err(e) = r else {
        panic!("{} was accepted", path.display())
    };
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(secret.is_empty() || !text.contains(secret), "{text}");
    e
}

#[test]
fn a_jwt_is_read_with_its_subject() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("token");
    let token = jwt(&format!(
        r#"{{"sub":"system:serviceaccount:ml:trainer","exp":{}}}"#,
        now_s() + 600
    ));
    write(&p, &format!("{token}\n"), 0o600);
    let got = jwt_file(&p).read().unwrap();
    assert_eq!(got.token.expose(), token);
    assert_eq!(
        got.subject.as_deref(),
        Some("system:serviceaccount:ml:trainer")
    );
}

#[test]
fn bad_jwt_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = jwt(&format!(r#"{{"exp":{}}}"#, now_s() + 600));
    // Missing.
    let missing = dir.path().join("missing");
    let e = refused(jwt_file(&missing).read(), &missing, "");
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Empty.
    let empty = dir.path().join("empty");
    write(&empty, "\n", 0o600);
    let e = refused(jwt_file(&empty).read(), &empty, "");
    assert!(e.to_string().contains("is empty"), "{e}");
    // 10 MB.
    let big = dir.path().join("big");
    write(&big, &"a".repeat(10 << 20), 0o600);
    let e = refused(jwt_file(&big).read(), &big, "");
    assert!(e.to_string().contains("above the limit"), "{e}");
    // A directory.
    let sub = dir.path().join("dir");
    std::fs::create_dir(&sub).unwrap();
    let e = refused(jwt_file(&sub).read(), &sub, "");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    // World-readable, outside a kubelet volume.
    let open = dir.path().join("open");
    write(&open, &good, 0o644);
    let e = refused(jwt_file(&open).read(), &open, &good);
    assert!(e.to_string().contains("readable by everyone"), "{e}");
    assert_eq!(e.code_name(), "ST_PERMISSION");
    // Group-writable.
    let shared = dir.path().join("shared");
    write(&shared, &good, 0o620);
    let e = refused(jwt_file(&shared).read(), &shared, &good);
    assert!(e.to_string().contains("writable by group or others"), "{e}");
    // Not a JWT: the content is never repeated.
    let plain = dir.path().join("plain");
    write(&plain, "hvs.not-a-jwt-but-a-secret", 0o600);
    let e = refused(jwt_file(&plain).read(), &plain, "hvs.not-a-jwt");
    assert!(e.to_string().contains("does not hold a JWT"), "{e}");
    // Expired.
    let old = jwt(&format!(r#"{{"exp":{}}}"#, now_s() - 30));
    let expired = dir.path().join("expired");
    write(&expired, &old, 0o600);
    let e = refused(jwt_file(&expired).read(), &expired, &old);
    assert!(e.to_string().contains("expired"), "{e}");
    // Another user's (needs root to give it away).
    if crate::sys::effective_uid() == 0 {
        let theirs = dir.path().join("theirs");
        write(&theirs, &good, 0o600);
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let e = refused(jwt_file(&theirs).read(), &theirs, &good);
        assert!(e.to_string().contains("owned by another user"), "{e}");
    }
}

#[test]
fn a_kubelet_volume_may_be_world_readable() {
    // The kubelet's layout: a timestamped directory, `..data` pointing at
    // it, and the file a symlink through `..data`; files are 0644 unless
    // the pod sets a mode.
    let dir = tempfile::tempdir().unwrap();
    let stamped = dir.path().join("..2026_11_25_10_00_00.1");
    std::fs::create_dir(&stamped).unwrap();
    let token = jwt(&format!(r#"{{"exp":{}}}"#, now_s() + 600));
    write(&stamped.join("token"), &token, 0o644);
    std::os::unix::fs::symlink("..2026_11_25_10_00_00.1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
    let got = jwt_file(&dir.path().join("token")).read().unwrap();
    assert_eq!(got.token.expose(), token);
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl package) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate `NAME.pem` and its key `NAME.key`.
fn self_signed(dir: &Path, name: &str) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            "/CN=node-1",
            "-days",
            "2",
        ],
    );
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn files(dir: &Path, cert: &str, key: &str) -> CertFiles {
    CertFiles {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

#[test]
fn a_certificate_and_its_key_load() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "node");
    let cert = files(dir.path(), "node.pem", "node.key").load().unwrap();
    assert_eq!(cert.certs().len(), 1);
}

#[test]
fn bad_certificates_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    self_signed(d, "a");
    self_signed(d, "b");
    // A key that is not the certificate's.
    let e = refused(
        files(d, "a.pem", "b.key").load(),
        &d.join("b.key"),
        "PRIVATE",
    );
    assert!(
        e.to_string().contains("is not the key of the certificate"),
        "{e}"
    );
    // A key readable by everyone.
    std::fs::set_permissions(d.join("a.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = refused(
        files(d, "a.pem", "a.key").load(),
        &d.join("a.key"),
        "PRIVATE",
    );
    assert!(e.to_string().contains("readable by everyone"), "{e}");
    std::fs::set_permissions(d.join("a.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // No certificate in the certificate file; no key in the key file.
    let e = refused(
        files(d, "a.key", "a.key").load(),
        &d.join("a.key"),
        "PRIVATE",
    );
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    write(
        &d.join("c.pem"),
        &std::fs::read_to_string(d.join("a.pem")).unwrap(),
        0o600,
    );
    let e = refused(files(d, "a.pem", "c.pem").load(), &d.join("c.pem"), "");
    assert!(e.to_string().contains("holds no PEM private key"), "{e}");
    // Missing.
    let e = refused(
        files(d, "none.pem", "a.key").load(),
        &d.join("none.pem"),
        "",
    );
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Expired: signed for a day in 2020 with `openssl ca`.
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\nunique_subject = no\nx509_extensions = x\n\
         [p]\ncommonName = supplied\n[x]\nbasicConstraints = CA:FALSE\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "old.key",
            "-out",
            "old.csr",
            "-subj",
            "/CN=old",
        ],
    );
    openssl(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-out",
            "old.pem",
        ],
    );
    std::fs::set_permissions(d.join("old.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = refused(
        files(d, "old.pem", "old.key").load(),
        &d.join("old.pem"),
        "",
    );
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(e.code_name(), "ST_AUTH");
}

#[test]
fn a_jwt_file_swapped_between_check_and_read_is_never_sent() {
    // Another user who may rename in the directory swaps its own file
    // (writable by others: refused) and the good one at the path, as fast
    // as it can, while logins read it.
    let dir = tempfile::tempdir().unwrap();
    let exp = now_s() + 3600;
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    write(
        &good,
        &jwt(&format!(r#"{{"sub":"mine","exp":{exp}}}"#)),
        0o600,
    );
    write(
        &bad,
        &jwt(&format!(r#"{{"sub":"theirs","exp":{exp}}}"#)),
        0o666,
    );
    let path = dir.path().join("token");
    std::fs::hard_link(&good, &path).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, dir) = (stop.clone(), dir.path().to_owned());
        let (bad, good) = (bad.clone(), good.clone());
        std::thread::spawn(move || {
            let temp = dir.join("temp");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for from in [&bad, &good] {
                    let _ = std::fs::remove_file(&temp);
                    std::fs::hard_link(from, &temp).unwrap();
                    std::fs::rename(&temp, dir.join("token")).unwrap();
                }
            }
        })
    };
    let file = jwt_file(&path);
    let (mut reads, mut theirs, mut refusals) = (0, 0, 0);
    // 3,000 reads, and on until the swap has been met (a loaded machine
    // may not run the swapper for a while), 60 s at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (reads < 3000 || refusals == 0) && std::time::Instant::now() < deadline {
        reads += 1;
        match file.read() {
            Ok(j) if j.subject.as_deref() == Some("mine") => {}
            Ok(_) => theirs += 1,
            Err(_) => refusals += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(theirs, 0, "the other user's JWT was read {theirs} times");
    assert!(
        refusals > 0,
        "the swapped file was never met in {reads} reads"
    );
    // The good file, left in place, is read.
    std::fs::remove_file(&path).unwrap();
    std::fs::hard_link(&good, &path).unwrap();
    let j = file.read().unwrap();
    assert_eq!(j.subject.as_deref(), Some("mine"));
}

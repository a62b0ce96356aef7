//! The one rule for a file that holds an identity or a credential the
//! platform hands over (a Kubernetes projected service-account token, an
//! AWS web identity token, an Azure federated token, a GCP subject token,
//! an AWS container authorization token, a TLS client certificate and its
//! key), read by every provider that sends one.
//!
//! The file is opened once, at each use (the platform rewrites it), and
//! checked on the open descriptor: a regular file (a symlink is followed,
//! as the kubelet's `..data` links must be; what it reaches is judged),
//! bounded in size, not empty, not writable by group or others, owned by
//! this user or root. A file readable by everyone is refused too, except a
//! token inside a volume the kubelet writes (a directory holding `..data`,
//! whose files are 0644 unless the pod sets a mode) or a certificate,
//! which is public. Messages name the file and what is wrong, never the
//! content.

use crate::error::Error;
use crate::secret::{SecretBytes, SecretString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The largest token file read: 64 KiB (a JWT is a few KiB).
pub(crate) const MAX_TOKEN: u64 = 64 << 10;
/// The largest certificate or key file read: 1 MiB.
pub(crate) const MAX_PEM: u64 = 1 << 20;

/// Who else may read a file of the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readers {
    /// Nobody else: a private key, a secret ID, a token outside a
    /// kubelet volume.
    Owner,
    /// Everyone: a certificate.
    Anyone,
    /// Everyone when the file is in a kubelet volume, else nobody else: a
    /// token.
    KubeletVolume,
}

/// The owner and mode of `path` (`meta` from its open descriptor), checked
/// before what it holds is used.
///
/// # Errors
/// [`Error::Permission`] naming the file and what is wrong.
pub(crate) fn check_owner_and_mode(
    path: &Path,
    what: &str,
    meta: &std::fs::Metadata,
    readers: Readers,
) -> Result<(), Error> {
    judge(path, what, meta.uid(), meta.mode(), readers)
}

/// [`check_owner_and_mode`] of a file owned by `uid` with `mode`.
fn judge(path: &Path, what: &str, uid: u32, mode: u32, readers: Readers) -> Result<(), Error> {
    let mode = mode & 0o777;
    if mode & 0o022 != 0 {
        return Err(Error::Permission(format!(
            "{what} {} is writable by group or others (mode {mode:o}): anyone could choose \
             the identity sent; refusing it (chmod go-w)",
            path.display()
        )));
    }
    let me = crate::sys::effective_uid();
    if uid != me && uid != 0 {
        return Err(Error::Permission(format!(
            "{what} {} is owned by another user (uid {}, this process runs as {me}): \
             refusing an identity someone else controls",
            path.display(),
            uid
        )));
    }
    let others_may_read = match readers {
        Readers::Owner => false,
        Readers::Anyone => true,
        Readers::KubeletVolume => in_kubelet_volume(path),
    };
    if mode & 0o004 != 0 && !others_may_read {
        return Err(Error::Permission(format!(
            "{what} {} is readable by everyone (mode {mode:o}): refusing it (chmod o-r; in \
             a Kubernetes volume, set its defaultMode)",
            path.display()
        )));
    }
    Ok(())
}

/// Whether `path` sits in a volume the kubelet writes: its directory holds
/// the `..data` symlink the kubelet swaps on each update.
fn in_kubelet_volume(path: &Path) -> bool {
    path.parent()
        .and_then(|dir| std::fs::symlink_metadata(dir.join("..data")).ok())
        .is_some_and(|m| m.file_type().is_symlink())
}

/// The bytes of `path` (`what` in messages) under the rule, at most `max`.
///
/// # Errors
/// [`Error::ProviderUnavailable`]: missing or empty; [`Error::Permission`]:
/// see [`check_owner_and_mode`]; [`Error::Io`]: not a regular file, too
/// large, unreadable.
pub(crate) fn read(
    path: &Path,
    what: &str,
    max: u64,
    readers: Readers,
) -> Result<SecretBytes, Error> {
    let read = crate::fsutil::read_checked(path, what, max, |meta| {
        check_owner_and_mode(path, what, meta, readers)
    })?;
    let Some(read) = read else {
        return Err(Error::ProviderUnavailable(format!(
            "{what} {} does not exist",
            path.display()
        )));
    };
    let bytes = SecretBytes::from(read);
    if bytes.expose().iter().all(u8::is_ascii_whitespace) {
        return Err(Error::ProviderUnavailable(format!(
            "{what} {} is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The token `path` holds (`what` in messages), surrounding whitespace
/// trimmed: a token under the rule, readable by others only in a kubelet
/// volume.
///
/// # Errors
/// As [`read`]; [`Error::InvalidArgument`] when it is not UTF-8.
pub(crate) fn read_token(path: &Path, what: &str) -> Result<SecretString, Error> {
    let bytes = read(path, what, MAX_TOKEN, Readers::KubeletVolume)?;
    let text = std::str::from_utf8(bytes.expose()).map_err(|_| {
        Error::InvalidArgument(format!("{what} {} is not UTF-8 text", path.display()))
    })?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// The claims of a compact JWT (`header.claims.signature`), unverified:
/// only to know when it expires, whom it names and for whom it is.
pub(crate) fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_header, body, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body.trim_end_matches('='))
            .ok()?,
    );
    let value: serde_json::Value = serde_json::from_slice(&decoded).ok()?;
    value.is_object().then_some(value)
}

/// A JWT's audiences: its `aud`, a string or a list of them.
pub(crate) fn audiences(claims: &serde_json::Value) -> Vec<String> {
    match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn refused(path: &Path, readers: Readers) -> String {
        match read(path, "token file", MAX_TOKEN, readers) {
            Ok(_) => panic!("{} was read", path.display()),
            Err(e) => {
                assert!(!e.message().contains("s3cret"), "{e}");
                e.message().to_owned()
            }
        }
    }

    #[test]
    fn the_rule_reads_a_private_token_and_refuses_what_others_control() {
        let dir = tempfile::tempdir().unwrap();
        let ok = file(dir.path(), "ok", "  s3cret-token\n", 0o600);
        assert_eq!(
            read_token(&ok, "token file").unwrap().expose(),
            "s3cret-token"
        );
        // A link to it is followed: what it reaches is judged.
        std::os::unix::fs::symlink(&ok, dir.path().join("link")).unwrap();
        assert!(read_token(&dir.path().join("link"), "token file").is_ok());

        let writable = file(dir.path(), "w", "s3cret", 0o620);
        assert!(refused(&writable, Readers::Anyone).contains("writable by group or others"));
        let everyone = file(dir.path(), "r", "s3cret", 0o644);
        assert!(refused(&everyone, Readers::KubeletVolume).contains("readable by everyone"));
        assert!(refused(&everyone, Readers::Owner).contains("readable by everyone"));
        // A certificate is public.
        assert!(read(&everyone, "certificate", MAX_PEM, Readers::Anyone).is_ok());
        let empty = file(dir.path(), "e", " \n", 0o600);
        assert!(refused(&empty, Readers::Owner).contains("is empty"));
        let large = file(dir.path(), "l", &"x".repeat(70_000), 0o600);
        assert!(refused(&large, Readers::Owner).contains("above the limit"));
        assert!(refused(&dir.path().join("none"), Readers::Owner).contains("does not exist"));
        assert!(refused(dir.path(), Readers::Owner).contains("not a regular file"));
        let binary = dir.path().join("b");
        std::fs::write(&binary, [0xff, 0xfe, 0x41]).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_token(&binary, "token file").is_err());
    }

    #[test]
    fn a_kubelet_volume_may_show_its_token_to_everyone() {
        // The kubelet's layout: `token` -> `..data/token`, `..data` -> a
        // timestamped directory; files 0644 unless the pod sets a mode.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..2026_11_28")).unwrap();
        file(
            &dir.path().join("..2026_11_28"),
            "token",
            "s3cret-jwt",
            0o644,
        );
        std::os::unix::fs::symlink("..2026_11_28", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        let token = dir.path().join("token");
        assert_eq!(
            read_token(&token, "token file").unwrap().expose(),
            "s3cret-jwt"
        );
        // A key in the same volume stays private.
        assert!(refused(&token, Readers::Owner).contains("readable by everyone"));
    }

    #[test]
    fn a_file_another_user_owns_is_refused_and_roots_is_not() {
        let me = crate::sys::effective_uid();
        let path = Path::new("/run/token");
        let other = if me == 1234 { 1235 } else { 1234 };
        let e = judge(path, "token file", other, 0o600, Readers::Owner).unwrap_err();
        assert!(e.message().contains("owned by another user"), "{e}");
        assert!(judge(path, "token file", 0, 0o600, Readers::Owner).is_ok());
        assert!(judge(path, "token file", me, 0o400, Readers::Owner).is_ok());
    }
}

//! Credential encryption, byte-compatible with SimpleTuner's
//! `credential_encryption.py`.
//!
//! - **Key**: PBKDF2-HMAC-SHA256 of the master secret (any string) with the salt
//!   `simpletuner-credential-encryption-v1`, 100,000 iterations, 32 bytes,
//!   url-safe base64 with padding: that text is the Fernet key.
//! - **Stored format**: the url-safe base64 (with padding) of the Fernet token's
//!   text, so stored values start with `Z0FBQUFB`. Decryption also accepts a
//!   bare Fernet token (`gAAAAA...` for any timestamp before the year 4000).
//! - **Fernet** through the `fernet` crate (pure-Rust backend). Decryption
//!   verifies the HMAC and the padding, and enforces no TTL and no clock-skew
//!   limit: stored credentials are long-lived, and a token written by a machine
//!   whose clock ran ahead must still open (Python's `Fernet.decrypt` without a
//!   TTL behaves the same).
//! - **Key sourcing** ([`KeySources`]): `SIMPLETUNER_CREDENTIAL_KEY` when
//!   non-empty; else the key file (`SIMPLETUNER_CREDENTIAL_KEY_FILE`, default
//!   `~/.simpletuner/credential.key`), its first line trimmed; else a new random
//!   secret (32 random bytes as url-safe text, like Python's
//!   `secrets.token_urlsafe(32)`) saved there with mode 0600 without ever
//!   replacing an existing file. A key file that exists but cannot be read is an
//!   error ([`Error::Key`]), never a reason to make a new key.
//! - **Rotation**: previous master secrets are tried when the current one fails:
//!   the lines of `SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS` (one secret per line),
//!   the key file's lines after the first, and, when the environment supplies
//!   the current secret, the key file's first line too. [`Cipher::reencrypt`]
//!   turns a ciphertext readable under any of them into one under the current
//!   key.

use crate::error::Error;
use crate::lazy::ResettableLazy;
use crate::secret::{SecretBytes, SecretString};
use crate::sys::Mutex;
use crate::{fsutil, paths};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use fernet::Fernet;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroize;

/// PBKDF2 salt (SimpleTuner's).
pub const SALT: &[u8] = b"simpletuner-credential-encryption-v1";
/// PBKDF2 iterations (SimpleTuner's).
pub const ITERATIONS: u32 = 100_000;
/// The current master secret.
pub const ENV_KEY: &str = "SIMPLETUNER_CREDENTIAL_KEY";
/// Previous master secrets, one per line.
pub const ENV_KEY_PREVIOUS: &str = "SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS";
/// The key file's path (an st-secrets addition; default
/// `~/.simpletuner/credential.key`).
pub const ENV_KEY_FILE: &str = "SIMPLETUNER_CREDENTIAL_KEY_FILE";

/// The version byte of Fernet tokens.
const FERNET_VERSION: u8 = 0x80;
/// The clock-skew allowance of the fernet crate's decryption.
const FERNET_MAX_CLOCK_SKEW: u64 = 60;

/// The Fernet key (url-safe base64 text) derived from a master secret.
pub fn derive_key(master_secret: &str) -> SecretString {
    let mut raw = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(master_secret.as_bytes(), SALT, ITERATIONS, &mut raw);
    let key = URL_SAFE.encode(raw);
    raw.zeroize();
    SecretString::from(key)
}

/// Where the master secrets come from.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySources {
    /// `SIMPLETUNER_CREDENTIAL_KEY` (empty counts as unset).
    pub env_key: Option<SecretString>,
    /// `SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS`.
    pub env_previous: Option<SecretString>,
    /// The key file (`None`: no home directory and no override).
    pub key_file: Option<PathBuf>,
}

impl std::fmt::Debug for KeySources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySources")
            .field("env_key", &self.env_key.as_ref().map(|_| "<set>"))
            .field("env_previous", &self.env_previous.as_ref().map(|_| "<set>"))
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl KeySources {
    /// The sources named by the environment.
    pub fn from_environment() -> KeySources {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(SecretString::from)
        };
        let key_file = paths::path_from_env(ENV_KEY_FILE)
            .or_else(|| paths::simpletuner_dir().map(|d| d.join("credential.key")));
        KeySources {
            env_key: var(ENV_KEY),
            env_previous: var(ENV_KEY_PREVIOUS),
            key_file,
        }
    }
}

/// Which source the current master secret came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `SIMPLETUNER_CREDENTIAL_KEY`.
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// A key file this process just created.
    Generated(PathBuf),
    /// A secret passed by the caller.
    Explicit,
}

/// A Fernet cipher for the current master secret, and the previous ones for
/// decryption. Its `Debug` output shows no key material.
pub struct Cipher {
    current: Fernet,
    previous: Vec<Fernet>,
    origin: KeyOrigin,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("origin", &self.origin)
            .field("previous_keys", &self.previous.len())
            .finish_non_exhaustive()
    }
}

/// Outcome of [`Cipher::reencrypt`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reencrypted {
    /// The ciphertext under the current key (the input itself when it already
    /// was).
    pub ciphertext: String,
    /// Whether it was under a previous key.
    pub changed: bool,
}

impl Cipher {
    /// A cipher for `master_secret`, with `previous` secrets for decryption.
    /// Derives each key (PBKDF2: deliberately slow, tens of milliseconds).
    pub fn from_secrets(master_secret: &str, previous: &[&str]) -> Cipher {
        Cipher::build(master_secret, previous, KeyOrigin::Explicit)
    }

    fn build(master_secret: &str, previous: &[&str], origin: KeyOrigin) -> Cipher {
        let fernet = |secret: &str| {
            Fernet::new(derive_key(secret).expose())
                .expect("a derived key is 32 bytes of url-safe base64")
        };
        Cipher {
            current: fernet(master_secret),
            previous: previous.iter().map(|s| fernet(s)).collect(),
            origin,
        }
    }

    /// Sources the master secrets as documented (module docs) and derives the
    /// keys.
    ///
    /// # Errors
    /// [`Error::Key`] when the key file exists but cannot be read or is empty,
    /// when no key file location is known, or when a new key cannot be saved.
    pub fn from_sources(sources: &KeySources) -> Result<Cipher, Error> {
        let mut attempt = 0;
        loop {
            if let Some(cipher) = Self::try_sources(sources, &mut attempt)? {
                return Ok(cipher);
            }
        }
    }

    /// One pass of [`from_sources`](Self::from_sources): `Ok(None)` when a
    /// concurrent creation of the key file calls for another pass (bounded by
    /// [`MAX_KEY_ATTEMPTS`]).
    fn try_sources(sources: &KeySources, attempt: &mut u32) -> Result<Option<Cipher>, Error> {
        let file_lines = match (&sources.key_file, &sources.env_key) {
            (None, _) => None,
            // With the key in the environment, the file only adds previous
            // secrets: an unreadable one is not an error then.
            (Some(path), Some(_)) => read_key_file(path).ok().flatten(),
            (Some(path), None) => read_key_file(path)?,
        };
        let mut previous: Vec<SecretString> = Vec::new();
        if let Some(text) = &sources.env_previous {
            previous.extend(secret_lines(text.expose()));
        }
        let (current, origin) = match (&sources.env_key, file_lines) {
            (Some(env), lines) => {
                // Secrets of the key file may have encrypted older credentials.
                previous.extend(lines.unwrap_or_default());
                (env.clone(), KeyOrigin::Environment)
            }
            (None, Some(mut lines)) => {
                let path = sources
                    .key_file
                    .clone()
                    .expect("lines came from the key file");
                if lines.is_empty() {
                    return Err(Error::Key(format!(
                        "the key file {} is empty; it is not replaced (that would make stored \
                         credentials unreadable): put the master secret in it, or set {ENV_KEY}",
                        path.display()
                    )));
                }
                let first = lines.remove(0);
                previous.extend(lines);
                (first, KeyOrigin::File(path))
            }
            (None, None) => {
                let path = sources.key_file.clone().ok_or_else(|| {
                    Error::Key(format!(
                        "no credential key: set {ENV_KEY}, or HOME (for ~/.simpletuner/credential.key)"
                    ))
                })?;
                match create_key_file(&path)? {
                    Created::New(secret) => (secret, KeyOrigin::Generated(path)),
                    // Another process created it first: use theirs, once. A
                    // name that exists but cannot be read (a dangling
                    // symlink) would otherwise loop for ever.
                    Created::Raced if *attempt < MAX_KEY_ATTEMPTS => {
                        *attempt += 1;
                        return Ok(None);
                    }
                    Created::Raced => {
                        return Err(Error::Key(format!(
                            "the key file {} exists but cannot be read{}: fix or remove it",
                            path.display(),
                            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
                            {
                                " (a symbolic link to a missing file)"
                            } else {
                                ""
                            }
                        )))
                    }
                }
            }
        };
        let mut distinct: Vec<SecretString> = Vec::new();
        for p in previous {
            if p != current && !distinct.contains(&p) {
                distinct.push(p);
            }
        }
        let previous = distinct;
        let previous: Vec<&str> = previous.iter().map(SecretString::expose).collect();
        Ok(Some(Cipher::build(current.expose(), &previous, origin)))
    }

    /// Where the current key came from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// How many previous keys are tried for decryption.
    pub fn previous_keys(&self) -> usize {
        self.previous.len()
    }

    /// Encrypts `plaintext` into the stored format (`Z0FBQUFB...`).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let token = self.current.encrypt(plaintext.as_bytes());
        URL_SAFE.encode(token.as_bytes())
    }

    /// Decrypts a stored ciphertext or a bare Fernet token, trying the current
    /// key, then the previous ones.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an empty or malformed input, a wrong key or a
    /// tampered token, or a plaintext that is not UTF-8. Messages contain
    /// neither plaintext nor key material.
    pub fn decrypt(&self, ciphertext: &str) -> Result<SecretString, Error> {
        self.open(ciphertext).map(|(plaintext, _)| plaintext)
    }

    /// The same credential under the current key. Idempotent: a ciphertext
    /// already under the current key is returned as it is.
    pub fn reencrypt(&self, ciphertext: &str) -> Result<Reencrypted, Error> {
        let (plaintext, key_index) = self.open(ciphertext)?;
        Ok(if key_index == 0 {
            Reencrypted {
                ciphertext: ciphertext.trim().to_owned(),
                changed: false,
            }
        } else {
            Reencrypted {
                ciphertext: self.encrypt(plaintext.expose()),
                changed: true,
            }
        })
    }

    /// The plaintext and the index of the key that opened it (0: current).
    fn open(&self, ciphertext: &str) -> Result<(SecretString, usize), Error> {
        let token = token_text(ciphertext)?;
        let keys = std::iter::once(&self.current).chain(&self.previous);
        for (index, key) in keys.enumerate() {
            if let Ok(plaintext) = decrypt_token(key, &token, TimePolicy::Stored) {
                return Ok((utf8(plaintext)?, index));
            }
        }
        Err(Error::InvalidToken(format!(
            "the credential cannot be decrypted: wrong key ({} key{} tried) or tampered data",
            1 + self.previous.len(),
            if self.previous.is_empty() { "" } else { "s" }
        )))
    }
}

/// The time rules for opening a Fernet token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePolicy {
    /// Stored credentials: no TTL, no clock-skew limit.
    Stored,
    /// The Fernet specification's rules: the token is at most `ttl` seconds old
    /// at time `now`, and at most 60 s in its future.
    Spec {
        /// Maximum age in seconds.
        ttl: u64,
        /// The current time, in seconds since the Unix epoch.
        now: u64,
    },
}

/// Opens a bare Fernet token with `key` under `policy`. The HMAC and padding
/// checks are the fernet crate's.
///
/// # Errors
/// [`Error::InvalidToken`], without detail (as the specification wants).
pub fn decrypt_token(key: &Fernet, token: &str, policy: TimePolicy) -> Result<SecretBytes, Error> {
    let invalid = || Error::InvalidToken("invalid Fernet token".into());
    let (ttl, now) = match policy {
        TimePolicy::Spec { ttl, now } => (Some(ttl), now),
        // The crate always applies its clock-skew limit; asking "at the token's
        // own time" makes it a no-op (and cannot overflow).
        TimePolicy::Stored => (
            None,
            token_timestamp(token)
                .ok_or_else(invalid)?
                .saturating_sub(FERNET_MAX_CLOCK_SKEW),
        ),
    };
    key.decrypt_at_time(token, ttl, now)
        .map(SecretBytes::from)
        .map_err(|_| invalid())
}

/// The timestamp field of a Fernet token, if it has the right version byte.
fn token_timestamp(token: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    if raw.len() < 9 || raw[0] != FERNET_VERSION {
        return None;
    }
    Some(u64::from_be_bytes(raw[1..9].try_into().ok()?))
}

/// The Fernet token inside a stored ciphertext, or the bare token itself. A
/// bare token decodes to bytes starting with the version byte 0x80; a stored
/// value decodes to the token's text (starting with `g`).
fn token_text(ciphertext: &str) -> Result<String, Error> {
    let text = ciphertext.trim();
    if text.is_empty() {
        return Err(Error::InvalidToken("the ciphertext is empty".into()));
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Error::InvalidToken("the ciphertext is not url-safe base64".into()))?;
    if decoded.first() == Some(&FERNET_VERSION) {
        return Ok(text.to_owned());
    }
    match String::from_utf8(decoded) {
        Ok(token) if token_timestamp(&token).is_some() => Ok(token),
        _ => Err(Error::InvalidToken(
            "the ciphertext does not hold a Fernet token".into(),
        )),
    }
}

fn utf8(plaintext: SecretBytes) -> Result<SecretString, Error> {
    match std::str::from_utf8(plaintext.expose()) {
        Ok(text) => Ok(SecretString::from(text)),
        Err(_) => Err(Error::InvalidToken(
            "the decrypted credential is not UTF-8 text".into(),
        )),
    }
}

/// The non-empty trimmed lines of a secrets text.
fn secret_lines(text: &str) -> Vec<SecretString> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(SecretString::from)
        .collect()
}

/// The largest key file read: 64 KiB (a key is 43 characters a line).
const MAX_KEY_FILE: u64 = 64 << 10;

/// The key file's secrets: `None` when it does not exist; an error when it
/// exists but cannot be read (not a regular file, too large, denied).
fn read_key_file(path: &Path) -> Result<Option<Vec<SecretString>>, Error> {
    match fsutil::read_regular(path, "key file", MAX_KEY_FILE) {
        Ok(Some(mut bytes)) => {
            let lines = match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(Some(secret_lines(text))),
                Err(_) => Err(Error::Key(format!(
                    "the key file {} is not UTF-8 text",
                    path.display()
                ))),
            };
            bytes.zeroize();
            lines
        }
        Ok(None) => Ok(None),
        Err(e) => Err(Error::Key(format!(
            "{e} (the key file is not replaced: that would make stored credentials unreadable)"
        ))),
    }
}

/// How many times sourcing starts over after losing the race to create the
/// key file (the winner's file is read on the next pass).
const MAX_KEY_ATTEMPTS: u32 = 2;

enum Created {
    New(SecretString),
    Raced,
}

/// Creates the key file with a new secret, never over an existing file.
fn create_key_file(path: &Path) -> Result<Created, Error> {
    // 32 random bytes, url-safe text without padding (43 characters).
    let secret = SecretString::from(Fernet::generate_key().trim_end_matches('=').to_owned());
    match fsutil::create_secret_file_once(path, secret.expose().as_bytes()) {
        Ok(true) => Ok(Created::New(secret)),
        Ok(false) => Ok(Created::Raced),
        Err(e) => Err(Error::Key(format!("cannot save a new credential key: {e}"))),
    }
}

static PROCESS_CIPHER: ResettableLazy<Cipher> = ResettableLazy::new();

/// The process-wide cipher, sourced from the environment on first use and
/// cached (the derivation is deliberately slow). [`reset`] forgets it.
pub fn cipher() -> Result<Arc<Cipher>, Error> {
    PROCESS_CIPHER.get_or_try_init(|| Cipher::from_sources(&KeySources::from_environment()))
}

/// Forgets the process-wide cipher: the key is sourced again at next use.
pub fn reset() {
    PROCESS_CIPHER.reset();
}

/// Encrypts with the process-wide key (SimpleTuner's `encrypt_credential`).
pub fn encrypt(plaintext: &str) -> Result<String, Error> {
    Ok(cipher()?.encrypt(plaintext))
}

/// Decrypts with the process-wide keys (SimpleTuner's `decrypt_credential`).
pub fn decrypt(ciphertext: &str) -> Result<SecretString, Error> {
    cipher()?.decrypt(ciphertext)
}

/// Re-encrypts under the process-wide current key.
pub fn reencrypt(ciphertext: &str) -> Result<Reencrypted, Error> {
    cipher()?.reencrypt(ciphertext)
}

/// How many ciphers for explicit master secrets are kept.
const EXPLICIT_CIPHERS: usize = 16;

/// Ciphers for explicit master secrets (tools, tests), the most recently
/// used kept by SHA-256 of the secret, so repeated calls do not pay the
/// derivation again.
static EXPLICIT: Mutex<lru::LruCache<[u8; 32], Arc<Cipher>>> = Mutex::lazy(|| {
    lru::LruCache::new(std::num::NonZeroUsize::new(EXPLICIT_CIPHERS).expect("not zero"))
});

/// A cipher for an explicit master secret (derived once, then kept). The
/// derivation runs outside the lock: two threads asking for a new secret at
/// once may both derive it; one result is kept.
pub fn cipher_for_secret(master_secret: &str) -> Arc<Cipher> {
    let id: [u8; 32] = Sha256::digest(master_secret.as_bytes()).into();
    if let Some(cipher) = EXPLICIT.lock().get(&id) {
        return Arc::clone(cipher);
    }
    let cipher = Arc::new(Cipher::from_secrets(master_secret, &[]));
    EXPLICIT.lock().put(id, Arc::clone(&cipher));
    cipher
}

#[cfg(test)]
mod tests;

//! Byte buffers for secret material.
//!
//! [`SecretBytes`] zeroes its whole allocation (length and spare capacity) when it
//! is dropped, never reallocates without zeroing the block it leaves behind, and
//! prints as `SecretBytes(<redacted, N bytes>)` under `Debug`, so a secret cannot
//! reach a log through a stray `{:?}`.

use std::fmt;
use zeroize::Zeroize;

/// Owned bytes that are zeroed when dropped. Cheap to build from a slice; `Clone`
/// makes a second zeroizing copy.
#[derive(Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// An empty buffer that will hold `capacity` bytes without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        SecretBytes(Vec::with_capacity(capacity))
    }

    /// The bytes. Handle with care: do not log or format them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends `more`. When the buffer has to grow, the new block is allocated,
    /// filled, and the old block is zeroed before it is freed.
    pub fn extend_from_slice(&mut self, more: &[u8]) {
        let needed = self.0.len().saturating_add(more.len());
        if needed > self.0.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2)));
            grown.extend_from_slice(&self.0);
            std::mem::swap(&mut self.0, &mut grown);
            grown.zeroize();
        }
        self.0.extend_from_slice(more);
    }
}

/// Writing appends, growing as [`extend_from_slice`](SecretBytes::extend_from_slice)
/// does (an encoder writes a secret document straight into the buffer).
impl std::io::Write for SecretBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }
}

impl From<Vec<u8>> for SecretBytes {
    /// Takes ownership of the vector's allocation as it is (no copy left behind).
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        SecretBytes(self.0.clone())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for SecretBytes {}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Zeroes the elements and the spare capacity.
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

/// An owned UTF-8 secret (a token, a password), zeroed when dropped, redacted
/// under `Debug`. Built from a `String` without copying it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(SecretBytes);

impl SecretString {
    /// The text. Handle with care: do not log or format it.
    pub fn expose(&self) -> &str {
        // Only ever built from `String`/`&str`, so the bytes are UTF-8.
        std::str::from_utf8(self.0.expose()).expect("SecretString holds UTF-8")
    }

    /// The text's bytes, without the UTF-8 check of [`expose`](Self::expose)
    /// (a hot path copying or hashing the value needs no `&str`).
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same secret as bytes.
    pub fn into_bytes(self) -> SecretBytes {
        self.0
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(SecretBytes::from(s.into_bytes()))
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(SecretBytes::from(s.as_bytes()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString(<redacted, {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from(&b"hunter2-token"[..]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "SecretBytes(<redacted, 13 bytes>)");
    }

    #[test]
    fn secret_string_is_redacted_and_round_trips() {
        let s = SecretString::from(String::from("hf_abc"));
        assert_eq!(s.expose(), "hf_abc");
        assert_eq!(format!("{s:?}"), "SecretString(<redacted, 6 bytes>)");
        assert_eq!(s.clone().into_bytes().expose(), b"hf_abc");
        assert!(SecretString::default().is_empty());
    }

    #[test]
    fn extend_grows_and_keeps_content() {
        let mut s = SecretBytes::with_capacity(2);
        for chunk in [&b"ab"[..], b"", b"cdefgh", b"\0i"] {
            s.extend_from_slice(chunk);
        }
        assert_eq!(s.expose(), b"abcdefgh\0i");
        assert_eq!(s.len(), 10);
        assert!(!s.is_empty());
        assert_eq!(s.clone(), s);
    }
}

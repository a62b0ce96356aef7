//! Byte buffers for secret material.
//!
//! [`SecretBytes`] keeps its bytes in the library's secret memory (pages
//! left out of core dumps, locked in RAM where the limit allows: see
//! `sys::secmem`), zeroes its whole block when dropped, never leaves a
//! copy behind when it grows (the old block is zeroed as it is freed), and
//! prints as `SecretBytes(<redacted, N bytes>)` under `Debug`, so a secret
//! cannot reach a log through a stray `{:?}`.

use crate::sys::secmem::Block;
use std::fmt;
use zeroize::Zeroize;

/// Owned bytes in secret memory, zeroed when dropped. Cheap to build from a
/// slice; `Clone` makes a second copy, in secret memory too.
pub struct SecretBytes {
    block: Block,
    len: usize,
}

impl Default for SecretBytes {
    fn default() -> Self {
        SecretBytes {
            block: Block::EMPTY,
            len: 0,
        }
    }
}

impl SecretBytes {
    /// An empty buffer that will hold `capacity` bytes without growing.
    pub fn with_capacity(capacity: usize) -> Self {
        SecretBytes {
            block: Block::new(capacity),
            len: 0,
        }
    }

    /// The bytes. Handle with care: do not log or format them.
    #[inline]
    pub fn expose(&self) -> &[u8] {
        self.block.bytes(self.len)
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `more`. When the buffer has to grow, a new block (twice as
    /// large at least) is filled and the old one zeroed as it is freed.
    pub fn extend_from_slice(&mut self, more: &[u8]) {
        let needed = self.len.saturating_add(more.len());
        if needed > self.block.capacity() {
            let mut grown = Block::new(needed.max(self.block.capacity().saturating_mul(2)));
            grown.bytes_mut()[..self.len].copy_from_slice(self.expose());
            self.block = grown;
        }
        self.block.bytes_mut()[self.len..needed].copy_from_slice(more);
        self.len = needed;
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
        let mut out = SecretBytes::with_capacity(bytes.len());
        out.extend_from_slice(bytes);
        out
    }
}

impl From<Vec<u8>> for SecretBytes {
    /// Copies the bytes into secret memory and zeroes the vector's whole
    /// allocation before it is freed.
    fn from(mut bytes: Vec<u8>) -> Self {
        let out = SecretBytes::from(&bytes[..]);
        bytes.zeroize();
        out
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        SecretBytes::from(self.expose())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.len)
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

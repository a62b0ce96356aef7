//! The encoded forms of a value that the matcher looks for besides the value
//! itself: how a secret looks once a program has base64-, percent-, JSON- or
//! hex-encoded it.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::fmt;
use zeroize::Zeroizing;

/// How a value was found encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// The bytes as served.
    Raw,
    /// Standard base64 (`+`, `/`), at any of the three alignments.
    Base64,
    /// URL-safe base64 (`-`, `_`), at any of the three alignments.
    Base64Url,
    /// Percent-encoded: every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`, either case.
    Percent,
    /// Inside a JSON string: `"` `\` and control characters escaped, and
    /// with non-ASCII characters as `\uXXXX` (Python's `json.dumps`).
    Json,
    /// Hexadecimal, lower or upper case.
    Hex,
}

impl Encoding {
    /// Every encoding, in report order.
    pub const ALL: [Encoding; 6] = [
        Encoding::Raw,
        Encoding::Base64,
        Encoding::Base64Url,
        Encoding::Percent,
        Encoding::Json,
        Encoding::Hex,
    ];

    /// The name reports use: `raw`, `base64`, `base64url`, `percent`, `json`, `hex`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::Percent => "percent",
            Encoding::Json => "json",
            Encoding::Hex => "hex",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value's byte strings to look for, each with its encoding: the value
/// itself first, then each encoded form that differs from every earlier
/// one. Held in zeroizing buffers (they are as secret as the value).
pub(crate) fn forms(value: &[u8], encoded: bool) -> Vec<(Encoding, Zeroizing<Vec<u8>>)> {
    let mut out: Vec<(Encoding, Zeroizing<Vec<u8>>)> =
        vec![(Encoding::Raw, Zeroizing::new(value.to_vec()))];
    if !encoded {
        return out;
    }
    let mut add = |encoding, form: Zeroizing<Vec<u8>>| {
        if !form.is_empty() && !out.iter().any(|(_, f)| **f == *form) {
            out.push((encoding, form));
        }
    };
    for alignment in 0..3 {
        add(Encoding::Base64, base64_core(value, alignment, false));
        add(Encoding::Base64Url, base64_core(value, alignment, true));
    }
    add(Encoding::Percent, percent(value, b"0123456789ABCDEF"));
    add(Encoding::Percent, percent(value, b"0123456789abcdef"));
    if let Ok(text) = std::str::from_utf8(value) {
        add(Encoding::Json, json(text, false));
        add(Encoding::Json, json(text, true));
    }
    add(Encoding::Hex, hex(value, b"0123456789abcdef"));
    add(Encoding::Hex, hex(value, b"0123456789ABCDEF"));
    out
}

/// The characters of base64 text that depend on `value` alone when it
/// starts `alignment` bytes (0, 1 or 2) into a 3-byte group: whatever
/// precedes and follows it, an encoding of the surrounding bytes holds them.
/// The first characters mix bits of the bytes before (1 byte before: 2
/// characters; 2 bytes: 3), the last one those after (unless the value ends
/// a group).
pub(crate) fn base64_core(value: &[u8], alignment: usize, url: bool) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(vec![0u8; alignment]);
    input.extend_from_slice(value);
    let mut text = Zeroizing::new(String::new());
    if url {
        URL_SAFE_NO_PAD.encode_string(&*input, &mut text);
    } else {
        STANDARD_NO_PAD.encode_string(&*input, &mut text);
    }
    let skip = [0, 2, 3][alignment];
    let end = text.len() - usize::from(!input.len().is_multiple_of(3));
    Zeroizing::new(text.as_bytes()[skip.min(end)..end].to_vec())
}

fn percent(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for &b in value {
        out.extend_from_slice(&[digits[usize::from(b >> 4)], digits[usize::from(b & 15)]]);
    }
    out
}

/// The text between the quotes of a JSON string holding `text`, as
/// serde_json and JavaScript write it (`ascii` false) or as Python's
/// `json.dumps` does by default (`ascii`: every non-ASCII character as
/// `\uXXXX`, surrogate pairs beyond the BMP).
fn json(text: &str, ascii: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() + 2));
    let unit = |u: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
    };
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => unit(c as u16, &mut out),
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    unit(*u, &mut out);
                }
            }
            c => {
                let mut bytes = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut bytes).as_bytes());
            }
        }
    }
    out
}

//! Keys: SimpleTuner's normalization, the one rule among keys that
//! normalize alike, a reference `st://KEY`, and the text a C string can
//! carry.

use crate::error::Error;

/// Refuses a string argument holding a NUL byte: no provider can hold it (an
/// environment variable, a C caller and most tools end a string there), so
/// a key or value with one would be read back cut short, or not at all.
pub(crate) fn check_text(argument: &str, text: &str) -> Result<(), Error> {
    if text.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "argument '{argument}' holds a NUL byte, which a C string cannot carry; refused"
        )));
    }
    Ok(())
}

/// What starts a reference: `st://KEY` names the secret KEY instead of
/// holding a value (an environment variable or a secrets-file value the
/// manager resolves, an env file's value, a template's `{{ st://KEY }}`).
pub const REFERENCE_SCHEME: &str = "st://";

/// Whether `c` ends a reference's key (a key has no whitespace and no
/// braces, so `{{ st://KEY }}` closes where it should).
pub fn ends_reference_key(c: char) -> bool {
    c.is_whitespace() || c == '{' || c == '}'
}

/// The key of `value` when the whole of it is a reference `st://KEY`.
pub fn reference(value: &str) -> Option<&str> {
    let key = value.strip_prefix(REFERENCE_SCHEME)?;
    (!key.is_empty() && !key.contains(ends_reference_key)).then_some(key)
}

/// SimpleTuner's key normalization: upper case, `-` and `.` as `_`
/// (`replicate-api-token` is `REPLICATE_API_TOKEN`).
pub fn normalize_key(key: &str) -> String {
    if key.is_ascii() {
        // The common case, in one pass and one allocation (a 500,000-key
        // file normalizes every key once per load).
        let mut out = String::with_capacity(key.len());
        out.extend(key.bytes().map(|b| match b {
            b'-' | b'.' => '_',
            b => char::from(b.to_ascii_uppercase()),
        }));
        return out;
    }
    key.to_uppercase().replace(['-', '.'], "_")
}

/// The one rule for keys of one provider that normalize to the same name
/// (`A-B`, `A_B` and `a.b` are all `A_B`), used by every lookup, every
/// command and every binding: the key spelled exactly as the name wins;
/// else the first in byte order. `None` when there is no candidate.
pub fn preferred_key<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<&str> = None;
    for key in candidates {
        if key == name {
            return Some(key);
        }
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best
}

//! Counts the distinct words of a UTF-8 text (a HashSet, Strings, a caught
//! panic: the standard library's allocator, hashing and unwinding, each of
//! which libst_secrets.a carries too).

use std::collections::HashSet;

/// The number of distinct whitespace-separated words of `text[..len]`, or
/// -1 when it is not UTF-8 (a panic caught inside the library).
///
/// # Safety
/// `text` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wc_distinct_words(text: *const u8, len: usize) -> i64 {
    let bytes = std::slice::from_raw_parts(text, len);
    // The panic is expected: no message on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    std::panic::catch_unwind(|| {
        let s = std::str::from_utf8(bytes).expect("UTF-8");
        s.split_whitespace().map(str::to_lowercase).collect::<HashSet<String>>().len() as i64
    })
    .unwrap_or(-1)
}

//! Fuzz target: the redactor through the C ABI (`st_redact`, and the
//! `st_redactor` stream in pieces of any size), with values taken from the
//! input and planted in it. Never crashes; the stream gives what the
//! one-shot call gives; no value (raw or hex) is left between the
//! placeholders; a buffer with nothing concealed comes back unchanged.
#![no_main]
use ::st_secrets::ffi::buf::{st_buf, st_buf_data, st_buf_free, st_buf_len};
use ::st_secrets::ffi::redact::{
    st_redact, st_redactor_finish, st_redactor_free, st_redactor_new, st_redactor_write,
};
use ::st_secrets::ffi::result::st_result;
use ::st_secrets::redact::{forget_served, remember, PLACEHOLDER};
use std::ptr::null_mut;

fn take(b: *mut st_buf) -> Vec<u8> {
    let v = unsafe { std::slice::from_raw_parts(st_buf_data(b), st_buf_len(b)) }.to_vec();
    st_buf_free(b);
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `buf` cut at each placeholder.
fn between(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = buf;
    while let Some(i) = rest.windows(PLACEHOLDER.len()).position(|w| w == PLACEHOLDER) {
        out.push(&rest[..i]);
        rest = &rest[i + PLACEHOLDER.len()..];
    }
    out.push(rest);
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let count = 1 + usize::from(data[0] % 3);
    let piece = 1 + usize::from(data[1] % 64);
    let plant = data[1] & 0x80 != 0;
    let mut rest = &data[2..];
    let mut values: Vec<Vec<u8>> = Vec::new();
    for _ in 0..count {
        let Some((&n, more)) = rest.split_first() else { break };
        let len = 8 + usize::from(n % 25);
        if more.len() < len {
            break;
        }
        values.push(more[..len].to_vec());
        rest = &more[len..];
    }
    let mut hay = rest.to_vec();
    if plant {
        if let Some(v) = values.first() {
            let at = hay.len() / 2;
            hay.splice(at..at, v.iter().copied());
            let hex: Vec<u8> = v.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
            hay.extend_from_slice(&hex);
        }
    }
    forget_served();
    for v in &values {
        remember("K", v);
    }

    let mut out = null_mut();
    assert_eq!(
        st_redact(null_mut(), 0, hay.as_ptr(), hay.len(), &mut out, null_mut()),
        st_result::ST_OK
    );
    let whole = take(out);

    let mut r = null_mut();
    assert_eq!(st_redactor_new(null_mut(), 0, &mut r, null_mut()), st_result::ST_OK);
    let mut streamed = Vec::new();
    for chunk in hay.chunks(piece) {
        let mut b = null_mut();
        assert_eq!(
            st_redactor_write(r, chunk.as_ptr(), chunk.len(), &mut b, null_mut()),
            st_result::ST_OK
        );
        streamed.extend(take(b));
    }
    let mut b = null_mut();
    assert_eq!(st_redactor_finish(r, &mut b, null_mut()), st_result::ST_OK);
    streamed.extend(take(b));
    st_redactor_free(r);
    assert_eq!(streamed, whole, "the stream in pieces of {piece}");

    for part in between(&whole) {
        for v in &values {
            assert!(!contains(part, v), "a value left in the output");
            let hex: Vec<u8> = v.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
            assert!(!contains(part, &hex), "a value's hex left in the output");
        }
    }
    if !contains(&whole, PLACEHOLDER) {
        assert_eq!(whole, hay, "nothing concealed, nothing changed");
    }
});

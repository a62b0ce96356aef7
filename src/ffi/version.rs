//! Library version.

use std::ffi::{c_char, CStr};

const VERSION_TEXT: &CStr = match CStr::from_bytes_with_nul(
    concat!(
        "st-secrets/",
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("ST_BUILD_TARGET"),
        "; ",
        env!("ST_BUILD_PROFILE"),
        ")\0"
    )
    .as_bytes(),
) {
    Ok(text) => text,
    Err(_) => panic!("the version text has exactly one NUL, at the end"),
};

/// The library version as a static string, `"st-secrets/MAJOR.MINOR.PATCH
/// (target; profile)"`. Compare with the `ST_VERSION_*` macros of the header
/// the caller was compiled against. Never NULL; must not be freed.
#[no_mangle]
pub extern "C" fn st_version() -> *const c_char {
    VERSION_TEXT.as_ptr()
}

/// The library's major version (a change means an incompatible ABI change).
/// A caller built against this header should refuse a library where
/// `st_version_major() != ST_VERSION_MAJOR`.
#[no_mangle]
pub extern "C" fn st_version_major() -> u32 {
    parse(env!("CARGO_PKG_VERSION_MAJOR"))
}

/// The library's minor version (a change adds functions, compatibly).
#[no_mangle]
pub extern "C" fn st_version_minor() -> u32 {
    parse(env!("CARGO_PKG_VERSION_MINOR"))
}

/// The library's patch version.
#[no_mangle]
pub extern "C" fn st_version_patch() -> u32 {
    parse(env!("CARGO_PKG_VERSION_PATCH"))
}

const fn parse(digits: &str) -> u32 {
    let bytes = digits.as_bytes();
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_and_numbers_agree_with_cargo() {
        let text = unsafe { CStr::from_ptr(st_version()) }.to_str().unwrap();
        let expected = format!(
            "st-secrets/{}.{}.{} (",
            st_version_major(),
            st_version_minor(),
            st_version_patch()
        );
        assert!(text.starts_with(&expected), "{text}");
        assert!(text.starts_with(&format!("st-secrets/{} (", crate::VERSION)));
    }
}

//! The error object's contents, and the result codes as C sees them: a leaf
//! of the C ABI that the boundary and every entry point import. The codes
//! themselves ([`st_result`]: the enum, its names, descriptions and list) are
//! declared once, in the domain (`crate::error`), and each domain error kind
//! names its code there.

pub use crate::error::st_result;
use crate::error::Error;
use std::borrow::Cow;
use std::ffi::CString;

/// An error on its way to C: a result code and a message (never a secret).
#[derive(Clone, Debug)]
pub(crate) struct FfiError {
    pub(crate) code: st_result,
    pub(crate) message: Cow<'static, str>,
}

impl FfiError {
    pub(crate) fn new(code: st_result, message: impl Into<Cow<'static, str>>) -> Self {
        FfiError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(arg: &'static str) -> Self {
        FfiError::new(
            st_result::ST_NULL_ARGUMENT,
            format!("argument '{arg}' is NULL"),
        )
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string payload");
        FfiError::new(
            st_result::ST_PANIC,
            format!("internal panic caught at the C boundary: {what}"),
        )
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        FfiError::new(e.code(), e.to_string())
    }
}

impl From<crate::cache::Reentrant> for FfiError {
    fn from(r: crate::cache::Reentrant) -> Self {
        FfiError::from(Error::from(r))
    }
}

/// An error: a result code and a message. Owned by the caller, who frees it
/// with `st_error_free`. Messages never contain secret values, tokens or keys.
pub struct st_error {
    pub(crate) code: st_result,
    pub(crate) message: CString,
}

impl st_error {
    pub(crate) fn new(e: FfiError) -> Self {
        // Messages are built by this library; an interior NUL would be a bug, and
        // is replaced rather than allowed to truncate or fail.
        let text = e.message.replace('\0', "\u{FFFD}");
        st_error {
            code: e.code,
            message: CString::new(text).expect("NUL bytes were replaced"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_int;

    #[test]
    fn every_code_round_trips_and_has_a_distinct_name() {
        let mut names = std::collections::HashSet::new();
        for &r in st_result::ALL {
            assert_eq!(st_result::from_raw(r as c_int), Some(r));
            assert_eq!(r.c_name().to_str().unwrap(), r.name());
            let name = r.name();
            assert!(name.starts_with("ST_"));
            assert!(names.insert(name));
        }
        assert_eq!(st_result::from_raw(2), None);
        assert_eq!(st_result::from_raw(-1), None);
    }

    #[test]
    fn every_header_code_is_listed() {
        // The header is generated from the enum, so its enumerators are the
        // enum's: the generated list must hold each, with the same number.
        let header = include_str!("../../include/st_secrets.h");
        let start = header.find("typedef enum").expect("the st_result enum");
        let end = start + header[start..].find("} st_result;").expect("its end");
        let mut listed = 0;
        let mut doc = String::new();
        for line in header[start..end].lines() {
            if line.trim().starts_with("/**") || line.trim().starts_with('*') {
                doc.push_str(
                    line.trim()
                        .trim_start_matches("/**")
                        .trim_start_matches('*'),
                );
                continue;
            }
            let line = line.trim().trim_end_matches(',');
            if let Some((name, number)) = line.split_once(" = ") {
                let number: c_int = number.parse().unwrap();
                let code = st_result::from_raw(number)
                    .unwrap_or_else(|| panic!("{name} = {number} is missing from st_result::ALL"));
                assert_eq!(code.name(), name);
                assert!(
                    doc.contains(code.description()),
                    "{name}'s description differs from its documentation in the header: {doc:?}"
                );
                listed += 1;
            }
            doc.clear();
        }
        assert_eq!(
            listed,
            st_result::ALL.len(),
            "st_result::ALL lists a code the header lacks"
        );
    }

    #[test]
    fn every_domain_error_maps_to_the_code_of_its_name() {
        for e in Error::samples() {
            assert_eq!(e.code().name(), e.code_name());
            assert_ne!(e.code(), st_result::ST_OK);
        }
        let e = FfiError::from(Error::Timeout("slow".into()));
        assert_eq!(
            (e.code, e.message.as_ref()),
            (st_result::ST_TIMEOUT, "slow")
        );
    }

    #[test]
    fn size_matches_c_int() {
        // The compute callback is called through an `int`-returning pointer type
        // (see ffi::cache); that is only sound while this holds.
        assert_eq!(
            std::mem::size_of::<st_result>(),
            std::mem::size_of::<c_int>()
        );
    }
}

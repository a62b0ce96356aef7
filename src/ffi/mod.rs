//! The C ABI: with `sys`, one of the two modules where `unsafe` is allowed.
//!
//! Layout, imports pointing one way: [`result`] (the result codes, the error
//! object's contents, the domain-error mapping: a leaf); `boundary` (the
//! helpers every entry point uses: panic catching, pointer and UTF-8 checks,
//! error reporting, out-parameters); one file per C type family; and
//! `handles`, the one table of handle types and their ownership. Every entry point
//! is a literal `#[no_mangle] pub extern "C" fn st_...` so that cbindgen reads it
//! without macro expansion, and its `///` comment becomes the header's
//! documentation.
//!
//! The functions take raw pointers but are not marked `unsafe`: that is how C
//! sees them, and each body checks what can be checked (NULL, UTF-8) before
//! touching anything. What cannot be checked (a dangling or foreign pointer, a
//! length that overstates a buffer) is the caller's contract, stated in the
//! header.

#![allow(non_camel_case_types)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub(crate) mod boundary;
pub mod buf;
pub mod cache;
pub mod crypto;
pub mod error;
mod handles;
pub mod job;
pub mod redact;
pub mod result;
pub mod secrets;
pub mod store;
pub mod version;

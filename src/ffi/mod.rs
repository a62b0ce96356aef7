//! The C ABI. This is the only module with `unsafe` code.
//!
//! Layout: [`boundary`] holds the helpers every entry point uses (panic
//! catching, pointer and UTF-8 checks, error reporting, out-parameters, and the
//! one table of handle types); then one file per C type family. Every entry point
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

pub mod boundary;
pub mod buf;
pub mod cache;
pub mod crypto;
pub mod error;
pub mod secrets;
pub mod store;
pub mod version;

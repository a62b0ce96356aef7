//! The handle table: every opaque C type is a Rust value on the heap, handed
//! to C as a pointer and freed by its `*_free` function. This file is the one
//! place that says which types are handles and how each is owned.
//!
//! | C type     | ownership                                                    |
//! |------------|--------------------------------------------------------------|
//! | `st_error` | `Box`, exclusive to the caller                               |
//! | `st_buf`   | not here: one raw block (header, bytes, NUL) made and freed in `ffi::buf`, exclusive to the caller |
//! | `st_cache` | `Box`, shared between threads (`&self` methods, inner lock); the two process-wide caches are `static` and never freed |
//! | `st_store` | `Box` holding a `Store` (one SQLite connection behind a lock), shared between threads |
//! | `st_secrets` | `Box` holding an `Arc<SecretsManager>`, shared between threads; NULL stands for the process-wide default manager, an `Arc` kept in `secrets::default_manager` |
//! | `st_redactor` | `Box` holding a `Redactor` behind a lock (a stream's calls serialised), shared between threads |

use super::boundary::BoxedHandle;
use super::cache::st_cache;
use super::redact::st_redactor;
use super::result::st_error;
use super::secrets::st_secrets;
use super::store::st_store;

impl BoxedHandle for st_error {}
impl BoxedHandle for st_cache {}
impl BoxedHandle for st_secrets {}
impl BoxedHandle for st_store {}
impl BoxedHandle for st_redactor {}

//! What every entry point shares: the panic boundary, argument checks, error
//! reporting, out-parameters and the handle table.

pub(crate) use super::result::FfiError;
use super::result::{st_error, st_result};
use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Once;

thread_local! {
    /// How many entry points this thread is inside (callbacks can re-enter).
    static AT_BOUNDARY: Cell<u32> = const { Cell::new(0) };
}

/// Catches a panic of `body`, printing nothing: the library never writes to
/// the host's stderr. Rust's default panic hook prints the message; a hook
/// installed once (chaining to the one it replaces) stays silent for panics
/// raised inside an entry point and passes every other panic on, so a Rust
/// program embedding the library keeps its own reporting. The message still
/// reaches the caller, in the `ST_PANIC` error.
fn catch_quietly<T>(body: impl FnOnce() -> T) -> std::thread::Result<T> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if AT_BOUNDARY.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    AT_BOUNDARY.with(|d| d.set(d.get() + 1));
    let outcome = catch_unwind(AssertUnwindSafe(body));
    AT_BOUNDARY.with(|d| d.set(d.get() - 1));
    outcome
}

/// Runs the body of a fallible entry point: a panic becomes `ST_PANIC`, an error
/// is handed to `*err` (when `err` is not NULL) and its code returned.
pub(crate) fn call(
    err: *mut *mut st_error,
    body: impl FnOnce() -> Result<(), FfiError>,
) -> st_result {
    let outcome =
        catch_quietly(body).unwrap_or_else(|payload| Err(FfiError::from_panic(payload.as_ref())));
    match outcome {
        Ok(()) => st_result::ST_OK,
        Err(e) => report(err, e),
    }
}

/// Runs the body of an entry point that has no error channel; `fallback` on panic.
pub(crate) fn call_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_quietly(body).unwrap_or(fallback)
}

fn report(err: *mut *mut st_error, e: FfiError) -> st_result {
    let code = e.code;
    if !err.is_null() {
        // SAFETY: `err` is not NULL and, by the API contract, points to writable
        // storage for one `st_error *`.
        unsafe { err.write(st_error::new(e).into_raw()) };
    }
    code
}

/// A `const char *` argument as `&str`: NULL gives `ST_NULL_ARGUMENT`, bytes that
/// are not UTF-8 give `ST_INVALID_UTF8`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    arg: &'static str,
) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    // Keys and names are nearly always ASCII: checked a word at a time, with
    // no UTF-8 decoding unless a byte is not ASCII.
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::new(
            st_result::ST_INVALID_UTF8,
            format!(
                "argument '{arg}' is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// An optional `const char *` argument: NULL is `None`; otherwise as
/// [`str_arg`].
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    arg: &'static str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, arg) }.map(Some)
}

/// The checks of a non-empty `(pointer, size)` argument: not NULL, and a size
/// a slice can have.
fn check_buffer(null: bool, size: usize, arg: &'static str, what: &str) -> Result<(), FfiError> {
    if null {
        return Err(FfiError::new(
            st_result::ST_NULL_ARGUMENT,
            format!("argument '{arg}' is NULL with a {what} of {size}"),
        ));
    }
    if size > isize::MAX as usize {
        return Err(FfiError::new(
            st_result::ST_INVALID_ARGUMENT,
            format!("argument '{arg}' has an impossible {what} of {size}"),
        ));
    }
    Ok(())
}

/// A `(const uint8_t *, size_t)` pair as a slice. NULL is accepted only with
/// length 0.
///
/// # Safety
/// When `len > 0`, `ptr` points to `len` readable bytes valid for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    arg: &'static str,
) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    check_buffer(ptr.is_null(), len, arg, "length")?;
    // SAFETY: not NULL, `len` readable bytes by the caller's contract, and `len`
    // fits in isize.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(uint8_t *, size_t)` destination as a mutable slice. NULL is accepted
/// only with capacity 0.
///
/// # Safety
/// When `cap > 0`, `ptr` points to `cap` writable bytes, valid for `'a` and
/// not otherwise accessed during it.
pub(crate) unsafe fn bytes_out_arg<'a>(
    ptr: *mut u8,
    cap: usize,
    arg: &'static str,
) -> Result<&'a mut [u8], FfiError> {
    if cap == 0 {
        return Ok(&mut []);
    }
    check_buffer(ptr.is_null(), cap, arg, "capacity")?;
    // SAFETY: not NULL, `cap` writable bytes by the caller's contract, and
    // `cap` fits in isize.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

/// An out-parameter, checked for NULL up front and written only on success.
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    _lifetime: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Writes the value (without reading or dropping what was there: the target
    /// may be uninitialised).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `Out::new` received a non-NULL pointer to writable storage for
        // a `T` (caller's contract).
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// Checks an out-parameter.
///
/// # Safety
/// `ptr` is NULL or points to writable storage for a `T`, valid for `'a`.
pub(crate) unsafe fn out_arg<'a, T>(
    ptr: *mut T,
    arg: &'static str,
) -> Result<Out<'a, T>, FfiError> {
    match NonNull::new(ptr) {
        Some(ptr) => Ok(Out {
            ptr,
            _lifetime: PhantomData,
        }),
        None => Err(FfiError::null(arg)),
    }
}

/// A `#[repr(C)]` struct the caller sizes: its first field is a `size_t`
/// `struct_size` the caller sets to `sizeof` the struct in the header it was
/// built against, so that fields appended later never overrun an older
/// caller's struct.
///
/// # Safety
/// The type is `#[repr(C)]`, starts with a `usize`, and has no padding (its
/// bytes are copied as they are).
pub(crate) unsafe trait SizedStruct: Copy {}

/// A checked [`SizedStruct`] out-parameter: `len` bytes of the caller's
/// struct are written on success.
pub(crate) struct SizedOut<'a, T> {
    ptr: NonNull<T>,
    len: usize,
    _lifetime: PhantomData<&'a mut T>,
}

impl<T: SizedStruct> SizedOut<'_, T> {
    /// Writes the first `len` bytes of `value`, whose `struct_size` becomes
    /// `len`.
    pub(crate) fn write(self, mut value: T) {
        // SAFETY: T starts with a usize (SizedStruct's contract).
        unsafe {
            std::ptr::from_mut(&mut value)
                .cast::<usize>()
                .write(self.len)
        };
        // SAFETY: `len <= size_of::<T>()` bytes of a padding-free T are
        // initialised; the caller's struct has at least `len` writable bytes
        // (`sized_struct_arg` checked its struct_size).
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref(&value).cast::<u8>(),
                self.ptr.as_ptr().cast::<u8>(),
                self.len,
            );
        }
    }
}

/// Checks a [`SizedStruct`] out-parameter: not NULL, and its `struct_size` at
/// least this version's size (an older struct is refused: every field this
/// version writes was there from the first one that had `struct_size`).
///
/// # Safety
/// `ptr` is NULL or points to a struct whose first `usize` is readable and
/// says how many bytes are writable, valid for `'a`.
pub(crate) unsafe fn sized_struct_arg<'a, T: SizedStruct>(
    ptr: *mut T,
    arg: &'static str,
) -> Result<SizedOut<'a, T>, FfiError> {
    let ptr = NonNull::new(ptr).ok_or_else(|| FfiError::null(arg))?;
    // SAFETY: the first field is a readable usize (caller's contract).
    let declared = unsafe { ptr.as_ptr().cast::<usize>().read() };
    let own = std::mem::size_of::<T>();
    if declared < own {
        return Err(FfiError::new(
            st_result::ST_INVALID_ARGUMENT,
            format!("{arg}->struct_size is {declared}: set it to sizeof the struct ({own} in this version)"),
        ));
    }
    Ok(SizedOut {
        ptr,
        len: own,
        _lifetime: PhantomData,
    })
}

/// A C handle kept in a `Box`: the trait every opaque handle type
/// implements (the table of them, with their ownership, is in
/// [`handles`](super::handles)).
pub(crate) trait BoxedHandle: Sized {
    /// Moves the value to the heap and hands it to C.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Borrows a handle received from C; NULL gives `ST_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `ptr` is NULL or a live handle of this type, not freed during `'a`.
    unsafe fn arg<'a>(ptr: *const Self, arg: &'static str) -> Result<&'a Self, FfiError> {
        // SAFETY: a live handle by the caller's contract.
        unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(arg))
    }

    /// Frees a handle; NULL is a no-op.
    ///
    /// # Safety
    /// `ptr` is NULL or a live handle of this type, made by `into_raw`, that no
    /// other thread uses and that is not used again.
    unsafe fn free(ptr: *mut Self) {
        if !ptr.is_null() {
            // SAFETY: made by `into_raw` (Box::into_raw) and not freed before.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn take(err: *mut st_error) -> (st_result, String) {
        let e = unsafe { Box::from_raw(err) };
        let code = super::super::error::st_error_code(&*e);
        let msg = unsafe { CStr::from_ptr(super::super::error::st_error_message(&*e)) }
            .to_string_lossy()
            .into_owned();
        (code, msg)
    }

    #[test]
    fn a_panic_becomes_st_panic_with_its_message() {
        let mut err = std::ptr::null_mut();
        let rc = call(&mut err, || panic!("boom at the boundary"));
        assert_eq!(rc, st_result::ST_PANIC);
        let (code, msg) = take(err);
        assert_eq!(code, st_result::ST_PANIC);
        assert!(msg.contains("boom at the boundary"), "{msg}");
        assert_eq!(call_or(7, || panic!("no error channel")), 7);
    }

    #[test]
    fn errors_reach_err_and_success_leaves_it_alone() {
        let mut err = std::ptr::null_mut();
        let rc = call(&mut err, || {
            Err(crate::error::Error::Timeout("slow".into()).into())
        });
        assert_eq!(rc, st_result::ST_TIMEOUT);
        assert_eq!(take(err), (st_result::ST_TIMEOUT, "slow".to_owned()));

        let sentinel = std::ptr::dangling_mut::<st_error>();
        let mut untouched = sentinel;
        assert_eq!(call(&mut untouched, || Ok(())), st_result::ST_OK);
        assert_eq!(untouched, sentinel);
        // A NULL err is allowed.
        assert_eq!(
            call(std::ptr::null_mut(), || Err(FfiError::null("x"))),
            st_result::ST_NULL_ARGUMENT
        );
    }

    #[test]
    fn a_caught_panic_prints_nothing_on_stderr() {
        // Run in a child process (this test binary, this test only, output
        // not captured), so that what the panic hook prints can be read.
        const CHILD: &str = "ST_TEST_QUIET_PANIC_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let mut err = std::ptr::null_mut();
            let rc = call(&mut err, || panic!("boom-inside-the-library"));
            assert_eq!(rc, st_result::ST_PANIC);
            assert_eq!(call_or(3, || panic!("boom-without-error-channel")), 3);
            take(err);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ffi::boundary::tests::a_caught_panic_prints_nothing_on_stderr",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("boom"), "the library printed: {stderr}");
    }

    #[test]
    fn messages_keep_no_interior_nul() {
        let e = st_error::new(FfiError::new(st_result::ST_IO, "a\0b")).into_raw();
        assert_eq!(take(e).1, "a\u{FFFD}b");
    }

    #[test]
    fn non_utf8_and_null_strings_are_rejected() {
        let bad = [b'k', 0xff, 0];
        let e = unsafe { str_arg(bad.as_ptr().cast(), "key") }.unwrap_err();
        assert_eq!(e.code, st_result::ST_INVALID_UTF8);
        assert!(e.message.contains("'key'") && e.message.contains("offset 1"));
        let e = unsafe { str_arg(std::ptr::null(), "key") }.unwrap_err();
        assert_eq!(e.code, st_result::ST_NULL_ARGUMENT);
        assert_eq!(
            unsafe { bytes_arg(std::ptr::null(), 0, "v") }.unwrap(),
            &[] as &[u8]
        );
    }
}

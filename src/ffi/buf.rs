//! `st_buf`: bytes handed to C.
//!
//! A buffer is one block of the library's secret memory (`sys::secmem`:
//! out of core dumps, locked where allowed, zeroed on free), word-aligned:
//! a header holding the length, then the bytes, then a NUL. One allocation
//! per value (this is the hot path of every get).

use super::boundary::call_or;
use crate::sys::secmem;
use std::ffi::c_char;
use std::mem::size_of;

/// Bytes owned by the library and handed to the caller, who frees them with
/// `st_buf_free`. The bytes may contain NUL; a NUL terminator always follows
/// them (not counted in the length), so text values can be used as C strings.
/// The memory is left out of core dumps, locked in RAM where the process's
/// limit allows, and zeroed when freed. A buffer is not changed by the library
/// after it is handed out, so it may be read from several threads.
pub struct st_buf {
    // Never constructed: a `*mut st_buf` points at a `Header` (see module doc).
    _opaque: [u8; 0],
}

#[repr(C)]
struct Header {
    len: usize,
}

const HEADER: usize = size_of::<Header>();

/// The block size for `len` bytes: header, bytes, NUL.
fn block_size(len: usize) -> usize {
    HEADER
        .checked_add(len)
        .and_then(|n| n.checked_add(1))
        .expect("a buffer length fits in memory")
}

impl st_buf {
    /// Copies `bytes` into a new buffer and hands it out.
    pub(crate) fn new_raw(bytes: &[u8]) -> *mut st_buf {
        let block = secmem::alloc(block_size(bytes.len())).as_ptr();
        // SAFETY: `block` is a fresh, word-aligned (16 at least) block of at
        // least HEADER + len + 1 bytes; the three writes stay inside it.
        unsafe {
            block.cast::<Header>().write(Header { len: bytes.len() });
            let data = block.add(HEADER);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            data.add(bytes.len()).write(0);
        }
        block.cast()
    }

    /// # Safety
    /// `b` is a live buffer made by `new_raw`.
    unsafe fn len_of(b: *const st_buf) -> usize {
        // SAFETY: a live buffer starts with its header.
        unsafe { (*b.cast::<Header>()).len }
    }

    /// # Safety
    /// `b` is a live buffer made by `new_raw`.
    unsafe fn data_of(b: *const st_buf) -> *const u8 {
        // SAFETY: the bytes follow the header inside the block.
        unsafe { b.cast::<u8>().add(HEADER) }
    }
}

/// The buffer's bytes; NULL when `b` is NULL. Valid until `st_buf_free(b)`.
#[no_mangle]
pub extern "C" fn st_buf_data(b: *const st_buf) -> *const u8 {
    if b.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a live buffer (caller's contract).
    unsafe { st_buf::data_of(b) }
}

/// The number of bytes (not counting the NUL terminator); 0 when `b` is NULL.
#[no_mangle]
pub extern "C" fn st_buf_len(b: *const st_buf) -> usize {
    if b.is_null() {
        return 0;
    }
    // SAFETY: a live buffer (caller's contract).
    unsafe { st_buf::len_of(b) }
}

/// The same bytes as a NUL-terminated string; NULL when `b` is NULL. If the
/// bytes contain a NUL, C string functions stop there: use `st_buf_data` and
/// `st_buf_len` for binary values. Valid until `st_buf_free(b)`.
#[no_mangle]
pub extern "C" fn st_buf_str(b: *const st_buf) -> *const c_char {
    st_buf_data(b).cast()
}

/// Zeroes the bytes, then frees the buffer. NULL is a no-op. Freeing the same
/// buffer twice is undefined behaviour, as with `free`.
#[no_mangle]
pub extern "C" fn st_buf_free(b: *mut st_buf) {
    call_or((), || {
        if b.is_null() {
            return;
        }
        // SAFETY: a live buffer made by `st_buf::new_raw` (caller's contract),
        // so the block was allocated with `block_size(len)`; `free` zeroes it.
        unsafe {
            let size = block_size(st_buf::len_of(b));
            secmem::free(std::ptr::NonNull::new_unchecked(b.cast()), size);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_header_bytes_and_nul() {
        for len in [0usize, 1, 6, 7, 8, 63, 64, 65, 1000, 5000] {
            let size = block_size(len);
            assert_eq!(size, HEADER + len + 1, "room for the NUL: {len}");
            assert!(secmem::block_size(size) >= size);
        }
    }

    #[test]
    fn round_trip() {
        for value in [&b""[..], b"x", b"a\0b", &[0xffu8; 100]] {
            let b = st_buf::new_raw(value);
            assert_eq!(st_buf_len(b), value.len());
            let data = unsafe { std::slice::from_raw_parts(st_buf_data(b), value.len() + 1) };
            assert_eq!(&data[..value.len()], value);
            assert_eq!(data[value.len()], 0);
            st_buf_free(b);
        }
    }
}

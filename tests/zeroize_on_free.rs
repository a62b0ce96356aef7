//! Secret buffers are zeroed before their memory is reused.
//!
//! `SecretBytes` and `st_buf` live in the library's secret memory, whose
//! slots stay mapped after they are freed: the tests read a freed block and
//! require it zeroed but for its first word (the free list's link, which
//! overwrites the start of the value). The control is a plain `Vec` seen by
//! a spying global allocator at the moment it is freed: its contents are
//! intact (so the method can tell), and no secret buffer goes through the
//! global allocator at all.

use st_secrets::ffi::buf::{st_buf_data, st_buf_free, st_buf_len};
use st_secrets::ffi::cache::{st_cache_free, st_cache_get, st_cache_new, st_cache_set};
use st_secrets::ffi::result::st_result;
use st_secrets::SecretBytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

struct Spy;

static WATCHED: AtomicUsize = AtomicUsize::new(0);
static WATCHED_LEN: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicBool = AtomicBool::new(false);
static ALL_ZERO: AtomicBool = AtomicBool::new(false);
/// Tests run in parallel threads; one watch at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Spy {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize == WATCHED.load(Ordering::SeqCst) {
            let len = WATCHED_LEN.load(Ordering::SeqCst).min(layout.size());
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            ALL_ZERO.store(bytes.iter().all(|b| *b == 0), Ordering::SeqCst);
            FREED.store(true, Ordering::SeqCst);
            WATCHED.store(0, Ordering::SeqCst);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Spy = Spy;

fn watch(ptr: *const u8, len: usize) {
    FREED.store(false, Ordering::SeqCst);
    ALL_ZERO.store(false, Ordering::SeqCst);
    WATCHED_LEN.store(len, Ordering::SeqCst);
    WATCHED.store(ptr as usize, Ordering::SeqCst);
}

fn freed_all_zero() -> bool {
    assert!(
        FREED.load(Ordering::SeqCst),
        "the watched block was not freed"
    );
    ALL_ZERO.load(Ordering::SeqCst)
}

const SECRET: &[u8] = b"hf_live_0123456789abcdefghijklmnopqrstuv";

#[test]
fn st_buf_free_zeroes_the_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut cache = std::ptr::null_mut();
    let null_err = std::ptr::null_mut();
    assert_eq!(
        st_cache_new(-1.0, 0, -1.0, &mut cache, null_err),
        st_result::ST_OK
    );
    assert_eq!(
        st_cache_set(
            cache,
            c"k".as_ptr(),
            SECRET.as_ptr(),
            SECRET.len(),
            -1.0,
            null_err
        ),
        st_result::ST_OK
    );
    let mut buf = std::ptr::null_mut();
    assert_eq!(
        st_cache_get(cache, c"k".as_ptr(), &mut buf, null_err),
        st_result::ST_OK
    );
    assert_eq!(st_buf_len(buf), SECRET.len());
    // The handle is the start of the block: a length header, then the bytes.
    let header = st_buf_data(buf) as usize - buf as usize;
    let block = buf.cast::<u8>().cast_const();
    watch(block, header + SECRET.len() + 1);
    st_buf_free(buf);
    assert!(
        !FREED.load(Ordering::SeqCst),
        "st_buf is not global-allocator memory"
    );
    assert!(
        zeroed_after_free(block, header + SECRET.len() + 1),
        "st_buf_free must zero the value before freeing it"
    );
    st_cache_free(cache);
}

#[test]
fn secret_bytes_zero_on_drop_and_on_growth() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = SecretBytes::from(SECRET);
    let block = s.expose().as_ptr();
    watch(block, s.len());
    drop(s);
    assert!(
        !FREED.load(Ordering::SeqCst),
        "SecretBytes is not global-allocator memory"
    );
    assert!(
        zeroed_after_free(block, SECRET.len()),
        "SecretBytes must zero itself on drop"
    );

    // Growing must not leave a copy behind in the block it leaves.
    let mut grow = SecretBytes::with_capacity(SECRET.len());
    grow.extend_from_slice(SECRET);
    let old = grow.expose().as_ptr();
    grow.extend_from_slice(b"-and-more-bytes-that-force-a-new-block");
    assert_ne!(grow.expose().as_ptr(), old, "a new block");
    assert!(
        zeroed_after_free(old, SECRET.len()),
        "the old block must be zeroed when SecretBytes grows"
    );
}

/// Whether the freed secret-memory block at `p` holds nothing of the value
/// (all zero past its first word, which now links the free list and must
/// not be the value's start).
fn zeroed_after_free(p: *const u8, len: usize) -> bool {
    // SAFETY: secret memory is never unmapped once a slot was handed out
    // (blocks of at most 4 KiB); one test at a time touches it here.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    bytes[8..].iter().all(|&b| b == 0) && bytes[..8] != SECRET[..8]
}

#[test]
fn the_spy_detects_a_block_that_is_not_zeroed() {
    // The control: a plain Vec is freed with its contents intact, and the spy
    // must say so (otherwise the two tests above could not fail).
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let v = SECRET.to_vec();
    watch(v.as_ptr(), v.len());
    drop(v);
    assert!(!freed_all_zero());
}

//! Secret buffers are zeroed before their memory goes back to the allocator.
//!
//! A spying global allocator records the contents of one watched block at the
//! moment it is freed; the tests watch the data block of an `st_buf` (through
//! the C ABI) and of a `SecretBytes`, and require it to be all zeros by then.

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
    watch(buf.cast(), header + SECRET.len() + 1);
    st_buf_free(buf);
    assert!(
        freed_all_zero(),
        "st_buf_free must zero the value before freeing it"
    );
    st_cache_free(cache);
}

#[test]
fn secret_bytes_zero_on_drop_and_on_growth() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = SecretBytes::from(SECRET);
    watch(s.expose().as_ptr(), s.len());
    drop(s);
    assert!(freed_all_zero(), "SecretBytes must zero itself on drop");

    // Growing must not leave a copy behind in the block it leaves.
    let mut grow = SecretBytes::with_capacity(SECRET.len());
    grow.extend_from_slice(SECRET);
    watch(grow.expose().as_ptr(), SECRET.len());
    grow.extend_from_slice(b"-and-more-bytes-that-force-a-new-block");
    assert!(
        freed_all_zero(),
        "the old block must be zeroed when SecretBytes grows"
    );
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

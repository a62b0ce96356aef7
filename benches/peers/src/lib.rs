//! The cache benchmark's peers with st_cache's calling convention: a key as
//! a NUL-terminated C string (checked as UTF-8, as st_cache checks it), a get
//! that returns a copy the caller frees, a set that copies the value.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::sync::Mutex;

pub enum Peer {
    Floor(Mutex<HashMap<String, Vec<u8>>>),
    Quick(quick_cache::sync::Cache<String, Vec<u8>>),
}

unsafe fn key<'a>(key: *const c_char) -> Option<&'a str> {
    // SAFETY: a NUL-terminated string (caller's contract).
    unsafe { CStr::from_ptr(key) }.to_str().ok()
}

/// kind 0: `Mutex<HashMap<String, Vec<u8>>>`; 1: quick_cache with `capacity`.
#[no_mangle]
pub extern "C" fn peer_new(kind: c_int, capacity: usize) -> *mut Peer {
    let peer = match kind {
        0 => Peer::Floor(Mutex::new(HashMap::new())),
        _ => Peer::Quick(quick_cache::sync::Cache::new(capacity)),
    };
    Box::into_raw(Box::new(peer))
}

/// # Safety
/// `p` from `peer_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn peer_free(p: *mut Peer) {
    // SAFETY: caller's contract.
    drop(unsafe { Box::from_raw(p) });
}

/// A copy of the value of `k` at `*out` (free with `peer_free_copy`); 0 when
/// found, 1 otherwise.
///
/// # Safety
/// Valid pointers (caller's contract).
#[no_mangle]
pub unsafe extern "C" fn peer_get(
    p: *const Peer,
    k: *const c_char,
    out: *mut *mut u8,
    len: *mut usize,
) -> c_int {
    // SAFETY: caller's contract.
    let (p, Some(k)) = (unsafe { &*p }, unsafe { key(k) }) else {
        return 2;
    };
    let copy = match p {
        Peer::Floor(m) => m.lock().unwrap().get(k).cloned(),
        Peer::Quick(q) => q.get(k),
    };
    let Some(copy) = copy else { return 1 };
    let copy = copy.into_boxed_slice();
    // SAFETY: caller's contract.
    unsafe {
        len.write(copy.len());
        out.write(Box::into_raw(copy).cast());
    }
    0
}

/// # Safety
/// A copy from `peer_get`, with its length.
#[no_mangle]
pub unsafe extern "C" fn peer_free_copy(ptr: *mut u8, len: usize) {
    // SAFETY: caller's contract.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// # Safety
/// Valid pointers (caller's contract).
#[no_mangle]
pub unsafe extern "C" fn peer_set(p: *const Peer, k: *const c_char, v: *const u8, len: usize) {
    // SAFETY: caller's contract.
    let (p, Some(k)) = (unsafe { &*p }, unsafe { key(k) }) else {
        return;
    };
    // SAFETY: caller's contract.
    let v = unsafe { std::slice::from_raw_parts(v, len) };
    match p {
        Peer::Floor(m) => {
            let mut map = m.lock().unwrap();
            match map.get_mut(k) {
                Some(old) => *old = v.to_vec(),
                None => {
                    map.insert(k.to_owned(), v.to_vec());
                }
            }
        }
        Peer::Quick(q) => q.insert(k.to_owned(), v.to_vec()),
    }
}

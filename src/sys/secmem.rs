//! Secret memory: where the library keeps every value it holds
//! ([`crate::secret::SecretBytes`], the C ABI's `st_buf`).
//!
//! Blocks come from pages mapped for this purpose alone, marked
//! `MADV_DONTDUMP` (a core dump, `gcore` included, leaves them out) and
//! locked with `mlock` where `RLIMIT_MEMLOCK` (or `CAP_IPC_LOCK`) allows, so
//! they are never written to swap; a refused `mlock` is counted, never an
//! error. A block is zeroed when it is freed.
//!
//! Sizes up to 4 KiB are served from 64 KiB chunks cut into slots of one
//! size class (16 bytes to 4 KiB, powers of two); a free slot holds the
//! address of the next free one (the only thing written into it besides a
//! value), so allocating is one lock and a pop. Larger blocks are mapped on
//! their own and unmapped when freed. Chunks are never given back: a
//! process's secret memory is as large as the most it held at once.
//!
//! Fork: a child keeps the parent's blocks (the library's fork rules: a
//! child serves what its parent had cached, and a C caller's child may use
//! a buffer it got before forking), so `MADV_WIPEONFORK` is not used.
//! The free lists are fork-aware locks: a list some thread of the parent
//! held at the instant of the fork starts empty in the child (its slots are
//! lost to the child, not reused twice). Locks made by `mlock` are not
//! inherited by a child (the kernel's rule); its new chunks are locked as
//! the limit allows.

use super::lock::Mutex;
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size classes, in bytes.
const CLASSES: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// The largest block served from a chunk.
const LARGEST_SLOT: usize = CLASSES[CLASSES.len() - 1];
/// The bytes mapped at once for a class.
const CHUNK: usize = 64 * 1024;

/// A class's free slots: the first one's address (0 when none); each
/// holds the next one's address in its first word.
#[derive(Default)]
struct FreeList {
    head: usize,
}

static FREE: [Mutex<FreeList>; CLASSES.len()] =
    [const { Mutex::lazy(FreeList::default) }; CLASSES.len()];

/// The addresses of the large blocks `mlock` locked (only large blocks pay
/// for the set), so freeing one counts what it unlocks.
static LARGE_LOCKED: Mutex<HashSet<usize>> = Mutex::lazy(HashSet::new);

static MAPPED: AtomicUsize = AtomicUsize::new(0);
static LOCKED: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// What the secret memory holds (the doctor shows it; tests check it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecretMemory {
    /// Bytes mapped for secret memory (chunks and large blocks).
    pub mapped: usize,
    /// Of those, bytes `mlock` locked.
    pub locked: usize,
    /// How many `mlock` calls were refused (the limit, or no privilege).
    pub lock_refused: usize,
    /// Bytes in blocks handed out and not yet freed (rounded up to a class).
    pub in_use: usize,
}

/// The counters of this process (a forked child starts with its parent's).
pub fn secret_memory() -> SecretMemory {
    SecretMemory {
        mapped: MAPPED.load(Ordering::Relaxed),
        locked: LOCKED.load(Ordering::Relaxed),
        lock_refused: REFUSED.load(Ordering::Relaxed),
        in_use: IN_USE.load(Ordering::Relaxed),
    }
}

/// The class index and the slot size for `size` (at most `LARGEST_SLOT`).
#[inline]
fn class_of(size: usize) -> (usize, usize) {
    let slot = size.max(CLASSES[0]).next_power_of_two();
    (
        (slot.trailing_zeros() - CLASSES[0].trailing_zeros()) as usize,
        slot,
    )
}

/// The bytes really set aside for a block of `size` (its class's slot, or
/// whole pages past the largest class).
pub(crate) fn block_size(size: usize) -> usize {
    if size <= LARGEST_SLOT {
        class_of(size).1
    } else {
        size.checked_next_multiple_of(page_size())
            .expect("a block size fits in memory")
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096).max(4096)
}

/// Maps `len` bytes (a multiple of the page size) of zeroed secret memory:
/// out of core dumps, locked when allowed (the answer says whether). Aborts
/// as `alloc` does when the system has no memory left.
fn map(len: usize) -> (NonNull<u8>, bool) {
    // SAFETY: an anonymous private mapping with no address hint; the result
    // is checked before use; madvise and mlock get the range just mapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, 4096).expect("a page-sized layout"),
            );
        }
        // Best effort as well: a kernel without MADV_DONTDUMP (before 3.4)
        // still gets zeroed, locked memory. macOS has no such advice (its
        // core dumps are off unless enabled): zeroed and locked only.
        #[cfg(target_os = "linux")]
        libc::madvise(p, len, libc::MADV_DONTDUMP);
        let locked = libc::mlock(p, len) == 0;
        if locked {
            LOCKED.fetch_add(len, Ordering::Relaxed);
        } else {
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        MAPPED.fetch_add(len, Ordering::Relaxed);
        (NonNull::new_unchecked(p.cast()), locked)
    }
}

/// A zeroed block of at least `size` bytes (`size` > 0) of secret memory.
/// Free it with [`free`] and the same `size`.
pub(crate) fn alloc(size: usize) -> NonNull<u8> {
    debug_assert!(size > 0);
    if size > LARGEST_SLOT {
        let block = block_size(size);
        IN_USE.fetch_add(block, Ordering::Relaxed);
        let (p, locked) = map(block);
        if locked {
            LARGE_LOCKED.lock().insert(p.as_ptr() as usize);
        }
        return p;
    }
    let (class, slot) = class_of(size);
    IN_USE.fetch_add(slot, Ordering::Relaxed);
    let mut list = FREE[class].lock();
    if list.head == 0 {
        // A new chunk: its first slot is this block, the others the list.
        let chunk = map(CHUNK).0.as_ptr();
        let slots = CHUNK / slot;
        // SAFETY: every address written is a slot inside the chunk just
        // mapped, aligned to a word (slots are at least 16 bytes).
        unsafe {
            for i in 1..slots - 1 {
                chunk
                    .add(i * slot)
                    .cast::<usize>()
                    .write(chunk.add((i + 1) * slot) as usize);
            }
        }
        list.head = chunk as usize + slot;
        // SAFETY: a fresh mapping is never null.
        return unsafe { NonNull::new_unchecked(chunk) };
    }
    let p = list.head as *mut u8;
    // SAFETY: a free slot of this class holds the next one's address in its
    // first word, which is zeroed again before the slot is handed out.
    unsafe {
        list.head = p.cast::<usize>().read();
        p.cast::<usize>().write(0);
        NonNull::new_unchecked(p)
    }
}

/// Zeroes the block, then gives it back.
///
/// # Safety
/// `p` came from [`alloc`] with this `size` and is not used after.
pub(crate) unsafe fn free(p: NonNull<u8>, size: usize) {
    if size > LARGEST_SLOT {
        let block = block_size(size);
        // SAFETY: a mapping of exactly `block` bytes made by `map` (caller's
        // contract), zeroed with stores that are not elided, then unmapped
        // (which unlocks it).
        unsafe {
            zero(p.as_ptr(), block);
            libc::munmap(p.as_ptr().cast(), block);
        }
        if LARGE_LOCKED.lock().remove(&(p.as_ptr() as usize)) {
            LOCKED.fetch_sub(block, Ordering::Relaxed);
        }
        MAPPED.fetch_sub(block, Ordering::Relaxed);
        IN_USE.fetch_sub(block, Ordering::Relaxed);
        return;
    }
    let (class, slot) = class_of(size);
    // SAFETY: the slot is `slot` bytes long (caller's contract); once
    // zeroed it is free, and its first word links the list.
    unsafe {
        zero(p.as_ptr(), slot);
    }
    IN_USE.fetch_sub(slot, Ordering::Relaxed);
    let mut list = FREE[class].lock();
    // SAFETY: as above.
    unsafe {
        p.as_ptr().cast::<usize>().write(list.head);
    }
    list.head = p.as_ptr() as usize;
}

/// Zeroes `len` bytes at `p` a word at a time (blocks are word-aligned and
/// a whole number of words), with stores the compiler keeps.
///
/// # Safety
/// `p` is word-aligned and valid for `len` bytes of writes.
unsafe fn zero(p: *mut u8, len: usize) {
    let words = p.cast::<u64>();
    for i in 0..len / 8 {
        // SAFETY: inside the block (caller's contract).
        unsafe { words.add(i).write_volatile(0) };
    }
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// An owned block of secret memory, its whole capacity readable (it is
/// zeroed when made), freed and zeroed when dropped. The safe face of
/// [`alloc`] and [`free`] for [`crate::secret::SecretBytes`].
pub(crate) struct Block {
    ptr: NonNull<u8>,
    /// The bytes it holds, its [`block_size`] (which is its own block
    /// size, so [`free`] takes it as the size); 0 for no block.
    cap: usize,
}

// SAFETY: a Block owns its memory alone, as a Box<[u8]> does.
unsafe impl Send for Block {}
// SAFETY: shared access is read-only.
unsafe impl Sync for Block {}

impl Block {
    /// No memory.
    pub(crate) const EMPTY: Block = Block {
        ptr: NonNull::dangling(),
        cap: 0,
    };

    /// A zeroed block with room for at least `size` bytes.
    pub(crate) fn new(size: usize) -> Block {
        if size == 0 {
            return Block::EMPTY;
        }
        Block {
            ptr: alloc(size),
            cap: block_size(size),
        }
    }

    /// How many bytes it holds (its size class, whole pages when large).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The first `len` bytes (`len` at most the capacity).
    #[inline]
    pub(crate) fn bytes(&self, len: usize) -> &[u8] {
        assert!(len <= self.cap);
        // SAFETY: the block is initialized (zeroed when made) for its whole
        // capacity; the dangling pointer of an empty block is valid for 0
        // bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), len) }
    }

    /// The whole block, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, with `&mut self` owning the block alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.cap != 0 {
            // SAFETY: made by `alloc` with a size whose block size is `cap`
            // (so `cap`'s is too); not used after.
            unsafe { free(self.ptr, self.cap) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmFlags` of the mapping holding `p`, from `/proc/self/smaps`.
    fn vm_flags(p: *const u8) -> String {
        let addr = p as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.trim().to_owned();
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn blocks_are_zeroed_reused_and_out_of_core_dumps() {
        // A class other tests hardly use (values of 1 to 2 KiB), so no
        // other thread takes the slot while it is looked at below.
        let mut small = Block::new(1500);
        assert_eq!(small.capacity(), 2048);
        assert!(small.bytes(2048).iter().all(|&b| b == 0));
        small.bytes_mut()[..5].copy_from_slice(b"hello");
        let addr = small.bytes(0).as_ptr();
        let flags = vm_flags(addr);
        assert!(flags.split(' ').any(|f| f == "dd"), "{flags}");
        drop(small);
        // Freed: zeroed but for the word linking the free list (the memory
        // stays mapped, so it can be read here).
        // SAFETY: the slot belongs to a chunk, never unmapped.
        let freed = unsafe { std::slice::from_raw_parts(addr, 2048) };
        assert!(freed[8..].iter().all(|&b| b == 0));
        assert!(!freed[..8].ends_with(b"hello"));
        let again = Block::new(1025);
        assert!(again.bytes(2048).iter().all(|&b| b == 0));

        let mut large = Block::new(10_000);
        assert_eq!(large.capacity() % 4096, 0);
        assert!(large.capacity() >= 10_000);
        large.bytes_mut()[9_999] = 7;
        let flags = vm_flags(large.bytes(0).as_ptr());
        assert!(flags.split(' ').any(|f| f == "dd"), "{flags}");
        assert!(secret_memory().in_use >= 12_288);
        drop(large);
        assert_eq!(Block::new(0).capacity(), 0);
        assert!(Block::EMPTY.bytes(0).is_empty());
    }

    #[test]
    fn classes_cover_every_size() {
        assert_eq!(class_of(1), (0, 16));
        assert_eq!(class_of(16), (0, 16));
        assert_eq!(class_of(17), (1, 32));
        assert_eq!(class_of(4096), (8, 4096));
        // A block's size is its own block size: `Block` frees by capacity.
        for n in [1, 15, 16, 17, 1000, 4096, 4097, 10_000, 1 << 20] {
            assert_eq!(block_size(block_size(n)), block_size(n), "{n}");
        }
        // Many blocks of one class: more than a chunk's slots, all distinct.
        let blocks: Vec<Block> = (0..CHUNK / 16 * 2 + 3).map(|_| Block::new(9)).collect();
        let mut addrs: Vec<usize> = blocks
            .iter()
            .map(|b| b.bytes(0).as_ptr() as usize)
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), blocks.len());
    }

    #[test]
    fn a_child_keeps_its_parents_blocks_and_makes_new_ones() {
        let mut held = Block::new(100);
        held.bytes_mut()[..6].copy_from_slice(b"parent");
        let code = super::super::in_fork(|| {
            // The parent's value is there; new blocks of every size work.
            let ok = held.bytes(6) == b"parent";
            let fresh: Vec<Block> = [1, 100, 5000, 70_000].map(Block::new).into();
            i32::from(
                !(ok && fresh
                    .iter()
                    .all(|b| b.bytes(b.capacity()).iter().all(|&x| x == 0))),
            )
        });
        assert_eq!(code, Some(0));
    }

    #[test]
    fn works_when_mlock_is_refused() {
        // In a child without the privilege to lock (CAP_IPC_LOCK dropped,
        // as for any unprivileged user) and a locking limit of 0: every
        // new mapping's mlock is refused, and memory works all the same.
        let code = super::super::in_fork(|| {
            if !drop_lock_privilege() {
                return 3;
            }
            let before = secret_memory();
            let mut blocks: Vec<Block> = (0..3).map(|_| Block::new(70_000)).collect();
            blocks.push(Block::new(8));
            for b in &mut blocks {
                b.bytes_mut()[0] = 1;
            }
            let after = secret_memory();
            if after.lock_refused < before.lock_refused + 3 || after.locked > before.locked {
                return 2;
            }
            0
        });
        assert_eq!(code, Some(0));
    }

    /// Sets `RLIMIT_MEMLOCK` to 0 and drops `CAP_IPC_LOCK` from this
    /// process's effective set (a root test runner has it).
    fn drop_lock_privilege() -> bool {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        const CAP_IPC_LOCK: u32 = 14;
        let limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit and the capget/capset system calls get valid
        // pointers to initialized structures of the kernel's layout.
        unsafe {
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) != 0 {
                return false;
            }
            let mut header = Header {
                version: VERSION_3,
                pid: 0,
            };
            let mut data = [Data::default(); 2];
            if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
                return false;
            }
            data[0].effective &= !(1 << CAP_IPC_LOCK);
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0
        }
    }
}

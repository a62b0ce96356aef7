//! The system layer: the only place outside `ffi` where `unsafe` is allowed
//! (`src/lib.rs` denies it everywhere else, so the compiler keeps the rule).
//!
//! - [`fork`]: the fork generation and [`ForkFlag`], the one way a word
//!   says it belongs to this process and not to a parent's threads;
//! - [`lock`]: locks that keep working in a child after `fork()`, a
//!   `static` built on first use that never blocks, and the single flight
//!   ([`Flight`], its guard [`Leading`]);
//! - [`refresher`]: the thread of the library's background work (refreshes
//!   ahead, the watch), one per process;
//! - [`secmem`]: secret memory, page-aligned blocks out of core dumps,
//!   locked where the limit allows, zeroed on free;
//! - [`clock`]: the monotonic clocks, precise and coarse, read with
//!   `clock_gettime`;
//! - [`free_bytes`]: `statvfs`, the space left on a filesystem;
//!   [`memory_backed`]: `statfs`, whether it is tmpfs or ramfs;
//! - [`connect_unix`]: a Unix-socket connect bounded in time;
//! - [`effective_uid`]: the effective user id (`geteuid`);
//! - [`spawn_thread`]: the library's threads, started with the host's
//!   signals blocked;
//! - in tests, [`in_fork`]: runs a closure in a forked child.
//!
//! Each `unsafe` block here carries its `SAFETY:` argument. Everything else
//! in the crate is safe Rust built on these.

pub(crate) mod clock;
mod fork;
mod lock;
pub(crate) mod refresher;
pub mod secmem;

pub(crate) use fork::ForkFlag;
pub(crate) use lock::{Flight, Lazy, Leading, Mutex, MutexGuard, RwLock};

use std::path::Path;

/// The process's effective user id.
/// A number in [0, 1): the standard library's randomly keyed hasher over a
/// counter (jitter needs spread, not cryptographic strength).
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The signals a thread cannot leave blocked without changing what a fault
/// does (the kernel resets the handler of a blocked fault signal to its
/// default: Rust's stack-overflow message would become a bare crash).
const FAULTS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Starts a thread named `name` running `f`, with every signal but the
/// faults blocked in it. A signal sent to the process goes to any one
/// thread that does not block it: a library thread that left them open
/// would take the `SIGCHLD`, `SIGTERM` or `SIGINT` of a host that blocks
/// them in its own threads to wait for them with `sigwait` (as
/// `st-secrets run` does), and the host would wait forever. The calling
/// thread's mask is the same after this as before.
pub(crate) fn spawn_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    // SAFETY: sigset_t is plain data, filled by sigfillset before use;
    // pthread_sigmask gets valid pointers, and the caller's mask, saved in
    // `previous`, is set back whatever the spawn did.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        for fault in FAULTS {
            libc::sigdelset(&mut all, fault);
        }
        let blocked = libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous) == 0;
        let spawned = std::thread::Builder::new().name(name.into()).spawn(f);
        if blocked {
            libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        }
        spawned
    }
}

/// Whether `signal` is blocked in the calling thread (for the tests of the
/// threads [`spawn_thread`] starts).
#[cfg(test)]
pub(crate) fn blocked_here(signal: libc::c_int) -> bool {
    // SAFETY: reads this thread's mask into a local set.
    unsafe {
        let mut current: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
        libc::sigismember(&current, signal) == 1
    }
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`;
/// `None` when that cannot be asked.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type; statvfs
    // fills the buffer when it returns 0.
    let st = unsafe {
        if libc::statvfs(c_dir.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    // The field types differ by platform (u32 on some 32-bit targets).
    #[allow(clippy::useless_conversion)]
    Some(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

/// Whether the filesystem holding `dir` keeps its files in memory only
/// (tmpfs or ramfs, by `statfs`'s filesystem type); `None` when that cannot
/// be asked. Public (as `secrets::memory_backed`) for the tool's `run
/// --file`, which makes the same check as the node cache.
pub fn memory_backed(dir: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type; statfs
    // fills the buffer when it returns 0.
    let st = unsafe {
        if libc::statfs(c_dir.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    // f_type's width differs by platform.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let kind = i64::from(st.f_type as i64) & 0xffff_ffff;
    Some(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}

/// The extended attribute `name` of `path` (at most `max` bytes, links
/// followed); `None` when it is not set, too long or cannot be read, and
/// off Linux (macOS's call differs, and the ACLs read are Linux's).
#[cfg(not(target_os = "linux"))]
pub(crate) fn xattr(_path: &Path, _name: &std::ffi::CStr, _max: usize) -> Option<Vec<u8>> {
    None
}

/// The extended attribute `name` of `path` (at most `max` bytes, links
/// followed); `None` when it is not set, too long or cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn xattr(path: &Path, name: &std::ffi::CStr, max: usize) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; max];
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let n = unsafe { libc::getxattr(c_path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), max) };
    buf.truncate(usize::try_from(n).ok()?);
    Some(buf)
}

/// Gives `to` the owner, group and POSIX access ACL of `from` (both open
/// files), so that a file written to replace `from` is read by whom read
/// it: a file another user was let read keeps that when it is rewritten.
/// The owner is changed only when it differs (which takes root); an ACL
/// is copied where `from` has one (off Linux there are none to copy).
pub(crate) fn copy_access(from: &std::fs::File, to: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let (old, new) = (from.metadata()?, to.metadata()?);
    if (old.uid(), old.gid()) != (new.uid(), new.gid()) {
        std::os::unix::fs::fchown(to, Some(old.uid()), Some(old.gid()))?;
    }
    #[cfg(target_os = "linux")]
    {
        let name = c"system.posix_acl_access";
        let mut acl = [0u8; 4 + 8 * 64];
        // SAFETY: an open descriptor, a NUL-terminated name and a buffer of
        // the length given.
        let n = unsafe {
            libc::fgetxattr(
                from.as_raw_fd(),
                name.as_ptr(),
                acl.as_mut_ptr().cast(),
                acl.len(),
            )
        };
        if let Ok(n) = usize::try_from(n) {
            // SAFETY: as above; the value is the n bytes read.
            let set = unsafe {
                libc::fsetxattr(to.as_raw_fd(), name.as_ptr(), acl.as_ptr().cast(), n, 0)
            };
            if set != 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else {
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)) {
                return Err(e);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (from.as_raw_fd(), to.as_raw_fd());
    Ok(())
}

/// Sets the extended attribute `name` of `path` to `value`; whether it
/// was set (the tests' ACLs).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn set_xattr(path: &Path, name: &std::ffi::CStr, value: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: NUL-terminated strings and a value of the length given.
    unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        ) == 0
    }
}

/// The flags `connect_unix`'s socket is made with: atomic close-on-exec and
/// non-blocking where the kernel has them.
#[cfg(target_os = "linux")]
const SOCKET_FLAGS: libc::c_int = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const SOCKET_FLAGS: libc::c_int = 0;

/// Connects to the Unix socket at `path` within `timeout` (`None`: no
/// bound). `UnixStream::connect` blocks for as long as a listener that
/// stopped accepting keeps its backlog full; a non-blocking connect answers
/// `EAGAIN` at once then, so this tries again, backing off from 1 ms to
/// 50 ms, until `timeout` is spent (`ErrorKind::TimedOut`). The stream
/// returned blocks, as a connected one from `UnixStream::connect` does.
pub(crate) fn connect_unix(
    path: &Path,
    timeout: Option<std::time::Duration>,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::io::{Error, ErrorKind};
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};
    let Some(timeout) = timeout else {
        return std::os::unix::net::UnixStream::connect(path);
    };
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the socket path is too long or holds a NUL byte",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: a plain socket(2) call; the descriptor is checked.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | SOCKET_FLAGS, 0) };
        if fd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: `fd` is a new socket this function owns; the stream
        // closes it when dropped.
        let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        // macOS has no socket flags: close-on-exec and non-blocking are set
        // right after (a fork and exec by another thread in between could
        // inherit the descriptor there, not on Linux).
        #[cfg(not(target_os = "linux"))]
        {
            // SAFETY: fcntl on a descriptor this function owns.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            stream.set_nonblocking(true)?;
        }
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        let rc = unsafe { libc::connect(fd, (&raw const addr).cast::<libc::sockaddr>(), len) };
        if rc == 0 {
            stream.set_nonblocking(false)?;
            return Ok(stream);
        }
        let e = Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINPROGRESS)) {
            return Err(e);
        }
        drop(stream);
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::new(
                ErrorKind::TimedOut,
                "the socket's listener accepts no connection",
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Runs `child` in a forked child and returns its exit status, or `None`
/// when it did not exit within 20 s (it is then killed). The tests of every
/// module that must work after `fork()` share it.
#[cfg(test)]
pub(crate) fn in_fork(child: impl FnOnce() -> i32) -> Option<i32> {
    use std::time::Duration;
    // SAFETY: the child runs `child` and `_exit`s; the parent waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    for _ in 0..2000 {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kills and reaps our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    None
}

/// Whether our child `pid` has ended, without reaping it: while it stays a
/// zombie its pid (and the process group it leads) cannot be reused, so
/// [`kill_group`] reaches only what it started.
///
/// # Errors
/// `waitid`'s (not our child).
pub(crate) fn ended_unreaped(pid: u32) -> std::io::Result<bool> {
    let pid = libc::id_t::from(pid);
    // SAFETY: `info` is a zeroed out-parameter `waitid` fills; WNOWAIT
    // leaves the child to be reaped by its `Child`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if libc::waitid(libc::P_PID, pid, &mut info, flags) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(info.si_pid() != 0)
    }
}

/// Sends SIGKILL to the process group `pgid` (a child started as its own
/// group's leader and not yet reaped, with everything it started there).
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: a plain system call on a group this process made.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Forks a child that only sleeps `secs` (holding copies of every
/// descriptor of this process, as a forked worker does) and returns its pid;
/// [`kill_child`] ends it.
#[cfg(test)]
pub(crate) fn fork_lingering(secs: u32) -> libc::pid_t {
    // SAFETY: the child calls only async-signal-safe functions (sleep,
    // _exit).
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::sleep(secs);
            libc::_exit(0);
        }
        pid
    }
}

/// Kills and reaps a child of [`fork_lingering`].
#[cfg(test)]
pub(crate) fn kill_child(pid: libc::pid_t) {
    // SAFETY: kills and reaps our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Counts the bytes this thread asks the allocator for, in the library's
/// unit tests (the test binary's global allocator: `System`, counted), so a
/// test can tell linear work from quadratic without timing anything.
#[cfg(test)]
pub(crate) mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static BYTES: Cell<u64> = const { Cell::new(0) };
    }

    fn add(n: usize) {
        // `try_with`: the thread's storage may be gone while it exits.
        let _ = BYTES.try_with(|b| b.set(b.get().saturating_add(n as u64)));
    }

    struct Counting;

    // SAFETY: every call is forwarded to `System` with its own arguments;
    // counting touches only a thread-local integer and never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size());
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size());
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size);
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Runs `f`; returns its result and the bytes this thread allocated in it.
    pub(crate) fn bytes_allocated_by<R>(f: impl FnOnce() -> R) -> (R, u64) {
        let before = BYTES.with(Cell::get);
        let r = f();
        (r, BYTES.with(Cell::get) - before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_shm_is_memory_backed_and_the_build_directory_is_not() {
        assert_eq!(memory_backed(Path::new("/dev/shm")), Some(true));
        assert_eq!(memory_backed(Path::new("/proc")), Some(false));
        assert_eq!(memory_backed(Path::new("/no/such/dir")), None);
    }

    #[test]
    fn library_threads_block_the_hosts_signals_but_not_the_faults() {
        assert!(!blocked_here(libc::SIGCHLD), "the test thread's own mask");
        let seen = spawn_thread("st-secrets-test", || {
            [
                libc::SIGCHLD,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGUSR1,
                libc::SIGSEGV,
            ]
            .map(blocked_here)
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(seen, [true, true, true, true, false]);
        assert!(
            !blocked_here(libc::SIGCHLD),
            "the caller's mask is set back"
        );
    }

    #[test]
    fn programs_started_from_a_library_thread_have_no_signal_blocked() {
        // The standard library starts a program with an empty mask whatever
        // the spawning thread's: the credential_process of a refresh,
        // started from the refresher's thread, relies on it.
        let sig_blk = spawn_thread("st-secrets-test", || {
            let out = std::process::Command::new("sh")
                .args(["-c", "sed -n 's/^SigBlk:[[:space:]]*//p' /proc/self/status"])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(sig_blk, "0000000000000000");
    }
}

//! The tool's system calls: the only module of the tool where `unsafe` is
//! allowed (`lib.rs` denies it everywhere else). Signals blocked and taken
//! one at a time, a signal passed on, children reaped, the mask and
//! `SIGPIPE` a command starts with, a pipe's size, the user id. Each
//! `unsafe` block carries its `SAFETY:` argument.

use st_secrets::Error;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// `si_code` of a signal the kernel sent (the terminal's, among others).
#[cfg(target_os = "linux")]
const SI_KERNEL: libc::c_int = 0x80;

/// Keeps this process out of core dumps (and from being traced by other
/// processes of its user that are not its parents): the tool holds values
/// and its masking tables in ordinary memory, and a dumping signal would
/// write them to a core file. Linux's `PR_SET_DUMPABLE` 0; a command `run`
/// starts is dumpable again after its `exec`. Nothing on macOS.
pub fn forbid_core_dumps() {
    // SAFETY: prctl with integer arguments; failure leaves the process as
    // it was.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// The real user id.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Signals blocked in this thread until it is dropped (then the previous
/// mask is restored: matters when the tool runs inside Python).
pub struct Blocked {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl Blocked {
    /// Blocks `signals` in this thread.
    pub fn block(signals: &[libc::c_int]) -> Result<Blocked, Error> {
        // SAFETY: sigset_t is plain data, initialized by sigemptyset before
        // use; pthread_sigmask gets valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
            if rc != 0 {
                return Err(Error::Internal(format!(
                    "cannot block signals: {}",
                    std::io::Error::from_raw_os_error(rc)
                )));
            }
            Ok(Blocked { set, previous })
        }
    }

    /// Makes `command` start with the signal mask this thread had before
    /// blocking (the standard library would start it with none) and
    /// `SIGPIPE` at its default (the Rust runtime and Python ignore it).
    pub fn restore_in(&self, command: &mut Command) {
        let previous = self.previous;
        // SAFETY: between fork and exec only async-signal-safe calls
        // (pthread_sigmask, signal).
        unsafe {
            command.pre_exec(move || {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                match libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) {
                    0 => Ok(()),
                    rc => Err(std::io::Error::from_raw_os_error(rc)),
                }
            });
        }
    }

    /// The next blocked signal, with whether the kernel sent it; `None`
    /// after `period` with none.
    #[cfg(target_os = "linux")]
    pub fn wait(&self, period: Duration) -> Result<Option<(libc::c_int, bool)>, Error> {
        let period = libc::timespec {
            tv_sec: period.as_secs().try_into().unwrap_or(1),
            tv_nsec: period.subsec_nanos().into(),
        };
        loop {
            // SAFETY: info is written by sigtimedwait; set and period are
            // initialized.
            let (signal, info) = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                (libc::sigtimedwait(&self.set, &mut info, &period), info)
            };
            if signal >= 0 {
                return Ok(Some((signal, info.si_code == SI_KERNEL)));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => {}
                _ => return Err(Error::Internal(format!("cannot wait for signals: {e}"))),
            }
        }
    }

    /// The next blocked signal, `None` after `period` with none. macOS has
    /// no `sigtimedwait`: the pending set is looked at every 10 ms and a
    /// pending signal taken with `sigwait`. Who sent it cannot be told, so
    /// it counts as sent by a process and is passed on (a terminal's Ctrl-C
    /// then reaches the command twice: from the terminal and from here).
    #[cfg(not(target_os = "linux"))]
    pub fn wait(&self, period: Duration) -> Result<Option<(libc::c_int, bool)>, Error> {
        let deadline = std::time::Instant::now() + period;
        loop {
            // SAFETY: sigset_t is plain data filled by sigpending and
            // sigemptyset; sigwait gets initialized pointers.
            unsafe {
                let mut pending: libc::sigset_t = std::mem::zeroed();
                if libc::sigpending(&mut pending) != 0 {
                    let e = std::io::Error::last_os_error();
                    return Err(Error::Internal(format!("cannot wait for signals: {e}")));
                }
                for signal in 1..32 {
                    if libc::sigismember(&self.set, signal) == 1
                        && libc::sigismember(&pending, signal) == 1
                    {
                        let mut one: libc::sigset_t = std::mem::zeroed();
                        libc::sigemptyset(&mut one);
                        libc::sigaddset(&mut one, signal);
                        let mut got = 0;
                        if libc::sigwait(&one, &mut got) == 0 {
                            return Ok(Some((got, false)));
                        }
                    }
                }
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Blocked {
    /// Restores the mask from before (also done when it is dropped): the
    /// signals reach this thread again.
    pub fn release(&self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.release();
    }
}

/// Sends `signal` to `pid`, which the caller has not reaped yet (so the
/// pid cannot have been recycled).
pub fn kill(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the caller vouches for pid.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Makes a pipe's buffer 1 MiB (fewer wake-ups for bulk output); best
/// effort, and nothing for what is not a pipe, nor on macOS (no
/// `F_SETPIPE_SZ`; its pipes grow to 64 KiB by themselves).
#[cfg(not(target_os = "linux"))]
pub fn widen_pipe(_fd: std::os::fd::BorrowedFd<'_>) {}

/// Makes a pipe's buffer 1 MiB (fewer wake-ups for bulk output); best
/// effort, and nothing for what is not a pipe.
#[cfg(target_os = "linux")]
pub fn widen_pipe(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a descriptor the caller holds; failure is
    // harmless.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Reaps every ended child except `keep` (the command, which `run` reaps
/// itself after its last signal forward): `waitid` peeks at an ended child
/// without reaping it, and only another's is reaped.
pub fn reap_orphans(keep: Option<libc::pid_t>) {
    loop {
        // SAFETY: info is written by waitid; waitpid reaps the pid it named.
        let ended = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            if rc != 0 {
                return; // ECHILD: no children left
            }
            info.si_pid()
        };
        if ended == 0 || Some(ended) == keep {
            return;
        }
        // SAFETY: reaps the one child waitid reported as ended.
        unsafe {
            libc::waitpid(ended, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
}

/// Whether the child `pid` has ended, leaving it to be reaped (`WNOWAIT`).
pub fn exited(pid: libc::pid_t) -> Result<bool, Error> {
    loop {
        // SAFETY: info is written by waitid.
        let (rc, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                libc::id_t::try_from(pid).unwrap_or(0),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            (rc, info)
        };
        if rc == 0 {
            // SAFETY: si_pid is valid for a waitid result; 0 means no change.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::Internal(format!("cannot wait for the command: {e}")));
        }
    }
}

//! The fork generation, and the one way the crate marks something as
//! belonging to it.
//!
//! A `pthread_atfork` child handler counts forks in a process-wide
//! generation. A forked child has only the forking thread: whatever a word
//! says about the parent's threads (a lock held, a refresher running, a
//! refresh queued to it, a count taken) is false in the child. A
//! [`ForkFlag`] is such a word: set in one generation, it reads as clear in
//! every later one, with no after-fork work.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Forks this process is down from the one that first used the library,
/// plus one: never 0, so a [`ForkFlag`]'s word is the generation itself and
/// 0 means clear (one comparison on every lock, no arithmetic).
static GENERATION: AtomicU64 = AtomicU64::new(1);
/// 0: the fork handler is not registered; 1: being registered; 2: registered.
static HOOKED: AtomicU8 = AtomicU8::new(0);

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Registers the fork handler once; never blocks (a racing caller goes on
/// while the winner registers).
fn hook() {
    if HOOKED.load(Ordering::Acquire) == 2 {
        return;
    }
    if HOOKED
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: registers a handler that only touches atomics. Fails only
        // with ENOMEM; fork flags then never clear in a child.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
        HOOKED.store(2, Ordering::Release);
    }
}

/// The current fork generation (registering the handler on first use).
#[inline]
pub(crate) fn generation() -> u64 {
    hook();
    GENERATION.load(Ordering::Acquire)
}

/// A flag that holds only in the fork generation that set it: a forked child
/// finds it clear. The word is the generation of the process that set it, 0
/// when clear.
pub(crate) struct ForkFlag(AtomicU64);

impl ForkFlag {
    /// A clear flag.
    pub(crate) const fn new() -> Self {
        ForkFlag(AtomicU64::new(0))
    }

    /// A flag set in this process's generation.
    pub(crate) fn set_here() -> Self {
        ForkFlag(AtomicU64::new(mark(generation())))
    }

    /// Whether it is set in this process's generation.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.is_set_in(generation())
    }

    /// Whether it is set in `generation` (the caller read it already).
    #[inline]
    pub(crate) fn is_set_in(&self, generation: u64) -> bool {
        self.0.load(Ordering::Acquire) == mark(generation)
    }

    /// Sets it for this process's generation; `true` when this call set it
    /// (it was clear here, or set by an ancestor before a fork), `false`
    /// when it was set here already.
    pub(crate) fn set(&self) -> bool {
        self.set_in(generation())
    }

    /// [`set`](Self::set) for `generation`.
    pub(crate) fn set_in(&self, generation: u64) -> bool {
        let mine = mark(generation);
        self.0.swap(mine, Ordering::AcqRel) != mine
    }

    /// Clears it when it is set in this process's generation; whether it was.
    pub(crate) fn take(&self) -> bool {
        let mine = mark(generation());
        self.0
            .compare_exchange(mine, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Clears it, whoever set it.
    pub(crate) fn clear(&self) {
        self.0.store(0, Ordering::Release);
    }
}

/// The word of a flag set in `generation` (the generation itself: never 0,
/// as 2^64 forks do not happen).
#[inline]
fn mark(generation: u64) -> u64 {
    generation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_holds_in_its_generation_only() {
        let flag = ForkFlag::new();
        assert!(!flag.is_set());
        assert!(flag.set(), "this call set it");
        assert!(!flag.set(), "set already");
        assert!(flag.is_set());
        assert!(!flag.is_set_in(generation() + 1), "clear in a child");
        assert!(flag.set_in(generation() + 1), "a child sets its own");
        assert!(!flag.take(), "the child's, not this process's");
        assert!(flag.set());
        assert!(flag.take());
        assert!(!flag.is_set());
        let here = ForkFlag::set_here();
        assert!(here.is_set());
        here.clear();
        assert!(!here.is_set());
        let child = crate::sys::in_fork(|| {
            let inherited = ForkFlag::set_here();
            // A flag the parent set reads as clear here.
            let parents = ForkFlag(AtomicU64::new(mark(generation() - 1)));
            i32::from(inherited.is_set() && !parents.is_set() && parents.set())
        });
        assert_eq!(child, Some(1));
    }
}

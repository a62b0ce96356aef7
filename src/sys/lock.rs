//! Locks that keep working in a child after `fork()`.
//!
//! Launchers fork constantly (DataLoader workers, `multiprocessing` with the
//! fork start method, Gunicorn). A child gets a copy of every lock in the
//! state it had at the instant of the fork, but only the forking thread: a
//! lock another thread held stays held forever, and what it protected may be
//! half-changed. Every lock of the crate is therefore one of these:
//!
//! - A `pthread_atfork` child handler counts forks in a process-wide
//!   generation. Each [`Mutex`] remembers the generation its lock belongs to;
//!   the first use in a newer generation (in a child) checks the lock before
//!   anyone takes it.
//! - A lock nobody held at the fork is kept with its value, after the
//!   owner's after-fork hook ran on it (it drops what belonged to the
//!   parent's threads: calls in flight, pooled connections, an open
//!   database).
//! - A lock some thread of the parent held is abandoned with its value
//!   (leaked, never read: it may be half-changed) and replaced by a fresh
//!   one built from the owner's `fresh` function.
//!
//! The check costs two atomic loads on each lock. Built on `std::sync`,
//! whose Linux locks are a futex word each with no process-wide table (the
//! global table `parking_lot` parks threads in can itself be inherited
//! locked). [`Lazy`] statics never block: racing first users may both build
//! the value and one is dropped, so a fork during initialisation leaves
//! nothing to wait for.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{PoisonError, TryLockError};

use super::fork::{generation, ForkFlag};

/// One lock's spin lock for its first-use and after-fork checks, so two
/// threads of a child never check or replace it together: a flag set by a
/// thread of an older generation belongs to a thread that did not survive a
/// fork, and is taken over.
struct FixLock<'a>(&'a ForkFlag);

impl<'a> FixLock<'a> {
    fn acquire(flag: &'a ForkFlag, generation: u64) -> FixLock<'a> {
        while !flag.set_in(generation) {
            std::thread::yield_now();
        }
        FixLock(flag)
    }
}

impl Drop for FixLock<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// The std lock a fork-safe lock wraps: what the after-fork check needs of it.
pub(crate) trait ForkLock {
    type Value;
    fn build(value: Self::Value) -> Self;
    /// In a child: when no thread of the parent held the lock, runs `hook`
    /// on the value and returns true; false when it was held (by a writer or
    /// a reader: the value may be half-changed or be read by a thread that
    /// no longer exists).
    fn check_whole(&self, hook: Option<fn(&mut Self::Value)>) -> bool;
}

/// Takes the value of a lock tried in a child (a poisoned lock is whole
/// too) and runs `hook` on it; false when another thread held it.
fn check_attempt<T, G: DerefMut<Target = T>>(
    attempt: std::sync::TryLockResult<G>,
    hook: Option<fn(&mut T)>,
) -> bool {
    let mut value = match attempt {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return false,
    };
    if let Some(hook) = hook {
        hook(&mut value);
    }
    true
}

impl<T> ForkLock for std::sync::Mutex<T> {
    type Value = T;
    fn build(value: T) -> Self {
        std::sync::Mutex::new(value)
    }
    fn check_whole(&self, hook: Option<fn(&mut T)>) -> bool {
        check_attempt(self.try_lock(), hook)
    }
}

impl<T> ForkLock for std::sync::RwLock<T> {
    type Value = T;
    fn build(value: T) -> Self {
        std::sync::RwLock::new(value)
    }
    fn check_whole(&self, hook: Option<fn(&mut T)>) -> bool {
        check_attempt(self.try_write(), hook)
    }
}

struct Slot<L> {
    /// Set in the generation the slot serves.
    here: ForkFlag,
    lock: L,
}

enum Fresh<T> {
    Fn(fn() -> T),
    Boxed(Box<dyn Fn() -> T + Send + Sync>),
}

impl<T> Fresh<T> {
    fn make(&self) -> T {
        match self {
            Fresh::Fn(f) => f(),
            Fresh::Boxed(f) => f(),
        }
    }
}

/// A std lock that survives `fork()` (see the module documentation): the
/// common part of [`Mutex`] and [`RwLock`].
pub(crate) struct ForkSafe<L: ForkLock> {
    slot: AtomicPtr<Slot<L>>,
    /// See [`FixLock`].
    fixing: ForkFlag,
    fresh: Fresh<L::Value>,
    after_fork: Option<fn(&mut L::Value)>,
    _owns: PhantomData<L>,
}

/// A mutual-exclusion lock that survives `fork()` (see the module
/// documentation). Does not poison: a panic while it is held leaves the value
/// as the panicking code left it, as `parking_lot`'s did.
pub(crate) type Mutex<T> = ForkSafe<std::sync::Mutex<T>>;

/// A reader-writer lock that survives `fork()`, as [`Mutex`]; readers share
/// it. A child whose parent had a reader or a writer inside starts fresh.
pub(crate) type RwLock<T> = ForkSafe<std::sync::RwLock<T>>;

impl<T: Default, L: ForkLock<Value = T>> ForkSafe<L> {
    /// A lock holding `value`; a child whose parent held it starts from
    /// `T::default()`.
    pub(crate) fn new(value: T) -> Self {
        ForkSafe::with_fresh(value, T::default)
    }
}

impl<L: ForkLock> ForkSafe<L> {
    /// A lock holding `value`; a child whose parent held it starts from
    /// `fresh()`.
    pub(crate) fn with_fresh(value: L::Value, fresh: fn() -> L::Value) -> Self {
        ForkSafe::build(value, Fresh::Fn(fresh))
    }

    /// As [`with_fresh`](Self::with_fresh), with a closure (which may hold
    /// the owner's settings).
    pub(crate) fn with_rebuild(
        value: L::Value,
        fresh: impl Fn() -> L::Value + Send + Sync + 'static,
    ) -> Self
    where
        L::Value: 'static,
    {
        ForkSafe::build(value, Fresh::Boxed(Box::new(fresh)))
    }

    fn build(value: L::Value, fresh: Fresh<L::Value>) -> Self {
        ForkSafe {
            slot: AtomicPtr::new(Box::into_raw(Box::new(Slot {
                here: ForkFlag::set_here(),
                lock: L::build(value),
            }))),
            fixing: ForkFlag::new(),
            fresh,
            after_fork: None,
            _owns: PhantomData,
        }
    }

    /// A lock for a `static`, holding `fresh()` from its first use.
    pub(crate) const fn lazy(fresh: fn() -> L::Value) -> Self {
        ForkSafe {
            slot: AtomicPtr::new(ptr::null_mut()),
            fixing: ForkFlag::new(),
            fresh: Fresh::Fn(fresh),
            after_fork: None,
            _owns: PhantomData,
        }
    }

    /// Runs `hook` on the value in a child, on the first use after the fork,
    /// when no thread of the parent held the lock (the value is whole).
    pub(crate) fn after_fork(mut self, hook: fn(&mut L::Value)) -> Self {
        self.after_fork = Some(hook);
        self
    }

    /// The slot of this process's generation.
    #[inline]
    fn slot(&self) -> &Slot<L> {
        let generation = generation();
        let p = self.slot.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: slots are freed only when the lock drops (a replaced
            // one is leaked), so a published pointer stays valid for &self.
            let slot = unsafe { &*p };
            if slot.here.is_set_in(generation) {
                return slot;
            }
        }
        self.slot_slow(generation)
    }

    #[cold]
    fn slot_slow(&self, generation: u64) -> &Slot<L> {
        let new_slot = |value| {
            let here = ForkFlag::new();
            here.set_in(generation);
            Box::into_raw(Box::new(Slot {
                here,
                lock: L::build(value),
            }))
        };
        let _fixing = FixLock::acquire(&self.fixing, generation);
        let p = self.slot.load(Ordering::Acquire);
        if p.is_null() {
            // First use of a lazy lock.
            let fresh = new_slot(self.fresh.make());
            self.slot.store(fresh, Ordering::Release);
            // SAFETY: just allocated and published.
            return unsafe { &*fresh };
        }
        // SAFETY: as in `slot`.
        let slot = unsafe { &*p };
        if slot.here.is_set_in(generation) {
            return slot;
        }
        if slot.lock.check_whole(self.after_fork) {
            slot.here.set_in(generation);
            return slot;
        }
        // Held by a thread that does not exist in this process: the old slot
        // is leaked, unread.
        let fresh = new_slot(self.fresh.make());
        self.slot.store(fresh, Ordering::Release);
        // SAFETY: just allocated and published.
        unsafe { &*fresh }
    }
}

impl<T> Mutex<T> {
    /// Locks, waiting for the holder.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        let guard = self
            .slot()
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        MutexGuard { inner: Some(guard) }
    }
}

impl<T> RwLock<T> {
    /// Locks for reading, shared with other readers; waits for a writer.
    #[inline]
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.slot()
            .lock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks for writing, waiting for readers and the writer.
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.slot()
            .lock
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<L: ForkLock> Drop for ForkSafe<L> {
    fn drop(&mut self) {
        let p = *self.slot.get_mut();
        if !p.is_null() {
            // SAFETY: the current slot is owned by this lock alone.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: as the std lock: the value is reached only through the lock.
unsafe impl<L: ForkLock + Send> Send for ForkSafe<L> {}
// SAFETY: as the std lock (Mutex<T>: Sync for T: Send; RwLock<T> for T: Send + Sync).
unsafe impl<L: ForkLock + Sync> Sync for ForkSafe<L> {}

/// The guard of a [`Mutex`]; unlocks on drop.
pub(crate) struct MutexGuard<'a, T> {
    /// `None` only inside [`Condvar::wait`].
    inner: Option<std::sync::MutexGuard<'a, T>>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("a guard holds its lock")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("a guard holds its lock")
    }
}

impl<T: std::fmt::Display> std::fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A condition variable for [`MutexGuard`]s.
#[derive(Default)]
struct Condvar(std::sync::Condvar);

impl Condvar {
    fn new() -> Self {
        Condvar(std::sync::Condvar::new())
    }

    /// Unlocks, waits for a notification (or a spurious wake-up), relocks.
    fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let inner = guard.inner.take().expect("a guard holds its lock");
        guard.inner = Some(self.0.wait(inner).unwrap_or_else(PoisonError::into_inner));
    }

    /// [`wait`](Self::wait), at most until `deadline`.
    fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: std::time::Instant) {
        let inner = guard.inner.take().expect("a guard holds its lock");
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (inner, _) = self
            .0
            .wait_timeout(inner, left)
            .unwrap_or_else(PoisonError::into_inner);
        guard.inner = Some(inner);
    }

    fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// One answer that the callers who joined a computation wait for: the
/// single flight of the cache's `get_or_set` and of a remote fetch. The
/// computing caller completes it once; every waiter gets a clone.
pub(crate) struct Flight<T> {
    answer: Mutex<Option<T>>,
    done: Condvar,
}

impl<T: Clone> Flight<T> {
    pub(crate) fn new() -> Self {
        Flight {
            answer: Mutex::new(None),
            done: Condvar::new(),
        }
    }

    /// Publishes the answer and wakes every waiter.
    pub(crate) fn complete(&self, answer: T) {
        *self.answer.lock() = Some(answer);
        self.done.notify_all();
    }

    /// Waits for the answer.
    pub(crate) fn wait(&self) -> T {
        let mut answer = self.answer.lock();
        loop {
            if let Some(a) = answer.as_ref() {
                return a.clone();
            }
            self.done.wait(&mut answer);
        }
    }

    /// Waits for the answer until `deadline`; `None` past it.
    pub(crate) fn wait_until(&self, deadline: std::time::Instant) -> Option<T> {
        let mut answer = self.answer.lock();
        loop {
            if let Some(a) = answer.as_ref() {
                return Some(a.clone());
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            self.done.wait_until(&mut answer, deadline);
        }
    }
}

/// The single-flight guard: the caller computing a [`Flight`]'s answer
/// holds it while it computes. Dropped armed (the computation panicked), it
/// runs `unregister` (the owner forgets the flight, so the next caller
/// starts another) and completes the flight with the `abandoned` answer, so
/// its waiters do not hang.
pub(crate) struct Leading<'a, T: Clone, F: FnOnce()> {
    flight: &'a Flight<T>,
    armed: Option<(T, F)>,
}

impl<'a, T: Clone, F: FnOnce()> Leading<'a, T, F> {
    /// Guards the computation of `flight`'s answer.
    pub(crate) fn new(flight: &'a Flight<T>, abandoned: T, unregister: F) -> Self {
        Leading {
            flight,
            armed: Some((abandoned, unregister)),
        }
    }

    /// The computation returned: the caller completes the flight itself.
    pub(crate) fn disarm(mut self) {
        self.armed = None;
    }
}

impl<T: Clone, F: FnOnce()> Drop for Leading<'_, T, F> {
    fn drop(&mut self) {
        if let Some((abandoned, unregister)) = self.armed.take() {
            unregister();
            self.flight.complete(abandoned);
        }
    }
}

/// A `static` built on first use that never blocks: first users racing each
/// build the value and all but one are dropped, so `init` must be cheap and
/// free of side effects. A fork during initialisation leaves nothing to wait
/// for (a `Once` in progress would hang the child).
pub(crate) struct Lazy<T> {
    value: AtomicPtr<T>,
    init: fn() -> T,
}

impl<T> Lazy<T> {
    pub(crate) const fn new(init: fn() -> T) -> Self {
        Lazy {
            value: AtomicPtr::new(ptr::null_mut()),
            init,
        }
    }

    /// The value, if it was built.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.value.load(Ordering::Acquire);
        // SAFETY: a published value is freed only when the Lazy drops.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

impl<T> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        let mine = Box::into_raw(Box::new((self.init)()));
        match self.value.compare_exchange(
            ptr::null_mut(),
            mine,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: published just now; freed only when the Lazy drops.
            Ok(_) => unsafe { &*mine },
            Err(theirs) => {
                // SAFETY: `mine` was never published.
                drop(unsafe { Box::from_raw(mine) });
                // SAFETY: as in `get`.
                unsafe { &*theirs }
            }
        }
    }
}

impl<T> Drop for Lazy<T> {
    fn drop(&mut self) {
        let p = *self.value.get_mut();
        if !p.is_null() {
            // SAFETY: owned by this Lazy alone.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: as once_cell's sync::Lazy: shared &T across threads needs T: Sync,
// and a value built on one thread may be dropped on another (T: Send).
unsafe impl<T: Send + Sync> Sync for Lazy<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Lazy<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::in_fork;
    use std::sync::Arc;

    /// Holds `lock` on another thread until the returned sender is dropped.
    fn hold<T: Send + 'static>(lock: &Arc<Mutex<T>>) -> std::sync::mpsc::Sender<()> {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let lock = Arc::clone(lock);
        std::thread::spawn(move || {
            let _g = lock.lock();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        held_rx.recv().unwrap();
        release_tx
    }

    #[test]
    fn a_lock_held_by_another_thread_at_fork_is_fresh_in_the_child() {
        let lock = Arc::new(Mutex::with_fresh(vec![1, 2, 3], || vec![9]));
        let release = hold(&lock);
        let status = in_fork(|| if *lock.lock() == vec![9] { 0 } else { 1 });
        assert_eq!(status, Some(0), "the child hung or saw the parent's value");
        drop(release);
        assert_eq!(*lock.lock(), vec![1, 2, 3], "the parent keeps its value");
    }

    #[test]
    fn a_free_lock_keeps_its_value_after_the_hook() {
        let lock = Mutex::new(vec![1, 2, 3]).after_fork(|v| v.push(4));
        let status = in_fork(|| {
            let first = lock.lock().clone();
            let second = lock.lock().clone();
            i32::from(first != vec![1, 2, 3, 4] || second != first)
        });
        assert_eq!(status, Some(0), "the hook runs once, on the kept value");
        assert_eq!(*lock.lock(), vec![1, 2, 3]);
    }

    #[test]
    fn a_rwlock_read_or_written_at_fork_is_fresh_in_the_child_and_a_free_one_kept() {
        for writer in [false, true] {
            let lock = Arc::new(RwLock::with_fresh(vec![1, 2, 3], || vec![9]));
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let holder = Arc::clone(&lock);
            std::thread::spawn(move || {
                if writer {
                    let _g = holder.write();
                    held_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                } else {
                    let _g = holder.read();
                    held_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                }
            });
            held_rx.recv().unwrap();
            let status = in_fork(|| i32::from(*lock.write() != vec![9] || *lock.read() != vec![9]));
            assert_eq!(
                status,
                Some(0),
                "writer {writer}: the child hung or kept the value"
            );
            drop(release_tx);
            assert_eq!(*lock.write(), vec![1, 2, 3], "the parent keeps its value");
        }
        let free = RwLock::new(vec![1]).after_fork(|v| v.push(2));
        let status = in_fork(|| i32::from(*free.read() != vec![1, 2]));
        assert_eq!(
            status,
            Some(0),
            "a free lock keeps its value, after the hook"
        );
    }

    #[test]
    fn grandchildren_and_lazy_locks_work() {
        static LAZY: Mutex<Option<u32>> = Mutex::lazy(|| Some(7));
        let held = Arc::new(Mutex::new(0u32));
        let release = hold(&held);
        let status = in_fork(|| {
            let child_ok = *LAZY.lock() == Some(7) && *held.lock() == 0;
            let grandchild = in_fork(|| i32::from(*held.lock() != 0));
            i32::from(!child_ok || grandchild != Some(0))
        });
        assert_eq!(status, Some(0));
        drop(release);
    }

    #[test]
    fn a_flight_answers_every_waiter() {
        let flight = Arc::new(Flight::<u32>::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let f = Arc::clone(&flight);
                std::thread::spawn(move || f.wait())
            })
            .collect();
        flight.complete(7);
        assert!(waiters.into_iter().all(|w| w.join().unwrap() == 7));
        assert_eq!(flight.wait(), 7, "a late waiter gets it too");
        let later = Flight::<u32>::new();
        let began = std::time::Instant::now();
        let deadline = began + std::time::Duration::from_millis(30);
        assert_eq!(later.wait_until(deadline), None);
        assert!(began.elapsed() >= std::time::Duration::from_millis(30));
        later.complete(8);
        assert_eq!(
            later.wait_until(deadline),
            Some(8),
            "an answer past the deadline"
        );
    }

    #[test]
    fn condvar_waits_for_a_notification() {
        let lock = Arc::new(Mutex::new(false));
        let cv = Arc::new(Condvar::new());
        let (l2, c2) = (Arc::clone(&lock), Arc::clone(&cv));
        let t = std::thread::spawn(move || {
            *l2.lock() = true;
            c2.notify_all();
        });
        let mut g = lock.lock();
        while !*g {
            cv.wait(&mut g);
        }
        drop(g);
        t.join().unwrap();
    }

    #[test]
    fn lazy_builds_once_visible_to_all() {
        static L: Lazy<Vec<u8>> = Lazy::new(|| vec![1]);
        assert!(L.get().is_none() || L.get() == Some(&vec![1]));
        let a: &Vec<u8> = &L;
        let b: &Vec<u8> = &L;
        assert!(std::ptr::eq(a, b));
    }
}

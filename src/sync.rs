//! The one door to shared-memory primitives.
//!
//! Everything the protocol shares between threads — the header words, the
//! value cell, the root buffer's locks, the collector's lock, the
//! thread-locals and the collector thread's park/unpark — comes from here. Under `cfg(arcycle_loom)` every item is loom's,
//! so a loom model sees every access the protocol makes, including the
//! value being dropped and the allocation being freed; otherwise they are
//! the `std` items with zero overhead.

#[cfg(not(arcycle_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(arcycle_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(arcycle_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(arcycle_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

// Parking, for the collector thread (`collector::worker`): a parked thread
// sleeps until another unparks it (a token, so an unpark that comes first
// is not lost). Loom has `park`/`unpark` but no timed park and no detached
// threads, so the timed park and the spawning of the collector thread
// exist outside loom only (see `collector::worker`, "Under loom").
#[cfg(not(arcycle_loom))]
pub(crate) use std::thread::{park, Thread};

#[cfg(arcycle_loom)]
pub(crate) use loom::thread::{current, park, Thread};

/// Park for at most `timeout` (or until unparked, or spuriously).
#[cfg(not(arcycle_loom))]
pub(crate) fn park_timeout(timeout: std::time::Duration) {
    std::thread::park_timeout(timeout)
}

/// Start a detached thread named `name` running `f`; its handle is dropped
/// (the thread is never joined, so it never delays the process's exit).
#[cfg(not(arcycle_loom))]
pub(crate) fn spawn_detached<F>(name: &str, f: F) -> std::io::Result<Thread>
where
    F: FnOnce() + Send + 'static,
{
    let handle = std::thread::Builder::new().name(name.into()).spawn(f)?;
    Ok(handle.thread().clone())
}

/// Lock a mutex of the crate's own, ignoring poison.
///
/// The crate's own mutexes (root buffer shards, the collector lock) protect
/// data that is consistent at every unwind point: a panic that poisoned
/// one of them left nothing half-written, so the poison flag carries no
/// information for us.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(arcycle_loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(arcycle_loom)]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Try to lock a mutex of the crate's own without blocking.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    use std::sync::TryLockError;
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Waiting for a short, bounded window of the collector to end: spin, then
/// yield (`crossbeam_utils::Backoff`); under loom, give the model to the
/// other threads at every step.
pub(crate) struct Wait(#[cfg(not(arcycle_loom))] crossbeam_utils::Backoff);

impl Wait {
    pub(crate) fn new() -> Wait {
        #[cfg(not(arcycle_loom))]
        {
            Wait(crossbeam_utils::Backoff::new())
        }
        #[cfg(arcycle_loom)]
        {
            Wait()
        }
    }

    /// Let other threads run for a while.
    pub(crate) fn pause(&self) {
        #[cfg(not(arcycle_loom))]
        self.0.snooze();
        #[cfg(arcycle_loom)]
        loom::thread::yield_now();
    }
}

/// A cell for the value of an allocation.
///
/// Under loom this is `loom::cell::UnsafeCell`, so the model checks every
/// read of a value against its drop; otherwise it is `std`'s.
#[cfg(not(arcycle_loom))]
#[repr(transparent)]
pub(crate) struct ValueCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(arcycle_loom))]
impl<T> ValueCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(core::cell::UnsafeCell::new(v))
    }
    /// Raw pointer to the value, for shared access.
    #[inline(always)]
    pub(crate) fn get(&self) -> *const T {
        self.0.get()
    }
    /// Raw pointer to the value, for exclusive access (drop, get_mut).
    #[inline(always)]
    pub(crate) fn get_mut(&self) -> *mut T {
        self.0.get()
    }
}

#[cfg(arcycle_loom)]
pub(crate) struct ValueCell<T>(loom::cell::UnsafeCell<T>);

#[cfg(arcycle_loom)]
impl<T> ValueCell<T> {
    pub(crate) fn new(v: T) -> Self {
        Self(loom::cell::UnsafeCell::new(v))
    }
    pub(crate) fn get(&self) -> *const T {
        // Loom records a shared access here; the pointer outlives the
        // record, which is the best loom can do for a `Deref` borrow.
        self.0.with(|p| p)
    }
    pub(crate) fn get_mut(&self) -> *mut T {
        self.0.with_mut(|p| p)
    }
}

/// `thread_local!` that is loom's under loom.
macro_rules! cc_thread_local {
    ($($t:tt)*) => {
        #[cfg(not(arcycle_loom))]
        std::thread_local!($($t)*);
        #[cfg(arcycle_loom)]
        loom::thread_local!($($t)*);
    };
}
pub(crate) use cc_thread_local;

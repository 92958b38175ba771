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
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(arcycle_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(arcycle_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

// Parking, for the collector thread (`collector::worker`): a parked thread
// sleeps until another unparks it (a token, so an unpark that comes first
// is not lost). Loom has `park`/`unpark` but no timed park and no detached
// threads, so the timed park and the spawning of the collector thread
// exist outside loom only (see `collector::worker`, "Under loom").
#[cfg(not(arcycle_loom))]
pub(crate) use std::thread::{park, Thread};

#[cfg(arcycle_loom)]
pub(crate) use loom::thread::{current, park, Thread};

// A condition variable, for pacing (`collector::pace`). Loom's has no
// timed wait: under loom, pacing's handshake waits without a limit.
#[cfg(arcycle_loom)]
pub(crate) use loom::sync::Condvar;
#[cfg(not(arcycle_loom))]
pub(crate) use std::sync::Condvar;

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

/// Read-lock an `RwLock` of the crate's own, ignoring poison (as [`lock`]).
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    #[cfg(not(arcycle_loom))]
    {
        m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(arcycle_loom)]
    {
        m.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Write-lock an `RwLock` of the crate's own, ignoring poison (as [`lock`]).
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    #[cfg(not(arcycle_loom))]
    {
        m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(arcycle_loom)]
    {
        m.write().unwrap_or_else(|e| e.into_inner())
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

/// Loom's access tracking for an allocation's value.
///
/// The value itself sits in a plain `core::cell::UnsafeCell<T>` (so that it
/// can be unsized); under loom this records every read of it and every
/// write (drop, `get_mut`) in a `loom::cell::UnsafeCell<()>` next to it,
/// so the model checks each value access against the drop. Otherwise it is
/// a zero-sized no-op.
#[cfg(not(arcycle_loom))]
pub(crate) struct ValueTrack;

#[cfg(not(arcycle_loom))]
impl ValueTrack {
    pub(crate) const fn new() -> Self {
        ValueTrack
    }
    /// A shared access to the value begins.
    #[inline(always)]
    pub(crate) fn read(&self) {}
    /// An exclusive access to the value (drop, move out, `get_mut`).
    #[inline(always)]
    pub(crate) fn write(&self) {}
}

#[cfg(arcycle_loom)]
pub(crate) struct ValueTrack(loom::cell::UnsafeCell<()>);

#[cfg(arcycle_loom)]
impl ValueTrack {
    pub(crate) fn new() -> Self {
        ValueTrack(loom::cell::UnsafeCell::new(()))
    }
    /// Loom records a shared access here; the borrow that follows outlives
    /// the record, which is the best loom can do for a `Deref` borrow.
    pub(crate) fn read(&self) {
        self.0.with(|_| ())
    }
    pub(crate) fn write(&self) {
        self.0.with_mut(|_| ())
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

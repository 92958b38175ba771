//! `Trace` for `parking_lot`'s locks (feature `parking_lot`).
//!
//! Guarantees: the data inside is read only under the lock, taken with
//! `try_lock`/`try_read` (never blocking) and handed to the tracer; a lock
//! held elsewhere makes the object busy (kept, retried by a later
//! collection). Guarded by `tests/integrations.rs`, module `parking_lot`
//! (cycles through each lock type are collected; held ones are not).

use super::trace_guarded;
use crate::{Trace, Tracer};
use ::parking_lot::{FairMutex, Mutex, ReentrantMutex, RwLock};
use std::cell::{Ref, RefCell};

// SAFETY: reads the data only under the lock, taken without blocking and
// kept by the tracer; a lock held elsewhere makes the value busy.
unsafe impl<T: Trace> Trace for Mutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_guarded(self.try_lock(), tracer);
        }
    }
}

// SAFETY: as for `Mutex`.
unsafe impl<T: Trace> Trace for FairMutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_guarded(self.try_lock(), tracer);
        }
    }
}

// SAFETY: as for `Mutex`, with a read lock: readers may clone handles out
// (which raises counts: safe); nobody can move one out while we hold it.
unsafe impl<T: Trace> Trace for RwLock<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_guarded(self.try_read(), tracer);
        }
    }
}

/// A `ReentrantMutex` only hands out `&T`, so handles inside it can change
/// only through interior mutability that has its own `Trace` impl (a
/// `std::sync::Mutex`, a `OnceLock`, ...), or through a `RefCell`, which
/// has its own impl below.
///
/// `try_lock` on a reentrant lock *succeeds* on the thread that already
/// holds it. The collector runs on the thread that called
/// [`collect`](crate::collect) (or that allocated, for an automatic
/// collection), so a lock held by that thread does **not** make the object
/// busy: it is traced, and can be freed if it is garbage. That is sound:
/// while the collector runs, that thread runs only the collector, so the
/// data cannot change under it, and every other thread is kept out by the
/// guard the collector holds. For the same reason, several objects whose
/// `trace` try-locks one shared `ReentrantMutex` are all traced and frozen
/// (the collector re-enters the lock it already holds) instead of the
/// second one reporting busy for ever as it would with a `Mutex` (see
/// [`Trace`], "Liveness"): the lock stays held either way until the
/// collector's verdict.
// SAFETY: reads the data only under the lock, taken without blocking and
// kept by the tracer (re-entered on the collector's own thread, which runs
// nothing else meanwhile); held by another thread, the value is busy.
unsafe impl<T: Trace> Trace for ReentrantMutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_guarded(self.try_lock(), tracer);
        }
    }
}

/// The usual way to mutate through a `ReentrantMutex`. The `RefCell` is
/// borrowed with `try_borrow` under the lock; if the lock's owner (which,
/// once the collector holds the lock, is the collector's own thread) has it
/// borrowed mutably, the value is busy. The shared borrow is held together
/// with the lock guard, and released before it.
// SAFETY: the `RefCell` (not `Sync`) is touched only by the thread that
// holds the lock: the collector, after `try_lock` succeeded; its borrow
// flag is released before the lock (`RefGuard`'s field order). The data is
// read under a shared borrow that is kept with the lock, so neither
// another thread (the lock) nor this one (the borrow) can change it.
unsafe impl<T: Trace> Trace for ReentrantMutex<RefCell<T>> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if !T::may_have_edges() {
            return;
        }
        let Some(lock) = self.try_lock() else {
            return tracer.busy();
        };
        let cell: *const RefCell<T> = &*lock;
        // SAFETY: the cell lives inside the lock, a field of the traced
        // value, so it lives for 'a; the guard is kept (in `RefGuard`) for
        // as long as the borrow.
        let cell: &'a RefCell<T> = unsafe { &*cell };
        let Ok(borrow) = cell.try_borrow() else {
            drop(lock);
            return tracer.busy();
        };
        let value: *const T = &*borrow;
        // SAFETY: as in `trace_guarded`: the data lives for 'a and is kept
        // unchanged by the borrow and the lock, both held by the tracer.
        let value: &'a T = unsafe { &*value };
        value.trace(tracer);
        tracer.hold(RefGuard {
            _borrow: borrow,
            _lock: lock,
        });
    }
}

/// A `RefCell` borrow and the reentrant lock that makes touching the cell
/// legal. Fields drop in declaration order: the borrow first.
struct RefGuard<'a, T: ?Sized, L> {
    _borrow: Ref<'a, T>,
    _lock: L,
}

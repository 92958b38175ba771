//! `Trace` for `tokio::sync`'s `Mutex`, `RwLock` and `OnceCell` (feature
//! `tokio`; needs only tokio's `sync` feature, no runtime).
//!
//! Guarantees: the locks are taken with `try_lock`/`try_read`, never
//! awaited or blocked on, and the guard is handed to the tracer; a lock
//! held elsewhere (by a task, or queued for by writers) makes the object
//! busy. `OnceCell` is set-once, so its value is read unguarded, as
//! `OnceLock`'s is. Guarded by `tests/integrations.rs`, module `tokio`.
//!
//! When the collector lets go of a tokio guard it releases the semaphore
//! permit, which may wake a waiting task through its `Waker` — on the
//! collector's thread, as any unlock would.

use super::trace_guarded;
use crate::{Trace, Tracer};
use ::tokio::sync::{Mutex, OnceCell, RwLock};

// SAFETY: reads the data only under the lock, taken without blocking and
// kept by the tracer; a lock held elsewhere makes the value busy.
unsafe impl<T: Trace> Trace for Mutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_guarded(self.try_lock().ok(), tracer);
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
            trace_guarded(self.try_read().ok(), tracer);
        }
    }
}

// SAFETY: once set, the value is immutable; setting it only adds edges (a
// handle moved in), the safe direction. `get` does not block. (`take` and
// `get_mut` need `&mut self`, which excludes the collector's `&self`.)
unsafe impl<T: Trace> Trace for OnceCell<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if let Some(v) = self.get() {
            v.trace(tracer);
        }
    }
}

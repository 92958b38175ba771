//! Which thread is collecting: the collector lock's owner, the thread in
//! the locked phases, and how deep collections nest on a thread.
//!
//! # What it guarantees
//!
//! * **No thread waits for itself.** Three thread-locals say what this
//!   thread is doing: `OWNER` (it holds the collector lock, destructors and
//!   callbacks included), `IN_COLLECTOR` (it runs the locked phases, so
//!   user `Trace` impls) and `DEPTH` (collections running on it). A
//!   `collect()` or an automatic collection on the owner runs nested
//!   instead of waiting for the lock it holds; a last drop, `get_mut` or
//!   pacing never waits on the thread that is tracing
//!   ([`may_wait_for_hold`]); the collector thread never waits for itself
//!   (`pace`).
//! * **Re-entry is a clear panic.** `collect()`, `collect_young()` and the
//!   waits of `get_mut`/`try_unwrap` called from inside a `Trace` impl
//!   panic naming the call ([`forbid_reentry`]) instead of deadlocking.
//! * The flags are set and cleared by guards, so an unwinding collection
//!   leaves them as it found them. A thread in thread-local teardown reads
//!   every flag as clear (`try_with`).
//!
//! Guarded by `tests/destructors.rs` (`collect_from_inside_trace_panics_clearly`,
//! `nested_collect_meets_stashed_peer_still_held_by_outer_collection`) and
//! `tests/gc_module.rs` (`callback_may_collect_nested`).

use std::cell::Cell;

crate::sync::cc_thread_local! {
    /// Set while this thread runs the collector's locked phases (and so
    /// runs user `Trace` impls).
    static IN_COLLECTOR: Cell<bool> = Cell::new(false);
}

crate::sync::cc_thread_local! {
    /// Collections running on this thread (more than one when nested).
    static DEPTH: Cell<u32> = Cell::new(0);
}

crate::sync::cc_thread_local! {
    /// Set while this thread holds the collector lock (any phase,
    /// destructors included), so that a destructor's own `collect()` runs
    /// nested instead of waiting for itself.
    static OWNER: Cell<bool> = Cell::new(false);
}

pub(crate) fn in_collector() -> bool {
    IN_COLLECTOR.try_with(Cell::get).unwrap_or(false)
}

pub(crate) fn owns_collector() -> bool {
    OWNER.try_with(Cell::get).unwrap_or(false)
}

/// Marks this thread as the collector lock's owner while it lives.
pub(crate) struct Owner<'a> {
    _guard: crate::sync::MutexGuard<'a, ()>,
}

impl<'a> Owner<'a> {
    pub(crate) fn new(guard: crate::sync::MutexGuard<'a, ()>) -> Self {
        let _ = OWNER.try_with(|o| o.set(true));
        Owner { _guard: guard }
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        let _ = OWNER.try_with(|o| o.set(false));
    }
}

pub(crate) struct InCollector;

impl InCollector {
    pub(crate) fn enter() -> InCollector {
        let _ = IN_COLLECTOR.try_with(|c| c.set(true));
        InCollector
    }
}

impl Drop for InCollector {
    fn drop(&mut self) {
        let _ = IN_COLLECTOR.try_with(|c| c.set(false));
    }
}

pub(crate) fn forbid_reentry(what: &str) {
    if in_collector() {
        panic!(
            "arcycle: {what} called from inside a Trace impl while this thread runs the cycle \
             collector; Trace impls must only report edges"
        );
    }
}

/// Counts this thread's running collections while it lives.
pub(crate) struct Depth(pub(crate) u32);

impl Depth {
    pub(crate) fn enter() -> Depth {
        Depth(
            DEPTH
                .try_with(|d| {
                    let outer = d.get();
                    d.set(outer + 1);
                    outer
                })
                .unwrap_or(0),
        )
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

/// Whether a last drop on this thread may wait for the collector to let
/// go of the object: not on the thread that is running the collector's
/// locked phases (a `Trace` impl dropping a handle), which would wait for
/// itself. Every other thread may: the collector never waits for it.
pub(crate) fn may_wait_for_hold() -> bool {
    !in_collector()
}

/// Wait while the collector holds an object (for `try_unwrap`, `get_mut`
/// and friends that found `HELD`; `what` names the caller in the panic).
/// A collection lets go of every live object before it runs any
/// destructor, and never waits for mutators in between, so this wait is
/// bounded by the collection's locked phases.
pub(crate) fn wait_for_hold(wait: &crate::sync::Wait, what: &str) {
    forbid_reentry(what);
    wait.pause();
}

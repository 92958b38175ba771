//! The drop paths of `Cc<T>`: `Drop for Cc` and what happens when the last
//! strong handle goes.
//!
//! `Drop` tests the handle's tracked bit (bit 0 of its pointer) in a
//! register, so a leaf's drop is exactly `Arc`'s single `fetch_sub`, with
//! no load before it, and a leaf's last drop is `Arc`'s path through the
//! typed pointer (`last_leaf_gone`). A tracked (cycle-capable) object's
//! drop that leaves the count non-zero may buffer a possible root (see
//! `buffer`); its last drop (`last_tracked_gone`) is not generic: it finds
//! everything it needs in the header and the table its type code names.
//! The last drop of a value the collector is holding waits for it to let
//! go (in `buffer::decrement_inner`); `held_last_drop` is the last drop of
//! a dead object the collector still holds. Orderings are argued at each atomic
//! operation, the way `std`'s `Arc` does.
//!
//! Guarded by the loom models in `loom-tests/` (every one of them clones
//! and drops handles), `tests/api.rs`, `tests/unsized.rs` and
//! `tests/std_arc.rs` (std's own `Arc` tests, ported).

use super::{Cc, CcBox};
use crate::buffer;
use crate::destroy;
use crate::erased::Node;
use crate::header::*;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

impl<T: ?Sized> Drop for Cc<T> {
    /// Give up this handle: one atomic RMW, plus buffering a possible root
    /// when the object may be on a cycle and is not buffered yet.
    #[inline]
    fn drop(&mut self) {
        if self.is_tracked() {
            // The common case inline (one CAS, as before unsized support);
            // the rest out of line: its loop needs registers the leaf path
            // must not pay for (saving them in every drop's prologue cost a
            // leaf ~6% and a node ~25% before this split).
            match buffer::decrement_fast(self.header()) {
                buffer::Fast::Done => {}
                buffer::Fast::Buffered => buffer::buffered(self.header_ptr()),
                // SAFETY: this was the last handle.
                buffer::Fast::Last(old) => unsafe { last_tracked_gone(self.header_ptr(), old) },
                // SAFETY: this handle's strong unit is given up exactly once.
                buffer::Fast::Slow(s) => unsafe { drop_tracked(self.header_ptr(), s) },
            }
            return;
        }
        // Exactly `Arc::drop`. Release: every use of the value through this
        // handle happens-before the destruction by whoever drops last.
        let old = self.header().strong.fetch_sub(DEC, Release);
        // A leaf's word is its count alone (type code zero, and no flag is
        // ever set on it: only the collector sets flags, and it never
        // visits a leaf), so the whole word is compared: the branch then
        // needs only the flags of the `lock dec`, as `Arc`'s does, and not
        // the old word in a register. Out of cache that matters: a branch
        // on the register waits for the locked instruction to complete,
        // which keeps the CPU from overlapping the next objects' cache
        // misses with it (clone+drop of a random leaf among a million, the
        // report's spread row: 1.67× `Arc` before, 1.30× after, on a 2-core
        // AMD EPYC guest; in cache both read 1.00×).
        debug_assert_eq!(old & !COUNT_MASK, 0, "a leaf's strong word carries a flag");
        if old != DEC {
            return;
        }
        // SAFETY: this was the last handle.
        unsafe { last_leaf_gone(self.inner()) }
    }
}

/// Give up one strong handle of a tracked object (see `Drop for Cc`).
///
/// # Safety
/// The caller owns one strong unit of the object and gives it up; `s` is
/// the word it read last.
#[inline(never)]
unsafe fn drop_tracked(header: NonNull<Header>, s: u64) {
    // A CAS that buffers a possible root when needed (see `buffer`).
    let old = buffer::decrement(header, s);
    if count(old) == 1 {
        // SAFETY: this was the last handle.
        unsafe { last_tracked_gone(header, old) }
    }
}

/// The last strong handle of a tracked object went away; `old` is the
/// word before. Not generic: everything it needs is in the header and the
/// table its type code names.
///
/// Out of line, like `Arc`'s `drop_slow`: the common drop (not the last)
/// stays small enough to inline at every call site.
///
/// # Safety
/// The caller's decrement took the count from 1 to 0.
#[inline(never)]
pub(crate) unsafe fn last_tracked_gone(header: NonNull<Header>, old: u64) {
    if old & HELD != 0 {
        // Held and not dead, the word carries a visit number, not the code
        // (see `header`): a drop on the collecting thread, inside a `Trace`
        // impl, which leaves the value to the collector (every other
        // thread waited for the hold to go). Nothing to decode, nothing to
        // do.
        if old & DEAD != 0 {
            // SAFETY: forwarded contract.
            unsafe { held_last_drop(Node::from_word(header, old), old) };
        }
        return;
    }
    let node = Node::from_word(header, old);
    let h = node.header();
    // Acquire, as in `Arc::drop`: all other handles' uses of the value
    // happen-before the destruction.
    acquire_fence(&h.strong);
    if old & DEAD != 0 {
        // The collector already destroyed the value; this was a handle a
        // destructor cloned. Only the allocation remains to give back.
        if h.release_tracked_strong_side() {
            // SAFETY: weak word zero: nothing refers to the allocation.
            unsafe { (node.vtable.dealloc)(header) }
        }
        return;
    }
    // SAFETY: count 0, no hold, not dead: this thread owns the value.
    unsafe { destroy::destroy(node) }
}

/// The last strong handle of a leaf went away.
///
/// # Safety
/// The caller's decrement took the count from 1 to 0.
#[inline(never)]
unsafe fn last_leaf_gone<T: ?Sized>(this: NonNull<CcBox<T>>) {
    // SAFETY: the box is live until the strong side's unit is released.
    let h = unsafe { &(*this.as_ptr()).header };
    // Acquire, as in `Arc::drop`.
    acquire_fence(&h.strong);
    // A leaf holds no `Cc`, so its destruction cannot recurse into
    // another: exactly `Arc`'s path, through the typed pointer. A leaf is
    // never held and never dead.
    // SAFETY: count 0: this thread owns the value.
    unsafe { destroy_leaf(this) }
}

/// Drop a leaf's value and give back the strong side's unit (and the
/// allocation, if no `Weak` remains), even if the value's `Drop` panics.
///
/// # Safety
/// The caller owns the value (count 0, a leaf).
unsafe fn destroy_leaf<T: ?Sized>(this: NonNull<CcBox<T>>) {
    struct Release<T: ?Sized>(NonNull<CcBox<T>>);
    impl<T: ?Sized> Drop for Release<T> {
        fn drop(&mut self) {
            // SAFETY: the box is live until this releases its unit.
            if unsafe { &(*self.0.as_ptr()).header }.release_strong_side() {
                // SAFETY: weak word zero and the value gone; a leaf's box
                // has no prefix.
                unsafe { CcBox::dealloc(self.0, false) }
            }
        }
    }
    let release = Release(this);
    // SAFETY: forwarded contract.
    unsafe { CcBox::drop_value(this) };
    drop(release);
}

/// The last handle of a dead object the collector holds went away (the
/// collector releases the allocation when it lets go). (A live held one
/// lost its last handle to a `Trace` impl on the collecting thread: the
/// collector destroys the value when it lets go; every other last drop
/// waited for the hold to go, see `buffer::decrement_inner`.)
///
/// # Safety
/// The caller's decrement took the count from 1 to 0 with `HELD | DEAD`
/// set.
#[cold]
#[inline(never)]
unsafe fn held_last_drop(node: Node, old: u64) {
    if old & (DEAD | VALUE_PENDING) == DEAD | VALUE_PENDING && buffer::claims_dead_value() {
        // A peer's destructor, run by this thread's collection, dropped
        // the last handle to a member whose value the collector has not
        // dropped yet: drop it now, inline, as `Arc` would (see
        // `collector::commit`). Not while unwinding: the collector's loop
        // drops it under `catch_unwind`, so a second panicking destructor
        // cannot abort the process. The decrement that brought us here
        // cleared `VALUE_PENDING` in the same CAS (the same question,
        // asked on this thread just before: `buffer::decrement_inner`), so
        // the value is ours. Acquire: as for any last drop.
        acquire_fence(&node.header().strong);
        // SAFETY: dead and held, and the claim makes this the only
        // destruction of the value; the collector frees the allocation
        // after its destroy loop, which this runs within.
        unsafe { destroy::destroy_value_only(node) }
    }
}

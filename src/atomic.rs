//! `AtomicCc` and `AtomicOptionCc`: lock-free, swappable handles that the
//! collector can see.
//!
//! # What they guarantee
//!
//! * **Lock-free reads.** `load` pins the thread (see `reclaim`), loads the
//!   slot's pointer and adds a strong handle; `load_borrowed` does not even
//!   add the handle. No reader ever waits for a writer, and no writer
//!   waits for a reader.
//! * **Old handles are dropped only when no reader can still be turning
//!   them into a `Cc`.** A writer retires the handle it replaced
//!   (`reclaim::Grace::retire`); it is dropped once every reader that may
//!   have loaded its pointer is done. Until then that handle keeps the
//!   object's count at least one, so a reader's increment never lands on
//!   a count that reached zero (its object cannot have been destroyed or
//!   freed), and a borrowed read's value stays alive.
//! * **Sound against the collector.** Moving a handle into or out of a
//!   slot changes no count: exactly the race (`DESIGN.md`, "moves are
//!   free") that the collector closes for `Mutex` fields by holding their
//!   guards while it validates. A slot has no lock, so its trace *freezes*
//!   it instead: it sets the `FROZEN` tag (bit 0 of the pointer word) with
//!   a CAS, reports the edge, and hands the collector a guard
//!   (`Tracer::hold`) whose drop clears the tag. Writers (`store`, `swap`,
//!   `compare_exchange`, `take`) never change a frozen word: they wait until
//!   the tag is gone and then CAS. Readers ignore the tag.
//!
//! # Why the freeze makes validation sound
//!
//! The validation argument (`collector::validate`) needs one thing of every
//! field it re-traces: from the re-trace (step 1) until the decision (step
//! 5), no handle can be moved out of it. A frozen slot gives exactly that:
//!
//! * The collector keeps every guard of a component until after the
//!   decision (`validate_component` releases them last), so a slot traced
//!   in step 1 stays frozen across the freeze and verify CASes of the
//!   words (steps 3 and 4) — the cut at which the component is shown to be
//!   unreachable.
//! * Every write of a slot is a CAS that expects an *unfrozen* word, and
//!   the freeze itself is a CAS on the same word; so each write is either
//!   before the freeze in the word's modification order (and the re-trace,
//!   which reads the word in that very CAS, sees its result) or after the
//!   thaw (after the decision). Nothing moves in or out in between.
//! * Reads during the window add handles (`load` is a clone): a clone of a
//!   frozen object leaves `TOUCHED` and fails verification, as any clone
//!   does. A borrowed read adds nothing, but it borrows the slot, whose
//!   owner is then reachable from the reader (see below).
//! * A handle retired before the freeze and not yet dropped is an ordinary
//!   handle held from outside: it makes its object's count exceed its
//!   internal edges. When it is dropped (maybe during the window) that is
//!   an ordinary drop, which leaves `TOUCHED` on a frozen word.
//!
//! A reader or writer can only reach a slot through a borrow of its owner,
//! and a borrow comes from a handle: if the owner is a `Cc` value, that
//! handle is counted in the owner's word and is not an internal edge, so
//! the owner is not garbage — and neither is anything it reaches. The slot
//! race is therefore only ever the "moves" race above, which the freeze
//! closes.
//!
//! **Bounded waits, no deadlock.** A writer waits on a frozen slot only
//! while the collector validates the slot owner's component (or, in the
//! first pass, traces the owner): no user code but other `Trace` impls,
//! which must not block, runs in that window, and the collector never
//! waits for a mutator (it only try-locks user locks, and a slot it cannot
//! freeze at once makes the owner busy). So the collector always reaches
//! the thaw, whatever the waiting writer holds. A writer on the
//! collecting thread itself (a `Trace` impl writing a slot) would wait for
//! itself: it panics instead. Only one collection runs at a time, so a
//! frozen tag found by a trace belongs to someone else's trace
//! (`debug::referents` on another thread): the owner is reported busy.
//!
//! # Under loom
//!
//! Loom checks the freeze protocol (the tag, the writers' wait, the
//! collector's hold) and the count transitions of load against swap
//! against the last drop of the old value, with crossbeam-epoch replaced
//! by a per-slot grace period (`reclaim`). It does not check
//! crossbeam-epoch itself (crossbeam's own loom suite does), nor the
//! release of retired handles on other threads in normal builds.
//!
//! Guarded by the loom models in `loom-tests/tests/atomic.rs`
//! (`atomic_load_vs_swap_vs_last_drop`, `atomic_validate_vs_swap_out`,
//! `atomic_compare_exchange_aba`), by `scripts/loom-teeth.sh` (a build
//! whose trace ignores the freeze, `--cfg arcycle_broken_atomic`, must be
//! caught), and by `tests/atomic.rs` (threads loading, swapping and
//! compare-exchanging while another collects; a ring of slots collected;
//! `take` against `store`).

mod reclaim;

use crate::cc::{Cc, CcBox};
use crate::collector;
use crate::sync::{AtomicPtr, Wait};
use crate::trace::{Trace, Tracer};
use reclaim::{Grace, ReadPin};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::*;

/// The collector's freeze tag, in the pointer word's lowest bit (a
/// `CcBox` is at least 8-aligned: its header is two `u64` words).
const FROZEN: usize = 1;

/// How often a trace retries the freezing CAS against writers before it
/// reports the slot busy. The collector must not wait on mutators: a slot
/// written that often is in use.
const FREEZE_TRIES: usize = 4;

type Raw<T> = *mut CcBox<T>;

#[inline(always)]
fn is_frozen<T>(p: Raw<T>) -> bool {
    p.addr() & FROZEN != 0
}

/// The handle a (possibly null) raw pointer owns, without taking it.
///
/// # Safety
/// `p` is null or untagged and owned by a slot (or a handle) that keeps
/// it alive while the result is used.
#[inline(always)]
unsafe fn borrow_raw<T: Trace>(p: Raw<T>) -> Option<ManuallyDrop<Cc<T>>> {
    // SAFETY: per the contract, a non-null `p` came from `into_raw`.
    NonNull::new(p).map(|p| ManuallyDrop::new(Cc::from_box(p)))
}

/// Give up a handle for its raw pointer (null for `None`).
#[inline(always)]
fn into_raw<T: Trace>(cc: Option<Cc<T>>) -> Raw<T> {
    const { assert!(std::mem::align_of::<CcBox<T>>() > FROZEN) };
    match cc {
        None => ptr::null_mut(),
        Some(cc) => {
            // The header is the first field of the `repr(C)` box.
            let p = cc.header_ptr().cast::<CcBox<T>>().as_ptr();
            mem::forget(cc);
            p
        }
    }
}

/// Take back the handle a raw pointer owns.
///
/// # Safety
/// `p` is null or an untagged pointer from `into_raw` whose handle the
/// caller now owns.
#[inline(always)]
unsafe fn from_raw<T: Trace>(p: Raw<T>) -> Option<Cc<T>> {
    NonNull::new(p).map(Cc::from_box)
}

/// The shared machinery of both slot types: a pointer word owning one
/// handle (or none, when null), and its reclamation.
struct RawSlot<T: Trace> {
    ptr: AtomicPtr<CcBox<T>>,
    grace: Grace,
    _owns: PhantomData<Cc<T>>,
}

impl<T: Trace> RawSlot<T> {
    fn new(cc: Option<Cc<T>>) -> Self {
        RawSlot {
            ptr: AtomicPtr::new(into_raw(cc)),
            grace: Grace::default(),
            _owns: PhantomData,
        }
    }

    /// A new handle to the current value.
    #[inline]
    fn load(&self) -> Option<Cc<T>> {
        let pin = self.grace.pin();
        let p = self.current();
        // SAFETY: `p` was loaded while pinned: the slot's handle to it, or
        // the retired one (dropped only after `pin`), keeps it alive.
        let cc = unsafe { borrow_raw(p) }.map(|cc| Cc::clone(&cc));
        drop(pin);
        cc
    }

    /// The current pointer, untagged. The caller is pinned.
    #[inline(always)]
    fn current(&self) -> Raw<T> {
        // Acquire: pairs with the Release of the writer's CAS that stored
        // the pointer, so the allocation's header and value (written
        // before the handle was given to the slot) are visible.
        self.ptr.load(Acquire).map_addr(|a| a & !FROZEN)
    }

    /// A borrowed read: the current value, without a count change.
    #[inline]
    fn load_borrowed<P>(&self, wrap: impl FnOnce(Option<Cc<T>>) -> P) -> AtomicCcGuard<'_, P> {
        let pin = self.grace.pin();
        let p = self.current();
        // SAFETY: as in `load`; the guard keeps the pin as long as it
        // lends the handle out, and never drops it (`ManuallyDrop`).
        let cc = unsafe { borrow_raw(p) }.map(ManuallyDrop::into_inner);
        AtomicCcGuard {
            value: ManuallyDrop::new(wrap(cc)),
            _pin: pin,
        }
    }

    /// Replace the value with `new` if the current pointer satisfies
    /// `expect`, waiting while the collector has the slot frozen. Returns
    /// the replaced pointer (its handle now the caller's), or the current
    /// one that failed `expect`.
    fn replace_if(&self, new: Raw<T>, expect: impl Fn(Raw<T>) -> bool) -> Result<Raw<T>, Raw<T>> {
        let wait = Wait::new();
        // Acquire (here, after a wait, and on a failed CAS): a pointer that
        // fails `expect` is handed back to `compare_exchange`, which clones
        // it: its allocation must be visible (pairs with the Release of the
        // CAS that stored it). Loom found the Relaxed version's race.
        let mut cur = self.ptr.load(Acquire);
        loop {
            if is_frozen(cur) {
                thaw_wait(&wait);
                cur = self.ptr.load(Acquire);
                continue;
            }
            if !expect(cur) {
                return Err(cur);
            }
            // Release: publishes `new`'s allocation to readers (Acquire in
            // `current`). Acquire: the replaced handle is now ours; its
            // publisher's writes happen-before our use of it. Expecting an
            // unfrozen word is what makes the collector's freeze exclude
            // every write (module docs).
            match self.ptr.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(old) => return Ok(old),
                Err(x) => cur = x,
            }
        }
    }

    /// Store `new`; the old handle is retired.
    fn store(&self, new: Option<Cc<T>>)
    where
        T: Send + Sync + 'static,
    {
        let old = self.replace_if(into_raw(new), |_| true);
        // SAFETY: the CAS took the slot's handle: it is ours.
        if let Some(old) = unsafe { from_raw(old.unwrap_or_else(|p| p)) } {
            self.grace.retire(old);
        }
    }

    /// Swap in `new`; return a handle to the old value, whose slot handle
    /// is retired.
    fn swap(&self, new: Option<Cc<T>>) -> Option<Cc<T>>
    where
        T: Send + Sync + 'static,
    {
        let old = self.replace_if(into_raw(new), |_| true);
        // SAFETY: as in `store`.
        let old = unsafe { from_raw(old.unwrap_or_else(|p| p)) };
        old.map(|old| {
            // A reader may still be turning the old pointer into a handle:
            // the slot's handle must wait for it. The caller gets its own.
            let mine = old.clone();
            self.grace.retire(old);
            mine
        })
    }

    fn compare_exchange(
        &self,
        current: Raw<T>,
        new: Option<Cc<T>>,
    ) -> Result<Option<Cc<T>>, Option<Cc<T>>>
    where
        T: Send + Sync + 'static,
    {
        // Pinned across the comparison, so that a failed one can return a
        // handle to the value it found.
        let pin = self.grace.pin();
        let raw_new = into_raw(new);
        match self.replace_if(raw_new, |p| p == current) {
            Ok(old) => {
                drop(pin);
                // SAFETY: as in `store`.
                let old = unsafe { from_raw(old) };
                Ok(old.map(|old| {
                    let mine = old.clone();
                    self.grace.retire(old);
                    mine
                }))
            }
            Err(found) => {
                // SAFETY: `found` was in the slot while we were pinned.
                let actual = unsafe { borrow_raw(found) }.map(|cc| Cc::clone(&cc));
                drop(pin);
                // SAFETY: `raw_new` never reached the slot: still ours.
                drop(unsafe { from_raw(raw_new) });
                Err(actual)
            }
        }
    }

    /// The value, taking the slot apart (no reader can be inside).
    fn into_inner(self) -> Option<Cc<T>> {
        // Acquire: the handle was published by a Release CAS.
        let p = self.ptr.swap(ptr::null_mut(), Acquire);
        debug_assert!(!is_frozen(p), "a slot was taken apart while frozen");
        drop(self); // finds the word null; releases retired handles (loom)
                    // SAFETY: the slot owned this handle.
        unsafe { from_raw(p) }
    }

    /// The collector's trace: freeze, report, hold the thaw.
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        #[cfg(arcycle_broken_atomic)]
        {
            // loom-tests teeth: a collector that ignores the slot's
            // freeze (reads the edge like an immutable field).
            let p = self.current();
            // SAFETY: deliberately unsound build (loom teeth only).
            if let Some(cc) = unsafe { borrow_raw(p) } {
                tracer.edge(&cc);
            }
        }
        #[cfg(not(arcycle_broken_atomic))]
        {
            let Some(p) = self.freeze() else {
                return tracer.busy();
            };
            // SAFETY: frozen, the slot keeps its handle until the thaw,
            // which the tracer holds past every use of the edge.
            if let Some(cc) = unsafe { borrow_raw(p) } {
                tracer.edge(&cc);
            }
            tracer.hold(Thaw {
                ptr: &self.ptr,
                value: p,
            });
        }
    }

    /// Set the freeze tag; returns the untagged pointer, or `None` if the
    /// slot is frozen already or keeps changing.
    #[cfg(not(arcycle_broken_atomic))]
    fn freeze(&self) -> Option<Raw<T>> {
        let mut cur = self.ptr.load(Relaxed);
        for _ in 0..FREEZE_TRIES {
            if is_frozen(cur) {
                return None;
            }
            // Acquire: the collector reads the handle's header next (and
            // holds the object): pairs with the writer's Release CAS that
            // published it.
            match self
                .ptr
                .compare_exchange(cur, cur.map_addr(|a| a | FROZEN), Acquire, Relaxed)
            {
                Ok(_) => return Some(cur),
                Err(x) => cur = x,
            }
        }
        None
    }
}

/// Wait while the collector has a slot frozen (bounded: see the module
/// docs), refusing to wait for this very thread's collection.
#[cold]
fn thaw_wait(wait: &Wait) {
    if !collector::may_wait_for_hold() {
        panic!(
            "arcycle: an AtomicCc was written from inside a Trace impl while this thread runs \
             the cycle collector (the slot is frozen by it); Trace impls must only report edges"
        );
    }
    wait.pause();
}

impl<T: Trace> Drop for RawSlot<T> {
    fn drop(&mut self) {
        // Acquire: the handle was published by a Release CAS. No reader or
        // writer can be inside (`&mut self`), and the collector releases
        // its freeze before any value it traced can be dropped.
        let p = self.ptr.swap(ptr::null_mut(), Acquire);
        debug_assert!(!is_frozen(p), "a slot was dropped while frozen");
        // SAFETY: the slot owned this handle.
        drop(unsafe { from_raw(p) });
    }
}

/// The collector's freeze on a slot; dropping it thaws the slot.
struct Thaw<'a, T> {
    ptr: &'a AtomicPtr<CcBox<T>>,
    value: Raw<T>,
}

impl<T> Drop for Thaw<'_, T> {
    fn drop(&mut self) {
        // A plain store: while frozen nobody else changes the word (writers
        // expect it unfrozen, other tracers find it frozen and give up).
        // Release: the collector's reads under the freeze happen-before the
        // next write of the slot (whose CAS is Acquire), as a lock's
        // unlock.
        self.ptr.store(self.value, Release);
    }
}

/// A borrowed read of an [`AtomicCc`] or [`AtomicOptionCc`]: derefs to the
/// handle (`Cc<T>`, or `Option<Cc<T>>`) without having changed any count.
///
/// While it lives, the value it lends cannot be dropped: a writer that
/// replaces it retires the slot's handle, and retired handles are dropped
/// only after every guard taken before is gone. Keep it short, like
/// `arc-swap`'s `Guard`: a guard held for long delays the release of every
/// handle retired in the meantime (by any slot, in normal builds). Clone
/// the handle (`Cc::clone(&guard)`) to keep the value.
///
/// ```
/// use arcycle::{AtomicCc, Cc};
///
/// let slot = AtomicCc::new(Cc::new(String::from("first")));
/// let guard = slot.load_borrowed();
/// slot.store(Cc::new(String::from("second")));
/// assert_eq!(guard.as_str(), "first"); // still alive while borrowed
/// drop(guard);
/// assert_eq!(slot.load_borrowed().as_str(), "second");
/// ```
pub struct AtomicCcGuard<'a, P> {
    value: ManuallyDrop<P>,
    _pin: ReadPin<'a>,
}

impl<P> Deref for AtomicCcGuard<'_, P> {
    type Target = P;
    #[inline]
    fn deref(&self) -> &P {
        &self.value
    }
}

impl<P: fmt::Debug> fmt::Debug for AtomicCcGuard<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

mod handles;
pub use handles::{AtomicCc, AtomicOptionCc};

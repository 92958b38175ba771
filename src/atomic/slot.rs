//! `RawSlot`: the shared machinery of both slot types (`AtomicCc`,
//! `AtomicOptionCc`) — a pointer word owning one handle (or none, when
//! null), and its reclamation.
//!
//! It holds the slot's operations: the lock-free reads (`load` adds a
//! strong handle under a pin, `load_borrowed` lends one), the writers'
//! CAS, which never changes a frozen word (it waits until the tag is gone,
//! and panics instead on the collecting thread itself), the retirement of
//! the handles writers replace (`reclaim::Grace::retire`, with the cell
//! for an unsized `T`), and the collector's trace: freeze (the `FROZEN`
//! tag, set with a CAS), report the edge, hold the thaw (`Thaw`). Why the
//! freeze makes validation sound is argued in the parent module's docs
//! (`atomic`), with the word encoding this file builds on.
//!
//! Guarded by the loom models in `loom-tests/tests/atomic.rs`
//! (`atomic_load_vs_swap_vs_last_drop`, `atomic_validate_vs_swap_out`,
//! `atomic_compare_exchange_aba`, and on the fat path
//! `atomic_dyn_load_vs_swap_vs_last_drop`,
//! `atomic_dyn_compare_exchange_vs_swap`), by `scripts/loom-teeth.sh` (a build
//! whose trace ignores the freeze, `--cfg arcycle_broken_atomic`, must be
//! caught), by `tests/atomic.rs`, and by the Miri cases in
//! `miri-tests/tests/atomic.rs`.

use super::reclaim::Grace;
use super::{
    borrow_raw, box_addr, box_of, from_raw, into_raw, is_frozen, is_thin, AtomicCcGuard, Retired,
    Word, FROZEN,
};
use crate::cc::Cc;
use crate::collector;
use crate::sync::{AtomicPtr, Wait};
use crate::trace::{Trace, Tracer};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::*;

/// How often a trace retries the freezing CAS against writers before it
/// reports the slot busy. The collector must not wait on mutators: a slot
/// written that often is in use.
const FREEZE_TRIES: usize = 4;

/// The shared machinery of both slot types: a pointer word owning one
/// handle (or none, when null), and its reclamation.
pub(super) struct RawSlot<T: ?Sized> {
    ptr: AtomicPtr<u8>,
    grace: Grace,
    _owns: PhantomData<Cc<T>>,
}

impl<T: ?Sized + Trace> RawSlot<T> {
    pub(super) fn new(cc: Option<Cc<T>>) -> Self {
        RawSlot {
            ptr: AtomicPtr::new(into_raw(cc)),
            grace: Grace::default(),
            _owns: PhantomData,
        }
    }

    /// A new handle to the current value.
    #[inline]
    pub(super) fn load(&self) -> Option<Cc<T>> {
        let pin = self.grace.pin();
        let p = self.current();
        // SAFETY: `p` was loaded while pinned: the slot's handle to it, or
        // the retired one (dropped, with its cell, only after `pin`), keeps
        // it alive.
        let cc = unsafe { borrow_raw::<T>(p) }.map(|cc| Cc::clone(&cc));
        drop(pin);
        cc
    }

    /// The current word, untagged. The caller is pinned.
    #[inline(always)]
    fn current(&self) -> Word {
        // Acquire: pairs with the Release of the writer's CAS that stored
        // the word, so the allocation's header and value (written before
        // the handle was given to the slot), and the handle's cell, are
        // visible.
        self.ptr.load(Acquire).map_addr(|a| a & !FROZEN)
    }

    /// A borrowed read: the current value, without a count change.
    #[inline]
    pub(super) fn load_borrowed<P>(
        &self,
        wrap: impl FnOnce(Option<Cc<T>>) -> P,
    ) -> AtomicCcGuard<'_, P> {
        let pin = self.grace.pin();
        let p = self.current();
        // SAFETY: as in `load`; the guard keeps the pin as long as it
        // lends the handle out, and never drops it (`ManuallyDrop`). The
        // handle lent is a copy of the box pointer: the cell is read here,
        // under the pin, and not after.
        let cc = unsafe { borrow_raw::<T>(p) }.map(ManuallyDrop::into_inner);
        AtomicCcGuard {
            value: ManuallyDrop::new(wrap(cc)),
            _pin: pin,
        }
    }

    /// Replace the word with `new` if the current one satisfies `expect`,
    /// waiting while the collector has the slot frozen. Returns the
    /// replaced word (its handle now the caller's), or the current one
    /// that failed `expect`. `expect` is given untagged words only.
    fn replace_if(&self, new: Word, expect: impl Fn(Word) -> bool) -> Result<Word, Word> {
        let wait = Wait::new();
        // Acquire (here, after a wait, and on a failed CAS): a word that
        // fails `expect` is handed back to `compare_exchange`, which clones
        // its handle, and `expect` may read its cell: the allocation and
        // the cell must be visible (pairs with the Release of the CAS that
        // stored it). Loom found the Relaxed version's race.
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
            // Release: publishes `new`'s allocation (and cell) to readers
            // (Acquire in `current`). Acquire: the replaced handle is now
            // ours; its publisher's writes happen-before our use of it.
            // Expecting an unfrozen word is what makes the collector's
            // freeze exclude every write (module docs).
            match self.ptr.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(old) => return Ok(old),
                Err(x) => cur = x,
            }
        }
    }

    /// Retire the handle a writer's CAS took out of the slot: it (and its
    /// cell) is released once no reader can still be reading it.
    #[inline]
    fn retire(&self, old: NonNull<u8>)
    where
        T: Send + Sync + 'static,
    {
        if is_thin::<T>() {
            // SAFETY: the CAS took the slot's handle: it is ours. A sized
            // word has no cell, so taking the handle back now frees nothing
            // a reader could still read; the handle itself waits.
            let old = unsafe { from_raw::<T>(old.as_ptr()) };
            self.grace.retire(old);
        } else {
            // The cell must wait with the handle: a reader may have loaded
            // the word and not yet read the cell.
            self.grace.retire(Retired::<T> {
                word: old,
                _owns: PhantomData,
            });
        }
    }

    /// A handle of the caller's own to the value a writer's CAS took out of
    /// the slot, whose slot handle is retired: a reader may still be
    /// turning the old word into a handle, so the slot's handle must wait
    /// for it.
    #[inline]
    fn take_old(&self, old: Word) -> Option<Cc<T>>
    where
        T: Send + Sync + 'static,
    {
        let old = NonNull::new(old)?;
        if is_thin::<T>() {
            // SAFETY: the CAS took the slot's handle: it is ours (no cell).
            let slots = unsafe { from_raw::<T>(old.as_ptr()) }?;
            let mine = slots.clone();
            self.grace.retire(slots);
            Some(mine)
        } else {
            // SAFETY: the CAS took the slot's handle: it is ours, and its
            // cell stays until `retire` releases it with the handle.
            let slots = ManuallyDrop::new(unsafe { Cc::from_tagged(box_of::<T>(old)) });
            let mine = Cc::clone(&slots);
            self.retire(old);
            Some(mine)
        }
    }

    /// Store `new`; the old handle is retired.
    pub(super) fn store(&self, new: Option<Cc<T>>)
    where
        T: Send + Sync + 'static,
    {
        let old = self.replace_if(into_raw(new), |_| true);
        if let Some(old) = NonNull::new(old.unwrap_or_else(|p| p)) {
            self.retire(old);
        }
    }

    /// Swap in `new`; return a handle to the old value, whose slot handle
    /// is retired.
    pub(super) fn swap(&self, new: Option<Cc<T>>) -> Option<Cc<T>>
    where
        T: Send + Sync + 'static,
    {
        let old = self.replace_if(into_raw(new), |_| true);
        self.take_old(old.unwrap_or_else(|p| p))
    }

    /// Replace the value with `new` if the slot holds the allocation at
    /// address `current` (0 for none).
    pub(super) fn compare_exchange(
        &self,
        current: usize,
        new: Option<Cc<T>>,
    ) -> Result<Option<Cc<T>>, Option<Cc<T>>>
    where
        T: Send + Sync + 'static,
    {
        // Pinned across the comparison, so that a failed one can return a
        // handle to the value it found, and so that every word `expect`
        // reads a cell of was loaded while pinned (its cell stays).
        let pin = self.grace.pin();
        let raw_new = into_raw(new);
        // SAFETY: `replace_if` gives `expect` untagged words it loaded
        // while we are pinned: in the slot then, or retired after our pin.
        let expect = |w: Word| unsafe { box_addr::<T>(w) } == current;
        match self.replace_if(raw_new, expect) {
            Ok(old) => {
                drop(pin);
                Ok(self.take_old(old))
            }
            Err(found) => {
                // SAFETY: `found` was in the slot while we were pinned.
                let actual = unsafe { borrow_raw::<T>(found) }.map(|cc| Cc::clone(&cc));
                drop(pin);
                // SAFETY: `raw_new` never reached the slot: still ours, and
                // no other thread ever saw its cell.
                drop(unsafe { from_raw::<T>(raw_new) });
                Err(actual)
            }
        }
    }

    /// The value, taking the slot apart (no reader can be inside).
    pub(super) fn into_inner(self) -> Option<Cc<T>> {
        // Acquire: the handle was published by a Release CAS.
        let p = self.ptr.swap(ptr::null_mut(), Acquire);
        debug_assert!(!is_frozen(p), "a slot was taken apart while frozen");
        drop(self); // finds the word null; releases retired handles (loom)
                    // SAFETY: the slot owned this handle; nobody else can
                    // read its cell (`self` was owned).
        unsafe { from_raw::<T>(p) }
    }

    /// The collector's trace: freeze, report, hold the thaw.
    pub(super) fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        #[cfg(arcycle_broken_atomic)]
        {
            // loom-tests teeth: a collector that ignores the slot's
            // freeze (reads the edge like an immutable field).
            let p = self.current();
            // SAFETY: deliberately unsound build (loom teeth only).
            if let Some(cc) = unsafe { borrow_raw::<T>(p) } {
                tracer.edge(&cc);
            }
        }
        #[cfg(not(arcycle_broken_atomic))]
        {
            let Some(p) = self.freeze() else {
                return tracer.busy();
            };
            // SAFETY: frozen, the slot keeps its handle (and the handle its
            // cell) until the thaw, which the tracer holds past every use
            // of the edge.
            if let Some(cc) = unsafe { borrow_raw::<T>(p) } {
                tracer.edge(&cc);
            }
            tracer.hold(Thaw {
                ptr: &self.ptr,
                value: p,
            });
        }
    }

    /// Set the freeze tag; returns the untagged word, or `None` if the
    /// slot is frozen already or keeps changing.
    #[cfg(not(arcycle_broken_atomic))]
    fn freeze(&self) -> Option<Word> {
        let mut cur = self.ptr.load(Relaxed);
        for _ in 0..FREEZE_TRIES {
            if is_frozen(cur) {
                return None;
            }
            // Acquire: the collector reads the handle's header (and cell)
            // next, and holds the object: pairs with the writer's Release
            // CAS that published them.
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

impl<T: ?Sized> Drop for RawSlot<T> {
    fn drop(&mut self) {
        // Acquire: the handle was published by a Release CAS. No reader or
        // writer can be inside (`&mut self`), and the collector releases
        // its freeze before any value it traced can be dropped.
        let p = self.ptr.swap(ptr::null_mut(), Acquire);
        debug_assert!(!is_frozen(p), "a slot was dropped while frozen");
        // SAFETY: the slot owned this handle; nobody else can read its
        // cell (`&mut self`).
        drop(unsafe { from_raw::<T>(p) });
    }
}

/// The collector's freeze on a slot; dropping it thaws the slot.
struct Thaw<'a> {
    ptr: &'a AtomicPtr<u8>,
    value: Word,
}

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        // A plain store: while frozen nobody else changes the word (writers
        // expect it unfrozen, other tracers find it frozen and give up).
        // Release: the collector's reads under the freeze happen-before the
        // next write of the slot (whose CAS is Acquire), as a lock's
        // unlock.
        self.ptr.store(self.value, Release);
    }
}

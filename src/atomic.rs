//! `AtomicCc` and `AtomicOptionCc`: lock-free, swappable handles that the
//! collector can see.
//!
//! The slot's operations (`RawSlot`: reads, writes, the collector's freeze
//! and thaw) are in `slot.rs`; this file holds the word they work on.
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
//!   it instead: it sets the `FROZEN` tag (bit 1 of the pointer word) with
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
//! * The collector keeps every guard of a batch of components until after
//!   the decision (`validate_batch` releases them last), so a slot traced
//!   in step 1 stays frozen across the freeze and verify CASes of the
//!   words (steps 3 and 4) — the cut at which the batch is shown to be
//!   unreachable.
//! * Every write of a slot is a CAS that expects an *unfrozen* word, and
//!   the freeze itself is a CAS on the same word; so each write is either
//!   before the freeze in the word's modification order (and the re-trace,
//!   which reads the word in that very CAS, sees its result) or after the
//!   thaw (after the decision). Nothing moves in or out in between.
//! * Reads during the window add handles (`load` is a clone): a clone of a
//!   frozen object raises its count and fails verification, as any clone
//!   does (and only a drop, which leaves `TOUCHED`, could lower it again).
//!   A borrowed read adds nothing, but it borrows the slot, whose owner is
//!   then reachable from the reader (see below).
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
//! while the collector validates the slot owner's batch (or, in the
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
//! # Unsized values: the cell
//!
//! A slot stays one word whatever `T` is. For a sized `T` (a thin box
//! pointer: `is_thin`, a constant per monomorphisation) the word is the
//! box's address, exactly as above. For an unsized `T` (`dyn Trait`,
//! `[T]`, `str`) the box pointer is two words, so the word is instead the
//! address of a `FatCell` holding it (with the handle's tracked tag) —
//! pointer-aligned, so bit 1 is free for the freeze tag, and the protocol
//! above is unchanged: it is about the word. The cell belongs to the handle stored in the slot:
//!
//! * it is allocated and written when the handle enters a slot
//!   (`into_raw`), before the Release CAS that publishes the word, and is
//!   never written again: whoever reads the word with Acquire (a reader,
//!   a writer's CAS, the collector's freeze) sees its contents;
//! * it is freed only when the handle leaves the slot for good
//!   (`from_raw`): a replaced handle is retired *as its word* (`Retired`),
//!   so its cell is freed together with the handle, after every reader that
//!   may have loaded the word has unpinned; a handle taken out by
//!   `into_inner` or the slot's drop had no reader (`self`, `&mut self`);
//!   a `new` word whose CAS failed was never published;
//! * it is read only by a holder that keeps it from being freed: a reader
//!   under its pin (the cell is freed after the pin), `compare_exchange`'s
//!   comparison under the pin it holds across the CAS loop (every word it
//!   compares was loaded while pinned), the collector's trace under its
//!   freeze (no writer can take the handle out until the thaw), and a
//!   writer, of the word its own CAS took out.
//!
//! Cells are never reused while their handle lives, so a cell's address
//! names one handle for as long as any of these holders can compare it:
//! the writers' CAS on the word has no ABA problem a sized slot lacks.
//! Under loom each cell records its reads against its free (`ValueTrack`),
//! so a cell freed early is a reported race
//! (`atomic_dyn_load_vs_swap_vs_last_drop` catches a writer that frees the
//! cell at its CAS instead of retiring it).
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
//! `atomic_compare_exchange_aba`, and on the fat path
//! `atomic_dyn_load_vs_swap_vs_last_drop`,
//! `atomic_dyn_compare_exchange_vs_swap`), by `scripts/loom-teeth.sh` (a build
//! whose trace ignores the freeze, `--cfg arcycle_broken_atomic`, must be
//! caught), and by `tests/atomic.rs` (threads loading, swapping and
//! compare-exchanging while another collects; a ring of slots collected;
//! `take` against `store`; the same for `dyn`, `str` and slice slots), and
//! by the Miri cases in `miri-tests/tests/atomic.rs`.

mod reclaim;
mod slot;

use crate::cc::{Cc, CcBox};
use crate::header::Header;
use crate::sync::ValueTrack;
use reclaim::ReadPin;
use slot::RawSlot;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// The collector's freeze tag, in the pointer word's bit 1 (a `CcBox` is
/// at least 8-aligned: its header is two `u64` words). Bit 0 is the stored
/// handle's own tracked tag (see `cc`), kept in the word so that a reader
/// rebuilds the handle without loading the header (the borrowed read
/// touches nothing but the slot).
const FROZEN: usize = 2;

/// The handle's tracked tag (bit 0 of a `Cc`'s pointer), kept in the word.
const TRACKED_TAG: usize = 1;

/// A slot's pointer word, untyped: the box's address for a sized `T`, the
/// address of the handle's [`FatCell`] for an unsized one (see "Unsized
/// values" in the module docs); null for an empty slot. Bit 0 is the
/// handle's tracked tag (part of the word's value); `FROZEN` (bit 1) is set
/// while the collector has the slot frozen.
type Word = *mut u8;

/// Whether a box pointer of `T` is one word (every sized `T`): then the
/// slot stores the box's address itself. A constant per monomorphisation,
/// so every branch on it folds away.
#[inline(always)]
const fn is_thin<T: ?Sized>() -> bool {
    mem::size_of::<*mut CcBox<T>>() == mem::size_of::<Word>()
}

/// Where a slot keeps the fat box pointer of a handle to an unsized value
/// (`Cc<str>`, `Cc<[T]>`, `Cc<dyn Trait>`): the slot's word is the cell's
/// address. Owned by that handle: allocated when the handle enters a slot
/// (`into_raw`), never written again, and freed when the handle leaves it
/// for good (`from_raw`: the take-back of a handle a writer moved out, run
/// only once no reader can still read the cell). Pointer-aligned, so bits
/// 0 and 1 of its address are free (bit 1 for the freeze tag).
struct FatCell<T: ?Sized> {
    /// Loom's record of the reads of `ptr` against the cell's free (zero
    /// sized outside loom): loom cannot see a `Box` going away.
    track: ValueTrack,
    ptr: NonNull<CcBox<T>>,
}

#[inline(always)]
fn is_frozen(p: Word) -> bool {
    p.addr() & FROZEN != 0
}

/// The handle pointer (the box's address with the handle's tracked tag,
/// as `Cc::into_tagged` gave it) that an unfrozen, non-null word names.
///
/// # Safety
/// `w` is an untagged word from `into_raw::<T>` whose handle is still
/// owned (by a slot, a retired handle, or the caller), and will stay so
/// while this runs (for an unsized `T`, it reads the handle's cell).
#[inline(always)]
unsafe fn box_of<T: ?Sized>(w: NonNull<u8>) -> NonNull<CcBox<T>> {
    if is_thin::<T>() {
        // SAFETY: `*mut CcBox<T>` is one word here (checked just above), so
        // this is the pointer `into_raw` cast to a word, cast back: same
        // address, same provenance, no metadata.
        unsafe { mem::transmute_copy::<NonNull<u8>, NonNull<CcBox<T>>>(&w) }
    } else {
        let cell = w.cast::<FatCell<T>>();
        // SAFETY: a fat word is the address of a live cell (per the
        // contract, its handle, which owns it, is still owned), written
        // once before the word was published and never again.
        unsafe {
            cell.as_ref().track.read();
            cell.as_ref().ptr
        }
    }
}

/// The address of the allocation a (possibly null) untagged word names,
/// for a comparison by identity (`Cc::ptr_eq`: addresses only).
///
/// # Safety
/// As for [`box_of`], if `w` is not null.
#[inline(always)]
unsafe fn box_addr<T: ?Sized>(w: Word) -> usize {
    match NonNull::new(w) {
        None => 0,
        // SAFETY: forwarded contract.
        Some(w) => unsafe { box_of::<T>(w) }.cast::<u8>().addr().get() & !TRACKED_TAG,
    }
}

/// The handle a (possibly null) word owns, without taking it.
///
/// # Safety
/// `p` is null or untagged and owned by a slot (or a handle) that keeps
/// it (and, for an unsized `T`, its cell) alive while the result is used.
#[inline(always)]
unsafe fn borrow_raw<T: ?Sized>(p: Word) -> Option<ManuallyDrop<Cc<T>>> {
    // SAFETY: per the contract, a non-null `p` came from `into_raw` and
    // its handle is still owned.
    // SAFETY (`from_tagged`): the pointer `into_raw` took from a handle
    // with `into_tagged`; the handle is lent, never dropped (`ManuallyDrop`).
    NonNull::new(p).map(|p| ManuallyDrop::new(unsafe { Cc::from_tagged(box_of::<T>(p)) }))
}

/// Give up a handle for its word (null for `None`). For an unsized `T`
/// this allocates the handle's cell.
#[inline(always)]
fn into_raw<T: ?Sized>(cc: Option<Cc<T>>) -> Word {
    // The header is the first field of the `repr(C)` box, so a box is at
    // least as aligned as it: bits 0 (the handle's tag) and 1 (the freeze
    // tag) of its address are free.
    const { assert!(mem::align_of::<Header>() > (FROZEN | TRACKED_TAG)) };
    const { assert!(mem::align_of::<FatCell<T>>() > (FROZEN | TRACKED_TAG)) };
    match cc {
        None => ptr::null_mut(),
        Some(cc) => {
            let b = Cc::into_tagged(cc);
            if is_thin::<T>() {
                b.as_ptr().cast::<u8>()
            } else {
                let cell = Box::new(FatCell {
                    track: ValueTrack::new(),
                    ptr: b,
                });
                Box::into_raw(cell).cast::<u8>()
            }
        }
    }
}

/// Take back the handle a word owns (and free its cell, for an unsized
/// `T`).
///
/// # Safety
/// `p` is null or an untagged word from `into_raw` whose handle the caller
/// now owns, and (for an unsized `T`) that no other thread can still read:
/// its cell is freed here.
#[inline(always)]
unsafe fn from_raw<T: ?Sized>(p: Word) -> Option<Cc<T>> {
    NonNull::new(p).map(|w| {
        if is_thin::<T>() {
            // SAFETY: forwarded contract (a sized box reads no cell); the
            // pointer came from `into_tagged`, and its unit is now ours.
            unsafe { Cc::from_tagged(box_of::<T>(w)) }
        } else {
            // SAFETY: the cell `into_raw` leaked for this handle, which the
            // caller now owns, and which nobody else can still read.
            let cell = unsafe { Box::from_raw(w.cast::<FatCell<T>>().as_ptr()) };
            cell.track.write();
            // SAFETY: the cell holds what `into_tagged` gave; ours now.
            unsafe { Cc::from_tagged(cell.ptr) }
        }
    })
}

/// A handle a writer moved out of a slot, as its word: what a slot retires
/// for an unsized `T`, so that the handle's cell is freed (`from_raw`) with
/// the handle, after every reader that may have loaded the word is done.
struct Retired<T: ?Sized> {
    word: NonNull<u8>,
    _owns: PhantomData<Cc<T>>,
}

// SAFETY: it owns a `Cc<T>` (and its cell, which only its drop touches):
// it may move to another thread exactly when that handle may.
unsafe impl<T: ?Sized> Send for Retired<T> where Cc<T>: Send {}

impl<T: ?Sized> Drop for Retired<T> {
    fn drop(&mut self) {
        // SAFETY: the word's handle is ours (a writer's CAS took it out of
        // the slot) and the grace period is over: no reader still reads it.
        drop(unsafe { from_raw::<T>(self.word.as_ptr()) });
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

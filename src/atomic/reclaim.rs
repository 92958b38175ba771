//! Safe reclamation for `AtomicCc` slots: when may a writer's old handle
//! be dropped?
//!
//! A reader loads the slot's pointer and then adds a strong handle to the
//! object it names. Between the two steps the slot's own handle is the
//! only thing that keeps the count above zero, and a writer may swap it
//! out at any moment. So a writer never drops the handle it took out of a
//! slot itself: it *retires* it, and the handle is dropped only once every
//! reader that could have loaded the old pointer has finished turning it
//! into a handle (or finished its borrowed read).
//!
//! * **Normal builds:** `crossbeam-epoch`. A reader pins the current
//!   thread for the duration of the read (a thread-local store and a
//!   fence, no shared write); a writer retires the old handle with
//!   `Guard::defer`, and crossbeam runs the deferred drop after every
//!   thread pinned at that time has unpinned — on whichever thread then
//!   advances the epoch. Nobody ever waits.
//! * **Under loom** (`cfg(arcycle_loom)`): crossbeam-epoch is not built on
//!   loom's primitives (its own loom build needs `crossbeam_loom` and is
//!   far too large for our models), so each slot carries a small grace
//!   period instead, made of `crate::sync` primitives that loom checks: a
//!   reader count and a list of retired handles. A reader enters (count +1)
//!   before it loads the pointer and leaves (count −1) after its handle
//!   exists; a retired handle is dropped by whoever finds the count at zero
//!   with the retired handle already listed — the retiring writer itself,
//!   or the last reader to leave. The argument, with every step an RMW so
//!   that it holds under loom's AcqRel model of orderings: a reader that
//!   loaded the old pointer read the slot before the writer's CAS replaced
//!   it, so its enter precedes, in the count's modification order, the
//!   writer's RMW read of the count (else the writer's read is released to
//!   the reader's enter and the reader would have seen the new pointer);
//!   so the writer reads a count that includes this reader, unless the
//!   reader has already left, whose release then orders the reader's
//!   increment before the drop. The list is only touched under its mutex,
//!   and both the writer (after listing) and the last reader (after
//!   leaving) re-read the count under it, so no retired handle is lost.
//!
//! Either way, the dropping may happen on another thread than the
//! writer's, inside a later `AtomicCc` operation (crossbeam: any pinning
//! thread; loom: the last reader). That is where the old value's
//! destructor runs if the retired handle was its last one.

#[cfg(arcycle_loom)]
use crate::sync::{lock, AtomicUsize, Mutex};
use std::marker::PhantomData;
#[cfg(arcycle_loom)]
use std::sync::atomic::Ordering::AcqRel;

/// A reader's protection: while it lives, no handle retired after it was
/// taken is dropped.
pub(crate) struct ReadPin<'a> {
    #[cfg(not(arcycle_loom))]
    _pin: crossbeam_epoch::Guard,
    #[cfg(arcycle_loom)]
    grace: &'a Grace,
    _slot: PhantomData<&'a ()>,
}

/// Per-slot reclamation state: empty outside loom (crossbeam's collector is
/// global), a grace period under loom.
#[derive(Default)]
pub(crate) struct Grace {
    #[cfg(arcycle_loom)]
    readers: AtomicUsize,
    #[cfg(arcycle_loom)]
    retired: Mutex<Vec<Box<dyn Send>>>,
}

impl Grace {
    /// Protect a read of the slot this grace period belongs to.
    #[inline]
    pub(crate) fn pin(&self) -> ReadPin<'_> {
        #[cfg(not(arcycle_loom))]
        {
            ReadPin {
                _pin: crossbeam_epoch::pin(),
                _slot: PhantomData,
            }
        }
        #[cfg(arcycle_loom)]
        {
            // AcqRel: see the module docs (every step is an RMW).
            self.readers.fetch_add(1, AcqRel);
            ReadPin {
                grace: self,
                _slot: PhantomData,
            }
        }
    }

    /// Drop `old` (a handle a writer took out of the slot) once no reader
    /// that may have loaded its pointer is still reading.
    pub(crate) fn retire<H: Send + 'static>(&self, old: H) {
        #[cfg(not(arcycle_loom))]
        {
            let pin = crossbeam_epoch::pin();
            // Dropped after every thread pinned now has unpinned: a reader
            // that loaded the old pointer was pinned before it loaded it.
            pin.defer(move || drop(old));
        }
        #[cfg(arcycle_loom)]
        {
            lock(&self.retired).push(Box::new(old));
            self.drain();
        }
    }

    /// Loom: drop the retired handles if no reader is inside.
    #[cfg(arcycle_loom)]
    fn drain(&self) {
        let mut list = lock(&self.retired);
        // AcqRel RMW (it adds nothing): reads the latest count, and
        // synchronises with every reader's enter and leave before it.
        let ready = self.readers.fetch_add(0, AcqRel) == 0;
        let gone = if ready {
            std::mem::take(&mut *list)
        } else {
            Vec::new()
        };
        drop(list);
        drop(gone); // outside the lock: a destructor may use this slot
    }
}

#[cfg(arcycle_loom)]
impl Drop for ReadPin<'_> {
    fn drop(&mut self) {
        // AcqRel: releases this reader's increment to whoever drops a
        // handle it protected.
        if self.grace.readers.fetch_sub(1, AcqRel) == 1 {
            self.grace.drain();
        }
    }
}

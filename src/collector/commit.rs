//! Phase 4: let go of the survivors, destroy the garbage.
//!
//! # Invariants
//!
//! * **Survivors become old.** The RMW that lets go of a survivor also
//!   sets `SURVIVOR` (see `generations`); in a young collection a root
//!   that survives gets `ACTIVE` back first (the claim of a new entry,
//!   see `buffer`, invariant 1), and that entry is held over for the next
//!   full collection (unless a drop buffered it again meanwhile).
//! * **Holds never leak.** Every object the collector held is let go
//!   (`HELD` cleared) exactly once: survivors under the collector lock, the
//!   garbage after its values are destroyed. No user code runs between the
//!   last hold being taken and the survivors being let go except under
//!   `catch_unwind` (see `discover`). A mutator's last drop of a held
//!   survivor waits for this release and destroys the value itself (see
//!   `buffer`); only a handle dropped by a `Trace` impl on this thread
//!   leaves a survivor at count zero, and its value is destroyed here.
//! * **Garbage values are destroyed after the locked phases**, still under
//!   the collector lock (so a concurrent `collect()` returns only once they
//!   are gone) but with every user lock released and every survivor let go:
//!   a destructor may allocate, drop, lock, and even call `collect()`
//!   (which runs nested on this thread).
//! * **A garbage value is dropped once, by its last drop where it can be.**
//!   Each dead member's word carries `VALUE_PENDING`; the destroy loop and
//!   a peer's destructor dropping the member's last handle *on this thread*
//!   both clear it with one RMW (the peer's is its decrement itself, see
//!   `buffer::decrement_inner`), and whoever finds it set drops the value —
//!   so a destructor that drops a member's last handle sees that member
//!   destroyed before the drop returns, as with `Arc` (and as CPython's
//!   collector does). A last handle dropped on another thread leaves the
//!   value to this loop: the allocations are freed right after it.
//! * **No allocation of the garbage is freed before every value of it has
//!   been dropped.** While values are dropped, every member is still held,
//!   so the decrements its peers' destructors make can never start a
//!   destruction (and find `DEAD` anyway); a destructor that dereferences a
//!   member gets a clear panic, and one that clones a member keeps only the
//!   allocation alive — its last drop gives the allocation back.
//! * **A panic in a destructor does not stop the rest.** Each value is
//!   dropped under `catch_unwind`; the first panic is resumed to the caller
//!   of `collect()` when everything else is done.
//!
//! Guarded by the loom models `collector_vs_last_drop` and
//! `young_collection_holds_over_survivors` and the tests in
//! `tests/destructors.rs` and `tests/generations.rs`.

use super::discover::{Graph, Visited};
use super::prefetch::{prefetch, prefetch_children, prefetch_listed, AHEAD};
use super::validate::Validated;
use crate::buffer;
use crate::destroy;
use crate::header::*;
use crate::trace::Node;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;

pub(crate) struct Outcome {
    /// Every visited object (`Visited::dead` marks the garbage); the
    /// collection keeps the table for the next one (`scratch`).
    pub(crate) nodes: Vec<Visited>,
    /// Pass 1's edges (no longer read), kept likewise.
    pub(crate) targets: Vec<u32>,
    /// Their targets' header addresses, which the destroy loop prefetches;
    /// kept likewise.
    pub(crate) addrs: Vec<usize>,
    /// The garbage, as indices into `nodes`, in validation order: marked
    /// dead, values still to drop, still held (the hold is the only
    /// claim a taken root keeps, see `buffer`, invariant 1). Kept for the
    /// next collection, like `nodes`.
    pub(crate) dead: Vec<u32>,
    /// Survivors whose last handle went while held: values to destroy.
    orphans: Vec<Node>,
    pub(crate) live_traced: usize,
    pub(crate) traced: usize,
    /// Objects that came from root-buffer entries.
    pub(crate) roots: usize,
    /// Components whose validation failed.
    pub(crate) aborted: usize,
    /// A young collection's entries for the next full one (see
    /// `generations`).
    pub(crate) held_over: Vec<crate::buffer::Entry>,
    panic: Option<Box<dyn Any + Send>>,
}

/// At the end of the locked phases: let go of every survivor.
pub(crate) fn finish_locked(mut graph: Graph, validated: Validated) -> Outcome {
    let mut orphans = Vec::new();
    let mut made_old = 0;
    for (i, v) in graph.nodes.iter().enumerate() {
        if v.dead {
            // Its header is left alone here: no prefetch either (the
            // garbage is often most of what was traced).
            continue;
        }
        if let Some(next) = graph.nodes.get(i + AHEAD).filter(|n| !n.dead) {
            prefetch(next.node.header.as_ptr());
        }
        let h = v.node.header();
        let again = (v.busy || v.retry) && !super::is_quarantined(v.node);
        // Only a `Trace` impl on this thread can have dropped the count to
        // zero since the hold: another thread's last drop waits for it.
        let alive = count(h.strong.load(Relaxed)) > 0;
        if again && alive {
            // Its trace could not be read (a lock was taken), or its
            // component was touched while it was validated, so this
            // collection could not decide about it or what it reaches.
            // Buffer it — root or not — so the next collection starts from
            // it: nothing else may ever buffer a cycle whose members see no
            // more decrements. It is held, so alive. (A quarantined object
            // is never tried again: it would panic again.)
            buffer::rebuffer(v.node.header);
        } else if graph.young && v.root && alive && !cfg!(arcycle_broken_generations) {
            // A young root that survived: an old object may be all that
            // holds it, on a garbage cycle that sees no more decrements.
            // Keep an entry for it, with `ACTIVE` back as its claim, for
            // the next full collection (`generations`, invariant 2) —
            // unless a drop buffered it again since the hold cleared
            // `ACTIVE`: then that entry stands for it.
            if buffer::reactivate(h) {
                graph.held_over.push(crate::buffer::Entry(v.node.header));
            }
        }
        // Let go, mark the object old (`SURVIVOR`, unless it is already),
        // and put the type code back over the visit number (see `header`),
        // all in one RMW: only this thread writes any of these bits while
        // the object is held, so the XOR flips exactly those.
        // Release: our reads of the value happen-before whoever destroys it
        // next. Acquire: if its last handle is gone, every dropper's uses
        // happen-before our destruction.
        let number = (i + 1) as u64;
        let survivor = if v.old { 0 } else { SURVIVOR };
        made_old += usize::from(!v.old);
        let flip = HELD | survivor | code_field(number as u32 ^ v.code);
        let old = h.strong.fetch_xor(flip, AcqRel);
        debug_assert!(held_by_collection(old) && type_code(old) as u64 == number);
        debug_assert_eq!(old & SURVIVOR != 0, v.old);
        if count(old) == 0 {
            orphans.push(v.node);
        }
    }
    // The old heap's count (`generations`, invariant 3), before the
    // orphans are destroyed. A survivor let go above whose last handle
    // another thread drops meanwhile may be reported freed before this
    // adds it: the count saturates, and is right again once this lands.
    super::generations::note_made_old(made_old);
    Outcome {
        live_traced: graph.nodes.len() - validated.dead.len(),
        traced: graph.nodes.len(),
        nodes: graph.nodes,
        targets: graph.targets,
        addrs: graph.addrs,
        dead: validated.dead,
        orphans,
        roots: graph.roots,
        aborted: validated.aborted,
        held_over: graph.held_over,
        panic: graph.panic,
    }
}

impl Outcome {
    /// After the locked phases (user locks released, survivors let go):
    /// destroy what must be destroyed. Returns
    /// the number of garbage objects freed and the first panic, if any.
    pub(crate) fn destroy(&mut self) -> (usize, Option<Box<dyn Any + Send>>) {
        let mut panic = self.panic.take();
        for n in std::mem::take(&mut self.orphans) {
            // SAFETY: count zero, hold released by us, not dead: we own the
            // value, as a last dropper would.
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| unsafe { destroy::destroy(n) })) {
                super::keep_panic(&mut panic, p);
            }
        }
        let nodes = &self.nodes;
        for (k, &i) in self.dead.iter().enumerate() {
            prefetch_listed(nodes, &self.dead, k);
            // Its destructor decrements its children's words.
            prefetch_children(nodes, &self.addrs, &self.dead, k);
            let n = nodes[i as usize].node;
            // Claim the value: a peer's destructor on this thread may have
            // dropped the last handle to this member and destroyed it
            // already, inline (see `cc::drop::last_tracked_gone`). Acquire: every
            // use of the value happened-before the decision, which we made.
            let h = n.header();
            // Only this thread ever clears VALUE_PENDING, so a plain load
            // tells whether a peer's destructor took it already (then no
            // RMW is needed); the claim itself is an RMW, since other
            // threads may be changing the count meanwhile.
            if h.strong.load(Relaxed) & VALUE_PENDING == 0
                || h.strong.fetch_and(!VALUE_PENDING, Acquire) & VALUE_PENDING == 0
            {
                continue;
            }
            // SAFETY: the object is dead and held: no handle outside the
            // garbage existed at the decision, none could appear, and the
            // claim above makes this the value's only destruction.
            let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
                (n.vtable.drop_value)(n.header)
            }));
            if let Err(p) = dropped {
                super::keep_panic(&mut panic, p);
            }
        }
        // Every value of the garbage is gone. Each member's registrations
        // (weak collections, finalizers) are taken as it is freed, still
        // held until then, and run once the set is freed: after every
        // destructor of the set, with no pass over the members of its own.
        let mut deaths = crate::weakref::Deaths::default();
        for (k, &i) in self.dead.iter().enumerate() {
            prefetch_listed(nodes, &self.dead, k);
            let n = nodes[i as usize].node;
            deaths.take(n);
            let h = n.header();
            // Acquire: every decrement of a handle to this member (by the
            // destructors, or by a handle they stashed, dropped on any
            // thread with Release) happens-before the free.
            let s = h.strong.load(Acquire);
            let last = if count(s) == 0 {
                // No handle exists and none can appear (a clone needs one, an
                // upgrade of a dead object fails): the hold can simply be
                // forgotten along with the allocation.
                true
            } else {
                // A destructor cloned a handle to this member: let go of the
                // hold; the last such handle gives the allocation back.
                // AcqRel: as for survivors.
                count(h.strong.fetch_and(!HELD, AcqRel)) == 0
            };
            // Otherwise the stashed handle's last drop releases the
            // strong side. Either way, an entry pushed for the member
            // since its root hold (`ACTIVE` in the dead word) gets the
            // strong side's unit (`Header::release_tracked_strong_side`).
            if last && h.release_tracked_strong_side() {
                // SAFETY: weak word zero; the value is gone.
                unsafe { (n.vtable.dealloc)(n.header) }
            }
        }
        deaths.run(&mut panic);
        (self.dead.len(), panic)
    }
}

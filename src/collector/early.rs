//! Phase 3 inside phase 1: a pass-1 batch's closed components, frozen and
//! verified while pass 1 still holds their guards.
//!
//! # What it guarantees
//!
//! The invariant of `validate`: a set is freed only if, at one instant, it
//! was unreachable. Pass 1 traces a batch of up to `PASS1_BATCH` objects
//! and keeps each one's guards until the children of the whole batch are
//! held (`discover`, `Graph::trace_all`). At that moment, for the batch's
//! members, it knows every edge it recorded and every count it read after
//! the trace, and every mutable field it read is still locked. A
//! *closed component* `C` of the batch is a set of members that
//!
//! * (a) is a weakly connected component of the batch's recorded edges
//!   none of whose members recorded an edge to an object outside the
//!   batch: no edge leaves `C`, and no other member's edge enters it;
//! * (b) was read with counts equal to the edges recorded from `C` into
//!   each member (`e(n)`);
//! * (c) has no busy member (a lock its trace could not take, a panic, a
//!   quarantined object).
//!
//! Such a `C` goes straight to `validate`'s steps 3–5, with pass 1's
//! guards as step 1's frozen fields and its recorded edges as step 2's
//! count: each member's word is frozen if its count is `e(n)`, then
//! verified by an RMW, and if every member passes, all of `C` is marked
//! `DEAD`. If any member fails, every frozen word of `C` is unfrozen and
//! `C` is left to trial deletion and validation, as if nothing had been
//! tried.
//!
//! **Why the guards can stand in for the re-trace.** `validate`'s step 1
//! re-traces a member to hold, from then to the decision, the guards of
//! every field its handles sit in, and to learn which handles those
//! fields hold. Here the guards were taken by the trace that recorded the
//! edges, before it read the fields, and are released only after the
//! decision: no handle can have moved out of (or within) a mutable field
//! of `C` between the reading and the decision, so the recorded edges are
//! the handles in `C`'s frozen fields. A member whose trace took no lock
//! keeps its edges in immutable or set-once fields (the `Trace`
//! contract), and it has been held since, so no `get_mut` changed them;
//! a set-once field set since adds a handle, which raises a count above
//! `e(n)`: the safe direction. From there `validate`'s argument ("Why `D` is
//! garbage") applies word for word, with `D = C`: at the cut between the
//! freezing CASes and the verifying ones, every handle to a member sat in
//! a frozen field of `C`, so `C` was unreachable, and stays so.
//!
//! **Why the rest of the collection may ignore `C`.** By (a) no edge
//! recorded from `C` leads out of it, so no other object's internal count
//! includes a handle in `C`'s fields. Another visited object may have
//! recorded a stale edge *into* `C` (traced in an earlier batch, its
//! handle dropped before `C`'s counts were read); trial deletion neither
//! blames nor proposes a dead object (`trial`), so such an edge changes
//! nothing but the colour of the object that recorded it, which stays
//! what it would have been. Nothing traced after the cut can find a
//! handle to `C`: none exists outside `C`'s fields, and `upgrade` of a
//! dead object fails.
//!
//! **Why it pays.** The members of a closed component are the 2-cycles,
//! self-loops and small rings whose roots were buffered together, in the
//! order a program dropped them: validation would lock and trace each of
//! them a second time (two locked RMWs and a trace per member of a
//! `Mutex` node), and group them into components first.
//!
//! Guarded by the loom models `closed_batch_vs_move_out` (a handle moved
//! out of a member's field between pass 1's count and the freeze) and
//! `closed_batch_vs_upgrade` (a member upgraded while its batch is
//! decided), by every model whose roots make a closed component (the ABA
//! rings of `validate_vs_clone_drop_aba`, two self-loops in
//! `touched_component_spares_the_other`), and by
//! `closed_components_*` in `tests/single_thread.rs`.
//! `scripts/loom-teeth.sh` builds pass 1 letting go of a batch's guards
//! before this step (`--cfg arcycle_broken_early`), and without step 4
//! here as in `validate` (`--cfg arcycle_broken`), and asserts that loom
//! then finds the use-after-free.

use super::discover::{Graph, PASS1_BATCH};
use super::validate::{freeze, mark_dead, unfreeze, verify};
use std::ops::Range;

/// A batch's members fit the bits of a `u32`.
const _: () = assert!(PASS1_BATCH <= 32);

#[cfg(arcycle_loom)]
std::thread_local! {
    /// loom-tests: whether pass 1 decides closed components (on by
    /// default; the models of `validate` turn it off to reach validation).
    static EARLY: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// loom-tests: let pass 1 decide closed components (`true`, the default)
/// or leave every component to validation, on this OS thread.
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_early_validation(on: bool) {
    EARLY.with(|e| e.set(on));
}

/// A pass-1 batch's recorded edges, as [`Graph::decide_closed`] needs
/// them: filled by pass 1 as it records each edge, so that deciding reads
/// no edge table again.
pub(crate) struct BatchEdges {
    /// The batch: `nodes[base..base + len]`.
    base: usize,
    len: usize,
    /// Edges into each member from the batch.
    into: [u32; PASS1_BATCH],
    /// Each member's neighbours in the batch, either direction (bits).
    near: [u32; PASS1_BATCH],
    /// Members with an edge out of the batch (bits).
    out: u32,
    /// Members with an edge to or from another member, or to themselves.
    linked: u32,
}

impl BatchEdges {
    pub(crate) fn new(batch: Range<usize>) -> Self {
        debug_assert!(batch.len() <= PASS1_BATCH);
        BatchEdges {
            base: batch.start,
            len: batch.len(),
            into: [0; PASS1_BATCH],
            near: [0; PASS1_BATCH],
            out: 0,
            linked: 0,
        }
    }

    /// Pass 1 recorded an edge from `nodes[from]` (a member) to
    /// `nodes[to]`.
    #[inline(always)]
    pub(crate) fn edge(&mut self, from: usize, to: u32) {
        let k = from - self.base;
        match (to as usize).checked_sub(self.base) {
            Some(t) if t < self.len => {
                self.into[t] += 1;
                self.near[k] |= 1 << t;
                self.near[t] |= 1 << k;
                self.linked |= 1 << k;
            }
            _ => self.out |= 1 << k,
        }
    }
}

/// The members `from` reaches by the batch's edges in either direction
/// (`near`), `from` included: whole components.
fn spread(from: u32, near: &[u32; PASS1_BATCH]) -> u32 {
    let (mut seen, mut todo) = (from, from);
    while todo != 0 {
        let k = todo.trailing_zeros() as usize;
        todo &= todo - 1;
        let new = near[k] & !seen;
        seen |= new;
        todo |= new;
    }
    seen
}

/// The members of a bitmask, in order.
struct Bits(u32);

impl Iterator for Bits {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        (self.0 != 0).then(|| {
            let k = self.0.trailing_zeros() as usize;
            self.0 &= self.0 - 1;
            k
        })
    }
}

impl Graph {
    /// Whether pass 1 looks for closed components: not while a leak report
    /// is recorded (it explains survivors from the whole graph), and
    /// under loom only where the model allows it.
    pub(crate) fn early(&self) -> bool {
        #[cfg(arcycle_loom)]
        if !EARLY.with(std::cell::Cell::get) {
            return false;
        }
        !self.record_hidden
    }

    /// Find the closed components of a pass-1 batch (whose children are
    /// held, whose guards are not yet released; `e`, its recorded edges),
    /// and validate each at once (module docs); the garbage is marked
    /// `DEAD` and listed in `self.dead`.
    pub(crate) fn decide_closed(&mut self, e: &BatchEdges) {
        let (base, m) = (e.base, e.len);
        if e.linked == 0 {
            // No edge between members (live roots, a chain's one object):
            // only a lone self-loop could be garbage, and it is not there.
            return;
        }
        // The members that disqualify their component: busy, with an edge
        // out of the batch, or with a count its edges from the batch do
        // not explain (b).
        let mut rejected = e.out;
        for k in 0..m {
            let v = &self.nodes[base + k];
            if v.busy || v.rc != u64::from(e.into[k]) {
                rejected |= 1 << k;
            }
        }
        let all = (1u32 << m) - 1;
        // A rejected member spoils its whole component (a).
        let mut spoiled = spread(rejected, &e.near);
        let mut words = [0u64; PASS1_BATCH];
        while spoiled != all {
            // The next component: the first member left, and what it
            // reaches either way.
            let c = spread(1 << (!spoiled & all).trailing_zeros(), &e.near);
            spoiled |= c;
            let members = || Bits(c);
            // Step 3, then step 4: every freeze before every verify.
            let mut ok = true;
            for k in members() {
                match freeze(self.nodes[base + k].node.header(), u64::from(e.into[k])) {
                    Some(w) => words[k] = w,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                ok = members().all(|k| verify(self.nodes[base + k].node.header(), words[k]));
            }
            // Step 5: all of `C`, or none of it.
            for k in members() {
                let v = &mut self.nodes[base + k];
                if ok {
                    mark_dead(v, words[k]);
                    self.dead.push((base + k) as u32);
                } else if words[k] != 0 {
                    unfreeze(v.node.header());
                }
            }
        }
    }
}

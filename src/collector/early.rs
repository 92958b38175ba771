//! Phase 3 inside phase 1: the closed components of two consecutive
//! pass-1 batches, frozen and verified while pass 1 still holds their
//! guards.
//!
//! # What it guarantees
//!
//! The invariant of `validate`: a set is freed only if, at one instant, it
//! was unreachable. Pass 1 traces batches of up to `PASS1_BATCH` objects
//! and keeps each one's guards until the children of that batch *and the
//! next one* are held (`discover`, `Graph::trace_all`). At that moment,
//! for the *window* of the two batches, it knows every edge the members
//! recorded and every count it read after their traces, and every mutable
//! field it read is still locked. A *closed component* `C` of the window
//! is a set of members that
//!
//! * (a) is a weakly connected component of the window's recorded edges
//!   none of whose members recorded an edge to an object outside the
//!   window: no edge leaves `C`, and no other member's edge enters it;
//! * (b) was read with counts equal to the edges recorded from `C` into
//!   each member (`e(n)`);
//! * (c) has no busy member (a lock its trace could not take, a panic, a
//!   quarantined object), and none decided in the window before (which
//!   shares a batch with this one: such a component is done).
//!
//! So a component is decided here if it lies within two consecutive
//! batches: a ring of up to 17 roots buffered one after another, wherever
//! it starts. Each batch is in two windows; its guards go after the
//! second is decided, so at most three batches' guards are held at once.
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
//! recorded a stale edge *into* `C` (traced before the window, its
//! guards gone, its handle dropped before `C`'s freeze); trial deletion neither
//! blames nor proposes a dead object (`trial`), so such an edge changes
//! nothing but the colour of the object that recorded it, which stays
//! what it would have been. An object of the batch after the window was
//! traced, its guards held, before the freeze: a handle to `C` in its
//! fields would have failed it. Nothing traced after the cut can find a
//! handle to `C`: none exists outside `C`'s fields, and `upgrade` of a
//! dead object fails.
//!
//! **Why it pays.** The members of a closed component are the 2-cycles,
//! self-loops and small rings whose roots were buffered together, in the
//! order a program dropped them: validation would lock and trace each of
//! them a second time (two locked RMWs and a trace per member of a
//! `Mutex` node), and group them into components first. A window with no
//! edge between its members (live roots, one link of a chain) costs one
//! test; others cost a pass over their members and the components' search
//! (bitmasks of at most 32 members).
//!
//! Guarded by the loom models `closed_batch_vs_move_out` (a handle moved
//! out of a member's field between pass 1's count and the freeze) and
//! `closed_batch_vs_upgrade` (a member upgraded while its window is
//! decided), by every model whose roots make a 2-cycle or a self-loop
//! (under loom a batch is one object, so every such window spans a batch
//! boundary), and by `closed_components_*` in `tests/single_thread.rs`.
//! `scripts/loom-teeth.sh` builds pass 1 letting go of a window's guards
//! before this step (`--cfg arcycle_broken_early`) and asserts that loom
//! then finds the use-after-free; step 4 here is `validate`'s own
//! function, whose break (`--cfg arcycle_broken`) the ABA model catches.

use super::discover::{Graph, PASS1_BATCH};
use super::validate::{freeze, mark_dead, unfreeze, verify};
use std::ops::Range;

/// The objects decided together: two consecutive pass-1 batches.
const WINDOW: usize = 2 * PASS1_BATCH;

/// A window's members fit the bits of a `u32`, and its positions a mask.
const _: () = assert!(WINDOW <= 32 && WINDOW.is_power_of_two());

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

/// A window's recorded edges, as [`Graph::decide_closed`] needs them:
/// filled by pass 1 as it records each member's edges, so that deciding
/// reads no edge table again (and a window with no edge between its
/// members, nothing at all).
pub(crate) struct BatchEdges {
    /// The window: `nodes[base..base + len]`.
    base: usize,
    len: usize,
    /// Edges into each member from the window.
    into: [u32; WINDOW],
    /// Each member's neighbours in the window, either direction (bits).
    near: [u32; WINDOW],
    /// Members that disqualify their component whatever the counts: with
    /// an edge out of the window, or decided already (bits).
    rejected: u32,
    /// Members with an edge to or from another member, or to themselves.
    linked: u32,
}

impl BatchEdges {
    pub(crate) fn new(window: Range<usize>) -> Self {
        debug_assert!(window.len() <= WINDOW);
        BatchEdges {
            base: window.start,
            len: window.len(),
            into: [0; WINDOW],
            near: [0; WINDOW],
            rejected: 0,
            linked: 0,
        }
    }

    /// Make this the empty table of `window`, in place.
    pub(crate) fn reset(&mut self, window: Range<usize>) {
        debug_assert!(window.len() <= WINDOW);
        self.base = window.start;
        self.len = window.len();
        self.into = [0; WINDOW];
        self.near = [0; WINDOW];
        self.rejected = 0;
        self.linked = 0;
    }

    /// Pass 1 recorded an edge from `nodes[from]` (a member) to
    /// `nodes[to]`.
    #[inline(always)]
    pub(crate) fn edge(&mut self, from: usize, to: u32) {
        debug_assert!((self.base..self.base + self.len).contains(&from));
        // Both positions are below `WINDOW`, a power of two: the masks
        // change nothing but let the compiler drop the bounds checks.
        let k = (from - self.base) & (WINDOW - 1);
        let t = (to as usize).wrapping_sub(self.base);
        if t < self.len {
            let t = t & (WINDOW - 1);
            self.into[t] += 1;
            self.near[k] |= 1 << t;
            self.near[t] |= 1 << k;
            self.linked |= 1 << k;
        } else {
            self.rejected |= 1 << k;
        }
    }

    /// `nodes[at]` was decided (in the window before): if it is a member,
    /// its component is done here too.
    #[inline]
    fn decided(&mut self, at: usize) {
        if let Some(k) = at.checked_sub(self.base).filter(|&k| k < self.len) {
            self.rejected |= 1 << k;
        }
    }
}

/// What deciding a window found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No edge between its members: nothing was looked at.
    Unlinked,
    /// Linked members, but no closed component was garbage.
    Nothing,
    /// Garbage, decided.
    Garbage,
}

/// Windows in a row that may find linked members and no garbage before
/// pass 1 stops recording for a while ([`Pacing`]).
const MISSES: u32 = 4;
/// Rounds pass 1 first stops recording for; doubled after each further
/// run of misses, up to [`MAX_PAUSE`].
const MIN_PAUSE: u32 = 4;
const MAX_PAUSE: u32 = 256;

/// When pass 1 records and decides windows. Recording costs two table
/// updates per edge and deciding a pass over the window, which pays off
/// only where closed components are: in a long ring of roots, say, every
/// window is linked and none is closed. After [`MISSES`] such windows in
/// a row, pass 1 stops recording for a pause, doubled each time up to
/// [`MAX_PAUSE`] rounds (about 4,000 objects), and starts again at once
/// when a window finds garbage. Pausing only sends components on to
/// validation, as a window never tried does: it decides nothing.
pub(crate) struct Pacing {
    on: bool,
    /// The last round recorded (the current window's first batch).
    recorded: bool,
    /// Rounds left in the pause.
    pause: u32,
    /// The next pause.
    next_pause: u32,
    misses: u32,
}

impl Pacing {
    pub(crate) fn new(on: bool) -> Self {
        Pacing {
            on,
            recorded: false,
            pause: 0,
            next_pause: MIN_PAUSE,
            misses: 0,
        }
    }

    /// This round: whether it records its batch's edges, and whether the
    /// window ending with that batch is then whole (its first batch was
    /// recorded too) and is decided.
    #[inline]
    pub(crate) fn round(&mut self) -> (bool, bool) {
        let record = self.on && self.pause == 0;
        self.pause = self.pause.saturating_sub(1);
        let decide = record && self.recorded;
        self.recorded = record;
        (record, decide)
    }

    /// What deciding this round's window found.
    #[inline]
    pub(crate) fn decided(&mut self, found: Found) {
        match found {
            Found::Unlinked => {}
            Found::Garbage => {
                self.misses = 0;
                self.next_pause = MIN_PAUSE;
            }
            Found::Nothing => {
                self.misses += 1;
                if self.misses == MISSES {
                    self.misses = 0;
                    self.pause = self.next_pause;
                    self.next_pause = (2 * self.next_pause).min(MAX_PAUSE);
                }
            }
        }
    }
}

/// The members `from` reaches by the window's edges in either direction
/// (`near`), `from` included: whole components.
fn spread(from: u32, near: &[u32; WINDOW]) -> u32 {
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

    /// Find the closed components of a window of two pass-1 batches (whose
    /// children are held, whose guards are not yet released; `e`, its
    /// recorded edges), and validate each at once (module
    /// docs); the garbage is marked `DEAD`, listed in `self.dead`, and
    /// rejected in the next window (`ahead`), which shares a batch.
    pub(crate) fn decide_closed(&mut self, e: &BatchEdges, ahead: &mut BatchEdges) -> Found {
        let (base, m) = (e.base, e.len);
        if e.linked == 0 {
            // No edge between members (live roots, a chain's one object):
            // only a lone self-loop could be garbage, and it is not there.
            return Found::Unlinked;
        }
        // The members that disqualify their component: busy, with an edge
        // out of the window, decided in the window before (its component,
        // which nothing else here touches, is done), or with a count its
        // edges from the window do not explain (b).
        // A rejected member spoils its whole component (a). The edges out
        // of the window first: in a chain of roots (a long ring's), they
        // spoil the whole window, and no count need be compared.
        let all = u32::MAX >> (32 - m);
        let mut spoiled = spread(e.rejected, &e.near);
        let mut rejected = 0;
        for k in Bits(!spoiled & all) {
            let v = &self.nodes[base + k];
            rejected |= u32::from(v.busy || v.rc != u64::from(e.into[k])) << k;
        }
        spoiled |= spread(rejected, &e.near);
        if spoiled == all {
            return Found::Nothing;
        }
        let mut found = Found::Nothing;
        let mut words = [0u64; WINDOW];
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
                    ahead.decided(base + k);
                    found = Found::Garbage;
                } else if words[k] != 0 {
                    unfreeze(v.node.header());
                }
            }
        }
        found
    }
}

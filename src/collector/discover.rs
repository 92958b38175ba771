//! Phase 1: take the roots and trace optimistically (phase 2, the
//! proposal, is `trial`).
//!
//! # Invariant: everything visited is held
//!
//! The collector reads an object's value only while it holds the object
//! (`HELD` in the strong word). A hold is taken
//!
//! * on a root, by one CAS that requires `ACTIVE` (the entry still stands
//!   for the object), a count above zero and the object not dead, and that
//!   also clears `ACTIVE` — so `get_mut`, which detaches an entry by
//!   clearing `ACTIVE` with a CAS on the same word, is ordered against it,
//!   and the drop protocol of `buffer` stays exact;
//! * on a child, *inside* its parent's trace, while the parent's field
//!   still holds the handle (and any lock guarding it is still held), so
//!   the child's count is above zero at that moment.
//!
//! A last drop that finds `HELD` leaves destruction to the collector, so a
//! held value stays valid until the collector lets go (`commit`).
//!
//! Pass 1 may read a value some time after taking the lock that guards it
//! (a batch of objects is locked first and their values read after, see
//! `trace::Deferred`): the guard stays in the object's tracer, so the value
//! stays protected until the object's children are held.
//!
//! Guarded by the loom model `trace_vs_take_and_drop_child` (a child's last
//! handle taken out of its parent's field and dropped while pass 1 runs;
//! under loom every batch defers its values);
//! `scripts/loom-teeth.sh` builds pass 1 letting go of the parent's guards
//! before the children's holds (`--cfg arcycle_broken_pipeline`) and
//! asserts that loom then finds the collector reading the freed child.
//!
//! A young collection (see `generations`) takes no hold on an old object
//! (`SURVIVOR`): an old root's entry is held over as it is (`ACTIVE` and
//! its unit kept), an old child is skipped as if external.
//!
//! # Pass 1 is only a proposal
//!
//! Pass 1 reads fields under `try_lock` and drops the guards after each
//! batch, and reads counts at a different moment than edges: what it sees
//! may be stale. That is fine — nothing it records frees anything. (The
//! one exception is a batch's closed components, which `early` freezes
//! and verifies before the batch's guards go, exactly as validation
//! would.) Its output is
//! the white set `W` of trial deletion (Bacon & Rajan's mark-gray / scan):
//! objects whose count seemed fully explained by edges from other visited
//! objects, and that no object with an outside reference seemed to reach.
//! Anything unsure (a lock that was taken, a panicking `Trace`, a count
//! lower than the edges seen) is treated as externally referenced: black.
//!
//! # User code is fenced
//!
//! Every call into user code made here — `Trace::trace`, the `Drop` of a
//! guard handed to `Tracer::hold`, the `Drop` of a panic payload — runs
//! under `catch_unwind`, so no panic can leave the locked phases with a
//! hold, a frozen word or a lock still taken; the first panic is resumed to
//! the caller of `collect()` after the collection. An object whose `Trace`
//! impl panicked is *quarantined*: reported once, never traced again (it
//! and what it reaches leak, as with an impl that under-reports), counted
//! in `Stats::quarantined`. Guarded by `tests/reliability.rs`.

use super::early::{BatchEdges, Pacing};
use super::prefetch::{prefetch_ahead, prefetch_all};
use crate::buffer::{self, Entry};
use crate::header::*;
use crate::trace::{HiddenEdge, Node, Tracer};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// A visited object.
pub(crate) struct Visited {
    pub(crate) node: Node,
    /// Its type code, which its word gives back when the hold ends (while
    /// held, the word's code field is this node's visit number + 1).
    pub(crate) code: u32,
    /// Its out-edges: `targets[first..first + len]`.
    pub(crate) first: u32,
    pub(crate) len: u32,
    /// Its trace could not see everything (lock taken, panic).
    pub(crate) busy: bool,
    /// Its strong count, read right after its trace (pass 1).
    pub(crate) rc: u64,
    /// Its pass-1 trace took no lock and saw everything: its edges live in
    /// immutable or set-once fields, so pass 2 can reuse them (see
    /// `validate`).
    pub(crate) lock_free: bool,
    /// It came from a root-buffer entry (taken by the hold, whose claim
    /// on the allocation the hold now is: `buffer`, invariant 1).
    pub(crate) root: bool,
    /// A root whose component failed validation: buffer it again.
    pub(crate) retry: bool,
    /// Its word had `SURVIVOR` when the hold was taken (a full collection
    /// only: a young one never holds an old object).
    pub(crate) old: bool,
    /// Validation found it garbage (`validate`, step 5).
    pub(crate) dead: bool,
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Visited>,
    pub(crate) targets: Vec<u32>,
    /// The header address of each edge's target, in `targets`' order: only
    /// ever prefetched ([`prefetch_children`]; the children's entries in
    /// `nodes` are as scattered as their headers), never dereferenced.
    pub(crate) addrs: Vec<usize>,
    /// Edges into each visited object from visited objects (pass 1), by
    /// index: a table of its own, 4 bytes per object, so that counting
    /// them from `targets` touches a tenth of the cache lines the visited
    /// table would.
    pub(crate) internal: Vec<u32>,
    /// The first panic of a user `Trace` impl, resumed after the collection.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// How many visited objects came from root-buffer entries.
    pub(crate) roots: usize,
    /// Record edges hidden from the collector (`debug::collect_with_report`
    /// only; `false` in every other collection).
    pub(crate) record_hidden: bool,
    /// With `record_hidden`: (from, edge) for every handle a derived
    /// `Trace` impl found behind a `std::sync::Arc` or a `#[trace(skip)]`
    /// field. Targets are compared by address only.
    pub(crate) hidden: Vec<(u32, HiddenEdge)>,
    /// A young collection: old objects are treated as externally held
    /// (see `generations`).
    pub(crate) young: bool,
    /// Young only: entries kept for the next full collection, each owning
    /// its unit (old roots here; survivors' entries are added by `commit`).
    pub(crate) held_over: Vec<Entry>,
    /// The garbage pass 1 found in closed components (`early`), in the
    /// order it was decided: marked `DEAD`, still held. Validation appends
    /// the rest (the collector's kept table, see `scratch`).
    pub(crate) dead: Vec<u32>,
}

/// What [`try_hold`] found.
enum Hold {
    /// This collection visited the object already: its visit number.
    Visited(u32),
    /// The hold is taken now (the object gets the next visit number); the
    /// word before, whose code field is the type code.
    Taken(u64),
    /// Dead, count zero, or (a root) no longer standing for its entry.
    No,
    /// A young collection found an old object: not held, not traced (a
    /// root's entry still stands for it, `ACTIVE` untouched).
    Old,
}

/// Objects pass 1 locks before it reads the values behind their locks
/// (see [`Graph::trace_all`]).
///
/// Under loom a batch is one object, so that the models' few objects are
/// spread over several batches: every window of `early` then spans a
/// batch boundary, and a batch's guards outlive two rounds.
pub(crate) const PASS1_BATCH: usize = if cfg!(arcycle_loom) { 1 } else { 16 };

/// Batches whose guards pass 1 may keep at once, each in a set of tracers
/// of its own: one being traced, one whose children are being held, and
/// the one before, whose window with it is being decided (see `early`).
const IN_FLIGHT: usize = 3;

/// The smallest batch whose values pass 1 defers: a narrower frontier (a
/// chain, a ring) has few misses to overlap, and pays only the deferral.
const DEFER_FROM: usize = 4;

/// Whether pass 1 defers the values of `batch`: a batch wide enough
/// ([`DEFER_FROM`]) whose objects are scattered in memory — most of them
/// more than a page from the one before. Objects in allocation order (the
/// roots of freshly dropped structures, say) sit side by side, and so do
/// their buffers: the hardware prefetcher fetches them ahead of the locks,
/// and deferring would only cost (about 45 instructions an object).
/// Loom and Miri run small graphs: there every batch defers, so that
/// their models and tests cover the deferred path.
#[inline]
fn defer_batch(batch: &[Visited]) -> bool {
    if cfg!(any(arcycle_loom, miri)) {
        return !batch.is_empty();
    }
    if batch.len() < DEFER_FROM {
        return false;
    }
    let far = batch
        .windows(2)
        .filter(|w| {
            let (a, b) = (w[0].node.header.addr().get(), w[1].node.header.addr().get());
            a.abs_diff(b) > 4096
        })
        .count();
    2 * far > batch.len()
}

/// The visit number a held word carries.
#[inline(always)]
fn visit_number(word: u64) -> u32 {
    type_code(word) - 1
}

/// Take the collector's hold on an object, unless this collection holds
/// it already, it is dead, (for a root) its count already reached zero, or
/// (in a `young` collection) it is old. The hold's CAS also writes
/// `next + 1` over the type code (see `header`), and for a root clears
/// `ACTIVE`.
fn try_hold(header: NonNull<Header>, root: bool, next: u32, young: bool) -> Hold {
    // SAFETY: the caller holds a claim (an entry's, or the parent's
    // field under the parent's guard, with the parent held).
    let h = unsafe { header.as_ref() };
    let mut s = h.strong.load(Relaxed);
    loop {
        if held_by_collection(s) {
            // Held, not dead: only the running collection holds objects
            // (an outer one, whose destructors run this nested one, holds
            // only dead ones), and only this thread writes the number.
            // A root seen here is a duplicate entry: it is only released
            // (`ACTIVE`, if set, belongs to a newer entry).
            return Hold::Visited(visit_number(s));
        }
        if root && s & ACTIVE == 0 {
            // The entry no longer stands for the object: a duplicate, or
            // detached by `get_mut` (which clears ACTIVE by CAS on this
            // word, so it and this hold are ordered).
            return Hold::No;
        }
        // A dead object can still be held — by an outer collection whose
        // destructors are running this (nested) one — so check DEAD first.
        // Count zero or dead: nothing to hold, and the word is left alone.
        // A root's `ACTIVE` stays: whoever gives back the strong side turns
        // it into this entry's unit (`buffer`, invariant 1), and the caller
        // gives that unit back, perhaps before it is added.
        if count(s) == 0 || s & DEAD != 0 {
            return Hold::No;
        }
        if young && s & SURVIVOR != 0 {
            // Only the collector sets SURVIVOR, so this read is stable for
            // the whole collection (see `generations`).
            return Hold::Old;
        }
        debug_assert!(s & (HELD | FROZEN) == 0, "object held twice");
        // A root's hold also clears `ACTIVE`: the entry is taken, and its
        // claim on the allocation becomes the hold.
        let new = with_code(s | HELD, next + 1);
        let new = if root { new & !ACTIVE } else { new };
        // Acquire: we are about to read the value; this synchronises with
        // the Release decrements and unlocks that published its contents
        // (the shard mutex or the parent's field already did for the
        // pointer itself).
        match h.strong.compare_exchange_weak(s, new, Acquire, Relaxed) {
            Ok(_) => return Hold::Taken(s),
            Err(x) => s = x,
        }
    }
}

/// The visit number of an object this collection holds, read from its
/// word; `None` if the collection never visited it.
///
/// # Safety
/// The caller holds a claim on the allocation.
#[inline]
pub(crate) unsafe fn visited(header: NonNull<Header>) -> Option<u32> {
    // Relaxed: only this thread writes visit numbers (see `try_hold`).
    // SAFETY: forwarded contract.
    let s = unsafe { header.as_ref() }.strong.load(Relaxed);
    held_by_collection(s).then(|| visit_number(s))
}

impl Graph {
    /// Record a newly held object; `word` is its strong word before the
    /// hold (it carries the type code).
    fn add(&mut self, header: NonNull<Header>, word: u64, root: bool) -> u32 {
        let i = self.nodes.len() as u32;
        self.nodes.push(Visited {
            node: Node::from_word(header, word),
            code: type_code(word),
            first: 0,
            len: 0,
            busy: false,
            rc: 0,
            lock_free: false,
            root,
            retry: false,
            old: word & SURVIVOR != 0,
            dead: false,
        });
        i
    }

    /// The next visit number. More than `u32::MAX - 1` objects in one
    /// collection would not fit the word's code field: that many objects
    /// need at least 64 GiB of headers alone.
    fn next_number(&self) -> u32 {
        let n = self.nodes.len();
        assert!(
            n < u32::MAX as usize - 1,
            "arcycle: more than 2^32 - 2 objects in one collection"
        );
        n as u32
    }

    /// Turn root-buffer entries into held roots.
    pub(crate) fn take_roots(&mut self, entries: &[Entry]) {
        // Most roots are distinct and most collections visit about as many
        // objects as roots: size the tables once.
        self.nodes.reserve(entries.len());
        self.targets.reserve(entries.len());
        self.addrs.reserve(entries.len());
        for (k, &e) in entries.iter().enumerate() {
            prefetch_ahead(entries, k, |e| e.0);
            // Only the entry that finds ACTIVE set stands for the object
            // (`try_hold` checks); a duplicate, or one detached by
            // `get_mut`, is just released.
            match try_hold(e.0, true, self.next_number(), self.young) {
                Hold::Taken(word) => {
                    // The entry's claim was the `ACTIVE` the hold cleared:
                    // the hold keeps the allocation now, and nothing is
                    // left to give back (`buffer`, invariant 1).
                    self.add(e.0, word, true);
                    self.roots += 1;
                }
                // Kept as it is (`ACTIVE` set) for the next full collection.
                Hold::Old => self.held_over.push(e),
                // A duplicate, a detached entry, or an object whose count
                // reached zero: its claim is an `ENTRY` unit (the other
                // entries' or the strong side's `ACTIVE` stand for the
                // rest, invariant 1).
                Hold::Visited(_) | Hold::No => buffer::release_entry(e.0),
            }
        }
    }

    /// Trace one held object into `tracer` and say whether it was busy: a
    /// lock it could not take, a quarantined object, or a panicking `Trace`
    /// impl (whose first payload is kept, to be resumed after the
    /// collection, and whose object is quarantined).
    ///
    /// # Safety
    /// `node` is held by this collection and its value outlives `tracer`.
    pub(crate) unsafe fn trace_held<'a>(&mut self, node: Node, tracer: &mut Tracer<'a>) -> bool {
        tracer.busy = false;
        if super::is_quarantined(node) {
            return true;
        }
        let traced = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: forwarded contract.
            unsafe { (node.vtable.trace)(node.header, tracer) }
        }));
        if let Err(payload) = traced {
            self.trace_panicked(node, tracer, payload);
        }
        tracer.busy
    }

    /// After `node`'s `Trace` (at once or deferred) panicked into
    /// `tracer`: quarantine the object, keep the first panic for the
    /// caller, make the object busy, and read none of its values again.
    fn trace_panicked(
        &mut self,
        node: Node,
        tracer: &mut Tracer<'_>,
        payload: Box<dyn Any + Send>,
    ) {
        super::quarantine(node);
        super::keep_panic(&mut self.panic, payload);
        tracer.busy = true;
        tracer.deferred.clear();
    }

    /// The rest of [`trace_held`](Graph::trace_held) in a tracer that
    /// defers: trace the values behind the locks it took. Returns whether
    /// the object is busy; a panic quarantines it, as there.
    fn trace_deferred(&mut self, node: Node, tracer: &mut Tracer<'_>) -> bool {
        if !tracer.deferred.is_empty() {
            let traced = catch_unwind(AssertUnwindSafe(|| tracer.run_deferred()));
            if let Err(payload) = traced {
                self.trace_panicked(node, tracer, payload);
            }
        }
        tracer.busy
    }

    /// Drop every guard `tracer` holds, most recent first, each under
    /// `catch_unwind`: a guard whose `Drop` panics neither skips the others
    /// nor unwinds out of the collector. Returns whether one panicked.
    pub(crate) fn release_guards(&mut self, tracer: &mut Tracer<'_>) -> bool {
        let mut panicked = false;
        // One `catch_unwind` for the whole batch: a guard that panics was
        // popped already, so the next round goes on with the rest.
        while !tracer.guards.is_empty() {
            let guards = &mut tracer.guards;
            let run = catch_unwind(AssertUnwindSafe(|| {
                while let Some(guard) = guards.pop() {
                    drop(guard);
                }
            }));
            if let Err(payload) = run {
                super::keep_panic(&mut self.panic, payload);
                panicked = true;
            }
        }
        panicked
    }

    /// Pass 1: trace every held object, holding each new child.
    ///
    /// Pipelined one batch of up to [`PASS1_BATCH`] objects deep, in three
    /// steps per round:
    ///
    /// 1. each object of the batch is traced with its values behind locks
    ///    deferred (see `trace::Deferred`): its locks are taken, nothing
    ///    behind them is read yet;
    /// 2. the deferred values are traced, with no locked RMW between them,
    ///    so their cache misses (a `Vec`'s buffer, typically) overlap, and
    ///    the children's headers are prefetched;
    /// 3. the children of the *previous* batch are held, so each child's
    ///    miss overlapped a round of tracing instead of waiting behind the
    ///    hold before it (a hold is a locked RMW, which no later load
    ///    passes on x86); then that batch's closed components are frozen,
    ///    verified and decided (`early`), and its guards released.
    ///
    /// Each object in flight has its own tracer, which keeps its guards
    /// until its whole batch's children are held and the batch decided: a
    /// child's handle stays in its parent's field while the hold is taken
    /// (see the module docs), and a closed component's fields stay frozen
    /// until its decision (see `early`). Three batches' guards at once (48
    /// objects) are fewer than validation keeps for a batch (64).
    pub(crate) fn trace_all(&mut self) {
        // Tracers for the whole pass, a set per batch in flight (see
        // `IN_FLIGHT`): their buffers are reused, and the values they
        // borrow are all held until the collection ends.
        let mut sets: [[Tracer<'_>; PASS1_BATCH]; IN_FLIGHT] = std::array::from_fn(|_| {
            std::array::from_fn(|_| {
                let mut t = Tracer::new();
                t.hidden = self.record_hidden.then(Vec::new);
                t
            })
        });
        // The set of the batch being traced, of `traced` and of `before`
        // (below): they turn round, a batch keeping its set until its
        // guards are let go.
        let (mut set_batch, mut set_traced, mut set_before) = (0, 1, 2);
        let mut pacing = Pacing::new(self.early());
        let mut next = 0;
        // The batch traced last, whose children are still to hold, and
        // the one before, whose guards are kept until the window of both
        // is decided (`early`): a component is decided whole if it lies
        // within two consecutive batches.
        let mut traced = 0..0;
        let mut before = 0..0;
        // That window's edges (those of `before` recorded last round), and
        // the next one's: two tables used in turn, reset in place.
        let mut windows = [BatchEdges::new(0..0), BatchEdges::new(0..0)];
        let mut turn = 0;
        loop {
            let batch = next..self.nodes.len().min(next + PASS1_BATCH);
            next = batch.end;
            let defer = defer_batch(&self.nodes[batch.clone()]);
            for (k, i) in batch.clone().enumerate() {
                prefetch_ahead(&self.nodes, i, |v| v.node.header);
                let node = self.nodes[i].node;
                let tracer = &mut sets[set_batch][k];
                tracer.defer = defer;
                // SAFETY: the object is held: its value stays alive until
                // the collector lets go, after these tracers are gone.
                self.nodes[i].busy = unsafe { self.trace_held(node, tracer) };
            }
            for (k, i) in batch.clone().enumerate() {
                let node = self.nodes[i].node;
                let tracer = &mut sets[set_batch][k];
                if self.trace_deferred(node, tracer) {
                    self.nodes[i].busy = true;
                }
                // loom-tests teeth: the broken build lets go of the
                // object's guards before its children are held (and keeps
                // `lock_free` false, so only the pipeline is broken).
                #[cfg(arcycle_broken_pipeline)]
                {
                    tracer.busy |= !tracer.guards.is_empty();
                    self.release_guards(tracer);
                }
                prefetch_all(&tracer.edges);
            }
            // The next window: `traced` and the batch just traced.
            let [window, ahead] = if turn == 0 {
                let [a, b] = &mut windows;
                [a, b]
            } else {
                let [a, b] = &mut windows;
                [b, a]
            };
            // Whether this round records `traced`'s edges, and whether the
            // window (`before` and `traced`) was recorded whole, both
            // batches, and can be decided.
            let (record, decide) = pacing.round();
            if record {
                ahead.reset(traced.start..batch.end);
            }
            let mut both = [&mut *window, &mut *ahead];
            let tables = match (record, decide) {
                (true, true) => &mut both[..],
                (true, false) => &mut both[1..],
                (false, _) => &mut both[..0],
            };
            for (k, i) in traced.clone().enumerate() {
                self.hold_children(i, &mut sets[set_traced][k], tables);
            }
            // loom-tests teeth: the broken build lets go of the window's
            // guards before its closed components are decided.
            #[cfg(arcycle_broken_early)]
            for set in [set_before, set_traced] {
                for tracer in &mut sets[set] {
                    self.release_guards(tracer);
                }
            }
            // Every guard of the window is still held: its closed
            // components can be validated at once (`early`).
            if decide {
                let found = self.decide_closed(window, ahead);
                pacing.decided(found);
            }
            for (k, i) in before.enumerate() {
                self.let_go(i, &mut sets[set_before][k]);
            }
            let done = batch.is_empty() && next == self.nodes.len();
            before = traced;
            traced = batch;
            turn ^= 1;
            (set_batch, set_traced, set_before) = (set_before, set_batch, set_traced);
            if done {
                break;
            }
        }
        // The last batch whose children were held: every window it was in
        // is decided.
        for (k, i) in before.enumerate() {
            self.let_go(i, &mut sets[set_before][k]);
        }
        // Internal edges, counted from the edge table in a pass of their
        // own: in the loop above each `+= 1` on a random visited object
        // waited behind a hold's locked RMW, a cache miss per edge in a
        // large graph; here nothing orders them, so the misses overlap.
        self.internal.clear();
        self.internal.resize(self.nodes.len(), 0);
        for &j in &self.targets {
            self.internal[j as usize] += 1;
        }
    }

    /// The second half of pass 1 for object `i`, traced into `tracer`:
    /// hold its children, record its edges (in the tables, and in the two
    /// windows of `early` it belongs to) and count. Its guards stay in
    /// `tracer` ([`let_go`](Graph::let_go) releases them).
    fn hold_children(
        &mut self,
        i: usize,
        tracer: &mut Tracer<'_>,
        windows: &mut [&mut BatchEdges],
    ) {
        let node = self.nodes[i].node;
        if let Some(hidden) = tracer.hidden.as_mut() {
            let from = i as u32;
            self.hidden.extend(hidden.drain(..).map(|e| (from, e)));
        }
        let first = self.targets.len() as u32;
        for child in tracer.edges.drain(..) {
            // The guard that protects the parent's field is still in
            // `tracer`, so the child's handle is still there.
            let j = match try_hold(child, false, self.next_number(), self.young) {
                Hold::Visited(j) => j,
                Hold::Taken(word) => self.add(child, word, false),
                // Dead (a destructor stashed it), or old in a young
                // collection: treated as external, the safe direction.
                Hold::No | Hold::Old => continue,
            };
            self.targets.push(j);
            self.addrs.push(child.as_ptr() as usize);
            for w in windows.iter_mut() {
                w.edge(i, j);
            }
        }
        let v = &mut self.nodes[i];
        v.first = first;
        v.len = self.targets.len() as u32 - first;
        // Pass 1 is a proposal, so reading counts at different moments is
        // fine (see above).
        v.rc = count(node.header().strong.load(Acquire));
        v.lock_free = !tracer.busy && tracer.guards.is_empty();
    }

    /// The end of pass 1 for object `i`: release the guards its trace
    /// took, which `tracer` kept until its batch was decided. A guard that
    /// panics on drop makes its object quarantined (it would panic in
    /// every collection) and busy — unless it is garbage already, whose
    /// guards `validate` too releases after the decision.
    fn let_go(&mut self, i: usize, tracer: &mut Tracer<'_>) {
        if self.release_guards(tracer) && !self.nodes[i].dead {
            super::quarantine(self.nodes[i].node);
            self.nodes[i].busy = true;
        }
    }
}

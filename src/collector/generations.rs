//! Young collections: collection cost that grows with new objects, not
//! with the live heap.
//!
//! Trial deletion re-traces every live object a buffered root reaches, so
//! a program with a big, long-lived graph whose nodes keep being buffered
//! (a clone and a drop of a handle to one is enough) would pay for the
//! whole graph in every collection. Objects that survived a collection are
//! *old* (`SURVIVOR` in their strong word, set by the collector in the RMW
//! that lets go of them; see `header`). A *young* collection treats every
//! old object as externally held:
//!
//! * a buffered root that is old is not taken: its entry is **held over**
//!   as it is (its `ACTIVE` flag, and with it the entry's claim on the
//!   allocation, kept: see `buffer`, invariant 1) in a list only
//!   collectors touch;
//! * an old child is not held and not traced, and the edge to it is not
//!   counted as internal.
//!
//! # Invariants
//!
//! 1. **Old is the safe direction.** Leaving old objects out of the graph
//!    only removes internal edges: a young object an old one refers to
//!    keeps a count its visited parents do not explain, so it is black.
//!    Freeze and verify (`validate`) are unchanged and need nothing from
//!    the rest of the graph: they check that each member's count is
//!    exactly what the other members explain.
//! 2. **No garbage is lost, only delayed.** A garbage cycle through an old
//!    object is not freed by a young collection, so every entry a young
//!    collection does not settle is kept for the next *full* one: old roots
//!    are held over untouched, and a young root that survives (its count
//!    may be held by an old member of a garbage cycle that will see no
//!    more decrements) gets `ACTIVE` back and is held over too, unless
//!    another entry stands for it already. While a held-over entry keeps
//!    `ACTIVE`, `buffer`'s invariant 2 holds unchanged: a drop that saw it
//!    set does not buffer, and the full collection's hold, later on the
//!    same word, reads that decrement.
//! 3. **Full collections come.** `collect()` and quiet passes are always
//!    full (so `collect()` still frees every cycle that was garbage when it
//!    was called); an automatic collection is full once the held-over
//!    entries reach the estimated old heap (and at least the threshold),
//!    which both bounds the list and pays for each full trace with as many
//!    buffered old roots — at most one traced object per buffered old root
//!    (before young collections, a threshold that adapted to the live
//!    objects the last collection traced gave the same bound). The estimate
//!    is the larger of two counts. One is what the last *representative*
//!    full collection traced live: one that took at least half as many
//!    roots as the estimate, or traced more than it (a full collection of a
//!    small buffer traces little of a big heap and says nothing about its
//!    size). The other is the old objects alive: those collections made
//!    old, less those whose strong side has been given back since (each
//!    thread reports the latter in batches of [`OLD_FREED_BATCH`], so it
//!    errs high by less than that per thread). The first alone undercounts
//!    a heap whose roots reach little of it (objects touched at random,
//!    each buffered on its own): full collections then came every
//!    threshold's worth of held-over roots and took them all, so nearly
//!    every touch of an old object buffered it again and had it traced. The
//!    price is on garbage through old objects, which waits for a full
//!    collection: its roots are among the held-over ones, so it waits until
//!    they number as many as the old objects alive (or for a quiet pass, or
//!    `collect()`), where a heap whose full collections traced little had
//!    it freed sooner. A held-over entry keeps its allocation (not its
//!    value) until a full collection, so memory kept that way is bounded by
//!    the estimate too: the live objects of a past full collection, or the
//!    old objects alive. Held-over entries count as buffered for the
//!    collector thread, so an idle program gets its quiet pass.
//!
//! Guarded by the loom model `young_collection_holds_over_survivors` (with
//! teeth: `--cfg arcycle_broken_generations` drops the holding over of
//! young survivors, and the model's garbage cycle through an old object
//! is never freed) and by `tests/generations.rs`.

use crate::buffer::{self, Entry};
use crate::sync::{lock, AtomicUsize, Mutex};
use std::sync::atomic::Ordering::*;

struct State {
    /// Entries held over by young collections, each with its claim on
    /// its allocation (`buffer`, invariant 1); taken by the next full
    /// collection.
    held: Mutex<Vec<Entry>>,
    /// `held.len()`, readable without the lock.
    held_len: AtomicUsize,
    /// The size of the old heap as full collections saw it (invariant 3).
    old_estimate: AtomicUsize,
    /// Objects young collections found live (so made old) since
    /// `old_estimate` was last set: with it, the live heap's estimate
    /// that paces automatic collections (see [`heap_estimate`]).
    young_survivors: AtomicUsize,
    /// Objects collections made old, ever (see [`old_alive`]).
    made_old: std::sync::atomic::AtomicUsize,
    /// Old objects whose strong side was given back, ever, as the threads
    /// have reported them so far (see [`note_old_freed`]).
    old_freed: std::sync::atomic::AtomicUsize,
}

macro_rules! state_init {
    () => {
        State {
            held: Mutex::new(Vec::new()),
            held_len: AtomicUsize::new(0),
            old_estimate: AtomicUsize::new(0),
            young_survivors: AtomicUsize::new(0),
            made_old: std::sync::atomic::AtomicUsize::new(0),
            old_freed: std::sync::atomic::AtomicUsize::new(0),
        }
    };
}

#[cfg(not(arcycle_loom))]
static STATE: State = state_init!();

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref STATE: State = state_init!();
}

fn state() -> &'static State {
    &STATE
}

/// Entries held over, waiting for a full collection.
pub(crate) fn held() -> usize {
    // Relaxed: a count for statistics and for the collector's own policy
    // (written under the collector lock).
    state().held_len.load(Relaxed)
}

/// Whether an automatic collection should be full: the held-over entries
/// reached the estimated old heap, and at least `threshold` (invariant 3).
pub(crate) fn full_due(threshold: usize) -> bool {
    let s = state();
    held() >= threshold.max(s.old_estimate.load(Relaxed)).max(old_alive())
}

/// Old objects alive, as far as the counts tell: made old by collections,
/// less those whose strong side was given back (what the threads have
/// reported). Errs high by the reports not yet made (fewer than
/// [`OLD_FREED_BATCH`] per thread). Always 0 under loom, where the
/// collector's policy never looks at the heap (see `settings`).
pub(crate) fn old_alive() -> usize {
    let s = state();
    // Relaxed, both: counts for the collector's policy. The subtraction
    // saturates: a thread's report can land before the collection that
    // made those objects old has added them.
    s.made_old
        .load(Relaxed)
        .saturating_sub(s.old_freed.load(Relaxed))
}

/// A collection let go of `n` survivors that were young: they are old now.
pub(crate) fn note_made_old(n: usize) {
    if cfg!(arcycle_loom) || n == 0 {
        return;
    }
    // Relaxed: a count (see `old_alive`).
    state().made_old.fetch_add(n, Relaxed);
}

/// How many frees of old objects a thread counts before it reports them
/// (one RMW on a shared counter per batch, none per free).
pub(crate) const OLD_FREED_BATCH: usize = 64;

#[cfg(not(arcycle_loom))]
struct OldFreed(std::cell::Cell<usize>);

#[cfg(not(arcycle_loom))]
impl Drop for OldFreed {
    /// A thread that ends reports what it counted.
    fn drop(&mut self) {
        let n = self.0.get();
        if n > 0 {
            state().old_freed.fetch_add(n, Relaxed);
        }
    }
}

#[cfg(not(arcycle_loom))]
std::thread_local! {
    static OLD_FREED: OldFreed = const { OldFreed(std::cell::Cell::new(0)) };
}

/// The strong side of an old object was given back (its value is gone):
/// count it, and report every [`OLD_FREED_BATCH`]-th (at once if this
/// thread's locals are being torn down). Nothing under loom. Out of line:
/// the last drop of a young object, which only tests the bit, stays small.
#[inline(never)]
pub(crate) fn note_old_freed() {
    #[cfg(not(arcycle_loom))]
    {
        let report = OLD_FREED.try_with(|c| {
            let n = c.0.get() + 1;
            if n < OLD_FREED_BATCH {
                c.0.set(n);
                0
            } else {
                c.0.set(0);
                n
            }
        });
        let n = report.unwrap_or(1);
        if n > 0 {
            // Relaxed: a count (see `old_alive`).
            state().old_freed.fetch_add(n, Relaxed);
        }
    }
}

/// For a full collection: take every held-over entry.
pub(crate) fn take_held() -> Vec<Entry> {
    let s = state();
    if held() == 0 {
        return Vec::new();
    }
    let taken = std::mem::take(&mut *lock(&s.held));
    s.held_len.store(0, Relaxed);
    taken
}

/// After a collection: keep what a young one held over; update the old
/// heap's estimate from what a representative full one traced (`roots`:
/// the distinct roots it took; invariant 3), and the live heap's from what
/// a young one found live.
pub(crate) fn finish(young: bool, held_over: Vec<Entry>, live_traced: usize, roots: usize) {
    let s = state();
    let estimate = s.old_estimate.load(Relaxed);
    // Relaxed, both: only collections write them, under the collector
    // lock, and readers take them as estimates.
    if young {
        let young = s.young_survivors.load(Relaxed);
        s.young_survivors
            .store(young.saturating_add(live_traced), Relaxed);
    } else if roots >= estimate / 2 || live_traced > estimate {
        s.old_estimate.store(live_traced, Relaxed);
        s.young_survivors.store(0, Relaxed);
    }
    if held_over.is_empty() {
        return;
    }
    let mut held = lock(&s.held);
    held.extend(held_over);
    s.held_len.store(held.len(), Relaxed);
}

/// The live heap as collections saw it: what the last representative full
/// collection found live, plus what young collections found live since
/// (every object they trace is young, so each survivor is new to the
/// estimate). Objects freed by counting are not subtracted until the next
/// representative full collection, so the estimate errs high; it starts
/// at 0. It scales the automatic trigger (see
/// [`set_heap_fraction`](crate::set_heap_fraction)).
pub(crate) fn heap_estimate() -> usize {
    let s = state();
    s.old_estimate
        .load(Relaxed)
        .saturating_add(s.young_survivors.load(Relaxed))
}

/// Entries buffered and not yet settled: the root buffer's and the
/// held-over ones.
pub(crate) fn pending_total() -> usize {
    buffer::pending() + held()
}

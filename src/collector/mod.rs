//! The cycle collector: one synchronous trial-deletion pass at a time,
//! while every other thread runs on.
//!
//! A collection is four phases, one file each (plus `early`, validation
//! done inside the first phase where it can be, `worker`, the
//! collector thread that runs automatic collections in background mode,
//! `pace`, which makes allocations wait for that thread when it falls a
//! whole threshold behind, `owner`, which says which thread is collecting
//! (and so who must not wait for whom), `generations`, which lets
//! automatic collections leave old objects alone, `callbacks`, the user's
//! start/stop hooks, `settings`, the knobs and counters, `panics`, what
//! happens to user code's panics, and `scratch`, the tables one
//! collection leaves to the next):
//!
//! | phase | file | what it establishes |
//! |---|---|---|
//! | take roots, trace | [`discover`] | every visited object is *held*: its value cannot be destroyed under the collector |
//! | (inside tracing) | [`early`] | a batch's closed components frozen and verified with the guards its trace took: garbage decided without a second trace |
//! | trial deletion | [`trial`] | a proposal `W`: objects whose whole count seemed internal and that nothing external seemed to reach |
//! | freeze and verify | [`validate`] | an instant at which every object of `W` had exactly its traced internal count while `W`'s fields could not change: `W` was unreachable then, so forever |
//! | commit | [`commit`] | `W` is marked dead and its locks released; every other hold is released; then `W`'s values are dropped and only after all of them its allocations freed |
//!
//! Each collection times its phases (`PhaseTimes`, in `CollectInfo` and
//! summed in `Stats`), with one clock reading between phases and nothing
//! on any mutator path.
//!
//! The collector lock serialises collections, destructors included, so a
//! `collect()` that had to wait returns only after the garbage of the
//! collection it waited for is gone. A destructor that calls `collect()`
//! runs a nested collection on the same thread (the `OWNER` flag). No
//! mutator operation takes the collector lock: `get_mut`, `try_unwrap` and
//! `Weak::upgrade` wait only on flags of the very object they touch, and
//! the collector never *blocks* on anything a mutator can hold (user locks
//! are only try-locked).
//!
//! # Automatic collections
//!
//! `maybe_auto_collect` is the mutators' entry: one relaxed load of the
//! trigger on `Cc::new` and after a buffering drop. When the trigger is
//! set, in background mode (the default) the cold path only signals the
//! collector thread (`worker`), and an allocation (never a drop) that
//! finds it a whole threshold behind a running collection waits for that
//! collection, up to the pace limit (`pace`); inline mode
//! (`set_background(false)`, and the default under loom and Miri) collects
//! right there, as before, if nobody else is collecting.

pub(crate) mod callbacks;
pub(crate) mod commit;
pub(crate) mod discover;
pub(crate) mod early;
pub(crate) mod generations;
pub(crate) mod owner;
pub(crate) mod pace;
pub(crate) mod panics;
pub(crate) mod prefetch;
pub(crate) mod scratch;
pub(crate) mod settings;
pub(crate) mod trial;
pub(crate) mod validate;
pub(crate) mod worker;

pub use callbacks::{
    add_callback, remove_callback, CallbackId, CollectEvent, CollectInfo, PhaseTimes,
};
use owner::{forbid_reentry, in_collector, Depth, InCollector, Owner};
pub(crate) use owner::{may_wait_for_hold, owns_collector, wait_for_hold};
pub use pace::{pace_limit, set_pace_limit};
pub(crate) use panics::{
    drop_payload, is_quarantined, keep_panic, quarantine, report_panic, sweep_quarantine,
};
pub use settings::{
    disable, enable, heap_fraction, is_background, is_enabled, quiet_period, set_background,
    set_heap_fraction, set_quiet_period, set_threshold, stats, threshold, Stats,
    DEFAULT_HEAP_FRACTION, DEFAULT_THRESHOLD, MIN_TRIGGER,
};

use crate::buffer;
use crate::sync::{lock, try_lock, AtomicBool, AtomicU64, AtomicUsize, Mutex};
use crate::trace::Node;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::*;
use std::time::Instant;

/// Background mode is the default, except under loom (which cannot run a
/// free-running thread) and Miri (which reports a thread still running at
/// exit as a leak).
const DEFAULT_BACKGROUND: bool = !cfg!(any(arcycle_loom, miri));

struct Control {
    /// Serialises collections.
    collector: Mutex<()>,
    enabled: AtomicBool,
    /// Automatic collections run on the collector thread (`worker`).
    background: AtomicBool,
    /// Set when enough roots are pending; checked by `Cc::new`.
    trigger: AtomicBool,
    /// The user's threshold.
    threshold: AtomicUsize,
    /// The user's heap fraction (`f64` bits; see `settings`).
    heap_fraction: AtomicU64,
    /// `max(MIN_TRIGGER, heap_fraction × heap estimate)`: the trigger's
    /// bound from the heap, refreshed under `heap_trigger_lock` after each
    /// collection and by `set_heap_fraction` (never under loom: there it
    /// stays `usize::MAX` and the threshold alone triggers).
    heap_trigger: AtomicUsize,
    #[cfg(not(arcycle_loom))]
    heap_trigger_lock: Mutex<()>,
    collections: AtomicU64,
    freed: AtomicU64,
    aborted: AtomicU64,
    last_pause_ns: AtomicU64,
    longest_pause_ns: AtomicU64,
    total_pause_ns: AtomicU64,
    traced: AtomicU64,
    /// Every collection's phase times, summed (ns; see `PhaseTimes`).
    phase_ns: [AtomicU64; 6],
    automatic: AtomicU64,
    roots: AtomicU64,
    young: AtomicU64,
    worker: worker::Worker,
    pace: pace::Pace,
    callbacks: callbacks::Registry,
    /// Objects whose `Trace` impl panicked, by header address; each entry
    /// owns one entry unit of the weak word, so the address is not reused
    /// while it is listed. Only the collecting thread touches it.
    quarantine: Mutex<BTreeMap<usize, Node>>,
    /// `quarantine.len()`, readable without the lock.
    quarantined: AtomicUsize,
}

macro_rules! control_init {
    () => {
        Control {
            collector: Mutex::new(()),
            enabled: AtomicBool::new(true),
            background: AtomicBool::new(DEFAULT_BACKGROUND),
            trigger: AtomicBool::new(false),
            threshold: AtomicUsize::new(DEFAULT_THRESHOLD),
            heap_fraction: AtomicU64::new(settings::DEFAULT_HEAP_FRACTION.to_bits()),
            heap_trigger: AtomicUsize::new(settings::INITIAL_HEAP_TRIGGER),
            #[cfg(not(arcycle_loom))]
            heap_trigger_lock: Mutex::new(()),
            collections: AtomicU64::new(0),
            freed: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            last_pause_ns: AtomicU64::new(0),
            longest_pause_ns: AtomicU64::new(0),
            total_pause_ns: AtomicU64::new(0),
            traced: AtomicU64::new(0),
            phase_ns: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
            automatic: AtomicU64::new(0),
            roots: AtomicU64::new(0),
            young: AtomicU64::new(0),
            worker: worker::worker_init!(),
            pace: pace::pace_init!(),
            callbacks: callbacks::Registry {
                list: Mutex::new(Vec::new()),
                len: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
            },
            quarantine: Mutex::new(BTreeMap::new()),
            quarantined: AtomicUsize::new(0),
        }
    };
}

#[cfg(not(arcycle_loom))]
static CONTROL: Control = control_init!();

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref CONTROL: Control = control_init!();
}

fn control() -> &'static Control {
    &CONTROL
}

/// Collect every garbage cycle among the possible roots buffered before
/// this call (by any thread), and return how many objects were freed.
///
/// Other threads keep running; only this thread does the work. If another
/// collection is in progress (destructors included), this waits for it and
/// then runs its own, so when it returns every garbage cycle that was
/// unreachable when it was called has been destroyed. Destructors of the
/// freed objects run on this thread; they may create, drop and collect (a
/// `collect()` from such a destructor runs a nested collection at once).
/// A destructor run by the collector must not *wait for another thread*
/// that calls `collect()`: that thread waits for this collection.
///
/// A `collect()` called *from such a destructor* runs a nested collection
/// at once and returns when that one is done — before the outer
/// collection's remaining garbage has been destroyed (the outer collection
/// is still destroying it, on this very thread, around the call).
///
/// Every cycle that was garbage when `collect()` was called is freed by it,
/// however large, whatever other threads do to unrelated objects. Objects
/// in use at that moment (a lock of theirs taken, a `Weak` being upgraded)
/// and objects whose `Trace` impl panicked (see [`Stats::quarantined`])
/// may be kept for a later collection.
///
/// # Panics
///
/// If a `Drop` or `Trace` impl (or a guard a `Trace` impl handed over)
/// panicked during the collection, the first such panic is resumed here —
/// after the collection has released everything it held and freed
/// everything else it found. Also panics if called from inside a `Trace`
/// impl.
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Option<Cc<Node>>>);
///
/// let a = Cc::new(Node(Mutex::new(None)));
/// let b = Cc::new(Node(Mutex::new(Some(a.clone()))));
/// *a.0.lock().unwrap() = Some(b.clone());
/// drop((a, b));
/// assert!(arcycle::collect() >= 2);
/// ```
pub fn collect() -> usize {
    collect_explicit(None)
}

/// `collect()`, optionally recording a leak report.
pub(crate) fn collect_explicit(record: Option<&mut crate::debug::Recorder>) -> usize {
    forbid_reentry("arcycle::collect()");
    collect_kind(Kind::Explicit, record)
}

/// Run a collection of `kind` on this thread, waiting for the collector
/// lock unless this thread holds it already.
fn collect_kind(kind: Kind, record: Option<&mut crate::debug::Recorder>) -> usize {
    if owns_collector() {
        // Called by a destructor (or callback) this thread's collection is
        // running: the outer collection is past its locked phases (or has
        // not started them), so a nested one is safe, and waiting for the
        // lock would wait for ourselves.
        return run(kind, record);
    }
    let _owner = Owner::new(lock(&control().collector));
    run(kind, record)
}

/// Collect the garbage cycles made only of *young* objects — those that
/// have not survived a collection yet — among the possible roots buffered
/// before this call, and return how many objects were freed.
///
/// Cheaper than [`collect`] when the program keeps a big, long-lived graph:
/// objects that survived an earlier collection are treated as externally
/// held, so the live graph is not traced again (Python's
/// `gc.collect(0)` plays the same part). A garbage cycle that goes through
/// an old object is left for the next full collection: its buffered
/// roots are held over (they stay in [`Stats::roots_buffered`]), and
/// [`collect`], a quiet pass of the collector thread, or an automatic
/// collection once enough of them have piled up frees it. Automatic
/// collections are young ones whenever a full one is not due.
///
/// Runs on this thread and waits for a collection in progress, exactly as
/// [`collect`] does, and panics as it does.
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Vec<Cc<Node>>>);
///
/// let old = Cc::new(Node(Mutex::new(Vec::new())));
/// drop(old.clone()); // buffered, then survives a collection: old
/// arcycle::collect();
///
/// // A young cycle: freed by a young collection.
/// let a = Cc::new(Node(Mutex::new(Vec::new())));
/// a.0.lock().unwrap().push(a.clone());
/// drop(a);
/// assert!(arcycle::collect_young() >= 1);
///
/// // A cycle through the old object: left for a full collection.
/// let b = Cc::new(Node(Mutex::new(vec![old.clone()])));
/// old.0.lock().unwrap().push(b.clone());
/// drop((old, b));
/// let before = arcycle::stats().freed;
/// arcycle::collect_young();
/// arcycle::collect();
/// assert!(arcycle::stats().freed >= before + 2);
/// ```
pub fn collect_young() -> usize {
    forbid_reentry("arcycle::collect_young()");
    collect_kind(Kind::Young, None)
}

/// Run an automatic collection if the trigger is set and nobody else is
/// collecting.
#[inline(always)]
pub(crate) fn maybe_auto_collect() {
    if control().trigger.load(Relaxed) {
        auto_collect(true);
    }
}

/// [`maybe_auto_collect`] for a drop that buffered a root: the same, but
/// it never waits for the collector thread (see `pace`).
#[inline(always)]
pub(crate) fn maybe_auto_collect_after_drop() {
    if control().trigger.load(Relaxed) {
        auto_collect(false);
    }
}

#[cold]
#[inline(never)]
fn auto_collect(allocating: bool) {
    let c = control();
    if in_collector() || !c.enabled.load(Relaxed) {
        return;
    }
    if owns_collector() {
        // A destructor or callback of this thread's collection crossed the
        // threshold: collect nested, here, whatever the mode.
        run(Kind::Automatic, None);
        return;
    }
    // Relaxed: a switch; a stale read runs one collection in the old mode.
    if c.background.load(Relaxed) && worker::wake() {
        if allocating {
            pace::maybe_wait();
        }
        return;
    }
    if let Some(guard) = try_lock(&c.collector) {
        // Never wait: someone else collecting will handle the pending roots.
        let _owner = Owner::new(guard);
        run(Kind::Automatic, None);
    }
}

/// Called after each push with what the pushing thread sees pending: the
/// shards' entries and its own ring's (see `buffer::push`).
pub(crate) fn note_pending(pending: usize) {
    let c = control();
    if pending >= settings::trigger() && c.enabled.load(Relaxed) && !c.trigger.load(Relaxed) {
        c.trigger.store(true, Relaxed);
    } else if pending == 1 && c.background.load(Relaxed) && c.enabled.load(Relaxed) {
        // The shards and this thread's ring were empty, so the buffer may
        // have been: let the collector thread time a quiet period for it
        // (see `worker`). A push that takes the whole buffer from empty to
        // one entry always comes here (it is its ring's only entry, and
        // the shards are empty); another thread's first push since a
        // collection may come here too, which costs a fence.
        worker::note_first_root();
    }
}

/// What started a collection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `collect()` (or `debug::collect_with_report`).
    Explicit,
    /// The threshold, inline or on the collector thread.
    Automatic,
    /// A quiet-period pass of the collector thread.
    Quiet,
    /// `collect_young()`.
    Young,
}

/// One collection; the caller owns the collector lock.
fn run(kind: Kind, record: Option<&mut crate::debug::Recorder>) -> usize {
    let c = control();
    c.trigger.store(false, Relaxed);
    let mut running = pace::Running::enter();
    let depth = Depth::enter();
    let automatic = matches!(kind, Kind::Automatic | Kind::Quiet);
    // `collect()` and quiet passes are full; an automatic collection is
    // young unless a full one is due (see `generations`).
    let young = kind == Kind::Young
        || (kind == Kind::Automatic && !generations::full_due(c.threshold.load(Relaxed)));
    // Callbacks run here and at the end, on this thread, holding the
    // collector lock but no lock a mutator needs (see `callbacks`).
    let cbs = callbacks::snapshot();
    let mut info = CollectInfo {
        automatic,
        quiet: kind == Kind::Quiet,
        nested: depth.0 > 0,
        young,
        // Counted only for callbacks: an exact count visits every ring
        // under the registry lock (see `buffer::pending`).
        buffered: if cbs.is_some() {
            generations::pending_total()
        } else {
            0
        },
        ..CollectInfo::default()
    };
    if let Some(cbs) = &cbs {
        callbacks::fire(cbs, &CollectEvent::Start(info));
    }
    let start = Instant::now();
    // Each phase's time is the time since the last phase ended.
    let mut mark = start;
    let mut lap = || {
        let now = Instant::now();
        let phase = now - mark;
        mark = now;
        phase
    };
    sweep_quarantine();
    // The tables this collection fills, kept from the last one (`scratch`).
    let mut tables = scratch::take();
    let mut outcome = {
        let _flag = InCollector::enter();
        let mut graph = discover::Graph {
            record_hidden: record.is_some(),
            young,
            nodes: std::mem::take(&mut tables.nodes),
            targets: std::mem::take(&mut tables.targets),
            addrs: std::mem::take(&mut tables.addrs),
            internal: std::mem::take(&mut tables.internal),
            dead: std::mem::take(&mut tables.dead),
            ..discover::Graph::default()
        };
        let mut entries = buffer::drain(std::mem::take(&mut tables.entries));
        running.drained();
        if !young {
            entries.append(&mut generations::take_held());
        }
        graph.take_roots(&entries);
        tables.entries = entries;
        info.phases.roots = lap();
        graph.trace_all();
        info.phases.trace = lap();
        let proposal = graph.trial_delete();
        info.phases.trial = lap();
        let early = std::mem::take(&mut graph.dead);
        let committed = validate::validate(&mut graph, proposal, early, &mut tables.guards);
        info.phases.validate = lap();
        if let Some(record) = record {
            record.record(&graph, &committed);
        }
        tables.internal = std::mem::take(&mut graph.internal);
        commit::finish_locked(graph, committed)
    };
    // The next automatic collection waits for the trigger's new roots (the
    // threshold, or less in a small heap: `settings::trigger`), however
    // much this one traced: the live objects it traced are old now,
    // and no young collection traces them again, so an object is traced by
    // young collections at most once in its life; a full collection waits
    // for about as many held-over roots as it traces (`generations`). So
    // the collector's work stays linear in the program's without waiting
    // longer after a big trace (before young collections it waited for as
    // many roots as the last collection traced live).
    let live = outcome.live_traced;
    c.traced.fetch_add(outcome.traced as u64, Relaxed);
    let held_over = !outcome.held_over.is_empty();
    generations::finish(
        young,
        std::mem::take(&mut outcome.held_over),
        live,
        outcome.roots,
    );
    settings::refresh_heap_trigger();
    let wait_for = settings::trigger();
    // The shards' count only, like a push's estimate (a ring's owner
    // triggers on its own ring's entries when it next pushes): counting
    // every ring takes the registry lock, which no collection needs.
    if buffer::pending_in_shards() >= wait_for && c.enabled.load(Relaxed) {
        c.trigger.store(true, Relaxed);
    }
    if held_over && c.background.load(Relaxed) && c.enabled.load(Relaxed) {
        // Held-over entries count as buffered for the collector thread:
        // if it is not timing a quiet period, let it start one, so that
        // an idle program still gets the full pass (cold: once per
        // collection that held something over).
        worker::note_first_root();
    }
    if outcome.aborted > 0 {
        c.aborted.fetch_add(1, Relaxed);
    }
    info.roots = outcome.roots;
    info.traced = outcome.traced;
    info.aborted = outcome.aborted;
    c.roots.fetch_add(outcome.roots as u64, Relaxed);
    // Still holding the lock (so a concurrent `collect()` returns only
    // after these values are gone), but no longer tracing: destructors may
    // allocate, drop, and collect (nested).
    // From validation's end: the commit, and the bookkeeping before the
    // destructors run.
    info.phases.commit = lap();
    let (freed, panic) = outcome.destroy();
    info.phases.destroy = lap();
    tables.nodes = std::mem::take(&mut outcome.nodes);
    tables.targets = std::mem::take(&mut outcome.targets);
    tables.addrs = std::mem::take(&mut outcome.addrs);
    tables.dead = std::mem::take(&mut outcome.dead);
    scratch::give_back(tables);
    c.collections.fetch_add(1, Relaxed);
    if automatic {
        c.automatic.fetch_add(1, Relaxed);
    }
    if young {
        c.young.fetch_add(1, Relaxed);
    }
    c.freed.fetch_add(freed as u64, Relaxed);
    // Statistics only, read by no model: under loom they are not summed,
    // so that a model's state space stays what the protocol makes it (as
    // with `scratch`).
    #[cfg(not(arcycle_loom))]
    for (total, ns) in c.phase_ns.iter().zip(info.phases.to_nanos()) {
        total.fetch_add(ns, Relaxed);
    }
    let elapsed = start.elapsed();
    let pause = elapsed.as_nanos().min(u64::MAX as u128) as u64;
    c.last_pause_ns.store(pause, Relaxed);
    c.longest_pause_ns.fetch_max(pause, Relaxed);
    c.total_pause_ns.fetch_add(pause, Relaxed);
    info.freed = freed;
    info.pause = elapsed;
    if let Some(cbs) = &cbs {
        callbacks::fire(cbs, &CollectEvent::Stop(info));
    }
    drop(depth);
    if let Some(payload) = panic {
        if kind == Kind::Explicit {
            std::panic::resume_unwind(payload);
        }
        // An automatic collection runs inside some unrelated `Cc::new`;
        // like Python's "exception ignored in __del__", report and go on.
        report_panic(
            crate::report::ReportKind::PanicInAutomaticCollection,
            "a destructor or Trace impl panicked during an automatic collection",
            payload,
        );
    }
    freed
}

/// Loom only: run one round of the collector thread on the calling loom
/// thread (park until signalled, then run the automatic collections that
/// are due). See `collector::worker`, "Under loom".
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_collector_round() {
    worker::loom_round();
}

/// Loom only: the collector thread's quiet-period handshake, one side at
/// a time (the timed park does not exist under loom; see
/// `collector::worker`, "Under loom"): mark the thread as timing a period.
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_quiet_arm() {
    // Relaxed: as `settle`'s store, read by `note_first_root`.
    control().worker.armed.store(true, Relaxed);
}

/// Loom only: end the thread's quiet period as `settle` does with an
/// empty buffer; true if it found something buffered and armed again.
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_quiet_disarm() -> bool {
    worker::disarm()
}

/// Loom only: whether a mutator signalled the collector thread.
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_quiet_signalled() -> bool {
    // Relaxed: read after the model joined the signalling thread.
    control().worker.signal.load(Relaxed)
}

//! The cycle collector: one synchronous trial-deletion pass at a time,
//! while every other thread runs on.
//!
//! A collection is four phases, one file each (plus `worker`, the
//! collector thread that runs automatic collections in background mode,
//! `generations`, which lets automatic collections leave old objects
//! alone, and `callbacks`, the user's start/stop hooks):
//!
//! | phase | file | what it establishes |
//! |---|---|---|
//! | take roots, trace | [`discover`] | every visited object is *held*: its value cannot be destroyed under the collector |
//! | trial deletion | [`discover`] | a proposal `W`: objects whose whole count seemed internal and that nothing external seemed to reach |
//! | freeze and verify | [`validate`] | an instant at which every object of `W` had exactly its traced internal count while `W`'s fields could not change: `W` was unreachable then, so forever |
//! | commit | [`commit`] | `W` is marked dead and its locks released; every other hold is released; then `W`'s values are dropped and only after all of them its allocations freed |
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
//! collector thread (`worker`); inline mode (`set_background(false)`, and
//! the default under loom and Miri) collects right there, as before, if
//! nobody else is collecting.

pub(crate) mod callbacks;
pub(crate) mod commit;
pub(crate) mod discover;
pub(crate) mod generations;
pub(crate) mod validate;
pub(crate) mod worker;

pub use callbacks::{add_callback, remove_callback, CallbackId, CollectEvent, CollectInfo};

use crate::buffer;
use crate::header::count;
use crate::sync::{lock, try_lock, AtomicBool, AtomicU64, AtomicUsize, Mutex};
use crate::trace::Node;
use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

/// The default number of buffered possible roots that starts an automatic
/// collection.
///
/// ```
/// arcycle::set_threshold(100);
/// arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD); // back to the default
/// assert_eq!(arcycle::threshold(), arcycle::DEFAULT_THRESHOLD);
/// ```
pub const DEFAULT_THRESHOLD: usize = 10_000;

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
    /// The adapted threshold: at least the user's, at least the live
    /// objects the last collection had to trace.
    effective: AtomicUsize,
    collections: AtomicU64,
    freed: AtomicU64,
    aborted: AtomicU64,
    last_pause_ns: AtomicU64,
    longest_pause_ns: AtomicU64,
    total_pause_ns: AtomicU64,
    traced: AtomicU64,
    automatic: AtomicU64,
    roots: AtomicU64,
    young: AtomicU64,
    worker: worker::Worker,
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
            effective: AtomicUsize::new(DEFAULT_THRESHOLD),
            collections: AtomicU64::new(0),
            freed: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            last_pause_ns: AtomicU64::new(0),
            longest_pause_ns: AtomicU64::new(0),
            total_pause_ns: AtomicU64::new(0),
            traced: AtomicU64::new(0),
            automatic: AtomicU64::new(0),
            roots: AtomicU64::new(0),
            young: AtomicU64::new(0),
            worker: worker::worker_init!(),
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

crate::sync::cc_thread_local! {
    /// Set while this thread runs the collector's locked phases (and so
    /// runs user `Trace` impls).
    static IN_COLLECTOR: Cell<bool> = Cell::new(false);
}

crate::sync::cc_thread_local! {
    /// Collections running on this thread (more than one when nested).
    static DEPTH: Cell<u32> = Cell::new(0);
}

crate::sync::cc_thread_local! {
    /// Set while this thread holds the collector lock (any phase,
    /// destructors included), so that a destructor's own `collect()` runs
    /// nested instead of waiting for itself.
    static OWNER: Cell<bool> = Cell::new(false);
}

fn in_collector() -> bool {
    IN_COLLECTOR.try_with(Cell::get).unwrap_or(false)
}

pub(crate) fn owns_collector() -> bool {
    OWNER.try_with(Cell::get).unwrap_or(false)
}

/// Marks this thread as the collector lock's owner while it lives.
struct Owner<'a> {
    _guard: crate::sync::MutexGuard<'a, ()>,
}

impl<'a> Owner<'a> {
    fn new(guard: crate::sync::MutexGuard<'a, ()>) -> Self {
        let _ = OWNER.try_with(|o| o.set(true));
        Owner { _guard: guard }
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        let _ = OWNER.try_with(|o| o.set(false));
    }
}

struct InCollector;

impl InCollector {
    fn enter() -> InCollector {
        let _ = IN_COLLECTOR.try_with(|c| c.set(true));
        InCollector
    }
}

impl Drop for InCollector {
    fn drop(&mut self) {
        let _ = IN_COLLECTOR.try_with(|c| c.set(false));
    }
}

fn forbid_reentry(what: &str) {
    if in_collector() {
        panic!(
            "arcycle: {what} called from inside a Trace impl while this thread runs the cycle \
             collector; Trace impls must only report edges"
        );
    }
}

/// Collector statistics, as returned by [`stats`].
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Option<Cc<Node>>>);
///
/// let before = arcycle::stats();
/// let a = Cc::new(Node(Mutex::new(None)));
/// *a.0.lock().unwrap() = Some(a.clone());
/// drop(a);
/// arcycle::collect();
/// let after = arcycle::stats();
/// assert!(after.freed >= before.freed + 1);
/// assert!(after.collections > before.collections);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Collections run (explicit and automatic).
    pub collections: u64,
    /// Objects freed by collections (cycle members).
    pub freed: u64,
    /// Validations that found the proposed garbage changed under them and
    /// gave up (nothing is lost: the roots are tried again later).
    pub aborted: u64,
    /// Possible roots buffered now, waiting for the next collection
    /// (including those young collections held over for the next full
    /// one, see [`collect_young`]).
    pub roots_buffered: usize,
    /// How long the last collection took, start to end, destructors
    /// included.
    pub last_pause: Duration,
    /// The longest collection so far.
    pub longest_pause: Duration,
    /// All collections together, start to end.
    pub total_pause: Duration,
    /// Objects traced by all collections together (live and garbage).
    pub traced: u64,
    /// Objects whose `Trace` impl (or a guard it handed to the tracer)
    /// panicked. Each was reported once, through `collect()` or on stderr
    /// for an automatic collection, and is never traced again: it and
    /// everything it reaches are kept, as if its impl reported no edges.
    /// An object leaves this count when its last handle goes.
    pub quarantined: usize,
    /// Automatic collections (threshold and quiet-period ones), a part of
    /// `collections`.
    pub automatic: u64,
    /// Possible roots examined by all collections together (see
    /// [`CollectInfo::roots`]); with `traced`, what a tuner of the
    /// [threshold](set_threshold) compares with `freed`.
    pub roots: u64,
    /// Young collections (see [`collect_young`]), a part of
    /// `collections`.
    pub young: u64,
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
        auto_collect();
    }
}

#[cold]
#[inline(never)]
fn auto_collect() {
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
        return;
    }
    if let Some(guard) = try_lock(&c.collector) {
        // Never wait: someone else collecting will handle the pending roots.
        let _owner = Owner::new(guard);
        run(Kind::Automatic, None);
    }
}

/// Called after each push with the pending count.
pub(crate) fn note_pending(pending: usize) {
    let c = control();
    if pending >= c.effective.load(Relaxed) && c.enabled.load(Relaxed) && !c.trigger.load(Relaxed) {
        c.trigger.store(true, Relaxed);
    } else if pending == 1 && c.background.load(Relaxed) && c.enabled.load(Relaxed) {
        // The buffer was empty: let the collector thread time a quiet
        // period for it (see `worker`). Once per emptying of the buffer.
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

/// Counts this thread's running collections while it lives.
struct Depth(u32);

impl Depth {
    fn enter() -> Depth {
        Depth(
            DEPTH
                .try_with(|d| {
                    let outer = d.get();
                    d.set(outer + 1);
                    outer
                })
                .unwrap_or(0),
        )
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

/// One collection; the caller owns the collector lock.
fn run(kind: Kind, record: Option<&mut crate::debug::Recorder>) -> usize {
    let c = control();
    c.trigger.store(false, Relaxed);
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
        buffered: generations::pending_total(),
        ..CollectInfo::default()
    };
    if let Some(cbs) = &cbs {
        callbacks::fire(cbs, &CollectEvent::Start(info));
    }
    let start = Instant::now();
    sweep_quarantine();
    let outcome = {
        let _flag = InCollector::enter();
        let mut graph = discover::Graph {
            record_hidden: record.is_some(),
            young,
            ..discover::Graph::default()
        };
        let mut entries = buffer::drain();
        if !young {
            entries.append(&mut generations::take_held());
        }
        graph.take_roots(entries);
        graph.trace_all();
        let proposal = graph.trial_delete();
        let committed = validate::validate(&mut graph, proposal);
        if let Some(record) = record {
            record.record(&graph, &committed);
        }
        commit::finish_locked(graph, committed)
    };
    let mut outcome = outcome;
    // Adapt: after a young collection, the next automatic one waits for at
    // least as many new roots as live objects this one had to trace, so
    // the work of tracing live data is paid for by mutator work (linear
    // overall). After a full one, the next is young and leaves the live
    // objects just traced alone (they are old now); the next full one
    // waits for about as many held-over roots (`generations`).
    let live = outcome.live_traced;
    c.traced.fetch_add(outcome.traced as u64, Relaxed);
    let user = c.threshold.load(Relaxed);
    let wait_for = if young { user.max(live) } else { user };
    c.effective.store(wait_for, Relaxed);
    let held_over = !outcome.held_over.is_empty();
    generations::finish(
        young,
        std::mem::take(&mut outcome.held_over),
        live,
        outcome.roots,
    );
    if buffer::pending() >= wait_for && c.enabled.load(Relaxed) {
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
    let (freed, panic) = outcome.destroy();
    c.collections.fetch_add(1, Relaxed);
    if automatic {
        c.automatic.fetch_add(1, Relaxed);
    }
    if young {
        c.young.fetch_add(1, Relaxed);
    }
    c.freed.fetch_add(freed as u64, Relaxed);
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

/// Report a caught panic that no caller can receive ("`what`: message"),
/// then drop its payload safely.
pub(crate) fn report_panic(
    kind: crate::report::ReportKind,
    what: &str,
    payload: Box<dyn Any + Send>,
) {
    crate::report::report(kind, &format!("{what}: {}", panic_message(&*payload)));
    drop_payload(payload);
}

/// Keep the first panic of a collection in `slot`; drop any later one
/// without letting its payload's own `Drop` unwind into the collector.
pub(crate) fn keep_panic(slot: &mut Option<Box<dyn Any + Send>>, payload: Box<dyn Any + Send>) {
    if slot.is_none() {
        *slot = Some(payload);
    } else {
        drop_payload(payload);
    }
}

/// Drop a panic payload whose `Drop` may itself panic: the payload of that
/// panic is dropped in turn (usually a plain message), up to a few levels;
/// only a payload chain that keeps panicking past them is leaked.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
}

/// Whether `node` is quarantined (its `Trace` impl panicked once). One
/// relaxed load while nothing is quarantined.
#[inline]
pub(crate) fn is_quarantined(node: Node) -> bool {
    control().quarantined.load(Relaxed) != 0 && is_listed(node)
}

#[cold]
#[inline(never)]
fn is_listed(node: Node) -> bool {
    lock(&control().quarantine).contains_key(&node.addr())
}

/// Quarantine a held object whose `Trace` impl (or guard) panicked: it is
/// never traced again. The list takes an entry unit so that the address
/// stays this object's while it is listed.
pub(crate) fn quarantine(node: Node) {
    let c = control();
    let mut q = lock(&c.quarantine);
    if let std::collections::btree_map::Entry::Vacant(e) = q.entry(node.addr()) {
        // The collector holds the object, so the allocation is alive.
        // Relaxed: the list is only read by the collecting thread.
        node.header().weak.fetch_add(crate::header::ENTRY, Relaxed);
        e.insert(node);
        c.quarantined.store(q.len(), Relaxed);
    }
}

/// Forget quarantined objects whose value is gone (their last handle was
/// dropped), giving back the list's claim on their allocations.
fn sweep_quarantine() {
    let c = control();
    if c.quarantined.load(Relaxed) == 0 {
        return;
    }
    let mut q = lock(&c.quarantine);
    q.retain(|_, n| {
        // A quarantined object is never in a garbage set (it is always
        // busy), so count 0 means its last drop destroyed it.
        let gone = count(n.header().strong.load(Relaxed)) == 0;
        if gone {
            buffer::release_entry(n.header);
        }
        !gone
    });
    c.quarantined.store(q.len(), Relaxed);
}

/// Whether a last drop on this thread may wait for the collector to let
/// go of the object: not on the thread that is running the collector's
/// locked phases (a `Trace` impl dropping a handle), which would wait for
/// itself. Every other thread may: the collector never waits for it.
pub(crate) fn may_wait_for_hold() -> bool {
    !in_collector()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// Wait while the collector holds an object (for `try_unwrap`, `get_mut`
/// and friends that found `HELD`; `what` names the caller in the panic).
/// A collection lets go of every live object before it runs any
/// destructor, and never waits for mutators in between, so this wait is
/// bounded by the collection's locked phases.
pub(crate) fn wait_for_hold(wait: &crate::sync::Wait, what: &str) {
    forbid_reentry(what);
    wait.pause();
}

/// Collector statistics since the program started.
///
/// ```
/// let before = arcycle::stats();
/// arcycle::collect();
/// assert!(arcycle::stats().collections > before.collections);
/// ```
pub fn stats() -> Stats {
    let c = control();
    Stats {
        collections: c.collections.load(Relaxed),
        freed: c.freed.load(Relaxed),
        aborted: c.aborted.load(Relaxed),
        roots_buffered: generations::pending_total(),
        last_pause: Duration::from_nanos(c.last_pause_ns.load(Relaxed)),
        longest_pause: Duration::from_nanos(c.longest_pause_ns.load(Relaxed)),
        total_pause: Duration::from_nanos(c.total_pause_ns.load(Relaxed)),
        traced: c.traced.load(Relaxed),
        quarantined: c.quarantined.load(Relaxed),
        automatic: c.automatic.load(Relaxed),
        roots: c.roots.load(Relaxed),
        young: c.young.load(Relaxed),
    }
}

/// Set how many buffered possible roots start an automatic collection
/// (default [`DEFAULT_THRESHOLD`]). The collector may wait longer when the
/// last collection had to trace many live objects, to keep its total work
/// linear in the program's.
///
/// # Panics
///
/// If `threshold` is 0.
///
/// ```
/// arcycle::set_threshold(5_000);
/// assert_eq!(arcycle::threshold(), 5_000);
/// # arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD);
/// ```
pub fn set_threshold(threshold: usize) {
    assert!(
        threshold > 0,
        "arcycle::set_threshold: the threshold must be at least 1"
    );
    let c = control();
    c.threshold.store(threshold, Relaxed);
    c.effective.store(threshold, Relaxed);
}

/// The threshold set by [`set_threshold`].
///
/// ```
/// assert!(arcycle::threshold() >= 1);
/// ```
pub fn threshold() -> usize {
    control().threshold.load(Relaxed)
}

/// Turn automatic collection on (the default).
///
/// ```
/// arcycle::disable();
/// assert!(!arcycle::is_enabled());
/// arcycle::enable();
/// assert!(arcycle::is_enabled());
/// ```
pub fn enable() {
    let c = control();
    c.enabled.store(true, Relaxed);
    if buffer::pending() >= c.effective.load(Relaxed) {
        c.trigger.store(true, Relaxed);
    }
    if c.background.load(Relaxed) && generations::pending_total() > 0 {
        // The collector thread may have dropped its quiet period while
        // collection was off.
        let _ = worker::wake();
    }
}

/// Turn automatic collection off. Explicit [`collect`] still works, and
/// acyclic garbage is still freed at once.
///
/// ```
/// arcycle::disable();
/// let x = arcycle::Cc::new(1); // acyclic: freed at its last drop as ever
/// drop(x);
/// arcycle::collect(); // explicit collections still run
/// arcycle::enable();
/// ```
pub fn disable() {
    let c = control();
    c.enabled.store(false, Relaxed);
    c.trigger.store(false, Relaxed);
}

/// Whether automatic collection is on.
///
/// ```
/// assert!(arcycle::is_enabled()); // the default
/// ```
pub fn is_enabled() -> bool {
    control().enabled.load(Relaxed)
}

/// Choose where automatic collections run: on the collector thread
/// (`true`, the default) or inline, on the thread whose [`Cc::new`] or
/// drop crosses the [threshold](set_threshold) (`false`).
///
/// **Background mode** (the default). A dedicated thread named
/// `arcycle-collector`, started at the first automatic collection (or the
/// first possible root, see [`set_quiet_period`]), runs every automatic
/// collection and its destructors; the mutator that crossed the threshold
/// only signals it (a flag check, as cheap as before when nothing is
/// pending). So a destructor of collected garbage never runs inside an
/// unrelated allocation of yours, holding whatever locks that code holds.
/// The thread parks whenever there is nothing to do (no polling), and
/// collects a small buffer on its own after a quiet period, so a garbage
/// cycle is freed eventually even if the program never drops anything
/// again. A panic of a destructor run there is reported (see
/// [`set_report_hook`](crate::set_report_hook)); the thread goes on.
///
/// The thread never delays the process's exit (it is detached): garbage
/// not collected by then is not freed, as `Arc` leaks cycles. After `fork`
/// (Unix) the child has no collector thread; it starts one the first time
/// it needs it (fork waits for a collection in progress, as `collect()`
/// does, so that the child does not inherit the collector locked).
///
/// **Inline mode** (`false`): automatic collections run on the thread
/// that crosses the threshold, as Python's do; no thread is started. This
/// is the default under loom (`cfg(arcycle_loom)`, which cannot model a
/// free-running thread) and Miri.
///
/// [`collect`] always runs on its caller, and [`disable`] turns automatic
/// collection off in either mode. `collect()` waits for a collection in
/// progress, also one on the collector thread: a thread must not call it
/// while holding a lock that destructors of its garbage take (the
/// collector thread would wait for the lock, the thread for the
/// collector) — which is exactly what background mode spares automatic
/// collections.
///
/// [`Cc::new`]: crate::Cc::new
///
/// ```
/// arcycle::set_background(false); // collect inline from now on
/// assert!(!arcycle::is_background());
/// arcycle::set_background(true);
/// # #[cfg(not(miri))]
/// assert!(arcycle::is_background());
/// ```
pub fn set_background(on: bool) {
    let c = control();
    c.background.store(on, Relaxed);
    if on && generations::pending_total() > 0 && c.enabled.load(Relaxed) {
        let _ = worker::wake();
    }
}

/// Whether automatic collections run on the collector thread (see
/// [`set_background`]).
///
/// ```
/// let on = arcycle::is_background(); // true by default (except loom, Miri)
/// # let _ = on;
/// ```
pub fn is_background() -> bool {
    control().background.load(Relaxed)
}

/// Set the quiet period of the collector thread (default one second).
///
/// In background mode, when a possible root is buffered into an empty
/// buffer, the collector thread starts timing this period; if no
/// collection runs before it ends, the thread collects the buffer itself,
/// however small (a *quiet pass*, [`CollectInfo::quiet`]). A quiet pass
/// that freed nothing doubles the next period (up to 64 times). The
/// thread never wakes with an empty buffer. `Duration::ZERO` collects
/// every buffered root soon after it is buffered.
///
/// ```
/// use std::time::Duration;
/// arcycle::set_quiet_period(Duration::from_millis(200));
/// assert_eq!(arcycle::quiet_period(), Duration::from_millis(200));
/// # arcycle::set_quiet_period(Duration::from_secs(1));
/// ```
pub fn set_quiet_period(period: Duration) {
    let ns = period.as_nanos().min(u64::MAX as u128) as u64;
    let c = control();
    c.worker.quiet_ns.store(ns, Relaxed);
    // A thread timing the old period re-reads it when woken.
    if c.background.load(Relaxed)
        && (generations::pending_total() > 0 || c.worker.armed.load(Relaxed))
    {
        let _ = worker::wake();
    }
}

/// The quiet period set by [`set_quiet_period`].
///
/// ```
/// assert!(arcycle::quiet_period() > std::time::Duration::ZERO); // 1 s by default
/// ```
pub fn quiet_period() -> Duration {
    Duration::from_nanos(control().worker.quiet_ns.load(Relaxed))
}

/// Loom only: run one round of the collector thread on the calling loom
/// thread (park until signalled, then run the automatic collections that
/// are due). See `collector::worker`, "Under loom".
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_collector_round() {
    worker::loom_round();
}

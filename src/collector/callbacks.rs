//! Collection callbacks, like Python's `gc.callbacks`: user functions told
//! when each collection starts and stops.
//!
//! # Invariants
//!
//! * **No user code under an internal lock a mutator needs.** The registry
//!   lock is held only to clone the list of callbacks out (`snapshot`) or
//!   to change it; callbacks run after it is released, and never while a
//!   root-buffer shard lock is held. They do run while the collecting
//!   thread holds the *collector* lock (before the collection takes its
//!   first root, and after it destroyed its garbage): the same thread's
//!   `collect()` then runs a nested collection (the `OWNER` flag), so a
//!   callback may collect, allocate, drop, add and remove callbacks. It must
//!   not wait for another thread that calls `collect()` (as for a
//!   destructor).
//! * **Paired events.** One snapshot serves both events of a collection:
//!   every callback told `Start` is told `Stop`, even if it was removed in
//!   between; one added during a collection is first called at the next.
//! * **A panicking callback breaks nothing.** Each call runs under
//!   `catch_unwind`; a panic is reported through `report::report`
//!   (`ReportKind::PanicInCallback`) and the collection goes on.
//! * **Nothing registered, nothing paid:** `snapshot` is one relaxed load
//!   when the registry is empty.
//!
//! Guarded by `tests/gc_module.rs` (the `callback_*` tests).

use crate::sync::{lock, AtomicU64, AtomicUsize, Mutex};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

/// What a collection did, as passed to a callback (see [`add_callback`]).
///
/// In [`CollectEvent::Start`] only `automatic`, `quiet`, `nested` and
/// `buffered` are filled in; the counts are zero.
///
/// ```
/// let info = arcycle::CollectInfo::default();
/// assert_eq!((info.freed, info.pause), (0, std::time::Duration::ZERO));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectInfo {
    /// Started by the threshold or the quiet period (not by `collect()`).
    pub automatic: bool,
    /// A quiet-period pass of the collector thread (see
    /// [`set_quiet_period`](crate::set_quiet_period)); `automatic` too.
    pub quiet: bool,
    /// Runs inside another collection on the same thread (a destructor's or
    /// a callback's `collect()`).
    pub nested: bool,
    /// A young collection (see [`collect_young`](crate::collect_young)):
    /// objects that survived an earlier collection were left alone.
    pub young: bool,
    /// Possible roots in the buffer when the collection started.
    pub buffered: usize,
    /// Possible roots the collection examined (distinct objects whose
    /// buffer entry still stood for them).
    pub roots: usize,
    /// Objects traced, roots included (live and garbage).
    pub traced: usize,
    /// Objects freed (cycle members).
    pub freed: usize,
    /// Garbage components whose validation found them changed and gave
    /// up (they are tried again by a later collection).
    pub aborted: usize,
    /// The collecting thread's time, from the first root taken to the last
    /// garbage destroyed (callbacks excluded).
    pub pause: Duration,
    /// How `pause` splits into the collector's phases.
    pub phases: PhaseTimes,
}

/// Where a collection's time went, phase by phase, in the order they run
/// (the phases of "How it works" in [`design`](crate::design), with taking
/// the roots and tracing as two). They follow one another on the
/// collecting thread, so together they are at most the collection's
/// [`pause`](CollectInfo::pause); the rest is bookkeeping. Per collection
/// in [`CollectInfo::phases`], summed over all collections in
/// [`Stats::phases`](crate::Stats::phases).
///
/// What to look at when collections are slow: `trace` grows with the live
/// objects the roots reach (a young collection leaves old ones alone, see
/// [`collect_young`](crate::collect_young)), `validate` and `destroy` with
/// the garbage, and `destroy` with what its destructors do.
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Option<Cc<Node>>>);
///
/// let before = arcycle::stats().phases;
/// let a = Cc::new(Node(Mutex::new(None)));
/// *a.0.lock().unwrap() = Some(a.clone());
/// drop(a);
/// arcycle::collect();
/// let spent = arcycle::stats().phases;
/// assert!(spent.total() >= before.total());
/// println!("tracing took {:?} so far, destructors {:?}", spent.trace, spent.destroy);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseTimes {
    /// Taking the buffered possible roots: draining the buffer and holding
    /// each root.
    pub roots: Duration,
    /// Pass 1: tracing everything the roots reach, holding each object.
    pub trace: Duration,
    /// Trial deletion: proposing the garbage from what pass 1 saw.
    pub trial: Duration,
    /// Freezing and verifying the proposal, a batch of whole components at
    /// a time.
    pub validate: Duration,
    /// Marking the garbage dead and letting go of everything else.
    pub commit: Duration,
    /// Running the garbage's destructors and freeing it, weak-collection
    /// notices and finalizers included.
    pub destroy: Duration,
}

impl PhaseTimes {
    /// All phases together.
    pub fn total(&self) -> Duration {
        self.roots + self.trace + self.trial + self.validate + self.commit + self.destroy
    }

    /// The time spent in each phase since `earlier`, a reading of the same
    /// totals (two [`stats`](crate::stats) calls): what the collections in
    /// between took. Saturates at zero if `earlier` is in fact later.
    ///
    /// ```
    /// let before = arcycle::stats().phases;
    /// arcycle::collect();
    /// let spent = arcycle::stats().phases.since(before);
    /// assert!(spent.total() <= arcycle::stats().total_pause);
    /// ```
    pub fn since(self, earlier: PhaseTimes) -> PhaseTimes {
        let (a, b) = (self.to_nanos(), earlier.to_nanos());
        PhaseTimes::from_nanos(std::array::from_fn(|i| a[i].saturating_sub(b[i])))
    }

    /// The phases as nanoseconds, in order (for the collector's totals).
    pub(crate) fn to_nanos(self) -> [u64; 6] {
        [
            self.roots,
            self.trace,
            self.trial,
            self.validate,
            self.commit,
            self.destroy,
        ]
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
    }

    /// The inverse of [`to_nanos`](PhaseTimes::to_nanos).
    pub(crate) fn from_nanos(ns: [u64; 6]) -> PhaseTimes {
        let [roots, trace, trial, validate, commit, destroy] = ns.map(Duration::from_nanos);
        PhaseTimes {
            roots,
            trace,
            trial,
            validate,
            commit,
            destroy,
        }
    }
}

/// The event a callback receives: a collection starts or stops.
///
/// ```
/// let id = arcycle::add_callback(|event| match event {
///     arcycle::CollectEvent::Start(info) => { let _ = info.automatic; }
///     arcycle::CollectEvent::Stop(info) => { let _ = (info.freed, info.pause); }
///     _ => {}
/// });
/// arcycle::collect();
/// assert!(arcycle::remove_callback(id));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CollectEvent {
    /// Before the collection takes its first root.
    Start(CollectInfo),
    /// After it destroyed its garbage (and before a panic of one of its
    /// destructors is resumed to the caller of `collect()`).
    Stop(CollectInfo),
}

impl CollectEvent {
    /// The information carried by either event.
    ///
    /// ```
    /// let e = arcycle::CollectEvent::Stop(arcycle::CollectInfo::default());
    /// assert_eq!(e.info().freed, 0);
    /// ```
    pub fn info(&self) -> &CollectInfo {
        match self {
            CollectEvent::Start(i) | CollectEvent::Stop(i) => i,
        }
    }
}

/// Names a callback registered with [`add_callback`], for
/// [`remove_callback`].
///
/// ```
/// let id: arcycle::CallbackId = arcycle::add_callback(|_| {});
/// assert!(arcycle::remove_callback(id));
/// assert!(!arcycle::remove_callback(id)); // already gone
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(u64);

pub(crate) type Callback = Arc<dyn Fn(&CollectEvent) + Send + Sync>;

pub(crate) struct Registry {
    pub(crate) list: Mutex<Vec<(u64, Callback)>>,
    /// `list.len()`, readable without the lock.
    pub(crate) len: AtomicUsize,
    pub(crate) next_id: AtomicU64,
}

impl Registry {
    /// The registry lock, for `fork` (held across it so the child does not
    /// inherit it taken).
    #[cfg(all(unix, not(miri), not(arcycle_loom)))]
    pub(crate) fn lock_for_fork(&self) -> crate::sync::MutexGuard<'_, Vec<(u64, Callback)>> {
        lock(&self.list)
    }
}

fn registry() -> &'static Registry {
    &super::control().callbacks
}

/// Call `f` at the start and at the end of every collection: explicit,
/// automatic (on the collector thread or inline) and nested, on the thread
/// that runs it. Returns an id for [`remove_callback`].
///
/// The event says what the collection did ([`CollectInfo`]: objects freed,
/// the pause, roots examined, objects traced, aborted validations, whether
/// it was automatic). Like Python's `gc.callbacks`, this is where a
/// program times or logs its collections, or tunes the
/// [threshold](crate::set_threshold).
///
/// `f` runs on the collecting thread while it holds the collector lock
/// (outside every lock a mutator needs): other threads keep running, but a
/// `collect()` on another thread waits for `f` to return. `f` may allocate,
/// drop, add or remove callbacks, and call [`collect`](crate::collect),
/// which runs a *nested* collection at once (telling every callback
/// `Start` and `Stop` again — a callback that collects on every event
/// recurses without end). `f` must not wait for a thread that calls
/// `collect()`. A panic in `f` is reported (see
/// [`set_report_hook`](crate::set_report_hook)) and dropped.
///
/// ```
/// use arcycle::{Cc, CollectEvent, Trace};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::{Arc, Mutex};
///
/// let freed = Arc::new(AtomicUsize::new(0));
/// let total = freed.clone();
/// let id = arcycle::add_callback(move |event| {
///     if let CollectEvent::Stop(info) = event {
///         total.fetch_add(info.freed, Ordering::Relaxed);
///     }
/// });
///
/// #[derive(Trace)]
/// struct Node(Mutex<Option<Cc<Node>>>);
/// let a = Cc::new(Node(Mutex::new(None)));
/// *a.0.lock().unwrap() = Some(a.clone());
/// drop(a);
/// arcycle::collect();
/// arcycle::remove_callback(id);
/// assert!(freed.load(Ordering::Relaxed) >= 1);
/// ```
pub fn add_callback<F>(f: F) -> CallbackId
where
    F: Fn(&CollectEvent) + Send + Sync + 'static,
{
    let r = registry();
    // Relaxed: ids only need to be distinct, which one RMW gives.
    let id = r.next_id.fetch_add(1, Relaxed);
    let mut list = lock(&r.list);
    list.push((id, Arc::new(f)));
    // Relaxed: the count is a hint for `snapshot`'s fast path; a collection
    // that misses a callback added concurrently calls it from the next one
    // on (this thread's own later collections see it: same-thread order).
    r.len.store(list.len(), Relaxed);
    CallbackId(id)
}

/// Unregister a callback; returns whether it was registered.
///
/// A collection already running (on another thread, or the one calling
/// this from a callback) may still call it once more, with the `Stop` of
/// the `Start` it already received — so a thread must not hold a lock the
/// callback takes while it waits for a collection (`collect()`), even
/// after removing the callback: the collection holding the collector lock
/// would wait for that lock.
///
/// ```
/// let id = arcycle::add_callback(|_| {});
/// assert!(arcycle::remove_callback(id));
/// ```
pub fn remove_callback(id: CallbackId) -> bool {
    let r = registry();
    let mut list = lock(&r.list);
    let before = list.len();
    list.retain(|(i, _)| *i != id.0);
    // Relaxed: as in `add_callback`.
    r.len.store(list.len(), Relaxed);
    list.len() != before
}

/// The callbacks to tell about the collection starting now, or `None`
/// when there are none (one relaxed load).
pub(crate) fn snapshot() -> Option<Vec<Callback>> {
    let r = registry();
    if r.len.load(Relaxed) == 0 {
        return None;
    }
    let list = lock(&r.list);
    let cbs: Vec<Callback> = list.iter().map(|(_, f)| f.clone()).collect();
    // The registry lock is released here, before any callback runs.
    drop(list);
    if cbs.is_empty() {
        None
    } else {
        Some(cbs)
    }
}

/// Tell every callback of `cbs` about `event`, each under `catch_unwind`.
pub(crate) fn fire(cbs: &[Callback], event: &CollectEvent) {
    for f in cbs {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(event))) {
            super::report_panic(
                crate::report::ReportKind::PanicInCallback,
                "a collection callback panicked",
                payload,
            );
        }
    }
}

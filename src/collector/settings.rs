//! The collector's knobs and counters, Python's `gc.set_threshold`,
//! `gc.enable`/`disable` and `gc.get_stats` made for threads: the
//! threshold, automatic collection on or off, where automatic collections
//! run (the collector thread or inline), the quiet period, and [`stats`].
//!
//! Every setting is one relaxed atomic of `Control` (`super`): a switch
//! read on cold paths, where a stale read runs one more collection (or one
//! fewer) in the old mode and nothing else; none of them orders data.
//! Turning something on wakes the collector thread if it has work waiting
//! (see `worker`). Guarded by `tests/gc_module.rs` and the doc tests.

use super::{control, generations, worker, PhaseTimes};
use crate::buffer;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

/// The default number of buffered possible roots that starts an automatic
/// collection.
///
/// ```
/// arcycle::set_threshold(100);
/// arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD); // back to the default
/// assert_eq!(arcycle::threshold(), arcycle::DEFAULT_THRESHOLD);
/// ```
pub const DEFAULT_THRESHOLD: usize = 10_000;

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
    /// one, see [`collect_young`](crate::collect_young)).
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
    /// [`CollectInfo::roots`](crate::CollectInfo::roots)); with `traced`, what a tuner of the
    /// [threshold](set_threshold) compares with `freed`.
    pub roots: u64,
    /// Young collections (see [`collect_young`](crate::collect_young)), a part of
    /// `collections`.
    pub young: u64,
    /// Allocations that waited (or are waiting now) for a collector thread
    /// that fell behind (see [`set_pace_limit`](crate::set_pace_limit)).
    pub paced: u64,
    /// The total time of those waits that ended.
    pub paced_time: Duration,
    /// Those waits that reached the pace limit (each gave its collection
    /// up).
    pub pace_timeouts: u64,
    /// All collections' time, phase by phase (see [`PhaseTimes`]). As
    /// with `total_pause`, a nested collection (a destructor's
    /// `collect()`) counts on its own and inside its outer collection's
    /// `destroy`.
    pub phases: PhaseTimes,
    /// The number of buffered possible roots that starts an automatic
    /// collection now: the [threshold](set_threshold), or less in a small
    /// heap (see [`set_heap_fraction`]).
    pub trigger: usize,
    /// The collector's estimate of the live heap, in objects (see
    /// [`set_heap_fraction`]): what the last representative full
    /// collection found live plus what young collections found live since.
    pub heap_estimate: usize,
    /// Objects alive that survived a collection (*old*, see
    /// [`collect_young`](crate::collect_young)), as the collector counts
    /// them: made old by collections, less those whose value has gone
    /// since. Each thread reports the latter in batches of 64 (and when it
    /// exits), so this errs high by less than 64 per such thread. A full
    /// automatic collection waits until the roots that young collections
    /// held over reach this count. Always 0 under loom.
    pub old_objects: usize,
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
        paced: c.pace.waits.load(Relaxed),
        paced_time: Duration::from_nanos(c.pace.waited_ns.load(Relaxed)),
        pace_timeouts: c.pace.timeouts.load(Relaxed),
        phases: PhaseTimes::from_nanos(c.phase_ns.each_ref().map(|a| a.load(Relaxed))),
        trigger: trigger(),
        heap_estimate: generations::heap_estimate(),
        old_objects: generations::old_alive(),
    }
}

/// Set how many buffered possible roots start an automatic collection
/// (default [`DEFAULT_THRESHOLD`]).
///
/// The young garbage waiting for a collection is what that many roots
/// stand for in inline mode, and about twice that in background mode (the
/// collector thread collects one threshold while the next piles up; an
/// allocation that finds it further behind waits, see
/// [`set_pace_limit`](crate::set_pace_limit)). The threshold is the
/// trigger's upper bound: in a small heap automatic collections start
/// earlier, at a fraction of the live heap (see [`set_heap_fraction`]).
/// The collector's total work stays linear in the program's at any
/// threshold: automatic collections are young ones
/// (see [`collect_young`](crate::collect_young)), which trace an object at
/// most once while it is young, and a full one waits for about as many
/// held-over roots as it will trace.
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
}

/// The threshold set by [`set_threshold`].
///
/// ```
/// assert!(arcycle::threshold() >= 1);
/// ```
pub fn threshold() -> usize {
    control().threshold.load(Relaxed)
}

/// The default [heap fraction](set_heap_fraction): a quarter of the live
/// heap.
///
/// ```
/// arcycle::set_heap_fraction(0.5);
/// arcycle::set_heap_fraction(arcycle::DEFAULT_HEAP_FRACTION); // back to the default
/// assert_eq!(arcycle::heap_fraction(), 0.25);
/// ```
pub const DEFAULT_HEAP_FRACTION: f64 = 0.25;

/// The fewest buffered possible roots that start an automatic collection
/// when the [heap fraction](set_heap_fraction) asks for fewer (a small
/// heap); a [threshold](set_threshold) below it still wins.
///
/// ```
/// assert!(arcycle::MIN_TRIGGER <= arcycle::DEFAULT_THRESHOLD);
/// ```
pub const MIN_TRIGGER: usize = 1_000;

/// The heap's bound before any refresh: the floor (the estimate is 0).
/// Under loom it stays `usize::MAX`, so models trigger on the threshold
/// alone, as before the heap fraction (`Control::heap_trigger`).
pub(crate) const INITIAL_HEAP_TRIGGER: usize = if cfg!(arcycle_loom) {
    usize::MAX
} else {
    MIN_TRIGGER
};

/// Set the share of the live heap that buffered possible roots may reach
/// before an automatic collection starts (default
/// [`DEFAULT_HEAP_FRACTION`], a quarter).
///
/// An automatic collection starts when the buffered roots reach the
/// *trigger*:
///
/// ```text
/// trigger = min(threshold, max(MIN_TRIGGER, fraction × live heap))
/// ```
///
/// where the live heap is the collector's estimate: the objects its last
/// representative full collection found live, plus those young
/// collections found live since ([`Stats::heap_estimate`]; it starts at 0
/// and errs high between full collections, since objects freed by
/// counting are only subtracted by the next one). So in a big heap the
/// [threshold](set_threshold) alone decides, as before, and in a small
/// one the roots waiting for a collection stay within `fraction` of the
/// live heap in inline mode and about twice that in background mode (see
/// [`set_pace_limit`](crate::set_pace_limit)), but never fewer than
/// [`MIN_TRIGGER`] (or the threshold, if lower) start one. A lower
/// fraction keeps less garbage waiting and collects more often; each
/// collection costs about the same per root. [`f64::INFINITY`] turns the
/// bound off: the threshold alone decides.
///
/// The bound is in roots: what each root's garbage weighs is the
/// program's (a dropped handle to a garbage ring of a million is one
/// root). In a churn like the benchmark report's live-heap case (10,000
/// live nodes, garbage 2-cycles and live clones, background mode), a
/// quarter kept the waiting garbage's peak at 29–44% of the heap, where
/// the threshold alone let it reach 102–163%, for 6–25% more time per
/// freed object (three runs on a 2-core machine): the bound is paid for
/// with about four times as many collections. That bound also needs the
/// collector thread to run when signalled: on a 2-core KVM guest where it
/// sometimes took 3 ms to be scheduled, the peak read 41–238% until an
/// allocation also waited for a collection not yet started (see
/// [`set_pace_limit`](crate::set_pace_limit)); with it, 30–37% (three runs,
/// 2026-12-04). Since pacing counts a collection as running only from its
/// drain (so the allocating thread overlaps the collector instead of
/// waiting through each collection), the peak sits at about two triggers:
/// 39–51% of the heap over three runs the same day.
///
/// Not modelled under loom: there the trigger is the threshold.
///
/// # Panics
///
/// If `fraction` is NaN, zero or negative.
///
/// ```
/// arcycle::set_heap_fraction(0.1); // a tenth of the live heap at most
/// assert_eq!(arcycle::heap_fraction(), 0.1);
/// assert!(arcycle::stats().trigger <= arcycle::threshold());
/// arcycle::set_heap_fraction(f64::INFINITY); // the threshold alone
/// assert_eq!(arcycle::stats().trigger, arcycle::threshold());
/// # arcycle::set_heap_fraction(arcycle::DEFAULT_HEAP_FRACTION);
/// ```
pub fn set_heap_fraction(fraction: f64) {
    assert!(
        fraction > 0.0,
        "arcycle::set_heap_fraction: the fraction must be positive (f64::INFINITY turns the bound off), got {fraction}"
    );
    control().heap_fraction.store(fraction.to_bits(), Relaxed);
    refresh_heap_trigger();
}

/// The fraction set by [`set_heap_fraction`].
///
/// ```
/// assert!(arcycle::heap_fraction() > 0.0);
/// ```
pub fn heap_fraction() -> f64 {
    f64::from_bits(control().heap_fraction.load(Relaxed))
}

/// The number of buffered roots that starts an automatic collection now
/// (see [`set_heap_fraction`]): one more relaxed load than the threshold
/// alone.
#[inline]
pub(crate) fn trigger() -> usize {
    let c = control();
    c.threshold.load(Relaxed).min(c.heap_trigger.load(Relaxed))
}

/// Recompute the heap's bound on the trigger from the fraction and the
/// heap estimate (after each collection, and when the fraction changes).
///
/// Two writers (a collection's end, a user's `set_heap_fraction`) may
/// race; the lock makes each one read both inputs and store the result
/// with no other in between, so the last to finish stores what the latest
/// inputs give. Relaxed inside: the lock orders them.
pub(crate) fn refresh_heap_trigger() {
    #[cfg(not(arcycle_loom))]
    {
        let c = control();
        let _serial = crate::sync::lock(&c.heap_trigger_lock);
        let fraction = f64::from_bits(c.heap_fraction.load(Relaxed));
        let share = if fraction.is_infinite() {
            // The bound is off (and `0 × ∞` would be NaN).
            usize::MAX
        } else {
            // `as` saturates, so a huge product gives `usize::MAX`.
            (generations::heap_estimate() as f64 * fraction) as usize
        };
        c.heap_trigger.store(share.max(MIN_TRIGGER), Relaxed);
    }
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
    if buffer::pending() >= trigger() {
        c.trigger.store(true, Relaxed);
    }
    if c.background.load(Relaxed) && generations::pending_total() > 0 {
        // The collector thread may have dropped its quiet period while
        // collection was off.
        let _ = worker::wake();
    }
}

/// Turn automatic collection off. Explicit [`collect`](crate::collect) still works, and
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
/// [`set_report_hook`](crate::set_report_hook)); the thread goes on. If a
/// program makes garbage faster than the thread frees it, its allocations
/// wait for the thread (see [`set_pace_limit`](crate::set_pace_limit)).
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
/// [`collect`](crate::collect) always runs on its caller, and [`disable`] turns automatic
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
/// however small (a *quiet pass*, [`CollectInfo::quiet`](crate::CollectInfo::quiet)). A quiet pass
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

//! Debugging helpers: what a value's `Trace` impl reports, whether a
//! hand-written impl is right, why a collection kept what it kept, and the
//! collector thread's state.
//!
//! * [`referents`] — the outgoing edges of an object, as the collector
//!   sees them.
//! * [`TraceTest`] — a unit test for a hand-written `Trace` impl: the
//!   edges it reports against the ones you expect, and whether it keeps
//!   its locks while the tracer holds its guards.
//! * [`collect_with_report`] — a collection that reports every object it
//!   examined and kept, and why ([`LeakReport`], as text or Graphviz).
//! * [`collector_thread`], [`end_quiet_period`] — the collector thread
//!   (see [`set_background`](crate::set_background)), for tests and
//!   monitoring.
//! * With the `census` feature: `arcycle::census()` (live objects
//!   and bytes per type) and `reset_peak()`.
//!
//! None of these costs anything unless called (the census is a cargo
//! feature for that reason).
//!
//! ```
//! use arcycle::{Cc, Trace};
//! use std::sync::Mutex;
//!
//! #[derive(Trace)]
//! struct Node(Mutex<Vec<Cc<Node>>>);
//!
//! arcycle::collect();
//! let a = Cc::new(Node(Mutex::new(Vec::new())));
//! a.0.lock().unwrap().push(a.clone());
//! assert!(arcycle::debug::referents(&a).edges[0].is(&a));
//! let outside = a.clone();
//! drop(a);
//! // Why does the self-loop survive? A handle outside it.
//! let report = arcycle::debug::collect_with_report();
//! assert!(matches!(
//!     report.find(&outside).unwrap().reason,
//!     arcycle::debug::Reason::ExternalHandle { .. }
//! ));
//! # outside.0.lock().unwrap().clear();
//! ```

mod leak;
mod referents;

#[cfg(feature = "census")]
pub(crate) mod census;

pub(crate) use leak::Recorder;
pub use leak::{collect_with_report, HiddenHandle, LeakReport, Reason, Survivor};
pub use referents::{referents, Referent, Referents, TraceError, TraceReport, TraceTest};

#[cfg(feature = "census")]
#[cfg_attr(docsrs, doc(cfg(feature = "census")))]
pub use census::reset_peak;

/// The collector thread's state, from [`collector_thread`].
///
/// ```
/// let t = arcycle::debug::collector_thread();
/// let _ = (t.started, t.parked, t.wakeups, t.quiet_passes);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectorThread {
    /// The thread has been started (in this process: a forked child starts
    /// its own).
    pub started: bool,
    /// It is parked with nothing to do: no deadline, no signal pending.
    pub parked: bool,
    /// Rounds of work it has done (wake-ups that were not spurious:
    /// signals and quiet-period deadlines).
    pub wakeups: u64,
    /// Quiet-period passes it has run (see
    /// [`set_quiet_period`](crate::set_quiet_period)).
    pub quiet_passes: u64,
}

/// The collector thread's state (see
/// [`set_background`](crate::set_background)).
///
/// A thread that is `parked` has no deadline and sleeps until a mutator
/// signals it: while it stays parked and `wakeups` does not move, it does
/// no work at all.
///
/// ```
/// let before = arcycle::debug::collector_thread().wakeups;
/// let x = arcycle::Cc::new(1u32); // a leaf: never signals the thread
/// drop(x);
/// assert!(arcycle::debug::collector_thread().wakeups >= before);
/// ```
pub fn collector_thread() -> CollectorThread {
    let (started, parked, wakeups, quiet_passes) = crate::collector::worker::state();
    CollectorThread {
        started,
        parked,
        wakeups,
        quiet_passes,
    }
}

/// End the collector thread's current quiet period now: if possible roots
/// are buffered, it collects them without waiting (a quiet pass, as if the
/// [quiet period](crate::set_quiet_period) had passed). For tests that
/// check the quiet-period pass without depending on time. Does nothing in
/// inline mode or while automatic collection is disabled.
///
/// ```
/// use std::sync::{mpsc, Mutex};
/// use arcycle::{Cc, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     next: Mutex<Option<Cc<Node>>>,
///     #[trace(skip)]
///     freed: Mutex<Option<mpsc::Sender<()>>>,
/// }
/// impl Drop for Node {
///     fn drop(&mut self) {
///         if let Some(tx) = self.freed.lock().unwrap().take() {
///             let _ = tx.send(());
///         }
///     }
/// }
///
/// # if !arcycle::is_background() { return; }
/// arcycle::set_quiet_period(std::time::Duration::from_secs(3600));
/// let (tx, rx) = mpsc::channel();
/// let a = Cc::new(Node { next: Mutex::new(None), freed: Mutex::new(Some(tx)) });
/// *a.next.lock().unwrap() = Some(a.clone());
/// drop(a); // one small cycle, far below the threshold
/// arcycle::debug::end_quiet_period();
/// // The collector thread frees it (a watchdog bound, not a sleep).
/// rx.recv_timeout(std::time::Duration::from_secs(60)).expect("freed by the collector thread");
/// # arcycle::set_quiet_period(std::time::Duration::from_secs(1));
/// ```
pub fn end_quiet_period() {
    crate::collector::worker::end_quiet_period();
}

/// Tests: while `true`, the collector thread starts no threshold
/// collection; a signal it gets meanwhile is served once `false` lets it
/// go. For tests of what happens while the thread has not started the
/// collection it was signalled for (pacing). Not part of the API.
#[doc(hidden)]
#[cfg(not(arcycle_loom))]
pub fn __hold_collector_thread(hold: bool) {
    crate::collector::worker::hold(hold);
}

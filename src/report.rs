//! Where the library's own messages go.
//!
//! arcycle reports a problem itself only where no caller can receive it: a
//! panic in a destructor or `Trace` impl during an *automatic* collection
//! (which runs on the collector thread, or inside some unrelated `Cc::new`
//! or drop), a panic in a collection callback, a second panic while
//! another is unwinding, and a count overflow right before the process
//! aborts. By default each goes to stderr, one line each; a
//! program can send them elsewhere (a log, a metrics counter) or silence
//! them with [`set_report_hook`]. Nothing else is ever printed.
//!
//! Guarded by `tests/destructors.rs` (`report_hook_receives_automatic_collection_panics`).

use crate::sync::{lock, Mutex};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What went wrong, for a [`Report`].
///
/// ```
/// arcycle::set_report_hook(|report| match report.kind {
///     arcycle::ReportKind::CountOverflow => { /* the process aborts next */ }
///     _ => { /* log report.message */ }
/// });
/// # arcycle::reset_report_hook();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportKind {
    /// A destructor or `Trace` impl panicked during an automatic
    /// collection; the panic cannot reach a caller, so it is reported and
    /// dropped (an explicit [`collect`](crate::collect) resumes it
    /// instead). A `Trace` impl that panicked also quarantined its object
    /// (see [`Stats::quarantined`](crate::Stats::quarantined)).
    PanicInAutomaticCollection,
    /// A destructor panicked while another destructor's panic was already
    /// unwinding through the same drop; the second panic is dropped (a
    /// second unwind would abort the process).
    PanicDuringUnwind,
    /// More handles to one object than the count can hold: the process
    /// aborts right after the hook returns, as `Arc` does.
    CountOverflow,
    /// A collection callback (see [`add_callback`](crate::add_callback))
    /// panicked; the panic is dropped and the collection goes on.
    PanicInCallback,
}

/// One message of the library, as passed to the hook of
/// [`set_report_hook`].
///
/// ```
/// arcycle::set_report_hook(|report: &arcycle::Report<'_>| {
///     let _line = format!("{:?}: {}", report.kind, report.message);
/// });
/// # arcycle::reset_report_hook();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Report<'a> {
    /// What went wrong.
    pub kind: ReportKind,
    /// A one-line description, including the panic's message if any.
    pub message: &'a str,
}

type Hook = Arc<dyn Fn(&Report<'_>) + Send + Sync>;

#[cfg(not(arcycle_loom))]
static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref HOOK: Mutex<Option<Hook>> = Mutex::new(None);
}

/// Send the library's messages (see [`ReportKind`]) to `hook` instead of
/// stderr. The hook runs on the thread that hit the problem, possibly
/// inside a destructor or while a panic unwinds: keep it short, and do not
/// panic (a panicking hook is ignored).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = seen.clone();
/// arcycle::set_report_hook(move |report| {
///     counter.fetch_add(1, Ordering::Relaxed);
///     let _ = (report.kind, report.message); // log it somewhere
/// });
/// // ... later, back to the default (stderr):
/// arcycle::reset_report_hook();
/// # assert_eq!(seen.load(Ordering::Relaxed), 0);
/// ```
///
/// To silence every message: `arcycle::set_report_hook(|_| {})`.
pub fn set_report_hook<F>(hook: F)
where
    F: Fn(&Report<'_>) + Send + Sync + 'static,
{
    *lock(&HOOK) = Some(Arc::new(hook));
}

/// Send the library's messages to stderr again (the default).
///
/// ```
/// arcycle::set_report_hook(|_| {});
/// arcycle::reset_report_hook();
/// ```
pub fn reset_report_hook() {
    *lock(&HOOK) = None;
}

/// The hook's lock, for `fork` (see `collector::worker`).
#[cfg(all(unix, not(miri), not(arcycle_loom)))]
pub(crate) fn lock_for_fork() -> Box<dyn std::any::Any> {
    Box::new(lock(&HOOK))
}

/// Report `message` through the hook, or to stderr.
pub(crate) fn report(kind: ReportKind, message: &str) {
    // Clone the hook out of the lock: it may set another hook itself.
    let hook = lock(&HOOK).clone();
    match hook {
        Some(hook) => {
            let report = Report { kind, message };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(&report))) {
                crate::collector::drop_payload(payload);
            }
        }
        None => eprintln!("arcycle: {message}"),
    }
}

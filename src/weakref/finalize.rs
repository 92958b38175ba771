//! [`finalize`]: a callback that runs once, after an object dies.
//!
//! # Guarantees
//!
//! * **Exactly once**, whichever comes first: the object's death (last
//!   drop on any thread, or a collection), [`Finalizer::call`], or never if
//!   [`Finalizer::detach`] comes first. The callback sits in a mutex-guarded
//!   `Option`; whoever takes it out runs it, outside every lock.
//! * **Never on a live object, never zero times.** Registration happens
//!   while the caller holds a strong handle, so the object cannot die
//!   during it, and the death path (see the module `weakref`) sees the
//!   registration: the registrant's handle drop orders it before the last
//!   drop, or before the collector's decision.
//! * **After the destructors**: of the object (last drop), or of every
//!   member of the collected set (collection); several finalizers of one
//!   object run in registration order.
//!
//! Guarded by the loom model `finalize_vs_last_drop` and the tests in
//! `tests/weakref.rs` (`finalizers_*`).

use super::{register, unregister, Reg};
use crate::sync::{lock, Mutex};
use crate::trace::Trace;
use crate::Cc;
use std::fmt;
use std::sync::Arc;

type Callback = Box<dyn FnOnce() + Send>;

/// A finalizer's shared state: the callback until someone takes it.
pub(crate) struct FinState {
    callback: Mutex<Option<Callback>>,
}

impl FinState {
    /// Take the callback out, if still pending (the lock is released
    /// before the callback runs or is dropped).
    fn take(&self) -> Option<Callback> {
        lock(&self.callback).take()
    }

    /// The object died: run the callback if still pending.
    pub(crate) fn fire(&self) {
        if let Some(cb) = self.take() {
            cb();
        }
    }
}

/// Run `callback` once, after `object` dies — by its last drop on any
/// thread, or by a collection — like Python's `weakref.finalize`.
///
/// The callback has no access to the object (it cannot resurrect it); it
/// runs on the thread where the object died, after the object's
/// destructor (for a collected cycle: after every destructor of the
/// cycle), outside every lock of the library. It may use weak collections,
/// register finalizers, drop handles and call [`collect`](crate::collect).
/// Several finalizers of one object run in registration order. Dropping
/// the returned [`Finalizer`] does not cancel it ([`Finalizer::detach`]
/// does).
///
/// A panicking callback does not stop the others: the panic reaches the
/// dropper (for a last drop, as a panicking `Drop` would) or the caller of
/// `collect()`, after everything else ran; for an automatic collection it
/// is reported (see [`set_report_hook`](crate::set_report_hook)).
///
/// An object destroyed by the collector can still be reached through a
/// handle a destructor of its cycle cloned; a finalizer registered through
/// such a handle runs at once, before `finalize` returns.
///
/// ```
/// use arcycle::Cc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use std::sync::Arc;
///
/// let calls = Arc::new(AtomicUsize::new(0));
/// let obj = Cc::new(String::from("resource"));
/// let c = calls.clone();
/// let f = arcycle::finalize(&obj, move || {
///     c.fetch_add(1, SeqCst);
/// });
/// assert!(f.alive());
/// drop(obj); // the last handle: the finalizer runs here
/// assert_eq!(calls.load(SeqCst), 1);
/// assert!(!f.alive());
/// ```
pub fn finalize<T, F>(object: &Cc<T>, callback: F) -> Finalizer
where
    T: Trace,
    F: FnOnce() + Send + 'static,
{
    let state = Arc::new(FinState {
        callback: Mutex::new(Some(Box::new(callback))),
    });
    let addr = super::addr_of(object);
    if let Err(reg) = register(object, Reg::Finalizer(state.clone())) {
        // Already dead: its registrations have run. Run this one now.
        drop(reg);
        state.fire();
    }
    Finalizer { state, addr }
}

/// The handle of a callback registered with [`finalize`].
///
/// ```
/// let obj = arcycle::Cc::new(1);
/// let f = arcycle::finalize(&obj, || {});
/// assert!(f.detach());
/// assert!(!f.alive());
/// ```
pub struct Finalizer {
    state: Arc<FinState>,
    addr: usize,
}

impl Finalizer {
    /// Whether the callback is still pending (neither run nor detached).
    ///
    /// ```
    /// let obj = arcycle::Cc::new(1);
    /// let f = arcycle::finalize(&obj, || {});
    /// assert!(f.alive());
    /// drop(obj);
    /// assert!(!f.alive());
    /// ```
    pub fn alive(&self) -> bool {
        lock(&self.state.callback).is_some()
    }

    /// Unregister the callback without running it. Returns true if it was
    /// still pending.
    ///
    /// ```
    /// let obj = arcycle::Cc::new(1);
    /// let f = arcycle::finalize(&obj, || panic!("never runs"));
    /// assert!(f.detach());
    /// assert!(!f.detach());
    /// drop(obj);
    /// ```
    pub fn detach(&self) -> bool {
        match self.state.take() {
            Some(cb) => {
                self.forget();
                drop(cb);
                true
            }
            None => false,
        }
    }

    /// Run the callback now, if still pending (it will not run again).
    /// Returns true if it ran. A panic of the callback reaches the caller.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    /// use std::sync::Arc;
    ///
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let obj = arcycle::Cc::new(1);
    /// let r = ran.clone();
    /// let f = arcycle::finalize(&obj, move || r.store(true, SeqCst));
    /// assert!(f.call());
    /// assert!(ran.load(SeqCst));
    /// assert!(!f.call()); // once
    /// drop(obj); // does not run it again
    /// ```
    pub fn call(&self) -> bool {
        match self.state.take() {
            Some(cb) => {
                self.forget();
                cb();
                true
            }
            None => false,
        }
    }

    /// Remove the registration from the registry (the object may be long
    /// lived; its record must not keep detached finalizers).
    fn forget(&self) {
        let me = Arc::as_ptr(&self.state);
        unregister(self.addr, |r| match r {
            Reg::Finalizer(s) => Arc::as_ptr(s) == me,
            Reg::Watch { .. } => false,
        });
    }
}

impl fmt::Debug for Finalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finalizer")
            .field("alive", &self.alive())
            .finish()
    }
}

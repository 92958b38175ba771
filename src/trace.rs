//! The `Trace` machinery: how the collector learns a value's edges.
//!
//! # The rule every `Trace` impl follows
//!
//! `trace` reports, through [`Tracer::edge`], every [`Cc`] the value holds
//! *right now*, each exactly once per handle. The asymmetry that makes the
//! trait `unsafe`:
//!
//! * **Under-reporting is safe.** An edge the collector does not see makes
//!   its target look referenced from outside, so the target (and everything
//!   it reaches) is kept. At worst a cycle leaks.
//! * **Over-reporting is unsound.** An edge reported twice, or one that is
//!   not there, can make a live object look unreachable and get it freed
//!   while a handle to it exists.
//!
//! Two more rules follow from the collector running concurrently with the
//! program:
//!
//! * **Never block.** The collector calls `trace` while it holds locks of
//!   other objects. Reach mutable state only through non-blocking
//!   acquisition (`try_lock`, `try_read`) and hand the guard to
//!   [`Tracer::hold`]; if the lock is taken, call [`Tracer::busy`] and
//!   report nothing for it. The provided impls for `Mutex` and `RwLock` do
//!   exactly this.
//! * **Never trace through shared ownership the collector cannot count**,
//!   such as `std::sync::Arc<T>`: what is inside an `Arc` is also reachable
//!   through the `Arc`'s other clones, which the collector cannot see, so
//!   the impl for `Arc<T>` reports nothing (a `Cc` cycle through an `Arc`
//!   leaks, safely). Use `Cc` instead of `Arc` inside collected graphs.
//!
//! Types that hold no `Cc` at all should say so with [`leaf!`](crate::leaf)
//! (or `#[trace(leaf)]` on the derive): their `may_have_edges()` is `false`,
//! and a `Cc` of such a type behaves exactly like an `Arc` — its drops never
//! buffer a possible root.

use crate::cc::Cc;
pub(crate) use crate::erased::Node;
use crate::header::{count, held_by_collection, Header, DEAD};
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Acquire;

/// A type whose values can report the [`Cc`] handles they hold.
///
/// Derive it with `#[derive(Trace)]` (fields marked `#[trace(skip)]` are
/// left out), declare a type that holds no `Cc` with
/// [`leaf!`](crate::leaf), or implement it by hand.
///
/// # Safety
///
/// An implementation must report, with [`Tracer::edge`], only `Cc`s that
/// the value owns at the moment of the call, each at most once. Reporting a
/// handle that is not there (or twice) can make the collector free live
/// data; leaving one out is safe and can only leak. `trace` must not block
/// (use `try_lock`-style acquisition and [`Tracer::hold`] the guard, or call
/// [`Tracer::busy`]), and must not trace into data that is reachable other
/// than through this value (such as the inside of a `std::sync::Arc`).
/// Every edge read *without* a guard handed to [`Tracer::hold`] must sit in
/// a field that cannot lose it while the value is shared: immutable, or
/// set-once like `OnceLock` (the collector relies on this to skip
/// re-tracing such values).
/// `may_have_edges()` may be `false` only if `trace` never reports an edge.
///
/// # Liveness: one lock, one object
///
/// While the collector validates a garbage candidate it keeps every guard
/// its `trace` handed over, across the whole candidate set. A lock shared
/// by several objects (one `Mutex` behind a `std::sync::Arc` that many
/// nodes try-lock in their `trace`) is therefore already held by the
/// collector when the second object asks for it: that object reports
/// [`Tracer::busy`] in every collection and its cycle is never freed. This
/// is safe (busy only keeps objects), but it leaks. Guard each object's
/// edges by a lock of its own.
///
/// # Panics
///
/// A `trace` that panics (or a guard handed to [`Tracer::hold`] whose
/// `Drop` panics) is reported once — the panic reaches the caller of
/// [`collect`](crate::collect) — and its object is *quarantined*: never
/// traced again, so it and everything it reaches are kept (as with an impl
/// that reports nothing), and counted in
/// [`Stats::quarantined`](crate::Stats::quarantined).
///
/// # Example
///
/// ```
/// use arcycle::{Cc, Trace, Tracer};
/// use std::sync::Mutex;
///
/// struct Node {
///     name: String,
///     next: Mutex<Option<Cc<Node>>>,
/// }
///
/// // SAFETY: reports the one `Cc` the node owns, through `Mutex`'s impl,
/// // which only try-locks.
/// unsafe impl Trace for Node {
///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
///         self.next.trace(tracer);
///     }
/// }
///
/// let a = Cc::new(Node { name: "a".into(), next: Mutex::new(None) });
/// *a.next.lock().unwrap() = Some(a.clone()); // a self-loop
/// drop(a);
/// assert!(arcycle::collect() >= 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `arcycle::Trace`",
    label = "the collector cannot see the `Cc`s inside `{Self}`",
    note = "for your own types: `#[derive(Trace)]`, or `arcycle::leaf!({Self})` if it holds no `Cc`",
    note = "for a field the collector need not see: `#[trace(skip)]` (it can only leak, never free live data)",
    note = "for a foreign type (orphan rule): wrap it in a newtype of your own and implement `Trace` for that"
)]
pub unsafe trait Trace {
    /// Whether a value of this type can hold a [`Cc`] at all.
    ///
    /// `false` makes `Cc<Self>` exactly as cheap as `Arc<Self>`: its drops
    /// never buffer a possible root, because such a value cannot be on a
    /// cycle. `Cc<T>` answers `true` without looking into `T`, which keeps
    /// self-referential types from recursing. The answer is recorded once,
    /// when a `Cc` is built (where the concrete type is known), which is why
    /// this is a function of the type that exists only for sized types: it
    /// keeps `Trace` usable as `dyn Trace` and as a supertrait of your own
    /// object-safe traits (`Cc<dyn Shape>`).
    ///
    /// It must return the same answer every time (it is meant to fold to a
    /// constant), and must not call itself through the types it looks at:
    /// compute it from field types that do not contain `Self`.
    ///
    /// ```
    /// use arcycle::{Cc, Trace};
    /// assert!(!<String as Trace>::may_have_edges());
    /// assert!(<Vec<Cc<String>> as Trace>::may_have_edges());
    /// ```
    #[inline(always)]
    fn may_have_edges() -> bool
    where
        Self: Sized,
    {
        true
    }

    /// Report every `Cc` this value holds to `tracer`.
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>);
}

/// What a [`Trace`] impl reports to.
///
/// The collector hands one to [`Trace::trace`]; user code never makes one.
/// The lifetime `'a` is that of the traced value, so lock guards taken from
/// it can be given to [`hold`](Tracer::hold).
///
/// ```
/// use arcycle::{Cc, Trace, Tracer};
///
/// struct Parent {
///     children: Vec<Cc<Parent>>, // immutable once shared
/// }
///
/// // SAFETY: reports each handle the value owns, once.
/// unsafe impl Trace for Parent {
///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
///         for child in &self.children {
///             tracer.edge(child);
///         }
///     }
/// }
///
/// let leaf = Cc::new(Parent { children: Vec::new() });
/// let root = Cc::new(Parent { children: vec![leaf.clone(), leaf] });
/// assert_eq!(root.children.len(), 2);
/// ```
pub struct Tracer<'a> {
    /// The headers of the reported children (an address only: the
    /// collector reads each child's word itself, see `header`).
    pub(crate) edges: Vec<NonNull<Header>>,
    pub(crate) guards: Vec<HeldGuard<'a>>,
    pub(crate) busy: bool,
    /// Edges hidden from the collector, recorded only for a leak report
    /// (`debug::collect_with_report`): `None` in every other trace, so the
    /// derive's probes (see [`record_hidden`]) do nothing.
    pub(crate) hidden: Option<Vec<HiddenEdge>>,
    /// Whether values behind locks are traced later (see [`Deferred`]);
    /// `false` (the default) traces them at once.
    pub(crate) defer: bool,
    /// The values deferred so far.
    pub(crate) deferred: Vec<Deferred<'a>>,
}

/// A value read under a lock whose guard the tracer holds, traced later
/// by [`Tracer::run_deferred`].
///
/// Why: taking a lock is a locked RMW, a full barrier on x86, and a traced
/// value's edges usually sit in a heap buffer of their own (a `Vec`), one
/// more cache miss behind the object's. Traced at once, every object's
/// buffer miss waits for its own lock and blocks the next one: the misses
/// of a big graph run one at a time. Pass 1 locks a batch of objects
/// first and traces their values after, with no barrier between them, so
/// the misses overlap.
///
/// Sound because the guard is held by the tracer until the collector has
/// recorded the object's edges, and the collector holds the object (its
/// value stays in place) until the collection ends: the `&'a T` behind
/// `value` is valid and protected until the deferred trace runs.
#[derive(Clone, Copy)]
pub(crate) struct Deferred<'a> {
    value: *const (),
    trace: unsafe fn(*const (), &mut Tracer<'a>),
}

/// [`Deferred`]'s trace function for a `T`.
///
/// # Safety
/// `value` is a `&'a T` (see [`Deferred`]).
unsafe fn trace_deferred<'a, T: Trace + 'a>(value: *const (), tracer: &mut Tracer<'a>) {
    // SAFETY: forwarded contract.
    let value: &'a T = unsafe { &*value.cast::<T>() };
    value.trace(tracer);
}

/// Where a derived `Trace` impl found an edge it does not report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HiddenKind {
    /// Inside a `std::sync::Arc` field (whose `Trace` reports nothing).
    Arc,
    /// In a `#[trace(skip)]` field.
    Skip,
}

/// A handle the traced value holds without reporting it: to `target`
/// directly (`via == None`), or to `via`, whose value holds `target`.
#[derive(Clone, Copy)]
pub(crate) struct HiddenEdge {
    pub(crate) kind: HiddenKind,
    /// The target's header address.
    pub(crate) target: usize,
    pub(crate) via: Option<Node>,
}

/// For a leak report only: trace `value` (the inside of an `Arc` field, or
/// a skipped field) into a throwaway tracer and record the edges it
/// reports as hidden — and, one step further, the edges of each such
/// target (so that a report can say "held by an object no collection
/// examined, which this one holds in a skipped field").
///
/// They never count as edges: they only label, by address, survivors of
/// the collection being reported on. Each target is traced while the
/// throwaway tracer still holds the guards that keep its handle in place
/// (so it is alive: count above zero, and no collection but this one runs);
/// all guards are released before this returns, so a target may be gone
/// by the time the report compares addresses: a label can be wrong, never
/// a count. Panics of the impls run here are caught and dropped: a report
/// must not quarantine anything.
#[cold]
#[inline(never)]
pub(crate) fn record_hidden<'a, U: Trace + ?Sized>(
    value: &'a U,
    tracer: &mut Tracer<'a>,
    kind: HiddenKind,
) {
    let Some(hidden) = tracer.hidden.as_mut() else {
        return;
    };
    let mut sub = Tracer::new();
    let traced = catch_unwind(AssertUnwindSafe(|| value.trace(&mut sub)));
    if let Err(payload) = traced {
        crate::collector::drop_payload(payload);
    }
    let firsts = std::mem::take(&mut sub.edges);
    for &first in &firsts {
        hidden.push(HiddenEdge {
            kind,
            target: first.as_ptr() as usize,
            via: None,
        });
        // Acquire: as the collector's hold, before reading a value. The
        // handle in `value`'s field (kept there by `sub`'s guards) keeps
        // the count above zero; a dead value is not read. An object this
        // collection holds is examined by it and reports its own edges
        // (and its word carries a visit number, not its code).
        // SAFETY: the handle in `value`'s field keeps the allocation.
        let s = unsafe { first.as_ref() }.strong.load(Acquire);
        if count(s) == 0 || s & DEAD != 0 || held_by_collection(s) {
            continue;
        }
        let first = Node::from_word(first, s);
        let mut next = Tracer::new();
        let traced = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `first` is alive (above) until `sub` releases its
            // guards, after `next` (which borrows from it) is gone.
            unsafe { (first.vtable.trace)(first.header, &mut next) }
        }));
        if let Err(payload) = traced {
            crate::collector::drop_payload(payload);
        }
        hidden.extend(next.edges.drain(..).map(|target| HiddenEdge {
            kind,
            target: target.as_ptr() as usize,
            via: Some(first),
        }));
        drop(next);
    }
    drop(sub);
}

/// A type-erased lock guard whose only job left is to be dropped later.
///
/// Stored inline when it fits in three words (`MutexGuard` and
/// `RwLockReadGuard` take two), boxed otherwise: the collector holds one
/// guard per locked field of every candidate, and a heap allocation per
/// guard was half of a collection's cost.
pub(crate) struct HeldGuard<'a> {
    data: MaybeUninit<[usize; 3]>,
    drop_fn: unsafe fn(*mut u8),
    // Borrows from 'a (dropck keeps 'a alive until the guard drops), and is
    // neither Send nor Sync: a guard must be released on its own thread.
    _marker: PhantomData<(&'a (), *const ())>,
}

impl<'a> HeldGuard<'a> {
    fn new<G: 'a>(guard: G) -> Self {
        let mut data = MaybeUninit::<[usize; 3]>::uninit();
        let drop_fn: unsafe fn(*mut u8) = if size_of::<G>() <= size_of::<[usize; 3]>()
            && align_of::<G>() <= align_of::<usize>()
        {
            // SAFETY: `G` fits in `data` and needs no stricter alignment.
            unsafe { data.as_mut_ptr().cast::<G>().write(guard) };
            drop_inline::<G>
        } else {
            let boxed: *mut G = Box::into_raw(Box::new(guard));
            // SAFETY: a pointer fits in `data`.
            unsafe { data.as_mut_ptr().cast::<*mut G>().write(boxed) };
            drop_boxed::<G>
        };
        HeldGuard {
            data,
            drop_fn,
            _marker: PhantomData,
        }
    }
}

/// # Safety
/// `p` holds a `G` written by `HeldGuard::new`, dropped only here.
unsafe fn drop_inline<G>(p: *mut u8) {
    // SAFETY: per the contract.
    unsafe { std::ptr::drop_in_place(p.cast::<G>()) }
}

/// # Safety
/// `p` holds a `*mut G` from `Box::into_raw`, dropped only here.
unsafe fn drop_boxed<G>(p: *mut u8) {
    // SAFETY: per the contract.
    drop(unsafe { Box::from_raw(p.cast::<*mut G>().read()) })
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: `drop_fn` matches what `new` stored; this runs once.
        unsafe { (self.drop_fn)(self.data.as_mut_ptr().cast()) }
    }
}

/// The buffer of an emptied guard list, kept from one collection to the
/// next (`collector::scratch`): validation holds a guard per locked member
/// of a batch, and a batch of a million members filled a fresh 32 MB list
/// (page faults and copies while it doubled) every collection.
///
/// Always empty: it holds capacity, never a guard, so it has no lifetime
/// and may move to another thread.
#[derive(Default)]
pub(crate) struct GuardBuffer(Vec<HeldGuard<'static>>);

// SAFETY: the vector is always empty (`keep` and `Default` are the only
// ways to make one): it owns a buffer of plain memory and no guard, so
// nothing in it is bound to a thread.
unsafe impl Send for GuardBuffer {}

impl GuardBuffer {
    /// Keep the buffer of `guards` if it is empty (every guard released);
    /// else nothing is kept (and `guards` drops as usual).
    pub(crate) fn keep(guards: Vec<HeldGuard<'_>>) -> GuardBuffer {
        debug_assert!(guards.is_empty(), "a kept guard list still holds guards");
        if !guards.is_empty() {
            return GuardBuffer::default();
        }
        let mut guards = std::mem::ManuallyDrop::new(guards);
        // SAFETY: the buffer of a `Vec<HeldGuard<'_>>` with its capacity,
        // taken over once (`guards` is never dropped); `HeldGuard<'static>`
        // has the same layout (only the lifetime differs), and with length
        // zero no guard outlives the borrow its lifetime stood for.
        GuardBuffer(unsafe {
            Vec::from_raw_parts(
                guards.as_mut_ptr().cast::<HeldGuard<'static>>(),
                0,
                guards.capacity(),
            )
        })
    }

    /// The buffer as an empty guard list of any lifetime (`HeldGuard` is
    /// covariant in it).
    pub(crate) fn into_vec<'a>(self) -> Vec<HeldGuard<'a>> {
        self.0
    }

    /// Give the buffer back if it has more than `max` places.
    pub(crate) fn bound(&mut self, max: usize) {
        if self.0.capacity() > max {
            *self = GuardBuffer::default();
        }
    }
}

impl<'a> Tracer<'a> {
    pub(crate) fn new() -> Self {
        Tracer {
            edges: Vec::new(),
            guards: Vec::new(),
            busy: false,
            hidden: None,
            defer: false,
            deferred: Vec::new(),
        }
    }

    /// Hold `guard` (a lock on a field of the traced value, taken without
    /// blocking) and trace the value behind it: now, or (in a tracer that
    /// defers, see [`Deferred`]) when the collector runs
    /// [`run_deferred`](Tracer::run_deferred). The one path of every
    /// provided lock impl (`std`'s, and the integrations').
    ///
    /// The guard goes to the tracer first: a `Trace` that panics then
    /// unwinds without dropping it, so the lock is released later by the
    /// collector, not poisoned (the trace changed nothing).
    #[inline]
    pub(crate) fn trace_guarded<T, G>(&mut self, guard: G)
    where
        T: Trace + 'a,
        G: std::ops::Deref<Target = T> + 'a,
    {
        let data: *const T = &*guard;
        self.hold(guard);
        // SAFETY: the data lives inside the lock, which is a field of the
        // traced value and so lives for 'a; the guard, held by this tracer
        // (until the decision in pass 2, until the object's edges are
        // recorded in pass 1), keeps it protected while it is read. Moving
        // a guard does not move the data. The `&'a` is not used once the
        // (possibly deferred) trace returns; only raw edge pointers remain.
        let value: &'a T = unsafe { &*data };
        if self.defer {
            self.deferred.push(Deferred {
                value: (value as *const T).cast(),
                trace: trace_deferred::<T>,
            });
        } else {
            value.trace(self);
        }
    }

    /// Trace every deferred value, in order, and forget them. A value
    /// locked while these run (a lock inside a locked value) is traced at
    /// once.
    pub(crate) fn run_deferred(&mut self) {
        self.defer = false;
        // By index: with `defer` off, the traces run here push nothing, so
        // the list keeps its length until the end. A panic leaves it to the
        // caller, which clears it when it quarantines the object.
        for k in 0..self.deferred.len() {
            let d = self.deferred[k];
            // SAFETY: pushed by `trace_guarded` from a `&'a T` whose
            // guard this tracer still holds (see `Deferred`).
            unsafe { (d.trace)(d.value, self) };
        }
        self.deferred.clear();
    }

    /// Report that the traced value holds `cc`.
    ///
    /// Call once per handle the value owns (more examples on [`Tracer`]).
    ///
    /// ```
    /// use arcycle::{Cc, Trace, Tracer};
    ///
    /// struct Link(Option<Cc<Link>>); // set before sharing, never changed
    ///
    /// // SAFETY: reports the one handle the value may own, once.
    /// unsafe impl Trace for Link {
    ///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
    ///         if let Some(next) = &self.0 {
    ///             tracer.edge(next);
    ///         }
    ///     }
    /// }
    ///
    /// let tail = Cc::new(Link(None));
    /// let head = Cc::new(Link(Some(tail.clone())));
    /// let edges = arcycle::debug::referents(&head);
    /// assert_eq!(edges.edges.len(), 1);
    /// assert!(edges.edges[0].is(&tail));
    /// ```
    #[inline]
    pub fn edge<T: ?Sized>(&mut self, cc: &Cc<T>) {
        // A leaf can never be on a cycle: the collector need not visit it.
        // Whether the target is one was recorded when it was allocated
        // (the handle's tag), so this works for `Cc<dyn Trait>` as well.
        if cc.is_tracked() {
            self.edges.push(cc.header_ptr());
        }
    }

    /// Keep `guard` (a lock guard taken from the traced value) alive until
    /// the collector has decided about this value.
    ///
    /// While the collector validates a garbage candidate it must see the
    /// candidate's fields frozen; holding the guard is how it freezes them.
    /// In the optimistic first pass the guard is dropped as soon as this
    /// value's edges have been read.
    ///
    /// The shape of a hand-written impl for a locked field: try to lock,
    /// report the edges read through the guard, hand the guard over — or,
    /// if the lock is taken, report [`busy`](Tracer::busy):
    ///
    /// ```
    /// use arcycle::{Cc, Trace, Tracer};
    /// use std::sync::{Mutex, TryLockError};
    ///
    /// struct Slot {
    ///     inner: Mutex<Vec<Cc<Slot>>>,
    /// }
    ///
    /// // SAFETY: reports each handle in `inner` once, read under the lock,
    /// // which is taken without blocking and kept by the tracer.
    /// unsafe impl Trace for Slot {
    ///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
    ///         let guard = match self.inner.try_lock() {
    ///             Ok(g) => g,
    ///             Err(TryLockError::Poisoned(p)) => p.into_inner(),
    ///             // Someone is using it: it is live for this collection.
    ///             Err(TryLockError::WouldBlock) => return tracer.busy(),
    ///         };
    ///         for cc in guard.iter() {
    ///             tracer.edge(cc);
    ///         }
    ///         tracer.hold(guard);
    ///     }
    /// }
    ///
    /// let a = Cc::new(Slot { inner: Mutex::new(Vec::new()) });
    /// a.inner.lock().unwrap().push(a.clone());
    /// drop(a);
    /// assert!(arcycle::collect() >= 1);
    /// ```
    #[inline]
    pub fn hold<G: 'a>(&mut self, guard: G) {
        self.guards.push(HeldGuard::new(guard));
    }

    /// Report that part of the value could not be read right now (a lock
    /// was taken). The collector then treats the value as in use: live for
    /// this collection, and tried again by the next one. See
    /// [`hold`](Tracer::hold) for the shape of an impl that locks.
    ///
    /// ```
    /// use arcycle::{Cc, Trace, Tracer};
    /// use std::sync::Mutex;
    ///
    /// struct Slot(Mutex<Option<Cc<Slot>>>);
    ///
    /// // SAFETY: reports the handle in the slot, read under the lock; a
    /// // taken lock reports nothing and says so.
    /// unsafe impl Trace for Slot {
    ///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
    ///         match self.0.try_lock() {
    ///             Ok(guard) => {
    ///                 if let Some(cc) = guard.as_ref() {
    ///                     tracer.edge(cc);
    ///                 }
    ///                 tracer.hold(guard);
    ///             }
    ///             Err(_) => tracer.busy(),
    ///         }
    ///     }
    /// }
    ///
    /// let a = Cc::new(Slot(Mutex::new(None)));
    /// *a.0.lock().unwrap() = Some(a.clone());
    /// drop(a);
    /// assert!(arcycle::collect() >= 1); // nobody held the lock
    /// ```
    #[inline]
    pub fn busy(&mut self) {
        self.busy = true;
    }
}

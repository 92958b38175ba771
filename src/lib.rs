//! Thread-safe reference counting that also frees cycles.
//!
//! [`Cc<T>`] and [`Weak<T>`] are drop-ins for [`std::sync::Arc`] and
//! [`std::sync::Weak`]: atomic counts, lock-free `clone` and `drop`, and a
//! value destroyed by whichever thread drops its last handle, at once.
//! What they add is Python's other half: a **cycle collector** that frees
//! groups of objects that only reference each other — which counting alone
//! leaks — while every other thread keeps running.
//!
//! # Quick start
//!
//! Derive [`Trace`] for every type you put in a `Cc` that can hold `Cc`s
//! (directly, or inside `Mutex`, `RwLock`, `Vec`, `Option`, ...), use `Cc`
//! where you would use `Arc`, and let the collector free the cycles:
//!
//! ```
//! use arcycle::{Cc, Trace};
//! use std::sync::Mutex;
//!
//! #[derive(Trace)]
//! struct Node {
//!     label: u32,
//!     next: Mutex<Option<Cc<Node>>>,
//! }
//!
//! // A ring of three, shared with another thread.
//! let a = Cc::new(Node { label: 1, next: Mutex::new(None) });
//! let b = Cc::new(Node { label: 2, next: Mutex::new(Some(a.clone())) });
//! let c = Cc::new(Node { label: 3, next: Mutex::new(Some(b.clone())) });
//! *a.next.lock().unwrap() = Some(c.clone());
//! let sum = std::thread::spawn(move || c.label + a.label + b.label).join().unwrap();
//! assert_eq!(sum, 6);
//!
//! // Every outside handle is gone; the ring keeps itself alive. The
//! // collector frees it (automatically after enough drops, or now):
//! assert!(arcycle::collect() >= 3);
//! ```
//!
//! # Telling the collector about your types
//!
//! The collector must see the `Cc`s a value holds (its *edges*). Three ways:
//!
//! * **`#[derive(Trace)]`** — for your structs and enums. Every field is
//!   traced; `#[trace(skip)]` leaves one out, `#[trace(leaf)]` on the type
//!   declares that it holds no `Cc` at all. Both can only under-report,
//!   which is always safe (a missed edge can only leak, never free live
//!   data), so the derive is safe to use.
//! * **[`leaf!`]** — for your own types that hold no `Cc`: their `Cc` then
//!   costs exactly what `Arc` costs (its drops never buffer a possible
//!   root). For foreign types, see [`integrations`], "Foreign types";
//!   that module also lists the optional Cargo features that implement
//!   `Trace` for other crates' types (`parking_lot`, `tokio`, ...).
//! * **A manual `unsafe impl Trace`** — when the derive cannot see your
//!   edges (a custom container, a lock type of your own). The contract is
//!   on [`Trace`]: report each owned `Cc` exactly once; never block —
//!   `try_lock` and hand the guard to [`Tracer::hold`], or call
//!   [`Tracer::busy`] if the lock is taken; never trace into data shared
//!   with the outside (the inside of a `std::sync::Arc`). A worked impl
//!   that holds its guard is on [`Tracer::hold`].
//!
//! # Threads, destructors and where they run
//!
//! * The last drop of a value destroys it on the dropping thread before
//!   `drop` returns, exactly like `Arc` — also while a collection is
//!   looking at the object (the drop waits for the collector, never for
//!   another mutator).
//! * Cycles are destroyed by the thread that runs the collection: the
//!   caller of [`collect`], or, for automatic collections, the
//!   **collector thread** `arcycle-collector` (started lazily, parked
//!   while idle; see [`set_background`]). So a destructor of collected
//!   garbage never runs inside an unrelated `Cc::new` or drop of yours,
//!   holding whatever locks that code holds. With `set_background(false)`
//!   automatic collections run inline, on the thread whose [`Cc::new`] or
//!   drop crossed the [`threshold`], as Python's do. A small garbage
//!   cycle below the threshold is still freed, after a
//!   [quiet period](set_quiet_period). A program that makes garbage
//!   faster than the collector thread frees it is *paced*: an allocation
//!   that finds a whole threshold of possible roots waiting behind a
//!   running collection waits for it (at most the
//!   [pace limit](set_pace_limit), 20 ms), so the garbage waiting stays
//!   within about two thresholds' worth instead of growing; and after a
//!   collection the thread goes on with the next one at once while roots
//!   keep arriving that fast (a quarter threshold piled up meanwhile),
//!   rather than waiting for a whole threshold. In a small
//!   heap the trigger is lower: a [fraction](set_heap_fraction) of the
//!   live heap (a quarter by default), so the garbage waiting stays a
//!   bounded share of the heap.
//! * Automatic collections are *young* ones ([`collect_young`]) unless a
//!   full one is due: objects that survived a collection are left alone,
//!   so a program with a big live graph does not pay for tracing it again
//!   in every collection. A garbage cycle through such an old object waits
//!   for the next full collection: [`collect`], a quiet pass, or an
//!   automatic one once enough of their roots have piled up.
//! * [`add_callback`] tells you when each collection starts and stops,
//!   with what it freed and how long it took.
//! * When a cycle is freed, a member's `Drop` may meet a peer whose value
//!   is already gone: dereferencing it panics with a clear message; use
//!   [`Cc::try_deref`] or [`Cc::is_dead`] in such destructors.
//! * A panic in a destructor or `Trace` impl during [`collect`] reaches its
//!   caller after everything else was freed; during an automatic
//!   collection (on the collector thread or inline) it is reported
//!   through [`set_report_hook`] (stderr by default). The library prints
//!   nothing else.
//! * `Cc::new` requires `T: Send + Sync + 'static`: the collector may
//!   destroy a value on any thread, at any later time.
//!
//! # Weak collections and finalizers
//!
//! Python's `weakref`, made for threads ([`weakref`]):
//! [`WeakValueMap`] (a cache that never keeps its objects alive, with
//! [`get_or_insert_with`](WeakValueMap::get_or_insert_with) building each
//! object once), [`WeakKeyMap`] (a side table keyed by object identity),
//! [`WeakSet`] (observers, listeners) and [`finalize`] (a callback after an
//! object dies, by last drop or collection, after its destructor). Their
//! entries go when their objects die, with no rescans; an object with no
//! finalizer and in no weak collection pays nothing for any of it.
//!
//! # Debugging a leak
//!
//! If memory grows although you drop your handles: call [`collect`] and
//! look at [`stats`] — `roots_buffered` (possible roots waiting),
//! `quarantined` (objects whose `Trace` panicked and are kept for ever),
//! `freed`. A cycle is never freed if one of its members is reachable
//! through an edge the collector cannot see: a `#[trace(skip)]` field, a
//! type declared a leaf, a `std::sync::Arc` (use `Cc` inside collected
//! graphs), or a lock another object's `Trace` also takes (see [`Trace`],
//! "Liveness"). [`Weak::upgrade`] on a handle you kept tells whether an
//! object is still alive.
//!
//! The [`debug`] module finds such edges: `census()` (Cargo feature
//! `census`) counts live objects and bytes per type, so you see *what*
//! grows; [`debug::collect_with_report`] runs a collection and says, for
//! every object it examined and kept, *why* (an external handle, one
//! hidden in an `Arc` or a skipped field, a busy lock, ...), as text or a
//! Graphviz graph; [`debug::referents`] and [`debug::TraceTest`] show and
//! test what a `Trace` impl reports. `examples/leak_hunt.rs` walks through
//! it.
//!
//! # Unsized values, trait objects, type erasure
//!
//! `Cc<str>`, `Cc<[T]>` and `Cc<dyn Trait>` work as with `Arc`: build
//! them with the `From` conversions and `collect()`, or unsize a `Cc<T>`
//! with [`coerce!`]. Give your object-safe trait `Trace` as a supertrait,
//! and a `Cc<dyn Trait>` is an edge like any other: the collector traces
//! each value through its concrete type, recorded when it was allocated,
//! so cycles through trait objects are freed. To hold a value of any type,
//! use `Cc<dyn Any + Send + Sync>` and `downcast` it back:
//!
//! ```
//! use arcycle::{Cc, Trace};
//! use std::any::Any;
//! use std::sync::Mutex;
//!
//! #[derive(Trace)]
//! struct Slot {
//!     held: Mutex<Option<Cc<dyn Any + Send + Sync>>>, // a traced, type-erased edge
//! }
//!
//! let a = Cc::new(Slot { held: Mutex::new(None) });
//! let erased: Cc<dyn Any + Send + Sync> = arcycle::coerce!(a.clone());
//! *a.held.lock().unwrap() = Some(erased); // a cycle through `dyn Any`
//! let back = a.held.lock().unwrap().clone().unwrap().downcast::<Slot>().ok().unwrap();
//! assert!(Cc::ptr_eq(&back, &a));
//! drop((a, back));
//! assert!(arcycle::collect() >= 1);
//! ```
//!
//! # Limits
//!
//! * Allocating requires `T: Trace + Send + Sync + 'static` (see [`Cc`],
//!   "`Send + Sync + 'static`"); `Cc<T>` and `Weak<T>` themselves put no
//!   bound on `T`, as `Arc` does.
//! * Unsizing is explicit: [`coerce!`] (stable Rust cannot implement
//!   `CoerceUnsized`). `Cc<T> == Cc<T>` always compares values (`Arc`
//!   short-cuts on pointer equality for `T: Eq` through unstable
//!   specialisation).
//! * At most about 2^26 (64 million) strong handles, and as many weak
//!   ones, to one object (more aborts, as `Arc` does past `isize::MAX`).
//! * A destruction nests inside the destructor that started it for up to
//!   128 KiB of stack beyond the outermost drop; deeper, it runs right after
//!   (still before the outermost drop returns), where `Arc` would overflow
//!   the stack.
//! * A lock shared by several objects' `Trace` impls makes them busy for
//!   ever (see [`Trace`], "Liveness"); a `Trace` impl that panicked
//!   quarantines its object.
//! * A `Weak::upgrade` of an object the collector is verifying waits for
//!   the verdict on that object's batch of components (one component, or
//!   small ones together up to 64 members): two CASes per member, no user
//!   code, no blocking.
//!
//! # Model-checking your code with loom
//!
//! Build with `RUSTFLAGS="--cfg arcycle_loom"` and arcycle's `loom`
//! feature, and `Cc`, `Weak` and the collector run on loom's atomics,
//! cells, locks and thread-locals, with fresh global state in every loom
//! execution — so a crate's own loom models can include its `Cc` graphs
//! and `collect()` calls. Automatic collections run inline there (loom
//! cannot model the free-running collector thread; see
//! [`set_background`]). The switch is arcycle's own (as `crossbeam_loom`
//! is crossbeam's): a plain `--cfg loom` does not flip it.
//!
//! # How it works
//!
//! The protocol that keeps the collector sound while other threads run —
//! the count words, the root buffer, the four phases, every ordering — is
//! described in the [`design`] module.
//!
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(all(arcycle_loom, not(feature = "loom")))]
compile_error!(
    "arcycle: `--cfg arcycle_loom` builds arcycle on loom's primitives and needs the \
     `loom` feature too (`arcycle = { version = \"...\", features = [\"loom\"] }` in the \
     crate that runs the loom models)"
);

// Lets the derive's `::arcycle::` paths work inside this crate's own tests.
extern crate self as arcycle;

mod atomic;
mod buffer;
mod cc;
mod collector;
pub mod debug;
pub mod design;
mod destroy;
mod erased;
mod header;
pub mod integrations;
mod report;
mod sync;
mod trace;
mod trace_impls;
mod weak;
pub mod weakref;

pub use atomic::{AtomicCc, AtomicCcGuard, AtomicOptionCc};
pub use cc::{Cc, CcClone};
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub use collector::early::__loom_early_validation;
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub use collector::pace::Handshake as __LoomPaceHandshake;
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub use collector::{
    __loom_collector_round, __loom_quiet_arm, __loom_quiet_disarm, __loom_quiet_signalled,
};
pub use collector::{
    add_callback, collect, collect_young, disable, enable, heap_fraction, is_background,
    is_enabled, pace_limit, quiet_period, remove_callback, set_background, set_heap_fraction,
    set_pace_limit, set_quiet_period, set_threshold, stats, threshold, CallbackId, CollectEvent,
    CollectInfo, PhaseTimes, Stats, DEFAULT_HEAP_FRACTION, DEFAULT_THRESHOLD, MIN_TRIGGER,
};
#[cfg(feature = "census")]
#[cfg_attr(docsrs, doc(cfg(feature = "census")))]
pub use debug::census::{census, TypeCensus};
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub use header::__loom_live_allocations;
pub use report::{reset_report_hook, set_report_hook, Report, ReportKind};
pub use trace::{Trace, Tracer};
pub use weak::Weak;
pub use weakref::{finalize, Finalizer, WeakKeyMap, WeakSet, WeakValueMap};

/// `#[derive(Trace)]`: reports every field's edges; `#[trace(skip)]` on a
/// field leaves it out, `#[trace(leaf)]` on the type declares it a leaf.
/// Both can only under-report, so the derive is always sound.
pub use arcycle_derive::Trace;

/// Declare types that hold no [`Cc`]: `Cc<T>` of such a type costs exactly
/// what `Arc<T>` costs (its drops never buffer a possible root).
///
/// This is safe to use on any type: a leaf reports no edges, and
/// under-reporting can only leak (a `Cc` cycle through a type wrongly
/// declared a leaf is never collected), never free live data.
///
/// It works for your own types only: the orphan rule forbids implementing
/// `Trace` (which this macro does) for a type defined in another crate.
/// Wrap such a type in a newtype of your own and declare that a leaf (see
/// [Foreign types](crate::integrations#foreign-types)).
///
/// ```
/// struct Pixel { r: u8, g: u8, b: u8 }
/// arcycle::leaf!(Pixel);
///
/// let p = arcycle::Cc::new(Pixel { r: 1, g: 2, b: 3 });
/// assert_eq!(p.g, 2);
/// ```
#[macro_export]
macro_rules! leaf {
    ($($ty:ty),+ $(,)?) => {$(
        // SAFETY: reports no edges, which can only under-report.
        unsafe impl $crate::Trace for $ty {
            // Unusable (and unused) for an unsized type such as `str`.
            #[allow(dead_code)]
            #[inline(always)]
            fn may_have_edges() -> bool {
                false
            }
            #[inline(always)]
            fn trace<'a>(&'a self, _: &mut $crate::Tracer<'a>) {}
        }
    )+};
}

/// Support for `#[derive(Trace)]`'s generated code; not a public API.
///
/// For a leak report only ([`debug::collect_with_report`]), the derive
/// asks every field whether it hides edges from the collector: a
/// `std::sync::Arc` of a `Trace` type (which the collector never traces
/// into), or a `#[trace(skip)]` field of a `Trace` type. The question is
/// answered by autoref specialisation on the field's type at the derive's
/// expansion site; every other field answers with an empty inline
/// function, and outside a leak report the answer is one branch.
#[doc(hidden)]
pub mod __private {
    use crate::trace::{record_hidden, HiddenKind};
    use crate::{Trace, Tracer};
    use std::sync::Arc;

    /// A field, as the derive's probes see it.
    pub struct Hidden<'a, T: ?Sized>(pub &'a T);

    impl<T: ?Sized> Clone for Hidden<'_, T> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<T: ?Sized> Copy for Hidden<'_, T> {}

    /// The probe of a traced field: only an `Arc` hides edges.
    pub trait ProbeTraced<'a> {
        /// Record the edges the field hides (leak reports only).
        fn __arcycle_probe_traced(self, tracer: &mut Tracer<'a>);
    }

    impl<'a, U: Trace + ?Sized> ProbeTraced<'a> for &&Hidden<'a, Arc<U>> {
        #[inline]
        fn __arcycle_probe_traced(self, tracer: &mut Tracer<'a>) {
            if tracer.hidden.is_some() {
                record_hidden(&**self.0, tracer, HiddenKind::Arc);
            }
        }
    }

    impl<'a, T: ?Sized> ProbeTraced<'a> for Hidden<'a, T> {
        #[inline(always)]
        fn __arcycle_probe_traced(self, _: &mut Tracer<'a>) {}
    }

    /// The probe of a `#[trace(skip)]` field: an `Arc` of a `Trace` type,
    /// or any `Trace` type, hides edges.
    pub trait ProbeSkipped<'a> {
        /// Record the edges the field hides (leak reports only).
        fn __arcycle_probe_skipped(self, tracer: &mut Tracer<'a>);
    }

    impl<'a, U: Trace + ?Sized> ProbeSkipped<'a> for &&Hidden<'a, Arc<U>> {
        #[inline]
        fn __arcycle_probe_skipped(self, tracer: &mut Tracer<'a>) {
            if tracer.hidden.is_some() {
                record_hidden(&**self.0, tracer, HiddenKind::Arc);
            }
        }
    }

    impl<'a, T: Trace + ?Sized> ProbeSkipped<'a> for &Hidden<'a, T> {
        #[inline]
        fn __arcycle_probe_skipped(self, tracer: &mut Tracer<'a>) {
            if tracer.hidden.is_some() {
                record_hidden(self.0, tracer, HiddenKind::Skip);
            }
        }
    }

    impl<'a, T: ?Sized> ProbeSkipped<'a> for Hidden<'a, T> {
        #[inline(always)]
        fn __arcycle_probe_skipped(self, _: &mut Tracer<'a>) {}
    }

    /// What `coerce!` knows of a handle before its coercion: with the
    /// `census` feature its type's name; otherwise nothing.
    #[derive(Clone, Copy)]
    pub struct CensusFrom {
        #[cfg(feature = "census")]
        name: &'static str,
    }

    /// The token for a handle given up as `_raw`.
    #[inline(always)]
    pub fn census_from<T: ?Sized>(_raw: *const T) -> CensusFrom {
        CensusFrom {
            #[cfg(feature = "census")]
            name: std::any::type_name::<T>(),
        }
    }

    /// `cc`, after the census has heard of its new type.
    #[inline(always)]
    pub fn census_to<U: ?Sized>(from: CensusFrom, cc: crate::Cc<U>) -> crate::Cc<U> {
        #[cfg(feature = "census")]
        let cc = crate::cc::census_retyped(from.name, cc);
        #[cfg(not(feature = "census"))]
        let _ = from;
        cc
    }

    /// [`census_to`] for a `Weak`.
    #[inline(always)]
    pub fn census_to_weak<U: ?Sized>(from: CensusFrom, weak: crate::Weak<U>) -> crate::Weak<U> {
        #[cfg(feature = "census")]
        crate::cc::census_retyped_weak(from.name, &weak);
        #[cfg(not(feature = "census"))]
        let _ = from;
        weak
    }
}

/// The README's example runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

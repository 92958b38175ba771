//! Thread-safe reference counting that also frees cycles.
//!
//! [`Cc<T>`] and [`Weak<T>`] are drop-ins for [`std::sync::Arc`] and
//! [`std::sync::Weak`]: atomic strong and weak counts, lock-free `clone` and
//! `drop`, and a value destroyed by whichever thread drops its last handle,
//! at once. What they add is Python's other half: a **cycle collector**
//! that frees groups of objects that only reference each other — which
//! counting alone leaks — while every other thread keeps running.
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
//! // Every outside handle is gone; the ring keeps itself alive.
//! assert!(arcycle::collect() >= 3);
//! ```
//!
//! # How it works
//!
//! **Counting** is `Arc`'s, with two hooks. Every allocation is a 16-byte
//! header (a strong word and a weak word; see the `header` module) followed
//! by the value. `clone` is one atomic add. `drop` is one atomic RMW; for a
//! type that may hold `Cc`s (see [`Trace::MAY_HAVE_EDGES`]) a drop that
//! leaves the count above zero also makes the object a *possible root*
//! (Bacon & Rajan): it sets the `ACTIVE` flag in the same CAS and pushes
//! the object to a global, sharded root buffer. Types that hold no `Cc`
//! (declared with [`leaf!`]) never buffer: their `Cc` *is* an `Arc`.
//!
//! **Collection** ([`collect`], or automatic once [`threshold`] roots are
//! buffered) is synchronous trial deletion run by one thread while all
//! others run on, in four phases (module `collector`):
//!
//! 1. *Take roots and trace* — each visited object is *held* (a flag, not a
//!    count, so `strong_count` never sees the collector): its value cannot
//!    be destroyed until the collector lets go. Mutable fields are read
//!    under `try_lock` only.
//! 2. *Trial deletion* — propose the set `W` of objects whose counts are
//!    explained by edges from other visited objects and that nothing with
//!    an outside reference reaches. This is optimistic and may be stale.
//! 3. *Freeze and verify*, one independent component of `W` at a time —
//!    re-trace it keeping every lock it takes (so no handle can move out of
//!    it), CAS each strong word from exactly the value read (count =
//!    internal edges) to the same value with `FROZEN`, then CAS every word
//!    again onto itself. Every clone or drop that lands on a frozen word
//!    leaves a sticky `TOUCHED` bit, and a frozen object cannot be upgraded
//!    to, so an unchanged word means nothing touched it — however long the
//!    window. Where every word is unchanged, there was one instant at which
//!    the component had no handle from outside while its fields could not
//!    change: it was unreachable then and stays so. A member that changed
//!    is kept, with everything it reaches; the rest is freed, and nothing
//!    is lost.
//! 4. *Commit* — mark `W` dead, release `W`'s locks, let go of the
//!    survivors, then drop every value of `W`, and only then free their
//!    allocations. The collector's own lock is held to the end, so a
//!    concurrent `collect()` returns only after this garbage is gone; a
//!    destructor's own `collect()` runs nested on the same thread.
//!
//! The collector never blocks while it holds a lock a mutator may want: it
//! only try-locks user locks, and a lock it cannot take marks that object
//! as in use. No mutator operation takes the collector's lock: a thread
//! that does not touch the objects being collected never waits for a
//! collection; one that does may briefly wait (a `Weak::upgrade` of an
//! object being verified, a `get_mut`, `try_unwrap` or last drop of an
//! object being traced). Only `collect()` itself waits for a collection in
//! progress. Automatic collections start from `Cc::new` and from drops that
//! buffer a possible root.
//!
//! # Orderings
//!
//! Every atomic operation carries a comment arguing its ordering, the way
//! `std`'s `Arc` does. In summary: `clone` is Relaxed; a decrement is
//! Release and the last one fences Acquire before destroying; the
//! collector's hold is taken with Acquire and released with AcqRel; the
//! freeze CAS is AcqRel and the verify loads Acquire, so when `W` is
//! destroyed every access by a thread that once held a handle to it
//! happens-before. Under `cfg(tsan)` the Acquire fences become Acquire
//! loads, which ThreadSanitizer understands.
//!
//! # What holds (and where it is proven)
//!
//! * No object is freed while a handle to it, or a borrow derived from one,
//!   exists.
//! * Every object whose last handle is gone is freed — acyclic garbage at
//!   once by the dropping thread, cyclic garbage by the next collection.
//!   `collect()` returns only after a full pass over every possible root
//!   buffered before it was called, by any thread.
//! * A collection that aborts loses nothing and leaves every count as it
//!   was.
//! * `Weak::upgrade` never returns a handle to something being freed and
//!   never returns `None` for something that survives.
//! * No data race on any `T`: the collector reads a value only while it
//!   holds it, and its mutable parts only under their locks.
//! * Panics in user `Trace`/`Drop` code (and in guards and panic payloads)
//!   neither leave objects held nor corrupt the collector; the first
//!   reaches the caller of `collect()`.
//! * The last drop of a value destroys it on the dropping thread before
//!   `drop` returns — also when a collection is examining the object (the
//!   drop waits for the collector to let go; it never waits for a mutator).
//!
//! The loom models in `loom-tests/` check each race one at a time; the
//! tests in `tests/` check them at scale, with canaries and drop counters.
//!
//! # Destructors of collected objects
//!
//! When a cycle is freed, each member's `Drop` runs while its peers may
//! already be gone. Dereferencing a dead peer panics with a clear message;
//! use [`Cc::try_deref`] or [`Cc::is_dead`] in destructors of types that can
//! be on cycles. Automatic collections run destructors on whichever thread
//! happened to allocate (as Python's do): keep such destructors free of
//! locks the allocating code might hold, or [`disable`] automatic
//! collection and call [`collect`] at points of your choosing.
//!
//! # Limits
//!
//! * `T` must be `Sized` (no `Cc<str>` or `Cc<[T]>` yet).
//! * At most about 2^27 strong handles and 2^31 weak handles to one object
//!   (more aborts, as `Arc` does past `isize::MAX`).
//! * A destruction nests inside the destructor that started it only while
//!   the thread has at least 128 KiB of stack left; deeper, it runs right
//!   after (still before the outermost drop returns), where `Arc` would
//!   overflow the stack.
//! * A lock shared by several objects' `Trace` impls makes them busy for
//!   ever (see [`Trace`], "Liveness"); a `Trace` impl that panicked
//!   quarantines its object.
//! * A `Weak::upgrade` of an object the collector is verifying waits for
//!   the verdict on that object's component: two CASes per member, no user
//!   code, no blocking.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// Lets the derive's `::arcycle::` paths work inside this crate's own tests.
extern crate self as arcycle;

mod buffer;
mod cc;
mod collector;
mod destroy;
mod header;
mod sync;
mod trace;
mod trace_impls;
mod weak;

pub use cc::Cc;
pub use collector::{
    collect, disable, enable, is_enabled, set_threshold, stats, threshold, Stats, DEFAULT_THRESHOLD,
};
pub use trace::{Trace, Tracer};
pub use weak::Weak;

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
            const MAY_HAVE_EDGES: bool = false;
            #[inline(always)]
            fn trace<'a>(&'a self, _: &mut $crate::Tracer<'a>) {}
        }
    )+};
}

/// The README's example runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

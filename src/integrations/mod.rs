//! Optional integrations with other crates, and how to trace foreign types.
//!
//! This module holds no items of its own: it documents the trait impls
//! that optional Cargo features add, all **off by default** (the default
//! build depends on none of these crates). Guarded by
//! `tests/integrations.rs` (run with `--all-features`) and the doc tests
//! here.
//!
//! | Feature | Adds |
//! |---|---|
//! | `parking_lot` | [`Trace`] for `parking_lot::{Mutex, FairMutex, RwLock, ReentrantMutex}`, and for `ReentrantMutex<RefCell<T>>` |
//! | `hashbrown` | [`Trace`] for `hashbrown::{HashMap, HashSet, HashTable}` (default allocator) |
//! | `indexmap` | [`Trace`] for `indexmap::{IndexMap, IndexSet}` |
//! | `smallvec` | [`Trace`] for `smallvec::SmallVec` |
//! | `tokio` | [`Trace`] for `tokio::sync::{Mutex, RwLock, OnceCell}` (tokio's `sync` feature only) |
//! | `serde` | `Serialize`/`Deserialize` for [`Cc`] and [`Weak`](crate::Weak) |
//!
//! The impls follow [`Trace`]'s contract the way those for `std` do:
//!
//! * Locks are taken with `try_lock`/`try_read` only, never blocked on (or
//!   awaited), and the guard is handed to [`Tracer::hold`]; a lock held
//!   elsewhere makes its object busy (kept for this collection, tried
//!   again by the next). An `RwLock` held only for reading does not make
//!   it busy. A `parking_lot::ReentrantMutex` held *by the collecting
//!   thread itself* does not either: the collector re-enters it (see its
//!   impl).
//! * Collections forward to their elements; a collection of leaves is a
//!   leaf (`may_have_edges()` is the OR of the element types').
//! * `tokio::sync::OnceCell` is set-once, so it is read without a lock, as
//!   `std::sync::OnceLock` is.
//! * serde: a `Cc` is written as its value and read into a fresh `Cc`; a
//!   `Weak` is written as `Option<T>` and read as a dangling `Weak::new()`,
//!   as serde's `rc` feature does for `Arc` and `sync::Weak`. **Sharing
//!   and cycles are not preserved**; serializing a cycle is refused with an
//!   error instead of overflowing the stack.
//!
//! # Foreign types
//!
//! Rust's orphan rule allows `impl Trace for X` only in the crate that
//! defines `Trace` (this one) or the crate that defines `X`. A type from
//! a third crate — any crate without an integration here — cannot get a
//! `Trace` impl from your code, nor from [`leaf!`](crate::leaf), which
//! expands to such an impl:
//!
//! ```compile_fail,E0117
//! use arcycle::{Trace, Tracer};
//!
//! // error[E0117]: only traits defined in the current crate can be
//! // implemented for types defined outside of the crate
//! unsafe impl Trace for std::cmp::Reverse<u32> {
//!     fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
//! }
//! ```
//!
//! Wrap the foreign type in a **newtype** of your own and implement
//! [`Trace`] for the newtype, by hand, following the contract: report each
//! `Cc` the value owns exactly once, reach mutable state only through a
//! non-blocking lock whose guard goes to [`Tracer::hold`] (or report
//! [`Tracer::busy`]; the example on [`Tracer::hold`] shows a lock), and
//! never trace into data shared through something like `std::sync::Arc`.
//! A foreign type that holds no `Cc` can be wrapped and declared a leaf
//! with `leaf!` instead.
//!
//! ```
//! use arcycle::{Cc, Trace, Tracer};
//! use std::cmp::Reverse; // stands for any type from another crate
//! use std::sync::Mutex;
//!
//! /// A newtype: local to this crate, so it may implement `Trace`.
//! struct Later(Reverse<Cc<Job>>);
//!
//! // SAFETY: reports the one `Cc` inside, once; it is immutable here.
//! unsafe impl Trace for Later {
//!     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
//!         let Reverse(job) = &self.0;
//!         job.trace(tracer);
//!     }
//! }
//!
//! #[derive(Trace)]
//! struct Job {
//!     then: Mutex<Vec<Later>>,
//! }
//!
//! // Two jobs that wait on each other, then are dropped: a garbage cycle
//! // through the foreign type, which the collector can see thanks to the
//! // newtype.
//! let a = Cc::new(Job { then: Mutex::new(Vec::new()) });
//! let b = Cc::new(Job { then: Mutex::new(vec![Later(Reverse(a.clone()))]) });
//! a.then.lock().unwrap().push(Later(Reverse(b.clone())));
//! let watch = Cc::downgrade(&a);
//! drop((a, b));
//! arcycle::collect();
//! assert!(watch.upgrade().is_none());
//! ```
//!
//! [`Trace`]: crate::Trace
//! [`Tracer::hold`]: crate::Tracer::hold
//! [`Tracer::busy`]: crate::Tracer::busy
//! [`Cc`]: crate::Cc

#[cfg(feature = "parking_lot")]
mod parking_lot;

#[cfg(any(feature = "hashbrown", feature = "indexmap", feature = "smallvec"))]
mod collections;

#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "serde")]
mod serde;

/// Keep a guard taken without blocking in the tracer and trace the data
/// behind it (`Tracer::trace_guarded`); `None` (the lock is held
/// elsewhere) makes the value busy. The `Option` form of `trace_impls`'
/// `trace_locked`.
#[cfg(any(feature = "parking_lot", feature = "tokio"))]
fn trace_guarded<'a, T, G>(guard: Option<G>, tracer: &mut crate::Tracer<'a>)
where
    T: crate::Trace + 'a,
    G: std::ops::Deref<Target = T> + 'a,
{
    let Some(guard) = guard else {
        return tracer.busy();
    };
    tracer.trace_guarded(guard);
}

//! `Trace` for the standard library's types.
//!
//! Containers forward to their elements; locks try-lock and hand the guard
//! to the tracer (or report themselves busy); leaves report nothing and
//! declare `may_have_edges() == false`. A type is a leaf when it holds no
//! `Cc`, and also when the `Cc`s it may hold are out of the collector's
//! sight (a channel's contents, a `ManuallyDrop`'s value, what a `'static`
//! reference or an `Arc` reaches): under-reporting can only leak.
//!
//! The leaves' impls are in `trace_impls/leaves.rs`.

use crate::{Cc, Trace, Tracer, Weak};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::ops::Deref;
use std::sync::{Mutex, OnceLock, RwLock, TryLockError, TryLockResult};

mod leaves;

/// Wrappers that own their one value and give shared access to it:
/// forwarded.
macro_rules! trace_wrapper {
    ($($ty:ident),* $(,)?) => {$(
        // SAFETY: forwards to the one value it owns.
        unsafe impl<T: Trace> Trace for $ty<T> {
            #[inline(always)]
            fn may_have_edges() -> bool {
                T::may_have_edges()
            }
            #[inline]
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                self.0.trace(tracer);
            }
        }
    )*};
}
use std::cmp::Reverse;
use std::num::Wrapping;
use std::panic::AssertUnwindSafe;
trace_wrapper!(AssertUnwindSafe, Wrapping, Reverse);

/// A `Cow` traces its owned value; the borrowed one is a `&'static`
/// reference, a leaf like any other.
// SAFETY: forwards to the value it owns, if any; an owned value only
// changes through `&mut`, never while the `Cow` is shared.
unsafe impl<B> Trace for std::borrow::Cow<'static, B>
where
    B: ToOwned + ?Sized + 'static,
    B::Owned: Trace,
{
    #[inline(always)]
    fn may_have_edges() -> bool {
        <B::Owned as Trace>::may_have_edges()
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if let std::borrow::Cow::Owned(owned) = self {
            owned.trace(tracer);
        }
    }
}

/// `Pin<P>` traces the pointer `P` itself (so `Pin<Box<T>>` reaches the
/// `T` the box owns, and `Pin<Cc<T>>` reports its handle); it never moves
/// the pointee.
// SAFETY: forwards to the pointer it wraps, through a shared reference:
// `P`'s impl reports what `P` owns, and reading through `&P` cannot move
// the pinned value.
unsafe impl<P: Trace> Trace for std::pin::Pin<P> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        P::may_have_edges()
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        // SAFETY: `Pin<P>` is `repr(transparent)` over `P`, documented to
        // have the same layout as `P`; a shared `&P` grants nothing that
        // `Pin` forbids (no `&mut`, no move).
        let pointer: &'a P = unsafe { &*(self as *const std::pin::Pin<P>).cast::<P>() };
        pointer.trace(tracer);
    }
}

/// Function pointers are leaves: code, no data (a closure's captures are
/// not reachable through a `fn` pointer).
macro_rules! trace_fn_pointers {
    ($(($($arg:ident),*)),* $(,)?) => {$(
        trace_fn_pointers!(@one fn($($arg),*) -> R; $($arg),*);
        trace_fn_pointers!(@one unsafe fn($($arg),*) -> R; $($arg),*);
        trace_fn_pointers!(@one extern "C" fn($($arg),*) -> R; $($arg),*);
        trace_fn_pointers!(@one unsafe extern "C" fn($($arg),*) -> R; $($arg),*);
    )*};
    (@one $fn:ty; $($arg:ident),*) => {
        // SAFETY: reports nothing, which is always safe.
        unsafe impl<R, $($arg),*> Trace for $fn {
            #[inline(always)]
            fn may_have_edges() -> bool {
                false
            }
            #[inline(always)]
            fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
        }
    };
}
trace_fn_pointers!(
    (),
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
    (A, B, C, D, E, F, G, H, I),
    (A, B, C, D, E, F, G, H, I, J),
    (A, B, C, D, E, F, G, H, I, J, K),
    (A, B, C, D, E, F, G, H, I, J, K, L),
);

// SAFETY: reports its one handle, once. No bound on `T`: the allocation
// recorded how to trace itself when it was made (so `Cc<dyn Any + Send +
// Sync>` is an edge like any other), and a derived impl holding a
// `Cc<Self>` needs no `Self: Trace` bound.
unsafe impl<T: ?Sized> Trace for Cc<T> {
    // Answered without looking into `T`, so self-referential types do not
    // recurse.
    #[inline(always)]
    fn may_have_edges() -> bool {
        true
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        tracer.edge(self);
    }
}

// SAFETY: a `Weak` is not an edge: it keeps no value alive.
unsafe impl<T: ?Sized> Trace for Weak<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// `std::sync::Arc` is deliberately *not* traced through: its contents are
/// also reachable through its other clones, which the collector cannot
/// count, so reporting the `Cc`s inside would over-report. A `Cc` cycle
/// that passes through an `Arc` is therefore never collected (a leak, not
/// a use-after-free). Use `Cc` instead of `Arc` inside collected graphs.
// SAFETY: reports nothing, which is always safe.
unsafe impl<T: ?Sized> Trace for std::sync::Arc<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

// SAFETY: forwards to the one value it owns.
unsafe impl<T: Trace> Trace for Box<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        (**self).trace(tracer);
    }
}

// SAFETY: forwards to every element it owns.
unsafe impl<T: Trace> Trace for Box<[T]> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        (**self).trace(tracer);
    }
}

// SAFETY: holds no `Cc`.
unsafe impl Trace for Box<str> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// `Box<dyn Trace>` (with any of the auto traits) forwards through the
/// value's own vtable. For a box of your own object-safe trait
/// (`Box<dyn Shape>` where `trait Shape: Trace`), write the same two lines:
/// `Box` is a fundamental type, so the impl is yours to write.
///
/// ```
/// use arcycle::{Trace, Tracer};
///
/// trait Shape: Trace + Send + Sync {}
///
/// // SAFETY: forwards to the value the box owns.
/// unsafe impl Trace for Box<dyn Shape> {
///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
///         (**self).trace(tracer)
///     }
/// }
/// ```
macro_rules! trace_boxed_dyn {
    ($($t:ty),*) => {$(
        // SAFETY: forwards to the one value it owns, through its vtable.
        unsafe impl Trace for Box<$t> {
            #[inline]
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                (**self).trace(tracer);
            }
        }
    )*};
}
trace_boxed_dyn!(
    dyn Trace,
    dyn Trace + Send,
    dyn Trace + Sync,
    dyn Trace + Send + Sync
);

// SAFETY: forwards to the value it owns, if any.
unsafe impl<T: Trace> Trace for Option<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    #[inline]
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if let Some(v) = self {
            v.trace(tracer);
        }
    }
}

// SAFETY: forwards to the value it owns.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges() || E::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        match self {
            Ok(v) => v.trace(tracer),
            Err(e) => e.trace(tracer),
        }
    }
}

/// Containers whose `&'a self` iterates `&'a T` over what they own.
macro_rules! trace_iterable {
    ($($ty:ident<$($g:ident),*> => [$($elem:ident),*]),* $(,)?) => {$(
        // SAFETY: forwards to every element it owns, once each.
        unsafe impl<$($g: Trace),*> Trace for $ty<$($g),*> {
            #[inline(always)]
    fn may_have_edges() -> bool {
        false $(|| $elem::may_have_edges())*
    }
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                if Self::may_have_edges() {
                    for item in self {
                        trace_iterable!(@item item tracer [$($elem),*]);
                    }
                }
            }
        }
    )*};
    (@item $item:ident $tracer:ident [$e:ident]) => { $item.trace($tracer); };
    (@item $item:ident $tracer:ident [$k:ident, $v:ident]) => {
        $item.0.trace($tracer);
        $item.1.trace($tracer);
    };
}

trace_iterable!(
    Vec<T> => [T],
    VecDeque<T> => [T],
    LinkedList<T> => [T],
    BinaryHeap<T> => [T],
    BTreeSet<T> => [T],
    BTreeMap<K, V> => [K, V],
);

// SAFETY: forwards to every element it owns, once each.
unsafe impl<T: Trace> Trace for [T] {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            for item in self {
                item.trace(tracer);
            }
        }
    }
}

// SAFETY: forwards to every element it owns, once each.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self[..].trace(tracer);
    }
}

/// Forwards `Trace` to the pairs of a map whose `&'a self` iterates
/// `(&'a K, &'a V)` (std's here; hashbrown's and indexmap's in
/// `integrations`).
macro_rules! trace_map {
    ($($map:ty),* $(,)?) => {$(
        // SAFETY: forwards to every key and value it owns, once each.
        unsafe impl<K: Trace, V: Trace, S> Trace for $map {
            #[inline(always)]
    fn may_have_edges() -> bool {
        K::may_have_edges() || V::may_have_edges()
    }
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                if Self::may_have_edges() {
                    for (k, v) in self {
                        k.trace(tracer);
                        v.trace(tracer);
                    }
                }
            }
        }
    )*};
}
#[allow(unused_imports)] // used by the optional integrations
pub(crate) use trace_map;

/// Forwards `Trace` to the elements of a set whose `&'a self` iterates
/// `&'a T` (std's here; hashbrown's and indexmap's in `integrations`).
macro_rules! trace_set {
    ($($set:ty),* $(,)?) => {$(
        // SAFETY: forwards to every element it owns, once each.
        unsafe impl<T: Trace, S> Trace for $set {
            #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                if T::may_have_edges() {
                    for item in self {
                        item.trace(tracer);
                    }
                }
            }
        }
    )*};
}
#[allow(unused_imports)] // used by the optional integrations
pub(crate) use trace_set;

trace_map!(HashMap<K, V, S>);
trace_set!(HashSet<T, S>);

macro_rules! trace_tuple {
    ($(($($name:ident . $idx:tt),+)),* $(,)?) => {$(
        // SAFETY: forwards to every field, once each.
        unsafe impl<$($name: Trace),+> Trace for ($($name,)+) {
            #[inline(always)]
    fn may_have_edges() -> bool {
        false $(|| $name::may_have_edges())+
    }
            fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
                $(self.$idx.trace(tracer);)+
            }
        }
    )*};
}

trace_tuple!(
    (A.0),
    (A.0, B.1),
    (A.0, B.1, C.2),
    (A.0, B.1, C.2, D.3),
    (A.0, B.1, C.2, D.3, E.4),
    (A.0, B.1, C.2, D.3, E.4, F.5),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10),
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11),
);

/// Keep the guard of a non-blocking lock attempt in the tracer and trace
/// the data behind it ([`Tracer::trace_guarded`]); a lock held elsewhere
/// makes the value busy. A poisoned lock still owns its data, handles
/// included, so it is traced.
fn trace_locked<'a, T, G>(attempt: TryLockResult<G>, tracer: &mut Tracer<'a>)
where
    T: Trace + 'a,
    G: Deref<Target = T> + 'a,
{
    let guard = match attempt {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return tracer.busy(),
    };
    tracer.trace_guarded(guard);
}

// SAFETY: reads the data only under the lock, taken without blocking; a
// lock held elsewhere makes the value busy (reports nothing).
unsafe impl<T: Trace> Trace for Mutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_locked(self.try_lock(), tracer);
        }
    }
}

// SAFETY: as for `Mutex`, with a read lock: readers may clone handles out
// (which raises counts: safe), nobody can move one out while we hold it.
unsafe impl<T: Trace> Trace for RwLock<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_locked(self.try_read(), tracer);
        }
    }
}

// SAFETY: once set, the value is immutable; setting it only adds edges
// (a handle moved in), the safe direction.
unsafe impl<T: Trace> Trace for OnceLock<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if let Some(v) = self.get() {
            v.trace(tracer);
        }
    }
}

// loom-tests: the loom build's `Mutex`, so that loom models can build nodes
// through the public API. Mirrors the impl for `std::sync::Mutex`.
// SAFETY: as for `std::sync::Mutex`: reads the data only under the lock,
// taken without blocking; a lock held elsewhere makes the value busy.
#[cfg(arcycle_loom)]
unsafe impl<T: Trace> Trace for loom::sync::Mutex<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            trace_locked(self.try_lock(), tracer);
        }
    }
}

//! The standard library's leaves: types whose `Trace` impl reports nothing
//! and declares `may_have_edges() == false` (the primitives, strings,
//! paths, time, atomics, non-zero integers, C strings, synchronisation
//! primitives that hold no value, and the generic leaves: `AtomicPtr`,
//! `PhantomData`, `&'static T`, the ends of a channel, `ManuallyDrop`,
//! `LazyLock`).
//!
//! A type is a leaf when it holds no `Cc`, and also when the `Cc`s it may
//! hold are out of the collector's sight (a channel's contents, a
//! `ManuallyDrop`'s value, what a `'static` reference reaches):
//! under-reporting can only leak. (`Arc`'s impl, also a leaf, stays with
//! the pointers in `trace_impls.rs`.)
//!
//! Guarded by `tests/trace_impls.rs` (`leaves`,
//! `leaves_report_nothing_even_when_they_hold_handles`).

use crate::{Trace, Tracer};
use std::marker::PhantomData;

crate::leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    str,
    String,
    std::ffi::OsString,
    std::ffi::OsStr,
    std::path::PathBuf,
    std::path::Path,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::sync::atomic::AtomicBool,
    std::sync::atomic::AtomicU8,
    std::sync::atomic::AtomicU16,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicI8,
    std::sync::atomic::AtomicI16,
    std::sync::atomic::AtomicI32,
    std::sync::atomic::AtomicI64,
    std::sync::atomic::AtomicIsize,
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::num::NonZeroU128,
    std::num::NonZeroI8,
    std::num::NonZeroI16,
    std::num::NonZeroI128,
    std::num::NonZeroIsize,
    std::ffi::CString,
    std::ffi::CStr,
    Box<std::ffi::CStr>,
    Box<std::ffi::OsStr>,
    Box<std::path::Path>,
    // Synchronisation primitives that hold no value of their own.
    std::sync::Condvar,
    std::sync::Barrier,
    std::sync::Once,
);

// SAFETY: no edges: an atomic pointer is not an owning handle.
unsafe impl<T> Trace for std::sync::atomic::AtomicPtr<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

// SAFETY: no edges: a marker holds nothing.
unsafe impl<T: ?Sized> Trace for PhantomData<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// A `'static` reference is a leaf: what it reaches lives for the rest of
/// the program (leaked or in a `static`), so no collection could free it
/// anyway, and it is shared with every other holder of the reference.
/// (`T: Trace` is asked only so that a field of a type without `Trace`
/// gets the diagnostic naming the ways out, not a suggestion to borrow it.)
// SAFETY: reports nothing, which is always safe.
unsafe impl<T: ?Sized + Sync + Trace> Trace for &'static T {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// The ends of a channel are leaves: the values in flight live inside the
/// channel, shared by every sender and receiver, where the collector cannot
/// see them (and could not count them). A `Cc` cycle through a channel
/// leaks.
// SAFETY: reports nothing, which is always safe.
unsafe impl<T> Trace for std::sync::mpsc::Sender<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

// SAFETY: reports nothing (see `Sender`).
unsafe impl<T> Trace for std::sync::mpsc::SyncSender<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

// SAFETY: reports nothing (see `Sender`).
unsafe impl<T> Trace for std::sync::mpsc::Receiver<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// `ManuallyDrop<T>` is a leaf, whatever `T` is: its owner may have dropped
/// the value by hand (`ManuallyDrop::drop`/`take`), which the type does not
/// record, and tracing a dropped value would read freed memory. The `Cc`s
/// inside one are never seen by the collector (cycles through them leak).
// SAFETY: reports nothing, which is always safe.
unsafe impl<T: ?Sized> Trace for std::mem::ManuallyDrop<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

/// `LazyLock<T, F>` is a leaf, for now: tracing it would need to know
/// whether the value is initialised without initialising it, which
/// `LazyLock::get` answers only in Rust releases newer than this crate's
/// minimum (1.88). (Dereferencing instead could block on another thread's
/// initialisation, and run it: `trace` must never block.) Use a `OnceLock`
/// (traced once set) for a lazily set value that holds `Cc`s.
// SAFETY: reports nothing, which is always safe.
unsafe impl<T, F> Trace for std::sync::LazyLock<T, F> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        false
    }
    #[inline(always)]
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

//! The paths that take a value out of its allocation or borrow it
//! mutably: `try_unwrap`, `into_inner`, `unwrap_or_clone`, `get_mut`,
//! `make_mut`, and `new_uninit`/`assume_init`.
//!
//! # What this guarantees
//!
//! None of them is ever fooled by the collector: a collection's temporary
//! hold is not a handle (it never makes `try_unwrap` or `get_mut` fail),
//! and a value handed out mutably is one no collection can read until the
//! borrow ends (`is_unique` detaches a pending root-buffer entry, or waits
//! for a hold to go). Guarded by the loom models
//! `get_mut_vs_busy_root_round_trip` and `into_inner_vs_collector`, and the
//! tests in `tests/api.rs` and `tests/std_arc.rs`.

use super::{Cc, CcBox};
use crate::buffer;
use crate::collector;
use crate::header::*;
use crate::trace::Trace;
use std::mem;
use std::sync::atomic::Ordering::*;

impl<T: Trace + Send + Sync + 'static> Cc<T> {
    /// Return the value if this is the only strong handle, else `Err(this)`.
    ///
    /// Like `Arc::try_unwrap`; weak handles do not prevent it (they can no
    /// longer upgrade afterwards). If the collector is examining the object
    /// right now, this waits for it; the collector's own hold never makes
    /// it fail.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let x = Cc::new(3);
    /// assert_eq!(Cc::try_unwrap(x), Ok(3));
    /// let y = Cc::new(4);
    /// let y2 = y.clone();
    /// assert_eq!(*Cc::try_unwrap(y).unwrap_err(), 4);
    /// drop(y2);
    /// ```
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        match Self::take_last(&this, false) {
            Take::Taken => {
                // SAFETY: `take_last` took the count to zero with no hold:
                // the value is ours alone.
                let value = unsafe { this.take_value_and_release() };
                Ok(value)
            }
            _ => Err(this),
        }
    }

    /// Return the value if this is the last strong handle, else drop this
    /// handle and return `None`.
    ///
    /// Like `Arc::into_inner`: if every handle is passed to `into_inner`,
    /// exactly one call returns the value, even when called concurrently.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let x = Cc::new(String::from("hi"));
    /// let y = x.clone();
    /// assert_eq!(Cc::into_inner(x), None);
    /// assert_eq!(Cc::into_inner(y).as_deref(), Some("hi"));
    /// ```
    pub fn into_inner(this: Self) -> Option<T> {
        match Self::take_last(&this, true) {
            // SAFETY: as in `try_unwrap`.
            Take::Taken => Some(unsafe { this.take_value_and_release() }),
            Take::Decremented => {
                mem::forget(this);
                None
            }
            Take::NotLast => {
                drop(this);
                None
            }
        }
    }

    /// Take the count from 1 to 0 (the value becomes ours), or with
    /// `decrement`, give up this handle when others remain.
    fn take_last(this: &Self, decrement: bool) -> Take {
        let h = this.header();
        let wait = crate::sync::Wait::new();
        let mut s = h.strong.load(Relaxed);
        loop {
            if s & DEAD != 0 {
                return Take::NotLast;
            }
            if count(s) != 1 {
                if !decrement {
                    return Take::NotLast;
                }
                if this.is_tracked() {
                    // Others remain: give this handle up exactly as `drop`
                    // does (buffering a possible root), unless we became the
                    // last in the meantime, in which case go round again.
                    if buffer::decrement_inner(this.header_ptr(), true, s).is_some() {
                        return Take::Decremented;
                    }
                    s = h.strong.load(Relaxed);
                    continue;
                }
                // Release, as in `drop`.
                match h.strong.compare_exchange_weak(s, s - DEC, Release, Relaxed) {
                    Ok(_) => return Take::Decremented,
                    Err(x) => {
                        s = x;
                        continue;
                    }
                }
            }
            if s & (HELD | FROZEN) != 0 {
                // The collector is reading the value; it never waits for us,
                // so this ends.
                collector::wait_for_hold(&wait, "Cc::get_mut/make_mut/try_unwrap/into_inner");
                s = h.strong.load(Relaxed);
                continue;
            }
            // Acquire: every other handle's uses of the value (released by
            // their drops, and the collector's release of its hold)
            // happen-before we take it.
            match h.strong.compare_exchange_weak(s, s - DEC, Acquire, Relaxed) {
                Ok(_) => return Take::Taken,
                Err(x) => s = x,
            }
        }
    }

    /// # Safety
    /// The strong count was taken to zero by this thread with no hold set.
    unsafe fn take_value_and_release(self) -> T {
        let ptr = self.inner();
        let tracked = self.is_tracked();
        mem::forget(self);
        // SAFETY: per the contract we own the value; a root-buffer entry may
        // still refer to the allocation, but the collector skips count-0
        // objects without reading their value.
        let value = unsafe {
            (*ptr.as_ptr()).track.write();
            CcBox::value_ptr(ptr).read()
        };
        // SAFETY: live box until its weak word reaches zero.
        let header = unsafe { &(*ptr.as_ptr()).header };
        let last = if tracked {
            header.release_tracked_strong_side()
        } else {
            header.release_strong_side()
        };
        if last {
            // SAFETY: weak word is zero and the value was moved out.
            unsafe { CcBox::free(ptr) }
        }
        value
    }
}

enum Take {
    Taken,
    Decremented,
    NotLast,
}

impl<T: ?Sized> Cc<T> {
    /// A mutable reference to the value, if this is the only handle (no
    /// other `Cc`, no `Weak`).
    ///
    /// Never fooled by the collector: if a collection is examining the
    /// object right now, this waits for it rather than fail.
    ///
    /// # Panics
    ///
    /// If called from inside a `Trace` impl while this thread is running
    /// the collector (it would wait for itself).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut x = Cc::new(3);
    /// *Cc::get_mut(&mut x).unwrap() = 4;
    /// assert_eq!(*x, 4);
    /// let y = x.clone();
    /// assert!(Cc::get_mut(&mut x).is_none());
    /// # drop(y);
    /// ```
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        if Self::is_unique(this) {
            // SAFETY: unique: no other handle, no `Weak`, and the collector
            // neither holds the object nor will read it (see `is_unique`).
            Some(unsafe { Self::unique_mut(this) })
        } else {
            None
        }
    }

    /// Uniqueness as `Arc::is_unique` decides it, plus the collector's
    /// side: after `true`, no collection reads the value until the caller's
    /// `&mut` ends.
    pub(crate) fn is_unique(this: &mut Self) -> bool {
        let h = this.header();
        let wait = crate::sync::Wait::new();
        loop {
            // Lock the weak count against `downgrade` (as `Arc::is_unique`
            // does), so that "no `Weak` and one strong" is one observation.
            let mut w = h.weak.load(Relaxed);
            loop {
                if w & WEAK_MASK != 1 {
                    return false;
                }
                // Acquire: see the strong word as of the last `Weak`'s drop.
                match h
                    .weak
                    .compare_exchange_weak(w, w | WEAK_LOCKED, Acquire, Relaxed)
                {
                    Ok(_) => break,
                    Err(x) => w = x,
                }
            }
            // Acquire: the collector's release of its hold, and every other
            // handle's drop, happen-before our mutation.
            let s = h.strong.load(Acquire);
            // Release: pairs with `downgrade`'s Acquire.
            h.weak.fetch_and(!WEAK_LOCKED, Release);
            if count(s) != 1 || s & DEAD != 0 {
                return false;
            }
            // From here on the answer is "unique": we hold the only handle
            // mutably and no `Weak` exists, so nobody can make another.
            // What is left is the collector's side.
            if !this.is_tracked() || s & (HELD | FROZEN | ACTIVE) == 0 {
                // Not held, and no pending entry: no collection can reach the
                // object while the caller's `&mut` lasts (the only handle is
                // the caller's, so no traced field holds it, and buffering
                // needs a second handle).
                return true;
            }
            if s & (HELD | FROZEN) != 0 {
                // A collection is reading the value right now (it reached it
                // before the caller took its `&mut` path); it lets go without
                // waiting for anyone.
                collector::wait_for_hold(&wait, "Cc::get_mut/make_mut/try_unwrap/into_inner");
                continue;
            }
            // A pending root-buffer entry could make a collection read the
            // value while the caller writes: detach it by clearing ACTIVE.
            // A CAS on the strong word, which a collection's root hold also
            // CASes (requiring ACTIVE): whichever comes first wins, and if
            // the collection won we wait for its hold above.
            //
            // Acquire on success: the word we expect may have made a round
            // trip since we loaded it — a collection took its root hold
            // (clearing ACTIVE), read the value, found it busy, buffered it
            // again (setting ACTIVE) and let go (clearing HELD). Flags do not
            // move the modification counter, so the CAS succeeds; it reads
            // from the collector's Release of its hold (or a later write in
            // that release sequence), and Acquire makes the collector's read
            // of the value happen-before the caller's write. (Loom model
            // `get_mut_vs_busy_root_round_trip`.)
            if h.strong
                .compare_exchange(s, s & !ACTIVE, Acquire, Relaxed)
                .is_ok()
            {
                // The detached entry is stale now: its claim on the
                // allocation was `ACTIVE`, so it gets an `ENTRY` unit of
                // its own (see `buffer`, invariant 1), and the shards
                // compact again (see `buffer::compact`).
                buffer::claim_for_detached(h);
                buffer::note_detached();
                return true;
            }
        }
    }

    /// # Safety
    /// `is_unique(this)` returned true and the borrow of `this` covers the
    /// result.
    #[inline]
    unsafe fn unique_mut(this: &mut Self) -> &mut T {
        let ptr = this.inner();
        // SAFETY: unique: no other handle, no `Weak`, no collection reads
        // the value while the caller's `&mut` lasts.
        unsafe {
            (*ptr.as_ptr()).track.write();
            &mut *CcBox::value_ptr(ptr)
        }
    }
}

impl<T: ?Sized + CcClone> Cc<T> {
    /// The value mutably: if other strong handles exist, clone it into a
    /// fresh allocation first; if only `Weak`s share it, move it into a
    /// fresh allocation (they can no longer upgrade). Like `Arc::make_mut`,
    /// for sized `T: Clone`, for `[T]` with `T: Clone`, and for `str`
    /// (see [`CcClone`]).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut a = Cc::new(5);
    /// let b = a.clone();
    /// *Cc::make_mut(&mut a) += 1; // clones: b still sees 5
    /// assert_eq!((*a, *b), (6, 5));
    ///
    /// let mut s: Cc<[u32]> = vec![1, 2].into();
    /// let t = s.clone();
    /// Cc::make_mut(&mut s)[0] = 9;
    /// assert_eq!((&*s, &*t), (&[9, 2][..], &[1, 2][..]));
    /// ```
    pub fn make_mut(this: &mut Self) -> &mut T {
        if !Self::is_unique(this) {
            T::make_unique(this);
        }
        // SAFETY: unique now (a fresh allocation is unique and unbuffered).
        unsafe { Self::unique_mut(this) }
    }
}

/// Values [`Cc::make_mut`] can copy into a fresh allocation: every sized
/// `T: Clone`, `[T]` for `T: Clone`, and `str` (what `Arc::make_mut`
/// accepts through its unstable `CloneToUninit`). Sealed.
///
/// ```
/// fn bump<T: arcycle::CcClone + ?Sized>(_: &mut arcycle::Cc<T>) {}
/// let mut s: arcycle::Cc<str> = "x".into();
/// bump(&mut s);
/// ```
pub trait CcClone: sealed::Sealed {
    /// Replace `this`, which is not unique, by a handle to a fresh copy.
    #[doc(hidden)]
    fn make_unique(this: &mut Cc<Self>);
}

mod sealed {
    pub trait Sealed {}
}

impl<T: Clone + Trace + Send + Sync + 'static> sealed::Sealed for T {}
impl<T: Clone + Trace + Send + Sync + 'static> sealed::Sealed for [T] {}
impl sealed::Sealed for str {}

impl<T: Clone + Trace + Send + Sync + 'static> CcClone for T {
    fn make_unique(this: &mut Cc<T>) {
        let moved =
            Cc::strong_count(this) == 1 && matches!(Cc::take_last(this, false), Take::Taken);
        let fresh = if moved {
            // Only `Weak`s shared the value: move it out, as
            // `Arc::make_mut` does, leaving the `Weak`s dangling.
            // SAFETY: `take_last` took the count to zero with no hold; the
            // bitwise copy is consumed in place of `*this`, which is
            // overwritten below without being dropped.
            let value = unsafe { std::ptr::read(this).take_value_and_release() };
            let code = super::code_of::<T>();
            Cc::from_inner(CcBox::allocate(value, 1, 1, code), code != 0)
        } else {
            Cc::new((**this).clone())
        };
        if moved {
            // SAFETY: `*this` was consumed above; nothing can unwind in
            // between (allocation failure aborts).
            unsafe { std::ptr::write(this, fresh) };
        } else {
            *this = fresh;
        }
    }
}

impl<T: Clone + Trace + Send + Sync + 'static> CcClone for [T] {
    fn make_unique(this: &mut Cc<[T]>) {
        // Cloned even when only `Weak`s share the slice (they can no
        // longer upgrade either way, as with `Arc`).
        *this = Cc::from(&**this);
    }
}

impl CcClone for str {
    fn make_unique(this: &mut Cc<str>) {
        *this = Cc::from(&**this);
    }
}

impl<T: Clone + Trace + Send + Sync + 'static> Cc<T> {
    /// The value, moved out if this is the only strong handle, else a
    /// clone of it (this handle is dropped). Like `Arc::unwrap_or_clone`.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(String::from("x"));
    /// let b = a.clone();
    /// assert_eq!(Cc::unwrap_or_clone(a), "x"); // cloned: `b` remains
    /// assert_eq!(Cc::unwrap_or_clone(b), "x"); // moved out
    /// ```
    pub fn unwrap_or_clone(this: Self) -> T {
        Cc::try_unwrap(this).unwrap_or_else(|cc| (*cc).clone())
    }
}

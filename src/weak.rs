//! `Weak<T>`: the handle that keeps the allocation, not the value.

use crate::cc::{Cc, CcBox};
use crate::header::*;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// A weak handle to a [`Cc`] allocation, like [`std::sync::Weak`].
///
/// It does not keep the value alive and is not an edge for the collector.
/// [`upgrade`](Weak::upgrade) never returns a handle to a value that is
/// being freed, and never returns `None` for one that survives: if the
/// collector is in the middle of deciding about this very object, it waits
/// for the decision (a short window with no user code in it).
///
/// ```
/// use arcycle::{Cc, Weak};
/// let strong = Cc::new(5);
/// let weak: Weak<i32> = Cc::downgrade(&strong);
/// assert_eq!(weak.upgrade().as_deref(), Some(&5));
/// drop(strong);
/// assert!(weak.upgrade().is_none());
/// ```
pub struct Weak<T: ?Sized> {
    // `usize::MAX` (never a valid box address) for `Weak::new()`.
    ptr: NonNull<CcBox<T>>,
}

// SAFETY: as for `std::sync::Weak`: it can become a `Cc<T>` on any thread.
unsafe impl<T: ?Sized + Send + Sync> Send for Weak<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Weak<T> {}

// As `std::sync::Weak`: unwind safety is the value's.
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::UnwindSafe for Weak<T> {}
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe for Weak<T> {}

pub(crate) const DANGLING: usize = usize::MAX;

impl<T> Weak<T> {
    /// A `Weak` that points to nothing; `upgrade` always gives `None`.
    ///
    /// ```
    /// let w: arcycle::Weak<u8> = arcycle::Weak::new();
    /// assert!(w.upgrade().is_none());
    /// ```
    pub const fn new() -> Weak<T> {
        // SAFETY: `usize::MAX` is not null. It is never dereferenced: every
        // access checks for it first.
        Weak {
            ptr: unsafe { NonNull::new_unchecked(std::ptr::without_provenance_mut(DANGLING)) },
        }
    }
}

impl<T: ?Sized> Weak<T> {
    pub(crate) fn from_inner(ptr: NonNull<CcBox<T>>) -> Weak<T> {
        Weak { ptr }
    }

    /// The box, or `None` for `Weak::new()`.
    pub(crate) fn inner(&self) -> Option<NonNull<CcBox<T>>> {
        if self.ptr.as_ptr().cast::<u8>().addr() == DANGLING {
            None
        } else {
            Some(self.ptr)
        }
    }

    /// The pointer as stored (the sentinel for `Weak::new()`).
    pub(crate) fn raw_box(&self) -> NonNull<CcBox<T>> {
        self.ptr
    }

    fn header(&self) -> Option<&Header> {
        // SAFETY: a non-dangling `Weak` holds a unit of the weak word,
        // which keeps the allocation (header included) alive.
        self.inner().map(|p| unsafe { &(*p.as_ptr()).header })
    }

    /// The number of strong handles (0 if the value is gone).
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// let w = arcycle::Cc::downgrade(&a);
    /// assert_eq!(w.strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        match self.header() {
            Some(h) => {
                let s = h.strong.load(Relaxed);
                if s & DEAD != 0 {
                    0
                } else {
                    count(s) as usize
                }
            }
            None => 0,
        }
    }

    /// The number of `Weak` handles, or 0 if no strong handle remains.
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// let w = arcycle::Cc::downgrade(&a);
    /// let w2 = w.clone();
    /// assert_eq!(w.weak_count(), 2);
    /// # drop(w2);
    /// ```
    pub fn weak_count(&self) -> usize {
        match self.header() {
            Some(h) => {
                // Like `std::sync::Weak::weak_count`: 0 once no strong handle
                // remains; otherwise the strong side's unit is not a `Weak`.
                if self.strong_count() == 0 {
                    return 0;
                }
                ((h.weak.load(Relaxed) & WEAK_MASK) - 1) as usize
            }
            None => 0,
        }
    }

    /// Whether two `Weak`s point to the same allocation (two
    /// `Weak::new()`s are equal).
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// let w = arcycle::Cc::downgrade(&a);
    /// assert!(w.ptr_eq(&w.clone()));
    /// ```
    pub fn ptr_eq(&self, other: &Weak<T>) -> bool {
        std::ptr::addr_eq(self.ptr.as_ptr(), other.ptr.as_ptr())
    }
}

impl<T: ?Sized> Weak<T> {
    /// A strong handle, if the value is still alive.
    ///
    /// Waits while the collector is verifying this object as garbage, then
    /// returns `None` if it was freed and a handle if it survived. The wait
    /// is bounded by the work of verifying this object's own component of
    /// the garbage, together with at most 64 members of other small
    /// components verified in the same batch (two atomic operations per
    /// member, no user code, no blocking, no time limit): short for typical
    /// cycles, longer only for a member of a huge garbage cycle.
    ///
    /// ```
    /// use arcycle::{Cc, Trace};
    /// use std::sync::Mutex;
    ///
    /// #[derive(Trace)]
    /// struct Node(Mutex<Option<Cc<Node>>>);
    ///
    /// let a = Cc::new(Node(Mutex::new(None)));
    /// *a.0.lock().unwrap() = Some(a.clone()); // a self-loop
    /// let w = Cc::downgrade(&a);
    /// drop(a);
    /// assert!(w.upgrade().is_some()); // garbage, but not yet collected
    /// arcycle::collect();
    /// assert!(w.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Cc<T>> {
        let h = self.header()?;
        let wait = crate::sync::Wait::new();
        let mut s = h.strong.load(Relaxed);
        loop {
            if s & DEAD != 0 || count(s) == 0 {
                return None;
            }
            if s & FROZEN != 0 {
                // The collector is between freezing and deciding; no handle
                // may appear now, or its verification would be unsound.
                wait.pause();
                s = h.strong.load(Acquire);
                continue;
            }
            if count(s) > MAX_COUNT {
                abort_count_overflow();
            }
            // Acquire, as in `Arc`'s upgrade: the new handle reads the value.
            // The count changes, so a collector's CAS expecting the word it
            // read before us fails (and a frozen word was excluded above).
            match h.strong.compare_exchange_weak(s, s + INC, Acquire, Relaxed) {
                // The type code says whether the handle is tracked.
                Ok(_) => return Some(Cc::from_inner(self.ptr, type_code(s) != 0)),
                Err(x) => s = x,
            }
        }
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    fn clone(&self) -> Weak<T> {
        if let Some(h) = self.header() {
            // Relaxed, as in `std::sync::Weak::clone`: we hold a unit already.
            let old = h.weak.fetch_add(1, Relaxed);
            if old & WEAK_MASK >= MAX_COUNT {
                abort_count_overflow();
            }
        }
        Weak { ptr: self.ptr }
    }
}

impl<T> Default for Weak<T> {
    fn default() -> Weak<T> {
        Weak::new()
    }
}

impl<T: ?Sized> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    fn drop(&mut self) {
        if let Some(h) = self.header() {
            if h.release_weak_units(1) {
                // SAFETY: the weak word reached zero: no handle, entry or
                // hold refers to the allocation, and the value is gone.
                unsafe { CcBox::free(self.ptr) }
            }
        }
    }
}

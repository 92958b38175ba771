//! `Cc<T>`: the strong handle.
//!
//! Every operation here is `Arc`'s, plus the two hooks the collector needs:
//! a drop that leaves the count non-zero may buffer a possible root
//! (cycle-capable objects only), and the last drop of a value the collector
//! is holding waits for it to let go. Orderings are argued at each atomic
//! operation, the way `std`'s `Arc` does.
//!
//! # What a handle knows without a `Trace` bound
//!
//! `Cc<T>` has no bound on `T` (bounds sit on the impls, as with `Arc`),
//! so `Drop`, `Clone` and `Deref` cannot ask `T` whether it may hold
//! edges. The answer is recorded when the allocation is made, twice:
//!
//! * in the handle, as bit 0 of its pointer (the box is 8-aligned, so the
//!   bit is free): set for a *tracked* (cycle-capable) object. `Drop`
//!   tests it in a register, so a leaf's drop is exactly `Arc`'s single
//!   `fetch_sub`, with no load before it; every access masks the bit off
//!   (one `and`, no memory access);
//! * in the header's type code (see `header` and `erased`), for those that
//!   make a handle from an address alone: `Weak::upgrade` (which reads the
//!   word anyway) and `Cc::from_raw`.
//!
//! Files: this one holds the handle and its counting paths; `alloc` the
//! allocation and its layouts; `unique` the paths that take the value
//! (`try_unwrap`, `get_mut`, `make_mut`, ...); `convert` construction from
//! other shapes (`From`, `FromIterator`) and the std trait impls; `raw`
//! raw pointers, `coerce!`, downcasting; `drop` the drop paths (`Drop for
//! Cc`, the last drop of a leaf and of a tracked object).
//!
//! Guarded by the loom models in `loom-tests/` (every one of them clones
//! and drops handles), `tests/api.rs`, `tests/unsized.rs` and
//! `tests/std_arc.rs` (std's own `Arc` tests, ported).

mod alloc;
mod convert;
mod drop;
mod raw;
mod unique;

pub(crate) use alloc::CcBox;
#[cfg(feature = "census")]
pub(crate) use alloc::{census_retyped, census_retyped_weak};
pub use unique::CcClone;

use crate::collector;
use crate::erased::{self, VTableOf};
use crate::header::*;
use crate::trace::Trace;
use crate::weak::Weak;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// The bit of a handle's pointer that marks a tracked (cycle-capable)
/// object.
const TRACKED: usize = 1;
/// A thread-safe reference-counted pointer whose reference cycles are
/// collected.
///
/// `Cc<T>` is a drop-in for [`std::sync::Arc<T>`]: cloning adds a strong
/// handle, dropping the last one destroys the value at once, on the
/// dropping thread. What `Arc` cannot do is free a *cycle* of handles; for
/// that, a drop that leaves an object's count above zero remembers the
/// object as a possible root, and [`collect`](crate::collect) (or the
/// automatic trigger) later frees every such object that is reachable only
/// from other garbage — while every other thread keeps running.
///
/// `T` must implement [`Trace`] to be allocated, so the collector can see
/// its edges; the type itself, like `Arc<T>`, carries no bound, so a
/// generic struct holding a `Cc<Self>` needs none either. Types that hold
/// no `Cc` are declared with [`leaf!`](crate::leaf), and then `Cc<T>` costs
/// exactly what `Arc<T>` costs.
///
/// `T` may be unsized: `Cc<str>`, `Cc<[T]>` and `Cc<dyn Trait>` for any
/// `trait Trait: Trace + Send + Sync` (made with the `From` conversions,
/// `collect()`, or [`coerce!`](crate::coerce) from a `Cc` of a concrete
/// type). A cycle through `Cc<dyn Trait>` edges is collected like any
/// other: the collector finds each value's edges through the `Trace` impl
/// of its concrete type.
///
/// # `Send + Sync + 'static`
///
/// Allocating (`Cc::new` and the conversions) requires `T: Send + Sync +
/// 'static`, a stricter bound than `Arc::new`'s none. A value on a cycle
/// is freed by whichever thread runs the collection (often the collector
/// thread), long after any borrow it could hold has ended: so it must be
/// `Send` (destroyed on another thread), `Sync` (the collector reads it
/// while other threads may), and `'static` (no borrow can be proven to
/// outlive an unknown collection). A value that cannot meet this cannot
/// be put in a `Cc`; use `Rc` or `Arc` for it.
///
/// # Example
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Person {
///     name: String,
///     friend: Mutex<Option<Cc<Person>>>,
/// }
///
/// let alice = Cc::new(Person { name: "alice".into(), friend: Mutex::new(None) });
/// let bob = Cc::new(Person { name: "bob".into(), friend: Mutex::new(Some(alice.clone())) });
/// *alice.friend.lock().unwrap() = Some(bob.clone()); // a cycle
/// assert_eq!(Cc::strong_count(&alice), 2);
///
/// drop(alice);
/// drop(bob);
/// // Counting alone would leak the pair; the collector frees it.
/// assert!(arcycle::collect() >= 2);
/// ```
///
/// # Destructors of collected objects
///
/// When a cycle is freed, the `Drop` of one member may meet another member
/// whose value is already gone. Dereferencing such a `Cc` panics with a
/// message naming the problem; [`Cc::try_deref`] returns `None` and
/// [`Cc::is_dead`] returns `true` instead. A handle cloned to a dead object
/// keeps its allocation (never its value) alive until it is dropped.
pub struct Cc<T: ?Sized> {
    /// The box, with [`TRACKED`] set in the address for a cycle-capable
    /// object. Never used without masking it off (`inner`).
    ptr: NonNull<CcBox<T>>,
    _owns: PhantomData<CcBox<T>>,
}

// SAFETY: like `Arc<T>`: a `Cc` gives shared access to `T` from any thread
// that holds it (so `T: Sync`) and may destroy `T` on any thread (so
// `T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Send for Cc<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Cc<T> {}

// As `Arc`: unwind safety is the value's (the counts are atomics).
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::UnwindSafe for Cc<T> {}
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe for Cc<T> {}

// As `Arc`: moving the handle never moves the value.
impl<T: ?Sized> Unpin for Cc<T> {}

/// The type code for a new allocation of `T`: zero for a leaf.
#[inline(always)]
pub(crate) fn code_of<T: Trace>() -> u32 {
    if T::may_have_edges() {
        erased::encode(&VTableOf::<T>::TABLE)
    } else {
        0
    }
}

impl<T: Trace + Send + Sync + 'static> Cc<T> {
    /// Allocate `value` and return the first handle to it.
    ///
    /// May run an automatic collection first, if enough possible roots are
    /// buffered (see [`set_threshold`](crate::set_threshold)).
    ///
    /// ```
    /// let five = arcycle::Cc::new(5);
    /// assert_eq!(*five, 5);
    /// ```
    #[inline]
    pub fn new(value: T) -> Cc<T> {
        collector::maybe_auto_collect();
        let code = code_of::<T>();
        Cc::from_inner(CcBox::allocate(value, 1, 1, code), code != 0)
    }

    /// Build a value that holds a [`Weak`] to itself.
    ///
    /// `data_fn` receives a `Weak` to the allocation being built; upgrading
    /// it inside `data_fn` returns `None`. If `data_fn` panics, nothing
    /// leaks.
    ///
    /// ```
    /// use arcycle::{Cc, Trace, Weak};
    ///
    /// #[derive(Trace)]
    /// struct Me { me: Weak<Me> }
    ///
    /// let me = Cc::new_cyclic(|w| Me { me: w.clone() });
    /// assert!(Cc::ptr_eq(&me.me.upgrade().unwrap(), &me));
    /// ```
    pub fn new_cyclic<F: FnOnce(&Weak<T>) -> T>(data_fn: F) -> Cc<T> {
        collector::maybe_auto_collect();
        let code = code_of::<T>();
        // Strong count 0 (upgrades fail), weak count 2: the strong side's
        // one, and the `Weak` handed to `data_fn`.
        let ptr = CcBox::<T>::allocate_uninit(0, 2, code);
        // If `data_fn` panics, give back the strong side's weak unit; the
        // `Weak` below gives back its own and frees the allocation.
        struct Unbuilt<T>(NonNull<CcBox<T>>);
        impl<T> Drop for Unbuilt<T> {
            fn drop(&mut self) {
                // SAFETY: the box is live (the `Weak` still holds a unit).
                let header = unsafe { &(*self.0.as_ptr()).header };
                if header.release_strong_side() {
                    // SAFETY: the weak word is zero; no value was written.
                    unsafe { CcBox::dealloc(self.0, false) }
                }
            }
        }
        let weak = Weak::from_inner(ptr);
        let unbuilt = Unbuilt(ptr);
        let data = data_fn(&weak);
        std::mem::forget(unbuilt);
        // SAFETY: strong count is 0, so no `Cc` exists and no upgrade can
        // succeed: this thread has the value slot to itself.
        unsafe {
            (*ptr.as_ptr()).track.write();
            CcBox::value_ptr(ptr).write(data);
        }
        // Release: an upgrade that sees the count (Acquire) sees the value.
        // Nothing else writes the word while the count is zero.
        // SAFETY: live box.
        unsafe {
            (*ptr.as_ptr())
                .header
                .strong
                .store(count_field(1) | code_field(code), Release)
        };
        drop(weak);
        Cc::from_inner(ptr, code != 0)
    }
}

impl<T: ?Sized> Cc<T> {
    /// A handle to `ptr`, tagged if the object is tracked. The caller owns
    /// the strong unit the handle stands for.
    #[inline(always)]
    pub(crate) fn from_inner(ptr: NonNull<CcBox<T>>, tracked: bool) -> Cc<T> {
        let ptr = if tracked {
            ptr.map_addr(|a| a | TRACKED)
        } else {
            ptr
        };
        Cc {
            ptr,
            _owns: PhantomData,
        }
    }

    /// A handle to `ptr` (untagged), tagged as its type code says. The
    /// caller owns the strong unit the handle stands for.
    #[inline(always)]
    pub(crate) fn from_box(ptr: NonNull<CcBox<T>>) -> Cc<T> {
        // Relaxed: the code never changes; the strong unit the caller owns
        // ordered its write before.
        // SAFETY: the caller's unit keeps the box alive.
        let s = unsafe { &(*ptr.as_ptr()).header }.strong.load(Relaxed);
        Cc::from_inner(ptr, type_code(s) != 0)
    }

    /// Give up the handle for its pointer *with* its tracked tag (bit 0),
    /// for a holder that keeps it as a word (`AtomicCc`'s slot): taking it
    /// back with [`from_tagged`](Cc::from_tagged) needs no load.
    #[inline(always)]
    pub(crate) fn into_tagged(this: Self) -> NonNull<CcBox<T>> {
        let p = this.ptr;
        std::mem::forget(this);
        p
    }

    /// Take back a handle given up by [`into_tagged`](Cc::into_tagged).
    ///
    /// # Safety
    /// `p` came from `into_tagged` and its strong unit is the caller's.
    #[inline(always)]
    pub(crate) unsafe fn from_tagged(p: NonNull<CcBox<T>>) -> Cc<T> {
        Cc {
            ptr: p,
            _owns: PhantomData,
        }
    }

    /// The box, untagged.
    #[inline(always)]
    pub(crate) fn inner(&self) -> NonNull<CcBox<T>> {
        self.ptr.map_addr(|a| {
            // SAFETY: the box's address is 8-aligned and not null, so
            // clearing bit 0 leaves it non-zero.
            unsafe { std::num::NonZero::new_unchecked(a.get() & !TRACKED) }
        })
    }

    /// Whether the object may be on a cycle (the collector tracks it).
    #[inline(always)]
    pub(crate) fn is_tracked(&self) -> bool {
        self.ptr.addr().get() & TRACKED != 0
    }

    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a handle keeps the allocation alive.
        unsafe { &(*self.inner().as_ptr()).header }
    }

    #[inline(always)]
    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.inner().cast()
    }

    /// Create a [`Weak`] handle to this allocation.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let five = Cc::new(5);
    /// let weak = Cc::downgrade(&five);
    /// assert_eq!(*weak.upgrade().unwrap(), 5);
    /// ```
    pub fn downgrade(this: &Self) -> Weak<T> {
        let h = this.header();
        let wait = crate::sync::Wait::new();
        let mut w = h.weak.load(Relaxed);
        loop {
            if w & WEAK_LOCKED != 0 {
                // `get_mut` is checking uniqueness; it unlocks at once.
                wait.pause();
                w = h.weak.load(Relaxed);
                continue;
            }
            if w & WEAK_MASK >= MAX_COUNT {
                abort_count_overflow();
            }
            // Acquire, as in `Arc::downgrade`: synchronises with the unlock
            // in `is_unique`.
            match h.weak.compare_exchange_weak(w, w + 1, Acquire, Relaxed) {
                Ok(_) => return Weak::from_inner(this.inner()),
                Err(x) => w = x,
            }
        }
    }

    /// The number of strong handles. The collector's own temporary holds
    /// are never counted.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(1);
    /// let b = a.clone();
    /// assert_eq!(Cc::strong_count(&a), 2);
    /// # drop(b);
    /// ```
    pub fn strong_count(this: &Self) -> usize {
        count(this.header().strong.load(Relaxed)) as usize
    }

    /// The number of [`Weak`] handles.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(1);
    /// let w = Cc::downgrade(&a);
    /// assert_eq!(Cc::weak_count(&a), 1);
    /// # drop(w);
    /// ```
    pub fn weak_count(this: &Self) -> usize {
        // The strong side's unit is not a `Weak`; root-buffer entries and
        // the lock bit live outside the mask.
        ((this.header().weak.load(Relaxed) & WEAK_MASK) - 1) as usize
    }

    /// Whether two handles point to the same allocation (like
    /// `Arc::ptr_eq`, only addresses are compared, never `dyn` metadata).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(1);
    /// let b = a.clone();
    /// assert!(Cc::ptr_eq(&a, &b));
    /// assert!(!Cc::ptr_eq(&a, &Cc::new(1)));
    /// ```
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        std::ptr::addr_eq(this.inner().as_ptr(), other.inner().as_ptr())
    }

    /// A pointer to the value (valid while a strong handle exists).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(7);
    /// assert_eq!(unsafe { *Cc::as_ptr(&a) }, 7);
    /// ```
    pub fn as_ptr(this: &Self) -> *const T {
        CcBox::value_ptr(this.inner()).cast_const()
    }

    /// Whether the collector has destroyed this object's value (possible
    /// only for a handle cloned by a destructor from a collected peer).
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// assert!(!arcycle::Cc::is_dead(&a));
    /// ```
    pub fn is_dead(this: &Self) -> bool {
        this.is_tracked() && this.header().strong.load(Relaxed) & DEAD != 0
    }

    /// The value, or `None` if the collector has destroyed it.
    ///
    /// Use this in destructors of types that can be on a cycle: when a
    /// cycle is freed, a member's `Drop` may meet a peer that is already
    /// gone.
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// assert_eq!(arcycle::Cc::try_deref(&a), Some(&1));
    /// ```
    pub fn try_deref(this: &Self) -> Option<&T> {
        if Self::is_dead(this) {
            None
        } else {
            // SAFETY: a handle to a live object keeps its value alive.
            Some(unsafe { CcBox::value_ref(this.inner()) })
        }
    }
}

impl<T: ?Sized> Clone for Cc<T> {
    /// Add a strong handle: one atomic RMW.
    #[inline]
    fn clone(&self) -> Cc<T> {
        self.header().inc_strong();
        Cc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for Cc<T> {
    type Target = T;

    /// The value. No atomic RMW; one relaxed load for types that can be on
    /// a cycle.
    ///
    /// # Panics
    ///
    /// If the collector destroyed the value (a destructor dereferencing a
    /// collected peer). Use [`Cc::try_deref`] where that can happen.
    #[inline]
    fn deref(&self) -> &T {
        // Relaxed suffices: DEAD is set before the collector runs any
        // destructor, and a handle to a dead object can only have been
        // cloned by such a destructor (or passed on from it), which orders
        // the flag before this load.
        if self.is_tracked() && self.header().strong.load(Relaxed) & DEAD != 0 {
            dead_deref::<T>();
        }
        // SAFETY: a handle to a live object keeps its value alive.
        unsafe { CcBox::value_ref(self.inner()) }
    }
}

#[cold]
#[inline(never)]
fn dead_deref<T: ?Sized>() -> ! {
    panic!(
        "arcycle: dereferenced a Cc<{}> whose value was already destroyed by the cycle \
         collector (a destructor reached a collected peer); use Cc::try_deref in destructors",
        std::any::type_name::<T>()
    )
}

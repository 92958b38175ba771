//! `Cc<T>`: the strong handle.
//!
//! Every operation here is `Arc`'s, plus the two hooks the collector needs:
//! a drop that leaves the count non-zero may buffer a possible root (types
//! that may hold edges only), and the last drop of a value the collector is
//! holding leaves its destruction to the collector. Orderings are argued at
//! each atomic operation, the way `std`'s `Arc` does.

use crate::collector;
use crate::header::*;
use crate::sync::ValueCell;
use crate::trace::{Node, Trace};
use crate::weak::Weak;
use crate::{buffer, destroy};
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// The allocation: header, then value.
#[repr(C)]
pub(crate) struct CcBox<T> {
    pub(crate) header: Header,
    pub(crate) value: ValueCell<MaybeUninit<T>>,
}

impl<T> CcBox<T> {
    /// # Safety
    /// `this` is a live `CcBox<T>` with an initialised value that stays
    /// alive (and is not mutably borrowed) for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn value_ref<'a>(this: NonNull<CcBox<T>>) -> &'a T {
        // SAFETY: per the contract, the box is live and its value initialised.
        unsafe { (*(*this.as_ptr()).value.get()).assume_init_ref() }
    }

    /// # Safety
    /// The value is initialised and the caller alone may destroy it now.
    pub(crate) unsafe fn drop_value(this: NonNull<CcBox<T>>) {
        // SAFETY: per the contract, nobody else reads or drops the value.
        unsafe { (*(*this.as_ptr()).value.get_mut()).assume_init_drop() }
    }

    /// # Safety
    /// The weak word reached zero: no handle, entry or hold refers to `this`,
    /// and its value is already gone (or was never written).
    pub(crate) unsafe fn dealloc(this: NonNull<CcBox<T>>) {
        #[cfg(feature = "census")]
        crate::debug::census::on_free::<T>();
        // loom-tests: let loom check that every use of the header words
        // happens-before the free (it cannot see a `Box` going away).
        // SAFETY: the weak word is zero: nobody else uses the header.
        #[cfg(arcycle_loom)]
        unsafe {
            (*this.as_ptr()).header.loom_free()
        };
        // SAFETY: allocated by `Box` in `Cc::new`/`new_cyclic`; `MaybeUninit`
        // does not drop the value again.
        drop(unsafe { Box::from_raw(this.as_ptr()) });
    }
}

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
/// `T` must implement [`Trace`] so the collector can see its edges. Types
/// that hold no `Cc` are declared with [`leaf!`](crate::leaf), and then
/// `Cc<T>` costs exactly what `Arc<T>` costs.
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
pub struct Cc<T: Trace> {
    ptr: NonNull<CcBox<T>>,
    _owns: PhantomData<CcBox<T>>,
}

// SAFETY: like `Arc<T>`: a `Cc` gives shared access to `T` from any thread
// that holds it (so `T: Sync`) and may destroy `T` on any thread (so
// `T: Send`).
unsafe impl<T: Trace + Send + Sync> Send for Cc<T> {}
// SAFETY: as above.
unsafe impl<T: Trace + Send + Sync> Sync for Cc<T> {}

impl<T: Trace> std::panic::UnwindSafe for Cc<T> where T: std::panic::RefUnwindSafe {}

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
        let boxed = Box::new(CcBox {
            header: Header::new(1, 1),
            value: ValueCell::new(MaybeUninit::new(value)),
        });
        Cc::from_box(boxed)
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
        // Strong count 0 (upgrades fail), weak count 2: the strong side's
        // one, and the `Weak` handed to `data_fn`.
        let boxed = Box::new(CcBox {
            header: Header::new(0, 2),
            value: ValueCell::new(MaybeUninit::<T>::uninit()),
        });
        let ptr = NonNull::from(Box::leak(boxed));
        #[cfg(feature = "census")]
        crate::debug::census::on_alloc::<T>();
        // If `data_fn` panics, give back the strong side's weak unit; the
        // `Weak` below gives back its own and frees the allocation.
        struct Unbuilt<T: Trace>(NonNull<CcBox<T>>);
        impl<T: Trace> Drop for Unbuilt<T> {
            fn drop(&mut self) {
                // SAFETY: the box is live (the `Weak` still holds a unit).
                let header = unsafe { &(*self.0.as_ptr()).header };
                if header.release_strong_side() {
                    // SAFETY: the weak word is zero; no value was written.
                    unsafe { CcBox::dealloc(self.0) }
                }
            }
        }
        let weak = Weak::from_inner(ptr);
        let unbuilt = Unbuilt(ptr);
        let data = data_fn(&weak);
        mem::forget(unbuilt);
        // SAFETY: strong count is 0, so no `Cc` exists and no upgrade can
        // succeed: this thread has the value slot to itself.
        unsafe { (*(*ptr.as_ptr()).value.get_mut()).write(data) };
        // Release: an upgrade that sees the count (Acquire) sees the value.
        // SAFETY: live box.
        unsafe { (*ptr.as_ptr()).header.strong.store(1, Release) };
        drop(weak);
        Cc::from_inner(ptr)
    }

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
                if T::may_have_edges() {
                    // Others remain: give this handle up exactly as `drop`
                    // does (buffering a possible root), unless we became the
                    // last in the meantime, in which case go round again.
                    if buffer::decrement_inner(Node::of(this), true).is_some() {
                        return Take::Decremented;
                    }
                    s = h.strong.load(Relaxed);
                    continue;
                }
                // Release, as in `drop`.
                match h
                    .strong
                    .compare_exchange_weak(s, s.wrapping_add(DEC), Release, Relaxed)
                {
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
                collector::wait_for_hold(&wait);
                s = h.strong.load(Relaxed);
                continue;
            }
            // Acquire: every other handle's uses of the value (released by
            // their drops, and the collector's release of its hold)
            // happen-before we take it.
            match h
                .strong
                .compare_exchange_weak(s, s.wrapping_add(DEC), Acquire, Relaxed)
            {
                Ok(_) => return Take::Taken,
                Err(x) => s = x,
            }
        }
    }

    /// # Safety
    /// The strong count was taken to zero by this thread with no hold set.
    unsafe fn take_value_and_release(self) -> T {
        let ptr = self.ptr;
        mem::forget(self);
        // SAFETY: per the contract we own the value; a root-buffer entry may
        // still refer to the allocation, but the collector skips count-0
        // objects without reading their value.
        let value = unsafe { (*(*ptr.as_ptr()).value.get_mut()).assume_init_read() };
        // SAFETY: live box until its weak word reaches zero.
        if unsafe { (*ptr.as_ptr()).header.release_strong_side() } {
            // SAFETY: weak word is zero and the value was moved out.
            unsafe { CcBox::dealloc(ptr) }
        }
        value
    }
}

enum Take {
    Taken,
    Decremented,
    NotLast,
}

impl<T: Trace> Cc<T> {
    /// A new allocation's first handle (`Cc::new`, `make_mut`).
    fn from_box(b: Box<CcBox<T>>) -> Cc<T> {
        #[cfg(feature = "census")]
        crate::debug::census::on_alloc::<T>();
        Cc::from_inner(NonNull::from(Box::leak(b)))
    }

    pub(crate) fn from_inner(ptr: NonNull<CcBox<T>>) -> Cc<T> {
        Cc {
            ptr,
            _owns: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a handle keeps the allocation alive.
        unsafe { &(*self.ptr.as_ptr()).header }
    }

    #[inline(always)]
    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr.cast()
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
                Ok(_) => return Weak::from_inner(this.ptr),
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

    /// Whether two handles point to the same allocation.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(1);
    /// let b = a.clone();
    /// assert!(Cc::ptr_eq(&a, &b));
    /// assert!(!Cc::ptr_eq(&a, &Cc::new(1)));
    /// ```
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        this.ptr == other.ptr
    }

    /// A pointer to the value (valid while a strong handle exists).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(7);
    /// assert_eq!(unsafe { *Cc::as_ptr(&a) }, 7);
    /// ```
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: the box is live; no reference to the value is created.
        unsafe { (*this.ptr.as_ptr()).value.get() as *const T }
    }

    /// Whether the collector has destroyed this object's value (possible
    /// only for a handle cloned by a destructor from a collected peer).
    ///
    /// ```
    /// let a = arcycle::Cc::new(1);
    /// assert!(!arcycle::Cc::is_dead(&a));
    /// ```
    pub fn is_dead(this: &Self) -> bool {
        T::may_have_edges() && this.header().strong.load(Relaxed) & DEAD != 0
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
            Some(unsafe { CcBox::value_ref(this.ptr) })
        }
    }

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
            Some(unsafe { (*(*this.ptr.as_ptr()).value.get_mut()).assume_init_mut() })
        } else {
            None
        }
    }

    /// Uniqueness as `Arc::is_unique` decides it, plus the collector's
    /// side: after `true`, no collection reads the value until the caller's
    /// `&mut` ends.
    fn is_unique(this: &mut Self) -> bool {
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
            if !T::may_have_edges() || s & (HELD | FROZEN | ACTIVE) == 0 {
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
                collector::wait_for_hold(&wait);
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
                return true;
            }
        }
    }

    /// The value mutably: if other strong handles exist, clone it into a
    /// fresh allocation first; if only `Weak`s share it, move it into a
    /// fresh allocation (they can no longer upgrade). Like `Arc::make_mut`.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut a = Cc::new(5);
    /// let b = a.clone();
    /// *Cc::make_mut(&mut a) += 1; // clones: b still sees 5
    /// assert_eq!((*a, *b), (6, 5));
    /// ```
    pub fn make_mut(this: &mut Self) -> &mut T
    where
        T: Clone + Send + Sync + 'static,
    {
        if !Self::is_unique(this) {
            let moved = Self::strong_count(this) == 1
                && matches!(Self::take_last(this, false), Take::Taken);
            let fresh = if moved {
                // Only `Weak`s shared the value: move it out, as
                // `Arc::make_mut` does, leaving the `Weak`s dangling.
                // SAFETY: `take_last` took the count to zero with no hold;
                // the bitwise copy is consumed in place of `*this`, which is
                // overwritten below without being dropped.
                let value = unsafe { std::ptr::read(this).take_value_and_release() };
                Cc::from_box(Box::new(CcBox {
                    header: Header::new(1, 1),
                    value: ValueCell::new(MaybeUninit::new(value)),
                }))
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
        // SAFETY: unique now (a fresh allocation is unique and unbuffered).
        unsafe { (*(*this.ptr.as_ptr()).value.get_mut()).assume_init_mut() }
    }
}

impl<T: Trace> Clone for Cc<T> {
    /// Add a strong handle: one atomic RMW.
    #[inline]
    fn clone(&self) -> Cc<T> {
        self.header().inc_strong();
        Cc::from_inner(self.ptr)
    }
}

impl<T: Trace> Deref for Cc<T> {
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
        if T::may_have_edges() && self.header().strong.load(Relaxed) & DEAD != 0 {
            dead_deref::<T>();
        }
        // SAFETY: a handle to a live object keeps its value alive.
        unsafe { CcBox::value_ref(self.ptr) }
    }
}

#[cold]
#[inline(never)]
fn dead_deref<T>() -> ! {
    panic!(
        "arcycle: dereferenced a Cc<{}> whose value was already destroyed by the cycle \
         collector (a destructor reached a collected peer); use Cc::try_deref in destructors",
        std::any::type_name::<T>()
    )
}

impl<T: Trace> Drop for Cc<T> {
    /// Give up this handle: one atomic RMW, plus buffering a possible root
    /// when the object may be on a cycle and is not buffered yet.
    #[inline]
    fn drop(&mut self) {
        let old = if T::may_have_edges() {
            // A CAS that buffers a possible root when needed (see `buffer`).
            buffer::decrement(Node::of(self))
        } else {
            // Exactly `Arc::drop`. Release: every use of the value through
            // this handle happens-before the destruction by whoever drops
            // last.
            self.header().strong.fetch_add(DEC, Release)
        };
        if count(old) != 1 {
            return;
        }
        // SAFETY: this was the last handle.
        unsafe { last_handle_gone::<T>(Node::of(self), old) }
    }
}

/// The last strong handle of `node` went away; `old` is the word before.
///
/// Out of line, like `Arc`'s `drop_slow`: the common drop (not the last)
/// stays small enough to inline at every call site.
///
/// # Safety
/// The caller's decrement took the count from 1 to 0.
#[inline(never)]
pub(crate) unsafe fn last_handle_gone<T: Trace>(node: Node, old: u64) {
    if old & HELD != 0 {
        // SAFETY: forwarded contract.
        unsafe { held_last_drop(node, old) };
        return;
    }
    // Acquire, as in `Arc::drop`: all other handles' uses of the value
    // happen-before the destruction.
    acquire_fence(&node.header().strong);
    if old & DEAD != 0 {
        // The collector already destroyed the value; this was a handle a
        // destructor cloned. Only the allocation remains to give back.
        if node.header().release_strong_side() {
            // SAFETY: weak word zero: nothing refers to the allocation.
            unsafe { (node.vtable.dealloc)(node.header) }
        }
        return;
    }
    if T::may_have_edges() {
        // SAFETY: count 0, no hold, not dead: this thread owns the value.
        unsafe { destroy::destroy(node) }
    } else {
        // A leaf holds no `Cc`, so its destruction cannot recurse into
        // another: exactly `Arc`'s path.
        // SAFETY: as above.
        unsafe { destroy::destroy_one(node) }
    }
}

/// The last handle of an object the collector holds went away: a dead one
/// (the collector releases the allocation when it lets go), or a live one
/// whose handle a `Trace` impl dropped on the collecting thread (the
/// collector destroys the value when it lets go). Every other last drop
/// waited for the hold to go (`buffer::decrement_inner`).
///
/// # Safety
/// The caller's decrement took the count from 1 to 0 with `HELD` set.
#[cold]
#[inline(never)]
unsafe fn held_last_drop(node: Node, old: u64) {
    if old & (DEAD | VALUE_PENDING) == DEAD | VALUE_PENDING
        && collector::owns_collector()
        && !std::thread::panicking()
    {
        // A peer's destructor, run by this thread's collection, dropped
        // the last handle to a member whose value the collector has not
        // dropped yet: drop it now, inline, as `Arc` would (see
        // `collector::commit`). Not while unwinding: the collector's loop
        // drops it under `catch_unwind`, so a second panicking destructor
        // cannot abort the process. Acquire: as for any last drop.
        let h = node.header();
        if h.strong.fetch_and(!VALUE_PENDING, Acquire) & VALUE_PENDING != 0 {
            // SAFETY: dead and held, and our claim makes this the only
            // destruction of the value; the collector frees the allocation
            // after its destroy loop, which this runs within.
            unsafe { destroy::destroy_value_only(node) }
        }
    }
}

impl<T: Trace> AsRef<T> for Cc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: Trace> Borrow<T> for Cc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: Trace + fmt::Debug> fmt::Debug for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Cc::try_deref(self) {
            Some(v) => fmt::Debug::fmt(v, f),
            None => f.write_str("<collected>"),
        }
    }
}

impl<T: Trace + fmt::Display> fmt::Display for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: Trace> fmt::Pointer for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Cc::as_ptr(self), f)
    }
}

impl<T: Trace + PartialEq> PartialEq for Cc<T> {
    fn eq(&self, other: &Cc<T>) -> bool {
        **self == **other
    }
}

impl<T: Trace + Eq> Eq for Cc<T> {}

impl<T: Trace + PartialOrd> PartialOrd for Cc<T> {
    fn partial_cmp(&self, other: &Cc<T>) -> Option<CmpOrdering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: Trace + Ord> Ord for Cc<T> {
    fn cmp(&self, other: &Cc<T>) -> CmpOrdering {
        (**self).cmp(&**other)
    }
}

impl<T: Trace + Hash> Hash for Cc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: Trace + Default + Send + Sync + 'static> Default for Cc<T> {
    fn default() -> Cc<T> {
        Cc::new(T::default())
    }
}

impl<T: Trace + Send + Sync + 'static> From<T> for Cc<T> {
    fn from(value: T) -> Cc<T> {
        Cc::new(value)
    }
}

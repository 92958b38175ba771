//! Raw pointers and retyping by hand: `Cc`'s raw-pointer API
//! (`into_raw`, `from_raw`, the strong count by pointer), the
//! [`coerce!`](crate::coerce) and [`coerce_weak!`](crate::coerce_weak)
//! macros, `downcast` of `Cc<dyn Any + …>`, and `Weak`'s raw API.
//!
//! # What this guarantees
//!
//! * **Unsizing on stable Rust** ([`coerce!`](crate::coerce)) is the raw
//!   pointer's own unsizing coercion: the macro passes the pointer from
//!   `into_raw` to `from_raw` at a call whose parameter type comes from the
//!   caller's expected type, and an implicit coercion of a raw pointer can
//!   only unsize (or drop `mut`). Anything else is a type error.
//! * A `Cc<dyn Trait>` (or `Cc<dyn Any + Send + Sync>`) made by `coerce!`
//!   keeps the allocation of the concrete value, whose type code was
//!   recorded by `Cc::new`: the collector traces it through the concrete
//!   type's impl, so cycles through type-erased edges are collected.
//!
//! Guarded by `tests/unsized.rs` (every conversion, panics, `dyn` cycles),
//! `tests/std_arc.rs`, the `compile_fail` doc tests on `coerce!`, and
//! `miri-tests/tests/unsized.rs`.

use super::{Cc, CcBox};
use crate::weak::Weak;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

// ------------------------------------------------------------ raw pointers

impl<T: ?Sized> Cc<T> {
    /// Give up the handle without dropping it, returning a pointer to the
    /// value; [`Cc::from_raw`] takes it back. Like `Arc::into_raw`.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let x = Cc::new(String::from("hi"));
    /// let p = Cc::into_raw(x);
    /// assert_eq!(unsafe { &*p }, "hi");
    /// let x = unsafe { Cc::from_raw(p) }; // no leak
    /// assert_eq!(*x, "hi");
    /// ```
    pub fn into_raw(this: Self) -> *const T {
        let p = Cc::as_ptr(&this);
        std::mem::forget(this);
        p
    }

    /// Take back a handle given up by [`Cc::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `Cc::into_raw` of a `Cc<U>` where `U` is `T`,
    /// or `T` is an unsized type `U` coerces to (as with
    /// [`coerce!`](crate::coerce)), and each `into_raw` may be taken back
    /// once.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let p = Cc::into_raw(Cc::new(5));
    /// let x = unsafe { Cc::from_raw(p) };
    /// assert_eq!(*x, 5);
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: forwarded contract: a value inside a live box.
        Cc::from_box(unsafe { CcBox::from_value_ptr(ptr) })
    }

    /// Add a strong handle to the allocation behind `ptr` (from
    /// [`Cc::into_raw`]), like `Arc::increment_strong_count`.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `Cc::into_raw` and that handle must still be
    /// given up (not yet taken back).
    ///
    /// ```
    /// use arcycle::Cc;
    /// let p = Cc::into_raw(Cc::new(5));
    /// unsafe { Cc::increment_strong_count(p) };
    /// let (a, b) = unsafe { (Cc::from_raw(p), Cc::from_raw(p)) };
    /// assert_eq!(Cc::strong_count(&a), 2);
    /// # drop((a, b));
    /// ```
    pub unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: forwarded contract.
        let this = ManuallyDrop::new(unsafe { Cc::from_raw(ptr) });
        let _more: ManuallyDrop<Cc<T>> = ManuallyDrop::new((*this).clone());
    }

    /// Give up one strong handle of the allocation behind `ptr` (from
    /// [`Cc::into_raw`]), like `Arc::decrement_strong_count`.
    ///
    /// # Safety
    ///
    /// As for [`Cc::from_raw`]: this takes back one given-up handle.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let a = Cc::new(5);
    /// let p = Cc::into_raw(a.clone());
    /// unsafe { Cc::decrement_strong_count(p) };
    /// assert_eq!(Cc::strong_count(&a), 1);
    /// ```
    pub unsafe fn decrement_strong_count(ptr: *const T) {
        // SAFETY: forwarded contract.
        drop(unsafe { Cc::from_raw(ptr) });
    }
}

/// Turn a `Cc<T>` into a `Cc<U>` wherever `&T` coerces to `&U`: a concrete
/// value to a trait object, an array to a slice, a trait object to a
/// supertrait object. The target is inferred from where the result goes.
///
/// Stable Rust cannot implement `CoerceUnsized` for a user type, so this
/// macro does it: it gives up the handle with [`Cc::into_raw`] and takes
/// it back with [`Cc::from_raw`] at the expected type; the raw pointer's
/// implicit coercion in between can only be an unsizing one.
///
/// ```
/// use arcycle::{Cc, Trace};
///
/// trait Shape: Trace + Send + Sync {
///     fn area(&self) -> f64;
/// }
///
/// #[derive(Trace)]
/// struct Circle(f64);
/// impl Shape for Circle {
///     fn area(&self) -> f64 { 3.0 * self.0 * self.0 }
/// }
///
/// let circle = Cc::new(Circle(1.0));
/// let shape: Cc<dyn Shape> = arcycle::coerce!(circle);
/// assert_eq!(shape.area(), 3.0);
///
/// let numbers: Cc<[u8]> = arcycle::coerce!(Cc::new([1, 2, 3]));
/// assert_eq!(&numbers[..], &[1, 2, 3]);
/// ```
///
/// A conversion that is not an unsizing coercion does not compile:
///
/// ```compile_fail
/// let n = arcycle::Cc::new(5u32);
/// let s: arcycle::Cc<String> = arcycle::coerce!(n);
/// ```
#[macro_export]
macro_rules! coerce {
    ($cc:expr $(,)?) => {{
        let __arcycle_raw = $crate::Cc::into_raw($cc);
        let __arcycle_from = $crate::__private::census_from(__arcycle_raw);
        #[allow(unused_unsafe)]
        // SAFETY: the pointer comes from `into_raw` just above, and the
        // only conversion a raw pointer argument undergoes implicitly is an
        // unsizing coercion (which keeps the address and adds the metadata
        // of the same value). `census_to` returns its argument, so the
        // coercion's target is the macro's.
        $crate::__private::census_to(__arcycle_from, unsafe {
            $crate::Cc::from_raw(__arcycle_raw)
        })
    }};
}

/// [`coerce!`] for [`Weak`]: turns a `Weak<T>` into a `Weak<U>` wherever
/// `&T` coerces to `&U`.
///
/// ```
/// use arcycle::{Cc, Weak};
/// use std::fmt::Debug;
///
/// let five = Cc::new(5u32);
/// let weak: Weak<dyn Debug + Send + Sync> = arcycle::coerce_weak!(Cc::downgrade(&five));
/// assert_eq!(format!("{:?}", weak.upgrade().unwrap()), "5");
/// ```
#[macro_export]
macro_rules! coerce_weak {
    ($weak:expr $(,)?) => {{
        let __arcycle_raw = $crate::Weak::into_raw($weak);
        let __arcycle_from = $crate::__private::census_from(__arcycle_raw);
        #[allow(unused_unsafe)]
        // SAFETY: as in `coerce!`.
        $crate::__private::census_to_weak(__arcycle_from, unsafe {
            $crate::Weak::from_raw(__arcycle_raw)
        })
    }};
}

// ------------------------------------------------------------ downcasting

macro_rules! downcast {
    ($($any:ty),*) => {$(
        impl Cc<$any> {
            /// The handle as a `Cc` of the concrete type, if that is the
            /// value's type (like `Arc::downcast`); otherwise the handle
            /// back.
            ///
            /// Hold a type-erased value as `Cc<dyn Any + Send + Sync>`
            /// (made with [`coerce!`](crate::coerce) from a `Cc` of any
            /// `Trace` type, or upcast from `Cc<dyn YourTrait>` when
            /// `YourTrait: Any`): it is traced through its concrete type,
            /// so it can be on a collected cycle.
            ///
            /// ```
            /// use arcycle::Cc;
            /// use std::any::Any;
            ///
            /// let any: Cc<dyn Any + Send + Sync> = arcycle::coerce!(Cc::new(7i32));
            /// let any = any.downcast::<String>().unwrap_err();
            /// let n: Cc<i32> = any.downcast::<i32>().unwrap();
            /// assert_eq!(*n, 7);
            /// ```
            pub fn downcast<T: Any + Send + Sync>(self) -> Result<Cc<T>, Self> {
                if (*self).is::<T>() {
                    // SAFETY: the value is a `T` (checked just above).
                    Ok(unsafe { Cc::retype(self, NonNull::cast) })
                } else {
                    Err(self)
                }
            }
        }
    )*};
}
downcast!(dyn Any + Send + Sync, dyn Any + Send, dyn Any);

// ------------------------------------------------------------ Weak's raw API

impl<T: ?Sized> Weak<T> {
    /// A pointer to the value (dangling for [`Weak::new`], and not to be
    /// read once the value is gone), like `std::sync::Weak::as_ptr`.
    ///
    /// ```
    /// let a = arcycle::Cc::new(3);
    /// let w = arcycle::Cc::downgrade(&a);
    /// assert_eq!(w.as_ptr(), arcycle::Cc::as_ptr(&a));
    /// ```
    pub fn as_ptr(&self) -> *const T {
        match self.inner() {
            Some(this) => CcBox::value_ptr(this).cast_const(),
            // The sentinel itself, as `std` returns for `Weak::new()`.
            None => self.raw_box().as_ptr() as *const T,
        }
    }

    /// Give up the handle without dropping it; [`Weak::from_raw`] takes it
    /// back. Like `std::sync::Weak::into_raw`.
    ///
    /// ```
    /// let a = arcycle::Cc::new(3);
    /// let p = arcycle::Cc::downgrade(&a).into_raw();
    /// let w = unsafe { arcycle::Weak::from_raw(p) };
    /// assert_eq!(*w.upgrade().unwrap(), 3);
    /// ```
    pub fn into_raw(self) -> *const T {
        let p = self.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Take back a handle given up by [`Weak::into_raw`].
    ///
    /// # Safety
    ///
    /// As for [`Cc::from_raw`], with `Weak::into_raw`.
    ///
    /// ```
    /// let p = arcycle::Weak::<u8>::new().into_raw();
    /// let w = unsafe { arcycle::Weak::from_raw(p) };
    /// assert!(w.upgrade().is_none());
    /// ```
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        if ptr.cast::<u8>().addr() == crate::weak::DANGLING {
            // SAFETY: the sentinel, with its (possibly coerced) metadata.
            return Weak::from_inner(unsafe { NonNull::new_unchecked(ptr as *mut CcBox<T>) });
        }
        // SAFETY: forwarded contract: the pointer is into a box that this
        // handle's weak unit keeps allocated.
        Weak::from_inner(unsafe { CcBox::from_value_ptr(ptr) })
    }
}

//! Making a `Cc` from other shapes, and the standard traits.
//!
//! # What this guarantees
//!
//! * Every conversion makes **one allocation**, like `Arc`'s, except where
//!   `Arc` also collects into a `Vec` first (`FromIterator`): a panicking
//!   iterator or `Clone` leaks nothing and drops nothing twice (the
//!   partial slice is dropped, the allocation given back: see
//!   `alloc::allocate_slice`).
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
//!
//! The raw pointers, `coerce!`, `downcast` and `Weak`'s raw API are in
//! `raw.rs`; this file keeps construction (`From`, `FromIterator`, ...)
//! and the std trait impls.

use super::alloc::{allocate_from_box, allocate_slice, allocate_str, allocate_uninit_slice};
use super::{Cc, CcBox};
use crate::collector;
use crate::trace::Trace;
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::pin::Pin;
use std::ptr::{self, NonNull};

// ------------------------------------------------------------ retyping

impl<T: ?Sized> Cc<T> {
    /// The same allocation and strong unit under another value type: `cast`
    /// turns the box pointer into one of `U` (keeping or replacing the
    /// metadata); the tracked tag stays, and the census hears of it.
    ///
    /// # Safety
    /// The allocation holds a valid `U` at the same place, laid out as
    /// `cast`'s result says (as the callers argue).
    pub(super) unsafe fn retype<U: ?Sized>(
        this: Self,
        cast: impl FnOnce(NonNull<CcBox<T>>) -> NonNull<CcBox<U>>,
    ) -> Cc<U> {
        let tracked = this.is_tracked();
        let ptr = cast(this.inner());
        std::mem::forget(this);
        let out = Cc::from_inner(ptr, tracked);
        #[cfg(feature = "census")]
        let out = super::alloc::census_retyped(std::any::type_name::<T>(), out);
        out
    }
}

// ------------------------------------------------------------ construction

impl<T: Trace + Send + Sync + 'static> Cc<T> {
    /// A new `Pin<Cc<T>>`: the value never moves while a handle exists.
    ///
    /// ```
    /// let p = arcycle::Cc::pin(5);
    /// assert_eq!(*p, 5);
    /// ```
    pub fn pin(value: T) -> Pin<Cc<T>> {
        // SAFETY: the value lives in the allocation until it is dropped in
        // place; no safe API moves it out of a `Pin<Cc<T>>` (`try_unwrap`
        // and `get_mut` need the `Cc` itself).
        unsafe { Pin::new_unchecked(Cc::new(value)) }
    }

    /// An allocation whose value is to be written in place, like
    /// `Arc::new_uninit`.
    ///
    /// The value is never examined by the collector (the allocation is
    /// made before the value exists, so it is recorded as a leaf): a cycle
    /// through a value built this way is never freed. Build values that
    /// may be on a cycle with [`Cc::new`].
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut x = Cc::<u32>::new_uninit();
    /// Cc::get_mut(&mut x).unwrap().write(5);
    /// let x = unsafe { x.assume_init() };
    /// assert_eq!(*x, 5);
    /// ```
    pub fn new_uninit() -> Cc<MaybeUninit<T>> {
        collector::maybe_auto_collect();
        Cc::from_inner(CcBox::allocate(MaybeUninit::<T>::uninit(), 1, 1, 0), false)
    }
}

impl<T: Send + Sync + 'static> Cc<MaybeUninit<T>> {
    /// The handle as a `Cc<T>`, like `Arc::assume_init`.
    ///
    /// # Safety
    ///
    /// The value must be initialised.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut x = Cc::<String>::new_uninit();
    /// Cc::get_mut(&mut x).unwrap().write("hi".into());
    /// assert_eq!(*unsafe { x.assume_init() }, "hi");
    /// ```
    pub unsafe fn assume_init(self) -> Cc<T> {
        // SAFETY: initialised (the caller's contract); `MaybeUninit<T>` has
        // `T`'s layout. A leaf allocation stays one (see `new_uninit`).
        unsafe { Cc::retype(self, NonNull::cast) }
    }
}

impl<T: Send + Sync + 'static> Cc<[T]> {
    /// An allocation of `len` elements to be written in place, like
    /// `Arc::new_uninit_slice`. As with [`Cc::new_uninit`], the allocation
    /// is a leaf: the collector never examines its elements.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut v = Cc::<[u32]>::new_uninit_slice(3);
    /// for (i, slot) in Cc::get_mut(&mut v).unwrap().iter_mut().enumerate() {
    ///     slot.write(i as u32 * 10);
    /// }
    /// let v = unsafe { v.assume_init() };
    /// assert_eq!(&*v, &[0, 10, 20]);
    /// ```
    pub fn new_uninit_slice(len: usize) -> Cc<[MaybeUninit<T>]> {
        collector::maybe_auto_collect();
        Cc::from_inner(allocate_uninit_slice::<T>(len), false)
    }
}

impl<T: Send + Sync + 'static> Cc<[MaybeUninit<T>]> {
    /// The handle as a `Cc<[T]>`, like `Arc::<[MaybeUninit<T>]>::assume_init`.
    ///
    /// # Safety
    ///
    /// Every element must be initialised.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let mut v = Cc::<[String]>::new_uninit_slice(1);
    /// Cc::get_mut(&mut v).unwrap()[0].write("hi".into());
    /// assert_eq!(unsafe { v.assume_init() }[0], "hi");
    /// ```
    pub unsafe fn assume_init(self) -> Cc<[T]> {
        // SAFETY: initialised (the caller's contract); `[MaybeUninit<T>]`
        // has `[T]`'s layout and metadata (a length), so the cast keeps
        // both. A leaf allocation stays one (see `new_uninit_slice`).
        unsafe {
            Cc::retype(self, |p| {
                NonNull::new_unchecked(p.as_ptr() as *mut CcBox<[T]>)
            })
        }
    }
}

impl<T: Trace + Send + Sync + 'static> From<T> for Cc<T> {
    /// `Cc::new(value)`.
    fn from(value: T) -> Cc<T> {
        Cc::new(value)
    }
}

impl<T: ?Sized + Trace + Send + Sync + 'static> From<Box<T>> for Cc<T> {
    /// Move the boxed value into a new allocation (one allocation; the
    /// box is given back). Works for unsized values, so a `Box<dyn Trait>`
    /// becomes a `Cc<dyn Trait>`. The value's concrete type is not known
    /// here, so the allocation is always tracked by the collector, even
    /// for a leaf.
    ///
    /// ```
    /// use arcycle::{Cc, Trace};
    /// trait Named: Trace + Send + Sync { fn name(&self) -> String; }
    /// #[derive(Trace)]
    /// struct Dog;
    /// impl Named for Dog { fn name(&self) -> String { "dog".into() } }
    ///
    /// let b: Box<dyn Named> = Box::new(Dog);
    /// let c: Cc<dyn Named> = Cc::from(b);
    /// assert_eq!(c.name(), "dog");
    /// ```
    fn from(b: Box<T>) -> Cc<T> {
        collector::maybe_auto_collect();
        Cc::from_inner(allocate_from_box(b, true), true)
    }
}

impl From<&str> for Cc<str> {
    /// ```
    /// let s: arcycle::Cc<str> = "hello".into();
    /// assert_eq!(&*s, "hello");
    /// ```
    fn from(s: &str) -> Cc<str> {
        collector::maybe_auto_collect();
        Cc::from_inner(allocate_str(s), false)
    }
}

impl From<String> for Cc<str> {
    /// ```
    /// let s: arcycle::Cc<str> = String::from("hello").into();
    /// assert_eq!(&*s, "hello");
    /// ```
    fn from(s: String) -> Cc<str> {
        Cc::from(&s[..])
    }
}

impl From<Cc<str>> for Cc<[u8]> {
    /// The string's bytes, without copying.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let s: Cc<str> = "ab".into();
    /// let b: Cc<[u8]> = s.into();
    /// assert_eq!(&*b, b"ab");
    /// ```
    fn from(s: Cc<str>) -> Cc<[u8]> {
        // SAFETY: same metadata (a length) and the same bytes; the cast of
        // a non-null pointer is non-null.
        unsafe {
            Cc::retype(
                s,
                |p| NonNull::new_unchecked(p.as_ptr() as *mut CcBox<[u8]>),
            )
        }
    }
}

impl<T, const N: usize> TryFrom<Cc<[T]>> for Cc<[T; N]> {
    type Error = Cc<[T]>;

    /// The same allocation as an array, if the slice has `N` elements
    /// (like `Arc`'s); otherwise the handle back.
    ///
    /// ```
    /// use arcycle::Cc;
    /// let s: Cc<[u32]> = vec![1, 2, 3].into();
    /// let a: Cc<[u32; 3]> = s.clone().try_into().unwrap();
    /// assert_eq!(*a, [1, 2, 3]);
    /// assert!(Cc::<[u32; 2]>::try_from(s).is_err());
    /// ```
    fn try_from(slice: Cc<[T]>) -> Result<Cc<[T; N]>, Cc<[T]>> {
        // The length is the pointer's metadata: no read of the value.
        if Cc::as_ptr(&slice).len() != N {
            return Err(slice);
        }
        // SAFETY: the same allocation and type code (a tracked one is
        // still freed through its `[T]` table); `CcBox<[T; N]>` has the
        // layout of a `CcBox<[T]>` of length `N` (checked above).
        Ok(unsafe { Cc::retype(slice, NonNull::cast) })
    }
}

impl<T: Trace + Send + Sync + 'static> From<Vec<T>> for Cc<[T]> {
    /// Move the elements into a new allocation (the vector's buffer is
    /// given back).
    ///
    /// ```
    /// let v: arcycle::Cc<[u32]> = vec![1, 2, 3].into();
    /// assert_eq!(&*v, &[1, 2, 3]);
    /// ```
    fn from(v: Vec<T>) -> Cc<[T]> {
        collector::maybe_auto_collect();
        let mut v = ManuallyDrop::new(v);
        let len = v.len();
        let this = allocate_slice::<T>(len, |dst, written| {
            // SAFETY: `dst` has room for `len` elements; the vector's are
            // moved (its length is set to 0 below, so they are not
            // dropped twice).
            unsafe { ptr::copy_nonoverlapping(v.as_ptr(), dst, len) };
            *written = len;
        });
        // SAFETY: the elements were moved out; give back only the buffer.
        unsafe {
            v.set_len(0);
            ManuallyDrop::drop(&mut v);
        }
        Cc::from_inner(this, T::may_have_edges())
    }
}

impl From<&mut str> for Cc<str> {
    /// Copy the string into a new allocation, as `From<&str>`.
    ///
    /// ```
    /// let mut owned = String::from("hello");
    /// let s: arcycle::Cc<str> = owned.as_mut_str().into();
    /// assert_eq!(&*s, "hello");
    /// ```
    fn from(s: &mut str) -> Cc<str> {
        Cc::from(&*s)
    }
}

/// `From` conversions of `std`'s unsized leaf types, as `Arc` has them:
/// from a reference (copied), a mutable one, and the owned form (its
/// buffer moved through a `Box`). The allocation is a leaf, like
/// `Cc<str>`'s: never tracked by the collector.
macro_rules! leaf_from {
    ($($t:ty, $owned:ty, $into_boxed:ident, $example:literal;)*) => {$(
        impl From<&$t> for Cc<$t> {
            #[doc = concat!("Copy the `", stringify!($t), "` into a new allocation.")]
            ///
            /// ```
            #[doc = $example]
            /// ```
            fn from(v: &$t) -> Cc<$t> {
                collector::maybe_auto_collect();
                Cc::from_inner(allocate_from_box(Box::<$t>::from(v), false), false)
            }
        }

        impl From<&mut $t> for Cc<$t> {
            #[doc = concat!("As `From<&", stringify!($t), ">`.")]
            fn from(v: &mut $t) -> Cc<$t> {
                Cc::from(&*v)
            }
        }

        impl From<$owned> for Cc<$t> {
            #[doc = concat!("Move the `", stringify!($owned), "`'s contents into a new allocation.")]
            fn from(v: $owned) -> Cc<$t> {
                collector::maybe_auto_collect();
                Cc::from_inner(allocate_from_box(v.$into_boxed(), false), false)
            }
        }
    )*};
}

leaf_from! {
    std::path::Path, std::path::PathBuf, into_boxed_path,
    "let p: arcycle::Cc<std::path::Path> = std::path::Path::new(\"/tmp\").into();\nassert_eq!(p.to_str(), Some(\"/tmp\"));";
    std::ffi::OsStr, std::ffi::OsString, into_boxed_os_str,
    "let s: arcycle::Cc<std::ffi::OsStr> = std::ffi::OsStr::new(\"os\").into();\nassert_eq!(&*s, \"os\");";
    std::ffi::CStr, std::ffi::CString, into_boxed_c_str,
    "let s: arcycle::Cc<std::ffi::CStr> = c\"swordfish\".into();\nassert_eq!(s.to_bytes(), b\"swordfish\");";
}

impl<'a, B> From<std::borrow::Cow<'a, B>> for Cc<B>
where
    B: ToOwned + ?Sized,
    Cc<B>: From<&'a B> + From<B::Owned>,
{
    /// Copy a borrowed value, move an owned one (as `Arc`'s `From<Cow>`).
    ///
    /// ```
    /// use std::borrow::Cow;
    /// let a: arcycle::Cc<str> = Cow::Borrowed("eggplant").into();
    /// let b: arcycle::Cc<str> = Cow::<str>::Owned("eggplant".into()).into();
    /// assert_eq!(a, b);
    /// ```
    fn from(cow: std::borrow::Cow<'a, B>) -> Cc<B> {
        match cow {
            std::borrow::Cow::Borrowed(b) => Cc::from(b),
            std::borrow::Cow::Owned(o) => Cc::from(o),
        }
    }
}

impl<T: Trace + Clone + Send + Sync + 'static> From<&mut [T]> for Cc<[T]> {
    /// Clone the elements into a new allocation, as `From<&[T]>`.
    ///
    /// ```
    /// let mut v = vec![1, 2];
    /// let c: arcycle::Cc<[i32]> = v.as_mut_slice().into();
    /// assert_eq!(&*c, &[1, 2]);
    /// ```
    fn from(items: &mut [T]) -> Cc<[T]> {
        Cc::from(&*items)
    }
}

impl<T: Trace + Clone + Send + Sync + 'static> From<&[T]> for Cc<[T]> {
    /// Clone the elements into a new allocation. If a `clone` panics, the
    /// elements cloned so far are dropped and the allocation given back.
    ///
    /// ```
    /// let v: arcycle::Cc<[String]> = (&["a".to_string()][..]).into();
    /// assert_eq!(v[0], "a");
    /// ```
    fn from(items: &[T]) -> Cc<[T]> {
        collector::maybe_auto_collect();
        let this = allocate_slice::<T>(items.len(), |dst, written| {
            for item in items {
                // SAFETY: `dst` has room for `items.len()` elements and
                // `*written` of them are written.
                unsafe { dst.add(*written).write(item.clone()) };
                *written += 1;
            }
        });
        Cc::from_inner(this, T::may_have_edges())
    }
}

impl<T: Trace + Send + Sync + 'static, const N: usize> From<[T; N]> for Cc<[T]> {
    /// Move the array's elements into a new allocation.
    ///
    /// ```
    /// let v: arcycle::Cc<[u8]> = [1, 2].into();
    /// assert_eq!(&*v, &[1, 2]);
    /// ```
    fn from(array: [T; N]) -> Cc<[T]> {
        collector::maybe_auto_collect();
        let array = ManuallyDrop::new(array);
        let this = allocate_slice::<T>(N, |dst, written| {
            // SAFETY: room for `N`; the array is not dropped (moved out).
            unsafe { ptr::copy_nonoverlapping(array.as_ptr(), dst, N) };
            *written = N;
        });
        Cc::from_inner(this, T::may_have_edges())
    }
}

impl<T: Trace + Send + Sync + 'static> FromIterator<T> for Cc<[T]> {
    /// Collect into a `Cc<[T]>` (through a `Vec`, as `Arc` does for
    /// iterators of unknown length).
    ///
    /// ```
    /// let squares: arcycle::Cc<[u32]> = (1..4).map(|i| i * i).collect();
    /// assert_eq!(&*squares, &[1, 4, 9]);
    /// ```
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Cc<[T]> {
        Cc::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl Default for Cc<std::ffi::CStr> {
    /// An empty C string (like `Arc<CStr>`'s `Default`).
    ///
    /// ```
    /// let s: arcycle::Cc<std::ffi::CStr> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    fn default() -> Self {
        Cc::from(c"")
    }
}

impl Default for Cc<str> {
    /// An empty string.
    ///
    /// ```
    /// let s: arcycle::Cc<str> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    fn default() -> Cc<str> {
        Cc::from("")
    }
}

impl<T: Trace + Send + Sync + 'static> Default for Cc<[T]> {
    /// An empty slice.
    ///
    /// ```
    /// let s: arcycle::Cc<[u8]> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    fn default() -> Cc<[T]> {
        Cc::from(Vec::new())
    }
}

impl<T: Trace + Default + Send + Sync + 'static> Default for Cc<T> {
    /// `Cc::new(T::default())`.
    fn default() -> Cc<T> {
        Cc::new(T::default())
    }
}

// ------------------------------------------------------------ std traits

impl<T: ?Sized> AsRef<T> for Cc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Borrow<T> for Cc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Cc::try_deref(self) {
            Some(v) => fmt::Debug::fmt(v, f),
            None => f.write_str("<collected>"),
        }
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> fmt::Pointer for Cc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Cc::as_ptr(self), f)
    }
}

impl<T: ?Sized + std::error::Error> std::error::Error for Cc<T> {
    /// The value's source.
    ///
    /// ```
    /// use std::error::Error;
    ///
    /// #[derive(Debug)]
    /// struct Oops;
    /// impl std::fmt::Display for Oops {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("oops")
    ///     }
    /// }
    /// impl Error for Oops {}
    /// arcycle::leaf!(Oops);
    ///
    /// let e: Box<dyn Error> = Box::new(arcycle::Cc::new(Oops));
    /// assert_eq!(e.to_string(), "oops");
    /// assert!(e.source().is_none());
    /// ```
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        (**self).source()
    }
}

/// Compares the values. Unlike `Arc`, which (through unstable
/// specialisation) answers `true` at once for two handles to the same
/// allocation when `T: Eq`, this always compares the values: a type whose
/// `==` is not reflexive (`f64::NAN`) compares as its values do.
impl<T: ?Sized + PartialEq> PartialEq for Cc<T> {
    fn eq(&self, other: &Cc<T>) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Cc<T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Cc<T> {
    fn partial_cmp(&self, other: &Cc<T>) -> Option<CmpOrdering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Cc<T> {
    fn cmp(&self, other: &Cc<T>) -> CmpOrdering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash> Hash for Cc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

//! The allocation: header, then value — how it is made, read and given
//! back, for sized and unsized values.
//!
//! # Layouts
//!
//! * A sized value, and any *leaf* (a value that cannot hold a `Cc`,
//!   unsized or not): `[header][value]`, exactly `Arc`'s layout. A leaf is
//!   handled only through its typed handles, whose (possibly fat) pointer
//!   gives the layout, as with `Arc`.
//! * An unsized value that may hold edges (`Cc<[Cc<Node>]>`, or a
//!   `Cc<dyn Trait>` made from a `Box`): `[its own fat pointer][header]
//!   [value]` (see `erased::Described`): the collector, which holds only
//!   the header's address, finds the length or vtable there.
//!
//! Every allocation is made here and given back by [`CcBox::dealloc`] with
//! the layout it was made with: a sized box through `Box` (the global
//! allocator, `Layout::new`), the others with `std::alloc` directly.
//!
//! Guarded by the Miri tests (`miri-tests/tests/unsized.rs` among them:
//! every layout made, read, and freed under the leak check) and
//! `tests/unsized.rs` (panicking iterators and `Clone`s leak nothing).

use crate::erased::{self, Described};
use crate::header::{type_code, Header};
use crate::sync::ValueTrack;
use crate::trace::Trace;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::UnsafeCell;
use std::mem::{self, MaybeUninit};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::Relaxed;
#[cfg(feature = "census")]
use {super::Cc, crate::weak::Weak};

/// The allocation: header, loom's tracking of the value (zero-sized
/// outside loom), then the value.
#[repr(C)]
pub(crate) struct CcBox<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) track: ValueTrack,
    pub(crate) value: UnsafeCell<T>,
}

impl<T> CcBox<T> {
    /// A sized allocation with `strong`/`weak` counts and type `code`.
    pub(crate) fn allocate(value: T, strong: u64, weak: u64, code: u32) -> NonNull<CcBox<T>> {
        let b = Box::new(CcBox {
            header: Header::new(strong, weak, code),
            track: ValueTrack::new(),
            value: UnsafeCell::new(value),
        });
        #[cfg(feature = "census")]
        crate::debug::census::on_alloc::<T>(mem::size_of::<CcBox<T>>());
        NonNull::from(Box::leak(b))
    }

    /// A sized allocation whose value is not written yet (`new_cyclic`,
    /// `new_uninit`): header only.
    pub(crate) fn allocate_uninit(strong: u64, weak: u64, code: u32) -> NonNull<CcBox<T>> {
        let layout = Layout::new::<CcBox<T>>();
        // SAFETY: a box is never zero-sized (the header).
        let mem = unsafe { alloc(layout) };
        let Some(this) = NonNull::new(mem.cast::<CcBox<T>>()) else {
            handle_alloc_error(layout)
        };
        // SAFETY: fresh memory for a `CcBox<T>`; the value stays unwritten.
        unsafe { Self::write_header(this, strong, weak, code) };
        #[cfg(feature = "census")]
        crate::debug::census::on_alloc::<T>(layout.size());
        this
    }
}

impl<T: ?Sized> CcBox<T> {
    /// Write the header and loom's tracking cell of a fresh allocation.
    ///
    /// # Safety
    /// `this` points to fresh memory laid out for a `CcBox<T>`.
    unsafe fn write_header(this: NonNull<CcBox<T>>, strong: u64, weak: u64, code: u32) {
        let p = this.as_ptr();
        // SAFETY: fresh memory; raw place projections read nothing.
        unsafe {
            (&raw mut (*p).header).write(Header::new(strong, weak, code));
            (&raw mut (*p).track).write(ValueTrack::new());
        }
    }

    /// A raw pointer to the value; nothing is read, nothing recorded.
    #[inline(always)]
    pub(crate) fn value_ptr(this: NonNull<CcBox<T>>) -> *mut T {
        // SAFETY: a place projection to a field of a box the caller points
        // into; it reads nothing (the metadata gives the field's offset).
        unsafe { UnsafeCell::raw_get(&raw const (*this.as_ptr()).value) }
    }

    /// # Safety
    /// `this` is a live `CcBox<T>` with an initialised value that stays
    /// alive (and is not mutably borrowed) for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn value_ref<'a>(this: NonNull<CcBox<T>>) -> &'a T {
        // SAFETY: per the contract, the box is live and its value initialised.
        unsafe {
            (*this.as_ptr()).track.read();
            &*Self::value_ptr(this)
        }
    }

    /// # Safety
    /// The value is initialised and the caller alone may destroy it now.
    pub(crate) unsafe fn drop_value(this: NonNull<CcBox<T>>) {
        // SAFETY: per the contract, nobody else reads or drops the value.
        unsafe {
            (*this.as_ptr()).track.write();
            ptr::drop_in_place(Self::value_ptr(this))
        }
    }

    /// The box around a value pointer (from `Cc::as_ptr`/`into_raw`).
    ///
    /// # Safety
    /// `value` points to the value of a box that is still allocated (its
    /// value may be gone: only the pointer's metadata is used).
    pub(crate) unsafe fn from_value_ptr(value: *const T) -> NonNull<CcBox<T>> {
        // SAFETY: per the contract; the reference is used for its
        // alignment only, which comes from the metadata (see `layout_of`).
        let align = mem::align_of_val(unsafe { &*value });
        let offset = Layout::new::<Header>()
            .extend(Layout::new::<ValueTrack>())
            .and_then(|(head, _)| head.extend(Layout::from_size_align(0, align)?))
            .expect("arcycle: a value's alignment")
            .1;
        // SAFETY: the value sits `offset` bytes into its box (the layout
        // computation of `repr(C)`), so this is the box's address, with
        // the value's metadata and provenance.
        unsafe { NonNull::new_unchecked(value.byte_sub(offset) as *mut CcBox<T>) }
    }

    /// The layout of header and value.
    ///
    /// # Safety
    /// `this` points to a box (its value may already be dropped: only the
    /// pointer's metadata — a length or a vtable — is used, never the
    /// value's bytes).
    pub(crate) unsafe fn layout_of(this: NonNull<CcBox<T>>) -> Layout {
        // SAFETY: per the contract. The reference only lives for this call
        // and is used for its size and alignment, which for every unsized
        // type come from the metadata (as `std`'s `Weak` did before
        // `Layout::for_value_raw`).
        unsafe { Layout::for_value(&*this.as_ptr()) }
    }

    /// Give the allocation back, whatever its kind (the type code says:
    /// a tracked box through its table, which knows a `Described` prefix).
    ///
    /// # Safety
    /// As for [`dealloc`](CcBox::dealloc).
    pub(crate) unsafe fn free(this: NonNull<CcBox<T>>) {
        // Relaxed: the code never changes; the caller's synchronisation
        // (weak word reaching zero) orders its write before.
        // SAFETY: the allocation is still there.
        let code = type_code(unsafe { &(*this.as_ptr()).header }.strong.load(Relaxed));
        if code == 0 {
            // SAFETY: forwarded contract; a leaf has no prefix.
            unsafe { Self::dealloc(this, false) }
        } else {
            // SAFETY: forwarded contract; the table is the allocation's.
            unsafe { (erased::decode(code).dealloc)(this.cast()) }
        }
    }

    /// The whole allocation's layout and where the box starts in it: the
    /// box alone at 0, or (`described`) behind its `Described` prefix.
    ///
    /// # Safety
    /// As for [`layout_of`](CcBox::layout_of).
    pub(crate) unsafe fn allocation(this: NonNull<CcBox<T>>, described: bool) -> (Layout, usize) {
        // SAFETY: forwarded contract.
        let boxed = unsafe { Self::layout_of(this) };
        if described {
            Described::<T>::prefix(boxed)
        } else {
            (boxed, 0)
        }
    }

    /// Give the allocation back; `described` says whether the box sits
    /// behind a `Described` prefix.
    ///
    /// # Safety
    /// The weak word reached zero: no handle, entry or hold refers to
    /// `this`, and its value is gone (or was never written).
    pub(crate) unsafe fn dealloc(this: NonNull<CcBox<T>>, described: bool) {
        // SAFETY: forwarded contract.
        let (total, offset) = unsafe { Self::allocation(this, described) };
        #[cfg(feature = "census")]
        crate::debug::census::on_free::<T>(this.addr().get(), total.size());
        // loom-tests: let loom check that every use of the header words
        // happens-before the free (it cannot see the memory going away).
        // SAFETY: the weak word is zero: nobody else uses the header.
        #[cfg(arcycle_loom)]
        unsafe {
            (*this.as_ptr()).header.loom_free()
        };
        // SAFETY: made by `allocate*` with this very layout (`Box` uses the
        // global allocator with `Layout::new`, the same as `layout_of` for
        // a sized box), starting `offset` before `this`.
        unsafe { dealloc(this.as_ptr().cast::<u8>().sub(offset), total) }
    }
}

/// Room for a box of an unsized `T` whose value has layout `value`, with
/// the header written and the value not: returns the box's address and
/// the offset of the value in the box. With `described`, the prefix slot
/// is reserved (the caller writes it once the fat pointer exists, with
/// [`describe`]).
fn allocate_unsized<T: ?Sized>(value: Layout, code: u32, described: bool) -> (NonNull<u8>, usize) {
    let head = Layout::new::<Header>()
        .extend(Layout::new::<ValueTrack>())
        .expect("arcycle: allocation too large")
        .0;
    let (boxed, value_offset) = head.extend(value).expect("arcycle: allocation too large");
    let boxed = boxed.pad_to_align();
    let (total, offset) = if described {
        Described::<T>::prefix(boxed)
    } else {
        (boxed, 0)
    };
    // SAFETY: never zero-sized (the header).
    let mem = unsafe { alloc(total) };
    if mem.is_null() {
        handle_alloc_error(total)
    }
    // SAFETY: `offset` is within the allocation.
    let at = unsafe { NonNull::new_unchecked(mem.add(offset)) };
    // SAFETY: fresh memory laid out as a box (any `T`: the header part does
    // not depend on it).
    unsafe { CcBox::<()>::write_header(at.cast(), 1, 1, code) };
    (at, value_offset)
}

/// Record a described box's own fat pointer in its prefix slot.
///
/// # Safety
/// `this` was made by `allocate_unsized` with `described`.
unsafe fn describe<T: ?Sized>(this: NonNull<CcBox<T>>) {
    // SAFETY: the slot just before the header is reserved for it.
    unsafe {
        this.as_ptr()
            .cast::<*mut CcBox<T>>()
            .sub(1)
            .write(this.as_ptr())
    }
}

/// Give back an allocation whose value was never (fully) written.
///
/// # Safety
/// Made by `allocate_unsized`, no handle exists, no value to drop.
unsafe fn abandon<T: ?Sized>(this: NonNull<CcBox<T>>, described: bool) {
    // SAFETY: forwarded: nobody else knows the allocation.
    unsafe { CcBox::dealloc(this, described) }
}

/// The type code of an unsized allocation: `Described` when its elements
/// may hold edges.
fn slice_code<E: Trace>() -> u32 {
    if E::may_have_edges() {
        erased::encode(&Described::<[E]>::TABLE)
    } else {
        0
    }
}

/// A `[E]` box of `len` elements, filled by `fill(dst)`, which writes the
/// elements in order and may panic: elements written before the panic are
/// dropped (through `written`, which `fill` keeps up to date) and the
/// allocation is given back.
pub(crate) fn allocate_slice<E: Trace>(
    len: usize,
    fill: impl FnOnce(*mut E, &mut usize),
) -> NonNull<CcBox<[E]>> {
    let code = slice_code::<E>();
    let described = code != 0;
    let value = Layout::array::<E>(len).expect("arcycle: allocation too large");
    let (at, _) = allocate_unsized::<[E]>(value, code, described);
    let fat = ptr::slice_from_raw_parts_mut(at.as_ptr().cast::<E>(), len) as *mut CcBox<[E]>;
    // SAFETY: from a non-null address.
    let this = unsafe { NonNull::new_unchecked(fat) };

    struct Partial<E> {
        this: NonNull<CcBox<[E]>>,
        written: usize,
        described: bool,
    }
    impl<E> Drop for Partial<E> {
        fn drop(&mut self) {
            let dst = CcBox::value_ptr(self.this).cast::<E>();
            // SAFETY: the first `written` elements were written, the rest
            // never; nobody else knows the allocation.
            unsafe {
                ptr::drop_in_place(ptr::slice_from_raw_parts_mut(dst, self.written));
                abandon(self.this, self.described);
            }
        }
    }
    // Counted now, so that a panicking `fill` (whose clean-up frees the
    // allocation, counting it out) leaves the census balanced.
    // SAFETY: a live box (its length is in the pointer).
    #[cfg(feature = "census")]
    crate::debug::census::on_alloc::<[E]>(unsafe { CcBox::allocation(this, described) }.0.size());
    let mut partial = Partial {
        this,
        written: 0,
        described,
    };
    fill(CcBox::value_ptr(this).cast::<E>(), &mut partial.written);
    debug_assert_eq!(partial.written, len);
    mem::forget(partial);
    if described {
        // SAFETY: made with `described`.
        unsafe { describe(this) };
    }
    this
}

/// A leaf `[MaybeUninit<E>]` box of `len` elements, none written (for
/// `Cc::new_uninit_slice`).
pub(crate) fn allocate_uninit_slice<E>(len: usize) -> NonNull<CcBox<[MaybeUninit<E>]>> {
    let value = Layout::array::<E>(len).expect("arcycle: allocation too large");
    let (at, _) = allocate_unsized::<[MaybeUninit<E>]>(value, 0, false);
    let fat = ptr::slice_from_raw_parts_mut(at.as_ptr().cast::<MaybeUninit<E>>(), len)
        as *mut CcBox<[MaybeUninit<E>]>;
    // SAFETY: from a non-null address.
    let this = unsafe { NonNull::new_unchecked(fat) };
    // SAFETY: a live box (its length is in the pointer).
    #[cfg(feature = "census")]
    crate::debug::census::on_alloc::<[MaybeUninit<E>]>(unsafe { CcBox::layout_of(this) }.size());
    this
}

/// The census counts a leaf under the type its handle frees it as (a
/// tracked allocation is freed through its own table, under the type it
/// was made with): `cc`, a leaf handle that was of type `from` (by name)
/// before `Cc::retype` or `coerce!`, is reported (see `debug::census`,
/// "Conversions").
#[cfg(feature = "census")]
pub(crate) fn census_retyped<U: ?Sized>(from: &'static str, mut cc: Cc<U>) -> Cc<U> {
    if !cc.is_tracked() {
        // SAFETY: a live box (`cc` is a handle to it).
        let bytes = unsafe { CcBox::layout_of(cc.inner()) }.size();
        let addr = cc.inner().addr().get();
        let unique = Cc::is_unique(&mut cc);
        crate::debug::census::on_retype::<U>(addr, from, bytes, unique);
    }
    cc
}

/// [`census_retyped`] for [`coerce_weak!`](crate::coerce_weak): a `Weak`
/// never counts as the only handle (a strong one may share it), so the
/// count stays put.
#[cfg(feature = "census")]
pub(crate) fn census_retyped_weak<U: ?Sized>(from: &'static str, weak: &Weak<U>) {
    let Some(inner) = weak.inner() else { return };
    // SAFETY: the weak unit keeps the header allocated. Relaxed: only the
    // type code is read, written before the allocation was shared.
    let word = unsafe { inner.as_ref() }.header.strong.load(Relaxed);
    if type_code(word) == 0 {
        // SAFETY: the allocation is live (the unit keeps it); the layout
        // needs only the metadata.
        let bytes = unsafe { CcBox::layout_of(inner) }.size();
        crate::debug::census::on_retype::<U>(inner.addr().get(), from, bytes, false);
    }
}

/// A `str` box holding a copy of `s` (a leaf).
pub(crate) fn allocate_str(s: &str) -> NonNull<CcBox<str>> {
    let bytes = allocate_slice::<u8>(s.len(), |dst, written| {
        // SAFETY: `dst` has room for `s.len()` bytes.
        unsafe { ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len()) };
        *written = s.len();
    });
    // SAFETY: a live box (its length is in the pointer); fresh, so unique.
    #[cfg(feature = "census")]
    crate::debug::census::on_retype::<str>(
        bytes.addr().get(),
        std::any::type_name::<[u8]>(),
        unsafe { CcBox::layout_of(bytes) }.size(),
        true,
    );
    // SAFETY: same metadata (a length); the bytes are valid UTF-8.
    unsafe { NonNull::new_unchecked(bytes.as_ptr() as *mut CcBox<str>) }
}

/// A box holding the value of `b`, moved (not cloned) out of it.
/// `tracked`: whether the collector tracks it — always for a value whose
/// concrete type is unknown (a `dyn Trait`: cycle-capable and
/// `Described`); a caller that knows the type is a leaf (`Path`, `CStr`,
/// ...) passes `false` and gets an `Arc`-like box (an unsized leaf is
/// freed through its handle's type, like `Cc<str>`).
pub(crate) fn allocate_from_box<T: ?Sized + Trace>(b: Box<T>, tracked: bool) -> NonNull<CcBox<T>> {
    let value = Layout::for_value::<T>(&b);
    let code = if tracked {
        erased::encode(&Described::<T>::TABLE)
    } else {
        0
    };
    let (at, value_offset) = allocate_unsized::<T>(value, code, tracked);
    let raw = Box::into_raw(b);
    // SAFETY: `at` heads a box laid out for this value (same layout), so
    // the fat pointer to it is `raw`'s metadata with `at`'s address.
    let this = unsafe { NonNull::new_unchecked(with_address(raw, at.as_ptr()) as *mut CcBox<T>) };
    debug_assert_eq!(
        CcBox::value_ptr(this).cast::<u8>().addr(),
        at.as_ptr().addr() + value_offset
    );
    // SAFETY: move the value's bytes; the box's memory is then given back
    // without dropping them (a zero-sized layout was never allocated).
    unsafe {
        ptr::copy_nonoverlapping(
            raw.cast::<u8>(),
            CcBox::value_ptr(this).cast::<u8>(),
            value.size(),
        );
        if value.size() != 0 {
            dealloc(raw.cast::<u8>(), value);
        }
        if tracked {
            describe(this);
        }
    }
    // SAFETY: a live box with its value just moved in.
    #[cfg(feature = "census")]
    crate::debug::census::on_alloc::<T>(unsafe { CcBox::allocation(this, tracked) }.0.size());
    this
}

/// `fat` with its address replaced by `addr` (and `addr`'s provenance),
/// keeping its metadata: the casts cannot express this for `dyn` on stable
/// Rust (`ptr::from_raw_parts` is unstable).
///
/// # Safety
/// The result is used only as a pointer to memory at `addr` laid out for
/// the same metadata.
unsafe fn with_address<T: ?Sized>(mut fat: *mut T, addr: *mut u8) -> *mut T {
    // SAFETY: every pointer, thin or fat, starts with its address (the
    // layout `std` relied on for `Rc`/`Arc::from_box` before
    // `ptr_metadata`); checked just below, so a different layout panics
    // instead of misbehaving.
    unsafe { (&raw mut fat).cast::<*mut u8>().write(addr) };
    assert_eq!(
        fat.cast::<u8>(),
        addr,
        "arcycle: unexpected fat pointer layout"
    );
    fat
}

//! Type erasure: what the collector and a bound-free `Drop` know about an
//! allocation whose type they cannot name.
//!
//! # What this guarantees
//!
//! * **The concrete type is known exactly once**, when the allocation is
//!   made (`Cc::new`, the `From` conversions): that is where `T: Trace`
//!   holds. What is needed later is recorded then, in the header's *type
//!   code* (see `header`): zero for a leaf, otherwise a compressed pointer
//!   to a `&'static` [`VTable`] of the allocation's type-erased operations.
//!   `Cc<T>`, `Weak<T>` and their `Drop` carry no `Trace` bound, exactly
//!   like `Arc`, and a `Cc<dyn Trait>` made from a `Cc<Concrete>` keeps the
//!   concrete type's table: its edges are found through the value's own
//!   `Trace` impl, and cycles through `dyn` edges are collected like any
//!   other.
//! * **Leaves never need a table.** A leaf (`may_have_edges() == false`)
//!   is never buffered, traced or destroyed by the collector; everything
//!   about it is done through its typed handle, whose (possibly fat)
//!   pointer knows its layout, exactly as `Arc` does. Its allocation is
//!   exactly `Arc`'s.
//! * **Cycle-capable unsized values describe themselves.** A `Cc<[T]>`
//!   whose elements may hold edges, or a `Cc<dyn Trait>` made from a
//!   `Box<dyn Trait>` (whose concrete type is not known), stores its own
//!   fat pointer in a word just before the header ([`Described`]): the
//!   collector, holding only the header's address, reads the length or the
//!   vtable there.
//! * **The code round-trips.** [`encode`] stores the table's distance from
//!   an anchor static in this crate (both live in the same binary, so the
//!   distance fits in 32 bits in every ordinary build), or — if it does not
//!   fit (a table in another dynamic library) — an index into a registry,
//!   so [`decode`] always returns the table that was encoded. The
//!   distance form needs no lock and no lookup: a few instructions in
//!   `Cc::new`. It re-derives the pointer from an exposed address
//!   (`expose_provenance` when encoding, `with_exposed_provenance` when
//!   decoding), the one integer-to-pointer step in the crate.
//!
//! Guarded by every test that collects a cycle (they all go through
//! [`decode`]), the unit tests below (both code forms), the `dyn` tests in
//! `tests/unsized.rs`, and the loom model `dyn_edge_cycle_vs_clone`.

use crate::cc::CcBox;
use crate::header::{held_by_collection, type_code, Header};
use crate::trace::{Trace, Tracer};
use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;

/// The type-erased operations of one cycle-capable allocation. One
/// `&'static` table per type, found through the header's type code.
pub(crate) struct VTable {
    /// Report the value's edges.
    pub(crate) trace: for<'a> unsafe fn(NonNull<Header>, &mut Tracer<'a>),
    /// Drop the value in place (the allocation stays).
    pub(crate) drop_value: unsafe fn(NonNull<Header>),
    /// Drop the value in place, then give back the strong side's claim on
    /// the allocation, and the allocation itself if that was the last
    /// claim, even if the value's `Drop` panics: a last drop's whole
    /// destruction in one function, so that a chain of nested
    /// destructions makes no call of its own per level (see
    /// `destroy::nest`).
    pub(crate) destroy: unsafe fn(NonNull<Header>),
    /// Give the allocation back.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// `std::any::type_name` of the value's type, for the `debug` reports.
    pub(crate) type_name: fn() -> &'static str,
}

/// The table of a sized `T`: the value sits at a fixed offset from the
/// header.
pub(crate) struct VTableOf<T>(PhantomData<T>);

impl<T: Trace> VTableOf<T> {
    pub(crate) const TABLE: VTable = VTable {
        trace: trace_sized::<T>,
        drop_value: drop_sized::<T>,
        destroy: destroy_sized::<T>,
        dealloc: dealloc_sized::<T>,
        type_name: std::any::type_name::<T>,
    };
}

/// Re-borrow a tracer at the value's lifetime.
///
/// The type system cannot see that the value outlives `'a` (it does: every
/// `Cc` value is `'static`, and the collector's hold keeps it alive while
/// the tracer's guards exist), so the tracer is named at the value's
/// borrow instead; a `Tracer` has the same layout at every lifetime.
///
/// # Safety
/// The value traced with the result stays alive for `'a`.
unsafe fn at_value<'v, 'a>(tracer: &'v mut Tracer<'a>) -> &'v mut Tracer<'v> {
    // SAFETY: as argued above; only the lifetime parameter changes.
    unsafe { &mut *(tracer as *mut Tracer<'a>).cast::<Tracer<'v>>() }
}

/// # Safety
/// `h` heads a live `CcBox<T>` whose value stays alive for `'a`.
unsafe fn trace_sized<'a, T: Trace>(h: NonNull<Header>, tracer: &mut Tracer<'a>) {
    // SAFETY: the caller keeps the value alive (the collector's hold).
    let value: &T = unsafe { CcBox::value_ref(h.cast::<CcBox<T>>()) };
    // SAFETY: the value lives for 'a (the caller's contract).
    value.trace(unsafe { at_value(tracer) });
}

/// # Safety
/// `h` heads a `CcBox<T>` whose value is initialised, and that the caller
/// alone may destroy now.
unsafe fn drop_sized<T: Trace>(h: NonNull<Header>) {
    // SAFETY: forwarded contract.
    unsafe { CcBox::drop_value(h.cast::<CcBox<T>>()) }
}

/// # Safety
/// `h` heads a `CcBox<T>` whose value is initialised, whose strong count
/// reached zero with no collector hold, and that the caller alone may
/// destroy now.
unsafe fn destroy_sized<T: Trace>(h: NonNull<Header>) {
    let release = Release(h, dealloc_sized::<T>);
    // SAFETY: forwarded contract.
    unsafe { drop_sized::<T>(h) };
    drop(release);
}

/// Gives back the strong side's claim of a destroyed value's allocation
/// (and frees it, with the function given, if that was the last claim),
/// also while the value's `Drop` unwinds.
struct Release(NonNull<Header>, unsafe fn(NonNull<Header>));

impl Drop for Release {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the allocation stays until this claim is given back.
        if unsafe { self.0.as_ref() }.release_tracked_strong_side() {
            // SAFETY: the weak word is zero: nothing refers to it.
            unsafe { (self.1)(self.0) }
        }
    }
}

/// # Safety
/// `h` heads a `CcBox<T>` whose weak word reached zero: nobody uses it.
unsafe fn dealloc_sized<T: Trace>(h: NonNull<Header>) {
    // SAFETY: forwarded contract; the layout of a sized box is static.
    unsafe { CcBox::dealloc(h.cast::<CcBox<T>>(), false) }
}

/// The table of an unsized cycle-capable allocation that stores its own
/// fat pointer just before the header (see [`Described::prefix`]).
pub(crate) struct Described<T: ?Sized>(PhantomData<*const T>);

impl<T: ?Sized + Trace> Described<T> {
    pub(crate) const TABLE: VTable = VTable {
        trace: trace_described::<T>,
        drop_value: drop_described::<T>,
        destroy: destroy_described::<T>,
        dealloc: dealloc_described::<T>,
        type_name: std::any::type_name::<T>,
    };
}

impl<T: ?Sized> Described<T> {
    /// The word(s) in front of the header that hold the box's own fat
    /// pointer: the allocation is `[padding][*mut CcBox<T>][header][value]`.
    /// Returns the prefix layout and where the box starts in the
    /// allocation, for a box of layout `boxed`.
    pub(crate) fn prefix(boxed: Layout) -> (Layout, usize) {
        let slot = Layout::new::<*mut CcBox<T>>();
        // The box's alignment is at least the header's (8), and the slot
        // ends exactly where the box starts (`offset >= slot.size()`, and
        // the slot's start, `offset - slot.size()`, is 8-aligned).
        let (all, offset) = slot.extend(boxed).expect("arcycle: allocation too large");
        (all.pad_to_align(), offset)
    }

    /// # Safety
    /// `h` heads a `Described` allocation of `T`.
    unsafe fn read_self(h: NonNull<Header>) -> *mut CcBox<T> {
        // SAFETY: the slot just before the header holds the fat pointer,
        // written when the allocation was made and never changed.
        unsafe { h.as_ptr().cast::<*mut CcBox<T>>().sub(1).read() }
    }
}

/// # Safety
/// As for `trace_sized`, for a `Described` allocation.
unsafe fn trace_described<'a, T: ?Sized + Trace>(h: NonNull<Header>, tracer: &mut Tracer<'a>) {
    // SAFETY: forwarded contract: a live, described box.
    let value: &T =
        unsafe { CcBox::value_ref(NonNull::new_unchecked(Described::<T>::read_self(h))) };
    // SAFETY: the value lives for 'a (the caller's contract).
    value.trace(unsafe { at_value(tracer) });
}

/// # Safety
/// As for `drop_sized`, for a `Described` allocation.
unsafe fn drop_described<T: ?Sized + Trace>(h: NonNull<Header>) {
    // SAFETY: forwarded contract.
    unsafe { CcBox::drop_value(NonNull::new_unchecked(Described::<T>::read_self(h))) }
}

/// # Safety
/// As for `destroy_sized`, for a `Described` allocation.
unsafe fn destroy_described<T: ?Sized + Trace>(h: NonNull<Header>) {
    let release = Release(h, dealloc_described::<T>);
    // SAFETY: forwarded contract.
    unsafe { drop_described::<T>(h) };
    drop(release);
}

/// # Safety
/// As for `dealloc_sized`, for a `Described` allocation.
unsafe fn dealloc_described<T: ?Sized + Trace>(h: NonNull<Header>) {
    // SAFETY: forwarded contract.
    unsafe { CcBox::dealloc(NonNull::new_unchecked(Described::<T>::read_self(h)), true) }
}

// ------------------------------------------------------------ type codes

/// The anchor the distance form is measured from. Never a table, so no
/// table's code is zero (the leaf code).
static ANCHOR: u64 = 0;

#[inline(always)]
fn anchor_addr() -> usize {
    (&raw const ANCHOR).addr()
}

/// The type code for `table` (never zero).
#[inline]
pub(crate) fn encode(table: &'static VTable) -> u32 {
    // Expose: `decode` re-derives the pointer from its address.
    let addr = (table as *const VTable).expose_provenance();
    let diff = addr.wrapping_sub(anchor_addr()) as isize;
    // Both are 8-aligned statics, so `diff` is a multiple of 8 and the
    // code (`diff / 4`) is even: odd codes are registry indices.
    let code = diff >> 2;
    if code as i32 as isize == code {
        code as i32 as u32
    } else {
        registry::register(table)
    }
}

/// The table `code` (not zero) was made from.
#[inline]
pub(crate) fn decode(code: u32) -> &'static VTable {
    debug_assert_ne!(code, 0, "arcycle: a leaf has no table");
    if code & 1 == 0 {
        let addr = anchor_addr().wrapping_add(((code as i32 as isize) << 2) as usize);
        // SAFETY: `encode` exposed the provenance of a `&'static VTable`
        // at exactly this address (the arithmetic inverts its own).
        unsafe { &*std::ptr::with_exposed_provenance::<VTable>(addr) }
    } else {
        registry::lookup(code)
    }
}

/// Tables too far from the anchor for the distance form.
mod registry {
    use super::VTable;
    use std::sync::RwLock;

    static TABLES: RwLock<Vec<&'static VTable>> = RwLock::new(Vec::new());

    /// An odd code for `table`, registering it once.
    #[cold]
    #[inline(never)]
    pub(super) fn register(table: &'static VTable) -> u32 {
        let index =
            |tables: &[&'static VTable]| tables.iter().position(|t| std::ptr::eq(*t, table));
        let known = index(&TABLES.read().unwrap_or_else(|e| e.into_inner()));
        let i = match known {
            Some(i) => i,
            None => {
                let mut tables = TABLES.write().unwrap_or_else(|e| e.into_inner());
                match index(&tables) {
                    Some(i) => i,
                    None => {
                        tables.push(table);
                        tables.len() - 1
                    }
                }
            }
        };
        assert!(i < (1 << 31), "arcycle: more than 2^31 registered types");
        ((i as u32) << 1) | 1
    }

    #[cold]
    #[inline(never)]
    pub(super) fn lookup(code: u32) -> &'static VTable {
        TABLES.read().unwrap_or_else(|e| e.into_inner())[(code >> 1) as usize]
    }

    #[cfg(test)]
    #[test]
    fn registry_codes_round_trip() {
        let a = &crate::erased::VTableOf::<crate::Cc<u8>>::TABLE;
        let b = &crate::erased::VTableOf::<Vec<crate::Cc<u8>>>::TABLE;
        let (ca, cb) = (register(a), register(b));
        assert_eq!(ca & 1, 1);
        assert_eq!(register(a), ca, "registered once");
        assert!(std::ptr::eq(lookup(ca), a));
        assert!(std::ptr::eq(lookup(cb), b));
    }
}

// ------------------------------------------------------------ edges

/// The hash of an allocation's address (the collector's graph index, the
/// weak collections' identity tables and registry): addresses are
/// distinct; drop the alignment bits (every box is at least 8-aligned),
/// then spread.
#[inline]
pub(crate) fn mix(addr: usize) -> u64 {
    ((addr as u64) >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A `Hasher` for address keys ([`mix`]).
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("AddrHasher only hashes usize")
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = mix(n);
    }
}

/// A type-erased pointer to a cycle-capable allocation, with its table.
#[derive(Clone, Copy)]
pub(crate) struct Node {
    pub(crate) header: NonNull<Header>,
    pub(crate) vtable: &'static VTable,
}

// SAFETY: a `Node` is only an address plus a table of functions; it is
// created from a `Cc<T>` with `T: Send + Sync`, and every use of it goes
// through the header's atomics or the collector's hold protocol.
unsafe impl Send for Node {}

impl Node {
    /// The node of a cycle-capable allocation, for code outside the
    /// collector (the `debug` tools): its strong word is read, and if the
    /// running collection holds the object (its code field is then a visit
    /// number, see `header`) this waits until the collection lets go —
    /// bounded by the collection's locked phases, which never wait for
    /// another thread.
    ///
    /// # Panics
    /// On the collecting thread inside a `Trace` impl (it would wait for
    /// itself).
    pub(crate) fn settled(header: NonNull<Header>) -> Node {
        // SAFETY: the caller holds a claim on the allocation.
        let h = unsafe { header.as_ref() };
        // Relaxed: the code was written before the allocation was shared
        // (or put back by the collector's RMW that ends the hold, which
        // this load then reads); it names a static table, nothing to
        // synchronise with.
        let mut s = h.strong.load(Relaxed);
        let wait = crate::sync::Wait::new();
        while held_by_collection(s) {
            crate::collector::wait_for_hold(&wait, "an arcycle::debug tool");
            s = h.strong.load(Relaxed);
        }
        Node::from_word(header, s)
    }

    /// The node of a cycle-capable allocation whose strong word read `s`,
    /// a word not held by the running collection (whose code field would
    /// be a visit number, not a code).
    #[inline]
    pub(crate) fn from_word(header: NonNull<Header>, s: u64) -> Node {
        debug_assert!(!held_by_collection(s), "arcycle: decoding a held word");
        Node {
            header,
            vtable: decode(type_code(s)),
        }
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: whoever holds a `Node` holds a claim on the allocation (a
        // handle, a root-buffer entry, or the collector's hold); the header
        // lives as long as the allocation.
        unsafe { self.header.as_ref() }
    }

    pub(crate) fn addr(&self) -> usize {
        self.header.as_ptr() as usize
    }

    /// The name of the value's type.
    pub(crate) fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }
}

/// Free a cycle-capable allocation through the table its type code
/// names.
///
/// # Safety
/// Its weak word reached zero (so its strong side is gone and no
/// collection holds it: the word carries its code).
pub(crate) unsafe fn dealloc_tracked(header: NonNull<Header>) {
    // Relaxed: the acquire fence that saw the weak word reach zero ordered
    // every write of this word (the last one put the code back) before.
    // SAFETY: the allocation is still there.
    let s = unsafe { header.as_ref() }.strong.load(Relaxed);
    let node = Node::from_word(header, s);
    // SAFETY: forwarded contract.
    unsafe { (node.vtable.dealloc)(header) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_codes_round_trip() {
        let a = &VTableOf::<crate::Cc<u8>>::TABLE;
        let b = &Described::<[crate::Cc<u8>]>::TABLE;
        for t in [a, b] {
            let code = encode(t);
            assert_ne!(code, 0);
            assert!(std::ptr::eq(decode(code), t));
        }
    }
}

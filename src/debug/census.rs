//! The census (feature `census`): live allocations and bytes per type.
//!
//! # Design
//!
//! Every allocation counts against a *slot* of its type: `Cc::new`,
//! `new_cyclic` and `make_mut` add one, `CcBox::dealloc` subtracts one.
//! Rust has no generic statics (and a promoted `&'static VTable` cannot
//! hold atomics), so slots live in one fixed table, keyed by the type's
//! name: `std::any::type_name::<T>()` needs no `'static` bound, so the
//! deallocation path (generic over any `T: Trace`) finds the same slot as
//! the allocation. Finding a slot is one probe of a lock-free cache keyed
//! by the name's *address* (set under the registry lock on a miss, read
//! with Acquire); a miss compares names by content, so copies of one name
//! in different codegen units share a slot. Bytes are `live ×
//! size_of::<CcBox<T>>()` (the 16-byte header included): one counter per
//! operation.
//!
//! # Cost (feature on only)
//!
//! `Cc::new` + drop gains two cache probes, one relaxed `fetch_add`, one
//! load (the peak) and one `fetch_sub`; the counters of a type are shared
//! by all threads, so allocation-heavy threads contend on them. Measured
//! on the 2-core CI machine (release, one thread, best of 7 × 5 M
//! iterations, the builds with and without the feature run alternately in
//! one session): `Cc::new` + drop of a `Cc<u64>` 18 → 28 ns, of a
//! cycle-capable node (`Mutex<Vec<Cc<_>>>`) 24 → 36 ns — about +10 ns, the
//! two atomic RMWs. With the feature off none of this code exists.
//!
//! # Conversions
//!
//! A tracked allocation is freed through its own table, under the type
//! it was made with, whatever its handles became. A leaf is freed under
//! the type of the handle that frees it, and the conversions that change
//! a leaf handle's type (`Cc::retype`'s callers: `downcast`,
//! `assume_init`, `From<Cc<str>>`, `TryFrom<Cc<[T]>>`; and the
//! [`coerce!`](crate::coerce) / [`coerce_weak!`](crate::coerce_weak)
//! macros) report to [`on_retype`]:
//!
//! * a *unique* handle (one strong, no `Weak`: nobody else can hold the
//!   old type) moves the count to the new type's slot;
//! * a shared one leaves the count where it is and records the
//!   allocation's address in the *alias table* with the slot that holds
//!   its count (its *home*), and raises the `aliased` counter of every
//!   slot one of its handles may free it under.
//!
//! [`on_free`] reads its slot's `aliased` counter (one relaxed load) and,
//! only when it is non-zero, looks the address up and counts the free out
//! of the home slot. So the census stays balanced whichever handle frees
//! the allocation. Why a relaxed load finds the entry: the conversion
//! happened-before the free (the converting thread's handle was given up
//! before the last one, and the last drop synchronises with every earlier
//! drop, as in `Arc`), so the load reads the entry's own increment or a
//! later value in that counter's modification order; decrements after it
//! belong to other entries' increments, so it reads at least one.
//!
//! # Limits
//!
//! At most [`MAX_TYPES`] distinct type names are counted separately; later
//! ones share one slot named `"<other types>"`, whose `bytes` is 0 (sizes
//! differ). Types with the same `type_name` (two versions of one crate)
//! share a slot. A leaf turned into another type by hand, with
//! `Cc::into_raw` and `Cc::from_raw` instead of [`coerce!`](crate::coerce),
//! is counted out under the new type (its old row keeps it, the new row
//! reads low; the counters wrap rather than panic). Under
//! `cfg(arcycle_loom)` the feature is not available.

use crate::sync::{lock, AtomicUsize, Mutex};
use std::collections::HashMap;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::*;

#[cfg(arcycle_loom)]
compile_error!("arcycle: the `census` feature is not available under `--cfg arcycle_loom`");

/// Distinct type names counted separately.
pub(crate) const MAX_TYPES: usize = 1024;
/// The last slot collects every type past [`MAX_TYPES`].
const OTHER: usize = MAX_TYPES;
/// The name-address cache: a power of two, twice the slots.
const CACHE: usize = 2 * MAX_TYPES;

struct Slot {
    name_ptr: AtomicPtr<u8>,
    name_len: AtomicUsize,
    size: AtomicUsize,
    live: AtomicUsize,
    peak: AtomicUsize,
    /// Alias-table entries that may be freed under this slot's type.
    aliased: AtomicUsize,
}

struct Entry {
    /// A name's address, 0 when free.
    key: AtomicUsize,
    /// Its slot.
    slot: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const SLOT: Slot = Slot {
    name_ptr: AtomicPtr::new(std::ptr::null_mut()),
    name_len: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    aliased: AtomicUsize::new(0),
};
#[allow(clippy::declare_interior_mutable_const)]
const ENTRY: Entry = Entry {
    key: AtomicUsize::new(0),
    slot: AtomicUsize::new(0),
};

static SLOTS: [Slot; MAX_TYPES + 1] = [SLOT; MAX_TYPES + 1];
static ENTRIES: [Entry; CACHE] = [ENTRY; CACHE];
/// Slots in use (not counting `OTHER`).
static USED: AtomicUsize = AtomicUsize::new(0);
/// Serialises registration: slots and cache entries are written only
/// under it.
static REGISTER: Mutex<()> = Mutex::new(());
/// Shared leaves whose handles have more than one type: address → alias.
static ALIASES: Mutex<Option<HashMap<usize, Alias>>> = Mutex::new(None);

/// A shared leaf's count and the types its handles have had.
struct Alias {
    /// The slot that holds its count.
    home: usize,
    /// Every slot whose `aliased` counter this entry raised (the home
    /// included), without repeats.
    names: Vec<usize>,
}

fn hash(addr: usize) -> usize {
    (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize >> 7
}

/// The slot of type name `name` (allocations of `size` bytes), by index.
#[inline]
fn slot(name: &'static str, size: usize) -> usize {
    let key = name.as_ptr() as usize;
    let mut i = hash(key) % CACHE;
    // Probe a few entries; the table is sized so that this almost always
    // ends at the first.
    for _ in 0..8 {
        let e = &ENTRIES[i];
        // Acquire: pairs with the Release in `register`, so the slot index
        // (and the slot's name, written before) is seen.
        let k = e.key.load(Acquire);
        if k == key {
            return e.slot.load(Relaxed);
        }
        if k == 0 {
            break;
        }
        i = (i + 1) % CACHE;
    }
    register(name, size)
}

#[cold]
#[inline(never)]
fn register(name: &'static str, size: usize) -> usize {
    let _guard = lock(&REGISTER);
    // Relaxed: written only under the lock we hold.
    let used = USED.load(Relaxed);
    let found = (0..used).find(|&s| {
        let p = SLOTS[s].name_ptr.load(Relaxed).cast_const();
        let n = SLOTS[s].name_len.load(Relaxed);
        // SAFETY: slot `s` < `used` was filled from a `&'static str`.
        let existing = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, n)) };
        existing == name
    });
    let index = match found {
        Some(s) => s,
        None if used < MAX_TYPES => {
            let s = &SLOTS[used];
            s.name_ptr.store(name.as_ptr().cast_mut(), Relaxed);
            s.name_len.store(name.len(), Relaxed);
            s.size.store(size, Relaxed);
            // Release: `census` reads the slots below `USED` (Acquire).
            USED.store(used + 1, Release);
            used
        }
        None => OTHER,
    };
    // Cache the name's address (a later miss for it finds it here).
    let key = name.as_ptr() as usize;
    let mut i = hash(key) % CACHE;
    for _ in 0..8 {
        let e = &ENTRIES[i];
        let k = e.key.load(Relaxed);
        if k == key {
            break;
        }
        if k == 0 {
            e.slot.store(index, Relaxed);
            // Release: a reader that sees the key sees the slot index.
            e.key.store(key, Release);
            break;
        }
        i = (i + 1) % CACHE;
    }
    index
}

/// Count one allocation of a `CcBox<T>` of `bytes` (the header included).
#[inline]
pub(crate) fn on_alloc<T: ?Sized>(bytes: usize) {
    count_in(slot(std::any::type_name::<T>(), bytes));
}

fn count_in(index: usize) {
    let s = &SLOTS[index];
    // Relaxed: statistics; no data is published through them. Wrapping:
    // a count can only go wrong through a hand-made conversion (see
    // Limits), and statistics must not panic over it.
    let now = s.live.fetch_add(1, Relaxed).wrapping_add(1);
    if now > s.peak.load(Relaxed) && now <= isize::MAX as usize {
        s.peak.fetch_max(now, Relaxed);
    }
}

fn count_out(index: usize) {
    // Relaxed: as in `count_in`.
    SLOTS[index].live.fetch_sub(1, Relaxed);
}

/// Count one deallocation of the `CcBox<T>` at `addr`, of `bytes`.
#[inline]
pub(crate) fn on_free<T: ?Sized>(addr: usize, bytes: usize) {
    count_out(take_home(addr, slot(std::any::type_name::<T>(), bytes)));
}

/// The leaf box at `addr` (of `bytes`) gets a handle of type `B` from one
/// of the type named `from`; `unique` says no other handle (strong or
/// `Weak`) exists.
pub(crate) fn on_retype<B: ?Sized>(addr: usize, from: &'static str, bytes: usize, unique: bool) {
    let to = slot(std::any::type_name::<B>(), bytes);
    retype_slots(addr, slot(from, bytes), to, unique);
}

fn retype_slots(addr: usize, from: usize, to: usize, unique: bool) {
    if from == to {
        return;
    }
    if unique {
        // Every other handle is gone: the count follows this one, from
        // wherever it was.
        count_out(take_home(addr, from));
        count_in(to);
        return;
    }
    let mut table = lock(&ALIASES);
    // An entry made by an earlier conversion (or by another thread's,
    // converting another shared handle at the same time) is merged into:
    // the count stays in its home.
    let alias = table
        .get_or_insert_with(HashMap::new)
        .entry(addr)
        .or_insert_with(|| Alias {
            home: from,
            names: Vec::new(),
        });
    for n in [from, to] {
        if !alias.names.contains(&n) {
            alias.names.push(n);
            // Relaxed: read under the conditions argued in the docs.
            SLOTS[n].aliased.fetch_add(1, Relaxed);
        }
    }
}

/// The slot holding the count of the leaf at `addr`, found through a
/// handle of slot `index`'s type: its alias entry's home (the entry is
/// removed), or `index` itself.
#[inline]
fn take_home(addr: usize, index: usize) -> usize {
    // Relaxed: see "Conversions" in the module docs for why an entry for
    // `addr` is seen.
    if SLOTS[index].aliased.load(Relaxed) != 0 {
        take_alias(addr).unwrap_or(index)
    } else {
        index
    }
}

/// Remove `addr`'s entry, if any, and say its home.
#[cold]
fn take_alias(addr: usize) -> Option<usize> {
    let alias = lock(&ALIASES).as_mut()?.remove(&addr)?;
    for n in alias.names {
        // Relaxed: as in `retype_slots`.
        SLOTS[n].aliased.fetch_sub(1, Relaxed);
    }
    Some(alias.home)
}

/// Allocations of one type, as listed by [`census`].
///
/// ```
/// let c = arcycle::census();
/// for t in &c {
///     let _ = (t.type_name, t.live, t.bytes, t.peak_live, t.peak_bytes);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeCensus {
    /// `std::any::type_name` of the values.
    pub type_name: &'static str,
    /// Allocations alive now: values not yet destroyed, and destroyed
    /// values whose allocation a [`Weak`](crate::Weak) still keeps.
    pub live: usize,
    /// Their bytes, the 16-byte header included.
    pub bytes: usize,
    /// The largest `live` since the start, or since
    /// [`debug::reset_peak`](crate::debug::reset_peak).
    pub peak_live: usize,
    /// `peak_live` in bytes.
    pub peak_bytes: usize,
}

/// Live `Cc` allocations per type (feature `census`), most bytes first.
///
/// Lists every type allocated since the start, with what is alive now and
/// the peak since the start or since
/// [`debug::reset_peak`](crate::debug::reset_peak). Counts are updated by
/// relaxed atomics: a census taken while other threads allocate is a
/// snapshot of roughly one moment. Unsized values count under their own
/// type (`str`, `[T]`) with their own size. A value that may hold edges
/// stays counted under the type it was allocated as, whatever its handles
/// become. A leaf's count follows its handle through a conversion
/// (`From<Cc<str>>`, `TryFrom`, `downcast`, `assume_init`,
/// [`coerce!`](crate::coerce)) when that handle was its only one; when
/// other handles (or a `Weak`) share it, it stays where it was until the
/// allocation is freed, whichever handle frees it. The feature adds about 10 ns to every
/// `Cc::new` + drop (two uncontended atomic RMWs; more when threads
/// allocate one type at once); without it, nothing.
///
/// ```
/// #[derive(arcycle::Trace)]
/// struct Counted(u64);
///
/// let keep: Vec<_> = (0..3).map(|i| arcycle::Cc::new(Counted(i))).collect();
/// let row = arcycle::census()
///     .into_iter()
///     .find(|t| t.type_name.ends_with("Counted"))
///     .unwrap();
/// assert_eq!(row.live, 3);
/// assert_eq!(row.bytes, 3 * 24);
/// # drop(keep);
/// ```
pub fn census() -> Vec<TypeCensus> {
    // Acquire: pairs with `register`'s Release; slots below are complete.
    let used = USED.load(Acquire);
    let mut out: Vec<TypeCensus> = (0..used)
        .map(|i| {
            let s = &SLOTS[i];
            // Relaxed: names were published by the Acquire above.
            let p = s.name_ptr.load(Relaxed).cast_const();
            let n = s.name_len.load(Relaxed);
            // SAFETY: slot `i` < `used` was filled from a `&'static str`.
            let name = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, n)) };
            row(name, s)
        })
        .collect();
    let other = &SLOTS[OTHER];
    if other.peak.load(Relaxed) > 0 {
        out.push(row("<other types>", other));
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.live.cmp(&a.live)));
    out
}

fn row(type_name: &'static str, s: &Slot) -> TypeCensus {
    // Relaxed: statistics.
    let size = s.size.load(Relaxed);
    // A row a hand-made conversion drove below zero reads 0 (see Limits).
    let live = s.live.load(Relaxed);
    let live = if live > isize::MAX as usize { 0 } else { live };
    let peak = s.peak.load(Relaxed).max(live);
    TypeCensus {
        type_name,
        live,
        bytes: live * size,
        peak_live: peak,
        peak_bytes: peak * size,
    }
}

/// Start the census peaks over: each type's peak becomes what is alive
/// now (feature `census`).
///
/// ```
/// let a = arcycle::Cc::new(7u64);
/// arcycle::debug::reset_peak();
/// let row = arcycle::census().into_iter().find(|t| t.type_name == "u64").unwrap();
/// assert_eq!(row.peak_live, row.live);
/// # drop(a);
/// ```
pub fn reset_peak() {
    // Acquire: as in `census`.
    let used = USED.load(Acquire);
    for s in SLOTS[..used].iter().chain(std::iter::once(&SLOTS[OTHER])) {
        // Relaxed: statistics; an allocation racing with the reset may
        // raise the peak again, as it should.
        s.peak.store(s.live.load(Relaxed), Relaxed);
    }
}

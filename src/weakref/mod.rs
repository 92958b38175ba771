//! Python's `weakref`, made for threads: [`WeakValueMap`], [`WeakKeyMap`],
//! [`WeakSet`] and [`finalize`].
//!
//! This file is the part every one of them shares: the **registry** of
//! per-object registrations and the **death path** that runs them.
//!
//! # Guarantees
//!
//! * **Objects without registrations pay nothing.** An object gets a
//!   record in the registry (a global table of `SHARDS` mutex-protected
//!   hash maps keyed by the allocation's address) only when a finalizer is
//!   registered on it or it enters a weak collection; registering sets the
//!   weak word's `REGISTERED` bit. The death path runs only when the
//!   strong side's release of the weak word (`Header::release_strong_side`,
//!   a `fetch_sub` every death makes anyway) *returns* a word with that bit:
//!   no extra atomic operation, only a test of a register, on every other
//!   death; nothing at all on clone, drop-not-last or deref.
//! * **No address reuse.** `REGISTERED` is a claim on the allocation (the
//!   weak word cannot reach zero while it is set), and it is cleared only
//!   after the record has been taken out of the registry. So a record keyed
//!   by an address always belongs to the object living at that address.
//! * **Death is one instant**, the strong count reaching zero (last drop)
//!   or the collector marking the object `DEAD`: from then on
//!   `Weak::upgrade`, and so every map and set (they read liveness with
//!   `upgrade`, or with the strong count), no longer return it. Then the
//!   object's destructor runs; then, in `on_death` (last drop) or
//!   `Deaths::run` (collection: after *every* destructor of the freed
//!   set, once the set is freed), its registrations run: first the weak
//!   collections purge their entries for it (their `len` stops counting
//!   it), then its finalizers, in registration order.
//! * **No callback runs under a lock of ours.** The record is taken out of
//!   the registry under its shard lock and run after the lock is released;
//!   the weak collections drop purged keys and values after releasing their
//!   shard locks. A finalizer may use any map, register finalizers, drop
//!   handles, or call `collect()`.
//! * **Panics.** Each finalizer (and each purged entry's drop) runs under
//!   `catch_unwind`; the rest still run. The first panic is resumed to the
//!   caller of `collect()` (collection) or to the dropper (last drop, after
//!   the allocation is dealt with), exactly as a destructor's panic would;
//!   if that thread is already unwinding, it is reported (see
//!   [`set_report_hook`](crate::set_report_hook)) instead.
//!
//! # Order, next to Python's (PEP 442)
//!
//! CPython, for a garbage cycle: clear the weak references and call their
//! callbacks (so `weakref.finalize` callbacks run *before* `__del__`), then
//! call `__del__` (PEP 442: once, and the object may resurrect itself),
//! then `tp_clear`. arcycle: the object is dead first (no upgrade, no
//! resurrection: a destructor that clones a handle to a dead peer keeps
//! only its allocation), then every destructor runs, then the weak
//! collections forget the objects, then the finalizers run — after the
//! destructors, and with no access to the object.
//!
//! # Example: an event emitter whose listeners are held weakly
//!
//! Listeners register themselves; the emitter must not keep them alive,
//! and a listener that is dropped (or collected with a cycle it is on)
//! simply stops being called — no unsubscribe, no stale entries.
//!
//! ```
//! use arcycle::{Cc, WeakSet};
//! use std::sync::Mutex;
//!
//! struct Listener { name: &'static str, heard: Mutex<Vec<String>> }
//! arcycle::leaf!(Listener);
//!
//! #[derive(Default)]
//! struct Emitter { listeners: WeakSet<Listener> }
//!
//! impl Emitter {
//!     fn subscribe(&self, l: &Cc<Listener>) { self.listeners.insert(l); }
//!     fn emit(&self, event: &str) -> usize {
//!         let live = self.listeners.to_vec(); // a snapshot: no lock held below
//!         for l in &live {
//!             l.heard.lock().unwrap().push(event.to_string());
//!         }
//!         live.len()
//!     }
//! }
//!
//! let emitter = Emitter::default();
//! let ui = Cc::new(Listener { name: "ui", heard: Mutex::new(vec![]) });
//! let log = Cc::new(Listener { name: "log", heard: Mutex::new(vec![]) });
//! emitter.subscribe(&ui);
//! emitter.subscribe(&log);
//! assert_eq!(emitter.emit("open"), 2);
//!
//! // The log listener goes away: it is purged from the emitter by itself,
//! // and a finalizer can say goodbye.
//! let bye = arcycle::finalize(&log, || println!("log listener gone"));
//! drop(log);
//! assert!(!bye.alive());
//! assert_eq!(emitter.listeners.len(), 1);
//! assert_eq!(emitter.emit("close"), 1);
//! assert_eq!(ui.name, "ui");
//! assert_eq!(*ui.heard.lock().unwrap(), ["open", "close"]);
//! ```
//!
//! Guarded by the loom models `finalize_vs_last_drop`,
//! `value_map_get_vs_last_drop` and `purge_vs_reinsert` (loom-tests/), and
//! by `tests/weakref.rs`.

mod finalize;
mod key_map;
mod set;
mod value_map;

pub use finalize::{finalize, Finalizer};
pub use key_map::{Ref, WeakKeyMap};
pub use set::WeakSet;
pub use value_map::WeakValueMap;

use crate::cc::CcBox;
use crate::header::{Header, DEAD, REGISTERED};
use crate::sync::{lock, Mutex};
use crate::trace::{Node, Trace};
use crate::Cc;
use crossbeam_utils::CachePadded;
use std::any::Any;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// Registry shards (a power of two).
const SHARDS: usize = 64;

/// What a weak collection's entry for an object is, to the registry: which
/// collection, which shard of it, and which entry there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) shard: usize,
    pub(crate) hash: u64,
    /// Unique within the shard (a counter kept under its lock).
    pub(crate) id: u64,
}

/// A weak collection, as the death path sees it.
pub(crate) trait Watch: Send + Sync {
    /// The object of the entry `token` died: forget the entry (and drop it
    /// after releasing the collection's lock).
    fn died(&self, token: Token);
}

/// One registration of an object.
pub(crate) enum Reg {
    /// A finalizer: run it once.
    Finalizer(std::sync::Arc<finalize::FinState>),
    /// An entry of a weak collection (held weakly: a dropped collection is
    /// not notified).
    Watch {
        map: std::sync::Weak<dyn Watch>,
        token: Token,
    },
}

/// Everything registered on one object, and how to free its allocation
/// (the death path may be the last claim on it).
struct Record {
    /// The object's header, and how to give its allocation back (the
    /// registrant knew the type; the death path may be the last claim).
    header: NonNull<Header>,
    free: unsafe fn(NonNull<Header>),
    regs: Vec<Reg>,
}

// SAFETY: the header pointer is only used by the death path, which owns
// the allocation's last claim (see `on_death`); the rest is `Send`.
unsafe impl Send for Record {}

/// # Safety
/// `h` heads a `CcBox<T>` whose weak word reached zero, value gone.
unsafe fn free_box<T>(h: NonNull<Header>) {
    // SAFETY: forwarded contract; `free` reads the type code to find the
    // allocation's layout.
    unsafe { CcBox::<T>::free(h.cast()) }
}

pub(crate) use crate::erased::{mix, AddrHasher};

type Shard = Mutex<HashMap<usize, Record, BuildHasherDefault<AddrHasher>>>;

struct Registry {
    shards: Vec<CachePadded<Shard>>,
}

fn new_registry() -> Registry {
    Registry {
        shards: (0..SHARDS)
            .map(|_| CachePadded::new(Mutex::new(HashMap::default())))
            .collect(),
    }
}

#[cfg(not(arcycle_loom))]
static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();

#[cfg(not(arcycle_loom))]
fn registry() -> &'static Registry {
    REGISTRY.get_or_init(new_registry)
}

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref REGISTRY: Registry = new_registry();
}

#[cfg(arcycle_loom)]
fn registry() -> &'static Registry {
    &REGISTRY
}

fn shard_of(addr: usize) -> &'static Shard {
    // The top bits of the mixed address.
    &registry().shards[(mix(addr) >> (64 - SHARDS.trailing_zeros())) as usize]
}

/// Register `reg` on `cc`'s object. `Err(reg)` if the object is already
/// dead (only possible through a handle a destructor of its collected
/// cycle cloned): its registrations have run or are about to, so this one
/// would never run.
pub(crate) fn register<T: Trace>(cc: &Cc<T>, reg: Reg) -> Result<(), Reg> {
    let header = cc.header_ptr();
    let addr = header.as_ptr() as usize;
    let h = cc.header();
    let mut shard = lock(shard_of(addr));
    // Relaxed: a handle to a dead object was cloned by a destructor the
    // collector ran after setting DEAD (or passed on from there), which
    // orders the flag before this load (as in `Cc::deref`).
    if h.strong.load(Relaxed) & DEAD != 0 {
        return Err(reg);
    }
    shard
        .entry(addr)
        .or_insert_with(|| Record {
            header,
            free: free_box::<T>,
            regs: Vec::new(),
        })
        .regs
        .push(reg);
    // The flag is only set and cleared under this shard's lock (or by the
    // death path, when no handle can exist any more), so a plain load tells
    // whether the RMW is needed. Relaxed: the death path that must see it
    // reads it with an RMW on this word that happens after our caller's
    // handle is dropped (a Release decrement the last dropper acquires, or
    // the collector's Acquire claim of the value), so coherence orders
    // this RMW before it.
    if h.weak.load(Relaxed) & REGISTERED == 0 {
        h.weak.fetch_or(REGISTERED, Relaxed);
    }
    Ok(())
}

/// Remove the registrations of the object at `addr` that `pred` selects,
/// and drop them after the lock is released. The record itself stays (its
/// flag does too) until the object dies. Harmless if the object died
/// already (its record is gone, or belongs to a new object at the same
/// address, which `pred` cannot match: a registration is identified by
/// what only its owner holds).
pub(crate) fn unregister(addr: usize, mut pred: impl FnMut(&Reg) -> bool) {
    let mut removed = Vec::new();
    {
        let mut shard = lock(shard_of(addr));
        if let Some(rec) = shard.get_mut(&addr) {
            let mut i = 0;
            while i < rec.regs.len() {
                if pred(&rec.regs[i]) {
                    // Keep registration order for the rest.
                    removed.push(rec.regs.remove(i));
                } else {
                    i += 1;
                }
            }
        }
    }
    drop(removed);
}

/// Whether `reg` is the entry `token` of the collection at `map`.
pub(crate) fn is_watch(reg: &Reg, map: *const (), token: Token) -> bool {
    match reg {
        Reg::Watch { map: m, token: t } => m.as_ptr() as *const () == map && *t == token,
        Reg::Finalizer(_) => false,
    }
}

/// The death path of a last drop: called by `Header::release_strong_side`
/// when the word its `fetch_sub` returned had `REGISTERED`.
///
/// Takes the record out of the registry, clears `REGISTERED` (freeing the
/// allocation if that was the last claim), then runs the registrations.
/// A finalizer's panic is resumed after everything ran, or reported if
/// this thread is already unwinding.
///
/// # Safety
/// `h` is the header of an object whose strong side was just released
/// with `REGISTERED` set: no strong handle exists or can appear, and the
/// flag keeps the allocation alive until this clears it.
#[cold]
#[inline(never)]
pub(crate) unsafe fn on_death(h: &Header) {
    let addr = h as *const Header as usize;
    let record = lock(shard_of(addr)).remove(&addr);
    // AcqRel, as a release of weak units: Release so that our uses of the
    // header happen-before the free by whoever frees; Acquire so that, if
    // we free, everyone else's uses happen-before it.
    let old = h.weak.fetch_sub(REGISTERED, AcqRel);
    let Some(record) = record else {
        // Unreachable: the flag is set only together with a record, and
        // only death removes the record. Leak rather than guess the type.
        debug_assert!(false, "arcycle: REGISTERED without a registry record");
        return;
    };
    if old == REGISTERED {
        // SAFETY: the weak word is zero: nothing refers to the allocation,
        // and the value is gone (the strong side was released).
        unsafe { (record.free)(record.header) }
    }
    if let Some(payload) = run(record.regs) {
        if std::thread::panicking() {
            crate::collector::report_panic(
                crate::ReportKind::PanicDuringUnwind,
                "a finalizer or weak-collection entry's drop panicked while a destructor's \
                 panic was unwinding; the second panic is dropped",
                payload,
            );
        } else {
            resume_unwind(payload);
        }
    }
}

/// The death path of a collection: the registrations of the freed set,
/// taken out of the registry member by member as the collector's commit
/// frees them (after every value of the set has been dropped), and run
/// once the set is freed ([`Deaths::run`]).
#[derive(Default)]
pub(crate) struct Deaths(Vec<Record>);

impl Deaths {
    /// Take the records of a dead member of the freed set, if it has any,
    /// and clear its flag. The caller still holds the member (so its
    /// allocation cannot go away under us) and calls this before giving
    /// the strong side's unit back.
    pub(crate) fn take(&mut self, n: Node) {
        let h = n.header();
        // Relaxed: this thread's Acquire claim of the value (or the peer
        // destructor's, on this thread) synchronised with every Release
        // decrement of the strong word, and each registrant set the flag
        // before dropping its handle; a registration after the decision is
        // refused (`register` sees DEAD).
        if h.weak.load(Relaxed) & REGISTERED == 0 {
            return;
        }
        let mut shard = lock(shard_of(n.addr()));
        if let Some(rec) = shard.remove(&n.addr()) {
            self.0.push(rec);
        }
        // Under the shard lock, like every setting of the flag. Relaxed:
        // we still hold the strong side's unit, so this cannot bring the
        // word to zero; the later release of that unit orders our uses.
        h.weak.fetch_and(!REGISTERED, Relaxed);
    }

    /// Run what [`take`](Self::take) took: weak collections forget the
    /// members, then their finalizers run. The first panic goes to
    /// `panic` (resumed to the caller of `collect()`).
    pub(crate) fn run(self, panic: &mut Option<Box<dyn Any + Send>>) {
        for rec in self.0 {
            if let Some(p) = run(rec.regs) {
                crate::collector::keep_panic(panic, p);
            }
        }
    }
}

/// Run an object's registrations: weak collections first (they forget
/// it), then finalizers in registration order. Every one runs even if
/// some panic; returns the first panic.
fn run(regs: Vec<Reg>) -> Option<Box<dyn Any + Send>> {
    let mut panic = None;
    let mut finalizers = Vec::new();
    for reg in regs {
        match reg {
            Reg::Watch { map, token } => {
                if let Some(map) = map.upgrade() {
                    // The collection drops the entry's key and value, which
                    // may run user code.
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| map.died(token))) {
                        crate::collector::keep_panic(&mut panic, p);
                    }
                }
            }
            Reg::Finalizer(f) => finalizers.push(f),
        }
    }
    for f in finalizers {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f.fire())) {
            crate::collector::keep_panic(&mut panic, p);
        }
    }
    panic
}

/// The registry's address of `cc`'s object.
#[inline]
pub(crate) fn addr_of<T: Trace>(cc: &Cc<T>) -> usize {
    cc.header_ptr().as_ptr() as usize
}

/// Whether `cc`'s object was destroyed by the collector (a handle a
/// destructor cloned). Such an object is never added to a collection.
#[inline]
pub(crate) fn is_dead<T: Trace>(cc: &Cc<T>) -> bool {
    // Relaxed: as in `register`.
    cc.header().strong.load(Relaxed) & DEAD != 0
}

/// How many shards a weak collection has: enough that threads rarely meet
/// on one lock, few enough that a small collection stays small.
pub(crate) const MAP_SHARDS: usize = 16;

/// The shard of a weak collection for `hash` (top bits; the table uses the
/// low ones).
#[inline]
pub(crate) fn map_shard(hash: u64) -> usize {
    (hash >> (64 - MAP_SHARDS.trailing_zeros())) as usize
}

//! Per-thread rings: buffering a possible root without a lock.
//!
//! # What this guarantees
//!
//! * **A push is two plain stores.** Each thread that buffers gets a ring
//!   of [`CAP`] slots. The thread is its only producer. Entries are taken
//!   out under the registry lock only: by the collector's drain, or by the
//!   owning thread itself when its ring is full ([`spill`]). The thread
//!   writes a slot and publishes it by storing `head` (Release); whoever
//!   takes entries reads `head` (Acquire), takes the slots, and gives them
//!   back by storing `tail` (Release), which the thread reads (Acquire)
//!   before it reuses a slot. No read-modify-write on the push: the shard
//!   mutex the push used to take cost two locked instructions per buffered
//!   root.
//! * **A full ring spills in one step.** The owning thread moves every
//!   entry of its full ring to a shard of `buffer` under one registry lock
//!   and one shard lock, instead of taking a shard's lock per entry: a
//!   burst of drops (a big structure let go) pays two lock round trips per
//!   [`CAP`] roots.
//! * **`collect()` still sees every entry pushed before it was called.**
//!   The push's Release store of `head` and the drain's Acquire load of it
//!   order the slot before the drain whenever the push happens-before the
//!   `collect()` (the same guarantee the shard mutex gave). A spill holds
//!   the registry lock from reading the slots until they are in the shard,
//!   so a drain sees each entry in the ring or, after the spill, in the
//!   shard (the collector drains the rings before the shards).
//! * **Nothing is lost when a thread exits**: the ring lives in the
//!   registry, not in the thread, and is drained like any other; a ring
//!   whose thread is gone is dropped from the registry once empty. A ring
//!   costs ~2 KiB per thread that has buffered a root, from its first
//!   buffered root until the collection after the thread's exit.
//! * **A full ring is never waited on**: it spills; during thread-local
//!   teardown, when the ring is out of reach, the caller pushes to a shard
//!   of `buffer` instead, so the buffer stays bounded by the shards'
//!   compaction.
//!
//! Lock order: the registry, then a shard (a spill; `fork` takes them in
//! the same order).
//!
//! Guarded by the loom models that buffer roots (`buffer_vs_last_drop`,
//! `collect_vs_drop_race`, `visit_number_vs_upgrade_and_buffering`, and
//! every validation model), where a ring has two slots so that the
//! spill runs too, and by `tests/reliability.rs` (threads that
//! exit with buffered roots).

use super::Entry;
use crate::header::Header;
use crate::sync::{lock, AtomicPtr, AtomicUsize, Mutex};
use crossbeam_utils::CachePadded;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;
// Not the `sync` shim's, on purpose: both are only touched when a thread
// first buffers and when its thread-locals are torn down, and under loom
// the main thread's locals are torn down after the model has ended, where
// a loom operation cannot run. Neither carries the protocol: `head` and
// `tail` (the shim's) do.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Slots per ring. Small under loom, so that models reach the overflow
/// path.
pub(crate) const CAP: usize = if cfg!(arcycle_loom) { 2 } else { 256 };

/// One thread's ring: one allocation, its `head` (written on every push)
/// on a cache line of its own, so that two threads' rings allocated side
/// by side do not share the line their pushes write.
pub(crate) struct Ring {
    /// Entries ever pushed; written by the owning thread only.
    head: CachePadded<AtomicUsize>,
    /// Entries ever taken; written under the registry lock only (by a
    /// drain, or by the owner's spill).
    tail: AtomicUsize,
    slots: [AtomicPtr<Header>; CAP],
    /// Set when the owning thread is gone (its thread-local dropped).
    abandoned: AtomicBool,
}

/// Every ring, for the collector to drain.
pub(crate) struct Registry {
    rings: Mutex<Vec<Arc<Ring>>>,
}

macro_rules! registry_init {
    () => {
        Registry {
            rings: Mutex::new(Vec::new()),
        }
    };
}

#[cfg(not(arcycle_loom))]
static REGISTRY: Registry = registry_init!();

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref REGISTRY: Registry = registry_init!();
}

/// The thread's handle on its ring; marks the ring abandoned when the
/// thread's locals are torn down.
struct Owned(std::cell::OnceCell<Arc<Ring>>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(ring) = self.0.get() {
            // Release: our last pushes (already published by `head`) come
            // before the collector's decision to drop the ring.
            ring.abandoned.store(true, Release);
        }
    }
}

crate::sync::cc_thread_local! {
    static RING: Owned = Owned(std::cell::OnceCell::new());
}

impl Ring {
    fn new() -> Ring {
        Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            abandoned: AtomicBool::new(false),
        }
    }

    /// Push on the owning thread; how many entries the ring holds now, or
    /// `None` if it is full.
    #[inline]
    fn push(&self, entry: Entry) -> Option<usize> {
        // Relaxed: only this thread writes `head`.
        let h = self.head.load(Relaxed);
        // Acquire: the collector's reads of the slots it gave back (by its
        // Release store of `tail`) happen-before we overwrite them.
        let t = self.tail.load(Acquire);
        let held = h.wrapping_sub(t);
        if held >= CAP {
            return None;
        }
        // Relaxed: published by the store of `head` below.
        self.slots[h % CAP].store(entry.0.as_ptr(), Relaxed);
        // Release: the slot, and everything before the push (the entry's
        // claim, the decrement it stands for), happen-before a drain that
        // sees the new `head`.
        self.head.store(h.wrapping_add(1), Release);
        Some(held + 1)
    }

    /// Hand every published entry to `sink` and give the slots back; the
    /// caller holds the registry lock (a drain, or the owner's spill).
    /// Returns how many.
    fn take(&self, sink: impl FnOnce(&mut dyn Iterator<Item = Entry>)) -> usize {
        // Relaxed: only takers write `tail`, and the registry lock, which
        // every taker holds, orders them.
        let t = self.tail.load(Relaxed);
        // Acquire: see `push` (an owner's spill reads its own stores).
        let h = self.head.load(Acquire);
        let n = h.wrapping_sub(t);
        sink(&mut (0..n).map(|k| {
            // Relaxed: published by the Acquire load of `head` above.
            let p = self.slots[t.wrapping_add(k) % CAP].load(Relaxed);
            // SAFETY: every published slot holds a header pointer (`push`
            // stores only `NonNull`s).
            Entry(unsafe { NonNull::new_unchecked(p) })
        }));
        // Release: our reads of the slots happen-before the owner reuses
        // them (it loads `tail` with Acquire).
        self.tail.store(h, Release);
        n
    }
}

/// Push `entry` on this thread's ring and say how many entries the ring
/// holds now. `None` when the ring is full or out of reach (thread-local
/// teardown): the caller spills it, or uses a shard.
#[inline]
pub(crate) fn push(entry: Entry) -> Option<usize> {
    RING.try_with(|owned| {
        owned
            .0
            .get_or_init(|| {
                let ring = Arc::new(Ring::new());
                lock(&REGISTRY.rings).push(ring.clone());
                ring
            })
            .push(entry)
    })
    .unwrap_or(None)
}

/// Empty this thread's ring into `sink`, called once with every entry the
/// ring held, under the registry lock (so a drain sees each entry in the
/// ring or in what `sink` put it in: see the module docs). False if the
/// ring is out of reach (thread-local teardown) or was never made.
#[cold]
#[inline(never)]
pub(crate) fn spill(sink: impl FnOnce(&mut dyn Iterator<Item = Entry>)) -> bool {
    RING.try_with(|owned| {
        let Some(ring) = owned.0.get() else {
            return false;
        };
        let _registry = lock(&REGISTRY.rings);
        ring.take(sink);
        true
    })
    .unwrap_or(false)
}

/// Take the entries of every ring (the collector, under its lock), and
/// forget the rings of exited threads once empty.
pub(crate) fn drain_into(out: &mut Vec<Entry>) {
    let mut rings = lock(&REGISTRY.rings);
    rings.retain(|ring| {
        // Acquire: the owner's last pushes are published before its
        // `abandoned` store, so a ring found abandoned and then drained is
        // empty for good. Not under loom: there a thread's locals are torn
        // down outside the schedule, so reading the flag would make the
        // model's path depend on an unmodelled write (a ring of a model
        // execution lives only as long as that execution anyway).
        let gone = !cfg!(arcycle_loom) && ring.abandoned.load(Acquire);
        ring.take(|entries| out.extend(entries));
        !gone
    });
}

/// How many entries the rings hold: exact at one moment for each ring
/// (the registry lock keeps drains and spills out; an owner's push that
/// this misses is still to come for whoever reads the count).
///
/// Relaxed: a count. A reader that needs a push to be seen puts a
/// `SeqCst` fence before this, as the pusher does after its `head` store
/// (see `collector::worker`, "No lost signal").
pub(crate) fn held() -> usize {
    lock(&REGISTRY.rings)
        .iter()
        .map(|ring| {
            ring.head
                .load(Relaxed)
                .wrapping_sub(ring.tail.load(Relaxed))
        })
        .sum()
}

/// The registry's lock, held across `fork` (see `collector::worker`) so
/// that the child does not inherit it locked by another thread.
#[cfg(all(unix, not(miri), not(arcycle_loom)))]
pub(crate) fn lock_for_fork() -> Box<dyn std::any::Any> {
    Box::new(lock(&REGISTRY.rings))
}

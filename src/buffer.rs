//! The root buffer: possible roots of garbage cycles, waiting for a
//! collection.
//!
//! # Invariants
//!
//! 1. **An entry never outlives its allocation.** Buffering adds one
//!    [`ENTRY`] unit to the weak word before the entry is pushed, and only
//!    the collector, after processing the entry, gives it back.
//! 2. **No decrement is lost.** If a drop leaves a cycle-capable object's
//!    count non-zero, some collection after that drop clears the object's
//!    `ACTIVE` flag and only then reads its count and edges. The drop's
//!    decrement is a CAS on the strong word that *expects* the `ACTIVE` it
//!    saw: either it expected `ACTIVE` set, and then the decrement precedes
//!    the collector's clearing RMW in the word's modification order (so the
//!    collector's later read of the same word includes it), or it set
//!    `ACTIVE` itself in the same CAS and pushed a new entry. (A separate
//!    "is it buffered?" load followed by a plain decrement would lose the
//!    decrement in the interleaving load, clear, read count, decrement —
//!    which is sequentially consistent, so no ordering can fix it.)
//! 3. **The entry's claim is taken while the dropping thread still holds
//!    its handle**, so the allocation cannot go away under the push. A drop
//!    that sees the count at 1 does not buffer: its handle is the only one,
//!    so the object is on no cycle; if an upgrade races in, that new
//!    handle's own drop will buffer.
//! 4. **Entries are global, not thread-local**, in `SHARDS` mutex-protected
//!    vectors chosen per thread: a thread that exits loses nothing, a drop
//!    during thread-local teardown still works, and `collect()` on any
//!    thread sees every entry pushed before it was called (the shard
//!    mutexes order the push before the drain).
//!
//! Guarded by the loom models `buffer_vs_last_drop` and
//! `collect_vs_drop_race` (see `loom-tests/`).

use crate::collector;
use crate::header::*;
use crate::sync::{lock, AtomicUsize, Mutex};
use crate::trace::Node;
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering::*;

const SHARDS: usize = 16;

pub(crate) struct RootBuffer {
    shards: [CachePadded<Mutex<Vec<Node>>>; SHARDS],
    /// Entries pushed and not yet drained.
    pending: AtomicUsize,
    next_shard: AtomicUsize,
}

#[cfg(not(loom))]
static BUFFER: RootBuffer = RootBuffer {
    shards: [const { CachePadded::new(Mutex::new(Vec::new())) }; SHARDS],
    pending: AtomicUsize::new(0),
    next_shard: AtomicUsize::new(0),
};

#[cfg(loom)]
loom::lazy_static! {
    static ref BUFFER: RootBuffer = RootBuffer {
        shards: std::array::from_fn(|_| CachePadded::new(Mutex::new(Vec::new()))),
        pending: AtomicUsize::new(0),
        next_shard: AtomicUsize::new(0),
    };
}

fn buffer() -> &'static RootBuffer {
    &BUFFER
}

crate::sync::cc_thread_local! {
    static SHARD: std::cell::Cell<usize> = std::cell::Cell::new(usize::MAX);
}

fn shard_index() -> usize {
    let pick = || buffer().next_shard.fetch_add(1, Relaxed) % SHARDS;
    // During thread-local teardown `try_with` fails; any shard will do.
    SHARD
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = pick();
                s.set(i);
            }
            i
        })
        .unwrap_or_else(|_| pick())
}

/// Give up one strong handle of a cycle-capable object, buffering it as
/// a possible root if the count stays above zero and it is not buffered.
/// Returns the strong word before the decrement.
#[inline(always)]
pub(crate) fn decrement(node: Node) -> u64 {
    match decrement_inner(node, false) {
        Some(old) => old,
        // SAFETY: `refuse_last == false` always decrements.
        None => unsafe { std::hint::unreachable_unchecked() },
    }
}

/// [`decrement`], except that with `refuse_last` it changes nothing and
/// returns `None` when this is the last handle (for `Cc::into_inner`).
#[inline(always)]
pub(crate) fn decrement_inner(node: Node, refuse_last: bool) -> Option<u64> {
    let h = node.header();
    let mut s = h.strong.load(Relaxed);
    loop {
        if refuse_last && count(s) == 1 {
            return None;
        }
        if wants_entry(s) {
            return decrement_and_buffer(node, s, refuse_last);
        }
        // Release, as in `Arc::drop`: our uses of the value happen-before
        // its destruction by whoever drops last (who fences Acquire).
        match h
            .strong
            .compare_exchange_weak(s, s.wrapping_add(DEC), Release, Relaxed)
        {
            Ok(_) => return Some(s),
            Err(x) => s = x,
        }
    }
}

/// Whether a drop seeing `s` must buffer: others keep the object alive, no
/// entry stands for it, and it is not dead.
#[inline(always)]
fn wants_entry(s: u64) -> bool {
    count(s) > 1 && s & (ACTIVE | DEAD) == 0
}

#[cold]
#[inline(never)]
fn decrement_and_buffer(node: Node, mut s: u64, refuse_last: bool) -> Option<u64> {
    let h = node.header();
    let mut claimed = false;
    loop {
        let stop = refuse_last && count(s) == 1;
        let want = !stop && wants_entry(s);
        if want != claimed {
            // Our handle keeps the allocation alive, so neither RMW can be
            // the one that frees it. Relaxed: the entry reaches the
            // collector through the shard mutex.
            if want {
                let old = h.weak.fetch_add(ENTRY, Relaxed);
                if old >> 32 >= u32::MAX as u64 {
                    abort_count_overflow();
                }
            } else {
                h.weak.fetch_sub(ENTRY, Relaxed);
            }
            claimed = want;
        }
        if stop {
            return None;
        }
        let new = s.wrapping_add(DEC) | if want { ACTIVE } else { 0 };
        match h.strong.compare_exchange_weak(s, new, Release, Relaxed) {
            Ok(_) => {
                if want {
                    push(node);
                }
                return Some(s);
            }
            Err(x) => s = x,
        }
    }
}

/// Buffer `node` again after a collection gave up on it. The collector
/// holds the object, so it is alive.
pub(crate) fn rebuffer(node: Node) {
    let h = node.header();
    h.weak.fetch_add(ENTRY, Relaxed);
    if h.strong.fetch_or(ACTIVE, Relaxed) & ACTIVE == 0 {
        push(node);
    } else {
        // An entry already stands for it; the hold keeps the allocation.
        h.weak.fetch_sub(ENTRY, Relaxed);
    }
}

/// Push an entry whose unit has been claimed.
pub(crate) fn push(node: Node) {
    let b = buffer();
    let pending = {
        let mut shard = lock(&b.shards[shard_index()]);
        shard.push(node);
        // Counted under the shard lock, so `drain` never subtracts an entry
        // that was not yet added.
        b.pending.fetch_add(1, Relaxed) + 1
    };
    collector::note_pending(pending);
}

/// Take every entry pushed so far.
pub(crate) fn drain() -> Vec<Node> {
    let b = buffer();
    let mut all = Vec::new();
    for shard in &b.shards {
        let mut v = lock(shard);
        b.pending.fetch_sub(v.len(), Relaxed);
        if all.is_empty() {
            std::mem::swap(&mut all, &mut *v);
        } else {
            all.append(&mut v);
        }
    }
    all
}

/// Entries pushed and not yet drained.
pub(crate) fn pending() -> usize {
    buffer().pending.load(Relaxed)
}

/// Give back an entry's claim on its allocation, freeing it if that was
/// the last claim.
pub(crate) fn release_entry(node: Node) {
    if node.header().release_weak_units(ENTRY) {
        // SAFETY: the weak word is zero: nothing refers to the allocation.
        unsafe { (node.vtable.dealloc)(node.header) }
    }
}

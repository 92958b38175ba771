//! The root buffer: possible roots of garbage cycles, waiting for a
//! collection.
//!
//! # Invariants
//!
//! 1. **An entry never outlives its allocation.** Each entry has a claim
//!    on the allocation, and the claims add up exactly: an object with
//!    `E` entries has `E = A + U`, where `U` is its weak word's entry
//!    field ([`ENTRY`] units) and `A` is 1 while `ACTIVE` is set and the
//!    strong side's unit has not been given back yet. So the entry that
//!    `ACTIVE` stands for costs no RMW on the weak word: the drop that
//!    buffers sets `ACTIVE` in its decrementing CAS and pushes, nothing
//!    more. Every other change keeps the sum:
//!    * a collection's root hold clears `ACTIVE` on a live object and
//!      takes the entry (the hold keeps the allocation from then on, see
//!      `collector::discover`); every other entry it takes — a duplicate,
//!      one whose `ACTIVE` is gone, one whose object's count is zero —
//!      gives back a unit ([`release_entry`]);
//!    * `get_mut` detaches the entry by clearing `ACTIVE`, and adds a unit
//!      for it ([`claim_for_detached`]);
//!    * whoever gives back the strong side of an object whose word still
//!      has `ACTIVE` (its last drop, or the collector for a dead member)
//!      turns that unit into an entry unit, in one RMW that adds
//!      `ENTRY - 1` (`Header::release_tracked_strong_side`). Nothing clears
//!      `ACTIVE` on a word whose count is zero or that is dead, so the
//!      bit it reads is the one the entry was pushed for.
//!
//!    A collection may take that entry and give its unit back before the
//!    hand-over adds it: the entry field is one below zero for a moment,
//!    and the strong side's unit, still in the word, keeps it above zero.
//!    In general the word is at least `(strong side) + U ≥ A + U = E`, so
//!    it cannot reach zero while an entry exists. (Before this, every
//!    buffering drop added a unit and every collection gave one back: two
//!    RMWs per buffered root, one on the mutator's drop.) The collector's
//!    quarantine list owns units of its own in the same field.
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
//! 4. **Entries are reachable by every collector**: each thread pushes to
//!    a ring of its own that the collector drains ([`ring`]: two plain
//!    stores per push, no lock); a full ring spills into one of `SHARDS`
//!    mutex-protected vectors in one step, and a thread whose ring is out
//!    of reach pushes to one directly. A thread that exits loses nothing
//!    (its ring stays registered until drained), a drop during
//!    thread-local teardown still works, and `collect()` on any thread
//!    sees every entry pushed before it was called (the ring's
//!    Release/Acquire pair, or the shard mutex, orders the push before the
//!    drain; a spill moves entries under the registry lock the drain
//!    takes, see `ring`).
//! 5. **A last drop is at once.** A drop that takes the count from 1 to 0
//!    never lands while the collector holds the object: it waits for the
//!    hold to go (bounded by the collection's locked phases, which never
//!    wait for a mutator) and then destroys the value on its own thread
//!    before returning, as `Arc` does. Only a drop made by the collecting
//!    thread itself, inside a `Trace` impl, leaves it to the collector.
//! 6. **The buffer stays bounded.** Buffering can start an automatic
//!    collection (not only `Cc::new` can); a ring holds at most
//!    [`ring::CAP`] entries (a full one spills into a shard), and in the
//!    shards entries made stale by `get_mut` are dropped by a compaction
//!    that runs when a shard doubles after a detach, so a loop of clone,
//!    drop and `get_mut` cannot grow it. A push compares the threshold
//!    with what it sees without a read-modify-write (the shards' count and
//!    its own ring's), so with T threads buffering at most `threshold +
//!    T * ring::CAP` roots wait for the trigger; `stats()` and the
//!    collector count every ring exactly ([`pending`]).
//!
//! # Why a cycle-capable drop is a load and a CAS, not one `fetch_sub`
//!
//! A leaf's drop is `Arc`'s `fetch_sub`. A cycle-capable object's cannot
//! be, in any variant found so far:
//!
//! * A `fetch_sub` first gives the handle up before it learns whether the
//!   object needs buffering (`ACTIVE` clear) or was frozen (`FROZEN`, when
//!   the drop must leave `TOUCHED`, see `collector::validate`). Both
//!   remedies write to the object afterwards, which the thread no longer
//!   keeps alive.
//! * A load that finds `ACTIVE` set and no `FROZEN`, then a `fetch_sub`:
//!   the collector's clear of `ACTIVE` can land in between (the lost
//!   decrement of invariant 2), and so can a freeze, after which the drop
//!   leaves no `TOUCHED` and, after a clone, restores the exact frozen
//!   word before the verifying CAS.
//! * A witness made by arithmetic (a wrapping counter of drops in the
//!   word) can be cancelled by as many in-flight clones as there are
//!   threads, and the word has no spare bits for one wide enough.
//!
//! Closing those windows from the collector's side would need to know
//! which threads are between their load and their RMW: thread
//! registration, which the design avoids. So the drop is a relaxed load
//! and one CAS that expects it. The CAS itself costs what `fetch_sub`
//! costs; the load is the price, because on x86 it cannot start before
//! the thread's previous locked instruction completes (measured on an
//! Intel Xeon guest: `lock xadd` 11 ns, load + `lock cmpxchg` 18 ns).
//! Out of cache the price is higher: a CAS whose expected word comes from
//! that load keeps the CPU from overlapping the next objects' cache misses
//! with this one, where `Arc`'s `lock dec` and a flag branch do not (a
//! standalone loop over random words of a million objects, AMD EPYC
//! guest: `fetch_add` + `fetch_sub` 23 ns, `fetch_add` + load + CAS 33 ns,
//! a CAS whose expected word is known without a load 23 ns; with the
//! clone's test of its returned word as well, 64 ns. The clone now
//! branches on its flags instead (see `header`): on another AMD EPYC
//! guest, 2026-12-04, three runs: `fetch_add` + `fetch_sub` 11–12 ns, a
//! flag-branching `fetch_add` + load + CAS 18–19 ns, with the old clone's
//! test 21–22 ns; see the report's spread rows, where the node's row is
//! mostly its collection).
//!
//! Guarded by the loom models `buffer_vs_last_drop`,
//! `collect_vs_drop_race`, `collector_vs_last_drop` and (invariant 1's
//! claims: a detached entry's unit, `ACTIVE`'s, the strong side's
//! hand-over racing the collection's release)
//! `detached_and_active_entries_vs_last_drop` (see `loom-tests/`; these
//! and `collect_vs_get_mut` and `collect_vs_try_unwrap` also assert that
//! every allocation is given back), and the tests in
//! `tests/reliability.rs` and, for invariant 1, `tests/api.rs`
//! (`buffered_objects_allocation_outlives_its_entry_on_every_path`,
//! `garbage_buffered_during_its_collection_is_freed_by_the_next`).
//! `scripts/loom-teeth.sh` builds the last drop without its hand-over
//! (`--cfg arcycle_broken_handover`) and asserts the model catches it.

use crate::collector;
use crate::header::*;
use crate::sync::{lock, AtomicUsize, Mutex};
use crossbeam_utils::CachePadded;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

pub(crate) mod ring;

const SHARDS: usize = 16;

/// A shard is compacted (stale entries dropped) when it reaches this many
/// entries, and again whenever it doubles from what the last compaction
/// left: amortised O(1) per push.
const COMPACT_MIN: usize = 4096;

/// A root-buffer entry: the header address of a cycle-capable object,
/// with a claim on its allocation (invariant 1). Only the address: while a
/// collection holds the object its word carries a visit number instead of
/// the type code (see `header`), so the collector reads the code from the
/// word when it takes the entry, not when the entry is made.
#[derive(Clone, Copy)]
pub(crate) struct Entry(pub(crate) NonNull<Header>);

// SAFETY: an address whose every use goes through the header's atomics
// (or the collector's hold); the object is `Send + Sync` (`Cc`'s bounds).
unsafe impl Send for Entry {}

impl Entry {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the entry's claim keeps the allocation (header included,
        // invariant 1).
        unsafe { self.0.as_ref() }
    }
}

struct Shard {
    entries: Vec<Entry>,
    /// The length at which the next push compacts first.
    compact_at: usize,
    /// [`RootBuffer::detached`] when this shard was last compacted (or
    /// found with nothing to compact).
    detached_seen: usize,
}

pub(crate) struct RootBuffer {
    shards: [CachePadded<Mutex<Shard>>; SHARDS],
    /// Entries in the shards (the rings count theirs: see [`pending`]).
    in_shards: AtomicUsize,
    /// Entries detached by `get_mut` so far (see [`compact`]).
    detached: AtomicUsize,
    next_shard: AtomicUsize,
}

macro_rules! shard_init {
    () => {
        CachePadded::new(Mutex::new(Shard {
            entries: Vec::new(),
            compact_at: COMPACT_MIN,
            detached_seen: 0,
        }))
    };
}

#[cfg(not(arcycle_loom))]
static BUFFER: RootBuffer = RootBuffer {
    shards: [const { shard_init!() }; SHARDS],
    in_shards: AtomicUsize::new(0),
    detached: AtomicUsize::new(0),
    next_shard: AtomicUsize::new(0),
};

#[cfg(arcycle_loom)]
loom::lazy_static! {
    static ref BUFFER: RootBuffer = RootBuffer {
        shards: std::array::from_fn(|_| shard_init!()),
        in_shards: AtomicUsize::new(0),
        detached: AtomicUsize::new(0),
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
/// Returns the strong word before the decrement. `s` is a word read from
/// the header before (by [`decrement_fast`]): the loop starts from it
/// instead of loading the word again.
#[inline(always)]
pub(crate) fn decrement(header: NonNull<Header>, s: u64) -> u64 {
    match decrement_inner(header, false, s) {
        Some(old) => old,
        // SAFETY: `refuse_last == false` always decrements.
        None => unsafe { std::hint::unreachable_unchecked() },
    }
}

/// The common cases of [`decrement`], small enough to inline into every
/// drop, each one CAS exactly as the loop in [`decrement_inner`] would do
/// it, on a word that is neither held, frozen nor dead: others keep the
/// object alive and an entry already stands for it, or this is the last
/// handle ([`Fast::Last`]), or others keep it alive and no entry stands for
/// it (the CAS sets `ACTIVE`, and the caller pushes the entry:
/// [`Fast::Buffered`]). Otherwise, or if the CAS lost a race, nothing
/// changed ([`Fast::Slow`]) and the caller goes the whole way from the
/// word read last. Drops on a held or frozen word (which happen only
/// while a collection runs) and on a dead one take the loop.
///
/// Written for out of cache, where every operation between the load and
/// the CAS costs: the common case (a buffered object others keep alive)
/// is one mask test, the CAS writes `s - DEC` (no `TOUCHED` to move, as
/// the word is not frozen), and the buffering CAS is here too, not behind
/// a call and the loop's tests. Measured on a 2-core AMD EPYC guest,
/// 2026-12-04, clone+drop of a random node among a million (collection
/// off, every node buffered): 44–54 ns with the two-way test and `TOUCHED`
/// arithmetic this replaced, 30–33 ns now (`Arc` 13 ns; a standalone loop
/// over random words gives the same order: 24 against 35–41 ns). With a
/// `collect()` before each round, so that a round's first touch of each
/// node buffers it: 76–92 ns with the buffering CAS behind the call,
/// 55–64 ns here.
#[inline(always)]
pub(crate) fn decrement_fast(h: &Header) -> Fast {
    let s = h.strong.load(Relaxed);
    let flags = s & (ACTIVE | HELD | FROZEN | DEAD);
    // Release, as in `decrement_inner`, in each CAS below.
    // `Header::decremented(s)` is `s - DEC` in both: the word is not
    // frozen.
    if flags == ACTIVE || flags == 0 && count(s) == 1 {
        match h.strong.compare_exchange_weak(s, s - DEC, Release, Relaxed) {
            Ok(_) if count(s) == 1 => Fast::Last(s),
            Ok(_) => Fast::Done,
            Err(x) => Fast::Slow(x),
        }
    } else if flags == 0 {
        // Others keep the object alive and no entry stands for it: the
        // CAS of `decrement_and_buffer`, here, next to its load (out of
        // line, the steps before it cost a random node's first touch
        // more than the push does).
        match h
            .strong
            .compare_exchange_weak(s, (s - DEC) | ACTIVE, Release, Relaxed)
        {
            Ok(_) => Fast::Buffered,
            Err(x) => Fast::Slow(x),
        }
    } else {
        Fast::Slow(s)
    }
}

/// What [`decrement_fast`] did.
pub(crate) enum Fast {
    /// Decremented; others keep the object alive.
    Done,
    /// Decremented and set `ACTIVE`: the caller must push the entry
    /// ([`buffered`]).
    Buffered,
    /// Decremented the last handle away; the word before.
    Last(u64),
    /// Nothing changed: the caller goes the whole way ([`decrement`]) from
    /// this word, the one read last.
    Slow(u64),
}

/// The rest of a drop whose CAS set `ACTIVE` (the claim of the entry
/// pushed here, invariant 1): push the entry; and since a program that
/// only drops must still get its cycles collected, the buffering path can
/// start a collection.
#[inline(never)]
pub(crate) fn buffered(header: NonNull<Header>) {
    push(Entry(header));
    collector::maybe_auto_collect_after_drop();
}

/// [`decrement`], except that with `refuse_last` it changes nothing and
/// returns `None` when this is the last handle (for `Cc::into_inner`).
/// `s` is any word read from the header before: a stale one only makes
/// the first CAS fail and the loop go round with the current word.
///
/// A last drop never lands while the collector holds the object (invariant
/// 5): it waits for the hold to be released, so that the value is destroyed
/// by this thread, before this drop returns, exactly as with `Arc`.
#[inline(always)]
pub(crate) fn decrement_inner(
    header: NonNull<Header>,
    refuse_last: bool,
    mut s: u64,
) -> Option<u64> {
    // SAFETY: the caller's handle keeps the allocation alive.
    let h = unsafe { header.as_ref() };
    loop {
        // Bits the decrement also clears: see the dead case below.
        let mut claim = 0;
        if count(s) == 1 {
            if refuse_last {
                return None;
            }
            if s & (HELD | DEAD) == HELD && collector::may_wait_for_hold() {
                s = wait_for_release(h);
                continue;
            }
            if s & (DEAD | VALUE_PENDING) == DEAD | VALUE_PENDING && claims_dead_value() {
                // The last handle to a member of the garbage this thread's
                // collection is destroying, whose value is still to drop:
                // the same CAS claims the value (see `collector::commit`),
                // so `cc::drop::held_last_drop` drops it with no second RMW.
                claim = VALUE_PENDING;
            }
        } else if wants_entry(s) {
            // Others keep the object alive and no entry stands for it.
            match decrement_and_buffer(header, s) {
                Ok(old) => return Some(old),
                Err(x) => {
                    s = x;
                    continue;
                }
            }
        }
        // Release, as in `Arc::drop`: our uses of the value happen-before
        // its destruction by whoever drops last (who fences Acquire).
        match h
            .strong
            .compare_exchange_weak(s, Header::decremented(s) & !claim, Release, Relaxed)
        {
            Ok(_) => return Some(s),
            Err(x) => s = x,
        }
    }
}

/// Whether a last drop of a dead member on this thread claims its value
/// in the decrement itself: only on the thread whose collection is
/// destroying the garbage, and not while unwinding (then the collector's
/// loop drops it under `catch_unwind`). `cc::drop::held_last_drop` asks the
/// same question of the same thread right after, so both agree.
#[inline]
pub(crate) fn claims_dead_value() -> bool {
    collector::owns_collector() && !std::thread::panicking()
}

/// Wait while the collector holds an object whose last handle we are about
/// to drop. The collector lets go of every live object at the end of its
/// locked phases and never waits for a mutator in between, so this ends.
#[cold]
#[inline(never)]
fn wait_for_release(h: &Header) -> u64 {
    let wait = crate::sync::Wait::new();
    loop {
        wait.pause();
        let s = h.strong.load(Relaxed);
        if count(s) != 1 || s & (HELD | DEAD) != HELD {
            return s;
        }
    }
}

/// Whether a drop seeing `s` must buffer: others keep the object alive, no
/// entry stands for it, and it is not dead.
#[inline(always)]
fn wants_entry(s: u64) -> bool {
    count(s) > 1 && s & (ACTIVE | DEAD) == 0
}

/// Decrement and buffer, in one CAS that sets `ACTIVE`; `Err` with the
/// current word if the object no longer wants an entry (the caller goes on
/// with a plain decrement). No RMW on the weak word: the entry's claim on
/// the allocation is the `ACTIVE` this CAS sets (invariant 1).
#[cold]
#[inline(never)]
fn decrement_and_buffer(header: NonNull<Header>, mut s: u64) -> Result<u64, u64> {
    // SAFETY: the caller's handle keeps the allocation alive.
    let h = unsafe { header.as_ref() };
    loop {
        if !wants_entry(s) {
            return Err(s);
        }
        // Release: as for any decrement.
        match h
            .strong
            .compare_exchange_weak(s, Header::decremented(s) | ACTIVE, Release, Relaxed)
        {
            Ok(_) => {
                buffered(header);
                return Ok(s);
            }
            Err(x) => s = x,
        }
    }
}

/// Give an entry that `get_mut` just detached (cleared `ACTIVE` on, with
/// the only handle in hand) an `ENTRY` unit of its own: its claim was
/// `ACTIVE` (invariant 1). Relaxed: the caller's handle keeps the
/// allocation, and the unit's release synchronises by itself
/// (`release_entry`). A collection may take the stale entry, and give its
/// unit back, before this adds it: the strong side's unit keeps the word
/// above zero meanwhile.
pub(crate) fn claim_for_detached(h: &Header) {
    h.weak.fetch_add(ENTRY, Relaxed);
}

/// Set `ACTIVE` on an object the collector holds, and say whether it was
/// clear: then no entry stands for the object and the caller's must (a
/// drop since the hold may have buffered it already, setting `ACTIVE`
/// itself). Relaxed: every decrement is ordered against this RMW on the
/// same word (invariant 2), and the entry reaches the next collector
/// through a shard's lock, the ring's Release/Acquire hand-off, or the
/// held-over list's mutex.
pub(crate) fn reactivate(h: &Header) -> bool {
    h.strong.fetch_or(ACTIVE, Relaxed) & ACTIVE == 0
}

/// Buffer `node` again after a collection gave up on it. The collector
/// holds the object, so it is alive; the new entry's claim is the
/// `ACTIVE` set here (invariant 1).
pub(crate) fn rebuffer(header: NonNull<Header>) {
    // SAFETY: the collector's hold keeps the allocation.
    if reactivate(unsafe { header.as_ref() }) {
        push(Entry(header));
    }
}

/// Push an entry whose claim has been taken (`ACTIVE` set for it): on this
/// thread's ring; if the ring is full, after moving what it holds to a
/// shard in one step (`ring::spill`); on a shard if the ring is out of
/// reach.
pub(crate) fn push(entry: Entry) {
    let b = buffer();
    let in_ring = ring::push(entry).or_else(|| {
        if ring::spill(|entries| push_to_shard(b, entries)) {
            ring::push(entry)
        } else {
            None
        }
    });
    let in_ring = in_ring.unwrap_or_else(|| {
        push_to_shard(b, &mut std::iter::once(entry));
        0
    });
    // What this thread can see without a read-modify-write: the shards'
    // count and its own ring's. Other threads' rings are left out (each
    // holds fewer than `ring::CAP`), so a program buffering on T threads
    // may reach `threshold + T * ring::CAP` roots before the trigger; a
    // global counter written by every push cost a locked RMW per buffered
    // root, on a cache line all threads shared.
    collector::note_pending(pending_in_shards() + in_ring);
}

/// Append `entries` to this thread's shard, compacting it first when it
/// has doubled and `get_mut` has detached an entry since its last
/// compaction (see [`compact`]).
fn push_to_shard(b: &RootBuffer, entries: &mut dyn Iterator<Item = Entry>) {
    let mut shard = lock(&b.shards[shard_index()]);
    if shard.entries.len() >= shard.compact_at {
        // Relaxed: a detach this load misses is seen by the next doubling;
        // until then it stales at most the entries already counted.
        let detached = b.detached.load(Relaxed);
        if detached != shard.detached_seen {
            let dropped = compact(&mut shard.entries);
            b.in_shards.fetch_sub(dropped, Relaxed);
            shard.detached_seen = detached;
        }
        shard.compact_at = COMPACT_MIN.max(2 * shard.entries.len());
    }
    let before = shard.entries.len();
    shard.entries.extend(entries);
    // Under the shard lock, which the drain's subtraction also holds.
    b.in_shards.fetch_add(shard.entries.len() - before, Relaxed);
}

/// `get_mut` detached an entry (cleared `ACTIVE` on a buffered object):
/// the shards' next doubling compacts them (see [`compact`]). Cold: only a
/// `get_mut` on an object that was buffered and is unique again pays it.
pub(crate) fn note_detached() {
    // Relaxed: a count, read only to decide whether to compact.
    buffer().detached.fetch_add(1, Relaxed);
}

/// Drop the stale entries of a shard — those whose object no longer has
/// `ACTIVE` (detached by `get_mut`), and all but one of those standing for
/// the same object (a detach, then a drop that buffered it again: both
/// entries see the new `ACTIVE`) — and return how many went.
///
/// Sound because every setting of `ACTIVE` pushes a fresh entry of its own,
/// and this entry was pushed (under this shard's lock, which we hold) after
/// the `ACTIVE` it stood for was set: reading `ACTIVE` clear here means it
/// was cleared since, so no entry is needed for that setting any more. An
/// object with `ACTIVE` set needs one entry, anywhere: the one kept here
/// does (a collection releases any other it finds, see `collector::discover`).
/// Each entry dropped gives back an `ENTRY` unit, which it has (invariant
/// 1): with `ACTIVE` clear every entry of the object is covered by a unit,
/// and with `ACTIVE` set all but one are, and one is kept.
///
/// Run only when `get_mut` detached something since the shard's last
/// compaction ([`note_detached`]): only a detach makes an entry stale
/// between two drains. `ACTIVE` is cleared by a detach or by a
/// collection's root hold, and a hold only goes through an entry the
/// collection drained; an entry pushed since then set `ACTIVE` anew and
/// stands for it. So with no detach, every entry pushed since the last
/// compaction stands for its object, and the shard holds at most one
/// entry per buffered object beyond what that compaction left: it doubles
/// only with the program's buffered objects, not with a loop (a loop of
/// clone, drop and `get_mut` detaches, and is compacted down to one entry
/// even with automatic collection off). Guarded by
/// `tests/reliability.rs::detached_entries_are_compacted_without_collections`.
fn compact(entries: &mut Vec<Entry>) -> usize {
    let before = entries.len();
    let mut standing = std::collections::HashSet::new();
    entries.retain(|&n| {
        // Relaxed: see above; the entry's claim keeps the header alive
        // (and that of a duplicate's object: the kept entry's claim).
        let keep = n.header().strong.load(Relaxed) & ACTIVE != 0 && standing.insert(n.0);
        if !keep {
            release_entry(n.0);
        }
        keep
    });
    before - entries.len()
}

/// Take every entry pushed so far, appended to `all` (empty: the
/// collector's kept table, see `collector::scratch`), oldest first for
/// each thread: what its ring spilled (in its shard), then its ring.
///
/// The rings are drained *before* the shards (a spill between the two
/// would otherwise put entries pushed before this drain where it no longer
/// looks, see `ring`), but their entries go after the shards' in the list,
/// so that a thread's roots reach the collector in the order it buffered
/// them: the members of one structure stay together (see
/// `discover::Graph::components`).
pub(crate) fn drain(mut all: Vec<Entry>) -> Vec<Entry> {
    let b = buffer();
    let mut newest = Vec::new();
    ring::drain_into(&mut newest);
    for shard in &b.shards {
        let mut shard = lock(shard);
        b.in_shards.fetch_sub(shard.entries.len(), Relaxed);
        if all.is_empty() && all.capacity() < shard.entries.len() {
            // Take the shard's vector as it is (no copy); the shard
            // starts a new one.
            all = std::mem::take(&mut shard.entries);
        } else {
            all.append(&mut shard.entries);
        }
        shard.compact_at = COMPACT_MIN;
    }
    all.append(&mut newest);
    all
}

/// Every shard's lock, in index order, for `fork` (see
/// `collector::worker`): held across it so that the child does not inherit
/// a shard locked by another thread.
#[cfg(all(unix, not(miri), not(arcycle_loom)))]
pub(crate) fn lock_all_for_fork() -> Vec<Box<dyn std::any::Any>> {
    let mut held = vec![ring::lock_for_fork()];
    held.extend(
        buffer()
            .shards
            .iter()
            .map(|s| Box::new(lock(s)) as Box<dyn std::any::Any>),
    );
    held
}

/// The entries in the shards: what a push sees of other threads' entries
/// (see [`push`]), without the registry lock.
pub(crate) fn pending_in_shards() -> usize {
    // Under loom, an RMW that adds nothing: it reads the newest count. A
    // Relaxed load may read any count not yet overwritten for this thread,
    // and loom explores each of them, multiplying every model that
    // buffers by the counts a push could see, though no step of the
    // protocol depends on them.
    #[cfg(arcycle_loom)]
    return buffer().in_shards.fetch_add(0, Relaxed);
    // Relaxed: an estimate.
    #[cfg(not(arcycle_loom))]
    buffer().in_shards.load(Relaxed)
}

/// Entries pushed and not yet drained: the shards' count plus every
/// ring's, counted under the registry lock (for `stats()`, the collector
/// thread, `enable()` and collection callbacks; neither a push nor a
/// collection's own trigger check pays for it).
pub(crate) fn pending() -> usize {
    // Relaxed: see `ring::held`.
    pending_in_shards() + ring::held()
}

/// Give back an `ENTRY` unit — an entry's that `ACTIVE` does not stand
/// for (invariant 1), or the quarantine's — freeing the allocation if
/// that was the last claim.
pub(crate) fn release_entry(header: NonNull<Header>) {
    // SAFETY: the claim keeps the allocation until it is given back.
    if unsafe { header.as_ref() }.release_entry_unit() {
        // SAFETY: the weak word is zero: nothing refers to the allocation,
        // and its strong side is gone, so no collection holds it.
        unsafe { crate::erased::dealloc_tracked(header) }
    }
}

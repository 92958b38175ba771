//! The count words: the 16-byte header in front of every value.
//!
//! # The strong word
//!
//! ```text
//!  63          38 37                6    5    4     3     2      1       0
//! +--------------+-------------------+------+----+------+----+-------+--------+
//! | strong count |     type code     |ACTIVE|DEAD|FROZEN|HELD|TOUCHED|SURVIVOR|
//! +--------------+-------------------+------+----+------+----+-------+--------+
//! ```
//!
//! * `clone` adds [`INC`] (one in the count field), `drop` subtracts one.
//!   A drop only happens on a count of at least one, so it never borrows
//!   out of the count field, and a clone never carries out of the word
//!   (counts above [`MAX_COUNT`] abort). Neither ever changes a flag bit or
//!   the type code by arithmetic.
//! * The count is the word's **top** field so that a clone's slow cases
//!   show in the flags of its `lock add`, as `Arc`'s do: a count of 2^25 or
//!   more sets the sign bit, and nothing else sends a clone off its fast
//!   path (`FROZEN` needs no test, see `TOUCHED`). A branch on the flags
//!   does not wait for the old word in a register, so out of cache the CPU
//!   overlaps the next objects' misses with this one (clone+drop of a
//!   random leaf among a million, the report's spread row, three
//!   interleaved runs on a 2-core AMD EPYC guest: 1.28–1.30× `Arc` with the
//!   count in the low bits and a test of the returned word, 1.04–1.09×
//!   with this layout).
//! * The **type code** is written once, when the allocation is made, and
//!   never changes: zero for a *leaf* (a value that cannot hold a `Cc`,
//!   handled only through its typed handles, exactly like `Arc`), otherwise
//!   the compressed address of the allocation's type-erased operations
//!   (see `erased`). It lives here because it is the one place every party
//!   (a `Drop` without a `Trace` bound, the collector holding a
//!   type-erased edge) can read without knowing the type, and because the
//!   word has room: the collector's verification needs no modification
//!   counter (`TOUCHED` is exact, see `collector::validate`).
//! * **While the collector holds the object** (`HELD` set, `DEAD` clear)
//!   the code's bits carry something else: the object's visit number in
//!   the running collection, plus one (so never zero: "tracked" still reads
//!   as a non-zero code). The collector sets it in the very CAS that takes
//!   the hold, keeps the real code in its own table, and puts it back in
//!   the RMW that lets go (or in the store that marks the object `DEAD`),
//!   so a visited child is recognised from its own word, with no address
//!   table. Only one collection holds objects at a time, so
//!   `HELD & !DEAD` means "visited by the collection running now". Code
//!   that decodes a word must therefore not do it while the word reads
//!   `HELD & !DEAD`: a last drop never lands then except on the collecting
//!   thread (which leaves the value to the collector and decodes nothing),
//!   entries and traced edges carry only the header address, and the
//!   debugging tools wait for the hold to go (see `Node::settled`).
//! * The count field is 26 bits; more than [`MAX_COUNT`] (about 2^26)
//!   handles to one object abort, as `Arc` does past `isize::MAX`. Clones
//!   that leave a count of 2^25 or more take the slow path that checks.
//! * [`SURVIVOR`] says the object has survived a collection: it is *old*.
//!   Only the collector sets it, in the RMW that lets go of a survivor, and
//!   nothing clears it (a new allocation starts without it). A *young*
//!   (partial) collection treats old objects as externally held: it
//!   neither takes them as roots nor traces into them (see
//!   `collector::generations`). Since only the collector writes it, and
//!   only one collection runs at a time, the collector reads it without
//!   racing anyone.
//! * `HELD` is the collector's hold: the value may not be destroyed while it
//!   is set. It is a flag rather than a count so that `strong_count` (and
//!   everything built on it) never sees the collector. A last drop that
//!   finds `HELD` waits for the collector to let go and then destroys the
//!   value itself, on its own thread, as `Arc` would (see `buffer`); only a
//!   drop made by the collecting thread itself leaves it to the collector.
//! * `FROZEN` is set by the collector on the candidates of a garbage set
//!   while it verifies them; `Weak::upgrade` waits while it is set.
//! * `TOUCHED` is the verification's witness that a frozen word was used:
//!   every drop that lands on a word with `FROZEN` set leaves `TOUCHED`
//!   behind, in the same CAS, branch-free. A clone leaves nothing and needs
//!   not: it raises the count, which a verifying CAS sees, and only a drop
//!   can lower it again — which, landing while the word is frozen, leaves
//!   `TOUCHED` (`Weak::upgrade`, the other way up, waits while `FROZEN`
//!   is set; every other decrement is a drop's CAS or waits for `FROZEN`
//!   to go). Arithmetic never clears it and only the collector does, so a
//!   verifying CAS that finds the frozen word exactly as it froze it proves
//!   that *no* clone or drop came in between, however long the window was
//!   (see `collector::validate`). Outside a freeze window it means
//!   nothing.
//! * `DEAD` marks a value destroyed (or being destroyed) by the collector.
//!   A `Cc` to a dead allocation may still exist — a destructor may have
//!   cloned one — and it keeps the allocation, never the value, alive.
//!   In a dead word the `TOUCHED` bit reads `VALUE_PENDING`: the value is
//!   still to be dropped, by whoever clears the bit first.
//! * `ACTIVE` says that a root-buffer entry which the collector has not yet
//!   processed stands for this object (Bacon & Rajan's "buffered" flag).
//!   It lives in the strong word, not the weak one, because a drop must
//!   learn *atomically with its decrement* whether the object is still
//!   buffered: a drop of a cycle-capable object decrements with a CAS that
//!   expects the `ACTIVE` it read, so the collector's clearing of `ACTIVE`
//!   and every decrement that relied on it are ordered on one word (see
//!   `buffer`). While the count is above zero, `ACTIVE` is also that
//!   entry's claim on the allocation; once the count is zero (or the
//!   object dead) nothing clears it any more, and whoever gives back the
//!   strong side turns it into an entry unit of the weak word.
//! * Nothing in the word counts modifications: a CAS that expects a word it
//!   read earlier can succeed across a round trip (a clone and a drop, or
//!   `HELD` set and cleared by a collection), so such a CAS must not assume
//!   that nothing happened in between — it synchronises by its ordering
//!   instead (see `Cc::get_mut`), and the collector's verification relies
//!   on `TOUCHED`, which no round trip can undo.
//!
//! # The weak word
//!
//! ```text
//!   63                           32   31       30        29          0
//! +--------------------------------+------+----------+--------------+
//! |  root-buffer entries           |LOCKED|REGISTERED|  weak count  |
//! +--------------------------------+------+----------+--------------+
//! ```
//!
//! * The weak count is the number of `Weak`s plus one held collectively by
//!   the strong side, exactly as in `std::sync::Arc`. The strong side's one
//!   is released by whoever brings the strong word to "count 0 and not
//!   `HELD`" (after the value is gone).
//! * `LOCKED` is `get_mut`'s lock against a concurrent `downgrade`, as in
//!   `Arc::is_unique`.
//! * [`REGISTERED`]: the object has (or had) finalizers or weak-collection
//!   entries in `crate::weakref`'s registry. It is also a claim on the
//!   allocation (the word cannot reach zero while it is set), so the
//!   registry's record, keyed by address, is removed before the address
//!   can be reused. Its death path runs only when the strong side's
//!   release finds it in the value its `fetch_sub` returns: an object
//!   without registrations pays no extra atomic operation.
//! * The entry field counts root-buffer entries' claims: every entry owns
//!   one unit of it except the one that `ACTIVE` stands for, whose claim is
//!   the strong side itself until the strong side is given back, when it
//!   becomes a unit (see `buffer`, invariant 1: no RMW here when a drop
//!   buffers). The collector's quarantine list owns units of its own.
//! * The allocation is freed by whoever brings the whole word to zero.
//!
//! Guarded by the loom models in `loom-tests/` (every one of them goes
//! through these words) and `tests/overflow.rs` (the count limits).

use crate::sync::AtomicU64;
use std::sync::atomic::Ordering::*;

/// Where the strong count starts: it is the word's top field (see above).
pub(crate) const COUNT_SHIFT: u32 = 38;
/// Strong count field, in place.
pub(crate) const COUNT_MASK: u64 = !0 << COUNT_SHIFT;
/// The object survived a collection (it is *old*); set by the collector
/// only, never cleared.
pub(crate) const SURVIVOR: u64 = 1 << 0;
/// A drop landed on this word while it was `FROZEN`.
pub(crate) const TOUCHED: u64 = 1 << 1;
/// The collector holds the value alive.
pub(crate) const HELD: u64 = 1 << 2;
/// The object is a verified-so-far member of a garbage set.
pub(crate) const FROZEN: u64 = 1 << 3;
/// The collector destroyed (or is destroying) the value.
pub(crate) const DEAD: u64 = 1 << 4;
/// In a `DEAD` word: the value has not been dropped yet. Whoever clears it
/// (one RMW) drops it: the collector's destroy loop, or — on the collecting
/// thread — the drop of the member's last handle by a peer's destructor,
/// inline as with `Arc`. Shares its bit with `TOUCHED`, which means nothing
/// once a word is dead.
pub(crate) const VALUE_PENDING: u64 = TOUCHED;
/// An unprocessed root-buffer entry stands for this object.
pub(crate) const ACTIVE: u64 = 1 << 5;
/// Where the type code starts.
pub(crate) const CODE_SHIFT: u32 = 6;
/// The type code's field, in place.
pub(crate) const CODE_MASK: u64 = (u32::MAX as u64) << CODE_SHIFT;
/// What `clone` adds: one more handle.
pub(crate) const INC: u64 = 1 << COUNT_SHIFT;
/// What `drop` subtracts: one handle fewer.
pub(crate) const DEC: u64 = INC;
/// Counts above this abort, like `Arc`'s `MAX_REFCOUNT`. The distance to
/// the field's end (2^20) is the number of threads that would have to race
/// past the check at once to carry out of the word.
pub(crate) const MAX_COUNT: u64 = (1 << (64 - COUNT_SHIFT)) - 1 - (1 << 20);

// The fields tile the word: flags, code, count.
const _: () = assert!(CODE_SHIFT + 32 == COUNT_SHIFT && ACTIVE << 1 == 1 << CODE_SHIFT);
// `Header::decremented` moves FROZEN onto TOUCHED with a shift.
const _: () = assert!(TOUCHED == FROZEN >> 2);

/// Weak count field (the `Weak`s plus the strong side's one). Bounded by
/// [`MAX_COUNT`] (checked by `downgrade` and `Weak::clone`), far below the
/// field's 2^30.
pub(crate) const WEAK_MASK: u64 = (1 << 30) - 1;
/// The object has (or had) registrations in `crate::weakref`'s registry
/// (finalizers, weak-collection entries). Set only under the registry
/// shard lock of the object's address, by a thread that holds a strong
/// handle; cleared only by the death path (`crate::weakref`), after the
/// record is out of the registry. While set it counts as a claim on the
/// allocation: no release of weak units sees the word reach zero.
pub(crate) const REGISTERED: u64 = 1 << 30;
/// `get_mut`'s lock against `downgrade`.
pub(crate) const WEAK_LOCKED: u64 = 1 << 31;
/// One root-buffer entry's claim on the allocation.
pub(crate) const ENTRY: u64 = 1 << 32;

/// The strong count of a strong word.
#[inline(always)]
pub(crate) const fn count(word: u64) -> u64 {
    word >> COUNT_SHIFT
}

/// A strong word's count field holding `n`.
#[inline(always)]
pub(crate) const fn count_field(n: u64) -> u64 {
    n << COUNT_SHIFT
}

/// The type code of a strong word: zero for a leaf.
#[inline(always)]
pub(crate) const fn type_code(word: u64) -> u32 {
    (word >> CODE_SHIFT) as u32
}

/// `code` in its place in a strong word.
#[inline(always)]
pub(crate) const fn code_field(code: u32) -> u64 {
    (code as u64) << CODE_SHIFT
}

/// `word` with `code` in place of its type code.
#[inline(always)]
pub(crate) const fn with_code(word: u64, code: u32) -> u64 {
    (word & !CODE_MASK) | code_field(code)
}

/// Whether a strong word belongs to an object the running collection
/// holds: then its code field is a visit number, not a type code.
#[inline(always)]
pub(crate) const fn held_by_collection(word: u64) -> bool {
    word & (HELD | DEAD) == HELD
}

/// The header in front of every value. 16 bytes, like `Arc`'s.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) strong: AtomicU64,
    pub(crate) weak: AtomicU64,
}

impl Header {
    /// A header with these counts and this type code (zero for a leaf).
    pub(crate) fn new(strong: u64, weak: u64, code: u32) -> Self {
        #[cfg(arcycle_loom)]
        LOOM_LIVE.with(|n| n.set(n.get() + 1));
        Header {
            strong: AtomicU64::new(count_field(strong) | code_field(code)),
            weak: AtomicU64::new(weak),
        }
    }

    /// Add one strong handle. One RMW and a branch on its flags, like
    /// `Arc::clone`: the count is the word's top field, so the only slow
    /// case (a count of 2^25 or more, which may need the overflow abort) is
    /// the sign of the word the add leaves, and the compiler emits `lock
    /// add` and a sign branch, not `lock xadd` and a test of the old word
    /// (out of cache, that test made the CPU wait for the locked add before
    /// going on to the next objects). A clone on a frozen word needs no
    /// witness of its own (see `TOUCHED`).
    #[inline(always)]
    pub(crate) fn inc_strong(&self) {
        // Relaxed, as in `Arc::clone`: a new handle can only be made from an
        // existing one, whose existence already keeps the object alive, and
        // passing the new handle to another thread synchronises by itself.
        let old = self.strong.fetch_add(INC, Relaxed);
        // Written on the new word, and `old` used nowhere else, so that it
        // compiles to the sign flag of the add (a second use of `old`
        // makes it `lock xadd` and a test of the register again).
        if (old.wrapping_add(INC) as i64) < 0 {
            clone_slow(&self.strong);
        }
    }

    /// The strong word after a drop that replaced `s`: one handle fewer,
    /// and `TOUCHED` if the word was frozen.
    #[inline(always)]
    pub(crate) const fn decremented(s: u64) -> u64 {
        // FROZEN is bit 3, TOUCHED bit 1: branch-free. A drop only
        // happens on a count of at least one: no borrow.
        (s - DEC) | ((s & FROZEN) >> 2)
    }

    /// Give back the strong side's unit of the weak count (after the value
    /// is gone). Returns true when the caller must free the allocation.
    ///
    /// If the object has registrations (`REGISTERED` in the word the
    /// `fetch_sub` returned: no extra atomic operation otherwise), this is
    /// its death: `crate::weakref::on_death` takes its record out of the
    /// registry, frees the allocation if nothing else holds it, and then
    /// runs its weak-collection notifications and finalizers (a finalizer's
    /// panic is resumed from here, after the allocation is dealt with).
    ///
    /// For a leaf, or an object never buffered (`Cc::new_cyclic`'s unbuilt
    /// one). A cycle-capable object's strong side goes through
    /// [`release_tracked_strong_side`](Self::release_tracked_strong_side),
    /// which also settles an entry that `ACTIVE` stands for.
    #[inline]
    pub(crate) fn release_strong_side(&self) -> bool {
        // The word reads exactly the caller's unit: no `Weak`, no entry,
        // no registration, no lock — and none can appear, because every
        // party that adds to this word already owns a claim on it (a
        // `Weak`, or a strong handle, and the strong count is zero for
        // good). So the unit is not given back at all: the allocation is
        // the caller's. Acquire: the RMW that left the word there (a
        // `Weak`'s drop, an entry's release) was Release, so every use by
        // those parties happens-before the free, as the fence below gives
        // the slow path. A value that was not the latest cannot read that
        // either: every unit still held was added by a party whose handle,
        // or whose own claim, our last decrement was ordered after. This
        // saves `Arc`'s second RMW on every free of an object nobody ever
        // downgraded.
        if self.weak.load(Acquire) == 1 {
            return true;
        }
        // Release: as in `release_weak_units`.
        let old = self.weak.fetch_sub(1, Release);
        self.after_strong_side(old, old.wrapping_sub(1))
    }

    /// Give back one `ENTRY` unit (an entry's, or the quarantine's).
    /// Returns true when the caller must free the allocation.
    ///
    /// Has [`release_strong_side`](Self::release_strong_side)'s fast path,
    /// for an entry: the common end of an object buffered and then freed
    /// by counting.
    #[inline]
    pub(crate) fn release_entry_unit(&self) -> bool {
        // The word reads exactly this unit: the strong side is gone (and
        // handed over, if `ACTIVE` stood: while that is pending the strong
        // side's unit is still in the low half, so the word cannot read
        // this), and no `Weak`, no other entry, no registration remains.
        // No party can add to the word any more (each would need a handle
        // or a claim of its own), so the allocation is ours without an
        // RMW. Acquire: as in `release_strong_side`.
        self.weak.load(Acquire) == ENTRY || self.release_weak_units(ENTRY)
    }

    /// Give back a cycle-capable object's strong side (after the value is
    /// gone, or by the collector for a dead one). Returns true when the
    /// caller must free the allocation.
    ///
    /// If the word still carries `ACTIVE`, an entry stands for the object
    /// and its claim on the allocation was the strong side itself (see
    /// `buffer`, invariant 1): the strong side's unit becomes that entry's
    /// `ENTRY` unit, in one RMW that adds `ENTRY - 1`, and the collector
    /// gives it back when it takes the entry. Nothing clears `ACTIVE` on a
    /// word whose count is zero or that is `DEAD` (a root hold requires a
    /// live object, `get_mut` a handle), so the bit read here is the one
    /// the entry was pushed for. The collector may have released that
    /// entry's unit already — before this adds it — leaving the entry
    /// field one below zero for that moment; the word cannot reach zero
    /// then, because the strong side's unit is still in it, and whichever
    /// of the two RMWs comes second sees the true total.
    #[inline]
    pub(crate) fn release_tracked_strong_side(&self) -> bool {
        // Relaxed: the caller made (or, for the collector's dead members,
        // is ordered after) the last change to this word's `ACTIVE`: its
        // decrement to zero, the collector's `DEAD` store or its release
        // of the hold; nothing changes the bit afterwards (see above).
        // loom-tests teeth: the broken build gives the strong side back as
        // a leaf's, leaving the entry that `ACTIVE` stands for unclaimed.
        let s = self.strong.load(Relaxed);
        // An old object's value is gone: the collector's estimate of the
        // old heap goes down by one (`collector::generations`).
        if s & SURVIVOR != 0 {
            crate::collector::generations::note_old_freed();
        }
        if cfg!(arcycle_broken_handover) || s & ACTIVE == 0 {
            return self.release_strong_side();
        }
        self.strong_side_to_entry()
    }

    /// The `ACTIVE` case of
    /// [`release_tracked_strong_side`](Self::release_tracked_strong_side):
    /// not cold, it is the last drop of every object buffered since the
    /// last collection.
    #[inline]
    fn strong_side_to_entry(&self) -> bool {
        // Release: as in `release_weak_units`. The sum wraps only back
        // from the collector's early release (see above).
        let change = ENTRY - 1;
        let old = self.weak.fetch_add(change, Release);
        self.after_strong_side(old, old.wrapping_add(change))
    }

    /// The end of a strong side's release: `old` and `new` are the weak
    /// word before and after its RMW.
    #[inline]
    fn after_strong_side(&self, old: u64, new: u64) -> bool {
        if new == 0 {
            acquire_fence(&self.weak);
            true
        } else if old & REGISTERED != 0 {
            // SAFETY: REGISTERED is still set, so it keeps the allocation
            // (header included) alive until `on_death` clears it.
            unsafe { crate::weakref::on_death(self) };
            false
        } else {
            false
        }
    }

    /// loom-tests: an unsynchronised access to both words just before the
    /// allocation is freed, so that loom reports any use of them that does
    /// not happen-before the free.
    #[cfg(arcycle_loom)]
    pub(crate) fn loom_free(&mut self) {
        LOOM_LIVE.with(|n| n.set(n.get() - 1));
        self.strong.with_mut(|_| ());
        self.weak.with_mut(|_| ());
    }

    /// Subtract `units` from the weak word; true when it reached zero.
    #[inline]
    pub(crate) fn release_weak_units(&self, units: u64) -> bool {
        // Release, so that every use of the allocation by this party
        // happens-before its freeing; the party that brings the word to zero
        // then fences Acquire to see everyone else's uses (as `Arc`'s `Weak`
        // drop does).
        let old = self.weak.fetch_sub(units, Release);
        if old == units {
            acquire_fence(&self.weak);
            true
        } else {
            false
        }
    }
}

// loom-tests: allocations made and not yet freed, so that a model can
// assert that an execution gave back every allocation it made. A std
// thread-local, outside loom's view: loom runs a model's threads one at
// a time on the test's own OS thread, while libtest runs other models on
// other OS threads at once.
#[cfg(arcycle_loom)]
std::thread_local! {
    static LOOM_LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// loom-tests: allocations made on this OS thread and not yet freed
/// (see `LOOM_LIVE`).
#[cfg(arcycle_loom)]
#[doc(hidden)]
pub fn __loom_live_allocations() -> usize {
    LOOM_LIVE.with(std::cell::Cell::get)
}

/// The Acquire half of a Release-decrement hand-off.
///
/// ThreadSanitizer does not model standalone fences, so under `cfg(tsan)`
/// this is an Acquire load of the same word instead, as `std`'s `Arc` does.
#[inline(always)]
pub(crate) fn acquire_fence(word: &AtomicU64) {
    #[cfg(tsan)]
    {
        let _ = word.load(Acquire);
    }
    #[cfg(not(tsan))]
    {
        let _ = word;
        crate::sync::fence(Acquire);
    }
}

/// A clone that left a count of 2^25 or more: abort past [`MAX_COUNT`].
///
/// It reads the word again rather than being handed the one the add
/// returned (see `inc_strong`). The count read may differ from what the add
/// left, lower by drops since; either way the count can pass [`MAX_COUNT`]
/// only by the clones added and not yet checked, one per thread, far from
/// the field's end.
#[cold]
#[inline(never)]
fn clone_slow(strong: &AtomicU64) {
    // Relaxed: only the count is read, on the word just added to.
    if count(strong.load(Relaxed)) > MAX_COUNT {
        abort_count_overflow();
    }
}

#[cold]
#[inline(never)]
pub(crate) fn abort_count_overflow() -> ! {
    // Like `Arc`: overflowing the count would let a value be freed while
    // handles exist. The program is already degenerate (2^26 handles to one
    // object); abort rather than unwind, since unwinding may drop handles.
    crate::report::report(
        crate::report::ReportKind::CountOverflow,
        "reference count overflow (more than 2^26 handles to one object); aborting",
    );
    std::process::abort()
}

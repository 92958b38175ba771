//! The design: how the collector stays sound while every other thread
//! runs. Nothing to call here; this module only documents.
//!
//! The code mirrors the algorithm, one file per part, each opening with
//! the invariants it keeps and the loom model or test that guards them:
//! the count words (`header.rs`), the root buffer (`buffer/`), the
//! collector's phases (`collector/discover.rs`, `trial.rs`,
//! `validate.rs`, `commit.rs`), the collector thread, its pacing and
//! callbacks (`collector/worker.rs`, `pace.rs`, `callbacks.rs`),
//! destruction (`destroy.rs`), the `Trace` machinery (`trace.rs`), type
//! erasure (`erased.rs`) and the handles (`cc/`, `weak.rs`).
//!
//! # How it works
//!
//! **Counting** is `Arc`'s, with two hooks. Every allocation is a 16-byte
//! header (a strong word and a weak word; see the `header` module) followed
//! by the value. `clone` is one atomic add. `drop` is one atomic RMW; for a
//! type that may hold `Cc`s (see [`Trace::may_have_edges()`](crate::Trace::may_have_edges())) a drop that
//! leaves the count above zero also makes the object a *possible root*
//! (Bacon & Rajan): it sets the `ACTIVE` flag in the same CAS and pushes
//! the object's address to a ring of its thread's that the collector
//! drains (two plain stores, no lock; a full ring spills to a sharded
//! global buffer). The flag is also the entry's claim on the allocation:
//! no second RMW keeps the address valid until the collector takes it
//! (whoever gives back the strong side while the flag stands turns it
//! into a unit of the weak word). Types that hold no `Cc`
//! (declared with [`leaf!`](crate::leaf)) never buffer: their `Cc` *is* an `Arc`.
//!
//! **Type erasure.** `Cc<T>` has no `Trace` bound (like `Arc`), and the
//! collector holds edges whose types it cannot name, so what each needs is
//! recorded once, when the allocation is made (where `T: Trace` holds): in
//! a 32-bit field of the strong word, a *type code* — zero for a leaf,
//! otherwise the compressed address of a static table of the allocation's
//! type-erased operations (trace, drop, free) — and in bit 0 of every
//! handle's pointer, whether the object is tracked, so that a leaf's
//! `drop` needs no load before its single `fetch_sub`. A `Cc<dyn Trait>`
//! unsized from a `Cc<Concrete>` keeps the concrete type's table; an
//! unsized value whose concrete type was never known (a boxed `dyn`, a
//! slice of handles) stores its own fat pointer in front of the header.
//!
//! **Collection** ([`collect`](crate::collect), or automatic once [`threshold`](crate::threshold) roots,
//! or a [fraction](crate::set_heap_fraction) of the live heap if fewer, are
//! buffered) is synchronous trial deletion run by one thread while all
//! others run on, in four phases (`collector/`):
//!
//! 1. *Take roots and trace* — each visited object is *held* (a flag, not a
//!    count, so `strong_count` never sees the collector): its value cannot
//!    be destroyed until the collector lets go. Mutable fields are read
//!    under `try_lock` only. The CAS that takes the hold also writes the
//!    object's visit number over its type code (the collector keeps the
//!    code and puts it back when it lets go), so a child already visited
//!    is recognised from its own word: no address table.
//! 2. *Trial deletion* — propose the set `W` of objects whose counts are
//!    explained by edges from other visited objects and that nothing with
//!    an outside reference reaches. This is optimistic and may be stale.
//! 3. *Freeze and verify*, a batch of whole components of `W` at a time
//!    (one component, or small ones together up to 64 members) — re-trace
//!    it keeping every lock it takes (so no handle can move out of it), CAS
//!    each strong word from exactly the value read (count = internal edges:
//!    pass 1's count, when the re-trace finds every member's pass-1 edges
//!    unchanged) to the same value with `FROZEN`, then CAS every word again
//!    onto itself. A clone raises the count, every drop that lands on a
//!    frozen word leaves a sticky `TOUCHED` bit, and a frozen object cannot
//!    be upgraded to, so an unchanged word means nothing touched it —
//!    however long the window. Where every word is unchanged, there was one
//!    instant at which the batch had no handle from outside while its
//!    fields could not change: it was unreachable then and stays so. A
//!    member that changed is kept, with everything it reaches; the rest is
//!    freed, and nothing is lost. A component that lies within one batch of
//!    phase 1 (16 objects traced together: the 2-cycles and small rings
//!    whose roots were buffered together) is frozen and verified there,
//!    while phase 1 still holds the locks its trace took: no second trace
//!    (`collector/early.rs`).
//! 4. *Commit* — mark `W` dead, release `W`'s locks, let go of the
//!    survivors, then drop every value of `W`, and only then free their
//!    allocations. The collector's own lock is held to the end, so a
//!    concurrent `collect()` returns only after this garbage is gone; a
//!    destructor's own `collect()` runs nested on the same thread. The RMW
//!    that lets go of a survivor also marks it *old* (`SURVIVOR`).
//!
//! **Young collections** (`collector/generations.rs`; automatic ones unless
//! a full one is due, and [`collect_young`](crate::collect_young)) treat
//! old objects as externally held: an old root's entry is held over,
//! untouched, for the next full collection, an old child is neither held
//! nor traced, and a young root that survives is held over too (an old
//! member of a garbage cycle may be all that holds it). So their cost
//! follows the new objects, not the live heap, and nothing is lost: a
//! full collection ([`collect`](crate::collect), a quiet pass, or an
//! automatic one once the held-over entries reach the estimated old heap)
//! takes every held-over entry.
//!
//! **Atomic edges** (`AtomicCc`, `AtomicOptionCc`; `atomic.rs`) have no
//! lock to hold, so their trace *freezes* the slot instead: a tag bit in
//! the pointer word, set by CAS and cleared by the guard the tracer holds
//! until the batch's decision. Writers CAS against an unfrozen word,
//! so none lands inside the window (they wait for it: bounded, no user
//! code runs in it); readers ignore the tag and only add handles, which
//! raise counts the verification sees. Replaced handles are released through
//! crossbeam-epoch once no reader can still be turning them into a `Cc`.
//!
//! The collector never blocks while it holds a lock a mutator may want: it
//! only try-locks user locks, and a lock it cannot take marks that object
//! as in use. No mutator operation takes the collector's lock: a thread
//! that does not touch the objects being collected never waits for a
//! collection; one that does may briefly wait (a `Weak::upgrade` of an
//! object being verified, a `get_mut`, `try_unwrap` or last drop of an
//! object being traced). Only `collect()` itself waits for a collection in
//! progress. Automatic collections are triggered from `Cc::new` and from
//! drops that buffer a possible root; by default those only *signal* the
//! collector thread (`collector/worker.rs`: a flag, a `SeqCst` fence on
//! the cold path, park/unpark), which runs the collection while the
//! mutators go on. The thread also collects a small buffer after a quiet
//! period, so garbage below the threshold is freed eventually; it parks
//! with no deadline while the buffer is empty. An allocation that finds
//! the thread a whole threshold behind a running collection waits for it,
//! up to a limit (`collector/pace.rs`), so a program that makes garbage
//! faster than one thread frees it goes at the collector's speed instead of
//! piling garbage up; the limit bounds a wait on a collection that needs a
//! lock the waiting thread holds.
//!
//! # Orderings
//!
//! Every atomic operation carries a comment arguing its ordering, the way
//! `std`'s `Arc` does. In summary: `clone` is Relaxed; a decrement is
//! Release and the last one fences Acquire before destroying; the
//! collector's hold is taken with Acquire and released with AcqRel; the
//! freeze CAS is AcqRel and the verify loads Acquire, so when `W` is
//! destroyed every access by a thread that once held a handle to it
//! happens-before. Under `cfg(tsan)` the Acquire fences become Acquire
//! loads, which ThreadSanitizer understands.
//!
//! # What holds (and where it is proven)
//!
//! * No object is freed while a handle to it, or a borrow derived from one,
//!   exists.
//! * Every object whose last handle is gone is freed — acyclic garbage at
//!   once by the dropping thread, cyclic garbage by the next collection
//!   (the next full one, for a cycle through an old object).
//!   `collect()` returns only after a full pass over every possible root
//!   buffered before it was called, by any thread.
//! * A collection that aborts loses nothing and leaves every count as it
//!   was.
//! * `Weak::upgrade` never returns a handle to something being freed and
//!   never returns `None` for something that survives.
//! * No data race on any `T`: the collector reads a value only while it
//!   holds it, and its mutable parts only under their locks.
//! * Panics in user `Trace`/`Drop` code (and in guards and panic payloads)
//!   neither leave objects held nor corrupt the collector; the first
//!   reaches the caller of `collect()`.
//! * The last drop of a value destroys it on the dropping thread before
//!   `drop` returns — also when a collection is examining the object (the
//!   drop waits for the collector to let go; it never waits for a mutator).
//!
//! The loom models in `loom-tests/` check each race one at a time; the
//! tests in `tests/` check them at scale, with canaries and drop counters.
//!

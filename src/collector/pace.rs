//! Pacing: an allocation waits for a collector thread that fell behind.
//!
//! # What it guarantees
//!
//! In background mode the collector thread collects while the mutators run
//! on. A program that makes garbage faster than one thread frees it
//! (a thread that does little but build and drop small cycles does: the
//! collector pays several locked RMWs per freed object, the mutator a few
//! plain ones per allocation) would otherwise see the buffer, and the
//! garbage behind it, grow for as long as it keeps at it. So a thread that
//! *allocates* (`Cc::new` and the other constructors, never a drop) at a
//! moment when
//!
//! 1. a collection is running (on any thread), and
//! 2. at least a *trigger* of possible roots (the
//!    [threshold](crate::threshold), or less in a small heap: see
//!    [`set_heap_fraction`](crate::set_heap_fraction)) have piled up in the
//!    buffer's shards since that collection drained them,
//!
//! or when no collection is running but *two* triggers of roots have piled
//! up in the shards (the collector thread, signalled at the first, has not
//! started: measured on a 2-core KVM guest, a collector thread parked on
//! an idle vCPU sometimes took 3 ms to run, while the mutator buffered ten
//! triggers' worth; the benchmark report's live-heap case, 10,000 live
//! nodes, saw the waiting garbage peak at 41–238% of the heap over six
//! runs without this rule, 30–37% over three with it; since a collection
//! counts as running only from its drain, see [`Running`], the churning
//! thread overlaps the collector instead of waiting through it, and the
//! peak sits at the two-trigger bound, 39–51%),
//!
//! waits until a collection ends, for at most the [pace
//! limit](set_pace_limit) (20 ms by default); a wait for a collection not
//! yet started that times out gives that next collection up. While the
//! collector thread keeps up, nobody waits: a collection that ends before a
//! trigger of new roots piled up paces nothing. When it does not, the
//! mutators go at the collector's speed, and about two triggers of roots
//! wait at any time (the ones being collected and one trigger behind them,
//! plus what the threads' rings hold, see `buffer`) where inline mode keeps
//! about one.
//!
//! # Why the wait is bounded, and what a timeout costs
//!
//! The waiting thread may hold a lock that a destructor of the running
//! collection needs: that collection then waits for the thread, the thread
//! for it. The wait is timed, so the thread goes on after the limit, and a
//! timed-out wait marks the running collection *given up*: no allocation
//! waits for it again, so the program loses at most one limit per thread
//! and per collection that cannot finish while mutators are blocked. A lost
//! notification (there is none, below) would cost the same, never a
//! deadlock. Pacing never makes anything unsafe: it only delays an
//! allocation.
//!
//! A collection that is merely long times out the same way: the first one
//! to reach a big live graph traces all of it (every object is young until
//! a collection has seen it), and a full one traces the old heap. Waiting
//! one limit for it and then going on keeps the mutators' loss bounded;
//! the garbage piled up meanwhile is the next collection's, as without
//! pacing.
//!
//! Not paced: a drop (it may run in any destructor, under any lock), the
//! collector thread itself, a thread running a collection (a destructor's
//! `Cc::new` runs a nested collection instead, see `auto_collect`), inline
//! mode, and a program with automatic collection off.
//!
//! # No lost notification
//!
//! In [`Handshake`]: a waiter counts itself in `waiters`, then (`SeqCst`
//! fence) reads the number of collections that finished (`finished`,
//! raised when `run`'s [`Running`] guard drops, also by unwinding) under
//! `lock`, and waits on `ended` while it has not moved. A collection that
//! ends raises that number, then (`SeqCst` fence) reads `waiters`, and if
//! it is not zero takes `lock` and notifies. By the fences (the
//! store-buffering shape), either the waiter's read sees the new number
//! (it does not wait), or the ender sees the waiter: it then takes `lock`,
//! which it gets only while the waiter is outside its check — before it
//! (then the lock orders the raise before the waiter's read) or blocked in
//! `wait_timeout` (then the notification reaches it).
//!
//! Guarded by the loom model `pace_wait_vs_collection_end`, which runs
//! [`Handshake`] itself (with an untimed wait: loom has no timed one) and
//! has teeth: `scripts/loom-teeth.sh` builds `end` without its fence
//! (`--cfg arcycle_broken_pace`) and asserts that loom then finds the
//! waiter asleep for ever. Otherwise pacing is compiled out under loom
//! (nothing waits, nothing is counted: the other models see no access of
//! its), as background mode is off there. The policy is guarded by the
//! tests `pacing_waits_for_a_collector_that_fell_behind`,
//! `pacing_waits_for_a_collector_thread_that_has_not_started` and
//! `pacing_gives_up_on_a_collection_that_needs_the_waiter` in
//! `tests/gc_module.rs`.

use super::control;
use crate::sync::AtomicU64;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

/// The default pace limit (see [`set_pace_limit`]).
pub(crate) const DEFAULT_PACE_LIMIT_MS: u64 = 20;

/// Pacing's shared state, in the collector's `Control`.
pub(crate) struct Pace {
    /// The limit in nanoseconds; 0 turns pacing off.
    pub(crate) limit_ns: AtomicU64,
    /// Collections started; with the handshake's count of those finished
    /// (also by unwinding), "a collection is running" is `started !=
    /// finished`.
    #[cfg(not(arcycle_loom))]
    pub(crate) started: AtomicU64,
    /// The `started` count of the collection a wait gave up on (plus one;
    /// 0: none).
    #[cfg(not(arcycle_loom))]
    pub(crate) gave_up: AtomicU64,
    /// Waits started, waits that timed out, time waited (ns).
    pub(crate) waits: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) waited_ns: AtomicU64,
    #[cfg(not(arcycle_loom))]
    pub(crate) handshake: Handshake,
}

macro_rules! pace_init {
    () => {
        $crate::collector::pace::Pace {
            limit_ns: $crate::sync::AtomicU64::new(
                $crate::collector::pace::DEFAULT_PACE_LIMIT_MS * 1_000_000,
            ),
            #[cfg(not(arcycle_loom))]
            started: $crate::sync::AtomicU64::new(0),
            #[cfg(not(arcycle_loom))]
            gave_up: $crate::sync::AtomicU64::new(0),
            waits: $crate::sync::AtomicU64::new(0),
            timeouts: $crate::sync::AtomicU64::new(0),
            waited_ns: $crate::sync::AtomicU64::new(0),
            #[cfg(not(arcycle_loom))]
            handshake: $crate::collector::pace::Handshake::new(),
        }
    };
}
pub(crate) use pace_init;

/// The wait for a collection's end and its wake-up (module docs, "No lost
/// notification"), on its own so that the loom model
/// `pace_wait_vs_collection_end` checks this very code; under loom the
/// wait has no limit, so a lost wake-up is a deadlock loom reports.
#[doc(hidden)]
pub struct Handshake {
    /// Collections finished.
    finished: AtomicU64,
    /// Threads between announcing a wait and leaving it.
    waiters: AtomicU64,
    lock: crate::sync::Mutex<()>,
    ended: crate::sync::Condvar,
}

impl Handshake {
    #[cfg(not(arcycle_loom))]
    pub(crate) const fn new() -> Handshake {
        Handshake {
            finished: AtomicU64::new(0),
            waiters: AtomicU64::new(0),
            lock: crate::sync::Mutex::new(()),
            ended: crate::sync::Condvar::new(),
        }
    }

    /// A fresh handshake, for the loom model.
    #[cfg(arcycle_loom)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Handshake {
        Handshake {
            finished: AtomicU64::new(0),
            waiters: AtomicU64::new(0),
            lock: crate::sync::Mutex::new(()),
            ended: crate::sync::Condvar::new(),
        }
    }

    /// Collections finished so far.
    pub fn finished(&self) -> u64 {
        // Relaxed: a hint for `maybe_wait`; `wait` reads it again under
        // the lock.
        self.finished.load(Relaxed)
    }

    /// A collection ended: count it, and wake the waiters.
    pub fn end(&self) {
        // Relaxed, then the SeqCst fence: the ender's half of the
        // store-buffering argument (module docs): this raise before the
        // read of `waiters`, against a waiter's count before its read of
        // `finished`.
        self.finished.fetch_add(1, Relaxed);
        // loom-tests teeth: the broken build drops the ender's fence.
        #[cfg(not(arcycle_broken_pace))]
        crate::sync::fence(SeqCst);
        // Relaxed: by the fence above.
        if self.waiters.load(Relaxed) != 0 {
            let _guard = crate::sync::lock(&self.lock);
            self.ended.notify_all();
        }
    }

    /// Wait until the finished count moves from `seen`, for at most
    /// `limit` (under loom, without a limit). Returns whether it moved.
    pub fn wait(&self, seen: u64, limit: Duration) -> bool {
        #[cfg(not(arcycle_loom))]
        let t0 = std::time::Instant::now();
        #[cfg(arcycle_loom)]
        let _ = limit;
        // Relaxed, then the SeqCst fence: the waiter's half of the
        // store-buffering argument (module docs).
        self.waiters.fetch_add(1, Relaxed);
        crate::sync::fence(SeqCst);
        let mut guard = crate::sync::lock(&self.lock);
        #[cfg_attr(arcycle_loom, allow(unused_mut))]
        let mut moved = true;
        // Relaxed: ordered by the fences or the lock (module docs).
        while self.finished.load(Relaxed) == seen {
            #[cfg(not(arcycle_loom))]
            {
                let left = match limit.checked_sub(t0.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => {
                        moved = false;
                        break;
                    }
                };
                guard = match self.ended.wait_timeout(guard, left) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
            #[cfg(arcycle_loom)]
            {
                guard = self.ended.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        }
        drop(guard);
        // Relaxed: the count is only read after the fence above, by `end`.
        self.waiters.fetch_sub(1, Relaxed);
        moved
    }
}

fn pace() -> &'static Pace {
    &control().pace
}

/// Set the longest time an allocation waits for a collector thread that
/// fell behind (default 20 ms); `None` turns pacing off.
///
/// In background mode, a thread that allocates (`Cc::new` and the other
/// constructors, never a drop) while a collection runs and a whole
/// trigger of new possible roots (the [threshold](crate::set_threshold),
/// or less in a small heap: see [`set_heap_fraction`](crate::set_heap_fraction))
/// has piled up behind it waits for that collection to end (and, while
/// no collection runs, with two triggers piled up, for the one the
/// collector thread was signalled for and has not started yet): a program
/// that makes garbage faster than the collector thread frees it then runs
/// at the collector's speed, and the garbage waiting for a collection
/// stays within about two triggers' worth of roots (inline mode keeps
/// about one), instead of growing for as long as the program keeps making
/// it.
/// While the collector keeps up nobody waits. Pacing does not know which
/// thread makes the garbage: every thread that allocates while the
/// collector is that far behind waits (as any allocating thread may run
/// one of Python's collections), while threads that only clone, drop and
/// read never do.
///
/// A wait that reaches the limit gives that collection up: no allocation
/// waits for it again. So a thread that allocates while holding a lock
/// that a destructor of the running collection needs is delayed once, by
/// the limit, and never deadlocks. A collection longer than the limit (the
/// first to reach a big live graph, a full one over a big old heap) is
/// given up the same way, so in a big heap the bound is looser: a longer
/// limit keeps it tighter there, at the price of longer stalls.
/// [`stats`](crate::stats) counts the waits
/// ([`Stats::paced`](crate::Stats::paced)), their total time and the ones
/// that timed out. A limit below a nanosecond is kept as one nanosecond
/// (`Some(Duration::ZERO)` is not "off": use `None`).
///
/// ```
/// use std::time::Duration;
/// arcycle::set_pace_limit(Some(Duration::from_millis(50)));
/// assert_eq!(arcycle::pace_limit(), Some(Duration::from_millis(50)));
/// arcycle::set_pace_limit(Some(Duration::ZERO));
/// assert_eq!(arcycle::pace_limit(), Some(Duration::from_nanos(1)));
/// arcycle::set_pace_limit(None); // allocations never wait
/// assert_eq!(arcycle::pace_limit(), None);
/// # arcycle::set_pace_limit(Some(Duration::from_millis(20)));
/// ```
pub fn set_pace_limit(limit: Option<Duration>) {
    // A limit that rounds to 0 ns would read as "off": keep it at 1 ns.
    let ns = limit.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
    // Relaxed: a setting; an allocation that reads the old one waits (or
    // does not) once more under it.
    pace().limit_ns.store(ns, Relaxed);
}

/// The pace limit (see [`set_pace_limit`]); `None` when pacing is off.
///
/// ```
/// assert!(arcycle::pace_limit().is_some()); // 20 ms by default
/// ```
pub fn pace_limit() -> Option<Duration> {
    match pace().limit_ns.load(Relaxed) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// A running collection, from its drain of the root buffer to its end (or
/// its unwinding): its drop wakes the allocations waiting for it.
///
/// It counts as *running* for pacing only from the drain
/// ([`Running::drained`]): a rule that compares the roots in the shards
/// with a trigger must not see the roots this collection is about to take
/// as piled up *behind* it. Counted from `run`'s start, the allocation
/// that had just signalled the collector thread (the one thread making the
/// garbage, typically) found it started, the shards still full, and waited
/// for the whole collection: the mutator and the collector took turns
/// instead of overlapping (the report's live-heap case at 10,000 live
/// nodes: the churning thread waited through every collection; see the
/// issue-9 note).
pub(crate) struct Running {
    /// The drain was counted in `started`; the drop ends it.
    #[cfg(not(arcycle_loom))]
    counted: bool,
}

impl Running {
    pub(crate) fn enter() -> Running {
        Running {
            #[cfg(not(arcycle_loom))]
            counted: false,
        }
    }

    /// The collection has taken the buffer's entries: from now on it runs
    /// for pacing.
    pub(crate) fn drained(&mut self) {
        // Relaxed: read by allocations as a hint ("one is running"); a
        // stale read paces one allocation more or less.
        #[cfg(not(arcycle_loom))]
        if !self.counted {
            pace().started.fetch_add(1, Relaxed);
            self.counted = true;
        }
    }
}

/// Under loom nothing waits, so nothing is counted or woken: the models
/// see no access of pacing's.
impl Drop for Running {
    #[cfg(arcycle_loom)]
    fn drop(&mut self) {}

    #[cfg(not(arcycle_loom))]
    fn drop(&mut self) {
        // A collection that unwound before its drain was never counted:
        // `finished` stays equal to `started`.
        if self.counted {
            pace().handshake.end();
        }
    }
}

/// Called by an allocation that found the trigger set in background mode,
/// after it signalled the collector thread: wait if the collector is a
/// whole trigger behind, or has not started the collection it was signalled
/// for while two triggers piled up (module docs). `auto_collect` has
/// already turned away a thread that is collecting (in the locked phases,
/// or owning the collector lock); the collector thread is turned away here.
#[cfg(not(arcycle_loom))]
#[cold]
#[inline(never)]
pub(crate) fn maybe_wait() {
    let p = pace();
    // Relaxed, all of them: the conditions are hints; a stale one makes one
    // allocation wait (bounded) or not.
    let limit = p.limit_ns.load(Relaxed);
    if limit == 0 {
        return;
    }
    let started = p.started.load(Relaxed);
    let ended = p.handshake.finished();
    // The collection to wait for: the one running, or (none running) the
    // next one, which the collector thread was signalled for and has not
    // started; it is that late only with two triggers piled up.
    let (awaited, behind) = if started == ended {
        (started.wrapping_add(1), 2)
    } else {
        (started, 1)
    };
    if p.gave_up.load(Relaxed) == awaited.wrapping_add(1) {
        return;
    }
    if crate::buffer::pending_in_shards() < behind * super::settings::trigger()
        || super::worker::on_collector_thread()
    {
        return;
    }
    wait(p, ended, awaited, Duration::from_nanos(limit));
}

/// Under loom nothing waits (module docs).
#[cfg(arcycle_loom)]
pub(crate) fn maybe_wait() {}

/// Wait for collection number `awaited` (counted from 1 by `started`) to
/// end; a timeout gives it up.
#[cfg(not(arcycle_loom))]
fn wait(p: &Pace, ended: u64, awaited: u64, limit: Duration) {
    let t0 = std::time::Instant::now();
    // Relaxed: a counter (raised as the wait starts, so that a test can
    // see a thread waiting).
    p.waits.fetch_add(1, Relaxed);
    let timed_out = !p.handshake.wait(ended, limit);
    // Relaxed: counters and a hint.
    if timed_out {
        p.gave_up.store(awaited.wrapping_add(1), Relaxed);
        p.timeouts.fetch_add(1, Relaxed);
    }
    let waited = t0.elapsed().as_nanos().min(u64::MAX as u128) as u64;
    p.waited_ns.fetch_add(waited, Relaxed);
}

/// The pace lock, held across `fork` (see `worker::fork`), so that a child
/// never inherits it taken.
#[cfg(all(unix, not(miri), not(arcycle_loom)))]
pub(crate) fn lock_for_fork() -> crate::sync::MutexGuard<'static, ()> {
    crate::sync::lock(&pace().handshake.lock)
}

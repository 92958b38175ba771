//! The collector thread: where automatic collections run in background
//! mode (the default; see `crate::set_background`).
//!
//! A mutator that crosses the threshold does not collect: it *signals*
//! this thread, which runs the collection (destructors included) while the
//! mutator goes on. The thread is started lazily, by the first signal, and
//! named `arcycle-collector`; it parks whenever it has nothing to do.
//!
//! # Protocol: signal, park, and the quiet period
//!
//! Shared state (in `Worker`): `signal` ("look at the buffer"), `armed`
//! (the thread is timing a quiet period), `end_quiet` (a test asked to end
//! that period now), and the thread's handle.
//!
//! * **Waking** (`wake`, the mutator's cold path): `fence(SeqCst)`, then
//!   if `signal` is already set, return — the thread has been told and has
//!   not looked yet; else `swap` it to true and, if ours was the swap that
//!   set it, unpark the thread (starting it if there is none). A steady
//!   stream of triggers costs one fence and one load each, no lock.
//! * **Parking** (`wait`): `swap(signal, false)`; if it was set, the thread
//!   works; else it parks (indefinitely, or until its quiet deadline) and
//!   tries again. Park/unpark keep a token, so an unpark that comes before
//!   the park is not lost.
//! * **No lost signal.** The waker writes what the thread must see (the
//!   trigger, the buffer count) *then* reads `signal`; the thread clears
//!   `signal` *then* reads the trigger and the count. That is the
//!   store-buffering shape, which no acquire/release pairing can fix: both
//!   sides put a `SeqCst` fence between their write and their read. Then
//!   either the waker's read sees the thread's clear (so it sets the flag
//!   and unparks: the thread looks again), or the thread's reads see the
//!   waker's writes. The same argument, on `armed` and the buffer count,
//!   covers `note_first_root` against `settle`. Both fences sit on cold
//!   paths (a trigger, the first root after the buffer was empty).
//! * **Catching up.** After a collection of its own, the thread runs the
//!   next one at once when a quarter of a trigger ([`CATCH_UP`]) piled up
//!   in the shards meanwhile, rather than parking until a mutator signals
//!   a whole trigger: a mutator that buffers that fast keeps the thread
//!   busy instead of taking turns with it. Guarded by
//!   `collector_thread_catches_up_without_a_new_trigger`
//!   (`tests/gc_module.rs`).
//! * **The quiet period.** A threshold alone would leave a small garbage
//!   cycle buffered for ever in a program that stops dropping. So the
//!   first root pushed into an empty buffer (pending count 0 → 1) also
//!   wakes the thread, unless it is already timing a period (`armed`): it
//!   arms a timer of [`crate::quiet_period`] and, if no collection ran in
//!   that time, collects the buffer itself (a *quiet pass*). A quiet pass
//!   that freed nothing doubles the next period (up to 64 times), one that
//!   freed something resets it. With an empty buffer the thread parks
//!   with no deadline: no polling while nothing is buffered. Tests end a
//!   period deterministically with `crate::debug::end_quiet_period`.
//!   "Buffered" includes the entries young collections held over for a
//!   full one (`generations`): a quiet pass is full, so an idle program
//!   gets them collected; a collection that holds entries over tells the
//!   thread the way a first root does (`note_first_root`, after it stored
//!   the held-over count).
//!
//! # Exit, fork, thread-local teardown
//!
//! * The thread is detached and never joined: a process exits while it is
//!   parked (or collecting) without waiting for it, and garbage not yet
//!   collected at exit is not freed — as `Arc` leaks cycles.
//! * `fork` (Unix): when the thread is first started, `pthread_atfork`
//!   handlers are registered that take the collector lock (waiting for a
//!   collection in progress, as `collect()` does) and the crate's other
//!   locks before the fork, and release them in both processes after it,
//!   so the child never inherits one taken. The child has no collector
//!   thread; its first signal starts a new one.
//! * A thread in thread-local teardown may signal (only statics are used);
//!   if the collector thread cannot be started there (or anywhere: a
//!   failed spawn), that automatic collection runs inline instead.
//!
//! # Under loom
//!
//! Loom cannot run a detached, free-running thread, so under
//! `cfg(arcycle_loom)` background mode is off by default and nothing is
//! ever spawned. A model that turns it on provides the thread itself: a
//! loom thread that calls `arcycle::__loom_collector_round()` (one park and
//! one round of threshold collections). The loom model
//! `trigger_wakes_collector_thread` checks the signal/park handshake that
//! way (a lost signal is a deadlock, which loom reports). The quiet
//! period's handshake is checked one side at a time: the model
//! `first_root_vs_quiet_disarm` runs `settle`'s disarm (`disarm`, through
//! `arcycle::__loom_quiet_disarm()`) against a first push, and
//! `scripts/loom-teeth.sh` asserts that without `disarm`'s fence
//! (`--cfg arcycle_broken_quiet`) loom finds the root no period covers.

use super::{control, run, Kind, Owner};
use crate::sync::{fence, lock, park, AtomicBool, AtomicU64, Mutex, Thread};
use std::sync::atomic::Ordering::*;
#[cfg(not(arcycle_loom))]
use std::time::{Duration, Instant};

/// The default quiet period (see [`crate::set_quiet_period`]).
pub(crate) const DEFAULT_QUIET_MS: u64 = 1000;

/// The longest multiple of the quiet period a thread waits after passes
/// that freed nothing.
#[cfg(not(arcycle_loom))]
const MAX_BACKOFF: u32 = 64;

pub(crate) struct Worker {
    /// "Look at the buffer": set by `wake`, cleared by `wait`.
    pub(crate) signal: AtomicBool,
    /// The thread is timing a quiet period (written by the thread only).
    pub(crate) armed: AtomicBool,
    /// `debug::end_quiet_period` asked for a quiet pass now.
    pub(crate) end_quiet: AtomicBool,
    /// The thread is parked with no deadline (for `debug::collector_thread`).
    pub(crate) parked: AtomicBool,
    pub(crate) quiet_ns: AtomicU64,
    /// Rounds the thread has worked (each wake-up that was not spurious).
    pub(crate) wakeups: AtomicU64,
    pub(crate) quiet_passes: AtomicU64,
    /// Tests: the thread starts no threshold collection while this is set
    /// (`debug::__hold_collector_thread`).
    pub(crate) held: AtomicBool,
    /// The thread, once started.
    pub(crate) slot: Mutex<Option<Thread>>,
}

macro_rules! worker_init {
    () => {
        $crate::collector::worker::Worker {
            signal: $crate::sync::AtomicBool::new(false),
            armed: $crate::sync::AtomicBool::new(false),
            end_quiet: $crate::sync::AtomicBool::new(false),
            parked: $crate::sync::AtomicBool::new(false),
            quiet_ns: $crate::sync::AtomicU64::new(
                $crate::collector::worker::DEFAULT_QUIET_MS * 1_000_000,
            ),
            wakeups: $crate::sync::AtomicU64::new(0),
            quiet_passes: $crate::sync::AtomicU64::new(0),
            held: $crate::sync::AtomicBool::new(false),
            slot: $crate::sync::Mutex::new(None),
        }
    };
}
pub(crate) use worker_init;

fn worker() -> &'static Worker {
    &control().worker
}

#[cfg(not(arcycle_loom))]
crate::sync::cc_thread_local! {
    /// Set on the collector thread, for the whole of its life.
    static ON_COLLECTOR_THREAD: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Whether this is the collector thread (which never waits for itself:
/// see `pace`).
#[cfg(not(arcycle_loom))]
pub(crate) fn on_collector_thread() -> bool {
    ON_COLLECTOR_THREAD
        .try_with(std::cell::Cell::get)
        .unwrap_or(false)
}

/// Tell the collector thread to look at the buffer (starting it if need
/// be). Returns false if it could not be started: the caller collects
/// inline instead.
#[cold]
#[inline(never)]
pub(crate) fn wake() -> bool {
    let w = worker();
    // SeqCst fence: the waker's half of the store-buffering argument (see
    // the module docs): our caller's writes (trigger, buffer count,
    // `end_quiet`) are ordered before this read of `signal`, against the
    // thread's clear of `signal` before its reads.
    fence(SeqCst);
    // Relaxed: told already, and not looked yet (the argument above).
    if w.signal.load(Relaxed) {
        return true;
    }
    // Relaxed: only the winner of the swap unparks; what the thread reads
    // is ordered by the fences, the roots by the shard mutexes.
    if w.signal.swap(true, Relaxed) {
        return true;
    }
    unpark_or_start()
}

/// The buffer went from empty to non-empty: unless the collector thread is
/// timing a quiet period already, wake it to start one.
#[cold]
#[inline(never)]
pub(crate) fn note_first_root() {
    let w = worker();
    // SeqCst fence: our push (the count's 0 -> 1) is ordered before this
    // read of `armed`, against `settle`'s clear of `armed` before its read
    // of the count (store buffering, see the module docs).
    fence(SeqCst);
    // Relaxed: by the argument above.
    if !w.armed.load(Relaxed) {
        // A failed start only loses the quiet pass; the threshold path
        // still collects inline.
        let _ = wake();
    }
}

#[cfg(not(arcycle_loom))]
fn unpark_or_start() -> bool {
    let w = worker();
    let mut slot = lock(&w.slot);
    #[cfg(all(unix, not(miri)))]
    if fork::FORKED.swap(false, Relaxed) {
        // A forked child: the thread of the handle does not exist here.
        *slot = None;
    }
    if slot.is_none() {
        // Spawning may fail (resources) or panic (during thread-local
        // teardown, say); then this collection runs inline.
        let started = std::panic::catch_unwind(|| {
            crate::sync::spawn_detached("arcycle-collector", main_loop)
        });
        match started {
            Ok(Ok(thread)) => {
                *slot = Some(thread);
                #[cfg(all(unix, not(miri)))]
                fork::register();
            }
            Ok(Err(_)) => {
                // Relaxed: nobody waits on this thread; other wakers that
                // saw `signal` set rely on a collection that our caller
                // now runs inline.
                w.signal.store(false, Relaxed);
                return false;
            }
            Err(payload) => {
                super::drop_payload(payload);
                w.signal.store(false, Relaxed);
                return false;
            }
        }
    }
    if let Some(t) = slot.as_ref() {
        t.unpark();
    }
    true
}

#[cfg(arcycle_loom)]
fn unpark_or_start() -> bool {
    // Under loom nothing is spawned: a model's own thread plays the
    // collector thread (`loom_round`); without one, the signal waits.
    if let Some(t) = lock(&worker().slot).as_ref() {
        t.unpark();
    }
    true
}

/// Park until signalled or until `deadline`.
fn wait(#[cfg(not(arcycle_loom))] deadline: Option<Instant>) {
    let w = worker();
    loop {
        // Relaxed, followed by the SeqCst fence below: the thread's half
        // of the store-buffering argument (module docs).
        if w.signal.swap(false, Relaxed) {
            break;
        }
        #[cfg(not(arcycle_loom))]
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                break;
            }
            crate::sync::park_timeout(d - now);
            continue;
        }
        // Relaxed: a statistic for `debug::collector_thread`.
        w.parked.store(true, Relaxed);
        if !w.signal.load(Relaxed) {
            park();
        }
        w.parked.store(false, Relaxed);
    }
    fence(SeqCst);
}

/// After a collection, the collector thread starts the next one at once
/// when this fraction of a trigger's roots piled up in the shards while it
/// ran, instead of parking until a whole trigger has: roots arriving that
/// fast mean a mutator making garbage about as fast as the thread frees it
/// (or faster), and a thread that waits for a whole trigger each time
/// idles while the garbage piles up. Measured on the report's live-heap
/// case (10,000 live nodes, one thread churning 2-cycles, 2-core AMD EPYC
/// guest): the thread was idle about a third of the time between
/// collections (see the issue-9 note). A mutator that buffers roots more
/// slowly than that leaves the thread parked until the trigger, as before.
const CATCH_UP: usize = 4;

/// Run automatic collections while the trigger is set, and (after one of
/// its own) while a [`CATCH_UP`] share of a trigger is pending.
fn threshold_collections() {
    let c = control();
    // Acquire: pairs with `hold`'s Release clear (a test's hand-off; the
    // unpark after it ends the park).
    #[cfg(not(arcycle_loom))]
    while worker().held.load(Acquire) {
        crate::sync::park();
    }
    // After a collection of its own, the thread goes on with the next one
    // as soon as a part of a trigger has piled up (see `CATCH_UP`).
    let mut collected = false;
    let due = |collected: bool| {
        // Relaxed: the trigger and the count are hints; the fence in
        // `wait` orders the waker's trigger before this read (module docs).
        c.trigger.load(Relaxed)
            || collected
                && crate::buffer::pending_in_shards()
                    >= (super::settings::trigger() / CATCH_UP).max(1)
    };
    while due(collected) && c.enabled.load(Relaxed) && c.background.load(Relaxed) {
        // The thread holds no lock of its own: it may wait for a
        // collection in progress elsewhere (which may have taken care of
        // the roots already).
        let _owner = Owner::new(lock(&c.collector));
        if due(collected) {
            run(Kind::Automatic, None);
            collected = true;
        }
    }
}

/// The thread's body: park, work, forever.
#[cfg(not(arcycle_loom))]
fn main_loop() {
    let _ = ON_COLLECTOR_THREAD.try_with(|on| on.set(true));
    let mut quiet = Quiet {
        armed: None,
        mult: 1,
    };
    loop {
        wait(quiet.deadline());
        // Relaxed: a statistic.
        worker().wakeups.fetch_add(1, Relaxed);
        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            threshold_collections();
            quiet.step();
        }));
        if let Err(payload) = worked {
            // `run` reports destructor panics itself and callbacks are
            // fenced, so this is a panic of the collector's own (a failed
            // allocation, say): report it; the thread goes on.
            super::report_panic(
                crate::report::ReportKind::PanicInAutomaticCollection,
                "the collector thread caught a panic",
                payload,
            );
        }
        quiet.settle();
    }
}

/// The quiet-period state, private to the collector thread.
#[cfg(not(arcycle_loom))]
struct Quiet {
    /// When the current period started, and the collection count then.
    armed: Option<(Instant, u64)>,
    /// The period is the quiet period times this.
    mult: u32,
}

#[cfg(not(arcycle_loom))]
impl Quiet {
    fn deadline(&self) -> Option<Instant> {
        let (at, _) = self.armed?;
        let period = Duration::from_nanos(worker().quiet_ns.load(Relaxed));
        // A period too long to represent waits for a signal only.
        at.checked_add(period.checked_mul(self.mult)?)
    }

    fn arm(&mut self) {
        // Relaxed: a count compared with itself later on this thread.
        self.armed = Some((Instant::now(), control().collections.load(Relaxed)));
    }

    /// Start, restart, or end (with a quiet pass) the quiet period.
    fn step(&mut self) {
        let c = control();
        let w = worker();
        // Relaxed: ordered by the fence in `wait` (module docs).
        let end_now = w.end_quiet.swap(false, Relaxed);
        if !c.enabled.load(Relaxed)
            || !c.background.load(Relaxed)
            || super::generations::pending_total() == 0
        {
            self.armed = None;
            return;
        }
        let due = match self.armed {
            _ if end_now => true,
            // A collection ran since the period started: it looked at the
            // buffer; what is there now gets a full period of its own.
            Some((_, seen)) if seen != c.collections.load(Relaxed) => {
                self.arm();
                false
            }
            Some(_) => self.deadline().is_some_and(|d| Instant::now() >= d),
            None => {
                self.arm();
                false
            }
        };
        if !due {
            return;
        }
        let freed = {
            let _owner = Owner::new(lock(&c.collector));
            if super::generations::pending_total() > 0 {
                Some(run(Kind::Quiet, None))
            } else {
                None
            }
        };
        if let Some(freed) = freed {
            w.quiet_passes.fetch_add(1, Relaxed);
            self.mult = if freed == 0 {
                (self.mult * 2).min(MAX_BACKOFF)
            } else {
                1
            };
        }
        self.armed = None;
        if super::generations::pending_total() > 0 {
            // Busy objects were buffered again: retry after a period.
            self.arm();
        }
    }

    /// Publish `armed`; when disarming, check once more for a root pushed
    /// by a thread that still saw us armed.
    fn settle(&mut self) {
        if self.armed.is_some() {
            // Relaxed: read by `note_first_root` (module docs).
            worker().armed.store(true, Relaxed);
            return;
        }
        if disarm() {
            self.arm();
        }
    }
}

/// Publish `armed = false`, then look at the buffer once more: a root
/// pushed by a thread that still saw the thread armed would otherwise wait
/// for no quiet period. Returns true (and publishes `armed` again) when
/// something is buffered: the caller times a new period.
pub(super) fn disarm() -> bool {
    let c = control();
    let w = worker();
    // Relaxed: read by `note_first_root` (module docs).
    w.armed.store(false, Relaxed);
    // SeqCst fence: our half of the store-buffering argument with
    // `note_first_root` (module docs). loom-tests teeth: the broken build
    // leaves it out.
    #[cfg(not(arcycle_broken_quiet))]
    fence(SeqCst);
    if super::generations::pending_total() > 0
        && c.enabled.load(Relaxed)
        && c.background.load(Relaxed)
    {
        w.armed.store(true, Relaxed);
        true
    } else {
        false
    }
}

/// Loom only: play the collector thread for one round in a model (see
/// "Under loom" above).
#[cfg(arcycle_loom)]
pub(crate) fn loom_round() {
    *lock(&worker().slot) = Some(crate::sync::current());
    wait();
    threshold_collections();
}

/// `debug::end_quiet_period`: end the current quiet period now.
pub(crate) fn end_quiet_period() {
    // Relaxed: ordered before the thread's read by the fences (module
    // docs): `wake` fences before it reads `signal`.
    worker().end_quiet.store(true, Relaxed);
    if control().background.load(Relaxed) {
        let _ = wake();
    }
}

/// What `debug::collector_thread` reports.
pub(crate) fn state() -> (bool, bool, u64, u64) {
    let w = worker();
    let started = lock(&w.slot).is_some();
    // A forked child's handle names the parent's thread.
    #[cfg(all(unix, not(miri), not(arcycle_loom)))]
    let started = started && !fork::FORKED.load(Relaxed);
    // Relaxed: statistics.
    (
        started,
        w.parked.load(Relaxed),
        w.wakeups.load(Relaxed),
        w.quiet_passes.load(Relaxed),
    )
}

/// `fork` on Unix: see "Exit, fork, thread-local teardown" above.
#[cfg(all(unix, not(miri), not(arcycle_loom)))]
mod fork {
    use super::{control, worker};
    use crate::sync::{lock, AtomicBool};
    use std::any::Any;
    use std::cell::RefCell;
    use std::panic::catch_unwind;
    use std::sync::atomic::Ordering::*;

    /// Set in a forked child: the collector thread's handle is stale.
    pub(super) static FORKED: AtomicBool = AtomicBool::new(false);
    static REGISTERED: AtomicBool = AtomicBool::new(false);

    crate::sync::cc_thread_local! {
        /// The locks `prepare` took, released after the fork.
        static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }

    /// Register the handlers, once per process (called with the worker
    /// slot locked, when the thread is first started).
    pub(super) fn register() {
        // Relaxed: only ever set once, under the slot lock.
        if REGISTERED.swap(true, Relaxed) {
            return;
        }
        // SAFETY: the three handlers are `extern "C"` functions that never
        // unwind (their bodies run under `catch_unwind`) and stay valid for
        // the life of the process.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
        }
    }

    /// Before `fork`: take the collector lock (unless this thread runs the
    /// collection that forks, from a destructor or callback), then every
    /// other lock of the crate, in the crate's lock order.
    extern "C" fn prepare() {
        let _ = catch_unwind(|| {
            let c = control();
            let mut held: Vec<Box<dyn Any>> = Vec::new();
            if !super::super::owns_collector() {
                held.push(Box::new(lock(&c.collector)));
            }
            held.extend(crate::buffer::lock_all_for_fork());
            held.push(Box::new(lock(&worker().slot)));
            held.push(Box::new(super::super::pace::lock_for_fork()));
            held.push(Box::new(c.callbacks.lock_for_fork()));
            held.push(crate::report::lock_for_fork());
            let _ = HELD.try_with(|h| *h.borrow_mut() = held);
        });
    }

    fn release() {
        let _ = catch_unwind(|| {
            let held = HELD.try_with(|h| std::mem::take(&mut *h.borrow_mut()));
            // Unlock in reverse order of locking.
            if let Ok(mut held) = held {
                while let Some(guard) = held.pop() {
                    drop(guard);
                }
            }
        });
    }

    extern "C" fn parent() {
        release();
    }

    /// In the child: every lock released, no collector thread.
    extern "C" fn child() {
        release();
        let w = worker();
        // Relaxed: the child has one thread.
        FORKED.store(true, Relaxed);
        w.signal.store(false, Relaxed);
        w.armed.store(false, Relaxed);
        w.parked.store(false, Relaxed);
    }
}

/// Tests: keep the collector thread from starting threshold collections
/// (`hold`), or let it go on. A held thread that was signalled parks
/// before its collection, as a thread the scheduler has not run yet would
/// sit before it.
#[cfg(not(arcycle_loom))]
pub(crate) fn hold(on: bool) {
    let w = worker();
    // Release: see `threshold_collections`.
    w.held.store(on, Release);
    if !on {
        if let Some(t) = lock(&w.slot).as_ref() {
            t.unpark();
        }
    }
}

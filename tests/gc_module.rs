//! The gc module (issue 11): the collector thread, collection callbacks,
//! the `debug` helpers and (feature `census`) the census.
//!
//! Run the census part with
//! `cargo test -p arcycle --features census --test gc_module`.
//!
//! Every test holds `common::serial()` and restores the collector's
//! settings with `Settings::save()`. No test sleeps and none passes or
//! fails on timing: threads meet on channels and atomics, and where a test
//! waits for the collector thread it waits for an event (a destructor's
//! message, a callback's) with [`WATCHDOG`] as a bound that turns a hang
//! into a failure.

mod common;

use arcycle::debug::{self, Reason, TraceError, TraceTest};
use arcycle::{collect, Cc, CollectEvent, CollectInfo, Trace, Tracer, Weak};
use common::{serial, Probe, Settings, Tally};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for the collector thread before it fails (a
/// bound against hangs, never a pass/fail criterion on speed).
const WATCHDOG: Duration = Duration::from_secs(120);

/// A graph node whose destructor can run a hook.
#[derive(Trace)]
struct Obj {
    probe: Probe,
    edges: Mutex<Vec<Cc<Obj>>>,
    #[trace(skip)]
    on_drop: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        let hook = self.on_drop.get_mut().map(Option::take).unwrap_or(None);
        if let Some(hook) = hook {
            hook();
        }
    }
}

fn obj(tally: &'static Tally) -> Cc<Obj> {
    Cc::new(Obj {
        probe: Probe::new(tally),
        edges: Mutex::new(Vec::new()),
        on_drop: Mutex::new(None),
    })
}

fn link(from: &Cc<Obj>, to: &Cc<Obj>) {
    from.edges.lock().unwrap().push(to.clone());
}

/// A garbage 2-cycle whose first member runs `hook` when destroyed.
fn garbage_pair(tally: &'static Tally, hook: impl FnOnce() + Send + 'static) {
    let a = obj(tally);
    let b = obj(tally);
    *a.on_drop.lock().unwrap() = Some(Box::new(hook));
    link(&a, &b);
    link(&b, &a);
}

/// A garbage 2-cycle that sends on `tx` when destroyed; returns the
/// receiver.
fn signalling_pair(tally: &'static Tally) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    garbage_pair(tally, move || {
        let _ = tx.send(());
    });
    rx
}

/// Spin (yielding) until `cond` holds; fail after [`WATCHDOG`].
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "watchdog: {what} did not happen within {WATCHDOG:?}"
        );
        thread::yield_now();
    }
}

/// Background mode, automatic collection on, an empty buffer, and the
/// collector thread started.
fn background_ready(tally: &'static Tally) {
    arcycle::enable();
    arcycle::set_background(true);
    arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD);
    collect();
    if !debug::collector_thread().started {
        arcycle::set_quiet_period(Duration::from_secs(3600));
        let rx = signalling_pair(tally);
        debug::end_quiet_period();
        rx.recv_timeout(WATCHDOG)
            .expect("the collector thread started and freed a cycle");
    }
    assert!(debug::collector_thread().started);
}

/// An event and the name of the thread that collected.
type Event = (CollectEvent, Option<String>);

/// Records every event a callback sees, with the collecting thread.
struct Recorded {
    events: Arc<Mutex<Vec<Event>>>,
    id: arcycle::CallbackId,
}

impl Recorded {
    fn start() -> Recorded {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let id = arcycle::add_callback(move |e| {
            let name = thread::current().name().map(str::to_owned);
            sink.lock().unwrap().push((*e, name));
        });
        Recorded { events, id }
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        arcycle::remove_callback(self.id);
    }
}

// ------------------------------------------------------- the collector thread

#[test]
fn automatic_collections_run_on_the_collector_thread() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    let (tx, rx) = mpsc::channel();
    let id = arcycle::add_callback(move |e| {
        if let CollectEvent::Stop(info) = e {
            if info.automatic && !info.quiet {
                let name = thread::current().name().map(str::to_owned);
                let _ = tx.send((name, *info));
            }
        }
    });
    arcycle::set_threshold(16);
    // Cross the threshold from this thread: it only signals.
    for _ in 0..32 {
        garbage_pair(&T, || {});
    }
    let (name, info) = rx
        .recv_timeout(WATCHDOG)
        .expect("an automatic collection ran");
    arcycle::remove_callback(id);
    assert_eq!(name.as_deref(), Some("arcycle-collector"));
    assert!(info.automatic && !info.nested);
    collect();
    T.assert_clean();
}

#[test]
fn inline_mode_collects_on_the_thread_that_crosses_the_threshold() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::enable();
    collect();
    arcycle::set_background(false);
    assert!(!arcycle::is_background());
    let rec = Recorded::start();
    arcycle::set_threshold(4);
    let before = arcycle::stats();
    for _ in 0..4 {
        garbage_pair(&T, || {});
    }
    // Crossing happened inside those drops, on this thread, synchronously.
    let after = arcycle::stats();
    assert!(
        after.automatic > before.automatic,
        "no inline automatic collection"
    );
    let events = rec.take();
    let stop = events
        .iter()
        .find(|(e, _)| matches!(e, CollectEvent::Stop(i) if i.automatic))
        .expect("a Stop event of the automatic collection");
    assert_eq!(stop.1, thread::current().name().map(str::to_owned));

    // Back to background: the next crossing is the collector thread's.
    arcycle::set_background(true);
    assert!(arcycle::is_background());
    arcycle::set_quiet_period(Duration::from_secs(3600));
    let n = arcycle::stats().automatic;
    for _ in 0..8 {
        garbage_pair(&T, || {});
    }
    wait_until("a background automatic collection", || {
        arcycle::stats().automatic > n
    });
    wait_until("its Stop event", || {
        rec.events.lock().unwrap().iter().any(|(e, name)| {
            matches!(e, CollectEvent::Stop(i) if i.automatic)
                && name.as_deref() == Some("arcycle-collector")
        })
    });
    drop(rec);
    collect();
    T.assert_clean();
}

#[test]
fn collector_thread_parks_while_nothing_is_buffered() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::ZERO);
    collect();
    assert_eq!(arcycle::stats().roots_buffered, 0);
    wait_until("the collector thread parks", || {
        debug::collector_thread().parked
    });
    let before = debug::collector_thread();
    // Work that buffers nothing: leaf clones and drops, acyclic objects
    // created and dropped (their last drop frees them at once).
    for i in 0..100_000u64 {
        let x = Cc::new(i);
        let y = x.clone();
        drop((x, y));
        drop(obj(&T));
    }
    let after = debug::collector_thread();
    assert_eq!(
        after.wakeups, before.wakeups,
        "the collector thread woke up while nothing was buffered"
    );
    assert!(after.parked);
    T.assert_clean();
}

#[test]
fn quiet_period_frees_a_cycle_below_the_threshold() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    let passes = debug::collector_thread().quiet_passes;
    arcycle::set_quiet_period(Duration::ZERO);
    // One cycle, 9 998 roots short of the threshold; nothing else is ever
    // buffered again.
    let rx = signalling_pair(&T);
    rx.recv_timeout(WATCHDOG)
        .expect("the quiet pass freed the cycle");
    // Counted when the pass returns, after its destructors.
    wait_until("the quiet pass is counted", || {
        debug::collector_thread().quiet_passes > passes
    });
    wait_until("both members are freed", || T.live() == 0);
    T.assert_clean();
}

#[test]
fn end_quiet_period_runs_the_quiet_pass_now() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    let rec = Recorded::start();
    let rx = signalling_pair(&T);
    // An hour's period and a threshold of 10 000: nothing collects it yet.
    assert_eq!(T.live(), 2);
    debug::end_quiet_period();
    rx.recv_timeout(WATCHDOG)
        .expect("end_quiet_period made the thread collect");
    wait_until("the quiet pass's Stop event", || {
        rec.events.lock().unwrap().iter().any(|(e, name)| {
            matches!(e, CollectEvent::Stop(i) if i.quiet && i.automatic && i.freed >= 2)
                && name.as_deref() == Some("arcycle-collector")
        })
    });
    drop(rec);
    T.assert_clean();
}

#[test]
fn disable_keeps_the_collector_thread_from_collecting() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    arcycle::disable();
    arcycle::set_threshold(4);
    let collections = arcycle::stats().collections;
    let wakeups = debug::collector_thread().wakeups;
    for _ in 0..16 {
        garbage_pair(&T, || {});
    }
    // Wakes the thread, which must not collect while disabled.
    debug::end_quiet_period();
    wait_until("the thread looked and parked again", || {
        let t = debug::collector_thread();
        t.wakeups > wakeups && t.parked
    });
    assert_eq!(arcycle::stats().collections, collections);
    assert_eq!(T.live(), 32);
    // Enabled again: 32 roots >= 4, the thread collects.
    arcycle::enable();
    wait_until("the collector thread frees the garbage", || T.live() == 0);
    T.assert_clean();
}

/// The deadlock: a thread holds a `std::sync::Mutex` that a
/// garbage destructor also locks, and keeps allocating past the threshold.
/// Inline, the automatic collection would run that destructor on this very
/// thread, which then waits for itself. In background mode the collector
/// thread runs it and waits until the mutex is free; the allocating thread
/// never waits for it.
#[test]
fn background_collection_does_not_deadlock_on_a_lock_the_allocator_holds() {
    static T: Tally = Tally::new();
    static M: Mutex<u64> = Mutex::new(0);
    static STARTED: AtomicBool = AtomicBool::new(false);
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    arcycle::set_threshold(64);
    let (freed_tx, freed_rx) = mpsc::channel();
    garbage_pair(&T, move || {
        STARTED.store(true, SeqCst);
        *M.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let _ = freed_tx.send(());
    });
    let (done_tx, done_rx) = mpsc::channel();
    let allocator = thread::spawn(move || {
        let mut guard = M.lock().unwrap();
        let deadline = Instant::now() + WATCHDOG;
        let mut rounds = 0u64;
        // Allocate and drop garbage past the threshold until the
        // collector thread has started the destructor that needs `M`.
        while !STARTED.load(SeqCst) && Instant::now() < deadline {
            garbage_pair(&T, || {});
            rounds += 1;
        }
        // It now waits for `M`; this thread goes on regardless.
        for _ in 0..1000 {
            garbage_pair(&T, || {});
        }
        *guard += 1;
        let started = STARTED.load(SeqCst);
        drop(guard);
        let _ = done_tx.send((started, rounds));
    });
    let (started, rounds) = done_rx
        .recv_timeout(WATCHDOG)
        .expect("the allocating thread finished while holding the mutex");
    allocator.join().unwrap();
    assert!(
        started,
        "the destructor never started while the mutex was held ({rounds} rounds)"
    );
    freed_rx
        .recv_timeout(WATCHDOG)
        .expect("the destructor finished once the mutex was free");
    assert_eq!(*M.lock().unwrap(), 2);
    collect();
    wait_until("all garbage freed", || T.live() == 0);
    T.assert_clean();
}

#[test]
fn panicking_destructor_on_the_collector_thread_is_reported_and_the_thread_goes_on() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    arcycle::set_report_hook(move |r| {
        let _ = tx.lock().unwrap().send((
            r.kind,
            r.message.to_owned(),
            thread::current().name().map(str::to_owned),
        ));
    });
    garbage_pair(&T, || panic!("a destructor panics on the collector thread"));
    debug::end_quiet_period();
    let (kind, message, name) = rx.recv_timeout(WATCHDOG).expect("a report");
    arcycle::reset_report_hook();
    assert_eq!(kind, arcycle::ReportKind::PanicInAutomaticCollection);
    assert!(message.contains("a destructor panics"), "{message}");
    assert_eq!(name.as_deref(), Some("arcycle-collector"));
    // The thread survived: it collects the next cycle.
    let rx = signalling_pair(&T);
    debug::end_quiet_period();
    rx.recv_timeout(WATCHDOG)
        .expect("the thread still collects");
    wait_until("all garbage freed", || T.live() == 0);
    T.assert_clean();
}

thread_local! {
    static STASH: std::cell::RefCell<Vec<Cc<Obj>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A drop during thread-local teardown signals the collector thread (the
/// buffer was empty) and the cycle is freed there.
#[test]
fn drop_during_thread_local_teardown_reaches_the_collector_thread() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::ZERO);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let a = obj(&T);
        let b = obj(&T);
        *a.on_drop.lock().unwrap() = Some(Box::new(move || {
            let _ = tx.send(());
        }));
        link(&a, &b);
        link(&b, &a);
        // Dropped (buffered: counts stay at 1) during the thread's
        // thread-local teardown, after this closure returns.
        STASH.with(|s| s.borrow_mut().extend([a, b]));
    })
    .join()
    .unwrap();
    rx.recv_timeout(WATCHDOG)
        .expect("the collector thread freed the stashed cycle");
    wait_until("both members are freed", || T.live() == 0);
    T.assert_clean();
}

/// `fork`: the child has no collector thread and starts one when it needs
/// it. Runs in a child process (the test binary itself), so that the fork
/// happens in a process with few threads.
#[cfg(unix)]
#[test]
#[cfg_attr(
    tsan,
    ignore = "ThreadSanitizer cannot start threads after a multi-threaded fork (die_after_fork)"
)]
fn forked_child_starts_its_own_collector_thread() {
    const CHILD: &str = "ARCYCLE_GC_MODULE_FORK";
    if std::env::var_os(CHILD).is_some() {
        fork_scenario();
        println!("fork scenario passed");
        return;
    }
    let _s = serial();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "forked_child_starts_its_own_collector_thread",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("fork scenario passed"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
fn fork_scenario() {
    static T: Tally = Tally::new();
    background_ready(&T);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    // Garbage buffered in the parent before the fork, and the collector
    // thread running.
    let rx_before = signalling_pair(&T);
    // SAFETY: `fork` in a process whose other threads (the harness's and
    // arcycle's collector thread) hold none of the locks the child uses:
    // arcycle's `pthread_atfork` handlers take and release its own.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = catch_unwind(|| {
            // The parent's garbage, and a new cycle: the child's first
            // signal starts a collector thread of its own.
            let rx_new = signalling_pair(&T);
            debug::end_quiet_period();
            rx_before.recv_timeout(WATCHDOG).is_ok()
                && rx_new.recv_timeout(WATCHDOG).is_ok()
                && debug::collector_thread().started
        })
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's atexit
        // handlers or the harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child could not collect (status {status})"
    );
    // The parent still collects too.
    debug::end_quiet_period();
    rx_before
        .recv_timeout(WATCHDOG)
        .expect("the parent's collector thread still works");
}

// ------------------------------------------------------------------- pacing

/// The pacing tests' start: serialised, settings restored when the
/// guards drop, background mode with its thread running, no quiet pass,
/// and a threshold of 16. The settings come first in the tuple, so they
/// are restored before the serial lock goes (a tuple drops its fields in
/// order): the other way round, the next test could set its own and then
/// see them overwritten by this one's restore.
fn pacing_ready(tally: &'static Tally) -> (Settings, MutexGuard<'static, ()>) {
    let serial = serial();
    let guards = (Settings::save(), serial);
    background_ready(tally);
    arcycle::set_quiet_period(Duration::from_secs(3600));
    arcycle::set_threshold(16);
    guards
}

/// Starts a background collection that blocks in a destructor: returns
/// once the collector thread is inside it, with the sender that lets it
/// go on. Then buffers `roots` more possible roots (garbage pairs, past
/// this thread's ring into the shards) behind the blocked collection, with
/// pacing off (these allocations would wait themselves).
fn block_collector_thread(
    tally: &'static Tally,
    before_release: impl FnOnce() + Send + 'static,
    roots: usize,
) -> mpsc::Sender<()> {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    arcycle::set_pace_limit(None);
    garbage_pair(tally, move || {
        let _ = entered_tx.send(());
        let _ = release_rx.recv();
        before_release();
    });
    // Cross the threshold (16): the collector thread takes the pair.
    for _ in 0..16 {
        garbage_pair(tally, || {});
    }
    entered_rx
        .recv_timeout(WATCHDOG)
        .expect("the collector thread ran the blocking destructor");
    for _ in 0..roots / 2 {
        garbage_pair(tally, || {});
    }
    release_tx
}

#[test]
fn pacing_waits_for_a_collector_that_fell_behind() {
    static T: Tally = Tally::new();
    let _guards = pacing_ready(&T);
    // Live pairs, made before the collector falls behind.
    let kept: Vec<Cc<Obj>> = (0..200)
        .map(|_| {
            let (a, b) = (obj(&T), obj(&T));
            link(&a, &b);
            link(&b, &a);
            a
        })
        .collect();
    let release = block_collector_thread(&T, || {}, 2_000);
    // Only the collection's end can end the wait (a timeout would count).
    arcycle::set_pace_limit(Some(WATCHDOG));
    let before = arcycle::stats();
    // Drops never wait: these buffer 200 more roots (and find the
    // trigger set), without a wait.
    drop(kept);
    assert_eq!(arcycle::stats().paced, before.paced);
    let released = Arc::new(AtomicBool::new(false));
    let allocator = {
        let released = released.clone();
        thread::spawn(move || {
            // A whole threshold is buffered behind the running collection:
            // this allocation waits for it to end.
            let x = obj(&T);
            assert!(
                released.load(SeqCst),
                "Cc::new returned while the collection it waited for was blocked"
            );
            drop(x);
        })
    };
    wait_until("the allocation waits", || {
        arcycle::stats().paced > before.paced
    });
    released.store(true, SeqCst);
    release.send(()).unwrap();
    allocator.join().expect("the paced allocation");
    let after = arcycle::stats();
    assert_eq!(after.pace_timeouts, before.pace_timeouts);
    assert_eq!(after.paced, before.paced + 1);
    collect();
    T.assert_clean();
}

#[test]
fn pacing_gives_up_on_a_collection_that_needs_the_waiter() {
    static T: Tally = Tally::new();
    static L: Mutex<()> = Mutex::new(());
    let _guards = pacing_ready(&T);
    // The blocked destructor then needs `L`, which this thread holds while
    // it allocates: a wait without a limit would deadlock.
    let held = L.lock().unwrap();
    let release = block_collector_thread(
        &T,
        || {
            let _l = L.lock().unwrap_or_else(|e| e.into_inner());
        },
        2_000,
    );
    release.send(()).unwrap();
    // Pacing off: no wait at all.
    let before = arcycle::stats();
    drop(obj(&T));
    assert_eq!(arcycle::stats().paced, before.paced);
    // A short limit: one wait, which times out and gives the collection up.
    arcycle::set_pace_limit(Some(Duration::from_millis(10)));
    drop(obj(&T));
    let after = arcycle::stats();
    assert_eq!(after.paced, before.paced + 1);
    assert_eq!(after.pace_timeouts, before.pace_timeouts + 1);
    assert!(after.paced_time >= before.paced_time + Duration::from_millis(10));
    // The collection is still blocked on `L`: no allocation waits for it again.
    for _ in 0..100 {
        drop(obj(&T));
    }
    assert_eq!(arcycle::stats().paced, after.paced);
    drop(held);
    collect();
    T.assert_clean();
}

/// Lets the collector thread go on when dropped (also by a failed
/// assertion, so later tests find it working).
struct HoldCollectorThread;

impl Drop for HoldCollectorThread {
    fn drop(&mut self) {
        debug::__hold_collector_thread(false);
    }
}

#[test]
fn pacing_waits_for_a_collector_thread_that_has_not_started() {
    static T: Tally = Tally::new();
    let _guards = pacing_ready(&T);
    // The collector thread, signalled, starts no collection: nothing runs.
    debug::__hold_collector_thread(true);
    let hold = HoldCollectorThread;
    arcycle::set_pace_limit(None);
    // 600 roots: past this thread's ring (256), more than two triggers
    // (32) reach the shards.
    for _ in 0..300 {
        garbage_pair(&T, || {});
    }
    let before = arcycle::stats();
    assert_eq!(
        before.collections,
        arcycle::stats().collections,
        "a collection ran while the collector thread was held"
    );
    // No collection runs to end the wait: it times out, and gives the
    // next collection up (no allocation waits for it again).
    arcycle::set_pace_limit(Some(Duration::from_millis(10)));
    drop(obj(&T));
    let after = arcycle::stats();
    assert_eq!(
        after.paced,
        before.paced + 1,
        "an allocation two triggers behind a collector thread that has not started did not wait"
    );
    assert_eq!(after.pace_timeouts, before.pace_timeouts + 1);
    for _ in 0..100 {
        drop(obj(&T));
    }
    assert_eq!(arcycle::stats().paced, after.paced);
    assert_eq!(arcycle::stats().collections, before.collections);
    // Let go: the thread serves its signal; everything is freed.
    drop(hold);
    collect();
    T.assert_clean();
}

/// A collection counts as running for pacing only once it has drained the
/// buffer: the roots it is about to take are not piled up behind it. The
/// collector thread is stopped in the collection's `Start` callback
/// (before the drain) with a trigger and a half (but not two) of roots in
/// the shards; an allocation then must not wait. Counted from the
/// collection's start, it waited for the whole collection, so the thread
/// making the garbage and the collector took turns.
#[test]
fn pacing_counts_a_collection_from_its_drain() {
    static T: Tally = Tally::new();
    let _guards = pacing_ready(&T);
    arcycle::set_pace_limit(None);
    // A trigger of 300 (the heap's bound is at least 1000): the shards
    // fill in spills of this thread's ring (256 entries).
    arcycle::set_threshold(300);
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let armed = AtomicBool::new(true);
    let id = arcycle::add_callback(move |e| {
        if matches!(e, CollectEvent::Start(i) if i.automatic) && armed.swap(false, SeqCst) {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv_timeout(WATCHDOG);
        }
    });
    /// Lets the collector thread go on when dropped (also by a failed
    /// assertion).
    struct Release(Option<mpsc::Sender<()>>, arcycle::CallbackId);
    impl Drop for Release {
        fn drop(&mut self) {
            drop(self.0.take());
            arcycle::remove_callback(self.1);
        }
    }
    let release = Release(Some(release_tx), id);
    // Past the trigger (302 roots: 256 spilled into the shards, 46 in this
    // thread's ring; the 300th sets the trigger, and the next allocation
    // signals the thread): the collector thread starts a collection and
    // stops in its `Start` callback, before taking any root. Nothing more
    // is buffered until it is there.
    for _ in 0..151 {
        garbage_pair(&T, || {});
    }
    drop(obj(&T));
    entered_rx
        .recv_timeout(WATCHDOG)
        .expect("the collector thread started an automatic collection");
    let before = arcycle::stats();
    // Another ring's worth: a second spill, so 512 roots are in the shards
    // (at least a trigger, fewer than two).
    for _ in 0..128 {
        garbage_pair(&T, || {});
    }
    assert_eq!(
        arcycle::stats().collections,
        before.collections,
        "the stopped collection ended"
    );
    arcycle::set_pace_limit(Some(Duration::from_millis(200)));
    drop(obj(&T));
    let after = arcycle::stats();
    assert_eq!(
        after.paced, before.paced,
        "an allocation waited for a collection that had not taken its roots yet"
    );
    drop(release);
    collect();
    T.assert_clean();
}

/// After a collection of its own, the collector thread goes on with the
/// next one when a quarter of a trigger piled up in the shards while it
/// ran, without waiting to be signalled for a whole trigger: the roots
/// buffered behind a blocked collection (a ring spill, fewer than a
/// trigger) are collected once it ends, with no `collect()` and no quiet
/// pass (an hour here).
#[test]
fn collector_thread_catches_up_without_a_new_trigger() {
    static T: Tally = Tally::new();
    let _guards = pacing_ready(&T);
    let release = block_collector_thread(&T, || {}, 0);
    let before = arcycle::stats();
    // A trigger of 800 (the heap's bound is at least 1000). Crossing the
    // old one (16) may have set the trigger again after the blocked
    // collection cleared it: `disable` clears it, and `enable` sets it
    // only for a whole trigger pending.
    arcycle::set_threshold(800);
    arcycle::disable();
    arcycle::enable();
    // 260 roots behind the blocked collection: a spill of this thread's
    // ring (256) reaches the shards, more than a quarter of the trigger;
    // with the ring's rest, fewer than a trigger are pending, so no push
    // sets the trigger either.
    for _ in 0..130 {
        garbage_pair(&T, || {});
    }
    release.send(()).unwrap();
    wait_until("the collector thread collects the roots behind it", || {
        arcycle::stats().collections > before.collections && T.live() == 0
    });
    T.assert_clean();
}

// ---------------------------------------------------------------- callbacks

#[test]
fn callbacks_see_start_and_stop_of_every_collection() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    let rec = Recorded::start();
    garbage_pair(&T, || {});
    let freed = collect();
    let events = rec.take();
    assert_eq!(events.len(), 2, "{events:?}");
    let CollectEvent::Start(start) = events[0].0 else {
        panic!("first event: {:?}", events[0].0)
    };
    let CollectEvent::Stop(stop) = events[1].0 else {
        panic!("second event: {:?}", events[1].0)
    };
    assert!(!start.automatic && !start.nested && !start.quiet);
    assert_eq!(start.buffered, 2);
    assert_eq!((start.freed, start.roots, start.traced), (0, 0, 0));
    assert_eq!(stop.freed, freed);
    assert_eq!(stop.freed, 2);
    assert_eq!(stop.roots, 2);
    assert_eq!(stop.traced, 2);
    assert_eq!(stop.aborted, 0);
    assert!(!stop.automatic);
    assert_eq!(stop.pause, arcycle::stats().last_pause);
    // Both ran on this thread.
    let me = thread::current().name().map(str::to_owned);
    assert!(events.iter().all(|(_, n)| *n == me));
    drop(rec);
    T.assert_clean();
}

#[test]
fn removed_callback_is_not_called_again() {
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable(); // no collection but ours
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let id = arcycle::add_callback(move |_| {
        c.fetch_add(1, SeqCst);
    });
    collect();
    assert_eq!(calls.load(SeqCst), 2);
    assert!(arcycle::remove_callback(id));
    assert!(!arcycle::remove_callback(id), "removed twice");
    collect();
    assert_eq!(calls.load(SeqCst), 2);
}

#[test]
fn panicking_callback_is_reported_and_breaks_nothing() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    arcycle::set_report_hook(move |r| sink.lock().unwrap().push((r.kind, r.message.to_owned())));
    let bad = arcycle::add_callback(|e| {
        if let CollectEvent::Start(_) = e {
            panic!("a callback panics");
        }
    });
    let rec = Recorded::start();
    garbage_pair(&T, || {});
    let freed = catch_unwind(collect).expect("collect() does not panic");
    arcycle::remove_callback(bad);
    arcycle::reset_report_hook();
    assert_eq!(freed, 2);
    // The callback registered after the panicking one still saw both.
    assert_eq!(rec.take().len(), 2);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, arcycle::ReportKind::PanicInCallback);
    assert!(reports[0].1.contains("a callback panics"));
    drop(rec);
    T.assert_clean();
}

/// The phase times of `CollectInfo::phases` fit within the pause, are zero
/// at `Start`, land a destructor's time in `destroy`, and add up, exactly,
/// into `Stats::phases`.
#[test]
fn callback_phase_times_fit_the_pause_and_add_up_in_stats() {
    static T: Tally = Tally::new();
    const SPIN: Duration = Duration::from_millis(2);
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable(); // no collection but ours
    collect();
    let before = arcycle::stats().phases;
    let rec = Recorded::start();
    // The destructor runs for at least SPIN by the clock (no sleep: it
    // watches the clock it is measured by).
    garbage_pair(&T, || {
        let t = Instant::now();
        while t.elapsed() < SPIN {
            std::hint::spin_loop();
        }
    });
    assert_eq!(collect(), 2);
    let after = arcycle::stats().phases;
    let events = rec.take();
    let [(CollectEvent::Start(start), _), (CollectEvent::Stop(stop), _)] = events[..] else {
        panic!("one Start and one Stop expected: {events:?}");
    };
    assert_eq!(start.phases, arcycle::PhaseTimes::default());
    let p = stop.phases;
    assert!(p.total() <= stop.pause, "{p:?} within {:?}", stop.pause);
    assert!(
        p.destroy >= SPIN,
        "the destructor's time is destroy's: {p:?}"
    );
    assert_eq!(after.since(before), p);
    // Field by field, too: `since` is not the thing under test here.
    assert_eq!(after.destroy - before.destroy, p.destroy);
    assert_eq!(after.trace - before.trace, p.trace);
    T.assert_clean();
}

#[test]
fn callback_may_collect_nested() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    let rec = Recorded::start();
    let nested_freed = Arc::new(AtomicUsize::new(usize::MAX));
    let once = Arc::new(AtomicBool::new(true));
    let (n, o) = (nested_freed.clone(), once.clone());
    let id = arcycle::add_callback(move |e| {
        if let CollectEvent::Start(_) = e {
            if o.swap(false, SeqCst) {
                n.store(collect(), SeqCst);
            }
        }
    });
    garbage_pair(&T, || {});
    let outer = collect();
    arcycle::remove_callback(id);
    // The nested collection (run from the outer one's Start) freed the
    // pair; the outer one found nothing left.
    assert_eq!(nested_freed.load(SeqCst), 2);
    assert_eq!(outer, 0);
    let events: Vec<CollectEvent> = rec.take().into_iter().map(|(e, _)| e).collect();
    let shape: Vec<(bool, bool)> = events
        .iter()
        .map(|e| (matches!(e, CollectEvent::Start(_)), e.info().nested))
        .collect();
    assert_eq!(
        shape,
        [(true, false), (true, true), (false, true), (false, false)],
        "{events:?}"
    );
    drop(rec);
    T.assert_clean();
}

#[test]
fn stats_count_automatic_collections_and_roots() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    let before = arcycle::stats();
    garbage_pair(&T, || {});
    garbage_pair(&T, || {});
    assert_eq!(collect(), 4);
    let after = arcycle::stats();
    assert_eq!(after.roots - before.roots, 4);
    assert_eq!(after.automatic, before.automatic, "an explicit collection");
    assert_eq!(CollectInfo::default().freed, 0);
    T.assert_clean();
}

/// The trigger is `min(threshold, max(MIN_TRIGGER, fraction × heap
/// estimate))`, and in inline mode the roots waiting never pass it: the
/// fraction, not the threshold, starts the collections in a small heap.
#[test]
fn heap_fraction_bounds_the_roots_waiting_in_a_small_heap() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    arcycle::set_background(false);
    arcycle::set_threshold(1_000_000);
    let live = common::ring(&T, 8_000);
    // Buffer every member, so the full collection traces the whole ring.
    for n in &live {
        drop(n.clone());
    }
    collect();
    let est = arcycle::stats().heap_estimate;
    assert!(est >= 8_000, "a full collection saw the ring live: {est}");

    // The threshold above everything: the floor, then the fraction decide.
    arcycle::set_heap_fraction(1e-9);
    assert_eq!(arcycle::stats().trigger, arcycle::MIN_TRIGGER);
    arcycle::set_heap_fraction(2_000.0 / est as f64);
    let trigger = arcycle::stats().trigger;
    assert!((1_990..=2_000).contains(&trigger), "trigger {trigger}");
    // A threshold below the fraction's share wins.
    arcycle::set_threshold(500);
    assert_eq!(arcycle::stats().trigger, 500);
    arcycle::set_threshold(1_000_000);
    assert_eq!(arcycle::stats().trigger, trigger);

    // 3,000 garbage pairs are 6,000 roots: three triggers' worth.
    let churn = || {
        let before = arcycle::stats();
        let mut peak = 0;
        for _ in 0..3_000 {
            garbage_pair(&T, || {});
            peak = peak.max(arcycle::stats().roots_buffered);
        }
        (arcycle::stats().automatic - before.automatic, peak)
    };
    arcycle::enable();
    let (automatic, peak) = churn();
    assert!(automatic >= 2, "{automatic} automatic collections");
    assert!(
        peak <= trigger + 1,
        "{peak} roots waited, trigger {trigger}"
    );

    // With the bound off the threshold alone decides: nothing ran.
    arcycle::set_heap_fraction(f64::INFINITY);
    assert_eq!(arcycle::stats().trigger, 1_000_000);
    let (automatic, peak) = churn();
    assert_eq!(automatic, 0, "the threshold was not reached");
    assert!(peak >= 6_000, "{peak}");

    arcycle::disable();
    drop(live);
    collect();
    T.assert_clean();
}

#[test]
fn heap_fraction_must_be_positive() {
    let _s = serial();
    let _restore = Settings::save();
    for bad in [0.0, -0.5, f64::NAN, f64::NEG_INFINITY] {
        let err = catch_unwind(|| arcycle::set_heap_fraction(bad))
            .expect_err("a fraction that is not positive must panic");
        let text = common::panic_text(&*err);
        assert!(
            text.contains("set_heap_fraction") && text.contains("positive"),
            "{text}"
        );
    }
    assert_eq!(arcycle::heap_fraction(), arcycle::DEFAULT_HEAP_FRACTION);
}

// -------------------------------------------------------------- debug helpers

#[test]
fn referents_lists_what_the_collector_sees() {
    static T: Tally = Tally::new();
    let _s = serial();
    let a = obj(&T);
    let b = obj(&T);
    link(&a, &b);
    link(&a, &b);
    link(&a, &a);
    let r = debug::referents(&a);
    assert!(!r.busy);
    assert_eq!(r.edges.len(), 3);
    assert!(r.edges[0].is(&b) && r.edges[1].is(&b) && r.edges[2].is(&a));
    assert_eq!(r.edges[0].strong_count, Some(3));
    assert!(r.edges[0].type_name.ends_with("Obj"));
    // A lock taken elsewhere: busy, never blocked.
    {
        let _g = a.edges.lock().unwrap();
        let r = debug::referents(&a);
        assert!(r.busy && r.edges.is_empty());
    }
    a.edges.lock().unwrap().clear();
    drop((a, b));
    T.assert_clean();
}

/// A value with one handle, and `Trace` impls of every kind of mistake.
struct Subject {
    own: Mutex<Vec<Cc<Obj>>>,
    /// Not owned: shared through an `Arc` (reporting it over-reports).
    shared: Arc<Cc<Obj>>,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Correct,
    ReportsShared,
    ReportsTwice,
    DropsGuard,
    ReportsNothing,
}

// SAFETY: only ever traced by `TraceTest`, never put in a `Cc`: the wrong
// modes are what the tests must detect.
unsafe impl Trace for Subject {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        let Ok(guard) = self.own.try_lock() else {
            return tracer.busy();
        };
        if self.mode != Mode::ReportsNothing {
            for cc in guard.iter() {
                tracer.edge(cc);
                if self.mode == Mode::ReportsTwice {
                    tracer.edge(cc);
                }
            }
        }
        if self.mode == Mode::ReportsShared {
            tracer.edge(&*self.shared);
        }
        if self.mode == Mode::DropsGuard {
            drop(guard);
        } else {
            tracer.hold(guard);
        }
    }
}

#[test]
fn trace_test_catches_wrong_trace_impls() {
    static T: Tally = Tally::new();
    let _s = serial();
    let mine = obj(&T);
    let shared = Arc::new(obj(&T));
    let subject = |mode| Subject {
        own: Mutex::new(vec![mine.clone()]),
        shared: shared.clone(),
        mode,
    };
    let locked = |s: &Subject| s.own.try_lock().is_err();

    let ok = subject(Mode::Correct);
    let report = TraceTest::new(&ok)
        .expect(&mine)
        .while_held("own is locked", locked)
        .run()
        .expect("a correct impl passes");
    assert_eq!(report.edges.len(), 1);
    assert!(report.edges[0].is(&mine));
    assert_eq!(report.guards, 1);

    let liar = subject(Mode::ReportsShared);
    match TraceTest::new(&liar).expect(&mine).run() {
        Err(TraceError::Unexpected { edge }) => {
            assert!(edge.is(&shared));
            assert_eq!(edge.strong_count, None, "an unexpected target is not read");
        }
        other => panic!("over-reporting through an Arc not detected: {other:?}"),
    }

    let twice = subject(Mode::ReportsTwice);
    match TraceTest::new(&twice).expect(&mine).run() {
        Err(TraceError::TooOften {
            reported, expected, ..
        }) => assert_eq!((reported, expected), (2, 1)),
        other => panic!("a doubled edge not detected: {other:?}"),
    }

    let leaky = subject(Mode::DropsGuard);
    assert!(
        TraceTest::new(&leaky).expect(&mine).run().is_ok(),
        "without a check, a dropped guard cannot be seen"
    );
    match TraceTest::new(&leaky)
        .expect(&mine)
        .while_held("own is locked", locked)
        .run()
    {
        Err(TraceError::NotHeld { check }) => assert_eq!(check, "own is locked"),
        other => panic!("a dropped guard not detected: {other:?}"),
    }

    let silent = subject(Mode::ReportsNothing);
    match TraceTest::new(&silent).expect(&mine).run() {
        Err(TraceError::Missing {
            edge,
            reported,
            expected,
        }) => {
            assert!(edge.is(&mine));
            assert_eq!((reported, expected), (0, 1));
        }
        other => panic!("under-reporting not detected: {other:?}"),
    }

    let busy = subject(Mode::Correct);
    let guard = busy.own.lock().unwrap();
    assert_eq!(
        TraceTest::new(&busy).expect(&mine).run(),
        Err(TraceError::Busy)
    );
    drop(guard);

    // Error messages name the problem.
    let e = TraceTest::new(&liar).expect(&mine).run().unwrap_err();
    assert!(e.to_string().contains("over-reporting"), "{e}");

    drop((ok, liar, twice, leaky, silent, busy));
    drop((mine, shared));
    T.assert_clean();
}

/// A node whose edges can hide behind an `Arc` or a skipped field.
#[derive(Trace)]
struct Holder {
    probe: Probe,
    edges: Mutex<Vec<Cc<Holder>>>,
    shared: Arc<Mutex<Vec<Cc<Holder>>>>,
    #[trace(skip)]
    skipped: Mutex<Vec<Cc<Holder>>>,
}

fn holder(tally: &'static Tally) -> Cc<Holder> {
    Cc::new(Holder {
        probe: Probe::new(tally),
        edges: Mutex::new(Vec::new()),
        shared: Arc::new(Mutex::new(Vec::new())),
        skipped: Mutex::new(Vec::new()),
    })
}

#[test]
fn leak_report_explains_every_survivor() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    // A: a -> b through an Arc field, b -> a traced.
    let (a, b) = (holder(&T), holder(&T));
    a.shared.lock().unwrap().push(b.clone());
    b.edges.lock().unwrap().push(a.clone());
    // B: c -> d through a skipped field, d -> c traced.
    let (c, d) = (holder(&T), holder(&T));
    c.skipped.lock().unwrap().push(d.clone());
    d.edges.lock().unwrap().push(c.clone());
    // C: a self-loop with a handle kept outside.
    let e = holder(&T);
    e.edges.lock().unwrap().push(e.clone());
    let kept = e.clone();
    // D: a self-loop whose lock is taken during the collection.
    let f = holder(&T);
    f.edges.lock().unwrap().push(f.clone());
    let f_busy = f.clone();
    // E: plain garbage.
    let (g, h) = (holder(&T), holder(&T));
    g.edges.lock().unwrap().push(h.clone());
    h.edges.lock().unwrap().push(g.clone());
    let weak: Vec<Weak<Holder>> = [&a, &b, &c, &d].iter().map(|x| Cc::downgrade(x)).collect();
    drop((a, b, c, d, e, f, g, h));

    let guard = f_busy.edges.lock().unwrap();
    let report = debug::collect_with_report();
    drop(guard);

    assert_eq!(report.freed, 2, "only the plain garbage is freed\n{report}");
    let strong: Vec<Cc<Holder>> = weak.iter().map(|w| w.upgrade().unwrap()).collect();
    let id = |x: &Cc<Holder>| {
        report
            .find(x)
            .unwrap_or_else(|| panic!("not examined\n{report}"))
            .id
    };
    let reason = |x: &Cc<Holder>| report.find(x).unwrap().reason;
    let (a, b, c, d) = (&strong[0], &strong[1], &strong[2], &strong[3]);
    assert_eq!(
        reason(b),
        Reason::HiddenInArc {
            unexplained: 1,
            holder: id(a),
            via: None
        },
        "\n{report}"
    );
    assert_eq!(
        reason(a),
        Reason::ReachableFrom { from: id(b) },
        "\n{report}"
    );
    assert_eq!(
        reason(d),
        Reason::HiddenInSkippedField {
            unexplained: 1,
            holder: id(c),
            via: None
        },
        "\n{report}"
    );
    assert_eq!(
        reason(c),
        Reason::ReachableFrom { from: id(d) },
        "\n{report}"
    );
    assert_eq!(reason(&kept), Reason::ExternalHandle { unexplained: 1 });
    assert_eq!(reason(&f_busy), Reason::BusyLock);
    assert_eq!(report.causes().count(), 4, "\n{report}");
    let hidden = |holder, target, in_arc| debug::HiddenHandle {
        holder,
        target,
        in_arc,
        via: None,
    };
    assert!(report.hidden.contains(&hidden(id(a), id(b), true)));
    assert!(report.hidden.contains(&hidden(id(c), id(d), false)));
    assert!(report.edges.contains(&(id(b), id(a))));

    let text = report.to_string();
    assert!(text.contains("std::sync::Arc"), "{text}");
    assert!(text.contains("#[trace(skip)]"), "{text}");
    assert!(text.contains("Holder"), "{text}");
    let dot = report.to_dot();
    assert!(dot.starts_with("digraph"));
    assert!(
        dot.contains(&format!("n{} -> n{} [style=dashed", id(a), id(b))),
        "{dot}"
    );
    assert!(dot.contains("label=\"skip\""), "{dot}");

    // Break the hidden edges and the loops by hand; everything goes.
    a.shared.lock().unwrap().clear();
    c.skipped.lock().unwrap().clear();
    kept.edges.lock().unwrap().clear();
    f_busy.edges.lock().unwrap().clear();
    drop((strong, kept, f_busy, weak));
    collect();
    T.assert_clean();
}

/// A normal collection records nothing: the derive's probes find no
/// recorder, and no survivor list exists outside `collect_with_report`.
#[test]
fn probes_record_only_for_a_report() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable();
    collect();
    let (a, b) = (holder(&T), holder(&T));
    a.shared.lock().unwrap().push(b.clone());
    b.edges.lock().unwrap().push(a.clone());
    let wa = Cc::downgrade(&a);
    drop((a, b));
    assert_eq!(collect(), 0, "a cycle through an Arc leaks");
    assert!(wa.upgrade().is_some());
    wa.upgrade().unwrap().shared.lock().unwrap().clear();
    collect();
    T.assert_clean();
}

// ------------------------------------------------------------------- census

#[cfg(feature = "census")]
mod census_tests {
    use super::*;

    #[derive(Trace, Clone)]
    struct Counted(u64);

    #[derive(Trace)]
    struct Cyclic {
        next: Mutex<Option<Cc<Cyclic>>>,
    }

    fn row<T>() -> Option<arcycle::TypeCensus> {
        arcycle::census()
            .into_iter()
            .find(|t| t.type_name == std::any::type_name::<T>())
    }

    #[test]
    fn census_counts_live_allocations_bytes_and_peaks() {
        let _s = serial();
        let _restore = Settings::save();
        arcycle::disable();
        assert!(row::<Counted>().is_none_or(|r| r.live == 0));
        let many: Vec<Cc<Counted>> = (0..10).map(|i| Cc::new(Counted(i))).collect();
        let r = row::<Counted>().expect("listed");
        assert_eq!(r.live, 10);
        assert_eq!(r.bytes, 10 * (16 + 8), "the header is included");
        assert!(r.peak_live >= 10);
        let weak = Cc::downgrade(&many[0]);
        drop(many);
        let r = row::<Counted>().unwrap();
        assert_eq!(r.live, 1, "a Weak keeps its allocation");
        assert!(r.peak_live >= 10 && r.peak_bytes == r.peak_live * 24);
        drop(weak);
        assert_eq!(row::<Counted>().unwrap().live, 0);
        debug::reset_peak();
        assert_eq!(row::<Counted>().unwrap().peak_live, 0);

        // Cycles freed by the collector, `new_cyclic` and `make_mut` count.
        let a = Cc::new(Cyclic {
            next: Mutex::new(None),
        });
        *a.next.lock().unwrap() = Some(a.clone());
        drop(a);
        let b = Cc::new_cyclic(|_w: &Weak<Cyclic>| Cyclic {
            next: Mutex::new(None),
        });
        assert_eq!(row::<Cyclic>().unwrap().live, 2);
        drop(b);
        assert_eq!(
            row::<Cyclic>().unwrap().live,
            1,
            "the cycle is not freed yet"
        );
        collect();
        assert_eq!(row::<Cyclic>().unwrap().live, 0);
        let mut m = Cc::new(Counted(1));
        let m2 = m.clone();
        Cc::make_mut(&mut m).0 += 1; // clones into a fresh allocation
        assert_eq!(row::<Counted>().unwrap().live, 2);
        drop((m, m2));
        assert_eq!(row::<Counted>().unwrap().live, 0);
        // A census is sorted by bytes, most first.
        let c = arcycle::census();
        assert!(c.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    }

    /// Unsized allocations are counted by their own size, and a slice
    /// whose construction panics (a `Clone` that fails midway) is counted
    /// out again: the census stays balanced.
    #[test]
    fn census_counts_unsized_allocations_and_panicking_builds() {
        let _s = serial();
        struct Boom(bool);
        impl Clone for Boom {
            fn clone(&self) -> Boom {
                assert!(self.0, "this Boom refuses to be cloned");
                Boom(true)
            }
        }
        arcycle::leaf!(Boom);
        fn live() -> usize {
            arcycle::census()
                .into_iter()
                .find(|t| t.type_name == std::any::type_name::<[Boom]>())
                .map_or(0, |t| t.live)
        }
        let items = [Boom(true), Boom(false)];
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Cc::<[Boom]>::from(&items[..])
        }));
        assert!(built.is_err());
        assert_eq!(live(), 0, "a panicking build is counted out");
        let ok: Cc<[Boom]> = vec![Boom(true), Boom(true), Boom(true)].into();
        assert_eq!(live(), 1);
        let s: Cc<str> = "census".into();
        let r = arcycle::census()
            .into_iter()
            .find(|t| t.type_name == "str")
            .expect("a str row");
        assert!(r.live >= 1 && r.bytes >= 16 + 6);
        drop((ok, s));
        assert_eq!(live(), 0);
    }

    /// Live count of `T`'s row (0 when unlisted).
    fn live<T: ?Sized>() -> usize {
        arcycle::census()
            .into_iter()
            .find(|t| t.type_name == std::any::type_name::<T>())
            .map_or(0, |t| t.live)
    }

    /// A leaf's handles may change type (`TryFrom`, `assume_init`,
    /// `downcast`, `coerce!`, `coerce_weak!`) while other handles of the
    /// old type live: the census stays balanced whichever handle frees
    /// the allocation, and a uniquely held leaf's count follows its
    /// handle. (Before the alias table, `sync::test_array_from_slice`
    /// wrapped the `[u32]` row below zero.)
    #[test]
    fn census_follows_leaf_conversions_and_stays_balanced() {
        #[derive(Clone, Debug)]
        struct Item(u32);
        arcycle::leaf!(Item);
        trait Shape: Send + Sync {}
        impl Shape for Item {}
        type AnyItem = dyn std::any::Any + Send + Sync;

        // Shared TryFrom, the slice freed last (std_arc's case), then the
        // array freed last.
        for array_last in [false, true] {
            let slice: Cc<[Item]> = vec![Item(1), Item(2), Item(3)].into();
            assert_eq!(live::<[Item]>(), 1);
            let array: Cc<[Item; 3]> = slice.clone().try_into().unwrap();
            assert_eq!(array[2].0, 3);
            assert_eq!(live::<[Item]>(), 1, "a shared leaf keeps its row");
            assert_eq!(live::<[Item; 3]>(), 0);
            if array_last {
                drop(slice);
                drop(array);
            } else {
                drop(array);
                drop(slice);
            }
            assert_eq!((live::<[Item]>(), live::<[Item; 3]>()), (0, 0));
        }

        // A unique conversion moves the count: `new_uninit` + `assume_init`.
        let mut u = Cc::<Item>::new_uninit();
        Cc::get_mut(&mut u).unwrap().write(Item(4));
        assert_eq!(live::<std::mem::MaybeUninit<Item>>(), 1);
        // SAFETY: written just above.
        let item = unsafe { u.assume_init() };
        assert_eq!(
            (live::<std::mem::MaybeUninit<Item>>(), live::<Item>()),
            (0, 1)
        );
        // The same for a slice.
        let mut us = Cc::<[Item]>::new_uninit_slice(2);
        for slot in Cc::get_mut(&mut us).unwrap() {
            slot.write(Item(7));
        }
        assert_eq!(live::<[std::mem::MaybeUninit<Item>]>(), 1);
        // SAFETY: both written just above.
        let items = unsafe { us.assume_init() };
        assert_eq!(
            (live::<[std::mem::MaybeUninit<Item>]>(), live::<[Item]>()),
            (0, 1)
        );
        drop(items);
        assert_eq!(live::<[Item]>(), 0);

        // Unique `coerce!` and `downcast` move it there and back.
        let any: Cc<AnyItem> = arcycle::coerce!(item);
        assert_eq!((live::<Item>(), live::<AnyItem>()), (0, 1));
        let item: Cc<Item> = any.downcast().unwrap();
        assert_eq!((live::<Item>(), live::<AnyItem>()), (1, 0));

        // Shared `coerce!` to two types, then `downcast`, each handle
        // freed in turn: the count stays on `Item` until the last.
        let shape: Cc<dyn Shape> = arcycle::coerce!(item.clone());
        let any: Cc<AnyItem> = arcycle::coerce!(item.clone());
        let again: Cc<Item> = any.clone().downcast().unwrap();
        assert_eq!(
            (live::<Item>(), live::<dyn Shape>(), live::<AnyItem>()),
            (1, 0, 0)
        );
        drop((item, again, any));
        assert_eq!(live::<Item>(), 1, "the shape still holds it");
        drop(shape);
        assert_eq!(
            (live::<Item>(), live::<dyn Shape>(), live::<AnyItem>()),
            (0, 0, 0)
        );

        // A `Weak` coerced and freeing the allocation last.
        let item = Cc::new(Item(5));
        let weak: Weak<dyn Shape> = arcycle::coerce_weak!(Cc::downgrade(&item));
        drop(item);
        assert_eq!(live::<Item>(), 1, "the Weak keeps the allocation");
        drop(weak);
        assert_eq!((live::<Item>(), live::<dyn Shape>()), (0, 0));
        let dangling: Weak<dyn Shape> = arcycle::coerce_weak!(Weak::<Item>::new());
        assert!(dangling.upgrade().is_none());

        // A shared conversion whose other handles go away first: the next
        // (unique) conversion moves the count from the row that held it.
        let item = Cc::new(Item(6));
        let other = item.clone();
        let shape: Cc<dyn Shape> = arcycle::coerce!(other);
        let any: Cc<AnyItem> = arcycle::coerce!(item);
        drop(shape);
        assert_eq!(live::<Item>(), 1);
        let back: Cc<Item> = any.downcast().unwrap();
        assert_eq!(live::<Item>(), 1);
        let any: Cc<AnyItem> = arcycle::coerce!(back);
        assert_eq!((live::<Item>(), live::<AnyItem>()), (0, 1));
        drop(any);
        assert_eq!((live::<Item>(), live::<AnyItem>()), (0, 0));
    }

    /// Conversions from several threads at once, of shared handles of
    /// the same leaves: balanced at the end.
    #[test]
    fn census_stays_balanced_under_concurrent_conversions() {
        #[derive(Debug)]
        struct Shared(#[allow(dead_code)] u32);
        arcycle::leaf!(Shared);
        type AnyShared = dyn std::any::Any + Send + Sync;
        let items: Vec<Cc<Shared>> = (0..200).map(|i| Cc::new(Shared(i))).collect();
        thread::scope(|s| {
            for t in 0..4 {
                let mine: Vec<Cc<Shared>> = items.clone();
                s.spawn(move || {
                    for (i, it) in mine.into_iter().enumerate() {
                        let any: Cc<AnyShared> = arcycle::coerce!(it);
                        if (i + t) % 2 == 0 {
                            drop(any.downcast::<Shared>().unwrap());
                        }
                    }
                });
            }
        });
        assert_eq!(live::<Shared>(), 200);
        drop(items);
        assert_eq!((live::<Shared>(), live::<AnyShared>()), (0, 0));
    }
}

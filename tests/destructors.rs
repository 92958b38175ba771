//! User code run by the collector: destructors that panic, meet collected
//! peers, stash them, or collect themselves; `Trace` impls that panic;
//! drops during thread-local teardown and by exited threads; `collect()`
//! from many threads at once.
//!
//! Every test holds `common::serial()`.

mod common;

use arcycle::{collect, Cc, Trace, Tracer, Weak};
use common::{get, panic_text, ring, serial, Node, Probe, Probed, Settings, Tally};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};

const DEAD_PEER: &str = "destroyed by the cycle collector";

/// A node whose destructor runs a hook with mutable access to itself.
#[derive(Trace)]
struct Hooked {
    probe: Probe,
    #[trace(skip)]
    hook: fn(&mut Hooked),
    peers: Mutex<Vec<Cc<Hooked>>>,
    weak_peers: Mutex<Vec<Weak<Hooked>>>,
}

impl Probed for Hooked {
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

impl Drop for Hooked {
    fn drop(&mut self) {
        (self.hook)(self);
    }
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hooked#{}", self.probe.id())
    }
}

fn no_hook(_: &mut Hooked) {}

fn hooked(tally: &'static Tally, hook: fn(&mut Hooked)) -> Cc<Hooked> {
    Cc::new(Hooked {
        probe: Probe::new(tally),
        hook,
        peers: Mutex::new(Vec::new()),
        weak_peers: Mutex::new(Vec::new()),
    })
}

/// `n` hooked nodes in a ring (each also holding a `Weak` to its
/// successor), the `i`th with `hooks[i]`.
fn hooked_ring(tally: &'static Tally, hooks: &[fn(&mut Hooked)]) -> Vec<Cc<Hooked>> {
    let n = hooks.len();
    let nodes: Vec<Cc<Hooked>> = hooks.iter().map(|&h| hooked(tally, h)).collect();
    for i in 0..n {
        let next = &nodes[(i + 1) % n];
        let node = get(&nodes[i]);
        node.weak_peers.lock().unwrap().push(Cc::downgrade(next));
        node.peers.lock().unwrap().push(next.clone());
    }
    nodes
}

// ------------------------------------------------------------ panics in Drop

fn panics_in_drop(_: &mut Hooked) {
    panic!("destructor panics");
}

fn panics_differently(_: &mut Hooked) {
    panic!("another destructor panics");
}

#[test]
fn panicking_destructor_is_resumed_after_freeing_the_rest() {
    static T: Tally = Tally::new();
    let _s = serial();
    T.track(100);
    let nodes = hooked_ring(&T, &[no_hook, panics_in_drop, no_hook, no_hook, no_hook]);
    drop(nodes);
    let r = catch_unwind(collect);
    let payload = r.expect_err("collect() must resume the destructor's panic");
    assert_eq!(panic_text(&*payload), "destructor panics");
    // Every member was freed, the panicking one's fields included.
    T.assert_clean();

    // The collector is not left in a bad state.
    let again = ring(&T_AFTER, 4);
    drop(again);
    assert!(collect() >= 4);
    T_AFTER.assert_clean();
}

static T_AFTER: Tally = Tally::new();

#[test]
fn two_panicking_destructors_first_is_resumed_all_freed() {
    static T: Tally = Tally::new();
    let _s = serial();
    T.track(100);
    let nodes = hooked_ring(&T, &[panics_in_drop, no_hook, panics_differently, no_hook]);
    drop(nodes);
    let payload = catch_unwind(collect).expect_err("must panic");
    let text = panic_text(&*payload);
    assert!(
        text == "destructor panics" || text == "another destructor panics",
        "{text}"
    );
    T.assert_clean();
    // Nothing was left buffered to panic again.
    assert!(catch_unwind(collect).is_ok());
}

/// The report of an automatic collection's panic goes to the hook set with
/// `set_report_hook` (not to stderr), with its kind and the panic message.
#[test]
fn report_hook_receives_automatic_collection_panics() {
    static T: Tally = Tally::new();
    static SEEN: Mutex<Vec<(arcycle::ReportKind, String)>> = Mutex::new(Vec::new());
    let _s = serial();
    let _restore = Settings::save();
    // Inline mode: this test checks where and when automatic collections
    // run (background mode is `tests/gc_module.rs`'s).
    arcycle::set_background(false);
    collect();
    arcycle::set_report_hook(|r| SEEN.lock().unwrap().push((r.kind, r.message.to_string())));
    arcycle::set_threshold(2);
    let nodes = hooked_ring(&T, &[no_hook, panics_in_drop, no_hook]);
    arcycle::disable();
    drop(nodes);
    arcycle::enable(); // re-arms the trigger: 3 pending >= 2
    let r = catch_unwind(|| Cc::new(1u8));
    arcycle::reset_report_hook();
    assert!(r.is_ok(), "Cc::new must not panic");
    T.assert_clean();
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, arcycle::ReportKind::PanicInAutomaticCollection);
    assert!(seen[0].1.contains("destructor panics"), "{}", seen[0].1);
}

#[test]
fn panicking_destructor_in_automatic_collection_is_reported_not_resumed() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // Inline mode: this test checks where and when automatic collections
    // run (background mode is `tests/gc_module.rs`'s).
    arcycle::set_background(false);
    collect();
    arcycle::enable();
    arcycle::set_threshold(2);
    let nodes = hooked_ring(&T, &[no_hook, panics_in_drop, no_hook]);
    // Stage three roots without a collection (drops can start one too),
    // then re-arm the trigger: 3 pending >= threshold 2.
    arcycle::disable();
    drop(nodes);
    arcycle::enable();
    let before = arcycle::stats().collections;
    // The automatic collection runs inside this allocation; its panic is
    // reported on stderr and swallowed, not thrown out of `Cc::new`.
    let r = catch_unwind(|| Cc::new(1u8));
    assert!(r.is_ok(), "Cc::new must not panic");
    assert!(arcycle::stats().collections > before);
    T.assert_clean();
}

// ------------------------------------------------ meeting collected peers

#[derive(Debug, Default)]
struct Seen {
    is_dead: bool,
    try_deref_none: bool,
    upgrade_none: bool,
    weak_strong_count: usize,
    debug: String,
    deref_panic: Option<String>,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

fn inspect_peer(me: &mut Hooked) {
    let peers = me.peers.get_mut().unwrap();
    let peer = &peers[0];
    let weak = me.weak_peers.get_mut().unwrap()[0].clone();
    let deref = catch_unwind(AssertUnwindSafe(|| {
        let v: &Hooked = peer;
        v.probe.id()
    }));
    SEEN.lock().unwrap().push(Seen {
        is_dead: Cc::is_dead(peer),
        try_deref_none: Cc::try_deref(peer).is_none(),
        upgrade_none: weak.upgrade().is_none(),
        weak_strong_count: weak.strong_count(),
        debug: format!("{peer:?}"),
        deref_panic: deref.err().map(|p| panic_text(&*p)),
    });
}

#[test]
fn destructor_meets_collected_peer_clearly() {
    static T: Tally = Tally::new();
    let _s = serial();
    SEEN.lock().unwrap().clear();
    let nodes = hooked_ring(&T, &[inspect_peer, inspect_peer, inspect_peer]);
    drop(nodes);
    // The panics are caught inside the destructors: collect() is clean.
    assert!(collect() >= 3);
    T.assert_clean();
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    assert_eq!(seen.len(), 3);
    for s in seen {
        // Whatever the order of destruction, every peer is already dead
        // for the collector: all were marked before any destructor ran.
        assert!(s.is_dead, "{s:?}");
        assert!(s.try_deref_none, "{s:?}");
        assert!(s.upgrade_none, "{s:?}");
        assert_eq!(s.weak_strong_count, 0, "{s:?}");
        assert_eq!(s.debug, "<collected>");
        let msg = s
            .deref_panic
            .expect("dereferencing a collected peer must panic");
        assert!(msg.contains(DEAD_PEER), "unclear message: {msg}");
        assert!(
            msg.contains("Hooked"),
            "message should name the type: {msg}"
        );
    }
}

fn deref_peer_uncaught(me: &mut Hooked) {
    let peer = &me.peers.get_mut().unwrap()[0];
    let _ = peer.probe.id();
}

#[test]
fn uncaught_dead_deref_in_destructor_reaches_collect_caller() {
    static T: Tally = Tally::new();
    let _s = serial();
    let nodes = hooked_ring(&T, &[deref_peer_uncaught, no_hook]);
    drop(nodes);
    let payload = catch_unwind(collect).expect_err("the dead deref must panic");
    let msg = panic_text(&*payload);
    assert!(msg.contains(DEAD_PEER), "unclear message: {msg}");
    T.assert_clean();
}

static STASH: Mutex<Vec<Cc<Hooked>>> = Mutex::new(Vec::new());

fn stash_peer(me: &mut Hooked) {
    let peer = me.peers.get_mut().unwrap()[0].clone();
    // Clones of a dead handle work (they only keep the allocation).
    let extra = peer.clone();
    drop(extra);
    STASH.lock().unwrap().push(peer);
}

#[test]
fn destructor_stashes_collected_peer_in_a_global() {
    static T: Tally = Tally::new();
    let _s = serial();
    T.track(10);
    let nodes = hooked_ring(&T, &[stash_peer, stash_peer]);
    let weak = Cc::downgrade(&nodes[0]);
    drop(nodes);
    assert!(collect() >= 2);
    // Every value was dropped exactly once; the stash holds dead handles.
    T.assert_clean();
    let stash = std::mem::take(&mut *STASH.lock().unwrap());
    assert_eq!(stash.len(), 2);
    for s in &stash {
        assert!(Cc::is_dead(s));
        assert!(Cc::try_deref(s).is_none());
        assert_eq!(format!("{s:?}"), "<collected>");
        let r = catch_unwind(AssertUnwindSafe(|| get(s).probe.id()));
        let msg = panic_text(&*r.expect_err("deref of a stashed dead handle"));
        assert!(msg.contains(DEAD_PEER), "{msg}");
        let c = s.clone();
        assert!(Cc::ptr_eq(&c, s));
    }
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.strong_count(), 0);
    // Collections with dead handles around are harmless, and dropping the
    // stash later frees the allocations without running anything again.
    collect();
    drop(stash);
    collect();
    T.assert_clean();
}

/// A live holder the destructors below stash collected peers into.
#[derive(Trace)]
struct Holder {
    probe: Probe,
    stash: Mutex<Vec<Cc<Hooked>>>,
}

static HOLDER: Mutex<Option<Cc<Holder>>> = Mutex::new(None);

fn stash_peer_in_live_holder(me: &mut Hooked) {
    let peer = me.peers.get_mut().unwrap()[0].clone();
    let holder = HOLDER.lock().unwrap().clone().expect("holder");
    holder.stash.lock().unwrap().push(peer);
    drop(holder); // leaves the holder's count above zero: buffered
}

#[test]
fn collected_peer_stashed_in_live_data_is_skipped_by_later_collections() {
    static T: Tally = Tally::new();
    let _s = serial();
    let holder = Cc::new(Holder {
        probe: Probe::new(&T),
        stash: Mutex::new(Vec::new()),
    });
    *HOLDER.lock().unwrap() = Some(holder.clone());
    let nodes = hooked_ring(&T, &[stash_peer_in_live_holder, no_hook, no_hook]);
    drop(nodes);
    assert!(collect() >= 3);
    assert_eq!(T.live(), 1, "only the holder is alive");
    // The holder is live data with an edge to a dead object: tracing it
    // must skip that edge, and it survives.
    drop(holder);
    collect();
    assert_eq!(T.live(), 1);
    let holder = HOLDER.lock().unwrap().take().unwrap();
    assert_eq!(holder.stash.lock().unwrap().len(), 1);
    assert!(Cc::is_dead(&holder.stash.lock().unwrap()[0]));
    drop(holder);
    T.assert_clean();
}

fn stash_in_holder_then_collect(me: &mut Hooked) {
    stash_peer_in_live_holder(me);
    collect();
}

/// A destructor stashes its (dead, not yet released) peer in live data and
/// then collects: the nested collection traces the live holder and meets
/// the dead peer, which the outer collection still holds.
#[test]
fn nested_collect_meets_stashed_peer_still_held_by_outer_collection() {
    static T: Tally = Tally::new();
    let _s = serial();
    let holder = Cc::new(Holder {
        probe: Probe::new(&T),
        stash: Mutex::new(Vec::new()),
    });
    *HOLDER.lock().unwrap() = Some(holder.clone());
    let nodes = hooked_ring(&T, &[stash_in_holder_then_collect, no_hook]);
    drop(nodes);
    let r = catch_unwind(collect);
    let holder_again = HOLDER.lock().unwrap().take().unwrap();
    drop(holder_again);
    if let Err(p) = &r {
        panic!("collect() panicked: {}", panic_text(&**p));
    }
    assert_eq!(T.live(), 1, "only the holder is alive");
    drop(holder);
    T.assert_clean();
}

// ------------------------------------------------ destructors that collect

static NESTED_FREED: AtomicUsize = AtomicUsize::new(0);
static NESTED_T: Tally = Tally::new();

fn make_garbage_and_collect(_: &mut Hooked) {
    // Allocate a new garbage cycle from inside a destructor, then collect
    // it with a nested collection.
    let r = ring(&NESTED_T, 3);
    drop(r);
    NESTED_FREED.fetch_add(collect(), SeqCst);
}

#[test]
fn destructors_that_collect() {
    static T: Tally = Tally::new();
    let _s = serial();
    T.track(100);
    NESTED_T.track(100);
    let nodes = hooked_ring(
        &T,
        &[make_garbage_and_collect, no_hook, make_garbage_and_collect],
    );
    drop(nodes);
    let outer = collect();
    assert!(outer >= 3);
    T.assert_clean();
    // Each nested collection freed at least its own new ring.
    assert!(NESTED_FREED.load(SeqCst) >= 6);
    collect();
    NESTED_T.assert_clean();
}

// ------------------------------------------------ Trace impls that panic

/// A node whose `Trace` impl panics on one chosen call (counted from when
/// it is armed), then behaves.
struct Touchy {
    #[allow(dead_code)] // held for its drop tally
    probe: Probe,
    next: Mutex<Option<Cc<Touchy>>>,
    /// Calls left before the panicking one; `usize::MAX` = disarmed.
    fuse: AtomicUsize,
}

// SAFETY: reports exactly the handle in `next`, through `Mutex`'s impl;
// a panic before that reports nothing, which is safe.
unsafe impl Trace for Touchy {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        let left = self.fuse.load(SeqCst);
        if left != usize::MAX {
            if left == 0 {
                self.fuse.store(usize::MAX, SeqCst);
                panic!("trace panics");
            }
            self.fuse.store(left - 1, SeqCst);
        }
        self.next.trace(tracer);
    }
}

fn touchy(tally: &'static Tally) -> Cc<Touchy> {
    Cc::new(Touchy {
        probe: Probe::new(tally),
        next: Mutex::new(None),
        fuse: AtomicUsize::new(usize::MAX),
    })
}

/// A `Trace` impl that panicked is reported once (the panic reaches the
/// caller of `collect()`), and its object is quarantined: never traced
/// again, so later collections neither panic nor free it (it leaks, as an
/// under-reporting impl would), and it is counted in `Stats::quarantined`
/// until its last handle goes. (Issue 7: a cycle whose `Trace` always
/// panics used to make every later `collect()` panic again.)
#[test]
fn panicking_trace_of_a_root_is_resumed_once_then_quarantined() {
    static T: Tally = Tally::new();
    let _s = serial();
    for fuse in [0, 1] {
        // fuse 0: panics in the first pass, both nodes roots. 1: in the
        // verification pass, with only `a` a root (`b` is moved into its
        // field, never buffered): pass 1 decides a 2-cycle of roots in
        // their batch (`collector::early`), tracing each once.
        let a = touchy(&T);
        let b = touchy(&T);
        *b.next.lock().unwrap() = Some(a.clone());
        a.fuse.store(fuse, SeqCst);
        let wa = Cc::downgrade(&a);
        if fuse == 0 {
            *a.next.lock().unwrap() = Some(b.clone());
            drop(b); // both are roots
        } else {
            *a.next.lock().unwrap() = Some(b); // only `a` is
        }
        drop(a);
        let q0 = arcycle::stats().quarantined;
        let payload = catch_unwind(collect).expect_err("the Trace panic is resumed");
        assert_eq!(panic_text(&*payload), "trace panics");
        assert_eq!(T.live(), 2, "nothing freed by the failed collection");
        assert_eq!(arcycle::stats().quarantined, q0 + 1);
        for _ in 0..2 {
            assert!(catch_unwind(collect).is_ok(), "reported once, not again");
        }
        assert_eq!(T.live(), 2, "the quarantined cycle is kept");
        release_touchy_cycle(&wa);
        T.assert_clean();
        collect();
        assert_eq!(arcycle::stats().quarantined, q0, "gone once its value is");
    }
}

/// Break a quarantined `Touchy` 2-cycle by hand (as a program that knows
/// about it can): take the edge out of the node `w` points to.
fn release_touchy_cycle(w: &Weak<Touchy>) {
    let a = w.upgrade().expect("the quarantined cycle is alive");
    let next = a.next.lock().unwrap().take();
    drop(next);
    drop(a);
}

/// `fuse` as in `Touchy`: the panicking node `p` is only reached as a
/// child of the collection's root `a`, never a root itself.
fn panicking_trace_of_a_non_root(fuse: usize) {
    static T: Tally = Tally::new();
    let a = touchy(&T);
    let p = touchy(&T);
    *a.next.lock().unwrap() = Some(p.clone());
    *p.next.lock().unwrap() = Some(a.clone());
    // p's root entry is consumed while the cycle is still live.
    drop(p);
    collect();
    assert_eq!(T.live(), 2);
    // Now only a is buffered; p's trace will panic once.
    // (Through a borrow: a temporary clone of p would buffer it again.)
    a.next
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .fuse
        .store(fuse, SeqCst);
    let wa = Cc::downgrade(&a);
    drop(a);
    let q0 = arcycle::stats().quarantined;
    let payload = catch_unwind(collect).expect_err("the Trace panic is resumed");
    assert_eq!(panic_text(&*payload), "trace panics");
    assert_eq!(arcycle::stats().quarantined, q0 + 1);
    for _ in 0..3 {
        assert!(catch_unwind(collect).is_ok(), "reported once, not again");
    }
    assert_eq!(
        T.live(),
        2,
        "the quarantined child keeps itself and what reaches it"
    );
    release_touchy_cycle(&wa);
    assert_eq!(T.live(), 0, "breaking the cycle by hand frees it");
    collect();
    assert_eq!(arcycle::stats().quarantined, q0);
}

#[test]
fn panicking_trace_of_a_non_root_first_pass() {
    let _s = serial();
    panicking_trace_of_a_non_root(0);
}

#[test]
fn panicking_trace_of_a_non_root_verification_pass() {
    let _s = serial();
    panicking_trace_of_a_non_root(1);
}

/// The inside of a [`Scattered`] node's lock: its `Trace` panics once,
/// in its `fuse`-th trace (0: never).
struct FusedEdge {
    next: Option<Cc<Scattered>>,
    fuse: AtomicUsize,
}

// SAFETY: reports exactly the handle in `next`; a panic before that
// reports nothing, which is safe.
unsafe impl Trace for FusedEdge {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        let fuse = self.fuse.load(SeqCst);
        if fuse > 0 {
            self.fuse.store(fuse - 1, SeqCst);
            if fuse == 1 {
                panic!("deferred trace panics");
            }
        }
        if let Some(next) = &self.next {
            tracer.edge(next);
        }
    }
}

#[derive(Trace)]
struct Scattered {
    #[trace(skip)]
    #[allow(dead_code)] // held for its drop tally
    probe: Probe,
    inner: Mutex<FusedEdge>,
}

/// Pass 1 reads the values behind a batch's locks after taking them all
/// when the batch's objects are scattered in memory (`trace::Deferred`):
/// a `Trace` that panics there is handled as one that panics at once —
/// reported once, its object quarantined, every other cycle freed — and
/// on either path the lock is not poisoned (its guard was the collector's).
#[test]
fn panicking_trace_behind_a_lock_in_a_scattered_batch() {
    static T: Tally = Tally::new();
    let _s = serial();
    scattered_batch_with_a_panicking_trace(&T, 1, true);
}

/// As above, the panic in validation's trace of the same scattered batch
/// (the object's second trace, which keeps the guards of the whole batch
/// until the decision). Only one node of each 2-cycle is a root, so that
/// pass 1 cannot decide the cycles in their batches (`collector::early`).
#[test]
fn panicking_validation_trace_behind_a_lock_in_a_scattered_batch() {
    static T: Tally = Tally::new();
    let _s = serial();
    scattered_batch_with_a_panicking_trace(&T, 2, false);
}

/// 64 garbage 2-cycles of scattered nodes (both nodes roots, or only the
/// first); one node's trace panics in its `fuse`-th trace.
fn scattered_batch_with_a_panicking_trace(tally: &'static Tally, fuse: usize, both_roots: bool) {
    let scattered = || {
        Cc::new(Scattered {
            probe: Probe::new(tally),
            inner: Mutex::new(FusedEdge {
                next: None,
                fuse: AtomicUsize::new(0),
            }),
        })
    };
    // Nodes more than a page apart (each followed by an 8 KiB pad), so
    // that the roots, taken in the order they were dropped, make batches
    // that defer.
    let mut pads = Vec::new();
    let mut pairs = Vec::new();
    let mut w = None;
    for i in 0..64 {
        let a = scattered();
        pads.push(vec![1u8; 8192]);
        let b = scattered();
        pads.push(vec![1u8; 8192]);
        b.inner.lock().unwrap().next = Some(a.clone());
        if i == 40 {
            b.inner.lock().unwrap().fuse.store(fuse, SeqCst);
            w = Some(Cc::downgrade(&b));
        }
        if both_roots {
            a.inner.lock().unwrap().next = Some(b.clone());
            pairs.push(a);
            pairs.push(b);
        } else {
            // Moved: `b` is never buffered.
            a.inner.lock().unwrap().next = Some(b);
            pairs.push(a);
        }
    }
    let w = w.expect("pair 40 exists");
    drop(pairs);
    let q0 = arcycle::stats().quarantined;
    let payload = catch_unwind(collect).expect_err("the Trace panic is resumed");
    assert_eq!(panic_text(&*payload), "deferred trace panics");
    assert_eq!(arcycle::stats().quarantined, q0 + 1);
    assert!(catch_unwind(collect).is_ok(), "reported once, not again");
    assert_eq!(
        tally.live(),
        2,
        "every cycle but the quarantined one is freed"
    );
    let b = w.upgrade().expect("the quarantined cycle is alive");
    assert!(
        !b.inner.is_poisoned(),
        "the panic happened while the collector held the lock: not poisoned"
    );
    let next = b.inner.lock().unwrap().next.take();
    drop((next, b));
    tally.assert_clean();
    collect();
    assert_eq!(arcycle::stats().quarantined, q0);
    drop(pads);
}

#[test]
fn collect_from_inside_trace_panics_clearly() {
    static T: Tally = Tally::new();
    let _s = serial();
    struct Reentrant {
        probe: Probe,
        me: Mutex<Option<Cc<Reentrant>>>,
        armed: AtomicBool,
    }
    static MSG: Mutex<Option<String>> = Mutex::new(None);
    // SAFETY: reports the handle in `me` through `Mutex`'s impl.
    unsafe impl Trace for Reentrant {
        fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
            if self.armed.swap(false, SeqCst) {
                let r = catch_unwind(collect);
                *MSG.lock().unwrap() = r.err().map(|p| panic_text(&*p));
            }
            self.me.trace(tracer);
        }
    }
    let a = Cc::new(Reentrant {
        probe: Probe::new(&T),
        me: Mutex::new(None),
        armed: AtomicBool::new(true),
    });
    *a.me.lock().unwrap() = Some(a.clone());
    assert_eq!(a.probe.id(), 0);
    drop(a);
    assert!(collect() >= 1);
    let msg = MSG
        .lock()
        .unwrap()
        .take()
        .expect("collect() inside Trace must panic");
    assert!(msg.contains("Trace"), "{msg}");
    T.assert_clean();
}

// ------------------------------------------------ threads and teardown

/// What a thread-local holds: a handle into a garbage-to-be cycle and the
/// head of an acyclic chain, optionally collecting from its destructor.
struct Teardown {
    cycle: Option<Cc<Node>>,
    chain: Option<Cc<Node>>,
    collect_in_drop: bool,
}

static TEARDOWN_COLLECTED: AtomicUsize = AtomicUsize::new(0);

impl Drop for Teardown {
    fn drop(&mut self) {
        drop(self.cycle.take());
        drop(self.chain.take());
        if self.collect_in_drop {
            TEARDOWN_COLLECTED.fetch_add(collect(), SeqCst);
        }
    }
}

thread_local! {
    static TEARDOWN: RefCell<Option<Teardown>> = const { RefCell::new(None) };
}

fn chain(tally: &'static Tally, n: usize) -> Cc<Node> {
    let head = Node::new(tally);
    let mut cur = head.clone();
    for _ in 1..n {
        let next = Node::new(tally);
        Node::link(&cur, &next);
        cur = next;
    }
    head
}

/// Run a thread whose thread-local holds the last outside handles to a
/// cycle and a chain. `crate_tls_first` decides whether the crate's own
/// thread-locals are initialised before ours (so destroyed after it) or
/// after (so, usually, destroyed before ours runs).
fn teardown_thread(tally: &'static Tally, crate_tls_first: bool, collect_in_drop: bool) {
    std::thread::spawn(move || {
        if crate_tls_first {
            // Buffer a root and run a destruction: initialises the crate's
            // thread-locals (shard choice, destruction trampoline).
            let warm = ring(tally, 2);
            drop(warm);
            drop(Node::new(tally));
        }
        let cycle = ring(tally, 3);
        let chain = chain(tally, 1000);
        TEARDOWN.with(|t| {
            *t.borrow_mut() = Some(Teardown {
                cycle: Some(cycle[0].clone()),
                chain: Some(chain),
                collect_in_drop,
            })
        });
        drop(cycle);
        if !crate_tls_first {
            let warm = ring(tally, 2);
            drop(warm);
            drop(Node::new(tally));
        }
    })
    .join()
    .expect("dropping Cc handles during thread-local teardown must not panic");
}

#[test]
fn drops_during_thread_local_teardown() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // The chain's 1000 roots could start an automatic collection (the
    // trigger's floor), which would free what our collect() counts.
    arcycle::disable();
    for crate_tls_first in [true, false] {
        teardown_thread(&T, crate_tls_first, false);
        // The chain went at teardown; the cycles were buffered by the dead
        // thread and are collected here.
        assert!(collect() >= 3);
        T.assert_clean();
    }
}

#[test]
fn collect_during_thread_local_teardown() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // The chain's 1000 roots could start an automatic collection (the
    // trigger's floor), which would free what our collect() counts.
    arcycle::disable();
    for crate_tls_first in [true, false] {
        TEARDOWN_COLLECTED.store(0, SeqCst);
        teardown_thread(&T, crate_tls_first, true);
        assert!(TEARDOWN_COLLECTED.load(SeqCst) >= 3);
        collect();
        T.assert_clean();
    }
}

#[test]
fn roots_buffered_by_exited_threads_are_collected_elsewhere() {
    static T: Tally = Tally::new();
    let _s = serial();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..25 {
                    drop(ring(&T, 4));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(T.dropped(), 0);
    assert!(collect() >= 400);
    T.assert_clean();
}

/// Garbage buffered up front, then `collect()` on many threads at once:
/// every object is freed exactly once, by exactly one of the calls, and
/// their destructors (which meet dead peers) run wherever that call was.
#[test]
fn collect_from_many_threads_at_once() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable(); // every object is freed by one of our collect()s
    const THREADS: usize = 8;
    let rings = common::scaled(200, 4);
    T.track(rings * 10);
    for _ in 0..rings {
        drop(hooked_ring(
            &T,
            &[inspect_peer_quietly as fn(&mut Hooked); 10],
        ));
    }
    let barrier = Barrier::new(THREADS);
    let total: usize = std::thread::scope(|s| {
        let joins: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    collect()
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).sum()
    });
    T.assert_clean();
    assert!(total >= rings * 10, "freed {total}");
}

/// A destructor that looks at its (dead) peer without recording anything.
fn inspect_peer_quietly(me: &mut Hooked) {
    let peer = &me.peers.get_mut().unwrap()[0];
    assert!(Cc::is_dead(peer));
    assert!(Cc::try_deref(peer).is_none());
}

/// Threads that drop cycles and collect at the same time: collections
/// overlap each other and the drops.
#[test]
fn collect_from_many_threads_while_dropping() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    arcycle::disable(); // every object is freed by one of our collect()s
    const THREADS: usize = 8;
    let rounds = common::scaled(60, 3);
    T.track(THREADS * rounds * 10);
    let barrier = Barrier::new(THREADS);
    let total: usize = std::thread::scope(|s| {
        let joins: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut freed = 0;
                    barrier.wait();
                    for _ in 0..rounds {
                        drop(ring(&T, 10));
                        freed += collect();
                    }
                    freed
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).sum()
    });
    let total = total + collect();
    T.assert_clean();
    assert!(total >= THREADS * rounds * 10, "freed {total}");
}

// ------------------------------------------------ panics while dropping acyclic data

/// A value whose destructor may panic, holding an optional child.
#[derive(Trace)]
struct Bomb {
    probe: Probe,
    panics: bool,
    child: Option<Cc<Bomb>>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.panics {
            panic!("bomb");
        }
    }
}

fn bomb(tally: &'static Tally, panics: bool, child: Option<Cc<Bomb>>) -> Cc<Bomb> {
    Cc::new(Bomb {
        probe: Probe::new(tally),
        panics,
        child,
    })
}

/// As with `Arc`, a destructor's panic propagates out of the `drop` that
/// ran it — and afterwards this thread must still destroy what it drops.
#[test]
fn panicking_destructor_of_a_root_does_not_break_later_drops() {
    static T: Tally = Tally::new();
    let _s = serial();
    std::thread::spawn(|| {
        // The panicking value itself is the one dropped.
        let r = catch_unwind(AssertUnwindSafe(|| drop(bomb(&T, true, None))));
        assert_eq!(panic_text(&*r.expect_err("the panic propagates")), "bomb");
        assert_eq!(T.live(), 0);
        drop(bomb(&T, false, Some(bomb(&T, false, None))));
        assert_eq!(T.live(), 0, "later drops on this thread still destroy");
    })
    .join()
    .unwrap();
    T.assert_clean();
}

/// The panicking destructor belongs to a *child* destroyed by the parent's
/// drop (so by the destruction trampoline, after the parent).
#[test]
fn panicking_destructor_of_a_child_does_not_break_later_drops() {
    static T: Tally = Tally::new();
    let _s = serial();
    std::thread::spawn(|| {
        let parent = bomb(&T, false, Some(bomb(&T, true, None)));
        let r = catch_unwind(AssertUnwindSafe(|| drop(parent)));
        assert_eq!(panic_text(&*r.expect_err("the panic propagates")), "bomb");
        assert_eq!(T.live(), 0, "parent and child were both destroyed");
        // Any later destruction on this thread.
        drop(bomb(&T, false, None));
        assert_eq!(
            T.live(),
            0,
            "a later drop on this thread must destroy its value"
        );
    })
    .join()
    .unwrap();
    T.assert_clean();
}

/// The same through the collector: a garbage cycle owns an acyclic child
/// whose destructor panics; the collecting thread must keep working.
#[test]
fn panicking_acyclic_destructor_under_the_collector_does_not_break_the_thread() {
    static T: Tally = Tally::new();
    let _s = serial();
    std::thread::spawn(|| {
        #[derive(Trace)]
        struct Owner {
            probe: Probe,
            me: Mutex<Option<Cc<Owner>>>,
            // Not traced: the collector frees only `Owner`; the chain below
            // is destroyed by counting, inside the collector's destruction.
            #[trace(skip)]
            grandchild_holder: Option<Cc<Bomb>>,
        }
        // owner (self-loop) -> holder -> bomb (panics)
        let owner = Cc::new(Owner {
            probe: Probe::new(&T),
            me: Mutex::new(None),
            grandchild_holder: Some(bomb(&T, false, Some(bomb(&T, true, None)))),
        });
        *owner.me.lock().unwrap() = Some(owner.clone());
        assert!(owner.grandchild_holder.is_some());
        drop(owner);
        let r = catch_unwind(collect);
        assert_eq!(panic_text(&*r.expect_err("resumed by collect()")), "bomb");
        assert_eq!(T.live(), 0, "everything was destroyed");
        drop(bomb(&T, false, None));
        assert_eq!(
            T.live(),
            0,
            "a later drop on the collecting thread must destroy"
        );
    })
    .join()
    .unwrap();
    T.assert_clean();
}

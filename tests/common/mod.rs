//! Shared helpers for the integration tests: drop accounting with canaries,
//! a general-purpose graph node, serialisation of tests that share the
//! process-wide collector, and a seeded deterministic RNG.
//!
//! Every test binary compiles its own copy of this module, so each binary
//! has its own `serial()` lock and every `static Tally` is private to the
//! test that declares it.

// Each binary uses a different subset of these helpers.
#![allow(dead_code)]

use arcycle::{Cc, Trace};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The canary of a live value.
pub const ALIVE: u64 = 0xA11C_E5A1_1CE5_A11C;
/// What a dropped value's canary is overwritten with.
pub const POISON: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// Per-test drop accounting. Declare one `static` per test:
///
/// ```ignore
/// static T: Tally = Tally::new();
/// ```
///
/// Every [`Probe`] created against it counts one creation, every probe
/// dropped counts one drop; a drop that finds its canary broken, or an id
/// dropped a second time, is counted separately so the test can assert on
/// it (panicking inside a destructor run by the collector would only be
/// resumed by whichever thread happened to collect).
pub struct Tally {
    created: AtomicUsize,
    dropped: AtomicUsize,
    /// Drops or checks that found the canary already poisoned or garbage.
    broken: AtomicUsize,
    /// Ids (below the tracked capacity) dropped more than once.
    twice: AtomicUsize,
    /// One drop counter per id, when enabled with [`Tally::track`].
    ids: OnceLock<Box<[AtomicU8]>>,
}

impl Tally {
    pub const fn new() -> Tally {
        Tally {
            created: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            broken: AtomicUsize::new(0),
            twice: AtomicUsize::new(0),
            ids: OnceLock::new(),
        }
    }

    /// Keep a drop count per id for the first `capacity` ids, so that a
    /// value dropped twice is caught even if another leaked.
    pub fn track(&self, capacity: usize) {
        let _ = self
            .ids
            .set((0..capacity).map(|_| AtomicU8::new(0)).collect());
    }

    pub fn created(&self) -> usize {
        self.created.load(SeqCst)
    }

    pub fn dropped(&self) -> usize {
        self.dropped.load(SeqCst)
    }

    pub fn live(&self) -> usize {
        self.created() - self.dropped()
    }

    pub fn broken(&self) -> usize {
        self.broken.load(SeqCst)
    }

    pub fn twice(&self) -> usize {
        self.twice.load(SeqCst)
    }

    /// Whether the value with this id has been dropped (needs `track`).
    pub fn is_dropped(&self, id: usize) -> bool {
        let ids = self.ids.get().expect("Tally::track was not called");
        ids[id].load(SeqCst) != 0
    }

    fn on_drop(&self, id: usize, canary: u64) {
        if canary != ALIVE {
            self.broken.fetch_add(1, SeqCst);
        }
        if let Some(ids) = self.ids.get() {
            if let Some(slot) = ids.get(id) {
                if slot.fetch_add(1, SeqCst) != 0 {
                    self.twice.fetch_add(1, SeqCst);
                }
            }
        }
        self.dropped.fetch_add(1, SeqCst);
    }

    /// Nothing broken, nothing dropped twice, and (call after the final
    /// `collect()`) nothing leaked: every value created was dropped.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_eq!(self.broken(), 0, "a canary was broken");
        assert_eq!(self.twice(), 0, "a value was dropped twice");
        assert_eq!(
            self.dropped(),
            self.created(),
            "leak: {} of {} values were never dropped",
            self.live(),
            self.created()
        );
    }

    /// Nothing broken or dropped twice so far (values may still be live).
    #[track_caller]
    pub fn assert_sound(&self) {
        assert_eq!(self.broken(), 0, "a canary was broken");
        assert_eq!(self.twice(), 0, "a value was dropped twice");
        assert!(self.dropped() <= self.created(), "more drops than values");
    }
}

/// A field that counts its value's creation and drop against a [`Tally`]
/// and carries a canary: [`Probe::check`] panics once the value has been
/// dropped (or its memory reused), and `Drop` poisons it.
///
/// The canary is an atomic so that a test thread checking it while the
/// collector wrongly destroys the value is a detected bug, not a data race
/// in the test itself.
pub struct Probe {
    canary: AtomicU64,
    id: usize,
    tally: &'static Tally,
}

arcycle::leaf!(Probe);

impl Probe {
    pub fn new(tally: &'static Tally) -> Probe {
        let id = tally.created.fetch_add(1, SeqCst);
        Probe {
            canary: AtomicU64::new(ALIVE),
            id,
            tally,
        }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn is_alive(&self) -> bool {
        self.canary.load(SeqCst) == ALIVE
    }

    /// Panic unless the canary is intact.
    #[track_caller]
    pub fn check(&self) {
        let c = self.canary.load(SeqCst);
        if c != ALIVE {
            self.tally.broken.fetch_add(1, SeqCst);
            panic!("canary broken: {c:#x} (value used after it was dropped)");
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let canary = self.canary.swap(POISON, SeqCst);
        self.tally.on_drop(self.id, canary);
    }
}

/// Values that carry a [`Probe`].
pub trait Probed {
    fn probe(&self) -> &Probe;
}

/// Dereference `cc`, checking the canary of what it points to.
#[track_caller]
pub fn get<T: Trace + Probed>(cc: &Cc<T>) -> &T {
    let v: &T = cc;
    v.probe().check();
    v
}

/// The general-purpose graph node: a probe and out-edges behind a lock.
#[derive(Trace)]
pub struct Node {
    pub probe: Probe,
    pub edges: Mutex<Vec<Cc<Node>>>,
}

impl Probed for Node {
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

impl Node {
    pub fn new(tally: &'static Tally) -> Cc<Node> {
        Cc::new(Node {
            probe: Probe::new(tally),
            edges: Mutex::new(Vec::new()),
        })
    }

    /// Add the edge `from -> to`.
    pub fn link(from: &Cc<Node>, to: &Cc<Node>) {
        get(from).edges.lock().unwrap().push(to.clone());
    }

    pub fn id(this: &Cc<Node>) -> usize {
        get(this).probe.id()
    }

    /// Number of out-edges.
    pub fn degree(this: &Cc<Node>) -> usize {
        get(this).edges.lock().unwrap().len()
    }
}

/// `n` nodes, node `i` linked to node `i + 1`, the last to the first.
pub fn ring(tally: &'static Tally, n: usize) -> Vec<Cc<Node>> {
    let nodes: Vec<_> = (0..n).map(|_| Node::new(tally)).collect();
    for i in 0..n {
        Node::link(&nodes[i], &nodes[(i + 1) % n]);
    }
    nodes
}

/// `n` nodes, every node linked to every node (itself included).
pub fn clique(tally: &'static Tally, n: usize) -> Vec<Cc<Node>> {
    let nodes: Vec<_> = (0..n).map(|_| Node::new(tally)).collect();
    for a in &nodes {
        for b in &nodes {
            Node::link(a, b);
        }
    }
    nodes
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialise the tests of one binary.
///
/// The collector is process-wide and the test harness runs tests on
/// parallel threads. Besides one test's `collect()` returning another's
/// count, a `collect()` can return while a *concurrent* collection on
/// another thread is still running the destructors of garbage it took from
/// the buffer (see `concurrent::collect_waits_for_concurrent_destruction`),
/// so "after my collect() my garbage is gone" only holds when no other
/// test collects at the same time. Each test that asserts on what was
/// freed holds this lock; its own internal concurrency is what it tests.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Saves the collector's global settings and restores them on drop (also
/// when the test fails), so a test that changes them cannot leak its
/// settings into the next one. Hold [`serial`] while it lives.
pub struct Settings {
    threshold: usize,
    heap_fraction: f64,
    enabled: bool,
    background: bool,
    quiet: std::time::Duration,
    pace: Option<std::time::Duration>,
}

impl Settings {
    /// Save the settings, then turn automatic collection off, make
    /// collections run inline on the calling thread, and collect once to
    /// settle what earlier tests left buffered. Hold [`serial`].
    pub fn manual_inline() -> Settings {
        let saved = Settings::save();
        arcycle::disable();
        arcycle::set_background(false);
        arcycle::collect();
        saved
    }

    pub fn save() -> Settings {
        Settings {
            threshold: arcycle::threshold(),
            heap_fraction: arcycle::heap_fraction(),
            enabled: arcycle::is_enabled(),
            background: arcycle::is_background(),
            quiet: arcycle::quiet_period(),
            pace: arcycle::pace_limit(),
        }
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        arcycle::set_quiet_period(self.quiet);
        arcycle::set_pace_limit(self.pace);
        arcycle::set_background(self.background);
        arcycle::set_threshold(self.threshold);
        arcycle::set_heap_fraction(self.heap_fraction);
        if self.enabled {
            arcycle::enable();
        } else {
            arcycle::disable();
        }
    }
}

/// A seeded `fastrand` generator: deterministic (a fixed seed gives a fixed
/// stream), good enough to pick nodes.
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.0.u64(..one_in) == 0
    }
}

/// The message of a panic payload, if it is a string.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Scale an iteration count down under Miri.
pub const fn scaled(n: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        n
    }
}

//! Helpers for the curated test subset that runs under Miri
//! (`scripts/miri.sh`) and the sanitizers (`scripts/sanitizers.sh`).
//!
//! The tests depend on `arcycle` only (no rayon, no benchmark peers), keep
//! their sizes tiny under `cfg(miri)`, and join every thread they start, so
//! Miri's leak checker stays on for all of them.
//!
//! Every test binary shares one process-wide collector, and libtest runs
//! tests on parallel threads: every test takes [`serialize`] first, so that
//! exact `collect()` results and drop counts are its own.

use arcycle::{Cc, Trace};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

pub mod chaos;

/// `small` under Miri, `large` otherwise.
pub const fn size(small: usize, large: usize) -> usize {
    if cfg!(miri) {
        small
    } else {
        large
    }
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serialise the tests of one binary (poison-tolerant: a failed test must
/// not fail the others).
pub fn serialize() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts drops of the values it was given to, and checks that none is
/// dropped twice.
#[derive(Clone, Default)]
pub struct Probe(Arc<AtomicUsize>);

impl Probe {
    pub fn new() -> Probe {
        Probe::default()
    }
    pub fn drops(&self) -> usize {
        self.0.load(SeqCst)
    }
    pub fn hit(&self) {
        self.0.fetch_add(1, SeqCst);
    }
}

const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;

/// A cycle-capable node: a mutable edge list behind a `Mutex`, a canary
/// checked on every use and on drop, and a drop counter.
#[derive(Trace)]
pub struct Node {
    #[trace(skip)]
    pub id: usize,
    #[trace(skip)]
    canary: u64,
    #[trace(skip)]
    alive: AtomicBool,
    #[trace(skip)]
    probe: Probe,
    pub next: Mutex<Vec<Cc<Node>>>,
}

impl Node {
    /// Assert that the value is intact and not dropped.
    pub fn check(&self) {
        assert_eq!(
            self.canary,
            CANARY ^ self.id as u64,
            "canary of node {} overwritten",
            self.id
        );
        assert!(self.alive.load(SeqCst), "node {} used after drop", self.id);
    }
    /// Add an edge to `to`.
    pub fn link(&self, to: &Cc<Node>) {
        self.next.lock().unwrap().push(to.clone());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.check();
        self.alive.store(false, SeqCst);
        self.probe.hit();
    }
}

/// A new node counted by `probe`.
pub fn node(id: usize, probe: &Probe) -> Cc<Node> {
    Cc::new(Node {
        id,
        canary: CANARY ^ id as u64,
        alive: AtomicBool::new(true),
        probe: probe.clone(),
        next: Mutex::new(Vec::new()),
    })
}

/// A ring of `n` nodes (`i -> i+1 mod n`); returns the handles.
pub fn ring(n: usize, probe: &Probe) -> Vec<Cc<Node>> {
    let nodes: Vec<_> = (0..n).map(|i| node(i, probe)).collect();
    for i in 0..n {
        nodes[i].link(&nodes[(i + 1) % n]);
    }
    nodes
}

/// Run `f`, expecting it to panic with a message containing `needle`.
pub fn expect_panic<R>(needle: &str, f: impl FnOnce() -> R) {
    let err = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic containing {needle:?}"),
        Err(e) => e,
    };
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        msg.contains(needle),
        "panic {msg:?} does not contain {needle:?}"
    );
}

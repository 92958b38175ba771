//! Shared pieces of the loom models in `tests/models.rs`.
//!
//! Everything here exists only under `--cfg arcycle_loom`; a plain build of this
//! crate is empty, so `cargo test --workspace` stays fast. Run the models
//! with
//!
//! ```text
//! RUSTFLAGS="--cfg arcycle_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p loom-tests --release
//! ```
//!
//! (see `scripts/verify-ci.sh` for the CI bound and `scripts/loom-deep.sh`
//! for the overnight run).
//!
//! # What the models can see
//!
//! Under `cfg(arcycle_loom)` arcycle's header words are loom atomics, its value cell
//! is a loom `UnsafeCell` (so loom checks every read of a value against its
//! drop), and freeing an allocation first takes an unsynchronised access to
//! both header words (so loom reports any use of them that does not
//! happen-before the free). The nodes of the models add loom-visible
//! canaries of their own, kept *outside* the node's memory so that reading
//! them is always defined:
//!
//! * a drop counter (a loom atomic), to assert "dropped exactly once";
//! * an `alive` flag in a loom `UnsafeCell`, written when the value is
//!   dropped and read by every access a model makes through a handle: a read
//!   after the drop either fails the assertion (if ordered after it) or is a
//!   loom causality violation (if not ordered at all);
//! * the canary lives in a loom `Arc`, which loom reports as leaked if a
//!   node's value is never dropped by the end of an execution.
#![cfg(arcycle_loom)]

use arcycle::{Cc, Trace, Weak};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::{Arc, Mutex};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::OnceLock;
use std::time::Instant;

/// The preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set: the CI
/// bound (see `scripts/verify-ci.sh`).
pub const DEFAULT_PREEMPTIONS: usize = 3;

/// Run `f` under loom, bounded by `LOOM_MAX_PREEMPTIONS` (default
/// [`DEFAULT_PREEMPTIONS`]; `ARCYCLE_LOOM_UNBOUNDED=1` removes the bound),
/// and report how many executions it took.
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run_model(name, f, false)
}

/// Run `f` under loom with no preemption bound at all: an exhaustive check
/// (up to loom's DPOR), for models whose state space is small enough to
/// finish in seconds.
pub fn exhaustive<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run_model(name, f, true)
}

fn run_model<F>(name: &str, f: F, exhaustive: bool)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if exhaustive || std::env::var_os("ARCYCLE_LOOM_UNBOUNDED").is_some() {
        builder.preemption_bound = None;
    } else if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        // A collection takes every root-buffer shard lock: far more branch
        // points than loom's default of 1 000 allows.
        builder.max_branches = 100_000;
    }
    if std::env::var_os("LOOM_LOG").is_some() {
        // Debugging a failure: `loom::model` installs the tracing subscriber
        // that prints each execution's schedule (set LOOM_MAX_PREEMPTIONS
        // and LOOM_MAX_BRANCHES yourself; add LOOM_LOCATION=1 for source
        // locations).
        eprintln!("loom model {name}: logging run (LOOM_LOG is set)");
        let _ = exhaustive; // the bound comes from LOOM_MAX_PREEMPTIONS here
        loom::model(f);
        return;
    }
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, SeqCst);
        // Pass 1 decides closed components unless the model says otherwise
        // (see `validation_only`); set per execution, so that a model that
        // failed on this OS thread leaves nothing behind.
        arcycle::__loom_early_validation(true);
        f();
    });
    eprintln!(
        "loom model {name}: {} executions in {:.2?} (preemption bound {:?})",
        executions.load(SeqCst),
        start.elapsed(),
        builder.preemption_bound,
    );
}

/// `f` with pass 1's closed components turned off (`collector/early.rs`),
/// so that every garbage component reaches validation
/// (`collector/validate.rs`): for the models of validation's own races,
/// whose shapes pass 1 would otherwise decide in their batch.
pub fn validation_only<F>(f: F) -> impl Fn() + Send + Sync + 'static
where
    F: Fn() + Send + Sync + 'static,
{
    move || {
        arcycle::__loom_early_validation(false);
        f();
        arcycle::__loom_early_validation(true);
    }
}

/// The loom-visible canary of one node: how often its value was dropped,
/// and whether it is still alive.
#[derive(Clone)]
pub struct Probe(Arc<ProbeInner>);

struct ProbeInner {
    drops: AtomicUsize,
    alive: UnsafeCell<bool>,
}

// SAFETY: `alive` is a loom cell: every access to it is checked by loom
// for a data race, which is the point of the canary; `drops` is atomic.
unsafe impl Sync for ProbeInner {}
// SAFETY: as above.
unsafe impl Send for ProbeInner {}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

impl Probe {
    /// A canary for one live value.
    pub fn new() -> Probe {
        Probe(Arc::new(ProbeInner {
            drops: AtomicUsize::new(0),
            alive: UnsafeCell::new(true),
        }))
    }

    /// How many times the value was dropped so far.
    pub fn drops(&self) -> usize {
        self.0.drops.load(SeqCst)
    }

    /// Assert that the value has not been dropped (and, through loom, that
    /// its drop is not concurrent with this read).
    pub fn check_alive(&self) {
        self.0.alive.with(|p| {
            // SAFETY: loom checks this read against the drop's write.
            assert!(
                unsafe { *p },
                "READ AFTER DROP: a node value was used after it was dropped"
            );
        });
    }

    pub fn on_drop(&self) {
        self.0.alive.with_mut(|p| {
            // SAFETY: loom checks this write against every other access.
            unsafe {
                assert!(*p, "DOUBLE DROP: a node value was dropped twice");
                *p = false;
            }
        });
        self.0.drops.fetch_add(1, SeqCst);
    }
}

/// A node that can be on cycles: a mutable edge behind a loom `Mutex` (the
/// collector try-locks it, and holds the lock while it validates), and an
/// immutable edge set at most once before the node is shared.
#[derive(Trace)]
pub struct Node {
    #[trace(skip)]
    pub probe: Probe,
    #[trace(skip)]
    pub label: usize,
    pub next: Mutex<Option<Cc<Node>>>,
    pub fixed: OnceLock<Cc<Node>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

/// A new node watched by `probe`.
pub fn node(probe: &Probe) -> Cc<Node> {
    Cc::new(Node {
        probe: probe.clone(),
        label: 0,
        next: Mutex::new(None),
        fixed: OnceLock::new(),
    })
}

/// Use a handle the way a program would (check it is live, read the value)
/// and fail loudly if the collector destroyed it.
pub fn check(cc: &Cc<Node>) {
    assert!(
        !Cc::is_dead(cc),
        "LIVE HANDLE TO COLLECTED OBJECT: the collector destroyed a value a handle still refers to"
    );
    cc.probe.check_alive();
}

/// Two nodes on a cycle through their `Mutex` fields: `x.next = y`,
/// `y.next = x`.
pub fn mutex_pair(px: &Probe, py: &Probe) -> (Cc<Node>, Cc<Node>) {
    let x = node(px);
    let y = node(py);
    *x.next.lock().unwrap() = Some(y.clone());
    *y.next.lock().unwrap() = Some(x.clone());
    (x, y)
}

/// The mutator's side of the move-out races on a [`mutex_pair`]: take the
/// handle out of `hx`'s field onto the stack, let go of `hx` (so that for
/// a moment the moved handle is the only one outside the pair's fields),
/// and check that the moved handle and the member it leads back to are
/// both still usable. Returns them, in that order: bind both, so that they
/// are dropped in reverse (the member first).
pub fn move_out_and_check(hx: Cc<Node>) -> (Cc<Node>, Cc<Node>) {
    let hy = hx.next.lock().unwrap().take().expect("edge present");
    drop(hx);
    check(&hy);
    let back = hy.next.lock().unwrap().clone().expect("edge present");
    check(&back);
    (hy, back)
}

/// A leaf: `Cc<Leaf>` is exactly an `Arc` (never buffered, never traced).
pub struct Leaf {
    pub probe: Probe,
}
arcycle::leaf!(Leaf);

impl Drop for Leaf {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

/// Sum of drops over several probes.
pub fn drops(probes: &[&Probe]) -> usize {
    probes.iter().map(|p| p.drops()).sum()
}

/// `Cc` allocations made and not yet freed (every execution so far, all
/// threads): a model reads it at its start and asserts it is back there
/// at its end, once a final `collect()` has taken every entry.
pub fn allocations() -> usize {
    arcycle::__loom_live_allocations()
}

/// Upgrade `w`, check the handle if there is one, and say whether it was.
pub fn upgrade_and_check(w: &Weak<Node>) -> bool {
    match w.upgrade() {
        Some(h) => {
            check(&h);
            true
        }
        None => false,
    }
}

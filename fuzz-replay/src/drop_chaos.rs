//! Fuzz target `drop_chaos`: garbage whose destructors and `Trace` impls
//! misbehave — panic, dereference or `try_deref` collected peers, clone
//! them and stash the clones (globally, or inside a live node), upgrade
//! weak handles to them, call `collect()` (from a destructor: a nested
//! collection; from a `Trace` impl: a clear panic), allocate new garbage —
//! checked for: every value dropped exactly once, never used after its
//! drop, only the panics the scenario asked for, and nothing left behind.
//!
//! Guards the DESIGN.md "Must hold" invariants "Panics in user
//! `Trace`/`Drop` code neither leak nor corrupt the collector", "No object
//! is freed while a handle to it, or a borrow derived from one, exists"
//! (a destructor's `try_deref` of a peer sees either an intact value or
//! `None`), and "Every object whose last handle is gone is freed".

use crate::{panic_message, Bytes};
use arcycle::{Cc, Trace, Tracer, Weak};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

const MAX_NODES: usize = 12;
const CANARY: u64 = 0xD0D0_CACA_0BAD_F00D;

/// The panic messages a scenario may produce on purpose.
const EXPECTED_PANICS: [&str; 4] = [
    "drop_chaos: drop panicked on purpose",
    "drop_chaos: trace panicked on purpose",
    // A destructor dereferenced a peer the collector destroyed first.
    "already destroyed by the cycle collector",
    // A `Trace` impl called `collect()`.
    "called from inside a Trace impl",
];

// What a destructor does (bit flags).
const D_PANIC: u8 = 1;
const D_DEREF: u8 = 2;
const D_TRY_DEREF: u8 = 4;
const D_STASH: u8 = 8;
const D_COLLECT: u8 = 16;
const D_NEW_GARBAGE: u8 = 32;
const D_UPGRADE: u8 = 64;
const D_STASH_IN_LIVE: u8 = 128;

struct Record {
    /// Drops per node id (0..MAX_NODES) and of the extra nodes made by
    /// destructors (counted together in `extra_dropped`).
    dropped: Vec<AtomicU8>,
    extra_made: AtomicUsize,
    /// Some `Trace` impl panicked: its object is quarantined (never traced
    /// again), so its cycles are only freed once broken by hand.
    trace_failed: AtomicBool,
    extra_dropped: AtomicUsize,
    /// Clones of peers stashed by destructors.
    stash: Mutex<Vec<Cc<CNode>>>,
}

struct CNode {
    id: usize,
    canary: u64,
    on_drop: u8,
    /// `trace` panics while this is above zero (one per call).
    trace_panics: AtomicU8,
    /// `trace` calls `collect()` while this is above zero.
    trace_collects: AtomicU8,
    edges: Mutex<Vec<Cc<CNode>>>,
    weak_peer: Mutex<Option<Weak<CNode>>>,
    /// A node that stays live until the end (for `D_STASH_IN_LIVE`).
    anchor: Option<Cc<CNode>>,
    record: Arc<Record>,
}

// SAFETY: reports the handles in `edges` (through `Mutex`'s impl) and in
// `anchor`, once each; panicking or failing inside `collect()` before that
// reports nothing, which only under-reports.
unsafe impl Trace for CNode {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if self.trace_panics.load(SeqCst) > 0 {
            self.trace_panics.fetch_sub(1, SeqCst);
            self.record.trace_failed.store(true, SeqCst);
            panic!("drop_chaos: trace panicked on purpose");
        }
        if self.trace_collects.load(SeqCst) > 0 {
            self.trace_collects.fetch_sub(1, SeqCst);
            self.record.trace_failed.store(true, SeqCst);
            arcycle::collect(); // panics: forbidden inside Trace
        }
        self.edges.trace(tracer);
        self.anchor.trace(tracer);
    }
}

impl CNode {
    const EXTRA: usize = usize::MAX;

    fn check(&self) {
        assert_eq!(
            self.canary,
            CANARY ^ self.id as u64,
            "drop_chaos: canary of node {} overwritten",
            self.id
        );
        if self.id != Self::EXTRA {
            assert_eq!(
                self.record.dropped[self.id].load(SeqCst),
                0,
                "drop_chaos: node {} used after it was dropped",
                self.id
            );
        }
    }

    fn new(id: usize, on_drop: u8, record: &Arc<Record>, anchor: Option<Cc<CNode>>) -> Cc<CNode> {
        Cc::new(CNode {
            id,
            canary: CANARY ^ id as u64,
            on_drop,
            trace_panics: AtomicU8::new(0),
            trace_collects: AtomicU8::new(0),
            edges: Mutex::new(Vec::new()),
            weak_peer: Mutex::new(None),
            anchor,
            record: record.clone(),
        })
    }
}

impl Drop for CNode {
    fn drop(&mut self) {
        self.check();
        if self.id == Self::EXTRA {
            self.record.extra_dropped.fetch_add(1, SeqCst);
        } else {
            self.record.dropped[self.id].fetch_add(1, SeqCst);
        }
        let record = self.record.clone();
        let edges = std::mem::take(self.edges.get_mut().unwrap_or_else(|e| e.into_inner()));
        // A destructor that runs while another panic unwinds (a peer's
        // destruction started by our unwinding) must not panic again, or
        // the process aborts: leave out everything that may panic.
        let f = if std::thread::panicking() {
            self.on_drop & !(D_PANIC | D_DEREF | D_COLLECT)
        } else {
            self.on_drop
        };
        if f & D_TRY_DEREF != 0 {
            for e in &edges {
                match Cc::try_deref(e) {
                    // A peer that is not dead is intact.
                    Some(v) => v.check(),
                    None => assert!(Cc::is_dead(e)),
                }
            }
        }
        if f & D_UPGRADE != 0 {
            let w = self
                .weak_peer
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(p) = w.and_then(|w| w.upgrade()) {
                // Never a handle to a destroyed value.
                assert!(!Cc::is_dead(&p));
                p.check();
            }
        }
        if f & D_STASH != 0 {
            if let Some(e) = edges.first() {
                record.stash.lock().unwrap().push(e.clone());
            }
        }
        if f & D_STASH_IN_LIVE != 0 {
            if let (Some(e), Some(anchor)) = (edges.last(), self.anchor.as_ref()) {
                // While the driver holds the anchor, this makes a live node
                // hold a possibly dead peer; later the anchor may itself be
                // garbage of this very collection (then it is dead).
                if let Some(a) = Cc::try_deref(anchor) {
                    a.check();
                    a.edges.lock().unwrap().push(e.clone());
                }
            }
        }
        if f & D_NEW_GARBAGE != 0 {
            let a = CNode::new(CNode::EXTRA, 0, &record, None);
            let b = CNode::new(CNode::EXTRA, 0, &record, None);
            record.extra_made.fetch_add(2, SeqCst);
            a.edges.lock().unwrap().push(b.clone());
            b.edges.lock().unwrap().push(a.clone());
        }
        if f & D_COLLECT != 0 {
            // A nested collection, run by the collector's destroy phase.
            arcycle::collect();
        }
        if f & D_DEREF != 0 {
            if let Some(e) = edges.first() {
                // Panics clearly if the peer was destroyed first.
                let peer: &CNode = e;
                peer.check();
            }
        }
        drop(edges);
        if f & D_PANIC != 0 {
            panic!("drop_chaos: drop panicked on purpose");
        }
    }
}

/// Whether a panic message is one a scenario may produce on purpose (the
/// fuzz target's panic hook lets exactly these unwind to the target's own
/// `catch_unwind`, and turns every other panic into a crash).
pub fn expected_panic(msg: &str) -> bool {
    EXPECTED_PANICS.iter().any(|e| msg.contains(e))
}

/// Run `f`; a panic must be one the scenario asked for.
fn allowed(f: impl FnOnce() -> usize) -> usize {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(n) => n,
        Err(p) => {
            let msg = panic_message(&*p);
            assert!(expected_panic(&msg), "drop_chaos: unexpected panic: {msg}");
            0
        }
    }
}

/// Drop `x` on the driver thread (acyclic garbage is destroyed right here,
/// so its destructors may panic on purpose).
fn allowed_drop<T>(x: T) {
    allowed(move || {
        drop(x);
        0
    });
}

/// The misbehaviours that reached the arcycle bugs this target found (see
/// VERIFICATION.md, "Bugs found"; fixed in 2946945): destructors that panic
/// (bug 4: the trampoline stalled), `Trace` impls that fail (bug 2: a cycle
/// with a failing non-root member leaked), and stashing collected peers in
/// a live node that a nested collection then traces (bug 3: a debug
/// assertion fired inside the collector). [`run_masked`] leaves them out:
/// it lets a campaign look past a bug in those paths until it is fixed,
/// and tells whether a new crash lies in them.
const KNOWN_BUG_FLAGS: u8 = D_PANIC | D_DEREF | D_STASH_IN_LIVE;

/// Run one fuzz input: the full scenario.
pub fn run(data: &[u8]) {
    run_with(data, false)
}

/// Run one fuzz input without the misbehaviours of [`KNOWN_BUG_FLAGS`] and
/// without failing `Trace` impls.
pub fn run_masked(data: &[u8]) {
    run_with(data, true)
}

fn run_with(data: &[u8], masked: bool) {
    let mut b = Bytes::new(data);
    // Automatic collections inline (no collector thread running hostile
    // destructors behind the checks).
    arcycle::set_background(false);
    arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD);
    allowed(arcycle::collect); // start from an empty root buffer
    let record = Arc::new(Record {
        dropped: (0..MAX_NODES).map(|_| AtomicU8::new(0)).collect(),
        extra_made: AtomicUsize::new(0),
        trace_failed: AtomicBool::new(false),
        extra_dropped: AtomicUsize::new(0),
        stash: Mutex::new(Vec::new()),
    });
    let anchor = CNode::new(CNode::EXTRA, 0, &record, None);
    record.extra_made.fetch_add(1, SeqCst);

    // Nodes and their misbehaviour.
    let n = 2 + b.below(MAX_NODES - 1);
    let nodes: Vec<Cc<CNode>> = (0..n)
        .map(|id| {
            let mut on_drop = b.byte();
            let mut t = b.byte();
            if masked {
                on_drop &= !KNOWN_BUG_FLAGS;
                t = 0;
            }
            let cc = CNode::new(id, on_drop, &record, Some(anchor.clone()));
            cc.trace_panics.store(t & 3, SeqCst);
            cc.trace_collects.store((t >> 2) & 1, SeqCst);
            cc
        })
        .collect();
    // Edges (at most 4 per node) and weak peers.
    let n_edges = b.below(3 * n + 1);
    for _ in 0..n_edges {
        let (i, j) = (b.below(n), b.below(n));
        let mut e = nodes[i].edges.lock().unwrap();
        if e.len() < 4 {
            e.push(nodes[j].clone());
        }
    }
    for node in &nodes {
        let j = b.below(n);
        *node.weak_peer.lock().unwrap() = Some(Cc::downgrade(&nodes[j]));
    }
    // Weak handles to every node and the anchor, to break by hand what a
    // quarantined object keeps (see below).
    let weaks: Vec<Weak<CNode>> = nodes
        .iter()
        .chain(std::iter::once(&anchor))
        .map(Cc::downgrade)
        .collect();
    // Some handles are kept for a first round of collections.
    let keep = b.byte();
    let mut kept = Vec::new();
    for (i, node) in nodes.into_iter().enumerate() {
        if keep & (1 << (i % 8)) != 0 && i < 8 {
            kept.push(node);
        } else {
            allowed_drop(node);
        }
    }
    for _ in 0..b.below(3) {
        allowed(arcycle::collect);
        for k in &kept {
            k.check(); // a kept node was never destroyed
        }
    }
    allowed_drop(kept);

    // Everything but the anchor (and what destructors stash) is garbage
    // now. Each round frees all garbage whose `Trace` works; the trace
    // failures are bounded (3 panics and 1 `collect()` per node, and pass 1
    // and pass 2 each use one up), and a stash resurrects a peer for one
    // round at most, so a bounded number of rounds frees everything.
    allowed_drop(anchor);
    let finished = |record: &Record| {
        record.dropped[..n].iter().all(|d| d.load(SeqCst) == 1)
            && record.extra_dropped.load(SeqCst) == record.extra_made.load(SeqCst)
            && record.stash.lock().unwrap().is_empty()
    };
    let round = |record: &Record| {
        let stashed = std::mem::take(&mut *record.stash.lock().unwrap());
        for s in &stashed {
            // A stashed clone of a peer: a dead one keeps only the
            // allocation; a live one is intact.
            if let Some(v) = Cc::try_deref(s) {
                v.check();
            } else {
                assert!(Cc::is_dead(s));
            }
        }
        allowed_drop(stashed);
        allowed(arcycle::collect);
    };
    for _ in 0..4 * MAX_NODES {
        round(&record);
        if finished(&record) {
            break;
        }
    }
    if record.trace_failed.load(SeqCst) {
        // An object whose `Trace` impl panicked was reported once and is
        // quarantined: it and what it reaches are kept, as with an impl that
        // under-reports. Break every cycle by hand, as a program that knows
        // about them can; then everything must go, exactly once.
        for _ in 0..4 {
            for w in &weaks {
                if let Some(node) = w.upgrade() {
                    let edges = std::mem::take(&mut *node.edges.lock().unwrap());
                    allowed_drop(edges);
                    allowed_drop(node);
                }
            }
            round(&record);
            if finished(&record) {
                break;
            }
        }
    } else {
        assert!(
            finished(&record),
            "drop_chaos: garbage with working Trace impls survived the rounds"
        );
    }
    for id in 0..n {
        assert_eq!(
            record.dropped[id].load(SeqCst),
            1,
            "drop_chaos: node {id} not dropped exactly once"
        );
    }
    assert_eq!(
        record.extra_dropped.load(SeqCst),
        record.extra_made.load(SeqCst),
        "drop_chaos: garbage made by destructors was not all freed"
    );
    assert!(
        record.stash.lock().unwrap().is_empty(),
        "drop_chaos: a late stash"
    );
}

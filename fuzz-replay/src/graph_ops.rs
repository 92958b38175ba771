//! Fuzz target `graph_ops`: a decoded sequence of graph operations checked
//! against a reference model that knows which nodes are reachable.
//!
//! Nodes are held as `Cc<dyn GObj>` (two concrete types with different
//! layouts, alternating by id), so every edge the collector follows is a
//! `dyn` edge traced through the table its allocation recorded.
//!
//! Operations: new node, add / remove an edge, move an edge from one node's
//! `Mutex` to another's (or out to the stack), clone, drop, downgrade,
//! upgrade, drop a weak, collect, change the automatic threshold (automatic
//! collections run inline and are mostly young ones), and run a
//! sub-sequence on a second thread while this thread collects (full and
//! young collections).
//!
//! Guards the DESIGN.md "Must hold" invariants:
//! * "No object is freed while a handle to it, or a borrow derived from
//!   one, exists" — after every operation, no node reachable from the
//!   driver's handles has been dropped, and every canary is intact;
//! * "Every object whose last handle is gone is freed, cycles included,
//!   once a collection runs after that" — after every `collect()` on the
//!   driver thread (with nothing running concurrently), exactly the
//!   unreachable nodes have been dropped;
//! * "`Weak::upgrade` never returns a handle to something being freed, and
//!   never returns None for something that survives" — checked against the
//!   drop record;
//! * "A collection that aborts loses nothing" — the concurrent phase makes
//!   collections abort; the next exact check sees whether roots were lost.

use crate::Bytes;
use arcycle::{Cc, Trace, Weak};
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

const MAX_NODES: usize = 40;
const MAX_ROOTS: usize = 48;
const MAX_WEAKS: usize = 16;
const MAX_SUB_OPS: usize = 24;
const CANARY: u64 = 0x5EED_CAFE_F00D_0001;

/// Which nodes have been dropped (one byte per node id).
struct Record {
    dropped: Vec<AtomicU8>,
}

/// What the driver needs from a node, object-safe: nodes are `Cc<dyn GObj>`.
trait GObj: Trace + Send + Sync {
    fn id(&self) -> usize;
    fn edges(&self) -> &Mutex<Vec<Cc<dyn GObj>>>;
    fn check(&self);
}

/// A node; `P` bytes of padding in front make the two concrete types lay
/// out their fields differently.
#[derive(Trace)]
struct GNode<const P: usize> {
    #[trace(skip)]
    pad: [u8; P],
    #[trace(skip)]
    id: usize,
    #[trace(skip)]
    canary: u64,
    #[trace(skip)]
    record: Arc<Record>,
    edges: Mutex<Vec<Cc<dyn GObj>>>,
}

impl<const P: usize> GObj for GNode<P> {
    fn id(&self) -> usize {
        self.id
    }
    fn edges(&self) -> &Mutex<Vec<Cc<dyn GObj>>> {
        &self.edges
    }
    fn check(&self) {
        GNode::check(self)
    }
}

fn new_node(id: usize, record: &Arc<Record>) -> Cc<dyn GObj> {
    fn make<const P: usize>(id: usize, record: &Arc<Record>) -> GNode<P> {
        GNode {
            pad: [0x5A; P],
            id,
            canary: CANARY ^ id as u64,
            record: record.clone(),
            edges: Mutex::new(Vec::new()),
        }
    }
    if id.is_multiple_of(2) {
        arcycle::coerce!(Cc::new(make::<0>(id, record)))
    } else {
        arcycle::coerce!(Cc::new(make::<24>(id, record)))
    }
}

impl<const P: usize> GNode<P> {
    fn check(&self) {
        assert_eq!(
            self.canary,
            CANARY ^ self.id as u64,
            "graph_ops: canary of node {} overwritten",
            self.id
        );
        assert_eq!(
            self.record.dropped[self.id].load(SeqCst),
            0,
            "graph_ops: node {} used after it was dropped",
            self.id
        );
    }
}

impl<const P: usize> Drop for GNode<P> {
    fn drop(&mut self) {
        self.check();
        self.record.dropped[self.id].store(1, SeqCst);
        self.canary = 0;
    }
}

/// One operation on a set of handles ("roots": the driver's stack).
#[derive(Clone, Copy, Debug)]
enum Op {
    New,
    AddEdge(usize, usize),
    RemoveEdge(usize, usize),
    MoveEdge(usize, usize, usize),
    TakeEdge(usize, usize),
    Clone(usize),
    Drop(usize),
    Downgrade(usize),
    Upgrade(usize),
    DropWeak(usize),
    Collect,
    Threshold(usize),
    Spawn,
}

fn decode(b: &mut Bytes<'_>, sub: bool) -> Op {
    let kinds = if sub { 11 } else { 13 };
    match b.below(kinds) {
        0 => Op::New,
        1 => Op::AddEdge(b.below(256), b.below(256)),
        2 => Op::RemoveEdge(b.below(256), b.below(256)),
        3 => Op::MoveEdge(b.below(256), b.below(256), b.below(256)),
        4 => Op::TakeEdge(b.below(256), b.below(256)),
        5 => Op::Clone(b.below(256)),
        6 => Op::Drop(b.below(256)),
        7 => Op::Downgrade(b.below(256)),
        8 => Op::Upgrade(b.below(256)),
        9 => Op::DropWeak(b.below(256)),
        10 => Op::Collect,
        11 => Op::Threshold(b.below(256)),
        _ => Op::Spawn,
    }
}

/// The handles one thread holds, and their mirror in the model.
#[derive(Default)]
struct Hands {
    roots: Vec<Cc<dyn GObj>>,
    weaks: Vec<(usize, Weak<dyn GObj>)>,
    /// Upgrades that returned None while a collection may have been
    /// running: the node must be dropped once every collection returned.
    upgrade_none: Vec<usize>,
}

/// The reference model: the edges of every node, by id.
struct Model {
    edges: Vec<Vec<usize>>,
    record: Arc<Record>,
}

impl Model {
    fn reachable(&self, roots: &[usize]) -> Vec<bool> {
        let mut seen = vec![false; self.edges.len()];
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.edges[i].iter().copied());
            }
        }
        seen
    }

    fn dropped(&self, id: usize) -> bool {
        self.record.dropped[id].load(SeqCst) != 0
    }

    /// Nothing reachable from `roots` is dropped; with `exact`, everything
    /// else is.
    fn check(&self, hands: &Hands, exact: bool, when: &str) {
        let ids: Vec<usize> = hands.roots.iter().map(|r| r.id()).collect();
        for r in &hands.roots {
            r.check();
        }
        let reach = self.reachable(&ids);
        for (id, &live) in reach.iter().enumerate() {
            let dropped = self.dropped(id);
            if live {
                assert!(
                    !dropped,
                    "graph_ops: reachable node {id} was dropped ({when})"
                );
            } else if exact {
                assert!(
                    dropped,
                    "graph_ops: unreachable node {id} survived a collection ({when})"
                );
            }
        }
    }
}

fn pick<T>(v: &[T], i: usize) -> Option<usize> {
    if v.is_empty() {
        None
    } else {
        Some(i % v.len())
    }
}

/// Apply `op` to the real handles and the model's edges (`concurrent`:
/// another thread may be collecting right now).
fn apply(
    op: Op,
    hands: &mut Hands,
    model_edges: &Mutex<&mut Vec<Vec<usize>>>,
    record: &Arc<Record>,
    concurrent: bool,
) {
    match op {
        Op::New => {
            let mut edges = model_edges.lock().unwrap();
            if edges.len() < MAX_NODES && hands.roots.len() < MAX_ROOTS {
                let id = edges.len();
                edges.push(Vec::new());
                hands.roots.push(new_node(id, record));
            }
        }
        Op::AddEdge(i, j) => {
            if let (Some(i), Some(j)) = (pick(&hands.roots, i), pick(&hands.roots, j)) {
                let (a, b) = (&hands.roots[i], &hands.roots[j]);
                let mut edges = model_edges.lock().unwrap();
                if edges[a.id()].len() < 4 {
                    a.edges().lock().unwrap().push(b.clone());
                    edges[a.id()].push(b.id());
                }
            }
        }
        Op::RemoveEdge(i, k) => {
            if let Some(i) = pick(&hands.roots, i) {
                let a = &hands.roots[i];
                let removed = {
                    let mut e = a.edges().lock().unwrap();
                    pick(&e, k).map(|k| (k, e.remove(k)))
                };
                if let Some((k, removed)) = removed {
                    model_edges.lock().unwrap()[a.id()].remove(k);
                    drop(removed);
                }
            }
        }
        Op::MoveEdge(i, k, j) => {
            if let (Some(i), Some(j)) = (pick(&hands.roots, i), pick(&hands.roots, j)) {
                let (a, b) = (&hands.roots[i], &hands.roots[j]);
                let moved = {
                    let mut e = a.edges().lock().unwrap();
                    pick(&e, k).map(|k| (k, e.remove(k)))
                };
                if let Some((k, moved)) = moved {
                    let mut edges = model_edges.lock().unwrap();
                    let to = edges[a.id()].remove(k);
                    edges[b.id()].push(to);
                    b.edges().lock().unwrap().push(moved);
                }
            }
        }
        Op::TakeEdge(i, k) => {
            if let Some(i) = pick(&hands.roots, i) {
                let a = &hands.roots[i];
                let taken = {
                    let mut e = a.edges().lock().unwrap();
                    pick(&e, k).map(|k| (k, e.remove(k)))
                };
                if let Some((k, taken)) = taken {
                    model_edges.lock().unwrap()[a.id()].remove(k);
                    taken.check();
                    hands.roots.push(taken);
                }
            }
        }
        Op::Clone(i) => {
            if let Some(i) = pick(&hands.roots, i) {
                if hands.roots.len() < MAX_ROOTS {
                    let c = hands.roots[i].clone();
                    hands.roots.push(c);
                }
            }
        }
        Op::Drop(i) => {
            if let Some(i) = pick(&hands.roots, i) {
                drop(hands.roots.swap_remove(i));
            }
        }
        Op::Downgrade(i) => {
            if let Some(i) = pick(&hands.roots, i) {
                if hands.weaks.len() < MAX_WEAKS {
                    let r = &hands.roots[i];
                    hands.weaks.push((r.id(), Cc::downgrade(r)));
                }
            }
        }
        Op::Upgrade(w) => {
            if let Some(w) = pick(&hands.weaks, w) {
                let (id, ref weak) = hands.weaks[w];
                match weak.upgrade() {
                    Some(cc) => {
                        // Never a handle to something dropped.
                        cc.check();
                        if hands.roots.len() < MAX_ROOTS {
                            hands.roots.push(cc);
                        }
                    }
                    // Never None for something that survives. While another
                    // thread collects, the node may be dead but its value
                    // not dropped yet: check once every collection returned.
                    None if concurrent => hands.upgrade_none.push(id),
                    None => assert!(
                        record.dropped[id].load(SeqCst) != 0,
                        "graph_ops: upgrade of live node {id} returned None"
                    ),
                }
            }
        }
        Op::DropWeak(w) => {
            if let Some(w) = pick(&hands.weaks, w) {
                hands.weaks.swap_remove(w);
            }
        }
        Op::Collect => {
            arcycle::collect();
        }
        Op::Threshold(t) => arcycle::set_threshold(1 + t % 16),
        Op::Spawn => unreachable!("handled by run"),
    }
}

/// Run one fuzz input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let record = Arc::new(Record {
        dropped: (0..MAX_NODES).map(|_| AtomicU8::new(0)).collect(),
    });
    let mut model = Model {
        edges: Vec::new(),
        record: record.clone(),
    };
    // Automatic collections inline, on this thread: the model's checks
    // between operations assume no collection runs behind their back.
    arcycle::set_background(false);
    arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD);
    arcycle::collect(); // start from an empty root buffer
    let mut hands = Hands::default();
    let mut steps = 0;
    while !b.done() && steps < 200 {
        steps += 1;
        let op = decode(&mut b, false);
        if let Op::Spawn = op {
            spawn_phase(&mut b, &mut hands, &mut model, &record);
            model.check(&hands, false, "after a concurrent phase");
            continue;
        }
        {
            let edges = Mutex::new(&mut model.edges);
            apply(op, &mut hands, &edges, &record, false);
        }
        let exact = matches!(op, Op::Collect);
        model.check(&hands, exact, &format!("after {op:?}"));
    }
    // Everything is garbage now: one collection frees it all.
    arcycle::set_threshold(arcycle::DEFAULT_THRESHOLD);
    let weaks: Vec<_> = hands.weaks.drain(..).collect();
    drop(hands);
    arcycle::collect();
    for id in 0..model.edges.len() {
        assert!(
            model.dropped(id),
            "graph_ops: node {id} survived the final collection"
        );
    }
    for (id, w) in weaks {
        assert!(
            w.upgrade().is_none(),
            "graph_ops: upgrade of dropped node {id} succeeded"
        );
    }
}

/// Move some handles to a second thread that runs a sub-sequence while
/// this thread collects; then take them back.
fn spawn_phase(b: &mut Bytes<'_>, hands: &mut Hands, model: &mut Model, record: &Arc<Record>) {
    let n_ops = b.below(MAX_SUB_OPS) + 1;
    let ops: Vec<Op> = (0..n_ops).map(|_| decode(b, true)).collect();
    let take = b.below(hands.roots.len() + 1);
    let mut theirs = Hands {
        roots: hands.roots.split_off(hands.roots.len() - take),
        weaks: hands.weaks.iter().map(|(id, w)| (*id, w.clone())).collect(),
        upgrade_none: Vec::new(),
    };
    let collects = b.below(3) + 1;
    let edges = Mutex::new(&mut model.edges);
    std::thread::scope(|s| {
        let edges = &edges;
        let worker = s.spawn(move || {
            for op in ops {
                apply(op, &mut theirs, edges, record, true);
            }
            theirs
        });
        for i in 0..collects {
            // Every second one young: it must leave the old objects the
            // other thread is changing alone and lose no root of a cycle
            // through them (the next exact check sees).
            if i % 2 == 1 {
                arcycle::collect_young();
            } else {
                arcycle::collect();
            }
        }
        let theirs = worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        hands.roots.extend(theirs.roots);
        // The weaks were clones; the driver keeps its own.
        for id in theirs.upgrade_none {
            assert!(
                record.dropped[id].load(SeqCst) != 0,
                "graph_ops: upgrade of node {id} returned None, and it survived"
            );
        }
    });
}

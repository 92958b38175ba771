//! Fuzz target `weak_maps`: weak-collection and finalizer operations mixed
//! with graph operations (new node, add / remove edge, drop / clone a
//! handle, collect), checked against a reachability model.
//!
//! Guards the issue-10 semantics of `arcycle::weakref`:
//! * nothing dead is returned: every handle a map or set returns passes
//!   its canary check, and every reachable node is still returned;
//! * after every `collect()`, exactly the model's unreachable nodes are
//!   gone from every map and set, and `len` counts exactly the live
//!   entries (dead entries were purged without any user action);
//! * every finalizer runs once, only after its node was dropped, and by
//!   the `collect()` after the node became unreachable at the latest.

use crate::Bytes;
use arcycle::{collect, finalize, Cc, Finalizer, Trace, WeakKeyMap, WeakSet, WeakValueMap};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

const MAX_NODES: usize = 32;
const KEYS: usize = 8;
const CANARY: u64 = 0x7EAC_0DE5_CAFE_0001;

struct Record {
    dropped: Vec<AtomicU8>,
    /// Finalizer runs per node.
    finalized: Vec<AtomicUsize>,
}

#[derive(Trace)]
struct WNode {
    #[trace(skip)]
    id: usize,
    #[trace(skip)]
    canary: u64,
    #[trace(skip)]
    record: Arc<Record>,
    edges: Mutex<Vec<Cc<WNode>>>,
}

impl WNode {
    fn check(&self) {
        assert_eq!(self.canary, CANARY ^ self.id as u64, "weak_maps: canary");
        assert_eq!(
            self.record.dropped[self.id].load(SeqCst),
            0,
            "weak_maps: a collection returned node {} after it was dropped",
            self.id
        );
    }
}

impl Drop for WNode {
    fn drop(&mut self) {
        self.check();
        self.record.dropped[self.id].store(1, SeqCst);
        self.canary = 0;
    }
}

struct World {
    record: Arc<Record>,
    /// Model: edges of every node ever made.
    edges: Vec<Vec<usize>>,
    /// The driver's handles.
    roots: Vec<Cc<WNode>>,
    vmap: WeakValueMap<usize, WNode>,
    /// Model of `vmap`: key -> node.
    vmodel: Vec<Option<usize>>,
    kmap: WeakKeyMap<WNode, usize>,
    kmodel: Vec<bool>,
    set: WeakSet<WNode>,
    smodel: Vec<bool>,
    /// Finalizers registered, per node.
    fins: Vec<usize>,
    handles: Vec<Finalizer>,
}

impl World {
    fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.edges.len()];
        let mut stack: Vec<usize> = self.roots.iter().map(|r| r.id).collect();
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut seen[n], true) {
                stack.extend(&self.edges[n]);
            }
        }
        seen
    }

    fn pick(&self, b: &mut Bytes) -> Option<&Cc<WNode>> {
        if self.roots.is_empty() {
            None
        } else {
            Some(&self.roots[b.below(self.roots.len())])
        }
    }

    /// Checks that hold at every step: returned handles are live, and
    /// reachable entries are returned.
    fn check_sound(&self) {
        let live = self.reachable();
        for (k, m) in self.vmodel.iter().enumerate() {
            match self.vmap.get(&k) {
                Some(v) => {
                    v.check();
                    assert_eq!(Some(v.id), *m, "weak_maps: vmap key {k} maps elsewhere");
                }
                None => assert!(
                    !m.is_some_and(|n| live[n]),
                    "weak_maps: vmap lost key {k} of a reachable node"
                ),
            }
        }
        for v in self.set.to_vec() {
            v.check();
            assert!(self.smodel[v.id], "weak_maps: set has a non-member");
        }
        for (k, _) in self.kmap.to_vec() {
            k.check();
            assert!(self.kmodel[k.id], "weak_maps: kmap has a non-key");
        }
    }

    /// After a `collect()` with nothing else running: exact.
    fn check_exact(&self) {
        self.check_sound();
        let live = self.reachable();
        for (n, &l) in live.iter().enumerate() {
            let dropped = self.record.dropped[n].load(SeqCst) == 1;
            assert_eq!(
                dropped, !l,
                "weak_maps: node {n} dropped={dropped} live={l}"
            );
            let ran = self.record.finalized[n].load(SeqCst);
            assert_eq!(
                ran,
                if l { 0 } else { self.fins[n] },
                "weak_maps: node {n}: finalizers ran {ran} times"
            );
        }
        let vlive = self.vmodel.iter().flatten().filter(|&&n| live[n]).count();
        assert_eq!(self.vmap.len(), vlive, "weak_maps: vmap len");
        let klive = (0..live.len())
            .filter(|&n| self.kmodel[n] && live[n])
            .count();
        assert_eq!(self.kmap.len(), klive, "weak_maps: kmap len");
        let slive = (0..live.len())
            .filter(|&n| self.smodel[n] && live[n])
            .count();
        assert_eq!(self.set.len(), slive, "weak_maps: set len");
    }
}

/// Run one scenario decoded from `data`.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let record = Arc::new(Record {
        dropped: (0..MAX_NODES).map(|_| AtomicU8::new(0)).collect(),
        finalized: (0..MAX_NODES).map(|_| AtomicUsize::new(0)).collect(),
    });
    let mut w = World {
        record: record.clone(),
        edges: Vec::new(),
        roots: Vec::new(),
        vmap: WeakValueMap::new(),
        vmodel: vec![None; KEYS],
        kmap: WeakKeyMap::new(),
        kmodel: vec![false; MAX_NODES],
        set: WeakSet::new(),
        smodel: vec![false; MAX_NODES],
        fins: vec![0; MAX_NODES],
        handles: Vec::new(),
    };
    collect();
    while !b.done() {
        match b.below(11) {
            0 | 1 if w.edges.len() < MAX_NODES => {
                let id = w.edges.len();
                w.edges.push(Vec::new());
                w.roots.push(Cc::new(WNode {
                    id,
                    canary: CANARY ^ id as u64,
                    record: record.clone(),
                    edges: Mutex::new(Vec::new()),
                }));
            }
            2 => {
                if let (Some(x), Some(y)) = (w.pick(&mut b).cloned(), w.pick(&mut b).cloned()) {
                    x.edges.lock().unwrap().push(y.clone());
                    w.edges[x.id].push(y.id);
                }
            }
            3 => {
                if let Some(x) = w.pick(&mut b).cloned() {
                    let e = x.edges.lock().unwrap().pop();
                    if let Some(e) = e {
                        w.edges[x.id].pop();
                        drop(e);
                    }
                }
            }
            4 => {
                if !w.roots.is_empty() {
                    let i = b.below(w.roots.len());
                    drop(w.roots.swap_remove(i));
                }
            }
            5 => {
                if let Some(x) = w.pick(&mut b).cloned() {
                    let k = b.below(KEYS);
                    w.vmap.insert(k, &x);
                    w.vmodel[k] = Some(x.id);
                }
            }
            6 => {
                let k = b.below(KEYS);
                if let Some(v) = w.vmap.remove(&k) {
                    v.check();
                }
                w.vmodel[k] = None;
            }
            7 => {
                if let Some(x) = w.pick(&mut b).cloned() {
                    if b.below(2) == 0 {
                        w.set.insert(&x);
                        w.smodel[x.id] = true;
                    } else {
                        w.set.remove(&x);
                        w.smodel[x.id] = false;
                    }
                }
            }
            8 => {
                if let Some(x) = w.pick(&mut b).cloned() {
                    if b.below(2) == 0 {
                        w.kmap.insert(&x, x.id);
                        w.kmodel[x.id] = true;
                    } else {
                        w.kmap.remove(&x);
                        w.kmodel[x.id] = false;
                    }
                }
            }
            9 => {
                if let Some(x) = w.pick(&mut b).cloned() {
                    let (id, rec) = (x.id, record.clone());
                    w.fins[id] += 1;
                    w.handles.push(finalize(&x, move || {
                        assert_eq!(
                            rec.dropped[id].load(SeqCst),
                            1,
                            "weak_maps: finalizer of node {id} ran before its destructor"
                        );
                        rec.finalized[id].fetch_add(1, SeqCst);
                    }));
                }
            }
            _ => {
                collect();
                w.check_exact();
                continue;
            }
        }
        w.check_sound();
    }
    w.roots.clear();
    collect();
    w.check_exact();
    assert!(w.handles.iter().all(|f| !f.alive()));
}

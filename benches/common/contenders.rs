//! The contenders: one module per pointer type, each exposing the same set
//! of shapes through [`Contender`].
//!
//! Every contender builds the same data with its own natural types: the
//! thread-safe ones put mutable edges in a `std::sync::Mutex` (or a
//! `OnceLock` when they are set once), the single-threaded ones in a
//! `RefCell` (or a `OnceCell`). Trace impls for the peers are written by
//! hand (gcmodule's derive overflows on self-referential types).

/// What every workload needs from a pointer type.
///
/// `Leaf` is a handle to a plain `u64` (for arcycle a leaf: exactly `Arc`);
/// `Node` is the general, cycle-capable case: a `u64` plus a mutable list
/// of edges.
pub trait Contender: 'static {
    const NAME: &'static str;
    /// Whether it can free reference cycles at all.
    const COLLECTS: bool;
    type Leaf: Clone;
    type Node: Clone;
    type Tree;
    type List;
    type PTree;
    type GNode;

    fn leaf(v: u64) -> Self::Leaf;
    fn leaf_get(h: &Self::Leaf) -> u64;
    fn node(v: u64) -> Self::Node;
    fn node_get(h: &Self::Node) -> u64;
    /// Add a strong edge `from -> to`.
    fn link(from: &Self::Node, to: &Self::Node);
    /// Remove the edge `from` added last, and hand it back.
    fn pop_edge(from: &Self::Node) -> Option<Self::Node>;
    /// Run a full cycle collection (a no-op for `Arc`).
    fn collect();
    /// Turn automatic collection on or off, where the contender has a knob.
    fn set_auto(_on: bool) {}
    /// A complete binary tree of the given depth (acyclic).
    fn tree(depth: u32) -> Self::Tree;
    fn tree_val(t: &Self::Tree) -> u64;
    /// A singly linked list (acyclic).
    fn list(len: usize) -> Self::List;
    /// A complete binary tree whose children point back to their parent
    /// (strongly, except `Arc`, which uses `Weak`).
    fn ptree(depth: u32) -> Self::PTree;
    /// A read-mostly graph: node `i` has edges to `adj[i]`.
    fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode>;
    /// Walk `depth` steps from `h`, choosing edges with `rng`, reading
    /// every value on the way (by reference: no counts touched where the
    /// API allows it).
    fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64;
}

/// Random adjacency with three out-edges per node (seeded: the same graph
/// on every run).
pub fn random_adjacency(n: usize, seed: u64) -> Vec<[u32; 3]> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = u32::try_from(n).expect("graph too large");
    (0..n)
        .map(|_| [rng.u32(..n), rng.u32(..n), rng.u32(..n)])
        .collect()
}

/// Drop tallies for the live-heap case (issue #9): every contender's
/// `Node` reports its drop here, and nodes whose value carries a tag bit
/// are counted. Every other workload's nodes have small values and pay
/// one untaken branch per drop, the same for every contender.
pub mod tally {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Tag of a live-heap node's value.
    pub const LIVE: u64 = 1 << 62;
    /// Tag of a garbage node's value.
    pub const GARBAGE: u64 = 1 << 63;
    /// Live-heap nodes dropped.
    pub static LIVE_DROPS: AtomicU64 = AtomicU64::new(0);
    /// Garbage nodes dropped.
    pub static GARBAGE_DROPS: AtomicU64 = AtomicU64::new(0);

    #[inline(always)]
    pub fn note(val: u64) {
        if val >= LIVE {
            tagged(val);
        }
    }

    #[cold]
    #[inline(never)]
    fn tagged(val: u64) {
        if val & GARBAGE != 0 {
            GARBAGE_DROPS.fetch_add(1, Relaxed);
        } else {
            LIVE_DROPS.fetch_add(1, Relaxed);
        }
    }

    /// (live, garbage) drops so far.
    pub fn read() -> (u64, u64) {
        (LIVE_DROPS.load(Relaxed), GARBAGE_DROPS.load(Relaxed))
    }
}

// ---------------------------------------------------------------------------
// std::sync::Arc
// ---------------------------------------------------------------------------

pub mod arc {
    use super::Contender;
    use std::sync::{Arc, Mutex, OnceLock, Weak};

    pub struct Node {
        pub val: u64,
        pub edges: Mutex<Vec<Arc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    pub struct Tree {
        pub val: u64,
        pub left: Option<Arc<Tree>>,
        pub right: Option<Arc<Tree>>,
    }
    pub struct List {
        pub val: u64,
        pub next: Option<Arc<List>>,
    }
    pub struct PTree {
        pub val: u64,
        pub parent: Option<Weak<PTree>>,
        pub kids: OnceLock<Vec<Arc<PTree>>>,
    }
    pub struct GNode {
        pub val: u64,
        pub edges: OnceLock<Vec<Arc<GNode>>>,
    }

    fn ptree_at(parent: Option<&Arc<PTree>>, depth: u32) -> Arc<PTree> {
        let me = Arc::new(PTree {
            val: depth as u64,
            parent: parent.map(Arc::downgrade),
            kids: OnceLock::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.kids.set(kids);
        }
        me
    }

    pub struct ArcC;
    impl Contender for ArcC {
        const NAME: &'static str = "Arc";
        const COLLECTS: bool = false;
        type Leaf = Arc<u64>;
        type Node = Arc<Node>;
        type Tree = Arc<Tree>;
        type List = Arc<List>;
        type PTree = Arc<PTree>;
        type GNode = Arc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            Arc::new(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            **h
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            Arc::new(Node {
                val: v,
                edges: Mutex::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.edges.lock().unwrap().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.edges.lock().unwrap().pop()
        }
        fn collect() {}
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            Arc::new(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.val
        }
        fn list(len: usize) -> Self::List {
            let mut head = Arc::new(List { val: 0, next: None });
            for i in 1..len {
                head = Arc::new(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    Arc::new(GNode {
                        val: i as u64,
                        edges: OnceLock::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            let mut cur = h;
            let mut sum = 0;
            for _ in 0..depth {
                sum += cur.val;
                cur = &cur.edges.get().unwrap()[rng.usize(..3)];
            }
            sum + cur.val
        }
    }
}

// ---------------------------------------------------------------------------
// arcycle::Cc
// ---------------------------------------------------------------------------

pub mod arcy {
    use super::Contender;
    use arcycle::{Cc, Trace};
    use std::sync::{Mutex, OnceLock};

    #[derive(Trace)]
    pub struct Node {
        pub val: u64,
        pub edges: Mutex<Vec<Cc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    #[derive(Trace)]
    pub struct Tree {
        pub val: u64,
        pub left: Option<Cc<Tree>>,
        pub right: Option<Cc<Tree>>,
    }
    #[derive(Trace)]
    pub struct List {
        pub val: u64,
        pub next: Option<Cc<List>>,
    }
    #[derive(Trace)]
    pub struct PTree {
        pub val: u64,
        pub parent: Option<Cc<PTree>>,
        pub kids: OnceLock<Vec<Cc<PTree>>>,
    }
    #[derive(Trace)]
    pub struct GNode {
        pub val: u64,
        pub edges: OnceLock<Vec<Cc<GNode>>>,
    }

    fn ptree_at(parent: Option<&Cc<PTree>>, depth: u32) -> Cc<PTree> {
        let me = Cc::new(PTree {
            val: depth as u64,
            parent: parent.cloned(),
            kids: OnceLock::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.kids.set(kids);
        }
        me
    }

    pub struct ArcycleC;
    impl Contender for ArcycleC {
        const NAME: &'static str = "arcycle";
        const COLLECTS: bool = true;
        type Leaf = Cc<u64>;
        type Node = Cc<Node>;
        type Tree = Cc<Tree>;
        type List = Cc<List>;
        type PTree = Cc<PTree>;
        type GNode = Cc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            Cc::new(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            **h
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            Cc::new(Node {
                val: v,
                edges: Mutex::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.edges.lock().unwrap().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.edges.lock().unwrap().pop()
        }
        fn collect() {
            arcycle::collect();
        }
        fn set_auto(on: bool) {
            if on {
                arcycle::enable()
            } else {
                arcycle::disable()
            }
        }
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            Cc::new(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.val
        }
        fn list(len: usize) -> Self::List {
            let mut head = Cc::new(List { val: 0, next: None });
            for i in 1..len {
                head = Cc::new(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    Cc::new(GNode {
                        val: i as u64,
                        edges: OnceLock::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            let mut cur = h;
            let mut sum = 0;
            for _ in 0..depth {
                sum += cur.val;
                cur = &cur.edges.get().unwrap()[rng.usize(..3)];
            }
            sum + cur.val
        }
    }
}

// ---------------------------------------------------------------------------
// dumpster::sync::Gc
// ---------------------------------------------------------------------------

pub mod dump {
    use super::Contender;
    use dumpster::sync::Gc;
    use dumpster::Trace;
    use std::sync::{Mutex, OnceLock};

    #[derive(Trace)]
    pub struct Node {
        pub val: u64,
        pub edges: Mutex<Vec<Gc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    #[derive(Trace)]
    pub struct Tree {
        pub val: u64,
        pub left: Option<Gc<Tree>>,
        pub right: Option<Gc<Tree>>,
    }
    #[derive(Trace)]
    pub struct List {
        pub val: u64,
        pub next: Option<Gc<List>>,
    }
    #[derive(Trace)]
    pub struct PTree {
        pub val: u64,
        pub parent: Option<Gc<PTree>>,
        pub kids: OnceLock<Vec<Gc<PTree>>>,
    }
    #[derive(Trace)]
    pub struct GNode {
        pub val: u64,
        pub edges: OnceLock<Vec<Gc<GNode>>>,
    }

    fn ptree_at(parent: Option<&Gc<PTree>>, depth: u32) -> Gc<PTree> {
        let me = Gc::new(PTree {
            val: depth as u64,
            parent: parent.cloned(),
            kids: OnceLock::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.kids.set(kids);
        }
        me
    }

    fn never(_: &dumpster::sync::CollectInfo) -> bool {
        false
    }

    pub struct DumpsterC;
    impl Contender for DumpsterC {
        const NAME: &'static str = "dumpster";
        const COLLECTS: bool = true;
        type Leaf = Gc<u64>;
        type Node = Gc<Node>;
        type Tree = Gc<Tree>;
        type List = Gc<List>;
        type PTree = Gc<PTree>;
        type GNode = Gc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            Gc::new(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            **h
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            Gc::new(Node {
                val: v,
                edges: Mutex::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.edges.lock().unwrap().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.edges.lock().unwrap().pop()
        }
        fn collect() {
            dumpster::sync::collect();
        }
        fn set_auto(on: bool) {
            if on {
                dumpster::sync::set_collect_condition(dumpster::sync::default_collect_condition)
            } else {
                dumpster::sync::set_collect_condition(never)
            }
        }
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            Gc::new(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.val
        }
        fn list(len: usize) -> Self::List {
            let mut head = Gc::new(List { val: 0, next: None });
            for i in 1..len {
                head = Gc::new(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    Gc::new(GNode {
                        val: i as u64,
                        edges: OnceLock::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            let mut cur = h;
            let mut sum = 0;
            for _ in 0..depth {
                sum += cur.val;
                cur = &cur.edges.get().unwrap()[rng.usize(..3)];
            }
            sum + cur.val
        }
    }
}

// ---------------------------------------------------------------------------
// gcmodule::ThreadedCc (feature `sync`)
// ---------------------------------------------------------------------------

pub mod gcm {
    use super::Contender;
    use gcmodule::{ThreadedCc, ThreadedObjectSpace, Trace, Tracer};
    use std::sync::{LazyLock, Mutex, OnceLock};

    /// One object space for the whole process (its collector visits every
    /// object tracked in it).
    pub static SPACE: LazyLock<ThreadedObjectSpace> = LazyLock::new(ThreadedObjectSpace::default);

    pub struct Node {
        pub val: u64,
        pub edges: Mutex<Vec<ThreadedCc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    impl Trace for Node {
        fn trace(&self, t: &mut Tracer) {
            self.edges.trace(t);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }
    pub struct Tree {
        pub val: u64,
        pub left: Option<ThreadedCc<Tree>>,
        pub right: Option<ThreadedCc<Tree>>,
    }
    impl Trace for Tree {
        fn trace(&self, t: &mut Tracer) {
            self.left.trace(t);
            self.right.trace(t);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }
    pub struct List {
        pub val: u64,
        pub next: Option<ThreadedCc<List>>,
    }
    impl Trace for List {
        fn trace(&self, t: &mut Tracer) {
            self.next.trace(t);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }
    pub struct PTree {
        pub val: u64,
        pub parent: Option<ThreadedCc<PTree>>,
        pub kids: OnceLock<Vec<ThreadedCc<PTree>>>,
    }
    impl Trace for PTree {
        fn trace(&self, t: &mut Tracer) {
            self.parent.trace(t);
            if let Some(k) = self.kids.get() {
                k.trace(t);
            }
        }
        fn is_type_tracked() -> bool {
            true
        }
    }
    pub struct GNode {
        pub val: u64,
        pub edges: OnceLock<Vec<ThreadedCc<GNode>>>,
    }
    impl Trace for GNode {
        fn trace(&self, t: &mut Tracer) {
            if let Some(e) = self.edges.get() {
                e.trace(t);
            }
        }
        fn is_type_tracked() -> bool {
            true
        }
    }

    fn ptree_at(parent: Option<&ThreadedCc<PTree>>, depth: u32) -> ThreadedCc<PTree> {
        let me = SPACE.create(PTree {
            val: depth as u64,
            parent: parent.cloned(),
            kids: OnceLock::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.borrow().kids.set(kids);
        }
        me
    }

    pub struct GcmoduleC;
    impl Contender for GcmoduleC {
        const NAME: &'static str = "gcmodule";
        const COLLECTS: bool = true;
        type Leaf = ThreadedCc<u64>;
        type Node = ThreadedCc<Node>;
        type Tree = ThreadedCc<Tree>;
        type List = ThreadedCc<List>;
        type PTree = ThreadedCc<PTree>;
        type GNode = ThreadedCc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            SPACE.create(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            *h.borrow()
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            SPACE.create(Node {
                val: v,
                edges: Mutex::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.borrow().val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.borrow().edges.lock().unwrap().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.borrow().edges.lock().unwrap().pop()
        }
        fn collect() {
            SPACE.collect_cycles();
        }
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            SPACE.create(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.borrow().val
        }
        fn list(len: usize) -> Self::List {
            let mut head = SPACE.create(List { val: 0, next: None });
            for i in 1..len {
                head = SPACE.create(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    SPACE.create(GNode {
                        val: i as u64,
                        edges: OnceLock::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .borrow()
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            // A reference cannot outlive its `borrow()` guard, so the walk
            // recurses with the guards nested (no counts touched).
            let g = h.borrow();
            if depth == 0 {
                return g.val;
            }
            let next = &g.edges.get().unwrap()[rng.usize(..3)];
            g.val + Self::walk(next, rng, depth - 1)
        }
    }
}

// ---------------------------------------------------------------------------
// rust-cc (single-threaded)
// ---------------------------------------------------------------------------

pub mod rcc {
    use super::Contender;
    use rust_cc::{Cc, Context, Finalize, Trace};
    use std::cell::{OnceCell, RefCell};

    pub struct Node {
        pub val: u64,
        pub edges: RefCell<Vec<Cc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    // SAFETY: traces exactly the handles the node owns.
    unsafe impl Trace for Node {
        fn trace(&self, ctx: &mut Context<'_>) {
            self.edges.trace(ctx);
        }
    }
    impl Finalize for Node {}
    pub struct Tree {
        pub val: u64,
        pub left: Option<Cc<Tree>>,
        pub right: Option<Cc<Tree>>,
    }
    // SAFETY: traces exactly the handles the node owns.
    unsafe impl Trace for Tree {
        fn trace(&self, ctx: &mut Context<'_>) {
            self.left.trace(ctx);
            self.right.trace(ctx);
        }
    }
    impl Finalize for Tree {}
    pub struct List {
        pub val: u64,
        pub next: Option<Cc<List>>,
    }
    // SAFETY: traces exactly the handles the node owns.
    unsafe impl Trace for List {
        fn trace(&self, ctx: &mut Context<'_>) {
            self.next.trace(ctx);
        }
    }
    impl Finalize for List {}
    pub struct PTree {
        pub val: u64,
        pub parent: Option<Cc<PTree>>,
        pub kids: OnceCell<Vec<Cc<PTree>>>,
    }
    // SAFETY: traces exactly the handles the node owns.
    unsafe impl Trace for PTree {
        fn trace(&self, ctx: &mut Context<'_>) {
            self.parent.trace(ctx);
            if let Some(k) = self.kids.get() {
                k.trace(ctx);
            }
        }
    }
    impl Finalize for PTree {}
    pub struct GNode {
        pub val: u64,
        pub edges: OnceCell<Vec<Cc<GNode>>>,
    }
    // SAFETY: traces exactly the handles the node owns.
    unsafe impl Trace for GNode {
        fn trace(&self, ctx: &mut Context<'_>) {
            if let Some(e) = self.edges.get() {
                e.trace(ctx);
            }
        }
    }
    impl Finalize for GNode {}

    fn ptree_at(parent: Option<&Cc<PTree>>, depth: u32) -> Cc<PTree> {
        let me = Cc::new(PTree {
            val: depth as u64,
            parent: parent.cloned(),
            kids: OnceCell::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.kids.set(kids);
        }
        me
    }

    pub struct RustCcC;
    impl Contender for RustCcC {
        const NAME: &'static str = "rust-cc";
        const COLLECTS: bool = true;
        type Leaf = Cc<u64>;
        type Node = Cc<Node>;
        type Tree = Cc<Tree>;
        type List = Cc<List>;
        type PTree = Cc<PTree>;
        type GNode = Cc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            Cc::new(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            **h
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            Cc::new(Node {
                val: v,
                edges: RefCell::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.edges.borrow_mut().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.edges.borrow_mut().pop()
        }
        fn collect() {
            rust_cc::collect_cycles();
        }
        fn set_auto(on: bool) {
            let _ = rust_cc::config::config(|c| c.set_auto_collect(on));
        }
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            Cc::new(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.val
        }
        fn list(len: usize) -> Self::List {
            let mut head = Cc::new(List { val: 0, next: None });
            for i in 1..len {
                head = Cc::new(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    Cc::new(GNode {
                        val: i as u64,
                        edges: OnceCell::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            let mut cur = h;
            let mut sum = 0;
            for _ in 0..depth {
                sum += cur.val;
                cur = &cur.edges.get().unwrap()[rng.usize(..3)];
            }
            sum + cur.val
        }
    }
}

// ---------------------------------------------------------------------------
// bacon_rajan_cc (single-threaded)
// ---------------------------------------------------------------------------

pub mod brc {
    use super::Contender;
    use bacon_rajan_cc::{Cc, Trace, Tracer};
    use std::cell::{OnceCell, RefCell};

    pub struct Node {
        pub val: u64,
        pub edges: RefCell<Vec<Cc<Node>>>,
    }
    impl Drop for Node {
        #[inline]
        fn drop(&mut self) {
            super::tally::note(self.val);
        }
    }
    impl Trace for Node {
        fn trace(&self, t: &mut Tracer) {
            for e in self.edges.borrow().iter() {
                e.trace(t);
            }
        }
    }
    pub struct Tree {
        pub val: u64,
        pub left: Option<Cc<Tree>>,
        pub right: Option<Cc<Tree>>,
    }
    impl Trace for Tree {
        fn trace(&self, t: &mut Tracer) {
            if let Some(l) = &self.left {
                l.trace(t);
            }
            if let Some(r) = &self.right {
                r.trace(t);
            }
        }
    }
    pub struct List {
        pub val: u64,
        pub next: Option<Cc<List>>,
    }
    impl Trace for List {
        fn trace(&self, t: &mut Tracer) {
            if let Some(n) = &self.next {
                n.trace(t);
            }
        }
    }
    pub struct PTree {
        pub val: u64,
        pub parent: Option<Cc<PTree>>,
        pub kids: OnceCell<Vec<Cc<PTree>>>,
    }
    impl Trace for PTree {
        fn trace(&self, t: &mut Tracer) {
            if let Some(p) = &self.parent {
                p.trace(t);
            }
            for k in self.kids.get().into_iter().flatten() {
                k.trace(t);
            }
        }
    }
    pub struct GNode {
        pub val: u64,
        pub edges: OnceCell<Vec<Cc<GNode>>>,
    }
    impl Trace for GNode {
        fn trace(&self, t: &mut Tracer) {
            for e in self.edges.get().into_iter().flatten() {
                e.trace(t);
            }
        }
    }

    fn ptree_at(parent: Option<&Cc<PTree>>, depth: u32) -> Cc<PTree> {
        let me = Cc::new(PTree {
            val: depth as u64,
            parent: parent.cloned(),
            kids: OnceCell::new(),
        });
        if depth > 0 {
            let kids = vec![
                ptree_at(Some(&me), depth - 1),
                ptree_at(Some(&me), depth - 1),
            ];
            let _ = me.kids.set(kids);
        }
        me
    }

    pub struct BaconRajanC;
    impl Contender for BaconRajanC {
        const NAME: &'static str = "bacon_rajan_cc";
        const COLLECTS: bool = true;
        type Leaf = Cc<u64>;
        type Node = Cc<Node>;
        type Tree = Cc<Tree>;
        type List = Cc<List>;
        type PTree = Cc<PTree>;
        type GNode = Cc<GNode>;

        #[inline]
        fn leaf(v: u64) -> Self::Leaf {
            Cc::new(v)
        }
        #[inline]
        fn leaf_get(h: &Self::Leaf) -> u64 {
            **h
        }
        #[inline]
        fn node(v: u64) -> Self::Node {
            Cc::new(Node {
                val: v,
                edges: RefCell::new(Vec::new()),
            })
        }
        #[inline]
        fn node_get(h: &Self::Node) -> u64 {
            h.val
        }
        fn link(from: &Self::Node, to: &Self::Node) {
            from.edges.borrow_mut().push(to.clone());
        }
        fn pop_edge(from: &Self::Node) -> Option<Self::Node> {
            from.edges.borrow_mut().pop()
        }
        fn collect() {
            bacon_rajan_cc::collect_cycles();
        }
        fn tree(depth: u32) -> Self::Tree {
            let (left, right) = if depth == 0 {
                (None, None)
            } else {
                (Some(Self::tree(depth - 1)), Some(Self::tree(depth - 1)))
            };
            Cc::new(Tree {
                val: depth as u64,
                left,
                right,
            })
        }
        fn tree_val(t: &Self::Tree) -> u64 {
            t.val
        }
        fn list(len: usize) -> Self::List {
            let mut head = Cc::new(List { val: 0, next: None });
            for i in 1..len {
                head = Cc::new(List {
                    val: i as u64,
                    next: Some(head),
                });
            }
            head
        }
        fn ptree(depth: u32) -> Self::PTree {
            ptree_at(None, depth)
        }
        fn graph(adj: &[[u32; 3]]) -> Vec<Self::GNode> {
            let nodes: Vec<_> = (0..adj.len())
                .map(|i| {
                    Cc::new(GNode {
                        val: i as u64,
                        edges: OnceCell::new(),
                    })
                })
                .collect();
            for (n, a) in nodes.iter().zip(adj) {
                let _ = n
                    .edges
                    .set(a.iter().map(|&j| nodes[j as usize].clone()).collect());
            }
            nodes
        }
        fn walk(h: &Self::GNode, rng: &mut fastrand::Rng, depth: u32) -> u64 {
            let mut cur = h;
            let mut sum = 0;
            for _ in 0..depth {
                sum += cur.val;
                cur = &cur.edges.get().unwrap()[rng.usize(..3)];
            }
            sum + cur.val
        }
    }
}

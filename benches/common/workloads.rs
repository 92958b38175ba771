//! The workloads, generic over [`Contender`]. Each timed one takes an
//! iteration count and returns the time those iterations took, so both
//! criterion (`iter_custom`) and the report can drive it.

use super::alloc;
use super::contenders::{random_adjacency, tally, Contender};
use rayon::ThreadPool;
use std::cell::OnceCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// Logical cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A rayon pool of exactly `threads` threads, built once per size.
pub fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: Mutex<Vec<(usize, &'static ThreadPool)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap();
    if let Some(&(_, p)) = pools.iter().find(|(n, _)| *n == threads) {
        return p;
    }
    let p: &'static ThreadPool = Box::leak(Box::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool"),
    ));
    pools.push((threads, p));
    p
}

/// Run `f` on a thread with a 1 GiB stack (recursive drops of long lists
/// and recursive collectors need it), and return its result.
pub fn big_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("bench-big-stack".into())
            .stack_size(1 << 30)
            .spawn_scoped(s, f)
            .expect("spawn big-stack thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

// ---------------------------------------------------------------------------
// single-thread micro operations (per iteration: one operation)
// ---------------------------------------------------------------------------

pub fn clone_drop_leaf<C: Contender>(iters: u64) -> Duration {
    let h = C::leaf(7);
    let t = Instant::now();
    for _ in 0..iters {
        drop(black_box(black_box(&h).clone()));
    }
    t.elapsed()
}

pub fn clone_drop_node<C: Contender>(iters: u64) -> Duration {
    let h = C::node(7);
    let t = Instant::now();
    for _ in 0..iters {
        drop(black_box(black_box(&h).clone()));
    }
    t.elapsed()
}

/// Handles to many objects and a random order to touch them in, built on
/// first use (see [`clone_drop_random`]).
pub struct SpreadFixture<H> {
    objs: usize,
    make: fn(u64) -> H,
    built: OnceCell<(Vec<H>, Vec<u32>)>,
}

/// How many random picks a [`SpreadFixture`] cycles through (a power of
/// two: the index is a mask).
const SPREAD_PICKS: usize = 1 << 20;

impl<H> SpreadFixture<H> {
    pub fn new(objs: usize, make: fn(u64) -> H) -> Self {
        SpreadFixture {
            objs,
            make,
            built: OnceCell::new(),
        }
    }

    fn get(&self) -> &(Vec<H>, Vec<u32>) {
        self.built.get_or_init(|| {
            let objs: Vec<H> = (0..self.objs as u64).map(self.make).collect();
            let mut rng = fastrand::Rng::with_seed(0x5B4EAD);
            let n = u32::try_from(self.objs).expect("too many objects");
            let picks = (0..SPREAD_PICKS).map(|_| rng.u32(..n)).collect();
            (objs, picks)
        })
    }
}

/// Clone and drop a handle to a random object of the fixture's (a million
/// in the report, far more than the caches hold), `iters` times: a program
/// touching a big shared heap. Each clone is a cache miss, and the CPU
/// overlaps the misses of consecutive iterations only as far as nothing
/// waits on a locked instruction's result.
pub fn clone_drop_random<H: Clone>(f: &SpreadFixture<H>, iters: u64) -> Duration {
    let (objs, picks) = f.get();
    let t = Instant::now();
    for i in 0..iters as usize {
        let k = picks[i & (SPREAD_PICKS - 1)];
        drop(black_box(objs[k as usize].clone()));
    }
    t.elapsed()
}

pub fn deref_leaf<C: Contender>(iters: u64) -> Duration {
    let h = C::leaf(7);
    let mut sum = 0u64;
    let t = Instant::now();
    for _ in 0..iters {
        sum = sum.wrapping_add(C::leaf_get(black_box(&h)));
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

pub fn deref_node<C: Contender>(iters: u64) -> Duration {
    let h = C::node(7);
    let mut sum = 0u64;
    let t = Instant::now();
    for _ in 0..iters {
        sum = sum.wrapping_add(C::node_get(black_box(&h)));
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

pub fn new_drop_leaf<C: Contender>(iters: u64) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        drop(black_box(C::leaf(black_box(i))));
    }
    t.elapsed()
}

pub fn new_drop_node<C: Contender>(iters: u64) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        drop(black_box(C::node(black_box(i))));
    }
    t.elapsed()
}

// ---------------------------------------------------------------------------
// contended (per iteration: every thread of the pool does one operation)
// ---------------------------------------------------------------------------

pub fn contended_leaf<C: Contender>(threads: usize, iters: u64) -> Duration
where
    C::Leaf: Send + Sync,
{
    let p = pool(threads);
    let h = C::leaf(7);
    let t = Instant::now();
    p.broadcast(|_| {
        for _ in 0..iters {
            drop(black_box(black_box(&h).clone()));
        }
    });
    t.elapsed()
}

pub fn contended_node<C: Contender>(threads: usize, iters: u64) -> Duration
where
    C::Node: Send + Sync,
{
    let p = pool(threads);
    let h = C::node(7);
    let t = Instant::now();
    p.broadcast(|_| {
        for _ in 0..iters {
            drop(black_box(black_box(&h).clone()));
        }
    });
    t.elapsed()
}

/// Steps per walk of the shared graph.
pub const WALK_DEPTH: u32 = 32;

/// Every thread of the pool walks the shared graph (per iteration: one
/// walk of [`WALK_DEPTH`] steps per thread).
pub fn graph_walk<C: Contender>(threads: usize, graph: &[C::GNode], iters: u64) -> Duration
where
    C::GNode: Send + Sync,
{
    let p = pool(threads);
    let n = graph.len();
    let t = Instant::now();
    p.broadcast(|ctx| {
        let mut rng = fastrand::Rng::with_seed(0x5EED + ctx.index() as u64);
        let mut sum = 0u64;
        for _ in 0..iters {
            let start = &graph[rng.usize(..n)];
            sum = sum.wrapping_add(C::walk(start, &mut rng, WALK_DEPTH));
        }
        black_box(sum);
    });
    t.elapsed()
}

// ---------------------------------------------------------------------------
// acyclic build + drop (per iteration: one structure)
// ---------------------------------------------------------------------------

pub fn tree_build_drop<C: Contender>(depth: u32, iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        let tree = C::tree(depth);
        black_box(C::tree_val(&tree));
        drop(tree);
    }
    t.elapsed()
}

pub fn list_build_drop<C: Contender>(len: usize, iters: u64) -> Duration {
    big_stack(|| {
        let t = Instant::now();
        for _ in 0..iters {
            drop(black_box(C::list(len)));
        }
        t.elapsed()
    })
}

// ---------------------------------------------------------------------------
// collection throughput (per iteration: drop the last outside handles of
// one garbage structure and collect it; building it is not timed)
// ---------------------------------------------------------------------------

/// The cyclic shapes.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// `n` two-cycles.
    Pairs(usize),
    /// `count` rings of `len`.
    Rings(usize, usize),
    /// `n` nodes with 3 random out-edges each.
    Random(usize),
    /// A binary tree of this depth whose children point to their parent.
    ParentTree(u32),
}

impl Shape {
    /// Objects in the structure.
    pub fn objects(self) -> usize {
        match self {
            Shape::Pairs(n) => 2 * n,
            Shape::Rings(c, l) => c * l,
            Shape::Random(n) => n,
            Shape::ParentTree(d) => (1usize << (d + 1)) - 1,
        }
    }
}

/// Handles to a built structure.
pub enum Built<C: Contender> {
    Nodes(Vec<C::Node>),
    Tree(C::PTree),
}

pub fn build<C: Contender>(shape: Shape) -> Built<C> {
    match shape {
        Shape::Pairs(n) => {
            let mut v = Vec::with_capacity(2 * n);
            for i in 0..n as u64 {
                let a = C::node(2 * i);
                let b = C::node(2 * i + 1);
                C::link(&a, &b);
                C::link(&b, &a);
                v.push(a);
                v.push(b);
            }
            Built::Nodes(v)
        }
        Shape::Rings(count, len) => {
            let mut v = Vec::with_capacity(count * len);
            for r in 0..count {
                let base = v.len();
                for i in 0..len {
                    v.push(C::node((r * len + i) as u64));
                }
                for i in 0..len {
                    C::link(&v[base + i], &v[base + (i + 1) % len]);
                }
            }
            Built::Nodes(v)
        }
        Shape::Random(n) => {
            let adj = random_adjacency(n, 0xC0FFEE);
            let v: Vec<_> = (0..n as u64).map(C::node).collect();
            for (i, a) in adj.iter().enumerate() {
                for &j in a {
                    C::link(&v[i], &v[j as usize]);
                }
            }
            Built::Nodes(v)
        }
        Shape::ParentTree(d) => Built::Tree(C::ptree(d)),
    }
}

/// Time dropping the outside handles and collecting, `iters` times (on a
/// big-stack thread: some collectors recurse). Automatic collection is off
/// from before the untimed build until after the timed `collect()`, so no
/// automatic collection (arcycle's runs on its own thread) started by the
/// build overlaps the timed part; a `collect()` first settles what earlier
/// work left buffered (and waits for a collection in progress).
pub fn collect_shape<C: Contender>(shape: Shape, iters: u64) -> Duration {
    big_stack(|| {
        C::set_auto(false);
        C::collect();
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let built = build::<C>(shape);
            let t = Instant::now();
            drop(built);
            C::collect();
            total += t.elapsed();
        }
        C::set_auto(true);
        total
    })
}

/// One untimed round with the allocator counting, after one uncounted
/// round on the same thread: the fraction of the allocations made by
/// build + drop + collect that were given back (by count, so a collector
/// keeping one grown buffer, or a per-thread one, does not look like a
/// leak).
pub fn freed_fraction<C: Contender>(shape: Shape) -> f64 {
    big_stack(|| {
        // Settle anything pending from earlier workloads first.
        C::collect();
        // One uncounted round on this (new) thread first: what a collector
        // sets up once per thread and keeps (arcycle's root ring, any
        // thread-local destructor registration) is not garbage, and a leak
        // of garbage shows in every round, the counted one included.
        drop(build::<C>(shape));
        C::collect();
        let (_, c) = alloc::count(|| {
            let built = build::<C>(shape);
            drop(built);
            C::collect();
        });
        if c.allocs == 0 {
            return 1.0;
        }
        1.0 - c.net_allocs.max(0) as f64 / c.allocs as f64
    })
}

// ---------------------------------------------------------------------------
// pause: how long collect() blocks its caller with a large live heap and a
// little garbage
// ---------------------------------------------------------------------------

/// `rounds` collections of `garbage_rings` rings of 10 while `live` nodes
/// (a random graph) stay reachable. Returns each collect() call's length.
/// Automatic collection is off throughout (as in [`collect_shape`]), so no
/// automatic collection overlaps a timed `collect()`.
pub fn pauses<C: Contender>(live: usize, garbage_rings: usize, rounds: usize) -> Vec<Duration> {
    big_stack(|| {
        C::set_auto(false);
        C::collect();
        let heap = build::<C>(Shape::Random(live));
        C::collect();
        let mut out = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let garbage = build::<C>(Shape::Rings(garbage_rings, 10));
            drop(garbage);
            let t = Instant::now();
            C::collect();
            out.push(t.elapsed());
        }
        drop(heap);
        C::collect();
        C::set_auto(true);
        out
    })
}

// ---------------------------------------------------------------------------
// mutator throughput while another thread collects
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
pub struct MutatorRun {
    /// Mutator operations per second while the other thread spins on
    /// plain arithmetic (the same CPU pressure, no collector).
    pub baseline: f64,
    /// Mutator operations per second while the other thread builds garbage
    /// (between its collections).
    pub outside: f64,
    /// Mutator operations per second while the other thread is inside
    /// `collect()`.
    pub during: f64,
    /// Collections the other thread completed.
    pub collections: u64,
    /// Fraction of the collecting slices' time spent inside `collect()`.
    pub overlap: f64,
}

impl MutatorRun {
    /// Throughput during collection as a fraction of the baseline.
    pub fn kept(&self) -> f64 {
        self.during / self.baseline
    }
}

fn rate(ops: f64, t: f64) -> f64 {
    ops / t.max(1e-12)
}

/// What the other thread does.
const SPIN: u8 = 0;
const COLLECT: u8 = 1;
const EXIT: u8 = 2;

/// Live nodes (a random graph) kept reachable during the mutator run.
pub const LIVE_HEAP: usize = 100_000;

/// One mutator (this thread) works on its own 256 live `M` nodes: clone
/// one, read it, drop it, and allocate and drop a fresh node (one
/// operation), in batches of 64. The other thread alternates, in slices of
/// 100 ms, between spinning on plain arithmetic (the baseline: the same
/// CPU pressure, no collector) and building cyclic `G` garbage (200 rings
/// of 50) and collecting it over and over; alternating puts the machine's
/// background noise on both sides alike. A live heap of [`LIVE_HEAP`]
/// `G` nodes stays reachable throughout. Automatic collection is off for
/// the run, so only the other thread collects.
///
/// Both threads log timestamps (the mutator its batches, the other thread
/// each `collect()` call); afterwards each batch's time and operations are
/// split in proportion to its overlap with collections. (Classifying whole
/// batches instead is biased: a batch that got preempted, or blocked by a
/// stop-the-world collector, is long, and lands on whichever side the
/// rule favours.)
///
/// With `M = G` this is the contender's own number; `M = Arc` is the
/// control (no shared collector state: what the hardware alone costs).
pub fn mutator_during_collection<M: Contender, G: Contender>(run_for: Duration) -> MutatorRun
where
    G::Node: Send + Sync,
{
    // Big stacks on both threads: some peers' collectors recurse.
    big_stack(|| mutator_run::<M, G>(run_for))
}

fn mutator_run<M: Contender, G: Contender>(run_for: Duration) -> MutatorRun
where
    G::Node: Send + Sync,
{
    const BATCH: u64 = 64;
    const SLICE: Duration = Duration::from_millis(100);
    G::set_auto(false);
    M::set_auto(false);
    let mode = AtomicU8::new(SPIN);
    // A live heap nobody touches: a stop-the-world collector has to walk
    // it while mutators wait; arcycle never looks at it after the first
    // collection.
    let heap = build::<G>(Shape::Random(LIVE_HEAP));
    G::collect();
    let nodes: Vec<M::Node> = (0..256).map(M::node).collect();
    let slices = (run_for.as_millis() / SLICE.as_millis()).max(2) as usize;
    let mut batches: Vec<(Instant, Instant, u8)> =
        Vec::with_capacity(run_for.as_micros() as usize / 4 + 1024);
    let (collections, intervals) = std::thread::scope(|s| {
        let other = std::thread::Builder::new().stack_size(1 << 30);
        let other = other.spawn_scoped(s, || {
            let mut log: Vec<(Instant, Instant)> = Vec::with_capacity(4096);
            let mut x = 1u64;
            loop {
                match mode.load(Relaxed) {
                    SPIN => {
                        for _ in 0..1000 {
                            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                    COLLECT => {
                        let g = build::<G>(Shape::Rings(200, 50));
                        drop(g);
                        let t0 = Instant::now();
                        G::collect();
                        log.push((t0, Instant::now()));
                    }
                    _ => break,
                }
            }
            black_box(x);
            log
        });
        let other = other.expect("spawn the collecting thread");
        let mut sum = 0u64;
        let mut i = 0u64;
        for slice in 0..slices {
            let m = if slice % 2 == 0 { SPIN } else { COLLECT };
            mode.store(m, Relaxed);
            let end = Instant::now() + SLICE;
            loop {
                let t0 = Instant::now();
                for _ in 0..BATCH {
                    let c = nodes[(i % 256) as usize].clone();
                    sum = sum.wrapping_add(M::node_get(&c));
                    drop(black_box(c));
                    drop(black_box(M::node(i)));
                    i += 1;
                }
                let t1 = Instant::now();
                batches.push((t0, t1, m));
                if t1 >= end {
                    break;
                }
            }
        }
        mode.store(EXIT, Relaxed);
        black_box(sum);
        let log = other.join().unwrap();
        (log.len() as u64, log)
    });
    drop(nodes);
    drop(heap);
    G::set_auto(true);
    M::set_auto(true);
    G::collect();
    M::collect();

    // Split each batch by its overlap with the collections (both lists are
    // in time order).
    let (mut base_t, mut base_ops) = (0.0, 0.0);
    let (mut out_t, mut out_ops) = (0.0, 0.0);
    let (mut in_t, mut in_ops) = (0.0, 0.0);
    let mut k = 0;
    for &(t0, t1, m) in &batches {
        while k < intervals.len() && intervals[k].1 <= t0 {
            k += 1;
        }
        let mut overlap = 0.0;
        let mut j = k;
        while j < intervals.len() && intervals[j].0 < t1 {
            let (c0, c1) = intervals[j];
            let lo = if c0 > t0 { c0 } else { t0 };
            let hi = if c1 < t1 { c1 } else { t1 };
            if hi > lo {
                overlap += (hi - lo).as_secs_f64();
            }
            j += 1;
        }
        let dt = (t1 - t0).as_secs_f64().max(1e-12);
        let frac = (overlap / dt).min(1.0);
        in_t += dt * frac;
        in_ops += BATCH as f64 * frac;
        if m == SPIN {
            base_t += dt * (1.0 - frac);
            base_ops += BATCH as f64 * (1.0 - frac);
        } else {
            out_t += dt * (1.0 - frac);
            out_ops += BATCH as f64 * (1.0 - frac);
        }
    }
    MutatorRun {
        baseline: rate(base_ops, base_t),
        outside: rate(out_ops, out_t),
        during: rate(in_ops, in_t),
        collections,
        overlap: in_t / (in_t + out_t).max(1e-12),
    }
}

// ---------------------------------------------------------------------------
// memory per object
// ---------------------------------------------------------------------------

/// Heap bytes per object for `n` objects made by `make` (the vector that
/// keeps them is allocated before counting starts).
pub fn bytes_per<H>(n: usize, make: impl Fn(u64) -> H) -> f64 {
    let mut keep = Vec::with_capacity(n);
    let (_, c) = alloc::count(|| {
        for i in 0..n as u64 {
            keep.push(make(i));
        }
    });
    drop(keep);
    c.net as f64 / n as f64
}

/// Heap bytes per node for `n` nodes that each had one handle cloned and
/// dropped (which makes a cycle collector buffer them as possible roots).
pub fn bytes_per_buffered_node<C: Contender>(n: usize) -> f64 {
    let mut keep = Vec::with_capacity(n);
    let (_, c) = alloc::count(|| {
        for i in 0..n as u64 {
            let h = C::node(i);
            drop(h.clone());
            keep.push(h);
        }
    });
    drop(keep);
    C::collect();
    c.net as f64 / n as f64
}

// ---------------------------------------------------------------------------
// the shared-graph fixture, built once per contender
// ---------------------------------------------------------------------------

/// Nodes in the read-mostly shared graph.
pub const GRAPH_NODES: usize = 10_000;

/// A lazily built shared graph (kept for the whole process: the `Arc`
/// version has cycles and could not be freed anyway).
pub struct GraphFixture<C: Contender>(OnceCell<Vec<C::GNode>>);

impl<C: Contender> Default for GraphFixture<C> {
    fn default() -> Self {
        GraphFixture(OnceCell::new())
    }
}

impl<C: Contender> GraphFixture<C> {
    pub fn get(&self) -> &[C::GNode] {
        self.0
            .get_or_init(|| C::graph(&random_adjacency(GRAPH_NODES, 0xBEEF)))
    }
}

// ---------------------------------------------------------------------------
// live-heap scaling (issue #9): garbage churn against a large live graph
// ---------------------------------------------------------------------------

/// Live nodes whose handles are cloned and dropped per churn round.
pub const LIVE_TOUCHES: usize = 4;

/// One churn run against the live heap (see [`live_heap`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveRun {
    /// The churn (with the mode's automatic collection).
    pub churn: Duration,
    /// The final `collect()`.
    pub collect: Duration,
    /// Garbage objects the churn made (all freed when the run returns).
    pub garbage: u64,
    /// Garbage not yet freed when the churn ended (before the final
    /// `collect()`).
    pub waiting_end: u64,
    /// The most garbage waiting at the end of any round.
    pub waiting_peak: u64,
    /// Collections arcycle ran during the run (0 for the others).
    pub arcycle_collections: u64,
}

/// A live random graph of `live` nodes (3 random edges each, from
/// [`random_adjacency`]; `Node`s, whose edges can change), each node's
/// value tagged [`tally::LIVE`] so its drop is counted.
pub fn live_graph<C: Contender>(live: usize) -> Vec<C::Node> {
    let adj = random_adjacency(live, 0x11FE_4EA9);
    let nodes: Vec<C::Node> = (0..live as u64).map(|i| C::node(tally::LIVE | i)).collect();
    for (n, a) in nodes.iter().zip(&adj) {
        for &j in a {
            C::link(n, &nodes[j as usize]);
        }
    }
    nodes
}

/// The live-heap case (issue #9), `reps` times in each mode, on one live
/// graph of `live` nodes built once (on a big-stack thread: the
/// single-threaded peers keep their state per thread, and some collectors
/// recurse). Returns the (explicit, automatic) runs; `Arc` runs only the
/// automatic mode (it has nothing to collect).
///
/// Each run settles the collector (automatic collection off, a
/// `collect()`), then churns `rounds` rounds: (a) two garbage nodes
/// linked into a 2-cycle (for `Arc` a 2-node chain) are hung off a random
/// live node and detached again, so they become unreachable garbage; (b)
/// handles to [`LIVE_TOUCHES`] random live nodes are cloned and dropped,
/// so a cycle collector buffers live nodes as possible roots. Explicit
/// mode churns with automatic collection off; automatic mode turns it on
/// (every library at its defaults) for the churn. Either way one final
/// `collect()` follows, timed on its own.
///
/// # Panics
///
/// If a run leaves garbage unfreed, frees a live node, or (explicit mode)
/// frees garbage before the final `collect()`; or if the live graph is not
/// freed after the runs.
pub fn live_heap<C: Contender>(
    live: usize,
    rounds: usize,
    reps: usize,
) -> (Vec<LiveRun>, Vec<LiveRun>) {
    big_stack(|| {
        C::set_auto(false);
        C::collect();
        let (live0, _) = tally::read();
        let nodes = live_graph::<C>(live);
        // The build's possible roots are not the churn's.
        C::collect();
        let mut rng = fastrand::Rng::with_seed(0x11FE);
        let (mut explicit, mut automatic) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            if C::COLLECTS {
                explicit.push(live_churn::<C>(&nodes, rounds, false, &mut rng));
            }
            automatic.push(live_churn::<C>(&nodes, rounds, true, &mut rng));
        }
        // Untimed teardown: break the graph's cycles, so every contender
        // (`Arc` too) frees it by counting.
        for n in &nodes {
            while C::pop_edge(n).is_some() {}
        }
        drop(nodes);
        C::collect();
        C::set_auto(true);
        let freed = tally::read().0 - live0;
        assert_eq!(
            freed,
            live as u64,
            "live-heap case, {}: {freed} of the {live} live nodes freed after teardown",
            C::NAME
        );
        (explicit, automatic)
    })
}

fn live_churn<C: Contender>(
    nodes: &[C::Node],
    rounds: usize,
    auto: bool,
    rng: &mut fastrand::Rng,
) -> LiveRun {
    let mode = if auto { "automatic" } else { "explicit" };
    let live = nodes.len();
    // Random choices drawn up front: the host, then the touched nodes.
    let per = 1 + LIVE_TOUCHES;
    let picks: Vec<u32> = (0..rounds * per).map(|_| rng.u32(..live as u32)).collect();
    C::set_auto(false);
    C::collect();
    let (live0, garbage0) = tally::read();
    let collections0 = arcycle::stats().collections;
    C::set_auto(auto);
    let mut peak = 0u64;
    let t = Instant::now();
    for (r, p) in picks.chunks_exact(per).enumerate() {
        let host = &nodes[p[0] as usize];
        let g = tally::GARBAGE | (2 * r as u64);
        let a = C::node(g);
        let b = C::node(g + 1);
        C::link(&a, &b);
        if C::COLLECTS {
            C::link(&b, &a);
        }
        C::link(host, &a);
        drop(a);
        drop(b);
        drop(black_box(C::pop_edge(host)));
        for &k in &p[1..] {
            drop(black_box(nodes[k as usize].clone()));
        }
        let freed = tally::GARBAGE_DROPS.load(Relaxed) - garbage0;
        peak = peak.max(2 * (r as u64 + 1) - freed);
    }
    let churn = t.elapsed();
    let garbage = 2 * rounds as u64;
    let waiting_end = garbage - (tally::GARBAGE_DROPS.load(Relaxed) - garbage0);
    let t = Instant::now();
    C::collect();
    let collect = t.elapsed();
    C::set_auto(false);
    let (live1, garbage1) = tally::read();
    let name = C::NAME;
    assert_eq!(
        garbage1 - garbage0,
        garbage,
        "live-heap case ({live} live, {mode}), {name}: {} of {garbage} garbage objects freed",
        garbage1 - garbage0
    );
    assert_eq!(
        live1 - live0,
        0,
        "live-heap case ({live} live, {mode}), {name}: {} live nodes freed",
        live1 - live0
    );
    if !auto && C::COLLECTS {
        assert_eq!(
            waiting_end, garbage,
            "live-heap case ({live} live, explicit), {name}: garbage freed with automatic \
             collection off"
        );
    }
    LiveRun {
        churn,
        collect,
        garbage,
        waiting_end,
        waiting_peak: peak,
        arcycle_collections: if name == "arcycle" {
            arcycle::stats().collections - collections0
        } else {
            0
        },
    }
}

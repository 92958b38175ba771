//! A tour of arcycle: several threads build cyclic graphs, drop every
//! outside handle, and the cycle collector frees them — on its own thread,
//! timed by a callback — while the threads keep working.
//!
//! Run with `cargo run --release --example tour` (add `--features census`
//! to see the census of live objects per type).

use arcycle::{Cc, CollectEvent, Trace, Weak};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// A graph node: a label, its out-edges behind a lock, and a weak link
/// back to its parent (weak links are not edges).
#[derive(Trace)]
struct Node {
    label: usize,
    edges: Mutex<Vec<Cc<Node>>>,
    parent: Mutex<Weak<Node>>,
}

impl Node {
    fn new(label: usize) -> Cc<Node> {
        ALIVE.fetch_add(1, Relaxed);
        Cc::new(Node {
            label,
            edges: Mutex::new(Vec::new()),
            parent: Mutex::new(Weak::new()),
        })
    }
    fn link(from: &Cc<Node>, to: &Cc<Node>) {
        from.edges.lock().unwrap().push(to.clone());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Relaxed);
    }
}

/// A ring of `n` nodes: each points to the next, the last to the first.
fn ring(n: usize, base: usize) -> Vec<Cc<Node>> {
    let nodes: Vec<_> = (0..n).map(|i| Node::new(base + i)).collect();
    for i in 0..n {
        Node::link(&nodes[i], &nodes[(i + 1) % n]);
    }
    nodes
}

/// A tree whose children point back to their parent with strong edges
/// (a cycle per child), as a naive scene graph would.
fn tree(depth: u32, base: usize) -> Cc<Node> {
    let root = Node::new(base);
    if depth > 0 {
        for k in 0..2 {
            let child = tree(depth - 1, base * 2 + k + 1);
            *child.parent.lock().unwrap() = Cc::downgrade(&root);
            Node::link(&root, &child);
            Node::link(&child, &root); // strong back-pointer: a cycle
        }
    }
    root
}

/// What the callback saw of the automatic collections.
#[derive(Default)]
struct Log {
    collections: usize,
    on_collector_thread: usize,
    freed: usize,
    longest: Duration,
    total: Duration,
}

#[cfg(feature = "census")]
fn census(when: &str) {
    let row = arcycle::census()
        .into_iter()
        .find(|t| t.type_name == std::any::type_name::<Node>());
    let (live, bytes, peak) = row.map_or((0, 0, 0), |t| (t.live, t.bytes, t.peak_live));
    println!(
        "census {when}: {live} Node allocations live ({} KiB), peak {peak}",
        bytes / 1024
    );
}

#[cfg(not(feature = "census"))]
fn census(when: &str) {
    if when == "before" {
        println!("(census: run with `--features census` to count live objects per type)");
    }
}

/// Wait (briefly) until the collector thread has freed every node: it
/// collects at each threshold crossing, and what is left below the
/// threshold after its quiet period — which we end now.
fn wait_for_the_collector_thread() {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ALIVE.load(Relaxed) != 0 {
        assert!(Instant::now() < deadline, "the collector thread is stuck");
        arcycle::debug::end_quiet_period();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .max(2);
    println!("arcycle tour: {threads} threads build cyclic graphs, then drop them\n");

    // 1. Nobody calls collect(): automatic collections run on the
    //    collector thread, and a callback times each one.
    let log = Arc::new(Mutex::new(Log::default()));
    let sink = log.clone();
    let id = arcycle::add_callback(move |event| {
        if let CollectEvent::Stop(info) = event {
            if info.automatic {
                let mut l = sink.lock().unwrap();
                l.collections += 1;
                if std::thread::current().name() == Some("arcycle-collector") {
                    l.on_collector_thread += 1;
                }
                l.freed += info.freed;
                l.longest = l.longest.max(info.pause);
                l.total += info.pause;
            }
        }
    });
    census("before");
    let built = AtomicUsize::new(0);
    let t0 = Instant::now();
    let weak: Weak<Node> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let built = &built;
                s.spawn(move || {
                    let before = ALIVE.load(Relaxed);
                    let mut keep = Weak::new();
                    for r in 0..20 {
                        let ring = ring(500, t * 1_000_000 + r * 1_000);
                        keep = Cc::downgrade(&ring[0]);
                    }
                    let tree = tree(10, t);
                    built.fetch_add(500 * 20 + 2047, Relaxed);
                    let _ = (before, tree.label);
                    keep
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .next()
            .unwrap()
    });
    let built = built.load(Relaxed);
    census("after the threads dropped everything");
    wait_for_the_collector_thread();
    let elapsed = t0.elapsed();
    // The last collection's Stop event comes after its destructors ran.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.lock().unwrap().freed < built {
        assert!(Instant::now() < deadline, "a Stop event is missing");
        std::thread::yield_now();
    }
    arcycle::remove_callback(id);
    // Never hold a lock a callback takes while collecting: a collection
    // already under way may still call it once.
    let (collections, on_thread, freed, longest, total) = {
        let l = log.lock().unwrap();
        (
            l.collections,
            l.on_collector_thread,
            l.freed,
            l.longest,
            l.total,
        )
    };
    println!(
        "background: {collections} automatic collections ({on_thread} on thread \
         `arcycle-collector`) freed {freed} of {built} nodes; pauses: longest {longest:.1?}, \
         total {total:.1?}; all gone {elapsed:.1?} after the start"
    );
    println!(
        "a Weak to a member of a freed ring: upgrade() = {:?}",
        weak.upgrade().map(|n| n.label)
    );
    let arc_node = std::mem::size_of::<Node>() + 16; // Arc's two counts
    println!(
        "an Arc version of this program would have leaked all {built} nodes \
         ({} KiB): every one is on a cycle",
        built * arc_node / 1024
    );
    census("after (a Weak keeps one allocation)");

    // 2. Explicit collection while other threads keep mutating their own
    //    live data.
    let t0 = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let work = AtomicUsize::new(0);
    let before = arcycle::stats();
    std::thread::scope(|s| {
        for t in 0..threads - 1 {
            let (stop, work) = (&stop, &work);
            s.spawn(move || {
                let mine = ring(100, t);
                while !stop.load(Relaxed) {
                    let n = Node::new(0);
                    Node::link(&mine[0], &n);
                    mine[0].edges.lock().unwrap().pop();
                    work.fetch_add(1, Relaxed);
                }
                drop(mine);
            });
        }
        for _ in 0..3 {
            drop(ring(100_000, 0));
            arcycle::collect();
        }
        stop.store(true, Relaxed);
    });
    arcycle::collect();
    let stats = arcycle::stats();
    println!(
        "\nconcurrent: {} mutator operations while 3 rings of 100000 were collected \
         explicitly in {:.1?}; longest pause {:.1?}; {} collections in all, {} alive at the end",
        work.load(Relaxed),
        t0.elapsed(),
        stats.longest_pause,
        stats.collections - before.collections,
        ALIVE.load(Relaxed)
    );
    assert_eq!(ALIVE.load(Relaxed), 0);
}

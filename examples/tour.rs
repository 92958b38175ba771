//! A tour of arcycle: several threads build cyclic graphs, drop every
//! outside handle, and the cycle collector frees them while the threads
//! keep working.
//!
//! Run with `cargo run --release --example tour`.

use arcycle::{Cc, Trace, Weak};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

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

fn main() {
    arcycle::disable(); // this tour collects explicitly, to show each pass
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .max(2);
    println!("arcycle tour: {threads} threads build cyclic graphs, then drop them\n");

    for round in 1..=3 {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || {
                    // Each thread builds rings and trees and keeps a few
                    // labels around, then lets every handle go.
                    let mut sum = 0;
                    for r in 0..20 {
                        let ring = ring(500, t * 1_000_000 + r * 1_000);
                        sum += ring[0].edges.lock().unwrap()[0].label;
                    }
                    let t = tree(10, t);
                    sum += t.edges.lock().unwrap().len();
                    std::hint::black_box(sum);
                });
            }
        });
        let built = ALIVE.load(Relaxed);
        let build = t0.elapsed();

        // Meanwhile, live data survives collection untouched.
        let keep = ring(3, 42);
        let t1 = Instant::now();
        let freed = arcycle::collect();
        let pause = t1.elapsed();
        let stats = arcycle::stats();
        println!(
            "round {round}: built {built} nodes in {:.1?}; collect() freed {freed} in {:.1?} \
             ({} still alive: the 3-ring we kept)",
            build,
            pause,
            ALIVE.load(Relaxed)
        );
        println!(
            "         stats: {} collections, {} freed in total, longest pause {:.1?}, {} aborted validations",
            stats.collections, stats.freed, stats.longest_pause, stats.aborted
        );
        assert_eq!(keep[0].edges.lock().unwrap()[0].label, 43);
        drop(keep);
        arcycle::collect();
        assert_eq!(ALIVE.load(Relaxed), 0, "everything was freed");
    }

    // Collection while other threads keep mutating their own live data.
    arcycle::enable();
    let t0 = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let work = AtomicUsize::new(0);
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
        for _ in 0..5 {
            drop(ring(100_000, 0));
            arcycle::collect();
        }
        stop.store(true, Relaxed);
    });
    arcycle::collect();
    let stats = arcycle::stats();
    println!(
        "\nconcurrent: {} mutator operations while 5 rings of 100000 were collected in {:.1?}; \
         longest pause {:.1?}; {} alive at the end",
        work.load(Relaxed),
        t0.elapsed(),
        stats.longest_pause,
        ALIVE.load(Relaxed)
    );
    assert_eq!(ALIVE.load(Relaxed), 0);
}

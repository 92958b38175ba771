//! The root buffer's paths, one object at a time (issue #9): what each step
//! of an object's life as a possible root costs, in ns per object, for
//! comparing two builds of arcycle (no peers: the report compares those).
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin entries [-- N REPS]
//!   cargo run --manifest-path benches/Cargo.toml --bin entries -- --smoke
//!
//! Rows (each the median of REPS rounds over N objects, default 100000
//! and 11; automatic collection off, collections inline on this thread):
//!
//! * `buffer_drop`: dropping one of two handles, which buffers the object;
//! * `live_root_collect`: a collection whose roots are all live;
//! * `buffered_last_drop`: the last drop of an object buffered since the
//!   last collection (it hands its strong side to the entry);
//! * `stale_collect`: a collection whose entries' objects are all gone;
//! * `pairs_drop_collect`: 2-cycles, dropping the outside handles and
//!   collecting (the report's `collect 2-cycles`, per object);
//! * `ring_drop_collect`: one ring of 10 N, likewise;
//! * `new_drop`: `Cc::new` and drop of a node never buffered.
//!
//! To compare two builds, check each out, build this binary in each, and
//! run them alternately on a quiet machine: the rows move by a few percent
//! between runs of one binary, so only interleaved runs compare.

use arcycle::{collect, Cc, Trace};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Trace)]
struct Node {
    edges: Mutex<Vec<Cc<Node>>>,
    id: u64,
}

fn node(id: u64) -> Cc<Node> {
    Cc::new(Node {
        edges: Mutex::new(Vec::new()),
        id,
    })
}

fn link(from: &Cc<Node>, to: &Cc<Node>) {
    from.edges.lock().unwrap().push(to.clone());
}

/// ns per object of `f`, run on `n` objects.
fn per_object(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / n as f64
}

const ROWS: [&str; 7] = [
    "buffer_drop",
    "live_root_collect",
    "buffered_last_drop",
    "stale_collect",
    "pairs_drop_collect",
    "ring_drop_collect",
    "new_drop",
];

/// One round: each row's ns per object, in [`ROWS`] order.
fn round(n: usize) -> [f64; 7] {
    let mut r = [0.0; 7];
    // Two handles each; dropping one buffers the object.
    let v: Vec<_> = (0..n as u64).map(node).collect();
    let second = v.to_vec();
    r[0] = per_object(n, || drop(second));
    r[1] = per_object(n, || assert_eq!(collect(), 0));
    assert_eq!(v[n - 1].id, n as u64 - 1);
    drop(v);
    collect();

    // Buffered, then freed by counting.
    let v: Vec<_> = (0..n as u64).map(node).collect();
    drop(v.to_vec());
    r[2] = per_object(n, || drop(v));
    r[3] = per_object(n, || assert_eq!(collect(), 0));

    let mut pairs = Vec::with_capacity(n);
    for i in 0..(n / 2) as u64 {
        let (a, b) = (node(2 * i), node(2 * i + 1));
        link(&a, &b);
        link(&b, &a);
        pairs.push(a);
        pairs.push(b);
    }
    let m = pairs.len();
    r[4] = per_object(m, || {
        drop(pairs);
        assert_eq!(collect(), m);
    });

    r[6] = per_object(n, || {
        for i in 0..n as u64 {
            drop(black_box(node(i)));
        }
    });
    r
}

/// The ring row, in rounds of its own after the others: freeing ten times
/// as many objects scatters the allocator's free lists, which would slow
/// the rows of every later round.
fn ring_round(n: usize) -> f64 {
    let m = 10 * n;
    let ring: Vec<_> = (0..m as u64).map(node).collect();
    for i in 0..m {
        link(&ring[i], &ring[(i + 1) % m]);
    }
    per_object(m, || {
        drop(ring);
        assert_eq!(collect(), m);
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut nums = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let (n, reps) = if smoke {
        (100, 1)
    } else {
        (nums.next().unwrap_or(100_000), nums.next().unwrap_or(11))
    };
    assert!(
        n >= 2 && reps >= 1,
        "entries: N >= 2 objects and REPS >= 1 rounds"
    );
    arcycle::disable();
    arcycle::set_background(false);
    collect();
    let mut rounds: Vec<[f64; 7]> = (0..reps).map(|_| round(n)).collect();
    for r in &mut rounds {
        r[5] = ring_round(n);
    }
    for (k, name) in ROWS.iter().enumerate() {
        let ns = median(rounds.iter().map(|r| r[k]).collect());
        println!("{name:<20} {ns:8.2} ns/object");
    }
}

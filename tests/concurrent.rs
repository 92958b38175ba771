//! The collector running while other threads mutate: graphs built and torn
//! down on many threads (more threads than cores, and rayon on all cores),
//! handles moved between nodes' mutexes mid-collection, `Weak::upgrade`
//! racing the decision, automatic collection under churn, and the
//! uniqueness operations racing the collector's holds.
//!
//! Every value carries a canary checked on each access (`common::get`) and
//! counts its drops against its test's own `Tally`; each test ends with a
//! final `collect()` and asserts that nothing leaked, nothing was dropped
//! twice and no canary broke. Background collectors stop on an
//! `AtomicBool`, never after a sleep. Every test holds `common::serial()`.

mod common;

use arcycle::{collect, Cc, Trace};
use common::{get, ring, serial, Node, Probe, Probed, Rng, Settings, Tally};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Mutex;

/// Worker threads for the `std::thread::scope` tests: more than the cores
/// of the machines this runs on.
const THREADS: usize = 8;

/// Run `body` while another thread calls `collect()` in a loop; returns
/// what `body` returned and how many collections the loop ran.
///
/// Automatic collections stay on and interleave with the loop's (the
/// body's drops can start them): collections are serialised by the
/// collector lock, and one that starts while another still runs its
/// destructors meets that collection's dead-but-held objects, which
/// `try_hold` skips (the "object held twice" debug assertion that once
/// fired there was fixed by checking `DEAD` first; its regression test is
/// `destructors::nested_collect_meets_stashed_peer_still_held_by_outer_collection`).
fn with_background_collector<R>(body: impl FnOnce() -> R) -> (R, usize) {
    let _restore = Settings::save();
    let stop = AtomicBool::new(false);
    let runs = AtomicUsize::new(0);
    let r = std::thread::scope(|s| {
        let collector = s.spawn(|| {
            while !stop.load(SeqCst) {
                collect();
                runs.fetch_add(1, SeqCst);
            }
        });
        // Stop the collector even if the body panics.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, SeqCst);
            }
        }
        let stop_guard = Stop(&stop);
        let r = body();
        drop(stop_guard);
        collector.join().expect("the collector thread panicked");
        r
    });
    (r, runs.load(SeqCst))
}

/// Check every node's canary, and those of its direct successors.
fn walk(nodes: &[Cc<Node>]) {
    for n in nodes {
        let succ: Vec<Cc<Node>> = get(n).edges.lock().unwrap().clone();
        for s in &succ {
            get(s);
        }
    }
}

/// A random graph of `n` nodes: a ring (so it is cyclic) plus random
/// extra edges.
fn random_graph(tally: &'static Tally, rng: &mut Rng, n: usize) -> Vec<Cc<Node>> {
    let nodes = ring(tally, n);
    for _ in 0..rng.below(2 * n + 1) {
        let a = rng.below(n);
        let b = rng.below(n);
        Node::link(&nodes[a], &nodes[b]);
    }
    nodes
}

/// Slots shared by all workers: a node placed here by one thread is linked
/// into another thread's graphs, so garbage spans threads.
struct Shared {
    slots: Vec<Mutex<Option<Cc<Node>>>>,
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Put `node` in a random slot (dropping what was there), or take a
    /// node out of one and link `node` to it.
    fn exchange(&self, rng: &mut Rng, node: &Cc<Node>) {
        let slot = &self.slots[rng.below(self.slots.len())];
        if rng.chance(2) {
            let old = slot.lock().unwrap().replace(node.clone());
            drop(old);
        } else {
            let other = slot.lock().unwrap().clone();
            if let Some(other) = other {
                get(&other);
                Node::link(node, &other);
                if rng.chance(2) {
                    Node::link(&other, node);
                }
            }
        }
    }

    fn clear(&self) {
        for s in &self.slots {
            let old = s.lock().unwrap().take();
            drop(old);
        }
    }
}

/// One worker's churn: build random cyclic graphs, hang some off a few
/// long-lived nodes (and those off them), trade nodes with other threads
/// through the shared slots, walk everything, drop the graphs. Now and
/// then a long-lived node is replaced or has its edges cleared, which
/// turns whatever hung off it into garbage while the collector may be
/// tracing it.
fn churn(tally: &'static Tally, shared: &Shared, seed: u64, iterations: usize) {
    let mut rng = Rng::new(seed);
    let mut keep: Vec<Cc<Node>> = (0..4).map(|_| Node::new(tally)).collect();
    for _ in 0..iterations {
        let size = 1 + rng.below(12);
        let g = random_graph(tally, &mut rng, size);
        if rng.chance(3) {
            let k = rng.below(keep.len());
            Node::link(&keep[k], &g[rng.below(size)]);
            Node::link(&g[rng.below(size)], &keep[k]);
        }
        if rng.chance(2) {
            let pick = rng.below(size);
            shared.exchange(&mut rng, &g[pick]);
        }
        walk(&g);
        walk(&keep);
        match rng.below(6) {
            0 => {
                let k = rng.below(keep.len());
                keep[k] = Node::new(tally);
            }
            1 => {
                let k = rng.below(keep.len());
                let old = std::mem::take(&mut *get(&keep[k]).edges.lock().unwrap());
                drop(old);
            }
            _ => {}
        }
        drop(g);
    }
    walk(&keep);
}

#[test]
fn scoped_threads_churn_while_a_thread_collects() {
    static T: Tally = Tally::new();
    let _s = serial();
    let iterations = common::scaled(5000, 10);
    T.track(THREADS * iterations * 40);
    let shared = Shared::new(16);
    let (_, runs) = with_background_collector(|| {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let shared = &shared;
                s.spawn(move || churn(&T, shared, t as u64 + 1, iterations));
            }
        });
    });
    assert!(runs > 0);
    T.assert_sound();
    shared.clear();
    collect();
    T.assert_clean();
}

#[test]
fn rayon_churn_while_a_thread_collects() {
    static T: Tally = Tally::new();
    let _s = serial();
    let tasks = common::scaled(20_000, 40);
    T.track(tasks * 40);
    let shared = Shared::new(32);
    with_background_collector(|| {
        (0..tasks).into_par_iter().for_each(|i| {
            let mut rng = Rng::new(i as u64 + 1000);
            let size = 1 + rng.below(15);
            let g = random_graph(&T, &mut rng, size);
            shared.exchange(&mut rng, &g[0]);
            walk(&g);
            // Nested parallelism: split the graph's handles across tasks.
            g.into_par_iter().for_each(|n| {
                get(&n);
                drop(n);
            });
        });
    });
    T.assert_sound();
    shared.clear();
    collect();
    T.assert_clean();
}

/// Handles move between nodes' mutexes (and through threads' stacks)
/// while collections run, in a structure where every node stays reachable
/// the whole time: roots are held by the test; each level-1 node's handle
/// lives in some root's list; each level-2 node's handle in some level-1
/// node's list; level-2 nodes point back up (cycles). Moves only shuffle
/// handles among the lists of one level, so no node may ever be freed
/// before the roots go — a collector fooled by a move would free one.
#[test]
fn moving_handles_between_mutexes_during_collection() {
    static T: Tally = Tally::new();
    let _s = serial();
    const ROOTS: usize = 8;
    const LEVEL1: usize = 32;
    const LEVEL2: usize = 64;
    T.track(ROOTS + LEVEL1 + LEVEL2);
    let mut rng = Rng::new(7);
    let roots: Vec<Cc<Node>> = (0..ROOTS).map(|_| Node::new(&T)).collect();
    let level1: Vec<Cc<Node>> = (0..LEVEL1).map(|_| Node::new(&T)).collect();
    let level2: Vec<Cc<Node>> = (0..LEVEL2).map(|_| Node::new(&T)).collect();
    for m in &level2 {
        // Fixed back edges: two level-1 nodes and a root.
        Node::link(m, &level1[rng.below(LEVEL1)]);
        Node::link(m, &level1[rng.below(LEVEL1)]);
        Node::link(m, &roots[rng.below(ROOTS)]);
    }
    for m in level2 {
        Node::link(&level1[rng.below(LEVEL1)], &m);
    }
    for l in level1 {
        Node::link(&roots[rng.below(ROOTS)], &l);
    }
    // From here on the only handles to level-1 and level-2 nodes are in
    // lists (and, in flight, on the workers' stacks).

    let steps = common::scaled(200_000, 50);
    let moves = AtomicUsize::new(0);
    let (_, runs) = with_background_collector(|| {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let roots = &roots;
                let moves = &moves;
                s.spawn(move || {
                    let mut rng = Rng::new(100 + t as u64);
                    for _ in 0..steps {
                        // Choose a level: move a level-1 handle between
                        // roots, or a level-2 handle between level-1 nodes.
                        let (src, dst) = if rng.chance(2) {
                            (
                                roots[rng.below(ROOTS)].clone(),
                                roots[rng.below(ROOTS)].clone(),
                            )
                        } else {
                            let pick = |rng: &mut Rng| loop {
                                let r = &roots[rng.below(ROOTS)];
                                let l = get(r).edges.lock().unwrap();
                                if !l.is_empty() {
                                    break l[rng.below(l.len())].clone();
                                }
                            };
                            (pick(&mut rng), pick(&mut rng))
                        };
                        let taken = {
                            let mut list = get(&src).edges.lock().unwrap();
                            if list.is_empty() {
                                None
                            } else {
                                let i = rng.below(list.len());
                                Some(list.swap_remove(i))
                            }
                        };
                        if let Some(h) = taken {
                            // In flight: only this stack holds it. Poke it
                            // (a clone and a drop: an ABA on its count).
                            get(&h);
                            if rng.chance(3) {
                                let c = h.clone();
                                walk(std::slice::from_ref(&c));
                            }
                            get(&dst).edges.lock().unwrap().push(h);
                            moves.fetch_add(1, SeqCst);
                        }
                        // Drop our temporaries: they buffer possible roots
                        // for the collector to examine.
                        drop((src, dst));
                    }
                });
            }
        });
    });
    assert!(runs > 0);
    assert!(moves.load(SeqCst) > steps, "handles were moved");
    assert_eq!(T.dropped(), 0, "a reachable node was freed");
    T.assert_sound();
    let level1: Vec<Cc<Node>> = roots
        .iter()
        .flat_map(|r| get(r).edges.lock().unwrap().clone())
        .collect();
    assert_eq!(level1.len(), LEVEL1, "level-1 handles are conserved");
    let in_level1: usize = level1.iter().map(Node::degree).sum();
    assert_eq!(in_level1, LEVEL2, "level-2 handles are conserved");
    drop(level1);
    drop(roots);
    collect();
    T.assert_clean();
}

/// `Weak::upgrade` racing the collector's decision on the very object:
/// a handle it returns is always to a live value, and once it returns
/// `None` it never returns a handle again. Upgrades of a live ring always
/// succeed.
#[test]
fn weak_upgrade_races_collection() {
    static T: Tally = Tally::new();
    let _s = serial();
    let iterations = common::scaled(100, 5);
    let live = ring(&T, 5);
    let live_weak = Cc::downgrade(&live[2]);
    // How often the collector won while being raced: informational only.
    let (_freed_while_racing, _) = with_background_collector(|| {
        std::thread::scope(|s| {
            let joins: Vec<_> = (0..THREADS)
                .map(|t| {
                    let live_weak = &live_weak;
                    s.spawn(move || {
                        let mut rng = Rng::new(500 + t as u64);
                        let mut freed_seen = 0usize;
                        for _ in 0..iterations {
                            let size = 2 + rng.below(6);
                            let g = random_graph(&T, &mut rng, size);
                            let w = Cc::downgrade(&g[rng.below(g.len())]);
                            drop(g);
                            let mut gone = false;
                            let mut after_gone = 0;
                            for _ in 0..4_000 {
                                match w.upgrade() {
                                    Some(c) => {
                                        assert!(!gone, "upgrade succeeded after returning None");
                                        assert!(!Cc::is_dead(&c));
                                        get(&c);
                                        walk(std::slice::from_ref(&c));
                                    }
                                    None => {
                                        gone = true;
                                        assert_eq!(w.strong_count(), 0);
                                        after_gone += 1;
                                        if after_gone == 10 {
                                            break;
                                        }
                                    }
                                }
                                if rng.chance(16) {
                                    let l = live_weak
                                        .upgrade()
                                        .expect("a live ring never upgrades to None");
                                    get(&l);
                                }
                            }
                            freed_seen += gone as usize;
                        }
                        freed_seen
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).sum::<usize>()
        })
    });
    T.assert_sound();
    assert!(live_weak.upgrade().is_some());
    drop(live);
    collect();
    T.assert_clean();
    assert!(live_weak.upgrade().is_none());
}

/// Automatic collection only (no explicit `collect()` until the end), with
/// a low threshold, while threads churn cyclic garbage.
#[test]
fn automatic_collection_with_low_threshold_under_churn() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // Inline mode: this test checks where and when automatic collections
    // run (background mode is `tests/gc_module.rs`'s).
    arcycle::set_background(false);
    collect();
    arcycle::enable();
    arcycle::set_threshold(64);
    let iterations = common::scaled(4000, 10);
    T.track(THREADS * iterations * 16);
    let before = arcycle::stats().collections;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let mut rng = Rng::new(900 + t as u64);
                for _ in 0..iterations {
                    let size = 1 + rng.below(12);
                    let g = random_graph(&T, &mut rng, size);
                    walk(&g);
                    drop(g);
                }
            });
        }
    });
    let auto_runs = arcycle::stats().collections - before;
    assert!(auto_runs > 0, "no automatic collection ran");
    T.assert_sound();
    // The automatic collections kept up: most garbage is already gone.
    assert!(
        T.live() < T.created() / 2,
        "{} of {} values still alive after {auto_runs} automatic collections",
        T.live(),
        T.created()
    );
    collect();
    T.assert_clean();
}

/// Automatic collection only, with a low threshold, while threads churn —
/// but only one thread allocates (automatic collections run inside
/// `Cc::new`), so collections never overlap each other. The other threads
/// receive its graphs, link them to each other's, walk and drop them.
#[test]
fn automatic_collection_on_the_allocating_thread_under_churn() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // Inline mode: this test checks where and when automatic collections
    // run (background mode is `tests/gc_module.rs`'s).
    arcycle::set_background(false);
    collect();
    arcycle::enable();
    arcycle::set_threshold(64);
    let graphs = common::scaled(30_000, 20);
    T.track(graphs * 12);
    let before = arcycle::stats().collections;
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        for t in 0..THREADS - 1 {
            let (tx, rx) = mpsc::sync_channel::<Vec<Cc<Node>>>(2);
            senders.push(tx);
            s.spawn(move || {
                let mut rng = Rng::new(300 + t as u64);
                let mut previous: Vec<Cc<Node>> = Vec::new();
                for g in rx {
                    walk(&g);
                    let a = rng.below(g.len());
                    let b = rng.below(g.len());
                    Node::link(&g[a], &g[b]);
                    // Tie it to the previous graph (one cycle spanning
                    // both), but never into an ever-growing chain.
                    let tied = !previous.is_empty() && rng.chance(2);
                    if tied {
                        Node::link(&previous[0], &g[a]);
                        Node::link(&g[b], &previous[0]);
                    }
                    previous = if tied { Vec::new() } else { g };
                }
            });
        }
        let mut rng = Rng::new(299);
        for i in 0..graphs {
            let size = 1 + rng.below(12);
            let g = random_graph(&T, &mut rng, size);
            senders[i % senders.len()].send(g).unwrap();
        }
    });
    let auto_runs = arcycle::stats().collections - before;
    assert!(auto_runs > 0, "no automatic collection ran");
    T.assert_sound();
    assert!(
        T.live() < T.created() / 2,
        "{} of {} values still alive after {auto_runs} automatic collections",
        T.live(),
        T.created()
    );
    collect();
    T.assert_clean();
}

/// A value with a field that can only change through `get_mut`: the
/// collector must never read it while the owner writes it.
#[derive(Trace)]
struct Owned {
    probe: Probe,
    plain: Vec<Cc<Node>>,
}

impl Probed for Owned {
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

/// `get_mut`, `try_unwrap` and `strong_count` give the answers they would
/// give with no collector running, while the collector holds the object
/// (the owner keeps buffering it as a possible root).
#[test]
fn uniqueness_is_never_fooled_by_the_collector() {
    static T: Tally = Tally::new();
    let _s = serial();
    let steps = common::scaled(300_000, 50);
    let targets = ring(&T, 4);
    with_background_collector(|| {
        std::thread::scope(|s| {
            for t in 0..2 {
                let targets = &targets;
                s.spawn(move || {
                    let mut rng = Rng::new(40 + t);
                    let mut x = Cc::new(Owned {
                        probe: Probe::new(&T),
                        plain: Vec::new(),
                    });
                    for _ in 0..steps {
                        // Make it a possible root: the collector will take
                        // it and trace `plain` at some point.
                        drop(x.clone());
                        assert_eq!(Cc::strong_count(&x), 1);
                        let v = Cc::get_mut(&mut x).expect("unique: get_mut must succeed");
                        v.probe.check();
                        if v.plain.len() < 16 && rng.chance(2) {
                            v.plain.push(targets[rng.below(4)].clone());
                        } else {
                            v.plain.pop();
                        }
                        if rng.chance(8) {
                            drop(x.clone());
                            let value = match Cc::try_unwrap(x) {
                                Ok(v) => v,
                                Err(_) => panic!("unique: try_unwrap must succeed"),
                            };
                            x = Cc::new(value);
                        }
                    }
                });
            }
            // Churn other garbage meanwhile so collections have work.
            s.spawn(|| {
                let mut rng = Rng::new(77);
                for _ in 0..common::scaled(300, 5) {
                    drop(random_graph(&T, &mut rng, 6));
                }
            });
        });
    });
    T.assert_sound();
    drop(targets);
    collect();
    T.assert_clean();
}

/// `collect()` promises a full pass over every root buffered before the
/// call. When a concurrent collection already took those roots from the
/// buffer and is running their destructors (outside the collector lock),
/// `collect()` returns at once, before that garbage is destroyed.
#[test]
fn collect_waits_for_concurrent_destruction() {
    // Another thread's collection takes a garbage pair and is inside one of
    // its destructors when this thread calls `collect()`. That call must
    // not return until the pair is destroyed (it waits for the other
    // collection, destructors included), and must not deadlock.
    static T: Tally = Tally::new();
    static IN_DESTRUCTOR: AtomicBool = AtomicBool::new(false);
    static MAIN_COLLECTING: AtomicBool = AtomicBool::new(false);
    let _s = serial();

    #[derive(Trace)]
    struct Blocker {
        probe: Probe,
        next: Mutex<Option<Cc<Blocker>>>,
        block: bool,
    }
    impl Drop for Blocker {
        fn drop(&mut self) {
            if self.block {
                IN_DESTRUCTOR.store(true, SeqCst);
                // Hold the other collection inside this destructor until the
                // main thread is about to call `collect()`.
                while !MAIN_COLLECTING.load(SeqCst) {
                    std::thread::yield_now();
                }
            }
        }
    }
    let make = |block| {
        Cc::new(Blocker {
            probe: Probe::new(&T),
            next: Mutex::new(None),
            block,
        })
    };
    let a = make(true);
    let b = make(false);
    *a.next.lock().unwrap() = Some(b.clone());
    *b.next.lock().unwrap() = Some(a.clone());
    assert!(a.probe.id() != b.probe.id());
    drop((a, b)); // both buffered before either collect() below

    let live_after_my_collect = std::thread::scope(|s| {
        let other = s.spawn(collect);
        while !IN_DESTRUCTOR.load(SeqCst) {
            std::thread::yield_now();
        }
        MAIN_COLLECTING.store(true, SeqCst);
        collect();
        let live = T.live();
        other.join().unwrap();
        live
    });
    T.assert_clean();
    assert_eq!(
        live_after_my_collect, 0,
        "collect() returned while garbage buffered before the call was still alive"
    );
}

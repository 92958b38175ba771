//! `AtomicCc` / `AtomicOptionCc` at scale (issue 12): threads loading,
//! swapping and compare-exchanging shared slots while another collects;
//! cycles through atomic edges collected; `take` racing `store`.
//!
//! Handles replaced in a slot are released through crossbeam-epoch, at a
//! later epoch: before asserting that everything was dropped, the tests
//! advance the epoch (`settle`), which runs the deferred drops.

mod common;

use arcycle::{collect, AtomicCc, AtomicOptionCc, Cc, Trace};
use common::*;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

/// A node whose edge is an atomic slot.
#[derive(Trace)]
struct ANode {
    probe: Probe,
    next: AtomicOptionCc<ANode>,
}

impl Probed for ANode {
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

fn anode(tally: &'static Tally, next: Option<Cc<ANode>>) -> Cc<ANode> {
    Cc::new(ANode {
        probe: Probe::new(tally),
        next: AtomicOptionCc::new(next),
    })
}

/// Run crossbeam-epoch's deferred drops (of handles replaced in slots) and
/// collect, until `tally` has no live value left or many rounds passed.
/// Every thread that pinned has finished, so each round can advance the
/// epoch; the bound only keeps a real leak from hanging the test.
fn settle(tally: &Tally) {
    for _ in 0..10_000 {
        if tally.live() == 0 {
            return;
        }
        crossbeam_epoch::pin().flush();
        collect();
        thread::yield_now();
    }
}

/// Many threads load, borrow, swap, compare-exchange and relink shared
/// slots — building and breaking cycles through atomic edges — while
/// another thread collects in a loop. Every value a reader reaches must be
/// alive (canaries), and in the end every value is dropped exactly once.
#[test]
fn churn_with_collector() {
    let _s = serial();
    static T: Tally = Tally::new();
    const SLOTS: usize = 8;
    const THREADS: usize = 4;
    const ROUNDS: usize = if cfg!(miri) { 40 } else { 20_000 };
    let slots: Arc<Vec<AtomicCc<ANode>>> =
        Arc::new((0..SLOTS).map(|_| AtomicCc::new(anode(&T, None))).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    let collector = {
        let (stop, running) = (stop.clone(), running.clone());
        thread::spawn(move || {
            let mut rounds = 0usize;
            while !stop.load(SeqCst) {
                collect();
                running.store(true, SeqCst);
                rounds += 1;
            }
            rounds
        })
    };
    // The workers start once the collector loop is running, so that the
    // two overlap however fast the workers are.
    while !running.load(SeqCst) {
        thread::yield_now();
    }
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let slots = slots.clone();
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0xA70 + t as u64);
                for _ in 0..ROUNDS {
                    let i = rng.usize(..SLOTS);
                    let j = rng.usize(..SLOTS);
                    match rng.u8(..7) {
                        0 => {
                            let v = slots[i].load();
                            get(&v);
                            if let Some(n) = v.next.load() {
                                get(&n);
                            }
                        }
                        1 => {
                            let g = slots[i].load_borrowed();
                            g.probe.check();
                            let next = g.next.load_borrowed();
                            if let Some(n) = next.as_ref() {
                                n.probe.check();
                            }
                        }
                        2 => {
                            let old = slots[i].swap(anode(&T, Some(slots[j].load())));
                            get(&old);
                        }
                        3 => {
                            let cur = slots[i].load();
                            let new = anode(&T, cur.next.load());
                            match slots[i].compare_exchange(&cur, new) {
                                Ok(prev) => assert!(Cc::ptr_eq(&prev, &cur)),
                                Err(actual) => {
                                    assert!(!Cc::ptr_eq(&actual, &cur));
                                    get(&actual);
                                }
                            }
                        }
                        4 => {
                            // Relink: may close a cycle through atomic edges.
                            let (a, b) = (slots[i].load(), slots[j].load());
                            get(&a).next.store(Some(b));
                        }
                        5 => {
                            let a = slots[i].load();
                            if let Some(n) = get(&a).next.take() {
                                get(&n);
                            }
                        }
                        _ => {
                            // Drop a slot's node from the slots: its cycles
                            // become garbage.
                            drop(slots[i].swap(anode(&T, None)));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, SeqCst);
    let rounds = collector.join().unwrap();
    T.assert_sound();
    drop(Arc::into_inner(slots).expect("the workers are done"));
    settle(&T);
    T.assert_clean();
    assert!(rounds >= 2, "the collector did not run during the churn");
}

/// A ring through `AtomicOptionCc` edges, and a two-node cycle through an
/// `AtomicCc` edge, are freed by one collection.
#[test]
fn ring_of_atomic_edges_is_collected() {
    let _s = serial();
    static T: Tally = Tally::new();
    const N: usize = 50;
    let first = anode(&T, None);
    let mut prev = first.clone();
    for _ in 1..N {
        prev = anode(&T, Some(prev));
    }
    first.next.store(Some(prev));
    drop(first);

    #[derive(Trace)]
    struct A {
        probe: Probe,
        next: AtomicCc<B>,
    }
    #[derive(Trace)]
    struct B {
        probe: Probe,
        back: AtomicOptionCc<A>,
    }
    let b = Cc::new(B {
        probe: Probe::new(&T),
        back: AtomicOptionCc::empty(),
    });
    let a = Cc::new(A {
        probe: Probe::new(&T),
        next: AtomicCc::new(b.clone()),
    });
    b.back.store(Some(a.clone()));
    drop((a, b));

    // No slot ever replaced a handle: nothing waits for an epoch.
    assert!(collect() >= N + 2);
    T.assert_clean();
}

/// `take` racing `store` on one slot: each value stored is taken at most
/// once, in the order stored, and every value is dropped exactly once.
#[test]
fn take_races_store() {
    let _s = serial();
    static T: Tally = Tally::new();
    const N: usize = if cfg!(miri) { 50 } else { 20_000 };
    let slot: Arc<AtomicOptionCc<ANode>> = Arc::new(AtomicOptionCc::empty());
    let taker = {
        let slot = slot.clone();
        thread::spawn(move || {
            let mut taken = Vec::new();
            let mut misses = 0usize;
            while taken.last() != Some(&(N - 1)) && misses < 10 * N {
                match slot.take() {
                    Some(v) => taken.push(get(&v).probe.id()),
                    None => misses += 1,
                }
            }
            taken
        })
    };
    let base = T.created();
    for _ in 0..N {
        slot.store(Some(anode(&T, None)));
    }
    let taken = taker.join().unwrap();
    let rest = Arc::into_inner(slot).unwrap().into_inner();
    assert!(
        taken.windows(2).all(|w| w[0] < w[1]),
        "a value was taken twice, or out of order"
    );
    if let Some(r) = &rest {
        assert!(taken.last().is_none_or(|&l| l < r.probe.id()));
    }
    assert!(taken.iter().all(|&id| id >= base && id < base + N));
    drop(rest);
    settle(&T);
    T.assert_clean();
}

/// A borrowed read keeps its value alive across a `store` that replaces it;
/// the value is released once the guard is gone.
#[test]
fn borrowed_read_outlives_store() {
    let _s = serial();
    static T: Tally = Tally::new();
    T.track(4);
    let slot = AtomicCc::new(anode(&T, None));
    let guard = slot.load_borrowed();
    let id = guard.probe.id();
    slot.store(anode(&T, None));
    for _ in 0..100 {
        crossbeam_epoch::pin().flush();
    }
    guard.probe.check();
    assert!(!T.is_dropped(id));
    drop(guard);
    drop(slot);
    settle(&T);
    T.assert_clean();
}

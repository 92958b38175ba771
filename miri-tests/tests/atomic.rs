//! `AtomicCc` under Miri (issue 12): the slot's pointer tagging, the
//! collector's freeze, and crossbeam-epoch's deferred release of replaced
//! handles, with a reader thread, a writer thread and a collecting thread.
//! crossbeam-epoch needs Tree Borrows (`-Zmiri-tree-borrows`, see
//! `scripts/miri.sh`), and its registry of threads keeps its entries
//! behind integer-tagged pointers, which Miri's leak check cannot follow
//! (it reports them, and only them, as leaked): this binary runs with
//! `-Zmiri-ignore-leaks` and checks arcycle's side itself — every node
//! created is dropped exactly once.

use arcycle::{collect, AtomicCc, AtomicOptionCc, Cc, Trace};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;

static DROPS: AtomicUsize = AtomicUsize::new(0);
static MADE: AtomicUsize = AtomicUsize::new(0);

#[derive(Trace)]
struct N {
    #[trace(skip)]
    id: usize,
    next: AtomicOptionCc<N>,
}

impl Drop for N {
    fn drop(&mut self) {
        DROPS.fetch_add(1, SeqCst);
    }
}

fn n(id: usize) -> Cc<N> {
    MADE.fetch_add(1, SeqCst);
    Cc::new(N {
        id,
        next: AtomicOptionCc::empty(),
    })
}

#[test]
fn slot_ops_and_collection() {
    let before = DROPS.load(SeqCst);
    // A 3-ring through atomic edges, freed by the collector.
    let (a, b, c) = (n(1), n(2), n(3));
    a.next.store(Some(b.clone()));
    b.next.store(Some(c.clone()));
    c.next.store(Some(a.clone()));
    drop((a, b, c));
    assert!(collect() >= 3);
    assert_eq!(DROPS.load(SeqCst), before + 3);

    // Readers, a writer and a collector on one slot of a cycle-capable node.
    let slot = AtomicCc::new(n(10));
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                let v = slot.load();
                assert!(v.id >= 10);
                let g = slot.load_borrowed();
                assert!(g.id >= 10);
            }
        });
        s.spawn(|| {
            for i in 0..20 {
                let new = n(11 + i);
                new.next.store(Some(slot.load())); // a chain through the slot
                let cur = slot.load();
                if slot.compare_exchange(&cur, new).is_err() {
                    slot.store(n(100 + i));
                }
            }
        });
        s.spawn(|| {
            for _ in 0..3 {
                collect();
            }
        });
    });
    let last = slot.into_inner();
    assert!(last.next.take().is_some() || last.id >= 100);
    drop(last);
    // Replaced handles are released by crossbeam-epoch: advance it (every
    // other thread has exited), and collect the chains they formed.
    for _ in 0..64 {
        if DROPS.load(SeqCst) == MADE.load(SeqCst) {
            break;
        }
        crossbeam_epoch::pin().flush();
        collect();
    }
    assert_eq!(
        DROPS.load(SeqCst),
        MADE.load(SeqCst),
        "a node leaked or was dropped twice"
    );
}

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
/// One test at a time: each asserts how much its own `collect()` frees,
/// which another test's concurrent collection could free first.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Advance crossbeam-epoch and collect until `made` values have been
/// dropped (replaced handles are released by the epoch, and the chains
/// they formed by the collector), or many rounds passed: few under Miri
/// (its scheduler lets an exiting thread finish), many natively, where a
/// loaded machine may keep an exited writer's teardown — which is when its
/// deferred handles reach crossbeam's global queue, possibly after the
/// scope has joined it — waiting for a while; each round yields to it.
fn settle(drops: &AtomicUsize, made: &AtomicUsize) {
    let rounds = if cfg!(miri) { 64 } else { 100_000 };
    for _ in 0..rounds {
        if drops.load(SeqCst) == made.load(SeqCst) {
            return;
        }
        crossbeam_epoch::pin().flush();
        collect();
        std::thread::yield_now();
    }
}
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
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
    settle(&DROPS, &MADE);
    assert_eq!(
        DROPS.load(SeqCst),
        MADE.load(SeqCst),
        "a node leaked or was dropped twice"
    );
}

/// For the fat path (`AtomicCc<dyn _>`, `AtomicCc<str>`): the slot's word
/// is the address of a heap cell holding the fat pointer, freed with the
/// handle it belongs to. Miri checks that no cell is read after it is freed
/// (a reader against a writer's deferred release) and that none is freed
/// twice (cells are plain `Box`es); the drop count checks that every value
/// is released. Its own counters: the tests of this binary may run at once.
static FDROPS: AtomicUsize = AtomicUsize::new(0);
static FMADE: AtomicUsize = AtomicUsize::new(0);

trait Obj: Trace + Send + Sync {
    fn id(&self) -> usize;
    fn edge(&self) -> &AtomicOptionCc<dyn Obj>;
}

#[derive(Trace)]
struct F {
    #[trace(skip)]
    id: usize,
    edge: AtomicOptionCc<dyn Obj>,
}

impl Obj for F {
    fn id(&self) -> usize {
        self.id
    }
    fn edge(&self) -> &AtomicOptionCc<dyn Obj> {
        &self.edge
    }
}

impl Drop for F {
    fn drop(&mut self) {
        FDROPS.fetch_add(1, SeqCst);
    }
}

fn f(id: usize) -> Cc<dyn Obj> {
    FMADE.fetch_add(1, SeqCst);
    arcycle::coerce!(Cc::new(F {
        id,
        edge: AtomicOptionCc::empty(),
    }))
}

#[test]
fn fat_slot_ops_and_collection() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A 3-ring through `dyn` slots, freed by the collector.
    let (a, b, c) = (f(1), f(2), f(3));
    a.edge().store(Some(b.clone()));
    b.edge().store(Some(c.clone()));
    c.edge().store(Some(a.clone()));
    drop((a, b, c));
    assert!(collect() >= 3);
    assert_eq!(FDROPS.load(SeqCst), 3);

    // Readers, a writer and a collector on a `dyn` slot and a `str` slot.
    let slot: AtomicCc<dyn Obj> = AtomicCc::new(f(10));
    let text: AtomicCc<str> = AtomicCc::new(Cc::from("0"));
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                assert!(slot.load().id() >= 10);
                assert!(slot.load_borrowed().id() >= 10);
                assert!(text.load_borrowed().parse::<usize>().is_ok());
            }
        });
        s.spawn(|| {
            for i in 0..20 {
                let new = f(11 + i);
                new.edge().store(Some(slot.load())); // a chain through the slot
                let cur = slot.load();
                if slot.compare_exchange(&cur, new).is_err() {
                    slot.store(f(100 + i));
                }
                drop(text.swap(Cc::from(i.to_string())));
            }
        });
        s.spawn(|| {
            for _ in 0..3 {
                collect();
            }
        });
    });
    let last = slot.into_inner();
    assert!(last.edge().take().is_some() || last.id() >= 100);
    drop(last);
    drop(text);
    settle(&FDROPS, &FMADE);
    assert_eq!(
        FDROPS.load(SeqCst),
        FMADE.load(SeqCst),
        "a node leaked or was dropped twice"
    );
}

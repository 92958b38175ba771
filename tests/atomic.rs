//! `AtomicCc` / `AtomicOptionCc` at scale (issue 12): threads loading,
//! swapping and compare-exchanging shared slots while another collects;
//! cycles through atomic edges collected; `take` racing `store`; the same
//! for unsized values (`AtomicCc<dyn Trait>`, `AtomicCc<str>`,
//! `AtomicOptionCc<[T]>`), whose slots keep the fat pointer in a cell.
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

/// A thread that collects in a loop until the returned flag is set (it
/// returns how many rounds it ran). Returns once the loop is running, so
/// that the workers started next overlap it however fast they are.
fn collector_loop() -> (Arc<AtomicBool>, thread::JoinHandle<usize>) {
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
    while !running.load(SeqCst) {
        thread::yield_now();
    }
    (stop, collector)
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
    let (stop, collector) = collector_loop();
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

// ---------------------------------------------------------------------------
// Unsized values: `dyn Trait`, `str`, `[T]`.

/// An object-safe trait for nodes held as `Cc<dyn Obj>`, whose edge is an
/// atomic slot of `dyn Obj`.
trait Obj: Trace + Send + Sync {
    fn probe(&self) -> &Probe;
    fn next(&self) -> &AtomicOptionCc<dyn Obj>;
    /// Which concrete type (so the vtable is exercised, not just the data).
    fn kind(&self) -> u8;
}

#[derive(Trace)]
struct DynA {
    probe: Probe,
    next: AtomicOptionCc<dyn Obj>,
}

impl Obj for DynA {
    fn probe(&self) -> &Probe {
        &self.probe
    }
    fn next(&self) -> &AtomicOptionCc<dyn Obj> {
        &self.next
    }
    fn kind(&self) -> u8 {
        b'A'
    }
}

/// A second concrete type, larger and differently laid out.
#[derive(Trace)]
struct DynB {
    #[trace(skip)]
    pad: [u64; 3],
    next: AtomicOptionCc<dyn Obj>,
    probe: Probe,
}

impl Obj for DynB {
    fn probe(&self) -> &Probe {
        &self.probe
    }
    fn next(&self) -> &AtomicOptionCc<dyn Obj> {
        &self.next
    }
    fn kind(&self) -> u8 {
        assert_eq!(self.pad, [7, 8, 9], "DynB read through a wrong vtable");
        b'B'
    }
}

fn dyn_a(t: &'static Tally, next: Option<Cc<dyn Obj>>) -> Cc<dyn Obj> {
    arcycle::coerce!(Cc::new(DynA {
        probe: Probe::new(t),
        next: AtomicOptionCc::new(next),
    }))
}

fn dyn_b(t: &'static Tally, next: Option<Cc<dyn Obj>>) -> Cc<dyn Obj> {
    arcycle::coerce!(Cc::new(DynB {
        pad: [7, 8, 9],
        next: AtomicOptionCc::new(next),
        probe: Probe::new(t),
    }))
}

/// Dereference a `dyn Obj`, checking its canary and its vtable.
#[track_caller]
fn dget(cc: &Cc<dyn Obj>) -> &dyn Obj {
    let v: &dyn Obj = &**cc;
    v.probe().check();
    assert!(matches!(v.kind(), b'A' | b'B'));
    v
}

/// `Result::unwrap` / `unwrap_err` without `Debug` (`dyn Obj` has none).
#[track_caller]
fn ok<T, E>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|_| panic!("expected Ok"))
}

#[track_caller]
fn err<T, E>(r: Result<T, E>) -> E {
    match r {
        Ok(_) => panic!("expected Err"),
        Err(e) => e,
    }
}

/// The slots stay one word, sized or not (the cell is behind the word),
/// and a sized slot is exactly a pointer.
#[test]
fn slot_sizes() {
    use std::mem::size_of;
    assert_eq!(size_of::<AtomicCc<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<AtomicOptionCc<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<AtomicCc<dyn Obj>>(), size_of::<usize>());
    assert_eq!(size_of::<AtomicCc<str>>(), size_of::<usize>());
    assert_eq!(size_of::<AtomicOptionCc<[u8]>>(), size_of::<usize>());
}

/// Every operation of `AtomicCc<dyn Obj>` and `AtomicOptionCc<dyn Obj>`,
/// one thread: values come back with their vtable, counts stay exact, and
/// everything is dropped exactly once.
#[test]
fn dyn_slot_ops() {
    let _s = serial();
    static T: Tally = Tally::new();
    T.track(32);
    let a = dyn_a(&T, None);
    let b = dyn_b(&T, None);
    let slot: AtomicCc<dyn Obj> = AtomicCc::new(a.clone());

    // load / load_borrowed
    let v = slot.load();
    assert!(Cc::ptr_eq(&v, &a));
    assert_eq!(dget(&v).kind(), b'A');
    assert_eq!(Cc::strong_count(&a), 3); // a, the slot's, v
    drop(v);
    {
        let g = slot.load_borrowed();
        assert_eq!(dget(&g).kind(), b'A');
        assert_eq!(Cc::strong_count(&a), 2); // a borrowed read adds none
    }

    // store / swap
    slot.store(b.clone());
    assert_eq!(dget(&slot.load()).kind(), b'B');
    let old = slot.swap(a.clone());
    assert!(Cc::ptr_eq(&old, &b));
    assert_eq!(dget(&old).kind(), b'B');
    drop(old);

    // compare_exchange: by allocation, not by vtable or contents.
    let c = dyn_a(&T, None);
    let found = err(slot.compare_exchange(&b, c.clone()));
    assert!(Cc::ptr_eq(&found, &a), "failure returns the value found");
    drop(found);
    let prev = ok(slot.compare_exchange(&a, c.clone()));
    assert!(Cc::ptr_eq(&prev, &a), "success returns the value replaced");
    drop(prev);
    assert!(Cc::ptr_eq(&slot.load(), &c));

    // Debug goes through the borrowed read (no Debug on dyn Obj: use str).
    let s: AtomicCc<str> = AtomicCc::new(Cc::from("hi"));
    assert_eq!(format!("{s:?}"), "AtomicCc(\"hi\")");

    // AtomicOptionCc<dyn Obj>: empty, take, compare_exchange with None.
    let opt: AtomicOptionCc<dyn Obj> = AtomicOptionCc::empty();
    assert!(opt.load().is_none());
    assert!(opt.load_borrowed().is_none());
    assert!(opt.take().is_none());
    assert!(opt.compare_exchange(None, Some(b.clone())).is_ok());
    let found = err(opt.compare_exchange(None, Some(a.clone())));
    assert!(Cc::ptr_eq(found.as_ref().unwrap(), &b));
    drop(found);
    let prev = ok(opt.compare_exchange(Some(&b), None));
    assert!(Cc::ptr_eq(prev.as_ref().unwrap(), &b));
    drop(prev);
    assert!(opt.load().is_none());
    opt.store(Some(a.clone()));
    assert_eq!(dget(opt.load_borrowed().as_ref().unwrap()).kind(), b'A');
    let taken = opt.take().unwrap();
    assert!(Cc::ptr_eq(&taken, &a));
    assert!(opt.take().is_none());
    opt.store(Some(b.clone()));
    assert!(Cc::ptr_eq(&opt.into_inner().unwrap(), &b));
    drop(taken);

    let last = slot.into_inner();
    assert!(Cc::ptr_eq(&last, &c));

    drop((last, a, b, c));
    settle(&T);

    // Every replaced handle was released: each value had its one owner
    // left, so all three are gone.
    T.assert_clean();
}

/// A borrowed read of a `dyn` slot keeps its value (and its cell) alive
/// across a `store` that replaces it.
#[test]
fn dyn_borrowed_read_outlives_store() {
    let _s = serial();
    static T: Tally = Tally::new();
    T.track(4);
    let slot: AtomicCc<dyn Obj> = AtomicCc::new(dyn_b(&T, None));
    let guard = slot.load_borrowed();
    let id = guard.probe().id();
    slot.store(dyn_a(&T, None));
    for _ in 0..100 {
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(dget(&guard).kind(), b'B');
    assert!(!T.is_dropped(id));
    drop(guard);
    drop(slot);
    settle(&T);
    T.assert_clean();
}

/// A ring through `AtomicOptionCc<dyn Obj>` edges, alternating concrete
/// types, and a two-node cycle through an `AtomicCc<dyn Obj>` edge, are
/// freed by one collection.
#[test]
fn ring_of_dyn_atomic_edges_is_collected() {
    let _s = serial();
    static T: Tally = Tally::new();
    const N: usize = 50;
    let first = dyn_a(&T, None);
    let mut prev = first.clone();
    for i in 1..N {
        prev = if i % 2 == 0 {
            dyn_a(&T, Some(prev))
        } else {
            dyn_b(&T, Some(prev))
        };
    }
    first.next().store(Some(prev));
    drop(first);

    #[derive(Trace)]
    struct Holder {
        probe: Probe,
        edge: AtomicCc<dyn Obj>,
    }
    impl Obj for Holder {
        fn probe(&self) -> &Probe {
            &self.probe
        }
        fn next(&self) -> &AtomicOptionCc<dyn Obj> {
            unreachable!()
        }
        fn kind(&self) -> u8 {
            b'A'
        }
    }
    let b = dyn_b(&T, None);
    let h: Cc<dyn Obj> = arcycle::coerce!(Cc::new(Holder {
        probe: Probe::new(&T),
        edge: AtomicCc::new(b.clone()),
    }));
    b.next().store(Some(h.clone()));
    drop((b, h));

    // No slot ever replaced a handle: nothing waits for an epoch.
    assert!(collect() >= N + 2);
    T.assert_clean();
}

/// `AtomicCc<dyn Obj>` under churn: many threads load, borrow, swap,
/// compare-exchange, take and relink `dyn` slots — building and breaking
/// cycles through `dyn` atomic edges — while another thread collects.
/// Every value reached is alive and read through the right vtable; in the
/// end every value (and every cell: Miri and ASan see those) is released
/// exactly once.
#[test]
fn dyn_churn_with_collector() {
    let _s = serial();
    static T: Tally = Tally::new();
    const SLOTS: usize = 8;
    const THREADS: usize = 4;
    const ROUNDS: usize = if cfg!(miri) { 40 } else { 20_000 };
    let slots: Arc<Vec<AtomicCc<dyn Obj>>> = Arc::new(
        (0..SLOTS)
            .map(|i| {
                AtomicCc::new(if i % 2 == 0 {
                    dyn_a(&T, None)
                } else {
                    dyn_b(&T, None)
                })
            })
            .collect(),
    );
    let (stop, collector) = collector_loop();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let slots = slots.clone();
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0xD10 + t as u64);
                let fresh = |rng: &mut fastrand::Rng, next| {
                    if rng.bool() {
                        dyn_a(&T, next)
                    } else {
                        dyn_b(&T, next)
                    }
                };
                for _ in 0..ROUNDS {
                    let i = rng.usize(..SLOTS);
                    let j = rng.usize(..SLOTS);
                    match rng.u8(..7) {
                        0 => {
                            let v = slots[i].load();
                            if let Some(n) = dget(&v).next().load() {
                                dget(&n);
                            }
                        }
                        1 => {
                            let g = slots[i].load_borrowed();
                            let next = dget(&g).next().load_borrowed();
                            if let Some(n) = next.as_ref() {
                                dget(n);
                            }
                        }
                        2 => {
                            let new = fresh(&mut rng, Some(slots[j].load()));
                            dget(&slots[i].swap(new));
                        }
                        3 => {
                            let cur = slots[i].load();
                            let new = fresh(&mut rng, cur.next().load());
                            match slots[i].compare_exchange(&cur, new) {
                                Ok(prev) => assert!(Cc::ptr_eq(&prev, &cur)),
                                Err(actual) => {
                                    assert!(!Cc::ptr_eq(&actual, &cur));
                                    dget(&actual);
                                }
                            }
                        }
                        4 => {
                            // Relink: may close a cycle through dyn edges.
                            let (a, b) = (slots[i].load(), slots[j].load());
                            dget(&a).next().store(Some(b));
                        }
                        5 => {
                            let a = slots[i].load();
                            if let Some(n) = dget(&a).next().take() {
                                dget(&n);
                            }
                        }
                        _ => {
                            let new = fresh(&mut rng, None);
                            drop(slots[i].swap(new));
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

/// `AtomicCc<str>` and `AtomicOptionCc<[u8]>` (leaves, no prefix in the
/// box: only the cell knows the length): every operation, and readers
/// racing writers — each string read is whole (its length and bytes
/// belong together).
#[test]
fn str_and_slice_slots() {
    let _s = serial();
    let s: AtomicCc<str> = AtomicCc::new(Cc::from("first"));
    assert_eq!(&*s.load(), "first");
    s.store(Cc::from(String::from("second, longer")));
    assert_eq!(&**s.load_borrowed(), "second, longer");
    let old = s.swap(Cc::from(""));
    assert_eq!(&*old, "second, longer");
    // Same contents, other allocation: compare_exchange fails.
    let cur = s.load();
    assert!(s.compare_exchange(&Cc::from(""), Cc::from("x")).is_err());
    assert_eq!(&*s.compare_exchange(&cur, Cc::from("third")).unwrap(), "");
    assert_eq!(&*s.into_inner(), "third");

    let b: AtomicOptionCc<[u8]> = AtomicOptionCc::empty();
    assert!(b.take().is_none());
    b.store(Some(Cc::from(&[1u8, 2, 3][..])));
    assert_eq!(b.load().as_deref(), Some(&[1u8, 2, 3][..]));
    let v: Cc<[u8]> = (0..100u8).collect();
    let old = b.swap(Some(v.clone())).unwrap();
    assert_eq!(&*old, &[1, 2, 3]);
    assert!(b.compare_exchange(Some(&old), None).is_err());
    assert!(b.compare_exchange(Some(&v), None).is_ok());
    assert!(b.load_borrowed().is_none());
    // v's own, and the slot's, retired (released at a later epoch).
    assert!(matches!(Cc::strong_count(&v), 1 | 2));
    drop(b);

    // Readers racing writers: every string has the form "<n>:" + n bytes.
    const ROUNDS: usize = if cfg!(miri) { 30 } else { 20_000 };
    let make = |n: usize| -> Cc<str> { Cc::from(format!("{n}:{}", "x".repeat(n % 64))) };
    let whole = |s: &str| {
        let (n, rest) = s.split_once(':').expect("a whole string");
        assert_eq!(rest.len(), n.parse::<usize>().unwrap() % 64, "torn: {s:?}");
    };
    let slot: Arc<AtomicCc<str>> = Arc::new(AtomicCc::new(make(0)));
    thread::scope(|sc| {
        for t in 0..2 {
            let slot = &slot;
            sc.spawn(move || {
                for i in 0..ROUNDS {
                    if t == 0 {
                        whole(&slot.load());
                    } else {
                        whole(&slot.load_borrowed());
                    }
                    if i % 64 == 0 {
                        thread::yield_now();
                    }
                }
            });
        }
        let slot = &slot;
        sc.spawn(move || {
            for i in 1..ROUNDS {
                if i % 2 == 0 {
                    slot.store(make(i));
                } else {
                    let cur = slot.load();
                    let _ = slot.compare_exchange(&cur, make(i));
                }
            }
        });
    });
    whole(&slot.load());
}

/// A cycle through a tracked slice in an atomic slot (`Cc<[Cc<SNode>]>`,
/// a box with a `Described` prefix) is collected, under churn of the slot.
#[test]
fn cycle_through_slice_slot_is_collected() {
    let _s = serial();
    static T: Tally = Tally::new();
    #[derive(Trace)]
    struct SNode {
        probe: Probe,
        edges: AtomicOptionCc<[Cc<SNode>]>,
    }
    let new = || {
        Cc::new(SNode {
            probe: Probe::new(&T),
            edges: AtomicOptionCc::empty(),
        })
    };
    let nodes: Vec<Cc<SNode>> = (0..6).map(|_| new()).collect();
    // Each node points to the next two, replacing its slice a few times.
    for round in 0..3 {
        for (i, n) in nodes.iter().enumerate() {
            let edges: Cc<[Cc<SNode>]> = (1..=1 + round % 2)
                .map(|k| nodes[(i + k) % nodes.len()].clone())
                .collect();
            let old = n.edges.swap(Some(edges));
            if let Some(old) = old {
                assert!(old.iter().all(|e| e.probe.is_alive()));
            }
        }
    }
    let seen = nodes[0].edges.load().unwrap();
    assert_eq!(seen.len(), 1);
    drop(seen);
    drop(nodes);
    settle(&T);
    T.assert_clean();
}

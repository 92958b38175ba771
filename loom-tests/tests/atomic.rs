//! Loom models of `AtomicCc` / `AtomicOptionCc` (issue 12).
//!
//! Under loom arcycle replaces crossbeam-epoch by a per-slot grace period
//! built on loom's primitives (see `src/atomic/reclaim.rs`): these models
//! check the slot protocol — the collector's freeze against writers, the
//! count transitions of a load against a swap against the last drop of the
//! old value, compare-exchange by identity — not crossbeam-epoch itself.
//! Run with `scripts/loom.sh` (which includes this file).
#![cfg(arcycle_loom)]

use arcycle::{collect, AtomicCc, AtomicOptionCc, Cc, Trace};
use loom::sync::Arc;
use loom::thread;
use loom_tests::*;

/// A labelled leaf: `Cc<Tag>` is never buffered or traced.
struct Tag {
    probe: Probe,
    label: u8,
}
arcycle::leaf!(Tag);

impl Drop for Tag {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

fn tag(probe: &Probe, label: u8) -> Cc<Tag> {
    Cc::new(Tag {
        probe: probe.clone(),
        label,
    })
}

/// A node whose only edge is an atomic slot.
#[derive(Trace)]
struct ANode {
    #[trace(skip)]
    probe: Probe,
    next: AtomicOptionCc<ANode>,
}

impl Drop for ANode {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

fn anode(probe: &Probe) -> Cc<ANode> {
    Cc::new(ANode {
        probe: probe.clone(),
        next: AtomicOptionCc::empty(),
    })
}

fn check_anode(cc: &Cc<ANode>) {
    assert!(
        !Cc::is_dead(cc),
        "LIVE HANDLE TO COLLECTED OBJECT: the collector destroyed a value a handle still refers to"
    );
    cc.probe.check_alive();
}

/// Race: `load` (and a borrowed read) of a slot against a `swap` that
/// replaces its value and drops the old handle at once — the slot's handle
/// was the old value's last but for the swapper's.
///
/// Guards: "No object is freed while a handle to it, or a borrow derived
/// from one, exists": a reader between loading the pointer and adding its
/// handle (or holding a borrowed guard) never sees the old value dropped;
/// every value is dropped exactly once, and by the time every thread is
/// done (the retired handle is released by the last reader or the writer).
#[test]
fn atomic_load_vs_swap_vs_last_drop() {
    model("atomic_load_vs_swap_vs_last_drop", || {
        let (pa, pb) = (Probe::new(), Probe::new());
        let slot = Arc::new(AtomicCc::new(tag(&pa, 1)));
        let reader = slot.clone();
        let t = thread::spawn(move || {
            let v = reader.load();
            v.probe.check_alive();
            assert!(v.label == 1 || v.label == 2);
            drop(v);
            let g = reader.load_borrowed();
            g.probe.check_alive();
            assert!(g.label == 1 || g.label == 2);
        });
        let old = slot.swap(tag(&pb, 2));
        assert_eq!(old.label, 1);
        old.probe.check_alive();
        drop(old);
        t.join().unwrap();
        assert_eq!(
            pa.drops(),
            1,
            "the old value is released once readers are done"
        );
        assert_eq!(pb.drops(), 0);
        drop(slot);
        assert_eq!(pb.drops(), 1);
    });
}

/// Race: the collector validates a garbage candidate while another thread
/// swaps a handle out of the candidate's `AtomicOptionCc` field onto its
/// stack and drops its own handle to the candidate — "moves change no
/// count", atomic edition (`validate_vs_move_out_of_mutex` with a slot for
/// the `Mutex`).
///
/// Guards: "No object is freed while a handle to it ... exists" (the moved
/// handle stays usable) and "Every object whose last handle is gone is
/// freed". This is the teeth model of the slot freeze: with
/// `--cfg arcycle_broken_atomic` (a trace that reads the slot without
/// freezing it) loom finds the use-after-free (`scripts/loom-teeth.sh`).
#[test]
fn atomic_validate_vs_swap_out() {
    model("atomic_validate_vs_swap_out", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = (anode(&px), anode(&py));
        x.next.store(Some(y.clone()));
        y.next.store(Some(x.clone()));
        let hx = x.clone();
        drop(x); // roots: x, then y
        drop(y);
        let t = thread::spawn(move || {
            let hy = hx.next.take().expect("edge present");
            drop(hx);
            check_anode(&hy);
            // `hy` reaches `x` through its slot; check that too.
            let x2 = hy.next.load().expect("edge present");
            check_anode(&x2);
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(drops(&[&px, &py]), 2);
    });
}

/// Race: `compare_exchange` against a thread that swaps the slot from `A`
/// to `B` and back to `A` (the ABA pattern). The comparison is by
/// identity, and the comparer holds a handle to `A`, so `A`'s allocation
/// cannot be reused: success means the slot held `A` itself at that
/// instant (the previous value returned is `A`), failure returns the value
/// found, which is then `B`.
///
/// Guards: "No object is freed while a handle to it ... exists" and every
/// value dropped exactly once (counts stay exact across the exchanges).
#[test]
fn atomic_compare_exchange_aba() {
    model("atomic_compare_exchange_aba", || {
        let (pa, pb, pc) = (Probe::new(), Probe::new(), Probe::new());
        let a = tag(&pa, 1);
        let slot = Arc::new(AtomicCc::new(a.clone()));
        let (s2, a2, pb2) = (slot.clone(), a.clone(), pb.clone());
        let t = thread::spawn(move || {
            let first = s2.swap(tag(&pb2, 2));
            let second = s2.swap(a2);
            first.probe.check_alive();
            second.probe.check_alive();
        });
        match slot.compare_exchange(&a, tag(&pc, 3)) {
            Ok(prev) => assert!(Cc::ptr_eq(&prev, &a), "success returns the value compared"),
            Err(actual) => {
                assert_eq!(actual.label, 2, "failure only while B is in the slot");
                actual.probe.check_alive();
            }
        }
        t.join().unwrap();
        drop(a);
        let slot = Arc::try_unwrap(slot).unwrap_or_else(|_| panic!("one owner left"));
        let last = slot.into_inner();
        last.probe.check_alive();
        drop(last);
        assert_eq!(
            drops(&[&pa, &pb, &pc]),
            3,
            "every value dropped exactly once"
        );
    });
}

/// `AtomicOptionCc::take` racing `store`: every value stored is either
/// taken or still in the slot at the end, never lost or duplicated.
///
/// Guards: every value dropped exactly once; no read after the drop.
#[test]
fn atomic_take_vs_store() {
    model("atomic_take_vs_store", || {
        let (pa, pb) = (Probe::new(), Probe::new());
        let slot = Arc::new(AtomicOptionCc::new(Some(tag(&pa, 1))));
        let s2 = slot.clone();
        let t = thread::spawn(move || s2.take().map(|v| v.label));
        slot.store(Some(tag(&pb, 2)));
        let taken = t.join().unwrap();
        let rest = Arc::try_unwrap(slot)
            .unwrap_or_else(|_| panic!("one owner left"))
            .into_inner();
        match (taken, rest.as_ref().map(|v| v.label)) {
            (Some(1), Some(2)) | (Some(2), None) => {}
            other => panic!("lost or duplicated value: {other:?}"),
        }
        drop(rest);
        assert_eq!(drops(&[&pa, &pb]), 2);
    });
}

/// A trait for the fat-pointer models: `AtomicCc<dyn Labelled>`.
trait Labelled: Trace + Send + Sync {
    fn label(&self) -> u8;
    fn probe(&self) -> &Probe;
}

impl Labelled for Tag {
    fn label(&self) -> u8 {
        self.label
    }
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

/// A second concrete type, so a wrong vtable would be noticed.
struct Wide {
    probe: Probe,
    label: u8,
    pad: [u64; 2],
}
arcycle::leaf!(Wide);

impl Drop for Wide {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

impl Labelled for Wide {
    fn label(&self) -> u8 {
        assert_eq!(self.pad, [5, 6]);
        self.label
    }
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

fn dyn_tag(probe: &Probe, label: u8) -> Cc<dyn Labelled> {
    arcycle::coerce!(tag(probe, label))
}

fn dyn_wide(probe: &Probe, label: u8) -> Cc<dyn Labelled> {
    arcycle::coerce!(Cc::new(Wide {
        probe: probe.clone(),
        label,
        pad: [5, 6],
    }))
}

/// `atomic_load_vs_swap_vs_last_drop` on the fat path: `AtomicCc<dyn _>`,
/// whose word names a cell owned by the handle. The reader loads the word
/// and then reads the cell; the swapper's old handle (and with it the old
/// cell) is released by whoever leaves the grace period last.
///
/// Guards: "No object is freed while a handle to it, or a borrow derived
/// from one, exists", for the cell as for the value: a cell freed before a
/// reader that loaded its word has read it is a loom-reported race (its
/// reads and its free are tracked); every value dropped exactly once.
#[test]
fn atomic_dyn_load_vs_swap_vs_last_drop() {
    model("atomic_dyn_load_vs_swap_vs_last_drop", || {
        let (pa, pb) = (Probe::new(), Probe::new());
        let slot: Arc<AtomicCc<dyn Labelled>> = Arc::new(AtomicCc::new(dyn_tag(&pa, 1)));
        let reader = slot.clone();
        let t = thread::spawn(move || {
            let v = reader.load();
            v.probe().check_alive();
            assert!(v.label() == 1 || v.label() == 2);
            drop(v);
            let g = reader.load_borrowed();
            g.probe().check_alive();
            assert!(g.label() == 1 || g.label() == 2);
        });
        let old = slot.swap(dyn_wide(&pb, 2));
        assert_eq!(old.label(), 1);
        old.probe().check_alive();
        drop(old);
        t.join().unwrap();
        assert_eq!(
            pa.drops(),
            1,
            "the old value is released once readers are done"
        );
        assert_eq!(pb.drops(), 0);
        drop(slot);
        assert_eq!(pb.drops(), 1);
    });
}

/// `compare_exchange` on the fat path reads the cell of every word it
/// compares: against a thread that swaps the value out and drops it (the
/// replaced handle and its cell retired), the comparison must never read a
/// freed cell, and compares by allocation.
///
/// Guards: no cell (or value) used after it is freed; success only if the
/// slot held `A` itself; every value dropped exactly once.
#[test]
fn atomic_dyn_compare_exchange_vs_swap() {
    model("atomic_dyn_compare_exchange_vs_swap", || {
        let (pa, pb, pc) = (Probe::new(), Probe::new(), Probe::new());
        let a = dyn_tag(&pa, 1);
        let slot: Arc<AtomicCc<dyn Labelled>> = Arc::new(AtomicCc::new(a.clone()));
        let (s2, pb2) = (slot.clone(), pb.clone());
        let t = thread::spawn(move || {
            let old = s2.swap(dyn_wide(&pb2, 2));
            old.probe().check_alive();
        });
        match slot.compare_exchange(&a, dyn_tag(&pc, 3)) {
            Ok(prev) => assert!(Cc::ptr_eq(&prev, &a), "success returns the value compared"),
            Err(actual) => {
                assert_eq!(actual.label(), 2, "failure only once B is in the slot");
                actual.probe().check_alive();
            }
        }
        t.join().unwrap();
        drop(a);
        let slot = Arc::try_unwrap(slot).unwrap_or_else(|_| panic!("one owner left"));
        drop(slot.into_inner());
        assert_eq!(
            drops(&[&pa, &pb, &pc]),
            3,
            "every value dropped exactly once"
        );
    });
}

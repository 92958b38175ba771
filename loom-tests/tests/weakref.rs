//! Loom models of `arcycle::weakref` (issue 10): finalizers and weak
//! collections against the deaths they watch.
//!
//! Run with the rest of the suite (`scripts/loom.sh`), or alone:
//!
//! ```text
//! RUSTFLAGS="--cfg arcycle_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p loom-tests --release --test weakref
//! ```
#![cfg(arcycle_loom)]

use arcycle::{collect, finalize, Cc, WeakSet, WeakValueMap};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use loom_tests::*;

/// Race: a finalizer registered (through a second handle, dropped right
/// after) on one thread against the last drop on another.
///
/// Guards: the finalizer runs exactly once — never zero times, never while
/// the object lives (it sees the value already dropped: after the
/// destructor), whichever thread's drop is the last; the registry's
/// `REGISTERED` claim never lets the allocation go before the record is
/// out of the registry (loom checks every header access against the
/// free).
#[test]
fn finalize_vs_last_drop() {
    model("finalize_vs_last_drop", || {
        let p = Probe::new();
        let a = Cc::new(Leaf { probe: p.clone() });
        let b = a.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let (r, q) = (runs.clone(), p.clone());
        let t = thread::spawn(move || {
            let f = finalize(&b, move || {
                assert_eq!(q.drops(), 1, "FINALIZER ON A LIVE OBJECT");
                r.fetch_add(1, SeqCst);
            });
            drop(b);
            f
        });
        a.probe.check_alive();
        drop(a);
        let f = t.join().unwrap();
        assert_eq!(p.drops(), 1);
        assert_eq!(runs.load(SeqCst), 1, "the finalizer runs exactly once");
        assert!(!f.alive());
    });
}

/// Race: a finalizer registration on a member of a garbage-to-be cycle
/// against a collection (the registrant drops its handle after
/// registering, which makes the cycle garbage).
///
/// Guards: the finalizer runs exactly once, after the member's destructor
/// (whether this collection or the next frees the cycle), and never while
/// it lives.
#[test]
fn finalize_vs_collect() {
    model("finalize_vs_collect", || {
        let p = Probe::new();
        let a = node(&p);
        assert!(a.fixed.set(a.clone()).is_ok()); // a self-loop
        let runs = Arc::new(AtomicUsize::new(0));
        let (r, q) = (runs.clone(), p.clone());
        let t = thread::spawn(move || {
            let f = finalize(&a, move || {
                assert_eq!(q.drops(), 1, "FINALIZER ON A LIVE OBJECT");
                r.fetch_add(1, SeqCst);
            });
            drop(a);
            f
        });
        collect();
        let f = t.join().unwrap();
        collect();
        assert_eq!(p.drops(), 1);
        assert_eq!(runs.load(SeqCst), 1, "the finalizer runs exactly once");
        assert!(!f.alive());
    });
}

/// Race: `WeakValueMap::get` on one thread against the last drop of the
/// value on another.
///
/// Guards: `get` returns either nothing or a handle to a live value (never
/// one being destroyed: loom checks the value's canary against its drop),
/// and once the drop returned the entry is gone and uncounted.
#[test]
fn value_map_get_vs_last_drop() {
    model("value_map_get_vs_last_drop", || {
        let p = Probe::new();
        let map: Arc<WeakValueMap<u8, Leaf>> = Arc::new(WeakValueMap::new());
        let a = Cc::new(Leaf { probe: p.clone() });
        map.insert(1, &a);
        let m = map.clone();
        let t = thread::spawn(move || {
            if let Some(v) = m.get(&1) {
                v.probe.check_alive();
            }
        });
        drop(a);
        t.join().unwrap();
        assert_eq!(p.drops(), 1);
        assert!(map.get(&1).is_none());
        assert_eq!(map.len(), 0, "the dead entry is purged and uncounted");
    });
}

/// Race: the purge of a dead value's entry (run by its last drop) against
/// a re-insert of the same key with a new object.
///
/// Guards: the purge removes only the entry of the object that died (it is
/// identified by an id, not the key): the new entry survives, is counted
/// once, and is itself purged when its object dies.
#[test]
fn purge_vs_reinsert() {
    model("purge_vs_reinsert", || {
        let (pa, pb) = (Probe::new(), Probe::new());
        let map: Arc<WeakValueMap<u8, Leaf>> = Arc::new(WeakValueMap::new());
        let a = Cc::new(Leaf { probe: pa.clone() });
        map.insert(1, &a);
        let t = thread::spawn(move || drop(a));
        let b = Cc::new(Leaf { probe: pb.clone() });
        map.insert(1, &b);
        t.join().unwrap();
        assert_eq!(pa.drops(), 1);
        assert!(Cc::ptr_eq(
            &map.get(&1).expect("the new entry survives"),
            &b
        ));
        assert_eq!(map.len(), 1);
        drop(b);
        assert_eq!(map.len(), 0);
        assert!(map.get(&1).is_none());
    });
}

/// Race: a `WeakSet` member's last drop (which purges it) against a
/// concurrent remove and re-insert through another handle.
///
/// Guards: membership and `len` end consistent — the object is gone and
/// counted nowhere — whatever the order.
#[test]
fn set_purge_vs_remove_insert() {
    model("set_purge_vs_remove_insert", || {
        let p = Probe::new();
        let set: Arc<WeakSet<Leaf>> = Arc::new(WeakSet::new());
        let a = Cc::new(Leaf { probe: p.clone() });
        set.insert(&a);
        let b = a.clone();
        let s = set.clone();
        let t = thread::spawn(move || {
            s.remove(&b);
            s.insert(&b);
            drop(b);
        });
        drop(a);
        t.join().unwrap();
        assert_eq!(p.drops(), 1);
        assert_eq!(set.len(), 0);
        assert!(set.to_vec().is_empty());
    });
}

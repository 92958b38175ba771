//! The optional integrations (`arcycle::integrations`), one module per
//! Cargo feature, each compiled only with its feature:
//!
//! ```text
//! cargo test -p arcycle --all-features --test integrations
//! ```
//!
//! Locks: a garbage 2-cycle through the lock type is collected; a cycle
//! whose lock is held during `collect()` is kept (busy) and freed by a
//! later `collect()` once the lock is released. Collections: a cycle
//! through them is collected, and a collection of leaves is a leaf. serde:
//! round trips, `Weak` as serde does it, and the cycle error.
//!
//! Tests run in parallel against the one process-wide collector; every
//! assertion is about this test's own objects (through `Weak`s), which a
//! concurrent `collect()` from another test cannot change the outcome of.
#![cfg(any(
    feature = "parking_lot",
    feature = "hashbrown",
    feature = "indexmap",
    feature = "smallvec",
    feature = "tokio",
    feature = "serde"
))]
#![allow(dead_code)] // each feature uses some of the helpers

use arcycle::{collect, Cc, Trace, Weak};

/// A `&T` into `cc`'s value that outlives `cc`.
///
/// The busy tests take a lock inside an object and then drop the object's
/// last handle: only the collector keeping the busy object alive makes the
/// borrow valid. `still_there` checks that (a `Weak` keeps the allocation,
/// so the check itself is sound) before the lock guard is touched again.
///
/// # Safety
/// Use the borrow only while `still_there` holds for `cc`'s object.
unsafe fn detach<'x, T: Trace>(cc: &Cc<T>) -> &'x T {
    // SAFETY: per the contract.
    unsafe { &*Cc::as_ptr(cc) }
}

/// Whether the object behind `w` has not been destroyed (without reviving
/// it, as `upgrade` would).
fn still_there<T>(w: &Weak<T>) -> bool {
    w.strong_count() > 0
}

/// Drops the last outside handles of the cycle `a <-> b` and checks that
/// one `collect()` frees both.
fn assert_cycle_collected<T: Trace>(a: Cc<T>, b: Cc<T>) {
    let (wa, wb) = (Cc::downgrade(&a), Cc::downgrade(&b));
    assert_eq!((Cc::strong_count(&a), Cc::strong_count(&b)), (2, 2));
    drop((a, b));
    assert!(
        still_there(&wa) && still_there(&wb),
        "a cycle leaks by counting alone"
    );
    collect();
    assert!(
        wa.upgrade().is_none() && wb.upgrade().is_none(),
        "the cycle was not collected"
    );
}

/// Takes a lock inside `a` on this thread (`hold` returns its guard),
/// drops the last handles of the cycle `a <-> b`, and checks that
/// `collect()` keeps the cycle (the collector finds the lock taken: busy);
/// then releases the lock and checks that the next `collect()` frees it.
fn assert_held_lock_keeps_cycle<T, G>(a: Cc<T>, b: Cc<T>, hold: impl FnOnce(&'static T) -> G)
where
    T: Trace + 'static,
{
    let (wa, wb) = (Cc::downgrade(&a), Cc::downgrade(&b));
    // SAFETY: used (through the guard) only after `still_there` below.
    let guard = hold(unsafe { detach(&a) });
    drop((a, b));
    collect();
    if !(still_there(&wa) && still_there(&wb)) {
        // The value under the guard is gone: never touch the guard again.
        std::mem::forget(guard);
        panic!("a cycle whose lock was held was freed");
    }
    drop(guard);
    collect();
    assert!(
        wa.upgrade().is_none() && wb.upgrade().is_none(),
        "not collected once unlocked"
    );
}

/// As `assert_held_lock_keeps_cycle`, with the lock held by another thread
/// (for reentrant locks, which the collecting thread would re-enter).
fn assert_lock_held_elsewhere_keeps_cycle<T, G>(
    a: Cc<T>,
    b: Cc<T>,
    hold: impl FnOnce(&'static T) -> G + Send + 'static,
) where
    T: Trace + Send + Sync + 'static,
{
    use std::sync::mpsc::channel;
    let (wa, wb) = (Cc::downgrade(&a), Cc::downgrade(&b));
    // SAFETY: used (by the holder) only while `still_there` holds: the
    // holder forgets its guard otherwise.
    let inner: &'static T = unsafe { detach(&a) };
    let (locked_tx, locked_rx) = channel();
    let (release_tx, release_rx) = channel::<bool>();
    let holder = std::thread::spawn(move || {
        let guard = hold(inner);
        locked_tx.send(()).unwrap();
        if release_rx.recv().unwrap() {
            drop(guard);
        } else {
            std::mem::forget(guard);
        }
    });
    locked_rx.recv().unwrap();
    drop((a, b));
    collect();
    let kept = still_there(&wa) && still_there(&wb);
    release_tx.send(kept).unwrap();
    holder.join().unwrap();
    assert!(kept, "a cycle whose lock was held was freed");
    collect();
    assert!(
        wa.upgrade().is_none() && wb.upgrade().is_none(),
        "not collected once unlocked"
    );
}

#[cfg(feature = "parking_lot")]
mod parking_lot {
    use super::*;
    use ::parking_lot::{FairMutex, Mutex, ReentrantMutex, RwLock};
    use std::cell::RefCell;
    use std::sync::{Arc, OnceLock};

    #[derive(Trace)]
    struct MutexNode {
        next: Mutex<Option<Cc<MutexNode>>>,
    }

    fn mutex_pair() -> (Cc<MutexNode>, Cc<MutexNode>) {
        let a = Cc::new(MutexNode {
            next: Mutex::new(None),
        });
        let b = Cc::new(MutexNode {
            next: Mutex::new(Some(a.clone())),
        });
        *a.next.lock() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn mutex_cycle_is_collected() {
        let (a, b) = mutex_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn held_mutex_keeps_cycle() {
        let (a, b) = mutex_pair();
        assert_held_lock_keeps_cycle(a, b, |n| n.next.lock());
    }

    #[derive(Trace)]
    struct FairNode {
        next: FairMutex<Option<Cc<FairNode>>>,
    }

    fn fair_pair() -> (Cc<FairNode>, Cc<FairNode>) {
        let a = Cc::new(FairNode {
            next: FairMutex::new(None),
        });
        let b = Cc::new(FairNode {
            next: FairMutex::new(Some(a.clone())),
        });
        *a.next.lock() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn fair_mutex_cycle_is_collected() {
        let (a, b) = fair_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn held_fair_mutex_keeps_cycle() {
        let (a, b) = fair_pair();
        assert_held_lock_keeps_cycle(a, b, |n| n.next.lock());
    }

    #[derive(Trace)]
    struct RwNode {
        next: RwLock<Option<Cc<RwNode>>>,
    }

    fn rw_pair() -> (Cc<RwNode>, Cc<RwNode>) {
        let a = Cc::new(RwNode {
            next: RwLock::new(None),
        });
        let b = Cc::new(RwNode {
            next: RwLock::new(Some(a.clone())),
        });
        *a.next.write() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn rwlock_cycle_is_collected() {
        let (a, b) = rw_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn write_locked_rwlock_keeps_cycle() {
        let (a, b) = rw_pair();
        assert_held_lock_keeps_cycle(a, b, |n| n.next.write());
    }

    /// The usual shape: a `RefCell` under the reentrant lock.
    #[derive(Trace)]
    struct ReNode {
        next: ReentrantMutex<RefCell<Option<Cc<ReNode>>>>,
    }

    fn re_pair() -> (Cc<ReNode>, Cc<ReNode>) {
        let a = Cc::new(ReNode {
            next: ReentrantMutex::new(RefCell::new(None)),
        });
        let b = Cc::new(ReNode {
            next: ReentrantMutex::new(RefCell::new(Some(a.clone()))),
        });
        *a.next.lock().borrow_mut() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn reentrant_refcell_cycle_is_collected() {
        let (a, b) = re_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn reentrant_mutex_held_by_another_thread_keeps_cycle() {
        let (a, b) = re_pair();
        assert_lock_held_elsewhere_keeps_cycle(a, b, |n| n.next.lock());
    }

    /// On the collecting thread the collector re-enters the lock; a
    /// mutable borrow of the `RefCell` there still makes the value busy.
    #[test]
    fn reentrant_mutex_borrowed_mutably_on_collecting_thread_keeps_cycle() {
        let (a, b) = re_pair();
        assert_held_lock_keeps_cycle(a, b, |n| {
            let lock = n.next.lock();
            let cell: *const RefCell<_> = &*lock;
            // SAFETY: the cell lives as long as the node, for which the
            // helper's contract holds; the lock stays taken while the
            // borrow exists (the tuple drops the borrow first).
            (unsafe { &*cell }.borrow_mut(), lock)
        });
    }

    /// The generic impl: data that is immutable under the lock.
    #[derive(Trace)]
    struct ReOnceNode {
        next: ReentrantMutex<OnceLock<Cc<ReOnceNode>>>,
    }

    #[test]
    fn reentrant_generic_cycle_is_collected() {
        let a = Cc::new(ReOnceNode {
            next: ReentrantMutex::new(OnceLock::new()),
        });
        let b = Cc::new(ReOnceNode {
            next: ReentrantMutex::new(OnceLock::from(a.clone())),
        });
        a.next.lock().set(b.clone()).ok().unwrap();
        assert_cycle_collected(a, b);
    }

    /// Two nodes whose `trace` try-locks one shared reentrant lock: the
    /// collector re-enters it for the second node, so the cycle is
    /// collected (with a `Mutex` the second would be busy for ever).
    struct SharedLockNode {
        lock: Arc<ReentrantMutex<()>>,
        next: OnceLock<Cc<SharedLockNode>>,
    }

    // SAFETY: reports the one handle in `next` (set-once), under the shared
    // lock, taken without blocking and handed to the tracer.
    unsafe impl Trace for SharedLockNode {
        fn trace<'a>(&'a self, tracer: &mut arcycle::Tracer<'a>) {
            match self.lock.try_lock() {
                Some(guard) => {
                    self.next.trace(tracer);
                    tracer.hold(guard);
                }
                None => tracer.busy(),
            }
        }
    }

    #[test]
    fn shared_reentrant_lock_is_reentered_by_the_collector() {
        let lock = Arc::new(ReentrantMutex::new(()));
        let a = Cc::new(SharedLockNode {
            lock: lock.clone(),
            next: OnceLock::new(),
        });
        let b = Cc::new(SharedLockNode {
            lock,
            next: OnceLock::from(a.clone()),
        });
        a.next.set(b.clone()).ok().unwrap();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn leaves_stay_leaves() {
        assert!(!<Mutex<u32> as Trace>::may_have_edges());
        assert!(!<FairMutex<String> as Trace>::may_have_edges());
        assert!(!<RwLock<Vec<u8>> as Trace>::may_have_edges());
        assert!(!<ReentrantMutex<RefCell<u8>> as Trace>::may_have_edges());
        assert!(<Mutex<Option<Cc<u8>>> as Trace>::may_have_edges());
        assert!(<ReentrantMutex<RefCell<Vec<Cc<u8>>>> as Trace>::may_have_edges());
    }
}

#[cfg(feature = "tokio")]
mod tokio {
    use super::*;
    use ::tokio::sync::{Mutex, OnceCell, RwLock};

    #[derive(Trace)]
    struct MutexNode {
        next: Mutex<Option<Cc<MutexNode>>>,
    }

    fn mutex_pair() -> (Cc<MutexNode>, Cc<MutexNode>) {
        let a = Cc::new(MutexNode {
            next: Mutex::new(None),
        });
        let b = Cc::new(MutexNode {
            next: Mutex::new(Some(a.clone())),
        });
        *a.next.try_lock().unwrap() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn mutex_cycle_is_collected() {
        let (a, b) = mutex_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn held_mutex_keeps_cycle() {
        let (a, b) = mutex_pair();
        assert_held_lock_keeps_cycle(a, b, |n| n.next.try_lock().unwrap());
    }

    #[derive(Trace)]
    struct RwNode {
        next: RwLock<Option<Cc<RwNode>>>,
    }

    fn rw_pair() -> (Cc<RwNode>, Cc<RwNode>) {
        let a = Cc::new(RwNode {
            next: RwLock::new(None),
        });
        let b = Cc::new(RwNode {
            next: RwLock::new(Some(a.clone())),
        });
        *a.next.try_write().unwrap() = Some(b.clone());
        (a, b)
    }

    #[test]
    fn rwlock_cycle_is_collected() {
        let (a, b) = rw_pair();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn write_locked_rwlock_keeps_cycle() {
        let (a, b) = rw_pair();
        assert_held_lock_keeps_cycle(a, b, |n| n.next.try_write().unwrap());
    }

    #[derive(Trace)]
    struct OnceNode {
        next: OnceCell<Cc<OnceNode>>,
    }

    #[test]
    fn once_cell_cycle_is_collected() {
        let a = Cc::new(OnceNode {
            next: OnceCell::new(),
        });
        let b = Cc::new(OnceNode {
            next: OnceCell::new_with(Some(a.clone())),
        });
        a.next.set(b.clone()).ok().unwrap();
        assert_cycle_collected(a, b);
    }

    #[test]
    fn leaves_stay_leaves() {
        assert!(!<Mutex<u32> as Trace>::may_have_edges());
        assert!(!<RwLock<String> as Trace>::may_have_edges());
        assert!(!<OnceCell<u8> as Trace>::may_have_edges());
        assert!(<Mutex<Vec<Cc<u8>>> as Trace>::may_have_edges());
        assert!(<OnceCell<Cc<u8>> as Trace>::may_have_edges());
    }
}

#[cfg(feature = "hashbrown")]
mod hashbrown {
    use super::*;
    use ::hashbrown::{HashMap, HashSet, HashTable};
    use std::hash::RandomState;
    use std::sync::Mutex;

    #[derive(Trace)]
    struct Node {
        id: u32,
        by_id: Mutex<HashMap<u32, Cc<Node>, RandomState>>,
        set: Mutex<HashSet<Cc<Node>, RandomState>>,
        table: Mutex<HashTable<Cc<Node>>>,
    }

    impl PartialEq for Node {
        fn eq(&self, other: &Node) -> bool {
            self.id == other.id
        }
    }
    impl Eq for Node {}
    impl std::hash::Hash for Node {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.id.hash(h);
        }
    }

    fn node(id: u32) -> Cc<Node> {
        Cc::new(Node {
            id,
            by_id: Mutex::new(HashMap::with_hasher(RandomState::new())),
            set: Mutex::new(HashSet::with_hasher(RandomState::new())),
            table: Mutex::new(HashTable::new()),
        })
    }

    #[test]
    fn cycle_through_map_is_collected() {
        let (a, b) = (node(1), node(2));
        a.by_id.lock().unwrap().insert(2, b.clone());
        b.by_id.lock().unwrap().insert(1, a.clone());
        assert_cycle_collected(a, b);
    }

    #[test]
    fn cycle_through_set_is_collected() {
        let (a, b) = (node(1), node(2));
        a.set.lock().unwrap().insert(b.clone());
        b.set.lock().unwrap().insert(a.clone());
        assert_cycle_collected(a, b);
    }

    #[test]
    fn cycle_through_table_is_collected() {
        let (a, b) = (node(1), node(2));
        a.table
            .lock()
            .unwrap()
            .insert_unique(2, b.clone(), |n| n.id as u64);
        b.table
            .lock()
            .unwrap()
            .insert_unique(1, a.clone(), |n| n.id as u64);
        assert_cycle_collected(a, b);
    }

    #[test]
    fn leaves_stay_leaves() {
        assert!(!<HashMap<u32, String> as Trace>::may_have_edges());
        assert!(!<HashSet<u32> as Trace>::may_have_edges());
        assert!(!<HashTable<u32> as Trace>::may_have_edges());
        assert!(<HashMap<u32, Cc<u8>> as Trace>::may_have_edges());
        assert!(<HashMap<Cc<u8>, u32> as Trace>::may_have_edges());
        assert!(<HashSet<Cc<u8>> as Trace>::may_have_edges());
    }
}

#[cfg(feature = "indexmap")]
mod indexmap {
    use super::*;
    use ::indexmap::{IndexMap, IndexSet};
    use std::hash::RandomState;
    use std::sync::Mutex;

    #[derive(Trace)]
    struct Node {
        id: u32,
        map: Mutex<IndexMap<u32, Cc<Node>, RandomState>>,
        set: Mutex<IndexSet<Cc<Node>, RandomState>>,
    }

    impl PartialEq for Node {
        fn eq(&self, other: &Node) -> bool {
            self.id == other.id
        }
    }
    impl Eq for Node {}
    impl std::hash::Hash for Node {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.id.hash(h);
        }
    }

    fn node(id: u32) -> Cc<Node> {
        Cc::new(Node {
            id,
            map: Mutex::new(IndexMap::with_hasher(RandomState::new())),
            set: Mutex::new(IndexSet::with_hasher(RandomState::new())),
        })
    }

    #[test]
    fn cycle_through_map_is_collected() {
        let (a, b) = (node(1), node(2));
        a.map.lock().unwrap().insert(2, b.clone());
        b.map.lock().unwrap().insert(1, a.clone());
        assert_cycle_collected(a, b);
    }

    #[test]
    fn cycle_through_set_is_collected() {
        let (a, b) = (node(1), node(2));
        a.set.lock().unwrap().insert(b.clone());
        b.set.lock().unwrap().insert(a.clone());
        assert_cycle_collected(a, b);
    }

    #[test]
    fn leaves_stay_leaves() {
        assert!(!<IndexMap<u32, String, RandomState> as Trace>::may_have_edges());
        assert!(!<IndexSet<u32, RandomState> as Trace>::may_have_edges());
        assert!(<IndexMap<Cc<u8>, u32, RandomState> as Trace>::may_have_edges());
        assert!(<IndexSet<Cc<u8>, RandomState> as Trace>::may_have_edges());
    }
}

#[cfg(feature = "smallvec")]
mod smallvec {
    use super::*;
    use ::smallvec::SmallVec;
    use std::sync::Mutex;

    #[derive(Trace)]
    struct Node {
        next: Mutex<SmallVec<[Cc<Node>; 2]>>,
    }

    fn node() -> Cc<Node> {
        Cc::new(Node {
            next: Mutex::new(SmallVec::new()),
        })
    }

    #[test]
    fn cycle_through_inline_smallvec_is_collected() {
        let (a, b) = (node(), node());
        a.next.lock().unwrap().push(b.clone());
        b.next.lock().unwrap().push(a.clone());
        assert!(!a.next.lock().unwrap().spilled());
        assert_cycle_collected(a, b);
    }

    #[test]
    fn cycle_through_spilled_smallvec_is_collected() {
        let (a, b) = (node(), node());
        let (c, d) = (node(), node());
        // Three handles in a two-slot `SmallVec`: on the heap.
        a.next
            .lock()
            .unwrap()
            .extend([c.clone(), d.clone(), b.clone()]);
        b.next.lock().unwrap().push(a.clone());
        assert!(a.next.lock().unwrap().spilled());
        let (wc, wd) = (Cc::downgrade(&c), Cc::downgrade(&d));
        drop((c, d));
        assert_cycle_collected(a, b);
        assert!(wc.upgrade().is_none() && wd.upgrade().is_none());
    }

    #[test]
    fn leaves_stay_leaves() {
        assert!(!<SmallVec<[u32; 4]> as Trace>::may_have_edges());
        assert!(<SmallVec<[Cc<u8>; 4]> as Trace>::may_have_edges());
    }
}

#[cfg(feature = "serde")]
mod serde {
    use super::*;
    use ::serde::{Deserialize, Serialize};
    use std::sync::Mutex;

    const CYCLE: &str = "arcycle: cannot serialize a reference cycle";

    #[derive(Trace, Serialize, Deserialize, Debug)]
    struct Tree {
        name: String,
        kids: Mutex<Vec<Cc<Tree>>>,
    }

    fn tree(name: &str, kids: Vec<Cc<Tree>>) -> Cc<Tree> {
        Cc::new(Tree {
            name: name.into(),
            kids: Mutex::new(kids),
        })
    }

    #[test]
    fn round_trip() {
        let shared = tree("leaf", vec![]);
        let root = tree("root", vec![tree("a", vec![shared.clone()]), shared]);
        let json = serde_json::to_string(&root).unwrap();
        assert_eq!(
            json,
            r#"{"name":"root","kids":[{"name":"a","kids":[{"name":"leaf","kids":[]}]},{"name":"leaf","kids":[]}]}"#
        );
        let back: Cc<Tree> = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        // Sharing is not preserved: the shared leaf comes back twice.
        let kids = back.kids.lock().unwrap();
        let first = kids[0].kids.lock().unwrap()[0].clone();
        assert!(!Cc::ptr_eq(&first, &kids[1]));
        assert_eq!(Cc::strong_count(&kids[1]), 1);
    }

    #[test]
    fn scalar_round_trip() {
        let v = vec![Cc::new(1u32), Cc::new(2)];
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "[1,2]");
        let back: Vec<Cc<u32>> = serde_json::from_str(&json).unwrap();
        assert_eq!((*back[0], *back[1]), (1, 2));
    }

    #[test]
    fn self_loop_is_refused() {
        let a = tree("a", vec![]);
        a.kids.lock().unwrap().push(a.clone());
        let err = serde_json::to_string(&a).unwrap_err().to_string();
        assert!(err.contains(CYCLE), "{err}");
        // Nothing is left marked: without the loop, `a` serializes.
        let me = a.kids.lock().unwrap().pop().unwrap();
        drop(me);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"name":"a","kids":[]}"#
        );
    }

    #[test]
    fn two_cycle_is_refused_and_still_collected() {
        let a = tree("a", vec![]);
        let b = tree("b", vec![a.clone()]);
        a.kids.lock().unwrap().push(b.clone());
        for root in [&a, &b] {
            let err = serde_json::to_string(root).unwrap_err().to_string();
            assert!(err.contains(CYCLE), "{err}");
        }
        // A value that merely shares (no cycle) still serializes.
        let c = tree("c", vec![]);
        let pair = vec![c.clone(), c];
        assert_eq!(
            serde_json::to_string(&pair).unwrap(),
            r#"[{"name":"c","kids":[]},{"name":"c","kids":[]}]"#
        );
        assert_cycle_collected(a, b);
    }

    #[derive(Trace, Serialize, Deserialize)]
    struct Child {
        name: String,
        parent: Weak<Parent>,
    }

    #[derive(Trace, Serialize, Deserialize)]
    struct Parent {
        name: String,
        kids: Mutex<Vec<Cc<Child>>>,
    }

    #[derive(Trace, Serialize, Deserialize)]
    struct SkippingChild {
        name: String,
        #[serde(skip)]
        parent: Weak<Parent>,
    }

    #[test]
    fn weak_serializes_as_option() {
        let p = Cc::new(Parent {
            name: "p".into(),
            kids: Mutex::new(vec![]),
        });
        let w = Cc::downgrade(&p);
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"name":"p","kids":[]}"#
        );
        drop(p);
        assert_eq!(serde_json::to_string(&w).unwrap(), "null");
        assert_eq!(serde_json::to_string(&Weak::<u8>::new()).unwrap(), "null");
    }

    #[test]
    fn weak_deserializes_dangling() {
        // As serde does for `std::sync::Weak`: read an `Option<T>`, keep
        // nothing.
        let w: Weak<u32> = serde_json::from_str("7").unwrap();
        assert!(w.upgrade().is_none());
        let w: Weak<u32> = serde_json::from_str("null").unwrap();
        assert!(w.upgrade().is_none());
        assert!(serde_json::from_str::<Weak<u32>>(r#""no""#).is_err());
        let c: Child =
            serde_json::from_str(r#"{"name":"c","parent":{"name":"p","kids":[]}}"#).unwrap();
        assert_eq!(c.name, "c");
        assert!(c.parent.upgrade().is_none());
    }

    #[test]
    fn weak_back_edge_is_a_cycle_unless_skipped() {
        let p = Cc::new(Parent {
            name: "p".into(),
            kids: Mutex::new(vec![]),
        });
        let kid = Cc::new(Child {
            name: "k".into(),
            parent: Cc::downgrade(&p),
        });
        p.kids.lock().unwrap().push(kid);
        let err = serde_json::to_string(&p).unwrap_err().to_string();
        assert!(err.contains(CYCLE), "{err}");

        let skipping = SkippingChild {
            name: "k".into(),
            parent: Cc::downgrade(&p),
        };
        assert_eq!(serde_json::to_string(&skipping).unwrap(), r#"{"name":"k"}"#);
        // The child alone is refused too: its parent leads back to it.
        let kid = p.kids.lock().unwrap()[0].clone();
        let err = serde_json::to_string(&kid).unwrap_err().to_string();
        assert!(err.contains(CYCLE), "{err}");
    }

    /// Outcomes of serializing a collected peer from a destructor.
    static FROM_DROP: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[derive(Trace)]
    struct Dying {
        peer: Mutex<Option<Cc<Dying>>>,
    }

    impl Serialize for Dying {
        fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_unit()
        }
    }

    impl Drop for Dying {
        fn drop(&mut self) {
            let peer = self.peer.get_mut().unwrap();
            let outcome = match serde_json::to_string(&*peer) {
                Ok(s) => s,
                Err(e) => e.to_string(),
            };
            FROM_DROP.lock().unwrap().push(outcome);
        }
    }

    #[test]
    fn collected_peer_is_an_error_not_a_crash() {
        let a = Cc::new(Dying {
            peer: Mutex::new(None),
        });
        let b = Cc::new(Dying {
            peer: Mutex::new(Some(a.clone())),
        });
        *a.peer.lock().unwrap() = Some(b.clone());
        assert_cycle_collected(a, b);
        let outcomes = FROM_DROP.lock().unwrap();
        assert_eq!(outcomes.len(), 2);
        for o in outcomes.iter() {
            assert!(o.contains("the cycle collector has destroyed"), "{o}");
        }
    }
}

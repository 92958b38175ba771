//! `arcycle::weakref`: weak maps, weak sets and finalizers (issue 10).
//!
//! Single-thread semantics of every method, the death order (destructors,
//! then purges, then finalizers; for a collected cycle after every
//! destructor), panics, and a many-thread churn against a collecting
//! thread with drop counters and canaries.

mod common;

use arcycle::{collect, finalize, Cc, Trace, WeakKeyMap, WeakSet, WeakValueMap};
use common::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn bump(c: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let c = c.clone();
    move || {
        c.fetch_add(1, SeqCst);
    }
}

/// An event log shared by destructors and finalizers.
type Log = Arc<Mutex<Vec<String>>>;

/// A cycle-capable node that logs its destruction.
#[derive(Trace)]
struct Logged {
    #[trace(skip)]
    name: String,
    #[trace(skip)]
    log: Log,
    next: Mutex<Option<Cc<Logged>>>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(format!("drop {}", self.name));
    }
}

fn logged(name: &str, log: &Log) -> Cc<Logged> {
    Cc::new(Logged {
        name: name.into(),
        log: log.clone(),
        next: Mutex::new(None),
    })
}

fn note(log: &Log, what: &str) -> impl FnOnce() + Send + 'static {
    let log = log.clone();
    let what = what.to_string();
    move || log.lock().unwrap().push(what)
}

// ---------------------------------------------------------------------------
// Finalizers
// ---------------------------------------------------------------------------

#[test]
fn finalizer_runs_once_after_last_drop_and_destructor() {
    let log = Log::default();
    let a = logged("a", &log);
    let b = a.clone();
    let f = finalize(&a, note(&log, "fin a"));
    assert!(f.alive());
    drop(a);
    assert!(f.alive(), "one handle remains");
    assert!(log.lock().unwrap().is_empty());
    drop(b);
    assert_eq!(*log.lock().unwrap(), ["drop a", "fin a"]);
    assert!(!f.alive());
    assert!(!f.detach());
    assert!(!f.call());
}

#[test]
fn finalizers_run_in_registration_order() {
    let log = Log::default();
    let a = Cc::new(1);
    let fs: Vec<_> = (0..5)
        .map(|i| finalize(&a, note(&log, &i.to_string())))
        .collect();
    assert!(fs[2].detach());
    drop(a);
    assert_eq!(*log.lock().unwrap(), ["0", "1", "3", "4"]);
}

#[test]
fn finalizer_detach_and_call() {
    let n = counter();
    let a = Cc::new(String::from("x"));
    let f = finalize(&a, bump(&n));
    assert!(f.call());
    assert_eq!(n.load(SeqCst), 1);
    assert!(!f.call());
    assert!(!f.alive());
    let g = finalize(&a, bump(&n));
    assert!(g.detach());
    assert!(!g.detach());
    drop(a);
    assert_eq!(
        n.load(SeqCst),
        1,
        "called and detached finalizers never run again"
    );
    assert!(format!("{f:?}").contains("alive: false"));
}

#[test]
fn dropping_the_handle_does_not_cancel() {
    let n = counter();
    let a = Cc::new(0u64);
    drop(finalize(&a, bump(&n)));
    drop(a);
    assert_eq!(n.load(SeqCst), 1);
}

#[test]
fn finalizer_after_try_unwrap_and_into_inner() {
    let n = counter();
    let a = Cc::new(5);
    let _f = finalize(&a, bump(&n));
    assert_eq!(Cc::try_unwrap(a), Ok(5));
    assert_eq!(n.load(SeqCst), 1, "the object died as a Cc");
    let b = Cc::new(6);
    let _g = finalize(&b, bump(&n));
    let b2 = b.clone();
    assert_eq!(Cc::into_inner(b), None);
    assert_eq!(n.load(SeqCst), 1);
    assert_eq!(Cc::into_inner(b2), Some(6));
    assert_eq!(n.load(SeqCst), 2);
}

#[test]
fn finalizers_of_a_collected_cycle_run_after_every_destructor() {
    let _s = serial();
    let log = Log::default();
    let a = logged("a", &log);
    let b = logged("b", &log);
    *a.next.lock().unwrap() = Some(b.clone());
    *b.next.lock().unwrap() = Some(a.clone());
    let _fa = finalize(&a, note(&log, "fin a"));
    let _fb = finalize(&b, note(&log, "fin b"));
    let wa = Cc::downgrade(&a);
    drop((a, b));
    assert!(log.lock().unwrap().is_empty());
    assert!(wa.upgrade().is_some());
    collect();
    assert!(wa.upgrade().is_none());
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log[..2].iter().all(|e| e.starts_with("drop")), "{log:?}");
    assert!(log[2..].iter().all(|e| e.starts_with("fin")), "{log:?}");
}

#[test]
fn finalizer_panic_reaches_the_dropper_after_the_others_ran() {
    let n = counter();
    let a = Cc::new(1);
    let _f1 = finalize(&a, bump(&n));
    let _f2 = finalize(&a, || panic!("finalizer boom"));
    let _f3 = finalize(&a, bump(&n));
    let w = Cc::downgrade(&a);
    let r = catch_unwind(AssertUnwindSafe(|| drop(a)));
    let p = r.expect_err("the panic reaches the dropper");
    assert_eq!(panic_text(&*p), "finalizer boom");
    assert_eq!(n.load(SeqCst), 2, "the others still ran");
    assert!(w.upgrade().is_none());
}

#[test]
fn finalizer_panic_reaches_the_collector_caller() {
    let _s = serial();
    let n = counter();
    let log = Log::default();
    let a = logged("a", &log);
    *a.next.lock().unwrap() = Some(a.clone());
    let _f1 = finalize(&a, || panic!("collected boom"));
    let _f2 = finalize(&a, bump(&n));
    drop(a);
    let r = catch_unwind(collect);
    assert_eq!(panic_text(&*r.expect_err("resumed")), "collected boom");
    assert_eq!(n.load(SeqCst), 1);
    assert_eq!(*log.lock().unwrap(), ["drop a"]);
}

#[test]
fn finalizer_may_use_the_same_map_and_register_more() {
    let map: Arc<WeakValueMap<u32, u32>> = Arc::new(WeakValueMap::new());
    let keep = Cc::new(7);
    map.insert(1, &keep);
    let a = Cc::new(2);
    map.insert(2, &a);
    let m = map.clone();
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let n = counter();
    let n2 = n.clone();
    let _f = finalize(&a, move || {
        // The map no longer returns the dead object, and is usable here.
        *s.lock().unwrap() = Some((m.get(&2).is_none(), m.len()));
        let fresh = m.get_or_insert_with(3, || 3);
        let _ = finalize(&fresh, bump(&n2));
        drop(fresh); // runs the nested finalizer, here
    });
    drop(a);
    assert_eq!(*seen.lock().unwrap(), Some((true, 1)));
    assert_eq!(n.load(SeqCst), 1);
    assert_eq!(map.len(), 1);
}

#[test]
fn many_objects_reuse_addresses_safely() {
    // Freed allocations are reused at once by the allocator: a record
    // keyed by address must never reach the next object at that address.
    let n = counter();
    for i in 0..2_000 {
        let a = Cc::new(i);
        let f = finalize(&a, bump(&n));
        if i % 3 == 0 {
            f.detach();
        }
        drop(a);
    }
    assert_eq!(n.load(SeqCst), 2_000 - 667);
}

#[test]
fn finalizer_on_a_dead_object_runs_at_once() {
    let _s = serial();
    static STASH: Mutex<Option<Cc<Stasher>>> = Mutex::new(None);
    #[derive(Trace)]
    struct Stasher {
        next: Mutex<Option<Cc<Stasher>>>,
    }
    impl Drop for Stasher {
        fn drop(&mut self) {
            if let Some(peer) = self.next.lock().unwrap().take() {
                *STASH.lock().unwrap() = Some(peer);
            }
        }
    }
    let a = Cc::new(Stasher {
        next: Mutex::new(None),
    });
    *a.next.lock().unwrap() = Some(a.clone());
    drop(a);
    collect();
    let dead = STASH
        .lock()
        .unwrap()
        .take()
        .expect("the destructor stashed it");
    assert!(Cc::is_dead(&dead));
    let n = counter();
    let f = finalize(&dead, bump(&n));
    assert_eq!(n.load(SeqCst), 1);
    assert!(!f.alive());
    let set = WeakSet::new();
    assert!(!set.insert(&dead), "a dead object is never added");
    assert!(set.is_empty());
    drop(dead);
    assert_eq!(n.load(SeqCst), 1);
}

// ---------------------------------------------------------------------------
// WeakValueMap
// ---------------------------------------------------------------------------

#[test]
fn value_map_methods() {
    let m: WeakValueMap<String, u32> = WeakValueMap::new();
    assert!(m.is_empty());
    let a = Cc::new(1);
    let b = Cc::new(2);
    assert!(m.insert("a".into(), &a).is_none());
    assert!(m.insert("b".into(), &b).is_none());
    assert_eq!(m.len(), 2);
    assert!(Cc::ptr_eq(&m.get("a").unwrap(), &a));
    assert!(m.contains_key("b"));
    assert!(!m.contains_key("c"));
    // Replace: returns the old live value; the old object's death no
    // longer touches the entry.
    let a2 = Cc::new(10);
    assert!(Cc::ptr_eq(&m.insert("a".into(), &a2).unwrap(), &a));
    assert_eq!(m.len(), 2);
    drop(a);
    assert_eq!(m.len(), 2);
    assert_eq!(*m.get("a").unwrap(), 10);
    let mut all = m.to_vec();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].0.as_str(), *all[0].1), ("a", 10));
    let mut keys = m.keys();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(m.values().len(), 2);
    drop(all);
    // Death by last drop: gone and uncounted at once.
    drop(b);
    assert_eq!(m.len(), 1);
    assert!(m.get("b").is_none());
    assert!(!m.contains_key("b"));
    assert_eq!(m.keys(), ["a"]);
    assert!(Cc::ptr_eq(&m.remove("a").unwrap(), &a2));
    assert!(m.remove("a").is_none());
    assert!(m.is_empty());
    assert_eq!(format!("{m:?}"), "WeakValueMap { len: 0 }");
}

#[test]
fn value_map_retain_clear_extend() {
    let vals: Vec<_> = (0..10).map(Cc::new).collect();
    let mut m: WeakValueMap<usize, usize> = vals.iter().enumerate().collect();
    assert_eq!(m.len(), 10);
    m.retain(|k, v| k % 2 == 0 && **v == *k);
    assert_eq!(m.len(), 5);
    assert!(m.get(&1).is_none());
    m.extend([(100, &vals[1])]);
    assert_eq!(m.len(), 6);
    m.clear();
    assert!(m.is_empty());
    drop(vals); // nothing registered remains to purge
    assert!(m.is_empty());
}

#[test]
fn value_map_purged_by_collection() {
    let _s = serial();
    let log = Log::default();
    let m: WeakValueMap<u8, Logged> = WeakValueMap::new();
    let a = logged("a", &log);
    *a.next.lock().unwrap() = Some(a.clone());
    m.insert(1, &a);
    drop(a);
    assert_eq!(m.len(), 1, "garbage, but not yet collected");
    assert!(m.get(&1).is_some());
    collect();
    assert_eq!(m.len(), 0);
    assert!(m.get(&1).is_none());
    assert_eq!(*log.lock().unwrap(), ["drop a"]);
}

#[test]
fn get_or_insert_with_builds_once_per_life() {
    let m: WeakValueMap<&str, String> = WeakValueMap::new();
    let builds = counter();
    let make = |b: &Arc<AtomicUsize>| {
        b.fetch_add(1, SeqCst);
        String::from("v")
    };
    let a = m.get_or_insert_with("k", || make(&builds));
    let b = m.get_or_insert_with("k", || make(&builds));
    assert!(Cc::ptr_eq(&a, &b));
    assert_eq!(builds.load(SeqCst), 1);
    assert_eq!(m.len(), 1);
    drop((a, b));
    assert_eq!(m.len(), 0);
    let c = m.get_or_insert_with("k", || make(&builds));
    assert_eq!(builds.load(SeqCst), 2, "a new life, a new build");
    assert_eq!(m.len(), 1);
    drop(c);
}

#[test]
fn get_or_insert_with_survives_a_panicking_constructor() {
    let m: WeakValueMap<u8, u8> = WeakValueMap::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.get_or_insert_with(1, || panic!("ctor"))
    }));
    assert!(r.is_err());
    assert!(m.is_empty());
    assert!(m.get(&1).is_none());
    let v = m.get_or_insert_with(1, || 9);
    assert_eq!(*v, 9);
    assert_eq!(m.len(), 1);
}

#[test]
fn get_or_insert_with_races_build_once() {
    let m: Arc<WeakValueMap<u32, u32>> = Arc::new(WeakValueMap::new());
    let builds = counter();
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (m, builds, barrier) = (m.clone(), builds.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                m.get_or_insert_with(7, || {
                    builds.fetch_add(1, SeqCst);
                    77
                })
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(builds.load(SeqCst), 1);
    assert!(got.iter().all(|v| Cc::ptr_eq(v, &got[0])));
}

// ---------------------------------------------------------------------------
// WeakKeyMap
// ---------------------------------------------------------------------------

static KEY_VALUES: Tally = Tally::new();

#[test]
fn key_map_methods() {
    let m: WeakKeyMap<String, Probe> = WeakKeyMap::new();
    let k1 = Cc::new(String::from("k1"));
    let k2 = Cc::new(String::from("k2"));
    assert!(m.insert(&k1, Probe::new(&KEY_VALUES)).is_none());
    assert!(m.insert(&k2, Probe::new(&KEY_VALUES)).is_none());
    assert_eq!(m.len(), 2);
    assert!(m.contains_key(&k1));
    assert!(!m.contains_key(&Cc::new(String::from("k1"))), "by identity");
    m.get_ref(&k1).unwrap().check();
    let old = m.insert(&k1, Probe::new(&KEY_VALUES)).unwrap();
    drop(old);
    assert_eq!(KEY_VALUES.dropped(), 1);
    // The key dies: its value is dropped with it, at once.
    drop(k2);
    assert_eq!(KEY_VALUES.dropped(), 2);
    assert_eq!(m.len(), 1);
    assert_eq!(m.keys().len(), 1);
    assert!(m.remove(&k1).is_some());
    assert_eq!(KEY_VALUES.dropped(), 3);
    assert!(m.remove(&k1).is_none());
    assert!(m.is_empty());
    KEY_VALUES.assert_clean();
}

#[test]
fn key_map_get_update_retain_collect() {
    let _s = serial();
    let log = Log::default();
    let keys: Vec<_> = (0..6).map(|i| logged(&i.to_string(), &log)).collect();
    let mut m: WeakKeyMap<Logged, usize> = keys.iter().zip(0..).collect();
    assert_eq!(m.get(&keys[3]), Some(3));
    assert_eq!(m.update(&keys[3], |v| std::mem::replace(v, 30)), Some(3));
    assert_eq!(m.get(&keys[3]), Some(30));
    m.retain(|k, v| k.name != "0" && *v != 1);
    assert_eq!(m.len(), 4);
    m.extend([(&keys[0], 0)]);
    assert_eq!(m.len(), 5);
    let snapshot = m.to_vec();
    assert_eq!(snapshot.len(), 5);
    drop(snapshot);
    // A key on a garbage cycle: its entry goes when it is collected.
    *keys[5].next.lock().unwrap() = Some(keys[5].clone());
    drop(keys);
    assert_eq!(m.len(), 1);
    collect();
    assert_eq!(m.len(), 0);
    assert_eq!(format!("{m:?}"), "WeakKeyMap { len: 0 }");
}

#[test]
fn key_map_value_referring_to_its_key_leaks() {
    // Documented: the map holds values strongly and is not an ephemeron
    // table, so a value holding its own key keeps the entry alive (as in
    // Python).
    let _s = serial();
    let m: WeakKeyMap<u32, Cc<u32>> = WeakKeyMap::new();
    let k = Cc::new(1);
    let w = Cc::downgrade(&k);
    m.insert(&k, k.clone());
    drop(k);
    collect();
    assert!(w.upgrade().is_some());
    assert_eq!(m.len(), 1);
    m.clear(); // breaking it by hand frees it
    assert!(w.upgrade().is_none());
    assert!(m.is_empty());
}

// ---------------------------------------------------------------------------
// WeakSet
// ---------------------------------------------------------------------------

#[test]
fn weak_set_methods() {
    let s: WeakSet<u32> = WeakSet::new();
    let a = Cc::new(1);
    let b = Cc::new(2);
    assert!(s.insert(&a));
    assert!(!s.insert(&a));
    assert!(s.insert(&b));
    assert_eq!(s.len(), 2);
    assert!(s.contains(&a));
    s.retain(|x| **x == 1);
    assert!(!s.contains(&b));
    assert!(s.insert(&b));
    drop(b);
    assert_eq!(s.len(), 1);
    assert_eq!(*s.to_vec()[0], 1);
    assert!(s.remove(&a));
    assert!(!s.remove(&a));
    let mut s: WeakSet<u32> = [&a].into_iter().collect();
    s.extend([&a]);
    assert_eq!(s.len(), 1);
    s.clear();
    assert!(s.is_empty());
    assert_eq!(format!("{s:?}"), "WeakSet { len: 0 }");
}

#[test]
fn event_emitter_listeners_are_purged() {
    struct Listener {
        hits: AtomicUsize,
    }
    arcycle::leaf!(Listener);
    let listeners: WeakSet<Listener> = WeakSet::default();
    let l1 = Cc::new(Listener {
        hits: AtomicUsize::new(0),
    });
    let l2 = Cc::new(Listener {
        hits: AtomicUsize::new(0),
    });
    listeners.insert(&l1);
    listeners.insert(&l2);
    let emit = || {
        for l in listeners.to_vec() {
            l.hits.fetch_add(1, SeqCst);
        }
    };
    emit();
    drop(l2);
    emit();
    assert_eq!(l1.hits.load(SeqCst), 2);
    assert_eq!(listeners.len(), 1);
}

// ---------------------------------------------------------------------------
// Many threads
// ---------------------------------------------------------------------------

static CHURN: Tally = Tally::new();

/// A probed node that may be on cycles.
#[derive(Trace)]
struct Item {
    probe: Probe,
    #[trace(skip)]
    key: u32,
    next: Mutex<Option<Cc<Item>>>,
}

#[test]
fn churn_against_a_collecting_thread() {
    let _s = serial();
    let vmap: Arc<WeakValueMap<u32, Item>> = Arc::new(WeakValueMap::new());
    let kmap: Arc<WeakKeyMap<Item, u32>> = Arc::new(WeakKeyMap::new());
    let set: Arc<WeakSet<Item>> = Arc::new(WeakSet::new());
    let fins_registered = Arc::new(AtomicUsize::new(0));
    let fins_run = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Stops the collecting thread even if an assertion fails below.
    struct Stop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let stopper = Stop(stop.clone());
    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                collect();
                std::thread::yield_now();
            }
        })
    };
    let threads = 2 * std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let rounds = scaled(20_000, 100);
    let work = |t: usize| {
        let mut rng = Rng::new(t as u64 + 1);
        let mut held: Vec<Cc<Item>> = Vec::new();
        for _ in 0..rounds {
            let key = rng.below(64) as u32;
            match rng.below(8) {
                0 | 1 => {
                    let v = vmap.get_or_insert_with(key, || Item {
                        probe: Probe::new(&CHURN),
                        key,
                        next: Mutex::new(None),
                    });
                    assert_eq!(get_item(&v).key, key);
                    kmap.insert(&v, key);
                    set.insert(&v);
                    let r = fins_run.clone();
                    fins_registered.fetch_add(1, SeqCst);
                    finalize(&v, move || {
                        r.fetch_add(1, SeqCst);
                    });
                    if rng.chance(4) {
                        // Make a garbage cycle of it.
                        *v.next.lock().unwrap() = Some(v.clone());
                    }
                    held.push(v);
                }
                2 => {
                    if let Some(v) = vmap.get(&key) {
                        assert_eq!(get_item(&v).key, key);
                    }
                }
                3 => {
                    if let Some(v) = vmap.remove(&key) {
                        get_item(&v);
                    }
                }
                4 => {
                    for v in set.to_vec() {
                        get_item(&v);
                    }
                }
                5 => {
                    if !held.is_empty() {
                        let v = held.swap_remove(rng.below(held.len()));
                        // Another thread holding the same object may have
                        // removed it; if present, it is this key's.
                        if let Some(k) = kmap.get(&v) {
                            assert_eq!(k, v.key);
                        }
                        if rng.chance(2) {
                            kmap.remove(&v);
                        }
                    }
                }
                _ => {
                    if held.len() > 4 {
                        held.drain(..2);
                    }
                }
            }
        }
    };
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || work(t));
        }
    });
    // rayon's pool too.
    rayon::scope(|s| {
        for t in 0..4 {
            let work = &work;
            s.spawn(move |_| work(100 + t));
        }
    });
    drop(stopper);
    collector.join().unwrap();
    collect();
    CHURN.assert_clean();
    assert_eq!(vmap.len(), 0, "every value died: nothing counted");
    assert_eq!(kmap.len(), 0);
    assert_eq!(set.len(), 0);
    assert!(vmap.to_vec().is_empty() && set.to_vec().is_empty());
    assert_eq!(
        fins_run.load(SeqCst),
        fins_registered.load(SeqCst),
        "every finalizer ran exactly once"
    );
}

#[track_caller]
fn get_item(v: &Cc<Item>) -> &Item {
    let i: &Item = v;
    i.probe.check();
    i
}

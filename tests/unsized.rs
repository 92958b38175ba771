//! Unsized values: `Cc<str>`, `Cc<[T]>`, `Cc<dyn Trait>` — every
//! conversion, panics during construction, raw pointers, downcasting, and
//! cycles through `dyn` and slice edges collected like any other (one
//! thread and many).

mod common;

use arcycle::{collect, Cc, Trace, Tracer, Weak};
use common::*;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

/// An object-safe trait for graph nodes held as `Cc<dyn Obj>`.
trait Obj: Trace + Send + Sync {
    fn id(&self) -> usize;
    /// Set the node's one outgoing edge.
    fn point_to(&self, to: Option<Cc<dyn Obj>>);
    fn check(&self);
}

#[derive(Trace)]
struct DynNode {
    probe: Probe,
    next: Mutex<Option<Cc<dyn Obj>>>,
}

impl Obj for DynNode {
    fn id(&self) -> usize {
        self.probe.id()
    }
    fn point_to(&self, to: Option<Cc<dyn Obj>>) {
        *self.next.lock().unwrap() = to;
    }
    fn check(&self) {
        self.probe.check();
    }
}

/// A second concrete type, so edges really are heterogeneous.
#[derive(Trace)]
struct DynPair {
    probe: Probe,
    edges: Mutex<Vec<Cc<dyn Obj>>>,
}

impl Obj for DynPair {
    fn id(&self) -> usize {
        self.probe.id()
    }
    fn point_to(&self, to: Option<Cc<dyn Obj>>) {
        let mut e = self.edges.lock().unwrap();
        e.clear();
        e.extend(to);
    }
    fn check(&self) {
        self.probe.check();
    }
}

fn dyn_node(t: &'static Tally) -> Cc<dyn Obj> {
    arcycle::coerce!(Cc::new(DynNode {
        probe: Probe::new(t),
        next: Mutex::new(None),
    }))
}

fn dyn_pair(t: &'static Tally) -> Cc<dyn Obj> {
    arcycle::coerce!(Cc::new(DynPair {
        probe: Probe::new(t),
        edges: Mutex::new(Vec::new()),
    }))
}

#[test]
fn handle_sizes_match_arc() {
    use std::mem::size_of;
    assert_eq!(size_of::<Cc<u8>>(), size_of::<std::sync::Arc<u8>>());
    assert_eq!(size_of::<Option<Cc<u8>>>(), size_of::<usize>());
    assert_eq!(size_of::<Cc<str>>(), size_of::<std::sync::Arc<str>>());
    assert_eq!(size_of::<Cc<dyn Obj>>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<Weak<[u8]>>(), 2 * size_of::<usize>());
}

#[test]
fn str_conversions() {
    let _s = serial();
    let a: Cc<str> = "hello".into();
    let b: Cc<str> = String::from("hello").into();
    let c: Cc<str> = Cc::from(Box::<str>::from("hello"));
    assert_eq!((&*a, &*b, &*c), ("hello", "hello", "hello"));
    assert_eq!(a, b);
    assert!(!Cc::ptr_eq(&a, &b));
    let d: Cc<str> = Default::default();
    assert_eq!(&*d, "");
    let bytes: Cc<[u8]> = a.clone().into();
    assert_eq!(&*bytes, b"hello");
    assert_eq!(Cc::strong_count(&a), 2, "the bytes share the allocation");
    assert_eq!(format!("{a} {a:?}"), "hello \"hello\"");
    let w = Cc::downgrade(&c);
    drop(c);
    assert!(w.upgrade().is_none());
}

/// `std`'s other unsized leaf types convert as into `Arc` (from a
/// reference, a mutable one, the owned form and a `Cow`), and make leaf
/// allocations: cloning and dropping a handle buffers no possible root.
#[test]
fn path_os_str_c_str_and_cow_conversions() {
    use std::borrow::Cow;
    use std::ffi::{CStr, CString, OsStr, OsString};
    use std::path::{Path, PathBuf};
    let _s = serial();
    let p: Cc<Path> = Path::new("/etc/hosts").into();
    let q: Cc<Path> = PathBuf::from("/etc/hosts").into();
    let mut owned: Box<Path> = Path::new("/etc/hosts").into();
    let r: Cc<Path> = (&mut *owned).into();
    assert_eq!(
        (&*p, &*q, &*r),
        (
            Path::new("/etc/hosts"),
            Path::new("/etc/hosts"),
            Path::new("/etc/hosts")
        )
    );
    assert_eq!(p.file_name(), Some(OsStr::new("hosts")));
    let o: Cc<OsStr> = OsStr::new("os").into();
    let o2: Cc<OsStr> = OsString::from("os").into();
    assert_eq!((&*o, &*o2), (OsStr::new("os"), OsStr::new("os")));
    let c: Cc<CStr> = c"swordfish".into();
    let c2: Cc<CStr> = CString::new("swordfish").unwrap().into();
    assert_eq!(c, c2);
    assert_eq!(format!("{c:?}"), "\"swordfish\"");
    let empty: Cc<CStr> = Default::default();
    assert!(empty.is_empty());
    let s1: Cc<str> = Cow::Borrowed("cow").into();
    let s2: Cc<str> = Cow::<str>::Owned("cow".to_string()).into();
    let mut text = String::from("cow");
    let s3: Cc<str> = text.as_mut_str().into();
    assert!(s1 == s2 && s2 == s3);
    let v1: Cc<[u8]> = Cow::Borrowed(&[1u8, 2][..]).into();
    let v2: Cc<[u8]> = Cow::<[u8]>::Owned(vec![1, 2]).into();
    let mut items = [1u8, 2];
    let v3: Cc<[u8]> = items.as_mut_slice().into();
    assert!(v1 == v2 && v2 == v3);
    let pc: Cc<Path> = Cow::Borrowed(Path::new("/x")).into();
    assert_eq!(&*pc, Path::new("/x"));

    // Leaves: a clone and drop buffers nothing, and the last drop frees
    // the value (a `Weak` cannot upgrade) with no collection.
    collect();
    let before = arcycle::stats().roots;
    for _ in 0..10 {
        drop((p.clone(), o.clone(), c.clone()));
    }
    collect();
    assert_eq!(
        arcycle::stats().roots,
        before,
        "leaf handles buffered roots"
    );
    let w = Cc::downgrade(&p);
    drop((p, q, r));
    assert!(w.upgrade().is_none());
    assert_eq!(Weak::strong_count(&w), 0);
}

/// `new_uninit_slice` + `assume_init`, as `Arc`'s: written in place,
/// dropped element by element, freed by the last handle; a clone keeps
/// the uninitialised handle from being mutated.
#[test]
fn uninit_slices() {
    let _s = serial();
    let mut v = Cc::<[String]>::new_uninit_slice(3);
    assert_eq!(v.len(), 3);
    let other = v.clone();
    assert!(Cc::get_mut(&mut v).is_none(), "shared: no &mut");
    drop(other);
    for (i, slot) in Cc::get_mut(&mut v).unwrap().iter_mut().enumerate() {
        slot.write(i.to_string());
    }
    // SAFETY: every element was written just above.
    let v: Cc<[String]> = unsafe { v.assume_init() };
    assert_eq!(&*v, &["0", "1", "2"]);
    let w = Cc::downgrade(&v);
    drop(v);
    assert!(w.upgrade().is_none());
    let empty = Cc::<[u8]>::new_uninit_slice(0);
    // SAFETY: no elements.
    assert!(unsafe { empty.assume_init() }.is_empty());
}

#[test]
fn slice_conversions() {
    let _s = serial();
    static T: Tally = Tally::new();
    let v: Cc<[Probe]> = (0..3).map(|_| Probe::new(&T)).collect::<Vec<_>>().into();
    assert_eq!(v.len(), 3);
    let arr: Cc<[u32]> = [1, 2, 3].into();
    let from_slice: Cc<[u32]> = (&[1u32, 2, 3][..]).into();
    let collected: Cc<[u32]> = (1..=3).collect();
    let boxed: Cc<[u32]> = Cc::from(vec![1u32, 2, 3].into_boxed_slice());
    let coerced: Cc<[u32]> = arcycle::coerce!(Cc::new([1u32, 2, 3]));
    for s in [&arr, &from_slice, &collected, &boxed, &coerced] {
        assert_eq!(&s[..], &[1, 2, 3]);
    }
    let empty: Cc<[String]> = Default::default();
    assert!(empty.is_empty());
    assert_eq!(T.live(), 3);
    drop(v);
    T.assert_clean();
}

#[test]
fn slice_get_mut_and_make_mut() {
    let _s = serial();
    let mut a: Cc<[String]> = vec!["x".to_string(), "y".to_string()].into();
    Cc::get_mut(&mut a).unwrap()[0].push('!');
    let b = a.clone();
    assert!(Cc::get_mut(&mut a).is_none());
    Cc::make_mut(&mut a)[1] = "z".into();
    assert_eq!(&*a, &["x!".to_string(), "z".to_string()]);
    assert_eq!(&*b, &["x!".to_string(), "y".to_string()]);
    let mut s: Cc<str> = "ab".into();
    let t = s.clone();
    Cc::make_mut(&mut s).make_ascii_uppercase();
    assert_eq!((&*s, &*t), ("AB", "ab"));
}

/// A `Clone` that panics on its `n`th call, with drop accounting.
struct Fragile {
    probe: Probe,
    fail_at: &'static AtomicUsize,
}
arcycle::leaf!(Fragile);

impl Clone for Fragile {
    fn clone(&self) -> Fragile {
        self.probe.check();
        if self.fail_at.fetch_sub(1, SeqCst) == 1 {
            panic!("clone fails");
        }
        Fragile {
            probe: Probe::new(self.probe_tally()),
            fail_at: self.fail_at,
        }
    }
}

impl Fragile {
    fn probe_tally(&self) -> &'static Tally {
        &FRAGILE
    }
}

static FRAGILE: Tally = Tally::new();

#[test]
fn panicking_clone_or_iterator_leaks_nothing_and_drops_nothing_twice() {
    let _s = serial();
    static FAIL_AT: AtomicUsize = AtomicUsize::new(0);
    FRAGILE.track(64);
    let items: Vec<Fragile> = (0..5)
        .map(|_| Fragile {
            probe: Probe::new(&FRAGILE),
            fail_at: &FAIL_AT,
        })
        .collect();
    // The third clone panics: two clones are dropped, the allocation freed.
    FAIL_AT.store(3, SeqCst);
    let r = catch_unwind(AssertUnwindSafe(|| Cc::<[Fragile]>::from(&items[..])));
    assert!(r.is_err());
    assert_eq!(FRAGILE.live(), 5, "only the originals remain");
    // A panicking iterator.
    let r = catch_unwind(AssertUnwindSafe(|| {
        (0..5)
            .map(|i| {
                if i == 3 {
                    panic!("iterator fails");
                }
                Probe::new(&FRAGILE)
            })
            .collect::<Cc<[Probe]>>()
    }));
    assert!(r.is_err());
    assert_eq!(FRAGILE.live(), 5);
    FAIL_AT.store(usize::MAX, SeqCst);
    let ok = Cc::<[Fragile]>::from(&items[..]);
    assert_eq!(FRAGILE.live(), 10);
    drop((ok, items));
    FRAGILE.assert_clean();
}

#[test]
fn dyn_values_through_coerce_box_and_downcast() {
    let _s = serial();
    static T: Tally = Tally::new();
    let a = dyn_node(&T);
    let b: Cc<dyn Obj> = Cc::from(Box::new(DynNode {
        probe: Probe::new(&T),
        next: Mutex::new(None),
    }) as Box<dyn Obj>);
    a.check();
    b.check();
    assert!(!Cc::is_dead(&a) && Cc::try_deref(&b).is_some());
    // Supertrait upcast of a `dyn` handle, and downcasting through `Any`.
    let any: Cc<dyn Any + Send + Sync> = arcycle::coerce!(Cc::new(5u64));
    let any = any.downcast::<u32>().unwrap_err();
    assert_eq!(*any.downcast::<u64>().unwrap(), 5);
    // Raw round trips keep the metadata.
    let id = a.id();
    let raw = Cc::into_raw(a);
    let a = unsafe { Cc::from_raw(raw) };
    assert_eq!(a.id(), id);
    let w = Cc::downgrade(&a);
    let w2: Weak<dyn Obj> = unsafe { Weak::from_raw(w.clone().into_raw()) };
    assert!(Cc::ptr_eq(&w2.upgrade().unwrap(), &a));
    let mut unique = dyn_pair(&T);
    assert!(Cc::get_mut(&mut unique).is_some());
    drop((a, b, unique, w, w2));
    T.assert_clean();
}

#[test]
fn ring_of_dyn_edges_is_collected() {
    let _s = serial();
    static T: Tally = Tally::new();
    collect();
    for n in [1usize, 2, 10, 100] {
        let nodes: Vec<Cc<dyn Obj>> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    dyn_node(&T)
                } else {
                    dyn_pair(&T)
                }
            })
            .collect();
        for i in 0..n {
            nodes[i].point_to(Some(nodes[(i + 1) % n].clone()));
        }
        drop(nodes);
        assert_eq!(T.live(), n, "a cycle leaks under counting alone");
        collect();
        assert_eq!(T.live(), 0, "ring of {n} dyn nodes collected");
    }
    T.assert_clean();
}

#[test]
fn cycle_through_boxed_dyn_is_collected() {
    // `From<Box<dyn Obj>>` does not know the concrete type: the allocation
    // describes itself, and is traced through the `dyn` vtable.
    let _s = serial();
    static T: Tally = Tally::new();
    collect();
    let boxed: Box<dyn Obj> = Box::new(DynPair {
        probe: Probe::new(&T),
        edges: Mutex::new(Vec::new()),
    });
    let a: Cc<dyn Obj> = Cc::from(boxed);
    let b = dyn_node(&T);
    a.point_to(Some(b.clone()));
    b.point_to(Some(a.clone()));
    drop((a, b));
    assert_eq!(T.live(), 2);
    collect();
    T.assert_clean();
}

#[derive(Trace)]
struct Holder {
    probe: Probe,
    items: Mutex<Option<Cc<[Cc<Holder>]>>>,
}

#[test]
fn cycle_through_a_slice_of_handles_is_collected() {
    let _s = serial();
    static T: Tally = Tally::new();
    collect();
    let a = Cc::new(Holder {
        probe: Probe::new(&T),
        items: Mutex::new(None),
    });
    let b = Cc::new(Holder {
        probe: Probe::new(&T),
        items: Mutex::new(None),
    });
    let slice: Cc<[Cc<Holder>]> = vec![a.clone(), b.clone(), a.clone()].into();
    *a.items.lock().unwrap() = Some(slice.clone());
    *b.items.lock().unwrap() = Some(slice);
    drop((a, b));
    assert_eq!(T.live(), 2);
    collect();
    T.assert_clean();
}

/// Peers that look at each other in their destructors, held as `dyn`.
struct Peeker {
    peer: Mutex<Option<Cc<dyn Peek>>>,
    saw: &'static AtomicUsize,
}

trait Peek: Trace + Any + Send + Sync {
    fn hello(&self) -> usize;
}

impl Peek for Peeker {
    fn hello(&self) -> usize {
        1
    }
}

// SAFETY: reports the one handle, read under the lock (try-locked).
unsafe impl Trace for Peeker {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self.peer.trace(tracer);
    }
}

impl Drop for Peeker {
    fn drop(&mut self) {
        if let Some(p) = self.peer.get_mut().unwrap().as_ref() {
            // The peer may already be gone: `try_deref` says so instead of
            // panicking.
            if let Some(v) = Cc::try_deref(p) {
                self.saw.fetch_add(v.hello(), SeqCst);
            } else {
                assert!(Cc::is_dead(p));
            }
        }
    }
}

#[test]
fn destructors_of_a_dyn_cycle_see_dead_peers_safely() {
    let _s = serial();
    static SAW: AtomicUsize = AtomicUsize::new(0);
    collect();
    let mk = || -> Cc<dyn Peek> {
        arcycle::coerce!(Cc::new(Peeker {
            peer: Mutex::new(None),
            saw: &SAW,
        }))
    };
    let (a, b) = (mk(), mk());
    let set = |x: &Cc<dyn Peek>, y: &Cc<dyn Peek>| {
        let any: Cc<dyn Any + Send + Sync> = arcycle::coerce!(x.clone());
        drop(any);
        // Reach the concrete field through a downcast of a fresh handle.
        let p: Cc<dyn Any + Send + Sync> = arcycle::coerce!(x.clone());
        let p = p.downcast::<Peeker>().ok().unwrap();
        *p.peer.lock().unwrap() = Some(y.clone());
    };
    set(&a, &b);
    set(&b, &a);
    drop((a, b));
    assert!(collect() >= 2);
    // One destructor ran first and saw its live peer; the other saw a dead
    // one (or both saw live ones if the collector drops values first).
    assert!(SAW.load(SeqCst) <= 2);
}

#[test]
fn dyn_handles_moved_between_nodes_while_collecting() {
    let _s = serial();
    static T: Tally = Tally::new();
    let _settings = Settings::save();
    collect();
    const THREADS: usize = 4;
    const NODES: usize = 16;
    let shared: Vec<Cc<dyn Obj>> = (0..NODES)
        .map(|i| {
            if i % 2 == 0 {
                dyn_node(&T)
            } else {
                dyn_pair(&T)
            }
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(SeqCst) {
                collect();
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || {
                    let mut rng = Rng::new(t as u64 + 1);
                    for _ in 0..3000 {
                        let from = &shared[rng.below(NODES)];
                        let to = shared[rng.below(NODES)].clone();
                        from.check();
                        to.check();
                        // Move a handle into a node (dropping the old one),
                        // or cut the edge, or build and drop garbage.
                        match rng.below(3) {
                            0 => from.point_to(Some(to)),
                            1 => from.point_to(None),
                            _ => {
                                let g = dyn_node(&T);
                                g.point_to(Some(to));
                                let h = dyn_pair(&T);
                                h.point_to(Some(g.clone()));
                                g.point_to(Some(h));
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
    });
    for n in &shared {
        n.check();
        n.point_to(None);
    }
    drop(shared);
    collect();
    T.assert_clean();
}

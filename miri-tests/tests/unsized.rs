//! Unsized values under Miri (leak checker on): every allocation layout
//! (`str` and leaf slices exactly `Arc`'s; slices of handles and boxed
//! `dyn` values with their self-describing prefix; `Path` and `CStr` moved
//! out of a `Box`), made, read, collected and freed; raw pointers; `dyn`
//! cycles.

use arcycle::{collect, Cc, Trace};
use miri_tests::*;
use std::sync::Mutex;

trait Obj: Trace + Send + Sync {
    fn slot(&self) -> &Mutex<Option<Cc<dyn Obj>>>;
}

#[derive(Trace)]
struct A {
    #[trace(skip)]
    probe: Probe,
    next: Mutex<Option<Cc<dyn Obj>>>,
}

#[derive(Trace)]
struct B {
    #[trace(skip)]
    big: [u64; 4],
    next: Mutex<Option<Cc<dyn Obj>>>,
    #[trace(skip)]
    probe: Probe,
}

impl Obj for A {
    fn slot(&self) -> &Mutex<Option<Cc<dyn Obj>>> {
        &self.next
    }
}
impl Obj for B {
    fn slot(&self) -> &Mutex<Option<Cc<dyn Obj>>> {
        &self.next
    }
}
impl Drop for A {
    fn drop(&mut self) {
        self.probe.hit();
    }
}
impl Drop for B {
    fn drop(&mut self) {
        self.probe.hit();
    }
}

#[test]
fn str_and_leaf_slices() {
    let _g = serialize();
    let s: Cc<str> = "hello".into();
    let t = s.clone();
    let bytes: Cc<[u8]> = t.into();
    assert_eq!(&*bytes, b"hello");
    let w = Cc::downgrade(&s);
    drop((s, bytes));
    assert!(w.upgrade().is_none());
    drop(w);
    let v: Cc<[String]> = vec!["a".to_string(), "b".to_string()].into();
    let c: Cc<[String]> = (&v[..]).into();
    assert_eq!(c[1], "b");
    let e: Cc<[u64]> = (0..3).collect();
    assert_eq!(e[2], 2);
    // `std`'s other unsized leaves, moved out of a `Box` into a leaf box;
    // a `Weak` frees the last one after the value is gone.
    let p: Cc<std::path::Path> = std::path::PathBuf::from("/a/b").into();
    let c: Cc<std::ffi::CStr> = c"cstr".into();
    assert_eq!((p.to_str(), c.to_bytes()), (Some("/a/b"), &b"cstr"[..]));
    let wp = Cc::downgrade(&p);
    drop((p, c));
    assert!(wp.upgrade().is_none());
    // An uninitialised slice written in place: its `String`s are dropped
    // through the `[String]` handle (Miri's leak checker sees each).
    let mut u = Cc::<[String]>::new_uninit_slice(2);
    for slot in Cc::get_mut(&mut u).unwrap() {
        slot.write("x".repeat(3));
    }
    // SAFETY: both elements were written.
    let u = unsafe { u.assume_init() };
    assert_eq!(u[1], "xxx");
}

#[test]
fn cycle_through_a_slice_of_handles() {
    let _g = serialize();
    let p = Probe::new();
    let a = node(0, &p);
    let b = node(1, &p);
    let slice: Cc<[Cc<Node>]> = vec![a.clone(), b.clone()].into();
    let holder = Cc::new(Mutex::new(Some(slice.clone())));
    // The slice is reachable from outside only through `holder`, and it
    // reaches `a` and `b`, which point back to each other.
    a.link(&b);
    b.link(&a);
    drop((a, b, slice));
    assert_eq!(collect(), 0, "the holder keeps the slice and the nodes");
    *holder.lock().unwrap() = None;
    assert!(collect() >= 2);
    assert_eq!(p.drops(), 2);
}

#[test]
fn dyn_cycle_coerced_and_boxed() {
    let _g = serialize();
    let p = Probe::new();
    let a: Cc<dyn Obj> = arcycle::coerce!(Cc::new(A {
        probe: p.clone(),
        next: Mutex::new(None),
    }));
    let boxed: Box<dyn Obj> = Box::new(B {
        big: [7; 4],
        next: Mutex::new(None),
        probe: p.clone(),
    });
    let b: Cc<dyn Obj> = Cc::from(boxed);
    *a.slot().lock().unwrap() = Some(b.clone());
    *b.slot().lock().unwrap() = Some(a.clone());
    // Raw round trips keep the vtable.
    let raw = Cc::into_raw(b);
    let b = unsafe { Cc::from_raw(raw) };
    assert!(b.slot().lock().unwrap().is_some());
    let w = Cc::downgrade(&b);
    drop((a, b));
    assert_eq!(p.drops(), 0);
    assert_eq!(collect(), 2);
    assert_eq!(p.drops(), 2);
    assert!(w.upgrade().is_none());
}

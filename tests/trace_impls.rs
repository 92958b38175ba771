//! The standard library's `Trace` impls added for wrappers, pointers and
//! leaves: their `may_have_edges()` answers, and that the non-leaf ones
//! report the edges they own (checked with `debug::TraceTest`).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::ffi::{CStr, CString, OsStr};
use std::mem::ManuallyDrop;
use std::num::{NonZero, Wrapping};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Barrier, Condvar, LazyLock, Mutex, Once};

use arcycle::debug::TraceTest;
use arcycle::{Cc, Trace};

/// A type with edges, so that an edge to it is reported (an edge to a leaf
/// is not: the collector never needs to visit a leaf).
#[derive(Trace, Default)]
struct Node {
    next: Mutex<Option<Cc<Node>>>,
}

fn edges<T: Trace>() -> bool {
    T::may_have_edges()
}

/// `value` reports exactly one edge, to `target`.
fn reports_one<T: Trace + ?Sized>(value: &T, target: &Cc<Node>) {
    let report = TraceTest::new(value).expect(target).run().unwrap();
    assert_eq!(report.edges.len(), 1);
    assert!(report.edges[0].is(target));
}

/// `value` reports nothing.
fn reports_none<T: Trace + ?Sized>(value: &T) {
    let report = TraceTest::new(value).run().unwrap();
    assert!(report.edges.is_empty());
}

#[test]
fn leaves() {
    assert!(!edges::<&'static str>());
    assert!(!edges::<&'static Node>());
    assert!(!edges::<&'static [Cc<Node>]>());
    assert!(!edges::<ManuallyDrop<Cc<Node>>>());
    assert!(!edges::<LazyLock<Cc<Node>>>());
    assert!(!edges::<Sender<Cc<Node>>>());
    assert!(!edges::<SyncSender<Cc<Node>>>());
    assert!(!edges::<Receiver<Cc<Node>>>());
    assert!(!edges::<Condvar>());
    assert!(!edges::<Barrier>());
    assert!(!edges::<Once>());
    assert!(!edges::<CString>());
    assert!(!edges::<Box<CStr>>());
    assert!(!edges::<Box<OsStr>>());
    assert!(!edges::<Box<Path>>());
    assert!(!edges::<NonZero<u8>>());
    assert!(!edges::<NonZero<i8>>());
    assert!(!edges::<NonZero<i16>>());
    assert!(!edges::<NonZero<u128>>());
    assert!(!edges::<NonZero<i128>>());
    assert!(!edges::<NonZero<isize>>());
    assert!(!edges::<fn()>());
    assert!(!edges::<fn(Cc<Node>) -> Cc<Node>>());
    assert!(!edges::<unsafe fn(u8, u16, u32) -> u64>());
    assert!(!edges::<extern "C" fn(i32) -> i32>());
    assert!(!edges::<
        unsafe extern "C" fn(u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8),
    >());
}

#[test]
fn leaves_report_nothing_even_when_they_hold_handles() {
    let target = Cc::new(Node::default());
    let leaked: &'static Cc<Node> = Box::leak(Box::new(target.clone()));
    reports_none(&leaked);

    let mut manual = ManuallyDrop::new(target.clone());
    reports_none(&manual);
    // SAFETY: dropped once, and not used again.
    unsafe { ManuallyDrop::drop(&mut manual) };

    let lazy = LazyLock::new(|| Cc::new(Node::default()));
    let _ = &*lazy; // initialised: still not traced (see the impl)
    reports_none(&lazy);

    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(target.clone()).unwrap();
    reports_none(&tx);
    reports_none(&rx);
    drop(rx.recv().unwrap());

    reports_none(c"leaf");
    let f: fn(u8) -> u8 = |x| x;
    reports_none(&f);
    assert_eq!(f(3), 3);
}

#[test]
fn wrappers_forward_the_answer() {
    assert!(edges::<AssertUnwindSafe<Cc<Node>>>());
    assert!(!edges::<AssertUnwindSafe<u8>>());
    assert!(edges::<Wrapping<Cc<Node>>>());
    assert!(!edges::<Wrapping<u32>>());
    assert!(edges::<Reverse<Cc<Node>>>());
    assert!(!edges::<Reverse<String>>());
    assert!(edges::<Cow<'static, [Cc<Node>]>>());
    assert!(!edges::<Cow<'static, str>>());
    assert!(edges::<Pin<Box<Node>>>());
    assert!(edges::<Pin<Cc<Node>>>());
    assert!(!edges::<Pin<Box<u8>>>());
    assert!(!edges::<Pin<&'static Node>>());
}

#[test]
fn wrappers_report_their_edges() {
    let target = Cc::new(Node::default());
    reports_one(&AssertUnwindSafe(target.clone()), &target);
    reports_one(&Wrapping(target.clone()), &target);
    reports_one(&Reverse(target.clone()), &target);

    let owned: Cow<'static, [Cc<Node>]> = Cow::Owned(vec![target.clone()]);
    reports_one(&owned, &target);
    let leaked: &'static [Cc<Node>] = Box::leak(vec![target.clone()].into_boxed_slice());
    let borrowed: Cow<'static, [Cc<Node>]> = Cow::Borrowed(leaked);
    reports_none(&borrowed);

    let pinned_cc: Pin<Cc<Node>> = pin_cc(target.clone());
    reports_one(&pinned_cc, &target);
    let pinned_box = Box::pin(Node {
        next: Mutex::new(Some(target.clone())),
    });
    reports_one(&pinned_box, &target);
    let pinned_ref: Pin<&'static Node> = Pin::new(Box::leak(Box::new(Node {
        next: Mutex::new(Some(target.clone())),
    })));
    reports_none(&pinned_ref);
}

/// `Pin::new` needs `Node: Unpin`, which it is.
fn pin_cc(cc: Cc<Node>) -> Pin<Cc<Node>> {
    Pin::new(cc)
}

#[test]
fn a_cycle_through_a_wrapper_is_collected() {
    type Link = Reverse<Wrapping<AssertUnwindSafe<Cc<Wrapped>>>>;
    #[derive(Trace)]
    struct Wrapped {
        next: Mutex<Option<Link>>,
    }
    let a = Cc::new(Wrapped {
        next: Mutex::new(None),
    });
    let b = Cc::new(Wrapped {
        next: Mutex::new(Some(Reverse(Wrapping(AssertUnwindSafe(a.clone()))))),
    });
    *a.next.lock().unwrap() = Some(Reverse(Wrapping(AssertUnwindSafe(b.clone()))));
    let weak = Cc::downgrade(&a);
    drop((a, b));
    let _ = arcycle::collect();
    assert!(weak.upgrade().is_none(), "the cycle was not freed");
}

//! Single-threaded core behaviour: cycles, weak handles, unique access.
//! Run under Miri with its leak checker on (`scripts/miri.sh`).

use arcycle::{collect, Cc, Trace, Weak};
use miri_tests::*;
use std::sync::Mutex;

#[test]
fn self_loop() {
    let _g = serialize();
    let p = Probe::new();
    let a = node(0, &p);
    a.link(&a);
    assert_eq!(Cc::strong_count(&a), 2);
    drop(a);
    assert_eq!(p.drops(), 0);
    assert_eq!(collect(), 1);
    assert_eq!(p.drops(), 1);
}

#[test]
fn two_cycle_and_ring() {
    let _g = serialize();
    let p = Probe::new();
    let a = node(0, &p);
    let b = node(1, &p);
    a.link(&b);
    b.link(&a);
    drop((a, b));
    assert_eq!(collect(), 2);
    assert_eq!(p.drops(), 2);

    let n = size(5, 300);
    let r = ring(n, &p);
    r[n / 2].check();
    drop(r);
    assert_eq!(p.drops(), 2);
    assert_eq!(collect(), n);
    assert_eq!(p.drops(), 2 + n);
}

#[test]
fn live_cycle_survives_then_goes() {
    let _g = serialize();
    let p = Probe::new();
    let r = ring(3, &p);
    let keep = r[1].clone();
    drop(r);
    assert_eq!(collect(), 0);
    keep.check();
    keep.next.lock().unwrap()[0].check();
    drop(keep);
    assert_eq!(collect(), 3);
    assert_eq!(p.drops(), 3);
}

#[test]
fn acyclic_tail_hanging_off_a_cycle() {
    let _g = serialize();
    let p = Probe::new();
    let r = ring(2, &p);
    let c = node(10, &p);
    let d = node(11, &p);
    r[0].link(&c);
    c.link(&d);
    drop((c, d));
    drop(r);
    assert_eq!(collect(), 4);
    assert_eq!(p.drops(), 4);
}

#[test]
fn acyclic_garbage_goes_at_once_and_deep_chains_do_not_recurse() {
    let _g = serialize();
    let p = Probe::new();
    let n = size(40, 100_000);
    let mut head = node(0, &p);
    for i in 1..n {
        let next = node(i, &p);
        next.link(&head);
        head = next;
    }
    drop(head);
    assert_eq!(
        p.drops(),
        n,
        "acyclic garbage is destroyed by the last drop"
    );
    assert_eq!(collect(), 0);
}

#[test]
fn weak_to_collected_cycle() {
    let _g = serialize();
    let p = Probe::new();
    let r = ring(2, &p);
    let w: Weak<Node> = Cc::downgrade(&r[0]);
    let w2 = w.clone();
    assert_eq!(w.strong_count(), 2);
    assert_eq!(w.weak_count(), 2);
    drop(r);
    assert_eq!(collect(), 2);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    assert_eq!(w.weak_count(), 0);
    drop(w);
    drop(w2); // frees the allocation (Miri checks it is not leaked)
    assert!(Weak::<Node>::new().upgrade().is_none());
}

#[test]
fn weak_upgrade_rescues_unreachable_cycle_before_collection() {
    let _g = serialize();
    let p = Probe::new();
    let r = ring(3, &p);
    let w = Cc::downgrade(&r[2]);
    drop(r);
    let back = w.upgrade().expect("not collected yet");
    back.check();
    assert_eq!(collect(), 0, "reachable again through the upgraded handle");
    drop(back);
    assert_eq!(collect(), 3);
    assert!(w.upgrade().is_none());
    assert_eq!(p.drops(), 3);
}

#[test]
fn get_mut_try_unwrap_into_inner_make_mut() {
    let _g = serialize();
    let p = Probe::new();
    let mut a = node(0, &p);
    // A pending root-buffer entry (drop of a second handle) must not stop
    // get_mut, and the next collection must not read the value under it.
    drop(a.clone());
    {
        let v = Cc::get_mut(&mut a).expect("unique");
        v.next.get_mut().unwrap().clear();
    }
    assert_eq!(collect(), 0);
    let w = Cc::downgrade(&a);
    assert!(Cc::get_mut(&mut a).is_none(), "a Weak exists");
    drop(w);
    let b = a.clone();
    let a = match Cc::try_unwrap(a) {
        Ok(_) => panic!("try_unwrap of a shared handle must fail"),
        Err(a) => a,
    };
    drop(b);
    let v = Cc::try_unwrap(a).ok().expect("unique again");
    v.check();
    drop(v);
    assert_eq!(p.drops(), 1);

    let x = Cc::new(String::from("x"));
    let y = x.clone();
    assert_eq!(Cc::into_inner(x), None);
    assert_eq!(Cc::into_inner(y).as_deref(), Some("x"));

    let mut m = Cc::new(5u32);
    let m2 = m.clone();
    *Cc::make_mut(&mut m) += 1;
    assert_eq!((*m, *m2), (6, 5));
}

#[derive(Trace)]
struct SelfRef {
    me: Weak<SelfRef>,
    other: Mutex<Option<Cc<SelfRef>>>,
}

#[test]
fn new_cyclic_and_its_panic() {
    let _g = serialize();
    let a = Cc::new_cyclic(|w| {
        assert!(w.upgrade().is_none());
        SelfRef {
            me: w.clone(),
            other: Mutex::new(None),
        }
    });
    assert!(Cc::ptr_eq(&a.me.upgrade().unwrap(), &a));
    *a.other.lock().unwrap() = Some(a.clone());
    drop(a);
    assert_eq!(collect(), 1);

    // A panicking constructor leaks nothing (Miri's leak checker).
    expect_panic("boom", || {
        Cc::<SelfRef>::new_cyclic(|_| panic!("boom"));
    });
}

#[test]
fn leaves_are_arcs() {
    let _g = serialize();
    let before = arcycle::stats().roots_buffered;
    let s = Cc::new(String::from("leaf"));
    let t = s.clone();
    drop(s);
    assert_eq!(
        arcycle::stats().roots_buffered,
        before,
        "a leaf is never buffered"
    );
    assert_eq!(*t, "leaf");
    assert_eq!(Cc::strong_count(&t), 1);
}

#[test]
fn moving_edges_between_nodes() {
    let _g = serialize();
    let p = Probe::new();
    let a = node(0, &p);
    let b = node(1, &p);
    let c = node(2, &p);
    a.link(&b);
    b.link(&a);
    // Move b's edge to a into c, then drop the outside handles: c keeps
    // a -> b -> (nothing) alive.
    let moved = b.next.lock().unwrap().pop().unwrap();
    c.next.lock().unwrap().push(moved);
    drop((a, b));
    assert_eq!(collect(), 0);
    c.next.lock().unwrap()[0].check();
    drop(c);
    assert_eq!(p.drops(), 3, "all acyclic now");
}

//! Regression test for a bug found by the verification work of issue #3
//! (commit 2946945: every busy node is re-buffered, not only busy roots; see VERIFICATION.md, "Bugs found"). One binary per bug, so that a
//! regression that corrupts the process-wide collector cannot fail other
//! tests.
//!
//! The bug was found with a panicking `Trace` impl as the cause of
//! "busy"; since issue 7 such an object is quarantined instead (never
//! tried again), so a lock held during the collection makes the member
//! busy here.

use arcycle::collect;
use miri_tests::chaos::*;
use miri_tests::*;

#[test]
fn busy_non_root_member_is_tried_again() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = Probe::new();
    // r -> b -> r, where b's only handle was moved into r's field: b is
    // never buffered, r is the only root.
    let r = chaos(OnDrop::Nothing, &drops, &probe);
    let b = chaos(OnDrop::Nothing, &drops, &probe);
    *b.peer.lock().unwrap() = Some(r.clone());
    let b_value: *const Chaos = arcycle::Cc::as_ptr(&b);
    *r.peer.lock().unwrap() = Some(b);
    drop(r);
    {
        // SAFETY: b is alive: the cycle keeps it, and no collection can
        // free it while this lock makes it busy.
        let busy = unsafe { &*b_value }.peer.lock().unwrap();
        assert_eq!(collect(), 0, "a busy member keeps its cycle");
        drop(busy);
    }
    assert_eq!(drops.drops(), 0);
    // b's lock is free now; nothing else will ever touch the pair.
    assert_eq!(
        collect(),
        2,
        "the pair must be tried again: nothing else will buffer it"
    );
    assert_eq!(drops.drops(), 2);
}

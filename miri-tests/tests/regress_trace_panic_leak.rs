//! Regression test for a bug found by the verification work of issue #3
//! (commit 2946945: every busy node is re-buffered, not only busy roots; see VERIFICATION.md, "Bugs found"). One binary per bug, so that a
//! regression that corrupts the process-wide collector cannot fail other
//! tests.

use arcycle::collect;
use miri_tests::chaos::*;
use miri_tests::*;
use std::sync::atomic::Ordering::SeqCst;

#[test]
fn trace_panic_in_a_non_root_member_does_not_leak() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = Probe::new();
    // r -> b -> r, where b's only handle was moved into r's field: b is
    // never buffered, r is the only root.
    let r = chaos(OnDrop::Nothing, &drops, &probe);
    let b = chaos(OnDrop::Nothing, &drops, &probe);
    *b.peer.lock().unwrap() = Some(r.clone());
    b.trace_panics.store(1, SeqCst);
    *r.peer.lock().unwrap() = Some(b);
    drop(r);
    expect_panic("trace panicked on purpose", collect);
    assert_eq!(drops.drops(), 0);
    // b's trace works now; nothing else will ever touch the pair.
    assert_eq!(
        collect(),
        2,
        "the pair must be tried again: nothing else will buffer it"
    );
    assert_eq!(drops.drops(), 2);
}

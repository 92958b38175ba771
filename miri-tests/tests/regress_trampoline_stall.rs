//! Regression test for a bug found by the verification work of issue #3
//! (commit 2946945: the trampoline drain survives a panicking destructor; see VERIFICATION.md, "Bugs found"). One binary per bug, so that a
//! regression that corrupts the process-wide collector cannot fail other
//! tests.

use miri_tests::chaos::*;
use miri_tests::*;

#[test]
fn panicking_destructor_in_a_drop_chain_does_not_stall_later_drops() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = Probe::new();
    // a holds b and c; c's destructor panics. Dropping a destroys b and c
    // on this thread's trampoline, after a's destructor returned.
    let a = chaos(OnDrop::Nothing, &drops, &probe);
    let b = chaos(OnDrop::Nothing, &drops, &probe);
    let c = chaos(OnDrop::Panic, &drops, &probe);
    *c.peer.lock().unwrap() = Some(b);
    *a.peer.lock().unwrap() = Some(c);
    expect_panic("drop panicked on purpose", move || drop(a));
    let chain = drops.drops();
    // And the next acyclic drop on this thread destroys at once.
    let later = Probe::new();
    drop(node(0, &later));
    assert_eq!(
        (chain, later.drops()),
        (3, 1),
        "(values of the chain dropped, later drop done): b must still be destroyed after c's \
         destructor panicked, and a later drop on this thread must not be left queued"
    );
}

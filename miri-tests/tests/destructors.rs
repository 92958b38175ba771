//! Destructor and `Trace` edge cases of collected objects. Run under Miri
//! with its leak checker on (`scripts/miri.sh`).

use arcycle::{collect, Cc};
use miri_tests::chaos::*;
use miri_tests::*;
use std::sync::atomic::Ordering::SeqCst;

#[test]
fn destructor_dereferencing_a_collected_peer_panics_clearly() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = garbage(pair(OnDrop::DerefPeer, OnDrop::DerefPeer, &probe));
    // Whichever member goes second meets a destroyed peer.
    expect_panic("already destroyed by the cycle collector", collect);
    assert_eq!(drops.drops(), 2, "the panic did not stop the rest");
    assert_eq!(collect(), 0);
}

#[test]
fn destructor_try_deref_and_upgrade_of_peer() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = garbage(pair(OnDrop::TryDerefPeer, OnDrop::UpgradePeer, &probe));
    assert_eq!(collect(), 2);
    assert_eq!(drops.drops(), 2);
}

#[test]
fn destructor_stashing_a_collected_peer_keeps_only_the_allocation() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = garbage(pair(OnDrop::StashPeer, OnDrop::StashPeer, &probe));
    assert_eq!(collect(), 2);
    assert_eq!(drops.drops(), 2);
    let stashed = std::mem::take(&mut *STASH.lock().unwrap());
    assert_eq!(stashed.len(), 2);
    for s in &stashed {
        assert!(Cc::is_dead(s));
        assert!(Cc::try_deref(s).is_none());
        let again = s.clone();
        drop(again);
    }
    expect_panic("already destroyed by the cycle collector", || {
        let _ = stashed[0].trace_panics.load(SeqCst);
    });
    drop(stashed); // the last handles free the allocations (Miri: no leak)
    assert_eq!(drops.drops(), 2);
}

#[test]
fn destructor_panicking_is_resumed_after_the_rest_is_freed() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = garbage(pair(OnDrop::Panic, OnDrop::Nothing, &probe));
    let r = ring(2, &probe);
    drop(r);
    expect_panic("drop panicked on purpose", collect);
    assert_eq!(drops.drops(), 2);
    assert_eq!(
        probe.drops(),
        2,
        "other garbage of the same collection is freed too"
    );
}

#[test]
fn destructor_calling_collect_and_making_new_garbage() {
    let _g = serialize();
    let probe = Probe::new();
    let drops = garbage(pair(OnDrop::Collect, OnDrop::NewCycle, &probe));
    assert!(collect() >= 2);
    assert_eq!(drops.drops(), 2);
    // The cycle made by the destructor is garbage for the next collection.
    assert_eq!(collect(), 2);
    assert_eq!(probe.drops(), 2);
}

/// Break a quarantined pair by hand (as a program that knows about it
/// can): take the edge out of the member `w` points to. A later
/// collection forgets the quarantined object (Miri's leak check).
fn release_quarantined_pair(w: &arcycle::Weak<Chaos>) {
    let a = w.upgrade().expect("the quarantined pair is alive");
    let peer = a.peer.lock().unwrap().take();
    drop(peer);
    drop(a);
}

#[test]
fn trace_panicking_is_reported_once_then_quarantined() {
    let _g = serialize();
    let probe = Probe::new();
    let p = pair(OnDrop::Nothing, OnDrop::Nothing, &probe);
    p.a.trace_panics.store(1, SeqCst);
    let wa = Cc::downgrade(&p.a);
    let drops = garbage(p);
    expect_panic("trace panicked on purpose", collect);
    assert_eq!(drops.drops(), 0, "an object whose trace failed is kept");
    assert_eq!(
        collect(),
        0,
        "and quarantined: not traced, not reported again"
    );
    assert_eq!(arcycle::stats().quarantined, 1);
    release_quarantined_pair(&wa);
    assert_eq!(drops.drops(), 2, "freed once the program breaks the cycle");
    collect();
    assert_eq!(arcycle::stats().quarantined, 0);
}

#[test]
fn collect_from_inside_trace_panics_clearly() {
    let _g = serialize();
    let probe = Probe::new();
    let p = pair(OnDrop::Nothing, OnDrop::Nothing, &probe);
    p.b.trace_collects.store(1, SeqCst);
    let wb = Cc::downgrade(&p.b);
    let drops = garbage(p);
    expect_panic("called from inside a Trace impl", collect);
    // The panicking impl quarantined its object; break the pair by hand.
    assert_eq!(collect(), 0);
    release_quarantined_pair(&wb);
    assert_eq!(drops.drops(), 2);
    collect();
}

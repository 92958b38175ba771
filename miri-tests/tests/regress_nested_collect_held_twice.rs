//! Regression test for a bug found by the verification work of issue #3
//! (commit 2946945: the held-twice assertion comes after the DEAD check; see VERIFICATION.md, "Bugs found"). One binary per bug, so that a
//! regression that corrupts the process-wide collector cannot fail other
//! tests.

use arcycle::collect;
use miri_tests::chaos::*;
use miri_tests::*;

#[test]
fn nested_collection_meeting_a_collected_peer() {
    let _g = serialize();
    let probe = Probe::new();
    // A live node that destructors stash collected peers into, with a
    // pending root-buffer entry so that a nested collection traces it.
    let live = chaos(OnDrop::Nothing, &Probe::new(), &probe);
    drop(live.clone());
    LIVE.lock().unwrap().replace(live.clone());
    // Both members stash their peer (dead, still held by the outer
    // collection) into `live`, then collect: the nested collection traces
    // `live` and meets the dead peer.
    let drops = garbage(pair(
        OnDrop::StashInLiveThenCollect,
        OnDrop::StashInLiveThenCollect,
        &probe,
    ));
    // In a debug build, the nested collection's `try_hold` meets the dead
    // peer (still held by the outer collection) and its "object held
    // twice" debug assertion fires inside the collector.
    assert_eq!(collect(), 2);
    assert_eq!(drops.drops(), 2);
    LIVE.lock().unwrap().take();
    drop(live);
    assert_eq!(collect(), 0);
}

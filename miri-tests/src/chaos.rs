//! `Chaos`: a cycle-capable value whose destructor and `Trace` impl
//! misbehave on request (shared by the destructor tests and the
//! known-bug reproductions).

use crate::{ring, Probe};
use arcycle::{collect, Cc, Trace, Tracer, Weak};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};

/// What a `Chaos` value does when it is dropped.
#[derive(Clone, Copy, PartialEq)]
pub enum OnDrop {
    Nothing,
    DerefPeer,
    TryDerefPeer,
    StashPeer,
    UpgradePeer,
    Panic,
    Collect,
    NewCycle,
    StashInLiveThenCollect,
}

pub struct Chaos {
    pub on_drop: OnDrop,
    /// `Trace` panics while this is above zero (decremented per trace).
    pub trace_panics: AtomicUsize,
    /// `Trace` calls `collect()` while this is above zero.
    pub trace_collects: AtomicUsize,
    pub peer: Mutex<Option<Cc<Chaos>>>,
    pub weak_peer: OnceLock<Weak<Chaos>>,
    pub probe: Probe,
    pub drops: Probe,
}

pub static STASH: Mutex<Vec<Cc<Chaos>>> = Mutex::new(Vec::new());
/// A live node for `StashInLiveThenCollect`.
pub static LIVE: Mutex<Option<Cc<Chaos>>> = Mutex::new(None);

// SAFETY: reports the one handle in `peer` through `Mutex`'s impl; panicking
// or calling `collect()` (which panics inside a trace) reports nothing more.
unsafe impl Trace for Chaos {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if self.trace_panics.load(SeqCst) > 0 {
            self.trace_panics.fetch_sub(1, SeqCst);
            panic!("trace panicked on purpose");
        }
        if self.trace_collects.load(SeqCst) > 0 {
            self.trace_collects.fetch_sub(1, SeqCst);
            collect();
        }
        self.peer.trace(tracer);
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        self.drops.hit();
        let peer = self.peer.get_mut().unwrap().take();
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::DerefPeer => {
                if let Some(p) = &peer {
                    // Panics if the collector destroyed the peer first.
                    let _ = p.trace_panics.load(SeqCst);
                }
            }
            OnDrop::TryDerefPeer => {
                if let Some(p) = &peer {
                    if let Some(v) = Cc::try_deref(p) {
                        let _ = v.on_drop == OnDrop::Nothing;
                    } else {
                        assert!(Cc::is_dead(p));
                    }
                }
            }
            OnDrop::StashPeer => {
                if let Some(p) = &peer {
                    STASH.lock().unwrap().push(p.clone());
                }
            }
            OnDrop::UpgradePeer => {
                if let Some(w) = self.weak_peer.get() {
                    // Either the peer is alive (not yet destroyed) or None;
                    // never a handle to a destroyed value.
                    if let Some(p) = w.upgrade() {
                        assert!(!Cc::is_dead(&p));
                    }
                }
            }
            OnDrop::Panic => panic!("drop panicked on purpose"),
            OnDrop::Collect => {
                let p = Probe::new();
                let r = ring(2, &p);
                drop(r);
                assert!(collect() >= 2, "a nested collection from a destructor");
                assert_eq!(p.drops(), 2);
            }
            OnDrop::StashInLiveThenCollect => {
                if let (Some(p), Some(live)) = (&peer, LIVE.lock().unwrap().as_ref()) {
                    *live.peer.lock().unwrap() = Some(p.clone());
                    drop(live.clone()); // buffer `live` for the nested collection
                }
                collect();
            }
            OnDrop::NewCycle => {
                let r = ring(2, &self.probe);
                drop(r); // garbage for the next collection
            }
        }
        drop(peer);
    }
}

pub struct Pair {
    pub a: Cc<Chaos>,
    pub b: Cc<Chaos>,
    pub drops: Probe,
}

pub fn chaos(on_drop: OnDrop, drops: &Probe, probe: &Probe) -> Cc<Chaos> {
    Cc::new(Chaos {
        on_drop,
        trace_panics: AtomicUsize::new(0),
        trace_collects: AtomicUsize::new(0),
        peer: Mutex::new(None),
        weak_peer: OnceLock::new(),
        probe: probe.clone(),
        drops: drops.clone(),
    })
}

/// A two-cycle whose members do `a` and `b` on drop.
pub fn pair(a: OnDrop, b: OnDrop, probe: &Probe) -> Pair {
    let drops = Probe::new();
    let x = chaos(a, &drops, probe);
    let y = chaos(b, &drops, probe);
    *x.peer.lock().unwrap() = Some(y.clone());
    *y.peer.lock().unwrap() = Some(x.clone());
    assert!(x.weak_peer.set(Cc::downgrade(&y)).is_ok());
    assert!(y.weak_peer.set(Cc::downgrade(&x)).is_ok());
    Pair { a: x, b: y, drops }
}

pub fn garbage(p: Pair) -> Probe {
    let Pair { a, b, drops } = p;
    drop((a, b));
    drops
}

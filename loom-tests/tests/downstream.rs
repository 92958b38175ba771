//! What a downstream crate's loom model of its own code looks like: it
//! uses only arcycle's public API, plain `loom::model`, and loom's own
//! primitives for its shared state. Built with
//!
//! ```text
//! RUSTFLAGS="--cfg arcycle_loom" cargo test --release   # and arcycle's `loom` feature
//! ```
//!
//! under which `Cc`, `Weak` and the collector run on loom's atomics, cells,
//! locks and thread-locals, with their global state (root buffer,
//! collector control) made fresh for every execution.
#![cfg(arcycle_loom)]

use arcycle::{collect, Cc, Trace, Weak};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A user's type: sessions that point at each other (a cycle), counted by
/// a shared tally when they are destroyed.
#[derive(Trace)]
struct Session {
    peer: Mutex<Option<Cc<Session>>>,
    #[trace(skip)]
    closed: Arc<AtomicUsize>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.closed.fetch_add(1, SeqCst);
    }
}

fn session(closed: &Arc<AtomicUsize>) -> Cc<Session> {
    Cc::new(Session {
        peer: Mutex::new(None),
        closed: closed.clone(),
    })
}

/// The user's property: a pair of sessions another thread may still be
/// looking up (through a `Weak`) is closed exactly once, either by the
/// collector or never while the other thread uses it.
#[test]
fn paired_sessions_close_once() {
    loom::model(|| {
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, b) = (session(&closed), session(&closed));
        *a.peer.lock().unwrap() = Some(b.clone());
        *b.peer.lock().unwrap() = Some(a.clone());
        let lookup: Weak<Session> = Cc::downgrade(&a);
        let seen = closed.clone();
        let t = thread::spawn(move || {
            if let Some(s) = lookup.upgrade() {
                // A session we hold is never closed under us.
                assert_eq!(seen.load(SeqCst), 0);
                drop(s);
            }
        });
        drop((a, b));
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(closed.load(SeqCst), 2, "both sessions closed, once each");
    });
}

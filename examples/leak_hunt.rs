//! Hunting a leak: a program whose memory grows although it drops every
//! handle. Two kinds of cycle survive the collector — one through a
//! `std::sync::Arc` (which the collector never traces into) and one
//! through a `#[trace(skip)]` field — and the census and the leak report
//! point at both.
//!
//! Run with `cargo run --example leak_hunt --features census` (without
//! the feature, the census part prints a hint).

use arcycle::{Cc, Trace};
use std::sync::{Arc, Mutex};

/// A user session. Its peers are traced; its listeners sit behind a
/// `std::sync::Arc` (shared with some registry), which the collector
/// cannot count, so it never traces into it; its cache is skipped.
#[derive(Trace)]
struct Session {
    id: u32,
    peers: Mutex<Vec<Cc<Session>>>,
    listeners: Arc<Mutex<Vec<Cc<Session>>>>,
    #[trace(skip)]
    cache: Mutex<Option<Cc<Document>>>,
}

/// A document that remembers who opened it.
#[derive(Trace)]
struct Document {
    text: String,
    owner: Mutex<Option<Cc<Session>>>,
}

fn session(id: u32) -> Cc<Session> {
    Cc::new(Session {
        id,
        peers: Mutex::new(Vec::new()),
        listeners: Arc::new(Mutex::new(Vec::new())),
        cache: Mutex::new(None),
    })
}

/// A well-behaved pair: two sessions that are each other's peer. The
/// collector frees it.
fn chat(id: u32) {
    let (a, b) = (session(id), session(id + 1));
    a.peers.lock().unwrap().push(b.clone());
    b.peers.lock().unwrap().push(a.clone());
}

/// Leak 1: `a` listens to `b` through the `Arc`, `b` peers with `a`.
fn subscribe(id: u32) {
    let (a, b) = (session(id), session(id + 1));
    a.listeners.lock().unwrap().push(b.clone());
    b.peers.lock().unwrap().push(a.clone());
}

/// Leak 2: a session caches the document it opened (skipped field), the
/// document points back to its owner.
fn open_document(id: u32) {
    let s = session(id);
    let d = Cc::new(Document {
        text: format!("notes of session {id}"),
        owner: Mutex::new(Some(s.clone())),
    });
    *s.cache.lock().unwrap() = Some(d);
}

#[cfg(feature = "census")]
fn print_census(when: &str) {
    println!("census {when}:");
    for t in arcycle::census()
        .iter()
        .filter(|t| t.type_name.starts_with("leak_hunt::"))
    {
        println!(
            "  {:<22} live {:>5}  {:>7} bytes  (peak {})",
            t.type_name, t.live, t.bytes, t.peak_live
        );
    }
}

#[cfg(not(feature = "census"))]
fn print_census(when: &str) {
    println!("census {when}: (run with `--features census` to count live objects per type)");
}

fn main() {
    // While hunting, no automatic collection: the report's collection must
    // be the one that looks at the roots our drops buffered.
    arcycle::disable();
    arcycle::collect();

    for i in 0..1000 {
        chat(2 * i);
    }
    for i in 0..2 {
        subscribe(10_000 + 2 * i);
        open_document(20_000 + i);
    }
    print_census("after the program ran (every handle dropped)");

    let report = arcycle::debug::collect_with_report();
    println!();
    print_census("after collect_with_report()");
    // Survivors in red ("causes") are where the leaks start; the others
    // are only reachable from them.
    println!("\n{report}");
    println!("Graphviz (`dot -Tsvg`):\n{}", report.to_dot());

    // The fix: hold peers in `Cc` fields the collector traces (or drop the
    // `Arc` and the cache explicitly). Here we break the cycles by hand.
    let kept = report.survivors.len();
    assert_eq!(report.freed, 2000, "the well-behaved pairs are freed");
    // Each leak's examined sessions survive (the documents were never
    // examined: no drop buffered them, they only hide behind a skip).
    assert_eq!(kept, 6, "two leaks of each kind survive");
    assert_eq!(report.causes().count(), 4);
    let _ = |s: &Session, d: &Document| (s.id, d.text.len());
}

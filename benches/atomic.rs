//! A read-mostly atomic slot (issue 12): two readers load the current value
//! and dereference it in a loop while a writer stores a new value every
//! ~100 µs. Contenders: `arcycle::AtomicCc` (`load`, a new handle, and
//! `load_borrowed`, a guard), `arc_swap::ArcSwap` (`load_full` and `load`),
//! `RwLock<Arc<T>>` and `Mutex<Arc<T>>` (a cloned `Arc` under the lock).
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin atomic            # ~20 s
//!   cargo run --manifest-path benches/Cargo.toml --bin atomic -- --smoke           # CI: every contender once, tiny
//!
//! Prints, per contender, the median over rounds of the mean time per read
//! (ns, per reader thread), and the ratios the issue sets as targets.

use arc_swap::ArcSwap;
use arcycle::{AtomicCc, Cc};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// The value in the slot: a few words, read on every access.
struct Payload {
    a: u64,
    b: u64,
}
arcycle::leaf!(Payload);

fn payload(i: u64) -> Payload {
    Payload {
        a: i,
        b: i ^ 0x5555,
    }
}

/// One contender: how to read (and dereference) and how to write.
trait Slot: Sync + Send + 'static {
    const NAME: &'static str;
    fn read(&self) -> u64;
    fn write(&self, i: u64);
}

struct CcFull(AtomicCc<Payload>);
impl Slot for CcFull {
    const NAME: &'static str = "AtomicCc::load";
    fn read(&self) -> u64 {
        let v = self.0.load();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        self.0.store(Cc::new(payload(i)));
    }
}

struct CcBorrowed(AtomicCc<Payload>);
impl Slot for CcBorrowed {
    const NAME: &'static str = "AtomicCc::load_borrowed";
    fn read(&self) -> u64 {
        let v = self.0.load_borrowed();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        self.0.store(Cc::new(payload(i)));
    }
}

struct SwapFull(ArcSwap<Payload>);
impl Slot for SwapFull {
    const NAME: &'static str = "ArcSwap::load_full";
    fn read(&self) -> u64 {
        let v = self.0.load_full();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        self.0.store(Arc::new(payload(i)));
    }
}

struct SwapGuard(ArcSwap<Payload>);
impl Slot for SwapGuard {
    const NAME: &'static str = "ArcSwap::load";
    fn read(&self) -> u64 {
        let v = self.0.load();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        self.0.store(Arc::new(payload(i)));
    }
}

struct Rw(RwLock<Arc<Payload>>);
impl Slot for Rw {
    const NAME: &'static str = "RwLock<Arc>: read + clone";
    fn read(&self) -> u64 {
        let v = self.0.read().unwrap().clone();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        *self.0.write().unwrap() = Arc::new(payload(i));
    }
}

struct Mx(Mutex<Arc<Payload>>);
impl Slot for Mx {
    const NAME: &'static str = "Mutex<Arc>: lock + clone";
    fn read(&self) -> u64 {
        let v = self.0.lock().unwrap().clone();
        v.a + v.b
    }
    fn write(&self, i: u64) {
        *self.0.lock().unwrap() = Arc::new(payload(i));
    }
}

const READERS: usize = 2;

/// One round: readers run for `span` while the writer stores every
/// ~100 µs. Returns the mean ns per read over both readers.
fn round<S: Slot>(slot: &Arc<S>, span: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 2));
    let mut handles = Vec::new();
    for _ in 0..READERS {
        let (slot, stop, reads, start) = (slot.clone(), stop.clone(), reads.clone(), start.clone());
        handles.push(thread::spawn(move || {
            start.wait();
            let mut n = 0u64;
            let mut sum = 0u64;
            while !stop.load(Relaxed) {
                for _ in 0..64 {
                    sum = sum.wrapping_add(black_box(slot.read()));
                }
                n += 64;
            }
            black_box(sum);
            reads.fetch_add(n, Relaxed);
        }));
    }
    let writer = {
        let (slot, stop, start) = (slot.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut i = 0;
            while !stop.load(Relaxed) {
                slot.write(i);
                i += 1;
                thread::sleep(Duration::from_micros(100));
            }
        })
    };
    start.wait();
    let t0 = Instant::now();
    thread::sleep(span);
    stop.store(true, Relaxed);
    let elapsed = t0.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    writer.join().unwrap();
    elapsed.as_nanos() as f64 * READERS as f64 / reads.load(Relaxed).max(1) as f64
}

fn measure<S: Slot>(slot: S, rounds: usize, span: Duration) -> (&'static str, f64) {
    let slot = Arc::new(slot);
    let _ = round(&slot, span / 4); // warm-up
    let mut xs: Vec<f64> = (0..rounds).map(|_| round(&slot, span)).collect();
    xs.sort_by(f64::total_cmp);
    (S::NAME, xs[xs.len() / 2])
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (rounds, span) = if smoke {
        (1, Duration::from_millis(5))
    } else {
        (5, Duration::from_millis(600))
    };
    let results = [
        measure(CcFull(AtomicCc::new(Cc::new(payload(0)))), rounds, span),
        measure(CcBorrowed(AtomicCc::new(Cc::new(payload(0)))), rounds, span),
        measure(SwapFull(ArcSwap::from_pointee(payload(0))), rounds, span),
        measure(SwapGuard(ArcSwap::from_pointee(payload(0))), rounds, span),
        measure(Rw(RwLock::new(Arc::new(payload(0)))), rounds, span),
        measure(Mx(Mutex::new(Arc::new(payload(0)))), rounds, span),
    ];
    println!("read-mostly slot: {READERS} readers (load + deref), 1 writer storing every ~100 µs");
    println!("| contender | ns per read (median of {rounds}) |");
    println!("|---|---:|");
    for (name, ns) in &results {
        println!("| {name} | {ns:.1} |");
    }
    let ns = |name: &str| results.iter().find(|r| r.0 == name).unwrap().1;
    println!(
        "AtomicCc::load / ArcSwap::load_full = {:.2}x (target <= 1.5x)",
        ns("AtomicCc::load") / ns("ArcSwap::load_full")
    );
    println!(
        "AtomicCc::load_borrowed / ArcSwap::load = {:.2}x (target <= 1.5x)",
        ns("AtomicCc::load_borrowed") / ns("ArcSwap::load")
    );
}

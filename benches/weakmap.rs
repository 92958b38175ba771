//! Weak collections (issue 10): `WeakValueMap::get` hit throughput with 1,
//! 2 and 8 threads against a `Mutex<HashMap<K, Weak<V>>>` and a
//! dashmap-style sharded map (16 `RwLock<HashMap>` shards picked by hash),
//! plus the cost of a finalizer and of a weak-set membership per object.
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin weakmap
//!   cargo run --manifest-path benches/Cargo.toml --bin weakmap -- --smoke
//!
//! Every contender stores the same `arcycle::Weak` and upgrades it on a
//! hit, so the numbers compare the maps. Each figure is the median of 5
//! interleaved runs.

use arcycle::{Cc, WeakSet, WeakValueMap};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

const KEYS: u64 = 1024;

trait Map: Sync {
    fn name(&self) -> &'static str;
    fn get(&self, k: u64) -> Option<Cc<u64>>;
}

struct Ours(WeakValueMap<u64, u64>);
impl Map for Ours {
    fn name(&self) -> &'static str {
        "arcycle::WeakValueMap"
    }
    fn get(&self, k: u64) -> Option<Cc<u64>> {
        self.0.get(&k)
    }
}

struct Locked(Mutex<HashMap<u64, arcycle::Weak<u64>>>);
impl Map for Locked {
    fn name(&self) -> &'static str {
        "Mutex<HashMap<K, Weak<V>>>"
    }
    fn get(&self, k: u64) -> Option<Cc<u64>> {
        self.0.lock().unwrap().get(&k).and_then(|w| w.upgrade())
    }
}

struct Sharded {
    hasher: RandomState,
    shards: Vec<RwLock<HashMap<u64, arcycle::Weak<u64>>>>,
}
impl Map for Sharded {
    fn name(&self) -> &'static str {
        "sharded RwLock<HashMap> x16"
    }
    fn get(&self, k: u64) -> Option<Cc<u64>> {
        let h = self.hasher.hash_one(k);
        let shard = &self.shards[(h >> 60) as usize];
        shard.read().unwrap().get(&k).and_then(|w| w.upgrade())
    }
}

/// `threads` threads each doing `iters` hits on pseudo-random keys; the
/// wall time of the slowest, per operation per thread.
fn run(map: &dyn Map, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t as u64 + 1);
                barrier.wait();
                for _ in 0..iters {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    black_box(map.get(x % KEYS));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let t0 = Instant::now();
        barrier.wait();
        t0.elapsed() / iters as u32
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let iters: u64 = if smoke { 1_000 } else { 1_000_000 };
    let reps = if smoke { 1 } else { 5 };
    let values: Vec<Cc<u64>> = (0..KEYS).map(Cc::new).collect();
    let ours = Ours(WeakValueMap::new());
    let locked = Locked(Mutex::new(HashMap::new()));
    let sharded = Sharded {
        hasher: RandomState::new(),
        shards: (0..16).map(|_| RwLock::new(HashMap::new())).collect(),
    };
    for (k, v) in values.iter().enumerate() {
        let k = k as u64;
        ours.0.insert(k, v);
        locked.0.lock().unwrap().insert(k, Cc::downgrade(v));
        let h = sharded.hasher.hash_one(k);
        sharded.shards[(h >> 60) as usize]
            .write()
            .unwrap()
            .insert(k, Cc::downgrade(v));
    }
    let maps: [&dyn Map; 3] = [&ours, &locked, &sharded];
    println!(
        "## WeakValueMap::get, hits ({} cores; ns per get per thread, median of {reps})\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| threads | {} | {} | {} |",
        maps[0].name(),
        maps[1].name(),
        maps[2].name()
    );
    println!("|---|---|---|---|");
    for threads in [1, 2, 8] {
        let mut samples = vec![Vec::new(); maps.len()];
        for rep in 0..reps {
            for k in 0..maps.len() {
                let i = (k + rep) % maps.len();
                samples[i].push(run(maps[i], threads, iters));
            }
        }
        let m: Vec<_> = samples.into_iter().map(median).collect();
        println!(
            "| {threads} | {:.1} | {:.1} | {:.1} |",
            m[0].as_secs_f64() * 1e9,
            m[1].as_secs_f64() * 1e9,
            m[2].as_secs_f64() * 1e9
        );
    }

    // Per-object costs of the registrations themselves.
    let n = if smoke { 1_000 } else { 200_000 };
    let time = |f: &dyn Fn()| {
        median(
            (0..reps)
                .map(|_| {
                    let t0 = Instant::now();
                    f();
                    t0.elapsed() / n as u32
                })
                .collect(),
        )
    };
    let plain = time(&|| {
        for i in 0..n {
            drop(black_box(Cc::new(i)));
        }
    });
    let fin = time(&|| {
        for i in 0..n {
            let c = Cc::new(i);
            black_box(arcycle::finalize(&c, || {}));
            drop(c);
        }
    });
    let set = WeakSet::new();
    let member = time(&|| {
        for i in 0..n {
            let c = Cc::new(i);
            set.insert(&c);
            drop(c);
        }
    });
    println!("\n## Per object (ns): new + drop, with a finalizer, with a WeakSet membership\n");
    println!("| new+drop | + finalize | + WeakSet::insert |");
    println!("|---|---|---|");
    println!(
        "| {:.1} | {:.1} | {:.1} |",
        plain.as_secs_f64() * 1e9,
        fin.as_secs_f64() * 1e9,
        member.as_secs_f64() * 1e9
    );
    assert!(set.is_empty(), "every member died");
}

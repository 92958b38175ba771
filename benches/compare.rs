//! arcycle against `Arc` and every peer, side by side, with criterion.
//!
//! `cargo bench --manifest-path benches/Cargo.toml` is the long, thorough
//! run (every workload of `report.rs` at full size, plus memory, pause and
//! mutator numbers printed at the end). Filter with criterion's usual
//! argument, e.g. `cargo bench --manifest-path benches/Cargo.toml --
//! clone_drop`; the quick variant is `... -- --quick --noplot`.
//!
//! Groups are named by workload and hold one benchmark per contender, so
//! every contender is measured in the same run.

mod common;

use common::workloads::MutatorRun;
use common::*;
use criterion::{Criterion, Throughput};
use std::time::Duration;

fn timed(c: &mut Criterion, scale: Scale) {
    for w in workloads(scale) {
        let mut g = c.benchmark_group(w.id);
        match w.group {
            Group::Micro | Group::Contended | Group::Walk => {}
            Group::Acyclic => {
                g.sample_size(20);
            }
            Group::Collect => {
                g.sample_size(10);
                g.measurement_time(Duration::from_secs(10));
            }
        }
        if let Some(shape) = w.shape {
            g.throughput(Throughput::Elements(shape.objects() as u64));
        }
        for case in &w.cases {
            g.bench_function(case.contender, |b| b.iter_custom(|iters| (case.run)(iters)));
        }
        g.finish();
    }
}

/// The numbers criterion cannot time: bytes per object, collect() pauses,
/// mutator throughput during collection.
fn extras() {
    println!("\n## bytes per object (counting allocator, 100000 objects)\n");
    println!("| contender | leaf `u64` | node | node, after one clone+drop |");
    println!("|---|---:|---:|---:|");
    for (name, leaf, node, buffered) in memory_table(100_000) {
        println!("| {name} | {leaf:.1} | {node:.1} | {buffered:.1} |");
    }

    println!("\n## collect() pause: 100000 live nodes, 1000 garbage objects, 21 rounds\n");
    println!("| contender | median | max |");
    println!("|---|---:|---:|");
    for (name, p) in pause_table(100_000, 100, 21) {
        let h = histogram_ns(&p);
        println!(
            "| {name} | {:.3} ms | {:.3} ms |",
            h.value_at_quantile(0.5) as f64 / 1e6,
            h.max() as f64 / 1e6
        );
    }

    println!("\n## mutator throughput while another thread collects (5 s each)\n");
    println!("| contender | baseline | during collection | kept | collections |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in mutator_runs(Duration::from_secs(5)) {
        let MutatorRun {
            baseline,
            during,
            collections,
            ..
        } = r;
        println!(
            "| {name} | {:.1} Mops/s | {:.1} Mops/s | {:.0}% | {collections} |",
            baseline / 1e6,
            during / 1e6,
            r.kept() * 100.0
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and criterion then runs each benchmark once: use
    // tiny structures for that smoke run.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let scale = if bench_mode { Scale::Full } else { Scale::Tiny };
    let mut c = Criterion::default().configure_from_args();
    timed(&mut c, scale);
    c.final_summary();
    // Criterion's filter is the first free argument; run the extras when
    // there is none, or when it names them.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = filter.is_none_or(|f| "extras memory pause mutator".contains(f.as_str()));
    if bench_mode && wanted {
        extras();
    }
}

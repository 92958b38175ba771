//! Replays the committed seed corpus of every fuzz target
//! (`fuzz/corpus/<target>/*`) through the same logic the fuzzer runs, so
//! CI exercises the corpus on stable, and adds a few hundred inputs from a
//! fixed pseudo-random generator.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let _g = fuzz_replay::serialize();
    let files = corpus(target);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(|| run(&data));
        if let Err(p) = r {
            eprintln!("{target}: input {} failed", f.display());
            std::panic::resume_unwind(p);
        }
    }
}

/// A fixed stream of inputs (seeded `fastrand`), the same on every run.
fn generated(seed: u64, count: usize, run: fn(&[u8])) {
    let _g = fuzz_replay::serialize();
    let mut rng = fastrand::Rng::with_seed(seed);
    for i in 0..count {
        let len = rng.usize(..160);
        let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let r = std::panic::catch_unwind(|| run(&data));
        if let Err(p) = r {
            eprintln!("generated input #{i} (seed {seed:#x}) failed: {data:?}");
            std::panic::resume_unwind(p);
        }
    }
}

#[test]
fn graph_ops_corpus() {
    replay("graph_ops", fuzz_replay::graph_ops::run);
}

#[test]
fn drop_chaos_corpus() {
    replay("drop_chaos", fuzz_replay::drop_chaos::run);
}

#[test]
fn drop_chaos_corpus_masked() {
    replay("drop_chaos", fuzz_replay::drop_chaos::run_masked);
}

#[test]
fn graph_ops_generated() {
    generated(0x9E37_79B9_7F4A_7C15, 300, fuzz_replay::graph_ops::run);
}

#[test]
fn drop_chaos_generated() {
    generated(0xD1B5_4A32_D192_ED03, 300, fuzz_replay::drop_chaos::run);
}

#[test]
fn drop_chaos_generated_masked() {
    generated(
        0xD1B5_4A32_D192_ED03,
        300,
        fuzz_replay::drop_chaos::run_masked,
    );
}

#[test]
fn weak_maps_corpus() {
    replay("weak_maps", fuzz_replay::weak_maps::run);
}

#[test]
fn weak_maps_generated() {
    generated(0xA076_1D64_78BD_642F, 300, fuzz_replay::weak_maps::run);
}

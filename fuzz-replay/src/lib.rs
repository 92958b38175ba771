//! The logic of arcycle's fuzz targets, shared by the cargo-fuzz crate in
//! `fuzz/` (nightly, libFuzzer) and by this crate's stable test, which
//! replays every file of the committed seed corpus `fuzz/corpus/<target>/`
//! so that CI runs the corpus without nightly:
//!
//! ```text
//! cargo test -p fuzz-replay
//! ```
//!
//! Each target takes arbitrary bytes, decodes them into a scenario, runs
//! it against the real collector, and panics on any violated invariant. A
//! panic is a bug report: save the input (libFuzzer writes it to
//! `fuzz/artifacts/<target>/`) and replay it with `cargo test -p
//! fuzz-replay` after copying it into the corpus.
//!
//! Both targets use the process-wide collector and assert exact results
//! after their own `collect()` calls, so they must not run concurrently
//! with other code that collects: [`serialize`] is the lock the replay
//! tests take.

use std::sync::{Mutex, MutexGuard};

pub mod drop_chaos;
pub mod graph_ops;
pub mod weak_maps;

/// Serialise runs of the targets within one process.
pub fn serialize() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny decoder over the fuzzer's bytes: every read succeeds (zeros once
/// the input is exhausted), and [`Bytes::done`] says when to stop.
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub(crate) fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

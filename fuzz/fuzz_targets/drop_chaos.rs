//! Fuzz target `drop_chaos`: garbage whose destructors and `Trace` impls
//! panic, dereference / clone / stash collected peers, upgrade weak handles
//! to them, or call `collect()`.
//!
//! Guards the DESIGN.md "Must hold" invariants "Panics in user
//! `Trace`/`Drop` code neither leak nor corrupt the collector", "No object
//! is freed while a handle to it ... exists" and "Every object whose last
//! handle is gone is freed". The logic is `fuzz_replay::drop_chaos`.
//!
//! `DROP_CHAOS_MASK=1` leaves out the misbehaviours that reached the bugs
//! this target found (see `fuzz_replay::drop_chaos::run_masked`), so that a
//! campaign can look past a new bug in those paths until it is fixed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Once, OnceLock};

fn masked() -> bool {
    static MASKED: OnceLock<bool> = OnceLock::new();
    *MASKED.get_or_init(|| std::env::var_os("DROP_CHAOS_MASK").is_some_and(|v| v != "0"))
}

/// libfuzzer-sys aborts on every panic, caught or not. The scenario panics
/// on purpose (and catches those panics itself): let exactly those unwind,
/// and keep every other panic a crash.
fn panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !fuzz_replay::drop_chaos::expected_panic(msg) {
                fuzzer_hook(info); // prints, then aborts: a crash
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    panic_hook();
    if masked() {
        fuzz_replay::drop_chaos::run_masked(data)
    } else {
        fuzz_replay::drop_chaos::run(data)
    }
});

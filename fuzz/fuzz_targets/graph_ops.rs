//! Fuzz target `graph_ops`: decoded graph operations (new, add / remove /
//! move edges, clone, drop, downgrade, upgrade, collect, a sub-sequence on
//! a second thread) checked against a reachability model.
//!
//! Guards the DESIGN.md "Must hold" invariants "No object is freed while a
//! handle to it ... exists", "Every object whose last handle is gone is
//! freed ... once a collection runs after that", "`Weak::upgrade` never
//! returns a handle to something being freed, and never returns None for
//! something that survives" and "A collection that aborts loses nothing".
//! The logic is `fuzz_replay::graph_ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_replay::graph_ops::run(data));

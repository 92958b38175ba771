//! Fuzz target `weak_maps`: weak maps, weak sets and finalizers mixed with
//! graph operations, checked against a reachability model (issue 10).
//!
//! Guards: nothing dead is returned by a map or set; after a collection
//! every dead entry is purged and `len` counts exactly the live ones; every
//! finalizer runs once, after its object's destructor. The logic is
//! `fuzz_replay::weak_maps`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_replay::weak_maps::run(data));

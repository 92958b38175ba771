//! The runnable examples of arcycle live next to this file; run them with
//! `cargo run --release --example NAME` from the repository root. This
//! package exists so that an example builds arcycle and its few
//! dependencies only (examples of the root package would also build every
//! dependency of its tests).

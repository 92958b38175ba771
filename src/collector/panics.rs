//! Panics of user code during a collection: keeping the first for the
//! caller of `collect()`, reporting the ones nobody can receive, dropping
//! payloads whose own `Drop` panics, and quarantining an object whose
//! `Trace` impl panicked so that it is never traced again.
//!
//! The quarantine list is touched only by the collecting thread (under the
//! collector lock); each listed object owns one entry unit of its weak
//! word, so its address is not reused while it is listed. Guarded by
//! `tests/reliability.rs` (the panicking `Trace` and guard cases).

use super::control;
use crate::buffer;
use crate::header::count;
use crate::sync::lock;
use crate::trace::Node;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;

/// Report a caught panic that no caller can receive ("`what`: message"),
/// then drop its payload safely.
pub(crate) fn report_panic(
    kind: crate::report::ReportKind,
    what: &str,
    payload: Box<dyn Any + Send>,
) {
    crate::report::report(kind, &format!("{what}: {}", panic_message(&*payload)));
    drop_payload(payload);
}

/// Keep the first panic of a collection in `slot`; drop any later one
/// without letting its payload's own `Drop` unwind into the collector.
pub(crate) fn keep_panic(slot: &mut Option<Box<dyn Any + Send>>, payload: Box<dyn Any + Send>) {
    if slot.is_none() {
        *slot = Some(payload);
    } else {
        drop_payload(payload);
    }
}

/// Drop a panic payload whose `Drop` may itself panic: the payload of that
/// panic is dropped in turn (usually a plain message), up to a few levels;
/// only a payload chain that keeps panicking past them is leaked.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
}

/// Whether `node` is quarantined (its `Trace` impl panicked once). One
/// relaxed load while nothing is quarantined.
#[inline]
pub(crate) fn is_quarantined(node: Node) -> bool {
    control().quarantined.load(Relaxed) != 0 && is_listed(node)
}

#[cold]
#[inline(never)]
fn is_listed(node: Node) -> bool {
    lock(&control().quarantine).contains_key(&node.addr())
}

/// Quarantine a held object whose `Trace` impl (or guard) panicked: it is
/// never traced again. The list takes an entry unit so that the address
/// stays this object's while it is listed.
pub(crate) fn quarantine(node: Node) {
    let c = control();
    let mut q = lock(&c.quarantine);
    if let std::collections::btree_map::Entry::Vacant(e) = q.entry(node.addr()) {
        // The collector holds the object, so the allocation is alive.
        // Relaxed: the list is only read by the collecting thread.
        node.header().weak.fetch_add(crate::header::ENTRY, Relaxed);
        e.insert(node);
        c.quarantined.store(q.len(), Relaxed);
    }
}

/// Forget quarantined objects whose value is gone (their last handle was
/// dropped), giving back the list's claim on their allocations.
pub(crate) fn sweep_quarantine() {
    let c = control();
    if c.quarantined.load(Relaxed) == 0 {
        return;
    }
    let mut q = lock(&c.quarantine);
    q.retain(|_, n| {
        // A quarantined object is never in a garbage set (it is always
        // busy), so count 0 means its last drop destroyed it.
        let gone = count(n.header().strong.load(Relaxed)) == 0;
        if gone {
            buffer::release_entry(n.header);
        }
        !gone
    });
    c.quarantined.store(q.len(), Relaxed);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

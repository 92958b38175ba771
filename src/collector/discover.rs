//! Phases 1 and 2: take the roots, trace optimistically, propose garbage.
//!
//! # Invariant: everything visited is held
//!
//! The collector reads an object's value only while it holds the object
//! (`HELD` in the strong word). A hold is taken
//!
//! * on a root, by one CAS that requires `ACTIVE` (the entry still stands
//!   for the object), a count above zero and the object not dead, and that
//!   also clears `ACTIVE` — so `get_mut`, which detaches an entry by
//!   clearing `ACTIVE` with a CAS on the same word, is ordered against it,
//!   and the drop protocol of `buffer` stays exact;
//! * on a child, *inside* its parent's trace, while the parent's field
//!   still holds the handle (and any lock guarding it is still held), so
//!   the child's count is above zero at that moment.
//!
//! A last drop that finds `HELD` leaves destruction to the collector, so a
//! held value stays valid until the collector lets go (`commit`).
//!
//! # Pass 1 is only a proposal
//!
//! Pass 1 reads fields under `try_lock` and drops the guards after each
//! object, and reads counts at a different moment than edges: what it sees
//! may be stale. That is fine — nothing here frees anything. Its output is
//! the white set `W` of trial deletion (Bacon & Rajan's mark-gray / scan):
//! objects whose count seemed fully explained by edges from other visited
//! objects, and that no object with an outside reference seemed to reach.
//! Anything unsure (a lock that was taken, a panicking `Trace`, a count
//! lower than the edges seen) is treated as externally referenced: black.

use crate::buffer;
use crate::header::*;
use crate::trace::{Node, Tracer};
use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;

/// A visited object.
pub(crate) struct Visited {
    pub(crate) node: Node,
    /// Edges into this object from visited objects (pass 1).
    pub(crate) internal: u32,
    /// Its out-edges: `targets[first..first + len]`.
    pub(crate) first: u32,
    pub(crate) len: u32,
    /// Its trace could not see everything (lock taken, panic).
    pub(crate) busy: bool,
    /// Its strong count, read right after its trace (pass 1).
    pub(crate) rc: u64,
    /// Its pass-1 trace took no lock and saw everything: its edges live in
    /// immutable or set-once fields, so pass 2 can reuse them (see
    /// `validate`).
    pub(crate) lock_free: bool,
    /// It came from a root-buffer entry (re-buffered if validation aborts).
    pub(crate) root: bool,
}

/// Hashes a header address: addresses are distinct and well spread after
/// dropping the alignment bits.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("AddrHasher only hashes usize")
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = ((n as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Visited>,
    pub(crate) index: HashMap<usize, u32, BuildHasherDefault<AddrHasher>>,
    pub(crate) targets: Vec<u32>,
    /// The first panic of a user `Trace` impl, resumed after the collection.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
}

/// Take the collector's hold on a visited object, unless it is dead or
/// (for a root) its count already reached zero. For a root this also
/// clears `ACTIVE`.
fn try_hold(node: Node, root: bool) -> bool {
    let h = node.header();
    let mut s = h.strong.load(Relaxed);
    loop {
        if root && s & ACTIVE == 0 {
            // The entry no longer stands for the object: a duplicate, or
            // detached by `get_mut` (which clears ACTIVE by CAS on this
            // word, so it and this hold are ordered).
            return false;
        }
        // A dead object can still be held — by an outer collection whose
        // destructors are running this (nested) one — so check DEAD first.
        let alive = count(s) > 0 && s & DEAD == 0;
        debug_assert!(!alive || s & (HELD | FROZEN) == 0, "object held twice");
        let new = if alive { s | HELD } else { s };
        let new = if root { new & !ACTIVE } else { new };
        if new == s {
            return alive;
        }
        // Acquire: we are about to read the value; this synchronises with
        // the Release decrements and unlocks that published its contents
        // (the shard mutex or the parent's field already did for the
        // pointer itself).
        match h.strong.compare_exchange_weak(s, new, Acquire, Relaxed) {
            Ok(_) => return alive,
            Err(x) => s = x,
        }
    }
}

impl Graph {
    fn add(&mut self, node: Node, root: bool) -> u32 {
        let i = self.nodes.len() as u32;
        self.nodes.push(Visited {
            node,
            internal: 0,
            first: 0,
            len: 0,
            busy: false,
            rc: 0,
            lock_free: false,
            root,
        });
        self.index.insert(node.addr(), i);
        i
    }

    /// Turn root-buffer entries into held roots.
    pub(crate) fn take_roots(&mut self, entries: Vec<Node>) {
        // Most roots are distinct and most collections visit about as many
        // objects as roots: size the tables once.
        self.nodes.reserve(entries.len());
        self.index.reserve(entries.len());
        self.targets.reserve(entries.len());
        for e in entries {
            // Only the entry that finds ACTIVE set stands for the object
            // (`try_hold` checks); a duplicate, or one detached by
            // `get_mut`, is just released.
            if !self.index.contains_key(&e.addr()) && try_hold(e, true) {
                self.add(e, true);
            }
            // The hold (if taken) keeps the allocation; the entry's claim
            // can go.
            buffer::release_entry(e);
        }
    }

    /// Trace one held object into `tracer` and say whether it was busy: a
    /// lock it could not take, or a panicking `Trace` impl (whose first
    /// payload is kept, to be resumed after the collection).
    ///
    /// # Safety
    /// `node` is held by this collection and its value outlives `tracer`.
    pub(crate) unsafe fn trace_held<'a>(&mut self, node: Node, tracer: &mut Tracer<'a>) -> bool {
        tracer.busy = false;
        let traced = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: forwarded contract.
            unsafe { (node.vtable.trace)(node.header, tracer) }
        }));
        if let Err(payload) = traced {
            self.panic.get_or_insert(payload);
            tracer.busy = true;
        }
        tracer.busy
    }

    /// Pass 1: trace every held object, holding each new child.
    pub(crate) fn trace_all(&mut self) {
        // One tracer for the whole pass: its buffers are reused, and the
        // values it borrows are all held until the collection ends.
        let mut tracer = Tracer::new();
        let mut i = 0;
        while i < self.nodes.len() {
            let node = self.nodes[i].node;
            // SAFETY: the object is held: its value stays alive until the
            // collector lets go, after this tracer is gone.
            self.nodes[i].busy = unsafe { self.trace_held(node, &mut tracer) };
            let first = self.targets.len() as u32;
            for child in tracer.edges.drain(..) {
                let j = match self.index.get(&child.addr()) {
                    Some(&j) => j,
                    // The guard that protects the parent's field is still in
                    // `tracer`, so the child's handle is still there.
                    None if try_hold(child, false) => self.add(child, false),
                    None => continue, // dead: a destructor stashed it
                };
                self.nodes[j as usize].internal += 1;
                self.targets.push(j);
            }
            let v = &mut self.nodes[i];
            v.first = first;
            v.len = self.targets.len() as u32 - first;
            // Read while the header is in cache. Pass 1 is a proposal, so
            // reading counts at different moments is fine (see above).
            v.rc = count(node.header().strong.load(Acquire));
            v.lock_free = !tracer.busy && tracer.guards.is_empty();
            tracer.guards.clear(); // releases pass 1's guards for this object
            i += 1;
        }
    }

    /// Trial deletion: the visited objects whose count is fully explained by
    /// internal edges and that no externally referenced object reaches.
    pub(crate) fn trial_delete(&self) -> Vec<u32> {
        let n = self.nodes.len();
        let mut black = vec![false; n];
        let mut stack = Vec::new();
        for (i, v) in self.nodes.iter().enumerate() {
            if v.busy || v.rc != v.internal as u64 {
                black[i] = true;
                stack.push(i as u32);
            }
        }
        while let Some(i) = stack.pop() {
            let v = &self.nodes[i as usize];
            for &j in &self.targets[v.first as usize..(v.first + v.len) as usize] {
                if !black[j as usize] {
                    black[j as usize] = true;
                    stack.push(j);
                }
            }
        }
        (0..n as u32).filter(|&i| !black[i as usize]).collect()
    }

    /// Shrink a proposal: drop `failed` members and everything they reach
    /// within it (they may be live after all).
    pub(crate) fn shrink(&self, white: &[u32], failed: &[u32]) -> Vec<u32> {
        let mut member = vec![false; self.nodes.len()];
        for &i in white {
            member[i as usize] = true;
        }
        let mut stack: Vec<u32> = failed.to_vec();
        for &i in failed {
            member[i as usize] = false;
        }
        while let Some(i) = stack.pop() {
            let v = &self.nodes[i as usize];
            for &j in &self.targets[v.first as usize..(v.first + v.len) as usize] {
                if member[j as usize] {
                    member[j as usize] = false;
                    stack.push(j);
                }
            }
        }
        white
            .iter()
            .copied()
            .filter(|&i| member[i as usize])
            .collect()
    }
}

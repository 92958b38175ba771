//! Phase 3: freeze the proposed garbage `W` and verify it.
//!
//! # Invariant: W is freed only if, at one instant, it was unreachable
//!
//! 1. **Freeze the fields.** Re-trace every member of `W` whose first
//!    trace took a lock, this time *keeping* every guard its `Trace` impl
//!    hands to `Tracer::hold`. (A member whose first trace took no lock
//!    keeps its edges in immutable or set-once fields — the `Trace`
//!    contract — and it has been held since then, so no `get_mut` can have
//!    changed them: its first-pass edges are still there, and any edge set
//!    since can only raise a count, which fails step 3 safely.) From
//!    now until the decision, no handle can be moved out of (or within) a
//!    mutable field of `W`; immutable fields cannot change while the value
//!    is alive. Edges can only be *added* (a `OnceLock` being set, a handle
//!    moved in), which only raises counts above what we compute: the safe
//!    direction. A lock that cannot be taken means someone is using the
//!    object right now: it is live, and it leaves `W`.
//! 2. **Count internal edges** `e(n)`: the handles to `n` held in the
//!    frozen fields of `W`.
//! 3. **Freeze the words.** For each `n` in `W`, read the strong word `s_n`,
//!    require `count(s_n) == e(n)`, and CAS `s_n` → `s_n | FROZEN`.
//! 4. **Verify.** For every `n`, CAS `s_n | FROZEN` to itself. This is an
//!    RMW, not a load, so success means something exact: in the word's
//!    modification order nothing came between the freezing CAS and this
//!    one.
//!
//! Every clone and every drop changes the word (the modification counter),
//! and after the freezing CAS `Weak::upgrade` waits instead of adding a
//! handle. All step-3 CASes precede all step-4 CASes in the collector's
//! program order, so there is one cut through all the words, between the
//! two loops, at which every `n` had exactly `e(n)` handles — all of them
//! inside `W`'s frozen fields. (A handle moved across that cut would need a
//! Release decrement of one member read by the Acquire freezing CAS of
//! another, which would order it before the cut in both words; write-write
//! coherence rules the crossing out.) Nothing outside `W` could reach `W`
//! then; no weak can upgrade into it; so nothing ever will again. `W` is
//! garbage.
//!
//! The counter is 32 bits wide, so "unchanged" could be fooled only by
//! 2^32 modifications of one word between its two CASes. Step 5 bounds
//! that window: if steps 3–4 took longer than [`FREEZE_WINDOW_LIMIT`], the
//! attempt aborts (one cache line cannot take 2^32 atomic RMWs in 2 s: that
//! would need one every 0.47 ns, while a locked RMW takes several ns even
//! uncontended).
//!
//! Any failure aborts the attempt: frozen words are unfrozen (they are
//! otherwise untouched: the collector's flags never touch counts), the
//! failing members and everything they reach in `W` are dropped from `W`,
//! and the rest is tried again, a bounded number of times. What is left
//! when the tries run out is re-buffered: a collection that aborts loses
//! nothing and changes no count.
//!
//! Guarded by the loom models `validate_vs_clone_drop_aba`,
//! `validate_vs_move_out_of_mutex`, `validate_vs_move_to_other_node` and
//! `validate_vs_upgrade` (see `loom-tests/`); `scripts/loom-teeth.sh` builds
//! this file without step 4 (`--cfg arcycle_broken`) and asserts that loom
//! then finds the use-after-free.

use super::discover::Graph;
use crate::buffer;
use crate::header::*;
use crate::trace::Tracer;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

/// The longest a freeze window (steps 3–4) may last; see the module docs.
pub(crate) const FREEZE_WINDOW_LIMIT: Duration = Duration::from_secs(2);

/// How many times a shrinking proposal is re-validated before giving up.
const TRIES: usize = 4;

/// The outcome: the committed garbage (marked `DEAD`, still held), and
/// whether some attempt aborted.
pub(crate) struct Validated {
    pub(crate) dead: Vec<u32>,
    pub(crate) aborted: bool,
}

pub(crate) fn validate(graph: &mut Graph, mut white: Vec<u32>) -> Validated {
    let mut aborted = false;
    for _ in 0..TRIES {
        if white.is_empty() {
            break;
        }
        match attempt(graph, &white) {
            Ok(()) => {
                return Validated {
                    dead: white,
                    aborted,
                }
            }
            Err(failed) => {
                aborted = true;
                white = if failed.is_empty() {
                    // Nothing to blame (the window ran long): try again as is.
                    white
                } else {
                    graph.shrink(&white, &failed)
                };
            }
        }
    }
    // Out of tries: whatever roots remain proposed go back to the buffer.
    for &i in &white {
        let v = &graph.nodes[i as usize];
        if v.root {
            buffer::rebuffer(v.node);
        }
    }
    Validated {
        dead: Vec::new(),
        aborted,
    }
}

/// One freeze-and-verify attempt. On success `W` is marked `DEAD` (and
/// no longer `FROZEN`). On failure, returns the members to blame.
fn attempt(graph: &mut Graph, white: &[u32]) -> Result<(), Vec<u32>> {
    // Position of each graph node in `white`.
    let mut pos = vec![u32::MAX; graph.nodes.len()];
    for (k, &i) in white.iter().enumerate() {
        pos[i as usize] = k as u32;
    }

    // Steps 1-2: trace W again, keeping every guard until the decision.
    let mut tracer = Tracer::new();
    let mut internal = vec![0u64; white.len()];
    let mut failed = Vec::new();
    for &i in white {
        let v = &graph.nodes[i as usize];
        if v.lock_free {
            // See step 1: its first-pass edges stand.
            for &j in &graph.targets[v.first as usize..(v.first + v.len) as usize] {
                let k = pos[j as usize];
                if k != u32::MAX {
                    internal[k as usize] += 1;
                }
            }
            continue;
        }
        let node = v.node;
        // SAFETY: the object is held; its value outlives `tracer`, which is
        // dropped before this function returns.
        if unsafe { graph.trace_held(node, &mut tracer) } {
            failed.push(i);
        }
        // Usually the fields still hold what pass 1 saw, in the same order:
        // match against pass 1's edge list first, hash only on a mismatch.
        let v = &graph.nodes[i as usize];
        let seen = &graph.targets[v.first as usize..(v.first + v.len) as usize];
        for (e, child) in tracer.edges.drain(..).enumerate() {
            let j = match seen.get(e) {
                Some(&j) if graph.nodes[j as usize].node.addr() == child.addr() => Some(j),
                _ => graph.index.get(&child.addr()).copied(),
            };
            if let Some(j) = j {
                let k = pos[j as usize];
                if k != u32::MAX {
                    internal[k as usize] += 1;
                }
            }
        }
    }
    if !failed.is_empty() {
        for &i in &failed {
            // Remembered so that a busy root is buffered again (`commit`).
            graph.nodes[i as usize].busy = true;
        }
        return Err(failed);
    }
    let nodes = &graph.nodes;

    // Step 3: read, compare, freeze — each word's window starts here.
    let start = Instant::now();
    let mut words = Vec::with_capacity(white.len());
    for (k, &i) in white.iter().enumerate() {
        let h = nodes[i as usize].node.header();
        // Acquire: if this word is final, the accesses of every thread that
        // dropped a handle to `n` happen-before our destruction of it.
        let s = h.strong.load(Acquire);
        let ok = count(s) == internal[k] && s & (DEAD | FROZEN) == 0 && s & HELD != 0;
        if !ok
            || h.strong
                .compare_exchange(s, s | FROZEN, AcqRel, Relaxed)
                .is_err()
        {
            unfreeze(graph, &white[..k]);
            return Err(vec![i]);
        }
        words.push(s | FROZEN);
    }
    // Step 4: verify, with an RMW (see the module docs). AcqRel: as the
    // freezing CAS.
    #[cfg(not(arcycle_broken))] // loom-tests teeth: the broken build skips step 4
    for (k, &i) in white.iter().enumerate() {
        let h = nodes[i as usize].node.header();
        if h.strong
            .compare_exchange(words[k], words[k], AcqRel, Relaxed)
            .is_err()
        {
            unfreeze(graph, white);
            return Err(vec![i]);
        }
    }
    // Step 5: bound the window (see the module docs).
    if start.elapsed() > FREEZE_WINDOW_LIMIT {
        unfreeze(graph, white);
        return Err(Vec::new());
    }

    // Decided: W is garbage. Mark it dead before anyone can look again.
    for (k, &i) in white.iter().enumerate() {
        // A plain store suffices: nobody else can modify a verified word any
        // more — no handle to `n` exists outside `W`'s locked fields (so no
        // clone or drop), and `upgrade` only loads a frozen word. Release: a
        // waiting `upgrade` that sees DEAD returns None; a destructor's clone
        // of a member sees DEAD before it can deref.
        nodes[i as usize]
            .node
            .header()
            .strong
            .store((words[k] & !FROZEN) | DEAD, Release);
    }
    drop(tracer); // unlock W's fields: nobody can reach them any more
    Ok(())
}

fn unfreeze(graph: &Graph, frozen: &[u32]) {
    for &i in frozen {
        // Release: pairs with a waiting `upgrade`'s Acquire load.
        graph.nodes[i as usize]
            .node
            .header()
            .strong
            .fetch_and(!FROZEN, Release);
    }
}

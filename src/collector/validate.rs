//! Phase 3: freeze the proposed garbage `W` and verify it, a batch of whole
//! components at a time.
//!
//! # Invariant: a set is freed only if, at one instant, it was unreachable
//!
//! `W` is split into its weakly connected components (by the edges pass 1
//! saw), and the components are validated in batches `C` of whole
//! components — one component, or several small ones together, up to
//! [`BATCH`] members — so that objects other threads keep touching can
//! never hold back an unrelated cycle (a failure excludes only what it
//! reaches, step 5, and no recorded edge joins two components), and a
//! frozen member blocks `upgrade` only for its own batch's window. For
//! `C`:
//!
//! 1. **Freeze the fields.** Re-trace every member of `C` whose first
//!    trace took a lock, this time *keeping* every guard its `Trace` impl
//!    hands to `Tracer::hold`. (A member whose first trace took no lock
//!    keeps its edges in immutable or set-once fields — the `Trace`
//!    contract — and it has been held since then, so no `get_mut` can have
//!    changed them: its first-pass edges are still there, and any edge set
//!    since can only raise a count, which fails step 3 safely.) From now
//!    until the decision, no handle can be moved out of (or within) a
//!    mutable field of `C`. Edges can only be *added* (a `OnceLock` being
//!    set, a handle moved in), which only raises counts above what we
//!    compute: the safe direction. A lock that cannot be taken means
//!    someone is using the object right now: it *fails*.
//! 2. **Count internal edges** `e(n)`: the handles to `n` held in the
//!    frozen fields of members of `C`, and record those edges. Usually
//!    this is pass 1's count, with nothing to do (see "Counting from
//!    pass 1" below).
//! 3. **Freeze the words.** For each `n` not yet known to be excluded
//!    (below), read the strong word `s_n`, require `count(s_n) == e(n)`, and
//!    CAS `s_n` → `s_n | FROZEN` (clearing a stale `TOUCHED`). A mismatch
//!    or a lost CAS *fails* `n`.
//! 4. **Verify.** For every frozen `n`, CAS `s_n | FROZEN` onto itself. This
//!    is an RMW, not a load: success means that in the word's modification
//!    order nothing came between the freezing CAS and this one. A failed
//!    CAS fails `n`.
//! 5. **Decide.** Let `X` be the failed members and everything they reach
//!    in `C` by the recorded edges. `D = C \ X` is garbage: mark it `DEAD`.
//!    `X` is unfrozen and left alive; its roots are buffered again.
//!
//! **Pass 1 decides some components itself** (`early`): a closed
//! component of one pass-1 batch goes through steps 3–5 there ([`freeze`],
//! [`verify`], [`mark_dead`], [`unfreeze`] below, shared), with pass 1's
//! guards, still held, standing in for step 1 and its recorded edges for
//! step 2. What it decides is garbage before trial deletion runs and never
//! reaches `W`; what it leaves reaches validation as if nothing had been
//! tried.
//!
//! **Why `D` is garbage.** Every step-3 CAS precedes every step-4 CAS in
//! the collector's program order, so there is one cut through all the
//! words, between the two loops. For `n` in `D` the verify CAS found the
//! frozen word unchanged; since every drop that lands on a frozen word
//! leaves `TOUCHED` in its own CAS, nothing but the collector clears it,
//! and a clone raises the count, which only such a drop could lower again,
//! an unchanged word means *no* clone or drop of `n` between its two CASes
//! — not merely an equal count. `Weak::upgrade` waits on `FROZEN`. So at
//! the cut `n` had exactly `e(n)` handles. None of them is in a field of
//! `X`: an edge from `X` into `n` would have put `n` in `X`. So all `e(n)`
//! handles sat in frozen fields of `D` itself. (A handle moved across the
//! cut would need a Release decrement of one member read by the Acquire
//! freezing CAS of another, which would order it before the cut in both
//! words; write-write coherence rules the crossing out.) At the cut nothing
//! outside `D` held a handle to `D`, no weak could upgrade into it, and its
//! fields could not lose one: `D` was unreachable then, so it stays
//! unreachable for ever.
//!
//! **Counting from pass 1.** Trial deletion proposed `n` only if pass 1's
//! count of `n` (`rc`) equalled the pass-1 edges into `n` from visited
//! objects, and only if none of those came from outside `W` (a black
//! predecessor makes `n` black). So every pass-1 edge into `n` comes from
//! `n`'s own component, that is from `C`, and there are `rc` of them. If
//! the re-trace of every member of `C` reports exactly its pass-1 edges
//! (the same header addresses in the same order; every one of them is an
//! object this collection holds, so no address was freed and reused in
//! between), the handles in `C`'s frozen fields are pass 1's edges, and
//! `e(n)` is `rc`. Such an *exact* batch reads no child's word and indexes
//! no table in step 2. The first member whose re-trace differs, or is
//! busy, switches the batch to counting: the members before it from pass
//! 1's edge table (their edges are pass 1's), the rest from what their
//! re-trace found. The recorded edges serve only step 5's exclusion, so an
//! exact batch builds them from pass 1's table only when something failed.
//! Guarded by two tests in `tests/single_thread.rs`, the switch by
//! `validation_switches_to_counting_halfway_through_a_batch` and the late
//! build by `validation_failure_in_an_exact_batch_spares_what_it_reaches`,
//! and by the loom model `validate_vs_move_out_and_back`: a thread moves a
//! member's handle out of its field and back, letting go of the member
//! meanwhile, so that batches see the same edges or different ones.
//!
//! **Why unchanged words cannot stand in for the re-trace.** Even if every
//! clone and drop on a *held* word left `TOUCHED`, so that a verify CAS
//! proved no handle to `n` was made or dropped since pass 1 held it, pass
//! 1's edges could still be stale: a handle can leave a traced field with
//! no count changing, moved by a thread that reached the field through an
//! object pass 1 had not held yet. Say a thread owns the only outside
//! handle to `R`, whose field holds handles to `Y` and `Q`, `Y`'s holds
//! `Z`, and `Z`'s holds `Q`. Pass 1 takes the roots `Y` and `Z` and traces
//! them. Before it holds `Q`, the thread moves `Z`'s handle out of `Y`'s
//! field (reached through `R`) onto its stack, and moves its handle to `R`
//! into `Q`'s field (through a clone of `Q`'s handle, dropped again before
//! `Q` is held). Pass 1 then traces `Q` and `R`: every count matches the
//! edges it recorded, and no held word changes again, yet the thread holds
//! `Z`, which reaches all four. Step 1's re-trace under the locks finds
//! `Y`'s field without `Z`'s handle, and `Z` fails step 3.
//!
//! No wall-clock bound is involved: `TOUCHED` makes "unchanged" exact for a
//! window of any length, so a garbage cycle of any size is freed by one
//! collection. The modification counter is not needed for this argument.
//!
//! **Bounded waits.** A `Weak::upgrade` of a member waits while the member
//! is frozen: at most for its own batch's steps 3–5 (two CASes per
//! member, no user code, no blocking), never for other batches. A
//! component's decision must block upgrades of all its members at once, so
//! the window cannot be shorter than the component.
//!
//! **Any subset is safe to validate** when it is counted, which is why
//! batching (and a proposal that is wrong about components) can only cost
//! garbage, never free live data: a member whose handles are not all in
//! frozen fields of the validated set has a count above its `e(n)` and
//! fails step 3. An exact batch is the exception: taking `e(n)` from pass
//! 1 needs `C` to be whole components of trial deletion's `W` (see
//! "Counting from pass 1"), which is what [`validate`] is given.
//!
//! A batch that fails loses nothing and changes no count: frozen words
//! of `X` are unfrozen (the collector's flags never touch counts), and its
//! roots go back to the buffer for the next collection.
//!
//! Guarded by the loom models `validate_vs_clone_drop_aba`,
//! `validate_vs_move_out_of_mutex`, `validate_vs_move_out_and_back`,
//! `validate_vs_move_to_other_node`, `validate_vs_upgrade` and
//! `touched_component_spares_the_other` (see `loom-tests/`);
//! `scripts/loom-teeth.sh` builds this file without step 4 (`--cfg
//! arcycle_broken`), and with exact batches that skip the comparison of
//! edges (`--cfg arcycle_broken_exact`), and asserts that loom then finds
//! the use-after-free in each.

use super::discover::{Graph, Visited};
use super::prefetch::{prefetch_all, prefetch_children, prefetch_edge_list, prefetch_listed};
use crate::header::*;
use crate::trace::{GuardBuffer, Tracer};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::*;

/// The outcome: the committed garbage (marked `DEAD`, still held), and
/// how many components failed.
pub(crate) struct Validated {
    pub(crate) dead: Vec<u32>,
    pub(crate) aborted: usize,
}

const NONE: u32 = u32::MAX;

/// Small components are validated together, in batches of whole
/// components of at most this many members (a bigger component is a batch
/// of its own), so that the per-batch work (scratch set-up, guard release,
/// the decision) is shared by many 2-cycles. Validating several
/// components at once is sound for the same reason one component is (a
/// member's count must be explained by frozen fields *of the batch*), and
/// frees as much: a failure excludes only what it reaches by recorded
/// edges, and components have none between them. It lengthens the window
/// a frozen member can make an `upgrade` wait by at most this many
/// members' two CASes.
const BATCH: u32 = 64;

/// Buffers reused across the batches of one collection.
struct Scratch {
    /// Position of each graph node in the current batch, or `NONE`.
    pos: Vec<u32>,
    internal: Vec<u64>,
    /// Edges between members of the current batch, by position.
    edges: Vec<(u32, u32)>,
    failed: Vec<bool>,
    /// Failed members and what they reach (see [`reach`]).
    excluded: Vec<bool>,
    words: Vec<u64>,
    /// [`reach`]'s work lists.
    stack: Vec<u32>,
    first: Vec<u32>,
    to: Vec<u32>,
}

/// Validate the proposal `white`; the garbage found is appended to `dead`
/// (empty: the collector's kept table, see `scratch`).
pub(crate) fn validate(
    graph: &mut Graph,
    white: Vec<u32>,
    mut dead: Vec<u32>,
    guards: &mut GuardBuffer,
) -> Validated {
    dead.reserve(white.len());
    let mut aborted = 0;
    if white.is_empty() {
        return Validated { dead, aborted };
    }
    let (order, starts) = graph.components(white);
    let mut scratch = Scratch {
        // Sized by the first batch that counts (see `index_batch`).
        pos: Vec::new(),
        internal: Vec::new(),
        edges: Vec::new(),
        failed: Vec::new(),
        excluded: Vec::new(),
        words: Vec::new(),
        stack: Vec::new(),
        first: Vec::new(),
        to: Vec::new(),
    };
    // One tracer for every batch: its buffers are reused, the guard list's
    // from the last collection too (see `scratch`).
    let mut tracer = Tracer::new();
    tracer.guards = std::mem::take(guards).into_vec();
    let mut b = 0;
    while b + 1 < starts.len() {
        // Components b..e, as many as fit in a batch (at least one).
        let mut e = b + 1;
        while e + 1 < starts.len() && starts[e + 1] - starts[b] <= BATCH {
            e += 1;
        }
        let batch = &order[starts[b] as usize..starts[e] as usize];
        aborted += validate_batch(
            graph,
            batch,
            &starts[b..=e],
            &mut scratch,
            &mut tracer,
            &mut dead,
        );
        b = e;
    }
    // Every batch released its guards: the list's buffer is kept (within
    // `scratch`'s bound).
    *guards = GuardBuffer::keep(std::mem::take(&mut tracer.guards));
    Validated { dead, aborted }
}

/// Steps 1–5 for one batch of whole components (`bounds`: where each
/// starts in `order`, and where the last ends); appends its garbage to
/// `dead`. Returns how many of its components had a failed member.
fn validate_batch<'a>(
    graph: &mut Graph,
    comp: &[u32],
    bounds: &[u32],
    s: &mut Scratch,
    tracer: &mut Tracer<'a>,
    dead: &mut Vec<u32>,
) -> usize {
    let m = comp.len();
    // `s.internal`, `s.edges` and `s.pos` are set by `index_batch`, and
    // read only once it has run (`indexed`).
    s.failed.clear();
    s.failed.resize(m, false);

    // Steps 1-2: trace again, keeping every guard until the decision. While
    // every member re-traced so far holds exactly its pass-1 edges (`exact`,
    // see "Counting from pass 1" in the module docs) nothing is counted: the
    // children's words are not read and the batch's scratch tables are not
    // touched. The first member that differs (or is busy) switches the
    // batch to counting, from pass 1's edge table for the members before it
    // and from the children's words for the rest.
    let mut exact = true;
    for (k, &i) in comp.iter().enumerate() {
        prefetch_listed(&graph.nodes, comp, k);
        if exact {
            prefetch_edge_list(&graph.nodes, &graph.addrs, comp, k);
        } else {
            prefetch_children(&graph.nodes, &graph.addrs, comp, k);
        }
        let v = &graph.nodes[i as usize];
        if v.lock_free {
            // See step 1: its first-pass edges stand.
            if !exact {
                count_pass1_edges(s, graph, comp, k);
            }
            continue;
        }
        let node = v.node;
        // SAFETY: the object is held; its value outlives `tracer`'s guards,
        // which are released below, before this batch's decision ends.
        let busy = unsafe { graph.trace_held(node, tracer) };
        if busy {
            s.failed[k] = true;
            // Remembered so that it is buffered again (`commit`).
            graph.nodes[i as usize].busy = true;
        }
        if exact {
            let v = &graph.nodes[i as usize];
            let before = &graph.addrs[v.first as usize..(v.first + v.len) as usize];
            // loom-tests teeth: the broken build trusts pass 1's counts
            // without comparing the edges.
            let unchanged = cfg!(arcycle_broken_exact) || same_edges(&tracer.edges, before);
            if !busy && unchanged {
                tracer.edges.clear();
                continue;
            }
            exact = false;
            index_batch(s, graph, comp, k);
        }
        // Each child's own word says whether this collection visited it,
        // and its visit number (see `header`).
        prefetch_all(&tracer.edges);
        for child in tracer.edges.drain(..) {
            // SAFETY: the child's handle sits in a field of a held member
            // that this tracer keeps locked (or in an immutable one).
            let j = unsafe { super::discover::visited(child) };
            if let Some(j) = j {
                let to = s.pos[j as usize];
                if to != NONE {
                    s.internal[to as usize] += 1;
                    s.edges.push((k as u32, to));
                }
            }
        }
    }
    // Exact: nothing failed yet, and no edge is needed unless something
    // fails below.
    let mut indexed = !exact;
    reach(s, m);

    // Step 3: read, compare, freeze.
    s.words.clear();
    s.words.resize(m, 0);
    for (k, &i) in comp.iter().enumerate() {
        prefetch_listed(&graph.nodes, comp, k);
        if s.excluded[k] {
            continue;
        }
        let v = &graph.nodes[i as usize];
        let h = v.node.header();
        // `e(n)`: counted above, or (exact) pass 1's count of edges into
        // `n`, which trial deletion found equal to its pass-1 count.
        let internal = if indexed {
            s.internal[k]
        } else {
            debug_assert_eq!(v.rc, u64::from(graph.internal[i as usize]));
            v.rc
        };
        match freeze(h, internal) {
            Some(frozen) => s.words[k] = frozen,
            None => s.failed[k] = true,
        }
    }
    // Step 4: verify.
    for (k, &i) in comp.iter().enumerate() {
        prefetch_listed(&graph.nodes, comp, k);
        if s.words[k] != 0 && !verify(graph.nodes[i as usize].node.header(), s.words[k]) {
            s.failed[k] = true;
        }
    }

    // Step 5: decide. What failed excludes what it reaches by the batch's
    // edges, which an exact batch counts only now, when it needs them.
    if !indexed && s.failed[..m].contains(&true) {
        index_batch(s, graph, comp, m);
        indexed = true;
    }
    reach(s, m);
    for (k, &i) in comp.iter().enumerate() {
        prefetch_listed(&graph.nodes, comp, k);
        let v = &mut graph.nodes[i as usize];
        if !s.excluded[k] {
            mark_dead(v, s.words[k]);
            dead.push(i);
        } else {
            if s.words[k] != 0 {
                unfreeze(v.node.header());
            }
            // Maybe garbage after all, touched at the wrong moment: the
            // next collection tries again from its roots.
            v.retry = v.root;
        }
        if indexed {
            s.pos[i as usize] = NONE;
        }
    }
    // Unlock the batch's fields: nobody can reach the garbage's any more.
    graph.release_guards(tracer);
    // Components of the batch that had a failed member.
    let base = bounds[0];
    bounds
        .windows(2)
        .filter(|w| s.failed[(w[0] - base) as usize..(w[1] - base) as usize].contains(&true))
        .count()
}

/// Step 3 for one member: freeze its word if its count is `internal` (the
/// handles counted in the frozen fields of the set being validated), and
/// return the frozen word; `None` fails the member (a count that differs,
/// a word another collection froze or killed, a lost CAS).
#[inline]
pub(super) fn freeze(h: &Header, internal: u64) -> Option<u64> {
    // Acquire: if this word is final, the accesses of every thread that
    // dropped a handle to `n` happen-before our destruction of it.
    let w = h.strong.load(Acquire);
    let ok = count(w) == internal && w & (DEAD | FROZEN) == 0 && w & HELD != 0;
    let frozen = (w & !TOUCHED) | FROZEN;
    // AcqRel: as the load, and as the verifying CAS.
    (ok && h
        .strong
        .compare_exchange(w, frozen, AcqRel, Relaxed)
        .is_ok())
    .then_some(frozen)
}

/// Step 4 for one member frozen as `frozen`: whether the word is unchanged,
/// proved with an RMW (see the module docs). AcqRel: as the freezing CAS.
#[inline]
pub(super) fn verify(h: &Header, frozen: u64) -> bool {
    // loom-tests teeth: the broken build skips step 4, in validation and
    // in pass 1's closed batches (`early`) alike.
    cfg!(arcycle_broken)
        || h.strong
            .compare_exchange(frozen, frozen, AcqRel, Relaxed)
            .is_ok()
}

/// Step 5 for a member of `D`, verified as `frozen`: mark it garbage.
#[inline]
pub(super) fn mark_dead(v: &mut Visited, frozen: u64) {
    // A plain store suffices: nobody else can modify a verified word any
    // more — no handle to `n` exists outside `D`'s frozen fields (so no
    // clone or drop), and `upgrade` only loads a frozen word. Release: a
    // waiting `upgrade` that sees DEAD returns None; a destructor's clone
    // of a member sees DEAD before it can deref. The type code goes back
    // in (see `header`): the last drops and frees to come decode it.
    v.node.header().strong.store(
        with_code(frozen & !FROZEN, v.code) | DEAD | VALUE_PENDING,
        Release,
    );
    v.dead = true;
}

/// Step 5 for a frozen member that is not garbage after all: unfreeze it.
#[inline]
pub(super) fn unfreeze(h: &Header) {
    // Release: pairs with a waiting `upgrade`'s Acquire load.
    h.strong.fetch_and(!(FROZEN | TOUCHED), Release);
}

/// Whether a member's re-traced children (`now`) are exactly its pass-1
/// edges (`before`, header addresses), in order.
#[inline]
fn same_edges(now: &[NonNull<Header>], before: &[usize]) -> bool {
    now.len() == before.len()
        && now
            .iter()
            .zip(before)
            .all(|(c, &a)| c.as_ptr() as usize == a)
}

/// Switch a batch to counting: every member's position, and the edges of
/// members `..upto` (which hold their pass-1 edges) counted from pass 1's
/// edge table.
fn index_batch(s: &mut Scratch, graph: &Graph, comp: &[u32], upto: usize) {
    if s.pos.is_empty() {
        s.pos.resize(graph.nodes.len(), NONE);
    }
    for (k, &i) in comp.iter().enumerate() {
        s.pos[i as usize] = k as u32;
    }
    s.internal.clear();
    s.internal.resize(comp.len(), 0);
    s.edges.clear();
    for k in 0..upto {
        count_pass1_edges(s, graph, comp, k);
    }
}

/// Count member `k`'s pass-1 edges into the batch (positions indexed).
fn count_pass1_edges(s: &mut Scratch, graph: &Graph, comp: &[u32], k: usize) {
    let v = &graph.nodes[comp[k] as usize];
    for &j in &graph.targets[v.first as usize..(v.first + v.len) as usize] {
        let to = s.pos[j as usize];
        if to != NONE {
            s.internal[to as usize] += 1;
            s.edges.push((k as u32, to));
        }
    }
}

/// Set `s.excluded` to the members of the batch (by position) that failed
/// or that a failed one reaches by the recorded edges (no search when
/// nothing failed, the common case).
fn reach(s: &mut Scratch, m: usize) {
    s.excluded.clear();
    s.excluded.extend_from_slice(&s.failed[..m]);
    s.stack.clear();
    s.stack
        .extend((0..m as u32).filter(|&k| s.failed[k as usize]));
    if s.stack.is_empty() {
        return;
    }
    // Adjacency by source, built only when something failed (rare).
    s.first.clear();
    s.first.resize(m + 1, 0);
    for &(from, _) in &s.edges {
        s.first[from as usize + 1] += 1;
    }
    for k in 0..m {
        s.first[k + 1] += s.first[k];
    }
    s.to.clear();
    s.to.resize(s.edges.len(), 0);
    // `first[k]` is advanced while filling and restored afterwards.
    for &(from, t) in &s.edges {
        s.to[s.first[from as usize] as usize] = t;
        s.first[from as usize] += 1;
    }
    for k in (1..=m).rev() {
        s.first[k] = s.first[k - 1];
    }
    s.first[0] = 0;
    while let Some(k) = s.stack.pop() {
        for &t in &s.to[s.first[k as usize] as usize..s.first[k as usize + 1] as usize] {
            if !s.excluded[t as usize] {
                s.excluded[t as usize] = true;
                s.stack.push(t);
            }
        }
    }
}

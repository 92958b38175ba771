//! Phase 2: trial deletion — propose the garbage `W` from what pass 1 saw,
//! and split it into the components validation checks.
//!
//! # What it guarantees
//!
//! Nothing here touches an object: it reads only the graph pass 1 built
//! (`Graph::nodes`, the edge table, the internal counts), so it needs no
//! loom model of its own and cannot free anything. Its output is a
//! *proposal*, which validation (`validate`) freezes and verifies; a wrong
//! proposal can only cost garbage, never free live data (see the module
//! docs of `discover`, "Pass 1 is only a proposal", and `validate`, "Any
//! subset is safe to validate").
//!
//! * **Trial deletion** (Bacon & Rajan's mark-gray/scan, as one pass):
//!   the *black* set is every visited object whose count its internal
//!   edges do not explain, every busy one, and everything they reach; `W`
//!   is the rest.
//! * **Components**: `W` split into its weakly connected components by
//!   pass-1 edges, so that a failure in one never holds back another.
//! * **What pass 1 decided** (`early`: garbage, marked `DEAD`) is neither
//!   a cause nor proposed. No edge leads out of it, so it explains no
//!   other object's count; an edge into it is stale (see `early`).
//!
//! Guarded by `tests/single_thread.rs` (every shape's garbage freed, live
//! structures kept) and the leak report's tests in `tests/gc_module.rs`
//! (`debug::collect_with_report` follows `black_set`'s `via` to say why a
//! survivor survived).

use super::discover::Graph;

impl Graph {
    /// Trial deletion: the visited objects whose count is fully explained by
    /// internal edges and that no externally referenced object reaches.
    pub(crate) fn trial_delete(&self) -> Vec<u32> {
        let black = self.black_set(None);
        let white = (0..black.len() as u32).filter(|&i| !black[i as usize]);
        if self.dead.is_empty() {
            white.collect()
        } else {
            // Pass 1 decided some garbage (`early`): not proposed again.
            white.filter(|&i| !self.nodes[i as usize].dead).collect()
        }
    }

    /// Trial deletion's black set (Bacon & Rajan's scan): the causes (busy,
    /// or a count the internal edges do not explain) and everything they
    /// reach. With `via`, the node that reached each propagated one is
    /// written there (causes keep what was there).
    pub(crate) fn black_set(&self, mut via: Option<&mut [u32]>) -> Vec<bool> {
        let n = self.nodes.len();
        let mut black = vec![false; n];
        let mut stack = Vec::new();
        for (i, v) in self.nodes.iter().enumerate() {
            // Garbage decided in pass 1 (`early`) is never a cause: a stale
            // edge into it may make its count look unexplained.
            if !v.dead && (v.busy || v.rc != u64::from(self.internal[i])) {
                black[i] = true;
                stack.push(i as u32);
            }
        }
        while let Some(i) = stack.pop() {
            let v = &self.nodes[i as usize];
            for &j in &self.targets[v.first as usize..(v.first + v.len) as usize] {
                if !black[j as usize] {
                    black[j as usize] = true;
                    if let Some(via) = via.as_deref_mut() {
                        via[j as usize] = i;
                    }
                    stack.push(j);
                }
            }
        }
        black
    }

    /// Group a proposal into its weakly connected components (by pass-1
    /// edges): returns the members ordered by component, and the start of
    /// each component in that order (with the end as the last element).
    pub(crate) fn components(&self, white: Vec<u32>) -> (Vec<u32>, Vec<u32>) {
        const NONE: u32 = u32::MAX;
        let m = white.len();
        // Where each visited object is in the proposal. When everything
        // visited is proposed (a collection of pure garbage), the proposal
        // is `0..m` in order (`trial_delete`), and so is this map.
        let pos = if m == self.nodes.len() {
            debug_assert!(white.iter().enumerate().all(|(k, &i)| i == k as u32));
            Vec::new()
        } else {
            let mut pos = vec![NONE; self.nodes.len()];
            for (k, &i) in white.iter().enumerate() {
                pos[i as usize] = k as u32;
            }
            pos
        };
        let pos = |j: u32| if pos.is_empty() { j } else { pos[j as usize] };
        // Union-find with path halving; union by index keeps it simple.
        let mut parent: Vec<u32> = (0..m as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let up = parent[parent[x as usize] as usize];
                parent[x as usize] = up;
                x = up;
            }
            x
        }
        for (k, &i) in white.iter().enumerate() {
            let v = &self.nodes[i as usize];
            for &j in &self.targets[v.first as usize..(v.first + v.len) as usize] {
                let t = pos(j);
                if t != NONE {
                    let (a, b) = (find(&mut parent, k as u32), find(&mut parent, t));
                    if a != b {
                        parent[a.max(b) as usize] = a.min(b);
                    }
                }
            }
        }
        // Counting sort by representative, keeping the proposal's order.
        let mut size = vec![0u32; m + 1];
        let mut rep = vec![0u32; m];
        let mut components = 0;
        for k in 0..m {
            rep[k] = find(&mut parent, k as u32);
            size[rep[k] as usize + 1] += 1;
            components += usize::from(rep[k] == k as u32);
        }
        if components == 1 {
            // One component (a big cycle): the proposal as it is.
            return (white, vec![0, m as u32]);
        }
        // Each component a run of the proposal (a representative is its
        // component's first member, so a run either goes on with the one
        // before it or starts at its representative): the proposal is
        // already grouped, as when the members' roots were buffered one
        // structure after another. No sort.
        if (1..m).all(|k| rep[k] == rep[k - 1] || rep[k] == k as u32) {
            let starts = (0..m as u32)
                .filter(|&k| rep[k as usize] == k)
                .chain([m as u32])
                .collect();
            return (white, starts);
        }
        for k in 0..m {
            size[k + 1] += size[k];
        }
        let mut starts: Vec<u32> = (0..m)
            .filter(|&k| rep[k] == k as u32)
            .map(|k| size[k])
            .collect();
        starts.push(m as u32);
        let mut fill = size;
        let mut order = vec![0u32; m];
        for k in 0..m {
            let r = rep[k] as usize;
            order[fill[r] as usize] = white[k];
            fill[r] += 1;
        }
        (order, starts)
    }
}

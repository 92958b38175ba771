//! The collector's biggest tables, kept from one collection to the next.
//!
//! # What this guarantees
//!
//! * **A big collection does not pay the kernel for its tables again.** The
//!   root list (8 bytes per root), the visited table (48 bytes per traced
//!   object) and its internal-edge counts (4 bytes), and the edge tables
//!   (12 bytes per edge: the target's index and its header's address) of
//!   a collection of a million objects are
//!   fresh mappings of tens of megabytes: every page
//!   faulted in, zeroed and given back to the kernel. Measured on one ring
//!   of a million members, that was a fifth of the collection's time. The
//!   next collection reuses them instead. Validation's guard list (32
//!   bytes per locked member of a batch, a million for that ring) is
//!   kept as an empty buffer for the same reason (`GuardBuffer`): the
//!   ring's page faults per collection went from 12k to 4k.
//! * **No big free after the garbage is freed.** The garbage list (4 bytes
//!   per freed object) is kept too: it is the one table still in use
//!   while the garbage is freed, and glibc's `free` of a chunk of 64 KiB
//!   or more, right after thousands of small frees, first merges every
//!   small free chunk (`malloc_consolidate`): a tenth of a collection of
//!   100k 2-cycles went there.
//! * **Bounded.** What is kept is at most [`RATIO`] times what the last
//!   collection used, or [`FLOOR`] entries per table, whichever is more
//!   (the guard list: [`RATIO`] places per object the last collection
//!   visited): a collection that uses less gives the rest back. (So after
//!   one huge collection the tables stay until the next one; the next
//!   small one frees them.) After a collection of a million locked
//!   objects that is about 100 bytes per object.
//! * **Nothing of the protocol.** The tables are emptied before they are
//!   kept (no address outlives its collection), and only the thread that
//!   holds the collector lock takes or gives them. A nested collection (a
//!   destructor calling `collect()` while the outer one still uses them)
//!   gets fresh ones. Under loom they are never kept: a model's state
//!   space stays what the protocol makes it.
//!
//! Guarded by the tests that collect repeatedly (`tests/concurrent.rs`,
//! `tests/generations.rs`) and by Miri.

use super::discover::Visited;
use crate::buffer::Entry;
use crate::trace::GuardBuffer;

/// How many times what the last collection used the kept tables may hold.
pub(crate) const RATIO: usize = 4;

/// Entries per table always kept (a small collection's worth).
pub(crate) const FLOOR: usize = 16 * 1024;

/// The tables (empty, with their capacity).
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) entries: Vec<Entry>,
    pub(crate) nodes: Vec<Visited>,
    pub(crate) targets: Vec<u32>,
    pub(crate) addrs: Vec<usize>,
    /// Pass 1's internal-edge counts (`Graph::internal`).
    pub(crate) internal: Vec<u32>,
    pub(crate) dead: Vec<u32>,
    /// Validation's guard list (its buffer only: see `GuardBuffer`).
    pub(crate) guards: GuardBuffer,
}

#[cfg(not(arcycle_loom))]
static KEPT: crate::sync::Mutex<Option<Scratch>> = crate::sync::Mutex::new(None);

/// The kept tables, or new ones if none are kept (a nested collection, or
/// the first). The caller holds the collector lock.
pub(crate) fn take() -> Scratch {
    #[cfg(not(arcycle_loom))]
    {
        // Never contended: only the collector lock's holder comes here.
        crate::sync::lock(&KEPT).take().unwrap_or_default()
    }
    #[cfg(arcycle_loom)]
    Scratch::default()
}

/// Keep `tables` for the next collection, emptied, each only as big as
/// [`RATIO`] times what this collection used (each table's length: roots,
/// visited objects, edges, garbage) or [`FLOOR`].
pub(crate) fn give_back(mut tables: Scratch) {
    /// The most places a table may keep after a collection that used
    /// `used` of them.
    fn bound(used: usize) -> usize {
        FLOOR.max(RATIO * used)
    }
    fn keep<T>(v: &mut Vec<T>) {
        let max = bound(v.len());
        v.clear();
        if v.capacity() > max {
            *v = Vec::new();
        }
    }
    // Empty already (see `GuardBuffer`): bounded by the objects visited.
    tables.guards.bound(bound(tables.nodes.len()));
    keep(&mut tables.entries);
    keep(&mut tables.nodes);
    keep(&mut tables.targets);
    keep(&mut tables.addrs);
    keep(&mut tables.internal);
    keep(&mut tables.dead);
    #[cfg(not(arcycle_loom))]
    {
        let mut kept = crate::sync::lock(&KEPT);
        // A nested collection gave its tables back first: keep the bigger.
        let bigger = kept
            .as_ref()
            .is_none_or(|k| k.nodes.capacity() < tables.nodes.capacity());
        if bigger {
            *kept = Some(tables);
        }
    }
    #[cfg(arcycle_loom)]
    drop(tables);
}

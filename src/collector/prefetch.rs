//! Prefetching: the collector's answer to its own barriers.
//!
//! Every hold, release, freeze and verify is a locked RMW, and on x86 no
//! later load starts before one completes: without a hint, each object's
//! cache miss in a big graph would wait for the previous object's RMW.
//! The loops of every phase go over their objects in order, so they ask
//! for the objects (and their pass-1 children) a few places ahead.
//! Prefetches read nothing the program can observe and never fault, so
//! nothing here needs a loom model; they are compiled out under loom and
//! Miri.

use super::discover::Visited;
use crate::header::Header;
use std::ptr::NonNull;

/// Ask the CPU to start loading the cache line at `p`: a hint, which reads
/// nothing the program can observe and never faults. The collector's holds
/// and releases are locked RMWs, which on x86 keep later loads from
/// starting before them, so without it each object's cache miss would wait
/// for the previous object's RMW; prefetching the next objects' headers
/// lets the misses overlap.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(arcycle_loom)))]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 target has, and
    // is defined for any address (it is only a hint).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(arcycle_loom))))]
    let _ = p;
}

/// How far ahead the collector's loops prefetch (objects).
pub(crate) const AHEAD: usize = 8;

/// In a loop over `items` at position `k`: prefetch the header (given by
/// `header`) of the item [`AHEAD`] places on. Every collector loop goes
/// over its objects in order, so that is the one it will touch soon.
#[inline(always)]
pub(crate) fn prefetch_ahead<T>(items: &[T], k: usize, header: impl Fn(&T) -> NonNull<Header>) {
    if let Some(next) = items.get(k + AHEAD) {
        prefetch(header(next).as_ptr());
    }
}

/// [`prefetch_ahead`] for a loop over `list`, indices into `nodes` (a
/// batch's members, the garbage).
#[inline(always)]
pub(crate) fn prefetch_listed(nodes: &[Visited], list: &[u32], k: usize) {
    prefetch_ahead(list, k, |&i| nodes[i as usize].node.header);
}

/// In a loop over `list` (indices into `nodes`) at position `k`: prefetch
/// the headers of the pass-1 children (`Graph::addrs`) of the item
/// [`AHEAD`] places on. Validation's re-trace reads each child's word and
/// a destructor decrements it; in a graph whose edges go anywhere in
/// memory each of those is a cache miss that [`prefetch_listed`] does not
/// cover.
#[inline(always)]
pub(crate) fn prefetch_children(nodes: &[Visited], addrs: &[usize], list: &[u32], k: usize) {
    if let Some(&i) = list.get(k + AHEAD) {
        let v = &nodes[i as usize];
        for &a in &addrs[v.first as usize..(v.first + v.len) as usize] {
            prefetch(a as *const u8);
        }
    }
}

/// In a loop over `list` (indices into `nodes`) at position `k`: prefetch
/// the start of the pass-1 edge list (`Graph::addrs`) of the item
/// [`AHEAD`] places on, which validation compares with what its re-trace
/// finds.
#[inline(always)]
pub(crate) fn prefetch_edge_list(nodes: &[Visited], addrs: &[usize], list: &[u32], k: usize) {
    if let Some(&i) = list.get(k + AHEAD) {
        if let Some(a) = addrs.get(nodes[i as usize].first as usize) {
            prefetch(a);
        }
    }
}

/// Prefetch every header of `edges` (a traced object's children) before
/// the loop that holds or looks up each of them in turn.
#[inline(always)]
pub(crate) fn prefetch_all(edges: &[NonNull<Header>]) {
    for e in edges {
        prefetch(e.as_ptr());
    }
}

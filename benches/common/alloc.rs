//! A counting global allocator, for bytes per object.
//!
//! Counting is off unless a measurement turns it on, so the other
//! workloads pay one relaxed load of a never-written flag per allocation
//! (the same for every contender) and no shared writes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};

pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while enabled.
static NET: AtomicIsize = AtomicIsize::new(0);
/// Bytes allocated while enabled.
static TOTAL: AtomicUsize = AtomicUsize::new(0);
/// Allocations made while enabled.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Allocations minus deallocations while enabled.
static NET_COUNT: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            NET.fetch_add(layout.size() as isize, Relaxed);
            TOTAL.fetch_add(layout.size(), Relaxed);
            COUNT.fetch_add(1, Relaxed);
            NET_COUNT.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            NET.fetch_add(layout.size() as isize, Relaxed);
            TOTAL.fetch_add(layout.size(), Relaxed);
            COUNT.fetch_add(1, Relaxed);
            NET_COUNT.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ENABLED.load(Relaxed) {
            NET.fetch_sub(layout.size() as isize, Relaxed);
            NET_COUNT.fetch_sub(1, Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            NET.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
            TOTAL.fetch_add(new_size.saturating_sub(layout.size()), Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What a counting window saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counted {
    /// Allocated minus freed.
    pub net: isize,
    /// Allocated.
    pub total: usize,
    /// Number of allocations.
    pub allocs: usize,
    /// Allocations minus deallocations.
    pub net_allocs: isize,
}

/// Count the allocations (of every thread) made while `f` runs.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, Counted) {
    NET.store(0, Relaxed);
    TOTAL.store(0, Relaxed);
    COUNT.store(0, Relaxed);
    NET_COUNT.store(0, Relaxed);
    ENABLED.store(true, Relaxed);
    let r = f();
    ENABLED.store(false, Relaxed);
    let c = Counted {
        net: NET.load(Relaxed),
        total: TOTAL.load(Relaxed),
        allocs: COUNT.load(Relaxed),
        net_allocs: NET_COUNT.load(Relaxed),
    };
    (r, c)
}

//! Trait objects (issue #8): `Cc<dyn Shape>` against `Arc<dyn Shape>`, and
//! a ring of `Cc<dyn Shape>` against the same ring of sized `Cc`s.
//!
//! Each side has its own object-safe `Shape` trait (arcycle's needs
//! `Trace`, std's does not) with the same two concrete types behind it:
//!
//! * `Circle`, a leaf: for arcycle `may_have_edges()` is false, so a
//!   `Cc<dyn Shape>` of it is counted exactly like an `Arc`;
//! * `Link`, which holds one optional edge (`Mutex<Option<Cc<dyn Shape>>>`):
//!   cycle-capable, so dropping a shared handle buffers a possible root,
//!   like the sized "node" rows.
//!
//! `SizedLink` is `Link` with its edge typed `Cc<SizedLink>`: the same
//! layout, no vtable, the sized reference for the ring.
//!
//! Every function here takes an iteration count and returns the time those
//! iterations took, like [`super::workloads`].

use super::alloc;
use super::workloads::big_stack;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// arcycle's side.
pub mod cc {
    use arcycle::{Cc, Trace};
    use std::sync::Mutex;

    pub trait Shape: Trace + Send + Sync {
        /// The virtual call the deref rows time.
        fn area(&self) -> f64;
        /// Set the one outgoing edge (a no-op for a leaf).
        fn point_to(&self, to: Cc<dyn Shape>);
    }

    #[derive(Trace)]
    pub struct Circle(pub f64);

    impl Shape for Circle {
        fn area(&self) -> f64 {
            3.0 * self.0 * self.0
        }
        fn point_to(&self, _: Cc<dyn Shape>) {}
    }

    #[derive(Trace)]
    pub struct Link {
        pub r: f64,
        pub next: Mutex<Option<Cc<dyn Shape>>>,
    }

    impl Shape for Link {
        fn area(&self) -> f64 {
            self.r * self.r
        }
        fn point_to(&self, to: Cc<dyn Shape>) {
            *self.next.lock().unwrap() = Some(to);
        }
    }

    /// [`Link`] without the vtable: the edge is a sized `Cc`.
    #[derive(Trace)]
    pub struct SizedLink {
        pub r: f64,
        pub next: Mutex<Option<Cc<SizedLink>>>,
    }

    pub fn circle(r: f64) -> Cc<dyn Shape> {
        arcycle::coerce!(Cc::new(Circle(r)))
    }

    pub fn link(r: f64) -> Cc<dyn Shape> {
        arcycle::coerce!(Cc::new(Link {
            r,
            next: Mutex::new(None),
        }))
    }

    pub fn sized_link(r: f64) -> Cc<SizedLink> {
        Cc::new(SizedLink {
            r,
            next: Mutex::new(None),
        })
    }
}

/// std's side.
pub mod arc {
    use std::sync::{Arc, Mutex};

    pub trait Shape: Send + Sync {
        fn area(&self) -> f64;
        fn point_to(&self, to: Arc<dyn Shape>);
    }

    pub struct Circle(pub f64);

    impl Shape for Circle {
        fn area(&self) -> f64 {
            3.0 * self.0 * self.0
        }
        fn point_to(&self, _: Arc<dyn Shape>) {}
    }

    pub struct Link {
        pub r: f64,
        pub next: Mutex<Option<Arc<dyn Shape>>>,
    }

    impl Shape for Link {
        fn area(&self) -> f64 {
            self.r * self.r
        }
        fn point_to(&self, to: Arc<dyn Shape>) {
            *self.next.lock().unwrap() = Some(to);
        }
    }

    pub fn circle(r: f64) -> Arc<dyn Shape> {
        Arc::new(Circle(r))
    }

    pub fn link(r: f64) -> Arc<dyn Shape> {
        Arc::new(Link {
            r,
            next: Mutex::new(None),
        })
    }
}

// ---------------------------------------------------------------------------
// single-thread micro operations (per iteration: one operation)
// ---------------------------------------------------------------------------

/// Clone and drop a handle made by `make` (made per run, like the sized
/// rows' `clone_drop_*`).
pub fn clone_drop<H: Clone>(make: impl Fn() -> H, iters: u64) -> Duration {
    let h = make();
    let t = Instant::now();
    for _ in 0..iters {
        drop(black_box(black_box(&h).clone()));
    }
    t.elapsed()
}

/// Dereference a handle and make a virtual call through the vtable
/// (`call` is `|h| h.area()`; `black_box` hides the handle, so the call
/// cannot be devirtualized).
pub fn deref_call<H>(make: impl Fn() -> H, call: impl Fn(&H) -> f64, iters: u64) -> Duration {
    let h = make();
    let mut sum = 0.0f64;
    let t = Instant::now();
    for _ in 0..iters {
        sum += call(black_box(&h));
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

// ---------------------------------------------------------------------------
// a ring (or, for Arc, a chain) of n: per iteration one structure; the
// report divides by n
// ---------------------------------------------------------------------------

/// `n` outside handles to a ring of `n` `Cc<dyn Shape>` links (`i -> i+1`,
/// the last back to the first).
pub fn dyn_ring(n: usize) -> Vec<arcycle::Cc<dyn cc::Shape>> {
    let v: Vec<_> = (0..n).map(|i| cc::link(i as f64)).collect();
    for (i, h) in v.iter().enumerate() {
        h.point_to(v[(i + 1) % n].clone());
    }
    v
}

/// The same ring with sized `Cc<SizedLink>` edges.
pub fn sized_ring(n: usize) -> Vec<arcycle::Cc<cc::SizedLink>> {
    let v: Vec<_> = (0..n).map(|i| cc::sized_link(i as f64)).collect();
    for (i, h) in v.iter().enumerate() {
        *h.next.lock().unwrap() = Some(v[(i + 1) % n].clone());
    }
    v
}

/// `n` outside handles to a chain of `n` `Arc<dyn Shape>` links (`i ->
/// i+1`, the last pointing nowhere): the ring without its closing edge.
/// Dropped in order, each handle frees its node (no recursion).
pub fn arc_chain(n: usize) -> Vec<std::sync::Arc<dyn arc::Shape>> {
    let v: Vec<_> = (0..n).map(|i| arc::link(i as f64)).collect();
    for w in v.windows(2) {
        w[0].point_to(w[1].clone());
    }
    v
}

/// Time dropping the outside handles of a structure made by `build` and
/// then one `arcycle::collect()` where `collect` is set, `iters` times
/// (building is not timed). Automatic collection is off throughout, so no
/// background collection overlaps the timed work; a big-stack thread, as
/// for the sized collect rows.
pub fn drop_collect<S>(build: impl Fn() -> S + Sync, collect: bool, iters: u64) -> Duration {
    big_stack(|| {
        arcycle::disable();
        // Settle what earlier work left buffered.
        arcycle::collect();
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let s = build();
            let t = Instant::now();
            drop(s);
            if collect {
                arcycle::collect();
            }
            total += t.elapsed();
        }
        arcycle::enable();
        total
    })
}

/// One untimed round of [`drop_collect`] with the allocator counting,
/// after one uncounted round on the same thread: the fraction of the
/// allocations it made that were given back (by count).
pub fn freed_fraction<S>(build: impl Fn() -> S + Sync, collect: bool) -> f64 {
    big_stack(|| {
        arcycle::disable();
        arcycle::collect();
        // One uncounted round first, as in `workloads::freed_fraction`:
        // per-thread set-up that is kept (arcycle's root ring) is not a
        // leak of garbage, which would show in the counted round too.
        drop(build());
        if collect {
            arcycle::collect();
        }
        let (_, c) = alloc::count(|| {
            drop(build());
            if collect {
                arcycle::collect();
            }
        });
        arcycle::enable();
        if c.allocs == 0 {
            return 1.0;
        }
        1.0 - c.net_allocs.max(0) as f64 / c.allocs as f64
    })
}

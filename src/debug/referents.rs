//! Looking at what a `Trace` impl reports: [`referents`] and
//! [`TraceTest`].
//!
//! # Soundness
//!
//! Both call the value's `Trace` impl with a fresh tracer, the way the
//! collector does, on a value that is alive for the whole call (a `Cc`
//! handle, or a `&T`, is held by the caller). A `Trace` impl only try-locks
//! (its contract), so this never blocks: if a lock is taken — by another
//! thread, or by a collection that is tracing the same value — the impl
//! reports [`busy`](crate::Tracer::busy) and we say so. Neither takes the
//! collector lock, and neither holds the value for the collector: a
//! collection that meets a lock held by us treats the object as busy
//! (kept, tried again later), exactly as when a mutator holds it.
//!
//! An edge's target is read (its strong count) only while the tracer still
//! holds every guard the impl handed over, so a handle read under a lock
//! is still in place — for impls that keep the `Trace` contract. A
//! [`TraceTest`] reads counts only of the handles the test itself names
//! (which it borrows), never of an unexpected edge, so that checking a
//! broken impl cannot read freed memory.

use crate::header::count;
use crate::trace::{Node, Trace, Tracer};
use crate::Cc;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;

/// One edge a `Trace` impl reported: the `Cc` it points to.
///
/// Only edges to types that may hold a `Cc` are reported at all (the
/// tracer drops edges to [leaf](crate::leaf) types: they cannot be on a
/// cycle).
///
/// ```
/// use arcycle::{Cc, Trace};
///
/// #[derive(Trace)]
/// struct Pair(Cc<Pair2>, u8);
/// #[derive(Trace)]
/// struct Pair2(Option<Cc<Pair2>>);
///
/// let child = Cc::new(Pair2(None));
/// let p = Cc::new(Pair(child.clone(), 0));
/// let r = arcycle::debug::referents(&p);
/// assert_eq!(r.edges.len(), 1);
/// assert!(r.edges[0].is(&child));
/// assert!(r.edges[0].type_name.ends_with("Pair2"));
/// assert_eq!(r.edges[0].strong_count, Some(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Referent {
    /// `std::any::type_name` of the target's value.
    pub type_name: &'static str,
    /// The target's address (compare with [`Referent::is`]).
    pub addr: usize,
    /// The target's strong count during the trace; `None` where it was
    /// not read (an edge a [`TraceTest`] did not expect).
    pub strong_count: Option<usize>,
}

impl Referent {
    /// Whether this edge points to `cc`'s object.
    ///
    /// ```
    /// let a = arcycle::Cc::new(vec![arcycle::Cc::new(Vec::<arcycle::Cc<u8>>::new())]);
    /// let r = arcycle::debug::referents(&a);
    /// assert!(r.edges[0].is(&a[0]));
    /// ```
    pub fn is<U: Trace>(&self, cc: &Cc<U>) -> bool {
        self.addr == cc.header_ptr().as_ptr() as usize
    }

    fn of(node: Node, strong_count: Option<usize>) -> Referent {
        Referent {
            type_name: node.type_name(),
            addr: node.addr(),
            strong_count,
        }
    }
}

impl fmt::Display for Referent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {:#x}", self.type_name, self.addr)?;
        if let Some(n) = self.strong_count {
            write!(f, " (strong {n})")?;
        }
        Ok(())
    }
}

/// What [`referents`] found.
///
/// ```
/// let r = arcycle::debug::referents(&arcycle::Cc::new(Vec::<arcycle::Cc<Vec<u8>>>::new()));
/// assert!(r.edges.is_empty() && !r.busy);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Referents {
    /// Every edge reported, in the impl's order (a handle held twice
    /// appears twice).
    pub edges: Vec<Referent>,
    /// A lock the impl needed was taken (by another thread, or by a
    /// collection tracing the value right now): `edges` is incomplete.
    pub busy: bool,
}

/// List the outgoing edges of `cc`'s value, as its `Trace` impl reports
/// them (for debugging: what does the collector see from here?).
///
/// Runs the impl on this thread with a fresh tracer; it only try-locks, so
/// this never blocks, and a taken lock shows as [`Referents::busy`]. The
/// strong count of each target is read while every lock the impl took is
/// still held. A value the collector has already destroyed (a collected
/// peer seen from a destructor) has no edges. See the module docs for why
/// this is sound.
///
/// # Panics
///
/// If the `Trace` impl panics.
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Vec<Cc<Node>>>);
///
/// let a = Cc::new(Node(Mutex::new(Vec::new())));
/// let b = Cc::new(Node(Mutex::new(Vec::new())));
/// a.0.lock().unwrap().push(b.clone());
/// a.0.lock().unwrap().push(a.clone());
/// let r = arcycle::debug::referents(&a);
/// assert_eq!(r.edges.len(), 2);
/// assert!(r.edges[0].is(&b) && r.edges[1].is(&a));
///
/// let guard = a.0.lock().unwrap(); // taken: the impl reports busy
/// assert!(arcycle::debug::referents(&a).busy);
/// drop(guard);
/// # a.0.lock().unwrap().clear();
/// ```
pub fn referents<T: Trace>(cc: &Cc<T>) -> Referents {
    let Some(value) = Cc::try_deref(cc) else {
        return Referents::default();
    };
    let mut tracer = Tracer::new();
    value.trace(&mut tracer);
    // The guards are still in `tracer`: every reported handle is in place,
    // so its target is alive (for an impl that keeps the contract).
    let edges = tracer
        .edges
        .iter()
        .map(|&h| {
            let n = Node::settled(h);
            // Relaxed: a number for a human; the target is alive (above).
            let strong = count(n.header().strong.load(Relaxed)) as usize;
            Referent::of(n, Some(strong))
        })
        .collect();
    let busy = tracer.busy;
    drop(tracer);
    Referents { edges, busy }
}

type Check<'v, T> = (String, Box<dyn Fn(&T) -> bool + 'v>);

/// A unit test for a hand-written `Trace` impl: which edges it reports,
/// compared with the handles you know the value owns, and whether it
/// keeps its locks while the tracer holds its guards.
///
/// [`run`](TraceTest::run) traces the value once and fails with a
/// [`TraceError`] when the impl
///
/// * reports an edge you did not [`expect`](TraceTest::expect) — it
///   over-reports, which can make the collector free live data;
/// * reports a handle more often than you expected it (or more often than
///   the object has strong handles at all);
/// * misses an expected handle (safe, but its cycles leak);
/// * let a lock go that it should have handed to
///   [`Tracer::hold`](crate::Tracer::hold) — a
///   [`while_held`](TraceTest::while_held) check, run while the tracer
///   still holds the impl's guards, returned false;
/// * reported itself busy (a lock was taken: nothing could be checked).
///
/// ```
/// use arcycle::debug::{TraceError, TraceTest};
/// use arcycle::{Cc, Trace, Tracer};
/// use std::sync::Mutex;
///
/// struct Slot(Mutex<Vec<Cc<Slot>>>);
///
/// // SAFETY: reports each handle once, read under the lock, whose guard
/// // the tracer keeps.
/// unsafe impl Trace for Slot {
///     fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
///         let Ok(guard) = self.0.try_lock() else { return tracer.busy() };
///         for cc in guard.iter() {
///             tracer.edge(cc);
///         }
///         tracer.hold(guard);
///     }
/// }
///
/// let a = Cc::new(Slot(Mutex::new(Vec::new())));
/// let b = Cc::new(Slot(Mutex::new(Vec::new())));
/// a.0.lock().unwrap().push(b.clone());
///
/// let report = TraceTest::new(&*a)
///     .expect(&b)
///     .while_held("the Mutex is still locked", |s| s.0.try_lock().is_err())
///     .run()
///     .unwrap();
/// assert_eq!(report.edges.len(), 1);
/// assert_eq!(report.guards, 1);
///
/// // Forgetting `b` in the expectation exposes the edge as unexpected.
/// assert!(matches!(TraceTest::new(&*a).run(), Err(TraceError::Unexpected { .. })));
/// ```
pub struct TraceTest<'v, T: Trace + ?Sized> {
    value: &'v T,
    /// Expected targets by address: (node, times expected).
    expected: BTreeMap<usize, (Node, usize)>,
    checks: Vec<Check<'v, T>>,
}

/// What a passing [`TraceTest`] saw.
///
/// ```
/// let v: Vec<arcycle::Cc<Vec<u8>>> = Vec::new();
/// let report = arcycle::debug::TraceTest::new(&v).run().unwrap();
/// assert_eq!((report.edges.len(), report.guards), (0, 0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceReport {
    /// Every edge reported, in order.
    pub edges: Vec<Referent>,
    /// Lock guards the impl handed to [`Tracer::hold`](crate::Tracer::hold).
    pub guards: usize,
}

/// Why a [`TraceTest`] failed.
///
/// ```
/// let e = arcycle::debug::TraceError::Busy;
/// assert!(e.to_string().contains("busy"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// The impl reported [`busy`](crate::Tracer::busy): a lock it needs
    /// was taken, so nothing could be checked.
    Busy,
    /// An edge to an object the test did not expect: the impl reports a
    /// handle the value does not own (unsound: can free live data).
    Unexpected {
        /// The edge.
        edge: Referent,
    },
    /// An expected handle reported more often than expected (or than the
    /// object has strong handles): the impl over-reports (unsound).
    TooOften {
        /// The edge.
        edge: Referent,
        /// Times reported.
        reported: usize,
        /// Times expected.
        expected: usize,
    },
    /// An expected handle reported less often than expected: the impl
    /// under-reports (safe, but cycles through it leak).
    Missing {
        /// The edge.
        edge: Referent,
        /// Times reported.
        reported: usize,
        /// Times expected.
        expected: usize,
    },
    /// A [`TraceTest::while_held`] check failed while the tracer held the
    /// impl's guards: it let a lock go instead of handing the guard to
    /// [`Tracer::hold`](crate::Tracer::hold), so the edges it reported
    /// can move while the collector relies on them (unsound).
    NotHeld {
        /// The check's description.
        check: String,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Busy => f.write_str("the Trace impl reported busy (a lock was taken)"),
            TraceError::Unexpected { edge } => write!(
                f,
                "the Trace impl reported an edge to {edge}, which the test did not expect \
                 (over-reporting frees live data)"
            ),
            TraceError::TooOften {
                edge,
                reported,
                expected,
            } => write!(
                f,
                "the Trace impl reported {edge} {reported} times, expected {expected} \
                 (over-reporting frees live data)"
            ),
            TraceError::Missing {
                edge,
                reported,
                expected,
            } => write!(
                f,
                "the Trace impl reported {edge} {reported} times, expected {expected} \
                 (under-reporting leaks cycles)"
            ),
            TraceError::NotHeld { check } => write!(
                f,
                "while the tracer held the impl's guards, this check failed: {check} \
                 (a guard must be handed to Tracer::hold, not dropped)"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

impl<'v, T: Trace + ?Sized> TraceTest<'v, T> {
    /// A test of `value`'s `Trace` impl (the value need not be in a `Cc`).
    ///
    /// ```
    /// let _t = arcycle::debug::TraceTest::new(&5u32);
    /// ```
    pub fn new(value: &'v T) -> Self {
        TraceTest {
            value,
            expected: BTreeMap::new(),
            checks: Vec::new(),
        }
    }

    /// Expect the impl to report `cc` (once per call: call it twice for a
    /// value that holds two handles to the same object). Handles to
    /// [leaf](crate::leaf) types are never reported and are ignored here.
    ///
    /// ```
    /// let a = arcycle::Cc::new(Vec::<arcycle::Cc<u8>>::new());
    /// let v = vec![a.clone(), a.clone()];
    /// arcycle::debug::TraceTest::new(&v).expect(&a).expect(&a).run().unwrap();
    /// ```
    pub fn expect<U: ?Sized>(mut self, cc: &'v Cc<U>) -> Self {
        if cc.is_tracked() {
            let n = Node::settled(cc.header_ptr());
            self.expected.entry(n.addr()).or_insert((n, 0)).1 += 1;
        }
        self
    }

    /// Add a check run while the tracer still holds every guard the impl
    /// handed over; it must return true. Typically "the lock is still
    /// taken": `|v| v.field.try_lock().is_err()`, which catches an impl
    /// that reads under a lock and then drops the guard.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// let m: Mutex<Vec<arcycle::Cc<Vec<u8>>>> = Mutex::new(Vec::new());
    /// arcycle::debug::TraceTest::new(&m)
    ///     .while_held("locked", |m| m.try_lock().is_err())
    ///     .run()
    ///     .unwrap();
    /// ```
    pub fn while_held<F>(mut self, what: &str, check: F) -> Self
    where
        F: Fn(&T) -> bool + 'v,
    {
        self.checks.push((what.to_owned(), Box::new(check)));
        self
    }

    /// Trace the value once and compare. See [`TraceTest`].
    ///
    /// # Panics
    ///
    /// If the `Trace` impl (or a check) panics.
    ///
    /// ```
    /// let v: Option<arcycle::Cc<Vec<u8>>> = None;
    /// assert!(arcycle::debug::TraceTest::new(&v).run().is_ok());
    /// ```
    pub fn run(self) -> Result<TraceReport, TraceError> {
        let mut tracer = Tracer::new();
        self.value.trace(&mut tracer);
        if tracer.busy {
            return Err(TraceError::Busy);
        }
        // While the guards are held: the checks, then the counts.
        for (what, check) in &self.checks {
            if !check(self.value) {
                return Err(TraceError::NotHeld {
                    check: what.clone(),
                });
            }
        }
        let mut reported: BTreeMap<usize, usize> = BTreeMap::new();
        let mut edges = Vec::with_capacity(tracer.edges.len());
        for &h in &tracer.edges {
            let n = Node::settled(h);
            *reported.entry(n.addr()).or_insert(0) += 1;
            // Counts are read only for expected targets, whose handles the
            // test borrows (module docs).
            let strong = self.expected.get(&n.addr()).map(|(e, _)| {
                // Relaxed: a number to compare; the caller's handle keeps
                // the target alive.
                count(e.header().strong.load(Relaxed)) as usize
            });
            edges.push(Referent::of(n, strong));
        }
        let guards = tracer.guards.len();
        drop(tracer);
        for edge in &edges {
            let times = reported[&edge.addr];
            match self.expected.get(&edge.addr) {
                None => return Err(TraceError::Unexpected { edge: edge.clone() }),
                Some(&(_, want)) => {
                    let strong = edge.strong_count.unwrap_or(usize::MAX);
                    if times > want || times > strong {
                        return Err(TraceError::TooOften {
                            edge: edge.clone(),
                            reported: times,
                            expected: want,
                        });
                    }
                }
            }
        }
        for (addr, &(n, want)) in &self.expected {
            let times = reported.get(addr).copied().unwrap_or(0);
            if times < want {
                // Relaxed: as above.
                let strong = count(n.header().strong.load(Relaxed)) as usize;
                return Err(TraceError::Missing {
                    edge: Referent::of(n, Some(strong)),
                    reported: times,
                    expected: want,
                });
            }
        }
        Ok(TraceReport { edges, guards })
    }
}

//! The leak report: which objects one collection examined and kept, and
//! why.
//!
//! # Invariants
//!
//! * **Only when asked.** The collector records only in a collection run by
//!   [`collect_with_report`]: every other collection passes no recorder and
//!   traces with no hidden-edge recording (one branch per derived
//!   `Arc`/skipped field, in the collector's trace only).
//! * **Read while held.** `Recorder::record` runs inside the collection's
//!   locked phases, between validation and commit, while every examined
//!   object is still held: it reads headers the collector holds and static
//!   type names, and runs no user code.
//! * **Hidden edges are labels.** An edge a derived impl found behind a
//!   `std::sync::Arc` or a `#[trace(skip)]` field is matched to survivors
//!   by address only and never counted (see `trace::record_hidden`).

use crate::collector::discover::Graph;
use crate::collector::validate::Validated;
use crate::trace::{HiddenKind, Trace};
use crate::Cc;
use std::fmt::{self, Write as _};

/// Why a survivor of [`collect_with_report`] was kept.
///
/// ```
/// let r = arcycle::debug::Reason::ExternalHandle { unexplained: 1 };
/// assert!(r.to_string().contains("1 handle"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// More strong handles than edges from examined objects: a handle the
    /// collector cannot see holds it — a local variable, a field of an
    /// object no collection examined, a `#[trace(skip)]` field or a
    /// `std::sync::Arc` it could not look into, a type declared a leaf.
    ExternalHandle {
        /// Strong handles not explained by edges from examined objects.
        unexplained: usize,
    },
    /// Like `ExternalHandle`, and a derived `Trace` impl of the survivor
    /// `holder` holds a handle to it inside a `std::sync::Arc` field, which
    /// the collector never traces into (the `Arc`'s other clones are
    /// invisible to it) — directly, or (`via`) through an object of that
    /// type that no collection examined. Use `Cc` instead of `Arc` inside
    /// collected graphs.
    HiddenInArc {
        /// Strong handles not explained by edges from examined objects.
        unexplained: usize,
        /// The survivor whose `Arc` field holds the handle.
        holder: usize,
        /// The type of the unexamined object in between, if any.
        via: Option<&'static str>,
    },
    /// Like `HiddenInArc`, for a `#[trace(skip)]` field of `holder`.
    HiddenInSkippedField {
        /// Strong handles not explained by edges from examined objects.
        unexplained: usize,
        /// The survivor whose skipped field holds the handle.
        holder: usize,
        /// The type of the unexamined object in between, if any.
        via: Option<&'static str>,
    },
    /// Its `Trace` impl found a lock taken: the object was in use.
    BusyLock,
    /// Its `Trace` impl panicked once; it is never traced again (see
    /// [`Stats::quarantined`](crate::Stats::quarantined)).
    Quarantined,
    /// Its count changed while the collection examined it (fewer handles
    /// than edges seen, or a handle taken or dropped during validation):
    /// it was in use; the next collection looks again.
    Changed,
    /// Kept because survivor `from` (kept for its own reason) reaches it.
    ReachableFrom {
        /// The survivor that reaches it.
        from: usize,
    },
}

/// "N unexplained handle(s); #H holds one" (or "held by a T that #H
/// holds"), then where it is hidden.
fn hidden(
    f: &mut fmt::Formatter<'_>,
    unexplained: usize,
    holder: usize,
    via: Option<&'static str>,
    place: &str,
) -> fmt::Result {
    let handles = if unexplained == 1 {
        "handle"
    } else {
        "handles"
    };
    write!(f, "{unexplained} unexplained {handles}; ")?;
    match via {
        None => write!(f, "#{holder} holds one"),
        Some(t) => write!(f, "held by a {t} that #{holder} holds"),
    }?;
    f.write_str(place)
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handles = |n: usize| if n == 1 { "handle" } else { "handles" };
        match *self {
            Reason::ExternalHandle { unexplained } => write!(
                f,
                "{unexplained} {} from outside the examined objects (external handle)",
                handles(unexplained)
            ),
            Reason::HiddenInArc {
                unexplained,
                holder,
                via,
            } => hidden(
                f,
                unexplained,
                holder,
                via,
                " inside a std::sync::Arc (never traced: use Cc)",
            ),
            Reason::HiddenInSkippedField {
                unexplained,
                holder,
                via,
            } => hidden(f, unexplained, holder, via, " in a #[trace(skip)] field"),
            Reason::BusyLock => f.write_str("a lock its Trace impl needs was taken (busy)"),
            Reason::Quarantined => f.write_str("quarantined (its Trace impl panicked)"),
            Reason::Changed => f.write_str("changed while being examined (in use)"),
            Reason::ReachableFrom { from } => write!(f, "reachable from #{from}"),
        }
    }
}

/// One object a collection examined and kept.
///
/// ```
/// let report = arcycle::debug::collect_with_report();
/// for s in &report.survivors {
///     println!("{} ({} strong): {}", s.type_name, s.strong_count, s.reason);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Survivor {
    /// Its index in [`LeakReport::survivors`] (the `#n` of the text).
    pub id: usize,
    /// `std::any::type_name` of its value.
    pub type_name: &'static str,
    /// Its address (compare with [`Survivor::is`]).
    pub addr: usize,
    /// Its strong count when the collection traced it.
    pub strong_count: usize,
    /// Edges to it from the objects the collection examined.
    pub explained: usize,
    /// It came from the root buffer (a drop left its count above zero).
    pub root: bool,
    /// Why it was kept.
    pub reason: Reason,
}

impl Survivor {
    /// Whether this survivor is the object `cc` points to.
    ///
    /// ```
    /// let report = arcycle::debug::collect_with_report();
    /// let x = arcycle::Cc::new(1u8);
    /// assert!(!report.survivors.iter().any(|s| s.is(&x)));
    /// ```
    pub fn is<U: Trace>(&self, cc: &Cc<U>) -> bool {
        self.addr == cc.header_ptr().as_ptr() as usize
    }
}

/// What [`collect_with_report`] found: the objects its collection freed,
/// and each object it examined and kept, with the reason.
///
/// Prints as text (`Display`); [`to_dot`](LeakReport::to_dot) renders the
/// survivors and their edges as a Graphviz graph.
///
/// ```
/// let report = arcycle::debug::collect_with_report();
/// let text = report.to_string();
/// let dot = report.to_dot();
/// assert!(text.starts_with("leak report"));
/// assert!(dot.starts_with("digraph"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeakReport {
    /// Objects the collection freed.
    pub freed: usize,
    /// Every examined object that survived.
    pub survivors: Vec<Survivor>,
    /// Edges between survivors (by id), as their `Trace` impls reported
    /// them.
    pub edges: Vec<(usize, usize)>,
    /// Handles between survivors that a derived `Trace` impl holds but
    /// does not report.
    pub hidden: Vec<HiddenHandle>,
}

/// A handle to survivor `target` that survivor `holder` holds without
/// reporting it (see [`LeakReport::hidden`]).
///
/// ```
/// let h = arcycle::debug::HiddenHandle { holder: 0, target: 1, in_arc: true, via: None };
/// assert!(h.in_arc);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HiddenHandle {
    /// The survivor whose field hides the handle.
    pub holder: usize,
    /// The survivor it points to.
    pub target: usize,
    /// Inside a `std::sync::Arc` field (else a `#[trace(skip)]` field).
    pub in_arc: bool,
    /// The type of an object no collection examined, which the field
    /// holds and which holds `target`; `None` if the field holds `target`
    /// itself.
    pub via: Option<&'static str>,
}

impl LeakReport {
    /// The survivors that are `cc`'s object (at most one).
    ///
    /// ```
    /// let report = arcycle::debug::collect_with_report();
    /// assert!(report.find(&arcycle::Cc::new(0u8)).is_none());
    /// ```
    pub fn find<U: Trace>(&self, cc: &Cc<U>) -> Option<&Survivor> {
        self.survivors.iter().find(|s| s.is(cc))
    }

    /// The survivors kept for a reason of their own (not only because
    /// another survivor reaches them): where a leak starts.
    ///
    /// ```
    /// let report = arcycle::debug::collect_with_report();
    /// assert!(report.causes().all(|s| !matches!(s.reason, arcycle::debug::Reason::ReachableFrom { .. })));
    /// ```
    pub fn causes(&self) -> impl Iterator<Item = &Survivor> {
        self.survivors
            .iter()
            .filter(|s| !matches!(s.reason, Reason::ReachableFrom { .. }))
    }

    /// The survivors and their edges as a Graphviz `digraph`: one box per
    /// survivor (type, counts, reason; causes in red), solid arrows for
    /// reported edges, dashed ones for handles hidden in an `Arc` or a
    /// skipped field.
    ///
    /// ```
    /// let dot = arcycle::debug::collect_with_report().to_dot();
    /// assert!(dot.trim_end().ends_with('}'));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph arcycle_survivors {\n  node [shape=box, fontname=monospace];\n");
        for s in &self.survivors {
            let color = if matches!(s.reason, Reason::ReachableFrom { .. }) {
                "black"
            } else {
                "red"
            };
            let _ = writeln!(
                out,
                "  n{} [color={color}, label=\"#{} {}\\nstrong {} / explained {}{}\\n{}\"];",
                s.id,
                s.id,
                escape(s.type_name),
                s.strong_count,
                s.explained,
                if s.root { " (root)" } else { "" },
                escape(&s.reason.to_string()),
            );
        }
        for &(a, b) in &self.edges {
            let _ = writeln!(out, "  n{a} -> n{b};");
        }
        for h in &self.hidden {
            let kind = if h.in_arc { "Arc" } else { "skip" };
            let label = match h.via {
                None => kind.to_owned(),
                Some(t) => format!("{kind} via {}", escape(t)),
            };
            let _ = writeln!(
                out,
                "  n{} -> n{} [style=dashed, color=red, label=\"{label}\"];",
                h.holder, h.target
            );
        }
        out.push_str("}\n");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let causes = self.causes().count();
        writeln!(
            f,
            "leak report: freed {}; {} examined object(s) survived, {} for a reason of their own",
            self.freed,
            self.survivors.len(),
            causes
        )?;
        for s in &self.survivors {
            writeln!(
                f,
                "  #{} {} (strong {}, explained {}{}): {}",
                s.id,
                s.type_name,
                s.strong_count,
                s.explained,
                if s.root { ", root" } else { "" },
                s.reason
            )?;
        }
        Ok(())
    }
}

/// Collects what a report needs from one collection (see
/// `collector::run`).
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) report: LeakReport,
}

impl Recorder {
    /// Called by the collector between validation and commit, while every
    /// examined object is held.
    pub(crate) fn record(&mut self, graph: &Graph, validated: &Validated) {
        let n = graph.nodes.len();
        let mut dead = vec![false; n];
        for &i in &validated.dead {
            dead[i as usize] = true;
        }
        // Trial deletion's black set again, remembering who made whom
        // black: a node is a cause (busy, or a count its internal edges do
        // not explain) or reached from one.
        const NONE: u32 = u32::MAX;
        let mut via = vec![NONE; n];
        let black = graph.black_set(Some(&mut via));
        // Survivor ids, in visiting order.
        let mut id = vec![NONE; n];
        let mut next = 0u32;
        for i in 0..n {
            if !dead[i] {
                id[i] = next;
                next += 1;
            }
        }
        // Hidden edges, by target address, to survivors only.
        let by_addr: std::collections::HashMap<usize, u32> = (0..n)
            .filter(|&i| !dead[i])
            .map(|i| (graph.nodes[i].node.addr(), i as u32))
            .collect();
        let mut hidden_to: Vec<Option<(usize, HiddenKind, Option<&'static str>)>> = vec![None; n];
        for &(from, e) in &graph.hidden {
            let holder = id[from as usize];
            let Some(&t) = by_addr.get(&e.target) else {
                continue;
            };
            if holder == NONE {
                continue;
            }
            let via = match e.via {
                None => None,
                // An examined object in between reports its edge itself.
                Some(v) if by_addr.contains_key(&v.addr()) => continue,
                Some(v) => Some(v.type_name()),
            };
            let h = HiddenHandle {
                holder: holder as usize,
                target: id[t as usize] as usize,
                in_arc: e.kind == HiddenKind::Arc,
                via,
            };
            if !self.report.hidden.contains(&h) {
                self.report.hidden.push(h);
            }
            let slot = &mut hidden_to[t as usize];
            if slot.is_none() || (via.is_none() && slot.is_some_and(|s| s.2.is_some())) {
                *slot = Some((holder as usize, e.kind, via));
            }
        }
        for (i, v) in graph.nodes.iter().enumerate() {
            if dead[i] {
                continue;
            }
            let explained = graph.internal[i];
            let unexplained = v.rc.saturating_sub(u64::from(explained)) as usize;
            let reason = if crate::collector::is_quarantined(v.node) {
                Reason::Quarantined
            } else if v.busy {
                Reason::BusyLock
            } else if unexplained > 0 {
                match hidden_to[i] {
                    Some((holder, HiddenKind::Arc, via)) => Reason::HiddenInArc {
                        unexplained,
                        holder,
                        via,
                    },
                    Some((holder, HiddenKind::Skip, via)) => Reason::HiddenInSkippedField {
                        unexplained,
                        holder,
                        via,
                    },
                    None => Reason::ExternalHandle { unexplained },
                }
            } else if v.rc < u64::from(explained) || !black[i] || via[i] == NONE {
                // Fewer handles than edges seen (stale), or proposed as
                // garbage and then found touched by validation.
                Reason::Changed
            } else {
                Reason::ReachableFrom {
                    from: id[via[i] as usize] as usize,
                }
            };
            self.report.survivors.push(Survivor {
                id: id[i] as usize,
                type_name: v.node.type_name(),
                addr: v.node.addr(),
                strong_count: v.rc as usize,
                explained: explained as usize,
                root: v.root,
                reason,
            });
            for &j in &graph.targets[v.first as usize..(v.first + v.len) as usize] {
                if id[j as usize] != NONE {
                    self.report
                        .edges
                        .push((id[i] as usize, id[j as usize] as usize));
                }
            }
        }
    }
}

/// Run a collection (as [`collect`](crate::collect) does, on this thread)
/// and report every object it examined and kept, with the reason.
///
/// The collection examines the possible roots buffered since the last
/// collection and everything they reach: call it right after dropping the
/// handles you expected to free the objects in question (and, while
/// hunting, [`disable`](crate::disable) automatic collection, so that no
/// other collection looks at those roots first). Only this collection
/// records anything; every other collection pays nothing for the
/// feature.
///
/// A survivor kept "for a reason of its own" is where a leak starts: an
/// external handle (with a hint where a derived `Trace` impl hides one in
/// a `std::sync::Arc` or a `#[trace(skip)]` field), a busy lock, a
/// quarantined object, or a count that changed meanwhile. The others are
/// reachable from those. `arcycle::census()` (feature `census`) tells
/// which types keep growing in the first place.
///
/// # Panics
///
/// As [`collect`](crate::collect): the first panic of a destructor or
/// `Trace` impl is resumed here (and the report is lost).
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node(Mutex<Option<Cc<Node>>>);
///
/// arcycle::collect();
/// let a = Cc::new(Node(Mutex::new(None)));
/// *a.0.lock().unwrap() = Some(a.clone());
/// let kept = a.clone(); // a handle the collector cannot see
/// drop(a);
/// let report = arcycle::debug::collect_with_report();
/// let s = report.find(&kept).expect("examined and kept");
/// assert_eq!(s.reason, arcycle::debug::Reason::ExternalHandle { unexplained: 1 });
/// println!("{report}");
/// ```
pub fn collect_with_report() -> LeakReport {
    let mut recorder = Recorder::default();
    let freed = crate::collector::collect_explicit(Some(&mut recorder));
    recorder.report.freed = freed;
    recorder.report
}

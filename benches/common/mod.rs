//! Shared by `compare.rs` (criterion, the long run) and `report.rs` (the
//! short comparison) of the `arcycle-benches` crate: the contenders, the
//! workloads, and the list that pairs them.
//!
//! Each binary uses only part of this module.
#![allow(dead_code)]

pub mod alloc;
pub mod contenders;
pub mod dyns;
pub mod scaling;
pub mod workloads;

use std::time::Duration;

pub use contenders::arc::ArcC;
pub use contenders::arcy::ArcycleC;
pub use contenders::brc::BaconRajanC;
pub use contenders::dump::DumpsterC;
pub use contenders::gcm::GcmoduleC;
pub use contenders::rcc::RustCcC;
pub use contenders::Contender;
use workloads::*;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Contender names, in table order.
pub const CONTENDERS: [&str; 6] = [
    ArcC::NAME,
    ArcycleC::NAME,
    DumpsterC::NAME,
    GcmoduleC::NAME,
    RustCcC::NAME,
    BaconRajanC::NAME,
];

/// One contender's run of one workload: `iters` iterations, their time.
pub struct Case {
    pub contender: &'static str,
    pub run: Box<dyn Fn(u64) -> Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Micro,
    Contended,
    Walk,
    Acyclic,
    Collect,
}

/// What one iteration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// One operation (reported in ns).
    Op,
    /// One whole structure (reported in ms).
    Run,
}

pub struct Workload {
    /// Criterion group name and table key.
    pub id: &'static str,
    /// Table row label.
    pub title: String,
    pub group: Group,
    pub unit: Unit,
    /// Iterations per repetition in the report.
    pub iters: u64,
    /// Repetitions in the report.
    pub reps: usize,
    /// The cyclic shape, for collection workloads.
    pub shape: Option<Shape>,
    pub cases: Vec<Case>,
}

/// How big the structures are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// A smoke run (`cargo test --all-targets` runs the bench binary once;
    /// `report --smoke`).
    Tiny,
    /// `report.rs`.
    Report,
    /// `cargo bench`.
    Full,
}

/// Structure sizes at each [`Scale`].
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub tree_depth: u32,
    pub list_len: usize,
    pub pairs: usize,
    pub rings10: usize,
    pub big_ring: usize,
    pub random: usize,
    pub ptree_depth: u32,
    /// Objects whose handles the spread clone+drop rows touch at random.
    pub spread: usize,
}

pub fn sizes(scale: Scale) -> Sizes {
    match scale {
        Scale::Tiny => Sizes {
            tree_depth: 4,
            list_len: 100,
            pairs: 50,
            rings10: 10,
            big_ring: 1_000,
            random: 100,
            ptree_depth: 4,
            spread: 1_000,
        },
        Scale::Report | Scale::Full => Sizes {
            tree_depth: 16,
            list_len: if scale == Scale::Full {
                1_000_000
            } else {
                100_000
            },
            pairs: 50_000,
            rings10: 10_000,
            big_ring: 1_000_000,
            random: 100_000,
            ptree_depth: 16,
            spread: 1_000_000,
        },
    }
}

/// `cases!([A, B], C => expr)`: one [`Case`] per contender type, with the
/// type named `C` inside `expr` (which evaluates to the run closure).
macro_rules! cases {
    ([$($c:ty),* $(,)?], $C:ident => $body:expr) => {
        vec![$({
            type $C = $c;
            Case {
                contender: <$c as Contender>::NAME,
                run: Box::new($body) as Box<dyn Fn(u64) -> Duration>,
            }
        }),*]
    };
}

/// Every timed workload, each with every contender that can run it.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let sz = sizes(scale);
    let cores = cores();
    let over = 4 * cores;
    let micro = |id, title: &str, cases| Workload {
        id,
        title: title.to_string(),
        group: Group::Micro,
        unit: Unit::Op,
        iters: 1_000_000,
        reps: 11,
        shape: None,
        cases,
    };
    let mut w = vec![
        micro(
            "clone_drop_leaf",
            "clone+drop, leaf `u64`",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => clone_drop_leaf::<C>),
        ),
        micro(
            "clone_drop_node",
            "clone+drop, cycle-capable node",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => clone_drop_node::<C>),
        ),
        micro(
            "clone_drop_spread_leaf",
            &format!("clone+drop, random leaf `u64` of {}", sz.spread),
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC], C => {
                let f = SpreadFixture::new(sz.spread, C::leaf);
                move |n| clone_drop_random(&f, n)
            }),
        ),
        micro(
            "clone_drop_spread_node",
            &format!("clone+drop, random cycle-capable node of {}", sz.spread),
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC], C => {
                let f = SpreadFixture::new(sz.spread, C::node);
                move |n| clone_drop_random(&f, n)
            }),
        ),
        micro(
            "deref_leaf",
            "deref+read, leaf `u64`",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => deref_leaf::<C>),
        ),
        micro(
            "deref_node",
            "deref+read field, cycle-capable node",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => deref_node::<C>),
        ),
        micro(
            "new_drop_leaf",
            "new+drop, leaf `u64`",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => new_drop_leaf::<C>),
        ),
        micro(
            "new_drop_node",
            "new+drop, cycle-capable node",
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => new_drop_node::<C>),
        ),
    ];
    for (threads, tag) in [(cores, "cores"), (over, "4x_cores")] {
        let contended = |id, title: String, cases| Workload {
            id,
            title,
            group: Group::Contended,
            unit: Unit::Op,
            iters: 100_000,
            reps: 15,
            shape: None,
            cases,
        };
        let (leaf_id, node_id) = if tag == "cores" {
            ("contended_leaf_cores", "contended_node_cores")
        } else {
            ("contended_leaf_4x_cores", "contended_node_4x_cores")
        };
        w.push(contended(
            leaf_id,
            format!("contended clone+drop, leaf `u64`, {threads} threads"),
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC],
                C => move |n| contended_leaf::<C>(threads, n)),
        ));
        w.push(contended(
            node_id,
            format!("contended clone+drop, node, {threads} threads"),
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC],
                C => move |n| contended_node::<C>(threads, n)),
        ));
    }
    w.push(Workload {
        id: "graph_walk",
        title: format!(
            "shared graph walk ({GRAPH_NODES} nodes, {WALK_DEPTH} steps), {cores} threads"
        ),
        group: Group::Walk,
        unit: Unit::Op,
        iters: 20_000,
        reps: 7,
        shape: None,
        cases: cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC], C => {
            let g = GraphFixture::<C>::default();
            move |n| graph_walk::<C>(cores, g.get(), n)
        }),
    });
    let depth = sz.tree_depth;
    let len = sz.list_len;
    let acyclic = |id, title: String, cases| Workload {
        id,
        title,
        group: Group::Acyclic,
        unit: Unit::Run,
        iters: 1,
        reps: 7,
        shape: None,
        cases,
    };
    w.push(acyclic(
        "tree_build_drop",
        format!("build+drop binary tree, depth {depth}"),
        cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
            C => move |n| tree_build_drop::<C>(depth, n)),
    ));
    w.push(acyclic(
        "list_build_drop",
        format!("build+drop list of {len}"),
        cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
            C => move |n| list_build_drop::<C>(len, n)),
    ));
    let shapes = [
        ("collect_pairs", Shape::Pairs(sz.pairs), 5),
        ("collect_rings10", Shape::Rings(sz.rings10, 10), 5),
        ("collect_ring_big", Shape::Rings(1, sz.big_ring), 3),
        ("collect_random", Shape::Random(sz.random), 5),
        ("collect_parent_tree", Shape::ParentTree(sz.ptree_depth), 5),
    ];
    for (id, shape, reps) in shapes {
        let title = match shape {
            Shape::Pairs(n) => format!("collect {n} 2-cycles"),
            Shape::Rings(1, l) => format!("collect one ring of {l}"),
            Shape::Rings(c, l) => format!("collect {c} rings of {l}"),
            Shape::Random(n) => format!("collect random graph, {n} nodes x 3 edges"),
            Shape::ParentTree(d) => format!("collect tree with parent pointers, depth {d}"),
        };
        let cases = if matches!(shape, Shape::ParentTree(_)) {
            // Arc takes part with `Weak` parent pointers.
            cases!([ArcC, ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => move |n| collect_shape::<C>(shape, n))
        } else {
            cases!([ArcycleC, DumpsterC, GcmoduleC, RustCcC, BaconRajanC],
                C => move |n| collect_shape::<C>(shape, n))
        };
        w.push(Workload {
            id,
            title,
            group: Group::Collect,
            unit: Unit::Run,
            iters: 1,
            reps,
            shape: Some(shape),
            cases,
        });
    }
    w
}

/// A trait-object workload (issue #8): `cases[0]` is arcycle's
/// `Cc<dyn Shape>`, every later case a reference it is compared against
/// (one table row each). Times are per object: per iteration divided by
/// `objects`.
pub struct DynWorkload {
    /// Table key (`--only dyn` selects them all).
    pub id: &'static str,
    /// Table row label.
    pub title: String,
    /// Iterations per repetition in the report.
    pub iters: u64,
    /// Repetitions in the report.
    pub reps: usize,
    /// Objects one iteration handles (1 for the micro rows).
    pub objects: u64,
    pub cases: Vec<Case>,
    /// Untimed: the fraction of its allocations each case gave back, for
    /// the structure rows (a `dyn` ring must be collected).
    pub freed: Option<FreedFn>,
}

/// Each case's freed fraction, by label (see [`DynWorkload::freed`]).
pub type FreedFn = Box<dyn Fn() -> Vec<(&'static str, f64)>>;

/// Labels of the trait-object cases.
pub const CC_DYN: &str = "`Cc<dyn Shape>`";
pub const ARC_DYN: &str = "`Arc<dyn Shape>`";
pub const CC_SIZED: &str = "sized `Cc<SizedLink>` (no vtable)";
pub const CC_DYN_RING: &str = "`Cc<dyn Shape>` ring, drop + `collect()`";
pub const CC_SIZED_RING: &str = "sized `Cc<SizedLink>` ring, drop + `collect()`";
pub const ARC_DYN_CHAIN: &str = "`Arc<dyn Shape>` chain, drop (acyclic)";

/// The trait-object workloads: clone+drop and deref+virtual call of a leaf
/// and of a cycle-capable `Cc<dyn Shape>` against `Arc<dyn Shape>`, and a
/// ring of `Cc<dyn Shape>` collected, against the sized ring and an `Arc`
/// chain of the same length.
pub fn dyn_workloads(scale: Scale) -> Vec<DynWorkload> {
    use dyns::{arc, cc};
    fn case(contender: &'static str, run: impl Fn(u64) -> Duration + 'static) -> Case {
        Case {
            contender,
            run: Box::new(run),
        }
    }
    let micro = |id, title: &str, cases| DynWorkload {
        id,
        title: title.to_string(),
        iters: 1_000_000,
        reps: 11,
        objects: 1,
        cases,
        freed: None,
    };
    let n = sizes(scale).list_len;
    vec![
        micro(
            "dyn_clone_drop_leaf",
            "clone+drop, leaf `Circle`",
            vec![
                case(CC_DYN, |i| dyns::clone_drop(|| cc::circle(1.0), i)),
                case(ARC_DYN, |i| dyns::clone_drop(|| arc::circle(1.0), i)),
            ],
        ),
        micro(
            "dyn_clone_drop_node",
            "clone+drop, cycle-capable `Link`",
            vec![
                case(CC_DYN, |i| dyns::clone_drop(|| cc::link(1.0), i)),
                case(ARC_DYN, |i| dyns::clone_drop(|| arc::link(1.0), i)),
                case(CC_SIZED, |i| dyns::clone_drop(|| cc::sized_link(1.0), i)),
            ],
        ),
        micro(
            "dyn_deref_leaf",
            "deref + virtual `area()`, leaf `Circle`",
            vec![
                case(CC_DYN, |i| {
                    dyns::deref_call(|| cc::circle(1.0), |h| h.area(), i)
                }),
                case(ARC_DYN, |i| {
                    dyns::deref_call(|| arc::circle(1.0), |h| h.area(), i)
                }),
            ],
        ),
        micro(
            "dyn_deref_node",
            "deref + virtual `area()`, cycle-capable `Link`",
            vec![
                case(CC_DYN, |i| {
                    dyns::deref_call(|| cc::link(1.0), |h| h.area(), i)
                }),
                case(ARC_DYN, |i| {
                    dyns::deref_call(|| arc::link(1.0), |h| h.area(), i)
                }),
                case(CC_SIZED, |i| {
                    dyns::deref_call(|| cc::sized_link(1.0), |h| h.r * h.r, i)
                }),
            ],
        ),
        DynWorkload {
            id: "dyn_ring",
            title: format!("free a ring of {n} `Link`s, per object"),
            iters: 1,
            reps: 7,
            objects: n as u64,
            cases: vec![
                case(CC_DYN_RING, move |i| {
                    dyns::drop_collect(|| dyns::dyn_ring(n), true, i)
                }),
                case(CC_SIZED_RING, move |i| {
                    dyns::drop_collect(|| dyns::sized_ring(n), true, i)
                }),
                case(ARC_DYN_CHAIN, move |i| {
                    dyns::drop_collect(|| dyns::arc_chain(n), false, i)
                }),
            ],
            freed: Some(Box::new(move || {
                vec![
                    (
                        CC_DYN_RING,
                        dyns::freed_fraction(|| dyns::dyn_ring(n), true),
                    ),
                    (
                        CC_SIZED_RING,
                        dyns::freed_fraction(|| dyns::sized_ring(n), true),
                    ),
                    (
                        ARC_DYN_CHAIN,
                        dyns::freed_fraction(|| dyns::arc_chain(n), false),
                    ),
                ]
            })),
        },
    ]
}

/// `freed_fraction` for one contender by name.
pub fn freed_fraction_of(contender: &str, shape: Shape) -> Option<f64> {
    Some(match contender {
        "Arc" if matches!(shape, Shape::ParentTree(_)) => freed_fraction::<ArcC>(shape),
        "arcycle" => freed_fraction::<ArcycleC>(shape),
        "dumpster" => freed_fraction::<DumpsterC>(shape),
        "gcmodule" => freed_fraction::<GcmoduleC>(shape),
        "rust-cc" => freed_fraction::<RustCcC>(shape),
        "bacon_rajan_cc" => freed_fraction::<BaconRajanC>(shape),
        _ => return None,
    })
}

/// Bytes per object, for every contender: (name, leaf `u64`, node, node
/// after one clone+drop).
pub fn memory_table(n: usize) -> Vec<(&'static str, f64, f64, f64)> {
    fn row<C: Contender>(n: usize) -> (&'static str, f64, f64, f64) {
        C::collect();
        let leaf = bytes_per(n, C::leaf);
        let node = bytes_per(n, C::node);
        let buffered = bytes_per_buffered_node::<C>(n);
        (C::NAME, leaf, node, buffered)
    }
    vec![
        row::<ArcC>(n),
        row::<ArcycleC>(n),
        row::<DumpsterC>(n),
        row::<GcmoduleC>(n),
        row::<RustCcC>(n),
        row::<BaconRajanC>(n),
    ]
}

/// `size_of` of one handle, for reference next to the heap bytes.
pub fn handle_sizes() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        (ArcC::NAME, size_of::<<ArcC as Contender>::Node>()),
        (ArcycleC::NAME, size_of::<<ArcycleC as Contender>::Node>()),
        (DumpsterC::NAME, size_of::<<DumpsterC as Contender>::Node>()),
        (GcmoduleC::NAME, size_of::<<GcmoduleC as Contender>::Node>()),
        (RustCcC::NAME, size_of::<<RustCcC as Contender>::Node>()),
        (
            BaconRajanC::NAME,
            size_of::<<BaconRajanC as Contender>::Node>(),
        ),
    ]
}

/// Pauses (each collect() call's length) for every collecting contender.
pub fn pause_table(live: usize, rings: usize, rounds: usize) -> Vec<(&'static str, Vec<Duration>)> {
    vec![
        (ArcycleC::NAME, pauses::<ArcycleC>(live, rings, rounds)),
        (DumpsterC::NAME, pauses::<DumpsterC>(live, rings, rounds)),
        (GcmoduleC::NAME, pauses::<GcmoduleC>(live, rings, rounds)),
        (RustCcC::NAME, pauses::<RustCcC>(live, rings, rounds)),
        (
            BaconRajanC::NAME,
            pauses::<BaconRajanC>(live, rings, rounds),
        ),
    ]
}

/// Mutator throughput while another thread collects, for the concurrent
/// collectors, plus the control: an `Arc` mutator while arcycle collects.
pub fn mutator_runs(run_for: Duration) -> Vec<(&'static str, MutatorRun)> {
    vec![
        (
            ArcycleC::NAME,
            mutator_during_collection::<ArcycleC, ArcycleC>(run_for),
        ),
        (
            DumpsterC::NAME,
            mutator_during_collection::<DumpsterC, DumpsterC>(run_for),
        ),
        (
            GcmoduleC::NAME,
            mutator_during_collection::<GcmoduleC, GcmoduleC>(run_for),
        ),
        (
            MUTATOR_CONTROL,
            mutator_during_collection::<ArcC, ArcycleC>(run_for),
        ),
    ]
}

/// Durations in nanoseconds, in an HDR histogram (4 significant digits),
/// for their median and maximum.
pub fn histogram_ns(d: &[Duration]) -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::<u64>::new(4).expect("4 significant digits are valid");
    for x in d {
        h.record(u64::try_from(x.as_nanos()).unwrap_or(u64::MAX))
            .expect("an auto-resizing histogram takes any value");
    }
    h
}

/// The control row of [`mutator_runs`].
pub const MUTATOR_CONTROL: &str = "control: Arc mutator, arcycle collecting";

/// One contender's runs of the live-heap case (issue #9) at one size.
pub struct LiveRow {
    /// Live nodes.
    pub live: usize,
    pub name: &'static str,
    /// Automatic collection off, one timed `collect()` (none for `Arc`).
    pub explicit: Vec<LiveRun>,
    /// Every library at its defaults.
    pub automatic: Vec<LiveRun>,
}

/// The live-heap case for every contender at each of `sizes` live nodes:
/// `rounds` churn rounds per run, `reps(size)` runs per mode (see
/// [`live_heap`]; it panics if a run frees a live node or leaves garbage).
pub fn live_table(sizes: &[usize], rounds: usize, reps: impl Fn(usize) -> usize) -> Vec<LiveRow> {
    fn row<C: Contender>(live: usize, rounds: usize, reps: usize) -> LiveRow {
        let (explicit, automatic) = live_heap::<C>(live, rounds, reps);
        LiveRow {
            live,
            name: C::NAME,
            explicit,
            automatic,
        }
    }
    let mut out = Vec::new();
    for &live in sizes {
        let reps = reps(live);
        eprint!("liveheap {live:>8}");
        let t0 = std::time::Instant::now();
        out.push(row::<ArcC>(live, rounds, reps));
        out.push(row::<ArcycleC>(live, rounds, reps));
        out.push(row::<DumpsterC>(live, rounds, reps));
        out.push(row::<GcmoduleC>(live, rounds, reps));
        out.push(row::<RustCcC>(live, rounds, reps));
        out.push(row::<BaconRajanC>(live, rounds, reps));
        eprintln!("        {:>6.1} s", t0.elapsed().as_secs_f64());
    }
    out
}

/// The median of positive samples (times, ratios), read from an HDR
/// histogram: the samples are recorded as integers in units of a millionth
/// of the smallest one, at 4 significant digits, so the result is within
/// 0.01% of the exact median (the repetition counts are odd: no averaging).
pub fn median(v: &[f64]) -> f64 {
    let least = v
        .iter()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    if !least.is_finite() {
        return 0.0;
    }
    let unit = least / 1e6;
    let mut h = hdrhistogram::Histogram::<u64>::new(4).expect("4 significant digits are valid");
    for x in v {
        h.record((x / unit).round() as u64)
            .expect("an auto-resizing histogram takes any value");
    }
    h.median_equivalent(h.value_at_quantile(0.5)) as f64 * unit
}

//! A short, honest comparison of arcycle against `Arc` and its peers.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml                  # ~1-2 minutes on 2 cores
//! cargo run --release --manifest-path benches/Cargo.toml -- --docs        # also writes docs/report.{md,svg}
//! cargo run --release --manifest-path benches/Cargo.toml -- --only collect  # a subset
//! cargo run --release --manifest-path benches/Cargo.toml -- --only pairs,tree # ids containing either
//! cargo run --release --manifest-path benches/Cargo.toml -- --only dyn      # `Cc<dyn Trait>` vs `Arc<dyn Trait>`
//! cargo run --release --manifest-path benches/Cargo.toml -- --only liveheap # cost against a growing live heap
//! cargo run --release --manifest-path benches/Cargo.toml -- --only liveheap --live-rounds 300000 # a longer churn
//! cargo run --release --manifest-path benches/Cargo.toml -- --only scaling  # 1 to 16 threads against `Arc`
//! cargo run --manifest-path benches/Cargo.toml -- --smoke                 # CI: every workload once, tiny
//! ```
//!
//! Prints markdown tables to stdout (progress goes to stderr) and writes an
//! SVG bar chart to `benches/target/report.svg`. Every contender runs every
//! workload in the same process, repetitions interleaved, so the machine's
//! noise hits all of them alike; ratios are the median of the per-
//! repetition ratios. The long run is `cargo bench` (`compare.rs`).
//!
//! The trait-object table (issue #8; `--only dyn`, ids `dyn_*`) compares
//! `Cc<dyn Shape>` with `Arc<dyn Shape>` (clone+drop, deref + virtual call)
//! and a collected ring of `Cc<dyn Shape>` with the same ring of sized
//! `Cc`s and an `Arc<dyn Shape>` chain; it is not in the chart.
//!
//! The live-heap tables (issue #9; `--only liveheap`) churn garbage
//! 2-cycles and clones of live handles against a live random graph of 10k,
//! 100k and 1M nodes, with automatic collection off and one timed
//! `collect()` (explicit), and at every library's defaults (automatic);
//! each run panics if it leaves garbage or frees a live node (drop
//! counters in the nodes). About 35 s on 2 cores. `--live-rounds N` churns
//! N rounds instead of 20,000: a longer churn shows whether a collector
//! that falls behind keeps its waiting garbage bounded.
//!
//! Below the collection throughput, arcycle's collection time per freed
//! object is split by phase (`arcycle::stats().phases` over each
//! collection workload): where a round of issue #9 should look first.
//!
//! The thread-scaling table (issue #9; `--only scaling`) runs contended
//! and independent clone+drop of a node and the freeing of 2-cycles
//! dropped on many threads at once, arcycle against `Arc`, at 1, 2, 4, 8
//! and 16 threads (past the machine's cores too, marked); about 10 s on 2
//! cores. On a 16-core machine it is the curve from 1 to 16 threads.
//!
//! `--smoke` runs every workload and every extra once, at tiny sizes (any
//! profile; seconds), checks that each produced its table rows (the
//! trait-object rows included, their rings freed) and the
//! chart, and exits non-zero if not: CI runs it so this code cannot rot.
//! Its numbers mean nothing; its chart goes to `benches/target/report-smoke.svg`.

mod common;

use common::scaling::{scaling_table, ScalingRow, ScalingSize, THREADS};
use common::workloads::{cores, LiveRun, MutatorRun, LIVE_TOUCHES};
use common::*;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The command that regenerates this report (shown in its header).
const CMD: &str = "cargo run --release --manifest-path benches/Cargo.toml";

/// The trait-object table's heading (issue #8).
const DYN_HEADING: &str = "Trait objects: `Cc<dyn Trait>` against `Arc<dyn Trait>`";

/// The heading of the table of arcycle's collection phases.
const PHASES_HEADING: &str = "Where arcycle's collection time goes";

/// The thread-scaling table's heading (issue #9; `--only scaling`).
const SCALING_HEADING: &str = "Thread scaling: 1 to 16 threads against `Arc`";

/// The live-heap tables' heading (issue #9; `--only liveheap`).
const LIVE_HEADING: &str = "Live-heap scaling: garbage churn against a live random graph";

/// Live-heap sizes, churn rounds per run, and runs per mode (by size),
/// for the report and for `--smoke`.
const LIVE_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const LIVE_ROUNDS: usize = 20_000;
fn live_reps(live: usize) -> usize {
    if live <= 100_000 {
        3
    } else {
        1
    }
}
const LIVE_SIZES_SMOKE: [usize; 2] = [1_000, 4_000];
const LIVE_ROUNDS_SMOKE: usize = 500;

/// Per-iteration seconds, `[case][rep]`.
struct Measured {
    title: String,
    id: &'static str,
    unit: Unit,
    group: Group,
    shape: Option<workloads::Shape>,
    names: Vec<&'static str>,
    samples: Vec<Vec<f64>>,
    /// Contenders that did not free (nearly) everything, with the fraction.
    leaks: Vec<(&'static str, f64)>,
    /// arcycle's collections during the workload (warm-up and leak check
    /// included): their phase times and the objects they freed.
    phases: Option<(arcycle::PhaseTimes, u64)>,
}

impl Measured {
    fn idx(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
    fn median(&self, name: &str) -> Option<f64> {
        self.idx(name).map(|i| median(&self.samples[i]))
    }
    /// Median over repetitions of `a / b` (paired: same repetition).
    fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        let (i, j) = (self.idx(a)?, self.idx(b)?);
        let r: Vec<f64> = self.samples[i]
            .iter()
            .zip(&self.samples[j])
            .map(|(x, y)| x / y)
            .collect();
        Some(median(&r))
    }
}

fn fmt_time(secs: f64, unit: Unit) -> String {
    match unit {
        Unit::Op => format!("{:.1} ns", secs * 1e9),
        Unit::Run => format!("{:.2} ms", secs * 1e3),
    }
}

/// `YYYY-MM-DD` (UTC) from the system clock.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-minute load average (other work on a shared machine shows here).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// What one `Arc`-style clone+drop of an uncontended atomic costs here
/// (a `fetch_add` and a `fetch_sub`, median of 5 runs): the price of a
/// locked RMW, which every collector but the single-threaded ones pays per
/// handle operation and arcycle ~11 times per freed cycle member. It moves
/// with the machine (4.8 ns on the AMD host of the README's run, 20-25 ns
/// on a slow-RMW Intel guest), and with it every ratio against rust-cc.
fn rmw_pair_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering::*};
    let a = AtomicU64::new(1);
    let n = 2_000_000u32;
    let runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(&a).fetch_add(1, Relaxed);
                std::hint::black_box(&a).fetch_sub(1, Release);
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
        })
        .collect();
    median(&runs)
}

/// A locked RMW pair slower than this (ns) makes `--docs` warn: the
/// README's numbers would not be comparable with the last ones.
const SLOW_RMW_PAIR_NS: f64 = 10.0;

fn rustc_version() -> String {
    std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "rustc (unknown version)".into())
}

struct Args {
    docs: bool,
    smoke: bool,
    only: Option<String>,
    /// `--live-rounds N`: the live-heap churn's rounds (default
    /// [`LIVE_ROUNDS`]).
    live_rounds: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        docs: false,
        smoke: false,
        only: None,
        live_rounds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--docs" => a.docs = true,
            "--smoke" => a.smoke = true,
            "--only" => a.only = it.next(),
            "--live-rounds" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => a.live_rounds = Some(n),
                _ => {
                    eprintln!("report: --live-rounds needs a positive number of rounds");
                    std::process::exit(2);
                }
            },
            "-h" | "--help" => {
                eprintln!("usage: report [--docs] [--smoke] [--only SUBSTRING] [--live-rounds N]");
                std::process::exit(0);
            }
            other => {
                eprintln!("report: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    a
}

fn wanted(only: &Option<String>, id: &str) -> bool {
    only.as_deref()
        .is_none_or(|o| o.split(',').any(|part| id.contains(part)))
}

fn run_workloads(only: &Option<String>, smoke: bool, late: bool) -> Vec<Measured> {
    let mut out = Vec::new();
    for mut w in workloads(if smoke { Scale::Tiny } else { Scale::Report }) {
        if !wanted(only, w.id) || runs_late(w.id) != late {
            continue;
        }
        if smoke {
            // Once, briefly: this checks the code, not the speed.
            w.reps = 1;
            w.iters = w.iters.min(1_000);
        }
        eprint!("{:<28}", w.id);
        let t0 = Instant::now();
        let before = arcycle::stats();
        let samples = sample(&w.cases, w.iters, w.reps, smoke);
        let mut leaks = Vec::new();
        if let Some(shape) = w.shape {
            for c in &w.cases {
                if let Some(f) = freed_fraction_of(c.contender, shape) {
                    if f < 0.99 {
                        leaks.push((c.contender, f));
                    }
                }
            }
        }
        let after = arcycle::stats();
        let phases = (w.group == Group::Collect).then(|| {
            (
                after.phases.since(before.phases),
                after.freed - before.freed,
            )
        });
        eprintln!(" {:>6.1} s", t0.elapsed().as_secs_f64());
        out.push(Measured {
            title: w.title,
            id: w.id,
            unit: w.unit,
            group: w.group,
            shape: w.shape,
            names: w.cases.iter().map(|c| c.contender).collect(),
            samples,
            leaks,
            phases,
        });
    }
    out
}

/// Whether a workload runs after every other section of the report (its
/// rows still go where the workload list puts them): the spread rows
/// allocate and free a million objects per contender, and whatever runs
/// after that allocates from a fragmented heap (the build+drop rows ran up
/// to 8× slower for the contenders whose object sizes they shared), or
/// traces them if they are kept (a stop-the-world collector walks every
/// object it tracks).
fn runs_late(id: &str) -> bool {
    id.contains("spread")
}

/// Put `measured` in the workload list's order (the late rows were
/// measured last).
fn in_list_order(measured: &mut [Measured], smoke: bool) {
    let ids: Vec<&str> = workloads(if smoke { Scale::Tiny } else { Scale::Report })
        .iter()
        .map(|w| w.id)
        .collect();
    measured.sort_by_key(|m| ids.iter().position(|id| *id == m.id));
}

/// Per-iteration seconds of each case, `[case][rep]`: a warm-up run each
/// (not in smoke mode), then `reps` repetitions, contenders interleaved.
fn sample(cases: &[Case], iters: u64, reps: usize, smoke: bool) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::with_capacity(reps); cases.len()];
    // Warm up once (allocator, pools, lazily built fixtures).
    for c in cases {
        if !smoke {
            (c.run)(iters.div_ceil(10).max(1));
            settle();
        }
    }
    for rep in 0..reps {
        // Interleave contenders, rotating who goes first.
        let n = cases.len();
        for k in 0..n {
            let i = (k + rep) % n;
            let d = (cases[i].run)(iters);
            samples[i].push(d.as_secs_f64() / iters as f64);
            settle();
        }
    }
    samples
}

/// Untimed, after every run: let arcycle's collector finish what the run
/// left to it, so that its thread does not work on into the next
/// contender's run (which it would slow down, flattering arcycle's ratio)
/// or the next workload. Clone+drop of random nodes of a big heap leaves
/// it hundreds of thousands of buffered roots.
fn settle() {
    arcycle::collect();
}

/// The trait-object table's rows (`--only dyn`): per-object seconds, with
/// `names[0]` arcycle's `Cc<dyn Shape>` and the rest its references.
fn run_dyn(only: &Option<String>, smoke: bool) -> Vec<Measured> {
    let mut out = Vec::new();
    for mut w in dyn_workloads(if smoke { Scale::Tiny } else { Scale::Report }) {
        if !wanted(only, w.id) {
            continue;
        }
        if smoke {
            w.reps = 1;
            w.iters = w.iters.min(1_000);
        }
        eprint!("{:<28}", w.id);
        let t0 = Instant::now();
        let mut samples = sample(&w.cases, w.iters, w.reps, smoke);
        for s in samples.iter_mut().flatten() {
            *s /= w.objects as f64;
        }
        let leaks = w.freed.as_ref().map_or_else(Vec::new, |f| {
            f().into_iter().filter(|(_, f)| *f < 0.99).collect()
        });
        eprintln!(" {:>6.1} s", t0.elapsed().as_secs_f64());
        out.push(Measured {
            title: w.title,
            id: w.id,
            unit: Unit::Op,
            group: Group::Micro,
            shape: None,
            names: w.cases.iter().map(|c| c.contender).collect(),
            samples,
            leaks,
            phases: None,
        });
    }
    out
}

/// A target line: what, the measured value, the bound, whether it holds.
struct Target {
    what: String,
    measured: String,
    bound: String,
    ok: bool,
}

fn main() {
    let a = args();
    let started = Instant::now();
    eprintln!("arcycle report: {CMD} (progress on stderr, tables on stdout)");
    if a.smoke {
        eprintln!("--smoke: every workload once, tiny sizes; the numbers mean nothing");
    }

    let load_before = loadavg();
    let rmw = rmw_pair_ns();
    if a.docs && rmw > SLOW_RMW_PAIR_NS {
        eprintln!(
            "warning: a locked fetch_add + fetch_sub takes {rmw:.1} ns on this machine \
             (README's run: 4.8 ns); the ratios against RMW-light peers will not be \
             comparable with the README's: regenerate it on a faster or quieter machine"
        );
    }
    let mut measured = run_workloads(&a.only, a.smoke, false);
    let dyn_rows = run_dyn(&a.only, a.smoke);
    let extras = wanted(&a.only, "memory");
    let memory = if extras {
        eprintln!("memory");
        Some(memory_table(if a.smoke { 1_000 } else { 100_000 }))
    } else {
        None
    };
    let pauses = if wanted(&a.only, "pause") {
        eprintln!("pause");
        Some(if a.smoke {
            pause_table(1_000, 10, 3)
        } else {
            pause_table(100_000, 100, 11)
        })
    } else {
        None
    };
    let live = if wanted(&a.only, "liveheap") {
        Some(if a.smoke {
            live_table(&LIVE_SIZES_SMOKE, LIVE_ROUNDS_SMOKE, |_| 1)
        } else {
            live_table(&LIVE_SIZES, a.live_rounds.unwrap_or(LIVE_ROUNDS), live_reps)
        })
    } else {
        None
    };
    let mutator = if wanted(&a.only, "mutator") {
        eprintln!("mutator");
        // Three runs each, interleaved; the median run by "kept".
        let (rounds, run_for) = if a.smoke {
            (1, Duration::from_millis(200))
        } else {
            (3, Duration::from_millis(2000))
        };
        let mut runs: HashMap<&str, Vec<MutatorRun>> = HashMap::new();
        for _ in 0..rounds {
            for (name, r) in mutator_runs(run_for) {
                runs.entry(name).or_default().push(r);
            }
        }
        let mut v: Vec<(&str, MutatorRun)> = runs
            .into_iter()
            .map(|(n, mut rs)| {
                rs.sort_by(|x, y| x.kept().total_cmp(&y.kept()));
                (n, rs[rs.len() / 2])
            })
            .collect();
        v.sort_by_key(|(n, _)| CONTENDERS.iter().position(|c| c == n).unwrap_or(usize::MAX));
        Some(v)
    } else {
        None
    };

    let scaling = if wanted(&a.only, "scaling") {
        Some(if a.smoke {
            let size = ScalingSize {
                rounds: 1_000,
                pairs: 1_000,
                reps: 1,
            };
            scaling_table(&THREADS[..2], size)
        } else {
            let size = ScalingSize {
                rounds: 100_000,
                pairs: 50_000,
                reps: 5,
            };
            scaling_table(&THREADS, size)
        })
    } else {
        None
    };

    measured.extend(run_workloads(&a.only, a.smoke, true));
    in_list_order(&mut measured, a.smoke);

    let load = format!(
        "load average {load_before} before, {} after; a locked fetch_add + fetch_sub: {rmw:.1} ns",
        loadavg()
    );
    let extras = Extras {
        memory,
        pauses,
        live,
        mutator,
        scaling,
    };
    let md = render(&measured, &dyn_rows, &extras, started.elapsed(), &load);
    print!("{md}");

    if measured.is_empty() {
        // Nothing for the chart (e.g. `--only mutator`, `--only dyn`):
        // keep the last one, but still check the tables.
        if a.smoke {
            smoke_exit(
                &a.only,
                &measured,
                &dyn_rows,
                &extras.live,
                &md,
                None,
                started,
            );
        }
        return;
    }
    let svg = match chart(&measured) {
        Ok(svg) => svg,
        Err(e) => {
            eprintln!("report: could not draw the chart: {e}");
            std::process::exit(1);
        }
    };
    // This crate lives in `benches/`; the docs are the repository's.
    let here = env!("CARGO_MANIFEST_DIR");
    let _ = std::fs::create_dir_all(format!("{here}/target"));
    // Smoke numbers must not overwrite a real report or chart.
    let name = if a.smoke { "report-smoke" } else { "report" };
    let target_svg = format!("{here}/target/{name}.svg");
    match std::fs::write(&target_svg, &svg) {
        Ok(()) => eprintln!("wrote {target_svg}"),
        Err(e) => eprintln!("could not write {target_svg}: {e}"),
    }
    if a.smoke {
        smoke_exit(
            &a.only,
            &measured,
            &dyn_rows,
            &extras.live,
            &md,
            Some(&svg),
            started,
        );
        return;
    }
    if a.docs {
        let docs = format!("{here}/../docs");
        let _ = std::fs::create_dir_all(&docs);
        for (path, body) in [
            (format!("{docs}/report.svg"), &svg),
            (format!("{docs}/report.md"), &md),
        ] {
            match std::fs::write(&path, body) {
                Ok(()) => eprintln!("wrote {path}"),
                Err(e) => eprintln!("could not write {path}: {e}"),
            }
        }
    }
}

/// Run [`smoke_check`]; report, and exit non-zero on any problem.
fn smoke_exit(
    only: &Option<String>,
    measured: &[Measured],
    dyn_rows: &[Measured],
    live: &Option<Vec<LiveRow>>,
    md: &str,
    svg: Option<&str>,
    started: Instant,
) {
    let problems = smoke_check(only, measured, dyn_rows, live, md, svg);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("report --smoke: {p}");
        }
        std::process::exit(1);
    }
    eprintln!(
        "report --smoke: ok ({} workloads, {} trait-object workloads, chart {}, {:.1} s)",
        measured.len(),
        dyn_rows.len(),
        svg.map_or("not drawn".into(), |s| format!("{} bytes", s.len())),
        started.elapsed().as_secs_f64()
    );
}

/// The header of a table with one column per contender, after `first`.
fn contender_header(w: &mut String, first: &str) {
    let _ = write!(w, "| {first} |");
    for c in CONTENDERS {
        let _ = write!(w, " {c} |");
    }
    let _ = write!(w, "\n|---|");
    for _ in CONTENDERS {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w);
}

/// The tables outside the timed workloads (`None`: not wanted).
struct Extras {
    memory: Option<Vec<(&'static str, f64, f64, f64)>>,
    pauses: Option<Vec<(&'static str, Vec<Duration>)>>,
    live: Option<Vec<LiveRow>>,
    mutator: Option<Vec<(&'static str, MutatorRun)>>,
    scaling: Option<Vec<ScalingRow>>,
}

fn render(
    measured: &[Measured],
    dyn_rows: &[Measured],
    extras: &Extras,
    took: Duration,
    load: &str,
) -> String {
    let Extras {
        memory,
        pauses,
        live,
        mutator,
        scaling,
    } = extras;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# arcycle vs Arc and peers\n");
    let _ = writeln!(
        w,
        "{} · {} logical cores · {} · {} · `{CMD}` ({:.0} s; {load})\n",
        today(),
        cores(),
        cpu_model(),
        rustc_version(),
        took.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "\"leaf\" rows use `Cc<u64>`, which arcycle treats as a leaf (it is exactly an `Arc`); \
         \"node\" rows use a cycle-capable type (`u64` plus `Mutex<Vec<Cc<Self>>>`, \
         `#[derive(Trace)]`), the general case. Peers use their own natural types \
         (`RefCell` for the single-threaded ones). Collection rows time dropping the last \
         outside handles plus one explicit collection (building is not timed); `Arc` can only \
         take part where `Weak` breaks the cycle.\n"
    );

    // Times and ratios (none for e.g. `--only dyn`).
    if !measured.is_empty() {
        // Times.
        let _ = writeln!(
            w,
            "## Median time per iteration (lower is better)\n\n\
             Per operation for single-thread rows; per round (every thread did one) for \
             contended and walk rows; per structure for build and collect rows.\n"
        );
        contender_header(w, "workload");
        for m in measured {
            let _ = write!(w, "| {} |", m.title);
            for c in CONTENDERS {
                let cell = match m.median(c) {
                    Some(t) => {
                        let leak = m.leaks.iter().find(|(n, _)| *n == c);
                        match leak {
                            Some((_, f)) => {
                                format!("{} (freed {:.0}%)", fmt_time(t, m.unit), f * 100.0)
                            }
                            None => fmt_time(t, m.unit),
                        }
                    }
                    None => "—".into(),
                };
                let _ = write!(w, " {cell} |");
            }
            let _ = writeln!(w);
        }

        // Ratios.
        let _ = writeln!(
            w,
            "\n## arcycle's time ÷ each contender's (same run, median of paired repetitions)\n\n\
             Below 1: arcycle is faster. Above 1: arcycle is slower.\n"
        );
        let _ = write!(w, "| workload |");
        for c in CONTENDERS.iter().filter(|c| **c != "arcycle") {
            let _ = write!(w, " ÷ {c} |");
        }
        let _ = write!(w, "\n|---|");
        for _ in 1..CONTENDERS.len() {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w);
        for m in measured {
            let _ = write!(w, "| {} |", m.title);
            for c in CONTENDERS.iter().filter(|c| **c != "arcycle") {
                let cell = m
                    .ratio("arcycle", c)
                    .map_or("—".into(), |r| format!("{r:.2}×"));
                let _ = write!(w, " {cell} |");
            }
            let _ = writeln!(w);
        }
    }

    // Collection throughput.
    let coll: Vec<&Measured> = measured
        .iter()
        .filter(|m| m.group == Group::Collect)
        .collect();
    if !coll.is_empty() {
        let _ = writeln!(
            w,
            "\n## Collection throughput (million objects freed per second of drop + collect)\n"
        );
        contender_header(w, "shape");
        for m in &coll {
            let objects = m.shape.map_or(0, workloads::Shape::objects);
            let _ = write!(w, "| {} |", m.title);
            for c in CONTENDERS {
                let cell = m
                    .median(c)
                    .map_or("—".into(), |t| format!("{:.2}", objects as f64 / t / 1e6));
                let _ = write!(w, " {cell} |");
            }
            let _ = writeln!(w);
        }
    }

    // Where arcycle's collection time goes.
    let phased: Vec<(&Measured, arcycle::PhaseTimes, u64)> = coll
        .iter()
        .filter_map(|m| m.phases.map(|(p, freed)| (*m, p, freed)))
        .filter(|(_, _, freed)| *freed > 0)
        .collect();
    if !phased.is_empty() {
        let _ = writeln!(
            w,
            "\n## {PHASES_HEADING}\n\n\
             ns per object freed by arcycle's collections during each workload (its warm-up \
             and leak check included), from `arcycle::stats().phases`. The drop of the outside \
             handles, which buffers the possible roots, comes before and is not in them.\n"
        );
        let _ = writeln!(
            w,
            "| shape | roots | trace | trial | validate | commit | destroy | total |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (m, p, freed) in phased {
            let ns = |d: Duration| d.as_secs_f64() * 1e9 / freed as f64;
            let _ = writeln!(
                w,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                m.title,
                ns(p.roots),
                ns(p.trace),
                ns(p.trial),
                ns(p.validate),
                ns(p.commit),
                ns(p.destroy),
                ns(p.total())
            );
        }
    }

    if !dyn_rows.is_empty() {
        let _ = writeln!(w, "\n## {DYN_HEADING}\n");
        let _ = writeln!(
            w,
            "Each side has its own object-safe `Shape` trait (arcycle's is `Trace + Send + \
             Sync`) over the same concrete types: `Circle(f64)`, a leaf (no edges: for arcycle \
             exactly an `Arc`), and `Link`, an `f64` plus a `Mutex<Option<Cc<dyn Shape>>>` edge \
             (cycle-capable: dropping a shared handle buffers a possible root). `SizedLink` is \
             `Link` with a `Cc<SizedLink>` edge: the same layout without the vtable. Median time \
             per operation, or per object freed for the ring (dropping the outside handles plus, \
             for arcycle, one `collect()`, with automatic collection off; building is not \
             timed; the `Arc` chain is the ring without its closing edge). Ratio: arcycle's \
             time ÷ the reference's (same run, median of paired repetitions); against \
             the sized `Cc<SizedLink>` rows it is what going through `dyn` costs.\n"
        );
        let _ = writeln!(
            w,
            "| workload | arcycle | time | reference | time | ratio |"
        );
        let _ = writeln!(w, "|---|---|---:|---|---:|---:|");
        let time = |m: &Measured, name: &str| {
            let t = m.median(name).map_or("—".into(), |t| fmt_time(t, m.unit));
            match m.leaks.iter().find(|(n, _)| *n == name) {
                Some((_, f)) => format!("{t} (freed {:.0}%)", f * 100.0),
                None => t,
            }
        };
        for m in dyn_rows {
            let ours = m.names[0];
            for theirs in &m.names[1..] {
                let ratio = m
                    .ratio(ours, theirs)
                    .map_or("—".into(), |r| format!("{r:.2}×"));
                let _ = writeln!(
                    w,
                    "| {} | {ours} | {} | {theirs} | {} | {ratio} |",
                    m.title,
                    time(m, ours),
                    time(m, theirs)
                );
            }
        }
    }

    if let Some(mem) = memory {
        let _ = writeln!(
            w,
            "\n## Heap bytes per object (counting global allocator, 100000 objects)\n\n\
             Bytes requested from the allocator, not `size_of`. \"after clone+drop\" adds what \
             a collector keeps per buffered possible root.\n"
        );
        let _ = writeln!(
            w,
            "| contender | leaf `u64` | node | node after clone+drop | handle size |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|");
        let sizes = handle_sizes();
        for (name, leaf, node, buf) in mem {
            let h = sizes.iter().find(|(n, _)| n == name).map_or(0, |x| x.1);
            let _ = writeln!(w, "| {name} | {leaf:.1} | {node:.1} | {buf:.1} | {h} |");
        }
    }

    if let Some(p) = pauses {
        let _ = writeln!(
            w,
            "\n## collect() pause: 100000 live nodes (random graph), 100 garbage rings of 10\n\n\
             How long one `collect()` call blocks its caller, {} rounds.\n",
            p.first().map_or(0, |(_, d)| d.len())
        );
        let _ = writeln!(w, "| contender | median | max |");
        let _ = writeln!(w, "|---|---:|---:|");
        for (name, d) in p {
            let h = histogram_ns(d);
            let _ = writeln!(
                w,
                "| {name} | {:.3} ms | {:.3} ms |",
                h.value_at_quantile(0.5) as f64 / 1e6,
                h.max() as f64 / 1e6
            );
        }
    }

    if let Some(rows) = live {
        render_live(w, rows);
    }

    if let Some(mu) = mutator {
        let _ = writeln!(
            w,
            "\n## Mutator throughput while another thread collects\n\n\
             One thread clones, reads and drops its own 256 live nodes and allocates and drops \
             a fresh one (one operation); the other core alternates, in 100 ms slices, between \
             spinning on arithmetic (baseline) and building rings of garbage and collecting \
             them in a loop (automatic collection off), while a live heap of 100000 nodes (a random \
             graph) that nobody touches stays reachable. \"kept\" = throughput while the other thread is inside `collect()` ÷ baseline (each \
             batch's time split by its overlap with logged `collect()` calls). \
             Median of 3 runs. The control row runs an `Arc` mutator while arcycle collects: \
             what the hardware alone costs.\n"
        );
        let _ = writeln!(
            w,
            "| contender | baseline | between collections | during collection | kept | time overlapping | collections |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in mu {
            let _ = writeln!(
                w,
                "| {name} | {:.2} Mops/s | {:.2} Mops/s | {:.2} Mops/s | {:.0}% | {:.0}% | {} |",
                r.baseline / 1e6,
                r.outside / 1e6,
                r.during / 1e6,
                r.kept() * 100.0,
                r.overlap * 100.0,
                r.collections
            );
        }
    }

    if let Some(rows) = scaling {
        render_scaling(w, rows);
    }

    let st = arcycle::stats();
    let _ = writeln!(
        w,
        "\narcycle collector over the whole run: {} collections, {} objects freed, {} aborted \
         validations, longest pause {:.1} ms.",
        st.collections,
        st.freed,
        st.aborted,
        st.longest_pause.as_secs_f64() * 1e3
    );

    // Targets.
    let targets = targets(measured, memory, mutator);
    if !targets.is_empty() {
        let _ = writeln!(w, "\n## Targets (issue #4)\n");
        let _ = writeln!(w, "| target | measured | bound | status |");
        let _ = writeln!(w, "|---|---:|---:|---|");
        for t in targets {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                t.what,
                t.measured,
                t.bound,
                if t.ok { "meets" } else { "**misses**" }
            );
        }
    }
    s
}

fn targets(
    measured: &[Measured],
    memory: &Option<Vec<(&'static str, f64, f64, f64)>>,
    mutator: &Option<Vec<(&'static str, MutatorRun)>>,
) -> Vec<Target> {
    let mut t = Vec::new();
    let by_id = |id: &str| measured.iter().find(|m| m.id == id);
    for (id, bound) in [
        ("clone_drop_leaf", 1.05),
        ("clone_drop_node", 1.05),
        ("deref_leaf", 1.10),
        ("deref_node", 1.10),
        ("new_drop_leaf", 1.25),
        ("new_drop_node", 1.25),
        ("contended_leaf_cores", 1.10),
        ("contended_node_cores", 1.10),
        ("contended_leaf_4x_cores", 1.10),
        ("contended_node_4x_cores", 1.10),
    ] {
        if let Some(r) = by_id(id).and_then(|m| m.ratio("arcycle", "Arc")) {
            t.push(Target {
                what: format!("{} ÷ Arc", by_id(id).unwrap().title),
                measured: format!("{r:.2}×"),
                bound: format!("≤ {bound:.2}×"),
                ok: r <= bound,
            });
        }
    }
    if let Some(mem) = memory {
        let arc = mem.iter().find(|r| r.0 == "Arc");
        let cc = mem.iter().find(|r| r.0 == "arcycle");
        if let (Some(a), Some(c)) = (arc, cc) {
            t.push(Target {
                what: "bytes per object, leaf `u64`".into(),
                measured: format!("{:.1} (Arc {:.1})", c.1, a.1),
                bound: "≤ Arc".into(),
                ok: c.1 <= a.1,
            });
            t.push(Target {
                what: "bytes per object, node".into(),
                measured: format!("{:.1} (Arc {:.1})", c.2, a.2),
                bound: "≤ Arc".into(),
                ok: c.2 <= a.2,
            });
        }
    }
    for m in measured.iter().filter(|m| m.group == Group::Collect) {
        let fastest = ["dumpster", "gcmodule"]
            .into_iter()
            .filter_map(|p| m.median(p).map(|t| (p, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((peer, _)) = fastest {
            if let Some(r) = m.ratio("arcycle", peer) {
                t.push(Target {
                    what: format!("{} ÷ fastest concurrent peer ({peer})", m.title),
                    measured: format!("{r:.2}×"),
                    bound: "≤ 0.50×".into(),
                    ok: r <= 0.5,
                });
            }
        }
        if let Some(r) = m.ratio("arcycle", "rust-cc") {
            t.push(Target {
                what: format!("{} ÷ rust-cc", m.title),
                measured: format!("{r:.2}×"),
                bound: "≤ 1.50×".into(),
                ok: r <= 1.5,
            });
        }
    }
    if let Some(mu) = mutator {
        if let Some((_, r)) = mu.iter().find(|(n, _)| *n == "arcycle") {
            t.push(Target {
                what: "mutator throughput kept during collection".into(),
                measured: format!("{:.0}%", r.kept() * 100.0),
                bound: "≥ 90%".into(),
                ok: r.kept() >= 0.9,
            });
        }
    }
    t
}

/// The thread-scaling table (see `common::scaling`).
fn render_scaling(w: &mut String, rows: &[ScalingRow]) {
    let cores = cores();
    let _ = writeln!(
        w,
        "\n## {SCALING_HEADING}\n\n\
         {cores} logical cores here: rows with more threads than that are oversubscribed (*). \
         Clone+drop of a cycle-capable node: ns per round, every thread doing one clone+drop, \
         on one shared node (contended) or each on its own (independent). Freeing: 2-cycles \
         built by each thread, dropped by all threads at once, then one `collect()` (automatic \
         collection off); ns per freed object, `Arc` dropping the acyclic equivalent on the \
         same threads. Median of {} interleaved repetitions; ratio = arcycle ÷ `Arc`.\n",
        rows.first().map_or(0, |r| r.reps)
    );
    let _ = writeln!(
        w,
        "| threads | contended Arc | contended arcycle | ratio | independent Arc | \
         independent arcycle | ratio | freeing Arc | freeing arcycle | ratio |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let star = if r.threads > cores { "*" } else { "" };
        let _ = write!(w, "| {}{star} |", r.threads);
        for [arc, ours] in [r.contended, r.independent, r.freeing] {
            let _ = write!(
                w,
                " {:.1} | {:.1} | {:.2}× |",
                arc * 1e9,
                ours * 1e9,
                ours / arc
            );
        }
        let _ = writeln!(w);
    }
}

/// What `--smoke` checks: every wanted workload ran every contender and
/// has its rows in the tables, the extras have theirs, and the chart has a
/// bar per (workload, contender other than arcycle).
fn smoke_check(
    only: &Option<String>,
    measured: &[Measured],
    dyn_rows: &[Measured],
    live: &Option<Vec<LiveRow>>,
    md: &str,
    svg: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if wanted(only, "liveheap") {
        live_check(live, md, &mut problems);
    }
    if wanted(only, "scaling") {
        // A row per thread count of the smoke run (1 and 2), each with
        // three positive times per contender pair.
        let rows: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.contains(SCALING_HEADING))
            .take_while(|l| !l.starts_with("arcycle collector"))
            .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        if rows.len() != 2
            || rows
                .iter()
                .any(|l| l.contains(" 0.0 |") || l.contains("NaN"))
        {
            problems.push(format!(
                "{SCALING_HEADING:?}: {} rows: {rows:?}",
                rows.len()
            ));
        }
    }
    let expected: Vec<Workload> = workloads(Scale::Tiny)
        .into_iter()
        .filter(|w| wanted(only, w.id))
        .collect();
    if measured.len() != expected.len() {
        problems.push(format!(
            "{} workloads measured, {} expected",
            measured.len(),
            expected.len()
        ));
    }
    let mut bars = 0;
    for m in measured {
        if m.samples
            .iter()
            .any(|s| s.is_empty() || !s.iter().all(|t| *t > 0.0))
        {
            problems.push(format!("{}: a contender has no positive time", m.id));
        }
        let rows = md.matches(&format!("| {} |", m.title)).count();
        // The times row, the ratios row, and (collections) the throughput
        // row and arcycle's phases row.
        let want = if m.group == Group::Collect { 4 } else { 2 };
        if rows != want {
            problems.push(format!("{}: {rows} table rows, {want} expected", m.id));
        }
        bars += m.names.iter().filter(|n| **n != "arcycle").count();
    }
    for (wanted_id, heading) in [
        ("memory", "## Heap bytes per object"),
        ("pause", "## collect() pause"),
        ("mutator", "## Mutator throughput"),
        ("scaling", SCALING_HEADING),
    ] {
        if wanted(only, wanted_id) && !md.contains(heading) {
            problems.push(format!("no {heading:?} table"));
        }
    }
    // The trait-object table: every wanted workload, a row per reference,
    // positive times, and the rings freed.
    let expected: Vec<DynWorkload> = dyn_workloads(Scale::Tiny)
        .into_iter()
        .filter(|w| wanted(only, w.id))
        .collect();
    if !expected.is_empty() && !md.contains(&format!("## {DYN_HEADING}")) {
        problems.push(format!("no {DYN_HEADING:?} table"));
    }
    for e in &expected {
        let Some(m) = dyn_rows.iter().find(|m| m.id == e.id) else {
            problems.push(format!("{}: not measured", e.id));
            continue;
        };
        if m.names.len() != e.cases.len()
            || m.samples
                .iter()
                .any(|s| s.is_empty() || !s.iter().all(|t| *t > 0.0))
        {
            problems.push(format!("{}: a case has no positive time", m.id));
        }
        let rows = md.matches(&format!("| {} |", m.title)).count();
        let want = e.cases.len() - 1;
        if rows != want {
            problems.push(format!("{}: {rows} table rows, {want} expected", m.id));
        }
        for (name, f) in &m.leaks {
            problems.push(format!("{}: {name} freed only {:.0}%", m.id, f * 100.0));
        }
    }
    if dyn_rows.len() != expected.len() {
        problems.push(format!(
            "{} trait-object workloads measured, {} expected",
            dyn_rows.len(),
            expected.len()
        ));
    }
    let Some(svg) = svg else {
        if !measured.is_empty() {
            problems.push("no chart".into());
        }
        return problems;
    };
    if !svg.starts_with("<svg") || !svg.trim_end().ends_with("</svg>") {
        problems.push("the chart is not an SVG document".into());
    }
    let drawn = svg.matches("<rect").count();
    // One rect per bar, one per legend entry, the background.
    if drawn < bars {
        problems.push(format!("the chart has {drawn} rects, {bars} bars expected"));
    }
    problems
}

/// Chart colours, one per contender.
const COLORS: [(&str, RGBColor); 6] = [
    ("Arc", RGBColor(0x7f, 0x7f, 0x7f)),
    ("arcycle", RGBColor(0xff, 0x7f, 0x0e)),
    ("dumpster", RGBColor(0xd6, 0x27, 0x28)),
    ("gcmodule", RGBColor(0x2c, 0xa0, 0x2c)),
    ("rust-cc", RGBColor(0x1f, 0x77, 0xb4)),
    ("bacon_rajan_cc", RGBColor(0x94, 0x67, 0xbd)),
];

/// The chart's y axis: bar slots, counted up from the bottom, with a key
/// point (its label) at each workload's centre.
struct Rows {
    total: f64,
    centers: Vec<f64>,
}

impl Ranged for Rows {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1 - limit.0);
        limit.0 + (v / self.total * span).round() as i32
    }
    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.centers.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.total
    }
}

/// A diverging bar chart on a log scale: for each workload, each
/// contender's time relative to arcycle's (right of the 1× line: slower
/// than arcycle; left: faster). Drawn with plotters' SVG backend.
fn chart(measured: &[Measured]) -> Result<String, Box<dyn std::error::Error>> {
    const W: u32 = 1100;
    /// Pixels: the header (title, subtitle, legend), the y-label column,
    /// one bar, the gap between workloads (in bars).
    const HEAD: u32 = 70;
    const LABEL: u32 = 360;
    const BAR: f64 = 11.0;
    const GAP: f64 = 1.0;
    let font = |size: u32| ("sans-serif", size).into_font();
    let grey = RGBColor(0x44, 0x44, 0x44);
    let color = |c: &str| COLORS.iter().find(|(n, _)| *n == c).map_or(BLACK, |x| x.1);

    // Rows: (workload title, [(contender, ratio)]).
    let rows: Vec<(String, Vec<(&str, f64)>)> = measured
        .iter()
        .map(|m| {
            let bars = CONTENDERS
                .iter()
                .filter(|c| **c != "arcycle")
                .filter_map(|c| m.ratio(c, "arcycle").map(|r| (*c, r)))
                .collect();
            (m.title.replace('`', ""), bars)
        })
        .collect();
    let all: Vec<f64> = rows.iter().flat_map(|r| r.1.iter().map(|b| b.1)).collect();
    let lo = all.iter().copied().fold(1.0f64, f64::min).max(1e-3);
    let hi = all.iter().copied().fold(1.0f64, f64::max).min(1e5);
    let (emin, emax) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let (emin, emax) = (emin.min(-1), emax.max(1));
    let decades: Vec<f64> = (emin..=emax).map(|e| 10f64.powi(e)).collect();
    let clamp = |r: f64| r.clamp(decades[0], decades[decades.len() - 1]);

    // The y axis counts bars from the top: workload i takes its bars'
    // slots, then a gap.
    let mut starts = Vec::with_capacity(rows.len());
    let mut total = 0.0;
    for (_, bars) in &rows {
        starts.push(total);
        total += bars.len().max(1) as f64 + GAP;
    }
    let centers: Vec<f64> = rows
        .iter()
        .zip(&starts)
        .map(|((_, bars), s)| total - s - bars.len().max(1) as f64 / 2.0)
        .collect();
    let height = HEAD + (total * BAR) as u32 + 40;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, body) = root.split_vertically(HEAD);
        head.draw(&Text::new(
            "Time relative to arcycle (log scale; right of 1× = slower than arcycle)",
            (10, 8),
            font(18).style(FontStyle::Bold),
        ))?;
        head.draw(&Text::new(
            format!("{} · {} cores · {} · {CMD}", today(), cores(), cpu_model()),
            (10, 28),
            font(14).color(&grey),
        ))?;
        let mut lx = 10;
        for c in CONTENDERS.iter().filter(|c| **c != "arcycle") {
            head.draw(&Rectangle::new(
                [(lx, 48), (lx + 12, 60)],
                color(c).filled(),
            ))?;
            head.draw(&Text::new(*c, (lx + 16, 49), font(14)))?;
            lx += 22 + 7 * c.len() as i32;
        }

        let mut chart = ChartBuilder::on(&body)
            .margin_right(60)
            .margin_top(5)
            .y_label_area_size(LABEL)
            .x_label_area_size(25)
            .build_cartesian_2d(
                (decades[0]..decades[decades.len() - 1]).log_scale(),
                Rows {
                    total,
                    centers: centers.clone(),
                },
            )?;
        let title_at = |y: &f64| {
            centers
                .iter()
                .position(|c| (c - y).abs() < 1e-9)
                .map_or_else(String::new, |i| rows[i].0.clone())
        };
        let times = |x: &f64| {
            if *x < 1.0 {
                format!("{x}×")
            } else {
                format!("{x:.0}×")
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .axis_style(RGBColor(0xaa, 0xaa, 0xaa))
            .x_label_formatter(&times)
            .y_label_formatter(&title_at)
            .label_style(font(14))
            .draw()?;
        // The 1× line.
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(1.0, 0.0), (1.0, total)],
            BLACK.stroke_width(2),
        )))?;
        for (i, (_, bars)) in rows.iter().enumerate() {
            for (k, (c, r)) in bars.iter().enumerate() {
                let top = total - starts[i] - k as f64;
                let (bottom, mid) = (top - 0.82, top - 0.41);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(1.0, top), (clamp(*r), bottom)],
                    color(c).filled(),
                )))?;
                let (dx, pos) = if *r >= 1.0 {
                    (3, Pos::new(HPos::Left, VPos::Center))
                } else {
                    (-3, Pos::new(HPos::Right, VPos::Center))
                };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((clamp(*r), mid))
                        + Text::new(
                            format!("{r:.2}"),
                            (dx, 0),
                            TextStyle::from(font(11)).pos(pos),
                        ),
                ))?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// The live-heap tables' row labels, by live-heap size: the explicit
/// table's, then the automatic table's.
fn live_labels(live: usize) -> ([String; 2], [String; 6]) {
    (
        [
            format!("{live} live: `collect()`, ms"),
            format!("{live} live: `collect()` per garbage object freed, ns"),
        ],
        [
            format!("{live} live: churn + `collect()` per garbage object, ns"),
            format!("{live} live: collector's own cost per garbage object (− `Arc`), ns"),
            format!("{live} live: churn alone (no final `collect()`) per garbage object, ns"),
            format!("{live} live: collector's own cost during the churn (− `Arc`), ns"),
            format!("{live} live: garbage waiting at the end of the churn, % of live heap"),
            format!("{live} live: peak garbage waiting (sampled every round), % of live heap"),
        ],
    )
}

/// The median over runs of `f`, for one contender at one size.
fn live_median(runs: &[LiveRun], f: impl Fn(&LiveRun) -> f64) -> Option<f64> {
    if runs.is_empty() {
        return None;
    }
    let v: Vec<f64> = runs.iter().map(f).collect();
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    // Odd counts (1 or 3): the middle one; the waiting fractions can be 0,
    // which `median` (positive samples) does not take.
    Some(sorted[sorted.len() / 2])
}

/// The live-heap tables (issue #9).
fn render_live(w: &mut String, rows: &[LiveRow]) {
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.live).collect();
    sizes.dedup();
    let Some(first) = rows.first() else { return };
    let rounds = first.automatic.first().map_or(0, |r| r.garbage / 2);
    let reps: Vec<String> = sizes
        .iter()
        .map(|s| {
            let n = rows
                .iter()
                .find(|r| r.live == *s)
                .map_or(0, |r| r.automatic.len());
            format!("{n} at {s}")
        })
        .collect();
    let _ = writeln!(
        w,
        "\n## {LIVE_HEADING}\n\n\
         A live random graph (`Node`s, 3 random edges each, kept by the driver) of each size; \
         then {rounds} churn rounds, each (a) hanging a garbage 2-cycle off a random live node \
         and detaching it (for `Arc` a 2-node chain), (b) cloning and dropping handles to {} \
         random live nodes (so a collector buffers live nodes as possible roots): {} garbage \
         objects per run, the same at every size. Every run checks (drop counters in the \
         nodes) that all its garbage was freed and no live node was; the graph is built and \
         collected once per contender and size, untimed. Medians of runs ({}); the \
         contenders run one after another, not interleaved.\n",
        LIVE_TOUCHES,
        2 * rounds,
        reps.join(", ")
    );
    let cell = |live: usize, name: &str, f: &dyn Fn(&LiveRow) -> Option<f64>, prec: usize| {
        rows.iter()
            .find(|r| r.live == live && r.name == name)
            .and_then(f)
            .map_or("—".into(), |x| format!("{x:.prec$}"))
    };
    type Measure<'a> = (&'a dyn Fn(&LiveRow) -> Option<f64>, usize);
    let table = |w: &mut String, labels: &dyn Fn(usize) -> Vec<String>, fs: &[Measure]| {
        contender_header(w, "live heap: measure");
        for &live in &sizes {
            for (label, (f, prec)) in labels(live).iter().zip(fs) {
                let _ = write!(w, "| {label} |");
                for c in CONTENDERS {
                    let _ = write!(w, " {} |", cell(live, c, *f, *prec));
                }
                let _ = writeln!(w);
            }
        }
    };
    let _ = writeln!(
        w,
        "### Explicit: automatic collection off, churn, one timed `collect()`\n"
    );
    let collect_ms = |r: &LiveRow| live_median(&r.explicit, |x| x.collect.as_secs_f64() * 1e3);
    let per_freed = |r: &LiveRow| {
        live_median(&r.explicit, |x| {
            x.collect.as_secs_f64() * 1e9 / x.garbage as f64
        })
    };
    table(
        w,
        &|live| live_labels(live).0.to_vec(),
        &[(&collect_ms, 2), (&per_freed, 1)],
    );
    let _ = writeln!(
        w,
        "\n### Automatic: every library at its defaults, churn + a final `collect()`\n\n\
         Total time (churn and final `collect()`) per garbage object; the collector's own \
         cost is that minus what `Arc` pays for the same churn (garbage as a chain, freed \
         by counting). Waiting garbage: garbage made but not yet freed, as a fraction of the \
         live heap. arcycle collects on its collector thread, and an allocation waits for it \
         (at most 20 ms, `set_pace_limit`) when a whole threshold of roots piled up behind a \
         running collection. gcmodule and bacon_rajan_cc have no automatic collection: all \
         their garbage waits for the final `collect()`. The churn-alone rows leave the final \
         `collect()` out: for a library that collects during the churn, they hold what its \
         automatic collections cost the churn (arcycle's run on its collector thread, on \
         another core when there is one, so the churn pays for them where an allocation waits \
         for one and through shared caches); for the others, only their bookkeeping, since \
         none of their garbage is freed before the final `collect()`.\n"
    );
    let total_ns = |r: &LiveRow| {
        live_median(&r.automatic, |x| {
            (x.churn + x.collect).as_secs_f64() * 1e9 / x.garbage as f64
        })
    };
    let churn_ns = |r: &LiveRow| {
        live_median(&r.automatic, |x| {
            x.churn.as_secs_f64() * 1e9 / x.garbage as f64
        })
    };
    // A collector's own cost: `f` of its row minus `f` of `Arc`'s at the
    // same size (none for `Arc` itself).
    let minus_arc = |r: &LiveRow, f: &dyn Fn(&LiveRow) -> Option<f64>| {
        let arc = rows
            .iter()
            .find(|a| a.live == r.live && a.name == "Arc")
            .and_then(f)?;
        (r.name != "Arc").then(|| f(r).map(|t| t - arc))?
    };
    let own = |r: &LiveRow| minus_arc(r, &total_ns);
    let own_churn = |r: &LiveRow| minus_arc(r, &churn_ns);
    let end = |r: &LiveRow| {
        live_median(&r.automatic, |x| {
            x.waiting_end as f64 * 100.0 / r.live as f64
        })
    };
    let peak = |r: &LiveRow| {
        live_median(&r.automatic, |x| {
            x.waiting_peak as f64 * 100.0 / r.live as f64
        })
    };
    table(
        w,
        &|live| live_labels(live).1.to_vec(),
        &[
            (&total_ns, 1),
            (&own, 1),
            (&churn_ns, 1),
            (&own_churn, 1),
            (&end, 2),
            (&peak, 2),
        ],
    );
    let colls: Vec<String> = rows
        .iter()
        .filter(|r| r.name == "arcycle")
        .filter_map(|r| {
            live_median(&r.automatic, |x| x.arcycle_collections as f64)
                .map(|c| format!("{c:.0} at {}", r.live))
        })
        .collect();
    let _ = writeln!(
        w,
        "\narcycle's collections per automatic run (the final `collect()` included): {}.",
        colls.join(", ")
    );
}

/// `--smoke`'s checks of the live-heap tables: every size has every
/// contender's runs (explicit ones for the collectors), positive times, and
/// every row in the markdown. (The runs themselves panic if garbage is
/// left or a live node freed.)
fn live_check(live: &Option<Vec<LiveRow>>, md: &str, problems: &mut Vec<String>) {
    let Some(rows) = live else {
        problems.push("liveheap: not measured".into());
        return;
    };
    if !md.contains(&format!("## {LIVE_HEADING}")) {
        problems.push(format!("no {LIVE_HEADING:?} table"));
    }
    for &size in &LIVE_SIZES_SMOKE {
        for c in CONTENDERS {
            let Some(r) = rows.iter().find(|r| r.live == size && r.name == c) else {
                problems.push(format!("liveheap {size}: {c} not measured"));
                continue;
            };
            let collects = c != "Arc";
            if r.automatic.is_empty() || (collects && r.explicit.is_empty()) {
                problems.push(format!("liveheap {size}: {c} has no runs"));
            }
            if r.automatic
                .iter()
                .chain(&r.explicit)
                .any(|x| x.churn.is_zero() || x.garbage == 0)
            {
                problems.push(format!("liveheap {size}: {c} has an empty run"));
            }
        }
        let (explicit, automatic) = live_labels(size);
        for label in explicit.iter().chain(&automatic) {
            let n = md.matches(&format!("| {label} |")).count();
            if n != 1 {
                problems.push(format!("liveheap: {n} rows {label:?}, 1 expected"));
            }
        }
    }
}

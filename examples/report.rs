//! A short, honest comparison of arcycle against `Arc` and its peers.
//!
//! ```text
//! cargo run --release --example report            # ~1-2 minutes on 2 cores
//! cargo run --release --example report -- --docs  # also writes docs/report.{md,svg}
//! cargo run --release --example report -- --only collect   # a subset
//! ```
//!
//! Prints markdown tables to stdout (progress goes to stderr) and writes an
//! SVG bar chart to `target/report.svg`. Every contender runs every
//! workload in the same process, repetitions interleaved, so the machine's
//! noise hits all of them alike; ratios are the median of the per-
//! repetition ratios. The long run is `cargo bench`.

#[path = "../benches/common/mod.rs"]
mod common;

use common::workloads::{cores, MutatorRun};
use common::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
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
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        docs: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--docs" => a.docs = true,
            "--only" => a.only = it.next(),
            "-h" | "--help" => {
                eprintln!("usage: report [--docs] [--only SUBSTRING]");
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
    only.as_deref().is_none_or(|o| id.contains(o))
}

fn run_workloads(only: &Option<String>) -> Vec<Measured> {
    let mut out = Vec::new();
    for w in workloads(Scale::Report) {
        if !wanted(only, w.id) {
            continue;
        }
        eprint!("{:<28}", w.id);
        let t0 = Instant::now();
        let mut samples = vec![Vec::with_capacity(w.reps); w.cases.len()];
        // Warm up once (allocator, pools, lazily built fixtures).
        for c in &w.cases {
            (c.run)(w.iters.div_ceil(10).max(1));
        }
        for rep in 0..w.reps {
            // Interleave contenders, rotating who goes first.
            let n = w.cases.len();
            for k in 0..n {
                let i = (k + rep) % n;
                let d = (w.cases[i].run)(w.iters);
                samples[i].push(d.as_secs_f64() / w.iters as f64);
            }
        }
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
    let cmd = "cargo run --release --example report";
    eprintln!("arcycle report: {cmd} (progress on stderr, tables on stdout)");

    let load_before = loadavg();
    let measured = run_workloads(&a.only);
    let extras = wanted(&a.only, "memory");
    let memory = if extras {
        eprintln!("memory");
        Some(memory_table(100_000))
    } else {
        None
    };
    let pauses = if wanted(&a.only, "pause") {
        eprintln!("pause");
        Some(pause_table(100_000, 100, 11))
    } else {
        None
    };
    let mutator = if wanted(&a.only, "mutator") {
        eprintln!("mutator");
        // Three runs each, interleaved; the median run by "kept".
        let mut runs: HashMap<&str, Vec<MutatorRun>> = HashMap::new();
        for _ in 0..3 {
            for (name, r) in mutator_runs(Duration::from_millis(2000)) {
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

    let load = format!("load average {load_before} before, {} after", loadavg());
    let md = render(
        &measured,
        &memory,
        &pauses,
        &mutator,
        started.elapsed(),
        &load,
    );
    print!("{md}");

    if measured.is_empty() {
        // Nothing timed (e.g. `--only mutator`): keep the last chart.
        return;
    }
    let svg = chart(&measured);
    let root = env!("CARGO_MANIFEST_DIR");
    let target_svg = format!("{root}/target/report.svg");
    let _ = std::fs::create_dir_all(format!("{root}/target"));
    match std::fs::write(&target_svg, &svg) {
        Ok(()) => eprintln!("wrote {target_svg}"),
        Err(e) => eprintln!("could not write {target_svg}: {e}"),
    }
    if a.docs {
        let _ = std::fs::create_dir_all(format!("{root}/docs"));
        for (path, body) in [
            (format!("{root}/docs/report.svg"), &svg),
            (format!("{root}/docs/report.md"), &md),
        ] {
            match std::fs::write(&path, body) {
                Ok(()) => eprintln!("wrote {path}"),
                Err(e) => eprintln!("could not write {path}: {e}"),
            }
        }
    }
}

fn render(
    measured: &[Measured],
    memory: &Option<Vec<(&'static str, f64, f64, f64)>>,
    pauses: &Option<Vec<(&'static str, Vec<Duration>)>>,
    mutator: &Option<Vec<(&'static str, MutatorRun)>>,
    took: Duration,
    load: &str,
) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# arcycle vs Arc and peers\n");
    let _ = writeln!(
        w,
        "{} · {} logical cores · {} · {} · `cargo run --release --example report` ({:.0} s; {load})\n",
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

    // Times.
    let _ = writeln!(
        w,
        "## Median time per iteration (lower is better)\n\n\
         Per operation for single-thread rows; per round (every thread did one) for \
         contended and walk rows; per structure for build and collect rows.\n"
    );
    let _ = write!(w, "| workload |");
    for c in CONTENDERS {
        let _ = write!(w, " {c} |");
    }
    let _ = write!(w, "\n|---|");
    for _ in CONTENDERS {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w);
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
        let _ = write!(w, "| shape |");
        for c in CONTENDERS {
            let _ = write!(w, " {c} |");
        }
        let _ = write!(w, "\n|---|");
        for _ in CONTENDERS {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w);
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
             How long one `collect()` call blocks its caller, 11 rounds.\n"
        );
        let _ = writeln!(w, "| contender | median | max |");
        let _ = writeln!(w, "|---|---:|---:|");
        for (name, d) in p {
            let mut v: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let _ = writeln!(
                w,
                "| {name} | {:.3} ms | {:.3} ms |",
                median(&v) * 1e3,
                v.last().copied().unwrap_or(0.0) * 1e3
            );
        }
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

/// A diverging bar chart on a log scale: for each workload, each
/// contender's time relative to arcycle's (right of the 1× line: slower
/// than arcycle; left: faster).
fn chart(measured: &[Measured]) -> String {
    const W: f64 = 1100.0;
    const LABEL: f64 = 360.0;
    const RIGHT: f64 = 70.0;
    const BAR: f64 = 11.0;
    const GAP: f64 = 10.0;
    const TOP: f64 = 90.0;
    let colors: HashMap<&str, &str> = [
        ("Arc", "#7f7f7f"),
        ("arcycle", "#ff7f0e"),
        ("dumpster", "#d62728"),
        ("gcmodule", "#2ca02c"),
        ("rust-cc", "#1f77b4"),
        ("bacon_rajan_cc", "#9467bd"),
    ]
    .into_iter()
    .collect();

    // Rows: (workload title, [(contender, ratio)]).
    let rows: Vec<(String, Vec<(&str, f64)>)> = measured
        .iter()
        .map(|m| {
            let bars = CONTENDERS
                .iter()
                .filter(|c| **c != "arcycle")
                .filter_map(|c| m.ratio(c, "arcycle").map(|r| (*c, r)))
                .collect();
            (m.title.clone(), bars)
        })
        .collect();
    let all: Vec<f64> = rows.iter().flat_map(|r| r.1.iter().map(|b| b.1)).collect();
    let lo = all.iter().copied().fold(1.0f64, f64::min).max(1e-3);
    let hi = all.iter().copied().fold(1.0f64, f64::max).min(1e5);
    let (lmin, lmax) = (lo.log10().floor().min(-0.3), hi.log10().ceil().max(0.3));
    let plot_w = W - LABEL - RIGHT;
    let x = |v: f64| LABEL + (v.max(1e-3).log10() - lmin) / (lmax - lmin) * plot_w;

    let height: f64 = TOP
        + rows
            .iter()
            .map(|r| r.1.len().max(1) as f64 * BAR + GAP)
            .sum::<f64>()
        + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">Time relative to arcycle (log scale; right of 1× = slower than arcycle)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="38" fill="#444">{} · {} cores · {} · cargo run --release --example report</text>"##,
        today(),
        cores(),
        xml(&cpu_model())
    );
    // Legend.
    let mut lx = 10.0;
    for c in CONTENDERS.iter().filter(|c| **c != "arcycle") {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="50" width="12" height="12" fill="{}"/><text x="{}" y="60">{c}</text>"#,
            colors[c],
            lx + 16.0
        );
        lx += 22.0 + 7.0 * c.len() as f64;
    }
    // Grid at powers of ten.
    let mut e = lmin.ceil() as i32;
    while e as f64 <= lmax {
        let v = 10f64.powi(e);
        let gx = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{}" stroke="{}" stroke-width="{}"/><text x="{gx:.1}" y="{}" text-anchor="middle" fill="#444">{}×</text>"##,
            TOP - 12.0,
            height - 30.0,
            if e == 0 { "#000" } else { "#ddd" },
            if e == 0 { 1.5 } else { 1.0 },
            height - 16.0,
            if e < 0 {
                format!("{v}")
            } else {
                format!("{v:.0}")
            }
        );
        e += 1;
    }
    let mut y = TOP;
    for (title, bars) in &rows {
        let block = bars.len().max(1) as f64 * BAR;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABEL - 8.0,
            y + block / 2.0 + 4.0,
            xml(title)
        );
        for (k, (c, r)) in bars.iter().enumerate() {
            let by = y + k as f64 * BAR;
            let (x0, x1) = (x(1.0), x(*r));
            let (left, width) = if x1 >= x0 {
                (x0, x1 - x0)
            } else {
                (x1, x0 - x1)
            };
            let _ = writeln!(
                s,
                r#"<rect x="{left:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{c}: {r:.2}× arcycle</title></rect>"#,
                width.max(0.5),
                BAR - 2.0,
                colors[c]
            );
            let (tx, anchor) = if x1 >= x0 {
                (x1 + 3.0, "start")
            } else {
                (x1 - 3.0, "end")
            };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{:.1}" font-size="9" text-anchor="{anchor}">{r:.2}</text>"#,
                by + BAR - 3.0
            );
        }
        y += block + GAP;
        let _ = writeln!(
            s,
            r##"<line x1="10" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#f0f0f0"/>"##,
            y - GAP / 2.0,
            W - 10.0,
            y - GAP / 2.0
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "")
}

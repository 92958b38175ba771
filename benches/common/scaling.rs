//! Thread scaling (issue #9; `report --only scaling`): arcycle against
//! `Arc` from 1 to 16 threads, on three workloads.
//!
//! * **Contended clone+drop**: every thread clones and drops a handle to
//!   the same cycle-capable node. Time per round (every thread did one
//!   clone+drop): with perfect scaling it stays where one thread starts;
//!   on one shared count it grows with the threads, for `Arc` too.
//! * **Independent clone+drop**: every thread clones and drops its own
//!   node. Time per round: flat while there are cores for the threads.
//! * **Freeing cycles dropped on T threads**: each thread builds its share
//!   of 2-cycles (untimed), then all threads drop their outside handles at
//!   once (each buffers possible roots on its own ring) and one
//!   `collect()` frees everything; time per freed object, drop and collect
//!   together. `Arc`'s row drops the acyclic equivalent (`a -> b` only) on
//!   the same threads. Automatic collection is off meanwhile, and each run
//!   checks that the first pair of every thread's share was freed (the
//!   nodes' drop counter) and, for arcycle, that the collector freed every
//!   node (`arcycle::stats`).
//!
//! The thread counts past the machine's logical cores are measured too
//! (oversubscribed: the table marks them); the curve this command prints
//! on a 16-core machine is the one the issue asks for, and nothing depends
//! on having one.

use super::contenders::{tally, Contender};
use super::workloads::{big_stack, contended_node, pool};
use super::{median, ArcC, ArcycleC};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The thread counts of the table.
pub const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// One thread count's medians, each `[Arc, arcycle]`, in seconds.
pub struct ScalingRow {
    pub threads: usize,
    /// Repetitions each median is taken over.
    pub reps: usize,
    /// Per round of one clone+drop per thread, on one shared node.
    pub contended: [f64; 2],
    /// Per round of one clone+drop per thread, each on its own node.
    pub independent: [f64; 2],
    /// Per object freed (drop on `threads` threads plus one collect).
    pub freeing: [f64; 2],
}

/// How much each measurement does.
#[derive(Clone, Copy)]
pub struct ScalingSize {
    /// Rounds per clone+drop repetition.
    pub rounds: u64,
    /// 2-cycles (objects / 2) per freeing repetition, split among the
    /// threads.
    pub pairs: usize,
    /// Repetitions of everything, contenders interleaved.
    pub reps: usize,
}

/// Every thread of the pool clones and drops its own node, `iters` times.
pub fn independent_node<C: Contender>(threads: usize, iters: u64) -> Duration
where
    C::Node: Send + Sync,
{
    let p = pool(threads);
    let mine: Vec<C::Node> = (0..threads as u64).map(C::node).collect();
    let t = Instant::now();
    p.broadcast(|ctx| {
        let h = &mine[ctx.index()];
        for _ in 0..iters {
            drop(black_box(black_box(h).clone()));
        }
    });
    t.elapsed()
}

/// `pairs` 2-cycles (`cyclic`) or 2-chains, split among `threads` threads,
/// each built by its own thread; then every thread drops its handles at
/// once and one `collect()` follows. Returns the time of the drop and the
/// collection. Panics if a node was not freed.
pub fn free_dropped_on_threads<C: Contender>(threads: usize, pairs: usize, cyclic: bool) -> Duration
where
    C::Node: Send + Sync,
{
    let p = pool(threads);
    let share = pairs.div_ceil(threads);
    // One slot per thread: the thread that builds a share drops it.
    let slots: Vec<Mutex<Option<Vec<C::Node>>>> = (0..threads).map(|_| Mutex::new(None)).collect();
    C::set_auto(false);
    C::collect();
    let before = tally::read().1;
    p.broadcast(|ctx| {
        let first = (ctx.index() * share).min(pairs);
        let last = (first + share).min(pairs);
        let mut v = Vec::with_capacity(2 * (last - first));
        for i in first..last {
            // Only each share's first pair reports its drops (to the
            // shared drop counter): counting every node would make the
            // threads that drop them (`Arc`'s) contend on that counter.
            let tag = if i == first { tally::GARBAGE } else { 0 };
            let a = C::node(tag | (2 * i) as u64);
            let b = C::node(tag | (2 * i + 1) as u64);
            C::link(&a, &b);
            if cyclic {
                C::link(&b, &a);
            }
            v.push(a);
            v.push(b);
        }
        *slots[ctx.index()].lock().unwrap() = Some(v);
    });
    let t = Instant::now();
    p.broadcast(|ctx| {
        let mine = slots[ctx.index()].lock().unwrap().take();
        drop(black_box(mine));
    });
    C::collect();
    let took = t.elapsed();
    C::set_auto(true);
    let freed = tally::read().1 - before;
    let tagged = 2 * pairs.div_ceil(share) as u64;
    assert_eq!(
        freed,
        tagged,
        "{}: {threads} threads dropped {pairs} {}; {freed} of the {tagged} counted nodes were freed",
        C::NAME,
        if cyclic { "2-cycles" } else { "2-chains" },
    );
    took
}

/// Measure every thread count of `threads`, repetitions interleaved
/// (`Arc`, then arcycle, alternating who goes first).
pub fn scaling_table(threads: &[usize], size: ScalingSize) -> Vec<ScalingRow> {
    big_stack(|| {
        threads
            .iter()
            .map(|&t| {
                eprint!("scaling, {t:>2} threads");
                let t0 = Instant::now();
                let rounds = size.rounds;
                let per_round = |d: Duration| d.as_secs_f64() / rounds as f64;
                let per_object = |d: Duration| d.as_secs_f64() / (2 * size.pairs) as f64;
                let mut s = [
                    [Vec::new(), Vec::new()],
                    [Vec::new(), Vec::new()],
                    [Vec::new(), Vec::new()],
                ];
                // Warm up: pools, allocator, the collector thread.
                let _ = contended_node::<ArcC>(t, rounds / 10 + 1);
                let _ = contended_node::<ArcycleC>(t, rounds / 10 + 1);
                for rep in 0..size.reps {
                    for k in 0..2 {
                        let arcycle = (k + rep) % 2 == 1;
                        let i = usize::from(arcycle);
                        let (c, ind, fr) = if arcycle {
                            let freed = arcycle::stats().freed;
                            let fr = free_dropped_on_threads::<ArcycleC>(t, size.pairs, true);
                            let freed = arcycle::stats().freed - freed;
                            // Every node, not only the counted ones.
                            assert!(
                                freed >= 2 * size.pairs as u64,
                                "arcycle: {t} threads dropped {} 2-cycles, {freed} objects freed",
                                size.pairs
                            );
                            (
                                contended_node::<ArcycleC>(t, rounds),
                                independent_node::<ArcycleC>(t, rounds),
                                fr,
                            )
                        } else {
                            (
                                contended_node::<ArcC>(t, rounds),
                                independent_node::<ArcC>(t, rounds),
                                free_dropped_on_threads::<ArcC>(t, size.pairs, false),
                            )
                        };
                        s[0][i].push(per_round(c));
                        s[1][i].push(per_round(ind));
                        s[2][i].push(per_object(fr));
                    }
                }
                eprintln!(" {:>6.1} s", t0.elapsed().as_secs_f64());
                let [c, ind, fr] = s.map(|[a, b]| [median(&a), median(&b)]);
                ScalingRow {
                    threads: t,
                    reps: size.reps,
                    contended: c,
                    independent: ind,
                    freeing: fr,
                }
            })
            .collect()
    })
}

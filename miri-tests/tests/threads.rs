//! Multi-threaded cycle churn against the collector, sized for Miri: run it
//! with several seeds (`-Zmiri-many-seeds`, `scripts/miri.sh`) and under the
//! sanitizers (`scripts/sanitizers.sh`).

use arcycle::{collect, Cc};
use miri_tests::*;
use std::sync::Barrier;
use std::thread;

#[test]
fn cycle_churn_against_collect() {
    let _g = serialize();
    let p = Probe::new();
    let rounds = size(2, 200);
    let barrier = Barrier::new(3);
    thread::scope(|s| {
        for t in 0..2 {
            let (p, barrier) = (&p, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..rounds {
                    let r = ring(2 + (i + t) % 2, p);
                    r[0].check();
                    drop(r);
                }
            });
        }
        let barrier = &barrier;
        s.spawn(move || {
            barrier.wait();
            for _ in 0..rounds {
                collect();
            }
        });
    });
    collect();
    let expected: usize = (0..2)
        .map(|t| (0..rounds).map(|i| 2 + (i + t) % 2).sum::<usize>())
        .sum();
    assert_eq!(p.drops(), expected);
}

#[test]
fn shared_cycle_mutated_by_two_threads_while_collecting() {
    let _g = serialize();
    let p = Probe::new();
    let r = ring(3, &p);
    let (a, b) = (r[0].clone(), r[1].clone());
    drop(r);
    thread::scope(|s| {
        s.spawn(move || {
            // Move a's edge out to the stack and back, cloning on the way.
            for _ in 0..size(2, 100) {
                let e = a.next.lock().unwrap().pop();
                if let Some(e) = e {
                    e.check();
                    let c = e.clone();
                    a.next.lock().unwrap().push(c);
                }
            }
            drop(a);
        });
        s.spawn(move || {
            let w = Cc::downgrade(&b);
            drop(b);
            for _ in 0..size(2, 100) {
                if let Some(x) = w.upgrade() {
                    x.check();
                }
            }
        });
        s.spawn(|| {
            for _ in 0..size(2, 100) {
                collect();
            }
        });
    });
    collect();
    assert_eq!(p.drops(), 3);
}

#[test]
fn roots_of_exited_threads_are_collected() {
    let _g = serialize();
    let p = Probe::new();
    let q = p.clone();
    thread::spawn(move || {
        let r = ring(2, &q);
        drop(r);
    })
    .join()
    .unwrap();
    assert_eq!(p.drops(), 0);
    assert_eq!(collect(), 2);
    assert_eq!(p.drops(), 2);
}

#[test]
fn get_mut_and_try_unwrap_while_another_thread_collects() {
    let _g = serialize();
    let p = Probe::new();
    let mut a = node(0, &p);
    drop(a.clone()); // a pending root-buffer entry
    thread::scope(|s| {
        s.spawn(collect);
        s.spawn(|| {
            let v = Cc::get_mut(&mut a).expect("unique");
            v.next.get_mut().unwrap().clear();
            let v = Cc::try_unwrap(a).ok().expect("unique");
            v.check();
        });
    });
    assert_eq!(p.drops(), 1);
}

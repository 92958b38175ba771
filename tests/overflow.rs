//! Count overflow aborts the process with a clear message, like `Arc`.
//!
//! The overflowing part runs in a child process (this same test binary,
//! re-run with an environment variable), because an abort cannot be caught.

use arcycle::{Cc, Trace};
use std::process::Command;
use std::sync::Mutex;

const CHILD: &str = "ARCYCLE_OVERFLOW_CHILD";

#[derive(Trace)]
struct Node {
    next: Mutex<Option<Cc<Node>>>,
}

/// In the child: leak clones until the count passes the limit (about
/// 2^26). Never returns: the clone past the limit aborts.
fn overflow(kind: &str) -> ! {
    match kind {
        "leaf" => {
            let c = Cc::new(0u8);
            loop {
                std::mem::forget(c.clone());
            }
        }
        "node" => {
            let c = Cc::new(Node {
                next: Mutex::new(None),
            });
            loop {
                std::mem::forget(c.clone());
            }
        }
        "weak" => {
            let c = Cc::new(0u8);
            let w = Cc::downgrade(&c);
            loop {
                std::mem::forget(w.clone());
            }
        }
        other => panic!("unknown overflow kind {other}"),
    }
}

fn run_child(kind: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, kind)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{kind}: the child must not exit normally"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "{kind}: the child must abort (SIGABRT), got {:?}; stderr: {stderr}",
            out.status
        );
    }
    assert!(
        stderr.contains("reference count overflow"),
        "{kind}: the abort must name the problem; stderr: {stderr}"
    );
}

/// The child's entry point; does nothing unless started by `run_child`.
#[test]
fn child() {
    if let Ok(kind) = std::env::var(CHILD) {
        overflow(&kind);
    }
}

#[test]
fn strong_count_overflow_aborts_for_a_leaf() {
    run_child("leaf");
}

#[test]
fn strong_count_overflow_aborts_for_a_cycle_capable_type() {
    run_child("node");
}

#[test]
fn weak_count_overflow_aborts() {
    run_child("weak");
}

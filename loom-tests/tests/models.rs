//! One small loom model per race of arcycle's protocol (issue #3).
//!
//! Each model names, in its doc comment, the race it exercises and the
//! "Must hold" invariant of `DESIGN.md` it guards. Models use the public API
//! only. Models run with `exhaustive` have no preemption bound (their state
//! space is explored completely, in seconds); the others are bounded by
//! `LOOM_MAX_PREEMPTIONS`. Run with
//!
//! ```text
//! RUSTFLAGS="--cfg arcycle_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p loom-tests --release
//! ```
#![cfg(arcycle_loom)]

use arcycle::{collect, Cc};
use loom::thread;
use loom_tests::*;

// ---------------------------------------------------------------------------
// Counting races (no collection involved, or the collector as a bystander)
// ---------------------------------------------------------------------------

/// Race: clone/drop on one thread against the last drop on another, for a
/// cycle-capable type (drops that leave the count above zero buffer a
/// possible root).
///
/// Guards: "No object is freed while a handle to it, or a borrow derived
/// from one, exists." The value is dropped exactly once, by the last
/// dropper, and never read after; the buffered entry keeps the allocation
/// alive until the collection releases it (loom checks the free).
#[test]
fn clone_drop_vs_last_drop() {
    exhaustive("clone_drop_vs_last_drop", || {
        let p = Probe::new();
        let a = node(&p);
        let b = a.clone();
        let t = thread::spawn(move || {
            let c = b.clone();
            check(&c);
            drop(c);
            check(&b);
            drop(b);
        });
        check(&a);
        drop(a);
        t.join().unwrap();
        assert_eq!(p.drops(), 1, "the last drop destroys the value at once");
        assert_eq!(collect(), 0);
        assert_eq!(p.drops(), 1);
    });
}

/// Race: as [`clone_drop_vs_last_drop`] for a leaf type, whose `Cc` must be
/// exactly `Arc` (never buffered).
///
/// Guards: "No object is freed while a handle to it, or a borrow derived
/// from one, exists."
#[test]
fn clone_drop_vs_last_drop_leaf() {
    exhaustive("clone_drop_vs_last_drop_leaf", || {
        let p = Probe::new();
        let a = Cc::new(Leaf { probe: p.clone() });
        let b = a.clone();
        let t = thread::spawn(move || {
            let c = b.clone();
            c.probe.check_alive();
            drop(c);
            b.probe.check_alive();
            drop(b);
        });
        a.probe.check_alive();
        drop(a);
        t.join().unwrap();
        assert_eq!(p.drops(), 1);
        assert_eq!(
            arcycle::stats().roots_buffered,
            0,
            "a leaf is never buffered"
        );
    });
}

/// Race: a drop that buffers a possible root against a concurrent last
/// drop, with a collection running at the same time.
///
/// Guards: "No object is freed while a handle to it, or a borrow derived
/// from one, exists" — here for the allocation: a root-buffer entry never
/// outlives it (loom checks every header access against the free) — and
/// "Every object whose last handle is gone is freed": dropped exactly once,
/// whether by the last dropper or by the collector that held it.
#[test]
fn buffer_vs_last_drop() {
    model("buffer_vs_last_drop", || {
        let before = allocations();
        let p = Probe::new();
        let a = node(&p);
        let b = a.clone();
        let t1 = thread::spawn(move || {
            check(&b);
            drop(b);
        });
        let t2 = thread::spawn(|| {
            collect();
        });
        check(&a);
        drop(a);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(p.drops(), 1);
        collect();
        assert_eq!(p.drops(), 1);
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: the collector holds a buffered object (its only root) while the
/// last handle to it is dropped on another thread. The drop must still
/// destroy the value itself, before it returns (issue 7, item 7: today's
/// code returned early and left the destruction to the collector).
///
/// Guards: "Every object whose last handle is gone is freed" (exactly once,
/// never leaked by the hold), "No object is freed while a handle to it
/// ... exists", and `Arc`'s promise that the last drop destroys at once.
#[test]
fn collector_vs_last_drop() {
    exhaustive("collector_vs_last_drop", || {
        let before = allocations();
        let p = Probe::new();
        let a = node(&p);
        let b = a.clone();
        drop(a); // buffers a possible root
        let q = p.clone();
        let t = thread::spawn(move || {
            check(&b);
            drop(b);
            // Like `Arc`: the last drop destroyed the value before it
            // returned, even if the collector was holding the object (the
            // drop waits for the hold to go, then destroys it itself).
            assert_eq!(q.drops(), 1, "the last drop must destroy at once");
        });
        let freed = collect();
        t.join().unwrap();
        // The collector never destroys it: while it holds the object the
        // last drop cannot land, so it never reads a count of zero.
        assert_eq!(freed, 0);
        assert_eq!(p.drops(), 1);
        // If the drop landed first, the entry held the allocation through
        // the strong side's hand-over; it is given back once a collection
        // has taken the entry.
        collect();
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: an entry that `get_mut` detached (it gets an `ENTRY` unit of its
/// own), an entry pushed since (whose claim on the allocation is
/// `ACTIVE`), and the object's last drop (which turns the strong side's
/// unit into that entry's) against a collection taking both entries. The
/// collection may give an entry's unit back before the last drop has
/// added it.
///
/// Guards: "No object is freed while a handle to it ... exists" — for the
/// allocation: no entry outlives it, whatever order the releases land in
/// (loom checks every header access against the free) — and that every
/// allocation is given back, exactly once.
#[test]
fn detached_and_active_entries_vs_last_drop() {
    exhaustive("detached_and_active_entries_vs_last_drop", || {
        let before = allocations();
        // First, on one thread: a buffered object's last drop leaves the
        // allocation to its entry (which the final `collect()` takes).
        let p0 = Probe::new();
        let a0 = node(&p0);
        drop(a0.clone());
        drop(a0);
        assert_eq!(
            allocations(),
            before + 1,
            "ENTRY OUTLIVED ITS ALLOCATION: the last drop freed a buffered object"
        );
        let p = Probe::new();
        let mut a = node(&p);
        drop(a.clone()); // the first entry: `ACTIVE`
        Cc::get_mut(&mut a).expect("unique").label = 1; // detached: a unit
        let b = a.clone();
        drop(a); // the second entry: `ACTIVE` again
        let t = thread::spawn(move || {
            check(&b);
            drop(b); // the last drop: the strong side becomes an entry's unit
        });
        collect();
        t.join().unwrap();
        assert_eq!(drops(&[&p0, &p]), 2);
        collect();
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: a collection against the drop of the last outside handle to a
/// cycle (the buffer's "no decrement is lost" invariant: the drop's CAS
/// against the collector clearing `ACTIVE`).
///
/// Guards: "Every object whose last handle is gone is freed, cycles
/// included, once a collection runs after that" and "No object is freed
/// while a handle to it ... exists".
#[test]
fn collect_vs_drop_race() {
    exhaustive("collect_vs_drop_race", || {
        let before = allocations();
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        let hx = x.clone();
        drop(x);
        drop(y);
        let t = thread::spawn(move || {
            check(&hx);
            drop(hx);
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(
            drops(&[&px, &py]),
            2,
            "the cycle is freed once the last outside handle is gone"
        );
        // A member buffered while the first collection held it may die
        // with `ACTIVE` set: its entry keeps the allocation until the
        // second collection takes it.
        collect();
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: while a collection holds an object — its strong word then carries
/// the object's visit number where the type code was (see `header`) —
/// another thread downgrades and upgrades a handle to it (the upgrade
/// derives the handle's tracked tag from that half of the word), and drops
/// handles that buffer it again (the entry carries only the address; the
/// next collection reads the code from the word, which must by then be
/// the code again).
///
/// Guards: "No object is freed while a handle to it ... exists", and
/// "Every object whose last handle is gone is freed, cycles included, once
/// a collection runs after that": the second `collect()` decodes the
/// entries pushed during the first and frees the cycle.
#[test]
fn visit_number_vs_upgrade_and_buffering() {
    model("visit_number_vs_upgrade_and_buffering", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        let hx = x.clone();
        drop(x); // x and y are buffered
        drop(y);
        let t = thread::spawn(move || {
            let w = Cc::downgrade(&hx);
            let u = w.upgrade().expect("hx keeps x alive");
            check(&u);
            drop(u); // count stays above 0: may buffer x again
            check(&hx);
            drop(hx); // the last outside handle
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(
            drops(&[&px, &py]),
            2,
            "the cycle is freed once the last outside handle is gone"
        );
    });
}

/// Race: a young collection (`collect_young`) takes a young root whose only
/// other holder is an *old* object on the same garbage cycle, while the
/// root's last outside handle is dropped on another thread — before the
/// hold (no new entry: the young collection's is the only one), during it
/// (the drop buffers a new entry), or after the hold is let go.
///
/// Set-up: `o` survives a full collection while only `n` refers to it
/// (old); `n` is never visited (young); then `o -> n` is linked without
/// touching `o`'s count, so `{o, n}` is a cycle that a young collection
/// cannot free (`o` is treated as external) and whose only possible root
/// is `n`.
///
/// Guards: "Every object whose last handle is gone is freed ... once a
/// collection runs after that" across generations: the young collection
/// holds `n`'s entry over (or finds that the racing drop buffered a new
/// one), so the final full `collect()` frees the cycle, exactly once.
/// Teeth: under `--cfg arcycle_broken_generations` (young survivors'
/// entries not held over) loom finds the schedule in which the cycle is
/// never freed (`scripts/loom-teeth.sh`).
#[test]
fn young_collection_holds_over_survivors() {
    model("young_collection_holds_over_survivors", || {
        let (po, pn) = (Probe::new(), Probe::new());
        let o = node(&po);
        let n = node(&pn);
        *n.next.lock().unwrap() = Some(o.clone());
        drop(o); // buffered: `n` still refers to it
        collect(); // `o` survives (old); `n` was never visited (young)
        {
            let o_field = n.next.lock().unwrap();
            let o = o_field.as_ref().unwrap();
            *o.next.lock().unwrap() = Some(n.clone());
        }
        let n2 = n.clone();
        drop(n); // buffers `n`: its possible root
        let t = thread::spawn(move || {
            check(&n2);
            drop(n2); // the last outside handle
        });
        arcycle::collect_young();
        t.join().unwrap();
        collect();
        assert_eq!(
            drops(&[&po, &pn]),
            2,
            "GENERATIONS LOST A GARBAGE CYCLE: a cycle through an old object survived a full collection"
        );
    });
}

// ---------------------------------------------------------------------------
// Validation races
// ---------------------------------------------------------------------------

/// Race: the collector validates a proposed garbage cycle while another
/// thread, through a `Weak`, takes a handle to one member, clones a handle
/// to another out of an immutable field, and drops the first (the ABA case:
/// counts end where they were, but a handle escaped). The collection must
/// abort, never free.
///
/// The cycle is a ring `a -> b -> c -> a` of immutable edges, buffered (and
/// so frozen) in the order a, b, c. The other thread first reads `b`'s
/// strong count through a `Weak`: a harmless load that gives loom's DPOR a
/// dependency on `b`'s freezing CAS, so that it schedules the thread in the
/// middle of the freeze window (after `a` is frozen, before `c` is read)
/// within two preemptions. It then upgrades `c`, clones `a` out of `c` and
/// drops `c` again: `c`'s count is back to its internal value when the
/// collector reads it, `a`'s word changed after it was frozen.
///
/// Guards: "No object is freed while a handle to it ... exists" and "A
/// collection that aborts loses nothing and leaves every count as it was"
/// (everything is freed by the final collection).
///
/// This is the teeth model: under `--cfg arcycle_broken` (validation without
/// its verify step) loom finds the interleaving in which the ring is freed
/// while the other thread holds a handle (`scripts/loom-teeth.sh`).
#[test]
fn validate_vs_clone_drop_aba() {
    model("validate_vs_clone_drop_aba", aba_ring::<Node>);
}

/// A node type the ABA models build a ring of: a watched value with one
/// immutable edge (`fixed`).
trait RingNode: arcycle::Trace + Send + Sync + Sized + 'static {
    fn make(probe: &Probe) -> Cc<Self>;
    fn fixed(&self) -> &std::sync::OnceLock<Cc<Self>>;
    /// Fail loudly if `cc`'s value was destroyed.
    fn check(cc: &Cc<Self>);
}

impl RingNode for Node {
    fn make(probe: &Probe) -> Cc<Self> {
        node(probe)
    }
    fn fixed(&self) -> &std::sync::OnceLock<Cc<Self>> {
        &self.fixed
    }
    fn check(cc: &Cc<Self>) {
        check(cc)
    }
}

/// The ABA race on a ring `a -> b -> c -> a` of `N`s (see
/// `validate_vs_clone_drop_aba` for the schedule it is built to expose).
fn aba_ring<N: RingNode>() {
    let (pa, pb, pc) = (Probe::new(), Probe::new(), Probe::new());
    let (a, b, c) = (N::make(&pa), N::make(&pb), N::make(&pc));
    assert!(a.fixed().set(b.clone()).is_ok());
    assert!(b.fixed().set(c.clone()).is_ok());
    assert!(c.fixed().set(a.clone()).is_ok());
    let (wb, wc) = (Cc::downgrade(&b), Cc::downgrade(&c));
    drop(a); // roots, in this order: a, b, c
    drop(b);
    drop(c);
    let t = thread::spawn(move || {
        let _ = wb.strong_count(); // the DPOR probe (see above)
        if let Some(uc) = wc.upgrade() {
            let ha = uc.fixed().get().expect("fixed edge set").clone();
            drop(uc);
            N::check(&ha);
            let hb = ha.fixed().get().expect("fixed edge set").clone();
            drop(ha);
            N::check(&hb);
            true
        } else {
            false
        }
    });
    collect();
    let upgraded = t.join().unwrap();
    if !upgraded {
        assert_eq!(
            drops(&[&pa, &pb, &pc]),
            3,
            "upgrade returned None for an object that survived the collection"
        );
    }
    collect();
    assert_eq!(drops(&[&pa, &pb, &pc]), 3);
}

/// A node whose only edge is immutable (set once before the node is
/// shared): its trace takes no lock, so the collector re-uses its
/// first-pass edges instead of tracing it again while it validates.
#[derive(arcycle::Trace)]
struct FixedNode {
    #[trace(skip)]
    probe: Probe,
    fixed: std::sync::OnceLock<Cc<FixedNode>>,
}

impl Drop for FixedNode {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

impl RingNode for FixedNode {
    fn make(probe: &Probe) -> Cc<Self> {
        Cc::new(FixedNode {
            probe: probe.clone(),
            fixed: std::sync::OnceLock::new(),
        })
    }
    fn fixed(&self) -> &std::sync::OnceLock<Cc<Self>> {
        &self.fixed
    }
    fn check(cc: &Cc<Self>) {
        assert!(
            !Cc::is_dead(cc),
            "LIVE HANDLE TO COLLECTED OBJECT: the collector destroyed a value a handle still refers to"
        );
        cc.probe.check_alive();
    }
}

/// Race: as `validate_vs_clone_drop_aba`, but on lock-free members — the
/// collector does not trace them a second time (their edges are immutable
/// and they are held), so only the freeze-and-verify of their words stands
/// between the escaping handle and a use-after-free.
///
/// Guards: "No object is freed while a handle to it ... exists" and "A
/// collection that aborts loses nothing and leaves every count as it was".
#[test]
fn validate_vs_clone_drop_aba_lock_free() {
    model(
        "validate_vs_clone_drop_aba_lock_free",
        aba_ring::<FixedNode>,
    );
}

/// Race: the collector against a thread that moves a handle out of a
/// candidate's `Mutex` onto its stack ("moves change no count").
///
/// Guards: "No object is freed while a handle to it ... exists" (the moved
/// handle stays usable) and "Every object whose last handle is gone is
/// freed".
#[test]
fn validate_vs_move_out_of_mutex() {
    model("validate_vs_move_out_of_mutex", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        let hx = x.clone();
        drop(x);
        drop(y);
        let t = thread::spawn(move || {
            // `hy` reaches `x` through its field: both are checked.
            let (_hy, _x2) = move_out_and_check(hx);
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(drops(&[&px, &py]), 2);
    });
}

/// Race: the collector against a thread that reaches a garbage candidate
/// through a `Weak`, moves the handle in its `Mutex` onto its stack, lets
/// go of the candidate (so that, for a moment, the one handle outside the
/// pair's fields is the moved one), then puts the same handle back. Done
/// between pass 1 and validation, the re-trace finds exactly pass 1's
/// edges and validation counts nothing (see "Counting from pass 1" in
/// `collector/validate.rs`); done across them, the re-trace differs (or
/// the lock is busy) and the batch counts. A validation that trusted pass
/// 1's counts without comparing the edges would free the pair while the
/// moved handle is on the stack.
///
/// Guards: "No object is freed while a handle to it ... exists" (the
/// handle on the stack stays usable, whichever way the batch counted) and
/// "Every object whose last handle is gone is freed". Run with pass 1's
/// closed components off (`validation_only`): the pair's two roots make
/// one, which pass 1 would decide itself (`closed_batch_vs_move_out` is
/// that race).
#[test]
fn validate_vs_move_out_and_back() {
    model(
        "validate_vs_move_out_and_back",
        validation_only(|| {
            let (px, py) = (Probe::new(), Probe::new());
            let (x, y) = mutex_pair(&px, &py);
            let wx = Cc::downgrade(&x);
            drop(x);
            drop(y);
            let t = thread::spawn(move || {
                if let Some(hx) = wx.upgrade() {
                    // Back to `x` through `y`'s own field, and the handle back in.
                    let (hy, hx) = move_out_and_check(hx);
                    *hx.next.lock().unwrap() = Some(hy);
                }
            });
            collect();
            t.join().unwrap();
            collect();
            assert_eq!(drops(&[&px, &py]), 2);
        }),
    );
}

/// Race: pass 1 deciding a closed component of its window (a 2-cycle whose
/// members were both buffered: `collector/early.rs`) against a thread that
/// reaches a member through a `Weak`, moves the handle in its `Mutex` onto
/// its stack and lets go of the member, so that every count again equals
/// the edges pass 1 recorded while the moved handle is live.
///
/// Guards: "No object is freed while a handle to it ... exists": pass 1
/// keeps every guard of the window until the decision, so the move waits
/// for it (or comes before the trace, which then records no edge).
/// `scripts/loom-teeth.sh` builds pass 1 letting go of the window's guards
/// before the decision (`--cfg arcycle_broken_early`) and asserts that
/// loom then finds the moved handle's object freed.
#[test]
fn closed_batch_vs_move_out() {
    model("closed_batch_vs_move_out", || {
        let before = allocations();
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        let wx = Cc::downgrade(&x);
        drop(x); // roots, in this order: x, y (one window)
        drop(y);
        let t = thread::spawn(move || {
            if let Some(hx) = wx.upgrade() {
                let (_hy, _x2) = move_out_and_check(hx);
            }
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(drops(&[&px, &py]), 2);
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: the collector against a thread that moves a handle from one
/// candidate's `Mutex` into another node's `Mutex` (a node outside the
/// cycle), then drops its own handle to the candidate.
///
/// Guards: "No object is freed while a handle to it ... exists".
#[test]
fn validate_vs_move_to_other_node() {
    model("validate_vs_move_to_other_node", || {
        let (px, py, pz) = (Probe::new(), Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        let z = node(&pz);
        let hx = x.clone();
        drop(x);
        drop(y);
        let t = thread::spawn(move || {
            let moved = hx.next.lock().unwrap().take();
            *z.next.lock().unwrap() = moved;
            drop(hx);
            let hy = z.next.lock().unwrap().clone().expect("edge moved in");
            check(&hy);
            check(&z);
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(drops(&[&px, &py, &pz]), 3);
    });
}

/// Race: pass 1 holds a child while its parent's field still has the
/// handle, against a thread that takes that handle out of the field and
/// drops it (the child's last handle) as soon as the parent's lock is free.
///
/// Guards: "everything visited is held" (`collector::discover`): the
/// pipelined pass 1 keeps a parent's guards until the parent's children
/// are held, so the child cannot be freed between the trace that found it
/// and its hold. `scripts/loom-teeth.sh` builds pass 1 letting go of the
/// guards first (`--cfg arcycle_broken_pipeline`) and asserts that loom
/// then finds the collector touching the freed child.
#[test]
fn trace_vs_take_and_drop_child() {
    model("trace_vs_take_and_drop_child", || {
        let (pp, pc) = (Probe::new(), Probe::new());
        let p = node(&pp);
        *p.next.lock().unwrap() = Some(node(&pc));
        let hp = p.clone();
        drop(p); // buffers `p`: the collection traces it as a root
        let t = thread::spawn(move || {
            let c = hp.next.lock().unwrap().take().expect("edge present");
            check(&c);
            drop(c); // the child's last handle
            drop(hp);
        });
        collect();
        t.join().unwrap();
        assert_eq!(drops(&[&pp, &pc]), 2, "both values are destroyed once");
    });
}

/// Race: the collector against `Weak::upgrade` of a garbage cycle member,
/// in validation (pass 1's closed components off, `validation_only`) and
/// in pass 1's decision of the pair's window (`closed_batch_vs_upgrade`).
///
/// Guards: "`Weak::upgrade` never returns a handle to something being
/// freed, and never returns None for something that survives."
#[test]
fn validate_vs_upgrade() {
    exhaustive("validate_vs_upgrade", validation_only(upgrade_pair));
}

/// [`validate_vs_upgrade`] with pass 1's closed components on: the pair's
/// two roots make one, frozen and verified in pass 1 (across a batch
/// boundary: under loom a batch is one object).
#[test]
fn closed_batch_vs_upgrade() {
    exhaustive("closed_batch_vs_upgrade", upgrade_pair);
}

/// A garbage 2-cycle of roots, one member upgraded through a `Weak` while
/// it is collected.
fn upgrade_pair() {
    let (px, py) = (Probe::new(), Probe::new());
    let (x, y) = mutex_pair(&px, &py);
    let wx = Cc::downgrade(&x);
    drop(x);
    drop(y);
    let t = thread::spawn(move || upgrade_and_check(&wx));
    collect();
    let upgraded = t.join().unwrap();
    if !upgraded {
        assert_eq!(
            drops(&[&px, &py]),
            2,
            "upgrade returned None for an object that survived the collection"
        );
    }
    collect();
    assert_eq!(drops(&[&px, &py]), 2);
}

// ---------------------------------------------------------------------------
// Unique access against the collector
// ---------------------------------------------------------------------------

/// Race: the collector (which may hold and trace a buffered object) against
/// `Cc::get_mut` on the object's only handle.
///
/// Guards: "No data race on any `T`: the collector reads `T` only under the
/// same synchronisation a user thread would need" (loom checks the
/// collector's read of the value against `get_mut`'s write), and the
/// collector's holds never leak into what users observe: `get_mut` of a
/// unique handle always succeeds.
#[test]
fn collect_vs_get_mut() {
    exhaustive("collect_vs_get_mut", || {
        let before = allocations();
        let p = Probe::new();
        let mut a = node(&p);
        drop(a.clone()); // buffers a possible root: the collector will visit it
        let t = thread::spawn(move || {
            let v = Cc::get_mut(&mut a).expect("get_mut of the only handle must succeed");
            v.label = 7;
            *v.next.get_mut().unwrap() = None;
            assert_eq!(a.label, 7);
            check(&a);
            a
        });
        assert_eq!(collect(), 0);
        let a = t.join().unwrap();
        assert_eq!(p.drops(), 0);
        drop(a);
        assert_eq!(p.drops(), 1);
        collect();
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

/// Race: the collector against `Cc::try_unwrap` of the object's only handle.
///
/// Guards: "No data race on any `T`" and the holds never leak into what
/// users observe: `try_unwrap` of a unique handle always succeeds, and the
/// value is dropped exactly once, by its new owner.
#[test]
fn collect_vs_try_unwrap() {
    exhaustive("collect_vs_try_unwrap", || {
        let before = allocations();
        let p = Probe::new();
        let a = node(&p);
        drop(a.clone());
        let t = thread::spawn(move || {
            let v = match Cc::try_unwrap(a) {
                Ok(v) => v,
                Err(_) => panic!("try_unwrap of the only handle must succeed"),
            };
            v.probe.check_alive();
            drop(v);
        });
        assert_eq!(collect(), 0);
        t.join().unwrap();
        assert_eq!(p.drops(), 1);
        collect();
        assert_eq!(p.drops(), 1);
        assert_eq!(allocations(), before, "every allocation is given back");
    });
}

// ---------------------------------------------------------------------------
// Collections against each other
// ---------------------------------------------------------------------------

/// Race: two explicit collections at once over the same garbage cycle.
///
/// Guards: "Every object whose last handle is gone is freed ... once a
/// collection runs after that" — exactly once: the two results add up to
/// the cycle's size.
#[test]
fn two_collections() {
    exhaustive("two_collections", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        drop(x);
        drop(y);
        let t = thread::spawn(collect);
        let mine = collect();
        let theirs = t.join().unwrap();
        assert_eq!(mine + theirs, 2);
        assert_eq!(drops(&[&px, &py]), 2);
    });
}

/// Race: an explicit collection returns only after a full pass over every
/// possible root buffered before it was called — even when another
/// collection took those roots first.
///
/// Guards: "`collect()` returns only after a full pass over every candidate
/// buffered before it was called, by any thread."
///
/// Found a bug in 2e4cc04 (the first execution already failed): the other
/// collection took the roots and released the collector lock before running
/// destructors, so this `collect()` returned 0 with the cycle not yet
/// destroyed (and nothing ordering those destructors before the return).
/// Passes since 511ac98, which holds the lock through destructors.
#[test]
fn collect_returns_after_concurrent_collection() {
    exhaustive("collect_returns_after_concurrent_collection", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        drop(x);
        drop(y);
        let (qx, qy) = (px.clone(), py.clone());
        let t = thread::spawn(move || {
            collect();
            assert_eq!(
                drops(&[&qx, &qy]),
                2,
                "collect() returned before the garbage it was called after was freed"
            );
        });
        collect();
        assert_eq!(
            drops(&[&px, &py]),
            2,
            "collect() returned before the garbage it was called after was freed"
        );
        t.join().unwrap();
    });
}

/// Race: `collect()` against the automatic trigger (threshold 1, so a
/// `Cc::new` on another thread starts an automatic collection).
///
/// Guards: "Every object whose last handle is gone is freed ... once a
/// collection runs after that" (exactly once, whichever collection frees
/// it).
#[test]
fn collect_vs_auto_trigger() {
    exhaustive("collect_vs_auto_trigger", || {
        arcycle::set_threshold(1);
        let (px, py, pz) = (Probe::new(), Probe::new(), Probe::new());
        let (x, y) = mutex_pair(&px, &py);
        drop(x);
        drop(y);
        let qz = pz.clone();
        let t = thread::spawn(move || {
            let z = node(&qz); // may run an automatic collection first
            check(&z);
        });
        let mine = collect();
        t.join().unwrap();
        assert!(mine <= 2);
        collect();
        assert_eq!(drops(&[&px, &py]), 2);
        assert_eq!(pz.drops(), 1);
        assert_eq!(arcycle::stats().freed, 2, "the cycle is freed exactly once");
    });
}

/// Race: a drop that crosses the threshold signals the collector thread
/// (background mode) while that thread registers itself and parks — the
/// signal/park handshake of `collector::worker`, with the thread's handle
/// registered before or after the signal, and the signal's flag read stale
/// or fresh.
///
/// Guards: no lost wake-up (a lost signal leaves the collector thread
/// parked for ever while the model joins it: loom reports the deadlock),
/// and "Every object whose last handle is gone is freed ... once a
/// collection runs after that", exactly once.
#[test]
fn trigger_wakes_collector_thread() {
    exhaustive("trigger_wakes_collector_thread", || {
        arcycle::set_threshold(1);
        arcycle::set_background(true);
        let p = Probe::new();
        // Plays the collector thread for one round: parks until signalled.
        let collector = thread::spawn(arcycle::__loom_collector_round);
        let a = node(&p);
        *a.next.lock().unwrap() = Some(a.clone());
        // Buffers a root: 1 >= threshold, so the trigger is set and the
        // collector thread signalled (inline mode would collect here).
        drop(a);
        collector.join().unwrap();
        assert!(p.drops() <= 1);
        collect();
        assert_eq!(p.drops(), 1, "the cycle is freed exactly once");
        assert_eq!(arcycle::stats().freed, 1);
    });
}

/// Race: the first root pushed into an empty buffer (background mode)
/// against the collector thread ending its quiet period (`settle`, the
/// buffer found empty): the pusher reads `armed` after its push, the thread
/// reads the buffer after clearing `armed` — the store-buffering shape of
/// `collector::worker`, which both sides' `SeqCst` fences close.
///
/// Guards: "Every object whose last handle is gone is freed, cycles
/// included, once a collection runs after that" in background mode: either
/// the thread sees the root (and times a new period) or the pusher sees the
/// thread disarmed (and wakes it); never neither, which would leave the
/// cycle buffered with no quiet pass to come. `scripts/loom-teeth.sh`
/// builds `settle` without its fence (`--cfg arcycle_broken_quiet`) and
/// asserts that loom then finds the lost period.
#[test]
fn first_root_vs_quiet_disarm() {
    exhaustive("first_root_vs_quiet_disarm", || {
        arcycle::set_background(true);
        // The collector thread is timing a quiet period.
        arcycle::__loom_quiet_arm();
        let p = Probe::new();
        let a = node(&p);
        *a.next.lock().unwrap() = Some(a.clone());
        // Buffers the first root (below the threshold: no trigger).
        let t = thread::spawn(move || drop(a));
        // The period ends with the buffer seen empty, or not.
        let rearmed = arcycle::__loom_quiet_disarm();
        t.join().unwrap();
        assert!(
            rearmed || arcycle::__loom_quiet_signalled(),
            "QUIET PERIOD LOST: a buffered root with the collector thread neither armed nor signalled"
        );
        collect();
        assert_eq!(p.drops(), 1, "the cycle is freed exactly once");
    });
}

/// Race: an allocation starting to wait for the running collection
/// (pacing, `collector::pace`) against that collection's end: the waiter
/// counts itself, then reads the finished count; the ender raises the
/// count, then reads the waiters — the store-buffering shape, which both
/// sides' `SeqCst` fences close. The model runs the handshake itself,
/// whose wait has no limit under loom.
///
/// Guards: a paced allocation is woken when the collection it waits for
/// ends, instead of sleeping out its limit (under loom, for ever: a
/// deadlock). `scripts/loom-teeth.sh` builds the ender without its fence
/// (`--cfg arcycle_broken_pace`) and asserts that loom then finds the
/// deadlock.
#[test]
fn pace_wait_vs_collection_end() {
    exhaustive("pace_wait_vs_collection_end", || {
        let h = loom::sync::Arc::new(arcycle::__LoomPaceHandshake::new());
        let seen = h.finished();
        let ender = h.clone();
        let t = thread::spawn(move || ender.end());
        assert!(h.wait(seen, std::time::Duration::MAX));
        t.join().unwrap();
        assert_eq!(h.finished(), seen + 1, "one collection ended");
    });
}

// ---------------------------------------------------------------------------
// Threads exiting
// ---------------------------------------------------------------------------

/// A value stashed in a thread-local: its handle is dropped during the
/// thread's thread-local teardown, after which it raises `done` (loom's
/// `join` does not wait for thread-local destructors, so the model waits
/// for this flag instead).
struct Stashed {
    cc: Option<Cc<Node>>,
    done: loom::sync::Arc<loom::sync::atomic::AtomicBool>,
}

impl Drop for Stashed {
    fn drop(&mut self) {
        drop(self.cc.take());
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

loom::thread_local! {
    static STASH: std::cell::RefCell<Option<Stashed>> = std::cell::RefCell::new(None);
}

/// Race: a thread exits with possible roots in its buffer shard (and drops
/// one more during its thread-local teardown), while another thread
/// collects.
///
/// Guards: "`collect()` returns only after a full pass over every candidate
/// buffered before it was called, by any thread" — roots of exited threads
/// are not lost — and "Every object whose last handle is gone is freed".
#[test]
fn thread_exit_with_buffered_roots() {
    model("thread_exit_with_buffered_roots", || {
        let (px, py) = (Probe::new(), Probe::new());
        let (qx, qy) = (px.clone(), py.clone());
        let done = loom::sync::Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let t = thread::spawn(move || {
            let (x, y) = mutex_pair(&qx, &qy);
            // Dropped during this thread's thread-local teardown.
            STASH.with(|s| {
                *s.borrow_mut() = Some(Stashed {
                    cc: Some(x),
                    done: flag,
                })
            });
            drop(y);
        });
        collect();
        t.join().unwrap();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            thread::yield_now();
        }
        collect();
        assert_eq!(
            drops(&[&px, &py]),
            2,
            "roots buffered by an exited thread were lost"
        );
    });
}

/// Race: a thread's ring is full (two slots under loom), so its third
/// buffered root spills the ring into a shard, while another thread
/// collects (draining the rings, then the shards). Each entry must be
/// taken exactly once: from the ring, or from the shard after the spill
/// (a spill that let go of the registry lock before the shard had the
/// entries would let `collect()` miss them; one that read the slots
/// without it could hand both the drain and the shard the same entry).
///
/// Guards: "`collect()` returns only after a full pass over every
/// candidate buffered before it was called" and "Every object whose last
/// handle is gone is freed, cycles included, once a collection runs after
/// that".
#[test]
fn ring_spill_vs_drain() {
    model("ring_spill_vs_drain", || {
        let probes = [Probe::new(), Probe::new(), Probe::new()];
        let mine = probes.clone();
        let t = thread::spawn(move || {
            for p in &mine {
                // A self-loop through an immutable edge: dropping the
                // outside handle leaves it at count 1 and buffers it.
                let a = node(p);
                assert!(a.fixed.set(a.clone()).is_ok());
                drop(a);
            }
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(
            drops(&[&probes[0], &probes[1], &probes[2]]),
            3,
            "a root the spill moved was lost"
        );
    });
}

// ---------------------------------------------------------------------------
// Issue 7: promises kept under attack
// ---------------------------------------------------------------------------

/// A cycle-capable node whose `Trace` impl always reports itself busy (safe
/// code can arrange this: a `MutexGuard` of one of its fields forgotten).
/// Every collection holds it, reads it, finds it busy and buffers it again.
pub struct AlwaysBusy {
    probe: Probe,
    value: usize,
}

// SAFETY: reports no edge (under-reporting is safe).
unsafe impl arcycle::Trace for AlwaysBusy {
    fn trace<'a>(&'a self, tracer: &mut arcycle::Tracer<'a>) {
        self.probe.check_alive();
        tracer.busy();
    }
}

impl Drop for AlwaysBusy {
    fn drop(&mut self) {
        self.probe.on_drop();
    }
}

/// Race (issue 7, item 1): `Cc::get_mut` on the only handle of a buffered
/// object against a collection that takes it as a root, reads its value,
/// finds it busy, buffers it again and lets go. Those are flag changes
/// only, so the strong word comes back to exactly what `get_mut` loaded
/// and its detaching CAS succeeds; with a Relaxed CAS the write through the
/// returned `&mut` raced with the collector's read of the value (loom
/// reports a causality violation on the value cell). The CAS is Acquire
/// now, reading from the collector's Release of its hold.
///
/// Guards: "No data race on any `T`: the collector reads `T` only under the
/// same synchronisation a user thread would need."
#[test]
fn get_mut_vs_busy_root_round_trip() {
    exhaustive("get_mut_vs_busy_root_round_trip", || {
        let p = Probe::new();
        let mut a = Cc::new(AlwaysBusy {
            probe: p.clone(),
            value: 0,
        });
        drop(a.clone()); // buffers `a` as a possible root
        let t = thread::spawn(|| {
            collect();
        });
        if let Some(v) = Cc::get_mut(&mut a) {
            v.value += 1;
            assert_eq!(v.value, 1);
        }
        t.join().unwrap();
        drop(a);
        assert_eq!(p.drops(), 1);
        collect(); // release the entry it may have left
    });
}

/// Race (issue 7, item 2): one garbage cycle is touched through a `Weak`
/// (upgraded and dropped again) while a collection validates it, and an
/// unrelated garbage cycle with no `Weak` at all must be freed by that very
/// `collect()`, whatever the touch does to the first. The two components
/// are decided together — in one window of pass 1 (`collector/early.rs`),
/// or in one batch of validation's when the touch made pass 1 leave the
/// first to it — where a failure blames only what it reaches.
///
/// Guards: "Every object whose last handle is gone is freed, cycles
/// included, once a collection runs after that" and "A collection that
/// aborts loses nothing" (the touched cycle is freed by the next one).
#[test]
fn touched_component_spares_the_other() {
    model("touched_component_spares_the_other", || {
        let (pa, pb) = (Probe::new(), Probe::new());
        let a = node(&pa);
        let b = node(&pb);
        assert!(a.fixed.set(a.clone()).is_ok()); // two self-loops
        assert!(b.fixed.set(b.clone()).is_ok());
        let wa = Cc::downgrade(&a);
        drop(a);
        drop(b);
        let t = thread::spawn(move || upgrade_and_check(&wa));
        collect();
        assert_eq!(
            pb.drops(),
            1,
            "the untouched cycle is freed by this collect()"
        );
        t.join().unwrap();
        collect();
        assert_eq!(pa.drops(), 1, "the touched cycle is freed by the next one");
    });
}

// ---------------------------------------------------------------------------
// Unsized values (issue #8)
// ---------------------------------------------------------------------------

/// An object-safe node trait: the models below hold nodes as
/// `Cc<dyn Link>`, so every edge the collector follows is a `dyn` edge
/// whose table it found through the allocation's type code.
trait Link: arcycle::Trace + Send + Sync {
    fn slot(&self) -> &loom::sync::Mutex<Option<Cc<dyn Link>>>;
    fn probe(&self) -> &Probe;
}

#[derive(arcycle::Trace)]
struct DynA {
    #[trace(skip)]
    probe: Probe,
    next: loom::sync::Mutex<Option<Cc<dyn Link>>>,
}

/// A second concrete type, laid out differently (the edge is not the
/// first field), so a table mix-up would misread it.
#[derive(arcycle::Trace)]
struct DynB {
    #[trace(skip)]
    pad: [u64; 3],
    next: loom::sync::Mutex<Option<Cc<dyn Link>>>,
    #[trace(skip)]
    probe: Probe,
}

macro_rules! impl_link {
    ($($t:ty),*) => {$(
        impl Link for $t {
            fn slot(&self) -> &loom::sync::Mutex<Option<Cc<dyn Link>>> {
                &self.next
            }
            fn probe(&self) -> &Probe {
                &self.probe
            }
        }
        impl Drop for $t {
            fn drop(&mut self) {
                self.probe.on_drop();
            }
        }
    )*};
}
impl_link!(DynA, DynB);

fn check_dyn(cc: &Cc<dyn Link>) {
    assert!(
        !Cc::is_dead(cc),
        "LIVE HANDLE TO COLLECTED OBJECT: the collector destroyed a value a handle still refers to"
    );
    cc.probe().check_alive();
}

/// Race: `validate_vs_move_out_of_mutex` with `dyn` edges: the collector
/// validates a two-node cycle of different concrete types, held only as
/// `Cc<dyn Link>`, while another thread moves a handle out of one member's
/// `Mutex` and drops its own handle to that member.
///
/// Guards: "No object is freed while a handle to it ... exists" for
/// objects reached through `dyn` edges (the collector traces each through
/// its concrete type's table, recorded at allocation) and "Every object
/// whose last handle is gone is freed".
#[test]
fn dyn_edge_cycle_vs_move() {
    model("dyn_edge_cycle_vs_move", || {
        let (px, py) = (Probe::new(), Probe::new());
        let x: Cc<dyn Link> = arcycle::coerce!(Cc::new(DynA {
            probe: px.clone(),
            next: loom::sync::Mutex::new(None),
        }));
        let y: Cc<dyn Link> = arcycle::coerce!(Cc::new(DynB {
            pad: [0; 3],
            next: loom::sync::Mutex::new(None),
            probe: py.clone(),
        }));
        *x.slot().lock().unwrap() = Some(y.clone());
        *y.slot().lock().unwrap() = Some(x.clone());
        let hx = x.clone();
        drop(x);
        drop(y);
        let t = thread::spawn(move || {
            let hy = hx.slot().lock().unwrap().take().expect("edge present");
            drop(hx);
            check_dyn(&hy);
            let x2 = hy.slot().lock().unwrap().clone().expect("edge present");
            check_dyn(&x2);
        });
        collect();
        t.join().unwrap();
        collect();
        assert_eq!(drops(&[&px, &py]), 2);
    });
}

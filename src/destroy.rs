//! Destroying a value whose last handle is gone: inline, as `Arc` does,
//! without overflowing the stack on long chains.
//!
//! # Guarantees
//!
//! * **Inline while the stack has room.** A last drop destroys the value
//!   right there, and a value's destructor that drops the last handle to a
//!   child destroys the child *inside* that `drop` call — so a destructor
//!   may drop a field and then rely on the field's destructor having run
//!   (join a worker waiting for a channel the field closed), exactly as
//!   with `Arc`. Guarded by `tests/reliability.rs`.
//! * **Bounded stack.** Nested destruction may use at most [`NEST_BUDGET`]
//!   bytes of stack beyond the frame of the outermost destruction on this
//!   thread (measured between two stack-pointer readings: no platform
//!   query, so it works the same everywhere, under Miri and loom too).
//!   Past that, a nested destruction is queued instead, and the outermost
//!   destruction runs the queue, each entry again inline from a shallow
//!   stack, before it returns. A ten-million-node list is destroyed on a
//!   default stack, and a million-node one on a 256 KiB stack. Only a
//!   destructor running that deep sees its child's destruction happen
//!   after it returns rather than inside it — where `Arc` would overflow
//!   the stack.
//! * **Every value is destroyed before the outermost drop returns**, on the
//!   dropping thread, even if a destructor panics (each queued destruction
//!   runs under `catch_unwind`; the first panic is resumed afterwards).
//!   Destructions that start while a panic unwinds are queued the same way,
//!   so a second panicking destructor is reported (see
//!   `crate::set_report_hook`) rather than aborting the process.
//! * During thread-local teardown the queue may be gone; then destruction
//!   recurses, as `Arc`'s does.
//! * **No call level of its own.** Only the outermost destruction on a
//!   thread keeps state (the stack address nesting is measured from, and
//!   the queue it runs on the way out); a nested one jumps to the value's
//!   destruction (`VTable::destroy`, or `drop_value` for a dead member),
//!   so a chain of destructions makes only the calls its values' `Drop`s
//!   make, as with `Arc`. A recursion deeper than the CPU's return
//!   predictor pays a mispredicted return per call level on the way back,
//!   which made a nested level cost twice `Arc`'s before. Guarded for
//!   behaviour by the tests above; the cost is measured, not tested (see
//!   the issue-9 note).

use crate::trace::Node;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// How much stack nested destructions may use beyond the outermost one's
/// frame before further nesting is queued.
pub(crate) const NEST_BUDGET: usize = 128 * 1024;

/// A destruction deferred for lack of stack: what to run it on, and how.
type Deferred = (Node, unsafe fn(Node));

struct Destroyer {
    /// A stack address in the outermost destruction's frame, or zero when
    /// no destruction is in progress on this thread. Only the outermost
    /// destruction sets and clears it, so a nested one keeps no state and
    /// its call is the last thing `nest` does (see there).
    base: Cell<usize>,
    /// Destructions deferred for lack of stack, run by the outermost one.
    queued: RefCell<Vec<Deferred>>,
}

crate::sync::cc_thread_local! {
    static DESTROYER: Destroyer = Destroyer {
        base: Cell::new(0),
        queued: RefCell::new(Vec::new()),
    };
}

/// The current stack pointer (or an address in the caller's frame).
///
/// On x86-64 and AArch64 it reads the register: the address of a local
/// would do, but sanitizers (ASan's fake stacks) move addressed locals off
/// the stack. Elsewhere, and under Miri (no inline assembly), it takes the
/// address of a local.
#[inline(always)]
fn stack_address() -> usize {
    #[cfg(all(not(miri), target_arch = "x86_64"))]
    {
        let sp: usize;
        // SAFETY: copies the stack pointer into a register; touches no
        // memory and no flags.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(all(not(miri), target_arch = "aarch64"))]
    {
        let sp: usize;
        // SAFETY: as above.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
    {
        let marker = 0u8;
        // `black_box` keeps the local in memory, so its address is a real
        // address of this frame.
        std::hint::black_box(&marker) as *const u8 as usize
    }
}

/// Whether a destruction may nest inline, given the outermost one's
/// stack address (stacks may grow either way).
#[inline]
fn room(base: usize) -> bool {
    stack_address().abs_diff(base) < NEST_BUDGET
}

/// Destroy `node`'s value and give back the strong side's claim on the
/// allocation (freeing it if that was the last claim).
///
/// # Safety
/// The caller took the strong count to zero with no collector hold and the
/// object is not dead: it alone owns the value now.
pub(crate) unsafe fn destroy(node: Node) {
    // SAFETY: forwarded contract.
    unsafe { nest(node, destroy_one) }
}

/// Drop the value of a dead member of the garbage being destroyed by this
/// thread's collection (the collector frees the allocation afterwards).
///
/// # Safety
/// The caller claimed the member's `VALUE_PENDING`: it alone drops the
/// value, within the collector's destroy loop.
pub(crate) unsafe fn destroy_value_only(node: Node) {
    // SAFETY: forwarded contract.
    unsafe { nest(node, drop_value) }
}

/// # Safety
/// As for [`destroy_value_only`].
unsafe fn drop_value(node: Node) {
    // SAFETY: forwarded contract.
    unsafe { (node.vtable.drop_value)(node.header) }
}

/// Run `f(node)` inline if the stack has room, else queue it for the
/// outermost destruction on this thread.
///
/// A nested destruction that runs inline leaves nothing to undo: its call
/// is in tail position, so the compiler makes it a jump. That keeps a long
/// chain of nested destructions at the calls its values' own `Drop`s make,
/// as with `Arc`: every call level of a recursion deeper than the CPU's
/// return-address predictor (a few dozen entries) costs a mispredicted
/// return on the way back. A chain of 2000 cycle-capable nodes, each
/// dropping the last handle to the next, took 48–52 ns a node when each
/// level also returned through this function (depth counting and a guard
/// per level) and through `destroy_one`, and takes 30–33 ns now, against
/// 22–23 ns with `Arc` (2-core AMD EPYC guest; see the issue-9 note).
///
/// # Safety
/// `f(node)` may be called now or later on this thread (its contract).
unsafe fn nest(node: Node, f: unsafe fn(Node)) {
    let entered = DESTROYER.try_with(|d| {
        let base = d.base.get();
        if base == 0 {
            d.base.set(stack_address());
            return Some(true);
        }
        // Nested destructions started while a panic unwinds are queued:
        // the outermost runs them under `catch_unwind`, so a second
        // panicking destructor is reported instead of aborting the process
        // (where `Arc` would abort).
        if !room(base) || std::thread::panicking() {
            d.queued.borrow_mut().push((node, f));
            return None;
        }
        Some(false)
    });
    match entered {
        // Nested, with room: inline, in tail position.
        // SAFETY: forwarded contract.
        Ok(Some(false)) => unsafe { f(node) },
        // Deferred: the outermost destruction on this thread runs it.
        Ok(None) => {}
        Ok(Some(true)) => {
            // Runs the queue and leaves, on the normal path and while
            // unwinding.
            let _leave = Leave;
            // SAFETY: forwarded contract.
            unsafe { f(node) }
        }
        // SAFETY: forwarded contract.
        Err(_) => unsafe { f(node) },
    }
}

/// The outermost destruction's exit.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        // Leave even if the drain below resumes a queued destructor's
        // panic: a base left behind would make every later destruction on
        // this thread a nested one, measured from a frame long gone.
        struct Out;
        impl Drop for Out {
            fn drop(&mut self) {
                let _ = DESTROYER.try_with(|d| d.base.set(0));
            }
        }
        let _out = Out;
        drain();
    }
}

/// Run the queue to its end in the outermost destruction's frame (so
/// queued destructions nest inline again from here).
fn drain() {
    // Every queued destruction runs even if one panics (a panic must not
    // leave the queue stuck, or every later drop on this thread would be
    // queued forever). The first panic is resumed once the queue is empty.
    let mut panic = None;
    // `try_with`: the queue cannot be torn down while it is running (it is
    // only torn down on its own thread, after this returns), but a failure
    // must not become a panic inside a destructor.
    while let Ok(Some((n, f))) = DESTROYER.try_with(|d| d.queued.borrow_mut().pop()) {
        // SAFETY: queued by `nest`, whose contract it met.
        let run = catch_unwind(AssertUnwindSafe(|| unsafe { f(n) }));
        if let Err(p) = run {
            crate::collector::keep_panic(&mut panic, p);
        }
    }
    if let Some(p) = panic {
        if std::thread::panicking() {
            // Already unwinding from the outermost destructor: a second
            // panic would abort. Report it instead, as a destructor panic
            // during unwinding of a plain `Arc` drop cannot be.
            crate::report::report(
                crate::report::ReportKind::PanicDuringUnwind,
                "a destructor panicked while another destructor's panic was unwinding; \
                 the second panic is dropped",
            );
            crate::collector::drop_payload(p);
        } else {
            resume_unwind(p);
        }
    }
}

/// # Safety
/// As for [`destroy`].
pub(crate) unsafe fn destroy_one(node: Node) {
    // The value's drop and the release of the allocation (also if the
    // drop panics), in one call in tail position (see [`nest`]).
    // SAFETY: the caller owns the value.
    unsafe { (node.vtable.destroy)(node.header) }
}

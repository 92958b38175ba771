//! Destroying a value whose last handle is gone, without recursion.
//!
//! Dropping the head of a ten-million-node list would, done naively,
//! recurse ten million frames deep (each value's drop drops the next
//! handle, which destroys the next value...). Instead the first destruction
//! on a thread becomes a trampoline: destructions that start while it runs
//! are queued on a thread-local list and run by the outermost one, one
//! after another. The order differs from plain recursion only in that a
//! child is destroyed just after its parent's destructor returns rather
//! than inside it; every value is still destroyed before the outermost drop
//! returns, on the dropping thread.
//!
//! During thread-local teardown the list may be gone; then destruction
//! recurses, as `Arc`'s does.

use crate::trace::Node;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

struct Trampoline {
    running: Cell<bool>,
    queued: RefCell<Vec<Node>>,
}

crate::sync::cc_thread_local! {
    static TRAMPOLINE: Trampoline = Trampoline {
        running: Cell::new(false),
        queued: RefCell::new(Vec::new()),
    };
}

/// Destroy `node`'s value and give back the strong side's claim on the
/// allocation (freeing it if that was the last claim).
///
/// # Safety
/// The caller took the strong count to zero with no collector hold and the
/// object is not dead: it alone owns the value now.
pub(crate) unsafe fn destroy(node: Node) {
    let outermost = TRAMPOLINE.try_with(|t| {
        if t.running.get() {
            t.queued.borrow_mut().push(node);
            false
        } else {
            t.running.set(true);
            true
        }
    });
    match outermost {
        Ok(false) => {}
        Ok(true) => {
            // Runs the queue to its end, on the normal path and (if a
            // destructor panicked) while unwinding.
            let _drain = Drain;
            // SAFETY: forwarded contract.
            unsafe { destroy_one(node) }
        }
        // SAFETY: forwarded contract.
        Err(_) => unsafe { destroy_one(node) },
    }
}

struct Drain;

impl Drop for Drain {
    fn drop(&mut self) {
        // Every queued destruction runs even if one panics (a panic must not
        // leave the queue stuck with `running` set, or every later drop on
        // this thread would be queued forever). The first panic is resumed
        // once the queue is empty.
        let mut panic = None;
        // `try_with`: the list cannot be torn down while it is running (it
        // is only torn down on its own thread, after this returns), but a
        // failure must not become a panic inside a destructor.
        while let Ok(Some(n)) = TRAMPOLINE.try_with(|t| t.queued.borrow_mut().pop()) {
            // SAFETY: queued by `destroy`, whose contract it met.
            let run = catch_unwind(AssertUnwindSafe(|| unsafe { destroy_one(n) }));
            if let Err(p) = run {
                panic.get_or_insert(p);
            }
        }
        let _ = TRAMPOLINE.try_with(|t| t.running.set(false));
        if let Some(p) = panic {
            if std::thread::panicking() {
                // Already unwinding from the outermost destructor: a second
                // panic would abort. Report it instead, as a destructor
                // panic during unwinding of a plain `Arc` drop cannot be.
                eprintln!("arcycle: a destructor panicked while another destructor's panic was unwinding; the second panic is dropped");
            } else {
                resume_unwind(p);
            }
        }
    }
}

/// # Safety
/// As for [`destroy`].
pub(crate) unsafe fn destroy_one(node: Node) {
    // Give the allocation back even if the value's destructor panics.
    struct Release(Node);
    impl Drop for Release {
        fn drop(&mut self) {
            if self.0.header().release_strong_side() {
                // SAFETY: the weak word is zero: nothing refers to it.
                unsafe { (self.0.vtable.dealloc)(self.0.header) }
            }
        }
    }
    let release = Release(node);
    // SAFETY: the caller owns the value.
    unsafe { (node.vtable.drop_value)(node.header) };
    drop(release);
}

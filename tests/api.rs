//! The public API item by item, against `std::sync::Arc`'s semantics where
//! `Cc` mirrors it: constructors, counts, the trait forwardings, `Weak`,
//! `new_cyclic`, the uniqueness operations, `stats()` and the collector's
//! global settings.
//!
//! Every test holds `common::serial()`: the settings are process-wide (a
//! low threshold set by one test would make `Cc::new` in another collect),
//! and so is `stats()`.

mod common;

use arcycle::{collect, Cc, Trace, Tracer, Weak, DEFAULT_THRESHOLD};
use common::{get, serial, Node, Probe, Probed, Settings, Tally};
use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Borrow;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};

// ------------------------------------------------- allocation accounting

/// Counts, per thread, the allocations and frees of one watched size while
/// watching is switched on for that thread: enough to see whether a
/// particular `Cc` allocation was given back.
struct WatchingAllocator;

thread_local! {
    static WATCHED_SIZE: Cell<usize> = const { Cell::new(0) };
    static WATCHED_ALLOCS: Cell<isize> = const { Cell::new(0) };
    static WATCHED_FREES: Cell<isize> = const { Cell::new(0) };
}

fn note(size: usize, cell: &'static std::thread::LocalKey<Cell<isize>>) {
    // `try_with`: the allocator may run during thread-local teardown.
    let watched = WATCHED_SIZE.try_with(Cell::get).unwrap_or(0);
    if watched != 0 && watched == size {
        let _ = cell.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards every request to `System` unchanged; the bookkeeping
// only touches const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for WatchingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), &WATCHED_ALLOCS);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), &WATCHED_FREES);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: WatchingAllocator = WatchingAllocator;

/// A value with a distinctive allocation size.
#[derive(Trace)]
struct Big {
    probe: Probe,
    pad: [u64; 101],
    next: Mutex<Option<Cc<Big>>>,
}

/// `Cc<Big>`'s allocation: the 16-byte header, then the value.
const BIG_BOX: usize = 16 + size_of::<Big>();

/// Run `f` counting this thread's allocations and frees of `size` bytes;
/// `f` reads the running `(allocs, frees)` with `seen`, after any step.
fn watch_steps(size: usize, f: impl FnOnce(&dyn Fn() -> (isize, isize))) {
    WATCHED_ALLOCS.with(|c| c.set(0));
    WATCHED_FREES.with(|c| c.set(0));
    WATCHED_SIZE.with(|c| c.set(size));
    let seen = || {
        (
            WATCHED_ALLOCS.with(Cell::get),
            WATCHED_FREES.with(Cell::get),
        )
    };
    f(&seen);
    WATCHED_SIZE.with(|c| c.set(0));
}

/// Run `f` counting this thread's allocations and frees of `Cc<Big>`'s
/// size; returns `(allocs, frees)`.
fn watch_big_boxes(f: impl FnOnce()) -> (isize, isize) {
    let mut counts = (0, 0);
    watch_steps(BIG_BOX, |seen| {
        f();
        counts = seen();
    });
    counts
}

/// Stops the watch until it is dropped, for a closure that is about to
/// panic: the panic hook (printing a backtrace, say) may allocate blocks of
/// any size; unwinding then drops this first and the watch sees the frees.
struct PanicHookUnwatched;

impl PanicHookUnwatched {
    fn enter() -> PanicHookUnwatched {
        WATCHED_SIZE.with(|c| c.set(0));
        PanicHookUnwatched
    }
}

impl Drop for PanicHookUnwatched {
    fn drop(&mut self) {
        WATCHED_SIZE.with(|c| c.set(BIG_BOX));
    }
}

fn big(tally: &'static Tally) -> Big {
    Big {
        probe: Probe::new(tally),
        pad: [7; 101],
        next: Mutex::new(None),
    }
}

#[test]
fn allocation_watch_sees_cc_boxes() {
    static T: Tally = Tally::new();
    let _s = serial();
    let (a, f) = watch_big_boxes(|| drop(Cc::new(big(&T))));
    assert_eq!((a, f), (1, 1), "the watch must see exactly one Cc<Big> box");
    T.assert_clean();
}

/// A buffered object's root-buffer entry has no `ENTRY` unit of its own:
/// its claim on the allocation is `ACTIVE`, and whoever gives back the
/// strong side while `ACTIVE` stands turns that unit into the entry's
/// (`buffer`, invariant 1). On every path that ends such an object, the
/// allocation must outlive the entry (freed by the collection that takes
/// it, not before) and must then be freed, once.
#[test]
fn buffered_objects_allocation_outlives_its_entry_on_every_path() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _settings = Settings::manual_inline();

    // The last drop of a buffered object.
    watch_steps(BIG_BOX, |seen| {
        let b = Cc::new(big(&T));
        drop(b.clone()); // buffered: `ACTIVE`, an entry
        drop(b);
        assert_eq!(T.dropped(), 1, "the last drop destroys the value at once");
        assert_eq!(seen(), (1, 0), "the entry still refers to the allocation");
        collect();
        assert_eq!(
            seen(),
            (1, 1),
            "the collection that takes the entry frees it"
        );
    });

    // `into_inner` of a buffered object.
    watch_steps(BIG_BOX, |seen| {
        let b = Cc::new(big(&T));
        drop(b.clone());
        let v = Cc::into_inner(b).expect("the only handle");
        assert_eq!(seen(), (1, 0));
        drop(v);
        collect();
        assert_eq!(seen(), (1, 1));
    });

    // `get_mut` detaches the entry (which gets a unit of its own), a drop
    // buffers the object again (a second entry, standing for the new
    // `ACTIVE`), and the last drop hands the strong side to that one.
    watch_steps(BIG_BOX, |seen| {
        let mut b = Cc::new(big(&T));
        drop(b.clone());
        Cc::get_mut(&mut b).expect("unique").pad[0] = 1;
        drop(b.clone());
        assert_eq!(
            arcycle::stats().roots_buffered,
            2,
            "a detached entry and a new one"
        );
        drop(b);
        assert_eq!(seen(), (1, 0));
        collect();
        assert_eq!(seen(), (1, 1));
    });

    // A detached entry alone: the object is ended by its last drop with
    // no `ACTIVE`, and the detached entry's own unit keeps the allocation.
    watch_steps(BIG_BOX, |seen| {
        let mut b = Cc::new(big(&T));
        drop(b.clone());
        Cc::get_mut(&mut b).expect("unique");
        drop(b);
        assert_eq!(seen(), (1, 0));
        collect();
        assert_eq!(seen(), (1, 1));
    });
    T.assert_clean();
}

/// A self-loop whose `Trace` impl clones and drops a handle to itself:
/// while the collector holds it as a root (`ACTIVE` cleared), that drop
/// buffers it again, so it becomes garbage with `ACTIVE` set and an entry
/// waiting for the next collection.
struct Rebuffers {
    me: std::sync::OnceLock<Cc<Rebuffers>>,
    pad: [u64; 77],
}

// SAFETY: reports its one handle, every time.
unsafe impl Trace for Rebuffers {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if let Some(me) = self.me.get() {
            drop(me.clone());
            tracer.edge(me);
        }
    }
}

/// `Cc<Rebuffers>`'s allocation.
const REBUFFERS_BOX: usize = 16 + size_of::<Rebuffers>();

#[test]
fn garbage_buffered_during_its_collection_is_freed_by_the_next() {
    let _s = serial();
    let _settings = Settings::manual_inline();
    watch_steps(REBUFFERS_BOX, |seen| {
        let r = Cc::new(Rebuffers {
            me: std::sync::OnceLock::new(),
            pad: [3; 77],
        });
        assert_eq!(r.pad[76], 3);
        assert!(r.me.set(r.clone()).is_ok());
        drop(r);
        assert_eq!(collect(), 1, "the self-loop is garbage");
        // Its value is gone, but the entry its trace pushed still refers
        // to the allocation: the strong side's unit became that entry's.
        assert_eq!(seen(), (1, 0), "the new entry keeps the allocation");
        assert_eq!(arcycle::stats().roots_buffered, 1);
        assert_eq!(collect(), 0);
        assert_eq!(seen(), (1, 1), "taking the entry frees it");
    });
}

// ------------------------------------------------------------ layout, auto traits

#[test]
fn one_pointer_wide() {
    let _s = serial();
    assert_eq!(size_of::<Cc<u8>>(), size_of::<usize>());
    assert_eq!(size_of::<Cc<Node>>(), size_of::<usize>());
    assert_eq!(size_of::<Cc<[u64; 64]>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Cc<u8>>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Cc<Node>>>(), size_of::<usize>());
    assert_eq!(size_of::<Weak<Node>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Weak<Node>>>(), size_of::<usize>());
}

fn assert_send_sync<T: Send + Sync>() {}

/// Resolves only when `T` is *not* `Send` (for a `Send` type both impls
/// apply and the `_` is ambiguous): a compile-time negative assertion.
trait AmbiguousIfSend<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

/// As [`AmbiguousIfSend`], for `Sync`.
trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

struct NotSync(#[allow(dead_code)] Cell<u8>);
arcycle::leaf!(NotSync);
struct NotSend(#[allow(dead_code)] std::rc::Rc<u8>);
arcycle::leaf!(NotSend);

#[test]
fn send_and_sync_exactly_when_t_is() {
    let _s = serial();
    assert_send_sync::<Cc<u32>>();
    assert_send_sync::<Cc<String>>();
    assert_send_sync::<Cc<Node>>();
    assert_send_sync::<Weak<u32>>();
    assert_send_sync::<Weak<Node>>();
    assert_send_sync::<Option<Cc<Node>>>();
    // Like `Arc`: a `Cc<T>` is neither `Send` nor `Sync` unless `T` is both.
    <Cc<NotSync> as AmbiguousIfSend<_>>::some_item();
    <Cc<NotSync> as AmbiguousIfSync<_>>::some_item();
    <Cc<NotSend> as AmbiguousIfSend<_>>::some_item();
    <Cc<NotSend> as AmbiguousIfSync<_>>::some_item();
    <Weak<NotSync> as AmbiguousIfSend<_>>::some_item();
    <Weak<NotSend> as AmbiguousIfSync<_>>::some_item();

    // And a handle really crosses threads.
    let c = Cc::new(String::from("moved"));
    let back = std::thread::spawn(move || {
        assert_eq!(*c, "moved");
        c
    })
    .join()
    .unwrap();
    assert_eq!(Cc::strong_count(&back), 1);
}

// ------------------------------------------------------------ Cc basics

#[test]
fn new_deref_clone_counts() {
    static T: Tally = Tally::new();
    let _s = serial();
    let a = Node::new(&T);
    assert_eq!(Cc::strong_count(&a), 1);
    assert_eq!(Cc::weak_count(&a), 0);
    let b = a.clone();
    assert_eq!(Cc::strong_count(&a), 2);
    assert!(Cc::ptr_eq(&a, &b));
    let w1 = Cc::downgrade(&a);
    let w2 = w1.clone();
    assert_eq!(Cc::weak_count(&a), 2);
    assert_eq!(w1.weak_count(), 2);
    assert_eq!(w1.strong_count(), 2);
    drop(b);
    assert_eq!(Cc::strong_count(&a), 1);
    drop(w2);
    assert_eq!(Cc::weak_count(&a), 1);
    assert!(Cc::ptr_eq(&w1.upgrade().unwrap(), &a));
    let other = Node::new(&T);
    assert!(!Cc::ptr_eq(&a, &other));
    drop((a, other));
    T.assert_clean();
    assert!(w1.upgrade().is_none());
}

#[test]
fn as_ptr_points_at_the_value() {
    let _s = serial();
    let a = Cc::new(41u64);
    let p = Cc::as_ptr(&a);
    assert!(std::ptr::eq(p, &*a));
    // SAFETY: `a` keeps the value alive.
    assert_eq!(unsafe { *p }, 41);
    let b = a.clone();
    assert_eq!(Cc::as_ptr(&b), p);
    assert_ne!(Cc::as_ptr(&Cc::new(41u64)), p);
}

#[test]
fn try_deref_and_is_dead_on_live_values() {
    static T: Tally = Tally::new();
    let _s = serial();
    let a = Node::new(&T);
    assert!(!Cc::is_dead(&a));
    assert!(std::ptr::eq(Cc::try_deref(&a).unwrap(), &*a));
    let leaf = Cc::new(5u8);
    assert!(!Cc::is_dead(&leaf));
    assert_eq!(Cc::try_deref(&leaf), Some(&5));
    drop(a);
    T.assert_clean();
}

// ------------------------------------------------------------ trait forwarding

/// Hash with fixed keys, so two calls agree.
fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(v)
}

#[test]
fn debug_display_pointer_forward() {
    let _s = serial();
    let v = Cc::new(vec![1u8, 2, 3]);
    assert_eq!(format!("{v:?}"), "[1, 2, 3]");
    assert_eq!(format!("{v:#?}"), format!("{:#?}", vec![1u8, 2, 3]));
    let s = Cc::new(String::from("hi"));
    assert_eq!(format!("{s}"), "hi");
    assert_eq!(format!("{s:>5}|{s:<4}|"), "   hi|hi  |");
    assert_eq!(format!("{s:?}"), "\"hi\"");
    let f = Cc::new(1.5f64);
    assert_eq!(format!("{f:.3}"), "1.500");
    assert_eq!(format!("{s:p}"), format!("{:p}", Cc::as_ptr(&s)));
    assert_eq!(format!("{s:p}"), format!("{:p}", &*s as *const String));
    assert_eq!(format!("{:p}", s.clone()), format!("{s:p}"));
}

#[test]
fn comparisons_forward_to_the_value() {
    let _s = serial();
    fn eq<T: Eq>(a: &T, b: &T) -> bool {
        a == b
    }
    let a = Cc::new(3i32);
    let b = Cc::new(3i32);
    let c = Cc::new(4i32);
    assert!(a == b, "equality is by value, not by pointer");
    assert!(eq(&a, &b));
    assert!(a != c);
    assert!(a < c && c > b && a <= b && a >= b);
    assert_eq!(a.partial_cmp(&c), Some(Ordering::Less));
    assert_eq!(c.cmp(&a), Ordering::Greater);
    assert_eq!(a.cmp(&b), Ordering::Equal);
    let nan = Cc::new(f64::NAN);
    assert_eq!(nan.partial_cmp(&Cc::new(1.0)), None);
    assert!(nan != nan.clone(), "PartialEq forwards NaN != NaN");
    let mut v: Vec<Cc<i32>> = [5, 1, 4, 2, 3].into_iter().map(Cc::new).collect();
    v.sort();
    assert_eq!(v.iter().map(|c| **c).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(*v.iter().max().unwrap().clone(), 5);
}

#[test]
fn hash_and_borrow_agree_with_the_value() {
    let _s = serial();
    let s = Cc::new(String::from("key"));
    assert_eq!(hash_of(&s), hash_of(&String::from("key")));
    assert_eq!(hash_of(&Cc::new(5u32)), hash_of(&5u32));
    let mut set: HashSet<Cc<String>> = HashSet::new();
    set.insert(s.clone());
    set.insert(Cc::new(String::from("key"))); // equal by value: not added
    assert_eq!(set.len(), 1);
    // Borrow<String>: look up by the plain value.
    assert!(set.contains(&String::from("key")));
    assert!(!set.contains(&String::from("other")));
    let mut map: HashMap<Cc<u32>, &str> = HashMap::new();
    map.insert(Cc::new(7), "seven");
    assert_eq!(map.get(&7), Some(&"seven"));
    let b: &String = Borrow::borrow(&s);
    assert!(std::ptr::eq(b, &*s));
}

#[test]
fn default_from_asref() {
    let _s = serial();
    #[derive(Trace, Default, Debug, PartialEq)]
    struct D {
        n: u32,
        items: Vec<Cc<u8>>,
    }
    let d: Cc<D> = Cc::default();
    assert_eq!(*d, D::default());
    assert_eq!(*Cc::<u64>::default(), 0);
    assert_eq!(*Cc::<String>::default(), "");
    let f = Cc::from(9u16);
    assert_eq!(*f, 9);
    let g: Cc<String> = String::from("into").into();
    assert_eq!(*g, "into");
    fn len<S: AsRef<String>>(s: S) -> usize {
        s.as_ref().len()
    }
    assert_eq!(len(g.clone()), 4);
    assert!(std::ptr::eq(AsRef::<String>::as_ref(&g), &*g));
}

// ------------------------------------------------------------ Weak

#[test]
fn weak_new_default_debug() {
    let _s = serial();
    let w: Weak<Node> = Weak::new();
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    assert_eq!(w.weak_count(), 0);
    let d: Weak<Node> = Weak::default();
    assert!(d.upgrade().is_none());
    assert!(w.ptr_eq(&d), "two empty Weaks are equal");
    let c = w.clone();
    assert!(c.ptr_eq(&w));
    assert_eq!(format!("{w:?}"), "(Weak)");
    // Usable for types that are not `Trace` at all, and in a const.
    const EMPTY: Weak<std::cell::RefCell<u8>> = Weak::new();
    assert_eq!(EMPTY.strong_count(), 0);
    let live = Cc::new(1u8);
    let lw = Cc::downgrade(&live);
    assert!(!lw.ptr_eq(&Weak::new()));
    assert_eq!(format!("{lw:?}"), "(Weak)");
}

#[test]
fn weak_counts_and_upgrade_follow_arc() {
    static T: Tally = Tally::new();
    let _s = serial();
    let a = Node::new(&T);
    let w = Cc::downgrade(&a);
    assert_eq!((w.strong_count(), w.weak_count()), (1, 1));
    let a2 = w.upgrade().unwrap();
    assert_eq!(w.strong_count(), 2);
    let w2 = Cc::downgrade(&a2);
    assert!(w.ptr_eq(&w2));
    assert!(!w.ptr_eq(&Cc::downgrade(&Node::new(&T))));
    assert_eq!(w.weak_count(), 2);
    drop((a, a2));
    // Like `std::sync::Weak`: both counts read 0 once no strong handle is
    // left, and upgrading fails.
    assert_eq!(w.strong_count(), 0);
    assert_eq!(w.weak_count(), 0);
    assert!(w.upgrade().is_none());
    assert!(w.ptr_eq(&w2));
    T.assert_clean();
}

// ------------------------------------------------------------ new_cyclic

#[test]
fn new_cyclic_sees_itself() {
    static T: Tally = Tally::new();
    let _s = serial();
    #[derive(Trace)]
    struct Me {
        probe: Probe,
        me: Weak<Me>,
    }
    let saw_none = AtomicBool::new(false);
    let me = Cc::new_cyclic(|w| {
        // Not built yet: no strong handle can exist.
        saw_none.store(w.upgrade().is_none() && w.strong_count() == 0, SeqCst);
        Me {
            probe: Probe::new(&T),
            me: w.clone(),
        }
    });
    assert!(saw_none.load(SeqCst));
    assert!(Cc::ptr_eq(&me.me.upgrade().unwrap(), &me));
    assert_eq!(Cc::strong_count(&me), 1);
    assert_eq!(Cc::weak_count(&me), 1);
    let w = me.me.clone();
    drop(me);
    T.assert_clean();
    assert!(w.upgrade().is_none());
}

#[test]
fn new_cyclic_panicking_closure_leaks_nothing() {
    static T: Tally = Tally::new();
    let _s = serial();
    let (allocs, frees) = watch_big_boxes(|| {
        let r = catch_unwind(|| {
            Cc::new_cyclic(|_w: &Weak<Big>| -> Big {
                let _rewatch = PanicHookUnwatched::enter();
                let _half_built = big(&T);
                panic!("closure fails");
            })
        });
        assert_eq!(common::panic_text(&*r.err().unwrap()), "closure fails");
    });
    assert_eq!(allocs, 1, "new_cyclic allocates its box up front");
    assert_eq!(frees, 1, "the box must be freed when the closure panics");
    T.assert_clean();

    // A `Weak` cloned out of the panicking closure keeps only the
    // allocation: it never upgrades, and dropping it frees the box.
    let stolen: Mutex<Option<Weak<Big>>> = Mutex::new(None);
    let (allocs, frees) = watch_big_boxes(|| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            Cc::new_cyclic(|w: &Weak<Big>| -> Big {
                let _rewatch = PanicHookUnwatched::enter();
                *stolen.lock().unwrap() = Some(w.clone());
                panic!("closure fails again");
            })
        }));
        assert!(r.is_err());
        let w = stolen.lock().unwrap().take().unwrap();
        assert!(w.upgrade().is_none());
        assert_eq!(w.strong_count(), 0);
        assert_eq!(w.weak_count(), 0);
        drop(w);
    });
    assert_eq!((allocs, frees), (1, 1));
    T.assert_clean();
}

// ------------------------------------------------------------ uniqueness

/// A cycle-capable value that counts its clones.
#[derive(Trace)]
struct Counted {
    probe: Probe,
    value: u32,
    next: Mutex<Option<Cc<Counted>>>,
}

static CLONES: AtomicUsize = AtomicUsize::new(0);
static COUNTED: Tally = Tally::new();

impl Clone for Counted {
    fn clone(&self) -> Counted {
        CLONES.fetch_add(1, SeqCst);
        Counted {
            probe: Probe::new(&COUNTED),
            value: self.value,
            next: Mutex::new(self.next.lock().unwrap().clone()),
        }
    }
}

impl Probed for Counted {
    fn probe(&self) -> &Probe {
        &self.probe
    }
}

fn counted(value: u32) -> Cc<Counted> {
    Cc::new(Counted {
        probe: Probe::new(&COUNTED),
        value,
        next: Mutex::new(None),
    })
}

#[test]
fn get_mut_only_when_unique() {
    let _s = serial();
    let mut a = counted(1);
    Cc::get_mut(&mut a).unwrap().value = 2;
    assert_eq!(a.value, 2);
    let b = a.clone();
    assert!(Cc::get_mut(&mut a).is_none(), "another Cc exists");
    // Dropping `b` buffers `a` as a possible root (it is cycle-capable);
    // that pending entry must not make get_mut refuse.
    drop(b);
    assert!(arcycle::stats().roots_buffered >= 1);
    Cc::get_mut(&mut a).unwrap().value = 3;
    let w = Cc::downgrade(&a);
    assert!(Cc::get_mut(&mut a).is_none(), "a Weak exists (as for Arc)");
    drop(w);
    Cc::get_mut(&mut a).unwrap().value = 4;
    // The detached entry is harmless to the next collection.
    collect();
    assert_eq!(get(&a).value, 4);
    assert_eq!(Cc::strong_count(&a), 1);
    let mut leaf = Cc::new(5u8);
    *Cc::get_mut(&mut leaf).unwrap() += 1;
    assert_eq!(*leaf, 6);
    drop(a);
    COUNTED.assert_sound();
}

#[test]
fn make_mut_clones_only_when_shared() {
    let _s = serial();
    let mut a = counted(1);
    let p = Cc::as_ptr(&a);
    let clones = CLONES.load(SeqCst);
    Cc::make_mut(&mut a).value = 2;
    assert_eq!(CLONES.load(SeqCst), clones, "unique: no clone");
    assert_eq!(Cc::as_ptr(&a), p);
    let b = a.clone();
    Cc::make_mut(&mut a).value = 3;
    assert_eq!(CLONES.load(SeqCst), clones + 1, "shared: cloned once");
    assert!(!Cc::ptr_eq(&a, &b));
    assert_eq!((a.value, b.value), (3, 2));
    assert_eq!(Cc::strong_count(&b), 1);
    // Only a Weak shares it: the Weak is disassociated.
    let w = Cc::downgrade(&a);
    Cc::make_mut(&mut a).value = 4;
    assert!(w.upgrade().is_none(), "make_mut disassociates Weaks");
    assert_eq!(a.value, 4);
    assert_eq!(Cc::weak_count(&a), 0);
    drop((a, b));
    COUNTED.assert_sound();
}

#[test]
fn make_mut_with_only_weaks_moves_without_cloning() {
    let _s = serial();
    let mut a = counted(1);
    let w = Cc::downgrade(&a);
    let clones = CLONES.load(SeqCst);
    let drops = COUNTED.dropped();
    Cc::make_mut(&mut a).value = 2;
    assert!(w.upgrade().is_none());
    assert_eq!(
        CLONES.load(SeqCst),
        clones,
        "Arc::make_mut: 'if there are no other Arc pointers to this allocation, but some \
         Weak pointers, then the Weak pointers will be disassociated and the inner value \
         will not be cloned'"
    );
    assert_eq!(
        COUNTED.dropped(),
        drops,
        "the value must be moved, not dropped"
    );
}

#[test]
fn try_unwrap_like_arc() {
    let _s = serial();
    let drops = COUNTED.dropped();
    let a = counted(1);
    let b = a.clone();
    let a = Cc::try_unwrap(a).err().unwrap();
    assert!(Cc::ptr_eq(&a, &b), "Err gives the same handle back");
    drop(b);
    // Now unique (and buffered as a possible root): unwrapping succeeds,
    // and a Weak does not prevent it.
    let w = Cc::downgrade(&a);
    let v = Cc::try_unwrap(a).ok().unwrap();
    assert_eq!(v.value, 1);
    assert_eq!(COUNTED.dropped(), drops, "moved out, not dropped");
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    drop(v);
    assert_eq!(COUNTED.dropped(), drops + 1);
    // The stale root entry is skipped by the next collection.
    collect();
    assert_eq!(COUNTED.dropped(), drops + 1);
    drop(w);
    COUNTED.assert_sound();

    // The allocation is given back when the value is moved out.
    static T: Tally = Tally::new();
    let (allocs, frees) = watch_big_boxes(|| {
        let b = Cc::new(big(&T));
        let v = Cc::try_unwrap(b).ok().expect("unique");
        assert_eq!(v.pad[100], 7);
    });
    assert_eq!((allocs, frees), (1, 1));
    T.assert_clean();
}

#[test]
fn into_inner_like_arc() {
    let _s = serial();
    let a = Cc::new(String::from("x"));
    let b = a.clone();
    assert_eq!(Cc::into_inner(a), None);
    assert_eq!(Cc::into_inner(b).as_deref(), Some("x"));

    let drops = COUNTED.dropped();
    let c = counted(5);
    let d = c.clone();
    let w = Cc::downgrade(&c);
    assert!(Cc::into_inner(c).is_none());
    assert_eq!(w.strong_count(), 1);
    let v = Cc::into_inner(d).unwrap();
    assert_eq!(v.value, 5);
    assert!(w.upgrade().is_none());
    assert_eq!(COUNTED.dropped(), drops);
    drop(v);
    collect();
    assert_eq!(COUNTED.dropped(), drops + 1);
    COUNTED.assert_sound();
}

/// Every handle passed to `into_inner` on its own thread at once: exactly
/// one call gets the value. Races the collector too (it may be holding the
/// object while the last two handles go).
#[test]
fn into_inner_from_many_threads_exactly_one_wins() {
    let _s = serial();
    const THREADS: usize = 8;
    let rounds = common::scaled(150, 5);
    let stop = AtomicBool::new(false);
    let drops = COUNTED.dropped();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(SeqCst) {
                collect();
            }
        });
        for round in 0..rounds {
            let c = counted(round as u32);
            let leaf = Cc::new(round as u64);
            let barrier = Barrier::new(THREADS);
            let handles: Vec<_> = (0..THREADS).map(|_| (c.clone(), leaf.clone())).collect();
            drop((c, leaf));
            let results: Vec<_> = std::thread::scope(|s| {
                let joins: Vec<_> = handles
                    .into_iter()
                    .map(|(c, l)| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            (Cc::into_inner(c), Cc::into_inner(l))
                        })
                    })
                    .collect();
                joins.into_iter().map(|j| j.join().unwrap()).collect()
            });
            let winners: Vec<_> = results.iter().filter_map(|r| r.0.as_ref()).collect();
            assert_eq!(winners.len(), 1, "round {round}: cycle-capable value");
            assert_eq!(winners[0].value, round as u32);
            let leaf_winners: Vec<_> = results.iter().filter_map(|r| r.1).collect();
            assert_eq!(leaf_winners, [round as u64], "round {round}: leaf value");
        }
        stop.store(true, SeqCst);
    });
    collect();
    assert_eq!(COUNTED.dropped(), drops + rounds);
    COUNTED.assert_sound();
}

// ------------------------------------------------------------ stats

/// A self-loop whose `Trace` impl, from its second call on (the
/// collector's verification pass), upgrades its own `Weak` once and stashes
/// the strong handle: the count it is verified against changes under the
/// collector, which must abort that attempt.
struct Sneaky {
    _probe: Probe,
    me: Weak<Sneaky>,
    next: Mutex<Option<Cc<Sneaky>>>,
    traces: AtomicUsize,
}

static SNEAKY_STASH: Mutex<Vec<Cc<Sneaky>>> = Mutex::new(Vec::new());

// SAFETY: reports exactly the handles in `next`, through `Mutex`'s impl.
// Creating an outside handle (the upgrade) only raises the count: safe.
unsafe impl Trace for Sneaky {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if self.traces.fetch_add(1, SeqCst) == 1 {
            if let Some(strong) = self.me.upgrade() {
                SNEAKY_STASH.lock().unwrap().push(strong);
            }
        }
        self.next.trace(tracer);
    }
}

#[test]
fn stats_fields_move() {
    static T: Tally = Tally::new();
    let _s = serial();
    let s0 = arcycle::stats();

    // roots_buffered: dropping one of two handles to a cycle-capable value.
    let a = Node::new(&T);
    let b = Node::new(&T);
    Node::link(&a, &b);
    Node::link(&b, &a);
    drop(b);
    assert!(arcycle::stats().roots_buffered >= 1);
    drop(a);

    // collections, freed, last_pause, longest_pause.
    assert!(collect() >= 2);
    let s1 = arcycle::stats();
    assert!(s1.collections > s0.collections);
    assert!(s1.freed >= s0.freed + 2);
    assert!(s1.last_pause > std::time::Duration::ZERO);
    assert!(s1.longest_pause >= s1.last_pause);
    assert!(s1.longest_pause >= s0.longest_pause);
    assert_eq!(s1.roots_buffered, 0, "the collection drained the buffer");
    T.assert_clean();

    // aborted: a verification that sees the count change gives up. A
    // 2-cycle of which only `x` was ever buffered (`y` was moved into
    // `x`'s field): pass 1 cannot decide it within one batch
    // (`collector::early`), so validation traces both members again, and
    // each one's second trace makes a handle to itself.
    let sneaky = || {
        Cc::new_cyclic(|w| Sneaky {
            _probe: Probe::new(&T),
            me: w.clone(),
            next: Mutex::new(None),
            traces: AtomicUsize::new(0),
        })
    };
    let (x, y) = (sneaky(), sneaky());
    *y.next.lock().unwrap() = Some(x.clone());
    *x.next.lock().unwrap() = Some(y);
    drop(x);
    collect();
    let s2 = arcycle::stats();
    assert!(s2.aborted > s1.aborted, "the attempt must have aborted");
    assert_eq!(T.dropped(), 2, "an aborted attempt frees nothing");
    let stashed = std::mem::take(&mut *SNEAKY_STASH.lock().unwrap());
    assert_eq!(stashed.len(), 2);
    // The stash holds the only outside handles; once they go, the cycle
    // is garbage and the next collection frees it.
    drop(stashed);
    assert!(collect() >= 2);
    T.assert_clean();
    assert!(arcycle::stats().collections > s2.collections);
}

// ------------------------------------------------------------ settings

#[test]
fn threshold_enable_disable() {
    static T: Tally = Tally::new();
    let _s = serial();
    let _restore = Settings::save();
    // Inline mode: this test checks where and when automatic collections
    // run (background mode is `tests/gc_module.rs`'s).
    arcycle::set_background(false);
    assert_eq!(arcycle::threshold(), DEFAULT_THRESHOLD);
    assert!(arcycle::is_enabled());

    arcycle::set_threshold(5);
    assert_eq!(arcycle::threshold(), 5);
    let zero = catch_unwind(|| arcycle::set_threshold(0));
    assert!(zero.is_err(), "a zero threshold is refused");
    assert_eq!(arcycle::threshold(), 5);

    // Disabled: buffered roots pile up past the threshold, no automatic
    // collection runs, acyclic garbage is still freed at once.
    arcycle::disable();
    assert!(!arcycle::is_enabled());
    collect(); // start from an empty buffer
    let before = arcycle::stats().collections;
    let self_loop = || {
        let a = Node::new(&T);
        Node::link(&a, &a);
        drop(a); // buffered
    };
    for _ in 0..20 {
        self_loop();
    }
    drop(Node::new(&T));
    assert_eq!(arcycle::stats().collections, before);
    assert!(arcycle::stats().roots_buffered >= 20);
    assert_eq!(T.dropped(), 1, "acyclic garbage is freed at once");

    // Enabled again: the roots buffered meanwhile are already past the
    // threshold, so `enable()` arms the trigger and the next allocation runs
    // an automatic collection on this very thread.
    arcycle::enable();
    assert!(arcycle::is_enabled());
    let _x = Cc::new(0u8);
    assert!(arcycle::stats().collections > before);
    T.assert_clean();

    // Explicit collection works while disabled.
    arcycle::disable();
    self_loop();
    assert!(collect() >= 1);
    T.assert_clean();
}

#[test]
fn settings_restored_by_other_tests() {
    // Runs in any order with `threshold_enable_disable`: whichever ran
    // first must have put the defaults back.
    let _s = serial();
    assert_eq!(arcycle::threshold(), DEFAULT_THRESHOLD);
    assert!(arcycle::is_enabled());
}

// ------------------------------------------------------------ Trace, Tracer, leaves

#[test]
fn may_have_edges_of_std_types() {
    let _s = serial();
    fn edges<T: Trace>() -> bool {
        T::may_have_edges()
    }
    {
        assert!(!edges::<u64>());
        assert!(!edges::<String>());
        assert!(!edges::<Box<str>>());
        assert!(!edges::<Vec<u8>>());
        assert!(!edges::<Mutex<Vec<String>>>());
        assert!(!edges::<Option<Box<[u32; 4]>>>());
        assert!(!edges::<Weak<Node>>());
        assert!(!edges::<std::sync::Arc<Mutex<Cc<Node>>>>());
        assert!(!edges::<Probe>());
        assert!(edges::<Cc<u8>>(), "a Cc is an edge even to a leaf");
        assert!(edges::<Cc<Node>>());
        assert!(edges::<Mutex<Vec<Cc<Node>>>>());
        assert!(edges::<HashMap<u8, Option<Cc<Node>>>>());
        assert!(edges::<(u8, String, Cc<Node>)>());
        assert!(edges::<Node>());
    }
}

#[test]
fn leaf_handles_are_never_buffered() {
    static T: Tally = Tally::new();
    let _s = serial();
    collect();
    let s = Cc::new(String::from("leaf"));
    for _ in 0..100 {
        drop(s.clone());
    }
    assert_eq!(
        arcycle::stats().roots_buffered,
        0,
        "a leaf is never a possible root"
    );
    // A cycle-capable value is buffered by the same pattern.
    let n = Node::new(&T);
    drop(n.clone());
    assert!(arcycle::stats().roots_buffered >= 1);
    drop(n);
    collect();
    T.assert_clean();
}

/// A hand-written `Trace` that uses the whole `Tracer` API: `edge` for
/// each handle, `hold` for the guard it read them under, `busy` when it
/// cannot read them.
struct Manual {
    probe: Probe,
    out: Mutex<Vec<Cc<Manual>>>,
    report_busy: AtomicBool,
}

// SAFETY: reports each handle in `out` once, read under a guard taken
// without blocking and handed to the tracer; reports nothing (busy) when
// asked to or when the lock is taken.
unsafe impl Trace for Manual {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if self.report_busy.load(SeqCst) {
            return tracer.busy();
        }
        match self.out.try_lock() {
            Ok(guard) => {
                for cc in guard.iter() {
                    tracer.edge(cc);
                }
                tracer.hold(guard);
            }
            Err(_) => tracer.busy(),
        }
    }
}

#[test]
fn hand_written_trace_with_edge_hold_and_busy() {
    static T: Tally = Tally::new();
    let _s = serial();
    let make = || {
        Cc::new(Manual {
            probe: Probe::new(&T),
            out: Mutex::new(Vec::new()),
            report_busy: AtomicBool::new(false),
        })
    };
    let a = make();
    let b = make();
    a.out.lock().unwrap().push(b.clone());
    b.out.lock().unwrap().push(a.clone());
    assert_eq!(a.probe.id() + 1, b.probe.id());
    drop(b);
    drop(a);
    assert!(collect() >= 2);
    T.assert_clean();

    // A busy root is treated as in use, and tried again later.
    let c = make();
    c.out.lock().unwrap().push(c.clone());
    c.report_busy.store(true, SeqCst);
    let c_weak = Cc::downgrade(&c);
    drop(c);
    collect();
    assert_eq!(T.live(), 1, "a busy object is live for this collection");
    c_weak.upgrade().unwrap().report_busy.store(false, SeqCst);
    assert!(collect() >= 1, "re-buffered and freed once no longer busy");
    T.assert_clean();

    // A lock held by someone else makes it busy too.
    let d = make();
    d.out.lock().unwrap().push(d.clone());
    let d2 = d.clone();
    let guard = d2.out.lock().unwrap();
    drop(d);
    collect();
    assert_eq!(T.live(), 1, "locked by us: in use");
    drop(guard);
    drop(d2);
    assert!(collect() >= 1);
    T.assert_clean();
}

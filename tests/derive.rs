//! Tests for `#[derive(Trace)]`: the generated `may_have_edges()` constant for
//! every shape of type, and that derived `trace` lets `collect` free cycles.

// Many types here exist only for their `may_have_edges()` constant.
#![allow(dead_code)]

// `#[trace(crate = ...)]`: arcycle under another name.
extern crate arcycle as my_arcycle;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use arcycle::{Cc, Trace, Tracer};

/// `collect()` is global (and `Cc::new` may collect too) while tests run in
/// parallel threads: every test that creates a `Cc` or collects holds this
/// lock, so no other test's collection can run between its steps.
static COLLECT_LOCK: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    COLLECT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `may_have_edges()` constant of `T`, as a function for terse asserts.
fn edges<T: Trace>() -> bool {
    T::may_have_edges()
}

// ---------------------------------------------------------------- structs

static NODE_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Named struct that refers to itself through a `Cc`.
#[derive(Trace)]
struct Node {
    name: String,
    next: Mutex<Option<Cc<Node>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        NODE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

impl Node {
    fn new(name: &str) -> Cc<Self> {
        Cc::new(Node {
            name: name.to_owned(),
            next: Mutex::new(None),
        })
    }
}

#[derive(Trace)]
struct Tuple(u32, Cc<u8>);

#[derive(Trace)]
struct TupleLeaf(u32, String);

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct Pair<A, B> {
    a: A,
    b: B,
}

#[derive(Trace)]
struct Bounded<T>
where
    T: Clone + Send,
{
    items: Vec<T>,
}

/// Lifetimes and const generics pass through unchanged.
#[derive(Trace)]
struct Generics<'x, T, const N: usize> {
    items: [T; N],
    marker: PhantomData<&'x str>,
}

/// Generic and self-referential at once.
#[derive(Trace)]
struct GenNode<T: Trace> {
    value: T,
    next: Mutex<Option<Cc<GenNode<T>>>>,
}

/// A hand-written impl that keeps the default `may_have_edges() == true`.
struct Manual(Cc<u8>);

unsafe impl Trace for Manual {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self.0.trace(tracer);
    }
}

#[derive(Trace)]
struct HoldsManual {
    id: u32,
    manual: Manual,
}

#[test]
fn struct_constants() {
    assert!(edges::<Node>());
    assert!(edges::<Tuple>());
    assert!(!edges::<TupleLeaf>());
    assert!(!edges::<Unit>());
    assert!(edges::<HoldsManual>());
    assert!(edges::<GenNode<u32>>());
}

#[test]
fn generic_constants_or_over_parameters() {
    assert!(!edges::<Pair<u32, String>>());
    assert!(edges::<Pair<u32, Cc<u8>>>());
    assert!(edges::<Pair<Cc<u8>, u32>>());
    assert!(edges::<Pair<Option<Cc<u8>>, Vec<Cc<u8>>>>());
    assert!(!edges::<Pair<Unit, Pair<u8, bool>>>());
    assert!(edges::<Pair<Unit, Pair<u8, Cc<u8>>>>());

    assert!(!edges::<Bounded<u32>>());
    assert!(edges::<Bounded<Cc<u8>>>());

    assert!(!edges::<Generics<'static, u8, 4>>());
    assert!(edges::<Generics<'static, Cc<u8>, 0>>());
}

#[test]
fn struct_cycle_is_collected() {
    let _guard = serialize();
    let a = Node::new("a");
    let b = Node::new("b");
    *a.next.lock().unwrap() = Some(b.clone());
    *b.next.lock().unwrap() = Some(a.clone());
    assert_eq!(Cc::strong_count(&a), 2);
    assert_eq!(Cc::strong_count(&b), 2);
    assert_eq!(a.name, "a");

    let before = NODE_DROPS.load(Ordering::SeqCst);
    drop((a, b));
    assert_eq!(
        NODE_DROPS.load(Ordering::SeqCst),
        before,
        "cycle freed early"
    );
    assert!(arcycle::collect() >= 2);
    assert_eq!(NODE_DROPS.load(Ordering::SeqCst), before + 2);
}

#[test]
fn reachable_cycle_is_kept() {
    let _guard = serialize();
    let a = Node::new("a");
    let b = Node::new("b");
    *a.next.lock().unwrap() = Some(b.clone());
    *b.next.lock().unwrap() = Some(a.clone());

    let before = NODE_DROPS.load(Ordering::SeqCst);
    drop(b);
    let _ = arcycle::collect();
    assert_eq!(
        NODE_DROPS.load(Ordering::SeqCst),
        before,
        "live cycle freed"
    );
    let b = a.next.lock().unwrap().clone().unwrap();
    assert_eq!(b.name, "b");

    drop((a, b));
    assert!(arcycle::collect() >= 2);
    assert_eq!(NODE_DROPS.load(Ordering::SeqCst), before + 2);
}

// ------------------------------------------------------------------ enums

static LINK_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Unit, tuple and struct variants; skipped fields before traced ones.
#[derive(Trace)]
enum Link {
    End,
    Next(#[trace(skip)] u32, Mutex<Option<Cc<Link>>>),
    Named {
        #[trace(skip)]
        label: Cc<u8>,
        next: Mutex<Option<Cc<Link>>>,
        id: u32,
    },
}

impl Drop for Link {
    fn drop(&mut self) {
        LINK_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

impl Link {
    fn next(&self) -> &Mutex<Option<Cc<Link>>> {
        match self {
            Link::End => panic!("no next"),
            Link::Next(_, next) | Link::Named { next, .. } => next,
        }
    }
}

#[derive(Trace)]
enum Color {
    Red,
    Green,
}

#[derive(Trace)]
enum Never {}

#[derive(Trace)]
enum Either<L, R> {
    Left(L),
    Right { value: R },
}

#[test]
fn enum_constants() {
    assert!(edges::<Link>());
    assert!(!edges::<Color>());
    assert!(!edges::<Never>());
    assert!(!edges::<Either<u8, String>>());
    assert!(edges::<Either<u8, Cc<u8>>>());
    assert!(edges::<Either<Cc<u8>, u8>>());
}

#[test]
fn enum_cycle_is_collected() {
    let _guard = serialize();
    let a = Cc::new(Link::Next(7, Mutex::new(None)));
    let b = Cc::new(Link::Named {
        label: Cc::new(1),
        next: Mutex::new(None),
        id: 2,
    });
    let end = Cc::new(Link::End);
    *a.next().lock().unwrap() = Some(b.clone());
    *b.next().lock().unwrap() = Some(a.clone());
    assert!(matches!(*b, Link::Named { id: 2, .. }));

    let before = LINK_DROPS.load(Ordering::SeqCst);
    drop((a, b));
    assert!(arcycle::collect() >= 2);
    assert_eq!(LINK_DROPS.load(Ordering::SeqCst), before + 2);

    drop(end);
    assert_eq!(LINK_DROPS.load(Ordering::SeqCst), before + 3);
}

// ------------------------------------------------------------- attributes

static SKIPPED_DROPS: AtomicUsize = AtomicUsize::new(0);

/// The only edge is skipped, so the collector cannot see this type's cycles.
#[derive(Trace)]
struct Skipped {
    id: u32,
    #[trace(skip)]
    next: Mutex<Option<Cc<Skipped>>>,
}

impl Drop for Skipped {
    fn drop(&mut self) {
        SKIPPED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
enum SkippedEnum {
    A(#[trace(skip)] Cc<u8>, u32),
    B {
        #[trace(skip)]
        x: Cc<u8>,
    },
}

/// Generic parameters used only in skipped fields get no bound, and do not
/// count towards `may_have_edges()`.
#[derive(Trace)]
struct SkipsParam<T> {
    #[trace(skip)]
    hidden: T,
    shown: u8,
}

#[derive(Trace)]
#[trace(leaf)]
struct Opaque {
    handle: Cc<u8>,
    next: Mutex<Option<Cc<Opaque>>>,
}

#[derive(Trace)]
#[trace(leaf)]
enum OpaqueEnum<T: Trace> {
    One(Cc<T>),
    Two { t: T },
}

#[test]
fn attribute_constants() {
    assert!(!edges::<Skipped>());
    assert!(!edges::<SkippedEnum>());
    assert!(!edges::<SkipsParam<Cc<u8>>>());
    assert!(!edges::<SkipsParam<NotTrace>>());
    assert!(!edges::<Opaque>());
    assert!(!edges::<OpaqueEnum<u8>>());
    assert!(!edges::<OpaqueEnum<Cc<u8>>>());
    // A skipped or leaf type inside another one adds nothing either.
    assert!(!edges::<Pair<Skipped, Opaque>>());
}

#[test]
fn skipped_edge_cycle_leaks_until_broken_by_hand() {
    let _guard = serialize();
    let a = Cc::new(Skipped {
        id: 1,
        next: Mutex::new(None),
    });
    let b = Cc::new(Skipped {
        id: 2,
        next: Mutex::new(None),
    });
    *a.next.lock().unwrap() = Some(b.clone());
    *b.next.lock().unwrap() = Some(a.clone());
    assert_eq!(a.id + b.id, 3);

    // Drop every outside handle. The collector cannot see the skipped
    // edges, so this garbage cycle is a documented leak, never freed.
    let a_ptr: *const Skipped = &*a;
    let before = SKIPPED_DROPS.load(Ordering::SeqCst);
    drop((a, b));
    let _ = arcycle::collect();
    let _ = arcycle::collect();
    assert_eq!(SKIPPED_DROPS.load(Ordering::SeqCst), before, "cycle freed");

    // Break the cycle by hand so that the test leaks nothing.
    // SAFETY: nothing of type `Skipped` was dropped (checked just above, and
    // the other tests that collect are locked out), so `a` is still alive.
    let a = unsafe { &*a_ptr };
    let b = a.next.lock().unwrap().take().expect("a -> b");
    let a = b.next.lock().unwrap().take().expect("b -> a");
    assert_eq!((a.id, b.id), (1, 2));
    drop((a, b));
    assert_eq!(SKIPPED_DROPS.load(Ordering::SeqCst), before + 2);
}

// ------------------------------------------------------------------ bounds

/// Implements no `Trace`.
struct NotTrace;

/// `PhantomData<T>` is `Trace` for every `T`: no `T: Trace` needed.
#[derive(Trace)]
struct Tagged<T> {
    _m: PhantomData<T>,
    x: u32,
}

/// Only the parameter in a traced field is bounded.
#[derive(Trace)]
struct HalfTraced<T, U> {
    traced: Vec<T>,
    _u: PhantomData<fn() -> U>,
}

/// A lifetime parameter: `Trace` for `'static` only (`&'static T` is a
/// leaf), which is what a `Cc` can hold anyway.
#[derive(Trace)]
struct Borrowing<'a> {
    s: &'a str,
}

/// `#[trace(bound = "")]`: no inferred bound at all (`Weak<T>` is `Trace`
/// for every `T`).
#[derive(Trace)]
#[trace(bound = "")]
struct NoBound<T: Send + Sync + 'static> {
    w: my_arcycle::Weak<T>,
}

/// `#[trace(bound = "...")]` replaces `Option<T>: Trace` by its own.
#[derive(Trace)]
#[trace(bound = "T: arcycle::Trace + Clone")]
struct CustomBound<T> {
    t: Option<T>,
}

fn is_trace<T: Trace>() {}

#[test]
fn bounds_come_from_traced_field_types() {
    is_trace::<Tagged<NotTrace>>();
    assert!(!edges::<Tagged<NotTrace>>());
    is_trace::<HalfTraced<u8, NotTrace>>();
    assert!(!edges::<HalfTraced<u8, NotTrace>>());
    assert!(edges::<HalfTraced<Cc<u8>, NotTrace>>());
    is_trace::<Borrowing<'static>>();
    assert!(!edges::<Borrowing<'static>>());
    is_trace::<NoBound<NotTrace>>();
    assert!(!edges::<NoBound<NotTrace>>());
    assert!(edges::<CustomBound<Cc<u8>>>());
    assert!(!edges::<CustomBound<u8>>());
}

// ------------------------------------------------------------ crate path

mod renamed {
    use std::sync::Mutex;

    use my_arcycle::Cc;

    #[derive(my_arcycle::Trace)]
    #[trace(crate = my_arcycle)]
    pub struct ByPath {
        pub next: Mutex<Option<Cc<ByPath>>>,
    }

    #[derive(my_arcycle::Trace)]
    #[trace(crate = "::my_arcycle")]
    pub enum ByString<T> {
        A(T),
        B(#[trace(skip)] Cc<u8>),
    }
}

#[test]
fn crate_path() {
    let _guard = serialize();
    assert!(edges::<renamed::ByPath>());
    assert!(!edges::<renamed::ByString<u8>>());
    assert!(edges::<renamed::ByString<Cc<u8>>>());
    let a = Cc::new(renamed::ByPath {
        next: Mutex::new(None),
    });
    *a.next.lock().unwrap() = Some(a.clone());
    let weak = Cc::downgrade(&a);
    drop(a);
    assert!(arcycle::collect() >= 1);
    assert!(weak.upgrade().is_none());
}

// ------------------------------------------------------ self-containing

/// Contains itself through `Option<Box<Self>>`: no `Cc` anywhere.
#[derive(Trace)]
struct List {
    val: u32,
    next: Option<Box<List>>,
}

/// The same, spelled `Self`, with a `Cc` next to it.
#[derive(Trace)]
struct ListWithCc {
    next: Option<Box<Self>>,
    cc: Option<Cc<Node>>,
}

/// Itself inside a tuple in a `Vec`, next to an edge.
#[derive(Trace)]
struct Tree {
    kids: Vec<(Tree, Cc<u8>)>,
}

/// A leaf tree.
#[derive(Trace)]
struct LeafTree {
    kids: Vec<LeafTree>,
    names: Vec<String>,
}

/// Generic, contains itself through `Box`; `T` needs no `Trace` on the
/// struct.
#[derive(Trace)]
struct GList<T> {
    val: T,
    next: Option<Box<GList<T>>>,
}

/// An enum that contains itself.
#[derive(Trace)]
enum Expr<T> {
    Lit(T),
    Add(Box<Expr<T>>, Box<Self>),
    Neg { inner: Box<Expr<T>> },
}

#[test]
fn self_containing_types() {
    assert!(!edges::<List>());
    assert!(edges::<ListWithCc>());
    assert!(edges::<Tree>());
    assert!(!edges::<LeafTree>());
    assert!(!edges::<GList<u8>>());
    assert!(edges::<GList<Cc<Node>>>());
    assert!(!edges::<Expr<i64>>());
    assert!(edges::<Expr<Cc<u8>>>());
}

#[test]
fn self_containing_values_are_traced() {
    let _guard = serialize();
    let target = Node::new("target");
    let list = ListWithCc {
        next: Some(Box::new(ListWithCc {
            next: None,
            cc: Some(target.clone()),
        })),
        cc: Some(target.clone()),
    };
    let report = arcycle::debug::TraceTest::new(&list)
        .expect(&target)
        .expect(&target)
        .run()
        .unwrap();
    assert_eq!(report.edges.len(), 2);

    let expr = Expr::Add(
        Box::new(Expr::Lit(target.clone())),
        Box::new(Expr::Neg {
            inner: Box::new(Expr::Lit(target.clone())),
        }),
    );
    let report = arcycle::debug::TraceTest::new(&expr)
        .expect(&target)
        .expect(&target)
        .run()
        .unwrap();
    assert_eq!(report.edges.len(), 2);

    let list = List {
        val: 1,
        next: Some(Box::new(List { val: 2, next: None })),
    };
    let cc = Cc::new(list);
    assert_eq!(cc.next.as_ref().unwrap().val + cc.val, 3);
}

static GENERIC_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Generic, self-referential through `Cc`, with no `T: Trace` on the
/// struct (the outside check of the core API compiles exactly this): the
/// bound sits on the derived impl only.
#[derive(Trace)]
struct Generic<T: Send + Sync + 'static> {
    inner: Mutex<Vec<Cc<Generic<T>>>>,
    val: T,
}

impl<T: Send + Sync + 'static> Drop for Generic<T> {
    fn drop(&mut self) {
        GENERIC_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn generic_self_referential_cycle_is_collected() {
    let _guard = serialize();
    assert!(edges::<Generic<u8>>());
    let a = Cc::new(Generic {
        inner: Mutex::new(Vec::new()),
        val: String::from("a"),
    });
    let b = Cc::new(Generic {
        inner: Mutex::new(vec![a.clone()]),
        val: String::from("b"),
    });
    a.inner.lock().unwrap().push(b.clone());
    a.inner.lock().unwrap().push(a.clone());
    assert_eq!(b.val, "b");
    let before = GENERIC_DROPS.load(Ordering::SeqCst);
    drop((a, b));
    assert_eq!(GENERIC_DROPS.load(Ordering::SeqCst), before);
    assert!(arcycle::collect() >= 2);
    assert_eq!(GENERIC_DROPS.load(Ordering::SeqCst), before + 2);
}

// ----------------------------------------------------- mutual recursion

/// `A` holds `B`, `B` holds `A`, neither through a `Cc`: the derive cannot
/// see the cycle between the two `may_have_edges()`.
#[derive(Trace)]
struct MutualA {
    b: Option<Box<MutualB>>,
}

#[derive(Trace)]
struct MutualB {
    a: Option<Box<MutualA>>,
}

/// The way out: one of them answers `true` without asking the other.
#[derive(Trace)]
#[trace(assume_edges)]
struct AssumedA {
    b: Option<Box<AssumedB>>,
}

#[derive(Trace)]
struct AssumedB {
    a: Option<Box<AssumedA>>,
    n: u32,
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "calls itself without end")]
fn mutual_recursion_panics_in_debug_builds() {
    let _ = edges::<MutualA>();
}

#[test]
fn assume_edges_breaks_mutual_recursion() {
    assert!(edges::<AssumedA>());
    assert!(edges::<AssumedB>());
    let target = Node::new("t");
    let _guard = serialize();
    let b = AssumedB {
        a: Some(Box::new(AssumedA { b: None })),
        n: 1,
    };
    let report = arcycle::debug::TraceTest::new(&b).run().unwrap();
    assert!(report.edges.is_empty());
    assert_eq!(b.n, 1);
    drop(target);
}

//! The public slot types over `RawSlot`: `AtomicCc` (never empty) and
//! `AtomicOptionCc`.

use super::{AtomicCcGuard, RawSlot};
use crate::cc::Cc;
use crate::trace::{Trace, Tracer};
use std::fmt;

/// A [`Cc<T>`] that threads can load and replace atomically, without a
/// lock — and that the cycle collector can trace.
///
/// What [`arc-swap`](https://docs.rs/arc-swap)'s `ArcSwap` is for `Arc`:
/// a routing table swapped in whole, a node's current child, an actor's
/// current behaviour. Unlike a cycle through an `ArcSwap`, a cycle through
/// `AtomicCc` fields is freed by [`collect`](crate::collect).
///
/// * [`load`](AtomicCc::load) returns a new handle (one atomic increment,
///   no lock); [`load_borrowed`](AtomicCc::load_borrowed) lends the current
///   one without touching its count.
/// * [`store`](AtomicCc::store), [`swap`](AtomicCc::swap) and
///   [`compare_exchange`](AtomicCc::compare_exchange) replace the value.
///   The handle they take out of the slot is released once no reader can
///   still be turning it into a `Cc` — possibly later, on another thread
///   (inside another `AtomicCc` operation): if it was the last handle, the
///   old value's destructor runs there. Readers never wait for writers, nor
///   writers for readers; a writer may briefly wait while the collector
///   verifies the slot's owner (no user code runs in that window).
///
/// `AtomicCc<T>` implements [`Trace`]: put it in a `#[derive(Trace)]`
/// struct like a `Mutex<Cc<T>>` field. Do not write a slot from inside a
/// `Trace` impl (it panics if the collector has the slot frozen).
///
/// ```
/// use arcycle::{AtomicCc, Cc, Trace};
/// use std::sync::OnceLock;
///
/// #[derive(Trace)]
/// struct Actor {
///     behaviour: AtomicCc<Behaviour>,
/// }
///
/// #[derive(Trace)]
/// struct Behaviour {
///     #[trace(skip)]
///     name: &'static str,
///     actor: OnceLock<Cc<Actor>>, // set once
/// }
///
/// let idle = Cc::new(Behaviour { name: "idle", actor: OnceLock::new() });
/// let actor = Cc::new(Actor { behaviour: AtomicCc::new(idle) });
/// let busy = Cc::new(Behaviour { name: "busy", actor: OnceLock::new() });
/// assert!(busy.actor.set(actor.clone()).is_ok());
/// actor.behaviour.store(busy); // actor -> busy -> actor: a cycle
/// assert_eq!(actor.behaviour.load().name, "busy");
/// drop(actor);
/// assert!(arcycle::collect() >= 2); // freed, through the atomic edge
/// ```
///
/// For a slot that may be empty, use [`AtomicOptionCc`].
///
/// # Unsized values
///
/// `T` may be unsized: `AtomicCc<dyn Trait>`, `AtomicCc<str>`,
/// `AtomicCc<[T]>`, with the same operations and guarantees. The slot stays
/// one word: for an unsized `T` it names a small heap cell holding the fat
/// pointer, so every `store`, `swap` and `compare_exchange` allocates one
/// word-sized cell (freed with the handle it carries), and a `load` reads
/// it (one more dependent load). A sized `T` has no cell: its slot holds
/// the allocation's address, as `ArcSwap` does.
///
/// ```
/// use arcycle::{AtomicCc, Cc, Trace};
///
/// trait Shape: Trace + Send + Sync {
///     fn area(&self) -> f64;
/// }
/// #[derive(Trace)]
/// struct Square(f64);
/// impl Shape for Square {
///     fn area(&self) -> f64 { self.0 * self.0 }
/// }
///
/// let slot: AtomicCc<dyn Shape> = AtomicCc::new(arcycle::coerce!(Cc::new(Square(2.0))));
/// assert_eq!(slot.load().area(), 4.0);
/// slot.store(arcycle::coerce!(Cc::new(Square(3.0))));
/// assert_eq!(slot.load_borrowed().area(), 9.0);
///
/// let name: AtomicCc<str> = AtomicCc::new(Cc::from("old"));
/// name.store(Cc::from("new"));
/// assert_eq!(&*name.load(), "new");
/// ```
pub struct AtomicCc<T: ?Sized + Trace> {
    raw: RawSlot<T>,
}

impl<T: ?Sized + Trace + Send + Sync + 'static> AtomicCc<T> {
    /// A slot holding `cc`.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(1));
    /// assert_eq!(*slot.load(), 1);
    /// ```
    pub fn new(cc: Cc<T>) -> Self {
        AtomicCc {
            raw: RawSlot::new(Some(cc)),
        }
    }

    /// A new handle to the current value: one atomic increment, no lock.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(7));
    /// let v = slot.load();
    /// assert_eq!(*v, 7);
    /// assert_eq!(Cc::strong_count(&v), 2); // the slot's and ours
    /// ```
    #[inline]
    pub fn load(&self) -> Cc<T> {
        self.raw.load().expect("an AtomicCc is never empty")
    }

    /// Borrow the current value without touching its count (cheaper than
    /// [`load`](AtomicCc::load)); see [`AtomicCcGuard`].
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(vec![1, 2, 3]));
    /// assert_eq!(slot.load_borrowed().len(), 3);
    /// ```
    #[inline]
    pub fn load_borrowed(&self) -> AtomicCcGuard<'_, Cc<T>> {
        // `None` cannot occur (and would own nothing to leak).
        self.raw
            .load_borrowed(|cc| cc.expect("an AtomicCc is never empty"))
    }

    /// Replace the value with `cc`. The old handle is released once no
    /// reader can still be using it (see the type's docs).
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(String::from("old")));
    /// slot.store(Cc::new(String::from("new")));
    /// assert_eq!(*slot.load(), "new");
    /// ```
    pub fn store(&self, cc: Cc<T>) {
        self.raw.store(Some(cc));
    }

    /// Replace the value with `cc` and return the old one.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(1));
    /// let old = slot.swap(Cc::new(2));
    /// assert_eq!((*old, *slot.load()), (1, 2));
    /// ```
    pub fn swap(&self, cc: Cc<T>) -> Cc<T> {
        self.raw.swap(Some(cc)).expect("an AtomicCc is never empty")
    }

    /// Replace the value with `new` if the slot holds `current` (the same
    /// allocation, [`Cc::ptr_eq`]). Returns the previous value on success;
    /// on failure, the value found (and `new` is dropped), like
    /// [`AtomicPtr::compare_exchange`](std::sync::atomic::AtomicPtr::compare_exchange).
    ///
    /// There is no ABA problem: `current` is a live handle, so its
    /// allocation cannot be freed and reused while you compare with it.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(1));
    /// let mut cur = slot.load();
    /// // A lock-free update loop.
    /// loop {
    ///     match slot.compare_exchange(&cur, Cc::new(*cur + 1)) {
    ///         Ok(_) => break,
    ///         Err(actual) => cur = actual,
    ///     }
    /// }
    /// assert_eq!(*slot.load(), 2);
    /// ```
    pub fn compare_exchange(&self, current: &Cc<T>, new: Cc<T>) -> Result<Cc<T>, Cc<T>> {
        let current = current.header_ptr().addr().get();
        match self.raw.compare_exchange(current, Some(new)) {
            Ok(old) => Ok(old.expect("an AtomicCc is never empty")),
            Err(actual) => Err(actual.expect("an AtomicCc is never empty")),
        }
    }

    /// Take the value out of the slot.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot = AtomicCc::new(Cc::new(5));
    /// let v = slot.into_inner();
    /// assert_eq!((*v, Cc::strong_count(&v)), (5, 1));
    /// ```
    pub fn into_inner(self) -> Cc<T> {
        self.raw.into_inner().expect("an AtomicCc is never empty")
    }
}

// SAFETY: reports the one handle the slot owns, read under the slot's
// freeze, which the tracer holds until the collector's decision (see the
// module docs); a slot that cannot be frozen is reported busy.
unsafe impl<T: ?Sized + Trace> Trace for AtomicCc<T> {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self.raw.trace(tracer);
    }
}

impl<T: ?Sized + Trace + Send + Sync + 'static> From<Cc<T>> for AtomicCc<T> {
    /// `AtomicCc::new`.
    ///
    /// ```
    /// use arcycle::{AtomicCc, Cc};
    /// let slot: AtomicCc<u8> = Cc::new(3).into();
    /// assert_eq!(*slot.load(), 3);
    /// ```
    fn from(cc: Cc<T>) -> Self {
        AtomicCc::new(cc)
    }
}

impl<T: ?Sized + Trace + fmt::Debug + Send + Sync + 'static> fmt::Debug for AtomicCc<T> {
    /// The current value.
    ///
    /// ```
    /// let slot = arcycle::AtomicCc::new(arcycle::Cc::new(4));
    /// assert_eq!(format!("{slot:?}"), "AtomicCc(4)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AtomicCc")
            .field(&&**self.load_borrowed())
            .finish()
    }
}

/// An `Option<Cc<T>>` that threads can load and replace atomically,
/// without a lock — and that the cycle collector can trace.
///
/// [`AtomicCc`] for a slot that may be empty, with [`take`](Self::take).
///
/// ```
/// use arcycle::{AtomicOptionCc, Cc, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     next: AtomicOptionCc<Node>,
/// }
///
/// // A ring of three through atomic edges.
/// let a = Cc::new(Node { next: AtomicOptionCc::empty() });
/// let b = Cc::new(Node { next: AtomicOptionCc::new(Some(a.clone())) });
/// let c = Cc::new(Node { next: AtomicOptionCc::new(Some(b.clone())) });
/// a.next.store(Some(c.clone()));
/// drop((a, b, c));
/// assert!(arcycle::collect() >= 3);
/// ```
pub struct AtomicOptionCc<T: ?Sized + Trace> {
    raw: RawSlot<T>,
}

impl<T: ?Sized + Trace + Send + Sync + 'static> AtomicOptionCc<T> {
    /// A slot holding `cc`.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new(1)));
    /// assert_eq!(slot.load().as_deref(), Some(&1));
    /// ```
    pub fn new(cc: Option<Cc<T>>) -> Self {
        AtomicOptionCc {
            raw: RawSlot::new(cc),
        }
    }

    /// An empty slot.
    ///
    /// ```
    /// let slot = arcycle::AtomicOptionCc::<u8>::empty();
    /// assert!(slot.load().is_none());
    /// ```
    pub fn empty() -> Self {
        AtomicOptionCc::new(None)
    }

    /// A new handle to the current value, if any: no lock.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new('x')));
    /// assert_eq!(*slot.load().unwrap(), 'x');
    /// ```
    #[inline]
    pub fn load(&self) -> Option<Cc<T>> {
        self.raw.load()
    }

    /// Borrow the current value without touching its count; see
    /// [`AtomicCcGuard`].
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new(2)));
    /// assert_eq!(slot.load_borrowed().as_deref(), Some(&2));
    /// ```
    #[inline]
    pub fn load_borrowed(&self) -> AtomicCcGuard<'_, Option<Cc<T>>> {
        self.raw.load_borrowed(|cc| cc)
    }

    /// Replace the value with `cc` (the old handle is released once no
    /// reader can still be using it; see [`AtomicCc`]).
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::empty();
    /// slot.store(Some(Cc::new(3)));
    /// assert_eq!(slot.load().as_deref(), Some(&3));
    /// ```
    pub fn store(&self, cc: Option<Cc<T>>) {
        self.raw.store(cc);
    }

    /// Replace the value with `cc` and return the old one.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new(1)));
    /// assert_eq!(slot.swap(None).as_deref(), Some(&1));
    /// assert!(slot.load().is_none());
    /// ```
    pub fn swap(&self, cc: Option<Cc<T>>) -> Option<Cc<T>> {
        self.raw.swap(cc)
    }

    /// Empty the slot and return what it held.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new(9)));
    /// assert_eq!(slot.take().as_deref(), Some(&9));
    /// assert!(slot.take().is_none());
    /// ```
    pub fn take(&self) -> Option<Cc<T>> {
        self.raw.swap(None)
    }

    /// Replace the value with `new` if the slot holds `current` (the same
    /// allocation, or both empty). Returns the previous value on success;
    /// on failure, the value found (and `new` is dropped). No ABA problem:
    /// see [`AtomicCc::compare_exchange`].
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::empty();
    /// assert!(slot.compare_exchange(None, Some(Cc::new(1))).is_ok());
    /// let found = slot.compare_exchange(None, Some(Cc::new(2))).unwrap_err();
    /// assert_eq!(found.as_deref(), Some(&1));
    /// ```
    pub fn compare_exchange(
        &self,
        current: Option<&Cc<T>>,
        new: Option<Cc<T>>,
    ) -> Result<Option<Cc<T>>, Option<Cc<T>>> {
        let current = current.map_or(0, |c| c.header_ptr().addr().get());
        self.raw.compare_exchange(current, new)
    }

    /// Take the value out of the slot.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot = AtomicOptionCc::new(Some(Cc::new(5)));
    /// assert_eq!(slot.into_inner().as_deref(), Some(&5));
    /// ```
    pub fn into_inner(self) -> Option<Cc<T>> {
        self.raw.into_inner()
    }
}

// SAFETY: as for `AtomicCc`: the handle (if any) is read under the freeze.
unsafe impl<T: ?Sized + Trace> Trace for AtomicOptionCc<T> {
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self.raw.trace(tracer);
    }
}

impl<T: ?Sized + Trace + Send + Sync + 'static> Default for AtomicOptionCc<T> {
    /// An empty slot.
    ///
    /// ```
    /// let slot: arcycle::AtomicOptionCc<u8> = Default::default();
    /// assert!(slot.take().is_none());
    /// ```
    fn default() -> Self {
        AtomicOptionCc::empty()
    }
}

impl<T: ?Sized + Trace + Send + Sync + 'static> From<Option<Cc<T>>> for AtomicOptionCc<T> {
    /// `AtomicOptionCc::new`.
    ///
    /// ```
    /// use arcycle::{AtomicOptionCc, Cc};
    /// let slot: AtomicOptionCc<u8> = Some(Cc::new(3)).into();
    /// assert_eq!(slot.load().as_deref(), Some(&3));
    /// ```
    fn from(cc: Option<Cc<T>>) -> Self {
        AtomicOptionCc::new(cc)
    }
}

impl<T: ?Sized + Trace + fmt::Debug + Send + Sync + 'static> fmt::Debug for AtomicOptionCc<T> {
    /// The current value.
    ///
    /// ```
    /// let slot = arcycle::AtomicOptionCc::<u8>::empty();
    /// assert_eq!(format!("{slot:?}"), "AtomicOptionCc(None)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.load_borrowed();
        f.debug_tuple("AtomicOptionCc")
            .field(&guard.as_deref())
            .finish()
    }
}

//! [`WeakSet`]: a set of objects, by identity, that does not keep them
//! alive (Python's `WeakSet`).
//!
//! # Guarantees
//!
//! Those of [`WeakKeyMap`] (it is one, with `()` values): an object leaves
//! the set when it dies, `len` counts live members only, and nothing is
//! dropped under the set's locks. Guarded by `tests/weakref.rs`
//! (`weak_set_*`) and the loom model `purge_vs_reinsert`.

use super::key_map::WeakKeyMap;
use crate::trace::Trace;
use crate::{Cc, Tracer};
use std::fmt;

/// A set of objects, by identity, that does not keep them alive; like
/// Python's `WeakSet`.
///
/// Registries of observers, "objects currently in state X", the items a
/// user has looked at: membership that must end when the object does.
///
/// ```
/// use arcycle::{Cc, WeakSet};
///
/// // The shopping cart whose recently viewed items must not keep the
/// // items alive.
/// struct Item { name: &'static str }
/// arcycle::leaf!(Item);
///
/// let viewed = WeakSet::new();
/// let lamp = Cc::new(Item { name: "lamp" });
/// let chair = Cc::new(Item { name: "chair" });
/// viewed.insert(&lamp);
/// viewed.insert(&chair);
/// assert_eq!(viewed.len(), 2);
///
/// drop(chair); // sold out and gone from the catalogue
/// let names: Vec<_> = viewed.to_vec().iter().map(|i| i.name).collect();
/// assert_eq!(names, ["lamp"]);
/// assert_eq!(viewed.len(), 1);
/// ```
pub struct WeakSet<T> {
    map: WeakKeyMap<T, ()>,
}

impl<T> WeakSet<T> {
    /// An empty set.
    ///
    /// ```
    /// let s: arcycle::WeakSet<u8> = arcycle::WeakSet::new();
    /// assert!(s.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakSet {
            map: WeakKeyMap::new(),
        }
    }

    /// The number of live members.
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(1);
    /// s.insert(&a);
    /// assert_eq!(s.len(), 1);
    /// drop(a);
    /// assert_eq!(s.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// ```
    /// let s: arcycle::WeakSet<u8> = Default::default();
    /// assert!(s.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<T: Trace + Send + Sync + 'static> WeakSet<T> {
    /// Add `object`; false if it was already a member. An object already
    /// destroyed by the collector is not added (and false is returned).
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(1);
    /// assert!(s.insert(&a));
    /// assert!(!s.insert(&a));
    /// ```
    pub fn insert(&self, object: &Cc<T>) -> bool {
        if super::is_dead(object) {
            return false;
        }
        self.map.insert(object, ()).is_none()
    }

    /// Whether `object` is a member.
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(1);
    /// s.insert(&a);
    /// assert!(s.contains(&a));
    /// assert!(!s.contains(&arcycle::Cc::new(1))); // identity, not equality
    /// ```
    pub fn contains(&self, object: &Cc<T>) -> bool {
        self.map.contains_key(object)
    }

    /// Remove `object`; false if it was not a member.
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(1);
    /// s.insert(&a);
    /// assert!(s.remove(&a));
    /// assert!(!s.remove(&a));
    /// ```
    pub fn remove(&self, object: &Cc<T>) -> bool {
        self.map.remove(object).is_some()
    }

    /// A snapshot of the live members.
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(5);
    /// s.insert(&a);
    /// assert_eq!(*s.to_vec()[0], 5);
    /// ```
    pub fn to_vec(&self) -> Vec<Cc<T>> {
        self.map.keys()
    }

    /// Keep only the members for which `f` is true (`f` runs under a
    /// shard's lock: see [`WeakKeyMap::retain`]).
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// s.insert(&a);
    /// s.insert(&b);
    /// s.retain(|x| **x > 1);
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&Cc<T>) -> bool) {
        self.map.retain(|k, _| f(k))
    }

    /// Remove every member.
    ///
    /// ```
    /// let s = arcycle::WeakSet::new();
    /// let a = arcycle::Cc::new(1);
    /// s.insert(&a);
    /// s.clear();
    /// assert!(s.is_empty());
    /// ```
    pub fn clear(&self) {
        self.map.clear()
    }
}

impl<T> Default for WeakSet<T> {
    fn default() -> Self {
        WeakSet::new()
    }
}

impl<T> fmt::Debug for WeakSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSet").field("len", &self.len()).finish()
    }
}

impl<'a, T: Trace + Send + Sync + 'static> Extend<&'a Cc<T>> for WeakSet<T> {
    fn extend<I: IntoIterator<Item = &'a Cc<T>>>(&mut self, iter: I) {
        for x in iter {
            self.insert(x);
        }
    }
}

impl<'a, T: Trace + Send + Sync + 'static> FromIterator<&'a Cc<T>> for WeakSet<T> {
    /// ```
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// let s: arcycle::WeakSet<i32> = [&a, &b].into_iter().collect();
    /// assert_eq!(s.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = &'a Cc<T>>>(iter: I) -> Self {
        let mut s = WeakSet::new();
        s.extend(iter);
        s
    }
}

// SAFETY: reports no edges: the set holds its members weakly, and weak
// handles are not edges. Under-reporting is always safe.
unsafe impl<T> Trace for WeakSet<T> {
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

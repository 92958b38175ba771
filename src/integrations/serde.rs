//! `Serialize`/`Deserialize` for [`Cc`] and [`Weak`] (feature `serde`),
//! mirroring serde's `rc` feature for `Arc` and `sync::Weak`.
//!
//! Guarantees: a `Cc` serializes as its value and deserializes into a fresh
//! `Cc`; a `Weak` serializes as `Option<T>` (upgraded, or none) and
//! deserializes into a dangling `Weak::new()`, after reading (and
//! discarding) an `Option<T>`, as serde does for `std::sync::Weak`. Sharing
//! and cycles are not preserved. Serializing a `Cc` that is already being
//! serialized further up on the same thread (a cycle) fails with an error
//! instead of overflowing the stack. Guarded by `tests/integrations.rs`,
//! module `serde` (round trips, the cycle error, `Weak` both ways).

use crate::{Cc, Trace, Weak};
use ::serde::de::{Deserialize, Deserializer};
use ::serde::ser::{Error as _, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::HashSet;

thread_local! {
    /// The allocations whose `Cc` is being serialized on this thread.
    static SERIALIZING: RefCell<HashSet<usize>> = RefCell::new(HashSet::new());
}

/// One allocation's entry in `SERIALIZING`, removed on drop (also when the
/// value's `serialize` fails or panics).
struct Entered(Option<usize>);

impl Entered {
    /// Enter `addr`; `Err(())` if it is entered already (a cycle).
    fn new(addr: usize) -> Result<Entered, ()> {
        // During thread-local teardown there is no set: serialize without
        // the cycle check rather than refuse.
        match SERIALIZING.try_with(|set| set.borrow_mut().insert(addr)) {
            Ok(true) => Ok(Entered(Some(addr))),
            Ok(false) => Err(()),
            Err(_) => Ok(Entered(None)),
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(addr) = self.0 {
            let _ = SERIALIZING.try_with(|set| set.borrow_mut().remove(&addr));
        }
    }
}

/// Serializes the value, as serde does for `Arc<T>`.
///
/// **Sharing and cycles are not preserved**: a value reached through two
/// handles is written twice (and read back as two separate `Cc`s). A cycle
/// — this `Cc` reached again while its value is being serialized on this
/// thread, directly or through a `Weak` — is refused with an error
/// ("arcycle: cannot serialize a reference cycle ...") rather than
/// recursing until the stack overflows; leave the back edge out (for
/// example with `#[serde(skip)]`) to serialize such a graph. Serializing a
/// handle whose value the collector has already destroyed (possible only
/// in destructors of collected objects) is an error too.
///
/// ```
/// use arcycle::Cc;
/// let shared = Cc::new(7);
/// let pair = vec![shared.clone(), shared];
/// assert_eq!(serde_json::to_string(&pair).unwrap(), "[7,7]");
/// ```
impl<T: Trace + Serialize> Serialize for Cc<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = Cc::try_deref(self).ok_or_else(|| {
            S::Error::custom(
                "arcycle: cannot serialize a Cc whose value the cycle collector has destroyed",
            )
        })?;
        let _entered = Entered::new(self.header_ptr().as_ptr() as usize).map_err(|()| {
            S::Error::custom(
                "arcycle: cannot serialize a reference cycle (a Cc reached again while \
                 its value is being serialized); sharing and cycles are not preserved, \
                 so leave the back edge out, e.g. with #[serde(skip)]",
            )
        })?;
        value.serialize(serializer)
    }
}

/// Deserializes a value into a fresh `Cc`, as serde does for `Arc<T>`:
/// every occurrence becomes its own allocation (sharing and cycles are
/// not preserved).
///
/// ```
/// let v: Vec<arcycle::Cc<u32>> = serde_json::from_str("[1,2]").unwrap();
/// assert_eq!(*v[1], 2);
/// ```
impl<'de, T> Deserialize<'de> for Cc<T>
where
    T: Trace + Deserialize<'de> + Send + Sync + 'static,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Cc::new)
    }
}

/// Serializes as `Option<T>`: the value if [`Weak::upgrade`] succeeds,
/// none otherwise, as serde does for `std::sync::Weak<T>`. Serializing
/// through a `Weak` counts for the cycle check as serializing through the
/// upgraded `Cc` (a `Weak` back to an ancestor, such as a parent pointer,
/// is refused as a cycle: skip it). Sharing is not preserved.
impl<T: Trace + Serialize> Serialize for Weak<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.upgrade().serialize(serializer)
    }
}

/// Reads an `Option<T>`, discards it, and returns a dangling
/// [`Weak::new()`] (it can never be upgraded), as serde does for
/// `std::sync::Weak<T>`: nothing would keep a freshly deserialized value
/// alive.
///
/// ```
/// let w: arcycle::Weak<u32> = serde_json::from_str("5").unwrap();
/// assert!(w.upgrade().is_none());
/// ```
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Weak<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer)?;
        Ok(Weak::new())
    }
}

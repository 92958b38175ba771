//! `Trace` for the collections of `hashbrown`, `indexmap` and `smallvec`
//! (features `hashbrown`, `indexmap`, `smallvec`).
//!
//! Guarantees: each forwards to every element it owns, once each, exactly
//! like the impls for `std::collections`; `may_have_edges()` is the OR of the
//! element types', so a collection of leaves is a leaf. Guarded by
//! `tests/integrations.rs`, modules `hashbrown`, `indexmap`, `smallvec`
//! (a cycle through each collection is collected; leaves stay leaves).

use crate::{Trace, Tracer};

#[allow(unused_imports)] // each feature uses some of these
use crate::trace_impls::{trace_map, trace_set};

// Only the default allocator: hashbrown names its `Allocator` bound only
// with its `allocator-api2` feature.
#[cfg(feature = "hashbrown")]
trace_map!(hashbrown::HashMap<K, V, S>);
#[cfg(feature = "hashbrown")]
trace_set!(hashbrown::HashSet<T, S>);

// SAFETY: forwards to every element it owns, once each.
#[cfg(feature = "hashbrown")]
unsafe impl<T: Trace> Trace for hashbrown::HashTable<T> {
    #[inline(always)]
    fn may_have_edges() -> bool {
        T::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        if T::may_have_edges() {
            for item in self.iter() {
                item.trace(tracer);
            }
        }
    }
}

#[cfg(feature = "indexmap")]
trace_map!(indexmap::IndexMap<K, V, S>);
#[cfg(feature = "indexmap")]
trace_set!(indexmap::IndexSet<T, S>);

// SAFETY: forwards to every element it owns, once each (through the impl
// for slices).
#[cfg(feature = "smallvec")]
unsafe impl<A: smallvec::Array> Trace for smallvec::SmallVec<A>
where
    A::Item: Trace,
{
    #[inline(always)]
    fn may_have_edges() -> bool {
        <A::Item as Trace>::may_have_edges()
    }
    fn trace<'a>(&'a self, tracer: &mut Tracer<'a>) {
        self.as_slice().trace(tracer);
    }
}

//! `WeakValueMap::get_or_insert_with`: construct once per life.
//!
//! The first caller for a key with no live value leaves a *pending* slot
//! and builds the value outside every lock of the map, holding the pending
//! slot's own mutex; racing callers wait on that mutex (not on the map) and
//! get the same object. If the constructor panics, the slot is removed
//! (`Unpend`) and a waiter builds instead.
//!
//! Guarded by `tests/weakref.rs` (`get_or_insert_with_builds_once_per_life`,
//! `get_or_insert_with_survives_a_panicking_constructor`,
//! `get_or_insert_with_races_build_once`).

use super::{unwatch, Entry, Slot, WeakValueMap};
use crate::sync::{lock, write, Mutex};
use crate::trace::Trace;
use crate::weakref::map_shard;
use crate::{Cc, Weak};
use std::hash::Hash;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

/// A value being built by `get_or_insert_with`: its builder holds the
/// mutex until the value exists.
pub(super) struct Pending<V> {
    result: Mutex<Option<Weak<V>>>,
}

enum Step<V: Trace> {
    Done(Cc<V>),
    Wait(Arc<Pending<V>>),
    Build {
        id: u64,
        stale: Option<(usize, u64, Weak<V>)>,
    },
}

impl<K, V> WeakValueMap<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Trace + Send + Sync + 'static,
{
    /// The live value for `key`, or a new one built by `make` and inserted:
    /// the `get_or_create` cache pattern.
    ///
    /// Callers racing for one key all get the same object, and `make` runs
    /// once for as long as that object lives: the first caller builds it
    /// (outside the map's locks), the others wait for it. If `make`
    /// panics, the panic reaches its caller and one of the waiters builds
    /// instead. `make` must not call `get_or_insert_with` for the same key
    /// (it would wait for itself).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// let built = AtomicUsize::new(0);
    /// let m = arcycle::WeakValueMap::new();
    /// let make = || { built.fetch_add(1, SeqCst); 42 };
    /// let a = m.get_or_insert_with("answer", make);
    /// let b = m.get_or_insert_with("answer", make);
    /// assert!(arcycle::Cc::ptr_eq(&a, &b));
    /// assert_eq!(built.load(SeqCst), 1);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> Cc<V> {
        let hash = self.hash(&key);
        if let Some(v) = self.get_hashed(hash, &key) {
            return v;
        }
        let i = map_shard(hash);
        let mut key = Some(key);
        let mut make = Some(make);
        loop {
            let p = Arc::new(Pending {
                result: Mutex::new(None),
            });
            // Held while we build, if we do: waiters block on it.
            let mut mine = lock(&p.result);
            let step = {
                let mut guard = write(&self.inner.shards[i]);
                let s = &mut *guard;
                let id = s.next_id;
                let k = key.as_ref().expect("key is taken only by a build");
                match s.table.find_mut(hash, |e| e.key == *k) {
                    Some(e) => {
                        let live = match &e.slot {
                            Slot::Live(w) => Ok(w.upgrade()),
                            Slot::Pending(q) => Err(q.clone()),
                        };
                        match live {
                            Ok(Some(v)) => Step::Done(v),
                            Err(q) => Step::Wait(q),
                            Ok(None) => {
                                // Dead, its purge still to come: build in
                                // its place (the purge looks for the old id).
                                let old_id = std::mem::replace(&mut e.id, id);
                                let old_addr = std::mem::replace(&mut e.addr, 0);
                                let old = std::mem::replace(&mut e.slot, Slot::Pending(p.clone()));
                                s.next_id += 1;
                                // Relaxed: see `Watch::died`.
                                self.inner.len.fetch_sub(1, Relaxed);
                                match old {
                                    Slot::Live(w) => Step::Build {
                                        id,
                                        stale: Some((old_addr, old_id, w)),
                                    },
                                    Slot::Pending(_) => unreachable!("matched Live above"),
                                }
                            }
                        }
                    }
                    None => {
                        let key = key.take().expect("checked above");
                        s.table.insert_unique(
                            hash,
                            Entry {
                                key,
                                hash,
                                id,
                                addr: 0,
                                slot: Slot::Pending(p.clone()),
                            },
                            |e| e.hash,
                        );
                        s.next_id += 1;
                        Step::Build { id, stale: None }
                    }
                }
            };
            match step {
                Step::Done(v) => return v,
                Step::Wait(q) => {
                    drop(mine);
                    // The builder holds `q.result` until the value exists
                    // (or its `make` panicked: then it is empty).
                    let built = lock(&q.result).as_ref().and_then(Weak::upgrade);
                    if let Some(v) = built {
                        return v;
                    }
                }
                Step::Build { id, stale } => {
                    if let Some((addr, old_id, w)) = stale {
                        unwatch(self.me(), i, addr, hash, old_id);
                        drop(w);
                    }
                    // If `make` panics: remove our pending slot before the
                    // waiters wake (drop order: this guard, then `mine`).
                    let unpend = Unpend {
                        map: self,
                        shard: i,
                        hash,
                        id,
                    };
                    let made = catch_unwind(AssertUnwindSafe(|| {
                        Cc::new((make.take().expect("built once"))())
                    }));
                    let v = match made {
                        Ok(v) => v,
                        Err(p) => {
                            drop(unpend);
                            drop(mine);
                            resume_unwind(p);
                        }
                    };
                    std::mem::forget(unpend);
                    *mine = Some(Cc::downgrade(&v));
                    self.publish(&v, i, hash, id);
                    drop(mine);
                    return v;
                }
            }
        }
    }

    /// Turn our pending slot `(i, hash, id)` into `v`'s live entry, if
    /// nobody replaced or removed it meanwhile.
    fn publish(&self, v: &Cc<V>, i: usize, hash: u64, id: u64) {
        let mut s = write(&self.inner.shards[i]);
        let Some(e) = s.table.find_mut(hash, |e| e.id == id) else {
            return;
        };
        if !matches!(e.slot, Slot::Pending(_)) {
            return;
        }
        e.slot = Slot::Live(Cc::downgrade(v));
        e.addr = super::super::addr_of(v);
        // A fresh object cannot be dead: registration succeeds.
        let ok = self.watch(v, i, hash, id);
        debug_assert!(ok);
        // Relaxed: see `Watch::died`.
        self.inner.len.fetch_add(1, Relaxed);
    }
}

/// Removes a pending slot whose builder panicked.
struct Unpend<'a, K, V> {
    map: &'a WeakValueMap<K, V>,
    shard: usize,
    hash: u64,
    id: u64,
}

impl<K, V> Drop for Unpend<'_, K, V> {
    fn drop(&mut self) {
        let gone = {
            let mut s = write(&self.map.inner.shards[self.shard]);
            match s.table.find_entry(self.hash, |e| e.id == self.id) {
                Ok(e) if matches!(e.get().slot, Slot::Pending(_)) => Some(e.remove().0),
                _ => None,
            }
        };
        drop(gone);
    }
}

//! [`WeakKeyMap`]: a side table keyed by object identity, whose entries go
//! when their key dies (Python's `WeakKeyDictionary`, by identity).
//!
//! # Guarantees
//!
//! * **Identity is the allocation's address**, and it cannot be reused
//!   while an entry exists: each entry holds a [`Weak`] to its key, which
//!   keeps the allocation (never the value). A lookup through a live
//!   `&Cc<K>` that finds the address has found *that* object's entry; no
//!   upgrade is needed.
//! * **An entry dies with its key.** Inserting registers the entry with
//!   the registry (see the module `weakref`); the key's death path removes
//!   the entry (`len` stops counting it) and drops its value after
//!   releasing the shard lock, in O(1). Removing an entry unregisters it.
//!   Between the key's death instant and that purge (the key's destructor
//!   runs in between) the entry is invisible to every lookup made through a
//!   handle (none exists) and to the snapshots (the upgrade fails), but
//!   still counted by `len`.
//! * **No user code under our locks**, except `K`-free closures the caller
//!   passes to [`WeakKeyMap::retain`] and the borrow of [`WeakKeyMap::get_ref`]
//!   (documented there): keys and values that leave the map are dropped
//!   after the lock is released, and handles upgraded under a lock are
//!   dropped after it.
//!
//! Guarded by the loom model `purge_vs_reinsert` and `tests/weakref.rs`
//! (`key_map_*`).

use super::{is_watch, map_shard, mix, register, unregister, Reg, Token, Watch, MAP_SHARDS};
use crate::sync::{read, write, AtomicUsize, RwLock, RwLockReadGuard};
use crate::trace::Trace;
use crate::{Cc, Tracer, Weak};
use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

pub(super) struct Entry<K, V> {
    pub(super) addr: usize,
    pub(super) id: u64,
    pub(super) key: Weak<K>,
    pub(super) value: V,
}

pub(super) struct Shard<K, V> {
    pub(super) table: HashTable<Entry<K, V>>,
    next_id: u64,
}

type Shards<K, V> = Box<[CachePadded<RwLock<Shard<K, V>>>]>;

pub(super) struct Inner<K, V> {
    pub(super) shards: Shards<K, V>,
    pub(super) len: AtomicUsize,
}

impl<K, V> Inner<K, V> {
    fn shard(&self, hash: u64) -> (usize, &RwLock<Shard<K, V>>) {
        let i = map_shard(hash);
        (i, &self.shards[i])
    }
}

impl<K: Send + Sync, V: Send + Sync> Watch for Inner<K, V> {
    fn died(&self, token: Token) {
        let gone = {
            let mut shard = write(&self.shards[token.shard]);
            match shard.table.find_entry(token.hash, |e| e.id == token.id) {
                Ok(e) => {
                    // Relaxed: a statistic read without synchronisation;
                    // every change is made under a shard lock.
                    self.len.fetch_sub(1, Relaxed);
                    Some(e.remove().0)
                }
                Err(_) => None,
            }
        };
        // The value (user code) is dropped here, after the lock.
        drop(gone);
    }
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        // Unregister every entry, so that long-lived keys do not keep
        // registrations of a dropped map.
        let me = self as *const Self as *const ();
        for (i, shard) in self.shards.iter_mut().enumerate() {
            #[cfg(not(arcycle_loom))]
            let shard = shard.get_mut().unwrap_or_else(|e| e.into_inner());
            #[cfg(arcycle_loom)]
            let shard = &mut *write(shard);
            for e in shard.table.iter() {
                let token = Token {
                    shard: i,
                    hash: mix(e.addr),
                    id: e.id,
                };
                unregister(e.addr, |r| is_watch(r, me, token));
            }
        }
    }
}

/// A map keyed by object identity whose entries go when their key dies,
/// like Python's `WeakKeyDictionary` (which keys by equality; this keys by
/// identity, as `id(obj)` would).
///
/// Use it for side tables: data about objects you do not own, kept exactly
/// as long as the objects live. It is sharded: lookups on different
/// shards never contend, and a lookup is one read lock, no atomic RMW on
/// the key.
///
/// **A value that holds a handle to its own key** keeps the key alive for
/// as long as the entry exists, so it is never freed (Python leaks it
/// forever too): the map holds its values strongly and the collector does
/// not see into the map (it is not an ephemeron table). Store a [`Weak`]
/// to the key in the value instead, or remove the entry by hand.
///
/// ```
/// use arcycle::{Cc, WeakKeyMap};
///
/// let notes: WeakKeyMap<String, &str> = WeakKeyMap::new();
/// let doc = Cc::new(String::from("report.txt"));
/// notes.insert(&doc, "draft");
/// assert_eq!(notes.get(&doc), Some("draft"));
/// assert_eq!(notes.len(), 1);
/// drop(doc); // the key dies: so does its entry
/// assert_eq!(notes.len(), 0);
/// ```
pub struct WeakKeyMap<K, V> {
    pub(super) inner: Arc<Inner<K, V>>,
}

/// A borrow of a value in a [`WeakKeyMap`]: it holds a read lock of one
/// shard of the map while it lives.
///
/// While you hold it, do not insert into or remove from the same map on
/// this thread, and do not drop the last handle to an object that is a
/// key in it (its entry's purge would wait for this lock): either would
/// deadlock.
///
/// ```
/// let m = arcycle::WeakKeyMap::new();
/// let k = arcycle::Cc::new(1);
/// m.insert(&k, vec![1, 2, 3]);
/// assert_eq!(m.get_ref(&k).unwrap().len(), 3);
/// ```
pub struct Ref<'a, K, V> {
    guard: RwLockReadGuard<'a, Shard<K, V>>,
    hash: u64,
    addr: usize,
}

impl<K, V> std::ops::Deref for Ref<'_, K, V> {
    type Target = V;
    fn deref(&self) -> &V {
        let addr = self.addr;
        match self.guard.table.find(self.hash, |e| e.addr == addr) {
            Some(e) => &e.value,
            // The entry was present when the guard was taken, and only a
            // writer (excluded by the guard) removes it.
            None => unreachable!("arcycle: WeakKeyMap entry vanished under a read lock"),
        }
    }
}

impl<K, V: fmt::Debug> fmt::Debug for Ref<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<K, V> WeakKeyMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// let m: arcycle::WeakKeyMap<u8, u8> = arcycle::WeakKeyMap::new();
    /// assert!(m.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakKeyMap {
            inner: Arc::new(Inner {
                shards: (0..MAP_SHARDS)
                    .map(|_| {
                        CachePadded::new(RwLock::new(Shard {
                            table: HashTable::new(),
                            next_id: 0,
                        }))
                    })
                    .collect(),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// The number of entries whose key is alive.
    ///
    /// An entry stops counting when its key dies (before the drop or the
    /// collection that killed it returns).
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, ());
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // Relaxed: a snapshot of a value that other threads change.
        self.inner.len.load(Relaxed)
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// ```
    /// let m: arcycle::WeakKeyMap<u8, ()> = Default::default();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Trace + Send + Sync + 'static, V: Send + Sync + 'static> WeakKeyMap<K, V> {
    fn locate(key: &Cc<K>) -> (usize, u64) {
        let addr = super::addr_of(key);
        (addr, mix(addr))
    }

    /// Insert `value` for `key`'s object, returning the value it replaces.
    ///
    /// An object already destroyed by the collector (reachable only
    /// through a handle a destructor of its cycle cloned) is not inserted;
    /// `value` is dropped.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(String::from("key"));
    /// assert_eq!(m.insert(&k, 1), None);
    /// assert_eq!(m.insert(&k, 2), Some(1));
    /// ```
    pub fn insert(&self, key: &Cc<K>, value: V) -> Option<V> {
        if super::is_dead(key) {
            return None;
        }
        let (addr, hash) = Self::locate(key);
        let (i, shard) = self.inner.shard(hash);
        let mut s = write(shard);
        if let Some(e) = s.table.find_mut(hash, |e| e.addr == addr) {
            return Some(std::mem::replace(&mut e.value, value));
        }
        let id = s.next_id;
        s.next_id += 1;
        let token = Token { shard: i, hash, id };
        // Registered under our shard lock (lock order: map, then registry;
        // the registry never calls into a map under its lock), so a
        // concurrent `remove` unregisters exactly what we registered.
        let watch: std::sync::Weak<dyn Watch> = Arc::downgrade(&self.inner) as _;
        if register(key, Reg::Watch { map: watch, token }).is_err() {
            // Dead after all (cannot happen with a live handle): skip.
            drop(s);
            return None;
        }
        s.table.insert_unique(
            hash,
            Entry {
                addr,
                id,
                key: Cc::downgrade(key),
                value,
            },
            |e| mix(e.addr),
        );
        // Relaxed: see `Watch::died`.
        self.inner.len.fetch_add(1, Relaxed);
        None
    }

    /// A clone of the value for `key`'s object.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, String::from("one"));
    /// assert_eq!(m.get(&k).as_deref(), Some("one"));
    /// ```
    pub fn get(&self, key: &Cc<K>) -> Option<V>
    where
        V: Clone,
    {
        let (addr, hash) = Self::locate(key);
        let s = read(self.inner.shard(hash).1);
        s.table
            .find(hash, |e| e.addr == addr)
            .map(|e| e.value.clone())
    }

    /// A borrow of the value for `key`'s object (holding a read lock of
    /// one shard: see [`Ref`]).
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, vec![0u8; 4]);
    /// assert_eq!(m.get_ref(&k).map(|v| v.len()), Some(4));
    /// ```
    pub fn get_ref(&self, key: &Cc<K>) -> Option<Ref<'_, K, V>> {
        let (addr, hash) = Self::locate(key);
        let guard = read(self.inner.shard(hash).1);
        guard.table.find(hash, |e| e.addr == addr)?;
        Some(Ref { guard, hash, addr })
    }

    /// Run `f` on the value for `key`'s object, under the shard's write
    /// lock (the same rules as for [`Ref`] apply to `f`).
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, 1);
    /// m.update(&k, |v| *v += 1);
    /// assert_eq!(m.get(&k), Some(2));
    /// ```
    pub fn update<R>(&self, key: &Cc<K>, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let (addr, hash) = Self::locate(key);
        let mut s = write(self.inner.shard(hash).1);
        s.table
            .find_mut(hash, |e| e.addr == addr)
            .map(|e| f(&mut e.value))
    }

    /// Whether `key`'s object has an entry.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// assert!(!m.contains_key(&k));
    /// m.insert(&k, ());
    /// assert!(m.contains_key(&k));
    /// ```
    pub fn contains_key(&self, key: &Cc<K>) -> bool {
        let (addr, hash) = Self::locate(key);
        let s = read(self.inner.shard(hash).1);
        s.table.find(hash, |e| e.addr == addr).is_some()
    }

    /// Remove `key`'s entry and return its value.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, 'x');
    /// assert_eq!(m.remove(&k), Some('x'));
    /// assert_eq!(m.remove(&k), None);
    /// ```
    pub fn remove(&self, key: &Cc<K>) -> Option<V> {
        let (addr, hash) = Self::locate(key);
        let (i, shard) = self.inner.shard(hash);
        let e = {
            let mut s = write(shard);
            let e = s
                .table
                .find_entry(hash, |e| e.addr == addr)
                .ok()?
                .remove()
                .0;
            // Relaxed: see `Watch::died`.
            self.inner.len.fetch_sub(1, Relaxed);
            e
        };
        self.unwatch(i, &e);
        Some(e.value)
    }

    fn unwatch(&self, shard: usize, e: &Entry<K, V>) {
        let me = Arc::as_ptr(&self.inner) as *const ();
        let token = Token {
            shard,
            hash: mix(e.addr),
            id: e.id,
        };
        unregister(e.addr, |r| is_watch(r, me, token));
    }

    /// Keep only the entries for which `f(key, value)` is true. `f` runs
    /// under each shard's write lock in turn (the same rules as for
    /// [`Ref`] apply to it); entries whose key is dying are skipped (their
    /// purge is under way).
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// m.insert(&a, 10);
    /// m.insert(&b, 20);
    /// m.retain(|k, v| **k == 2 && *v == 20);
    /// assert!(!m.contains_key(&a) && m.contains_key(&b));
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&Cc<K>, &mut V) -> bool) {
        let mut panic = None;
        for (i, shard) in self.inner.shards.iter().enumerate() {
            // Handles upgraded and entries removed under the lock are
            // dropped after it (a last drop there would purge into it). A
            // panic of `f` keeps the rest and is resumed after the lock.
            let mut handles = Vec::new();
            let removed: Vec<Entry<K, V>> = {
                let mut s = write(shard);
                let removed: Vec<_> = s
                    .table
                    .extract_if(|e| match e.key.upgrade() {
                        None => false,
                        Some(k) => {
                            let mut remove = false;
                            if panic.is_none() {
                                match catch_unwind(AssertUnwindSafe(|| f(&k, &mut e.value))) {
                                    Ok(keep) => remove = !keep,
                                    Err(p) => panic = Some(p),
                                }
                            }
                            handles.push(k);
                            remove
                        }
                    })
                    .collect();
                // Relaxed: see `Watch::died`.
                self.inner.len.fetch_sub(removed.len(), Relaxed);
                removed
            };
            for e in &removed {
                self.unwatch(i, e);
            }
            drop(removed);
            drop(handles);
            if let Some(p) = panic {
                resume_unwind(p);
            }
        }
    }

    /// Remove every entry.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(1);
    /// m.insert(&k, ());
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&self) {
        self.retain(|_, _| false);
    }

    /// A snapshot of the live entries: each key with a clone of its value.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(7);
    /// m.insert(&k, "seven");
    /// let v = m.to_vec();
    /// assert_eq!((*v[0].0, v[0].1), (7, "seven"));
    /// ```
    pub fn to_vec(&self) -> Vec<(Cc<K>, V)>
    where
        V: Clone,
    {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.inner.shards.iter() {
            let s = read(shard);
            for e in s.table.iter() {
                if let Some(k) = e.key.upgrade() {
                    out.push((k, e.value.clone()));
                }
            }
        }
        out
    }

    /// A snapshot of the live keys.
    ///
    /// ```
    /// let m = arcycle::WeakKeyMap::new();
    /// let k = arcycle::Cc::new(7);
    /// m.insert(&k, ());
    /// assert!(arcycle::Cc::ptr_eq(&m.keys()[0], &k));
    /// ```
    pub fn keys(&self) -> Vec<Cc<K>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.inner.shards.iter() {
            let s = read(shard);
            out.extend(s.table.iter().filter_map(|e| e.key.upgrade()));
        }
        out
    }
}

impl<K, V> Default for WeakKeyMap<K, V> {
    fn default() -> Self {
        WeakKeyMap::new()
    }
}

impl<K, V> fmt::Debug for WeakKeyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakKeyMap")
            .field("len", &self.len())
            .finish()
    }
}

impl<'a, K: Trace + Send + Sync + 'static, V: Send + Sync + 'static> Extend<(&'a Cc<K>, V)>
    for WeakKeyMap<K, V>
{
    fn extend<I: IntoIterator<Item = (&'a Cc<K>, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a, K: Trace + Send + Sync + 'static, V: Send + Sync + 'static> FromIterator<(&'a Cc<K>, V)>
    for WeakKeyMap<K, V>
{
    /// ```
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// let m: arcycle::WeakKeyMap<i32, &str> = [(&a, "a"), (&b, "b")].into_iter().collect();
    /// assert_eq!(m.get(&b), Some("b"));
    /// ```
    fn from_iter<I: IntoIterator<Item = (&'a Cc<K>, V)>>(iter: I) -> Self {
        let mut m = WeakKeyMap::new();
        m.extend(iter);
        m
    }
}

// SAFETY: reports no edges. The keys are weak (not edges); the values'
// edges are left out, which can only leak (see the type's docs on values
// that refer to their key). Under-reporting is always safe.
unsafe impl<K, V> Trace for WeakKeyMap<K, V> {
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

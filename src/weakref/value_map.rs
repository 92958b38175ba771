//! [`WeakValueMap`]: a map whose values are held weakly (Python's
//! `WeakValueDictionary`): the cache that never keeps its objects alive.
//!
//! # Guarantees
//!
//! * **Nothing dead is returned.** Every read upgrades the entry's
//!   [`Weak`] (or checks its strong count), so from an object's death
//!   instant on, no method returns it.
//! * **Dead entries go by themselves, in O(1).** Each entry is registered
//!   with its value's object (see the module `weakref`); the object's death
//!   path removes exactly that entry — identified by the shard, the key's
//!   hash and an id unique within the shard, so a purge can never remove a
//!   newer entry of the same key — and `len` stops counting it. Keys leave
//!   the map and are dropped after the shard lock is released.
//! * **`get_or_insert_with` constructs once per life.** The first caller
//!   for a key with no live value leaves a *pending* slot and builds the
//!   value outside every lock of the map, holding the pending slot's own
//!   mutex; racing callers wait on that mutex (not on the map) and get the
//!   same object. If the constructor panics, the slot is removed and a
//!   waiter builds instead.
//!
//! Guarded by the loom models `value_map_get_vs_last_drop` and
//! `purge_vs_reinsert`, and `tests/weakref.rs` (`value_map_*`).
//!
//! `get_or_insert_with` (the pending slot and its build) is in
//! `value_map/get_or_insert.rs`.

use super::{is_watch, map_shard, register, unregister, Reg, Token, Watch, MAP_SHARDS};
use crate::sync::{read, write, AtomicUsize, RwLock};
use crate::trace::Trace;
use crate::{Cc, Tracer, Weak};
use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

mod get_or_insert;
use get_or_insert::Pending;

enum Slot<V> {
    Live(Weak<V>),
    Pending(Arc<Pending<V>>),
}

struct Entry<K, V> {
    key: K,
    hash: u64,
    id: u64,
    /// The registry address of the value's object (0 while pending).
    addr: usize,
    slot: Slot<V>,
}

struct Shard<K, V> {
    table: HashTable<Entry<K, V>>,
    next_id: u64,
}

type Shards<K, V> = Box<[CachePadded<RwLock<Shard<K, V>>>]>;

struct Inner<K, V> {
    shards: Shards<K, V>,
    len: AtomicUsize,
    hasher: RandomState,
}

impl<K: Send + Sync, V: Send + Sync> Watch for Inner<K, V> {
    fn died(&self, token: Token) {
        let gone = {
            let mut shard = write(&self.shards[token.shard]);
            match shard.table.find_entry(token.hash, |e| e.id == token.id) {
                Ok(e) if matches!(e.get().slot, Slot::Live(_)) => {
                    // Relaxed: a statistic; every change is made under a
                    // shard lock.
                    self.len.fetch_sub(1, Relaxed);
                    Some(e.remove().0)
                }
                _ => None,
            }
        };
        // The key (user code) is dropped after the lock.
        drop(gone);
    }
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        let me = self as *const Self as *const ();
        for (i, shard) in self.shards.iter_mut().enumerate() {
            #[cfg(not(arcycle_loom))]
            let shard = shard.get_mut().unwrap_or_else(|e| e.into_inner());
            #[cfg(arcycle_loom)]
            let shard = &mut *write(shard);
            for e in shard.table.iter() {
                if let Slot::Live(_) = e.slot {
                    unwatch(me, i, e.addr, e.hash, e.id);
                }
            }
        }
    }
}

fn unwatch(me: *const (), shard: usize, addr: usize, hash: u64, id: u64) {
    let token = Token { shard, hash, id };
    unregister(addr, |r| is_watch(r, me, token));
}

/// A map whose values are held weakly, like Python's
/// `WeakValueDictionary`: an entry lives as long as its value's object.
///
/// [`len`](Self::len) counts live entries only; the entries of dead values
/// are removed by the values' deaths themselves (last drop or collection),
/// so the map never needs a rescan. It is sharded: `get` takes one read
/// lock of one shard, and threads working on different keys rarely meet.
///
/// # The cache pattern
///
/// ```
/// use arcycle::{Cc, WeakValueMap};
///
/// struct Image { path: String }
/// arcycle::leaf!(Image);
///
/// let cache: WeakValueMap<String, Image> = WeakValueMap::new();
/// let load = |path: &str| cache.get_or_insert_with(path.to_string(), || Image { path: path.into() });
///
/// let a = load("cat.png");
/// let b = load("cat.png"); // the same object: loaded once
/// assert!(Cc::ptr_eq(&a, &b));
/// assert_eq!(cache.len(), 1);
///
/// drop((a, b)); // nobody uses it any more: it leaves the cache
/// assert_eq!(cache.len(), 0);
/// assert!(cache.get("cat.png").is_none());
/// ```
pub struct WeakValueMap<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> WeakValueMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// let m: arcycle::WeakValueMap<u8, u8> = arcycle::WeakValueMap::new();
    /// assert!(m.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakValueMap {
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
                hasher: RandomState::new(),
            }),
        }
    }

    /// The number of entries whose value is alive (an entry stops counting
    /// when its value dies, before the drop or collection that killed it
    /// returns).
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(1);
    /// m.insert("k", &v);
    /// assert_eq!(m.len(), 1);
    /// drop(v);
    /// assert_eq!(m.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        // Relaxed: a snapshot of a value other threads change.
        self.inner.len.load(Relaxed)
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// ```
    /// let m: arcycle::WeakValueMap<u8, u8> = Default::default();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn me(&self) -> *const () {
        Arc::as_ptr(&self.inner) as *const ()
    }
}

impl<K, V> WeakValueMap<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Trace + Send + Sync + 'static,
{
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    fn watch(&self, value: &Cc<V>, shard: usize, hash: u64, id: u64) -> bool {
        let map: std::sync::Weak<dyn Watch> = Arc::downgrade(&self.inner) as _;
        let token = Token { shard, hash, id };
        register(value, Reg::Watch { map, token }).is_ok()
    }

    /// Map `key` to `value`'s object (held weakly), returning the live
    /// value it replaces. An object already destroyed by the collector
    /// (reachable only through a handle a destructor cloned) is not
    /// inserted.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// assert!(m.insert("k", &a).is_none());
    /// assert_eq!(m.insert("k", &b).as_deref(), Some(&1));
    /// ```
    pub fn insert(&self, key: K, value: &Cc<V>) -> Option<Cc<V>> {
        if super::is_dead(value) {
            return None;
        }
        let hash = self.hash(&key);
        let i = map_shard(hash);
        let addr = super::addr_of(value);
        let old = {
            let mut s = write(&self.inner.shards[i]);
            let id = s.next_id;
            s.next_id += 1;
            // Under the shard lock (lock order: map, then registry), so a
            // concurrent remove unregisters exactly what we registered.
            if !self.watch(value, i, hash, id) {
                return None;
            }
            let slot = Slot::Live(Cc::downgrade(value));
            match s.table.find_mut(hash, |e| e.key == key) {
                Some(e) => {
                    let old_id = std::mem::replace(&mut e.id, id);
                    let old_addr = std::mem::replace(&mut e.addr, addr);
                    let old = std::mem::replace(&mut e.slot, slot);
                    if let Slot::Pending(_) = old {
                        // Relaxed: see `Watch::died`.
                        self.inner.len.fetch_add(1, Relaxed);
                    }
                    Some((old_addr, old_id, old))
                }
                None => {
                    s.table.insert_unique(
                        hash,
                        Entry {
                            key,
                            hash,
                            id,
                            addr,
                            slot,
                        },
                        |e| e.hash,
                    );
                    self.inner.len.fetch_add(1, Relaxed);
                    None
                }
            }
        };
        match old {
            Some((old_addr, old_id, Slot::Live(w))) => {
                unwatch(self.me(), i, old_addr, hash, old_id);
                w.upgrade()
            }
            _ => None,
        }
    }

    fn get_hashed<Q>(&self, hash: u64, key: &Q) -> Option<Cc<V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let s = read(&self.inner.shards[map_shard(hash)]);
        match &s.table.find(hash, |e| e.key.borrow() == key)?.slot {
            Slot::Live(w) => w.upgrade(),
            Slot::Pending(_) => None,
        }
    }

    /// The value for `key`, if it is alive. Never waits for a value being
    /// built by [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(String::from("x"));
    /// m.insert(1, &v);
    /// assert_eq!(m.get(&1).as_deref().map(String::as_str), Some("x"));
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<Cc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_hashed(self.hash(key), key)
    }

    /// Whether `key` has a live value.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(0);
    /// m.insert('a', &v);
    /// assert!(m.contains_key(&'a'));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let s = read(&self.inner.shards[map_shard(hash)]);
        // The strong count, not an upgrade: a handle made here would have
        // to be dropped under the lock.
        matches!(s.table.find(hash, |e| e.key.borrow() == key),
            Some(Entry { slot: Slot::Live(w), .. }) if w.strong_count() > 0)
    }

    /// Remove `key`'s entry, returning its value if it is alive.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(3);
    /// m.insert("k", &v);
    /// assert_eq!(m.remove("k").as_deref(), Some(&3));
    /// assert!(m.remove("k").is_none());
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<Cc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let i = map_shard(hash);
        let e = {
            let mut s = write(&self.inner.shards[i]);
            let e = s
                .table
                .find_entry(hash, |e| e.key.borrow() == key)
                .ok()?
                .remove()
                .0;
            if let Slot::Live(_) = e.slot {
                // Relaxed: see `Watch::died`.
                self.inner.len.fetch_sub(1, Relaxed);
            }
            e
        };
        match e.slot {
            Slot::Live(w) => {
                unwatch(self.me(), i, e.addr, hash, e.id);
                w.upgrade()
            }
            Slot::Pending(_) => None,
        }
    }

    /// Keep only the entries for which `f(key, value)` is true; dead
    /// entries are skipped (their purge is under way). `f` runs under each
    /// shard's write lock in turn: it must not use this map, and handles
    /// it clones must not be dropped inside it.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// m.insert("a", &a);
    /// m.insert("b", &b);
    /// m.retain(|_, v| **v > 1);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&K, &Cc<V>) -> bool) {
        let mut panic = None;
        for (i, shard) in self.inner.shards.iter().enumerate() {
            let mut handles = Vec::new();
            let removed: Vec<Entry<K, V>> = {
                let mut s = write(shard);
                let removed: Vec<_> = s
                    .table
                    .extract_if(|e| {
                        let Slot::Live(w) = &e.slot else {
                            return false;
                        };
                        let Some(v) = w.upgrade() else {
                            return false;
                        };
                        let mut remove = false;
                        if panic.is_none() {
                            match catch_unwind(AssertUnwindSafe(|| f(&e.key, &v))) {
                                Ok(keep) => remove = !keep,
                                Err(p) => panic = Some(p),
                            }
                        }
                        handles.push(v);
                        remove
                    })
                    .collect();
                // Relaxed: see `Watch::died`.
                self.inner.len.fetch_sub(removed.len(), Relaxed);
                removed
            };
            for e in &removed {
                unwatch(self.me(), i, e.addr, e.hash, e.id);
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
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(1);
    /// m.insert(1, &v);
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&self) {
        self.retain(|_, _| false)
    }

    /// A snapshot of the live entries.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(1);
    /// m.insert("one", &v);
    /// let all = m.to_vec();
    /// assert_eq!((all[0].0, *all[0].1), ("one", 1));
    /// ```
    pub fn to_vec(&self) -> Vec<(K, Cc<V>)>
    where
        K: Clone,
    {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.inner.shards.iter() {
            let s = read(shard);
            for e in s.table.iter() {
                if let Slot::Live(w) = &e.slot {
                    if let Some(v) = w.upgrade() {
                        out.push((e.key.clone(), v));
                    }
                }
            }
        }
        out
    }

    /// A snapshot of the keys whose value is alive.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(1);
    /// m.insert("one", &v);
    /// assert_eq!(m.keys(), ["one"]);
    /// ```
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        self.to_vec().into_iter().map(|(k, _)| k).collect()
    }

    /// A snapshot of the live values.
    ///
    /// ```
    /// let m = arcycle::WeakValueMap::new();
    /// let v = arcycle::Cc::new(1);
    /// m.insert("one", &v);
    /// assert_eq!(*m.values()[0], 1);
    /// ```
    pub fn values(&self) -> Vec<Cc<V>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.inner.shards.iter() {
            let s = read(shard);
            for e in s.table.iter() {
                if let Slot::Live(w) = &e.slot {
                    out.extend(w.upgrade());
                }
            }
        }
        out
    }
}

impl<K, V> Default for WeakValueMap<K, V> {
    fn default() -> Self {
        WeakValueMap::new()
    }
}

impl<K, V> fmt::Debug for WeakValueMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakValueMap")
            .field("len", &self.len())
            .finish()
    }
}

impl<'a, K, V> Extend<(K, &'a Cc<V>)> for WeakValueMap<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Trace + Send + Sync + 'static,
{
    fn extend<I: IntoIterator<Item = (K, &'a Cc<V>)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a, K, V> FromIterator<(K, &'a Cc<V>)> for WeakValueMap<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Trace + Send + Sync + 'static,
{
    /// ```
    /// let (a, b) = (arcycle::Cc::new(1), arcycle::Cc::new(2));
    /// let m: arcycle::WeakValueMap<&str, i32> = [("a", &a), ("b", &b)].into_iter().collect();
    /// assert_eq!(m.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, &'a Cc<V>)>>(iter: I) -> Self {
        let mut m = WeakValueMap::new();
        m.extend(iter);
        m
    }
}

// SAFETY: reports no edges: the map holds its values weakly, and weak
// handles are not edges.
unsafe impl<K, V> Trace for WeakValueMap<K, V> {
    fn trace<'a>(&'a self, _: &mut Tracer<'a>) {}
}

//! A map with a fixed capacity that forgets its oldest entry to make room for a new one. The
//! counter's idempotency keys and the sessions live in one, so that no client, however many keys
//! or logins it sends, can grow the server's memory without bound.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// An insertion-ordered map of at most `capacity` entries.
#[derive(Debug)]
pub(super) struct BoundedMap<K, V> {
    /// Each entry with its insertion number, the key into `order`.
    entries: HashMap<K, (u64, V)>,
    /// Keys by insertion number: the first is the oldest, the next to go.
    order: BTreeMap<u64, K>,
    next_seq: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, if the map still holds it.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Inserts `key` as the newest entry, replacing any entry it had. When the map is full the
    /// oldest entry makes room, and is returned.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        self.remove(&key);
        let evicted = if self.entries.len() >= self.capacity {
            self.order
                .pop_first()
                .and_then(|(_, old)| self.entries.remove_entry(&old))
                .map(|(old, (_, value))| (old, value))
        } else {
            None
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.entries.insert(key, (seq, value));
        evicted
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (seq, value) = self.entries.remove(key)?;
        self.order.remove(&seq);
        Some(value)
    }

    /// The number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.entries.len(), self.order.len());
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_map_forgets_the_oldest() {
        let mut map = BoundedMap::new(2);
        assert_eq!(map.insert("a", 1), None);
        assert_eq!(map.insert("b", 2), None);
        assert_eq!(map.insert("c", 3), Some(("a", 1)));
        assert_eq!(
            (map.get("a"), map.get("b"), map.get("c")),
            (None, Some(&2), Some(&3))
        );
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn reinsert_makes_newest_and_remove_frees_room() {
        let mut map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.insert("a", 10), None);
        assert_eq!(map.insert("c", 3), Some(("b", 2)));
        assert_eq!(map.remove("a"), Some(10));
        assert_eq!(map.remove("a"), None);
        assert_eq!(map.insert("d", 4), None);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn zero_capacity_still_holds_one() {
        let mut map = BoundedMap::new(0);
        map.insert(1, "x");
        assert_eq!(map.insert(2, "y"), Some((1, "x")));
        assert_eq!(map.get(&2), Some(&"y"));
    }
}

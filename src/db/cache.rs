//! A short-lived, bounded memory of rows read from the database, for the signing path's reads before the token
//! (the signing core's recent reads).
//!
//! What it gives back may be out of date by up to its lifetime, or less when a writer forgets it: it is only for
//! reads whose every condition the ledger's transaction checks again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rows by key, each for `ttl` after it was read; at most `capacity` of them.
#[derive(Debug)]
pub struct Recent<K, V> {
    rows: Mutex<HashMap<K, (Instant, V)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Recent<K, V> {
        Recent {
            rows: Mutex::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    /// The row read for `key` less than `ttl` ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `value` for `key` from now. When full, the rows past their time go first, then all of them: the
    /// memory stays bounded whatever the keys a flood of requests names.
    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.len() >= self.capacity && !rows.contains_key(&key) {
            let ttl = self.ttl;
            rows.retain(|_, (at, _)| at.elapsed() < ttl);
            if rows.len() >= self.capacity {
                rows.clear();
            }
        }
        rows.insert(key, (Instant::now(), value));
    }

    /// Changes the row remembered for `key`, if there is one, keeping its time.
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = rows.get_mut(key) {
            change(v);
        }
    }

    /// Forgets the row of `key`.
    pub fn forget(&self, key: &K) {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_given_back_for_its_lifetime_and_the_memory_stays_bounded() {
        let recent: Recent<u32, &str> = Recent::new(Duration::from_millis(50), 3);
        recent.put(1, "one");
        assert_eq!(recent.get(&1), Some("one"));
        recent.update(&1, |v| *v = "uno");
        assert_eq!(recent.get(&1), Some("uno"));
        recent.forget(&1);
        assert_eq!(recent.get(&1), None);
        for k in 0..10 {
            recent.put(k, "x");
            assert!(recent.rows.lock().unwrap().len() <= 3);
        }
        recent.put(42, "late");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(recent.get(&42), None, "past its lifetime");
        let off: Recent<u32, &str> = Recent::new(Duration::ZERO, 3);
        off.put(1, "one");
        assert_eq!(off.get(&1), None, "a zero lifetime remembers nothing");
    }
}

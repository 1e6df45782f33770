//! [`ShardedTable`]: a bounded map from cache keys to values, for the memories a lookup may do
//! without (a guess, a key it can compute again), never for anything it must find. Shared by
//! all threads in tables picked by the key's first hex digit (keys are digests, so that
//! spreads them evenly), each behind a lock never waited for: a reader that finds its table
//! being written goes without, a writer that finds it busy does not write. A full table starts
//! over. A leaf: calls nothing else in the crate.

use std::collections::HashMap;
use std::sync::RwLock;

use cache_core::CacheKey;

/// Tables the keys are spread over, by their first hex digit.
const SHARDS: usize = 16;

type Table<V> = HashMap<CacheKey, V, foldhash::fast::RandomState>;

/// At most `capacity` values by cache key, forgotten a table at a time when full.
pub(crate) struct ShardedTable<V> {
    shards: [RwLock<Table<V>>; SHARDS],
    per_shard: usize,
}

impl<V> ShardedTable<V> {
    /// A table holding at most `capacity` values.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: Default::default(),
            per_shard: capacity / SHARDS,
        }
    }

    /// What `read` makes of the value under `key`; `None` when there is none, or its table is
    /// being written.
    pub(crate) fn read<R>(&self, key: &CacheKey, read: impl FnOnce(&V) -> Option<R>) -> Option<R> {
        self.shard(key).try_read().ok()?.get(key).and_then(read)
    }

    /// Keeps the value `make` gives under `key` (made only when its table is free), starting
    /// the table over when it is full.
    pub(crate) fn insert_with(&self, key: CacheKey, make: impl FnOnce() -> V) {
        if let Ok(mut table) = self.shard(&key).try_write() {
            if table.len() >= self.per_shard && !table.contains_key(&key) {
                table.clear();
            }
            table.insert(key, make());
        }
    }

    /// Forgets the value under `key` (unless its table is busy).
    pub(crate) fn remove(&self, key: &CacheKey) {
        if let Ok(mut table) = self.shard(key).try_write() {
            table.remove(key);
        }
    }

    /// Values held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|table| table.read().map_or(0, |table| table.len()))
            .sum()
    }

    fn shard(&self, key: &CacheKey) -> &RwLock<Table<V>> {
        &self.shards[shard_of(key)]
    }
}

/// The table of `key`, by its first hex digit's value.
fn shard_of(key: &CacheKey) -> usize {
    let first = key.as_str().chars().next().and_then(|c| c.to_digit(16));
    first.unwrap_or(0) as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose hex digits start with each of the sixteen go to sixteen tables.
    #[test]
    fn keys_spread_over_every_table() {
        let mut tables = std::collections::HashSet::new();
        for first in 0..16_u8 {
            tables.insert(shard_of(&CacheKey::from_digest([first << 4; 16])));
        }
        assert_eq!(tables.len(), SHARDS);
    }
}

//! [`MemoryStore`]: a bounded, concurrent, in-process store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use futures_core::stream::BoxStream;

use crate::error::StoreError;
use crate::key::CacheKey;
use crate::store::{CacheStore, EntryMeta, StoredEntry};
use crate::time::truncate_to_millis;

/// How many entries [`MemoryStore::new`] keeps before evicting.
pub const DEFAULT_MEMORY_CAPACITY: usize = 10_000;

/// An in-process store bounded by entry count, evicting the least valuable entries first
/// (quick_cache's CLOCK-PRO: recently and frequently read entries survive a scan).
///
/// Entries live as long as the store: nothing survives a restart. Reads hand out the stored
/// [`Bytes`](bytes::Bytes) without copying them.
///
/// ```
/// use cache_core::{CacheStore, MemoryStore};
/// let store = MemoryStore::with_capacity(1_000);
/// assert_eq!(store.capacity(), 1_000);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    entries: quick_cache::sync::Cache<CacheKey, StoredEntry>,
    capacity: usize,
}

impl MemoryStore {
    /// A store holding up to [`DEFAULT_MEMORY_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_MEMORY_CAPACITY)
    }

    /// A store holding up to `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
            capacity,
        }
    }

    /// The most entries this store keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        Ok(self.entries.get(key))
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.entries.insert(entry.meta.key, entry);
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(self.entries.remove(key).is_some())
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        // A snapshot: the cache's shards are locked one at a time while copying metadata.
        let metas: Vec<_> = self.entries.iter().map(|(_, e)| Ok(e.meta)).collect();
        Box::pin(futures_util::stream::iter(metas))
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let removed = self.entries.drain().count();
        Ok(removed as u64)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.entries.len() as u64)
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let removed = AtomicU64::new(0);
        self.entries.retain(|_, entry| {
            let keep = !entry.meta.is_expired(now);
            if !keep {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        Ok(removed.into_inner())
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let Some(mut entry) = self.entries.get(key) else {
            return Ok(false);
        };
        entry.meta.expires_at = expires_at.map(truncate_to_millis);
        self.entries.insert(*key, entry);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::entry;
    use bytes::Bytes;
    use futures_util::FutureExt;

    #[test]
    fn bounded_by_entry_count() {
        let store = MemoryStore::with_capacity(100);
        for n in 0..1_000 {
            store
                .put(entry(n, Bytes::from_static(b"v"), None))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
        let count = store.count().now_or_never().unwrap().unwrap();
        assert!(count <= 100, "{count} entries kept with capacity 100");
        assert!(
            count >= 50,
            "eviction keeps the store near capacity, kept {count}"
        );
    }
}

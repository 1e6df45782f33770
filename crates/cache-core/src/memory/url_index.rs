//! Which keys [`MemoryStore`](super::MemoryStore) holds for each URL group, so
//! `entries_for_url` reads a handful of entries instead of the whole store.
//!
//! Kept beside the cache, not inside it: entries leave the cache by eviction too, which
//! reports them through [`EvictionHook`] (called under a cache shard's lock, so it only takes
//! this index's own short locks and never calls back into the cache). A key may be listed a
//! little longer than it is stored (an overwrite into another group, a race between an insert
//! and its eviction); readers check each listed key against the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use crate::key::CacheKey;

/// Independent locks, so writes of different URLs rarely wait for each other.
const SHARDS: usize = 16;

/// Keys are digests: a fast hash is enough (SipHash was a tenth of a memory store write).
/// Most URLs have one entry, kept inline: no allocation per group.
type Groups = HashMap<CacheKey, SmallVec<[CacheKey; 1]>, foldhash::fast::RandomState>;

/// URL group → the keys stored in it.
#[derive(Debug, Default)]
pub(super) struct UrlIndex {
    shards: [Mutex<Groups>; SHARDS],
}

impl UrlIndex {
    fn shard(&self, group: &CacheKey) -> MutexGuard<'_, Groups> {
        self.shards[shard_of(group)]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn add(&self, group: &CacheKey, key: CacheKey) {
        let mut groups = self.shard(group);
        let keys = groups.entry(*group).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    pub(super) fn remove(&self, group: &CacheKey, key: &CacheKey) {
        let mut groups = self.shard(group);
        if let Some(keys) = groups.get_mut(group) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                groups.remove(group);
            }
        }
    }

    pub(super) fn keys(&self, group: &CacheKey) -> Vec<CacheKey> {
        self.shard(group)
            .get(group)
            .map(|keys| keys.to_vec())
            .unwrap_or_default()
    }

    pub(super) fn clear(&self) {
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clear();
        }
    }
}

/// The shard of a group: the value of its first hex digit (digests spread them evenly).
/// The digit's byte modulo 16 used only ten shards: `a`–`f` fell on 1–6.
fn shard_of(group: &CacheKey) -> usize {
    let first = char::from(group.as_str().as_bytes()[0]);
    first.to_digit(16).map_or(0, |digit| digit as usize) % SHARDS
}

/// Tells the index when the cache evicts an entry.
#[derive(Clone, Debug, Default)]
pub(super) struct EvictionHook {
    pub(super) index: Arc<UrlIndex>,
}

impl quick_cache::Lifecycle<CacheKey, super::Slot> for EvictionHook {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), key: CacheKey, slot: super::Slot) {
        if let Some(group) = &slot.meta().url_group {
            self.index.remove(group, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard is used, each by one first digit.
    #[test]
    fn groups_spread_over_every_shard() {
        let mut used = [0; SHARDS];
        for byte in 0..=255u8 {
            used[shard_of(&CacheKey::from_digest([byte; 16]))] += 1;
        }
        assert!(used.iter().all(|&n| n == 256 / SHARDS), "{used:?}");
    }
}

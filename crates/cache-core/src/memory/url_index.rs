//! Which keys [`MemoryStore`](super::MemoryStore) holds for each URL group, so
//! `entries_for_url` reads a handful of entries instead of the whole store.
//!
//! Kept beside the cache, not inside it: entries leave the cache by eviction too, which
//! reports them through [`EvictionHook`] (called under a cache shard's lock, so it only takes
//! this index's own short locks and never calls back into the cache). A key may be listed a
//! little longer than it is stored (an overwrite into another group, a race between an insert
//! and its eviction); readers check each listed key against the cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use crate::key::CacheKey;

/// Independent locks, so writes of different URLs rarely wait for each other.
const SHARDS: usize = 16;

/// Keys a group lists before it keeps them in a set.
const LISTED_UP_TO: usize = 8;

/// Keys are digests: a fast hash is enough (SipHash was a tenth of a memory store write).
type Fast = foldhash::fast::RandomState;
type Groups = HashMap<CacheKey, GroupKeys, Fast>;

/// The keys of one group. Most URLs have one entry, kept inline: no allocation per group.
/// Past [`LISTED_UP_TO`], a set: a URL cached under thousands of keys (one per credential,
/// per Vary variant) made every add and remove scan the list, quadratic over the group
/// (100,000 keys: seconds under one of the index's locks).
#[derive(Debug)]
enum GroupKeys {
    Listed(SmallVec<[CacheKey; 1]>),
    Set(HashSet<CacheKey, Fast>),
}

impl Default for GroupKeys {
    fn default() -> Self {
        Self::Listed(SmallVec::new())
    }
}

impl GroupKeys {
    fn insert(&mut self, key: CacheKey) {
        match self {
            Self::Listed(keys) if keys.contains(&key) => {}
            Self::Listed(keys) if keys.len() < LISTED_UP_TO => keys.push(key),
            Self::Listed(keys) => {
                let mut set: HashSet<CacheKey, Fast> = keys.drain(..).collect();
                set.insert(key);
                *self = Self::Set(set);
            }
            Self::Set(keys) => {
                keys.insert(key);
            }
        }
    }

    /// Removes `key`. A set gives back its room as it empties (a set keeps its capacity
    /// after removals): one left with a handful of keys becomes a list again, and one a
    /// quarter full halves. A URL that once had thousands of keys (a token per user) held
    /// room for all of them for as long as one stayed.
    fn remove(&mut self, key: &CacheKey) {
        match self {
            Self::Listed(keys) => keys.retain(|k| k != key),
            Self::Set(keys) => {
                keys.remove(key);
                if keys.len() <= LISTED_UP_TO / 2 {
                    *self = Self::Listed(keys.drain().collect());
                } else if keys.len() * 4 < keys.capacity() {
                    keys.shrink_to(keys.len() * 2);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Listed(keys) => keys.is_empty(),
            Self::Set(keys) => keys.is_empty(),
        }
    }

    fn to_vec(&self) -> Vec<CacheKey> {
        match self {
            Self::Listed(keys) => keys.to_vec(),
            Self::Set(keys) => keys.iter().copied().collect(),
        }
    }
}

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
        groups.entry(*group).or_default().insert(key);
    }

    pub(super) fn remove(&self, group: &CacheKey, key: &CacheKey) {
        let mut groups = self.shard(group);
        if let Some(keys) = groups.get_mut(group) {
            keys.remove(key);
            if keys.is_empty() {
                groups.remove(group);
            }
        }
    }

    pub(super) fn keys(&self, group: &CacheKey) -> Vec<CacheKey> {
        self.shard(group)
            .get(group)
            .map(GroupKeys::to_vec)
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

    /// A group answers as a list of its keys would, below and past the switch to a set:
    /// each key once, in any order, adds and removes in any order.
    #[test]
    fn a_group_holds_each_key_once_whatever_its_size() {
        let index = UrlIndex::default();
        let group = CacheKey::from_digest([7; 16]);
        let key = |n: u32| CacheKey::from_digest(u128::from(n).to_le_bytes());
        let sorted = |mut keys: Vec<CacheKey>| {
            keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            keys
        };
        for count in [1, LISTED_UP_TO as u32, LISTED_UP_TO as u32 + 1, 1_000] {
            for n in 0..count {
                index.add(&group, key(n));
                index.add(&group, key(n));
            }
            assert_eq!(
                sorted(index.keys(&group)),
                sorted((0..count).map(key).collect()),
                "{count}"
            );
            for n in (0..count).step_by(2) {
                index.remove(&group, &key(n));
            }
            let odd: Vec<CacheKey> = (0..count).filter(|n| n % 2 == 1).map(key).collect();
            assert_eq!(sorted(index.keys(&group)), sorted(odd), "{count}");
            for n in 0..count {
                index.remove(&group, &key(n));
            }
            assert!(index.keys(&group).is_empty());
            assert!(
                index.shard(&group).get(&group).is_none(),
                "an empty group goes"
            );
        }
    }

    /// Every shard is used, each by one first digit.
    #[test]
    fn groups_spread_over_every_shard() {
        let mut used = [0; SHARDS];
        for byte in 0..=255u8 {
            used[shard_of(&CacheKey::from_digest([byte; 16]))] += 1;
        }
        assert!(used.iter().all(|&n| n == 256 / SHARDS), "{used:?}");
    }

    /// A group that had thousands of keys gives its room back as they go: a list again with
    /// a few left, and a set about twice its keys' size on the way down.
    #[test]
    fn a_group_gives_back_its_room_as_keys_go() {
        let index = UrlIndex::default();
        let group = CacheKey::from_digest([9; 16]);
        let key = |n: u32| {
            let mut digest = [0u8; 16];
            digest[..4].copy_from_slice(&n.to_be_bytes());
            CacheKey::from_digest(digest)
        };
        for n in 0..10_000 {
            index.add(&group, key(n));
        }
        let capacity = |index: &UrlIndex| match index.shard(&group).get(&group) {
            Some(GroupKeys::Set(keys)) => Some(keys.capacity()),
            _ => None,
        };
        for n in 100..10_000 {
            index.remove(&group, &key(n));
        }
        let left = capacity(&index).expect("100 keys: a set");
        assert!(left <= 400, "room for {left} keys kept for 100");
        for n in 1..100 {
            index.remove(&group, &key(n));
        }
        assert!(capacity(&index).is_none(), "one key: a list again");
        assert_eq!(index.keys(&group), [key(0)]);
    }
}

//! [`VaryGuesses`]: the Vary index each URL key was last read with, so that a lookup that
//! waits for its store (a server, a blocking read) reads the variant it guesses together with
//! the index: one round trip where there were two. A guess is only that: the variant read
//! counts only when the index read beside it is the very index guessed from (see
//! [`lookup::find`](crate::lookup::find)), so a stale guess costs a read, never a wrong answer.
//!
//! Bounded (a full table starts over), shared by all threads in tables picked by the key,
//! each behind a lock never waited for: a lookup that finds its table busy goes without a
//! guess, or does not remember one. A leaf: calls nothing else in the crate.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cache_core::{CacheKey, VaryIndex};

/// Indexes remembered: about 100 bytes each (a key, a pointer, one or two header names), so
/// under 1 MB when full. Only URLs whose responses vary and whose store makes the lookup
/// wait are remembered.
const REMEMBERED: usize = 8_192;

/// Tables the keys are spread over, by their first hex digit.
const SHARDS: usize = 16;

const PER_SHARD: usize = REMEMBERED / SHARDS;

type Table = HashMap<CacheKey, Arc<VaryIndex>, foldhash::fast::RandomState>;

/// The last Vary index read under each URL key, for the lookups that wait for their store.
#[derive(Default)]
pub(crate) struct VaryGuesses {
    shards: [RwLock<Table>; SHARDS],
}

impl VaryGuesses {
    /// The index last read under `url_key`, if remembered (and its table not being written).
    pub(crate) fn get(&self, url_key: &CacheKey) -> Option<Arc<VaryIndex>> {
        self.shard(url_key).try_read().ok()?.get(url_key).cloned()
    }

    /// Remembers `index` as read under `url_key` (unless its table is busy).
    pub(crate) fn remember(&self, url_key: CacheKey, index: &VaryIndex) {
        if let Ok(mut table) = self.shard(&url_key).try_write() {
            if table.len() >= PER_SHARD && !table.contains_key(&url_key) {
                table.clear();
            }
            table.insert(url_key, Arc::new(index.clone()));
        }
    }

    /// Forgets `url_key`'s index: it holds none now.
    pub(crate) fn forget(&self, url_key: &CacheKey) {
        if let Ok(mut table) = self.shard(url_key).try_write() {
            table.remove(url_key);
        }
    }

    /// The table of `key`: keys are digests, so their first hex digit spreads them evenly.
    fn shard(&self, key: &CacheKey) -> &RwLock<Table> {
        let first = key.as_str().chars().next().and_then(|c| c.to_digit(16));
        &self.shards[first.unwrap_or(0) as usize % SHARDS]
    }
}

impl std::fmt::Debug for VaryGuesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaryGuesses").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn index(name: &'static str) -> VaryIndex {
        VaryIndex {
            headers: vec![HeaderName::from_static(name)],
            generation: 0,
        }
    }

    fn key(n: u32) -> CacheKey {
        let mut digest = [0u8; 16];
        digest[..4].copy_from_slice(&n.to_le_bytes());
        digest[15] = n as u8;
        CacheKey::from_digest(digest)
    }

    #[test]
    fn remembers_replaces_and_forgets() {
        let guesses = VaryGuesses::default();
        assert!(guesses.get(&key(1)).is_none());
        guesses.remember(key(1), &index("accept-encoding"));
        assert_eq!(*guesses.get(&key(1)).unwrap(), index("accept-encoding"));
        guesses.remember(key(1), &index("accept-language"));
        assert_eq!(*guesses.get(&key(1)).unwrap(), index("accept-language"));
        guesses.forget(&key(1));
        assert!(guesses.get(&key(1)).is_none());
    }

    /// However many URL keys are remembered, the tables hold at most [`REMEMBERED`], and the
    /// latest one remembered is always there.
    #[test]
    fn stays_bounded() {
        let guesses = VaryGuesses::default();
        for n in 0..(REMEMBERED as u32 * 3) {
            guesses.remember(key(n), &index("accept-encoding"));
            assert!(guesses.get(&key(n)).is_some());
        }
        let held: usize = guesses
            .shards
            .iter()
            .map(|table| table.read().unwrap().len())
            .sum();
        assert!(held <= REMEMBERED, "{held}");
    }
}

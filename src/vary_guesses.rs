//! [`VaryGuesses`]: the Vary index each URL key was last read with, so that a lookup that
//! waits for its store (a server, a blocking read) reads the variant it guesses together with
//! the index: one round trip where there were two. A guess is only that: the variant read
//! counts only when the index read beside it is the very write of the index guessed from
//! (see [`lookup::find`](crate::lookup::find)), so a stale guess costs a read, never a wrong
//! answer.
//!
//! Kept in a [`ShardedTable`]: bounded, and a lookup that finds its table busy goes without a
//! guess, or does not remember one. A leaf: calls nothing else in the crate but the table.

use std::sync::Arc;
use std::time::SystemTime;

use cache_core::{CacheKey, EntryMeta, VaryIndex};

use crate::sharded_table::ShardedTable;

/// Indexes remembered: about 100 bytes each with the usual one or two header names (about
/// 1 MB when full). Only URLs whose responses vary and whose store makes the lookup wait are
/// remembered.
const REMEMBERED: usize = 8_192;

/// An index as read: its header list and generation, and when it was written, which tells
/// one write of the same list from another (a URL invalidated and stored again).
#[derive(Debug, PartialEq)]
pub(crate) struct Guess {
    pub(crate) index: VaryIndex,
    written_at: SystemTime,
}

impl Guess {
    /// True when `index`, read with `meta`, is the write this guess was taken from.
    pub(crate) fn is_of(&self, meta: &EntryMeta, index: &VaryIndex) -> bool {
        self.written_at == meta.created_at && self.index == *index
    }
}

/// The last Vary index read under each URL key, for the lookups that wait for their store.
pub(crate) struct VaryGuesses {
    table: ShardedTable<Arc<Guess>>,
}

impl Default for VaryGuesses {
    fn default() -> Self {
        Self {
            table: ShardedTable::new(REMEMBERED),
        }
    }
}

impl VaryGuesses {
    /// The index last read under `url_key`, if remembered (and its table not being written).
    pub(crate) fn get(&self, url_key: &CacheKey) -> Option<Arc<Guess>> {
        self.table.read(url_key, |guess| Some(Arc::clone(guess)))
    }

    /// Remembers `index`, read with `meta` under `url_key` (unless its table is busy, or the
    /// index names more headers, or longer ones, than a response may vary on: a store's
    /// bytes may say anything, and each guess holds its index's list).
    pub(crate) fn remember(&self, url_key: CacheKey, meta: &EntryMeta, index: &VaryIndex) {
        if !index.is_within_limits() {
            return;
        }
        self.table.insert_with(url_key, || {
            Arc::new(Guess {
                index: index.clone(),
                written_at: meta.created_at,
            })
        });
    }

    /// Forgets `url_key`'s index: it holds none now (or its read failed).
    pub(crate) fn forget(&self, url_key: &CacheKey) {
        self.table.remove(url_key);
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

    fn meta(key: CacheKey, written_at: SystemTime) -> EntryMeta {
        EntryMeta::new(key, "https://h.test/v", written_at, None)
    }

    use cache_http::vary::MAX_VARY_NAMES;

    fn key(n: u32) -> CacheKey {
        let mut digest = [0u8; 16];
        digest[..4].copy_from_slice(&n.to_le_bytes());
        digest[15] = n as u8;
        CacheKey::from_digest(digest)
    }

    #[test]
    fn remembers_replaces_and_forgets() {
        let guesses = VaryGuesses::default();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert!(guesses.get(&key(1)).is_none());
        guesses.remember(key(1), &meta(key(1), t), &index("accept-encoding"));
        let guess = guesses.get(&key(1)).unwrap();
        assert!(guess.is_of(&meta(key(1), t), &index("accept-encoding")));
        assert!(!guess.is_of(&meta(key(1), t), &index("accept-language")));
        let later = t + std::time::Duration::from_millis(1);
        assert!(
            !guess.is_of(&meta(key(1), later), &index("accept-encoding")),
            "the same list written again is another index"
        );
        guesses.remember(key(1), &meta(key(1), later), &index("accept-language"));
        let guess = guesses.get(&key(1)).unwrap();
        assert!(guess.is_of(&meta(key(1), later), &index("accept-language")));
        guesses.forget(&key(1));
        assert!(guesses.get(&key(1)).is_none());
    }

    /// An index naming more headers than a response may vary on, or a longer one (bytes a
    /// store gave back, an index written before the name limit), is not held.
    #[test]
    fn an_index_of_too_many_or_too_long_names_is_not_held() {
        let guesses = VaryGuesses::default();
        let written = meta(key(1), SystemTime::UNIX_EPOCH);
        let named = |n: usize| VaryIndex {
            headers: (0..n)
                .map(|i| HeaderName::try_from(format!("x-{i}")).unwrap())
                .collect(),
            generation: 0,
        };
        guesses.remember(key(1), &written, &named(MAX_VARY_NAMES + 1));
        assert!(guesses.get(&key(1)).is_none());
        guesses.remember(key(1), &written, &named(MAX_VARY_NAMES));
        assert!(guesses.get(&key(1)).is_some());
        let long = |len: usize| VaryIndex {
            headers: vec![HeaderName::try_from("x".repeat(len)).unwrap()],
            generation: 0,
        };
        guesses.remember(key(2), &written, &long(VaryIndex::MAX_NAME_LEN + 1));
        assert!(guesses.get(&key(2)).is_none());
        guesses.remember(key(2), &written, &long(VaryIndex::MAX_NAME_LEN));
        assert!(guesses.get(&key(2)).is_some());
    }

    /// However many URL keys are remembered, the tables hold at most [`REMEMBERED`], and the
    /// latest one remembered is always there.
    #[test]
    fn stays_bounded() {
        let guesses = VaryGuesses::default();
        for n in 0..(REMEMBERED as u32 * 3) {
            let written = meta(key(n), SystemTime::UNIX_EPOCH);
            guesses.remember(key(n), &written, &index("accept-encoding"));
            assert!(guesses.get(&key(n)).is_some());
        }
        let held = guesses.table.len();
        assert!(held <= REMEMBERED, "{held}");
    }
}

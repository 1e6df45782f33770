//! The variants a deletion leaves unreachable: a lookup reaches a Vary variant only through
//! its index, so deleting an index orphans them, and whoever deletes entries deletes those
//! too.
//!
//! A variant is written with its index's URL group ([`EntryMeta::url_group`]) and names the
//! index ([`EntryMeta::variant_of`]), so the orphans of a few deleted entries are found
//! through the store's index of URLs, one lookup per URL, where a listing of every entry
//! found them before (after every `rm` of one URL: seconds, or a DynamoDB scan of the whole
//! table, at 100,000 entries).

use std::collections::HashSet;
use std::time::SystemTime;

use futures_util::StreamExt;

use crate::{CacheKey, CacheStore, EntryMeta, StoreError};

/// Past this many URLs, the orphans are found by one listing of every entry rather than
/// one lookup per URL: a bulk deletion (a purge of a host, of everything older than a
/// date) lists the store once, where as many lookups would cost more than the listing.
pub const LOOKUPS_BEFORE_LISTING: usize = 256;

/// The entries a deletion removed that may have been Vary indexes (every one that is no
/// variant), by URL group.
///
/// ```
/// use std::time::SystemTime;
/// use cache_core::orphans::DeletedParents;
/// use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoredEntry};
///
/// # futures_util::FutureExt::now_or_never(async {
/// let store = MemoryStore::new();
/// let key = |n: u8| CacheKey::from_digest([n; 16]);
/// let url = "https://example.com/a";
/// let meta = |n| EntryMeta::new(key(n), url, SystemTime::now(), None).with_url_group(Some(key(9)));
/// let index = meta(1);
/// let variant = meta(2).with_variant_of(Some(key(1)));
/// for meta in [&index, &variant] {
///     store.put(StoredEntry::new(meta.clone(), bytes::Bytes::new())).await.unwrap();
/// }
/// let started = SystemTime::now();
/// store.delete(&key(1)).await.unwrap();
/// let mut parents = DeletedParents::default();
/// parents.note(&index);
/// let orphans = parents.orphans(&store, started).await.unwrap();
/// assert_eq!(orphans.iter().map(|m| m.key).collect::<Vec<_>>(), [key(2)]);
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct DeletedParents {
    /// The URL groups of the noted entries.
    groups: HashSet<CacheKey>,
    /// Every noted entry.
    parents: HashSet<CacheKey>,
    /// A noted entry has no URL group: an index written before groups existed, whose
    /// variants written since carry the group of their URL, which is not known here.
    ungrouped: bool,
}

impl DeletedParents {
    /// Notes a deleted entry; a variant is no index, and is not kept.
    pub fn note(&mut self, deleted: &EntryMeta) {
        if deleted.variant_of.is_some() {
            return;
        }
        self.parents.insert(deleted.key);
        match deleted.url_group {
            Some(group) => {
                self.groups.insert(group);
            }
            None => self.ungrouped = true,
        }
    }

    /// True when no deleted entry may have had variants.
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// The URL groups to look up for the orphans, or `None` when every entry is to be
    /// listed instead: past [`LOOKUPS_BEFORE_LISTING`] groups, or when an entry without a
    /// group was noted (its variants' group is not known).
    pub fn lookups(&self) -> Option<impl Iterator<Item = &CacheKey>> {
        (!self.ungrouped && self.groups.len() <= LOOKUPS_BEFORE_LISTING).then(|| self.groups.iter())
    }

    /// Whether `meta` is a variant of a noted entry, created no later than `written_by` (a
    /// variant written since belongs to an index written since, not to one deleted).
    pub fn is_orphan(&self, meta: &EntryMeta, written_by: SystemTime) -> bool {
        meta.created_at <= written_by
            && meta
                .variant_of
                .is_some_and(|index| self.parents.contains(&index))
    }

    /// The orphans stored now ([`is_orphan`](Self::is_orphan)), found by
    /// [`lookups`](Self::lookups) or one listing. They still have to be deleted (by their
    /// creation time, so that a newer write stays).
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn orphans(
        &self,
        store: &dyn CacheStore,
        written_by: SystemTime,
    ) -> Result<Vec<EntryMeta>, StoreError> {
        let mut orphans = Vec::new();
        if let Some(groups) = self.lookups() {
            for group in groups {
                let found = store.entries_for_url(group).await?;
                orphans.extend(found.into_iter().filter(|m| self.is_orphan(m, written_by)));
            }
            return Ok(orphans);
        }
        let mut entries = store.entries();
        while let Some(meta) = entries.next().await {
            let meta = meta?;
            if self.is_orphan(&meta, written_by) {
                orphans.push(meta);
            }
        }
        Ok(orphans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use crate::fixtures::grouped_entry;

    /// Both ways of finding them (a lookup per URL, one listing past
    /// [`LOOKUPS_BEFORE_LISTING`] URLs) find the same orphans: the variants of the deleted
    /// indexes only, not another index's, not one written after the deletion began.
    #[tokio::test]
    async fn lookups_and_the_listing_find_the_same_orphans() {
        for urls in [3, LOOKUPS_BEFORE_LISTING as u64 + 1] {
            let store = MemoryStore::new();
            let mut parents = DeletedParents::default();
            let mut expected = Vec::new();
            for n in 0..urls {
                let index = grouped_entry(n * 4, n * 4, None);
                let variant = grouped_entry(n * 4 + 1, n * 4, Some(n * 4));
                let kept_index = grouped_entry(n * 4 + 2, n * 4, None);
                let not_orphan = grouped_entry(n * 4 + 3, n * 4, Some(n * 4 + 2));
                for entry in [&variant, &kept_index, &not_orphan] {
                    store.put(entry.clone()).await.unwrap();
                }
                parents.note(&index.meta);
                parents.note(&variant.meta);
                expected.push(variant.meta.key);
            }
            let started = SystemTime::now() + std::time::Duration::from_secs(1);
            let mut late = grouped_entry(urls * 4 + 5, 0, Some(0));
            late.meta.created_at = started + std::time::Duration::from_secs(1);
            store.put(late).await.unwrap();
            let mut found: Vec<CacheKey> = parents
                .orphans(&store, started)
                .await
                .unwrap()
                .into_iter()
                .map(|meta| meta.key)
                .collect();
            found.sort();
            expected.sort();
            assert_eq!(found, expected, "{urls} URLs");
        }
    }

    /// An index without a URL group (written before groups existed) whose variants, written
    /// since, carry their URL's group: its variants are orphans too, found by a listing.
    #[tokio::test]
    async fn the_variants_of_an_index_without_a_group_are_found() {
        let store = MemoryStore::new();
        let mut index = grouped_entry(1, 1, None);
        index.meta.url_group = None;
        let variant = grouped_entry(2, 1, Some(1));
        let other = grouped_entry(3, 1, Some(9));
        for entry in [&variant, &other] {
            store.put(entry.clone()).await.unwrap();
        }
        let mut parents = DeletedParents::default();
        parents.note(&index.meta);
        assert!(parents.lookups().is_none(), "listed");
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        let found: Vec<CacheKey> = parents
            .orphans(&store, later)
            .await
            .unwrap()
            .into_iter()
            .map(|meta| meta.key)
            .collect();
        assert_eq!(found, [variant.meta.key]);
    }
}

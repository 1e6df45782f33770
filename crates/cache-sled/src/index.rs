//! The index trees beside `records`, and the records one entry has in them.
//!
//! The `records` record is the truth; index records only point at it. They are written before
//! the record and removed after it, so a record that can be read is always indexed (also after
//! a crash: sled recovers a prefix of its log). The other way round is allowed: an index
//! record whose entry is gone, or now carries another time or URL group, is *stale*, and
//! whoever reads the index checks it against the entry and drops it.

use cache_core::time::to_millis;
use cache_core::{CacheKey, EntryMeta};

use crate::record::{group_key, time_key};

/// The index trees.
#[derive(Debug, Clone)]
pub(crate) struct IndexTrees {
    /// Expiry time ++ key: `delete_expired` visits only expired entries.
    pub(crate) expiry: sled::Tree,
    /// Creation time ++ key: the eviction order under a byte bound.
    pub(crate) created: sled::Tree,
    /// URL group ++ key: `entries_for_url`.
    pub(crate) groups: sled::Tree,
}

/// The index records standing for one entry's metadata.
#[derive(Debug, PartialEq)]
pub(crate) struct IndexRecords {
    expiry: Option<Vec<u8>>,
    /// Only in a store that keeps the creation index (see `SledStore::keeps_counts`).
    created: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
}

impl IndexRecords {
    /// The records of `meta`; its creation record only `with_created`.
    pub(crate) fn of(meta: &EntryMeta, with_created: bool) -> Self {
        let key = &meta.key;
        Self {
            expiry: meta.expires_at.map(|t| time_key(to_millis(t), key)),
            created: with_created.then(|| time_key(to_millis(meta.created_at), key)),
            group: meta.url_group.map(|group| group_key(&group, key)),
        }
    }

    /// Writes the records of `self`, also those the entry's previous metadata had too: one
    /// lost earlier (a `clear` of a database written by an older version while it wrote) is
    /// restored by the next write of the key.
    pub(crate) fn insert_all(&self, trees: &IndexTrees) -> Result<(), sled::Error> {
        for (tree, record, _) in self.records(trees, None) {
            tree.insert(record, &[] as &[u8])?;
        }
        Ok(())
    }

    /// Removes the records of `self` that `kept` (the entry's new records) does not share.
    pub(crate) fn remove_unshared(
        &self,
        trees: &IndexTrees,
        kept: Option<&Self>,
    ) -> Result<(), sled::Error> {
        for (tree, record, kept) in self.records(trees, kept) {
            if kept != Some(record) {
                tree.remove(record)?;
            }
        }
        Ok(())
    }

    /// Each record of `self` with its tree and `other`'s record in that tree.
    fn records<'a>(
        &'a self,
        trees: &'a IndexTrees,
        other: Option<&'a Self>,
    ) -> impl Iterator<Item = (&'a sled::Tree, &'a [u8], Option<&'a [u8]>)> {
        let expiry = self.expiry.as_deref().map(|record| {
            let other = other.and_then(|o| o.expiry.as_deref());
            (&trees.expiry, record, other)
        });
        let group = self.group.as_deref().map(|record| {
            let other = other.and_then(|o| o.group.as_deref());
            (&trees.groups, record, other)
        });
        let created = self.created.as_deref().map(|record| {
            let other = other.and_then(|o| o.created.as_deref());
            (&trees.created, record, other)
        });
        expiry.into_iter().chain(group).chain(created)
    }
}

/// The time of `meta` that an index tree orders by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IndexedTime {
    Expiry,
    Created,
}

impl IndexedTime {
    /// Whether `meta` carries `ms` as this time: whether an index record of `ms` for `meta`'s
    /// key is current.
    pub(crate) fn is(self, meta: &EntryMeta, ms: i64) -> bool {
        match self {
            IndexedTime::Expiry => meta.expires_at.map(to_millis) == Some(ms),
            IndexedTime::Created => to_millis(meta.created_at) == ms,
        }
    }

    pub(crate) fn tree(self, trees: &IndexTrees) -> &sled::Tree {
        match self {
            IndexedTime::Expiry => &trees.expiry,
            IndexedTime::Created => &trees.created,
        }
    }
}

/// Whether a `groups` record of `group` is current for `meta`.
pub(crate) fn in_group(meta: &EntryMeta, group: &CacheKey) -> bool {
    meta.url_group.as_ref() == Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn trees() -> (sled::Db, IndexTrees) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = IndexTrees {
            expiry: db.open_tree("expiry").unwrap(),
            created: db.open_tree("created").unwrap(),
            groups: db.open_tree("groups").unwrap(),
        };
        (db, trees)
    }

    fn meta(created: u64, expires: Option<u64>, group: Option<u8>) -> EntryMeta {
        let key = CacheKey::from_digest([7; 16]);
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        EntryMeta::new(key, "https://e.com/", at(created), expires.map(at))
            .with_url_group(group.map(|g| CacheKey::from_digest([g; 16])))
    }

    fn sizes(trees: &IndexTrees) -> [usize; 3] {
        [trees.expiry.len(), trees.created.len(), trees.groups.len()]
    }

    #[test]
    fn a_rewrite_keeps_one_record_per_tree_and_a_removal_leaves_none() {
        let (_db, trees) = trees();
        let mut current = IndexRecords::of(&meta(1, Some(5), Some(1)), true);
        current.insert_all(&trees).unwrap();
        assert_eq!(sizes(&trees), [1, 1, 1]);
        // Same group with new times; then no expiry and another group.
        for next in [meta(2, Some(6), Some(1)), meta(3, None, Some(2))] {
            let new = IndexRecords::of(&next, true);
            new.insert_all(&trees).unwrap();
            current.remove_unshared(&trees, Some(&new)).unwrap();
            assert!(
                trees
                    .created
                    .contains_key(new.created.as_ref().unwrap())
                    .unwrap()
            );
            current = new;
        }
        assert_eq!(sizes(&trees), [0, 1, 1]);
        current.remove_unshared(&trees, None).unwrap();
        assert_eq!(sizes(&trees), [0, 0, 0]);
    }

    #[test]
    fn unchanged_records_are_not_removed_and_lost_ones_come_back() {
        let (_db, trees) = trees();
        let same = IndexRecords::of(&meta(1, Some(5), Some(1)), true);
        same.insert_all(&trees).unwrap();
        same.remove_unshared(&trees, Some(&same)).unwrap();
        assert_eq!(sizes(&trees), [1, 1, 1]);
        trees.groups.clear().unwrap();
        trees.expiry.clear().unwrap();
        same.insert_all(&trees).unwrap();
        assert_eq!(sizes(&trees), [1, 1, 1]);
    }

    #[test]
    fn indexed_times_match_only_their_own_field() {
        let m = meta(1, Some(5), Some(1));
        assert!(IndexedTime::Created.is(&m, 1000));
        assert!(!IndexedTime::Created.is(&m, 5000));
        assert!(IndexedTime::Expiry.is(&m, 5000));
        assert!(!IndexedTime::Expiry.is(&meta(1, None, None), 5000));
        assert!(in_group(&m, &CacheKey::from_digest([1; 16])));
        assert!(!in_group(
            &meta(1, None, None),
            &CacheKey::from_digest([1; 16])
        ));
    }
}

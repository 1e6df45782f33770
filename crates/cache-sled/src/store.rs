//! [`SledStore`]: the [`CacheStore`] over a sled database.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies};
use cache_core::store::DecodedEntry;
use cache_core::time::to_millis;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;

use crate::index::{IndexRecords, IndexTrees, IndexedTime, in_group};
use crate::locks::{self, DatabaseLocks};
use crate::record::{
    BodyRef, body_ref, decode_pointer, decode_record, decode_record_meta, decode_total,
    encode_meta, encode_pointer, key_of_group_key, key_of_record_key, record_key, record_of,
    split_time_key, stored_len, time_bound, time_key, written_record,
};

/// Values up to this size are written on the calling task (see `put`).
const QUICK_MAX_VALUE: usize = 128 * 1024;

/// Values of at least this size are kept in the `bodies` tree, under an id in write order,
/// and their record points there. sled rewrites a whole node (up to 16 records) as it
/// consolidates it: records keyed by a digest land in nodes all over the tree, and one
/// holding large values was rewritten with all of them at each write to it. A 64 KiB miss
/// added 257-290 µs over plain reqwest in a database already holding small entries, where a
/// tree keyed in write order (sled's own floor) added 115 µs. Bodies keyed in write order
/// are written into one node at a time, as there.
const ELSEWHERE_FROM: usize = 16 * 1024;

/// How many records one `entries()` step reads.
const PAGE_SIZE: usize = 512;

/// The `totals` key holding the bytes of all `records` values and their bodies.
const LIVE_BYTES: &[u8] = b"live_bytes";

/// The tree earlier versions kept metadata in (now read from the records): dropped on open.
const LEGACY_META_TREE: &str = "meta";

/// The tree of records by cache key (see [`record_key`]).
const RECORDS_TREE: &str = "records";

/// The tree of large values (see [`ELSEWHERE_FROM`]).
const BODIES_TREE: &str = "bodies";

/// The tree earlier versions kept records in, keyed by the key's 32 hex digits: its records
/// move to [`RECORDS_TREE`] on open, and it is dropped.
const LEGACY_ENTRIES_TREE: &str = "entries";

/// A listed record: its raw key (where the next page starts) and its metadata, if readable.
type ListedRecord = (Vec<u8>, Option<EntryMeta>);

/// Builds a [`SledStore`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SledStoreBuilder {
    flush_every_write: bool,
    max_bytes: Option<u64>,
    decoded_copies: Option<u64>,
}

impl SledStoreBuilder {
    /// Wait for sled to flush to disk after every write (default off: sled flushes every
    /// 500 ms, and a crash can lose the last half second of writes).
    pub fn flush_every_write(mut self, on: bool) -> Self {
        self.flush_every_write = on;
        self
    }

    /// Bound the stored entries to about this many bytes (default: unbounded). When a write
    /// takes them past the bound, the oldest entries (by creation) are deleted until they fit
    /// in 95 % of it. sled returns the freed space to the file system as its segment cleaner
    /// rewrites the log, not at once.
    ///
    /// Only a bounded store keeps the count of stored bytes and the creation order that
    /// eviction reads (two writes to sled per cache write). Opening a database with a bound
    /// after it was written without one counts its records again (a scan at open).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Keep decoded copies of entries read again (a key is kept from its second read, or from
    /// its write when the writer hands over its response: `put_decoded`), up to
    /// about `max_bytes` of memory (default [`DEFAULT_DECODED_COPIES_BYTES`], 32 MiB;
    /// 0 keeps none): a read whose record is unchanged then skips decoding. Every read still
    /// reads sled and compares, so a copy never outlives a change. The copies share sled's
    /// buffers while sled holds them.
    pub fn decoded_copies(mut self, max_bytes: u64) -> Self {
        self.decoded_copies = Some(max_bytes);
        self
    }

    /// Opens (creating if needed) the database directory at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the directory cannot be opened or is locked by another
    /// process (sled allows one process per database). Reopening in the same process right
    /// after dropping every handle can also find it locked for a moment, while sled's shared
    /// I/O threads finish the dropped database's last writes: retry, or keep one handle (and
    /// share it with [`SledStoreBuilder::with_db`]).
    pub fn open(self, path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let db = sled::open(path).map_err(StoreError::unavailable)?;
        self.with_db(db)
    }

    /// Uses a database you already opened (its trees `records`, `bodies`, `expiry`,
    /// `created`, `groups` and `totals`). The records of a database written by an earlier
    /// version (in a tree `entries`, keyed by text) move to `records` here, and its `meta`
    /// tree is dropped. An earlier version opening the database afterwards finds no entries
    /// (it starts empty, as a cache may); this version, opened again after it, moves what it
    /// wrote, and indexes and counts every record anew (the earlier version's sweeps took
    /// this version's index records for stale ones, and its `clear` did not reach them).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the trees cannot be opened.
    pub fn with_db(self, db: sled::Db) -> Result<SledStore, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(StoreError::unavailable);
        let totals = tree("totals")?;
        let locks = DatabaseLocks::of(&totals)?;
        let store = SledStore {
            entries: tree(RECORDS_TREE)?,
            bodies: tree(BODIES_TREE)?,
            indexes: IndexTrees {
                expiry: tree("expiry")?,
                created: tree("created")?,
                groups: tree("groups")?,
            },
            totals,
            db,
            flush_every_write: self.flush_every_write,
            max_bytes: self.max_bytes,
            copies: Arc::new(DecodedCopies::new(
                self.decoded_copies.unwrap_or(DEFAULT_DECODED_COPIES_BYTES),
            )),
            locks,
        };
        store.settle_at_open()?;
        // Its records are all in `records` too (written with them, in one transaction, into the
        // `entries` tree this store's open has moved).
        store
            .db
            .drop_tree(LEGACY_META_TREE)
            .map_err(StoreError::unavailable)?;
        Ok(store)
    }
}

/// A [`CacheStore`] in a sled database. Cheap to clone (sled handles are shared).
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    /// Key digest ([`record_key`]) → metadata and value: the truth (see `index`).
    entries: sled::Tree,
    /// Body id → a value of at least [`ELSEWHERE_FROM`] bytes, which its record points to.
    bodies: sled::Tree,
    indexes: IndexTrees,
    totals: sled::Tree,
    flush_every_write: bool,
    max_bytes: Option<u64>,
    /// Decoded forms of recently read records. Shared by clones.
    copies: Arc<DecodedCopies>,
    /// The clear and bounded-write locks of this database (see `locks`).
    locks: Arc<DatabaseLocks>,
}

impl SledStore {
    /// Opens the database at `path` with the default settings.
    ///
    /// # Errors
    ///
    /// As [`SledStoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open(path)
    }

    /// A builder.
    pub fn builder() -> SledStoreBuilder {
        SledStoreBuilder::default()
    }

    /// The bytes this store's decoded copies weigh now (values and the header copies they
    /// hold; see [`SledStoreBuilder::decoded_copies`]): memory beside the store's data, bounded by the builder's
    /// setting, and given back as entries are deleted.
    pub fn decoded_copies_bytes(&self) -> u64 {
        self.copies.weight()
    }

    /// The sled database, for sharing it with other trees of yours.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Runs `f` on Tokio's blocking pool: writes (a large value, an eviction loop) and scans
    /// can take long, and must neither stall the executor nor escape the middleware's store
    /// timeout. Reads by key stay on the calling task: they come from sled's page cache.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&SledStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(StoreError::backend)?
    }

    /// [`CacheStore::put`], returning the record as sled holds it.
    async fn put_record(&self, entry: StoredEntry) -> Result<sled::IVec, StoreError> {
        // A small write without a bound is a few in-memory inserts (sled writes its log from
        // its own threads): done here, without the hop to the blocking pool, which cost
        // more than the write. Bounded writes may evict thousands of entries: pool.
        let record = if self.max_bytes.is_none() && entry.value.len() <= QUICK_MAX_VALUE {
            self.write(&entry)?.1
        } else {
            self.blocking(move |store| {
                store.within_bound(|store| {
                    let (live, record) = store.write(&entry)?;
                    Ok((Some(live), record))
                })
            })
            .await?
        };
        self.flushed().await?;
        Ok(record)
    }

    async fn flushed(&self) -> Result<(), StoreError> {
        if self.flush_every_write {
            self.db.flush_async().await.map_err(store_error)?;
        }
        Ok(())
    }

    /// The bytes of all stored values (with their metadata): as kept in the `totals` tree by
    /// a store with a bound; counted from the records (a scan of the database, sharing sled's
    /// buffers) by one without, which keeps no count (see [`SledStoreBuilder::max_bytes`]).
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        if self.keeps_counts() {
            let total = self.totals.get(LIVE_BYTES).map_err(store_error)?;
            return Ok(total.as_deref().map(decode_total).unwrap_or_default());
        }
        self.entries
            .iter()
            .values()
            .try_fold(0u64, |total, record| {
                let record = record.map_err(store_error)?;
                Ok(total.saturating_add(stored_len(&record)))
            })
    }

    /// Whether writes keep the byte count and the creation index, which only the eviction of
    /// a bounded store reads: each cost a sled write per cache write, together about a third
    /// of an unbounded store's write. A store with a bound keeps them, and so does every
    /// store on its database in this process once it is open. Read holding
    /// [`DatabaseLocks::writing`] or [`DatabaseLocks::counting`].
    fn keeps_counts(&self) -> bool {
        self.max_bytes.is_some() || self.locks.counts_kept()
    }

    /// At open, under the counting lock (no write runs, and no other store's open on this
    /// database comes between the steps): moves an earlier version's records
    /// ([`SledStore::move_legacy_records`]), then settles the byte count.
    ///
    /// - Where an earlier version had the database open since (its tree is there), nothing
    ///   of the count or the index records is trusted: it sees this version's records as
    ///   absent, so its sweeps drop their index records as stale, and its writes and
    ///   `clear` change the count without them. Every record is indexed again and the count
    ///   made anew (a store without a bound leaves it deleted).
    /// - A store that keeps the counts (see [`SledStore::keeps_counts`]) rebuilds them (and
    ///   the creation index) when the database has no count, or one of another length:
    ///   written before the count existed, or last written by stores without a bound.
    /// - One that does not keep them deletes the count and the creation index, so that a
    ///   later bounded open, in this version or an earlier one, rebuilds them rather than
    ///   trusting what its writes did not keep.
    /// - The first open in a process that finds the database left open by another (one that
    ///   crashed, was killed, or exited without dropping its stores: see
    ///   [`DatabaseLocks::mark_open`], which marks it open by this one before anything else)
    ///   goes over every record too: the writes under way may have left bodies no record
    ///   points to (which nothing else would ever reach in a store without a bound) and a
    ///   byte count off by their records.
    ///
    /// A bounded store marks the database as keeping counts only once they are rebuilt: a
    /// failed open leaves the stores already open as they were. Last, the body ids go on
    /// past every body the database holds (see [`SledStore::free_body_id`]), and this
    /// process's mark is its to remove from now on (see [`DatabaseLocks::settled`]).
    fn settle_at_open(&self) -> Result<(), StoreError> {
        let _alone = self.locks.counting();
        let mark = self.locks.mark_open().map_err(store_error)?;
        let earlier_version = self.move_legacy_records()?;
        let keeps = self.keeps_counts();
        let total = self.totals.get(LIVE_BYTES).map_err(store_error)?;
        let counted = !earlier_version && total.is_some_and(|total| total.len() == 8);
        if !keeps {
            self.totals.remove(LIVE_BYTES).map_err(store_error)?;
            self.indexes.created.clear().map_err(store_error)?;
        }
        if (keeps && !counted) || earlier_version || mark.left_open {
            self.rebuild_alone(Rebuild {
                counts: keeps,
                indexes: earlier_version,
            })?;
            if keeps {
                self.locks.counted_again();
            }
        }
        if earlier_version {
            // Last: every record moved is indexed again.
            self.db
                .drop_tree(LEGACY_ENTRIES_TREE)
                .map_err(StoreError::unavailable)?;
        }
        if self.max_bytes.is_some() {
            self.locks.keep_counts();
        }
        // No write runs: the counter passes every body there is, before any can go.
        self.locks.body_ids_from(self.first_free_body_id()?);
        self.locks.settled(mark);
        Ok(())
    }

    /// Counts the live bytes again from the records: each readable record is counted and its
    /// creation indexed (where the index lacks it, eviction never reaches it); an unreadable
    /// one is deleted, as a read of it does. The count drifts when a crash keeps a record's
    /// write but not the count's (two entries of sled's log), or the other way round; an
    /// over-count made every bounded write evict every entry. Called by the first eviction in
    /// a process unless the open counted (no count, or one of another length: the open's own
    /// [`SledStore::rebuild_alone`]), and again by an eviction that finds the count off; every write waits for
    /// it (a write landing during the count changed the total the count then replaced: a
    /// stress test of puts, deletes and evictions was off by a record in 1 run of 6).
    fn recount_live_bytes(&self) -> Result<u64, StoreError> {
        let _alone = self.locks.counting();
        self.rebuild_alone(Rebuild {
            counts: true,
            indexes: false,
        })
    }

    /// Moves the records of a database written by an earlier version (keyed by text, in
    /// [`LEGACY_ENTRIES_TREE`]) to `records`; true when the tree was there (an earlier version
    /// had the database open: see [`SledStore::settle_at_open`], which drops the tree once
    /// every record is indexed again). For [`SledStore::settle_at_open`], holding the
    /// counting lock. A record there is newer than one under its key in `records` (the tree
    /// is dropped whenever this version opens the database, so an earlier version wrote it
    /// since) and replaces it, the body of the one replaced going too. A move or an indexing
    /// cut short by a crash goes on at the next open, which finds the tree still there.
    fn move_legacy_records(&self) -> Result<bool, StoreError> {
        let named = |name: &[u8]| name == LEGACY_ENTRIES_TREE.as_bytes();
        if !self.db.tree_names().iter().any(|name| named(name)) {
            return Ok(false);
        }
        let legacy = self
            .db
            .open_tree(LEGACY_ENTRIES_TREE)
            .map_err(StoreError::unavailable)?;
        let mut moved = 0u64;
        for item in legacy.iter() {
            let (k, record) = item.map_err(store_error)?;
            let key = std::str::from_utf8(&k)
                .ok()
                .and_then(|k| k.parse::<CacheKey>().ok());
            // Bytes under a key that is none were never a record: dropped.
            if let Some(key) = key {
                let replaced = self
                    .entries
                    .insert(record_key(&key), record)
                    .map_err(store_error)?;
                if let Some(body) = replaced.as_deref().and_then(body_ref) {
                    self.remove_body(body.id)?;
                }
                moved += 1;
            }
            legacy.remove(&k).map_err(store_error)?;
        }
        if moved > 0 {
            tracing::info!(moved, "sled cache records moved to the digest-keyed tree");
        }
        Ok(true)
    }

    /// One pass over every record, for a caller holding the counting lock (no write runs):
    /// an unreadable record is deleted with its body; each readable one is counted and, as
    /// `rebuild` asks, its creation indexed (`counts`) or all its index records written
    /// again (`indexes`); then the bodies no record points to (left by a crash between a
    /// body's write and its record's) are deleted, and, with `counts`, the count written.
    /// Returns the live bytes.
    fn rebuild_alone(&self, rebuild: Rebuild) -> Result<u64, StoreError> {
        #[cfg(test)]
        if rebuild.counts {
            self.locks
                .counts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut total = 0u64;
        let mut bodies = std::collections::HashSet::new();
        for item in self.entries.iter() {
            let (k, record) = item.map_err(store_error)?;
            let meta = key_of_record_key(&k).and_then(|key| decode_record_meta(key, &record));
            let Some(meta) = meta else {
                tracing::warn!("unreadable sled cache record: deleted");
                self.entries.remove(&k).map_err(store_error)?;
                continue;
            };
            total = total.saturating_add(stored_len(&record));
            if let Some(body) = body_ref(&record) {
                bodies.insert(body.id);
            }
            if rebuild.indexes {
                IndexRecords::of(&meta, rebuild.counts)
                    .insert_all(&self.indexes)
                    .map_err(store_error)?;
            } else if rebuild.counts {
                let index = time_key(to_millis(meta.created_at), &meta.key);
                self.indexes
                    .created
                    .insert(index, &[] as &[u8])
                    .map_err(store_error)?;
            }
        }
        for id in self.bodies.iter().keys() {
            let id = id.map_err(store_error)?;
            let known = <[u8; 8]>::try_from(&id[..]).is_ok_and(|id| bodies.contains(&id));
            if !known {
                self.remove_body(&id)?;
            }
        }
        if rebuild.counts {
            self.totals
                .insert(LIVE_BYTES, &total.to_le_bytes())
                .map_err(store_error)?;
        }
        Ok(total)
    }

    /// Removes `key`'s record, then its index records; true when it existed.
    fn remove(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let _writing = self.locks.writing()?;
        let _key = locks::key(key);
        self.remove_locked(key)
    }

    /// Removes `key`'s record if it was written at `created_at` (milliseconds): not one
    /// written since. True when it was removed.
    fn remove_if_created(&self, key: &CacheKey, created_at: i64) -> Result<bool, StoreError> {
        let _writing = self.locks.writing()?;
        let _key = locks::key(key);
        if !self.created_at_is(key, created_at)? {
            return Ok(false);
        }
        self.remove_locked(key)
    }

    /// Whether `key`'s record is readable and was written at `created_at` (milliseconds),
    /// for a caller holding the key's lock.
    fn created_at_is(&self, key: &CacheKey, created_at: i64) -> Result<bool, StoreError> {
        let current = self.entries.get(record_key(key)).map_err(store_error)?;
        Ok(current
            .and_then(|record| decode_record_meta(*key, &record))
            .is_some_and(|meta| to_millis(meta.created_at) == created_at))
    }

    /// Writes `entry` if `key`'s record was written at `created_at` (milliseconds), under
    /// the key's lock: no write through this store comes between the check and the write.
    /// The live bytes after the write, or `None` when nothing was written.
    fn write_if_created(
        &self,
        entry: &StoredEntry,
        created_at: i64,
    ) -> Result<Option<u64>, StoreError> {
        let key = entry.meta.key;
        let record = self.prepare_within_bound(entry)?;
        let _writing = self.locks.writing()?;
        let _key = locks::key(&key);
        if !self.created_at_is(&key, created_at)? {
            return Ok(None);
        }
        let (live, _) = self.write_locked(&entry.meta, record)?;
        Ok(Some(live))
    }

    /// Removes `key`'s record if it is still `seen`, the unreadable record a read found (a
    /// write may have replaced it meanwhile).
    fn remove_unreadable(&self, key: &CacheKey, seen: &[u8]) -> Result<(), StoreError> {
        let _writing = self.locks.writing()?;
        let _key = locks::key(key);
        let current = self.entries.get(record_key(key)).map_err(store_error)?;
        if current.as_deref() == Some(seen) {
            tracing::warn!(%key, "unreadable sled record: deleting it");
            self.remove_locked(key)?;
        }
        Ok(())
    }

    /// Removes the body under `id`. One that cannot be removed is left with no record
    /// pointing to it: the database stays marked open (see [`DatabaseLocks::keep_open_mark`])
    /// so that the next process's open drops it.
    fn remove_body(&self, id: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.bodies.remove(id).map(drop).map_err(|error| {
            self.locks.keep_open_mark();
            store_error(error)
        })
    }

    /// [`SledStore::remove`], for a caller already holding `key`'s lock.
    fn remove_locked(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let removed = self.entries.remove(record_key(key)).map_err(store_error)?;
        let Some(old) = removed else {
            return Ok(false);
        };
        self.copies.forget(key);
        if let Some(body) = body_ref(&old) {
            self.remove_body(body.id)?;
        }
        let counted = self.keeps_counts();
        if counted {
            self.add_live_bytes(0, stored_len(&old))?;
        }
        // An unreadable record's index records stay, stale: their readers drop them.
        if let Some(meta) = decode_record_meta(*key, &old) {
            IndexRecords::of(&meta, counted)
                .remove_unshared(&self.indexes, None)
                .map_err(store_error)?;
        }
        Ok(true)
    }

    /// Writes the entry and its index records; returns the live bytes after the write (0 in a
    /// store that keeps no count: see [`SledStore::keeps_counts`]) and
    /// the record as sled now holds it (the same buffer: sled's reads hand it out again).
    ///
    /// Not one sled transaction: each of those rolls sled's I/O buffer twice, two log writes
    /// per cache write, which made a write four times slower. The new index records go
    /// first, then the record, then the old index records it no longer has (known from the
    /// record the insert replaced), all under the key's lock (see `index` and `locks`).
    fn write(&self, entry: &StoredEntry) -> Result<(u64, sled::IVec), StoreError> {
        let key = entry.meta.key;
        let record = self.prepare_within_bound(entry)?;
        let _writing = self.locks.writing()?;
        let _key = locks::key(&key);
        self.write_locked(&entry.meta, record)
    }

    /// Runs `write`, which answers the live bytes after it (`None` when it wrote nothing)
    /// beside its own result, then evicts the oldest entries past the bound, if any. Bounded
    /// writes run one at a time (with several at once each would see the others' bytes and
    /// the store would overshoot by all of them); unbounded ones take no lock.
    fn within_bound<T>(
        &self,
        write: impl FnOnce(&Self) -> Result<(Option<u64>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let _bounded = self.max_bytes.map(|_| self.locks.bounded_write());
        let (live, written) = write(self)?;
        if let Some(max) = self
            .max_bytes
            .filter(|max| live.is_some_and(|live| live > *max))
        {
            self.evict_oldest_beyond(max)?;
        }
        Ok(written)
    }

    /// `entry`'s record (and body, for a large value: see [`ELSEWHERE_FROM`]), refused when
    /// it alone is over the bound: it would evict everything, itself included.
    fn prepare_within_bound(&self, entry: &StoredEntry) -> Result<Prepared, StoreError> {
        let prepared = if entry.value.len() >= ELSEWHERE_FROM {
            let body = BodyRef {
                id: self.free_body_id()?,
                len: entry.value.len() as u64,
            };
            Prepared {
                record: sled::IVec::from(encode_pointer(&encode_meta(&entry.meta), body)),
                body: Some(sled::IVec::from(&entry.value[..])),
            }
        } else {
            Prepared {
                record: record_of(entry),
                body: None,
            }
        };
        StoreError::check_size(stored_len(&prepared.record), self.max_bytes)?;
        Ok(prepared)
    }

    /// A body id no body has, in write order, and none given out before in this process:
    /// a read holding a record whose body went never finds another in its place. Given out
    /// by the database's locks (a counter set past the last body at each open, see
    /// [`SledStore::settle_at_open`]), not by sled's `generate_id`, which makes sled's log
    /// durable (an `fsync`) once every million ids, on the calling task for a quick write.
    /// A body already under the id (imported into the open database) moves the counter past
    /// the last body.
    fn free_body_id(&self) -> Result<[u8; 8], StoreError> {
        loop {
            let id = self
                .locks
                .next_body_id()
                .ok_or_else(|| StoreError::backend("the sled store has no body id left"))?
                .to_be_bytes();
            if !self.bodies.contains_key(id).map_err(store_error)? {
                return Ok(id);
            }
            self.locks.body_ids_from(self.first_free_body_id()?);
        }
    }

    /// The id after the last body's (0 without bodies). A key that is no id (not 8 bytes)
    /// is read as the id its first bytes begin.
    fn first_free_body_id(&self) -> Result<u64, StoreError> {
        let Some((last, _)) = self.bodies.last().map_err(store_error)? else {
            return Ok(0);
        };
        let mut id = [0u8; 8];
        let len = last.len().min(8);
        id[..len].copy_from_slice(&last[..len]);
        Ok(u64::from_be_bytes(id).saturating_add(1))
    }

    /// Sets the expiry of `key`'s record as it is now, under its lock: a read and a write
    /// apart (the trait's default) put the record read back over one written, or deleted,
    /// in between.
    fn set_expiry_locked(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let _writing = self.locks.writing()?;
        let _key = locks::key(key);
        let Some(current) = self.entries.get(record_key(key)).map_err(store_error)? else {
            return Ok(false);
        };
        // A record pointing to its body is written again pointing to the same body.
        if let Some(body) = body_ref(&current) {
            let Some(mut meta) = decode_record_meta(*key, &current) else {
                return Ok(false);
            };
            meta.expires_at = expires_at;
            let record = sled::IVec::from(encode_pointer(&encode_meta(&meta), body));
            self.write_locked(&meta, Prepared { record, body: None })?;
            return Ok(true);
        }
        let Some((mut entry, _)) = decode_record(*key, current) else {
            return Ok(false);
        };
        entry.meta.expires_at = expires_at;
        let record = record_of(&entry);
        self.write_locked(&entry.meta, Prepared { record, body: None })?;
        Ok(true)
    }

    /// [`SledStore::write`] of `prepared`, made of `meta`, for a caller holding the locks.
    /// A body goes in first, as index records do: a record that can be read has its body.
    /// The body of the record replaced goes last, unless the new record points to it too.
    fn write_locked(
        &self,
        meta: &EntryMeta,
        prepared: Prepared,
    ) -> Result<(u64, sled::IVec), StoreError> {
        let Prepared { record, body } = prepared;
        let key = meta.key;
        let new_body = body_ref(&record);
        let fresh_body = body.is_some();
        if let (Some(body), Some(at)) = (body, new_body) {
            // Never over another record's body: ids are checked free when taken, and this
            // keeps one imported meanwhile.
            let none: Option<&[u8]> = None;
            self.bodies
                .compare_and_swap(at.id, none, Some(body))
                .map_err(store_error)?
                .map_err(|_| StoreError::backend("a sled body id is taken by another body"))?;
        }
        let counted = self.keeps_counts();
        let new_indexes = IndexRecords::of(meta, counted);
        let inserted = new_indexes
            .insert_all(&self.indexes)
            .and_then(|()| self.entries.insert(record_key(&key), record.clone()));
        let replaced = match inserted {
            Ok(replaced) => replaced,
            Err(error) => {
                // A new body's id is this write's alone, and its record did not go in.
                if let (true, Some(at)) = (fresh_body, new_body) {
                    let _ = self.remove_body(at.id);
                }
                return Err(store_error(error));
            }
        };
        let live = match counted {
            true => self
                .add_live_bytes(
                    stored_len(&record),
                    replaced.as_ref().map_or(0, |old| stored_len(old)),
                )
                // The count is off by this write: the next open counts the records again.
                .inspect_err(|_| self.locks.keep_open_mark()),
            false => Ok(0),
        };
        // The record is in: what it replaced goes even when the count failed (its error is
        // the write's then), else the old body stayed, pointed to by no record, for good.
        if let Some(old) = replaced {
            if let Some(old_body) = body_ref(&old).filter(|old| Some(*old) != new_body) {
                self.remove_body(old_body.id)?;
            }
            if let Some(old) = decode_record_meta(key, &old) {
                IndexRecords::of(&old, counted)
                    .remove_unshared(&self.indexes, Some(&new_indexes))
                    .map_err(store_error)?;
            }
        }
        Ok((live?, record))
    }

    /// Adds `added` bytes to the live total and takes `removed` off; returns the new total.
    fn add_live_bytes(&self, added: u64, removed: u64) -> Result<u64, StoreError> {
        #[cfg(test)]
        if self
            .locks
            .fail_next_count
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Err(StoreError::backend(
                "the live byte count could not be written",
            ));
        }
        let mut live = 0;
        self.totals
            .update_and_fetch(LIVE_BYTES, |total| {
                // A missing count (or one of another length) is unknown, not zero: it stays
                // missing, and the next bounded open counts the records.
                let total = total.filter(|total| total.len() == 8).map(decode_total)?;
                live = total.saturating_sub(removed).saturating_add(added);
                Some(live.to_le_bytes().to_vec())
            })
            .map_err(store_error)?;
        Ok(live)
    }

    /// Settles one record of a time index: deletes its entry when the entry still carries
    /// that time, or cannot be read (true), else drops the record as stale (false).
    fn settle_time_record(&self, which: IndexedTime, index_key: &[u8]) -> Result<bool, StoreError> {
        let tree = which.tree(&self.indexes);
        let Some((ms, key)) = split_time_key(index_key) else {
            // Not ours: dropped so it is not visited again.
            tree.remove(index_key).map_err(store_error)?;
            return Ok(false);
        };
        let _writing = self.locks.writing()?;
        let _key = locks::key(&key);
        match self.current(&key)? {
            Current::Meta(meta) if which.is(&meta, ms) => self.remove_locked(&key),
            Current::Unreadable => self.remove_locked(&key),
            Current::Meta(_) | Current::Absent => {
                tree.remove(index_key).map_err(store_error)?;
                Ok(false)
            }
        }
    }

    /// Looks again, under the key's lock, at a `groups` record that looked stale: the
    /// entry's metadata when a write made it current meanwhile; else the record is dropped
    /// (and an unreadable entry deleted).
    fn recheck_group_record(
        &self,
        key: &CacheKey,
        group: &CacheKey,
        index_key: &[u8],
    ) -> Result<Option<EntryMeta>, StoreError> {
        let _writing = self.locks.writing()?;
        let _key = locks::key(key);
        match self.current(key)? {
            Current::Meta(meta) if in_group(&meta, group) => return Ok(Some(meta)),
            Current::Unreadable => {
                self.remove_locked(key)?;
            }
            Current::Meta(_) | Current::Absent => {}
        }
        self.indexes.groups.remove(index_key).map_err(store_error)?;
        Ok(None)
    }

    /// What `key`'s record is now.
    fn current(&self, key: &CacheKey) -> Result<Current, StoreError> {
        let Some(record) = self.entries.get(record_key(key)).map_err(store_error)? else {
            return Ok(Current::Absent);
        };
        Ok(decode_record_meta(*key, &record).map_or(Current::Unreadable, Current::Meta))
    }

    /// Deletes the oldest entries until the live bytes fit in 95 % of `max`.
    fn evict_oldest_beyond(&self, max: u64) -> Result<(), StoreError> {
        let target = max / 20 * 19;
        let mut recounted = self.locks.first_eviction();
        let mut live = if recounted {
            self.recount_live_bytes()?
        } else {
            self.live_bytes()?
        };
        let mut oldest = self.indexes.created.iter().keys();
        while live > target {
            let Some(index) = oldest.next() else {
                // Every indexed entry is gone and the count still says over: it drifted (see
                // `recount_live_bytes`; an edit of the database since the first eviction).
                // Counted again, then evicted by once more.
                if recounted {
                    break;
                }
                recounted = true;
                live = self.recount_live_bytes()?;
                oldest = self.indexes.created.iter().keys();
                continue;
            };
            let index = index.map_err(store_error)?;
            if self.settle_time_record(IndexedTime::Created, &index)? {
                live = self.live_bytes()?;
            }
        }
        Ok(())
    }

    /// The record under `key`; an unreadable one is deleted and reported as absent.
    fn read(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let Some(record) = self.entries.get(record_key(key)).map_err(store_error)? else {
            return Ok(None);
        };
        Ok(self.readable(key, record)?.map(|(entry, _)| entry))
    }

    /// The record under `key` decoded: the kept copy when the record is the one it came from
    /// (the record holds the metadata too, so one comparison covers both).
    fn read_decoded(&self, key: &CacheKey, codec: &EntryCodec) -> Result<DecodedEntry, StoreError> {
        let copy = self.copies.kept_prefetched(key, codec);
        let Some(record) = self.entries.get(record_key(key)).map_err(store_error)? else {
            // Deleted elsewhere (another program): so is its copy's use.
            self.copies.forget_unused(key, copy);
            return Ok(None);
        };
        // A large value's entry gets no copy: the copy would weigh its record alone, while
        // holding the body.
        let elsewhere = body_ref(&record).is_some();
        if elsewhere {
            self.copies.forget_unused(key, copy);
        } else if let Some(kept) = self.copies.answer(key, copy, &record, |_| true) {
            return Ok(Some(Ok(kept)));
        }
        let Some((entry, whole)) = self.readable(key, record)? else {
            return Ok(None);
        };
        if elsewhere {
            return Ok(Some(entry.decode(key, codec)));
        }
        Ok(Some(self.copies.decode(key, entry, whole, codec)))
    }

    /// `record` as an entry and the whole record's bytes; an unreadable one is deleted and
    /// reported as absent.
    fn readable(
        &self,
        key: &CacheKey,
        record: sled::IVec,
    ) -> Result<Option<(StoredEntry, bytes::Bytes)>, StoreError> {
        self.readable_or_current(key, record, true)
    }

    /// [`SledStore::readable`]; a record whose body is gone was replaced or deleted since it
    /// was read (its body goes after it), and `again` reads the key's current record once
    /// (a hot key rewritten meanwhile is still a hit). One still there is broken, and goes.
    fn readable_or_current(
        &self,
        key: &CacheKey,
        record: sled::IVec,
        again: bool,
    ) -> Result<Option<(StoredEntry, bytes::Bytes)>, StoreError> {
        // Clones of the handles, not of the bytes.
        let read = match body_ref(&record) {
            None => decode_record(*key, record.clone()),
            Some(at) => match self.bodies.get(at.id).map_err(store_error)? {
                Some(body) => decode_pointer(*key, record.clone(), at, body),
                None if again => {
                    let current = self.entries.get(record_key(key)).map_err(store_error)?;
                    match current.filter(|current| *current != record) {
                        Some(current) => return self.readable_or_current(key, current, false),
                        None => None,
                    }
                }
                None => None,
            },
        };
        if read.is_none() {
            self.remove_unreadable(key, &record)?;
        }
        Ok(read)
    }

    /// The metadata of one page of records after `after` (values are not copied: sled
    /// shares its buffers).
    fn meta_page(&self, after: &[u8]) -> Result<Vec<ListedRecord>, StoreError> {
        use std::ops::Bound;
        self.entries
            .range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded))
            .take(PAGE_SIZE)
            .map(|item| {
                let (k, record) = item.map_err(store_error)?;
                let meta = key_of_record_key(&k).and_then(|key| decode_record_meta(key, &record));
                Ok((k.to_vec(), meta))
            })
            .collect()
    }
}

#[async_trait]
impl CacheStore for SledStore {
    /// The store's `max_bytes`, when set: a value over it would be all it holds.
    fn max_value_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.read(key)
    }

    /// sled reads from its page cache on the calling thread: the middleware's hit path needs
    /// no future for it.
    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        Some(self.read_decoded(key, codec))
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.put_record(entry).await.map(drop)
    }

    /// Written as [`CacheStore::put`], then the writer's response is kept as the entry's
    /// decoded copy (when copies are kept), against the record as written: its first read
    /// decodes nothing. A write racing this one is harmless: a copy answers only a read of
    /// the very record it was made from.
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: cache_core::CachedResponse,
    ) -> Result<(), StoreError> {
        if !self.copies.keeps_copies() {
            return self.put(entry).await;
        }
        let meta = entry.meta.clone();
        let record = self.put_record(entry).await?;
        // A bounded write may evict its own record (the oldest, or one near the whole bound):
        // it then gets no copy, which could never answer and would only hold memory.
        let evicted = || {
            !self
                .entries
                .contains_key(record_key(&meta.key))
                .unwrap_or(false)
        };
        if self.max_bytes.is_some() && evicted() {
            return Ok(());
        }
        if let Some((written, whole)) = written_record(meta, record) {
            self.copies.keep_written_record(&written, whole, response);
        }
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let key = *key;
        let removed = self.blocking(move |store| store.remove(&key)).await?;
        self.flushed().await?;
        Ok(removed)
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let key = *key;
        let renewed = self
            .blocking(move |store| store.set_expiry_locked(&key, expires_at))
            .await?;
        self.flushed().await?;
        Ok(renewed)
    }

    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let created_at = to_millis(created_at);
        let written = self
            .blocking(move |store| {
                store.within_bound(|store| {
                    let live = store.write_if_created(&entry, created_at)?;
                    Ok((live, live.is_some()))
                })
            })
            .await?;
        self.flushed().await?;
        Ok(written)
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let (key, created_at) = (*key, to_millis(created_at));
        let removed = self
            .blocking(move |store| store.remove_if_created(&key, created_at))
            .await?;
        self.flushed().await?;
        Ok(removed)
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let url_group = *url_group;
        self.blocking(move |store| {
            let mut found = Vec::new();
            let groups = &store.indexes.groups;
            for index in groups.scan_prefix(url_group.as_str()).keys() {
                let index = index.map_err(store_error)?;
                let Some(key) = key_of_group_key(&index) else {
                    continue;
                };
                let current = match store.current(&key)? {
                    Current::Meta(meta) if in_group(&meta, &url_group) => Some(meta),
                    _ => store.recheck_group_record(&key, &url_group, &index)?,
                };
                found.extend(current);
            }
            Ok(found)
        })
        .await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        let pages = futures_util::stream::try_unfold(Some(Vec::new()), move |after| async move {
            let Some(after) = after else { return Ok(None) };
            let page = self.meta_page(&after)?;
            let next = (page.len() == PAGE_SIZE).then(|| page[page.len() - 1].0.clone());
            let metas: Vec<Result<EntryMeta, StoreError>> = page
                .into_iter()
                .filter_map(|(_, meta)| meta.map(Ok))
                .collect();
            Ok(Some((futures_util::stream::iter(metas), next)))
        });
        Box::pin(futures_util::TryStreamExt::try_flatten(pages))
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let store = self.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let _alone = store.locks.clearing();
            let n = store.entries.len() as u64;
            let trees = [
                &store.entries,
                &store.bodies,
                &store.indexes.expiry,
                &store.indexes.created,
                &store.indexes.groups,
            ];
            for tree in trees {
                tree.clear().map_err(store_error)?;
            }
            store.copies.clear();
            // A store keeping no count leaves none (see `settle_at_open`).
            if store.keeps_counts() {
                store
                    .totals
                    .insert(LIVE_BYTES, &0u64.to_le_bytes())
                    .map_err(store_error)?;
            }
            Ok::<_, StoreError>(n)
        })
        .await
        .map_err(StoreError::backend)??;
        self.flushed().await?;
        Ok(removed)
    }

    /// On the blocking pool: sled counts a tree by reading every record of it (seconds for
    /// a million entries), which held the runtime thread, past any store timeout.
    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|store| Ok(store.entries.len() as u64)).await
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let removed = self
            .blocking(move |store| {
                // Only the expired part of the index is visited.
                let bound = time_bound(to_millis(now));
                let mut removed = 0;
                for index in store.indexes.expiry.range(..bound).keys() {
                    let index = index.map_err(store_error)?;
                    if store.settle_time_record(IndexedTime::Expiry, &index)? {
                        removed += 1;
                    }
                }
                Ok(removed)
            })
            .await?;
        self.flushed().await?;
        Ok(removed)
    }
}

/// What a key's record is, as an index reader checks it.
enum Current {
    Absent,
    Unreadable,
    Meta(EntryMeta),
}

/// What [`SledStore::rebuild_alone`] does beside counting: index every record's creation
/// and keep the count (`counts`), write all of every record's index records (`indexes`).
#[derive(Clone, Copy)]
struct Rebuild {
    counts: bool,
    indexes: bool,
}

/// A write made ready before taking the key's lock: the record, and the body it points to
/// when the value is kept apart (see [`ELSEWHERE_FROM`]).
struct Prepared {
    record: sled::IVec,
    body: Option<sled::IVec>,
}

fn store_error(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(_) => StoreError::unavailable(error),
        other => StoreError::backend(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn key(n: u8) -> CacheKey {
        CacheKey::from_digest([n; 16])
    }

    fn entry(n: u8, created: u64, expires: Option<u64>, group: u8) -> StoredEntry {
        let url = format!("https://e.com/{n}");
        let meta = EntryMeta::new(key(n), url, at(created), expires.map(at))
            .with_url_group(Some(key(group)));
        StoredEntry::new(meta, Bytes::from(vec![n; 100]))
    }

    fn store() -> SledStore {
        let db = sled::Config::new().temporary(true).open().expect("db");
        SledStore::builder().with_db(db).expect("store")
    }

    /// A store that keeps the byte count and the creation index: one with a bound, never
    /// reached.
    fn counted_store() -> SledStore {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let store = SledStore::builder().max_bytes(u64::MAX);
        store.with_db(db).expect("store")
    }

    /// A write whose count of live bytes fails after its record went in still removes the
    /// body of the record it replaced (and its index records): the write reports the error,
    /// and the new entry is what is read. The old body stayed, pointed to by no record.
    #[tokio::test]
    async fn a_failed_count_still_removes_the_replaced_body() {
        let store = counted_store();
        let large = |n: u8| {
            let meta = EntryMeta::new(key(1), "https://e.com/large", at(u64::from(n)), None)
                .with_url_group(Some(key(n)));
            StoredEntry::new(meta, Bytes::from(vec![n; ELSEWHERE_FROM]))
        };
        store.put(large(1)).await.unwrap();
        assert_eq!(store.bodies.len(), 1);
        store
            .locks
            .fail_next_count
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(store.put(large(2)).await.is_err(), "the count's error");
        assert_eq!(store.bodies.len(), 1, "the replaced body is gone");
        let read = store.get(&key(1)).await.unwrap().expect("the new entry");
        assert_eq!(read.value, vec![2; ELSEWHERE_FROM]);
        assert!(store.entries_for_url(&key(1)).await.unwrap().is_empty());
        assert_eq!(store.entries_for_url(&key(2)).await.unwrap().len(), 1);
    }

    /// A response written with `put_decoded` is the entry's decoded copy from the write on,
    /// compared against sled's own record: the first read returns that copy (no decoding),
    /// equal to decoding the record; an entry written as bytes alone has none; a later write
    /// of other bytes is read as those bytes, not as the copy.
    #[tokio::test]
    async fn a_written_response_is_the_first_read_s_copy() {
        let store = store();
        let codec = EntryCodec::new();
        let response = cache_core::testing::sample_response();
        let value = codec.encode(Some(&key(1)), &response).unwrap();
        let written = |n: u8, value: &Bytes| {
            let meta = EntryMeta::new(key(n), "https://e.com/w", at(1), None);
            StoredEntry::new(meta, value.clone())
        };
        let read_now = |n: u8| {
            store
                .get_decoded_now(&key(n), &codec)
                .expect("sled answers at once")
                .unwrap()
                .expect("stored")
                .expect("decodes")
        };
        let copy_of = |n: u8| {
            let record = store.entries.get(record_key(&key(n))).unwrap().unwrap();
            store.copies.get(&key(n), &record, &codec, |_| true)
        };
        store
            .put_decoded(written(1, &value), response.clone())
            .await
            .unwrap();
        let kept = copy_of(1).expect("kept at the write");
        let read = read_now(1);
        assert!(Arc::ptr_eq(&kept, &read), "the first read decoded anew");
        let decoded = written(1, &value).decode(&key(1), &codec).unwrap();
        assert_eq!(*read, *decoded);
        store.put(written(2, &value)).await.unwrap();
        assert!(copy_of(2).is_none());
        let mut changed = response;
        changed.body = Bytes::from_static(b"changed");
        let other = codec.encode(Some(&key(1)), &changed).unwrap();
        store.put(written(1, &other)).await.unwrap();
        let cache_core::Entry::Response(read) = &read_now(1).entry else {
            panic!("not a response");
        };
        assert_eq!(read.body, "changed");
    }

    /// What a crash between a write's steps leaves: index records whose entry is gone or
    /// has other times and groups. Each reader of an index drops them and acts only on what
    /// the entries say.
    #[tokio::test]
    async fn stale_index_records_are_dropped_by_the_readers_and_never_acted_on() {
        let store = store();
        store.put(entry(1, 10, Some(20), 9)).await.unwrap();
        store.put(entry(2, 11, Some(5_000_000), 9)).await.unwrap();
        let stale = [
            // No entry at all.
            (&store.indexes.expiry, time_key(to_millis(at(15)), &key(3))),
            (
                &store.indexes.groups,
                crate::record::group_key(&key(9), &key(3)),
            ),
            (&store.indexes.created, time_key(to_millis(at(1)), &key(3))),
            // Entry 2 with an earlier expiry, creation and another group than it has.
            (&store.indexes.expiry, time_key(to_millis(at(16)), &key(2))),
            (
                &store.indexes.groups,
                crate::record::group_key(&key(8), &key(2)),
            ),
            (&store.indexes.created, time_key(to_millis(at(2)), &key(2))),
        ];
        for (tree, record) in &stale {
            tree.insert(record, &[] as &[u8]).unwrap();
        }
        // Entry 2 is listed once under its own group, not under the stale one.
        let in_9: Vec<CacheKey> = store
            .entries_for_url(&key(9))
            .await
            .unwrap()
            .iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(in_9, [key(1), key(2)]);
        assert!(store.entries_for_url(&key(8)).await.unwrap().is_empty());
        // Only entry 1 really expired by then; the stale expiry of entry 2 spares it.
        assert_eq!(store.delete_expired(at(1_000)).await.unwrap(), 1);
        assert!(store.get(&key(1)).await.unwrap().is_none());
        assert!(store.get(&key(2)).await.unwrap().is_some());
        // The stale records the readers met are gone (eviction, which reads `created`, is
        // the next test); entry 2's own records are intact.
        for (tree, record) in &stale {
            if tree.name() != store.indexes.created.name() {
                assert!(!tree.contains_key(record).unwrap(), "{:?}", tree.name());
            }
        }
        assert_eq!(store.indexes.expiry.len(), 1);
        assert_eq!(store.indexes.groups.len(), 1);
    }

    /// Eviction drops stale creation records it meets, and deletes by the entries' own times.
    #[tokio::test]
    async fn eviction_skips_stale_creation_records() {
        let store = counted_store();
        store.put(entry(1, 10, None, 9)).await.unwrap();
        store.put(entry(2, 20, None, 9)).await.unwrap();
        // A stale record claims entry 2 is the oldest.
        let stale = time_key(to_millis(at(1)), &key(2));
        store.indexes.created.insert(&stale, &[] as &[u8]).unwrap();
        // Room for one of the two entries.
        let one = store.live_bytes().unwrap() / 2;
        store.evict_oldest_beyond(one * 3 / 2).unwrap();
        assert!(
            store.get(&key(1)).await.unwrap().is_none(),
            "the oldest goes"
        );
        assert!(store.get(&key(2)).await.unwrap().is_some());
        assert!(!store.indexes.created.contains_key(&stale).unwrap());
        assert_eq!(store.indexes.created.len(), 1);
    }

    /// Writers of one key at once leave exactly the records of the entry that won.
    /// Renewals from one read, on threads at once: exactly one writes (the check and the
    /// write under the key's lock), round after round.
    #[test]
    fn one_of_renewals_racing_on_threads_writes() {
        let store = store();
        for round in 0..50u64 {
            let read = round * 100;
            store.write(&entry(1, read, None, 9)).unwrap();
            let won = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for racer in 1..=4 {
                    let (store, won) = (&store, &won);
                    scope.spawn(move || {
                        let renewed = entry(1, read + racer, None, 9);
                        if store
                            .write_if_created(&renewed, to_millis(at(read)))
                            .unwrap()
                            .is_some()
                        {
                            won.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                }
            });
            assert_eq!(won.into_inner(), 1, "round {round}");
        }
    }

    #[test]
    fn concurrent_writers_of_one_key_leave_one_record_per_index() {
        for store in [store(), counted_store()] {
            concurrent_writers_of_one_key_leave_one_record_per_index_in(&store);
        }
    }

    fn concurrent_writers_of_one_key_leave_one_record_per_index_in(store: &SledStore) {
        std::thread::scope(|scope| {
            for writer in 0..4u64 {
                scope.spawn(move || {
                    for i in 0..300u64 {
                        let n = (i % 3) as u8;
                        let stamp = writer * 1_000 + i;
                        let group = 10 + (stamp % 5) as u8;
                        store.write(&entry(n, stamp, Some(stamp), group)).unwrap();
                    }
                });
            }
        });
        for n in 0..3 {
            let Current::Meta(meta) = store.current(&key(n)).unwrap() else {
                panic!("entry {n} unreadable or gone");
            };
            let of_key = |tree: &sled::Tree| -> Vec<Vec<u8>> {
                let keys = tree.iter().keys().map(Result::unwrap);
                keys.filter(|k| k.ends_with(key(n).as_str().as_bytes()))
                    .map(|k| k.to_vec())
                    .collect()
            };
            let expires = meta.expires_at.map(to_millis).unwrap();
            let group = meta.url_group.unwrap();
            let i = &store.indexes;
            assert_eq!(of_key(&i.expiry), [time_key(expires, &key(n))], "key {n}");
            let created = time_key(to_millis(meta.created_at), &key(n));
            let created: &[_] = if store.keeps_counts() {
                &[created]
            } else {
                &[]
            };
            assert_eq!(of_key(&i.created), created, "key {n}");
            let grouped = crate::record::group_key(&group, &key(n));
            assert_eq!(of_key(&i.groups), [grouped], "key {n}");
        }
        let stored: u64 = store
            .entries
            .iter()
            .values()
            .map(|v| stored_len(&v.unwrap()))
            .sum();
        assert_eq!(store.live_bytes().unwrap(), stored);
    }

    /// What must hold whenever no write is under way: every readable record has its index
    /// records, every body kept apart is one record's, and the byte total is what `records`
    /// and `bodies` hold.
    fn problems(store: &SledStore) -> Vec<String> {
        let mut problems = Vec::new();
        let mut stored = 0u64;
        let mut bodies: std::collections::HashSet<Vec<u8>> = store
            .bodies
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        for item in store.entries.iter() {
            let (k, record) = item.unwrap();
            if let Some(body) = body_ref(&record) {
                if !bodies.remove(&body.id[..]) {
                    problems.push(format!("{k:?}: its body is missing or another's"));
                }
            }
            stored += stored_len(&record);
            let key = key_of_record_key(&k).unwrap();
            let Some(meta) = decode_record_meta(key, &record) else {
                continue;
            };
            let i = &store.indexes;
            let mut wanted = vec![];
            if store.keeps_counts() {
                wanted.push((&i.created, time_key(to_millis(meta.created_at), &key)));
            }
            if let Some(expires) = meta.expires_at {
                wanted.push((&i.expiry, time_key(to_millis(expires), &key)));
            }
            if let Some(group) = meta.url_group {
                wanted.push((&i.groups, crate::record::group_key(&group, &key)));
            }
            for (tree, record) in wanted {
                if !tree.contains_key(&record).unwrap() {
                    problems.push(format!("{key}: no {:?} record", tree.name()));
                }
            }
        }
        if !bodies.is_empty() {
            problems.push(format!("{} bodies without a record", bodies.len()));
        }
        let live = store.live_bytes().unwrap();
        if live != stored {
            problems.push(format!("live bytes {live}, stored {stored}"));
        }
        problems
    }

    /// Six tasks putting (large values too), deleting, sweeping, listing by URL, reading and
    /// evicting over eight keys leave every record indexed, every body its record's, and the
    /// byte total exact, bounded or not.
    #[test]
    fn mixed_concurrent_operations_keep_every_record_indexed() {
        for bounded in [None, Some(20_000)] {
            let db = sled::Config::new().temporary(true).open().expect("db");
            let mut builder = SledStore::builder();
            if let Some(max) = bounded {
                builder = builder.max_bytes(max);
            }
            let store = builder.with_db(db).expect("store");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            runtime.block_on(async {
                let tasks: Vec<_> = (0..6u64)
                    .map(|task| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let mut x = task * 7919 + 1;
                            for _ in 0..1_000 {
                                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                                let n = (x >> 33) as u8 % 8;
                                let group = 100 + (x >> 9) as u8 % 3;
                                let expires = ((x >> 13) % 3 != 0).then_some((x >> 17) % 100);
                                match (x >> 40) % 10 {
                                    0..=4 => {
                                        let mut e = entry(n, (x >> 20) % 50, expires, group);
                                        // Odd keys' values are kept apart, now and then.
                                        if n % 2 == 1 && (x >> 50) % 2 == 0 {
                                            e.value = Bytes::from(vec![n; ELSEWHERE_FROM]);
                                        }
                                        store.put(e).await.unwrap();
                                    }
                                    5 => drop(store.delete(&key(n)).await.unwrap()),
                                    6 => drop(store.delete_expired(at(50)).await.unwrap()),
                                    7 => drop(store.entries_for_url(&key(group)).await.unwrap()),
                                    8 => drop(store.get(&key(n)).await.unwrap()),
                                    _ => {
                                        let store = store.clone();
                                        tokio::task::spawn_blocking(move || {
                                            let _bounded = store.locks.bounded_write();
                                            store.evict_oldest_beyond(1_000)
                                        })
                                        .await
                                        .unwrap()
                                        .unwrap();
                                    }
                                }
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
            assert_eq!(problems(&store), Vec::<String>::new(), "bound {bounded:?}");
        }
    }

    /// Two stores on one database (the way to have a second instance): a clear through one
    /// keeps out the writes through the other, so none lands between its trees.
    #[test]
    fn a_clear_keeps_out_writes_through_another_store_on_the_database() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let clearer = SledStore::builder().with_db(db.clone()).expect("store");
        let writer = SledStore::builder().with_db(db).expect("store");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        for round in 0..30 {
            runtime.block_on(async {
                for n in 0..60 {
                    writer.put(entry(n, 1, Some(2), 1)).await.unwrap();
                }
                let writes = tokio::spawn({
                    let writer = writer.clone();
                    async move {
                        for n in 60..120 {
                            // Refused while the clear runs: a lost write is a miss.
                            let _ = writer.put(entry(n, 1, Some(2), 1)).await;
                            tokio::task::yield_now().await;
                        }
                    }
                });
                clearer.clear().await.unwrap();
                writes.await.unwrap();
            });
            assert_eq!(problems(&clearer), Vec::<String>::new(), "round {round}");
            runtime.block_on(clearer.clear()).unwrap();
        }
    }

    /// The next write of a key restores an index record lost before (by a clear race in a
    /// database written by an earlier version).
    #[tokio::test]
    async fn a_rewrite_restores_lost_index_records() {
        let store = store();
        store.put(entry(1, 10, Some(20), 9)).await.unwrap();
        store.indexes.groups.clear().unwrap();
        store.indexes.expiry.clear().unwrap();
        store.put(entry(1, 10, Some(20), 9)).await.unwrap();
        assert_eq!(problems(&store), Vec::<String>::new());
        assert_eq!(store.entries_for_url(&key(9)).await.unwrap().len(), 1);
        assert_eq!(store.delete_expired(at(1_000)).await.unwrap(), 1);
    }

    /// An index reader that meets an unreadable record deletes it (and its bytes), as a read
    /// does; a read deletes the unreadable bytes it saw, never a write that replaced them.
    #[tokio::test]
    async fn unreadable_records_met_by_index_readers_are_deleted() {
        let store = store();
        let corrupt = |n: u8| {
            let mut record = store
                .entries
                .get(record_key(&key(n)))
                .unwrap()
                .unwrap()
                .to_vec();
            record[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            store.entries.insert(record_key(&key(n)), record).unwrap();
        };
        // Met by the expiry sweep, by a lookup by URL, by eviction.
        store.put(entry(1, 10, Some(20), 7)).await.unwrap();
        store.put(entry(2, 10, None, 9)).await.unwrap();
        store.put(entry(3, 10, None, 8)).await.unwrap();
        (1..=3).for_each(corrupt);
        assert_eq!(store.delete_expired(at(1_000)).await.unwrap(), 1);
        assert!(store.entries_for_url(&key(9)).await.unwrap().is_empty());
        assert!(!store.entries.contains_key(record_key(&key(1))).unwrap());
        assert!(!store.entries.contains_key(record_key(&key(2))).unwrap());
        // Eviction meets the third through its creation record.
        store.evict_oldest_beyond(1).unwrap();
        assert_eq!(store.entries.len(), 0);
        assert_eq!(store.live_bytes().unwrap(), 0);
        // A write replaced what a read found unreadable: the write stays.
        store.put(entry(4, 10, None, 9)).await.unwrap();
        store.remove_unreadable(&key(4), b"other bytes").unwrap();
        assert!(store.get(&key(4)).await.unwrap().is_some());
    }

    /// A byte total that is garbage (or at the end of the range) neither panics nor wraps.
    #[tokio::test]
    async fn a_hostile_byte_total_saturates() {
        let store = counted_store();
        let total = (u64::MAX - 5).to_le_bytes();
        store.totals.insert(LIVE_BYTES, &total).unwrap();
        store.put(entry(1, 10, None, 9)).await.unwrap();
        assert_eq!(store.live_bytes().unwrap(), u64::MAX);
    }

    /// `entry(n, ...)` with a value of `len` bytes.
    fn sized(n: u8, created: u64, len: usize) -> StoredEntry {
        let mut entry = entry(n, created, Some(created + 100), 9);
        entry.value = Bytes::from(vec![n; len]);
        entry
    }

    /// A record removed from outside the store (another program) takes its copy at the next
    /// read, which finds none: looked up before each read, the copy was kept from eviction
    /// without ever answering again.
    #[tokio::test]
    async fn a_record_removed_elsewhere_takes_its_copy_at_the_next_read() {
        let store = store();
        let response = cache_core::testing::sample_response();
        let mut written = entry(1, 1, Some(101), 9);
        written.value = cache_core::encode(&response).unwrap();
        store.put_decoded(written, response).await.unwrap();
        assert!(store.decoded_copies_bytes() > 0, "the write's copy");
        store.entries.remove(record_key(&key(1))).unwrap();
        let read = store.get_decoded_now(&key(1), &EntryCodec::new());
        assert!(read.unwrap().unwrap().is_none());
        assert_eq!(store.decoded_copies_bytes(), 0, "the copy stayed");
    }

    /// A copy of an entry's small value, left when a write with its response replaced it by
    /// a value kept in `bodies` (which gets none), goes at the next read: looked up before
    /// each read, it was kept from eviction without ever answering again.
    #[tokio::test]
    async fn a_copy_of_a_value_replaced_by_one_kept_apart_goes_at_the_next_read() {
        let store = store();
        let codec = EntryCodec::new();
        let write = |response: &cache_core::CachedResponse, created: u64| {
            let mut written = entry(1, created, Some(created + 100), 9);
            written.value = cache_core::encode(response).unwrap();
            (written, response.clone())
        };
        let small = cache_core::testing::sample_response();
        let (written, response) = write(&small, 1);
        store.put_decoded(written, response).await.unwrap();
        assert!(store.decoded_copies_bytes() > 0, "the small value's copy");
        let mut large = small;
        large.body = Bytes::from(vec![b'x'; ELSEWHERE_FROM * 2]);
        let (written, response) = write(&large, 2);
        store.put_decoded(written, response).await.unwrap();
        let read = store.get_decoded_now(&key(1), &codec).unwrap().unwrap();
        let decoded = read.expect("found").expect("decodes");
        let cache_core::Entry::Response(found) = &decoded.entry else {
            panic!("a response");
        };
        assert_eq!(found.body, large.body);
        assert_eq!(
            store.decoded_copies_bytes(),
            0,
            "the small value's copy stayed"
        );
    }

    /// A value of at least `ELSEWHERE_FROM` bytes is kept in `bodies`, its record pointing
    /// there; every way a record goes or changes takes its body along, or keeps it when it
    /// still points there; counts and reads see the whole value; no decoded copy holds one.
    #[tokio::test]
    async fn large_values_are_kept_apart_and_go_with_their_records() {
        let store = counted_store();
        let large = ELSEWHERE_FROM + 10;
        let bodies = |store: &SledStore| store.bodies.len();
        let record = |store: &SledStore| store.entries.get(record_key(&key(1))).unwrap().unwrap();
        store.put(sized(1, 10, large)).await.unwrap();
        assert_eq!(bodies(&store), 1);
        assert!(record(&store).len() < 1024, "the record holds no value");
        let found = store.get(&key(1)).await.unwrap().expect("stored");
        assert_eq!(found.value, Bytes::from(vec![1; large]));
        assert!(store.live_bytes().unwrap() > large as u64);
        assert_eq!(problems(&store), Vec::<String>::new());
        // Replaced by another large value: one body, the new one.
        store.put(sized(1, 11, large + 1)).await.unwrap();
        assert_eq!(bodies(&store), 1);
        assert_eq!(
            store.get(&key(1)).await.unwrap().unwrap().value.len(),
            large + 1
        );
        // A new expiry points to the same body.
        let before = body_ref(&record(&store));
        assert!(store.set_expiry(&key(1), Some(at(500))).await.unwrap());
        assert_eq!(body_ref(&record(&store)), before);
        assert_eq!(bodies(&store), 1);
        let renewed = store.get(&key(1)).await.unwrap().unwrap();
        assert_eq!(
            (renewed.meta.expires_at, renewed.value.len()),
            (Some(at(500)), large + 1)
        );
        // Written over where created at 11: the old body goes.
        assert!(
            store
                .put_if_created(sized(1, 12, large), at(11))
                .await
                .unwrap()
        );
        assert_eq!(bodies(&store), 1);
        assert_eq!(problems(&store), Vec::<String>::new());
        // Read decoded, twice: the entry, and no copy.
        let response = cache_core::CachedResponse::new(
            http::StatusCode::OK,
            http::Version::HTTP_11,
            http::HeaderMap::new(),
            Bytes::from(vec![7; large]),
            "https://e.com/1",
            cache_core::CachedRequest::new(
                http::Method::GET,
                "https://e.com/1",
                http::HeaderMap::new(),
            ),
        );
        let mut encoded = sized(1, 12, 0);
        encoded.value = cache_core::encode(&response).unwrap();
        store.put(encoded).await.unwrap();
        let codec = EntryCodec::new();
        for _ in 0..2 {
            let read = store.get_decoded_now(&key(1), &codec).unwrap().unwrap();
            let decoded = read.expect("found").expect("decodes");
            let cache_core::Entry::Response(found) = &decoded.entry else {
                panic!("a response");
            };
            assert_eq!(found.body, response.body);
        }
        assert_eq!(store.decoded_copies_bytes(), 0);
        // Replaced by a small value, deleted, cleared: no body is left behind.
        store.put(sized(1, 13, 100)).await.unwrap();
        assert_eq!(bodies(&store), 0);
        store.put(sized(1, 14, large)).await.unwrap();
        assert!(store.delete(&key(1)).await.unwrap());
        assert_eq!(bodies(&store), 0);
        assert_eq!(store.live_bytes().unwrap(), 0);
        store.put(sized(2, 15, large)).await.unwrap();
        store.clear().await.unwrap();
        assert_eq!(bodies(&store), 0);
        // A record whose body is gone reads as absent, and goes.
        store.put(sized(3, 16, large)).await.unwrap();
        store.bodies.clear().unwrap();
        assert!(store.get(&key(3)).await.unwrap().is_none());
        assert!(!store.entries.contains_key(record_key(&key(3))).unwrap());
        assert_eq!(store.live_bytes().unwrap(), 0);
    }

    /// A database written by an earlier version (records keyed by hex text in `entries`)
    /// opens with every record readable, listable, found by URL and expiring as before, the
    /// old tree gone; a record an earlier version wrote after a move replaces the moved one;
    /// and bytes under a key that is none are dropped.
    #[tokio::test]
    async fn records_of_an_earlier_version_move_on_open() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let legacy_write = |entry: &StoredEntry| {
            let legacy = db.open_tree(LEGACY_ENTRIES_TREE).unwrap();
            legacy
                .insert(entry.meta.key.as_str(), record_of(entry))
                .unwrap();
            // The index records as earlier versions wrote them (the same format).
            IndexRecords::of(&entry.meta, true)
                .insert_all(&IndexTrees {
                    expiry: db.open_tree("expiry").unwrap(),
                    created: db.open_tree("created").unwrap(),
                    groups: db.open_tree("groups").unwrap(),
                })
                .unwrap();
        };
        for n in 1..=3 {
            legacy_write(&entry(n, 10, Some(20 + u64::from(n)), 9));
        }
        db.open_tree(LEGACY_ENTRIES_TREE)
            .unwrap()
            .insert("not a key", &b"junk"[..])
            .unwrap();
        let store = SledStore::builder()
            .max_bytes(1 << 30)
            .with_db(db.clone())
            .expect("store");
        let named = |name: &str| db.tree_names().iter().any(|t| t == name.as_bytes());
        assert!(!named(LEGACY_ENTRIES_TREE));
        assert_eq!(store.count().await.unwrap(), 3);
        for n in 1..=3 {
            let found = store.get(&key(n)).await.unwrap().expect("moved");
            assert_eq!(found.value, Bytes::from(vec![n; 100]));
        }
        assert_eq!(store.entries_for_url(&key(9)).await.unwrap().len(), 3);
        assert_eq!(problems(&store), Vec::<String>::new());
        assert_eq!(store.delete_expired(at(21)).await.unwrap(), 1);
        store.put(sized(4, 60, ELSEWHERE_FROM)).await.unwrap();
        assert_eq!(store.bodies.len(), 1);
        drop(store);
        // An earlier version opened the database again: it saw this version's records as
        // absent, so its sweeps dropped their index records and its count left them out;
        // and it wrote keys 2 and 4 anew.
        for tree in ["expiry", "groups", "created"] {
            db.open_tree(tree).unwrap().clear().unwrap();
        }
        db.open_tree("totals")
            .unwrap()
            .insert(LIVE_BYTES, &0u64.to_le_bytes())
            .unwrap();
        legacy_write(&entry(2, 50, None, 9));
        legacy_write(&entry(4, 51, Some(70), 9));
        let store = SledStore::builder()
            .max_bytes(1 << 30)
            .with_db(db.clone())
            .expect("store");
        let found = store.get(&key(2)).await.unwrap().expect("moved");
        assert_eq!(found.meta.created_at, at(50));
        assert_eq!(store.count().await.unwrap(), 3);
        assert!(!named(LEGACY_ENTRIES_TREE));
        // The replaced record's body went; every record is indexed and counted again.
        assert_eq!(store.bodies.len(), 0);
        assert_eq!(problems(&store), Vec::<String>::new());
        assert_eq!(store.entries_for_url(&key(9)).await.unwrap().len(), 3);
        assert_eq!(store.delete_expired(at(1_000)).await.unwrap(), 2);
    }

    /// A count or a creation index the stores keep is rebuilt from the records alone: bodies
    /// no record points to (a crash between a body's write and its record's) go, the others
    /// stay; a count found missing stays missing (unknown) rather than restarting at zero.
    #[tokio::test]
    async fn a_rebuild_drops_bodies_no_record_points_to_and_a_lost_count_stays_unknown() {
        let store = counted_store();
        store.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
        let orphan = store.first_free_body_id().unwrap().to_be_bytes();
        store
            .bodies
            .insert(orphan, &b"left by a crash"[..])
            .unwrap();
        let total = store.recount_live_bytes().unwrap();
        assert_eq!(store.bodies.len(), 1);
        assert!(!store.bodies.contains_key(orphan).unwrap());
        assert_eq!(
            total,
            stored_len(&store.entries.get(record_key(&key(1))).unwrap().unwrap())
        );
        store.totals.remove(LIVE_BYTES).unwrap();
        store.put(sized(2, 11, 100)).await.unwrap();
        assert!(!store.totals.contains_key(LIVE_BYTES).unwrap());
    }

    /// A read that finds its record's body gone (the record was rewritten between the two
    /// lookups) reads the current record, once: a hot key rewritten meanwhile is still a hit.
    #[tokio::test]
    async fn a_record_rewritten_between_its_two_lookups_is_read_again() {
        let store = store();
        store.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
        let old = store.entries.get(record_key(&key(1))).unwrap().unwrap();
        store.put(sized(1, 11, ELSEWHERE_FROM + 1)).await.unwrap();
        let (found, _) = store
            .readable(&key(1), old)
            .unwrap()
            .expect("the current record");
        assert_eq!(found.value.len(), ELSEWHERE_FROM + 1);
        assert_eq!(store.count().await.unwrap(), 1);
    }

    /// A body never goes in over another's: bodies that appear under ids this process
    /// would give out next (imported into the open database) are skipped, and ids go on
    /// after the last of them.
    #[tokio::test]
    async fn a_body_id_in_use_is_skipped() {
        let store = store();
        store.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
        let next = store.first_free_body_id().unwrap();
        for taken in [next, next + 5] {
            store
                .bodies
                .insert(taken.to_be_bytes(), &b"imported"[..])
                .unwrap();
        }
        store.put(sized(2, 10, ELSEWHERE_FROM)).await.unwrap();
        for taken in [next, next + 5] {
            assert_eq!(
                &store.bodies.get(taken.to_be_bytes()).unwrap().unwrap()[..],
                b"imported"
            );
        }
        let record = store.entries.get(record_key(&key(2))).unwrap().unwrap();
        assert_eq!(body_ref(&record).unwrap().id, (next + 6).to_be_bytes());
        for n in [1, 2] {
            let found = store.get(&key(n)).await.unwrap().unwrap();
            assert_eq!(found.value, vec![n; ELSEWHERE_FROM]);
        }
    }

    /// Body ids are the store's own, in write order across opens: the first after an open
    /// follows the last body. sled's `generate_id` jumped by millions at each open, and
    /// made its log durable (an `fsync`) once every million ids, on the writing task.
    #[tokio::test]
    async fn body_ids_go_on_after_the_last_body_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ids = |store: &SledStore| -> Vec<u64> {
            let ids = store.bodies.iter().keys().map(|id| id.unwrap());
            ids.map(|id| u64::from_be_bytes(id[..].try_into().unwrap()))
                .collect()
        };
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
            store.put(sized(2, 10, ELSEWHERE_FROM)).await.unwrap();
            assert_eq!(ids(&store), [0, 1]);
        }
        test_support::wait_for_sled_lock(dir.path());
        let store = SledStore::open(dir.path()).unwrap();
        store.put(sized(3, 10, ELSEWHERE_FROM)).await.unwrap();
        assert_eq!(ids(&store), [0, 1, 2]);
    }

    /// An id whose body went before this process gave out any (the last body's, deleted)
    /// is not given out again: a read still holding the record that pointed there finds no
    /// body rather than another entry's.
    #[tokio::test]
    async fn an_id_freed_before_the_first_write_is_not_given_out_again() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let first = SledStore::builder().with_db(db.clone()).expect("store");
        first.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
        drop(first);
        // A new process's store: its locks (and counter) are new.
        let store = SledStore::builder().with_db(db).expect("store");
        let held = store.entries.get(record_key(&key(1))).unwrap().unwrap();
        assert!(store.delete(&key(1)).await.unwrap());
        store.put(sized(2, 10, ELSEWHERE_FROM)).await.unwrap();
        assert!(store.readable(&key(1), held).unwrap().is_none());
    }

    /// An open that counted the live bytes from the records (a database with no count)
    /// leaves the count its first eviction trusts: the records are not counted twice.
    #[tokio::test]
    async fn an_open_that_counted_is_not_followed_by_a_second_count() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let unbounded = SledStore::builder().with_db(db.clone()).expect("store");
        for n in 0..10 {
            unbounded
                .put(sized(n, 10 + u64::from(n), 1000))
                .await
                .unwrap();
        }
        drop(unbounded);
        let bounded = SledStore::builder()
            .max_bytes(8_000)
            .with_db(db)
            .expect("store");
        let counts = || {
            bounded
                .locks
                .counts
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(
            counts(),
            1,
            "counted at open: an unbounded store kept no count"
        );
        bounded.put(sized(20, 30, 1000)).await.unwrap();
        assert!(bounded.count().await.unwrap() < 10, "evicted");
        assert_eq!(counts(), 1);
    }

    /// What a process that never closed the database leaves (it crashed, or was killed):
    /// its open mark, written after `store` went (its going removed its own), and a body
    /// whose record's write it did not live to make, written while `store` was open.
    fn left_open_by_a_dead_process(store: SledStore) -> [u8; 8] {
        let orphan = store.first_free_body_id().unwrap().to_be_bytes();
        store
            .bodies
            .insert(orphan, vec![0u8; ELSEWHERE_FROM])
            .unwrap();
        let totals = store.totals.clone();
        drop(store);
        totals.insert(locks::OPEN_MARK, &[7u8; 16][..]).unwrap();
        orphan
    }

    /// The first open after a process left the database open (a crash, a kill) drops the
    /// bodies no record points to, with or without a bound (a store without one kept them
    /// until `clear`: nothing else ever reached them), and a bounded one counts its bytes
    /// there, once. Every body a record points to stays.
    #[tokio::test]
    async fn an_open_after_a_process_left_the_database_open_drops_bodies_nothing_points_to() {
        for bound in [None, Some(u64::MAX)] {
            let db = sled::Config::new().temporary(true).open().expect("db");
            let builder = || match bound {
                Some(max) => SledStore::builder().max_bytes(max),
                None => SledStore::builder(),
            };
            let first = builder().with_db(db.clone()).expect("store");
            first.put(sized(1, 10, ELSEWHERE_FROM)).await.unwrap();
            let orphan = left_open_by_a_dead_process(first);
            let store = builder().with_db(db).expect("store");
            assert!(!store.bodies.contains_key(orphan).unwrap(), "{bound:?}");
            assert_eq!(store.bodies.len(), 1, "{bound:?}");
            let found = store.get(&key(1)).await.unwrap().expect("kept");
            assert_eq!(found.value.len(), ELSEWHERE_FROM);
            let counts = store
                .locks
                .counts
                .load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(counts, u64::from(bound.is_some()), "{bound:?}");
        }
    }

    /// A database is marked open while any store of this process is on it, and no longer
    /// once the last goes: the next open (a process of its own) finds it closed and goes over
    /// nothing. The mark a later open wrote is its own: a store of an earlier one going
    /// leaves it.
    #[tokio::test]
    async fn the_last_store_to_go_closes_the_database_and_only_its_own_mark() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let totals = db.open_tree("totals").unwrap();
        let marked = || totals.contains_key(locks::OPEN_MARK).unwrap();
        let one = SledStore::builder().with_db(db.clone()).expect("store");
        let two = SledStore::builder().with_db(db.clone()).expect("store");
        assert!(marked());
        drop(one);
        assert!(marked(), "a store is still open");
        drop(two);
        assert!(!marked());
        let bodies = db.open_tree(BODIES_TREE).unwrap();
        bodies.insert(9u64.to_be_bytes(), vec![0u8; 10]).unwrap();
        let store = SledStore::builder().with_db(db.clone()).expect("store");
        assert_eq!(store.bodies.len(), 1, "a closed database is not gone over");
        totals.insert(locks::OPEN_MARK, &[8u8; 16][..]).unwrap();
        drop(store);
        assert_eq!(
            totals.get(locks::OPEN_MARK).unwrap().unwrap(),
            [8u8; 16][..]
        );
    }

    #[test]
    fn the_legacy_meta_tree_is_dropped_on_open() {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let legacy = db.open_tree(LEGACY_META_TREE).unwrap();
        legacy.insert(b"k", b"v").unwrap();
        let _store = SledStore::builder().with_db(db.clone()).expect("store");
        assert!(
            !db.tree_names()
                .iter()
                .any(|name| name.as_ref() == LEGACY_META_TREE.as_bytes())
        );
    }
}

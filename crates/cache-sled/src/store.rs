//! [`SledStore`]: the [`CacheStore`] over a sled database.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use cache_core::codec::EntryCodec;
use cache_core::decoded_copies::{DEFAULT_DECODED_COPIES_BYTES, DecodedCopies};
use cache_core::store::DecodedEntry;
use cache_core::time::to_millis;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::record::{
    decode_entry, decode_meta, decode_record, decode_total, encode_entry, encode_meta, group_key,
    key_of_group_key, key_of_time_key, time_bound, time_key,
};

/// Values up to this size are written on the calling task (see `put`).
const QUICK_MAX_VALUE: usize = 128 * 1024;

/// How many metadata records one `entries()` step reads.
const PAGE_SIZE: usize = 512;

/// The `totals` key holding the bytes of all `entries` values.
const LIVE_BYTES: &[u8] = b"live_bytes";

/// A listed record: its raw key (where the next page starts) and its metadata, if readable.
type ListedRecord = (Vec<u8>, Option<EntryMeta>);

/// The trees a write updates together: entries, meta, expiry, created, groups, totals.
type Trees<'a> = (
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
);

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
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Keep decoded copies of entries read again (a key is kept from its second read), up to
    /// about `max_bytes` of stored bytes (default [`DEFAULT_DECODED_COPIES_BYTES`], 16 MiB;
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

    /// Uses a database you already opened (its trees `entries`, `meta`, `expiry`, `created`,
    /// `groups` and `totals`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the trees cannot be opened.
    pub fn with_db(self, db: sled::Db) -> Result<SledStore, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(StoreError::unavailable);
        let store = SledStore {
            entries: tree("entries")?,
            meta: tree("meta")?,
            expiry: tree("expiry")?,
            created: tree("created")?,
            groups: tree("groups")?,
            totals: tree("totals")?,
            db,
            flush_every_write: self.flush_every_write,
            max_bytes: self.max_bytes,
            clearing: Arc::default(),
            bounded_writes: Arc::default(),
            copies: Arc::new(DecodedCopies::new(
                self.decoded_copies.unwrap_or(DEFAULT_DECODED_COPIES_BYTES),
            )),
        };
        store.count_live_bytes_if_missing()?;
        Ok(store)
    }
}

/// A [`CacheStore`] in a sled database. Cheap to clone (sled handles are shared).
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    entries: sled::Tree,
    meta: sled::Tree,
    expiry: sled::Tree,
    created: sled::Tree,
    /// URL group + key → nothing: the keys of each URL group, for `entries_for_url`.
    groups: sled::Tree,
    totals: sled::Tree,
    flush_every_write: bool,
    max_bytes: Option<u64>,
    /// Writes share it, `clear` takes it alone: clearing the trees one by one must not
    /// interleave with a write's transaction (a value without its metadata would be served
    /// yet never listed, counted or deleted). Shared by clones of this store.
    clearing: Arc<RwLock<()>>,
    /// Taken by writes to a store with `max_bytes` (see `put`). Shared by clones.
    bounded_writes: Arc<Mutex<()>>,
    /// Decoded forms of recently read records. Shared by clones.
    copies: Arc<DecodedCopies>,
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

    /// The sled database, for sharing it with other trees of yours.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Runs `f` on Tokio's blocking pool: writes (a transaction, an eviction loop) and scans
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

    async fn flushed(&self) -> Result<(), StoreError> {
        if self.flush_every_write {
            self.db.flush_async().await.map_err(store_error)?;
        }
        Ok(())
    }

    /// The bytes of all stored values (with their metadata), as kept in the `totals` tree.
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        let total = self.totals.get(LIVE_BYTES).map_err(store_error)?;
        Ok(total.as_deref().map(decode_total).unwrap_or_default())
    }

    /// A database written before the byte count existed gets it (and the creation index)
    /// rebuilt once, from the records.
    fn count_live_bytes_if_missing(&self) -> Result<(), StoreError> {
        if self.totals.contains_key(LIVE_BYTES).map_err(store_error)? {
            return Ok(());
        }
        let mut total = 0u64;
        for item in self.entries.iter() {
            let (k, record) = item.map_err(store_error)?;
            total += record.len() as u64;
            let entry = std::str::from_utf8(&k)
                .ok()
                .and_then(|k| k.parse::<CacheKey>().ok())
                .and_then(|key| decode_entry(key, record));
            if let Some(entry) = entry {
                let index = time_key(to_millis(entry.meta.created_at), &entry.meta.key);
                self.created
                    .insert(index, &[] as &[u8])
                    .map_err(store_error)?;
            }
        }
        self.totals
            .insert(LIVE_BYTES, &total.to_le_bytes())
            .map_err(store_error)?;
        Ok(())
    }

    /// Removes `key` from every tree at once; true when it existed.
    fn remove(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let k = key.as_str().as_bytes();
        let _writing = self.writing()?;
        let removed = self
            .trees()
            .transaction(|(entries, meta, expiry, created, groups, totals)| {
                let old_meta = meta.remove(k)?;
                if let Some(old) = old_meta.as_deref().and_then(|m| decode_meta(*key, m)) {
                    if let Some(expires) = old.expires_at {
                        expiry.remove(time_key(to_millis(expires), key))?;
                    }
                    created.remove(time_key(to_millis(old.created_at), key))?;
                    if let Some(group) = &old.url_group {
                        groups.remove(group_key(group, key))?;
                    }
                }
                // The value goes even without metadata, so nothing can stay served but
                // unlisted.
                let Some(old_value) = entries.remove(k)? else {
                    return Ok(old_meta.is_some());
                };
                let freed = old_value.len() as u64;
                let live = totals.get(LIVE_BYTES)?.as_deref().map(decode_total);
                let live = live.unwrap_or_default().saturating_sub(freed);
                totals.insert(LIVE_BYTES, &live.to_le_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(transaction_error)?;
        self.copies.forget(key);
        Ok(removed)
    }

    /// Writes the entry and its index records; returns the live bytes after the write.
    fn write(&self, entry: &StoredEntry) -> Result<u64, StoreError> {
        let key = entry.meta.key;
        let k = key.as_str().as_bytes();
        let meta_bytes = encode_meta(&entry.meta);
        let record = encode_entry(&meta_bytes, &entry.value);
        // One record over the whole bound would evict everything, itself included.
        if let Some(max) = self.max_bytes.filter(|max| record.len() as u64 > *max) {
            return Err(StoreError::TooLarge {
                size: record.len() as u64,
                limit: max,
            });
        }
        let _writing = self.writing()?;
        let new_expiry = entry.meta.expires_at.map(|t| time_key(to_millis(t), &key));
        let new_created = time_key(to_millis(entry.meta.created_at), &key);
        let new_group = entry.meta.url_group.map(|group| group_key(&group, &key));
        self.trees()
            .transaction(|(entries, meta, expiry, created, groups, totals)| {
                if let Some(old) = meta.insert(k, meta_bytes.as_slice())? {
                    if let Some(old) = decode_meta(key, &old) {
                        if let Some(expires) = old.expires_at {
                            expiry.remove(time_key(to_millis(expires), &key))?;
                        }
                        created.remove(time_key(to_millis(old.created_at), &key))?;
                        if let Some(group) = &old.url_group {
                            groups.remove(group_key(group, &key))?;
                        }
                    }
                }
                if let Some(index) = &new_expiry {
                    expiry.insert(index.as_slice(), &[] as &[u8])?;
                }
                if let Some(index) = &new_group {
                    groups.insert(index.as_slice(), &[] as &[u8])?;
                }
                created.insert(new_created.as_slice(), &[] as &[u8])?;
                let replaced = entries
                    .insert(k, record.as_slice())?
                    .map_or(0, |v| v.len() as u64);
                let live = totals.get(LIVE_BYTES)?.as_deref().map(decode_total);
                let live = live.unwrap_or_default().saturating_sub(replaced) + record.len() as u64;
                totals.insert(LIVE_BYTES, &live.to_le_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(live)
            })
            .map_err(transaction_error)
    }

    /// Deletes the oldest entries until the live bytes fit in 95 % of `max`.
    fn evict_oldest_beyond(&self, max: u64) -> Result<(), StoreError> {
        let target = max / 20 * 19;
        let mut live = self.live_bytes()?;
        let mut oldest = self.created.iter().keys();
        while live > target {
            let Some(index) = oldest.next() else { break };
            let index = index.map_err(store_error)?;
            match key_of_time_key(&index) {
                Some(key) => {
                    self.remove(&key)?;
                }
                // Not ours: drop the index record so it is not visited again.
                None => {
                    self.created.remove(&index).map_err(store_error)?;
                }
            }
            live = self.live_bytes()?;
        }
        Ok(())
    }

    /// The trees a write updates together, in the order the transactions take them.
    fn trees(&self) -> Trees<'_> {
        (
            &self.entries,
            &self.meta,
            &self.expiry,
            &self.created,
            &self.groups,
            &self.totals,
        )
    }

    /// Permission to write, refused (at once, not blocking the executor) while `clear` runs.
    fn writing(&self) -> Result<std::sync::RwLockReadGuard<'_, ()>, StoreError> {
        match self.clearing.try_read() {
            Ok(guard) => Ok(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err(StoreError::backend(
                std::io::Error::other("the sled store is being cleared"),
            )),
        }
    }

    /// The record under `key`; an unreadable one is deleted and reported as absent.
    fn read(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let Some(record) = self.entries.get(key.as_str()).map_err(store_error)? else {
            return Ok(None);
        };
        Ok(self.readable(key, record)?.map(|(entry, _)| entry))
    }

    /// The record under `key` decoded: the kept copy when the record is the one it came from
    /// (the record holds the metadata too, so one comparison covers both).
    fn read_decoded(&self, key: &CacheKey, codec: &EntryCodec) -> Result<DecodedEntry, StoreError> {
        let Some(record) = self.entries.get(key.as_str()).map_err(store_error)? else {
            return Ok(None);
        };
        if let Some(kept) = self.copies.get(key, &record, codec, |_| true) {
            return Ok(Some(Ok(kept)));
        }
        let Some((entry, whole)) = self.readable(key, record)? else {
            return Ok(None);
        };
        Ok(Some(self.copies.decode(key, entry, whole, codec)))
    }

    /// `record` as an entry and the whole record's bytes; an unreadable one is deleted and
    /// reported as absent.
    fn readable(
        &self,
        key: &CacheKey,
        record: sled::IVec,
    ) -> Result<Option<(StoredEntry, bytes::Bytes)>, StoreError> {
        match decode_record(*key, record) {
            Some(read) => Ok(Some(read)),
            None => {
                tracing::warn!(%key, "unreadable sled record: deleting it");
                self.remove(key)?;
                Ok(None)
            }
        }
    }

    /// One page of metadata after `after`.
    fn meta_page(&self, after: &[u8]) -> Result<Vec<ListedRecord>, StoreError> {
        use std::ops::Bound;
        self.meta
            .range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded))
            .take(PAGE_SIZE)
            .map(|item| {
                let (k, v) = item.map_err(store_error)?;
                let meta = std::str::from_utf8(&k)
                    .ok()
                    .and_then(|k| k.parse::<CacheKey>().ok())
                    .and_then(|key| decode_meta(key, &v));
                Ok((k.to_vec(), meta))
            })
            .collect()
    }
}

#[async_trait]
impl CacheStore for SledStore {
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
        // A small write without a bound is a short in-memory transaction (sled writes its log
        // from its own thread): done here, without the hop to the blocking pool, which cost
        // more than the write. Bounded writes may evict thousands of entries: pool.
        if self.max_bytes.is_none() && entry.value.len() <= QUICK_MAX_VALUE {
            self.write(&entry)?;
            return self.flushed().await;
        }
        self.blocking(move |store| {
            let Some(max) = store.max_bytes else {
                return store.write(&entry).map(drop);
            };
            // One bounded write (and its eviction) at a time: with several at once each
            // would see the others' bytes and the store would overshoot by all of them.
            // Every write updates the same byte total, so they conflict and run one after
            // another anyway.
            let _bounded = store
                .bounded_writes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if store.write(&entry)? > max {
                store.evict_oldest_beyond(max)?;
            }
            Ok(())
        })
        .await?;
        self.flushed().await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let key = *key;
        let removed = self.blocking(move |store| store.remove(&key)).await?;
        self.flushed().await?;
        Ok(removed)
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let url_group = *url_group;
        self.blocking(move |store| {
            let mut found = Vec::new();
            for index in store.groups.scan_prefix(url_group.as_str()).keys() {
                let Some(key) = key_of_group_key(&index.map_err(store_error)?) else {
                    continue;
                };
                let meta = store.meta.get(key.as_str()).map_err(store_error)?;
                if let Some(meta) = meta.and_then(|m| decode_meta(key, &m)) {
                    found.push(meta);
                }
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
            let _alone = store.clearing.write().unwrap_or_else(|p| p.into_inner());
            let n = store.meta.len() as u64;
            let trees = [
                &store.entries,
                &store.meta,
                &store.expiry,
                &store.created,
                &store.groups,
            ];
            for tree in trees {
                tree.clear().map_err(store_error)?;
            }
            store.copies.clear();
            store
                .totals
                .insert(LIVE_BYTES, &0u64.to_le_bytes())
                .map_err(store_error)?;
            Ok::<_, StoreError>(n)
        })
        .await
        .map_err(StoreError::backend)??;
        self.flushed().await?;
        Ok(removed)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.meta.len() as u64)
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let removed = self
            .blocking(move |store| {
                // Only the expired part of the index is visited.
                let bound = time_bound(to_millis(now));
                let expired: Vec<CacheKey> = store
                    .expiry
                    .range(..bound)
                    .keys()
                    .filter_map(|k| k.ok().and_then(|k| key_of_time_key(&k)))
                    .collect();
                let mut removed = 0;
                for key in &expired {
                    if store.remove(key)? {
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

fn store_error(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(_) => StoreError::unavailable(error),
        other => StoreError::backend(other),
    }
}

fn transaction_error(error: TransactionError<()>) -> StoreError {
    match error {
        TransactionError::Storage(e) => store_error(e),
        TransactionError::Abort(()) => {
            StoreError::backend(std::io::Error::other("sled transaction aborted"))
        }
    }
}

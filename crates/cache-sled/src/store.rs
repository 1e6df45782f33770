//! [`SledStore`]: the [`CacheStore`] over a sled database.

use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use cache_core::time::to_millis;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::record::{
    decode_entry, decode_meta, encode_entry, encode_meta, expiry_bound, expiry_key, key_of_expiry,
};

/// How many metadata records one `entries()` step reads.
const PAGE_SIZE: usize = 512;

/// A listed record: its raw key (where the next page starts) and its metadata, if readable.
type ListedRecord = (Vec<u8>, Option<EntryMeta>);

/// Builds a [`SledStore`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SledStoreBuilder {
    flush_every_write: bool,
}

impl SledStoreBuilder {
    /// Wait for sled to flush to disk after every write (default off: sled flushes every
    /// 500 ms, and a crash can lose the last half second of writes).
    pub fn flush_every_write(mut self, on: bool) -> Self {
        self.flush_every_write = on;
        self
    }

    /// Opens (creating if needed) the database directory at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the directory cannot be opened or is locked by another
    /// process (sled allows one process per database).
    pub fn open(self, path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let db = sled::open(path).map_err(StoreError::unavailable)?;
        self.with_db(db)
    }

    /// Uses a database you already opened (its trees `entries`, `meta` and `expiry`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the trees cannot be opened.
    pub fn with_db(self, db: sled::Db) -> Result<SledStore, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(StoreError::unavailable);
        Ok(SledStore {
            entries: tree("entries")?,
            meta: tree("meta")?,
            expiry: tree("expiry")?,
            db,
            flush_every_write: self.flush_every_write,
        })
    }
}

/// A [`CacheStore`] in a sled database. Cheap to clone (sled handles are shared).
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    entries: sled::Tree,
    meta: sled::Tree,
    expiry: sled::Tree,
    flush_every_write: bool,
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

    async fn flushed(&self) -> Result<(), StoreError> {
        if self.flush_every_write {
            self.db.flush_async().await.map_err(store_error)?;
        }
        Ok(())
    }

    /// Removes `key` from all three trees at once; true when it existed.
    fn remove(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let k = key.as_str().as_bytes();
        let removed = (&self.entries, &self.meta, &self.expiry)
            .transaction(|(entries, meta, expiry)| {
                let old = meta.remove(k)?;
                if let Some(old) = &old {
                    if let Some(expires) = decode_meta(*key, old).and_then(|m| m.expires_at) {
                        expiry.remove(expiry_key(to_millis(expires), key))?;
                    }
                }
                entries.remove(k)?;
                Ok::<_, ConflictableTransactionError<()>>(old.is_some())
            })
            .map_err(transaction_error)?;
        Ok(removed)
    }

    fn write(&self, entry: &StoredEntry) -> Result<(), StoreError> {
        let key = entry.meta.key;
        let k = key.as_str().as_bytes();
        let meta_bytes = encode_meta(&entry.meta);
        let record = encode_entry(&meta_bytes, &entry.value);
        let new_expiry = entry
            .meta
            .expires_at
            .map(|t| expiry_key(to_millis(t), &key));
        (&self.entries, &self.meta, &self.expiry)
            .transaction(|(entries, meta, expiry)| {
                if let Some(old) = meta.insert(k, meta_bytes.as_slice())? {
                    if let Some(expires) = decode_meta(key, &old).and_then(|m| m.expires_at) {
                        expiry.remove(expiry_key(to_millis(expires), &key))?;
                    }
                }
                if let Some(index) = &new_expiry {
                    expiry.insert(index.as_slice(), &[] as &[u8])?;
                }
                entries.insert(k, record.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(transaction_error)
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
        let Some(bytes) = self.entries.get(key.as_str()).map_err(store_error)? else {
            return Ok(None);
        };
        match decode_entry(*key, bytes) {
            Some(entry) => Ok(Some(entry)),
            None => {
                tracing::warn!(%key, "unreadable sled record: deleting it");
                self.remove(key)?;
                Ok(None)
            }
        }
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.write(&entry)?;
        self.flushed().await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let removed = self.remove(key)?;
        self.flushed().await?;
        Ok(removed)
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
            let n = store.meta.len() as u64;
            for tree in [&store.entries, &store.meta, &store.expiry] {
                tree.clear().map_err(store_error)?;
            }
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
        // Only the expired part of the index is visited.
        let bound = expiry_bound(to_millis(now));
        let expired: Vec<CacheKey> = self
            .expiry
            .range(..bound)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| key_of_expiry(&k)))
            .collect();
        let mut removed = 0;
        for key in &expired {
            if self.remove(key)? {
                removed += 1;
            }
        }
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

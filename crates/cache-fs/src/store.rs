//! [`FsStore`]: the [`CacheStore`] over a directory of readable files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use cache_core::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use futures_util::StreamExt;

use crate::layout::{Layout, io_error, is_kind};
use crate::ops;
use crate::record::Record;

/// Builds an [`FsStore`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FsStoreBuilder {
    max_bytes: Option<u64>,
    read_only: bool,
}

impl FsStoreBuilder {
    /// Bound the stored values to about this many bytes (default: unbounded). When a write
    /// takes them past it, the oldest entries (by creation) are deleted until they fit in
    /// 95 % of it; an entry larger than the bound is refused with
    /// [`StoreError::TooLarge`].
    ///
    /// # Note
    ///
    /// Each process counts what it writes and recounts the directory whenever it has
    /// written a twentieth of the bound, so with several writing processes the total can
    /// pass the bound by about a twentieth per process before one of them evicts.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Open the directory for reading only (default off): nothing is created, swept or
    /// evicted, and every write fails with a [`StoreError::Backend`] that says so (not a
    /// transient error, so the middleware's circuit breaker stays closed and reads go on).
    /// For a cache directory on a read-only file system, or one an inspection must leave
    /// exactly as it found it: fixtures committed to a repository (which keeps no empty
    /// directories) read in a read-only checkout, an export on read-only media.
    ///
    /// ```
    /// use cache_core::CacheStore;
    /// use cache_fs::FsStore;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("fixtures");
    /// # FsStore::open(&path)?;
    /// let fixtures = FsStore::builder().read_only(true).open(&path)?;
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// assert_eq!(fixtures.count().await?, 0);
    /// assert!(fixtures.clear().await.is_err(), "refused: opened read-only");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Opens (creating if needed) the cache directory at `path`, and removes what writers
    /// that died there left behind. Opened [read-only](FsStoreBuilder::read_only), it only
    /// checks that `path` is a directory.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the directory cannot be created or read, or one of the
    /// directories the store makes in it (`entries`, its shards, `groups`) is a link or not a
    /// directory: the store does not write through links. A URL group's directory that is a
    /// link fails the writes of that group's entries the same way.
    pub fn open(self, path: impl AsRef<Path>) -> Result<FsStore, StoreError> {
        let layout = Layout::new(path.as_ref().to_path_buf());
        if self.read_only {
            // Missing directories under it read as empty: a checkout keeps no empty ones.
            layout.check_root().map_err(StoreError::unavailable)?;
        } else {
            layout.create().map_err(StoreError::unavailable)?;
        }
        let inner = Inner {
            layout,
            max_bytes: self.max_bytes,
            read_only: self.read_only,
            estimate: AtomicI64::new(0),
            written_since_count: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        if inner.read_only {
            return Ok(FsStore {
                inner: Arc::new(inner),
            });
        }
        inner.sweep(SystemTime::now())?;
        if inner.max_bytes.is_some() {
            inner.enforce_bound()?;
        }
        Ok(FsStore {
            inner: Arc::new(inner),
        })
    }
}

/// A [`CacheStore`] in a directory of readable files. Cheap to clone (clones share their
/// byte count); any number of instances and processes may open the same directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) layout: Layout,
    pub(crate) max_bytes: Option<u64>,
    /// [`FsStoreBuilder::read_only`]: every write is refused.
    read_only: bool,
    /// The bytes stored, as of the last count plus what this process wrote since.
    estimate: AtomicI64,
    written_since_count: AtomicU64,
    /// One eviction at a time in this process.
    evicting: Mutex<()>,
}

impl FsStore {
    /// Opens the directory at `path` with the default settings.
    ///
    /// # Errors
    ///
    /// As [`FsStoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open(path)
    }

    /// A builder.
    pub fn builder() -> FsStoreBuilder {
        FsStoreBuilder::default()
    }

    /// The cache directory.
    pub fn path(&self) -> &Path {
        self.inner.layout.root()
    }

    /// Where the JSON file of the entry under `key` is (whether or not there is one).
    pub fn record_path(&self, key: &CacheKey) -> PathBuf {
        self.inner.layout.record(key)
    }

    /// Removes what writers that died left behind (temporary files and body files no
    /// record names, once ten minutes old; group markers of entries that are gone).
    /// [`FsStoreBuilder::open`] does it; call it again in a long-running process if writers
    /// may be killed. Returns how many files it removed.
    ///
    /// # Errors
    ///
    /// The file system's errors.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.writable()?;
        self.blocking(|inner| inner.sweep(SystemTime::now())).await
    }

    /// Opens the directory at `path` for reading only ([`FsStoreBuilder::read_only`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when `path` is not a directory.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().read_only(true).open(path)
    }

    /// True when opened with [`FsStoreBuilder::read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// `Ok` unless opened read-only: every write asks first.
    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        match self.inner.read_only {
            false => Ok(()),
            true => Err(StoreError::backend(format!(
                "the cache directory {} was opened read-only: nothing is written",
                self.path().display()
            ))),
        }
    }

    /// Runs `f` on the blocking pool: file I/O never runs on the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(StoreError::backend)?
    }
}

impl Inner {
    fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let mut removed = 0;
        for shard in 0..=255u8 {
            removed += ops::sweep_shard(&self.layout, shard, now)?;
        }
        Ok(removed + self.sweep_groups()?)
    }

    /// Removes group markers whose entry is gone or moved to another group (a writer died
    /// between marking and committing), and empty group directories; a marker of a record
    /// this version cannot read stays.
    fn sweep_groups(&self) -> Result<u64, StoreError> {
        let groups = self.layout.root().join("groups");
        let mut removed = 0;
        let listing = match std::fs::read_dir(&groups) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(e)),
        };
        // Only what the store makes there, a directory per group holding a file per key:
        // anything else under those names (edited or committed by hand) is passed over, where
        // listing or removing it failed the whole sweep.
        for group_dir in listing {
            let group_dir = group_dir.map_err(io_error)?;
            if !is_kind(&group_dir, std::fs::FileType::is_dir) {
                continue;
            }
            let group_dir = group_dir.path();
            let Some(group) = file_key(&group_dir) else {
                continue;
            };
            for marker in std::fs::read_dir(&group_dir).map_err(io_error)? {
                let marker = marker.map_err(io_error)?;
                if !is_kind(&marker, std::fs::FileType::is_file) {
                    continue;
                }
                let marker = marker.path();
                let Some(key) = file_key(&marker) else {
                    continue;
                };
                let _lock = self.layout.lock(&key)?;
                let stale = match ops::read_record(&self.layout, &key)? {
                    Some(record) => record.url_group != Some(group),
                    // A record this version cannot read (a later version's format, sharing
                    // the directory) may be of this group: not ours to judge, as its body is
                    // not (`sweep_shard`). Only with no record at all is the marker stale.
                    None => !ops::is_record_file(&self.layout.record(&key))?,
                };
                if stale {
                    removed += u64::from(crate::layout::remove_if_present(&marker)?);
                }
            }
            // Fails while markers remain: only empty directories go.
            let _ = std::fs::remove_dir(&group_dir);
        }
        Ok(removed)
    }

    /// Counts the bytes stored and, past the bound, deletes the oldest entries until they
    /// fit in 95 % of it.
    fn enforce_bound(&self) -> Result<(), StoreError> {
        let Some(max) = self.max_bytes else {
            return Ok(());
        };
        let _one = self.evicting.lock().unwrap_or_else(|e| e.into_inner());
        let records = self.scan_counted(max)?;
        let mut total = records
            .iter()
            .map(|(_, size)| *size)
            .fold(0, u64::saturating_add);
        if total > max {
            total = self.evict_oldest(records, total, max / 20 * 19)?;
        }
        self.estimate
            .store(i64::try_from(total).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.written_since_count.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Every readable record, with the bytes the bound `max` counts its entry at: what its
    /// files hold ([`ops::stored_size`]), not the size its record claims (anyone may edit a
    /// record: one claiming the largest size there is made the bound evict every other
    /// entry, one claiming none kept a large body out of the count). An entry over `max` (a
    /// sparse body file claiming exabytes; one written before the bound was set) counts as
    /// `max + 1`: counted whole, it saturated the total, which then stayed over the bound
    /// whatever was evicted.
    fn scan_counted(&self, max: u64) -> Result<Vec<(Record, u64)>, StoreError> {
        let records = self.scan()?.into_iter().map(|record| {
            let size = ops::stored_size(&self.layout, &record);
            (record, size.min(max.saturating_add(1)))
        });
        Ok(records.collect())
    }

    /// Every readable record.
    fn scan(&self) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        for shard in 0..=255u8 {
            records.extend(ops::scan_shard(&self.layout, shard)?);
        }
        Ok(records)
    }

    /// Deletes the entries of `records` (each with the bytes it was counted at, `total` in
    /// all), those larger than `target` first, then the oldest, until the total is at most
    /// `target`; returns the total left. Only the entries counted go: not one written under
    /// the same key since, nor a record that cannot be read now (another version's,
    /// damaged), which cannot be told from one written since.
    fn evict_oldest(
        &self,
        mut records: Vec<(Record, u64)>,
        mut total: u64,
        target: u64,
    ) -> Result<u64, StoreError> {
        // An entry larger than the target never fits: it goes first, before any older one
        // that would.
        records.sort_by_key(|(r, size)| (*size <= target, r.created_at_ms));
        for (old, size) in records {
            if total <= target {
                break;
            }
            let same = |r: &Record| r.is_same_write(&old);
            let removed = ops::delete_if_readable(&self.layout, &old.key, same)?;
            if removed.is_some() {
                total = total.saturating_sub(size);
            }
        }
        Ok(total)
    }

    pub(crate) fn after_write(&self, delta: i64, written: u64) -> Result<(), StoreError> {
        let Some(max) = self.max_bytes else {
            return Ok(());
        };
        // Saturating: the sizes come from records anyone may edit (a wrapped counter only
        // delays the next count, which sets it right).
        let estimate = self
            .estimate
            .fetch_add(delta, Ordering::Relaxed)
            .saturating_add(delta);
        let written = self
            .written_since_count
            .fetch_add(written, Ordering::Relaxed)
            .saturating_add(written);
        if estimate > i64::try_from(max).unwrap_or(i64::MAX) || written > max / 20 {
            self.enforce_bound()?;
        }
        Ok(())
    }

    pub(crate) fn removed(&self, bytes: u64) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.estimate.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The key a file or directory is named after.
fn file_key(path: &Path) -> Option<CacheKey> {
    path.file_name()?.to_str()?.parse().ok()
}

#[async_trait]
impl CacheStore for FsStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let key = *key;
        self.blocking(move |inner| ops::get(&inner.layout, &key))
            .await
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.write_if(entry, |_| true).await.map(drop)
    }

    /// Checked and written under the key's lock, as `delete_if_created` checks: a record
    /// this version cannot read is not the one read, and stays.
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let created_at = cache_core::time::truncate_to_millis(created_at);
        self.write_if(entry, move |record| {
            record.is_some_and(|record| record.meta().created_at == created_at)
        })
        .await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.writable()?;
        let key = *key;
        self.blocking(move |inner| {
            let removed = ops::delete_if(&inner.layout, &key, |_| true)?;
            if let Some(bytes) = removed {
                inner.removed(bytes);
            }
            Ok(removed.is_some())
        })
        .await
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        let (key, created_at) = (*key, cache_core::time::truncate_to_millis(created_at));
        self.blocking(move |inner| {
            let same = |r: &crate::record::Record| r.meta().created_at == created_at;
            let removed = ops::delete_if_readable(&inner.layout, &key, same)?;
            if let Some(bytes) = removed {
                inner.removed(bytes);
            }
            Ok(removed.is_some())
        })
        .await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        futures_util::stream::iter(0..=255u8)
            .then(move |shard| async move {
                let listed = self
                    .blocking(move |inner| ops::scan_shard(&inner.layout, shard))
                    .await;
                match listed {
                    Ok(records) => ops::metas(records),
                    Err(e) => vec![Err(e)],
                }
            })
            .flat_map(futures_util::stream::iter)
            .boxed()
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.remove_where(|_| true).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| {
            let mut count = 0;
            for shard in 0..=255u8 {
                count += ops::record_keys(&inner.layout, shard)?.len() as u64;
            }
            Ok(count)
        })
        .await
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let group = *url_group;
        self.blocking(move |inner| {
            let dir = inner.layout.group_dir(&group);
            let listing = match std::fs::read_dir(dir) {
                Ok(listing) => listing,
                // No group, or a file where its directory goes (not the store's: no markers).
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(io_error(e)),
            };
            let mut found = Vec::new();
            for marker in listing {
                let Some(key) = file_key(&marker.map_err(io_error)?.path()) else {
                    continue;
                };
                let record = ops::read_record(&inner.layout, &key)?;
                if let Some(record) = record.filter(|r| r.url_group == Some(group)) {
                    found.push(record.meta());
                }
            }
            Ok(found)
        })
        .await
    }

    /// Bodies of any size: written as they stream, read back from their file.
    fn body_files(&self) -> Option<&dyn cache_core::BodyFiles> {
        Some(self)
    }

    /// The store's bound, when it has one: a value over it would be all it holds.
    fn max_value_bytes(&self) -> Option<u64> {
        self.inner.max_bytes
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        // A record this version cannot read is not judged expired.
        self.remove_where(move |record| record.is_some_and(|r| r.meta().is_expired(now)))
            .await
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        let key = *key;
        self.blocking(move |inner| ops::set_expiry(&inner.layout, &key, expires_at))
            .await
    }
}

impl FsStore {
    /// Writes `entry` if `select` takes the record under its key as read under the key's
    /// lock (`None`: none, or one this version cannot read); true when it wrote.
    async fn write_if(
        &self,
        entry: StoredEntry,
        select: impl Fn(Option<&crate::record::Record>) -> bool + Send + 'static,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        let size = entry.value.len() as u64;
        StoreError::check_size(size, self.inner.max_bytes)?;
        self.blocking(
            move |inner| match ops::put_if(&inner.layout, &entry, select)? {
                Some(delta) => inner.after_write(delta, size).map(|()| true),
                None => Ok(false),
            },
        )
        .await
    }

    /// Removes every entry whose record `select` takes (`None`: one this version cannot
    /// read), shard by shard under each shard's lock.
    async fn remove_where(
        &self,
        select: impl Fn(Option<&crate::record::Record>) -> bool + Send + Sync + Copy + 'static,
    ) -> Result<u64, StoreError> {
        self.writable()?;
        let mut removed = 0;
        for shard in 0..=255u8 {
            removed += self
                .blocking(move |inner| {
                    let (count, bytes) = ops::remove_in_shard(&inner.layout, shard, select)?;
                    inner.removed(bytes);
                    Ok(count)
                })
                .await?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use cache_core::testing::key;

    use super::*;

    /// Eviction deletes what it counted: a record under a counted key that cannot be read now
    /// (a later version's, written there since the count) is not the entry counted, and stays.
    #[tokio::test]
    async fn eviction_leaves_a_record_it_cannot_read_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for n in 0..3u64 {
            let meta = EntryMeta::new(key(n), "https://e/", start + Duration::from_secs(n), None);
            let entry = StoredEntry::new(meta, Bytes::from(vec![b'x'; 1000]));
            store.put(entry).await.unwrap();
        }
        let counted = store.inner.scan_counted(u64::MAX).unwrap();
        assert_eq!(counted.len(), 3);
        // Entry 0, the oldest, is written again meanwhile, by a version of a later format.
        let path = store.record_path(&key(0));
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["format"] = 2.into();
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        let left = store.inner.evict_oldest(counted, 3000, 0).unwrap();
        assert_eq!(
            left, 1000,
            "entries 1 and 2 went; entry 0 was not the one counted"
        );
        assert!(path.exists(), "the later version's record was deleted");
        assert!(!store.record_path(&key(1)).exists());
        assert!(!store.record_path(&key(2)).exists());
    }
}

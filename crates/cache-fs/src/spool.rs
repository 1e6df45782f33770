//! Bodies written as they stream ([`BodyFiles`]): a temporary file in the key's shard,
//! appended to in batches on the blocking pool, committed as an ordinary entry (the body
//! renamed to its generation's name, then the record: the same commit point as a `put`),
//! removed when dropped uncommitted.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{BodyFiles, BodySpool, CacheKey, EntryMeta, Opened, StoreError};

use crate::layout::{TEMP_PREFIX, io_error, unique_suffix};
use crate::ops;
use crate::record::Record;
use crate::store::{FsStore, Inner};

/// Chunks are gathered up to this many bytes before one write: one trip to the blocking
/// pool per batch, not per network chunk, and never more than this held.
const BATCH: usize = 256 * 1024;

/// A body being written to a temporary file.
#[derive(Debug)]
pub(crate) struct FsSpool {
    inner: Arc<Inner>,
    key: CacheKey,
    temp: PathBuf,
    /// `None` only while a batch is being written on the blocking pool.
    file: Option<File>,
    pending: Vec<Bytes>,
    pending_len: usize,
    len: u64,
    /// Renamed into place: nothing to remove on drop.
    committed: bool,
}

#[async_trait]
impl BodyFiles for FsStore {
    async fn begin(&self, key: &CacheKey) -> Result<Box<dyn BodySpool>, StoreError> {
        self.writable()?;
        let key = *key;
        let owner = Arc::clone(&self.inner);
        // The spool is made where its file is: a `begin` given up while the file was being
        // created (a store timeout, a cancelled request) drops the spool with the task's
        // result, which removes the file; created and handed back as a bare path, it stayed.
        let spool = self
            .blocking(move |inner| {
                let temp = inner
                    .layout
                    .shard_dir(&key)
                    .join(format!("{TEMP_PREFIX}{}.body", unique_suffix()));
                let file = File::create_new(&temp).map_err(io_error)?;
                Ok(FsSpool {
                    inner: owner,
                    key,
                    temp,
                    file: Some(file),
                    pending: Vec::new(),
                    pending_len: 0,
                    len: 0,
                    committed: false,
                })
            })
            .await?;
        Ok(Box::new(spool))
    }

    async fn open(&self, key: &CacheKey, inline_up_to: u64) -> Result<Option<Opened>, StoreError> {
        let key = *key;
        self.blocking(move |inner| ops::open(&inner.layout, &key, inline_up_to))
            .await
    }

    async fn renew(
        &self,
        key: &CacheKey,
        was_created: SystemTime,
        created_at: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        let key = *key;
        self.blocking(move |inner| {
            ops::renew(&inner.layout, &key, was_created, (created_at, expires_at))
        })
        .await
    }

    async fn delete_if_serving(&self, key: &CacheKey, served: &File) -> Result<bool, StoreError> {
        self.writable()?;
        let (key, served) = (*key, served.metadata().map_err(io_error)?);
        self.blocking(move |inner| {
            let removed = ops::delete_if_serving(&inner.layout, &key, &served)?;
            if let Some(bytes) = removed {
                inner.removed(bytes);
            }
            Ok(removed.is_some())
        })
        .await
    }
}

impl FsSpool {
    /// Writes the gathered chunks to the file.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let mut file = self.file.take().ok_or_else(spool_closed)?;
        let (file, written) = tokio::task::spawn_blocking(move || {
            let written = chunks.iter().try_for_each(|chunk| file.write_all(chunk));
            (file, written)
        })
        .await
        .map_err(StoreError::backend)?;
        self.file = Some(file);
        written.map_err(io_error)
    }
}

#[async_trait]
impl BodySpool for FsSpool {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.len += chunk.len() as u64;
        // Refused as soon as the body alone is over the store's bound, not once all of it
        // is on disk: a download of gigabytes filled the disk before the commit said no.
        // Dropped then, the spool removes its file.
        StoreError::check_size(self.len, self.inner.max_bytes)?;
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn commit(
        mut self: Box<Self>,
        meta: EntryMeta,
        before: Bytes,
        after: Bytes,
    ) -> Result<(), StoreError> {
        self.flush().await?;
        let size = before.len() as u64 + self.len + after.len() as u64;
        StoreError::check_size(size, self.inner.max_bytes)?;
        let mut meta = meta;
        meta.key = self.key;
        let inner = Arc::clone(&self.inner);
        let (temp, len) = (self.temp.clone(), self.len);
        // Closed before the rename: the file is complete.
        self.file = None;
        let committed = tokio::task::spawn_blocking(move || {
            let layout = &inner.layout;
            let dir = layout.shard_dir(&meta.key);
            let body_name = format!("{}.{}.body", meta.key, unique_suffix());
            let record = Record::streamed(&meta, (&before, &after), len, &body_name);
            let record_temp = crate::layout::write_temp(&dir, "json", &[&record.to_json()])?;
            let body_temp = record.body_file.as_ref().map(|_| temp.as_path());
            let delta = ops::commit(layout, &record, body_temp, &record_temp);
            if delta.is_err() {
                let _ = fs::remove_file(&record_temp);
            }
            inner.after_write(delta?, size)
        })
        .await
        .map_err(StoreError::backend)?;
        // Renamed when committed; otherwise removed on drop, which also covers an empty
        // body (no body file) and a failed commit.
        self.committed = committed.is_ok() && len > 0;
        committed
    }
}

impl Drop for FsSpool {
    fn drop(&mut self) {
        if !self.committed {
            self.file = None;
            // One unlink; a failure leaves a temporary file the sweep removes later.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn spool_closed() -> StoreError {
    StoreError::backend(std::io::Error::other(
        "body spool used after a failed write",
    ))
}

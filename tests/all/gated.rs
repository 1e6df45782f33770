//! [`Gated`]: a store whose chosen calls stop midway until the test lets them go on, for
//! landing a change (an invalidation, a deletion) at the one moment a race needs.

use std::sync::{Arc, Mutex};

use reqwest_caching::cache_core::{BodyFiles, BodySpool, Opened};
use reqwest_caching::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use tokio::sync::{mpsc, oneshot};

/// What a gated call sends the test: the sender that lets it go on.
pub type Release = oneshot::Sender<()>;

/// A store around another whose gated calls say so and wait for the test's word: the next
/// read of a key ([`Gated::gate_next_read`]), every listing of a URL group
/// ([`Gated::gate_listings`]), or every spool's write or commit of a store that keeps bodies
/// in files ([`Gated::gate_writes`], [`Gated::gate_commits`]). Every other call goes to the store within.
#[derive(Debug)]
pub struct Gated {
    inner: Arc<dyn CacheStore>,
    next_read: Mutex<Option<(CacheKey, mpsc::UnboundedSender<Release>)>>,
    commits: Mutex<Option<mpsc::UnboundedSender<Release>>>,
    writes: Mutex<Option<mpsc::UnboundedSender<Release>>>,
    listings: Mutex<Option<mpsc::UnboundedSender<Release>>>,
}

impl Gated {
    pub fn new(inner: Arc<dyn CacheStore>) -> Self {
        Self {
            inner,
            next_read: Mutex::new(None),
            commits: Mutex::new(None),
            writes: Mutex::new(None),
            listings: Mutex::new(None),
        }
    }

    /// Gates every listing of a URL group's entries from now on (before the store within
    /// lists them): an invalidation under way.
    pub fn gate_listings(&self) -> mpsc::UnboundedReceiver<Release> {
        let (gated, listings) = mpsc::unbounded_channel();
        *self.listings.lock().unwrap() = Some(gated);
        listings
    }

    /// Gates the next read of `key` (after the store answered it).
    pub fn gate_next_read(&self, key: CacheKey) -> mpsc::UnboundedReceiver<Release> {
        let (gated, reads) = mpsc::unbounded_channel();
        *self.next_read.lock().unwrap() = Some((key, gated));
        reads
    }

    /// Gates every commit of the spools begun from now on (before the store within commits).
    // Only the file store's tests spool.
    #[cfg_attr(not(feature = "fs"), allow(dead_code))]
    pub fn gate_commits(&self) -> mpsc::UnboundedReceiver<Release> {
        let (gated, commits) = mpsc::unbounded_channel();
        *self.commits.lock().unwrap() = Some(gated);
        commits
    }

    /// Gates every write of the spools begun from now on (before the store within writes).
    #[cfg_attr(not(feature = "fs"), allow(dead_code))]
    pub fn gate_writes(&self) -> mpsc::UnboundedReceiver<Release> {
        let (gated, writes) = mpsc::unbounded_channel();
        *self.writes.lock().unwrap() = Some(gated);
        writes
    }

    fn files(&self) -> &dyn BodyFiles {
        self.inner
            .body_files()
            .expect("asked for only when the store has body files")
    }
}

/// Tells the test through `gated` and waits for its word (not when the test is gone).
async fn wait(gated: &mpsc::UnboundedSender<Release>) {
    let (release, released) = oneshot::channel();
    if gated.send(release).is_ok() {
        let _ = released.await;
    }
}

#[async_trait::async_trait]
impl CacheStore for Gated {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let read = self.inner.get(key).await;
        let gated = {
            let mut next_read = self.next_read.lock().unwrap();
            match next_read.take() {
                Some((gated_key, gated)) if gated_key == *key => Some(gated),
                other => {
                    *next_read = other;
                    None
                }
            }
        };
        if let Some(gated) = gated {
            wait(&gated).await;
        }
        read
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.inner.put(entry).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: std::time::SystemTime,
    ) -> Result<bool, StoreError> {
        self.inner.delete_if_created(key, created_at).await
    }
    fn entries(&self) -> futures_util::stream::BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let gated = self.listings.lock().unwrap().clone();
        if let Some(gated) = gated {
            wait(&gated).await;
        }
        self.inner.entries_for_url(url_group).await
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
    fn body_files(&self) -> Option<&dyn BodyFiles> {
        self.inner.body_files()?;
        Some(self)
    }
}

#[async_trait::async_trait]
impl BodyFiles for Gated {
    async fn begin(&self, key: &CacheKey) -> Result<Box<dyn BodySpool>, StoreError> {
        let inner = self.files().begin(key).await?;
        let commits = self.commits.lock().unwrap().clone();
        let writes = self.writes.lock().unwrap().clone();
        Ok(Box::new(GatedSpool {
            inner,
            commits,
            writes,
        }))
    }
    async fn open(&self, key: &CacheKey, inline_up_to: u64) -> Result<Option<Opened>, StoreError> {
        self.files().open(key, inline_up_to).await
    }
    async fn renew(
        &self,
        key: &CacheKey,
        was_created: std::time::SystemTime,
        created_at: std::time::SystemTime,
        expires_at: Option<std::time::SystemTime>,
    ) -> Result<bool, StoreError> {
        self.files()
            .renew(key, was_created, created_at, expires_at)
            .await
    }
}

/// A spool that, when its commits or writes are gated, waits for the test's word before
/// committing or writing.
#[derive(Debug)]
struct GatedSpool {
    inner: Box<dyn BodySpool>,
    commits: Option<mpsc::UnboundedSender<Release>>,
    writes: Option<mpsc::UnboundedSender<Release>>,
}

#[async_trait::async_trait]
impl BodySpool for GatedSpool {
    async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), StoreError> {
        if let Some(writes) = &self.writes {
            wait(writes).await;
        }
        self.inner.write(chunk).await
    }
    async fn commit(
        self: Box<Self>,
        meta: EntryMeta,
        before: bytes::Bytes,
        after: bytes::Bytes,
    ) -> Result<(), StoreError> {
        if let Some(commits) = &self.commits {
            wait(commits).await;
        }
        self.inner.commit(meta, before, after).await
    }
}

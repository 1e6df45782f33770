//! Writes racing with writes and reads, and writes cancelled part-way, with the interleaving
//! driven explicitly: the backing store is a real [`MemoryStore`] behind a wrapper whose
//! `put` of a value starting with `slow` stops after the write has landed, until the test
//! lets it return.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoreError, StoredEntry};
use cache_tiered::TieredStore;
use futures_core::stream::BoxStream;
use tokio::sync::Notify;

mod common;
use common::{entry, key};

/// A memory store whose `put` of a `slow…` value writes, says so (`applied`), and returns
/// only when `release` is notified.
#[derive(Debug, Default)]
struct PausingStore {
    inner: MemoryStore,
    applied: Notify,
    release: Notify,
}

#[async_trait]
impl CacheStore for PausingStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.get(key).await
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        let slow = entry.value.starts_with(b"slow");
        self.inner.put(entry).await?;
        if slow {
            self.applied.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
}

/// Memory answers first for an hour: a wrong copy would be served, not refreshed.
async fn tiered(backing: &Arc<PausingStore>) -> Arc<TieredStore> {
    let store = TieredStore::builder_shared(backing.clone())
        .memory_ttl(Duration::from_secs(3600))
        .build()
        .await
        .expect("no source: cannot fail");
    Arc::new(store)
}

async fn value(store: &TieredStore, n: u64) -> Option<Bytes> {
    store.get(&key(n)).await.expect("get").map(|e| e.value)
}

/// Two puts of one key: the backing store applies the first, then the second, but the first
/// call returns last. Memory must not end up holding the first value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_that_returns_last_does_not_override_the_one_kept() {
    let backing = Arc::new(PausingStore::default());
    let store = tiered(&backing).await;

    let first = tokio::spawn({
        let store = store.clone();
        async move { store.put(entry(1, "slow v1", None)).await }
    });
    backing.applied.notified().await;
    store.put(entry(1, "v2", None)).await.expect("second put");
    backing.release.notify_one();
    first.await.expect("task").expect("first put");

    let kept = backing.inner.get(&key(1)).await.unwrap().map(|e| e.value);
    assert_eq!(
        kept.as_deref(),
        Some(&b"v2"[..]),
        "the backing store kept v2"
    );
    assert_eq!(
        value(&store, 1).await.as_deref(),
        Some(&b"v2"[..]),
        "memory serves what the backing store kept"
    );
}

/// A put cancelled after its write landed (a caller's timeout drops the call) leaves no old
/// copy in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_cancelled_after_its_write_leaves_no_old_copy() {
    let backing = Arc::new(PausingStore::default());
    let store = tiered(&backing).await;
    store.put(entry(1, "old", None)).await.unwrap();
    assert_eq!(value(&store, 1).await.as_deref(), Some(&b"old"[..]));

    let mut put = Box::pin(store.put(entry(1, "slow new", None)));
    tokio::select! {
        _ = &mut put => panic!("the put returned before it was released"),
        () = backing.applied.notified() => {}
    }
    drop(put);

    assert_eq!(
        value(&store, 1).await.as_deref(),
        Some(&b"slow new"[..]),
        "the written value, not the old copy"
    );
}

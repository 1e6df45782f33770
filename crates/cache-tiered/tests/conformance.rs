//! The conformance suite over [`TieredStore`] on each backing store, against real servers
//! started by test-support.
//!
//! - Redis, with server-assisted invalidation, twice: as is (memory answers first; no second
//!   instance), and behind a [`Synced`] wrapper that calls [`TieredStore::sync`] before each
//!   read, with a second tiered instance over the same prefix: the suite's "a second
//!   instance sees the first one's writes at once" holds exactly when the invalidations
//!   have arrived, which `sync` waits for.
//! - Stores without notifications (memory, SQLite, sled, files), with a memory TTL of a
//!   minute and no second instance: by design, a second instance sees a change only after
//!   the memory TTL (tests/coherence.rs shows both sides of that). The tier only forwards to
//!   a store without notifications, whichever it is, so the remote ones (MongoDB, DynamoDB, a
//!   Redis Cluster) are not run again here: each passes the suite in its own crate, against
//!   its real server, and here they only cost CI about half a minute.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cache_core::codec::EntryCodec;
use cache_core::store::DecodedEntry;
use cache_core::testing::StoreUnderTest;
use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoreError, StoredEntry};
use cache_redis::RedisStore;
use cache_tiered::{RedisInvalidations, TieredStore};
use futures_core::stream::BoxStream;
use test_support::{shared_redis, unique_namespace};

const TTL_OFFSET: Duration = Duration::from_secs(600);
const MEMORY_TTL: Duration = Duration::from_secs(60);

/// A tiered store over Redis with invalidations, on `prefix`.
async fn tiered_redis(prefix: &str) -> TieredStore {
    let url = shared_redis().url();
    let redis = RedisStore::builder()
        .prefix(prefix)
        .ttl_offset(Some(TTL_OFFSET))
        .open(&url)
        .await
        .expect("connect to redis-server");
    let invalidations = RedisInvalidations::for_store(&redis, &url)
        .expect("url")
        // A loaded machine's slow PING answer must not read as a lost subscription.
        .timeout(Duration::from_secs(10));
    TieredStore::builder(redis)
        .memory(MemoryStore::bounded(1_000, 64 << 20))
        .invalidations(invalidations)
        .build()
        .await
        .expect("subscribe to invalidations")
}

/// A tiered store without notifications over `backing`.
async fn tiered_ttl(backing: impl CacheStore) -> Arc<dyn CacheStore> {
    let store = TieredStore::builder(backing)
        .memory(MemoryStore::bounded(1_000, 64 << 20))
        .memory_ttl(MEMORY_TTL)
        .build()
        .await
        .expect("no source: cannot fail");
    Arc::new(store)
}

mod redis {
    use super::*;

    async fn store() -> StoreUnderTest {
        let store = tiered_redis(&unique_namespace("tiered")).await;
        StoreUnderTest::new(Arc::new(store)).with_retention(TTL_OFFSET)
    }

    cache_core::store_conformance_tests!(store);
}

mod redis_synced {
    use super::*;

    async fn store() -> StoreUnderTest {
        let prefix = unique_namespace("tiered-synced");
        let open = move |prefix: String| async move {
            Arc::new(Synced(tiered_redis(&prefix).await)) as Arc<dyn CacheStore>
        };
        StoreUnderTest::new(open(prefix.clone()).await)
            .with_retention(TTL_OFFSET)
            .with_reopen(move || open(prefix.clone()))
    }

    cache_core::store_conformance_tests!(store);
}

mod memory {
    use super::*;

    async fn store() -> StoreUnderTest {
        StoreUnderTest::new(tiered_ttl(MemoryStore::new()).await)
    }

    cache_core::store_conformance_tests!(store);
}

mod sqlite {
    use super::*;

    async fn store() -> StoreUnderTest {
        let dir = tempfile::tempdir().expect("temp dir");
        let backing = cache_sqlite::SqliteStore::open(dir.path().join("c.sqlite")).expect("open");
        StoreUnderTest::new(tiered_ttl(backing).await).with_guard(dir)
    }

    cache_core::store_conformance_tests!(store);
}

mod sled {
    use super::*;

    async fn store() -> StoreUnderTest {
        let dir = tempfile::tempdir().expect("temp dir");
        let backing = cache_sled::SledStore::open(dir.path().join("c.sled")).expect("open");
        StoreUnderTest::new(tiered_ttl(backing).await).with_guard(dir)
    }

    cache_core::store_conformance_tests!(store);
}

mod fs {
    use super::*;

    async fn store() -> StoreUnderTest {
        let dir = tempfile::tempdir().expect("temp dir");
        let backing = cache_fs::FsStore::open(dir.path().join("c")).expect("open");
        StoreUnderTest::new(tiered_ttl(backing).await).with_guard(dir)
    }

    cache_core::store_conformance_tests!(store);
}

/// A tiered store that waits for invalidations before every read: what a caller that needs
/// read-your-writes across instances does.
#[derive(Debug)]
struct Synced(TieredStore);

impl Synced {
    async fn settle(&self) -> Result<(), StoreError> {
        self.0.sync().await
    }
}

#[async_trait]
impl CacheStore for Synced {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.settle().await?;
        self.0.get(key).await
    }

    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        self.settle().await?;
        self.0.get_decoded(key, codec).await
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.0.put(entry).await
    }

    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.0.put_if_created(entry, created_at).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.0.delete(key).await
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.0.delete_if_created(key, created_at).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.0.entries()
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.0.clear().await
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        self.0.entries_for_url(url_group).await
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.0.delete_expired(now).await
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.0.set_expiry(key, expires_at).await
    }
}

//! Coherence of the memory tier, in one process: two tiered stores over one real Redis
//! (each with its own connections and tracking subscription, as two processes would have),
//! a Redis killed and restarted, the memory TTL of stores without notifications, and the
//! short life of a failed write's fail-open copy.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoreError, StoredEntry};
use cache_redis::RedisStore;
use cache_tiered::{DEFAULT_MEMORY_TTL, RedisInvalidations, TieredStore};
use futures_core::stream::BoxStream;
use test_support::{RedisServer, StopStart, shared_redis, unique_namespace};

mod common;
mod over_redis;
use common::{entry, key};

/// A tiered store with the Redis store's default timeout: the calls these tests expect to
/// succeed must not fail on a loaded machine, and a killed server is refused at once.
async fn tiered(url: &str, prefix: &str) -> TieredStore {
    over_redis::tiered(url, prefix, None).await
}

async fn value(store: &TieredStore, n: u64) -> Option<Bytes> {
    store.get(&key(n)).await.expect("get").map(|e| e.value)
}

fn in_memory(store: &TieredStore, n: u64) -> Option<Bytes> {
    futures_util::FutureExt::now_or_never(store.memory().get(&key(n)))
        .expect("memory never waits")
        .expect("memory never fails")
        .map(|e| e.value)
}

/// Waits (bounded) for `condition`: a state the store reaches on its own, in the background.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A read fills memory; another instance's put, delete, set_expiry and clear each drop the
/// copy here (seen after `sync`, with no read in between that could refill it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_invalidates_memory_copies() {
    let url = shared_redis().url();
    let prefix = unique_namespace("coherence");
    let (here, there) = (tiered(&url, &prefix).await, tiered(&url, &prefix).await);

    let fill = async |n: u64, expected: &str| {
        here.sync().await.expect("sync");
        assert_eq!(value(&here, n).await.as_deref(), Some(expected.as_bytes()));
        assert_eq!(
            in_memory(&here, n).as_deref(),
            Some(expected.as_bytes()),
            "the read filled memory"
        );
    };

    there.put(entry(1, "v1", None)).await.unwrap();
    fill(1, "v1").await;
    // Served from that copy now.
    assert_eq!(value(&here, 1).await.as_deref(), Some(&b"v1"[..]));

    there.put(entry(1, "v2", None)).await.unwrap();
    here.sync().await.unwrap();
    assert_eq!(in_memory(&here, 1), None, "a put elsewhere drops the copy");
    assert_eq!(value(&here, 1).await.as_deref(), Some(&b"v2"[..]));

    let invalidated = here.stats().invalidations;
    assert!(there.delete(&key(1)).await.unwrap());
    here.sync().await.unwrap();
    assert_eq!(
        in_memory(&here, 1),
        None,
        "a delete elsewhere drops the copy"
    );
    assert_eq!(value(&here, 1).await, None);
    assert!(here.stats().invalidations > invalidated);

    there.put(entry(2, "e", None)).await.unwrap();
    fill(2, "e").await;
    let later = Some(SystemTime::now() + Duration::from_secs(3600));
    assert!(there.set_expiry(&key(2), later).await.unwrap());
    here.sync().await.unwrap();
    assert_eq!(
        in_memory(&here, 2),
        None,
        "set_expiry elsewhere drops the copy"
    );
    let read = here.get(&key(2)).await.unwrap().expect("still stored");
    assert_eq!(read.meta.expires_at, entry(2, "e", later).meta.expires_at);

    there.put(entry(3, "c", None)).await.unwrap();
    fill(3, "c").await;
    there.clear().await.unwrap();
    here.sync().await.unwrap();
    assert_eq!(
        in_memory(&here, 3),
        None,
        "a clear elsewhere drops the copy"
    );
    assert_eq!(value(&here, 3).await, None);
}

/// `FLUSHALL` on the server (a null invalidation) empties memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_flush_empties_memory() {
    let server = RedisServer::start();
    let here = tiered(&server.url(), "flush").await;
    here.put(entry(1, "v", None)).await.unwrap();
    here.sync().await.unwrap();
    assert_eq!(value(&here, 1).await.as_deref(), Some(&b"v"[..]));
    assert!(in_memory(&here, 1).is_some());
    let flushes = here.stats().flushes;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    here.sync().await.unwrap();
    assert_eq!(in_memory(&here, 1), None);
    assert!(here.stats().flushes > flushes);
    assert_eq!(value(&here, 1).await, None);
}

/// Redis killed: memory is flushed at once and stops answering first; while it is down a
/// write still lands in memory and a read answers with it (fail-open). Restarted: the tier
/// resubscribes and flushes again, so what memory held during the outage is never served
/// over what another instance wrote to the new server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_leaves_no_stale_copy() {
    let mut server = RedisServer::start();
    let url = server.url();
    let here = tiered(&url, "restart").await;
    here.put(entry(1, "before", None)).await.unwrap();
    here.sync().await.unwrap();
    assert_eq!(value(&here, 1).await.as_deref(), Some(&b"before"[..]));
    assert!(here.stats().memory_first);

    // The loss is reported on the driver's thread: memory stops answering first, then is
    // flushed (the count first, then the copies); the test waits for all of it.
    let flushes = here.stats().flushes;
    server.kill();
    eventually("memory flushed on the lost connection", || {
        let stats = here.stats();
        !stats.memory_first && stats.flushes > flushes && in_memory(&here, 1).is_none()
    })
    .await;
    assert_eq!(
        in_memory(&here, 1),
        None,
        "flushed when the connection dropped"
    );
    let failed = here.put(entry(1, "during", None)).await.unwrap_err();
    assert!(failed.is_transient(), "{failed:?}");
    assert_eq!(
        value(&here, 1).await.as_deref(),
        Some(&b"during"[..]),
        "fail-open: memory answers while Redis is down"
    );

    server.restart();
    let there = tiered(&url, "restart").await;
    there.put(entry(1, "after", None)).await.unwrap();
    eventually("resubscribed", || here.stats().memory_first).await;
    here.sync().await.unwrap();
    assert_eq!(
        value(&here, 1).await.as_deref(),
        Some(&b"after"[..]),
        "the outage's copy is gone"
    );
}

/// Memory answers only before an entry's expiry: an expired entry is read from the backing
/// store every time (which applies its own retention), so memory never outlives a TTL drop.
/// A fresh copy, without notifications, is served until the memory TTL even after the
/// backing store dropped it: the documented bound.
#[tokio::test]
async fn without_notifications_the_memory_ttl_bounds_staleness() {
    let backing = Arc::new(MemoryStore::new());
    let store = TieredStore::builder_shared(backing.clone())
        .memory_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    assert!(store.stats().memory_first);
    let expired = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(entry(1, "expired", expired)).await.unwrap();
    store.put(entry(2, "fresh", None)).await.unwrap();
    // Reads fill memory (a put only drops the copy).
    assert!(store.get(&key(1)).await.unwrap().is_some());
    assert!(store.get(&key(2)).await.unwrap().is_some());
    // The backing store drops both behind the tier's back (a TTL sweep, another process).
    backing.delete(&key(1)).await.unwrap();
    backing.delete(&key(2)).await.unwrap();
    assert_eq!(
        store.get(&key(1)).await.unwrap(),
        None,
        "expired: not served from memory"
    );
    assert_eq!(
        store.get(&key(2)).await.unwrap().map(|e| e.value),
        Some(Bytes::from_static(b"fresh")),
        "fresh: served from memory within the memory TTL"
    );

    // A zero memory TTL keeps nothing: every read asks the backing store.
    let strict = TieredStore::builder_shared(backing.clone())
        .memory_ttl(Duration::ZERO)
        .build()
        .await
        .unwrap();
    strict.put(entry(3, "x", None)).await.unwrap();
    assert!(strict.get(&key(3)).await.unwrap().is_some());
    backing.delete(&key(3)).await.unwrap();
    assert_eq!(strict.get(&key(3)).await.unwrap(), None);
}

/// A backing store that fails: a read answers with the memory copy even when the copy is
/// expired (memory would otherwise ask the backing store first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backing_store_is_answered_from_memory() {
    let mut server = RedisServer::start();
    let url = server.url();
    let redis = RedisStore::builder()
        .prefix("fail-open")
        .open(&url)
        .await
        .unwrap();
    // No notifications, so the kill does not flush: only the fail-open path is at work.
    let store = TieredStore::builder(redis)
        .memory_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let expired = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(entry(1, "old", expired)).await.unwrap();
    // The read fills memory (a put only drops the copy).
    assert_eq!(value_of(&store, 1).await.as_deref(), Some(&b"old"[..]));
    server.kill();
    assert_eq!(
        value_of(&store, 1).await.as_deref(),
        Some(&b"old"[..]),
        "Redis is down: memory answers"
    );
    assert!(store.get(&key(2)).await.unwrap_err().is_transient());
}

/// Only a backing store out of reach is answered from memory: a read it refuses fails, and
/// the copy (which nothing checks meanwhile, and which another process may have deleted) is
/// not served for as long as the refusal lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_backing_store_is_not_answered_from_memory() {
    let redis = RedisStore::builder()
        .prefix(unique_namespace("refusing"))
        .open(&shared_redis().url())
        .await
        .unwrap();
    let faulty = Faulty::new(redis);
    let refusing = Arc::clone(&faulty.refusing);
    let store = TieredStore::builder(faulty)
        .memory_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let expired = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(entry(1, "old", expired)).await.unwrap();
    assert_eq!(value_of(&store, 1).await.as_deref(), Some(&b"old"[..]));
    refusing.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = store.get(&key(1)).await.unwrap_err();
    assert!(!refused.is_transient(), "{refused:?}");
}

async fn value_of(store: &TieredStore, n: u64) -> Option<Bytes> {
    store
        .get(&key(n))
        .await
        .expect("fail-open")
        .map(|e| e.value)
}

/// A Redis store with faults: a `put` of a value starting with `unsent` fails as a timeout
/// would, without reaching Redis (a transient write failure while the tracking connection is
/// fine); once `refusing` is set, every read fails as a lasting refusal would (revoked
/// permissions, a value it cannot read), not a transient error.
#[derive(Debug)]
struct Faulty {
    redis: RedisStore,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl Faulty {
    fn new(redis: RedisStore) -> Self {
        let refusing = Arc::default();
        Self { redis, refusing }
    }
}

#[async_trait]
impl CacheStore for Faulty {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::other("NOPERM")));
        }
        self.redis.get(key).await
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        if entry.value.starts_with(b"unsent") {
            return Err(StoreError::Timeout(Duration::from_millis(500)));
        }
        self.redis.put(entry).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.redis.delete(key).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.redis.entries()
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.redis.clear().await
    }
}

/// With invalidations, a write that failed stays in memory (fail-open) only briefly: Redis
/// never stored it, so no notice will drop it, and it would be served here, and nowhere
/// else, until it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_served_from_memory_only_briefly() {
    let url = shared_redis().url();
    let redis = RedisStore::builder()
        .prefix(unique_namespace("unsent"))
        .open(&url)
        .await
        .expect("connect");
    let invalidations = RedisInvalidations::for_store(&redis, &url)
        .expect("url")
        // A loaded machine's slow PING answer must not read as a lost subscription.
        .timeout(Duration::from_secs(10));
    let here = TieredStore::builder(Faulty::new(redis))
        .invalidations(invalidations)
        .build()
        .await
        .expect("subscribe");

    // The copy is served for DEFAULT_MEMORY_TTL from the failed put: a read that came later
    // than that on a stalled machine proves nothing, and the write is tried again under a
    // new key (bounded).
    let mut served = None;
    for n in 1..=5 {
        let began = Instant::now();
        let failed = here.put(entry(n, "unsent", None)).await.unwrap_err();
        let filled = Instant::now();
        assert!(failed.is_transient(), "{failed:?}");
        let read = value(&here, n).await;
        if read.as_deref() == Some(&b"unsent"[..]) {
            served = Some((n, filled));
            break;
        }
        assert!(
            began.elapsed() > DEFAULT_MEMORY_TTL,
            "fail-open: memory keeps the write meanwhile (read {read:?})"
        );
    }
    let (n, filled) = served.expect("the write was served from memory within its lifetime");

    // The copy's deadline was set before the put returned: past once this much has gone.
    while filled.elapsed() <= DEFAULT_MEMORY_TTL {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    here.sync().await.unwrap();
    assert!(here.stats().memory_first, "the subscription stayed live");
    assert_eq!(value(&here, n).await, None, "Redis never stored it");
}

//! The cache never fails a request that would succeed without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::{
    CacheKey, CacheMiddleware, CacheResponseExt, CacheStore, EntryMeta, ManualClock, StoreError,
    StoredEntry,
};

use crate::origin::Origin;

/// A store whose every call fails as an unreachable server would, or hangs.
#[derive(Debug, Default)]
struct BrokenStore {
    hang: bool,
    calls: AtomicU64,
}

impl BrokenStore {
    async fn fail<T>(&self) -> Result<T, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(StoreError::unavailable(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "store down",
        )))
    }
}

#[async_trait]
impl CacheStore for BrokenStore {
    async fn get(&self, _: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.fail().await
    }
    async fn put(&self, _: StoredEntry) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn delete(&self, _: &CacheKey) -> Result<bool, StoreError> {
        self.fail().await
    }
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        Box::pin(futures_util::stream::once(self.fail()))
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.fail().await
    }
    async fn delete_expired(&self, _: SystemTime) -> Result<u64, StoreError> {
        self.fail().await
    }
}

#[tokio::test]
async fn a_store_that_is_down_means_the_network() {
    for hang in [false, true] {
        let store = Arc::new(BrokenStore {
            hang,
            ..Default::default()
        });
        // A manual clock: the breaker's back-off (1 s) never passes, however slow the
        // machine, so the calls after the fifth failure are refused, not probes.
        let cache = CacheMiddleware::builder()
            .shared_store(Arc::clone(&store) as _)
            .store_timeout(Duration::from_millis(50))
            .clock(Arc::new(ManualClock::starting_now()))
            .build()
            .unwrap();
        let handle = cache.handle();
        let client = cache.into_client(reqwest::Client::new());
        let origin = Origin::start().await;
        for n in 1..=2 {
            let response = client
                .get(origin.url("/x"))
                .send()
                .await
                .expect("request succeeds");
            assert!(!response.from_cache());
            assert_eq!(response.text().await.unwrap(), format!("/x #{n}"));
        }
        assert_eq!(origin.hits("/x"), 2, "hang={hang}");
        assert_eq!(
            handle.stats().errors,
            4,
            "hang={hang}: each read and write counted"
        );
        assert_eq!(store.calls.load(Ordering::Relaxed), 4);
        // Per-key handle calls are bounded like the middleware's; bulk ones (count, clear)
        // may legitimately run long, so only the failing store is asked.
        let key = handle
            .key_for(&http::Method::GET, &origin.url("/x"))
            .unwrap();
        let err = handle.get(&key).await.unwrap_err();
        let expected = if hang {
            matches!(err, reqwest_caching::Error::Store(StoreError::Timeout(t)) if t == Duration::from_millis(50))
        } else {
            is_store_down(&err)
        };
        assert!(expected, "hang={hang}: {err:?}");
        if !hang {
            // Five failures in a row opened the breaker: the handle says so rather than
            // calling the store again.
            for (name, result) in [
                ("count", handle.count().await),
                ("clear", handle.clear().await),
            ] {
                let err = result.expect_err(name);
                assert!(is_circuit_open(&err), "{name}: {err:?}");
                assert!(err.to_string().contains("unavailable"), "{name}: {err}");
            }
            assert_eq!(
                store.calls.load(Ordering::Relaxed),
                5,
                "skipped, not called"
            );
        }
    }
}

/// True for `BrokenStore`'s own error, kept whole: `Unavailable`, caused by "store down".
fn is_store_down(err: &reqwest_caching::Error) -> bool {
    let reqwest_caching::Error::Store(StoreError::Unavailable { source }) = err else {
        return false;
    };
    source
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// True for a call the open breaker skipped: `Unavailable`, caused by `CircuitOpen`.
fn is_circuit_open(err: &reqwest_caching::Error) -> bool {
    let reqwest_caching::Error::Store(StoreError::Unavailable { source }) = err else {
        return false;
    };
    source.is::<reqwest_caching::CircuitOpen>()
}

#[tokio::test]
async fn network_errors_pass_through_unchanged() {
    let cache = CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .build()
        .unwrap();
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let url = format!("http://127.0.0.1:{}/", test_support::unused_port());
    let err = client.get(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    assert!(
        !err.is_middleware(),
        "the cache does not wrap transport errors"
    );
    let stats = handle.stats();
    assert_eq!(
        (stats.misses, stats.stores),
        (1, 0),
        "a miss that went to the network"
    );
}

/// The back-off runs on a manual clock: the test moves time, so no number of round trips
/// has to fit inside a real back-off window.
#[tokio::test]
async fn a_dead_store_costs_one_timeout_per_backoff_not_one_per_request() {
    let store = Arc::new(BrokenStore {
        hang: true,
        ..Default::default()
    });
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .shared_store(Arc::clone(&store) as _)
        .store_timeout(Duration::from_millis(50))
        .store_breaker(3, Duration::from_secs(60), Duration::from_secs(600))
        .clock(Arc::clone(&clock) as _)
        .build()
        .unwrap();
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let get = || async {
        let response = client
            .get(origin.url("/dead"))
            .send()
            .await
            .expect("request succeeds");
        assert_eq!(response.status(), 200);
    };
    for _ in 0..20 {
        get().await;
    }
    assert_eq!(origin.hits("/dead"), 20);
    let calls = || store.calls.load(Ordering::Relaxed);
    assert_eq!(calls(), 3, "the breaker opened after 3 timeouts");
    let stats = handle.stats();
    assert_eq!(
        (stats.errors, stats.skipped),
        (3, 37),
        "3 timeouts, then every read and write skipped (and counted) while open"
    );
    clock.advance(Duration::from_secs(60) - Duration::from_millis(1));
    get().await;
    assert_eq!(calls(), 3, "no probe before the back-off has passed");
    clock.advance(Duration::from_millis(1));
    get().await;
    assert_eq!(calls(), 4, "one probe after the back-off");
    // The probe timed out: the back-off doubled to 120 s.
    clock.advance(Duration::from_secs(119));
    get().await;
    assert_eq!(calls(), 4, "no probe within the doubled back-off");
    clock.advance(Duration::from_secs(1));
    get().await;
    assert_eq!(calls(), 5, "one probe after the doubled back-off");
    assert_eq!(origin.hits("/dead"), 24, "every request reached the origin");
}

#[tokio::test]
async fn remote_stores_get_a_shorter_default_timeout_and_the_user_decides_last() {
    // Stores that keep their data in the process or a file suggest 5 s (the trait's default).
    let embedded = CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .build()
        .unwrap();
    assert!(format!("{embedded:?}").contains("store_timeout: 5s"));
    #[cfg(feature = "redis")]
    {
        let remote = CacheMiddleware::builder()
            .store(
                reqwest_caching::RedisStore::open(&test_support::shared_redis().url())
                    .await
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(format!("{remote:?}").contains("store_timeout: 1s"));
    }
    let chosen = CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .store_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    assert!(format!("{chosen:?}").contains("store_timeout: 250ms"));
}

/// A tiered store's memory copies answer while the store behind it is down and the breaker
/// open, and their answers do not close the breaker: after its back-off, the one probe is a
/// call to the store behind. An open breaker kept the copies from answering (every request
/// went to the origin), and a memory hit took the probe and closed the breaker, so the next
/// requests each waited on the dead store again.
#[cfg(feature = "tiered")]
#[tokio::test]
async fn a_tiered_memory_answers_past_an_open_breaker_and_does_not_close_it() {
    let backing = Arc::new(crate::support::SwitchableStore::default());
    let tiered = reqwest_caching::TieredStore::builder_shared(Arc::clone(&backing) as _)
        .memory_ttl(Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(tiered)
        .store_breaker(3, Duration::from_secs(60), Duration::from_secs(600))
        .expire_after(Duration::from_secs(3600))
        .clock(Arc::clone(&clock) as _)
        .build()
        .unwrap();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let get = |path: &'static str| {
        let request = client.get(origin.url(path));
        async move {
            let response = request.send().await.expect("request succeeds");
            response.cache_info().cloned().unwrap()
        }
    };
    assert!(get("/kept").await.stored);
    assert!(get("/kept").await.from_cache);
    backing.down.store(true, Ordering::Relaxed);
    for path in ["/other/1", "/other/2", "/other/3"] {
        assert!(!get(path).await.from_cache);
    }
    let calls = || backing.calls.load(Ordering::Relaxed);
    let opened = calls();
    assert!(!get("/other/4").await.from_cache);
    assert_eq!(
        calls(),
        opened,
        "the breaker is open: the store is not asked"
    );
    assert!(
        get("/kept").await.from_cache,
        "the memory copy was held back by the open breaker"
    );
    clock.advance(Duration::from_secs(60));
    assert!(get("/kept").await.from_cache);
    // The probe the back-off allows goes to the store behind (and fails): the breaker stays
    // open for the requests after.
    assert!(!get("/other/5").await.from_cache);
    assert_eq!(calls(), opened + 1, "one probe after the back-off");
    assert!(!get("/other/6").await.from_cache);
    assert_eq!(calls(), opened + 1, "the memory hit closed the breaker");
    assert_eq!(origin.hits("/kept"), 1);
}

//! A store that runs out of space: every request still succeeds, the failure is counted,
//! and what was stored before stays intact and served.

use std::sync::Arc;

use reqwest_caching::{CacheResponseExt, CacheStore};

use crate::origin::Origin;

const BODY: usize = 50_000;
const REQUESTS: usize = 40;

/// Sends `REQUESTS` distinct cacheable requests until the store is full, then all of them
/// again: the stored ones are hits, the others reach the origin.
async fn fill_past_capacity(store: Arc<dyn CacheStore>, name: &str) {
    let cache = crate::support::patient_builder()
        .shared_store(store)
        .build()
        .expect("cache");
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let expected = vec![b'x'; BODY];
    let mut stored = Vec::new();
    for i in 0..REQUESTS {
        let response = client
            .get(origin.url(&format!("/big/{BODY}?n={i}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: request {i} failed: {e:?}"));
        assert_eq!(response.status(), 200, "{name}");
        let info = response.cache_info().cloned().expect("info");
        assert_eq!(
            response.bytes().await.unwrap(),
            expected,
            "{name}: request {i}"
        );
        stored.push(info.stored);
    }
    let kept = stored.iter().filter(|s| **s).count();
    let stats = handle.stats();
    assert!(kept > 0, "{name}: nothing fit");
    assert!(kept < REQUESTS, "{name}: the store never filled up");
    assert_eq!(
        stats.errors as usize,
        REQUESTS - kept,
        "{name}: each refused write is counted: {stats:?}"
    );
    assert_eq!(
        stats.skipped, 0,
        "{name}: a full store does not open the breaker"
    );
    // Everything stored before the store filled up is still served, intact.
    let before = origin.total();
    for (i, was_stored) in stored.iter().enumerate() {
        let response = client
            .get(origin.url(&format!("/big/{BODY}?n={i}")))
            .send()
            .await
            .expect("request succeeds");
        assert_eq!(response.from_cache(), *was_stored, "{name}: request {i}");
        assert_eq!(
            response.bytes().await.unwrap(),
            expected,
            "{name}: request {i}"
        );
    }
    assert_eq!(origin.total() - before, REQUESTS - kept, "{name}");
    println!("{name}: {kept} of {REQUESTS} responses fit; the rest passed through");
}

#[tokio::test]
#[cfg(feature = "sqlite")]
async fn a_full_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 100 pages of 4 KiB: room for a few 50 KB bodies.
    let store = reqwest_caching::SqliteStore::builder(dir.path().join("full.sqlite"))
        .pragma("max_page_count", "100")
        .open()
        .expect("open");
    fill_past_capacity(Arc::new(store), "sqlite").await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_at_maxmemory_with_noeviction() {
    let server = test_support::RedisServer::start_with_args(&[
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let store = reqwest_caching::RedisStore::open(&server.url())
        .await
        .expect("connect");
    fill_past_capacity(Arc::new(store), "redis").await;
}

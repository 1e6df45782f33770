//! A store that refuses an entry as too large (`StoreError::TooLarge`): the response still
//! reaches the caller whole, nothing is stored, and it is not counted as a store error nor
//! held against the store by the breaker.

use std::sync::Arc;

use reqwest_caching::{CacheMiddleware, CacheResponseExt, CacheStore, MemoryStore};

use crate::origin::Origin;

const LARGE: usize = 1_000_000;

async fn refused_entries_still_reach_the_caller(store: Arc<dyn CacheStore>, name: &str) {
    let cache = CacheMiddleware::builder()
        .shared_store(store)
        .build()
        .expect("cache");
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let large = format!("/big/{LARGE}");
    // More refusals than the breaker's threshold (5): it stays closed.
    for n in 1..=6 {
        let response = client.get(origin.url(&large)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let info = response.cache_info().cloned().expect("info");
        assert!(!info.stored && !info.from_cache, "{name} #{n}: {info:?}");
        let body = response.bytes().await.unwrap();
        assert_eq!(body.len(), LARGE, "{name} #{n}: the whole body");
        assert_eq!(
            origin.hits(&large),
            n,
            "{name}: each one went to the origin"
        );
    }
    assert_eq!(handle.count().await.unwrap(), 0, "{name}: nothing stored");
    // A small response is stored and served: the store works, and was not skipped.
    for from_cache in [false, true] {
        let response = client.get(origin.url("/big/100")).send().await.unwrap();
        assert_eq!(response.from_cache(), from_cache, "{name}");
    }
    assert_eq!(origin.hits("/big/100"), 1, "{name}");
    let stats = handle.stats();
    assert_eq!(
        (stats.errors, stats.skipped),
        (0, 0),
        "{name}: a refusal is not a failure: {stats:?}"
    );
}

#[tokio::test]
async fn a_bounded_memory_store_refusing_an_entry() {
    let store = Arc::new(MemoryStore::bounded(16, 64 * 1024));
    refused_entries_still_reach_the_caller(store, "memory").await;
}

#[cfg(feature = "sled")]
#[tokio::test]
async fn a_sled_store_with_max_bytes_refusing_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = reqwest_caching::SledStore::builder()
        .max_bytes(64 * 1024)
        .open(dir.path().join("cache.sled"))
        .unwrap();
    refused_entries_still_reach_the_caller(Arc::new(store), "sled").await;
}

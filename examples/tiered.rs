//! A memory tier in front of Redis, coherent across services: hits are served from the
//! process's memory, and when one service stores a new version, the other's memory copy is
//! dropped by Redis's invalidation notice. Uses `REDIS_URL` when set; otherwise starts a
//! private `redis-server` on a free local port (install it with
//! `scripts/install-test-servers.sh`).
//!
//! Run it with `cargo run --example tiered --features tiered,redis`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientWithMiddleware;
use reqwest_caching::{
    CacheMiddleware, CacheMode, CacheRequestExt, CacheResponseExt, MemoryStore, RedisInvalidations,
    RedisStore, TieredStore,
};

/// One service: its memory tier over the shared Redis, and a client using it.
async fn service(
    url: &str,
) -> Result<(Arc<TieredStore>, ClientWithMiddleware), Box<dyn std::error::Error>> {
    let redis = RedisStore::builder()
        .prefix("example-tiered")
        .open(url)
        .await?;
    let invalidations = RedisInvalidations::for_store(&redis, url)?;
    let store = Arc::new(
        TieredStore::builder(redis)
            .memory(MemoryStore::bounded(1_000, 64 * 1024 * 1024))
            .invalidations(invalidations)
            .build()
            .await?,
    );
    let cache = CacheMiddleware::builder()
        .shared_store(store.clone())
        .expire_after(Duration::from_secs(60))
        .build()?;
    Ok((store, cache.into_client(reqwest::Client::new())))
}

async fn fetch(
    client: &ClientWithMiddleware,
    url: &str,
    mode: CacheMode,
) -> Result<(String, bool), Box<dyn std::error::Error>> {
    let response = client.get(url).cache_mode(mode).send().await?;
    let from_cache = response.from_cache();
    Ok((response.text().await?, from_cache))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local_server;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            local_server = test_support::RedisServer::start();
            local_server.url()
        }
    };
    let origin = origin::Origin::start(Duration::ZERO).await;
    let news = format!("{}/news", origin.base);
    let (_, a) = service(&url).await?;
    let (b_store, b) = service(&url).await?;

    let (first, cached) = fetch(&a, &news, CacheMode::Default).await?;
    assert_eq!((first.as_str(), cached), ("/news #1", false), "a miss");
    let (_, cached) = fetch(&b, &news, CacheMode::Default).await?;
    assert!(cached, "B reads what A stored in Redis");
    let (_, cached) = fetch(&b, &news, CacheMode::Default).await?;
    assert!(
        cached && b_store.stats().memory_entries == 1,
        "and now from its memory"
    );
    println!("B serves {news} from memory: {:?}", b_store.stats());

    // A stores a new version: Redis tells B, which drops its copy.
    let (second, _) = fetch(&a, &news, CacheMode::ForceRefresh).await?;
    assert_eq!(second, "/news #2");
    b_store.sync().await?; // wait for the notice (about a millisecond on loopback)
    let (seen, cached) = fetch(&b, &news, CacheMode::Default).await?;
    println!(
        "after A's refresh, B reads {seen:?} (from cache: {cached}): {:?}",
        b_store.stats()
    );
    assert_eq!(
        (seen.as_str(), cached),
        ("/news #2", true),
        "never the old copy"
    );
    assert!(b_store.stats().invalidations >= 1);
    assert_eq!(origin.served(), 2, "two origin fetches in all");
    Ok(())
}

//! Looking into the cache with `CacheHandle`: `urls`, `count`, `get`, `delete`,
//! `delete_expired`, `stats` and `clear`. A manual clock stands in for waiting.
//!
//! Run it with `cargo run --example inspection`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheRequestExt, ManualClock, MemoryStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .build()?;
    // The handle is a cheap clone sharing the store and the counters with the middleware.
    let handle = cache.handle();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    // Three entries (one of them short-lived), and one hit.
    for id in 1..=3 {
        let mut request = client.get(origin.url(&format!("/items/{id}")));
        if id == 3 {
            request = request.expire_after(Duration::from_secs(10));
        }
        request.send().await?;
    }
    client.get(origin.url("/items/1")).send().await?;

    let urls = handle.urls().await?; // sorted, without ignored parameters such as api_key
    println!("{} entries: {urls:?}", handle.count().await?);
    assert_eq!(urls.len(), 3);

    // One entry by key (`get_url` / `contains_url` do the same for a GET of a URL).
    let key = handle.key_for(&reqwest::Method::GET, &origin.url("/items/1"))?;
    let entry = handle.get(&key).await?.expect("stored");
    let body = String::from_utf8_lossy(&entry.response.body);
    println!(
        "{}: status {}, body {body}",
        entry.meta.url, entry.response.status
    );
    assert_eq!(entry.response.status, 200);
    assert_eq!(entry.meta.expires_at, None, "the default: never expires");

    // Delete one entry by key; then the expired ones (items/3, once 10 s have passed).
    let key = handle.key_for(&reqwest::Method::GET, &origin.url("/items/2"))?;
    assert!(handle.delete(&key).await?);
    clock.advance(Duration::from_secs(60));
    let expired = handle.delete_expired().await?;
    println!(
        "deleted items/2, then {expired} expired; left: {:?}",
        handle.urls().await?
    );
    assert_eq!((expired, handle.count().await?), (1, 1));

    let stats = handle.stats();
    println!(
        "stats: {} hits, {} misses, {} stores, {} errors",
        stats.hits, stats.misses, stats.stores, stats.errors
    );
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 3, 3));

    let cleared = handle.clear().await?;
    println!("clear() removed {cleared}; {} left", handle.count().await?);
    assert_eq!((cleared, handle.count().await?), (1, 0));
    assert_eq!(origin.served(), 3);
    Ok(())
}

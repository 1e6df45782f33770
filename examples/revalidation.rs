//! HTTP caching headers and conditional revalidation: with `.cache_control(true)` the
//! origin's `Cache-Control: max-age=60` sets the lifetime; once stale, the entry is sent back
//! with `If-None-Match`, and a `304 Not Modified` renews it and serves the stored body
//! (`CacheInfo::revalidated`). A manual clock stands in for waiting.
//!
//! Run it with `cargo run --example revalidation`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, ManualClock, MemoryStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .cache_control(true) // follow the response's Cache-Control / Expires headers
        .build()?;
    let handle = cache.handle();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();
    // `/etag/..` answers `Cache-Control: max-age=60` and `ETag: "v1"`, dated by our clock.
    origin.date_by(clock.clone());
    let url = origin.url("/etag/report");

    let first = client.get(&url).send().await?;
    let info = first.cache_info().unwrap().clone();
    let lifetime = info
        .expires
        .unwrap()
        .duration_since(info.created_at.unwrap())?;
    println!("fetched and stored, fresh for {lifetime:?} (max-age=60 less the response's age)");
    assert!(info.stored && lifetime <= Duration::from_secs(60));
    let body = first.text().await?;

    // Within max-age: served from the cache, the origin is not asked.
    clock.advance(Duration::from_secs(30));
    assert!(client.get(&url).send().await?.from_cache());
    assert_eq!(origin.served(), 1);

    // Past max-age: a conditional request; the origin answers 304 with no body.
    clock.advance(Duration::from_secs(60));
    let response = client.get(&url).send().await?;
    let info = response.cache_info().unwrap().clone();
    println!(
        "after 90 s: status {}, from cache {}, revalidated {}, origin 304s {}",
        response.status(),
        info.from_cache,
        info.revalidated,
        origin.not_modified()
    );
    assert!(info.from_cache && info.revalidated && !info.is_expired);
    assert_eq!(response.status(), 200, "the stored status, not the 304");
    assert_eq!(response.text().await?, body, "the stored body");
    assert_eq!((origin.served(), origin.not_modified()), (2, 1));

    // The 304 renewed the entry: fresh for another 60 s.
    assert!(client.get(&url).send().await?.from_cache());
    let stats = handle.stats();
    println!(
        "stats: {} hits, {} revalidations",
        stats.hits, stats.revalidations
    );
    assert_eq!((stats.hits, stats.revalidations), (2, 1));
    assert_eq!(origin.served(), 2);
    Ok(())
}

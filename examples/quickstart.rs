//! The cache in one screen, with no internet: a local origin whose endpoint takes 100 ms,
//! 100 requests through a cached client on the default SQLite store, and the figures.
//!
//! Run it with `cargo run --example quickstart`.

#[path = "support/origin.rs"]
mod origin;

use std::time::{Duration, Instant};

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt};

const ORIGIN_DELAY: Duration = Duration::from_millis(100);
const REQUESTS: usize = 100;
const DISTINCT_URLS: usize = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(ORIGIN_DELAY).await;
    let base = &origin.base;

    // The default cache: SQLite at ./http_cache.sqlite, responses never expire.
    let cache = CacheMiddleware::new()?;
    let handle = cache.handle();
    // The origin's port changes every run; start empty so the figures are the same each time.
    handle.clear().await?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    let started = Instant::now();
    let mut from_cache = 0;
    for i in 0..REQUESTS {
        let url = format!("{base}/items/{}", i % DISTINCT_URLS);
        let response = client.get(&url).send().await?;
        if response.from_cache() {
            from_cache += 1;
        }
        response.text().await?;
    }
    let elapsed = started.elapsed();

    let reached_origin = origin.served();
    println!("{REQUESTS} requests over {DISTINCT_URLS} URLs, origin takes {ORIGIN_DELAY:?} each");
    println!("  reached the origin: {reached_origin}");
    println!("  from the cache:     {from_cache}");
    println!(
        "  wall time:          {elapsed:.2?} (uncached: about {:.1?})",
        ORIGIN_DELAY * REQUESTS as u32
    );
    println!(
        "  entries in {}: {}",
        reqwest_caching::DEFAULT_SQLITE_PATH,
        handle.count().await?
    );
    assert_eq!(reached_origin, DISTINCT_URLS as u64, "one miss per URL");
    assert_eq!(from_cache, REQUESTS - DISTINCT_URLS);

    // A "restart": a new middleware over the same file still answers from the cache.
    let restarted = ClientBuilder::new(reqwest::Client::new())
        .with(CacheMiddleware::new()?)
        .build();
    let started = Instant::now();
    let response = restarted.get(format!("{base}/items/3")).send().await?;
    println!(
        "after a restart: /items/3 from cache = {} in {:.2?}; origin requests still {}",
        response.from_cache(),
        started.elapsed(),
        origin.served()
    );
    assert!(response.from_cache() && origin.served() == reached_origin);
    Ok(())
}

//! `stale_if_error`: when the origin fails (`429`, `500`, `502`, `503`, `504`, or no
//! connection), an expired entry is served instead of the error, up to the allowance past its
//! expiry. A manual clock stands in for waiting.
//!
//! Run it with `cargo run --example stale_if_error`.

#[path = "support/origin.rs"]
mod origin;

use std::sync::Arc;
use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, ManualClock, MemoryStore};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let clock = Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .expire_after(MINUTE)
        .stale_if_error(10 * MINUTE) // `true` would allow any staleness
        .build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();
    let url = origin.url("/flaky/prices");

    let stored = client.get(&url).send().await?.text().await?;

    // Two minutes later the entry has expired, and the origin is down for a moment: the
    // stale entry is served, marked as such.
    clock.advance(2 * MINUTE);
    origin.fail_next(1);
    let response = client.get(&url).send().await?;
    let info = response.cache_info().unwrap().clone();
    println!(
        "origin failing, entry 1 min stale: status {}, stale_if_error {}",
        response.status(),
        info.stale_if_error
    );
    assert!(response.status() == 200 && info.stale_if_error && info.is_expired);
    assert_eq!(response.text().await?, stored);

    // The origin is back: the next request fetches a fresh copy and stores it.
    let response = client.get(&url).send().await?;
    assert!(!response.from_cache() && response.cache_info().unwrap().stored);
    let fresh = response.text().await?;
    println!("origin back: {fresh:?} replaces {stored:?}");
    assert_ne!(fresh, stored);

    // Beyond the allowance (10 min past expiry), the error goes through.
    clock.advance(60 * MINUTE);
    origin.fail_next(1);
    let response = client.get(&url).send().await?;
    println!(
        "origin failing, entry 59 min stale: status {}",
        response.status()
    );
    assert_eq!(response.status(), 503);
    assert_eq!(origin.served(), 4);
    Ok(())
}

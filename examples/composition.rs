//! The cache in a middleware stack: reqwest-tracing outside, reqwest-retry inside.
//!
//! ```text
//! TracingMiddleware -> CacheMiddleware -> RetryTransientMiddleware -> network
//! ```
//!
//! Every request gets a tracing span, hits included; a hit never enters the retry loop; a miss
//! is retried on transient failures (5xx, 408, 429, connection errors) and only the final
//! success is stored. With retry outside the cache instead, every attempt is a cache lookup,
//! and `stale_if_error` answers the first failure with a stale entry, so nothing is retried.
//!
//! Run it with `cargo run --example composition`. To see the spans, install a subscriber
//! (`tracing_subscriber::fmt().init()` with its `fmt` feature).

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, MemoryStore};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .build()?;
    let handle = cache.handle();
    // Short back-offs for the example; real code would wait longer between attempts.
    let retry_policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(10))
        .build_with_max_retries(3);
    // Middleware runs in the order it is added: the first is the outermost.
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(cache)
        .with(RetryTransientMiddleware::new_with_policy(retry_policy))
        .build();
    let url = origin.url("/flaky/orders");

    // A miss while the origin answers 503 twice: retried under the cache, success stored.
    origin.fail_next(2);
    let response = client.get(&url).send().await?;
    let info = response.cache_info().unwrap().clone();
    println!(
        "miss: status {}, stored {}, origin saw {} requests (2 x 503, then 200)",
        response.status(),
        info.stored,
        origin.served()
    );
    assert!(response.status() == 200 && info.stored);
    assert_eq!(origin.served(), 3);

    // A hit: answered by the cache, so neither the retry middleware nor the origin see it,
    // even while the origin would fail.
    origin.fail_next(5);
    let response = client.get(&url).send().await?;
    println!(
        "hit: status {}, from cache {}, origin still at {}",
        response.status(),
        response.from_cache(),
        origin.served()
    );
    assert!(response.from_cache());
    assert_eq!(origin.served(), 3);
    assert_eq!(
        handle.stats().misses,
        1,
        "one lookup for the three attempts"
    );
    Ok(())
}

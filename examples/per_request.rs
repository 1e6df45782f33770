//! Per-request settings through `CacheRequestExt`: an expiration that beats the session's,
//! and the cache modes (`Refresh`, `ForceRefresh`, `OnlyIfCached`, `Bypass`).
//!
//! Run it with `cargo run --example per_request`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheMode, CacheRequestExt, CacheResponseExt, MemoryStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    // The session's expiration is the default, Expiration::Never.
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();
    let url = origin.url("/items/1");

    // A per-request expiration: this response is fresh for 5 s instead of forever.
    let response = client
        .get(&url)
        .expire_after(Duration::from_secs(5))
        .send()
        .await?;
    let info = response
        .cache_info()
        .expect("every response carries CacheInfo");
    let lifetime = info
        .expires
        .unwrap()
        .duration_since(info.created_at.unwrap())?;
    println!("stored with a lifetime of {lifetime:?}");
    assert!(info.stored && lifetime == Duration::from_secs(5));

    // Default mode: a fresh entry is served without the network.
    assert!(client.get(&url).send().await?.from_cache());
    assert_eq!(origin.served(), 1);

    // The modes that reach the origin anyway. Refresh would send a conditional request if the
    // entry had an ETag or Last-Modified; ForceRefresh never does; both store what comes back.
    // Bypass neither reads nor writes (`.with_extension(CacheMode::Bypass)` does the same).
    for mode in [
        CacheMode::Refresh,
        CacheMode::ForceRefresh,
        CacheMode::Bypass,
    ] {
        let response = client.get(&url).cache_mode(mode).send().await?;
        let info = response.cache_info().unwrap();
        println!(
            "{mode:?}: from cache {}, stored {}",
            info.from_cache, info.stored
        );
        assert!(!info.from_cache && info.stored == (mode != CacheMode::Bypass));
    }
    assert_eq!(origin.served(), 4);

    // OnlyIfCached never touches the network: a hit, or 504 Gateway Timeout.
    let cached = client
        .get(&url)
        .cache_mode(CacheMode::OnlyIfCached)
        .send()
        .await?;
    let missing = client
        .get(origin.url("/items/2"))
        .cache_mode(CacheMode::OnlyIfCached)
        .send()
        .await?;
    println!(
        "OnlyIfCached: cached URL {} (from cache {}), uncached URL {}",
        cached.status(),
        cached.from_cache(),
        missing.status()
    );
    assert!(cached.from_cache() && missing.status() == 504);
    assert_eq!(origin.served(), 4, "OnlyIfCached sent nothing");
    Ok(())
}

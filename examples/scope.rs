//! Settings for a block of code: `disabled(..)` (requests-cache's `cache_disabled()`) and
//! `CacheScope` (an expiration or a mode for every request inside; scopes nest, and a
//! per-request setting beats the scope's).
//!
//! Run it with `cargo run --example scope`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{
    CacheMiddleware, CacheMode, CacheRequestExt, CacheResponseExt, CacheScope, Expiration,
    MemoryStore, disabled,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .build()?;
    let handle = cache.handle();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();
    let get = |path: &str| client.get(origin.url(path)).send();

    // Inside `disabled`, the cache is neither read nor written.
    disabled(async {
        get("/report").await?;
        assert!(!get("/report").await?.from_cache());
        Ok::<_, reqwest_caching::reqwest_middleware::Error>(())
    })
    .await?;
    println!("disabled: 2 requests, {} stored", handle.count().await?);
    assert_eq!((origin.served(), handle.count().await?), (2, 0));

    // Outside, the cache is back: stored, then a hit.
    get("/report").await?;
    assert!(get("/report").await?.from_cache());

    // A scope forcing a refresh of everything inside; a per-request mode beats it.
    CacheScope::new()
        .mode(CacheMode::ForceRefresh)
        .run(async {
            let refreshed = get("/report").await?;
            let request = client.get(origin.url("/report"));
            let normal = request.cache_mode(CacheMode::Default).send().await?;
            println!(
                "ForceRefresh scope: from cache {}; with a per-request Default mode: {}",
                refreshed.from_cache(),
                normal.from_cache()
            );
            assert!(!refreshed.from_cache() && normal.from_cache());
            Ok::<_, reqwest_caching::reqwest_middleware::Error>(())
        })
        .await?;

    // A scope's expiration applies to what is stored inside it; scopes nest.
    CacheScope::new()
        .expire_after(Expiration::DoNotCache)
        .run(async {
            get("/live").await?; // not stored
            // An inner scope overrides the setting it names and inherits the others.
            CacheScope::new()
                .expire_after(Duration::from_secs(60))
                .run(get("/daily"))
                .await
        })
        .await?;
    println!("cached URLs: {:?}", handle.urls().await?);
    assert_eq!(
        handle.urls().await?,
        [origin.url("/daily"), origin.url("/report")]
    );
    // 2 disabled + 1 stored + 1 refreshed + /live + /daily.
    assert_eq!(origin.served(), 6);
    // A scope follows the future, not the thread: wrap a `tokio::spawn`ed future in its own.
    Ok(())
}

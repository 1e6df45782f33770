//! Record and replay HTTP traffic for tests, VCR-style: record a session against the origin
//! into a fixture directory (the readable `FsStore` format), then replay it with no request
//! reaching the origin; a request that was not recorded fails with an error naming it.
//! Offline mode over the same directory answers such a request with the cache's own `504`.
//!
//! Run it with `cargo run --example record_replay --features fs`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::Error as ChainError;
use reqwest_caching::{CacheMiddleware, CacheMode, CacheResponseExt, FsStore, ReplayMiss};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let dir = tempfile::tempdir()?;
    let fixtures = dir.path().join("fixtures");
    // `/live/prices` answers `Cache-Control: no-store`: recorded all the same.
    let session = ["/items/1", "/items/2", "/live/prices"];

    // 1. Record: every request goes to the origin, every response allowed is stored.
    let recorder = CacheMiddleware::record(&fixtures)?.into_client(reqwest::Client::new());
    let mut recorded = Vec::new();
    for path in session {
        let response = recorder.get(origin.url(path)).send().await?;
        assert!(response.cache_info().is_some_and(|info| info.stored));
        recorded.push(response.text().await?);
    }
    let served = origin.served();
    println!(
        "recorded {} responses into {}",
        session.len(),
        fixtures.display()
    );
    assert_eq!(served, 3);

    // 2. Replay (a fresh middleware, as in the next test run): nothing reaches the origin.
    let player = CacheMiddleware::replay(&fixtures)?.into_client(reqwest::Client::new());
    for (path, body) in session.iter().zip(&recorded) {
        let response = player.get(origin.url(path)).send().await?;
        assert!(response.from_cache());
        let replayed = response.text().await?;
        println!("replayed {path}: {replayed}");
        assert_eq!(&replayed, body);
    }
    println!(
        "the origin served {} requests during the replay",
        origin.served() - served
    );
    assert_eq!(origin.served(), served);

    // 3. Not recorded: an error naming the request, and still nothing sent.
    match player.get(origin.url("/items/3")).send().await {
        Err(ChainError::Middleware(error)) if error.is::<ReplayMiss>() => {
            println!("not recorded: {error}");
        }
        other => return Err(format!("expected a replay miss, got {other:?}").into()),
    }
    assert_eq!(origin.served(), served);

    // 4. Offline over the same directory: the cache's own 504 instead of an error.
    let offline = CacheMiddleware::builder()
        .store(FsStore::open(&fixtures)?)
        .per_credential(false)
        .mode(CacheMode::Offline)
        .build()?
        .into_client(reqwest::Client::new());
    let response = offline.get(origin.url("/items/3")).send().await?;
    let info = response.cache_info().cloned().ok_or("no CacheInfo")?;
    println!(
        "offline, not stored: {} (offline_miss {})",
        response.status(),
        info.offline_miss
    );
    assert!(response.status() == 504 && info.offline_miss);
    let response = offline.get(origin.url("/items/1")).send().await?;
    assert!(response.from_cache());
    assert_eq!(origin.served(), served);
    Ok(())
}

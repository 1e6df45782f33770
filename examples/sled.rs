//! The cache on sled, an embedded database in a directory: 50 requests over 5 URLs against a
//! local slow origin, then the entries listed through the handle.
//!
//! Run it with `cargo run --example sled --features sled`.

#[path = "support/origin.rs"]
mod origin;

use std::time::{Duration, Instant};

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, SledStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path().join("http_cache.sled"))?;
    let cache = CacheMiddleware::builder()
        .store(store)
        .expire_after(Duration::from_secs(300))
        .build()?;
    let handle = cache.handle();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    let started = Instant::now();
    let mut hits = 0;
    for i in 0..50 {
        let response = client
            .get(format!("{}/items/{}", origin.base, i % 5))
            .send()
            .await?;
        hits += usize::from(response.from_cache());
        response.bytes().await?;
    }
    println!(
        "sled: 50 requests, {} reached the origin, {hits} from the cache, in {:.2?}",
        origin.served(),
        started.elapsed()
    );
    let urls = handle.urls().await?;
    for url in &urls {
        println!("  cached: {url}");
    }
    assert_eq!(origin.served(), 5, "one miss per URL");
    assert_eq!(hits, 45, "every repeat from the cache");
    assert_eq!(urls.len(), 5);
    assert_eq!(handle.count().await?, 5);
    Ok(())
}

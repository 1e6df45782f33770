//! The cache on MongoDB. Uses `MONGODB_URI` when set; otherwise starts a private MongoDB
//! wire-protocol server on a free local port (install it with
//! `scripts/install-test-servers.sh`).
//!
//! Run it with `cargo run --example mongodb --features mongodb`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, MongoStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local_server;
    let uri = match std::env::var("MONGODB_URI") {
        Ok(uri) => uri,
        Err(_) => {
            local_server = test_support::MongoServer::start();
            local_server.uri()
        }
    };
    let store = MongoStore::builder()
        .database("example")
        .collection("http_cache")
        .open(&uri)
        .await?;
    let cache = CacheMiddleware::builder()
        .store(store)
        .expire_after(Duration::from_secs(300))
        .build()?;
    let handle = cache.handle();
    // A server kept between runs holds earlier runs' entries: start empty so the figures
    // are the same each time.
    handle.clear().await?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();
    let origin = origin::Origin::start(Duration::from_millis(50)).await;
    let mut hits = 0;
    for i in 0..20 {
        let response = client
            .get(format!("{}/items/{}", origin.base, i % 4))
            .send()
            .await?;
        hits += usize::from(response.from_cache());
    }
    println!(
        "mongodb at {uri}: 20 requests, {} reached the origin, {hits} from the cache; {} entries stored",
        origin.served(),
        handle.count().await?
    );
    assert_eq!(origin.served(), 4, "one miss per URL");
    assert_eq!(hits, 16, "every repeat from the cache");
    assert_eq!(handle.count().await?, 4);
    Ok(())
}

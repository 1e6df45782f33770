//! The cache on Redis: two processes' worth of clients sharing one cache through a server.
//! Uses `REDIS_URL` when set; otherwise starts a private `redis-server` on a free local port
//! (install it with `scripts/install-test-servers.sh`).
//!
//! Run it with `cargo run --example redis --features redis`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_caching::{CacheMiddleware, CacheResponseExt, RedisStore};

async fn cached_client(url: &str) -> Result<ClientWithMiddleware, Box<dyn std::error::Error>> {
    let store = RedisStore::builder()
        .prefix("example-http-cache")
        .ttl_offset(Some(Duration::from_secs(600)))
        .open(url)
        .await?;
    let cache = CacheMiddleware::builder()
        .store(store)
        .expire_after(Duration::from_secs(60))
        .build()?;
    Ok(ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local_server;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            local_server = test_support::RedisServer::start();
            local_server.url()
        }
    };
    let origin = origin::Origin::start(Duration::from_millis(50)).await;
    // Two independent clients, as two services would be: the second reads what the first stored.
    let first = cached_client(&url).await?;
    let second = cached_client(&url).await?;
    for id in 0..5 {
        let response = first
            .get(format!("{}/items/{id}", origin.base))
            .send()
            .await?;
        assert!(!response.from_cache(), "the origin's port is new: a miss");
        response.bytes().await?;
    }
    let mut shared_hits = 0;
    for id in 0..5 {
        let response = second
            .get(format!("{}/items/{id}", origin.base))
            .send()
            .await?;
        shared_hits += usize::from(response.from_cache());
    }
    println!(
        "redis at {url}: origin served {}, the second client got {shared_hits}/5 from the cache",
        origin.served()
    );
    assert_eq!(
        origin.served(),
        5,
        "only the first client reached the origin"
    );
    assert_eq!(
        shared_hits, 5,
        "the second client read everything from Redis"
    );
    Ok(())
}

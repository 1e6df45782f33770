//! The cache on DynamoDB. Uses `DYNAMODB_ENDPOINT` when set (such as a DynamoDB Local you
//! run); otherwise starts a private DynamoDB Local on a free local port (install it with
//! `scripts/install-test-servers.sh`). Against real AWS, build the client with aws-config and
//! pass it to `DynamoStore::builder().with_client(client)`.
//!
//! Run it with `cargo run --example dynamodb --features dynamodb`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local_server;
    let endpoint = match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => {
            local_server = test_support::DynamoServer::start();
            local_server.endpoint()
        }
    };
    let store = DynamoStore::builder()
        .table("example_http_cache")
        .open_local(&endpoint, "us-east-1")
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
        "dynamodb at {endpoint}: 20 requests, {} reached the origin, {hits} from the cache",
        origin.served()
    );
    assert_eq!(origin.served(), 4, "one miss per URL");
    assert_eq!(hits, 16, "every repeat from the cache");
    assert_eq!(handle.count().await?, 4);
    Ok(())
}

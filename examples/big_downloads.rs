//! Caching downloads larger than memory: over an `FsStore`, a response over `max_body_size`
//! is written to the store while it streams to the caller, committed once complete, and
//! later served from its file, in pieces. A download the caller abandons leaves nothing.
//!
//! Run it with `cargo run --example big_downloads --features fs`.

#[path = "support/origin.rs"]
mod origin;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, FsStore};

const SIZE: u64 = 64 * 1024 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = origin::Origin::start(Duration::ZERO).await;
    let dir = tempfile::tempdir()?;
    let cache = CacheMiddleware::builder()
        .store(FsStore::open(dir.path())?)
        // Bodies up to 1 MiB are read whole; larger ones stream through the store's files.
        .max_body_size(1024 * 1024)
        .build()?;
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let url = origin.url(&format!("/download/{SIZE}"));

    // 1. A miss: the caller reads the body as it arrives; the store writes each chunk.
    let response = client.get(&url).send().await?;
    assert!(!response.from_cache());
    let first = checksum(response).await?;
    println!("downloaded {} bytes, checksum {:x}", first.0, first.1);
    assert_eq!(handle.count().await?, 1, "committed when the body ended");

    // 2. A hit: the same bytes, streamed from the body's file; the origin is not asked.
    let response = client.get(&url).send().await?;
    assert!(response.from_cache());
    let second = checksum(response).await?;
    println!(
        "served again from the cache: {} bytes, checksum {:x}",
        second.0, second.1
    );
    assert_eq!(first, second);
    assert_eq!(origin.served(), 1);

    // 3. Another download abandoned halfway: nothing of it is kept.
    let other = origin.url(&format!("/download/{}", SIZE + 1));
    let mut response = client.get(&other).send().await?;
    let mut read = 0;
    while read < SIZE / 2 {
        read += response
            .chunk()
            .await?
            .map_or(0, |chunk| chunk.len() as u64);
    }
    drop(response);
    println!(
        "abandoned a download after {read} bytes: entries stored {}",
        handle.count().await?
    );
    assert_eq!(handle.count().await?, 1);
    Ok(())
}

/// The body's length and a simple checksum, read chunk by chunk (never whole).
async fn checksum(response: reqwest::Response) -> Result<(u64, u64), reqwest::Error> {
    let mut body = response.bytes_stream();
    let (mut len, mut sum) = (0u64, 0u64);
    while let Some(chunk) = body.next().await {
        for byte in chunk? {
            sum = sum.wrapping_mul(31).wrapping_add(u64::from(byte));
            len += 1;
        }
    }
    Ok((len, sum))
}

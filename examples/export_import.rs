//! Carry a cache from one store to another through the readable directory format: fill an
//! SQLite cache, export it to a directory, import the directory into a fresh SQLite cache,
//! and print the throughput of each step (entries/s).
//!
//! Run it with `cargo run --release --example export_import --features fs -- 20000`
//! (the number of entries; 2,000 by default). Each entry is a 1 KiB response with eight
//! headers, as the middleware would store it.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use reqwest_caching::transfer::{self, Progress};
use reqwest_caching::{
    CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, SqliteStore, StoredEntry,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("not a number of entries: {n}"))?,
        None => 2_000,
    };
    let dir = tempfile::tempdir()?;
    let source = SqliteStore::open(dir.path().join("source.sqlite"))?;
    for n in 0..entries {
        source.put(entry(n)?).await?;
    }

    let exported = dir.path().join("exported");
    let started = Instant::now();
    let done = transfer::export(&source, &exported, |_| {}).await?;
    report("export SQLite -> directory", done, started.elapsed());

    let destination = SqliteStore::open(dir.path().join("destination.sqlite"))?;
    let started = Instant::now();
    let mut last = Progress::default();
    let done = transfer::import(&exported, &destination, |p| last = p).await?;
    report("import directory -> SQLite", done, started.elapsed());

    assert_eq!(done.entries, entries, "every entry imported");
    assert_eq!(last, done, "progress reported to the end");
    assert_eq!(destination.count().await?, entries);
    let first = destination.get(&key(0)).await?.expect("imported");
    assert_eq!(first, source.get(&key(0)).await?.expect("stored"));
    Ok(())
}

fn report(what: &str, done: Progress, took: Duration) {
    let per_second = done.entries as f64 / took.as_secs_f64().max(f64::EPSILON);
    println!(
        "{what}: {} entries, {:.1} MB in {took:.2?}: {per_second:.0} entries/s",
        done.entries,
        done.bytes as f64 / 1e6,
    );
}

fn key(n: u64) -> CacheKey {
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    digest[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    CacheKey::from_digest(digest)
}

/// A stored 1 KiB JSON response to `GET https://api.example.com/items/{n}`.
fn entry(n: u64) -> Result<StoredEntry, Box<dyn std::error::Error>> {
    let url = format!("https://api.example.com/items/{n}?page=1&sort=name");
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("cache-control", "max-age=3600"),
        ("date", "Mon, 30 Nov 2026 12:00:00 GMT"),
        ("etag", "\"a7f3c9d2\""),
        ("last-modified", "Sun, 29 Nov 2026 12:00:00 GMT"),
        ("server", "origin"),
        ("vary", "accept-encoding"),
        ("x-request-id", "0f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let body = format!("{{\"id\":{n},\"data\":\"{}\"}}", "x".repeat(1000));
    let request = CachedRequest::new(Method::GET, url.clone(), HeaderMap::new());
    let response = CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from(body),
        url.clone(),
        request,
    );
    let value = reqwest_caching::cache_core::encode(&response)?;
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let meta = EntryMeta::new(key(n), url, SystemTime::now(), Some(expires));
    Ok(StoredEntry::new(meta, value))
}

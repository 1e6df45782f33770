//! Scale checks: hit latency against a large store, and memory while a huge body streams.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};
use reqwest_caching::cache_core::codec;
use reqwest_caching::cache_http::KeyRules;
use reqwest_caching::{
    CacheStore, CachedRequest, CachedResponse, EntryMeta, SledStore, SqliteStore, StoredEntry,
};

use crate::{hits, micros};

/// Writes `count` entries for `{origin}/body/1024?i={n}` straight into the store.
async fn fill(store: &dyn CacheStore, origin: &str, count: usize) {
    let rules = KeyRules::default();
    let body = Bytes::from(vec![b'x'; 100]);
    let mut pending = Vec::new();
    for n in 0..count {
        let url = url::Url::parse(&format!("{origin}/body/1024?i={n}")).expect("url");
        let key = rules.key(&Method::GET, &url, &HeaderMap::new(), None);
        let response = CachedResponse::new(
            StatusCode::OK,
            Version::HTTP_11,
            HeaderMap::new(),
            body.clone(),
            url.as_str(),
            CachedRequest::new(Method::GET, url.as_str(), HeaderMap::new()),
        );
        let value = codec::encode(&response).expect("encode");
        let meta = EntryMeta::new(key, url.as_str(), SystemTime::now(), None);
        pending.push(store.put(StoredEntry::new(meta, value)));
        if pending.len() == 256 {
            for result in futures_util::future::join_all(pending.drain(..)).await {
                result.expect("put");
            }
        }
    }
    for result in futures_util::future::join_all(pending).await {
        result.expect("put");
    }
}

pub async fn run(entries: usize) {
    let origin = crate::origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    println!("hit latency with 1,000 entries and with {entries} entries (100 B bodies)");
    for name in ["sqlite", "sled"] {
        let mut medians = Vec::new();
        for count in [1_000, entries] {
            let path = dir.path().join(format!("{name}-{count}"));
            let store: std::sync::Arc<dyn CacheStore> = match name {
                "sqlite" => std::sync::Arc::new(
                    SqliteStore::open(path.with_extension("sqlite")).expect("sqlite"),
                ),
                _ => {
                    std::sync::Arc::new(SledStore::open(path.with_extension("sled")).expect("sled"))
                }
            };
            let started = std::time::Instant::now();
            fill(&*store, &origin, count).await;
            let filled = started.elapsed();
            let cache = reqwest_caching::CacheMiddleware::builder()
                .shared_store(store)
                .build()
                .expect("cache");
            let client = cache.into_client(reqwest::Client::new());
            let url = format!("{origin}/body/1024?i={}", count / 2);
            let stats = hits(&client, std::slice::from_ref(&url)).await;
            println!(
                "  {name:<6} {count:>9} entries: median {:>6.2}µs p99 {:>6.2}µs (filled in {filled:.1?})",
                micros(stats.median),
                micros(stats.p99)
            );
            medians.push(stats.median);
        }
        println!(
            "  {name}: {entries} / 1,000 = {:.2} (target <= 1.3)",
            medians[1].as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

/// Peak resident memory of this process, in bytes (Linux).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub async fn big_body(limit_mib: u64) {
    let origin = crate::origin::start().await;
    {
        let cache = reqwest_caching::CacheMiddleware::builder()
            .store(reqwest_caching::MemoryStore::new())
            .max_body_size(limit_mib * 1024 * 1024)
            .build()
            .expect("cache");
        let client = cache.into_client(reqwest::Client::new());
        // Warm up the client and the origin so their own allocations are in the baseline.
        let warm = client
            .get(format!("{origin}/stream/1048576"))
            .send()
            .await
            .expect("warm");
        warm.bytes().await.expect("body");
        let baseline = peak_rss();
        let size = 100 * 1024 * 1024;
        let mut response = client
            .get(format!("{origin}/stream/{size}"))
            .send()
            .await
            .expect("request");
        assert!(response.status().is_success(), "{}", response.status());
        let mut received = 0usize;
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            received += chunk.len();
        }
        let peak = peak_rss();
        println!(
            "100 MB response, max_body_size {limit_mib} MiB: {received} bytes received uncached, peak RSS +{:.1} MB over the baseline",
            (peak.saturating_sub(baseline)) as f64 / 1e6
        );
    }
}

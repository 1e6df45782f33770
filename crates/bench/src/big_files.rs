//! `big-body-fs [MiB]`: peak memory while a body of that many MiB (default 1024) passes
//! through the cache over an `FsStore`, once written to the store as it streams (a miss),
//! once read back from its file (a hit), against the same body fetched without the cache
//! first. The peak is a high-water mark, so each figure is the most the process held up to
//! that step, over the baseline taken after a warm-up.
//!
//! `copy-fs [MiB]`: peak memory while `transfer::copy` copies a cache directory holding
//! eight downloads of an eighth of that many MiB each (default 1024) into another.

use std::time::Instant;

use futures_util::StreamExt;
use reqwest_caching::{CacheMiddleware, CacheResponseExt, FsStore};

use crate::scale::peak_rss;

pub async fn run(mib: u64) {
    let origin = crate::origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = CacheMiddleware::builder()
        .store(FsStore::open(dir.path()).expect("fs store"))
        .build()
        .expect("cache");
    let cached = cache.into_client(reqwest::Client::new());
    let plain = reqwest::Client::new();
    // Warm up both clients and the origin so their own allocations are in the baseline.
    for url in ["/stream-len/1048576", "/stream/1048576"] {
        let body = plain
            .get(format!("{origin}{url}"))
            .send()
            .await
            .expect("warm");
        body.bytes().await.expect("body");
        let body = cached
            .get(format!("{origin}{url}"))
            .send()
            .await
            .expect("warm");
        body.bytes().await.expect("body");
    }
    let baseline = peak_rss();
    let size = mib * 1024 * 1024;
    let url = format!("{origin}/stream-len/{size}");
    let over = |peak: u64| peak.saturating_sub(baseline) as f64 / 1e6;

    let started = Instant::now();
    let response = plain.get(&url).send().await.expect("request");
    let received = drain(response.bytes_stream()).await;
    println!(
        "{mib} MiB without the cache:        {received} bytes in {:.1} s, peak RSS +{:.1} MB",
        started.elapsed().as_secs_f64(),
        over(peak_rss())
    );
    for step in ["miss (written to the store)", "hit (read from its file)  "] {
        let started = Instant::now();
        let response = cached.get(&url).send().await.expect("request");
        let from_cache = response.from_cache();
        let received = drain(response.bytes_stream()).await;
        println!(
            "{mib} MiB through the cache, {step}: {received} bytes in {:.1} s, from cache {from_cache}, peak RSS +{:.1} MB",
            started.elapsed().as_secs_f64(),
            over(peak_rss())
        );
    }
}

pub async fn copy(mib: u64) {
    let origin = crate::origin::start().await;
    let (from_dir, to_dir) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let from = FsStore::open(from_dir.path()).expect("fs store");
    let cache = CacheMiddleware::builder()
        .store(from.clone())
        .build()
        .expect("cache");
    let client = cache.into_client(reqwest::Client::new());
    let size = mib * 1024 * 1024 / 8;
    for n in 0..8 {
        let url = format!("{origin}/stream-len/{size}?n={n}");
        let response = client.get(&url).send().await.expect("request");
        drain(response.bytes_stream()).await;
    }
    let to = FsStore::open(to_dir.path()).expect("fs store");
    let baseline = peak_rss();
    let started = Instant::now();
    let done = reqwest_caching::transfer::copy(&from, &to, |_| {})
        .await
        .expect("copy");
    println!(
        "copied {} entries, {} bytes, in {:.1} s: peak RSS +{:.1} MB over the {:.1} MB before",
        done.entries,
        done.bytes,
        started.elapsed().as_secs_f64(),
        peak_rss().saturating_sub(baseline) as f64 / 1e6,
        baseline as f64 / 1e6
    );
}

async fn drain(
    mut body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
) -> u64 {
    let mut received = 0;
    while let Some(chunk) = body.next().await {
        received += chunk.expect("chunk").len() as u64;
    }
    received
}

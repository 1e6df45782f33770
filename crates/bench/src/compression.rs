//! `... -- compression`: what LZ4 compression of stored bodies costs on a hit and saves in
//! the store, for JSON-like bodies.

use reqwest_caching::reqwest_middleware::ClientWithMiddleware;
use reqwest_caching::{CacheHandle, CacheMiddleware, CacheStore, MemoryStore, SqliteStore};

fn client(store: impl CacheStore, compress: bool) -> (ClientWithMiddleware, CacheHandle) {
    let builder = CacheMiddleware::builder().store(store);
    let builder = if compress {
        builder.compress_above(1024)
    } else {
        builder
    };
    let cache = builder.build().expect("cache");
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    (client, handle)
}

pub async fn run() {
    let origin = crate::origin::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "{:<28} {:>10} {:>14} {:>14}",
        "JSON-like body, store", "stored", "hit median", "hit p99"
    );
    for size in [4 * 1024usize, 64 * 1024, 1024 * 1024] {
        let url = format!("{origin}/json/{size}");
        for compress in [false, true] {
            for sqlite in [false, true] {
                let (client, handle) = if sqlite {
                    let path = dir.path().join(format!("c-{size}-{compress}.sqlite"));
                    client(SqliteStore::open(path).expect("sqlite"), compress)
                } else {
                    client(MemoryStore::new(), compress)
                };
                let stats = crate::hits(&client, std::slice::from_ref(&url)).await;
                let key = handle.key_for(&reqwest::Method::GET, &url).expect("key");
                let stored = handle
                    .store()
                    .get(&key)
                    .await
                    .expect("read")
                    .expect("stored")
                    .value
                    .len();
                println!(
                    "{:<28} {:>9}B {:>12.2}µs {:>12.2}µs",
                    format!(
                        "{} KiB {} {}",
                        size / 1024,
                        if sqlite { "SQLite" } else { "memory" },
                        if compress { "lz4" } else { "raw" }
                    ),
                    stored,
                    crate::micros(stats.median),
                    crate::micros(stats.p99)
                );
            }
        }
    }
}

//! The cache in one screen, with no internet: a local origin whose endpoint takes 100 ms,
//! 100 requests through a cached client on the default SQLite store, and the figures.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use reqwest_caching::reqwest_middleware::ClientBuilder;
use reqwest_caching::{CacheMiddleware, CacheResponseExt};

const ORIGIN_DELAY: Duration = Duration::from_millis(100);
const REQUESTS: usize = 100;
const DISTINCT_URLS: usize = 10;

/// A slow origin on 127.0.0.1 that counts what reaches it.
async fn start_origin() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/items/{id}",
            axum::routing::get(
                |Path(id): Path<u32>, State(served): State<Arc<AtomicU64>>| async move {
                    tokio::time::sleep(ORIGIN_DELAY).await;
                    served.fetch_add(1, Ordering::Relaxed);
                    format!("{{\"id\": {id}, \"name\": \"item {id}\"}}")
                },
            ),
        )
        .with_state(Arc::clone(&served));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("origin server") });
    (base, served)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (base, served) = start_origin().await;

    // The default cache: SQLite at ./http_cache.sqlite, responses never expire.
    let cache = CacheMiddleware::new()?;
    let handle = cache.handle();
    // The origin's port changes every run; start empty so the figures are the same each time.
    handle.clear().await?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .build();

    let started = Instant::now();
    let mut from_cache = 0;
    for i in 0..REQUESTS {
        let url = format!("{base}/items/{}", i % DISTINCT_URLS);
        let response = client.get(&url).send().await?;
        if response.from_cache() {
            from_cache += 1;
        }
        response.text().await?;
    }
    let elapsed = started.elapsed();

    let reached_origin = served.load(Ordering::Relaxed);
    println!("{REQUESTS} requests over {DISTINCT_URLS} URLs, origin takes {ORIGIN_DELAY:?} each");
    println!("  reached the origin: {reached_origin}");
    println!("  from the cache:     {from_cache}");
    println!(
        "  wall time:          {elapsed:.2?} (uncached: about {:.1?})",
        ORIGIN_DELAY * REQUESTS as u32
    );
    println!(
        "  entries in {}: {}",
        reqwest_caching::DEFAULT_SQLITE_PATH,
        handle.count().await?
    );

    // A "restart": a new middleware over the same file still answers from the cache.
    let restarted = ClientBuilder::new(reqwest::Client::new())
        .with(CacheMiddleware::new()?)
        .build();
    let started = Instant::now();
    let response = restarted.get(format!("{base}/items/3")).send().await?;
    println!(
        "after a restart: /items/3 from cache = {} in {:.2?}; origin requests still {}",
        response.from_cache(),
        started.elapsed(),
        served.load(Ordering::Relaxed)
    );
    Ok(())
}

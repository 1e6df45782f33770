//! A remote store killed mid-run and started again: no request fails, the breaker keeps the
//! cost of the outage to a few store calls, and caching resumes after the restart.
#![cfg(any(feature = "redis", feature = "mongodb", feature = "dynamodb"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest_caching::{CacheMiddleware, CacheResponseExt, CacheStore};
use test_support::StopStart;

use crate::origin::Origin;

const REQUESTS: usize = 1_000;
const URLS: usize = 100;

/// What happened during the run, for the assertions and the log.
#[derive(Debug)]
struct OutageReport {
    errors: u64,
    skipped: u64,
    hits_before: usize,
    outage_median: Duration,
    outage_max: Duration,
    resumed_after: Duration,
}

/// Runs the 1,000 requests against `store`, calling `stop` at 30 % and `restart` at 70 %.
async fn run_through_outage(
    store: Arc<dyn CacheStore>,
    mut stop: impl FnMut(),
    mut restart: impl FnMut(),
) -> OutageReport {
    let cache = CacheMiddleware::builder()
        .shared_store(store)
        .store_timeout(Duration::from_millis(500))
        .store_breaker(3, Duration::from_millis(100), Duration::from_secs(1))
        .build()
        .expect("cache");
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    let mut outage_latencies = Vec::new();
    let mut hits_before = 0;
    for i in 0..REQUESTS {
        if i == REQUESTS * 3 / 10 {
            tokio::task::block_in_place(&mut stop);
        }
        if i == REQUESTS * 7 / 10 {
            tokio::task::block_in_place(&mut restart);
        }
        let path = format!("/outage/{}", i % URLS);
        let started = Instant::now();
        let response = client
            .get(origin.url(&path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} failed: {e:?}"));
        assert_eq!(response.status(), 200, "request {i}");
        let from_cache = response.from_cache();
        let body = response.text().await.expect("body");
        assert!(
            body.starts_with(&format!("{path} #")),
            "request {i}: {body}"
        );
        let elapsed = started.elapsed();
        if i < REQUESTS * 3 / 10 {
            hits_before += usize::from(from_cache);
        } else if i < REQUESTS * 7 / 10 {
            assert!(!from_cache, "request {i}: served from a dead store");
            outage_latencies.push(elapsed);
        }
    }
    // Caching resumes once the breaker probes the restarted store and the client reconnects.
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(60);
    loop {
        let url = origin.url("/resume");
        let first = client.get(&url).send().await.expect("request succeeds");
        let stored = first.cache_info().is_some_and(|i| i.stored || i.from_cache);
        let second = client.get(&url).send().await.expect("request succeeds");
        if stored && second.from_cache() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "caching did not resume within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    outage_latencies.sort();
    let stats = handle.stats();
    OutageReport {
        errors: stats.errors,
        skipped: stats.skipped,
        hits_before,
        outage_median: outage_latencies[outage_latencies.len() / 2],
        outage_max: *outage_latencies.last().expect("outage requests"),
        resumed_after: restarted.elapsed(),
    }
}

fn check(name: &str, report: &OutageReport) {
    println!(
        "{name} outage: {} failed store calls, {} skipped by the breaker; request latency \
         while down: median {:?}, max {:?}; caching resumed {:?} after the restart",
        report.errors,
        report.skipped,
        report.outage_median,
        report.outage_max,
        report.resumed_after
    );
    // 300 requests over 100 URLs before the outage: 100 misses, then 200 hits.
    assert_eq!(report.hits_before, 200, "{name}: {report:?}");
    assert!(
        report.errors > 0,
        "{name}: failures are counted: {report:?}"
    );
    assert!(report.skipped > 0, "{name}: the breaker opened: {report:?}");
    // 400 requests × 2 store calls during the outage; the breaker lets only a few through
    // (3 to open it, then one probe per back-off).
    assert!(
        report.errors < 100,
        "{name}: {} failed store calls: the breaker did not bound the outage",
        report.errors
    );
}

/// The outage run against `store`, taking `server` down and back.
async fn outage_of(name: &str, server: impl StopStart, store: impl CacheStore) {
    let server = std::sync::Mutex::new(server);
    let report = run_through_outage(
        Arc::new(store),
        || server.lock().unwrap().stop(),
        || server.lock().unwrap().restart(),
    )
    .await;
    check(name, &report);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run() {
    let server = test_support::RedisServer::start();
    let store = reqwest_caching::RedisStore::builder()
        .prefix(test_support::unique_namespace("outage"))
        .open(&server.url())
        .await
        .expect("connect");
    outage_of("redis", server, store).await;
}

#[cfg(feature = "mongodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_killed_mid_run() {
    let server = test_support::MongoServer::start_persistent();
    let store = reqwest_caching::MongoStore::builder()
        .database("outage")
        .collection("entries")
        .open(&server.uri())
        .await
        .expect("connect");
    outage_of("mongodb", server, store).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_killed_mid_run() {
    let server = test_support::DynamoServer::start_persistent();
    let store = reqwest_caching::DynamoStore::builder()
        .table("outage")
        .open_local(&server.endpoint(), "us-east-1")
        .await
        .expect("connect");
    outage_of("dynamodb", server, store).await;
}

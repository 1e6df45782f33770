//! The memory tier over Redis, killed (SIGKILL) and restarted under load: no request fails,
//! and once Redis is back no entry the memory tier held from before is served over what
//! another service stored since.
#![cfg(all(feature = "tiered", feature = "redis"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest_caching::reqwest_middleware::ClientWithMiddleware;
use reqwest_caching::{
    CacheMiddleware, CacheMode, CacheRequestExt, CacheResponseExt, RedisInvalidations, RedisStore,
    TieredStore,
};
use test_support::StopStart;

use crate::origin::Origin;

const URLS: usize = 50;
const WORKERS: usize = 8;

/// One service over the shared Redis: its tiered store and a client on it.
async fn service(url: &str, prefix: &str) -> (Arc<TieredStore>, ClientWithMiddleware) {
    let redis = RedisStore::builder()
        .prefix(prefix)
        .open(url)
        .await
        .expect("connect");
    let invalidations = RedisInvalidations::for_store(&redis, url).expect("url");
    let store = Arc::new(
        TieredStore::builder(redis)
            .invalidations(invalidations)
            .build()
            .await
            .expect("subscribe"),
    );
    let cache = CacheMiddleware::builder()
        .shared_store(store.clone())
        .expire_after(Duration::from_secs(3600))
        .store_timeout(Duration::from_secs(3))
        .store_breaker(3, Duration::from_millis(100), Duration::from_secs(1))
        .build()
        .expect("cache");
    (store, cache.into_client(reqwest::Client::new()))
}

/// A request that must succeed with the origin's body for its path; returns the body and
/// whether it came from the cache.
async fn checked(
    client: &ClientWithMiddleware,
    origin: &Origin,
    path: &str,
    mode: CacheMode,
) -> (String, bool) {
    let response = client
        .get(origin.url(path))
        .cache_mode(mode)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: request failed: {e:?}"));
    assert_eq!(response.status(), 200, "{path}");
    let from_cache = response.from_cache();
    let body = response.text().await.expect("body");
    assert!(body.starts_with(&format!("{path} #")), "{path}: {body}");
    (body, from_cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_no_failure_no_stale_entry() {
    let mut server = test_support::RedisServer::start();
    let url = server.url();
    let prefix = test_support::unique_namespace("tiered-outage");
    let (here_store, here) = service(&url, &prefix).await;
    let here = Arc::new(here);
    let origin = Arc::new(Origin::start().await);
    let path = |i: usize| format!("/tiered/{}", i % URLS);

    // Every URL cached and in memory before the outage.
    for i in 0..URLS {
        checked(&here, &origin, &path(i), CacheMode::Default).await;
        let (_, cached) = checked(&here, &origin, &path(i), CacheMode::Default).await;
        assert!(cached, "{}", path(i));
    }

    // Load from WORKERS tasks through the kill and the restart; every request is checked.
    let (done, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (here, origin, done, stop) =
                (here.clone(), origin.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::SeqCst) {
                    checked(
                        &here,
                        &origin,
                        &format!("/tiered/{}", i % URLS),
                        CacheMode::Default,
                    )
                    .await;
                    done.fetch_add(1, Ordering::SeqCst);
                    i += WORKERS;
                    // A memory hit completes without waiting on anything: yield, or the
                    // workers never let the runtime's timers (the test's own clock) run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let wait_for = async |n: usize| {
        let target = done.load(Ordering::SeqCst) + n;
        while done.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    wait_for(300).await;
    tokio::task::block_in_place(|| server.kill());
    wait_for(300).await;
    tokio::task::block_in_place(|| server.restart());
    // At once, before this service has (likely) resubscribed: another service stores a new
    // version of every URL in the restarted Redis. Notices of these writes can be missed
    // here: only the flush on resubscription keeps the old copies from being served.
    let (_, there) = service(&url, &prefix).await;
    for i in 0..URLS {
        checked(&there, &origin, &path(i), CacheMode::ForceRefresh).await;
    }
    wait_for(300).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("no request failed");
    }
    let requests = done.load(Ordering::SeqCst);

    // Back: the tier has resubscribed, and the middleware caches again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !here_store.stats().memory_first {
        assert!(Instant::now() < deadline, "no resubscription within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    loop {
        checked(&here, &origin, "/resume", CacheMode::Default).await;
        if checked(&here, &origin, "/resume", CacheMode::Default)
            .await
            .1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "caching did not resume within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // What Redis holds, read by a client without a memory tier: this service must serve
    // exactly that, from the cache, for every URL.
    let redis = RedisStore::builder()
        .prefix(&prefix)
        .open(&url)
        .await
        .expect("connect");
    let truth = CacheMiddleware::builder()
        .store(redis)
        .expire_after(Duration::from_secs(3600))
        .build()
        .expect("cache")
        .into_client(reqwest::Client::new());
    let mut stored = Vec::new();
    for i in 0..URLS {
        stored.push(
            checked(&truth, &origin, &path(i), CacheMode::Default)
                .await
                .0,
        );
    }
    here_store.sync().await.expect("subscribed");
    for (i, expected) in stored.iter().enumerate() {
        let (body, cached) = checked(&here, &origin, &path(i), CacheMode::Default).await;
        assert_eq!(&body, expected, "stale entry served after the restart");
        assert!(cached, "{}: served from the cache", path(i));
    }
    println!(
        "tiered over redis, SIGKILL and restart under load: {requests} requests, none failed; \
         {} invalidations, {} flushes; no stale entry after the restart",
        here_store.stats().invalidations,
        here_store.stats().flushes
    );
    assert!(
        here_store.stats().flushes >= 3,
        "flushed at start, on loss and on resubscription"
    );
}

//! Concurrent identical misses send one request to the origin.

use std::time::Duration;

use reqwest_caching::{CacheMode, CacheRequestExt, CacheResponseExt};

use crate::support::{BACKENDS, Harness, send, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_identical_misses_reach_the_origin_once() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let requests: Vec<_> = (0..100)
            .map(|_| {
                let request = h.get("/held/sf");
                tokio::spawn(async move { request.send().await })
            })
            .collect();
        // Hold the origin until the first request is there, then let it answer.
        wait_until(|| h.origin.hits("/held/sf") >= 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        h.origin.open_gate();
        let mut coalesced = 0;
        for request in requests {
            let response = request.await.unwrap().expect("request succeeds");
            let info = response.cache_info().unwrap().clone();
            coalesced += usize::from(info.coalesced);
            let body = response.text().await.unwrap();
            assert_eq!(body, "/held/sf #1", "{backend:?}: {info:?}");
        }
        assert_eq!(
            h.origin.hits("/held/sf"),
            1,
            "{backend:?}: one request reached the origin"
        );
        assert!(
            coalesced > 0,
            "{backend:?}: some requests waited for the first"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_responses_release_the_waiters_to_the_network() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.allowable_codes([201])).await;
        let requests: Vec<_> = (0..5)
            .map(|_| {
                let request = h.get("/held/nc");
                tokio::spawn(async move { request.send().await })
            })
            .collect();
        wait_until(|| h.origin.hits("/held/nc") >= 1).await;
        h.origin.open_gate();
        for request in requests {
            let response = request.await.unwrap().expect("request succeeds");
            assert!(!response.from_cache(), "{backend:?}");
        }
        // 200 is not allowable here: nothing stored, so each waiter fetched for itself.
        assert_eq!(h.origin.hits("/held/nc"), 5, "{backend:?}");
    }
}

#[tokio::test]
async fn other_modes_and_methods_are_never_merged() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.origin.open_gate();
        let (_, info) = send(h.get("/held/m").cache_mode(CacheMode::ForceRefresh)).await;
        assert!(!info.coalesced);
        send(h.client.post(h.origin.url("/held/m"))).await;
        assert_eq!(h.origin.hits("/held/m"), 2, "{backend:?}");
    }
}

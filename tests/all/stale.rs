//! stale-if-error and stale-while-revalidate.

use std::time::Duration;

use reqwest_caching::{CacheMiddleware, CacheResponseExt, ManualClock, MemoryStore};

use crate::origin::Origin;
use crate::support::{BACKENDS, Backend, Harness, custom, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn stale_if_error_on_429_and_5xx_within_the_allowance() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE)
                .stale_if_error(Duration::from_secs(120))
        })
        .await;
        let path = custom("e", &[]);
        let (first, _) = h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(90));
        // 429 Too Many Requests included: the answer of a rate-limited API.
        for status in [429, 500, 502, 503, 504] {
            h.origin.override_status(Some(status));
            let response = h.get(&path).send().await.unwrap();
            assert_eq!(response.status(), 200, "{backend:?} {status}");
            let info = response.cache_info().unwrap().clone();
            assert!(
                info.stale_if_error && info.from_cache && info.is_expired,
                "{backend:?}: {info:?}"
            );
            assert_eq!(response.text().await.unwrap(), first);
        }
        // Other errors pass through.
        h.origin.override_status(Some(501));
        assert_eq!(
            h.get(&path).send().await.unwrap().status(),
            501,
            "{backend:?}"
        );
        // Beyond the allowance the error passes through.
        h.origin.override_status(Some(503));
        h.clock.advance(Duration::from_secs(100));
        let response = h.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 503, "{backend:?}");
        assert!(!response.from_cache());
    }
}

/// The statuses that count as errors are the user's: only those serve stale, the others
/// pass through; either way the request reached the origin.
#[tokio::test]
async fn stale_if_error_statuses_are_configurable() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE)
                .stale_if_error(true)
                .stale_if_error_statuses([503, 520])
        })
        .await;
        let path = custom("s", &[]);
        let (first, _) = h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(90));
        for (status, stale) in [(429, false), (500, false), (503, true), (520, true)] {
            h.origin.override_status(Some(status));
            let response = h.get(&path).send().await.unwrap();
            let info = response.cache_info().unwrap().clone();
            if stale {
                assert_eq!(response.status(), 200, "{backend:?} {status}");
                assert!(info.stale_if_error, "{backend:?} {status}: {info:?}");
                assert_eq!(response.text().await.unwrap(), first);
            } else {
                assert_eq!(response.status(), status, "{backend:?}");
                assert!(!info.from_cache, "{backend:?} {status}: {info:?}");
            }
        }
        assert_eq!(
            h.origin.hits("/custom/s"),
            5,
            "{backend:?}: every request went out"
        );
    }
}

#[tokio::test]
async fn stale_if_error_when_the_origin_is_down() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE).stale_if_error(true)).await;
        let (first, _) = h.fetch("/down").await;
        h.fetch("/never-cached-before").await;
        h.clock.advance(Duration::from_secs(3600));
        h.origin.stop().await;
        let response = h
            .get("/down")
            .send()
            .await
            .expect("stale entry instead of an error");
        assert!(response.cache_info().unwrap().stale_if_error, "{backend:?}");
        assert_eq!(response.text().await.unwrap(), first);
        // Nothing stored for this URL: the connection error passes through unchanged.
        let err = h.get("/other").send().await.unwrap_err();
        assert!(err.is_connect(), "{backend:?}: {err:?}");
    }
}

#[tokio::test]
async fn stale_if_error_directive_and_must_revalidate() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.cache_control(true).stale_if_error(true)).await;
        let strict = custom("strict", &["cache-control: max-age=10, must-revalidate"]);
        let allowed = custom("allowed", &["cache-control: max-age=10, stale-if-error=60"]);
        // The directive does not lift must-revalidate or no-cache: RFC 9111 §5.2.2.2 ("if a
        // cache is disconnected, the cache MUST generate an error response rather than reuse
        // the stale response") and §4.2.4.
        let forbidden = [
            custom(
                "mr",
                &["cache-control: max-age=10, must-revalidate, stale-if-error=60"],
            ),
            custom("nc", &["cache-control: no-cache, stale-if-error=60"]),
        ];
        for path in [&strict, &allowed].into_iter().chain(&forbidden) {
            h.fetch(path).await;
        }
        h.clock.advance(Duration::from_secs(30));
        h.origin.override_status(Some(500));
        let response = h.get(&strict).send().await.unwrap();
        assert_eq!(
            response.status(),
            500,
            "{backend:?}: must-revalidate beats the setting"
        );
        for path in &forbidden {
            let response = h.get(path).send().await.unwrap();
            assert_eq!(
                response.status(),
                500,
                "{backend:?}: {path}: the directive does not lift it"
            );
        }
        let response = h.get(&allowed).send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "{backend:?}: the directive allows it"
        );
        h.clock.advance(Duration::from_secs(60));
        assert_eq!(
            h.get(&allowed).send().await.unwrap().status(),
            500,
            "{backend:?}: past 60 s"
        );
    }
}

/// `stale-while-revalidate` does not lift `no-cache` or `must-revalidate` (RFC 9111 §4.2.4):
/// such a response is validated with the origin before it is served, even inside the
/// window; `proxy-revalidate` binds shared caches only, so a private cache serves stale.
#[tokio::test]
async fn stale_while_revalidate_yields_to_no_cache_and_must_revalidate() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.cache_control(true)).await;
        for (name, directives) in [
            ("nc", "no-cache, stale-while-revalidate=600"),
            (
                "mr",
                "max-age=10, must-revalidate, stale-while-revalidate=600",
            ),
        ] {
            let path = custom(
                name,
                &[&format!("cache-control: {directives}"), "etag: \"e\""],
            );
            h.fetch(&path).await;
            h.clock.advance(Duration::from_secs(20));
            let (_, info) = crate::support::send(h.get(&path)).await;
            assert!(
                !info.stale_while_revalidate && info.revalidated,
                "{backend:?}: {directives}: validated before use, {info:?}"
            );
            let target = format!("/custom/{name}");
            assert_eq!(h.origin.hits(&target), 2, "{backend:?}: {directives}");
            assert_eq!(h.handle.pending_refreshes(), 0, "{backend:?}: no refresh");
        }
        let path = custom(
            "pr",
            &[
                "cache-control: max-age=10, proxy-revalidate, stale-while-revalidate=600",
                "etag: \"e\"",
            ],
        );
        h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(20));
        let (_, info) = crate::support::send(h.get(&path)).await;
        assert!(
            info.stale_while_revalidate,
            "{backend:?}: proxy-revalidate: {info:?}"
        );
        wait_for_refreshes(&h.handle).await;
        assert_eq!(h.origin.hits("/custom/pr"), 2, "{backend:?}: one refresh");
    }
}

#[tokio::test]
async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE).stale_while_revalidate(true)
        })
        .await;
        let (first, _) = h.fetch("/gate/swr").await;
        h.clock.advance(Duration::from_secs(61));
        // The refresh is held at the origin until every stale request has been answered.
        let requests = (0..10).map(|_| h.get("/gate/swr").send());
        // Bounded: a request that missed instead would wait at the closed gate for good.
        let responses = tokio::time::timeout(
            Duration::from_secs(60),
            futures_util::future::join_all(requests),
        )
        .await
        .unwrap_or_else(|_| panic!("{backend:?}: a stale request waited at the origin"));
        for response in responses {
            let response = response.unwrap();
            let info = response.cache_info().unwrap().clone();
            assert!(
                info.from_cache && info.stale_while_revalidate && info.is_expired,
                "{backend:?}: {info:?}"
            );
            assert_eq!(response.text().await.unwrap(), first);
        }
        assert_eq!(h.handle.pending_refreshes(), 1);
        h.origin.open_gate();
        wait_for_refreshes(&h.handle).await;
        assert_eq!(
            h.origin.hits("/gate/swr"),
            2,
            "{backend:?}: one background refresh"
        );
        // Each stale answer a hit, once: the refresh counts no miss (it answers no request).
        let stats = h.handle.stats();
        assert_eq!(
            (stats.hits, stats.misses),
            (10, 1),
            "{backend:?}: {stats:?}"
        );
        let (body, info) = h.fetch("/gate/swr").await;
        assert!(
            info.from_cache && !info.is_expired,
            "{backend:?}: refreshed entry is fresh"
        );
        assert_eq!(body, "/gate/swr #2");
    }
}

/// A background refresh whose `304` names another representation than the stored one
/// (RFC 9111 §4.3.4) sends the request again without conditions and stores that answer,
/// rather than renewing the stored body.
#[tokio::test]
async fn a_background_refresh_whose_304_names_another_tag_fetches_it_whole() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE).stale_while_revalidate(true)
        })
        .await;
        h.fetch("/retagged/swr").await;
        h.clock.advance(Duration::from_secs(61));
        let (stale, info) = h.fetch("/retagged/swr").await;
        assert!(info.stale_while_revalidate, "{backend:?}: {info:?}");
        assert_eq!(stale, "/retagged/swr #1");
        wait_for_refreshes(&h.handle).await;
        h.origin
            .assert_sent_again_unconditional(&format!("{backend:?}"));
        let (body, info) = h.fetch("/retagged/swr").await;
        assert!(info.from_cache && !info.is_expired, "{backend:?}: {info:?}");
        assert_eq!(
            body, "/retagged/swr #3",
            "{backend:?}: the refresh stored the new body"
        );
    }
}

#[tokio::test]
async fn stale_while_revalidate_directive_bounds_staleness() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.cache_control(true)).await;
        let path = custom(
            "swr",
            &[
                "cache-control: max-age=10, stale-while-revalidate=30",
                "etag: \"s\"",
            ],
        );
        h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(20));
        let (_, info) = crate::support::send(h.get(&path)).await;
        assert!(info.stale_while_revalidate, "{backend:?}");
        wait_for_refreshes(&h.handle).await;
        assert_eq!(
            h.origin.last("/custom/swr").headers["if-none-match"],
            "\"s\"",
            "conditional refresh"
        );
        h.clock.advance(Duration::from_secs(100));
        let (_, info) = crate::support::send(h.get(&path)).await;
        assert!(
            !info.stale_while_revalidate && info.revalidated,
            "{backend:?}: too stale, revalidated inline"
        );
    }
}

#[tokio::test]
async fn background_refreshes_stop_with_the_middleware() {
    let origin = Origin::start().await;
    let clock = std::sync::Arc::new(ManualClock::starting_now());
    let cache = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .expire_after(MINUTE)
        .stale_while_revalidate(true)
        .build()
        .unwrap();
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    client
        .get(origin.url("/hang/h"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let response = client.get(origin.url("/hang/h")).send().await.unwrap();
    assert!(response.cache_info().unwrap().stale_while_revalidate);
    assert_eq!(handle.pending_refreshes(), 1);
    // The refresh reached the origin, which will never answer.
    wait_until(|| origin.hits("/hang/h") == 2).await;
    drop((client, handle, response));
    wait_until(|| origin.cancelled() == 1).await;
}

async fn wait_for_refreshes(handle: &reqwest_caching::CacheHandle) {
    wait_until(|| handle.pending_refreshes() == 0).await;
}

/// A refresh whose body never ends used to hold its entry's refresh slot forever (only the
/// head was bounded): no later stale request refreshed it again. Now the whole exchange is
/// bounded: the refresh fails, is counted, its body is abandoned and its slot released.
#[tokio::test]
async fn a_refresh_whose_body_stalls_is_abandoned_and_its_slot_released() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE)
                .stale_while_revalidate(true)
                // A client built beforehand and a bound a loaded machine cannot exceed before
                // the request reaches the origin; the body never ends, so the bound still
                // ends every refresh.
                .background_client(reqwest::Client::new())
                .refresh_timeout(Duration::from_secs(1))
        })
        .await;
        let (first, _) = h.fetch("/stall/s").await;
        h.clock.advance(Duration::from_secs(61));
        for attempt in 1..=2 {
            let (body, info) = h.fetch("/stall/s").await;
            assert!(info.stale_while_revalidate, "{backend:?}: {info:?}");
            assert_eq!(body, first, "{backend:?}");
            // The refresh reached the origin: the slot was free.
            wait_until(|| h.origin.hits("/stall/s") == 1 + attempt).await;
            wait_until(|| h.handle.stats().refresh_failures == attempt as u64).await;
            wait_for_refreshes(&h.handle).await;
            wait_until(|| h.origin.cancelled() == attempt as u64).await;
        }
        let (body, info) = h.fetch("/stall/s").await;
        assert_eq!(body, first, "{backend:?}: the stale entry stays");
        assert!(info.stale_while_revalidate, "{backend:?}");
    }
}

/// A background refresh is the cache's own request: it validates with the entry's validators,
/// not the caller's. A caller sending its own `If-None-Match` made every refresh a `304` the
/// cache could not use, and the entry stayed stale for good.
#[tokio::test]
async fn a_background_refresh_validates_with_the_entrys_validators() {
    let h = Harness::with(Backend::Memory, |b| {
        b.expire_after(MINUTE).stale_while_revalidate(true)
    })
    .await;
    let path = "/etag/swr-own-validators";
    h.fetch(path).await;
    h.clock.advance(Duration::from_secs(61));
    let conditional = h.get(path).header("if-none-match", "\"v1\"");
    let (_, info) = crate::support::send(conditional).await;
    assert!(info.stale_while_revalidate, "{info:?}");
    wait_for_refreshes(&h.handle).await;
    assert_eq!(h.handle.stats().refresh_failures, 0);
    let (_, info) = crate::support::send(h.get(path)).await;
    assert!(
        info.from_cache && !info.is_expired && !info.stale_while_revalidate,
        "renewed by the refresh: {info:?}"
    );
    assert_eq!(h.origin.hits(path), 2, "the first fetch and the refresh");
}

/// A `no-cache` naming fields keeps only those fields from reuse (RFC 9111 §5.2.2.4; they
/// are not stored), so the rest of the response may be served stale where a directive
/// allows: it was refused as if the `no-cache` were bare, and the origin's error passed.
#[tokio::test]
async fn a_no_cache_naming_fields_lets_the_response_be_served_stale() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.cache_control(true)).await;
        let path = custom(
            "named",
            &[r#"cache-control: max-age=10, no-cache="set-cookie", stale-if-error=60"#],
        );
        let (first, _) = h.fetch(&path).await;
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}: fresh");
        h.clock.advance(Duration::from_secs(30));
        h.origin.override_status(Some(500));
        let response = h.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{backend:?}: the error passed");
        assert!(response.cache_info().unwrap().stale_if_error, "{backend:?}");
        assert_eq!(response.text().await.unwrap(), first, "{backend:?}");
    }
}

/// A stale answer served while it is refreshed answers the caller's own conditions as any
/// hit does: a `304` when they match the stored response (a full `200` before).
#[tokio::test]
async fn a_stale_answer_while_refreshing_honours_the_callers_conditions() {
    let h = Harness::with(crate::support::Backend::Memory, |b| {
        b.expire_after(MINUTE).stale_while_revalidate(true)
    })
    .await;
    let first = h.get("/etag/swr").send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    h.clock.advance(Duration::from_secs(61));
    let conditional = h
        .get("/etag/swr")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    let info = conditional.cache_info().unwrap().clone();
    assert!(info.stale_while_revalidate, "{info:?}");
    assert_eq!(conditional.status(), 304);
    wait_for_refreshes(&h.handle).await;
}

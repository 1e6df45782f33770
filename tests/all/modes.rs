use std::time::Duration;

use reqwest_caching::{CacheMode, CacheRequestExt, CacheResponseExt, Expiration};

use crate::support::{BACKENDS, Harness, send};

#[tokio::test]
async fn refresh_revalidates_a_fresh_entry() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/etag/r").await;
        let (body, info) = send(h.get("/etag/r").cache_mode(CacheMode::Refresh)).await;
        assert_eq!(
            h.origin.hits("/etag/r"),
            2,
            "{backend:?}: refresh asks the origin"
        );
        assert_eq!(h.origin.last("/etag/r").headers["if-none-match"], "\"v1\"");
        assert!(info.revalidated && info.from_cache, "{backend:?}");
        assert_eq!(body, "/etag/r #1");

        // Without validators, Refresh refetches and replaces the entry.
        h.fetch("/plain").await;
        let (body, info) = send(h.get("/plain").cache_mode(CacheMode::Refresh)).await;
        assert!(!info.from_cache && info.stored);
        assert_eq!(body, "/plain #2");
        assert_eq!(
            h.fetch("/plain").await.0,
            "/plain #2",
            "{backend:?}: entry replaced"
        );
    }
}

#[tokio::test]
async fn force_refresh_ignores_the_entry_and_replaces_it() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/etag/f").await;
        let (body, info) = send(h.get("/etag/f").with_extension(CacheMode::ForceRefresh)).await;
        let seen = h.origin.last("/etag/f");
        assert!(
            seen.headers.get("if-none-match").is_none(),
            "{backend:?}: unconditional"
        );
        assert!(!info.from_cache && info.stored);
        assert_eq!(body, "/etag/f #2");
        assert_eq!(h.fetch("/etag/f").await.0, "/etag/f #2");
        assert_eq!(h.origin.hits("/etag/f"), 2);
    }
}

#[tokio::test]
async fn only_if_cached_answers_504_without_the_network() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(std::time::Duration::from_secs(60))
        })
        .await;
        let response = h
            .get("/o")
            .cache_mode(CacheMode::OnlyIfCached)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 504, "{backend:?}");
        assert!(
            response.cache_info().unwrap().generated_by_cache,
            "{backend:?}: the cache's own 504"
        );
        assert_eq!(
            h.origin.total(),
            0,
            "{backend:?}: nothing reached the origin"
        );

        h.fetch("/o").await;
        let (body, info) = send(h.get("/o").cache_mode(CacheMode::OnlyIfCached)).await;
        assert!(info.from_cache);
        assert_eq!(body, "/o #1");

        h.clock.advance(std::time::Duration::from_secs(61));
        let stale = h
            .get("/o")
            .cache_mode(CacheMode::OnlyIfCached)
            .send()
            .await
            .unwrap();
        assert_eq!(
            stale.status(),
            504,
            "{backend:?}: a stale entry is not served"
        );
        assert_eq!(h.origin.hits("/o"), 1);
        assert!(stale.cache_info().unwrap().generated_by_cache);

        // The origin's own 504 is not the cache's.
        let (_, info) = send(h.get("/status/504")).await;
        assert!(!info.generated_by_cache, "{backend:?}: {info:?}");
        assert_eq!(h.origin.hits("/status/504"), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn bypass_neither_reads_nor_writes() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (_, info) = send(h.get("/b").cache_mode(CacheMode::Bypass)).await;
        assert!(!info.from_cache && !info.stored && info.key.is_none());
        assert_eq!(
            h.handle.count().await.unwrap(),
            0,
            "{backend:?}: not written"
        );
        h.fetch("/b").await;
        let (body, info) = send(h.get("/b").cache_mode(CacheMode::Bypass)).await;
        assert!(!info.from_cache, "{backend:?}: not read");
        assert_eq!(body, "/b #3");
        assert_eq!(
            h.fetch("/b").await.0,
            "/b #2",
            "{backend:?}: the entry is untouched"
        );
        assert_eq!(h.origin.hits("/b"), 3);
    }
}

#[tokio::test]
async fn per_request_do_not_cache() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        send(h.get("/d").expire_after(Expiration::DoNotCache)).await;
        assert!(!h.fetch("/d").await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/d"), 2);
    }
}

/// `only-if-cached` with a `Range` never reaches the network either (RFC 9111 §5.2.1.7): a
/// miss is the cache's 504, and a range the cache cannot cut (several ranges) is answered
/// with the whole stored response.
#[tokio::test]
async fn only_if_cached_with_a_range_stays_off_the_network() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(std::time::Duration::from_secs(60))
        })
        .await;
        let miss = h
            .get("/r")
            .header("range", "bytes=0-1")
            .cache_mode(CacheMode::OnlyIfCached)
            .send()
            .await
            .unwrap();
        assert_eq!(miss.status(), 504, "{backend:?}");
        assert_eq!(h.origin.total(), 0, "{backend:?}");
        h.fetch("/r").await;
        let (body, info) = send(
            h.get("/r")
                .header("range", "bytes=0-1,3-4")
                .cache_mode(CacheMode::OnlyIfCached),
        )
        .await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body, "/r #1", "{backend:?}");
        assert_eq!(h.origin.hits("/r"), 1, "{backend:?}");
    }
}

/// `always_revalidate` (session) and `CacheMode::Revalidate` (one request): a fresh entry
/// with a validator is revalidated before use (a `304` serves the stored body); a fresh one
/// without validators is served with no request (unlike `Refresh`, which refetches it).
#[tokio::test]
async fn always_revalidate_revalidates_what_has_validators() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.always_revalidate(true)).await;
        h.fetch("/etag/a").await;
        h.fetch("/modified/a").await;
        h.fetch("/plain").await;
        for _ in 0..2 {
            let (body, info) = h.fetch("/etag/a").await;
            assert!(info.from_cache && info.revalidated, "{backend:?}: {info:?}");
            assert_eq!(body, "/etag/a #1", "{backend:?}: the stored body");
            let (_, info) = h.fetch("/modified/a").await;
            assert!(info.from_cache && info.revalidated, "{backend:?}");
            let (_, info) = h.fetch("/plain").await;
            assert!(info.from_cache && !info.revalidated, "{backend:?}");
        }
        assert_eq!(h.origin.hits("/etag/a"), 3, "{backend:?}");
        assert_eq!(h.origin.last("/etag/a").headers["if-none-match"], "\"v1\"");
        assert_eq!(h.origin.hits("/modified/a"), 3, "{backend:?}");
        assert_eq!(
            h.origin.hits("/plain"),
            1,
            "{backend:?}: no validator, no request"
        );

        // Per request, in a cache that does not revalidate by default.
        let h = Harness::new(backend).await;
        h.fetch("/etag/b").await;
        h.fetch("/plain").await;
        assert!(h.fetch("/etag/b").await.1.from_cache);
        let (_, info) = send(h.get("/etag/b").cache_mode(CacheMode::Revalidate)).await;
        assert!(info.revalidated, "{backend:?}");
        let (_, info) = send(h.get("/plain").cache_mode(CacheMode::Revalidate)).await;
        assert!(info.from_cache && !info.revalidated, "{backend:?}");
        let (_, info) = send(h.get("/plain").cache_mode(CacheMode::Refresh)).await;
        assert!(!info.from_cache, "{backend:?}: Refresh refetches it");
        assert_eq!(h.origin.hits("/etag/b"), 2, "{backend:?}");
        assert_eq!(h.origin.hits("/plain"), 2, "{backend:?}");
    }
}

/// A request's `Cache-Control: only-if-cached` holds in a cache that revalidates by default
/// (`always_revalidate`): a stored response is served with no request, a missing one is the
/// cache's `504` (RFC 9111 §5.2.1.7). Both went to the origin: the revalidation first.
#[tokio::test]
async fn only_if_cached_holds_when_the_cache_revalidates_by_default() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.always_revalidate(true)).await;
        h.fetch("/etag/o").await;
        let only = |path: &str| h.get(path).header("cache-control", "only-if-cached");
        let (body, info) = send(only("/etag/o")).await;
        assert!(
            info.from_cache && !info.revalidated,
            "{backend:?}: {info:?}"
        );
        assert_eq!(body, "/etag/o #1", "{backend:?}");
        let response = only("/etag/missing").send().await.unwrap();
        assert_eq!(response.status(), 504, "{backend:?}");
        assert_eq!(h.origin.hits("/etag/o"), 1, "{backend:?}: revalidated");
        assert_eq!(h.origin.hits("/etag/missing"), 0, "{backend:?}: fetched");
    }
}

/// `read_only`: the cache serves what the store holds and never changes it: no new
/// responses, no invalidation after an unsafe method, no renewal after a `304`.
#[tokio::test]
async fn read_only_serves_and_never_writes() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/a").await;
        send(h.get("/etag/x").expire_after(Duration::from_secs(10))).await;
        assert_eq!(h.handle.count().await.unwrap(), 2);
        h.handle.set_read_only(true);
        assert!(h.handle.is_read_only());

        assert!(h.fetch("/a").await.1.from_cache, "{backend:?}: served");
        let (_, info) = h.fetch("/b").await;
        assert!(!info.from_cache && !info.stored, "{backend:?}: {info:?}");
        assert!(!h.fetch("/b").await.1.from_cache, "{backend:?}: not stored");
        let posted = h.client.post(h.origin.url("/a")).send().await.unwrap();
        assert!(posted.status().is_success());
        assert!(
            h.fetch("/a").await.1.from_cache,
            "{backend:?}: not invalidated"
        );
        h.clock.advance(Duration::from_secs(60));
        for _ in 0..2 {
            let (body, info) = h.fetch("/etag/x").await;
            assert!(info.revalidated, "{backend:?}: {info:?}");
            assert_eq!(body, "/etag/x #1");
        }
        assert_eq!(h.origin.hits("/etag/x"), 3, "{backend:?}: never renewed");
        assert_eq!(h.origin.hits("/b"), 2, "{backend:?}");
        assert_eq!(
            h.origin.hits("/a"),
            2,
            "{backend:?}: the GET, then the POST"
        );
        assert_eq!(h.handle.count().await.unwrap(), 2, "{backend:?}");

        h.handle.set_read_only(false);
        assert!(h.fetch("/b").await.1.stored, "{backend:?}");
        assert!(h.fetch("/b").await.1.from_cache, "{backend:?}");

        // Read-only from the start: nothing is ever stored.
        let h = Harness::with(backend, |b| b.read_only(true)).await;
        h.fetch("/c").await;
        assert!(!h.fetch("/c").await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/c"), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
    }
}

/// `only-if-cached` (the mode or the directive) never sends a request, also one the cache
/// does not look up: a `POST` (which also invalidated what the URL had stored), a streamed
/// body, a URL set not to be cached. Each went to the origin; each gets the `504`.
#[tokio::test]
async fn only_if_cached_never_sends_a_request_it_cannot_look_up() {
    let h = Harness::with(crate::support::Backend::Memory, |b| {
        b.urls_expire_after([("*/nocache/*", Expiration::DoNotCache)])
    })
    .await;
    let by_mode = |request: reqwest_caching::reqwest_middleware::RequestBuilder| {
        request.cache_mode(CacheMode::OnlyIfCached)
    };
    let by_directive = |request: reqwest_caching::reqwest_middleware::RequestBuilder| {
        request.header("cache-control", "only-if-cached")
    };
    for (how, ask) in [
        ("mode", &by_mode as &dyn Fn(_) -> _),
        ("directive", &by_directive),
    ] {
        let requests = [
            ("post", ask(h.client.post(h.origin.url("/p")).body("x"))),
            (
                "stream",
                ask(h
                    .get("/s")
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter([
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")),
                    ])))),
            ),
            ("no-cache URL", ask(h.get("/nocache/n"))),
        ];
        for (what, request) in requests {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 504, "{how}: {what}");
        }
    }
    assert_eq!(h.origin.total(), 0, "nothing reached the origin");
}

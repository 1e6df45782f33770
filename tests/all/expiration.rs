use std::time::Duration;

use reqwest_caching::{
    CacheRequestExt, CacheResponseExt, CacheScope, Clock, Expiration, UrlPattern,
};

use crate::support::{BACKENDS, Harness, send};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn never_is_the_default_and_never_expires() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (_, first) = h.fetch("/a").await;
        assert_eq!(first.expires, None);
        h.clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
        let (body, info) = h.fetch("/a").await;
        assert!(info.from_cache && !info.is_expired, "{backend:?}");
        assert_eq!(body, "/a #1");
        assert_eq!(h.origin.hits("/a"), 1);
    }
}

#[tokio::test]
async fn after_a_duration() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE)).await;
        let (_, stored) = h.fetch("/a").await;
        let created = stored.created_at.unwrap();
        assert_eq!(stored.expires, Some(created + MINUTE));
        h.clock.advance(Duration::from_secs(59));
        assert!(
            h.fetch("/a").await.1.from_cache,
            "{backend:?}: fresh at 59 s"
        );
        h.clock.advance(Duration::from_secs(1));
        let (body, info) = h.fetch("/a").await;
        assert!(!info.from_cache, "{backend:?}: stale at 60 s");
        assert_eq!(body, "/a #2");
        assert!(
            h.fetch("/a").await.1.from_cache,
            "{backend:?}: the refetch was stored"
        );
        assert_eq!(h.origin.hits("/a"), 2);
    }
}

#[tokio::test]
async fn at_a_time() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let deadline = h.clock.now() + Duration::from_secs(30);
        h.fetch_with("/a", Expiration::At(deadline)).await;
        h.clock.advance(Duration::from_secs(29));
        assert!(h.fetch("/a").await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(!h.fetch("/a").await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/a"), 2);
    }
}

#[tokio::test]
async fn immediately_stores_but_always_revalidates() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let (first, info) = h.fetch("/etag/i").await;
        assert!(
            info.stored && info.expires.is_some(),
            "{backend:?}: stored, already stale"
        );
        let (second, info) = h.fetch("/etag/i").await;
        assert_eq!(
            h.origin.hits("/etag/i"),
            2,
            "{backend:?}: the origin was asked"
        );
        assert_eq!(h.origin.last("/etag/i").headers["if-none-match"], "\"v1\"");
        assert!(info.from_cache && info.revalidated, "{backend:?}: {info:?}");
        assert_eq!(second, first, "{backend:?}: stored body served after 304");

        // Without validators there is nothing to revalidate: a plain refetch.
        h.fetch("/plain").await;
        let (body, info) = h.fetch("/plain").await;
        assert!(!info.from_cache);
        assert_eq!(body, "/plain #2");
        assert!(
            h.origin
                .last("/plain")
                .headers
                .get("if-none-match")
                .is_none()
        );
    }
}

#[tokio::test]
async fn do_not_cache_stores_nothing() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::DoNotCache)).await;
        let (_, info) = h.fetch("/a").await;
        assert!(!info.stored);
        assert!(!h.fetch("/a").await.1.from_cache);
        assert_eq!(h.origin.hits("/a"), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
    }
}

#[tokio::test]
async fn revalidation_with_last_modified_refreshes_expiry_and_headers() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE)).await;
        h.fetch("/modified/m").await;
        h.clock.advance(Duration::from_secs(120));
        let (body, info) = h.fetch("/modified/m").await;
        assert!(info.revalidated && info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body, "/modified/m #1");
        assert_eq!(
            h.origin.last("/modified/m").headers["if-modified-since"],
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        // The 304 gave the entry a new minute.
        let (_, info) = h.fetch("/modified/m").await;
        assert!(info.from_cache && !info.revalidated, "{backend:?}");
        assert_eq!(h.origin.hits("/modified/m"), 2);
        assert_eq!(h.handle.stats().revalidations, 1);
    }
}

#[tokio::test]
async fn a_304_merges_new_headers_into_the_entry() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        h.fetch("/etag/h").await;
        let response = h.get("/etag/h").send().await.unwrap();
        assert_eq!(response.headers()["x-refreshed"], "yes", "{backend:?}");
        assert_eq!(response.status(), 200);
        let entry = h
            .handle
            .get_url(&h.origin.url("/etag/h"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.response.headers["x-refreshed"], "yes",
            "{backend:?}: stored too"
        );
    }
}

/// Each `304` may add fields, which the entry takes (RFC 9111 §3.2): one grown past what a
/// client takes in one head is still served, but no longer stored again, so an origin cannot
/// grow an entry (and every later write of it) with each revalidation.
#[tokio::test]
async fn an_entry_grown_by_304s_past_a_clients_head_is_not_stored_again() {
    use crate::origin::{GROWING_FIELDS, GROWING_VALUE_BYTES};
    let head_limit = 512 * 1024;
    // Rounds enough to pass the limit twice over.
    let rounds = 2 * head_limit / (GROWING_FIELDS * GROWING_VALUE_BYTES) + 1;
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let path = "/growing/g";
        h.fetch(path).await;
        let mut stored = Vec::new();
        for round in 0..rounds {
            let response = h.get(path).send().await.expect("request succeeds");
            let info = response.cache_info().cloned().expect("cache info");
            assert!(info.revalidated, "{backend:?} round {round}: {info:?}");
            assert_eq!(response.status(), 200, "{backend:?} round {round}");
            assert!(
                response
                    .headers()
                    .contains_key(format!("x-grown-{}-0", round + 2)),
                "{backend:?} round {round}: the 304's fields reach the caller"
            );
            assert!(!response.bytes().await.expect("body").is_empty());
            stored.push(info.stored);
        }
        let entry = h
            .handle
            .get_url(&h.origin.url(path))
            .await
            .unwrap()
            .expect("the entry stays");
        let head: usize = entry
            .response
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        assert!(
            head <= head_limit,
            "{backend:?}: stored head of {head} bytes"
        );
        assert!(stored[0], "{backend:?}: renewed while it fits");
        assert!(!stored[rounds - 1], "{backend:?}: {stored:?}");
        assert_eq!(h.origin.hits(path), rounds + 1, "{backend:?}");
    }
}

#[tokio::test]
async fn precedence_request_over_scope_over_pattern_over_session() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(Duration::from_secs(1000))
                .urls_expire_after([("127.0.0.1:*/short", Duration::from_secs(100))])
        })
        .await;
        let expiry_of = |info: reqwest_caching::CacheInfo| {
            info.expires
                .unwrap()
                .duration_since(info.created_at.unwrap())
                .unwrap()
        };
        let (_, session) = h.fetch("/long").await;
        assert_eq!(
            expiry_of(session),
            Duration::from_secs(1000),
            "{backend:?}: session"
        );
        let (_, pattern) = h.fetch("/short/1").await;
        assert_eq!(
            expiry_of(pattern),
            Duration::from_secs(100),
            "{backend:?}: pattern"
        );
        let scoped = CacheScope::new()
            .expire_after(Duration::from_secs(10))
            .run(h.fetch("/short/2"))
            .await
            .1;
        assert_eq!(
            expiry_of(scoped),
            Duration::from_secs(10),
            "{backend:?}: scope"
        );
        let per_request = CacheScope::new()
            .expire_after(Duration::from_secs(10))
            .run(send(h.get("/short/3").expire_after(Duration::from_secs(1))))
            .await
            .1;
        assert_eq!(
            expiry_of(per_request),
            Duration::from_secs(1),
            "{backend:?}: request"
        );
        // with_extension is the same as the extension trait.
        let (_, ext) = send(
            h.get("/short/4")
                .with_extension(Expiration::After(Duration::from_secs(2))),
        )
        .await;
        assert_eq!(expiry_of(ext), Duration::from_secs(2));
    }
}

#[tokio::test]
async fn url_patterns_can_refuse_or_keep_forever() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE).urls_expire_after([
                ("127.0.0.1:*/live", Expiration::DoNotCache),
                ("127.0.0.1:*/static/*", Expiration::Never),
            ])
        })
        .await;
        h.fetch("/live/feed").await;
        h.fetch("/live/feed").await;
        assert_eq!(h.origin.hits("/live/feed"), 2, "{backend:?}: never stored");
        h.fetch("/static/logo").await;
        h.clock.advance(Duration::from_secs(3600));
        assert!(h.fetch("/static/logo").await.1.from_cache, "{backend:?}");
        h.fetch("/other").await;
        h.clock.advance(Duration::from_secs(61));
        assert!(
            !h.fetch("/other").await.1.from_cache,
            "{backend:?}: session expiry"
        );
    }
}

/// Regular expressions beside globs: searched in the whole URL, so a scheme or a query
/// parameter they name decides; a glob naming a query matches it too.
#[tokio::test]
async fn url_patterns_can_be_regular_expressions() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(MINUTE).urls_expire_after([
                (
                    UrlPattern::regex(r"[?&]live=1(&|$)"),
                    Expiration::DoNotCache,
                ),
                (UrlPattern::regex(r"^https://"), Expiration::DoNotCache),
                (
                    UrlPattern::regex(r"^http://127\.0\.0\.1:\d+/v\d+/"),
                    Expiration::Never,
                ),
                ("127.0.0.1:*/list?page=1".into(), Expiration::Never),
            ])
        })
        .await;
        h.fetch("/feed?live=1").await;
        h.fetch("/feed?live=1").await;
        assert_eq!(h.origin.hits("/feed"), 2, "{backend:?}: never stored");
        h.fetch("/feed?live=10").await;
        h.fetch("/v2/users").await;
        h.fetch("/list?page=1").await;
        h.fetch("/list?page=2").await;
        h.clock.advance(Duration::from_secs(3600));
        assert!(h.fetch("/v2/users").await.1.from_cache, "{backend:?}");
        assert!(h.fetch("/list?page=1").await.1.from_cache, "{backend:?}");
        assert!(!h.fetch("/list?page=2").await.1.from_cache, "{backend:?}");
        assert!(!h.fetch("/feed?live=10").await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/v2/users"), 1, "{backend:?}");
        assert_eq!(h.origin.hits("/list"), 3, "{backend:?}");
        assert_eq!(h.origin.hits("/feed"), 4, "{backend:?}");
    }
}

impl Harness {
    async fn fetch_with(
        &self,
        path: &str,
        expiration: Expiration,
    ) -> (String, reqwest_caching::CacheInfo) {
        send(self.get(path).expire_after(expiration)).await
    }
}

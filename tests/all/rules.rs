use http::Method;

use crate::support::{BACKENDS, Harness, send};

#[tokio::test]
async fn only_allowable_codes_are_cached() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        for _ in 0..2 {
            let (_, info) = h.fetch("/status/404").await;
            assert!(!info.from_cache && !info.stored);
        }
        assert_eq!(
            h.origin.hits("/status/404"),
            2,
            "{backend:?}: 404 not cached by default"
        );

        let h = Harness::with(backend, |b| b.allowable_codes([200, 404])).await;
        h.fetch("/status/404").await;
        let response = h.get("/status/404").send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(
            h.origin.hits("/status/404"),
            1,
            "{backend:?}: 404 cached when allowed"
        );
    }
}

#[tokio::test]
async fn invalid_codes_fail_the_build() {
    let err = reqwest_caching::CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .allowable_codes([200, 42])
        .build()
        .unwrap_err();
    assert!(
        matches!(err, reqwest_caching::Error::InvalidStatusCode(42)),
        "{err:?}"
    );
    for code in [200, 304, 42, 600] {
        let err = reqwest_caching::CacheMiddleware::builder()
            .store(reqwest_caching::MemoryStore::new())
            .stale_if_error_statuses([503, code])
            .build()
            .unwrap_err();
        assert!(
            matches!(err, reqwest_caching::Error::NotAnErrorStatus(c) if c == code),
            "{err:?}"
        );
        assert!(err.to_string().contains(&code.to_string()), "{err}");
    }
    let err = reqwest_caching::CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .urls_expire_after([("site.com/[", reqwest_caching::Expiration::Never)])
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, reqwest_caching::Error::InvalidPattern { pattern, .. } if pattern == "site.com/["),
        "{err:?}"
    );
    assert!(err.to_string().contains("site.com/["), "{err}");
}

#[tokio::test]
async fn only_allowable_methods_are_cached() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        for _ in 0..2 {
            let (_, info) = send(h.client.post(h.origin.url("/m")).body("x")).await;
            assert!(!info.from_cache && info.key.is_none());
        }
        assert_eq!(
            h.origin.hits("/m"),
            2,
            "{backend:?}: POST not cached by default"
        );
        // DELETE passes through too, and a GET entry is not served for it.
        h.fetch("/m").await;
        send(h.client.request(Method::DELETE, h.origin.url("/m"))).await;
        assert_eq!(h.origin.hits("/m"), 4);
    }
}

#[tokio::test]
async fn filter_has_the_last_word() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.filter(|response| !response.url().path().starts_with("/private"))
        })
        .await;
        h.fetch("/private/x").await;
        h.fetch("/private/x").await;
        h.fetch("/public/x").await;
        h.fetch("/public/x").await;
        assert_eq!(h.origin.hits("/private/x"), 2, "{backend:?}");
        assert_eq!(h.origin.hits("/public/x"), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_pass_through_whole_and_uncached() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.max_body_size(4096)).await;
        for path in ["/big/10000", "/chunked/10000"] {
            for _ in 0..2 {
                let (body, info) = h.fetch(path).await;
                assert_eq!(
                    body.len(),
                    10_000,
                    "{backend:?} {path}: the whole body arrives"
                );
                assert!(!info.stored && !info.from_cache);
            }
            assert_eq!(h.origin.hits(path), 2, "{backend:?} {path}: not cached");
        }
        // At the limit is fine.
        h.fetch("/chunked/4096").await;
        assert!(h.fetch("/chunked/4096").await.1.from_cache, "{backend:?}");
        assert_eq!(h.handle.count().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_body_failing_midway_fails_as_it_would_uncached() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let response = h.get("/broken").send().await.expect("headers arrive");
        assert!(
            response.bytes().await.is_err(),
            "{backend:?}: the body error reaches the caller"
        );
        assert_eq!(
            h.handle.count().await.unwrap(),
            0,
            "{backend:?}: nothing half-stored"
        );
        // Same as without a cache:
        let plain = reqwest::Client::new()
            .get(h.origin.url("/broken"))
            .send()
            .await
            .unwrap();
        assert!(plain.bytes().await.is_err());
    }
}

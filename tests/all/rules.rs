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
        // A store that keeps files caches them as they stream (tests/all/big_bodies.rs):
        // the second is a hit there.
        let files = backend.keeps_files();
        for path in ["/big/10000", "/chunked/10000"] {
            for n in 0..2 {
                let (body, info) = h.fetch(path).await;
                assert_eq!(
                    body.len(),
                    10_000,
                    "{backend:?} {path}: the whole body arrives"
                );
                assert!(!info.stored, "stored only once read to its end");
                assert_eq!(info.from_cache, files && n == 1, "{backend:?} {path}");
            }
            let hits = if files { 1 } else { 2 };
            assert_eq!(h.origin.hits(path), hits, "{backend:?} {path}: not cached");
        }
        // At the limit is fine.
        h.fetch("/chunked/4096").await;
        assert!(h.fetch("/chunked/4096").await.1.from_cache, "{backend:?}");
        let stored = if files { 3 } else { 1 };
        assert_eq!(h.handle.count().await.unwrap(), stored);
    }
}

/// A HEAD response announcing a body larger than `max_body_size` is still cached: it has no
/// body, so the limit does not apply to it. The GET of the same URL is over the limit.
#[tokio::test]
async fn a_head_announcing_more_than_the_limit_is_cached() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.max_body_size(4096)).await;
        let url = h.origin.url("/big/10000");
        for repeat in [false, true] {
            let response = h.client.head(&url).send().await.unwrap();
            assert_eq!(response.headers()["content-length"], "10000", "{backend:?}");
            let info = reqwest_caching::CacheResponseExt::cache_info(&response)
                .cloned()
                .unwrap();
            assert_eq!(info.from_cache, repeat, "{backend:?}: {info:?}");
            assert_eq!(info.stored, !repeat, "{backend:?}: {info:?}");
            assert!(response.bytes().await.unwrap().is_empty());
        }
        assert_eq!(
            h.origin.hits("/big/10000"),
            1,
            "{backend:?}: one HEAD went out"
        );
        let (body, info) = h.fetch("/big/10000").await;
        assert!(!info.from_cache && !info.stored, "{backend:?}: {info:?}");
        assert_eq!(body.len(), 10_000);
        assert_eq!(h.origin.hits("/big/10000"), 2, "{backend:?}");
        // A store that keeps files stores the GET too, as it streams.
        let stored = if backend.keeps_files() { 2 } else { 1 };
        assert_eq!(
            h.handle.count().await.unwrap(),
            stored,
            "{backend:?}: the HEAD only"
        );
    }
}

/// A request whose body is a stream goes to the origin whole and is not stored (it cannot be
/// keyed without consuming it); the same body sent as bytes is cached, so the stream is why.
#[tokio::test]
async fn streaming_request_bodies_pass_through_whole_and_uncached() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
        })
        .await;
        let url = h.origin.url("/upload");
        let chunks: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 30_000]).collect();
        let whole = chunks.concat();
        for n in 1..=2 {
            let stream =
                futures_util::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>));
            let (body, info) =
                send(h.client.post(&url).body(reqwest::Body::wrap_stream(stream))).await;
            assert!(!info.from_cache && !info.stored, "{backend:?}: {info:?}");
            assert_eq!(body, format!("/upload #{n}"), "{backend:?}");
            assert_eq!(
                h.origin.last("/upload").body,
                whole,
                "{backend:?}: the origin received the whole body"
            );
        }
        assert_eq!(
            h.handle.count().await.unwrap(),
            0,
            "{backend:?}: nothing stored"
        );
        let (_, info) = send(h.client.post(&url).body(whole.clone())).await;
        assert!(info.stored, "{backend:?}: {info:?}");
        let (_, info) = send(h.client.post(&url).body(whole.clone())).await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(h.origin.hits("/upload"), 3, "{backend:?}");
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

/// `stored_filter` sees the body before storing, and judges what is stored on every read:
/// a rule added later stops serving what the old rule let in, and the response fetched
/// anew replaces it.
#[tokio::test]
async fn stored_filter_judges_bodies_when_storing_and_reading() {
    use reqwest_caching::CacheResponseExt;
    use std::sync::Arc;
    for &backend in BACKENDS {
        // Before storing: a body the rule rejects is not kept.
        let h = Harness::with(backend, |b| {
            b.stored_filter(|response| !response.body.ends_with(b"#1"))
        })
        .await;
        let (_, info) = h.fetch("/f").await;
        assert!(!info.stored, "{backend:?}: rejected by its body");
        assert!(h.fetch("/f").await.1.stored, "{backend:?}");
        let (body, info) = h.fetch("/f").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(body, "/f #2");
        assert_eq!(h.origin.hits("/f"), 2);

        // On reading: a cache over the same store with a new rule.
        let mut shared = None;
        let h = Harness::wrapping(
            backend,
            |store| {
                shared = Some(Arc::clone(&store));
                store
            },
            |b| b,
        )
        .await;
        h.fetch("/r").await;
        let strict = crate::support::patient_builder()
            .shared_store(shared.expect("the store"))
            .clock(Arc::clone(&h.clock) as _)
            .stored_filter(|response| !response.body.ends_with(b"#1"))
            .build()
            .unwrap()
            .into_client(reqwest::Client::new());
        let strict_get = || async {
            let response = strict.get(h.origin.url("/r")).send().await.unwrap();
            let from_cache = response.from_cache();
            (response.text().await.unwrap(), from_cache)
        };
        assert_eq!(
            strict_get().await,
            ("/r #2".to_owned(), false),
            "{backend:?}"
        );
        assert_eq!(
            strict_get().await,
            ("/r #2".to_owned(), true),
            "{backend:?}"
        );
        let (body, info) = h.fetch("/r").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(body, "/r #2", "{backend:?}: replaced");
        assert_eq!(h.origin.hits("/r"), 2, "{backend:?}");
    }
}

/// A time limit of zero fails the build, naming the setting: under it every store call that
/// waits timed out (or every background refresh failed), and the cache silently did nothing.
#[tokio::test]
async fn a_time_limit_of_zero_fails_the_build() {
    let builder =
        || reqwest_caching::CacheMiddleware::builder().store(reqwest_caching::MemoryStore::new());
    for (setting, built) in [
        (
            "store_timeout",
            builder().store_timeout(std::time::Duration::ZERO).build(),
        ),
        (
            "refresh_timeout",
            builder().refresh_timeout(std::time::Duration::ZERO).build(),
        ),
    ] {
        let err = built.expect_err(setting);
        assert!(
            matches!(err, reqwest_caching::Error::ZeroTimeLimit { setting: s } if s == setting),
            "{err:?}"
        );
        assert!(err.to_string().contains(setting), "{err}");
    }
    assert!(
        builder()
            .store_timeout(std::time::Duration::MAX)
            .build()
            .is_ok()
    );
}

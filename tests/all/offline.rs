//! `CacheMode::Offline`: whatever is stored answers, fresh or not; nothing reaches the
//! origin; nothing stored is the cache's own 504, marked `offline_miss`.

use std::time::Duration;

use reqwest_caching::{CacheInfo, CacheMode, CacheRequestExt, CacheResponseExt, CacheScope};

use crate::support::{BACKENDS, Harness, custom, send};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn offline_serves_stale_entries_without_the_network() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE).cache_control(true)).await;
        // One without validators, one with (which a normal request would revalidate), one
        // the response itself said must be revalidated every time.
        let no_cache = custom("no-cache", &["Cache-Control: no-cache"]);
        for path in ["/plain", "/etag/e", no_cache.as_str()] {
            h.fetch(path).await;
        }
        h.clock.advance(MINUTE * 10);
        let before = h.origin.total();
        assert_eq!(before, 3, "{backend:?}: each stored once");

        let (body, info) = send(h.get("/plain").cache_mode(CacheMode::Offline)).await;
        assert_eq!(body, "/plain #1", "{backend:?}");
        assert!(info.from_cache && info.is_expired, "{backend:?}: {info:?}");
        assert!(!info.offline_miss && !info.revalidated, "{backend:?}");
        let (body, info) = send(h.get("/etag/e").cache_mode(CacheMode::Offline)).await;
        assert_eq!(body, "/etag/e #1", "{backend:?}: not revalidated");
        assert!(info.from_cache, "{backend:?}");
        let (_, info) = send(h.get(&no_cache).cache_mode(CacheMode::Offline)).await;
        assert!(info.from_cache, "{backend:?}: no-cache served offline");
        // The caller's own directives cannot send it either.
        let (body, _) = send(
            h.get("/plain")
                .header("cache-control", "no-cache, max-age=0")
                .cache_mode(CacheMode::Offline),
        )
        .await;
        assert_eq!(body, "/plain #1", "{backend:?}");

        assert_eq!(
            h.origin.total(),
            before,
            "{backend:?}: nothing reached the origin"
        );
        // OnlyIfCached keeps RFC 9111's meaning: a stale entry is not usable.
        let stale = h
            .get("/plain")
            .cache_mode(CacheMode::OnlyIfCached)
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 504, "{backend:?}");
        assert!(!stale.cache_info().unwrap().offline_miss, "{backend:?}");
        assert_eq!(h.origin.total(), before, "{backend:?}");
        // The normal mode still refetches.
        assert_eq!(h.fetch("/plain").await.0, "/plain #2", "{backend:?}");
    }
}

/// Asserts `response` is the cache's own offline 504.
fn assert_offline_miss(response: &reqwest::Response, what: &str) -> CacheInfo {
    assert_eq!(response.status(), 504, "{what}");
    let info = response.cache_info().expect("CacheInfo").clone();
    assert!(
        info.offline_miss && info.generated_by_cache && !info.from_cache && !info.stored,
        "{what}: {info:?}"
    );
    info
}

#[tokio::test]
async fn offline_answers_504_when_nothing_is_stored() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let response = h.get("/none").cache_mode(CacheMode::Offline).send().await;
        let info = assert_offline_miss(&response.unwrap(), &format!("{backend:?}: GET"));
        assert!(info.key.is_some(), "{backend:?}: looked up");
        // What the cache never stores is not sent either: a POST, a streaming body, a
        // Range on another method, an explicit DoNotCache.
        let post = h.client.post(h.origin.url("/none")).body("x");
        let response = post.cache_mode(CacheMode::Offline).send().await.unwrap();
        let info = assert_offline_miss(&response, &format!("{backend:?}: POST"));
        assert_eq!(info.key, None, "{backend:?}: not looked up");
        let stream = futures_util::stream::once(async { Ok::<_, std::io::Error>("body") });
        let streaming = h
            .client
            .get(h.origin.url("/none"))
            .body(reqwest::Body::wrap_stream(stream))
            .cache_mode(CacheMode::Offline);
        assert_offline_miss(&streaming.send().await.unwrap(), "streaming body");
        let never = h
            .get("/never")
            .expire_after(reqwest_caching::Expiration::DoNotCache)
            .cache_mode(CacheMode::Offline);
        assert_offline_miss(&never.send().await.unwrap(), "DoNotCache");
        assert_eq!(
            h.origin.total(),
            0,
            "{backend:?}: nothing reached the origin"
        );
        assert_eq!(
            h.handle.stats().misses,
            4,
            "{backend:?}: each counted a miss"
        );

        // A variant not stored is not answered by another one.
        let vary = custom("v", &["Vary: accept-language"]);
        send(h.get(&vary).header("accept-language", "en")).await;
        let other = h
            .get(&vary)
            .header("accept-language", "fr")
            .cache_mode(CacheMode::Offline);
        assert_offline_miss(&other.send().await.unwrap(), "another variant");
        assert_eq!(h.origin.total(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn offline_head_range_and_conditional_come_from_a_stored_get() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE)).await;
        h.fetch("/etag/g").await;
        h.clock.advance(MINUTE * 2);

        let head = h.client.head(h.origin.url("/etag/g"));
        let response = head.cache_mode(CacheMode::Offline).send().await.unwrap();
        assert_eq!(response.status(), 200, "{backend:?}: HEAD");
        assert!(
            response.from_cache(),
            "{backend:?}: HEAD from the stored GET"
        );
        assert_eq!(response.headers()["etag"], "\"v1\"", "{backend:?}");
        assert!(response.bytes().await.unwrap().is_empty(), "{backend:?}");

        let ranged = h.get("/etag/g").header("range", "bytes=0-4");
        let response = ranged.cache_mode(CacheMode::Offline).send().await.unwrap();
        assert_eq!(response.status(), 206, "{backend:?}: a range cut from it");
        assert_eq!(response.text().await.unwrap(), "/etag", "{backend:?}");
        // Several ranges the cache does not cut: the whole response, not the network.
        let ranges = h.get("/etag/g").header("range", "bytes=0-1,3-4");
        let response = ranges.cache_mode(CacheMode::Offline).send().await.unwrap();
        assert_eq!(response.status(), 200, "{backend:?}");

        let conditional = h.get("/etag/g").header("if-none-match", "\"v1\"");
        let response = conditional.cache_mode(CacheMode::Offline).send().await;
        assert_eq!(
            response.unwrap().status(),
            304,
            "{backend:?}: the cache's own 304"
        );

        assert_eq!(h.origin.total(), 1, "{backend:?}: only the first GET");
    }
}

#[tokio::test]
async fn offline_serves_the_variant_the_request_selects() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(MINUTE)).await;
        let vary = custom("lang", &["Vary: accept-language"]);
        for lang in ["en", "fr"] {
            send(h.get(&vary).header("accept-language", lang)).await;
        }
        h.clock.advance(MINUTE);
        for (lang, n) in [("en", 1), ("fr", 2), ("en", 1)] {
            let (body, info) = send(
                h.get(&vary)
                    .header("accept-language", lang)
                    .cache_mode(CacheMode::Offline),
            )
            .await;
            assert!(
                body.ends_with(&format!("#{n}")),
                "{backend:?}: {lang}: {body}"
            );
            assert!(info.from_cache && info.is_expired, "{backend:?}: {lang}");
        }
        assert_eq!(h.origin.total(), 2, "{backend:?}");
    }
}

/// Offline for a whole session (the builder) or a block of code (a scope); a request's own
/// mode beats both.
#[tokio::test]
async fn offline_session_wide_or_in_a_scope() {
    let h = Harness::with(crate::support::Backend::Memory, |b| {
        b.mode(CacheMode::Offline)
    })
    .await;
    let response = h.get("/s").send().await.unwrap();
    assert_offline_miss(&response, "session offline");
    assert_eq!(h.origin.total(), 0);
    let (body, info) = send(h.get("/s").cache_mode(CacheMode::Default)).await;
    assert_eq!(body, "/s #1");
    assert!(info.stored, "the request's own mode beats the session's");
    let (body, info) = send(h.get("/s")).await;
    assert_eq!(body, "/s #1");
    assert!(info.from_cache);
    assert_eq!(h.origin.total(), 1);

    let h = Harness::new(crate::support::Backend::Memory).await;
    h.fetch("/scoped").await;
    let offline = CacheScope::new().mode(CacheMode::Offline);
    let (stored, missing) = offline
        .run(async {
            let stored = h.get("/scoped").send().await.unwrap();
            let missing = h.get("/missing").send().await.unwrap();
            (stored, missing)
        })
        .await;
    assert!(stored.from_cache());
    assert_offline_miss(&missing, "scope offline");
    assert_eq!(h.origin.total(), 1);
    // A disabled scope turns the cache off, offline or not: it goes to the network.
    let disabled = reqwest_caching::disabled(h.get("/off").cache_mode(CacheMode::Offline).send());
    assert_eq!(disabled.await.unwrap().status(), 200);
    assert_eq!(h.origin.total(), 2);
}

/// Range means something for GET only (RFC 9110 §14.2): offline, a HEAD carrying one is
/// answered from a stored GET like any HEAD.
#[tokio::test]
async fn offline_answers_a_head_with_a_range_from_a_stored_get() {
    let h = Harness::new(crate::support::Backend::Memory).await;
    h.fetch("/plain").await;
    let head = h
        .client
        .head(h.origin.url("/plain"))
        .header("Range", "bytes=0-3")
        .cache_mode(CacheMode::Offline)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.from_cache(), "{:?}", head.cache_info());
    assert_eq!(h.origin.total(), 1, "nothing sent offline");
}

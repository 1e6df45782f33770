//! Vary, HEAD from GET, Range, unsafe-method invalidation, redirect aliases and full
//! replacement on revalidation: behaviour that holds with or without `cache_control`.

use std::time::Duration;

use http::Method;
use reqwest_caching::{CacheMode, CacheRequestExt, Expiration};

use crate::support::{BACKENDS, Harness, custom, send};

#[tokio::test]
async fn vary_keeps_one_variant_per_header_value() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("v", &["vary: Accept-Language"]);
        let lang = |value: &'static str| send(h.get(&path).header("accept-language", value));
        let (en, _) = lang("en").await;
        let (fr, _) = lang("fr").await;
        assert_ne!(en, fr);
        let (en2, info) = lang("en").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(en2, en);
        let (fr2, info) = lang("fr").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(fr2, fr);
        // Values are normalized: case and whitespace of a case-insensitive header.
        let (en3, info) = lang(" EN ").await;
        assert!(info.from_cache, "{backend:?}: normalized value matches");
        assert_eq!(en3, en);
        // Absent is its own variant.
        let (_, info) = h.fetch(&path).await;
        assert!(!info.from_cache);
        assert_eq!(h.origin.hits("/custom/v"), 3, "{backend:?}");
    }
}

/// A header the cache does not know as a list counts as sent: a comma inside a user agent is
/// part of it, so `(a,b)` and `(a, b)` are two clients and two variants, and one line `a, b`
/// is not the two lines `a` and `b`. Surrounding whitespace alone is not part of a value.
#[tokio::test]
async fn a_comma_in_a_header_that_is_no_list_selects_its_own_variant() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("ua", &["vary: User-Agent, X-Tenant"]);
        let agent = |value: &'static str| send(h.get(&path).header("user-agent", value));
        let (tight, _) = agent("bot/1.0 (a,b)").await;
        let (spaced, info) = agent("bot/1.0 (a, b)").await;
        assert!(!info.from_cache, "{backend:?}: another user agent");
        assert_ne!(tight, spaced);
        let (again, info) = agent(" bot/1.0 (a,b) ").await;
        assert!(info.from_cache, "{backend:?}: the same agent, padded");
        assert_eq!(again, tight);
        assert_eq!(h.origin.hits("/custom/ua"), 2, "{backend:?}");
        let tenant = |lines: &[&'static str]| {
            let mut request = h.get(&path).header("user-agent", "bot/1.0 (a,b)");
            for line in lines {
                request = request.header("x-tenant", *line);
            }
            send(request)
        };
        let (_, info) = tenant(&["a, b"]).await;
        assert!(!info.from_cache, "{backend:?}");
        let (_, info) = tenant(&["a", "b"]).await;
        assert!(!info.from_cache, "{backend:?}: two lines are not one");
        let (_, info) = tenant(&["a", "b"]).await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/ua"), 4, "{backend:?}");
    }
}

/// Variants expire like any entry, each on its own lifetime: one stored later outlives one
/// stored earlier, and an expired variant is fetched and stored again.
#[tokio::test]
async fn vary_variants_expire_and_are_refetched() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Duration::from_secs(60))).await;
        let path = custom("ve", &["vary: Accept-Language"]);
        let lang = |value: &'static str| send(h.get(&path).header("accept-language", value));
        let (en, _) = lang("en").await;
        h.clock.advance(Duration::from_secs(30));
        let (fr, _) = lang("fr").await;
        h.clock.advance(Duration::from_secs(29));
        // t = 59 s: both fresh.
        for (value, stored) in [("en", &en), ("fr", &fr)] {
            let (body, info) = lang(value).await;
            assert!(info.from_cache, "{backend:?} {value}: {info:?}");
            assert_eq!(&body, stored, "{backend:?} {value}");
        }
        assert_eq!(h.origin.hits("/custom/ve"), 2, "{backend:?}");
        // t = 60 s: English expired and is refetched; French has 30 s left.
        h.clock.advance(Duration::from_secs(1));
        let (en2, info) = lang("en").await;
        assert!(!info.from_cache && info.stored, "{backend:?}: {info:?}");
        assert_ne!(en2, en);
        let (body, info) = lang("fr").await;
        assert!(info.from_cache, "{backend:?}: French still fresh: {info:?}");
        assert_eq!(body, fr);
        // t = 90 s: French expired too; the new English one is fresh.
        h.clock.advance(Duration::from_secs(30));
        let (fr2, info) = lang("fr").await;
        assert!(!info.from_cache && info.stored, "{backend:?}: {info:?}");
        assert_ne!(fr2, fr);
        let (body, info) = lang("en").await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body, en2);
        assert_eq!(h.origin.hits("/custom/ve"), 4, "{backend:?}");
        // The refetched French variant is served from the cache again.
        let (body, info) = lang("fr").await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body, fr2);
        assert_eq!(h.origin.hits("/custom/ve"), 4, "{backend:?}");
    }
}

#[tokio::test]
async fn vary_star_is_never_stored() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("star", &["vary: *"]);
        h.fetch(&path).await;
        assert!(!h.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(h.handle.count().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn head_is_answered_from_a_stored_get() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (body, _) = h.fetch("/big/300").await;
        let head = h
            .client
            .head(h.origin.url("/big/300"))
            .send()
            .await
            .unwrap();
        assert!(
            reqwest_caching::CacheResponseExt::from_cache(&head),
            "{backend:?}"
        );
        assert_eq!(head.headers()["content-length"], "300");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");
        assert_eq!(body.len(), 300);
        assert_eq!(
            h.origin.hits("/big/300"),
            1,
            "{backend:?}: the HEAD never reached the origin"
        );
    }
}

#[tokio::test]
async fn range_requests_and_206_are_not_cached() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.allowable_codes([200, 206])).await;
        for _ in 0..2 {
            let (_, info) = send(h.get("/ranged").header("range", "bytes=0-9")).await;
            assert!(!info.from_cache && !info.stored, "{backend:?}");
            // Looked up, and a miss: not a request the cache passed by.
            assert!(info.key.is_some(), "{backend:?}: {info:?}");
        }
        assert_eq!(h.origin.hits("/ranged"), 2);
        assert_eq!(h.handle.stats().misses, 2, "{backend:?}");
        assert!(
            !h.fetch("/ranged").await.1.from_cache,
            "{backend:?}: Range responses were not stored"
        );
        h.fetch("/status/206").await;
        assert!(
            !h.fetch("/status/206").await.1.from_cache,
            "{backend:?}: 206 never stored"
        );
    }
}

#[tokio::test]
async fn unsafe_methods_invalidate_the_target_and_same_origin_locations() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/doc").await;
        h.fetch("/custom/listed").await;
        assert!(h.fetch("/doc").await.1.from_cache);
        send(h.client.post(h.origin.url("/doc")).body("change")).await;
        assert!(
            !h.fetch("/doc").await.1.from_cache,
            "{backend:?}: POST invalidated it"
        );

        // PUT answered with a same-origin Location invalidates that URL too.
        let location = format!("location: {}", h.origin.url("/custom/listed"));
        send(
            h.client
                .put(h.origin.url(&custom("put", &[&location])))
                .body("x"),
        )
        .await;
        assert!(
            !h.fetch("/custom/listed").await.1.from_cache,
            "{backend:?}: Location invalidated"
        );
        // A foreign Location is left alone.
        assert!(h.fetch("/doc").await.1.from_cache);
        send(h.client.delete(h.origin.url(&custom(
            "del",
            &["content-location: http://elsewhere.test/doc"],
        ))))
        .await;
        assert!(h.fetch("/doc").await.1.from_cache, "{backend:?}");
        send(
            h.client
                .request(Method::PATCH, h.origin.url("/doc"))
                .body("p"),
        )
        .await;
        assert!(
            !h.fetch("/doc").await.1.from_cache,
            "{backend:?}: PATCH invalidated it"
        );
        // Three GETs, the POST and the PATCH.
        assert_eq!(h.origin.hits("/doc"), 5);
    }
}

/// An unsafe request to a stored URL that the origin answers with an error leaves the entry
/// served (RFC 9111 §4.4: only a non-error status invalidates); the same request answered
/// with a success invalidates it, so the first one did reach the cache's invalidation path.
#[tokio::test]
async fn a_failed_unsafe_request_invalidates_nothing() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("failed", &[]);
        let (stored, _) = h.fetch(&path).await;
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}");
        h.origin.override_status(Some(500));
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let response = h
                .client
                .request(method.clone(), h.origin.url(&path))
                .body("change")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 500, "{backend:?} {method}");
        }
        h.origin.override_status(None);
        let (body, info) = h.fetch(&path).await;
        assert!(
            info.from_cache,
            "{backend:?}: a failed unsafe request invalidated the entry"
        );
        assert_eq!(body, stored);
        // One GET and the four failed unsafe requests reached the origin.
        assert_eq!(h.origin.hits("/custom/failed"), 5, "{backend:?}");
        // The control: the same POST answered 200 invalidates it.
        send(h.client.post(h.origin.url(&path)).body("change")).await;
        assert!(!h.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/failed"), 7, "{backend:?}");
    }
}

#[tokio::test]
async fn a_redirect_target_is_answered_from_the_cache_too() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/redirect/alias").await;
        let (_, info) = h.fetch("/target/alias").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/target/alias"), 1);
    }
}

/// A redirect to a URL with the request's own key (its query's parameters reordered) writes
/// the entry once, under the URL asked for: the final URL is answered by that entry.
#[tokio::test]
async fn a_redirect_to_the_same_key_writes_one_entry() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (body, info) = h.fetch("/sorts/same?b=2&a=1").await;
        assert!(info.stored, "{backend:?}");
        let asked = h.origin.url("/sorts/same?b=2&a=1");
        assert_eq!(h.handle.urls().await.unwrap(), vec![asked], "{backend:?}");
        let (again, info) = h.fetch("/sorts/same?a=1&b=2").await;
        assert!(info.from_cache && again == body, "{backend:?}");
        assert_eq!(
            h.origin.hits("/sorts/same"),
            2,
            "{backend:?}: a redirect and the answer"
        );
    }
}

#[tokio::test]
async fn a_full_response_to_a_revalidation_replaces_the_entry() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let path = custom("r", &["etag: \"1\""]);
        h.fetch(&path).await;
        h.origin.override_status(Some(200));
        let (body, info) = h.fetch(&path).await;
        assert!(
            !info.from_cache && !info.revalidated && info.stored,
            "{backend:?}"
        );
        assert_eq!(h.origin.last("/custom/r").headers["if-none-match"], "\"1\"");
        h.origin.override_status(None);
        let (again, info) = h.fetch(&path).await;
        assert!(info.revalidated);
        assert_eq!(
            again, body,
            "{backend:?}: the replacement is what is stored"
        );
    }
}

#[tokio::test]
async fn force_refresh_does_not_answer_head_from_get() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/hf").await;
        let (_, info) = send(
            h.client
                .head(h.origin.url("/hf"))
                .cache_mode(CacheMode::ForceRefresh),
        )
        .await;
        assert!(!info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/hf"), 2);
    }
}

#[tokio::test]
async fn invalidation_reaches_every_vary_variant() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("vi", &["vary: Accept-Language"]);
        let lang = |value: &'static str| send(h.get(&path).header("accept-language", value));
        lang("en").await;
        lang("fr").await;
        assert!(lang("fr").await.1.from_cache);
        send(h.client.put(h.origin.url(&path)).body("new")).await;
        // A new English variant creates a new index; the old French one must not come back.
        let (_, en) = lang("en").await;
        assert!(!en.from_cache, "{backend:?}");
        let (fr, info) = lang("fr").await;
        assert!(
            !info.from_cache,
            "{backend:?}: the pre-PUT variant was served: {fr}"
        );
        assert_eq!(h.origin.hits("/custom/vi"), 5, "{backend:?}");
    }
}

/// An unsafe request that reqwest followed through a `307`/`308` (a framework adding a
/// trailing slash, say) changed the URL it was sent to last: that URL's stored response
/// goes (RFC 9111 §4.4: the target of the request that succeeded). It stayed, and the `GET`
/// after the `PUT` read the resource as it was before.
#[tokio::test]
async fn an_unsafe_request_redirected_invalidates_the_url_it_reached() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let reached = format!("/custom/slash?{}", crate::origin::MOVED_TARGET_QUERY);
        assert!(h.fetch(&reached).await.1.stored, "{backend:?}");
        assert!(h.fetch(&reached).await.1.from_cache, "{backend:?}");
        let put = send(h.client.put(h.origin.url("/temporary/slash")).body("new")).await;
        assert!(put.0.starts_with("/custom/slash"), "{backend:?}: {put:?}");
        assert!(
            !h.fetch(&reached).await.1.from_cache,
            "{backend:?}: the response from before the PUT was served"
        );
    }
}

/// The URL a redirect took an unsafe request to is another origin's: its entries stay (RFC
/// 9111 §4.4: not this origin's to drop; a `303` answers a `POST` with a `GET` of another
/// site, which changed nothing there).
#[tokio::test]
async fn an_unsafe_request_redirected_to_another_origin_leaves_its_entries() {
    let h = Harness::new(crate::support::Backend::Memory).await;
    let other = crate::origin::Origin::start().await;
    let there = other.url(&format!(
        "/custom/there?{}",
        crate::origin::MOVED_TARGET_QUERY
    ));
    assert!(send(h.client.get(&there)).await.1.stored);
    h.origin.override_status(Some(303));
    let location = format!("location: {there}");
    send(
        h.client
            .post(h.origin.url(&custom("away", &[&location])))
            .body("x"),
    )
    .await;
    h.origin.override_status(None);
    assert_eq!(other.hits("/custom/there"), 2, "the 303 was followed");
    assert!(
        send(h.client.get(&there)).await.1.from_cache,
        "another origin's entry was dropped"
    );
}

/// A `304` is never stored, even with `allowable_codes` listing it: it has no body of its
/// own, and stored under the plain request's key it answered every later request with
/// nothing.
#[tokio::test]
async fn a_304_is_never_stored_whatever_allowable_codes_lists() {
    let h = Harness::with(crate::support::Backend::Memory, |b| {
        b.allowable_codes([200, 304])
    })
    .await;
    let path = custom("nm", &["cache-control: max-age=600"]);
    h.origin.override_status(Some(304));
    let (_, info) = send(h.get(&path).header("if-none-match", "\"x\"")).await;
    assert!(!info.stored, "{info:?}");
    h.origin.override_status(None);
    let response = h.get(&path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !reqwest_caching::CacheResponseExt::cache_info(&response)
            .unwrap()
            .from_cache
    );
}

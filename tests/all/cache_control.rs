//! RFC 9111 response and request directives, with `cache_control(true)`.

use std::time::Duration;

use reqwest_caching::{CacheMiddlewareBuilder, CacheMode, CacheRequestExt};

use crate::support::{BACKENDS, Backend, Harness, custom, http_date, send};

async fn following_headers(backend: Backend) -> Harness {
    Harness::with(backend, |b: CacheMiddlewareBuilder| b.cache_control(true)).await
}

#[tokio::test]
async fn max_age_sets_the_lifetime_and_beats_the_session() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.cache_control(true)
                .expire_after(Duration::from_secs(3600))
        })
        .await;
        let path = custom("a", &["cache-control: max-age=60"]);
        h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(59));
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(
            !h.fetch(&path).await.1.from_cache,
            "{backend:?}: stale at 60 s"
        );
        assert_eq!(h.origin.hits("/custom/a"), 2);
    }
}

#[tokio::test]
async fn headers_are_ignored_when_cache_control_is_off() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("off", &["cache-control: no-store"]);
        let (_, info) = h.fetch(&path).await;
        assert!(info.stored, "{backend:?}: stored despite no-store");
        assert!(
            h.fetch(&path).await.1.from_cache,
            "{backend:?}: as requests-cache, off by default"
        );
        assert_eq!(h.origin.hits("/custom/off"), 1, "{backend:?}");
        // The same response with the headers followed is not stored: the header is why.
        let following = following_headers(backend).await;
        let (_, info) = following.fetch(&path).await;
        assert!(!info.stored, "{backend:?}");
        assert!(!following.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(following.origin.hits("/custom/off"), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn s_maxage_is_ignored_by_a_private_cache() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom("s", &["cache-control: s-maxage=3600, max-age=10"]);
        let (_, info) = h.fetch(&path).await;
        assert!(info.stored, "{backend:?}");
        h.clock.advance(Duration::from_secs(9));
        assert!(
            h.fetch(&path).await.1.from_cache,
            "{backend:?}: max-age=10 holds"
        );
        h.clock.advance(Duration::from_secs(1));
        assert!(
            !h.fetch(&path).await.1.from_cache,
            "{backend:?}: stale at 10 s although s-maxage says 3600"
        );
        assert_eq!(h.origin.hits("/custom/s"), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn no_store_is_not_stored() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom("ns", &["cache-control: no-store, max-age=60"]);
        let (_, info) = h.fetch(&path).await;
        assert!(!info.stored);
        assert!(!h.fetch(&path).await.1.from_cache);
        assert_eq!(h.origin.hits("/custom/ns"), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
        // The same response without no-store is stored and served by this cache.
        let path = custom("stored", &["cache-control: max-age=60"]);
        assert!(h.fetch(&path).await.1.stored, "{backend:?}");
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/stored"), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn no_cache_and_pragma_store_but_revalidate_every_use() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        for (name, directive) in [
            ("nc", "cache-control: no-cache"),
            ("pragma", "pragma: no-cache"),
        ] {
            let path = custom(name, &[directive, "etag: \"e1\""]);
            let (first, info) = h.fetch(&path).await;
            assert!(info.stored, "{backend:?} {name}");
            for _ in 0..2 {
                let (body, info) = h.fetch(&path).await;
                assert!(
                    info.revalidated && info.from_cache,
                    "{backend:?} {name}: {info:?}"
                );
                assert_eq!(body, first);
            }
            let target = format!("/custom/{name}");
            assert_eq!(
                h.origin.hits(&target),
                3,
                "{backend:?} {name}: every use asked the origin"
            );
            assert_eq!(h.origin.last(&target).headers["if-none-match"], "\"e1\"");
        }
    }
}

#[tokio::test]
async fn private_and_public_are_stored() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        for (name, cc) in [
            ("private", "cache-control: private, max-age=60"),
            ("public", "cache-control: public, max-age=60"),
        ] {
            let path = custom(name, &[cc]);
            assert!(h.fetch(&path).await.1.stored, "{backend:?} {name}");
            assert!(h.fetch(&path).await.1.from_cache, "{backend:?} {name}");
            assert_eq!(
                h.origin.hits(&format!("/custom/{name}")),
                1,
                "{backend:?} {name}"
            );
        }
    }
}

#[tokio::test]
async fn expires_counts_from_date_and_invalid_expires_is_stale() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let date = format!("date: {}", http_date(&h.clock, 0));
        let expires = format!("expires: {}", http_date(&h.clock, 30));
        let path = custom("exp", &[&date, &expires]);
        h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(29));
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(!h.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/exp"), 2, "{backend:?}");

        let zero = custom("exp0", &["expires: 0"]);
        let (_, info) = h.fetch(&zero).await;
        assert!(info.stored && info.expires.is_some());
        assert!(
            !h.fetch(&zero).await.1.from_cache,
            "{backend:?}: Expires: 0 is already stale"
        );
        assert_eq!(h.origin.hits("/custom/exp0"), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn age_and_date_shorten_the_lifetime() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let aged = custom("age", &["cache-control: max-age=60", "age: 50"]);
        h.fetch(&aged).await;
        h.clock.advance(Duration::from_secs(9));
        assert!(h.fetch(&aged).await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(
            !h.fetch(&aged).await.1.from_cache,
            "{backend:?}: 50 s old on arrival"
        );

        let date = format!("date: {}", http_date(&h.clock, -50));
        let dated = custom("date", &["cache-control: max-age=60", &date]);
        h.fetch(&dated).await;
        h.clock.advance(Duration::from_secs(9));
        assert!(h.fetch(&dated).await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(
            !h.fetch(&dated).await.1.from_cache,
            "{backend:?}: apparent age from Date"
        );
        assert_eq!(h.origin.hits("/custom/age"), 2, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/date"), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn heuristic_freshness_only_without_explicit_settings() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let modified = format!("last-modified: {}", http_date(&h.clock, -1000));
        let path = custom("lm", &[&modified]);
        let (_, info) = h.fetch(&path).await;
        let lifetime = info
            .expires
            .unwrap()
            .duration_since(info.created_at.unwrap())
            .unwrap();
        // HTTP dates have whole seconds: 10 % of 1000 s, give or take one.
        assert!(
            (99..=100).contains(&lifetime.as_secs()),
            "{backend:?}: {lifetime:?}"
        );

        let explicit = Harness::with(backend, |b| {
            b.cache_control(true).expire_after(Duration::from_secs(5))
        })
        .await;
        let modified = format!("last-modified: {}", http_date(&explicit.clock, -1000));
        let (_, info) = explicit.fetch(&custom("lm", &[&modified])).await;
        let lifetime = info
            .expires
            .unwrap()
            .duration_since(info.created_at.unwrap())
            .unwrap();
        assert_eq!(
            lifetime.as_secs(),
            5,
            "{backend:?}: the user's setting beats the heuristic"
        );
    }
}

#[tokio::test]
async fn immutable_is_not_revalidated_on_refresh_while_fresh() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom(
            "imm",
            &["cache-control: max-age=60, immutable", "etag: \"i\""],
        );
        h.fetch(&path).await;
        let (_, info) = send(h.get(&path).cache_mode(CacheMode::Refresh)).await;
        assert!(info.from_cache && !info.revalidated, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/imm"), 1);
        h.clock.advance(Duration::from_secs(61));
        let (_, info) = send(h.get(&path).cache_mode(CacheMode::Refresh)).await;
        assert!(
            info.revalidated,
            "{backend:?}: stale immutable is revalidated"
        );
    }
}

#[tokio::test]
async fn request_max_age_min_fresh_and_max_stale() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom("req", &["cache-control: max-age=100"]);
        h.fetch(&path).await;
        h.clock.advance(Duration::from_secs(30));
        let with = |cc: &'static str| send(h.get(&path).header("cache-control", cc));
        assert!(
            with("max-age=60").await.1.from_cache,
            "{backend:?}: 30 s old is fine"
        );
        assert!(
            !with("max-age=10").await.1.from_cache,
            "{backend:?}: too old for the request"
        );
        // The refetch at t=30 renewed the entry: fresh until t=130.
        assert!(
            !with("min-fresh=200").await.1.from_cache,
            "{backend:?}: not fresh long enough"
        );
        assert!(with("min-fresh=50").await.1.from_cache);
        h.clock.advance(Duration::from_secs(110));
        assert!(
            with("max-stale=20").await.1.from_cache,
            "{backend:?}: 10 s stale accepted"
        );
        assert!(
            !with("max-stale=5").await.1.from_cache,
            "{backend:?}: too stale"
        );
        assert_eq!(h.origin.hits("/custom/req"), 4);
    }
}

#[tokio::test]
async fn must_revalidate_refuses_max_stale() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom("mr", &["cache-control: max-age=10, must-revalidate"]);
        // The control: without must-revalidate, the same max-stale is served stale.
        let lax = custom("lax", &["cache-control: max-age=10"]);
        h.fetch(&path).await;
        h.fetch(&lax).await;
        h.clock.advance(Duration::from_secs(20));
        let (_, info) = send(h.get(&lax).header("cache-control", "max-stale")).await;
        assert!(
            info.from_cache && info.is_expired,
            "{backend:?}: max-stale serves stale: {info:?}"
        );
        let (_, info) = send(h.get(&path).header("cache-control", "max-stale")).await;
        assert!(!info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/lax"), 1, "{backend:?}");
        assert_eq!(
            h.origin.hits("/custom/mr"),
            2,
            "{backend:?}: must-revalidate went to the origin"
        );
    }
}

#[tokio::test]
async fn request_no_cache_no_store_and_only_if_cached() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        let path = custom("r2", &["cache-control: max-age=100", "etag: \"r\""]);
        h.fetch(&path).await;
        let (_, info) = send(h.get(&path).header("cache-control", "no-cache")).await;
        assert!(info.revalidated, "{backend:?}: no-cache validates first");
        let (_, info) = send(h.get(&path).header("pragma", "no-cache")).await;
        assert!(info.revalidated, "{backend:?}: Pragma: no-cache too");
        assert_eq!(
            h.origin.hits("/custom/r2"),
            3,
            "{backend:?}: each validation asked the origin"
        );
        assert_eq!(
            h.origin.last("/custom/r2").headers["if-none-match"],
            "\"r\""
        );
        // Without a request directive the fresh entry is served as it is.
        assert!(h.fetch(&path).await.1.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/r2"), 3, "{backend:?}");

        let other = custom("r3", &["cache-control: max-age=100"]);
        let (_, info) = send(h.get(&other).header("cache-control", "no-store")).await;
        assert!(!info.stored, "{backend:?}: request no-store");
        let response = h
            .get(&other)
            .header("cache-control", "only-if-cached")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 504, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/r3"), 1);
    }
}

#[tokio::test]
async fn malformed_headers_never_panic_and_follow_the_rfc() {
    for &backend in BACKENDS {
        let h = following_headers(backend).await;
        // Invalid max-age: stored, but stale.
        let bad = custom("bad", &["cache-control: max-age=abc"]);
        let (_, info) = h.fetch(&bad).await;
        assert!(info.stored);
        assert!(!h.fetch(&bad).await.1.from_cache, "{backend:?}");
        // Duplicated directive: the first one counts.
        let dup = custom("dup", &["cache-control: max-age=100, max-age=1"]);
        h.fetch(&dup).await;
        h.clock.advance(Duration::from_secs(50));
        assert!(h.fetch(&dup).await.1.from_cache, "{backend:?}");
        // Unparseable dates and ages are ignored or stale, never a failure: each response is
        // stored; an invalid Expires (d1) is stale at once, a bad Age or Date is ignored
        // (d2), a quoted max-age is read (d3), and an unparseable Last-Modified gives no
        // heuristic lifetime, so the session's setting (here `Never`) decides (d4).
        for (name, headers, fresh) in [
            ("d1", &["expires: someday", "date: garbage"][..], false),
            (
                "d2",
                &["cache-control: max-age=10", "age: old", "date: nope"][..],
                true,
            ),
            (
                "d3",
                &["cache-control: max-age=\"20\", , ,=, no-transform"][..],
                true,
            ),
            ("d4", &["last-modified: yesterday"][..], true),
        ] {
            let path = custom(name, headers);
            let (_, info) = h.fetch(&path).await;
            assert!(info.stored, "{backend:?} {name}: {info:?}");
            let (_, info) = h.fetch(&path).await;
            assert_eq!(info.from_cache, fresh, "{backend:?} {name}: {info:?}");
            let hits = if fresh { 1 } else { 2 };
            assert_eq!(
                h.origin.hits(&format!("/custom/{name}")),
                hits,
                "{backend:?} {name}"
            );
        }
        // d3's quoted max-age is 20 s, not 0 and not forever.
        let d3 = custom("d3", &["cache-control: max-age=\"20\", , ,=, no-transform"]);
        h.clock.advance(Duration::from_secs(19));
        assert!(h.fetch(&d3).await.1.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(1));
        assert!(!h.fetch(&d3).await.1.from_cache, "{backend:?}");
        // Malformed request directives too: `dup` is stored again and fresh, yet the
        // request's invalid max-age counts as 0 and sends it to the origin.
        assert!(h.fetch(&dup).await.1.from_cache, "{backend:?}");
        let dup_hits = h.origin.hits("/custom/dup");
        let (_, info) = send(
            h.get(&dup)
                .header("cache-control", "max-age=, min-fresh=x, max-stale=y"),
        )
        .await;
        assert!(
            !info.from_cache,
            "{backend:?}: invalid request max-age counts as 0"
        );
        assert_eq!(h.origin.hits("/custom/dup"), dup_hits + 1, "{backend:?}");
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest_caching::CacheResponseExt;

use crate::support::{BACKENDS, Backend, Harness, send};

#[tokio::test]
async fn second_request_is_a_hit() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (first, info1) = h.fetch("/page").await;
        let (second, info2) = h.fetch("/page").await;
        assert_eq!(
            h.origin.hits("/page"),
            1,
            "{backend:?}: one request reached the origin"
        );
        assert_eq!(first, "/page #1");
        assert_eq!(second, first, "{backend:?}: same body from the cache");
        assert!(!info1.from_cache && info1.stored, "{backend:?}: {info1:?}");
        assert!(
            info2.from_cache && !info2.is_expired && !info2.revalidated,
            "{backend:?}: {info2:?}"
        );
        assert_eq!(info1.key, info2.key);
        assert_eq!(info2.created_at, info1.created_at);
        let stats = h.handle.stats();
        assert_eq!(
            (
                stats.hits,
                stats.misses,
                stats.stores,
                stats.errors,
                stats.skipped
            ),
            (1, 1, 1, 0, 0),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn responses_are_rebuilt_faithfully() {
    for &backend in BACKENDS {
        // `/headers` sets cookies: opt in to caching it.
        let h = Harness::with(backend, |b| b.cache_set_cookie(true)).await;
        let live = h.get("/headers").send().await.unwrap();
        let cached = h.get("/headers").send().await.unwrap();
        assert_eq!(h.origin.hits("/headers"), 1);
        assert!(cached.from_cache());
        assert_eq!(cached.status(), live.status());
        assert_eq!(cached.version(), live.version());
        assert_eq!(cached.url(), live.url());
        // The miss is rebuilt around its body with the connection's extensions kept.
        assert!(
            live.remote_addr().is_some(),
            "{backend:?}: connection info lost"
        );
        let multi: Vec<_> = cached.headers().get_all("x-multi").iter().collect();
        assert_eq!(
            multi,
            ["one", "two"],
            "{backend:?}: repeated headers kept in order"
        );
        // Set-Cookie is a credential: the caller got it live, but it is never stored or replayed.
        assert_eq!(live.headers().get_all("set-cookie").iter().count(), 2);
        assert!(
            cached.headers().get("set-cookie").is_none(),
            "{backend:?}: Set-Cookie replayed"
        );
        assert_eq!(
            cached.headers()["x-latin1"].as_bytes(),
            b"caf\xe9",
            "{backend:?}: non-UTF-8 value kept"
        );
        assert_eq!(
            cached.headers()["content-type"],
            live.headers()["content-type"]
        );
        assert_eq!(cached.bytes().await.unwrap(), live.bytes().await.unwrap());
    }
}

#[tokio::test]
async fn redirected_responses_keep_their_final_url() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let first = h.get("/redirect/a").send().await.unwrap();
        let final_url = first.url().clone();
        assert!(final_url.path().ends_with("/target/a"));
        let second = h.get("/redirect/a").send().await.unwrap();
        assert!(second.from_cache(), "{backend:?}");
        assert_eq!(second.url(), &final_url, "{backend:?}");
        assert_eq!(h.origin.hits("/redirect/a"), 1);
        assert_eq!(h.origin.hits("/target/a"), 1);
    }
}

#[tokio::test]
async fn head_and_get_are_separate_entries() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        for _ in 0..2 {
            let head = h
                .client
                .head(h.origin.url("/big/5000"))
                .send()
                .await
                .unwrap();
            assert_eq!(head.headers()["content-length"], "5000");
        }
        let (_, info) = send(h.client.head(h.origin.url("/big/5000"))).await;
        assert!(info.from_cache, "{backend:?}: HEAD cached");
        let (body, info) = h.fetch("/big/5000").await;
        assert_eq!(body.len(), 5000);
        assert!(
            !info.from_cache,
            "{backend:?}: GET not answered by the HEAD entry"
        );
        assert_eq!(h.origin.hits("/big/5000"), 2);
    }
}

#[tokio::test]
async fn caller_url_parameters_survive_redaction() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let url = h.origin.url("/p?api_key=k1&q=1");
        h.client.get(&url).send().await.unwrap();
        let cached = h.client.get(&url).send().await.unwrap();
        assert!(cached.from_cache());
        assert_eq!(
            cached.url().as_str(),
            url,
            "{backend:?}: the caller sees its own URL"
        );
    }
}

#[tokio::test]
async fn responses_that_set_cookies_are_not_cached_by_default() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let first = h.get("/headers").send().await.unwrap();
        assert_eq!(first.headers().get_all("set-cookie").iter().count(), 2);
        let second = h.get("/headers").send().await.unwrap();
        assert!(!second.from_cache(), "{backend:?}");
        assert_eq!(
            second.headers().get_all("set-cookie").iter().count(),
            2,
            "{backend:?}: the live cookies"
        );
        assert_eq!(h.origin.hits("/headers"), 2, "{backend:?}");
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
    }
}

#[tokio::test]
async fn a_304_that_sets_a_cookie_gives_it_to_the_caller_never_to_the_store() {
    for cache_set_cookie in [false, true] {
        let h = Harness::with(Backend::Memory, |b| {
            b.expire_after(std::time::Duration::from_secs(60))
                .ignored_parameters(["h"])
                .cache_set_cookie(cache_set_cookie)
        })
        .await;
        // Same key (the `h` parameters are ignored): a 200 without a cookie is stored, and
        // its revalidation answers 304 with one.
        let plain = crate::support::custom("c", &["ETag: \"v1\""]);
        let with_cookie = crate::support::custom("c", &["ETag: \"v1\"", "Set-Cookie: sid=9"]);
        send(h.get(&plain)).await;
        h.clock.advance(std::time::Duration::from_secs(120));
        let response = h.get(&with_cookie).send().await.unwrap();
        let info = response.cache_info().cloned().unwrap();
        assert!(info.revalidated, "{info:?}");
        assert_eq!(
            response.headers()["set-cookie"],
            "sid=9",
            "the caller gets the cookie"
        );
        assert_eq!(
            info.stored, cache_set_cookie,
            "renewed only when such responses may be"
        );
        let stored = h
            .handle
            .get(info.key.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            stored.response.headers.get("set-cookie").is_none(),
            "never stored"
        );
    }
}

/// A task answered from the cache again and again still lets the other tasks of its worker
/// run: hits spend tokio's cooperative budget (a unit per four), so a loop of hits yields
/// within some 512 (a memory hit waits on nothing, and without it such a loop held its
/// worker until it ended, timers included).
#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_hits_lets_other_tasks_run() {
    let h = Harness::new(Backend::Memory).await;
    h.fetch("/page").await;
    let ran = Arc::new(AtomicBool::new(false));
    let other = tokio::spawn({
        let ran = Arc::clone(&ran);
        async move { ran.store(true, Ordering::SeqCst) }
    });
    let mut hits = 0;
    while !ran.load(Ordering::SeqCst) && hits < 1_000 {
        let (_, info) = h.fetch("/page").await;
        assert!(info.from_cache, "{info:?}");
        hits += 1;
    }
    assert!(
        ran.load(Ordering::SeqCst),
        "1,000 hits in a row never let another task on the runtime run"
    );
    other.await.unwrap();
}

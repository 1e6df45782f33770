use http::Method;
use reqwest_caching::MatchHeaders;

use crate::support::{BACKENDS, Harness, send};

#[tokio::test]
async fn query_order_and_host_case_do_not_matter() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/q?a=1&b=2").await;
        let (_, info) = h.fetch("/q?b=2&a=1").await;
        assert!(info.from_cache, "{backend:?}");
        let upper = h.origin.url("/q?a=1&b=2").replace("http://", "HTTP://");
        let (_, info) = send(h.client.get(upper)).await;
        assert!(info.from_cache, "{backend:?}");
        h.fetch("/q?a=1&b=3").await;
        assert_eq!(h.origin.hits("/q"), 2);
    }
}

#[tokio::test]
async fn ignored_parameters_share_an_entry() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.ignored_parameters(["nonce", "x-request-id"])).await;
        send(h.get("/i?nonce=1&q=a").header("x-request-id", "1")).await;
        let (_, info) = send(h.get("/i?q=a&nonce=2").header("x-request-id", "2")).await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/i"), 1);
        let stored = h.handle.get(&info.key.unwrap()).await.unwrap().unwrap();
        assert_eq!(
            url::Url::parse(&stored.response.request.url)
                .unwrap()
                .query(),
            Some("q=a"),
            "{backend:?}: redacted"
        );
        assert!(
            stored
                .response
                .request
                .headers
                .get("x-request-id")
                .is_none()
        );
    }
}

#[tokio::test]
async fn different_credentials_never_share_a_response() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (alice, _) = send(h.get("/me").bearer_auth("alice-token")).await;
        let (bob, info) = send(h.get("/me").bearer_auth("bob-token")).await;
        assert!(
            !info.from_cache,
            "{backend:?}: bob does not get alice's response"
        );
        assert_ne!(alice, bob);
        let (again, info) = send(h.get("/me").bearer_auth("alice-token")).await;
        assert!(info.from_cache);
        assert_eq!(again, alice);
        assert_eq!(h.origin.hits("/me"), 2);
        // The credential reached the origin but not the stored request.
        assert_eq!(
            h.origin.last("/me").headers["authorization"],
            "Bearer bob-token"
        );
        let stored = h.handle.get(&info.key.unwrap()).await.unwrap().unwrap();
        assert!(
            stored
                .response
                .request
                .headers
                .get("authorization")
                .is_none()
        );
    }
}

#[tokio::test]
async fn per_credential_off_shares_like_requests_cache() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.per_credential(false)).await;
        send(h.get("/me").bearer_auth("alice")).await;
        let (_, info) = send(h.get("/me").bearer_auth("bob")).await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/me"), 1);
    }
}

#[tokio::test]
async fn match_headers_splits_entries_by_header() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.match_headers(MatchHeaders::Only(vec![http::header::ACCEPT_LANGUAGE]))
        })
        .await;
        let (en, _) = send(h.get("/lang").header("accept-language", "en")).await;
        let (fr, _) = send(h.get("/lang").header("accept-language", "fr")).await;
        assert_ne!(en, fr);
        let (again, info) = send(
            h.get("/lang")
                .header("accept-language", "en")
                .header("x-other", "1"),
        )
        .await;
        assert!(
            info.from_cache,
            "{backend:?}: unmatched headers do not split"
        );
        assert_eq!(again, en);
        assert_eq!(h.origin.hits("/lang"), 2);

        let all = Harness::with(backend, |b| b.match_headers(MatchHeaders::All)).await;
        send(all.get("/lang").header("x-other", "1")).await;
        send(all.get("/lang").header("x-other", "2")).await;
        assert_eq!(
            all.origin.hits("/lang"),
            2,
            "{backend:?}: every header counts"
        );
    }
}

#[tokio::test]
async fn post_with_json_body_keyed_by_normalized_body() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
        })
        .await;
        let post = |body: &'static str| {
            h.client
                .post(h.origin.url("/search"))
                .header("content-type", "application/json")
                .body(body)
        };
        let (first, _) = send(post(r#"{"query":"rust","page":1}"#)).await;
        let (second, info) = send(post(r#"{ "page": 1, "query": "rust" }"#)).await;
        assert!(info.from_cache, "{backend:?}: same JSON, other key order");
        assert_eq!(second, first);
        let (_, info) = send(post(r#"{"query":"rust","page":2}"#)).await;
        assert!(!info.from_cache);
        assert_eq!(h.origin.hits("/search"), 2);
        assert_eq!(
            &h.origin.last("/search").body[..],
            br#"{"query":"rust","page":2}"#
        );
        // GET of the same URL is another entry.
        assert!(!h.fetch("/search").await.1.from_cache);
    }
}

#[tokio::test]
async fn key_for_matches_the_middleware() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (_, info) = h.fetch("/k?b=1&a=2").await;
        let key = h
            .handle
            .key_for(&Method::GET, &h.origin.url("/k?a=2&b=1"))
            .unwrap();
        assert_eq!(info.key, Some(key));
        assert!(h.handle.contains(&key).await.unwrap(), "{backend:?}");
    }
}

/// Every stored byte of every backend (values and metadata), read raw through the store:
/// no credential appears, in plain text or base64.
#[tokio::test]
async fn credentials_never_reach_any_store() {
    const SECRETS: &[&str] = &[
        "SECRET-QUERY-1",
        "SECRET-BEARER-2",
        "SECRET-COOKIE-3",
        "SECRET-PASSWORD-4",
        "SECRET-PROXY-5",
        "SECRET-APIKEY-6",
        // base64 of "user:SECRET-PASSWORD-4", as basic auth sends it.
        "dXNlcjpTRUNSRVQtUEFTU1dPUkQtNA",
    ];
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        send(
            h.get("/big/16?api_key=SECRET-QUERY-1&q=1")
                .bearer_auth("SECRET-BEARER-2")
                .header("cookie", "sid=SECRET-COOKIE-3"),
        )
        .await;
        send(
            h.get("/big/16?q=2")
                .basic_auth("user", Some("SECRET-PASSWORD-4"))
                .header("proxy-authorization", "Basic SECRET-PROXY-5")
                .header("x-api-key", "SECRET-APIKEY-6"),
        )
        .await;
        let store = h.handle.store();
        let keys = reqwest_caching::cache_core::store::collect_keys(store.entries(), |_| true)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "{backend:?}");
        for key in keys {
            let raw = store.get(&key).await.unwrap().expect("listed entry");
            let mut bytes = raw.value.to_vec();
            bytes.extend_from_slice(raw.meta.url.as_bytes());
            assert!(
                bytes.windows(7).any(|w| w == b"/big/16"),
                "{backend:?}: sanity: the URL is stored"
            );
            for secret in SECRETS {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{backend:?}: {secret} stored"
                );
            }
        }
    }
}

/// A GET with a present but empty body is the body-less GET: it shares its entry, is found
/// by URL, and an unsafe request to the URL invalidates it.
#[tokio::test]
async fn an_empty_body_is_keyed_as_no_body() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (first, info) = send(h.get("/empty").body("")).await;
        assert!(info.stored, "{backend:?}: {info:?}");
        let (again, info) = h.fetch("/empty").await;
        assert!(
            info.from_cache,
            "{backend:?}: the body-less GET finds the empty-body GET's entry"
        );
        assert_eq!(again, first);
        let (_, info) = send(h.get("/empty").body("")).await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/empty"), 1, "{backend:?}");
        assert!(
            h.handle
                .contains_url(&h.origin.url("/empty"))
                .await
                .unwrap(),
            "{backend:?}: found by URL"
        );

        send(h.client.post(h.origin.url("/empty")).body("change")).await;
        let (_, info) = send(h.get("/empty").body("")).await;
        assert!(!info.from_cache, "{backend:?}: the POST invalidated it");
        // The first GET, the POST, the GET after it.
        assert_eq!(h.origin.hits("/empty"), 3, "{backend:?}");
    }
}

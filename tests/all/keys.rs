use http::Method;
use reqwest_caching::MatchHeaders;

use crate::support::{BACKENDS, Backend, Harness, read_tree, send, wait_until};

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

/// Credential names declared through the builder in the tests below.
const DECLARED_HEADER: &str = "X-Session-Id";
const DECLARED_PARAMETER: &str = "sig";

/// The credentials every user gets: written out, not read from the crate, so a name dropped
/// from the defaults fails the test.
const BUILT_IN: &[&str] = &[
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-API-Key",
    "access_token",
    "api_key",
    "X-Auth-Token",
    "X-API-Token",
    "X-Access-Token",
    "apikey",
    "Private-Token",
    "X-Amz-Security-Token",
    "api-key",
    "client_secret",
];

/// Parameter names frameworks fold into a credential's (PHP reads `api.key` as `api_key`;
/// PHP, Rack and `qs` read `api_key[]` as an array of it), the declared one's among them.
const FOLDED: &[&str] = &[
    "api.key",
    "api_key[]",
    "access_token[0]",
    "client.secret",
    "sig[]",
];

/// Every built-in credential name sent as a header, a query parameter, a JSON body key and a
/// form body key, each with its own secret, and the declared ones where they were declared
/// (parameters also under names frameworks fold into theirs, [`FOLDED`], and after a `;` in
/// a kept parameter's value);
/// then every stored byte of every backend is searched: values and metadata read back
/// through the store; for SQLite and sled every file on disk; for Redis, MongoDB and DynamoDB
/// the server's raw data (every key under the prefix, every document of the collection and
/// its chunks, a full table scan). No secret appears, in plain text or base64.
#[tokio::test]
async fn credentials_never_reach_any_store() {
    let mut headers: Vec<&str> = BUILT_IN.to_vec();
    headers.push(DECLARED_HEADER);
    let mut parameters: Vec<&str> = BUILT_IN.to_vec();
    parameters.push(DECLARED_PARAMETER);
    parameters.extend(FOLDED);
    let secret = |place: char, i: usize| format!("SECRET-{place}{i}-X");
    let mut secrets: Vec<String> = (0..headers.len()).map(|i| secret('H', i)).collect();
    for place in ['Q', 'J', 'F'] {
        secrets.extend((0..parameters.len()).map(|i| secret(place, i)));
    }
    secrets.extend([
        // After a `;` in a kept parameter's value: a credential to Rack and older Python.
        "SECRET-SEMICOLON-Q".to_owned(),
        "SECRET-SEMICOLON-F".to_owned(),
        "SECRET-PASSWORD-4".to_owned(),
        // base64 of "user:SECRET-PASSWORD-4", as basic auth sends it.
        "dXNlcjpTRUNSRVQtUEFTU1dPUkQtNA".to_owned(),
    ]);
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
                .credential_headers([DECLARED_HEADER])
                .credential_parameters([DECLARED_PARAMETER])
        })
        .await;
        let mut query = String::from("/big/16?q=1");
        let mut json = String::from(r#"{"q":1"#);
        let mut form = String::from("q=3");
        for (i, name) in parameters.iter().enumerate() {
            query.push_str(&format!("&{name}={}", secret('Q', i)));
            json.push_str(&format!(r#","{name}":"{}""#, secret('J', i)));
            form.push_str(&format!("&{name}={}", secret('F', i)));
        }
        query.push_str("&k=1;api_key=SECRET-SEMICOLON-Q");
        form.push_str("&k=1;api_key=SECRET-SEMICOLON-F");
        json.push('}');
        let mut get = h.get(&query);
        for (i, name) in headers.iter().enumerate() {
            get = get.header(*name, secret('H', i));
        }
        let requests = [
            get,
            h.client
                .post(h.origin.url("/big/16?q=2"))
                .header("content-type", "application/json")
                .body(json),
            h.client
                .post(h.origin.url("/big/16?q=3"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
            h.get("/big/16?q=4")
                .basic_auth("user", Some("SECRET-PASSWORD-4")),
        ];
        for request in requests {
            let (_, info) = send(request).await;
            assert!(info.stored, "{backend:?}: {info:?}");
        }
        // Every secret reached the origin (so only the cache could leak it there).
        let seen: Vec<u8> = h
            .origin
            .seen()
            .iter()
            .flat_map(|s| {
                let mut bytes = s.target.clone().into_bytes();
                for value in s.headers.values() {
                    bytes.extend_from_slice(value.as_bytes());
                }
                bytes.extend_from_slice(&s.body);
                bytes
            })
            .collect();
        // (The password travels in base64, the last secret.)
        for secret in &secrets[..secrets.len() - 2] {
            assert!(contains(&seen, secret.as_bytes()), "{secret} was sent");
        }

        let store = h.handle.store();
        let keys = reqwest_caching::cache_core::store::collect_keys(store.entries(), |_| true)
            .await
            .unwrap();
        assert_eq!(keys.len(), 4, "{backend:?}");
        let mut stored = Vec::new();
        for key in keys {
            let raw = store.get(&key).await.unwrap().expect("listed entry");
            stored.extend_from_slice(&raw.value);
            stored.extend_from_slice(raw.meta.url.as_bytes());
        }
        assert!(
            contains(&stored, b"/big/16?q=1"),
            "{backend:?}: sanity: the redacted URL is stored"
        );
        assert_no_secret(&stored, &secrets, backend, "stored values");
        let on_disk = match backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => true,
            #[cfg(feature = "sled")]
            Backend::Sled => true,
            #[cfg(feature = "fs")]
            Backend::Fs => true,
            _ => false,
        };
        if on_disk {
            // sled writes its log behind: wait until the files hold the entries.
            wait_until(|| contains(&read_tree(h.dir()), b"/big/16?q=4")).await;
            assert_no_secret(&read_tree(h.dir()), &secrets, backend, "files");
        }
        if let Some(raw) = h.namespace.raw_bytes().await {
            for query in ["q=1", "q=2", "q=3", "q=4"] {
                assert!(
                    contains(&raw, format!("/big/16?{query}").as_bytes()),
                    "{backend:?}: sanity: the server's data holds the entry for {query}"
                );
            }
            assert_no_secret(&raw, &secrets, backend, "server's raw data");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret(bytes: &[u8], secrets: &[String], backend: Backend, what: &str) {
    for secret in secrets {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "{backend:?}: {secret} found in the {what}"
        );
    }
}

/// Two tokens under `X-Auth-Token` (and under a credential header declared in the settings,
/// and `apikey` in the query) are two entries: the origin sees two requests, and each token
/// is answered its own response.
#[tokio::test]
async fn two_tokens_are_two_entries() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.credential_headers([DECLARED_HEADER])).await;
        for (path, header) in [("/auth", "X-Auth-Token"), ("/declared", DECLARED_HEADER)] {
            let (alice, _) = send(h.get(path).header(header, "alice")).await;
            let (bob, info) = send(h.get(path).header(header, "bob")).await;
            assert!(!info.from_cache, "{backend:?} {header}: bob gets his own");
            assert_ne!(alice, bob);
            let (again, info) = send(h.get(path).header(header, "alice")).await;
            assert!(info.from_cache, "{backend:?} {header}");
            assert_eq!(again, alice);
            assert_eq!(h.origin.hits(path), 2, "{backend:?} {header}");
        }
        send(h.get("/q?apikey=alice")).await;
        let (_, info) = send(h.get("/q?apikey=bob")).await;
        assert!(!info.from_cache, "{backend:?}: apikey");
        assert_eq!(h.origin.hits("/q"), 2, "{backend:?}: apikey");
        let stored = h.handle.get(&info.key.unwrap()).await.unwrap().unwrap();
        assert!(
            !stored.response.request.url.contains("apikey"),
            "{backend:?}: {}",
            stored.response.request.url
        );
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

/// `X-HTTP-Method-Override` is part of the key, as in requests-cache: a `POST` tunnelling
/// `PATCH` is not answered with what a `POST` tunnelling `DELETE`, or a plain one, got.
#[tokio::test]
async fn method_override_is_part_of_the_key() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
        })
        .await;
        let post = |method: Option<&str>| {
            let request = h.client.post(h.origin.url("/o")).body("same");
            match method {
                Some(m) => request.header("X-HTTP-Method-Override", m),
                None => request,
            }
        };
        // (Each POST that reaches the origin also invalidates the URL's other entries.)
        assert!(!send(post(Some("PATCH"))).await.1.from_cache, "{backend:?}");
        assert!(send(post(Some("PATCH"))).await.1.from_cache, "{backend:?}");
        assert!(
            !send(post(Some("DELETE"))).await.1.from_cache,
            "{backend:?}"
        );
        assert!(send(post(Some("DELETE"))).await.1.from_cache, "{backend:?}");
        assert!(!send(post(None)).await.1.from_cache, "{backend:?}");
        // A GET with the header is not answered from the plain GET's entry either.
        h.fetch("/g").await;
        let (_, info) = send(h.get("/g").header("x-http-method-override", "PUT")).await;
        assert!(!info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/o"), 3, "{backend:?}");
        assert_eq!(h.origin.hits("/g"), 2, "{backend:?}");
    }
}

/// `key_fn`: the user's function computes every key, building on the default key and the
/// request's parts; the handle and URL operations follow it.
#[tokio::test]
async fn key_fn_computes_the_key() {
    use reqwest_caching::cache_http::key_from_parts;
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.key_fn(|request| {
                let version = request.header("x-api-version").unwrap_or("1");
                if request.url().path().starts_with("/all") {
                    // One entry for the path, whatever the query.
                    return key_from_parts([request.method().as_str(), request.url().path()]);
                }
                key_from_parts([request.default_key().as_str(), version])
            })
        })
        .await;
        let v = |version: &str| h.get("/k").header("x-api-version", version);
        assert!(!send(v("1")).await.1.from_cache);
        assert!(!send(v("2")).await.1.from_cache, "{backend:?}");
        let (body, info) = send(v("2")).await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(body, "/k #2");
        let (_, info) = h.fetch("/k").await;
        assert!(info.from_cache, "{backend:?}: no header is version 1");
        assert_eq!(
            info.key.unwrap(),
            h.handle.key_for(&Method::GET, &h.origin.url("/k")).unwrap(),
            "{backend:?}: the handle keys as requests are keyed"
        );
        h.fetch("/all?page=1").await;
        let (body, info) = h.fetch("/all?page=2").await;
        assert!(info.from_cache, "{backend:?}");
        assert_eq!(body, "/all?page=1 #1");
        assert_eq!(h.origin.hits("/k"), 2, "{backend:?}");
        assert_eq!(h.origin.hits("/all"), 1, "{backend:?}");
        // Deleting by URL still finds every custom-keyed entry of the URL.
        assert_eq!(h.handle.delete_url(&h.origin.url("/k")).await.unwrap(), 2);
        assert!(!h.fetch("/k").await.1.from_cache, "{backend:?}");
    }
}

/// `recreate_keys`: after the key settings change, stored responses move to their new keys
/// and are served again; a credential's entry never moves to a key without the credential.
#[tokio::test]
async fn recreate_keys_after_the_key_settings_change() {
    use reqwest_caching::CacheResponseExt;
    use reqwest_caching::cache_http::KeyRules;
    use std::sync::Arc;
    for &backend in BACKENDS {
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
        h.fetch("/i?q=a&nonce=1").await;
        send(h.get("/j").header("accept", "text/x")).await;
        send(h.get("/me").bearer_auth("alice")).await;
        h.fetch("/same").await;

        let cache = crate::support::patient_builder()
            .shared_store(shared.expect("the store"))
            .clock(Arc::clone(&h.clock) as _)
            .ignored_parameters(["nonce"])
            .match_headers(MatchHeaders::Only(vec![http::header::ACCEPT]))
            .build()
            .unwrap();
        let handle = cache.handle();
        let client = cache.into_client(reqwest::Client::new());
        let from_cache = |request: reqwest_caching::reqwest_middleware::RequestBuilder| async {
            request.send().await.unwrap().from_cache()
        };
        // Unreachable under the new settings, before re-keying.
        assert!(!from_cache(client.get(h.origin.url("/j")).header("accept", "text/x")).await);
        h.handle.clear().await.unwrap();
        h.fetch("/i?q=a&nonce=1").await;
        send(h.get("/j").header("accept", "text/x")).await;
        send(h.get("/me").bearer_auth("alice")).await;
        h.fetch("/same").await;

        let done = handle.recreate_keys(&KeyRules::default()).await.unwrap();
        assert_eq!(
            (done.moved, done.unchanged, done.skipped),
            (3, 0, 1),
            "{backend:?}: {done:?} (matching a header changes every key)"
        );
        let hits = h.origin.total();
        let get = |path: &str| client.get(h.origin.url(path));
        assert!(from_cache(get("/i?q=a&nonce=2")).await, "{backend:?}");
        assert!(
            from_cache(get("/j").header("accept", "text/x")).await,
            "{backend:?}"
        );
        assert!(from_cache(get("/same")).await, "{backend:?}");
        assert!(!from_cache(get("/j").header("accept", "text/y")).await);
        assert!(
            !from_cache(get("/me")).await,
            "{backend:?}: alice's stays alice's"
        );
        assert_eq!(h.origin.total(), hits + 2, "{backend:?}");
        assert_eq!(
            handle
                .recreate_keys(&KeyRules::default())
                .await
                .unwrap()
                .moved,
            0,
            "{backend:?}: nothing keyed by the old rules is left"
        );
    }
}

/// A URL changed while `recreate_keys` moves its entry (after the entry was read, before it
/// is written under its new key) does not get the response back under the new key: the
/// invalidation deleted it, and the move would have undone that.
#[tokio::test]
async fn recreate_keys_does_not_move_back_an_entry_its_url_changed_under() {
    use reqwest_caching::CacheResponseExt;
    use reqwest_caching::cache_http::KeyRules;
    use std::sync::Arc;
    let mut gated = None;
    let h = Harness::wrapping(
        Backend::Memory,
        |store| {
            let wrapped = Arc::new(crate::gated::Gated::new(store));
            gated = Some(Arc::clone(&wrapped));
            wrapped
        },
        |b| b,
    )
    .await;
    let gated = gated.expect("the store");
    h.fetch("/same").await;
    let old_key = h
        .handle
        .key_for(&Method::GET, &h.origin.url("/same"))
        .unwrap();
    assert!(h.handle.contains(&old_key).await.unwrap());
    // Matching a header changes every key, not the URL's group.
    let cache = crate::support::patient_builder()
        .shared_store(Arc::clone(&gated) as _)
        .clock(Arc::clone(&h.clock) as _)
        .match_headers(MatchHeaders::Only(vec![http::header::ACCEPT]))
        .build()
        .unwrap();
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let mut reads = gated.gate_next_read(old_key);
    let rekeying = tokio::spawn({
        let handle = handle.clone();
        async move { handle.recreate_keys(&KeyRules::default()).await }
    });
    let release = tokio::time::timeout(std::time::Duration::from_secs(20), reads.recv())
        .await
        .expect("the move reads the entry")
        .expect("a read");
    handle.delete_url(&h.origin.url("/same")).await.unwrap();
    release.send(()).unwrap();
    rekeying.await.unwrap().unwrap();
    assert_eq!(handle.count().await.unwrap(), 0, "not moved back");
    let response = client.get(h.origin.url("/same")).send().await.unwrap();
    assert!(!response.from_cache());
}

/// A memory store that refuses its first `refusals` writes as full, as a SQLite store does
/// while live traffic fills its queue and another process holds its write lock.
#[derive(Debug)]
struct FullForAMoment {
    inner: reqwest_caching::MemoryStore,
    refusals: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl reqwest_caching::CacheStore for FullForAMoment {
    async fn get(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<Option<reqwest_caching::StoredEntry>, reqwest_caching::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        entry: reqwest_caching::StoredEntry,
    ) -> Result<(), reqwest_caching::StoreError> {
        use std::sync::atomic::Ordering;
        let refuse = |left: u32| left.checked_sub(1);
        if self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, refuse)
            .is_ok()
        {
            return Err(reqwest_caching::StoreError::full(std::io::Error::other(
                "the write queue is over its limit",
            )));
        }
        self.inner.put(entry).await
    }
    async fn delete(
        &self,
        key: &reqwest_caching::CacheKey,
    ) -> Result<bool, reqwest_caching::StoreError> {
        self.inner.delete(key).await
    }
    fn entries(
        &self,
    ) -> futures_util::stream::BoxStream<
        '_,
        Result<reqwest_caching::EntryMeta, reqwest_caching::StoreError>,
    > {
        self.inner.entries()
    }
    async fn clear(&self) -> Result<u64, reqwest_caching::StoreError> {
        self.inner.clear().await
    }
}

/// `recreate_keys` on a store that refuses its first writes as full (SQLite's queue while
/// another process holds the write lock): re-keying waits and tries again, and moves the
/// entry; it stopped with `StoreError::Full`.
#[tokio::test]
async fn recreate_keys_waits_out_a_store_full_for_a_moment() {
    use reqwest_caching::cache_http::KeyRules;
    use std::sync::Arc;

    let store = Arc::new(FullForAMoment {
        inner: reqwest_caching::MemoryStore::new(),
        refusals: 0.into(),
    });
    let origin = crate::origin::Origin::start().await;
    let before = crate::support::patient_builder()
        .shared_store(Arc::clone(&store) as _)
        .build()
        .unwrap();
    let client = before.into_client(reqwest::Client::new());
    assert!(
        !send(client.get(origin.url("/i?q=a&nonce=1")))
            .await
            .1
            .from_cache
    );
    let cache = crate::support::patient_builder()
        .shared_store(Arc::clone(&store) as _)
        .ignored_parameters(["nonce"])
        .build()
        .unwrap();
    store.refusals.store(3, std::sync::atomic::Ordering::SeqCst);
    let done = cache
        .handle()
        .recreate_keys(&KeyRules::default())
        .await
        .expect("re-keying waits for room");
    assert_eq!((done.moved, done.skipped), (1, 0), "{done:?}");
    assert_eq!(store.refusals.load(std::sync::atomic::Ordering::SeqCst), 0);
    let client = cache.into_client(reqwest::Client::new());
    let (_, info) = send(client.get(origin.url("/i?q=a&nonce=2"))).await;
    assert!(info.from_cache, "served under its new key");
    assert_eq!(origin.total(), 1);
}

/// A response whose body the store keeps in a file moves to its new key a piece at a time,
/// file to file: it was read whole (a download larger than memory, several times over as
/// it was copied and encoded), and it is served from its new key as stored.
#[cfg(feature = "fs")]
#[tokio::test]
async fn recreate_keys_moves_a_body_kept_in_its_file_without_reading_it_whole() {
    for signed in [false, true] {
        moves_a_body_kept_in_its_file(signed).await;
    }
}

#[cfg(feature = "fs")]
async fn moves_a_body_kept_in_its_file(signed: bool) {
    use reqwest_caching::CacheResponseExt;
    use reqwest_caching::cache_http::KeyRules;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::transfer::Probed::new(
        reqwest_caching::FsStore::open(dir.path()).unwrap(),
    ));
    let origin = crate::origin::Origin::start().await;
    let builder = || {
        let builder = reqwest_caching::CacheMiddleware::builder()
            .shared_store(Arc::clone(&store) as Arc<dyn reqwest_caching::CacheStore>);
        match signed {
            true => builder.signing_keys(reqwest_caching::SigningKeys::new(
                b"a secret of 32 bytes or more....".to_vec(),
            )),
            false => builder,
        }
    };
    let client_of = |builder: reqwest_caching::CacheMiddlewareBuilder| {
        let cache = builder.build().unwrap();
        (cache.handle(), cache.into_client(reqwest::Client::new()))
    };
    let (_, old) = client_of(builder());
    let first = old
        .get(origin.url("/big/3000000?nonce=1"))
        .send()
        .await
        .unwrap();
    assert!(first.cache_info().unwrap().stored, "signed: {signed}");
    let body = first.bytes().await.unwrap();
    let (handle, new) = client_of(builder().ignored_parameters(["nonce"]));
    let (whole, from_file) = store.reads();
    let done = handle.recreate_keys(&KeyRules::default()).await.unwrap();
    assert_eq!(done.moved, 1, "signed: {signed}: {done:?}");
    assert_eq!(
        store.reads(),
        (whole, from_file + 1),
        "signed: {signed}: read from its file, nothing read whole"
    );
    let again = new
        .get(origin.url("/big/3000000?nonce=2"))
        .send()
        .await
        .unwrap();
    assert!(again.cache_info().unwrap().from_cache, "signed: {signed}");
    assert!(
        again.bytes().await.unwrap() == body,
        "signed: {signed}: other bytes"
    );
    assert_eq!(origin.hits("/big/3000000"), 1, "signed: {signed}");
}

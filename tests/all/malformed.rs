//! Bad input, end to end, over every store: entries that another program, an older or a newer
//! release left under the middleware's keys, and origins that answer malformed responses.
//! The cache must not panic, must not change what the caller sees (compared with a plain
//! `reqwest` client against the same route), and must never keep half an entry.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use reqwest_caching::cache_core::codec;
use reqwest_caching::reqwest_middleware::{ClientWithMiddleware, RequestBuilder};
use reqwest_caching::{CacheResponseExt, CachedRequest, CachedResponse, EntryMeta, StoredEntry};

use crate::origin::{OBS_TEXT, obs_text_all};
use crate::support::{BACKENDS, Harness};

// ---------------------------------------------------------------------------------------------
// Planted entries
// ---------------------------------------------------------------------------------------------

const PLANTED_BODY: &[u8] = b"planted";

/// A valid entry for a `GET` of `url`, as this release writes it.
fn valid_entry(url: &str) -> Bytes {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("content-length", HeaderValue::from(PLANTED_BODY.len()));
    let response = CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from_static(PLANTED_BODY),
        url,
        CachedRequest::new(Method::GET, url, HeaderMap::new()),
    );
    codec::encode(&response).expect("encodes")
}

/// Where the head of a valid entry ends and its body starts.
fn body_start(valid: &[u8]) -> usize {
    19 + u32::from_le_bytes([valid[7], valid[8], valid[9], valid[10]]) as usize
}

/// Ways stored bytes can be unreadable to this release.
const UNREADABLE: &[&str] = &[
    // A future release's format.
    "future-version",
    "far-future-version",
    // Older formats: 1 (no body length), and 0 (never released).
    "version-1",
    "version-0",
    // Another program's data under the same key.
    "bad-magic-json",
    "bad-magic-binary",
    "empty",
    // A torn write: cut inside the envelope, and inside the head.
    "truncated-envelope",
    "truncated-head",
    // A torn write cut inside the body (the envelope's body length catches it), and bytes
    // appended after the end.
    "truncated-body",
    "trailing-bytes",
    // A head length pointing past the end.
    "head-past-the-end",
    // A valid envelope with flags this release does not know, and an unknown kind.
    "unknown-flags",
    "unknown-kind",
];

/// The `case` of [`UNREADABLE`] for a `GET` of `url`.
fn unreadable(case: &str, url: &str) -> Bytes {
    let valid = valid_entry(url);
    let with = |at: usize, byte: u8| {
        let mut bytes = valid.to_vec();
        bytes[at] = byte;
        Bytes::from(bytes)
    };
    match case {
        "future-version" => with(4, codec::FORMAT_VERSION + 1),
        "far-future-version" => with(4, 0xff),
        "version-1" => with(4, 1),
        "version-0" => with(4, 0),
        "bad-magic-json" => Bytes::from_static(br#"{"cached_by":"another program","status":200}"#),
        "bad-magic-binary" => Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"),
        "empty" => Bytes::new(),
        "truncated-envelope" => valid.slice(..7),
        "truncated-head" => valid.slice(..body_start(&valid) - 3),
        "truncated-body" => valid.slice(..valid.len() - 3),
        "trailing-bytes" => {
            let mut bytes = valid.to_vec();
            bytes.extend_from_slice(b"\0\0");
            Bytes::from(bytes)
        }
        "head-past-the-end" => {
            let mut bytes = valid.to_vec();
            bytes[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
            Bytes::from(bytes)
        }
        "unknown-flags" => with(6, 0x80),
        "unknown-kind" => with(5, 0x7f),
        other => unreachable!("no case {other}"),
    }
}

/// Stores `value` raw under the key a `GET` of `path` uses.
async fn plant(h: &Harness, path: &str, value: Bytes) -> reqwest_caching::CacheKey {
    let url = h.origin.url(path);
    let key = h.handle.key_for(&Method::GET, &url).expect("valid URL");
    let meta = EntryMeta::new(key, url, SystemTime::now(), None);
    h.handle
        .store()
        .put(StoredEntry::new(meta, value))
        .await
        .expect("plant an entry");
    key
}

#[tokio::test]
async fn a_planted_valid_entry_is_served() {
    // The control for the tests below: planting works, and a readable entry is a hit.
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        plant(
            &h,
            "/planted/control",
            valid_entry(&h.origin.url("/planted/control")),
        )
        .await;
        let (body, info) = h.fetch("/planted/control").await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body.as_bytes(), PLANTED_BODY, "{backend:?}");
        assert_eq!(h.origin.hits("/planted/control"), 0, "{backend:?}");
    }
}

#[tokio::test]
async fn foreign_old_future_and_torn_entries_are_refetched_and_replaced() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        for case in UNREADABLE {
            let path = format!("/planted/{case}");
            let key = plant(&h, &path, unreadable(case, &h.origin.url(&path))).await;

            let (body, info) = h.fetch(&path).await;
            assert!(
                !info.from_cache,
                "{backend:?} {case}: unreadable entry served"
            );
            assert_eq!(body, format!("{path} #1"), "{backend:?} {case}");
            assert_eq!(
                h.origin.hits(&path),
                1,
                "{backend:?} {case}: reached the origin"
            );
            assert!(info.stored, "{backend:?} {case}: {info:?}");
            // The planted bytes were replaced by a readable entry of the fresh response.
            let stored = h
                .handle
                .store()
                .get(&key)
                .await
                .expect("store read")
                .unwrap_or_else(|| panic!("{backend:?} {case}: nothing stored"));
            let decoded = codec::decode(&stored.value)
                .unwrap_or_else(|e| panic!("{backend:?} {case}: stored entry unreadable: {e}"));
            assert_eq!(decoded.body, body.as_bytes(), "{backend:?} {case}");

            let (again, info) = h.fetch(&path).await;
            assert!(info.from_cache, "{backend:?} {case}: {info:?}");
            assert_eq!(again, body, "{backend:?} {case}");
            assert_eq!(h.origin.hits(&path), 1, "{backend:?} {case}: a hit");
        }
        assert_eq!(
            h.handle.stats().errors,
            0,
            "{backend:?}: unreadable entries are misses, not store errors"
        );
    }
}

#[tokio::test]
async fn an_unreadable_entry_is_deleted_on_read_through_the_handle() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let key = plant(&h, "/planted/handle", Bytes::from_static(b"garbage")).await;
        assert!(h.handle.get(&key).await.expect("no store error").is_none());
        assert!(
            h.handle
                .store()
                .get(&key)
                .await
                .expect("store read")
                .is_none(),
            "{backend:?}: the unreadable entry was deleted"
        );
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
    }
}

/// A postcard varint (LEB128), as the entry head writes lengths and counts.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// An entry for a `GET` of `url` whose response headers are `pairs`, written byte by byte:
/// no `HeaderMap` can hold 25,000 names, so `codec::encode` cannot write it.
fn entry_with_header_pairs(url: &str, pairs: &[(String, Vec<u8>)]) -> Bytes {
    let text = |s: &[u8], out: &mut Vec<u8>| {
        varint(s.len(), out);
        out.extend_from_slice(s);
    };
    let mut head = vec![0xc8, 0x01, 11]; // status 200, HTTP/1.1
    varint(pairs.len(), &mut head);
    for (name, value) in pairs {
        text(name.as_bytes(), &mut head);
        text(value, &mut head);
    }
    text(url.as_bytes(), &mut head); // final URL
    text(b"GET", &mut head);
    text(url.as_bytes(), &mut head);
    head.push(0); // no request headers
    let mut bytes = b"RQCE".to_vec();
    bytes.extend_from_slice(&[codec::FORMAT_VERSION, 0, 0]);
    bytes.extend_from_slice(&(head.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(PLANTED_BODY.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(PLANTED_BODY);
    Bytes::from(bytes)
}

/// `http` panics past 24,576 header names: an entry holding more used to panic the decoder
/// before it could be deleted, so every request for its URL panicked. Now it is a miss,
/// refetched and replaced; and 25,000 values of one name (legal) are served.
#[tokio::test]
async fn entries_with_more_headers_than_http_holds_never_panic() {
    let many_names: Vec<(String, Vec<u8>)> = (0..25_000)
        .map(|i| (format!("x-{i}"), Vec::new()))
        .collect();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = "/planted/many-names";
        let url = h.origin.url(path);
        let key = plant(&h, path, entry_with_header_pairs(&url, &many_names)).await;
        let (body, info) = h.fetch(path).await;
        assert!(!info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(body, format!("{path} #1"), "{backend:?}");
        assert_eq!(h.origin.hits(path), 1, "{backend:?}: reached the origin");
        let stored = h
            .handle
            .store()
            .get(&key)
            .await
            .expect("store read")
            .unwrap_or_else(|| panic!("{backend:?}: nothing stored"));
        let decoded = codec::decode(&stored.value)
            .unwrap_or_else(|e| panic!("{backend:?}: stored entry unreadable: {e}"));
        assert_eq!(decoded.body, body.as_bytes(), "{backend:?}: replaced");
        let (again, info) = h.fetch(path).await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(again, body, "{backend:?}");
        assert_eq!(h.origin.hits(path), 1, "{backend:?}: a hit");

        // One name, 25,000 values: a legal map, more pairs than http preallocates.
        let path = "/planted/many-values";
        let url = h.origin.url(path);
        let one_name = vec![("x-rep".to_owned(), b"v".to_vec()); 25_000];
        plant(&h, path, entry_with_header_pairs(&url, &one_name)).await;
        let response = h.get(path).send().await.expect("request succeeds");
        assert!(response.from_cache(), "{backend:?}");
        assert_eq!(response.headers().get_all("x-rep").iter().count(), 25_000);
        assert_eq!(response.bytes().await.expect("body"), PLANTED_BODY);
        assert_eq!(h.origin.hits(path), 0, "{backend:?}: served from the entry");
        assert_eq!(h.handle.stats().errors, 0, "{backend:?}");
    }
}

/// An entry may hold as many header names as `http` allows (24,576). A `304` then adds a
/// name (its `x-refreshed`): that used to panic in `HeaderMap::append` while merging. Now the
/// fields that fit are merged and the entry is served, revalidated.
#[tokio::test]
async fn a_304_for_an_entry_already_holding_every_name_http_allows_never_panics() {
    let mut full: Vec<(String, Vec<u8>)> = vec![("etag".to_owned(), b"\"v1\"".to_vec())];
    full.extend((1..24_576).map(|i| (format!("x-{i}"), Vec::new())));
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = "/etag/full";
        let url = h.origin.url(path);
        let key = h.handle.key_for(&Method::GET, &url).expect("valid URL");
        let now = SystemTime::now();
        let meta = EntryMeta::new(key, url.as_str(), now, Some(now + Duration::from_secs(60)));
        let value = entry_with_header_pairs(&url, &full);
        let entry = StoredEntry::new(meta, value);
        h.handle.store().put(entry).await.expect("plant an entry");
        h.clock.advance(Duration::from_secs(3600));

        let response = h.get(path).send().await.expect("request succeeds");
        let info = response.cache_info().cloned().expect("cache info");
        assert!(info.revalidated, "{backend:?}: {info:?}");
        assert_eq!(response.headers()["etag"], "\"v1\"", "{backend:?}");
        assert!(response.headers().contains_key("x-24575"), "{backend:?}");
        assert_eq!(response.bytes().await.expect("body"), PLANTED_BODY);
        assert_eq!(
            h.origin.hits(path),
            1,
            "{backend:?}: one conditional request"
        );
        assert_eq!(
            h.origin.last(path).headers["if-none-match"],
            "\"v1\"",
            "{backend:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed origin responses
// ---------------------------------------------------------------------------------------------

/// What a caller sees of a response: everything but `Date` (the origin's clock may tick
/// between two requests), the body bytes that arrived, and how it failed if it did.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    version: Version,
    /// In order, repeated names kept.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    error: Option<String>,
}

impl Seen {
    fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn header(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// An error as the caller can tell it apart: its kind and its root cause.
fn describe(error: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = error;
    while let Some(source) = root.source() {
        root = source;
    }
    format!(
        "builder={} request={} connect={} body={} decode={} timeout={} status={:?} root={root}",
        error.is_builder(),
        error.is_request(),
        error.is_connect(),
        error.is_body(),
        error.is_decode(),
        error.is_timeout(),
        error.status(),
    )
}

/// Sends and reads the response chunk by chunk until its end or its failure.
async fn see(result: Result<reqwest::Response, reqwest::Error>) -> (Seen, bool) {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let seen = Seen {
                status: 0,
                version: Version::HTTP_11,
                headers: Vec::new(),
                body: Vec::new(),
                error: Some(describe(&error)),
            };
            return (seen, false);
        }
    };
    let from_cache = response.from_cache();
    let mut seen = Seen {
        status: response.status().as_u16(),
        version: response.version(),
        headers: response
            .headers()
            .iter()
            .filter(|(name, _)| *name != http::header::DATE)
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
        error: None,
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => seen.body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => {
                seen.error = Some(describe(&error));
                break;
            }
        }
    }
    (seen, from_cache)
}

/// Through the cache: a middleware error would be the cache's own, which must never happen.
async fn see_cached(request: RequestBuilder) -> (Seen, bool) {
    let result = request.send().await.map_err(|error| match error {
        reqwest_caching::reqwest_middleware::Error::Reqwest(error) => error,
        other => panic!("the cache failed the request itself: {other:?}"),
    });
    see(result).await
}

async fn see_plain(client: &reqwest::Client, url: &str) -> Seen {
    see(client.get(url).send().await).await.0
}

/// A cached client over the harness's store, on top of `client` (the harness's own uses
/// `reqwest::Client::new()`), with `configure` applied.
fn cached_client(
    h: &Harness,
    client: reqwest::Client,
    configure: impl FnOnce(
        reqwest_caching::CacheMiddlewareBuilder,
    ) -> reqwest_caching::CacheMiddlewareBuilder,
) -> (ClientWithMiddleware, reqwest_caching::CacheHandle) {
    let cache =
        configure(crate::support::patient_builder().shared_store(Arc::clone(h.handle.store())))
            .build()
            .expect("build cache");
    let handle = cache.handle();
    (cache.into_client(client), handle)
}

/// Asserts a broken response reaches the caller through the cache exactly as without it, is
/// not stored, and so that the next request for it reaches the origin again.
async fn assert_passed_on_and_not_stored(
    what: &str,
    client: &ClientWithMiddleware,
    handle: &reqwest_caching::CacheHandle,
    plain: &reqwest::Client,
    url: &str,
    hits: impl Fn() -> usize,
) {
    let expected = see_plain(plain, url).await;
    assert!(
        expected.failed(),
        "{what}: the origin really fails: {expected:?}"
    );
    let stored = handle.count().await.unwrap();
    let before = hits();
    let (seen, from_cache) = see_cached(client.get(url)).await;
    assert!(!from_cache, "{what}");
    assert_eq!(seen, expected, "{what}: what the caller sees");
    assert_eq!(hits(), before + 1, "{what}");
    assert_eq!(
        handle.count().await.unwrap(),
        stored,
        "{what}: nothing (half) stored"
    );
    // Nothing was stored, so the next request goes to the origin again and fails alike.
    let (again, from_cache) = see_cached(client.get(url)).await;
    assert!(!from_cache, "{what}");
    assert_eq!(again, expected, "{what}: the second time");
    assert_eq!(hits(), before + 2, "{what}: reached the origin again");
    assert_eq!(handle.count().await.unwrap(), stored, "{what}");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_passed_on_and_not_stored() {
    let plain = reqwest::Client::new();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let (client, handle) = cached_client(&h, reqwest::Client::new(), |b| b);
        for path in [
            // One byte short, then the connection closes: read whole, so the cache sees it.
            "/short/11/10".to_owned(),
            "/short/100000/1000".to_owned(),
            // Announced over the cache's body limit: streamed through untouched.
            format!("/short/{}/10", 1u64 << 50),
            // Absurd: more than any body can be (hyper refuses the response).
            format!("/short/{}/10", u64::MAX),
        ] {
            let what = format!("{backend:?} {path}");
            let url = h.origin.url(&path);
            let hits = || h.origin.hits(path.split('?').next().unwrap_or_default());
            assert_passed_on_and_not_stored(&what, &client, &handle, &plain, &url, hits).await;
        }
    }
}

#[tokio::test]
async fn a_chunked_body_failing_midway_is_passed_on_and_not_stored() {
    let plain = reqwest::Client::new();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        // The default body limit (read whole, then fails), and a small one (over the limit,
        // then fails while streaming through).
        for limit in [None, Some(1024)] {
            let (client, handle) = cached_client(&h, reqwest::Client::new(), |b| match limit {
                Some(limit) => b.max_body_size(limit),
                None => b,
            });
            for path in ["/cut/0", "/cut/5000"] {
                let what = format!("{backend:?} {path} limit {limit:?}");
                let url = h.origin.url(path);
                let hits = || h.origin.hits(path);
                assert_passed_on_and_not_stored(&what, &client, &handle, &plain, &url, hits).await;
            }
        }
    }
}

/// A response served live and then from the cache is what a plain client sees, header for
/// header, byte for byte.
async fn assert_cached_faithfully(
    what: &str,
    client: &ClientWithMiddleware,
    plain: &reqwest::Client,
    url: &str,
) -> Seen {
    let expected = see_plain(plain, url).await;
    assert!(!expected.failed(), "{what}: {:?}", expected.error);
    let (live, from_cache) = see_cached(client.get(url)).await;
    assert!(!from_cache, "{what}");
    let (hit, from_cache) = see_cached(client.get(url)).await;
    assert!(from_cache, "{what}: the second request is a hit");
    // The body counts requests: compare it to the cached client's first answer.
    let without_body = |seen: &Seen| Seen {
        body: Vec::new(),
        headers: seen.headers.clone(),
        error: seen.error.clone(),
        ..*seen
    };
    assert_eq!(without_body(&live), without_body(&expected), "{what}: live");
    // A hit carries its current age (RFC 9111 §5.1; some clients here run on the system
    // clock, so only its form is checked); every other field is as it came.
    let mut hit = hit;
    let ages: Vec<&[u8]> = hit
        .headers
        .iter()
        .filter(|(name, _)| name == "age")
        .map(|(_, value)| value.as_slice())
        .collect();
    assert!(
        matches!(ages.as_slice(), [age] if !age.is_empty() && age.iter().all(u8::is_ascii_digit)),
        "{what}: one Age, a number: {ages:?}"
    );
    hit.headers.retain(|(name, _)| name != "age");
    assert_eq!(hit, live, "{what}: from the cache");
    hit
}

#[tokio::test]
async fn many_response_headers_pass_through_and_round_trip() {
    let plain = reqwest::Client::new();
    // hyper's HTTP/1 client takes at most 100 response headers unless told otherwise.
    let roomy = || {
        reqwest::Client::builder()
            .http1_max_headers(10_000)
            .build()
            .expect("client")
    };
    let roomy_plain = roomy();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        // Within hyper's default limit (with Content-Type, Content-Length and Date).
        for path in ["/many-headers/90", "/many-values/90"] {
            let what = format!("{backend:?} {path}");
            let seen =
                assert_cached_faithfully(&what, &h.client, &plain, &h.origin.url(path)).await;
            assert!(seen.headers.len() >= 92, "{what}: {}", seen.headers.len());
        }
        assert_eq!(h.origin.hits("/many-headers/90"), 2, "{backend:?}");

        // Over it: the request fails without the cache, and through it alike.
        let url = h.origin.url("/many-headers/5000");
        let hits = || h.origin.hits("/many-headers/5000");
        let what = format!("{backend:?} 5000 headers, default client");
        assert_passed_on_and_not_stored(&what, &h.client, &h.handle, &plain, &url, hits).await;

        // A client that accepts them: 5000 names, and one name with 5000 values, cached and
        // served back in order.
        let (client, handle) = cached_client(&h, roomy(), |b| b);
        for path in ["/many-headers/5000", "/many-values/5000"] {
            let what = format!("{backend:?} {path}");
            let seen =
                assert_cached_faithfully(&what, &client, &roomy_plain, &h.origin.url(path)).await;
            assert!(seen.headers.len() >= 5002, "{what}: {}", seen.headers.len());
        }
        let values = &handle
            .get_url(&h.origin.url("/many-values/5000"))
            .await
            .unwrap()
            .expect("stored")
            .response
            .headers;
        let values: Vec<String> = values
            .get_all("x-rep")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        assert_eq!(values, expected, "{backend:?}: stored in order");
    }
}

#[tokio::test]
async fn obs_text_header_values_round_trip_byte_exact() {
    let plain = reqwest::Client::new();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let url = h.origin.url("/obs-text/a");
        let seen = assert_cached_faithfully(&format!("{backend:?}"), &h.client, &plain, &url).await;
        // Byte for byte what the origin sent, repeated values in order.
        let mut names: Vec<&str> = OBS_TEXT.iter().map(|(name, _)| *name).collect();
        names.dedup();
        for name in names {
            let sent: Vec<&[u8]> = OBS_TEXT
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(seen.header(name), sent, "{backend:?}: {name}");
        }
        assert_eq!(
            seen.header("x-obs-all"),
            [obs_text_all().as_slice()],
            "{backend:?}"
        );
        // And so it is stored.
        let stored = h.handle.get_url(&url).await.unwrap().expect("stored");
        assert_eq!(
            stored.response.headers["x-obs-all"].as_bytes(),
            obs_text_all().as_slice(),
            "{backend:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Responses no HTTP server library would write
// ---------------------------------------------------------------------------------------------

/// A loopback server answering every request with the same raw bytes, then closing the
/// connection. It serves at most 16 connections and stops after 30 s.
struct RawOrigin {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl RawOrigin {
    fn start(response: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut served = 0;
            while served < 16 && Instant::now() < deadline {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                served += 1;
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                // Read the request head.
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(response);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/raw", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn responses_hyper_refuses_fail_alike_through_the_cache() {
    let cases: &[(&str, &[u8])] = &[
        (
            "invalid Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "conflicting Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "overflowing Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "negative Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "bad chunk size",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\nzz\r\n",
        ),
        (
            "NUL in a header value",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Bad: a\x00b\r\nConnection: close\r\n\r\nhello",
        ),
    ];
    let plain = reqwest::Client::new();
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        for (case, response) in cases {
            let origin = RawOrigin::start(response);
            let what = format!("{backend:?} {case}");
            let hits = || origin.requests();
            assert_passed_on_and_not_stored(
                &what,
                &h.client,
                &h.handle,
                &plain,
                &origin.url(),
                hits,
            )
            .await;
        }
    }
}

//! RFC 9111 private-cache rules, one test per rule, each named after its section: in every
//! mode where the rule applies, and in strict mode (`strict_rfc9111(true)`).

use std::time::Duration;

use http::HeaderMap;
use reqwest_caching::reqwest_middleware::RequestBuilder;
use reqwest_caching::{CacheInfo, CacheMiddlewareBuilder, CacheResponseExt, Expiration};

use crate::support::{BACKENDS, Backend, Harness, custom, http_date};

/// What came back: status, headers, body text and the cache's info.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
    info: CacheInfo,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII"))
    }

    fn age(&self) -> u64 {
        self.header("age")
            .expect("an Age header")
            .parse()
            .expect("Age is a number")
    }
}

async fn send(request: RequestBuilder) -> Answer {
    let response = request.send().await.expect("request succeeds");
    let info = response.cache_info().cloned().expect("CacheInfo");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
        info,
    }
}

async fn strict(backend: Backend) -> Harness {
    Harness::with(backend, |b: CacheMiddlewareBuilder| b.strict_rfc9111(true)).await
}

async fn following(backend: Backend) -> Harness {
    Harness::with(backend, |b: CacheMiddlewareBuilder| b.cache_control(true)).await
}

/// RFC 9111 §4 and §5.1: a response served from the cache carries its current age (§4.2.3),
/// in every mode; an `Age` list counts as its first value.
#[tokio::test]
async fn served_responses_carry_their_current_age_rfc9111_section_5_1() {
    for &backend in BACKENDS {
        for h in [Harness::new(backend).await, following(backend).await] {
            let path = custom("age", &["cache-control: max-age=600", "age: 30"]);
            let first = send(h.get(&path)).await;
            assert_eq!(first.header("age"), Some("30"), "{backend:?}: as received");
            h.clock.advance(Duration::from_secs(10));
            let hit = send(h.get(&path)).await;
            assert!(hit.info.from_cache, "{backend:?}");
            // 30 on arrival, 10 in the cache (the clock's sub-second part may add one).
            assert!((40..=41).contains(&hit.age()), "{backend:?}: {}", hit.age());
            let plain = send(h.get(&custom("plain", &["cache-control: max-age=600"]))).await;
            assert!(
                plain.header("age").is_none(),
                "{backend:?}: the origin sent none"
            );
            h.clock.advance(Duration::from_secs(5));
            let hit = send(h.get(&custom("plain", &["cache-control: max-age=600"]))).await;
            assert!((5..=6).contains(&hit.age()), "{backend:?}: {}", hit.age());
            assert_eq!(h.origin.hits("/custom/age"), 1, "{backend:?}");
            assert_eq!(h.origin.hits("/custom/plain"), 1, "{backend:?}");
        }
        // `7200, 0` is 7200: past a max-age of 3600, so stale on arrival.
        let h = following(backend).await;
        let listed = custom("listed", &["cache-control: max-age=3600", "age: 7200, 0"]);
        send(h.get(&listed)).await;
        let again = send(h.get(&listed)).await;
        assert!(!again.info.from_cache, "{backend:?}: 7200 s old, not fresh");
        assert_eq!(h.origin.hits("/custom/listed"), 2, "{backend:?}");
    }
}

/// RFC 9111 §4.3.4: after a `304` the served response carries the age of the refreshed
/// entry, not the stored one.
#[tokio::test]
async fn a_revalidated_response_carries_its_new_age_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = following(backend).await;
        let path = custom(
            "reval",
            &["cache-control: max-age=10", "etag: \"r\"", "age: 5"],
        );
        send(h.get(&path)).await;
        h.clock.advance(Duration::from_secs(100));
        let revalidated = send(h.get(&path)).await;
        assert!(revalidated.info.revalidated, "{backend:?}");
        assert_eq!(
            h.origin.last("/custom/reval").headers["if-none-match"],
            "\"r\""
        );
        // The 304 carries `Age: 5` (the route repeats its headers) and a current Date.
        assert_eq!(revalidated.age(), 5, "{backend:?}: not 5 + 100");
        // And it ages from there.
        h.clock.advance(Duration::from_secs(3));
        let hit = send(h.get(&path)).await;
        assert!(hit.info.from_cache && !hit.info.revalidated, "{backend:?}");
        assert!((8..=9).contains(&hit.age()), "{backend:?}: {}", hit.age());
        assert_eq!(h.origin.hits("/custom/reval"), 2, "{backend:?}");
    }
}

/// RFC 9111 §4.3.4: a `304` naming another representation (its strong `ETag` not the stored
/// one's) confirms nothing: the stored body is not served, the request goes again without
/// conditions, and its answer is served and stored. A later `304` naming the new tag
/// confirms the new entry.
#[tokio::test]
async fn a_304_with_another_tag_does_not_confirm_the_stored_response_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let first = send(h.get("/retagged/t")).await;
        assert_eq!(first.body, "/retagged/t #1");
        let second = send(h.get("/retagged/t")).await;
        assert_eq!(
            second.body, "/retagged/t #3",
            "{backend:?}: stored body served"
        );
        assert!(
            !second.info.from_cache && second.info.stored,
            "{backend:?}: {:?}",
            second.info
        );
        assert_eq!(second.header("etag"), Some("\"v2\""));
        h.origin
            .assert_sent_again_unconditional(&format!("{backend:?}"));
        let third = send(h.get("/retagged/t")).await;
        assert!(
            third.info.from_cache && third.info.revalidated,
            "{backend:?}"
        );
        assert_eq!(third.body, "/retagged/t #3", "{backend:?}");
        assert_eq!(
            h.origin.last("/retagged/t").headers["if-none-match"],
            "\"v2\""
        );
        assert_eq!(h.origin.hits("/retagged/t"), 4, "{backend:?}");
    }
}

/// A `304` whose tag matches the stored one only weakly (nginx: `W/"g"` on the 200 of a body
/// it compressed, the strong `"g"` in its 304s) confirms the entry, and the stored tag stays
/// the one that names the stored body.
#[tokio::test]
async fn a_304_matching_the_stored_tag_weakly_keeps_the_stored_tag_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let path = "/custom/weak?h=ETag:W/%22g%22&n=ETag:%22g%22";
        let first = send(h.get(path)).await;
        assert_eq!(first.header("etag"), Some("W/\"g\""));
        let second = send(h.get(path)).await;
        assert!(
            second.info.revalidated && second.info.from_cache,
            "{backend:?}"
        );
        assert_eq!(second.body, first.body, "{backend:?}");
        assert_eq!(second.header("etag"), Some("W/\"g\""), "{backend:?}");
        let third = send(h.get(path)).await;
        assert!(third.info.revalidated, "{backend:?}");
        assert_eq!(
            h.origin.last("/custom/weak").headers["if-none-match"],
            "W/\"g\""
        );
        assert_eq!(h.origin.hits("/custom/weak"), 3, "{backend:?}");
    }
}

/// A `304` whose tag matches only weakly describes another representation than the stored
/// body: its `Content-Encoding` (or type, language, location) is not merged into the entry,
/// whose body it does not describe; its other fields are.
#[tokio::test]
async fn a_weakly_matching_304_does_not_describe_the_stored_body_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Immediately)).await;
        let path =
            "/custom/coded?h=ETag:%22x%22&n=ETag:W/%22x%22&n=Content-Encoding:gzip&n=X-Renewed:yes";
        let first = send(h.get(path)).await;
        assert!(first.header("content-encoding").is_none());
        for _ in 0..2 {
            let revalidated = send(h.get(path)).await;
            assert!(revalidated.info.revalidated, "{backend:?}");
            assert_eq!(revalidated.body, first.body, "{backend:?}");
            assert_eq!(revalidated.header("content-encoding"), None, "{backend:?}");
            assert_eq!(revalidated.header("etag"), Some("\"x\""), "{backend:?}");
            assert_eq!(revalidated.header("x-renewed"), Some("yes"), "{backend:?}");
        }
        assert_eq!(h.origin.hits("/custom/coded"), 3, "{backend:?}");
    }
}

/// A stale cached `POST` goes to the origin unconditional: an origin answers a `POST` whose
/// `If-None-Match` matches with `412`, not `304` (RFC 9110 §13.1.2), and does not perform it,
/// so a conditional `POST` would fail until the entry was evicted.
#[tokio::test]
async fn a_stale_post_is_sent_without_conditions_rfc9110_section_13_1_2() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.expire_after(Expiration::Immediately)
                .allowable_methods([http::Method::GET, http::Method::POST])
        })
        .await;
        let url = h.origin.url("/retagged/post");
        let first = send(h.client.post(&url).body("q")).await;
        assert!(first.info.stored, "{backend:?}: {:?}", first.info);
        let second = send(h.client.post(&url).body("q")).await;
        assert_eq!(h.origin.hits("/retagged/post"), 2, "{backend:?}: sent once");
        let sent = h.origin.last("/retagged/post").headers;
        assert!(!sent.contains_key("if-none-match"), "{backend:?}: {sent:?}");
        assert_eq!(second.status, 200, "{backend:?}");
        assert_eq!(second.body, "/retagged/post #2", "{backend:?}");
        assert!(!second.info.from_cache && second.info.stored, "{backend:?}");
    }
}

/// RFC 9111 §5.2.1: request directives are honoured without `cache_control(true)`.
#[tokio::test]
async fn request_directives_are_honoured_in_the_default_mode_rfc9111_section_5_2_1() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("r", &["etag: \"r\""]);
        send(h.get(&path)).await;
        let no_cache = send(h.get(&path).header("cache-control", "no-cache")).await;
        assert!(
            no_cache.info.revalidated,
            "{backend:?}: no-cache validates first"
        );
        assert_eq!(h.origin.last("/custom/r").headers["if-none-match"], "\"r\"");
        h.clock.advance(Duration::from_secs(60));
        let max_age = send(h.get(&path).header("cache-control", "max-age=30")).await;
        assert!(
            !max_age.info.from_cache || max_age.info.revalidated,
            "{backend:?}"
        );
        assert_eq!(
            h.origin.hits("/custom/r"),
            3,
            "{backend:?}: each reached the origin"
        );
        assert!(send(h.get(&path)).await.info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/r"), 3, "{backend:?}");

        let other = custom("ns", &[]);
        let no_store = send(h.get(&other).header("cache-control", "no-store")).await;
        assert!(!no_store.info.stored, "{backend:?}: request no-store");
        let only = send(h.get(&other).header("cache-control", "only-if-cached")).await;
        assert_eq!(only.status, 504, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/ns"), 1, "{backend:?}");
    }
}

/// RFC 9111 §3.1: `Connection`, the fields it lists and the other connection-specific
/// fields are not stored, so a hit never replays them.
#[tokio::test]
async fn connection_fields_are_not_stored_rfc9111_section_3_1() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom(
            "conn",
            &[
                "connection: x-a, X-B",
                "x-a: 1",
                "x-b: 2",
                "x-c: 3",
                "proxy-authenticate: Basic",
            ],
        );
        let live = send(h.get(&path)).await;
        assert_eq!(
            live.header("x-a"),
            Some("1"),
            "{backend:?}: the caller gets them live"
        );
        let hit = send(h.get(&path)).await;
        assert!(hit.info.from_cache, "{backend:?}");
        for name in ["connection", "x-a", "x-b", "proxy-authenticate"] {
            assert!(hit.header(name).is_none(), "{backend:?}: {name} replayed");
        }
        assert_eq!(hit.header("x-c"), Some("3"), "{backend:?}");
        let stored = h
            .handle
            .get_url(&h.origin.url(&path))
            .await
            .unwrap()
            .expect("stored");
        assert!(!stored.response.headers.contains_key("x-a"), "{backend:?}");
        assert_eq!(h.origin.hits("/custom/conn"), 1, "{backend:?}");
    }
}

/// RFC 9111 §5.2.2.4: `no-cache="field"` keeps only that field from reuse: the rest of the
/// response is served while fresh.
#[tokio::test]
async fn qualified_no_cache_omits_the_listed_fields_rfc9111_section_5_2_2_4() {
    for &backend in BACKENDS {
        let h = following(backend).await;
        let path = custom(
            "qnc",
            &[
                "cache-control: no-cache=\"x-a\", max-age=600",
                "x-a: 1",
                "x-b: 2",
            ],
        );
        send(h.get(&path)).await;
        let hit = send(h.get(&path)).await;
        assert!(hit.info.from_cache, "{backend:?}: reused while fresh");
        assert!(hit.header("x-a").is_none(), "{backend:?}");
        assert_eq!(hit.header("x-b"), Some("2"), "{backend:?}");
        assert_eq!(h.origin.hits("/custom/qnc"), 1, "{backend:?}");
    }
}

/// RFC 9111 §4.3.2 (RFC 9110 §13.1.1, §13.1.3): a caller's own `If-None-Match` (strong,
/// weak, several tags) or `If-Modified-Since` that a fresh stored response satisfies is
/// answered with a `304` the cache makes, in every mode.
#[tokio::test]
async fn a_callers_conditional_request_gets_a_304_from_the_cache_rfc9111_section_4_3_2() {
    for &backend in BACKENDS {
        for h in [Harness::new(backend).await, strict(backend).await] {
            let modified = format!("last-modified: {}", http_date(&h.clock, -3600));
            let path = custom(
                "c",
                &["cache-control: max-age=600", "etag: W/\"v1\"", &modified],
            );
            send(h.get(&path)).await;
            for tags in ["W/\"v1\"", "\"v1\"", "\"x\", W/\"v1\", \"y\"", "*"] {
                let answer = send(h.get(&path).header("if-none-match", tags)).await;
                assert_eq!(answer.status, 304, "{backend:?}: {tags}");
                assert!(answer.body.is_empty(), "{backend:?}");
                assert!(answer.info.from_cache && answer.info.generated_by_cache);
                assert_eq!(answer.header("etag"), Some("W/\"v1\""), "{backend:?}");
                assert_eq!(answer.header("cache-control"), Some("max-age=600"));
                assert!(answer.header("age").is_some(), "{backend:?}");
            }
            let other = send(h.get(&path).header("if-none-match", "\"v2\"")).await;
            assert_eq!(
                other.status, 200,
                "{backend:?}: another version: the whole response"
            );
            assert!(
                other.info.from_cache && !other.body.is_empty(),
                "{backend:?}"
            );
            let since = http_date(&h.clock, -10);
            let answer = send(h.get(&path).header("if-modified-since", &since)).await;
            assert_eq!(answer.status, 304, "{backend:?}: not modified since");
            let before = http_date(&h.clock, -7200);
            let answer = send(h.get(&path).header("if-modified-since", &before)).await;
            assert_eq!(answer.status, 200, "{backend:?}: modified since");
            let head = send(
                h.client
                    .head(h.origin.url(&path))
                    .header("if-none-match", "W/\"v1\""),
            )
            .await;
            assert_eq!(head.status, 304, "{backend:?}: HEAD too");
            assert_eq!(
                h.origin.hits("/custom/c"),
                1,
                "{backend:?}: all from the cache"
            );
        }
    }
}

/// RFC 9111 §4.2.2: in strict mode a response with only `Last-Modified` is fresh for 10 % of
/// its age, for heuristically cacheable codes and any code marked `public`; other codes
/// without freshness are not stored at all (§3).
#[tokio::test]
async fn strict_heuristic_freshness_rfc9111_section_4_2_2() {
    for &backend in BACKENDS {
        let h = strict(backend).await;
        let modified = format!("last-modified: {}", http_date(&h.clock, -1000));
        let ok = custom("h200", &[&modified]);
        let public = custom("h599", &[&modified, "cache-control: public"]);
        let created = custom("h201", &[&modified]);
        send(h.get(&ok)).await;
        h.origin.override_status(Some(599));
        send(h.get(&public)).await;
        h.origin.override_status(Some(201));
        let first = send(h.get(&created)).await;
        assert!(
            !first.info.stored,
            "{backend:?}: 201 has no freshness and no heuristic"
        );
        h.clock.advance(Duration::from_secs(90));
        h.origin.override_status(None);
        assert!(
            send(h.get(&ok)).await.info.from_cache,
            "{backend:?}: fresh at 90 s"
        );
        let hit = send(h.get(&public)).await;
        assert!(hit.info.from_cache, "{backend:?}: public 599");
        assert_eq!(hit.status, 599, "{backend:?}");
        assert!(!send(h.get(&created)).await.info.from_cache, "{backend:?}");
        h.clock.advance(Duration::from_secs(11));
        // Stale at 101 s: validated with its Last-Modified (the origin answers 304).
        let again = send(h.get(&ok)).await;
        assert!(again.info.revalidated, "{backend:?}: stale at 101 s");
        assert_eq!(h.origin.hits("/custom/h200"), 2, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/h599"), 1, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/h201"), 2, "{backend:?}");
    }
}

/// RFC 9111 §4.2 and §4.3.1: in strict mode a response with no freshness at all is stored
/// but stale: the next use revalidates it (the default `Expiration::Never` does not apply),
/// while one with `Last-Modified` in the same cache is fresh by the heuristic (§4.2.2).
#[tokio::test]
async fn strict_no_freshness_is_stored_but_stale_beside_heuristics_rfc9111_section_4_2() {
    for &backend in BACKENDS {
        let h = strict(backend).await;
        let path = custom("stale", &["etag: \"s\""]);
        assert!(send(h.get(&path)).await.info.stored, "{backend:?}");
        let again = send(h.get(&path)).await;
        assert!(again.info.revalidated, "{backend:?}: validated before use");
        assert_eq!(
            h.origin.last("/custom/stale").headers["if-none-match"],
            "\"s\""
        );
        assert_eq!(h.origin.hits("/custom/stale"), 2, "{backend:?}");
        let modified = format!("last-modified: {}", http_date(&h.clock, -1000));
        let heuristic = custom("heuristic", &[&modified]);
        send(h.get(&heuristic)).await;
        let hit = send(h.get(&heuristic)).await;
        assert!(
            hit.info.from_cache && !hit.info.revalidated,
            "{backend:?}: heuristic"
        );
        assert_eq!(h.origin.hits("/custom/heuristic"), 1, "{backend:?}");
    }
}

/// RFC 9111 §3: in strict mode any final status is stored with explicit freshness, whatever
/// `allowable_codes` says; `206` and responses without freshness or permission are not.
#[tokio::test]
async fn strict_stores_status_codes_by_rfc9111_section_3() {
    for &backend in BACKENDS {
        let h = strict(backend).await;
        for (code, stored) in [(500, true), (302, true), (299, true), (403, true)] {
            let path = custom(&format!("s{code}"), &["cache-control: max-age=600"]);
            h.origin.override_status(Some(code));
            let first = send(h.get(&path)).await;
            assert_eq!(first.info.stored, stored, "{backend:?}: {code}");
            h.origin.override_status(None);
            let hit = send(h.get(&path)).await;
            assert!(hit.info.from_cache, "{backend:?}: {code}");
            assert_eq!(hit.status, code, "{backend:?}");
            assert_eq!(h.origin.hits(&format!("/custom/s{code}")), 1, "{backend:?}");
        }
        let bare = custom("s503", &[]);
        h.origin.override_status(Some(503));
        assert!(
            !send(h.get(&bare)).await.info.stored,
            "{backend:?}: 503, no freshness"
        );
        h.origin.override_status(None);
    }
}

/// RFC 9110 §5.6.7 (RFC 9111 §5.3): `Expires` in the RFC 850 and asctime forms, and with
/// names in another case, is a valid date.
#[tokio::test]
async fn expires_in_every_http_date_form_rfc9110_section_5_6_7() {
    for &backend in BACKENDS {
        let h = following(backend).await;
        // "Sun, 06 Nov 1994 08:49:37 GMT" split into its parts.
        let imf = http_date(&h.clock, 600);
        let parts: Vec<&str> = imf.split([' ', ',']).filter(|p| !p.is_empty()).collect();
        let [weekday, day, month, year, time, _] = parts[..] else {
            panic!("{imf}")
        };
        let long_day = match weekday {
            "Mon" => "Monday",
            "Tue" => "Tuesday",
            "Wed" => "Wednesday",
            "Thu" => "Thursday",
            "Fri" => "Friday",
            "Sat" => "Saturday",
            _ => "Sunday",
        };
        let asctime = format!(
            "{weekday} {month} {:>2} {time} {year}",
            day.trim_start_matches('0')
        );
        let rfc850 = format!("{long_day}, {day}-{month}-{} {time} GMT", &year[2..]);
        let upper = imf.to_uppercase();
        for (name, expires) in [("asctime", asctime), ("rfc850", rfc850), ("upper", upper)] {
            let path = custom(name, &[&format!("expires: {expires}")]);
            send(h.get(&path)).await;
            h.clock.advance(Duration::from_secs(1));
            let hit = send(h.get(&path)).await;
            assert!(hit.info.from_cache, "{backend:?}: {name}: {expires}");
            assert_eq!(h.origin.hits(&format!("/custom/{name}")), 1, "{backend:?}");
        }
    }
}

/// RFC 9110 §14 (RFC 9111 §3.4): a single byte range is cut from a stored complete response
/// as a `206`; what the cache cannot answer goes to the origin unstored.
#[tokio::test]
async fn range_requests_are_answered_from_a_stored_response_rfc9110_section_14() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = custom("range", &["etag: \"r1\""]);
        let whole = send(h.get(&path)).await.body;
        let len = whole.len();
        for (range, expected) in [
            ("bytes=0-3", &whole[0..4]),
            ("bytes=5-", &whole[5..]),
            ("bytes=-2", &whole[len - 2..]),
        ] {
            let part = send(h.get(&path).header("range", range)).await;
            assert_eq!(part.status, 206, "{backend:?}: {range}");
            assert_eq!(part.body, expected, "{backend:?}: {range}");
            assert!(
                part.info.from_cache && part.info.generated_by_cache,
                "{backend:?}"
            );
            let (start, end) = (len - expected.len(), len - 1);
            let start = if range == "bytes=0-3" { 0 } else { start };
            let end = if range == "bytes=0-3" { 3 } else { end };
            assert_eq!(
                part.header("content-range"),
                Some(format!("bytes {start}-{end}/{len}").as_str()),
                "{backend:?}"
            );
        }
        // A matching If-None-Match is evaluated first (RFC 9110 §13.2.2): a 304.
        let current = send(
            h.get(&path)
                .header("range", "bytes=0-3")
                .header("if-none-match", "\"r1\""),
        )
        .await;
        assert_eq!(current.status, 304, "{backend:?}");
        // If-Range naming another version: the whole stored response.
        let other = send(
            h.get(&path)
                .header("range", "bytes=0-3")
                .header("if-range", "\"r0\""),
        )
        .await;
        assert_eq!((other.status, other.body.as_str()), (200, whole.as_str()));
        assert_eq!(
            h.origin.hits("/custom/range"),
            1,
            "{backend:?}: all from the cache"
        );
        // Several ranges, or one past the end: the origin answers, nothing is stored.
        for range in ["bytes=0-1,3-4", "bytes=9999-"] {
            let passed = send(h.get(&path).header("range", range)).await;
            assert!(
                !passed.info.from_cache && !passed.info.stored,
                "{backend:?}"
            );
        }
        assert_eq!(h.origin.hits("/custom/range"), 3, "{backend:?}");
    }
}

/// RFC 9111 §3.1: a private cache keeps `Set-Cookie` with the stored response; strict mode
/// stores and replays it, the default mode still passes such responses through.
#[tokio::test]
async fn strict_stores_and_replays_set_cookie_rfc9111_section_3_1() {
    for &backend in BACKENDS {
        let h = strict(backend).await;
        let path = custom("cookie", &["cache-control: max-age=600", "set-cookie: a=b"]);
        assert!(send(h.get(&path)).await.info.stored, "{backend:?}");
        let hit = send(h.get(&path)).await;
        assert!(hit.info.from_cache, "{backend:?}");
        assert_eq!(hit.header("set-cookie"), Some("a=b"), "{backend:?}");
        assert_eq!(h.origin.hits("/custom/cookie"), 1, "{backend:?}");

        let default = following(backend).await;
        assert!(!send(default.get(&path)).await.info.stored, "{backend:?}");
        assert!(
            !send(default.get(&path)).await.info.from_cache,
            "{backend:?}"
        );
        assert_eq!(default.origin.hits("/custom/cookie"), 2, "{backend:?}");
    }
}

/// RFC 9110 §12.5.4 (RFC 9111 §4.1): `Accept-Language` lists that state the same preference
/// (the same weights, in another order or spacing) select the same stored variant; equal
/// weights in another order do not (servers break ties by order).
#[tokio::test]
async fn vary_accept_language_orders_by_weight_and_ignores_spacing_rfc9111_section_4_1() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.origin.set_vary("Accept-Language");
        send(
            h.get("/varying/l")
                .header("accept-language", "en, de;q=0.5"),
        )
        .await;
        for same in ["de;q=0.5, en", "en,de;q=0.5", " en , de;q=0.5 "] {
            let hit = send(h.get("/varying/l").header("accept-language", same)).await;
            assert!(hit.info.from_cache, "{backend:?}: {same}");
        }
        // Equal weights in another order are another preference: servers break ties by order.
        for other in ["de, en", "fr"] {
            let miss = send(h.get("/varying/l").header("accept-language", other)).await;
            assert!(!miss.info.from_cache, "{backend:?}: {other}");
        }
        assert_eq!(h.origin.hits("/varying/l"), 3, "{backend:?}");
    }
}

/// RFC 9111 §4 (RFC 9110 §9.3.3): a fresh response to `POST` whose `Content-Location` is the
/// request URL answers a later `GET` of it.
#[tokio::test]
async fn a_post_response_naming_its_url_answers_a_later_get_rfc9111_section_4() {
    for &backend in BACKENDS {
        for h in [following(backend).await, strict(backend).await] {
            let url = h.origin.url("/self-located/p");
            let posted = send(h.client.post(&url).body("x")).await;
            assert!(posted.info.stored, "{backend:?}");
            let get = send(h.client.get(&url)).await;
            assert!(get.info.from_cache, "{backend:?}");
            assert_eq!(get.body, posted.body, "{backend:?}");
            assert_eq!(h.origin.hits("/self-located/p"), 1, "{backend:?}");
        }
        // Without following headers, a POST stays uncached.
        let h = Harness::new(backend).await;
        let url = h.origin.url("/self-located/p");
        send(h.client.post(&url).body("x")).await;
        assert!(
            !send(h.client.get(&url)).await.info.from_cache,
            "{backend:?}"
        );
    }
}

/// A `POST` whose body holds a credential (a JSON `api_key`, a form `client_secret`) does not
/// answer later `GET`s: the body told its requests apart, and a `GET` has none, so another
/// client's `GET` got the credential's answer. One without a credential does, also when
/// headers are matched in keys (its `Content-Type` no part of the `GET`'s key: its answer was
/// stored where no `GET` found it).
#[tokio::test]
async fn a_post_response_answers_gets_only_without_credentials_in_its_body() {
    let h = following(crate::support::Backend::Memory).await;
    for (name, content_type, body) in [
        ("json", "application/json", r#"{"api_key": "A", "q": "x"}"#),
        (
            "form",
            "application/x-www-form-urlencoded",
            "client_secret=A&q=x",
        ),
    ] {
        let url = h.origin.url(&format!("/self-located/{name}"));
        let posted = send(
            h.client
                .post(&url)
                .header("content-type", content_type)
                .body(body),
        )
        .await;
        assert!(!posted.info.stored, "{name}");
        assert!(!send(h.client.get(&url)).await.info.from_cache, "{name}");
    }
    let h = Harness::with(
        crate::support::Backend::Memory,
        |b: CacheMiddlewareBuilder| {
            b.cache_control(true)
                .match_headers(reqwest_caching::MatchHeaders::All)
        },
    )
    .await;
    let url = h.origin.url("/self-located/plain");
    let posted = send(
        h.client
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"q": "x"}"#),
    )
    .await;
    assert!(posted.info.stored);
    assert!(send(h.client.get(&url)).await.info.from_cache);
}

/// RFC 9111 §5.2.2.3: `must-understand` with a status code the cache knows sets `no-store`
/// aside; with one it does not know, nothing is stored.
#[tokio::test]
async fn must_understand_with_a_known_status_is_stored_rfc9111_section_5_2_2_3() {
    for &backend in BACKENDS {
        let h = following(backend).await;
        let path = custom(
            "mu",
            &["cache-control: must-understand, no-store, max-age=600"],
        );
        assert!(send(h.get(&path)).await.info.stored, "{backend:?}");
        assert!(send(h.get(&path)).await.info.from_cache, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/mu"), 1, "{backend:?}");

        let strict = Harness::with(backend, |b| b.strict_rfc9111(true)).await;
        let unknown = custom("mu299", &["cache-control: must-understand, max-age=600"]);
        strict.origin.override_status(Some(299));
        assert!(
            !send(strict.get(&unknown)).await.info.stored,
            "{backend:?}: 299"
        );
        strict.origin.override_status(None);
    }
}

/// RFC 8246 §2: in strict mode a reload (`max-age=0`) of a fresh `immutable` response is
/// answered from the cache; a forced reload (`no-cache`) still validates.
#[tokio::test]
async fn strict_immutable_survives_a_reload_rfc8246_section_2() {
    for &backend in BACKENDS {
        let h = strict(backend).await;
        let path = custom(
            "imm",
            &["cache-control: max-age=600, immutable", "etag: \"i\""],
        );
        send(h.get(&path)).await;
        let reload = send(h.get(&path).header("cache-control", "max-age=0")).await;
        assert!(
            reload.info.from_cache && !reload.info.revalidated,
            "{backend:?}"
        );
        assert_eq!(h.origin.hits("/custom/imm"), 1, "{backend:?}");
        let forced = send(h.get(&path).header("cache-control", "no-cache")).await;
        assert!(forced.info.revalidated, "{backend:?}");
        assert_eq!(h.origin.hits("/custom/imm"), 2, "{backend:?}");
        // Outside strict mode a reload revalidates.
        let h = following(backend).await;
        send(h.get(&path)).await;
        let reload = send(h.get(&path).header("cache-control", "max-age=0")).await;
        assert!(reload.info.revalidated, "{backend:?}");
    }
}

/// RFC 9110 §13.2.1: preconditions apply only when the response would be a 2xx; a stored
/// `404` is served as it is, never turned into a `304` by the cache.
#[tokio::test]
async fn a_stored_error_is_never_answered_with_a_304_rfc9110_section_13_2_1() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b: CacheMiddlewareBuilder| {
            b.allowable_codes([200, 404])
        })
        .await;
        h.origin.override_status(Some(404));
        let path = custom("gone", &["cache-control: max-age=600", "etag: \"g\""]);
        assert_eq!(send(h.get(&path)).await.status, 404);
        let stamp = http_date(&h.clock, 60);
        for (name, value) in [
            ("if-none-match", "\"g\""),
            ("if-none-match", "*"),
            ("if-modified-since", stamp.as_str()),
        ] {
            let answer = send(h.get(&path).header(name, value)).await;
            assert_eq!(answer.status, 404, "{backend:?}: {name}: {value}");
            assert!(answer.info.from_cache, "{backend:?}");
        }
        assert_eq!(h.origin.hits("/custom/gone"), 1, "{backend:?}");
    }
}

/// RFC 9111 §4.2.3, §4.3.4: a revalidation whose refreshed entry is not stored (the request
/// says `no-store`) still answers with the age of the `304`, not the old entry's age plus
/// the time it spent in the cache.
#[tokio::test]
async fn an_unstored_revalidation_carries_the_new_age_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = following(backend).await;
        let path = custom("unstored", &["cache-control: max-age=10", "etag: \"u\""]);
        send(h.get(&path)).await;
        h.clock.advance(Duration::from_secs(3_600));
        let answer = send(h.get(&path).header("cache-control", "no-cache, no-store")).await;
        assert!(answer.info.revalidated, "{backend:?}: {:?}", answer.info);
        assert!(answer.age() <= 1, "{backend:?}: Age {}", answer.age());
        assert_eq!(h.origin.hits("/custom/unstored"), 2, "{backend:?}");
    }
}

/// A `304` whose `Vary` differs from the stored response's is not merged into the entry
/// (RFC 9111 §4.1): renewed, the entry would be served to requests the origin now tells
/// apart. The caller that revalidated gets the merged response; the entry is not kept. So
/// for a response that did not vary and a `304` that says it does.
#[tokio::test]
async fn a_304_changing_vary_does_not_renew_the_entry() {
    for (before, after) in [
        ("accept-language", "accept-language, accept-encoding"),
        ("", "accept-encoding"),
        ("accept-language", "*"),
    ] {
        let h = Harness::with(Backend::Memory, |b| b.expire_after(Duration::from_secs(10))).await;
        let path = "/varying/vary-in-304";
        let get = |encoding: &'static str| {
            crate::support::send(
                h.get(path)
                    .header("accept-language", "en")
                    .header("accept-encoding", encoding),
            )
        };
        h.origin.set_vary(before);
        get("gzip").await;
        h.clock.advance(Duration::from_secs(20));
        h.origin.set_vary(after);
        let (body, info) = get("gzip").await;
        assert!(
            info.revalidated && body.ends_with("#1"),
            "{after}: {info:?}"
        );
        let asked = h.origin.hits(path);
        let (_, info) = get("br").await;
        assert!(!info.from_cache, "{before} -> {after}: {info:?}");
        assert_eq!(h.origin.hits(path), asked + 1, "{before} -> {after}");
    }
}

/// Strict mode: the redirect reqwest followed below the cache is never seen, and its own
/// directives (here `no-store`) are unknown; the final response answers the final URL only,
/// so every request for the redirecting URL reaches the origin.
#[tokio::test]
async fn strict_mode_stores_a_redirected_response_for_its_final_url_only() {
    let h = Harness::with(Backend::Memory, |b| b.strict_rfc9111(true)).await;
    for _ in 0..2 {
        let (_, info) = crate::support::send(h.get("/moved/strict")).await;
        assert!(!info.from_cache, "{info:?}");
    }
    assert_eq!(h.origin.hits("/moved/strict"), 2);
    let target = format!("/custom/strict?{}", crate::origin::MOVED_TARGET_QUERY);
    let (_, info) = crate::support::send(h.get(&target)).await;
    assert!(
        info.from_cache,
        "the final URL is answered from the cache: {info:?}"
    );
    assert_eq!(
        h.origin.hits("/custom/strict"),
        2,
        "followed twice, then a hit"
    );
}

/// A `304` answering the caller's own conditional request renews the stale stored response
/// it names by the same strong tag (§4.3.4): the caller gets its `304`, and the next plain
/// request is served from the cache, with the `304`'s fields. The entry stayed stale, and
/// every later request went to the origin again.
#[tokio::test]
async fn a_304_to_the_callers_own_conditional_renews_the_entry_rfc9111_section_4_3_4() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Duration::from_secs(60))).await;
        h.fetch("/etag/own").await;
        h.clock.advance(Duration::from_secs(120));
        let before = h.handle.stats();
        let own = h.get("/etag/own").header("if-none-match", "\"v1\"");
        let response = own.send().await.unwrap();
        assert_eq!(response.status(), 304, "{backend:?}");
        let after = h.handle.stats();
        assert_eq!(
            (after.misses, after.revalidations),
            (before.misses, before.revalidations + 1),
            "{backend:?}: counted once, as a revalidation"
        );
        assert!(!response.cache_info().unwrap().from_cache, "{backend:?}");
        let response = h.get("/etag/own").send().await.unwrap();
        let info = response.cache_info().cloned().unwrap();
        assert!(
            info.from_cache && !info.revalidated,
            "{backend:?}: {info:?}"
        );
        assert_eq!(response.headers()["x-refreshed"], "yes", "{backend:?}");
        assert_eq!(
            response.text().await.unwrap(),
            "/etag/own #1",
            "{backend:?}"
        );
        assert_eq!(h.origin.hits("/etag/own"), 2, "{backend:?}");
    }
}

/// The `Age` a response arrives with counts the time its request took (§4.2.3:
/// `corrected_age_value = age_value + response_delay`): `Age: 50` and `max-age=60`, fetched
/// over 15 seconds, is stale on arrival, and the next request goes to the origin. It was
/// taken as 50 seconds old and served fresh for ten more.
#[tokio::test]
async fn the_requests_travel_time_adds_to_the_age_it_arrives_with_rfc9111_section_4_2_3() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.cache_control(true)).await;
        let url = h.origin.url("/held-aged/a");
        let in_flight = tokio::spawn(h.client.get(&url).send());
        crate::support::wait_until(|| h.origin.hits("/held-aged/a") == 1).await;
        h.clock.advance(Duration::from_secs(15));
        h.origin.open_gate();
        let first = in_flight.await.unwrap().unwrap();
        assert!(first.cache_info().unwrap().stored, "{backend:?}");
        let again = send(h.get("/held-aged/a")).await;
        assert!(!again.info.from_cache, "{backend:?}: served as fresh");
        assert_eq!(h.origin.hits("/held-aged/a"), 2, "{backend:?}");
    }
}

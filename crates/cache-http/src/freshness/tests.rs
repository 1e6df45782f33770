use super::*;
use http::HeaderValue;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn date_text(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn lifetime(pairs: &[(&str, &str)]) -> ResponseFreshness {
    response_freshness(StatusCode::OK, &headers(pairs), t(0), true)
}

const fn secs(n: u64) -> ResponseFreshness {
    ResponseFreshness::Lifetime(Duration::from_secs(n))
}

#[test]
fn response_directives() {
    assert_eq!(lifetime(&[("cache-control", "max-age=60")]), secs(60));
    assert_eq!(
        lifetime(&[("cache-control", "s-maxage=10, max-age=60")]),
        secs(60),
        "s-maxage ignored"
    );
    assert_eq!(
        lifetime(&[("cache-control", "private, max-age=60")]),
        secs(60),
        "private is fine"
    );
    assert_eq!(
        lifetime(&[("cache-control", "no-store, max-age=60")]),
        ResponseFreshness::NoStore
    );
    assert_eq!(
        lifetime(&[("cache-control", "max-age=60, no-cache")]),
        secs(0),
        "most restrictive"
    );
    assert_eq!(
        lifetime(&[("cache-control", r#"no-cache="a", max-age=60, no-cache"#)]),
        secs(0),
        "a bare no-cache after one naming fields"
    );
    assert_eq!(
        lifetime(&[
            ("cache-control", r#"no-cache="a", max-age=60"#),
            ("cache-control", "no-cache"),
        ]),
        secs(0),
        "a bare no-cache on another line"
    );
    assert_eq!(
        lifetime(&[("cache-control", r#"no-cache="a", max-age=60"#)]),
        secs(60),
        "naming fields, it keeps only those from reuse"
    );
    assert_eq!(lifetime(&[("pragma", "no-cache")]), secs(0));
    assert_eq!(
        lifetime(&[("pragma", "no-cache"), ("cache-control", "max-age=5")]),
        secs(5)
    );
    assert_eq!(
        lifetime(&[("cache-control", "max-age=abc")]),
        secs(0),
        "invalid is stale"
    );
    assert_eq!(
        lifetime(&[("cache-control", "public")]),
        ResponseFreshness::Unspecified
    );
    assert_eq!(lifetime(&[]), ResponseFreshness::Unspecified);
}

#[test]
fn expires_is_relative_to_date() {
    let h = [("date", date_text(t(0))), ("expires", date_text(t(300)))];
    let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(lifetime(&h), secs(300));
    // max-age beats Expires.
    let mut with_max_age = h.clone();
    with_max_age.push(("cache-control", "max-age=10"));
    assert_eq!(lifetime(&with_max_age), secs(10));
    assert_eq!(
        lifetime(&[("expires", "0")]),
        secs(0),
        "invalid date means expired"
    );
    assert_eq!(
        lifetime(&[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        secs(0)
    );
}

/// A `Date` later than the response arrived does not lengthen the heuristic lifetime: one in
/// year 9999 made it centuries (the apparent age is none for a `Date` in the future).
#[test]
fn a_date_in_the_future_does_not_lengthen_the_heuristic_lifetime() {
    let modified = date_text(t(0) - Duration::from_secs(1000));
    for later in [
        "Fri, 31 Dec 9999 23:59:59 GMT".to_owned(),
        date_text(t(5000)),
    ] {
        let h = headers(&[("last-modified", &modified), ("date", &later)]);
        assert_eq!(
            response_freshness(StatusCode::OK, &h, t(0), true),
            secs(100),
            "{later}"
        );
    }
}

#[test]
fn heuristic_only_without_explicit_freshness_and_for_cacheable_codes() {
    let modified = date_text(t(0) - Duration::from_secs(1000));
    let h = headers(&[("last-modified", &modified)]);
    assert_eq!(
        response_freshness(StatusCode::OK, &h, t(0), true),
        secs(100)
    );
    assert_eq!(
        response_freshness(StatusCode::OK, &h, t(0), false),
        ResponseFreshness::Unspecified
    );
    assert_eq!(
        response_freshness(StatusCode::CREATED, &h, t(0), true),
        ResponseFreshness::Unspecified,
        "201 is not heuristically cacheable"
    );
    let bad = headers(&[("last-modified", "yesterday")]);
    assert_eq!(
        response_freshness(StatusCode::OK, &bad, t(0), true),
        ResponseFreshness::Unspecified
    );
}

#[test]
fn age_and_date_count() {
    let h = headers(&[("age", "30")]);
    assert_eq!(initial_age(&h, t(0)), Duration::from_secs(30));
    let d = date_text(t(0) - Duration::from_secs(50));
    let h = headers(&[("age", "30"), ("date", &d)]);
    assert_eq!(
        initial_age(&h, t(0)),
        Duration::from_secs(50),
        "apparent age is larger"
    );
    let h = headers(&[("age", "abc"), ("date", "garbage")]);
    assert_eq!(initial_age(&h, t(0)), Duration::ZERO);
    assert_eq!(
        fresh_until(t(0), Duration::from_secs(60), Duration::from_secs(50)),
        t(10)
    );
    assert_eq!(
        fresh_until(t(0), Duration::from_secs(60), Duration::from_secs(90)),
        t(0)
    );
}

fn request(cc: &str) -> RequestDirectives {
    RequestDirectives::parse(&headers(&[("cache-control", cc)])).unwrap()
}

#[test]
fn request_directives() {
    assert_eq!(RequestDirectives::parse(&HeaderMap::new()), None);
    let r = request("max-age=5, max-stale, min-fresh=2, no-store, only-if-cached");
    assert_eq!(r.max_age, Some(Duration::from_secs(5)));
    assert_eq!(r.max_stale, Some(MaxStale::Any));
    assert_eq!(r.min_fresh, Some(Duration::from_secs(2)));
    assert!(r.no_store && r.only_if_cached && !r.no_cache);
    assert_eq!(
        request("max-stale=7").max_stale,
        Some(MaxStale::Up(Duration::from_secs(7)))
    );
    assert_eq!(request("max-age=x").max_age, Some(Duration::ZERO));
    assert!(
        RequestDirectives::parse(&headers(&[("pragma", "no-cache")]))
            .unwrap()
            .no_cache
    );
}

/// The current age starts from the stored `Age` (the initial age a cache kept there) where
/// there is one, and from `Date` only without one: an entry renewed by a `304` (its
/// `created_at` new, its `Date` the first response's) is as old as the `Age` it serves.
#[test]
fn current_age_starts_from_the_stored_age() {
    let old_date = headers(&[("date", &date_text(t(0))), ("age", "5")]);
    let renewed = StoredFreshness {
        created_at: t(600),
        expires_at: Some(t(660)),
        headers: &old_date,
    };
    assert_eq!(renewed.current_age(t(610)), Duration::from_secs(15));
    assert!(renewed.satisfies(&request("max-age=30"), t(610)));
    let without_age = headers(&[("date", &date_text(t(0)))]);
    let legacy = StoredFreshness {
        headers: &without_age,
        ..renewed
    };
    assert_eq!(legacy.current_age(t(610)), Duration::from_secs(610));
}

#[test]
fn satisfies() {
    let plain = HeaderMap::new();
    let entry = StoredFreshness {
        created_at: t(0),
        expires_at: Some(t(100)),
        headers: &plain,
    };
    assert!(entry.satisfies(&request("max-age=60"), t(50)));
    assert!(
        !entry.satisfies(&request("max-age=60"), t(61)),
        "too old for the request"
    );
    assert!(
        !entry.satisfies(&request("min-fresh=60"), t(50)),
        "not fresh long enough"
    );
    assert!(entry.satisfies(&request("min-fresh=50"), t(50)));
    assert!(!entry.satisfies(&request("no-cache"), t(1)));
    assert!(!entry.satisfies(&request("public"), t(100)), "stale");
    assert!(entry.satisfies(&request("max-stale=10"), t(110)));
    assert!(!entry.satisfies(&request("max-stale=10"), t(111)));
    assert!(entry.satisfies(&request("max-stale"), t(100_000)));
    let strict = headers(&[("cache-control", "must-revalidate")]);
    let strict_entry = StoredFreshness {
        headers: &strict,
        ..entry
    };
    assert!(
        !strict_entry.satisfies(&request("max-stale"), t(101)),
        "must-revalidate wins"
    );
    let never = StoredFreshness {
        expires_at: None,
        ..entry
    };
    assert!(never.satisfies(&request("min-fresh=999999"), t(5)));
    assert!(!never.satisfies(&request("max-age=10"), t(11)));
}

#[test]
fn age_lists_count_as_their_first_value_rfc9111_section_5_1() {
    assert_eq!(
        age_value(&headers(&[("age", "7200, 0")])),
        Some(Duration::from_secs(7200))
    );
    assert_eq!(
        age_value(&headers(&[("age", "0"), ("age", "7200")])),
        Some(Duration::ZERO),
        "the first line"
    );
    assert_eq!(age_value(&headers(&[("age", "7200.0")])), None);
    assert_eq!(age_value(&headers(&[("age", "-5")])), None);
    assert_eq!(
        initial_age(&headers(&[("age", "7200,0")]), t(0)),
        Duration::from_secs(7200)
    );
}

#[test]
fn must_understand_sets_no_store_aside_for_known_codes_rfc9111_section_5_2_2_3() {
    let h = headers(&[("cache-control", "must-understand, no-store, max-age=60")]);
    assert_eq!(response_freshness(StatusCode::OK, &h, t(0), true), secs(60));
    let unknown = StatusCode::from_u16(299).unwrap();
    assert_eq!(
        response_freshness(unknown, &h, t(0), true),
        ResponseFreshness::NoStore
    );
    let partial = headers(&[("cache-control", "must-understand, max-age=60")]);
    assert_eq!(
        response_freshness(StatusCode::PARTIAL_CONTENT, &partial, t(0), true),
        ResponseFreshness::NoStore,
        "206 is not stored"
    );
}

#[test]
fn qualified_no_cache_does_not_make_the_response_stale_rfc9111_section_5_2_2_4() {
    assert_eq!(
        lifetime(&[("cache-control", "no-cache=\"set-cookie\", max-age=60")]),
        secs(60)
    );
    assert_eq!(
        lifetime(&[("cache-control", "no-cache, max-age=60")]),
        secs(0)
    );
}

#[test]
fn public_allows_heuristics_for_any_code_rfc9111_section_4_2_2() {
    let modified = date_text(t(0) - Duration::from_secs(1000));
    let unknown = StatusCode::from_u16(599).unwrap();
    let public = headers(&[("last-modified", &modified), ("cache-control", "public")]);
    assert_eq!(response_freshness(unknown, &public, t(0), true), secs(100));
    let plain = headers(&[("last-modified", &modified)]);
    assert_eq!(
        response_freshness(unknown, &plain, t(0), true),
        ResponseFreshness::Unspecified
    );
}

#[test]
fn expires_in_the_other_date_forms_rfc9110_section_5_6_7() {
    // 2023-11-14 22:13:20 UTC is t(0); an hour later in each form.
    for expires in [
        "Tue, 14 Nov 2023 23:13:20 GMT",
        "Tuesday, 14-Nov-23 23:13:20 GMT",
        "Tue Nov 14 23:13:20 2023",
        "TUE, 14 NOV 2023 23:13:20 gmt",
    ] {
        let h = [("date", date_text(t(0))), ("expires", expires.to_owned())];
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(lifetime(&h), secs(3600), "{expires}");
    }
}

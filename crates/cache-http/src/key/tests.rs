use super::*;
use http::HeaderValue;
use url::form_urlencoded;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn get(rules: &KeyRules, u: &str) -> CacheKey {
    rules.key(&Method::GET, &url(u), &HeaderMap::new(), None)
}

/// Keys must not change between processes or releases: these are pinned.
#[test]
fn keys_are_pinned() {
    let rules = KeyRules::default();
    assert_eq!(
        get(&rules, "https://example.com/a?b=1").as_str(),
        "00b10e76a891161d2c242296369c597d"
    );
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let post = rules.key(
        &Method::POST,
        &url("https://example.com/api"),
        &headers,
        Some(br#"{"b":1,"a":[1,2]}"#),
    );
    // Re-pinned once, before any release, when body keys began to name the normalization
    // that made them (a form's `a=1` and the same bytes sent raw shared a key).
    assert_eq!(post.as_str(), "e499eae6a9665439e9a4ad070e199e37");
    let raw = rules.key(
        &Method::POST,
        &url("https://example.com/api"),
        &HeaderMap::new(),
        Some(b"raw body"),
    );
    assert_eq!(raw.as_str(), RAW_BODY_KEY, "raw bodies kept their keys");
}

/// The key of a raw `POST` body, as before bodies were told apart by their normalization.
const RAW_BODY_KEY: &str = "d60ff5eb51ac37b8896767e4c274f689";

#[test]
fn url_normalization() {
    let rules = KeyRules::default();
    let base = get(&rules, "https://example.com/p?a=1&b=2");
    for same in [
        "HTTPS://EXAMPLE.COM/p?a=1&b=2",
        "https://example.com:443/p?b=2&a=1",
        "https://example.com/p?a=1&b=2#fragment",
    ] {
        assert_eq!(get(&rules, same), base, "{same}");
    }
    for different in [
        "http://example.com/p?a=1&b=2",
        "https://example.com/P?a=1&b=2",
        "https://example.com/p?a=1&b=3",
        "https://example.com:8443/p?a=1&b=2",
    ] {
        assert_ne!(get(&rules, different), base, "{different}");
    }
    assert_eq!(
        rules.normalized_url(&url("https://u:p@Example.com:443/x?z=1&y=%20&api_key=k#f")),
        "https://example.com/x?y=+&z=1"
    );
}

/// A `%` that escapes nothing is not the same as an escaped `%`: an origin may refuse the
/// first (Go's and Java's decoders do) and read the second as a `%`.
#[test]
fn a_percent_escaping_nothing_keys_apart_from_an_escaped_percent() {
    let rules = KeyRules::default();
    let bare = get(&rules, "https://example.com/p?a=%zz");
    assert_ne!(bare, get(&rules, "https://example.com/p?a=%25zz"));
    assert_ne!(bare, get(&rules, "https://example.com/p?a=%25zz&b=1"));
    // Still sorted with the rest, and the same URL keys alike whatever the order.
    assert_eq!(
        get(&rules, "https://example.com/p?b=1&a=%zz"),
        get(&rules, "https://example.com/p?a=%zz&b=1")
    );
    assert_eq!(
        rules.normalized_url(&url("https://example.com/p?b=%41&a=%zz")),
        "https://example.com/p?a=%zz&b=A"
    );
}

/// A query holding a `;` is keyed as written, in its order (origins that split at `;` read
/// `utm_source=x;id=5` as two parameters, others as one): an ignored parameter or a
/// credential keeps only its name, and no such query shares a key with one another origin
/// reads differently.
#[test]
fn a_query_holding_a_semicolon_is_keyed_as_written() {
    let rules = KeyRules::default().ignored_parameters(["utm_source"]);
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    let cloaked = key("?utm_source=x;id=5");
    for other in [
        "",
        "?id=5",
        "?utm_source=x;id=6",
        "?utm_source=x%3Bid%3D5",
        "?utm_source=x;id%3D5",
    ] {
        assert_ne!(cloaked, key(other), "{other}");
    }
    // The ignored value counts for nothing.
    assert_eq!(cloaked, key("?utm_source=y;id=5"));
    // Escaped, the `;` is part of the value: the URL is the one without it.
    assert_eq!(key("?utm_source=x%3Bid%3D5"), key(""));
    assert_ne!(key("?id=5;x=1"), key("?id=5%3Bx%3D1"));
    // Not sorted: an origin taking a repeated name's last value reads these differently.
    assert_ne!(key("?a=;z=2&z=1"), key("?z=1&a=;z=2"));
    assert_ne!(key("?b;a=1&a=2"), key("?a=2&b;a=1"));
    // To an origin splitting at `&` only, what follows a `;` is part of the value of the
    // pair it is in: a kept pair counts whole. To one splitting at `;`, an ignored parameter
    // follows it, and its value is not stored: the part keeps its name alone (found by the
    // `key_url` fuzz target: the stored URL kept `utm_source=1`).
    assert_ne!(key("?q=cats;utm_source=1"), key("?q=cats;utm_source=2"));
    let u = url("https://example.com/p?q=cats;utm_source=1&b=2");
    let stored = rules.redact_url(&u);
    assert_eq!(
        stored.as_str(),
        "https://example.com/p?q=cats;utm_source=&b=2"
    );
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
    assert_eq!(
        rules.normalized_url(&u),
        "https://example.com/p?q=cats;utm_source=&b=2"
    );
    // No credential is written, in the key's text or the stored URL: not one leading a
    // pair, nor one after the `;` of an ignored pair, nor what follows a `;` in a
    // credential's value (part of it, to an origin splitting at `&` only).
    let rules = KeyRules::default().ignored_parameters(["utm_source", "api_key"]);
    for query in [
        "?utm_source=x;api_key=SECRET",
        "?api_key=SECRET;id=5",
        "?api_key=SEC;RET",
        "?b=1&api_key=SEC;RET=2",
    ] {
        let u = url(&format!("https://example.com/p{query}"));
        let normalized = rules.normalized_url(&u).into_owned();
        let stored = rules.redact_url(&u);
        for secret in ["SEC", "RET"] {
            assert!(!normalized.contains(secret), "{normalized}");
            assert!(!stored.as_str().contains(secret), "{stored}");
        }
        // The stored URL groups as the request does.
        assert_eq!(rules.url_group(&stored), rules.url_group(&u), "{query}");
    }
    assert_eq!(
        rules
            .redact_url(&url("https://example.com/p?utm_source=x;id=5&api_key=S"))
            .as_str(),
        "https://example.com/p?utm_source=;id=5&api_key="
    );
    // Credentials count by their fingerprint, value as written, and only with it; what
    // follows a `;` in one (a parameter of its own, to an origin splitting at `;`) counts
    // even without per-credential keys, hashed, never written.
    let with = |v: &str| get(&rules, &format!("https://example.com/p?api_key={v}"));
    assert_ne!(with("A;id=5"), with("B;id=5"));
    assert_ne!(with("T;id=1"), with("T;id=2"));
    let shared = rules.clone().per_credential(false);
    let id = |v: &str| get(&shared, &format!("https://example.com/p?api_key={v}"));
    assert_ne!(id("T;id=1"), id("T;id=2"));
    assert_eq!(
        id("A;id=1"),
        id("B;id=1"),
        "the credential itself still shared"
    );
    assert_ne!(id("T;id=1"), id("T"));
    let form = |v: &str| body_key(&shared, "application/x-www-form-urlencoded", v);
    assert_ne!(form("api_key=T;id=1"), form("api_key=T;id=2"));
    assert_eq!(form("api_key=A;id=1"), form("api_key=B;id=1"));
    // The ignored pair's parts after its `;` that are credentials count the same way.
    let tail = |v: &str| {
        get(
            &rules,
            &format!("https://example.com/p?utm_source=x;api_key={v}"),
        )
    };
    assert_ne!(tail("A"), tail("B"));
}

/// A built-in credential is left out of the key's text whatever the ignored list says (the
/// list replaces the ignored parameters, not the credentials): a replaced list wrote it into
/// `normalized_url`, and the stored URL (without it) grouped apart from the request.
#[test]
fn built_in_credentials_stay_out_of_the_key_text_with_a_replaced_ignored_list() {
    let rules = KeyRules::default().ignored_parameters(["session"]);
    let u = url("https://example.com/p?a=1&api_key=SECRET&session=s");
    assert_eq!(rules.normalized_url(&u), "https://example.com/p?a=1");
    let stored = rules.redact_url(&u);
    assert_eq!(stored.as_str(), "https://example.com/p?a=1");
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
    let key =
        |rules: &KeyRules, v: &str| get(rules, &format!("https://example.com/p?a=1&api_key={v}"));
    assert_ne!(
        key(&rules, "A"),
        key(&rules, "B"),
        "counted by its fingerprint"
    );
    let shared = rules.clone().per_credential(false);
    assert_eq!(key(&shared, "A"), key(&shared, "B"));
}

/// A form body is keyed as a query is: the same rules for `;`, `%` escaping nothing,
/// ignored fields and credentials.
#[test]
fn a_form_body_is_keyed_as_a_query_is() {
    let rules = KeyRules::default().ignored_parameters(["utm_source"]);
    let form = |body: &str| body_key(&rules, "application/x-www-form-urlencoded", body);
    assert_eq!(form("b=2&a=1&utm_source=x"), form("a=1&b=2"));
    assert_ne!(form("a=%zz"), form("a=%25zz"));
    assert_ne!(form("utm_source=x;id=5"), form(""));
    assert_ne!(form("utm_source=x;id=5"), form("id=5"));
    assert_eq!(form("utm_source=x;id=5"), form("utm_source=y;id=5"));
    assert_ne!(form("id=5;x=1"), form("id=5%3Bx%3D1"));
}

#[test]
fn method_and_body_are_part_of_the_key() {
    let rules = KeyRules::default();
    let u = url("https://example.com/");
    let h = HeaderMap::new();
    assert_ne!(
        rules.key(&Method::GET, &u, &h, None),
        rules.key(&Method::HEAD, &u, &h, None)
    );
    assert_ne!(
        rules.key(&Method::POST, &u, &h, Some(b"a")),
        rules.key(&Method::POST, &u, &h, Some(b"b"))
    );
}

/// A present but empty body is no body: same key, so an empty-body GET matches (and is
/// invalidated like) a body-less one.
#[test]
fn an_empty_body_is_no_body() {
    let rules = KeyRules::default();
    let u = url("https://example.com/a?b=1");
    let h = HeaderMap::new();
    for method in [Method::GET, Method::POST] {
        assert_eq!(
            rules.key(&method, &u, &h, None),
            rules.key(&method, &u, &h, Some(b"")),
            "{method}"
        );
    }
    assert_eq!(
        rules.key(&Method::GET, &u, &h, Some(b"")).as_str(),
        "00b10e76a891161d2c242296369c597d",
        "the pinned body-less key"
    );
}

#[test]
fn json_bodies_ignore_key_order_and_ignored_keys() {
    let rules = KeyRules::default().ignored_parameters(["nonce"]);
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let u = url("https://example.com/q");
    let a = rules.key(
        &Method::POST,
        &u,
        &h,
        Some(br#"{"a":1,"b":{"y":2,"x":1},"nonce":5}"#),
    );
    let b = rules.key(
        &Method::POST,
        &u,
        &h,
        Some(br#"{ "b": {"x":1, "y":2}, "a": 1, "nonce": 6 }"#),
    );
    let c = rules.key(&Method::POST, &u, &h, Some(br#"{"a":2,"b":{"x":1,"y":2}}"#));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Not JSON after all: the raw bytes count.
    let raw = rules.key(&Method::POST, &u, &h, Some(b"{not json"));
    assert_ne!(raw, rules.key(&Method::POST, &u, &h, Some(b"{not json ")));
}

fn json_key(rules: &KeyRules, body: &str) -> CacheKey {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    rules.key(
        &Method::POST,
        &url("https://example.com/q"),
        &h,
        Some(body.as_bytes()),
    )
}

/// A body naming a member twice is not canonical (servers differ on which one counts): it
/// never shares a key with the body holding only one of them, at any level, and keys by its
/// bytes (a reordered copy is another key). Objects naming each member once keep sharing
/// keys across orders.
#[test]
fn json_bodies_naming_a_member_twice_key_by_their_bytes() {
    let rules = KeyRules::default();
    let key = |body: &str| json_key(&rules, body);
    for (twice, once) in [
        (r#"{"q":1,"q":2}"#, r#"{"q":2}"#),
        (r#"{"q":1,"q":2}"#, r#"{"q":1}"#),
        (r#"{"a":{"q":1,"q":2}}"#, r#"{"a":{"q":2}}"#),
        (r#"[{"q":1,"q":2}]"#, r#"[{"q":2}]"#),
    ] {
        assert_ne!(key(twice), key(once), "{twice} and {once}");
    }
    assert_ne!(key(r#"{"q":1,"q":2}"#), key(r#"{"q":2,"q":1}"#));
    assert_eq!(
        key(r#"{"a":1,"b":{"c":2,"d":3}}"#),
        key(r#"{"b":{"d":3,"c":2},"a":1}"#)
    );
}

/// Numbers are compared by the text written, not through `f64`: bodies differing only in a
/// digit past `f64`'s precision get different keys.
#[test]
fn json_numbers_compare_by_their_text() {
    let rules = KeyRules::default();
    let key = |body: String| json_key(&rules, &body);
    for (a, b) in [
        ("9007199254740993", "9007199254740992"),
        ("18446744073709551617", "18446744073709551616"),
        ("-9223372036854775809", "-9223372036854775810"),
        ("0.10000000000000000001", "0.1"),
        ("1.00000000000000000000001", "1.0"),
        (
            "123456789012345678901234567890.5",
            "123456789012345678901234567890.25",
        ),
        ("1.7976931348623157e308", "1.79769313486231571e308"),
        ("5e-324", "5.0000000000000000001e-324"),
    ] {
        assert_ne!(
            key(format!("{{\"n\":{a}}}")),
            key(format!("{{\"n\":{b}}}")),
            "{a} vs {b}"
        );
        assert_ne!(
            key(format!("[1,{{\"x\":[{a}]}}]")),
            key(format!("[1,{{\"x\":[{b}]}}]")),
            "{a} vs {b}, nested"
        );
        assert_ne!(
            key(a.to_owned()),
            key(b.to_owned()),
            "{a} vs {b}, top level"
        );
    }
    // The same number spelled another way is still one key.
    for (a, b) in [
        ("1.5", "1.50"),
        ("100.0", "1e2"),
        ("0.10000000000000000001", "0.100000000000000000010"),
        ("18446744073709551617", "18446744073709551617.0"),
        ("-1.25E+3", "-1250.0"),
    ] {
        assert_eq!(
            key(format!("{{\"n\": {a} }}")),
            key(format!("{{\"n\":{b}}}")),
            "{a} vs {b}"
        );
    }
}

/// Keys of bodies with ordinary numbers did not change when numbers started to be compared
/// by their text: pinned from the build before (re-pinned once, before any release, when
/// body keys began to name their normalization).
#[test]
fn ordinary_json_number_keys_are_pinned() {
    let rules = KeyRules::default();
    assert_eq!(
        json_key(
            &rules,
            r#"{"price":1.5,"qty":100,"neg":-2.25,"tiny":1e-7,"huge":1e300,"max":18446744073709551615,"min":-9223372036854775808,"z":0.0,"mz":-0.0,"e":2.5E3}"#
        )
        .as_str(),
        "cebdd9f77a172b846be977c77d474810"
    );
}

/// Nesting deeper than serde_json accepts is not JSON: the raw bytes count, as before, and
/// nothing overflows the stack.
#[test]
fn deeply_nested_json_is_raw_bytes() {
    let rules = KeyRules::default();
    for depth in [126, 127, 128, 129, 100_000] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let is_json = serde_json::from_str::<serde_json::Value>(&body).is_ok();
        let with_space = format!("{}{} ", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            json_key(&rules, &body) == json_key(&rules, &with_space),
            is_json,
            "depth {depth}"
        );
    }
}

#[test]
fn form_bodies_are_sorted() {
    let rules = KeyRules::default();
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let u = url("https://example.com/f");
    assert_eq!(
        rules.key(&Method::POST, &u, &h, Some(b"b=2&a=1")),
        rules.key(&Method::POST, &u, &h, Some(b"a=1&b=2"))
    );
}

#[test]
fn credentials_separate_entries_but_are_not_in_the_key_text() {
    let rules = KeyRules::default();
    let u = url("https://example.com/me");
    let mut alice = HeaderMap::new();
    alice.insert("authorization", HeaderValue::from_static("Bearer alice"));
    let mut bob = HeaderMap::new();
    bob.insert("authorization", HeaderValue::from_static("Bearer bob"));
    let none = HeaderMap::new();
    let ka = rules.key(&Method::GET, &u, &alice, None);
    assert_ne!(ka, rules.key(&Method::GET, &u, &bob, None));
    assert_ne!(ka, rules.key(&Method::GET, &u, &none, None));
    assert_eq!(ka, rules.key(&Method::GET, &u, &alice.clone(), None));
    assert_ne!(
        get(&rules, "https://example.com/me?api_key=1"),
        get(&rules, "https://example.com/me?api_key=2")
    );
    // Credentials that differ only in bytes that are not UTF-8 stay apart too.
    assert_ne!(
        get(&rules, "https://example.com/me?api_key=%80"),
        get(&rules, "https://example.com/me?api_key=%81")
    );

    let shared = KeyRules::default().per_credential(false);
    assert_eq!(
        shared.key(&Method::GET, &u, &alice, None),
        shared.key(&Method::GET, &u, &bob, None)
    );
}

#[test]
fn ignored_parameters_are_fully_ignored_when_not_credentials() {
    let rules = KeyRules::default().ignored_parameters(["nonce", "x-request-id"]);
    assert_eq!(
        get(&rules, "https://e.com/?nonce=1&q=a"),
        get(&rules, "https://e.com/?q=a&nonce=2")
    );
    // Replacing the list does not un-redact credentials.
    assert!(rules.is_redacted("Authorization"));
    assert!(!rules.is_ignored("Authorization"));
    assert_eq!(
        rules
            .redact_url(&url("https://u:p@e.com/?b=1&nonce=2&api_key=3&a=4"))
            .as_str(),
        "https://e.com/?b=1&a=4"
    );
}

/// The stored URL keeps the query as written (`%20` is not turned into `+`, nor `~` into
/// `%7E`, order kept), less redacted parameters, however their names are escaped.
#[test]
fn redacted_urls_keep_the_query_as_written() {
    let rules = KeyRules::default().ignored_parameters(["nonce"]);
    for (given, stored) in [
        (
            "https://e.com/s?q=a%20b&x=1+2&z=~",
            "https://e.com/s?q=a%20b&x=1+2&z=~",
        ),
        (
            "https://e.com/s?b=2&a=%7E&flag&e=",
            "https://e.com/s?b=2&a=%7E&flag&e=",
        ),
        (
            "https://e.com/s?q=a%20b&api_key=k&nonce=1&z=%7E",
            "https://e.com/s?q=a%20b&z=%7E",
        ),
        (
            "https://e.com/s?api%5Fkey=k&X-Auth-Token=t&q=1",
            "https://e.com/s?q=1",
        ),
        ("https://e.com/s?API_KEY&q=1", "https://e.com/s?q=1"),
        ("https://e.com/s?api_key=k", "https://e.com/s"),
        ("https://e.com/s?", "https://e.com/s?"),
        ("https://u:p@e.com/s?b=2&a=1#f", "https://e.com/s?b=2&a=1"),
    ] {
        assert_eq!(rules.redact_url(&url(given)).as_str(), stored, "{given}");
    }
}

#[test]
fn matched_headers() {
    let u = url("https://example.com/");
    let mut en = HeaderMap::new();
    en.insert("accept-language", HeaderValue::from_static("en"));
    en.insert("x-trace", HeaderValue::from_static("1"));
    let mut fr = HeaderMap::new();
    fr.insert("accept-language", HeaderValue::from_static("fr"));
    fr.insert("x-trace", HeaderValue::from_static("2"));

    let none = KeyRules::default();
    assert_eq!(
        none.key(&Method::GET, &u, &en, None),
        none.key(&Method::GET, &u, &fr, None)
    );

    let some =
        KeyRules::default().match_headers(MatchHeaders::Only(vec![HeaderName::from_static(
            "accept-language",
        )]));
    assert_ne!(
        some.key(&Method::GET, &u, &en, None),
        some.key(&Method::GET, &u, &fr, None)
    );
    let mut en_other_trace = en.clone();
    en_other_trace.insert("x-trace", HeaderValue::from_static("9"));
    assert_eq!(
        some.key(&Method::GET, &u, &en, None),
        some.key(&Method::GET, &u, &en_other_trace, None)
    );

    let all = KeyRules::default()
        .ignored_parameters(["x-trace"])
        .match_headers(MatchHeaders::All);
    assert_eq!(
        all.key(&Method::GET, &u, &en, None),
        all.key(&Method::GET, &u, &en_other_trace, None)
    );
    assert_ne!(
        all.key(&Method::GET, &u, &en, None),
        all.key(&Method::GET, &u, &fr, None)
    );
}

#[test]
fn redacted_headers_drop_credentials_and_ignored() {
    let rules = KeyRules::default().ignored_parameters(["x-nonce"]);
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
    h.insert("cookie", HeaderValue::from_static("sid=1"));
    h.insert("x-nonce", HeaderValue::from_static("n"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    let kept = rules.redact_headers(&h);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept["accept"], "*/*");
}

#[test]
fn key_text_round_trips() {
    let key = get(&KeyRules::default(), "https://example.com/");
    assert_eq!(key.as_str().parse::<CacheKey>().unwrap(), key);
    assert_eq!(key.to_string().len(), 32);
}

fn header(name: &str, value: &str) -> HeaderMap {
    headers(&[(name, value)])
}

/// A header map of these lines, in order (a repeated name appends).
fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn body_key(rules: &KeyRules, content_type: &'static str, body: &str) -> CacheKey {
    let h = header("content-type", content_type);
    rules.key(
        &Method::POST,
        &url("https://example.com/me"),
        &h,
        Some(body.as_bytes()),
    )
}

/// Every built-in credential, as a header, a query parameter, a JSON and a form body key:
/// another value is another key (unless `per_credential(false)`), and none is stored.
#[test]
fn every_credential_name_is_fingerprinted_and_redacted() {
    for name in [
        "X-Auth-Token",
        "X-API-Token",
        "X-Access-Token",
        "apikey",
        "Private-Token",
        "X-Amz-Security-Token",
        "api-key",
        "client_secret",
    ] {
        assert!(
            CREDENTIAL_NAMES.contains(&name),
            "{name} is a default credential"
        );
    }
    let u = url("https://example.com/me?q=1");
    for name in CREDENTIAL_NAMES {
        for (rules, per_credential) in [
            (KeyRules::default(), true),
            (KeyRules::default().per_credential(false), false),
        ] {
            let differ = |a: CacheKey, b: CacheKey, what: &str| {
                assert_eq!(a != b, per_credential, "{name} {what} {per_credential}");
            };
            let by_header = |v| rules.key(&Method::GET, &u, &header(name, v), None);
            differ(by_header("a"), by_header("b"), "header");
            let by_query = |v| get(&rules, &format!("https://example.com/me?q=1&{name}={v}"));
            differ(by_query("a"), by_query("b"), "query");
            let by_json = |v| {
                body_key(
                    &rules,
                    "application/json",
                    &format!(r#"{{"q":1,"{name}":"{v}"}}"#),
                )
            };
            differ(by_json("a"), by_json("b"), "JSON body");
            let by_form = |v| {
                body_key(
                    &rules,
                    "application/x-www-form-urlencoded",
                    &format!("q=1&{name}={v}"),
                )
            };
            differ(by_form("a"), by_form("b"), "form body");

            assert!(
                rules.redact_headers(&header(name, "a")).is_empty(),
                "{name} header stored"
            );
            assert_eq!(
                rules
                    .redact_url(&url(&format!("https://example.com/me?q=1&{name}=a")))
                    .as_str(),
                "https://example.com/me?q=1",
                "{name} parameter stored"
            );
        }
    }
}

/// Credentials declared in the settings: headers and parameters apart, each fingerprinted,
/// left out of the key's text and never stored.
#[test]
fn declared_credentials() {
    let rules = KeyRules::default()
        .credential_headers(["X-Session"])
        .credential_parameters(["sig"])
        .credential_parameters(["Token"]);
    let u = url("https://example.com/me");
    let by_header =
        |rules: &KeyRules, v| rules.key(&Method::GET, &u, &header("x-session", v), None);
    assert_ne!(by_header(&rules, "a"), by_header(&rules, "b"));
    assert!(rules.redact_headers(&header("X-SESSION", "a")).is_empty());
    for name in ["sig", "token"] {
        let by_query =
            |rules: &KeyRules, v| get(rules, &format!("https://example.com/me?q=1&{name}={v}"));
        assert_ne!(by_query(&rules, "a"), by_query(&rules, "b"), "{name}");
        assert_eq!(
            rules
                .redact_url(&url(&format!("https://example.com/me?{name}=a&q=1")))
                .as_str(),
            "https://example.com/me?q=1"
        );
        let by_json = |rules: &KeyRules, v| {
            body_key(rules, "application/json", &format!(r#"{{"{name}":"{v}"}}"#))
        };
        assert_ne!(by_json(&rules, "a"), by_json(&rules, "b"), "{name}");
        // Shared across values without per-credential keys: not in the key's text.
        let shared = rules.clone().per_credential(false);
        assert_eq!(by_query(&shared, "a"), by_query(&shared, "b"), "{name}");
        assert_eq!(by_json(&shared, "a"), by_json(&shared, "b"), "{name}");
    }
    let shared = rules.clone().per_credential(false);
    assert_eq!(by_header(&shared, "a"), by_header(&shared, "b"));
    // A header name declared as a parameter (and the other way round) is not a credential
    // there.
    assert_eq!(rules.redact_headers(&header("sig", "a")).len(), 1);
    assert_eq!(
        rules
            .redact_url(&url("https://example.com/me?x-session=a"))
            .as_str(),
        "https://example.com/me?x-session=a"
    );
    assert!(rules.is_redacted("sig") && rules.is_redacted("X-Session"));
    // Declaring credentials does not change keys of requests without them.
    assert_eq!(
        get(&rules, "https://example.com/a?b=1").as_str(),
        "00b10e76a891161d2c242296369c597d"
    );
}

/// True when a pair holds a `%` that escapes nothing.
fn escapes_nothing(raw: &str) -> bool {
    raw.split('%').skip(1).any(|after| {
        after
            .get(..2)
            .is_none_or(|hex| !hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// The value of a pair as written.
fn written_value(raw: &str) -> &str {
    raw.split_once('=').map_or("", |(_, value)| value)
}

/// The decoded name of a pair.
fn decoded_name(raw: &str) -> String {
    let name = raw.split('=').next().unwrap_or_default();
    let decoded = super::decoded_pairs(name.as_bytes());
    decoded
        .first()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default()
}

/// The normalized URL the long way, as the first releases computed it: every pair decoded
/// into vectors, filtered, sorted, encoded again; with the later rules for a pair with a `%`
/// escaping nothing and for a query holding a `;` (keyed as written). The one-pass path
/// must agree with it.
fn normalized_url_reference(rules: &KeyRules, url: &Url) -> String {
    let mut normalized = if url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
    {
        return url.as_str().to_owned();
    } else {
        format!(
            "{}://{}",
            url.scheme(),
            &url[url::Position::BeforeHost..url::Position::AfterPath]
        )
    };
    let Some(query) = url.query() else {
        return normalized;
    };
    if query.contains(';') {
        // In order; a pair led by a kept name whole, by a credential its name alone, by an
        // ignored name its name and the parts after its `;`s (each by its own name).
        // A left-out part's name, with its `=` only if it had one.
        let name_of = |part: &str| match part.split_once('=') {
            Some((name, _)) => format!("{name}="),
            None => part.to_owned(),
        };
        let left_out = |part: &str| rules.leaves_out_parameter(&decoded_name(part));
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                if !left_out(pair) {
                    // Kept whole, but for the values of its parts left out.
                    let mut parts = pair.split(';');
                    let mut written = parts.next().unwrap_or_default().to_owned();
                    for part in parts {
                        written.push(';');
                        match left_out(part) {
                            true => written.push_str(&name_of(part)),
                            false => written.push_str(part),
                        }
                    }
                    return written;
                }
                if rules.is_credential_parameter(&decoded_name(pair)) {
                    let semicolon = if written_value(pair).contains(';') {
                        ";"
                    } else {
                        ""
                    };
                    let name = pair.split('=').next().unwrap_or_default();
                    return format!("{name}={semicolon}");
                }
                let mut parts = pair.split(';');
                let mut written = name_of(parts.next().unwrap_or_default());
                for part in parts {
                    written.push(';');
                    match left_out(part) {
                        true => written.push_str(&name_of(part)),
                        false => written.push_str(part),
                    }
                }
                written
            })
            .collect();
        return format!("{normalized}?{}", pairs.join("&"));
    }
    let encode = |bytes: &[u8]| form_urlencoded::byte_serialize(bytes).collect::<String>();
    // A value's own `=` as it is.
    let encode_value = |bytes: &[u8]| encode(bytes).replace("%3D", "=");
    // Two different names one of which is the other or a fold of it are read as one.
    let readings = |name: &[u8]| {
        let mut all = vec![name.to_vec()];
        all.extend(super::names::folds(name));
        all
    };
    let as_one = |a: &[u8], b: &[u8]| a != b && readings(a).iter().any(|r| readings(b).contains(r));
    let names: Vec<Vec<u8>> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|raw| super::decoded_pairs(raw.as_bytes()).remove(0).0)
        .collect();
    // Each pair as the key writes it, by its decoded name: a left-out one read as one with
    // another by its name alone, in place; any other left out.
    let mut pairs: Vec<(Vec<u8>, String)> = Vec::new();
    for raw in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = super::decoded_pairs(raw.as_bytes()).remove(0);
        if rules.leaves_out_parameter(&String::from_utf8_lossy(&name)) {
            if names.iter().any(|other| as_one(&name, other)) {
                let written = raw.split('=').next().unwrap_or_default();
                let name_text = match escapes_nothing(written) {
                    true => written.to_owned(),
                    false => encode(&name),
                };
                pairs.push((name.clone(), format!("{name_text}=")));
            }
            continue;
        }
        let value_part = raw.split_once('=').map_or("", |(_, value)| value);
        let written = if escapes_nothing(raw) || value_part.contains("]=") {
            raw.to_owned()
        } else {
            format!("{}={}", encode(&name), encode_value(&value))
        };
        pairs.push((name, written));
    }
    // Two names written read as one: the query keeps its order.
    let read_as_one = pairs
        .iter()
        .any(|(a, _)| pairs.iter().any(|(b, _)| as_one(a, b)));
    if !read_as_one {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if !pairs.is_empty() {
        normalized.push('?');
        let written: Vec<String> = pairs.into_iter().map(|(_, written)| written).collect();
        normalized.push_str(&written.join("&"));
    }
    normalized
}

/// The credentials of the query the long way, sorted by name (a name's values in order).
fn url_credentials_reference(rules: &KeyRules, url: &Url) -> Vec<(String, Vec<u8>)> {
    let query = url.query().unwrap_or_default();
    let mut raws: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        raws.push(pair);
        // The parts after the `;`s of a pair led by an ignored (not a credential) name, in
        // the query's order (right after their pair).
        let name = decoded_name(pair);
        if query.contains(';')
            && rules.leaves_out_parameter(&name)
            && !rules.is_credential_parameter(&name)
        {
            raws.extend(pair.split(';').skip(1));
        }
    }
    let mut found = Vec::new();
    for raw in raws {
        let name = decoded_name(raw);
        if !rules.is_credential_parameter(&name) {
            continue;
        }
        let verbatim = escapes_nothing(raw) || written_value(raw).contains("]=");
        found.push(if query.contains(';') || verbatim {
            (
                format!("query-as-written:{name}"),
                written_value(raw).as_bytes().to_vec(),
            )
        } else {
            let (_, value) = super::decoded_pairs(raw.as_bytes()).remove(0);
            (format!("query:{name}"), value)
        });
    }
    // By name, one taken as written with those of its name taken decoded, in query order.
    let order = |name: &str| name.replacen("-as-written:", ":", 1);
    found.sort_by_key(|(name, _)| order(name));
    found
}

/// The one-pass query path (decode once, borrow what needs no decoding, sort, encode) gives
/// exactly what the long path gives, for every query built from these parts (plain, escaped,
/// `+`, empty, ignored, credentials, non-UTF-8, out of order, duplicated, a value's own `=`
/// and `]=`, names read as one, kept or left out, left-out parts after a `;`), with and
/// without fragments and user info: the normalized URL, and the credentials found in the
/// query.
#[test]
fn one_pass_query_agrees_with_the_long_path() {
    let parts = [
        "a",
        "b",
        "a.b",
        "B",
        "1",
        "",
        "x*_-",
        "%41",
        "+",
        "a%20b",
        "api_key",
        "é",
        "%80",
        "%zz",
        "x;y",
        "x;api_key=y",
        "x;b",
        "a_b",
        "a=b",
        "y]=z",
        "api.key",
    ];
    let rules = KeyRules::default().ignored_parameters(["b"]);
    let mut queries = vec![String::new()];
    for _ in 0..2 {
        let mut longer = Vec::new();
        for query in &queries {
            for name in parts {
                for value in parts {
                    for pair in [format!("{name}={value}"), name.to_owned()] {
                        let joined = if query.is_empty() {
                            pair
                        } else {
                            format!("{query}&{pair}")
                        };
                        longer.push(joined);
                    }
                }
            }
        }
        queries.extend(longer);
    }
    let mut checked = 0;
    // Every query plainly; a fifth of them also behind user info and before a fragment,
    // which the query's handling does not depend on (the whole set thrice took 35 s in debug).
    for (i, query) in queries.iter().enumerate() {
        let shapes: &[&str] = match i % 5 {
            0 => &[
                "https://h.test/p?{q}",
                "https://h.test/p?{q}#f",
                "https://u:p@h.test/?{q}",
            ],
            _ => &["https://h.test/p?{q}"],
        };
        for shape in shapes {
            let url = Url::parse(&shape.replace("{q}", query)).unwrap();
            assert_eq!(
                rules.normalized_url(&url),
                normalized_url_reference(&rules, &url),
                "{url}"
            );
            let pairs = url
                .query()
                .map(|query| super::QueryPairs::parse(query.as_bytes()));
            let mut credentials = Vec::new();
            rules.collect_url_credentials(&url, pairs.as_ref(), &mut credentials);
            credentials.retain(|(name, _)| name != "url:userinfo");
            credentials.sort_by(|a, b| super::order_name(&a.0).cmp(&super::order_name(&b.0)));
            assert_eq!(
                credentials,
                url_credentials_reference(&rules, &url),
                "{url}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100_000, "{checked}");
}

/// `X-HTTP-Method-Override` is part of the key (as in requests-cache): each overriding
/// method its own entry, and a request without the header keeps its pinned key.
#[test]
fn method_override_is_part_of_the_key() {
    let rules = KeyRules::default();
    let u = url("https://example.com/a?b=1");
    let plain = rules.key(&Method::POST, &u, &HeaderMap::new(), Some(b"x"));
    let patch = header("X-HTTP-Method-Override", "PATCH");
    let delete = header("x-http-method-override", "DELETE");
    let patch_key = rules.key(&Method::POST, &u, &patch, Some(b"x"));
    assert_ne!(patch_key, plain);
    assert_ne!(patch_key, rules.key(&Method::POST, &u, &delete, Some(b"x")));
    assert_eq!(
        patch_key,
        rules.key(
            &Method::POST,
            &u,
            &header("x-http-method-override", "PATCH"),
            Some(b"x")
        ),
        "the header's name is case-insensitive"
    );
    // A GET without the header: its pinned key; with it, another, and the URL alone no
    // longer decides (so no per-URL memory answers it).
    assert_eq!(
        get(&rules, "https://example.com/a?b=1").as_str(),
        "00b10e76a891161d2c242296369c597d"
    );
    assert_ne!(
        rules.key(&Method::GET, &u, &patch, None),
        get(&rules, u.as_str())
    );
    assert!(!rules.url_alone_decides(&patch));
}

/// A URL group is the BLAKE3 of its tag and the normalized URL, each length-prefixed, as
/// stored entries carry it (pinned by construction), and computing it with the key gives
/// the same group and key as computing each apart.
#[test]
fn url_groups_are_pinned_and_the_same_with_the_key() {
    let reference = |rules: &KeyRules, url: &Url| {
        let mut bytes = Vec::new();
        for field in [URL_GROUP_TAG, rules.normalized_url(url).as_bytes()] {
            bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
            bytes.extend_from_slice(field);
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..16]);
        CacheKey::from_digest(digest)
    };
    assert_eq!(
        KeyRules::default()
            .url_group(&url("https://example.com/a?b=1"))
            .as_str(),
        reference(&KeyRules::default(), &url("https://example.com/a?b=1")).as_str()
    );
    let mut auth = HeaderMap::new();
    auth.insert("authorization", HeaderValue::from_static("Bearer t"));
    let mut json = HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    for rules in [
        KeyRules::default(),
        KeyRules::default().per_credential(false),
        KeyRules::default().ignored_parameters(["b", "session"]),
        KeyRules::default().match_headers(MatchHeaders::All),
    ] {
        for u in [
            "https://example.com/",
            "https://Example.com:443/a/b?b=2&a=1#frag",
            "https://u:p@example.com/a?api_key=1&x=%41+b",
            "http://example.com:8080/p?session=9&b=1",
            "https://example.com/p?&&a&b=",
        ] {
            let u = url(u);
            assert_eq!(rules.url_group(&u), reference(&rules, &u), "{u}");
            for (method, headers, body) in [
                (Method::GET, &HeaderMap::new(), None),
                (Method::GET, &auth, None),
                (Method::POST, &json, Some(&br#"{"a":1}"#[..])),
            ] {
                assert_eq!(
                    rules.key_and_url_group(&method, &u, headers, body),
                    (rules.key(&method, &u, headers, body), rules.url_group(&u)),
                    "{rules:?} {method} {u}"
                );
            }
        }
    }
}

/// The fields `credential_fields` hands over, or `None` where it declines.
fn credential_fields_of(
    rules: &KeyRules,
    method: &Method,
    u: &Url,
    headers: &HeaderMap,
) -> Option<Vec<Vec<u8>>> {
    let mut fields = Vec::new();
    rules
        .credential_fields(method, u, headers, |field| fields.push(field.to_vec()))
        .then_some(fields)
}

/// Requests with equal credential fields have equal keys, over rule sets, URLs with
/// credentials of their own, credential headers built in and declared, repeated and
/// reordered, and headers the key does not hold; no fields where headers are matched or the
/// method is overridden.
#[test]
fn equal_credential_fields_mean_equal_keys() {
    let header_sets: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("authorization", "Bearer a")],
        vec![("authorization", "Bearer b")],
        vec![("authorization", "Bearer a"), ("accept", "text/html")],
        vec![("authorization", "Bearer a"), ("cookie", "s=1")],
        vec![("cookie", "s=1"), ("authorization", "Bearer a")],
        vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
        vec![("x-api-key", "k"), ("x-tenant", "t1")],
        vec![("x-api-key", "k"), ("x-tenant", "t2")],
    ];
    let urls = [
        "https://h.test/p?b=2&a=1",
        "https://h.test/p?a=1&b=2",
        "https://u:p@h.test/p",
        "https://h.test/p?api_key=1",
        "https://h.test/p?api_key=2",
    ];
    for rules in [
        KeyRules::default(),
        KeyRules::default().per_credential(false),
        KeyRules::default().credential_headers(["x-tenant"]),
    ] {
        let mut seen: Vec<(Vec<Vec<u8>>, CacheKey)> = Vec::new();
        for u in urls {
            let u = url(u);
            for set in &header_sets {
                for method in [Method::GET, Method::HEAD] {
                    let h = headers(set);
                    let fields = credential_fields_of(&rules, &method, &u, &h).unwrap();
                    let key = rules.key(&method, &u, &h, None);
                    for (other, other_key) in &seen {
                        if *other == fields {
                            assert_eq!(*other_key, key, "{rules:?} {method} {u} {set:?}");
                        }
                    }
                    seen.push((fields, key));
                }
            }
        }
        // Credentials that make different keys make different fields.
        let u = url(urls[0]);
        let a = headers(&header_sets[1]);
        let b = headers(&header_sets[2]);
        if rules.key(&Method::GET, &u, &a, None) != rules.key(&Method::GET, &u, &b, None) {
            assert_ne!(
                credential_fields_of(&rules, &Method::GET, &u, &a),
                credential_fields_of(&rules, &Method::GET, &u, &b)
            );
        }
    }
    let u = url(urls[0]);
    let mut overridden = headers(&header_sets[1]);
    overridden.insert(METHOD_OVERRIDE, HeaderValue::from_static("PATCH"));
    assert_eq!(
        credential_fields_of(&KeyRules::default(), &Method::GET, &u, &overridden),
        None
    );
    let matched = KeyRules::default().match_headers(MatchHeaders::All);
    assert_eq!(
        credential_fields_of(&matched, &Method::GET, &u, &headers(&header_sets[1])),
        None
    );
}

/// A repeated parameter's values keep their order: most frameworks read them in order
/// (arrays, "first wins"), so `?ids=3&ids=1` and `?ids=1&ids=3` are different requests.
/// Different names still sort.
#[test]
fn a_repeated_parameter_keeps_the_order_of_its_values() {
    let rules = KeyRules::default();
    assert_ne!(
        get(&rules, "https://h.example/p?a=2&a=1"),
        get(&rules, "https://h.example/p?a=1&a=2")
    );
    assert_eq!(
        get(&rules, "https://h.example/p?b=1&a=2&a=1"),
        get(&rules, "https://h.example/p?a=2&b=1&a=1")
    );
    let post = |body: &str| body_key(&rules, "application/x-www-form-urlencoded", body);
    assert_ne!(post("a=2&a=1"), post("a=1&a=2"));
    assert_eq!(post("b=1&a=2&a=1"), post("a=2&b=1&a=1"));
}

/// Two names a framework reads as one parameter keep their order: PHP reads `page.size` as
/// `page_size` and takes the last, so `page.size=1&page_size=2` asks for 2 and the other
/// order for 1; Rack reads `[id]` as `id`; PHP reads `filter=x&filter[a]=1` as the array
/// alone. Sorted, each pair shared one key. A name that folds with no other to fold into
/// (`a.b` with no `a_b`) still sorts, and so does the rest of a query without such names.
#[test]
fn names_read_as_one_keep_their_order() {
    let rules = KeyRules::default();
    let key = |q: &str| get(&rules, &format!("https://h.example/p?{q}"));
    assert_ne!(
        key("page.size=1&page_size=2"),
        key("page_size=2&page.size=1")
    );
    assert_ne!(
        key("page+size=1&page_size=2"),
        key("page_size=2&page+size=1")
    );
    assert_ne!(key("[id]=1&id=2"), key("id=2&[id]=1"));
    assert_ne!(key("filter=x&filter[a]=1"), key("filter[a]=1&filter=x"));
    assert_ne!(
        key("q=1&page.size=1&page_size=2"),
        key("page_size=2&q=1&page.size=1")
    );
    assert_eq!(key("a.b=1&c=2"), key("c=2&a.b=1"));
    assert_eq!(key("f[a]=1&g=2"), key("g=2&f[a]=1"));
    // The same query in the same order keeps its one key, however its parts are spelled.
    assert_eq!(
        key("page.size=1&page_size=2"),
        key("page%2Esize=1&page_size=2")
    );
    let post = |body: &str| body_key(&rules, "application/x-www-form-urlencoded", body);
    assert_ne!(
        post("page.size=1&page_size=2"),
        post("page_size=2&page.size=1")
    );
    assert_eq!(post("a.b=1&c=2"), post("c=2&a.b=1"));
}

/// A body's key names the normalization that made its bytes: a form's `a=1`, the same bytes
/// sent raw, or as JSON that does not parse, and a raw body that happens to be some JSON
/// body's canonical form are different requests.
#[test]
fn bodies_normalized_differently_have_different_keys() {
    let rules = KeyRules::default();
    let u = url("https://h.example/f");
    let typed = |content_type: &'static str, body: &[u8]| {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static(content_type));
        rules.key(&Method::POST, &u, &headers, Some(body))
    };
    let form = typed("application/x-www-form-urlencoded", b"a=1");
    assert_ne!(form, typed("application/json", b"a=1"));
    assert_ne!(form, typed("text/plain", b"a=1"));
    assert_ne!(
        typed("application/json", br#"{"b":1,"a":2}"#),
        typed("text/plain", br#"{"a":2,"b":1}"#)
    );
    assert_eq!(
        typed("application/json", b"not json"),
        typed("text/plain", b"not json"),
        "bytes hashed as they are, either way"
    );
}

/// A credential's key names where it came from and its name as written: the same token in a
/// header and in the query, or under `API_KEY` and `api_key`, may be different principals to
/// the origin. A repeated name's values keep their order.
#[test]
fn credentials_are_told_apart_by_where_they_came_from() {
    let rules = KeyRules::default();
    let mut bearer = HeaderMap::new();
    bearer.insert("authorization", HeaderValue::from_static("Bearer t"));
    let by_header = rules.key(&Method::GET, &url("https://h.example/r"), &bearer, None);
    assert_ne!(
        by_header,
        get(&rules, "https://h.example/r?authorization=Bearer%20t")
    );
    assert_ne!(
        get(&rules, "https://h.example/r?API_KEY=a&api_key=b"),
        get(&rules, "https://h.example/r?API_KEY=b&api_key=a")
    );
    assert_ne!(
        get(&rules, "https://h.example/r?token=a&token=b"),
        get(&rules, "https://h.example/r?token=b&token=a")
    );
    let mut form = HeaderMap::new();
    form.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_ne!(
        rules.key(
            &Method::POST,
            &url("https://h.example/x?api_key=t"),
            &form,
            Some(b"a=1")
        ),
        rules.key(
            &Method::POST,
            &url("https://h.example/x"),
            &form,
            Some(b"a=1&api_key=t")
        )
    );
}

/// A body whose walk would read more than 32 MB (its nesting times its length) enters the key
/// as raw bytes: a 1 MB string nested 40 deep took 40 MB of reading a key, and 126 deep
/// ten times that of a 10 MB one. Shallow bodies of the same size are still canonical.
#[test]
fn a_json_body_too_costly_to_walk_is_raw_bytes() {
    let rules = KeyRules::default();
    let long = "x".repeat(1 << 20);
    let nested = |depth: usize, space: &str| {
        format!(
            "{}\"{long}\"{space}{}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    assert_ne!(
        json_key(&rules, &nested(40, "")),
        json_key(&rules, &nested(40, " ")),
        "raw bytes: whitespace counts"
    );
    assert_eq!(
        json_key(&rules, &nested(3, "")),
        json_key(&rules, &nested(3, " ")),
        "canonical: whitespace does not count"
    );
}

/// `X-HTTP-Method` and `X-Method-Override` override the method as `X-HTTP-Method-Override`
/// does (Google's and Microsoft's APIs read them): two `POST`s tunnelling `DELETE` and
/// `PATCH` are different requests, and such a request's key is not remembered by URL alone.
#[test]
fn every_method_override_header_enters_the_key() {
    let rules = KeyRules::default();
    let u = url("https://h.example/item");
    let with = |name: &'static str, method: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(method));
        headers
    };
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        let (delete, patch) = (with(name, "DELETE"), with(name, "PATCH"));
        assert_ne!(
            rules.key(&Method::POST, &u, &delete, Some(b"x")),
            rules.key(&Method::POST, &u, &patch, Some(b"x")),
            "{name}"
        );
        assert!(!rules.url_alone_decides(&delete), "{name}");
        assert_eq!(
            credential_fields_of(&rules, &Method::GET, &u, &delete),
            None,
            "{name}"
        );
    }
    assert_ne!(
        rules.key(&Method::POST, &u, &with("x-http-method", "DELETE"), None),
        rules.key(
            &Method::POST,
            &u,
            &with("x-method-override", "DELETE"),
            None
        ),
        "each under its own name"
    );
}

/// Hashers reuse their thread's buffers: a buffer handed back after a long key starts empty
/// for the next one, and keys (with their groups, hashed at once) come out as computed on a
/// fresh thread; a buffer grown past the limit is not kept.
#[test]
fn reused_buffers_start_empty() {
    let rules = KeyRules::default();
    let urls = [
        format!("https://h.test/long?q={}", "x".repeat(4000)),
        "https://h.test/a?b=1".to_owned(),
        format!("https://h.test/huge?q={}", "y".repeat(LARGEST_SPARE * 2)),
        "https://h.test/".to_owned(),
    ];
    let fresh: Vec<_> = std::thread::scope(|scope| {
        urls.iter()
            .map(|u| {
                let rules = &rules;
                scope
                    .spawn(move || {
                        rules.key_and_url_group(&Method::GET, &url(u), &HeaderMap::new(), None)
                    })
                    .join()
                    .unwrap()
            })
            .collect()
    });
    for _ in 0..2 {
        for (u, fresh) in urls.iter().zip(&fresh) {
            let here = rules.key_and_url_group(&Method::GET, &url(u), &HeaderMap::new(), None);
            assert_eq!(here, *fresh, "{}", &u[..30.min(u.len())]);
            let spare = spare_buffer(0);
            assert!(spare.is_empty());
            assert!(spare.capacity() <= LARGEST_SPARE);
        }
    }
}

/// Names that frameworks fold into a credential's are credentials: PHP reads `api.key`,
/// `api+key`, `api key` and `api[key` as `api_key`, and PHP, Rack and `qs` read `api_key[]`
/// and `access_token[0]` as arrays of it. Their values stay out of the key's text and of the
/// stored URL, and count by their fingerprints.
#[test]
fn names_frameworks_fold_into_a_credential_are_credentials() {
    let rules = KeyRules::default();
    for name in [
        "api.key",
        "api+key",
        "api%20key",
        "api[key",
        "api_key[]",
        "API_KEY%5B%5D",
        "access_token[0]",
        "client.secret",
        "api_key[a][b]",
        "+api_key",
        "%20api_key",
        "[api_key]",
        "]api_key",
        "api_key]",
        "api_key[x",
        "api_key%00x",
    ] {
        let u = url(&format!("https://example.com/p?a=1&{name}=SECRET"));
        assert_eq!(
            rules.normalized_url(&u),
            "https://example.com/p?a=1",
            "{name}"
        );
        let stored = rules.redact_url(&u);
        assert!(!stored.as_str().contains("SECRET"), "{name}: {stored}");
        assert_eq!(rules.url_group(&stored), rules.url_group(&u), "{name}");
        let key = |v: &str| get(&rules, &format!("https://example.com/p?a=1&{name}={v}"));
        assert_ne!(key("A"), key("B"), "{name}: counted by its fingerprint");
    }
    // Folds that make no credential's name leave the parameter where it was.
    for name in ["api.keys", "x[api_key]", "[]", "api_keyx"] {
        let u = url(&format!("https://example.com/p?{name}=v"));
        assert!(rules.normalized_url(&u).ends_with("=v"), "{name}");
        assert!(rules.redact_url(&u).as_str().ends_with("=v"), "{name}");
    }
    // JSON keys are taken as written: no framework folds them.
    let body = |v: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let body = format!(r#"{{"api.key":"{v}"}}"#);
        let u = url("https://example.com/p");
        rules
            .clone()
            .per_credential(false)
            .key(&Method::POST, &u, &headers, Some(body.as_bytes()))
    };
    assert_ne!(body("A"), body("B"));
    // A declared credential folds alike.
    let declared = KeyRules::default().credential_parameters(["auth_token"]);
    let u = url("https://example.com/p?auth.token=S&b=2");
    assert_eq!(declared.normalized_url(&u), "https://example.com/p?b=2");
}

/// A kept pair holding `;api_key=S`: to an origin splitting at `&` only, `S` is part of the
/// kept value; to one splitting at `;` too (Rack, older Python), `api_key` is a credential.
/// So `S` is written neither into the key's text nor into the stored URL, and still tells
/// keys apart, whether or not credentials count.
#[test]
fn a_credential_after_a_semicolon_in_a_kept_pair_is_not_written() {
    let rules = KeyRules::default();
    let u = url("https://example.com/p?a=1;api_key=SECRET;x=2&b=3");
    assert_eq!(
        rules.normalized_url(&u),
        "https://example.com/p?a=1;api_key=;x=2&b=3"
    );
    let stored = rules.redact_url(&u);
    assert_eq!(
        stored.as_str(),
        "https://example.com/p?a=1;api_key=;x=2&b=3"
    );
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
    for rules in [rules.clone(), rules.clone().per_credential(false)] {
        let key = |v: &str| {
            get(
                &rules,
                &format!("https://example.com/p?a=1;api_key={v}&b=3"),
            )
        };
        assert_ne!(key("A"), key("B"), "{rules:?}");
        assert_eq!(key("A"), key("A"));
    }
    // The part may sit in the pair's name (`a;api_key` is the name, `A` the value): the
    // whole pair counts, so values still tell keys apart, and so does a missing `=`.
    for rules in [rules.clone(), rules.clone().per_credential(false)] {
        let key = |query: &str| get(&rules, &format!("https://example.com/p?{query}"));
        assert_ne!(key("a;api_key=A"), key("a;api_key=B"), "{rules:?}");
        assert_ne!(key("a;api_key"), key("a;api_key="), "{rules:?}");
        assert_ne!(key("utm_source;api_key=A"), key("utm_source;api_key=B"));
        assert!(
            !rules
                .redact_url(&url("https://example.com/p?a;api_key=SECRET"))
                .as_str()
                .contains("SECRET")
        );
    }
    // A kept pair without such a part keeps its key.
    assert_eq!(
        rules.normalized_url(&url("https://example.com/p?a=1;x=2")),
        "https://example.com/p?a=1;x=2"
    );
}

/// A value's own `=` is written as it is however the query is read: a query with nothing to
/// decode is written as it is, and one with something to decode wrote `%3D`, so `x=a=b` keyed
/// apart from itself beside an escaped parameter, and the stored URL of a request whose only
/// escaped parameter is a credential (a base64 token, `%2B`) was in another URL group than
/// the request (found by the `key_url` fuzz target).
#[test]
fn a_value_s_own_equals_sign_is_written_alike_in_every_query() {
    let rules = KeyRules::default();
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    assert_eq!(key("?x=a=b"), key("?x=a%3Db"));
    assert_eq!(key("?x=a=b&q=c%20d"), key("?x=a%3Db&q=c+d"));
    let u = url("https://example.com/p?cursor=abc==&api_key=x%2By");
    let stored = rules.redact_url(&u);
    assert_eq!(stored.as_str(), "https://example.com/p?cursor=abc==");
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
    assert_eq!(
        rules.normalized_url(&url("https://example.com/p?q=c%20d&x=a%3Db%3D")),
        "https://example.com/p?q=c+d&x=a=b="
    );
    // A name's `=` is still escaped: it would end the name.
    assert_eq!(
        rules.normalized_url(&url("https://example.com/p?a%3Db=1")),
        "https://example.com/p?a%3Db=1"
    );
}

/// Names an origin reads as one (`page.size`, `page_size`): which comes last is what it
/// reads. A left-out one among them keeps its name in place, in the key's text and in the
/// stored URL (its value left out), so that their order counts and the stored URL groups as
/// the request did. Unsorted without the left-out name, the stored URL (without it) grouped apart (found by the
/// `key_url` fuzz target); without its name, two orders an origin reads differently shared a
/// key, also two credentials' (found by review).
#[test]
fn names_read_as_one_keep_their_order_and_a_left_out_one_its_place() {
    let rules = KeyRules::default().ignored_parameters(["page_size"]);
    let u = url("https://example.com/p?z=1&page_size=2&page.size=3&a=4");
    let stored = rules.redact_url(&u);
    assert_eq!(
        stored.as_str(),
        "https://example.com/p?z=1&page_size=&page.size=3&a=4"
    );
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
    assert_eq!(
        rules.normalized_url(&u),
        "https://example.com/p?z=1&page_size=&page.size=3&a=4"
    );
    let key = |rules: &KeyRules, u: &str| get(rules, &format!("https://example.com/p{u}"));
    assert_ne!(
        key(&rules, "?page.size=1&page_size=2"),
        key(&rules, "?page_size=2&page.size=1")
    );
    // An ignored name read as no other's goes, and the rest is sorted.
    let other = KeyRules::default().ignored_parameters(["session"]);
    assert_eq!(
        other.normalized_url(&url("https://example.com/p?z=1&session=s&a=2")),
        "https://example.com/p?a=2&z=1"
    );
    let defaults = KeyRules::default();
    for (a, b) in [
        ("?page.size=1&page_size=2", "?page_size=2&page.size=1"),
        ("?api_key=A&api.key=B", "?api.key=B&api_key=A"),
        ("?api.key]=1&api.key=S", "?api.key=S&api.key]=1"),
    ] {
        assert_ne!(key(&defaults, a), key(&defaults, b), "{a}");
        let shared = defaults.clone().per_credential(false);
        assert_ne!(key(&shared, a), key(&shared, b), "{a}, credentials shared");
    }
    let u = url("https://example.com/p?api.key=S&x=1&api_key=T");
    let stored = defaults.redact_url(&u);
    assert_eq!(
        stored.as_str(),
        "https://example.com/p?api.key=&x=1&api_key="
    );
    assert_eq!(defaults.url_group(&stored), defaults.url_group(&u));
}

/// A left-out part after a `;` keeps its `=` only if it had one: an `=` added moved its
/// pair's first `=`, so two pairs of different names (`q%00;utm_source;x=1` is named
/// `q\0;utm_source;x` to an origin splitting at `&` only) were written alike, and a query
/// holding both keyed as the one with them the other way round, which PHP (taking the last
/// of two names read as one) reads differently. Found by review.
#[test]
fn a_left_out_part_after_a_semicolon_keeps_its_pair_s_name() {
    let (a, b) = ("q%00;utm_source;x=1", "q%00;utm_source=;x=1");
    for rules in [
        KeyRules::default().ignored_parameters(["utm_source"]),
        KeyRules::default(),
    ] {
        let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
        assert_ne!(key(&format!("?{a}&{b}")), key(&format!("?{b}&{a}")));
        let (a, b) = (
            a.replace("utm_source", "api_key"),
            b.replace("utm_source", "api_key"),
        );
        assert_ne!(key(&format!("?{a}&{b}")), key(&format!("?{b}&{a}")));
    }
    let rules = KeyRules::default().ignored_parameters(["utm_source"]);
    let u = url("https://example.com/p?q;utm_source;x=1&q;utm_source=s;x=1");
    let stored = rules.redact_url(&u);
    assert_eq!(
        stored.as_str(),
        "https://example.com/p?q;utm_source;x=1&q;utm_source=;x=1"
    );
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
}

/// What follows the first `;` of a pair led by a credential counts in the key even when
/// credentials do not, in the credential's name as in its value (`api_key[;x=1` is `api_key`
/// to Rack reading names as arrays, and `x=1` a parameter of its own to Rack splitting at
/// `;`). Only the value's was counted. Found by review.
#[test]
fn what_follows_a_semicolon_in_a_credential_s_name_counts() {
    let rules = KeyRules::default().per_credential(false);
    assert!(rules.is_credential_parameter("api_key[;x"));
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    assert_ne!(key("?api_key[;x=1"), key("?api_key[;x=2"));
    assert_ne!(key("?api_key=T;x=1"), key("?api_key=T;x=2"));
    assert_eq!(key("?api_key=A;x=1"), key("?api_key=B;x=1"));
}

/// A value holding a raw `]=` is keyed as written: Express's `qs` splits the pair there
/// (`x=a]=b` sets `x=a]` to `b`), every other reader at its first `=`, as all read
/// `x=a%5D=b`. Decoded, the two shared a key. Found by review.
#[test]
fn a_value_holding_a_raw_bracket_before_an_equals_sign_is_keyed_as_written() {
    let rules = KeyRules::default();
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    assert_ne!(key("?x=a]=b"), key("?x=a%5D=b"));
    assert_ne!(key("?x=a]=b"), key("?x=a%5D%3Db"));
    assert_eq!(key("?x=a%5D=b"), key("?x=a%5D%3Db"));
    assert_eq!(key("?y=1&x=a]=b"), key("?x=a]=b&y=1"), "still sorted");
    let u = url("https://example.com/p?x=a]=b&api_key=S");
    let stored = rules.redact_url(&u);
    assert_eq!(stored.as_str(), "https://example.com/p?x=a]=b");
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
}

/// A credential taken as written (`%zz`, a raw `]=`) and one of its name taken decoded keep
/// the order the request holds them in: to an origin taking a repeated name's last value,
/// the two orders are different principals. Sorted by their own names, the written one went
/// first in both, and they shared a key. Found by review.
#[test]
fn credentials_of_one_name_keep_their_order_however_each_is_taken() {
    let rules = KeyRules::default();
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    assert_ne!(key("?api_key=%zz&api_key=B"), key("?api_key=B&api_key=%zz"));
    assert_ne!(
        key("?api_key=a]=b&api_key=c"),
        key("?api_key=c&api_key=a]=b")
    );
    assert_eq!(key("?api_key=A&x=1"), key("?x=1&api_key=A"));
}

/// An empty name the rules leave out (`ignored_parameters([""])`) is left out of the stored
/// URL too: the key left `=T` out, the stored URL kept it, value and all. Found by review.
#[test]
fn an_empty_name_left_out_of_the_key_is_left_out_of_the_stored_url() {
    let rules = KeyRules::default().ignored_parameters([""]);
    let u = url("https://example.com/p?=T&a=1");
    let stored = rules.redact_url(&u);
    assert_eq!(stored.as_str(), "https://example.com/p?a=1");
    assert_eq!(rules.url_group(&stored), rules.url_group(&u));
}

/// With credentials shared (`per_credential(false)`), a credential whose value holds a raw
/// `]=` still counts whole, as does an ignored parameter's: to Express's `qs`, `api_key=x]=1`
/// sets a parameter `api_key=x]` to `1`, no credential. And a credential written by its name alone (read as another's)
/// keeps the spelling of a name holding a `%` that escapes nothing: `api_key[%zz]` is not
/// `api_key[%25zz]` to an origin refusing the first. Found by review.
#[test]
fn shared_credentials_still_count_what_another_origin_reads_apart() {
    let rules = KeyRules::default().per_credential(false);
    let key = |u: &str| get(&rules, &format!("https://example.com/p{u}"));
    assert_ne!(key("?api_key=x]=1"), key("?api_key=x]=2"));
    let ignored = KeyRules::default().ignored_parameters(["utm_source"]);
    let key_ignored = |u: &str| get(&ignored, &format!("https://example.com/p{u}"));
    assert_ne!(
        key_ignored("?utm_source=x]=1"),
        key_ignored("?utm_source=x]=2")
    );
    assert_eq!(key_ignored("?utm_source=a"), key_ignored("?utm_source=b"));
    assert_eq!(
        key("?api_key=A"),
        key("?api_key=B"),
        "the credential itself shared"
    );
    assert_ne!(
        key("?api_key[%zz]=S&api.key=T"),
        key("?api_key[%25zz]=S&api.key=T")
    );
    for u in [
        "https://example.com/p?api_key[%zz]=S&api.key=T",
        "https://example.com/p?api%5Fkey=S&api.key=T&x=1",
    ] {
        let u = url(u);
        let stored = rules.redact_url(&u);
        assert_eq!(rules.url_group(&stored), rules.url_group(&u), "{u}");
    }
}

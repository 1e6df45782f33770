//! Property tests of cache keys: requests that are the same resource get one key whatever way
//! their URL is written; requests that differ in what the origin sees get different keys.
//!
//! Each property runs 256 cases by default (the whole file takes a few seconds in debug).
//! `PROPTEST_CASES` overrides that; a long run, in release:
//!
//! ```sh
//! PROPTEST_CASES=1000000 cargo test -p cache-http --release --test key_properties
//! ```
//!
//! A failure is shrunk to a minimal input, printed, and saved under
//! `tests/key_properties.proptest-regressions` so later runs try it first (commit that file).

use cache_core::{CacheKey, VaryIndex};
use cache_http::vary::variant_key;

use cache_http::{KeyRules, MatchHeaders};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use url::Url;

// The property-test configuration and HTTP strategies the codec's properties use too: one
// copy, beside those tests (the engine left cache-core with the key tests).
#[path = "../../cache-core/tests/common/mod.rs"]
mod common;
use common::{config, header_value_byte, method};

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["http", "https"])
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        // Labels never start with "xn--" (a punycode label would have to be valid).
        "[a-wyz][a-z0-9]{0,6}(-[a-z0-9]{1,4})?(\\.[a-wyz][a-z0-9]{0,6}(-[a-z0-9]{1,4})?){0,2}",
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
    ]
}

/// A path segment as text: unreserved characters, sub-delims, and characters the URL parser
/// percent-encodes itself (space, quotes, angle brackets, braces, backtick, non-ASCII).
/// Never ends with a space, which the parser would trim off the end of a URL.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9._~!$&'()*+,;=:@ \"<>{}`é€-]{0,11}[a-zA-Z0-9._~!$&'()*+,;=:@\"<>{}`é€-]",
    ]
}

/// A character the URL parser percent-encodes itself when it appears raw in a path.
fn parser_escaped_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec![' ', '"', '<', '>', '{', '}', '`', 'é', '€'])
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 0..4)
}

/// Query parameter names and values as text (decoded): anything, including the characters
/// that must be escaped in a query (`&`, `=`, `+`, `#`, `%`, space) and non-ASCII.
fn query_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 &=+#%/?._~é-]{0,8}"
}

/// Parameters with names never ignored nor credentials by default.
fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (query_text().prop_map(|n| format!("p{n}")), query_text()),
        0..6,
    )
}

fn header_value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(header_value_byte(), 0..24)
}

/// Visible ASCII but the comma, or a lone UTF-8 continuation byte (never valid UTF-8, never
/// whitespace once decoded).
fn non_utf8_value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        (0x21u8..=0x7e).prop_filter("not a comma", |b| *b != b','),
        0x80u8..=0xbf
    ]
}

/// Header value bytes that are UTF-8 text.
fn header_value_text() -> impl Strategy<Value = Vec<u8>> {
    "[ -~\té]{0,24}".prop_map(String::into_bytes)
}

// ---------------------------------------------------------------------------------------------
// Building URLs
// ---------------------------------------------------------------------------------------------

/// A URL spelled as a person would: segments and parameters percent-encoded with uppercase
/// hex, only what must be escaped.
struct Spelling {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
    path: Vec<String>,
    params: Option<Vec<(String, String)>>,
    fragment: Option<String>,
}

/// Escapes every byte outside unreserved and sub-delims (for paths: `/`, `%`, `?`, `#` too).
fn escape_path(segment: &str, encode_all_escapable: bool) -> String {
    let mut out = String::new();
    for c in segment.chars() {
        let keep = c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c);
        let parser_escapes = " \"<>`{}".contains(c) || !c.is_ascii();
        if keep || (!encode_all_escapable && parser_escapes) {
            out.push(c);
        } else {
            for byte in c.to_string().bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` escaping of one name or value: minimal (`+` for space)
/// or maximal (every byte but alphanumerics as `%XX`, in upper or lower case).
fn escape_query(text: &str, form: QueryForm) -> String {
    let mut out = String::new();
    if let QueryForm::Minimal | QueryForm::RawEquals = form {
        for c in text.chars() {
            match c {
                c if c.is_ascii_alphanumeric() || "-._~*".contains(c) => out.push(c),
                ' ' => out.push('+'),
                // Raw non-ASCII: the URL parser escapes it as UTF-8 itself.
                c if !c.is_ascii() => out.push(c),
                c => out.push_str(&format!("%{:02X}", c as u32)),
            }
        }
        return out;
    }
    for byte in text.bytes() {
        let alnum = byte.is_ascii_alphanumeric();
        match form {
            QueryForm::Minimal | QueryForm::RawEquals => unreachable!("handled above"),
            QueryForm::Upper if alnum => out.push(byte as char),
            QueryForm::Upper => out.push_str(&format!("%{byte:02X}")),
            QueryForm::Lower if alnum => out.push(byte as char),
            QueryForm::Lower => out.push_str(&format!("%{byte:02x}")),
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum QueryForm {
    Minimal,
    Upper,
    Lower,
    /// [`QueryForm::Minimal`], but for a value's `=`s, written raw: only a pair's first `=`
    /// separates, so origins read them alike.
    RawEquals,
}

impl Spelling {
    fn url(&self, path_escaping: bool, query_form: QueryForm) -> Url {
        let text = self.text(path_escaping, query_form);
        Url::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn text(&self, path_escaping: bool, query_form: QueryForm) -> String {
        let mut text = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            text.push_str(&format!(":{port}"));
        }
        for segment in &self.path {
            text.push('/');
            text.push_str(&escape_path(segment, path_escaping));
        }
        if let Some(params) = &self.params {
            text.push('?');
            let pairs: Vec<String> = params
                .iter()
                .map(|(n, v)| {
                    let value = match query_form {
                        // `%3D` is only ever an escaped `=` (a `%` is `%25`).
                        QueryForm::RawEquals => escape_query(v, query_form).replace("%3D", "="),
                        _ => escape_query(v, query_form),
                    };
                    format!("{}={value}", escape_query(n, query_form))
                })
                .collect();
            text.push_str(&pairs.join("&"));
        }
        if let Some(fragment) = &self.fragment {
            text.push('#');
            text.push_str(fragment);
        }
        text
    }
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (scheme(), host(), path(), prop::option::of(params())).prop_map(
        |(scheme, host, path, params)| Spelling {
            scheme,
            host,
            port: None,
            path,
            params,
            fragment: None,
        },
    )
}

fn get(rules: &KeyRules, url: &Url) -> CacheKey {
    rules.key(&Method::GET, url, &HeaderMap::new(), None)
}

fn single_header(name: &HeaderName, value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        name.clone(),
        HeaderValue::from_bytes(value).expect("valid header value bytes"),
    );
    headers
}

/// Randomly changes the case of ASCII letters.
fn recase(text: &str, mask: u64) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Properties: one resource, one key
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The order of query parameters of different names does not matter; a repeated name's
    /// values keep theirs (frameworks read them in order).
    #[test]
    fn parameter_order_does_not_matter(
        base in spelling(),
        params in params(),
        seed in any::<u64>(),
    ) {
        // Names a framework reads as one (PHP's `p.a` and `p_a`) keep their order: not this
        // property's (`names_read_as_one_keep_their_order`).
        let reading = |name: &str| name.replace(['.', ' '], "_");
        let names: std::collections::HashSet<&String> = params.iter().map(|(n, _)| n).collect();
        let readings: std::collections::HashSet<String> =
            names.iter().map(|n| reading(n)).collect();
        prop_assume!(readings.len() == names.len());
        let rules = KeyRules::default();
        let mut shuffled = params.clone();
        // A deterministic shuffle from the seed (Fisher-Yates with a xorshift).
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        // Each name's values back in their first order, wherever the name now stands.
        let mut values: std::collections::HashMap<String, std::collections::VecDeque<String>> =
            std::collections::HashMap::new();
        for (name, value) in &params {
            values.entry(name.clone()).or_default().push_back(value.clone());
        }
        for (name, value) in &mut shuffled {
            if let Some(first) = values.get_mut(name.as_str()).and_then(|v| v.pop_front()) {
                *value = first;
            }
        }
        let a = Spelling { params: Some(params), ..base };
        let b = Spelling { params: Some(shuffled), ..a.clone_without_params() };
        prop_assert_eq!(
            get(&rules, &a.url(false, QueryForm::Minimal)),
            get(&rules, &b.url(false, QueryForm::Minimal))
        );
    }

    /// Scheme and host case, an explicit default port, and a fragment do not matter.
    #[test]
    fn case_default_port_and_fragment_do_not_matter(
        base in spelling(),
        mask in any::<u64>(),
        fragment in "[a-zA-Z0-9/?#%. -]{0,12}",
    ) {
        let rules = KeyRules::default();
        let plain = base.url(false, QueryForm::Minimal);
        let default_port = if base.scheme == "https" { 443 } else { 80 };
        let query = plain.query().map(|q| format!("?{q}")).unwrap_or_default();
        let text = format!(
            "{}://{}:{default_port}{}{query}#{fragment}",
            recase(base.scheme, mask.rotate_left(17)),
            recase(&base.host, mask),
            plain.path(),
        );
        let variant = Url::parse(&text).expect("a URL");
        prop_assert_eq!(get(&rules, &plain), get(&rules, &variant), "{} vs {}", plain, text);
    }

    /// Spellings the URL parser makes equal give one key: a path with characters the parser
    /// escapes itself, written raw in one text and escaped by hand in the other. Every case
    /// has such a character, so the two texts always differ; each is parsed on its own.
    #[test]
    fn spellings_the_parser_makes_equal_share_a_key(
        base in spelling(),
        escaped_by_parser in parser_escaped_char(),
        at in any::<prop::sample::Index>(),
    ) {
        let rules = KeyRules::default();
        let mut base = base;
        let position = at.index(base.path.len() + 1);
        base.path.insert(position, format!("a{escaped_by_parser}b"));
        let raw = base.text(false, QueryForm::Minimal);
        let escaped = base.text(true, QueryForm::Minimal);
        prop_assert_ne!(&raw, &escaped, "two different spellings");
        let key = |text: &str| get(&rules, &Url::parse(text).expect("a URL"));
        prop_assert_eq!(key(&raw), key(&escaped), "{} vs {}", raw, escaped);
    }

    /// Query parameters are compared decoded: `+` or `%20`, `%41` or `A`, upper or lower-case
    /// hex, a value's `=` raw or `%3D`, all give one key (url::Url itself keeps these
    /// spellings apart).
    #[test]
    fn query_escaping_does_not_matter(base in spelling(), params in params()) {
        let rules = KeyRules::default();
        let spelling = Spelling { params: Some(params), ..base };
        let forms = [QueryForm::Minimal, QueryForm::Upper, QueryForm::Lower, QueryForm::RawEquals];
        let keys: Vec<CacheKey> = forms
            .into_iter()
            .map(|form| get(&rules, &spelling.url(false, form)))
            .collect();
        prop_assert_eq!(keys[0], keys[1]);
        prop_assert_eq!(keys[0], keys[2]);
        prop_assert_eq!(keys[0], keys[3]);
    }

    /// Ignored parameters (here `session`) do not matter, wherever they are.
    #[test]
    fn ignored_parameters_do_not_matter(
        base in spelling(),
        params in params(),
        session in query_text(),
        at in any::<prop::sample::Index>(),
    ) {
        let rules = KeyRules::default().ignored_parameters(["session"]);
        let with = {
            let mut with = params.clone();
            with.insert(at.index(params.len() + 1), ("session".to_owned(), session));
            with
        };
        let a = Spelling { params: Some(params), ..base.clone_without_params() };
        let b = Spelling { params: Some(with), ..base };
        prop_assert_eq!(
            get(&rules, &a.url(false, QueryForm::Minimal)),
            get(&rules, &b.url(false, QueryForm::Minimal))
        );
    }

    /// The URL stored with an entry (the request's, redacted) is in the entry's URL group,
    /// however the query was written and wherever its ignored parameters and credentials
    /// were, beside a name the origin may read as one of them or not: a deletion by the
    /// stored URL, as a listing shows it, reaches the entry.
    #[test]
    fn the_stored_url_is_in_its_request_s_group(
        base in spelling(),
        params in params(),
        left_out in prop::collection::vec(
            (prop::sample::select(vec!["session", "Session", "api_key", "page_size"]), query_text()),
            1..3,
        ),
        at in prop::collection::vec(any::<prop::sample::Index>(), 3),
        form in prop::sample::select(vec![
            QueryForm::Minimal,
            QueryForm::Upper,
            QueryForm::Lower,
            QueryForm::RawEquals,
        ]),
        beside_a_folding_name in any::<bool>(),
    ) {
        let rules = KeyRules::default().ignored_parameters(["session", "page_size"]);
        let mut params = params;
        if beside_a_folding_name {
            params.push(("page.size".to_owned(), "1".to_owned()));
        }
        for ((name, value), at) in left_out.into_iter().zip(at) {
            params.insert(at.index(params.len() + 1), (name.to_owned(), value));
        }
        let url = Spelling { params: Some(params), ..base }.url(false, form);
        let stored = rules.redact_url(&url);
        prop_assert_eq!(
            rules.url_group(&stored),
            rules.url_group(&url),
            "{} stored as {}",
            url,
            stored
        );
    }

    /// Keys are a pure function of the request: computing one twice, or from a reparsed URL,
    /// gives the same key.
    #[test]
    fn keys_are_deterministic(base in spelling(), method in method()) {
        let rules = KeyRules::default();
        let url = base.url(false, QueryForm::Minimal);
        let reparsed = Url::parse(url.as_str()).expect("a URL's text parses");
        let h = HeaderMap::new();
        prop_assert_eq!(rules.key(&method, &url, &h, None), rules.key(&method, &reparsed, &h, None));
        let key = rules.key(&method, &url, &h, None);
        prop_assert_eq!(key.as_str().parse::<CacheKey>().ok(), Some(key));
    }
}

// ---------------------------------------------------------------------------------------------
// Properties: different requests, different keys
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Different paths are different resources.
    #[test]
    fn different_paths_differ(base in spelling(), a in path(), mut b in path(), extra in segment()) {
        let rules = KeyRules::default();
        let ua = Spelling { path: a, ..base.clone_without_params() }.url(false, QueryForm::Minimal);
        let mut ub = Spelling { path: b.clone(), ..base.clone_without_params() }.url(false, QueryForm::Minimal);
        if ua.path() == ub.path() {
            // Often both empty: make them differ by a segment.
            b.push(format!("{extra}z"));
            ub = Spelling { path: b, ..base.clone_without_params() }.url(false, QueryForm::Minimal);
        }
        prop_assert_ne!(ua.path(), ub.path());
        prop_assert_ne!(get(&rules, &ua), get(&rules, &ub), "{} vs {}", ua, ub);
    }

    /// A parameter with another value (as text) is another resource.
    #[test]
    fn different_parameter_values_differ(
        base in spelling(),
        params in params(),
        name in query_text(),
        a in query_text(),
        b in query_text(),
    ) {
        prop_assume!(a != b);
        let rules = KeyRules::default();
        let name = format!("p{name}");
        let with = |value: &str| {
            let mut params = params.clone();
            params.push((name.clone(), value.to_owned()));
            Spelling { params: Some(params), ..base.clone_without_params() }.url(false, QueryForm::Minimal)
        };
        let (ua, ub) = (with(&a), with(&b));
        prop_assert_ne!(get(&rules, &ua), get(&rules, &ub), "{} vs {}", ua, ub);
    }

    /// Query values are bytes once decoded: values that are not UTF-8 (`%FF` vs `%FE`) are
    /// different resources too.
    #[test]
    fn different_non_utf8_parameter_values_differ(
        base in spelling(),
        a in prop::collection::vec(any::<u8>(), 1..6),
        b in prop::collection::vec(any::<u8>(), 1..6),
    ) {
        prop_assume!(a != b);
        let rules = KeyRules::default();
        let with = |value: &[u8]| {
            let escaped: String = value.iter().map(|b| format!("%{b:02X}")).collect();
            let url = base.url(false, QueryForm::Minimal);
            Url::parse(&format!("{}://{}{}?v={escaped}", url.scheme(), url.host_str().unwrap_or_default(), url.path())).expect("a URL")
        };
        let (ua, ub) = (with(&a), with(&b));
        prop_assert_ne!(get(&rules, &ua), get(&rules, &ub), "{} vs {}", ua, ub);
    }

    /// Another method is another request.
    #[test]
    fn different_methods_differ(base in spelling(), a in method(), b in method()) {
        prop_assume!(a != b);
        let rules = KeyRules::default();
        let url = base.url(false, QueryForm::Minimal);
        let h = HeaderMap::new();
        prop_assert_ne!(rules.key(&a, &url, &h, None), rules.key(&b, &url, &h, None));
    }

    /// Another value of a matched header is another request, with `MatchHeaders::Only` and
    /// `MatchHeaders::All`; an unmatched header changes nothing.
    #[test]
    fn different_matched_header_values_differ(
        base in spelling(),
        a in header_value_bytes(),
        b in header_value_bytes(),
        other in header_value_bytes(),
    ) {
        prop_assume!(a != b);
        let url = base.url(false, QueryForm::Minimal);
        let name = HeaderName::from_static("accept-language");
        let (ha, hb) = (single_header(&name, &a), single_header(&name, &b));
        for rules in [
            KeyRules::default().match_headers(MatchHeaders::Only(vec![name.clone()])),
            KeyRules::default().match_headers(MatchHeaders::All),
        ] {
            prop_assert_ne!(
                rules.key(&Method::GET, &url, &ha, None),
                rules.key(&Method::GET, &url, &hb, None)
            );
        }
        // Absent and present (even empty) differ.
        let only = KeyRules::default().match_headers(MatchHeaders::Only(vec![name.clone()]));
        prop_assert_ne!(
            only.key(&Method::GET, &url, &ha, None),
            only.key(&Method::GET, &url, &HeaderMap::new(), None)
        );
        // A header that is not matched does not count.
        let mut with_other = ha.clone();
        with_other.insert("x-trace", HeaderValue::from_bytes(&other).expect("valid"));
        prop_assert_eq!(
            only.key(&Method::GET, &url, &ha, None),
            only.key(&Method::GET, &url, &with_other, None)
        );
        prop_assert_eq!(
            KeyRules::default().key(&Method::GET, &url, &ha, None),
            KeyRules::default().key(&Method::GET, &url, &hb, None),
            "no headers are matched by default"
        );
    }

    /// Another body is another request (raw bodies compare as bytes).
    #[test]
    fn different_bodies_differ(
        base in spelling(),
        a in prop::collection::vec(any::<u8>(), 0..64),
        b in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assume!(a != b);
        let rules = KeyRules::default();
        let url = base.url(false, QueryForm::Minimal);
        let h = HeaderMap::new();
        prop_assert_ne!(
            rules.key(&Method::POST, &url, &h, Some(&a)),
            rules.key(&Method::POST, &url, &h, Some(&b))
        );
    }

    /// JSON numbers count by their exact value as written, however many digits they have:
    /// changing the last digit of an integer past `u64` or a decimal past `f64`'s precision
    /// changes the key; trailing fraction zeros do not.
    #[test]
    fn different_json_numbers_differ(
        a in "-?[1-9][0-9]{0,40}(\\.[0-9]{1,30})?",
        zeros in 1..4usize,
    ) {
        let rules = KeyRules::default();
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let url = Url::parse("https://example.com/search").expect("valid");
        let key = |n: &str| {
            let body = format!("{{\"page\":1,\"n\":[{n}]}}");
            rules.key(&Method::POST, &url, &h, Some(body.as_bytes()))
        };
        let mut b = a.clone().into_bytes();
        let last = b.last_mut().expect("a digit");
        *last = b'0' + (*last - b'0' + 1) % 10;
        let b = String::from_utf8(b).expect("ASCII");
        prop_assert_ne!(key(&a), key(&b), "{} vs {}", a, b);
        if a.contains('.') {
            let padded = format!("{a}{}", "0".repeat(zeros));
            prop_assert_eq!(key(&a), key(&padded), "the same number");
        }
    }

    /// Vary variants: another value of a varied request header that is no list (as text)
    /// selects another variant; only surrounding whitespace does not.
    #[test]
    fn different_vary_values_select_different_variants(
        a in header_value_text(),
        b in header_value_text(),
        generation in any::<u64>(),
    ) {
        let name = HeaderName::from_static("x-variant");
        let normalize = |v: &[u8]| v.trim_ascii().to_vec();
        prop_assume!(normalize(&a) != normalize(&b));
        let index = VaryIndex { headers: vec![name.clone()], generation };
        let url_key = CacheKey::from_digest([1; 16]);
        prop_assert_ne!(
            variant_key(&url_key, &index, &single_header(&name, &a)),
            variant_key(&url_key, &index, &single_header(&name, &b))
        );
    }

    /// Non-UTF-8 values of a varied header are different variants too.
    #[test]
    fn different_non_utf8_vary_values_select_different_variants(
        a in prop::collection::vec(non_utf8_value_byte(), 1..8),
        b in prop::collection::vec(non_utf8_value_byte(), 1..8),
    ) {
        // No spaces: the values are compared as they are.
        prop_assume!(a != b);
        let name = HeaderName::from_static("x-variant");
        let index = VaryIndex { headers: vec![name.clone()], generation: 1 };
        let url_key = CacheKey::from_digest([1; 16]);
        prop_assert_ne!(
            variant_key(&url_key, &index, &single_header(&name, &a)),
            variant_key(&url_key, &index, &single_header(&name, &b))
        );
    }
}

impl Spelling {
    fn clone_without_params(&self) -> Self {
        Self {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            params: None,
            fragment: self.fragment.clone(),
        }
    }
}

impl std::fmt::Debug for Spelling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(false, QueryForm::Minimal))
    }
}

/// The URL parser's own equalities, pinned: IDN hosts, and the same URL with and without
/// an explicit default port and empty query.
#[test]
fn parser_equal_urls_share_a_key() {
    let rules = KeyRules::default();
    for (a, b) in [
        (
            "https://BÜCHER.example/x",
            "https://xn--bcher-kva.example/x",
        ),
        ("https://example.com", "https://example.com:443/"),
        ("http://example.com:80/a b", "http://EXAMPLE.com/a%20b"),
        ("https://example.com/p?", "https://example.com/p"),
        ("https://example.com/p?#f", "https://example.com/p"),
        ("https://example.com/./a/../p", "https://example.com/p"),
    ] {
        let (ua, ub) = (Url::parse(a).unwrap(), Url::parse(b).unwrap());
        assert_eq!(get(&rules, &ua), get(&rules, &ub), "{a} vs {b}");
    }
}

/// Form bodies are keyed decoded, like queries: non-UTF-8 values must not collide either.
#[test]
fn non_utf8_form_bodies_differ() {
    let rules = KeyRules::default();
    let url = Url::parse("https://example.com/search").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_ne!(
        rules.key(&Method::POST, &url, &headers, Some(b"v=%80")),
        rules.key(&Method::POST, &url, &headers, Some(b"v=%81"))
    );
}

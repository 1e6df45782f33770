//! `Vary` (RFC 9111 §4.1): several stored variants of one URL, told apart by the request
//! headers the response names.
//!
//! The URL's own key holds a small [`VaryIndex`](cache_core::VaryIndex) listing the header names;
//! each variant lives under [`variant_key`], the URL key combined with the request's normalized
//! values of those headers. A response with `Vary: *` never matches a later request, so it is
//! not stored.

use http::header::VARY;
use http::{HeaderMap, HeaderName};

use cache_core::CacheKey;

use crate::key::KeyHasher;

/// What a response's `Vary` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vary {
    /// No `Vary`: one entry per URL key.
    None,
    /// `Vary: *`: no later request matches; do not store.
    Any,
    /// These request headers (lowercase, sorted, deduplicated) select the variant.
    Headers(Vec<HeaderName>),
}

/// The most distinct request headers a stored response may vary on. A response naming more
/// is treated as `Vary: *` and not stored (RFC 9111 lets a cache decline to store): every
/// variant's index holds the names and every hit hashes the request's values of all of them,
/// and an origin's 400 KB `Vary` named a hundred thousand. Real ones name a handful.
pub const MAX_VARY_NAMES: usize = cache_core::VaryIndex::MAX_NAMES;

/// The longest header name a stored response may vary on, in bytes: a response naming a
/// longer one is treated as `Vary: *` and not stored (see
/// [`VaryIndex::MAX_NAME_LEN`](cache_core::VaryIndex::MAX_NAME_LEN)).
pub const MAX_VARY_NAME_LEN: usize = cache_core::VaryIndex::MAX_NAME_LEN;

/// Reads every `Vary` line of a response. Names are case-insensitive; unparseable names make
/// the response unmatchable, like `*`, as do more than [`MAX_VARY_NAMES`] distinct names and
/// a name longer than [`MAX_VARY_NAME_LEN`].
pub fn parse_vary(headers: &HeaderMap) -> Vary {
    let mut names: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(VARY) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" || name.len() > MAX_VARY_NAME_LEN {
                return Vary::Any;
            }
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => names.push(name),
                Err(_) => return Vary::Any,
            }
        }
    }
    if names.is_empty() {
        return Vary::None;
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    if names.len() > MAX_VARY_NAMES {
        return Vary::Any;
    }
    Vary::Headers(names)
}

/// Headers whose values compare case-insensitively (media types, codings, language tags).
const CASE_INSENSITIVE_VALUES: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
];

/// Request headers whose values are comma-separated lists (RFC 9110 §5.6.1): their members
/// are what counts, however the lines split them and whatever whitespace surrounds them.
const LISTS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "connection",
    "expect",
    "if-match",
    "if-none-match",
    "pragma",
    "prefer",
    "te",
    "upgrade",
    "via",
    "access-control-request-headers",
    "forwarded",
    "x-forwarded-for",
    // The client hints whose value is a structured-field list (RFC 8941 §3.1): the others
    // are single items.
    "sec-ch-ua",
    "sec-ch-ua-full-version-list",
];

/// A request header's value as variants compare it. A list (`Accept*`, `Cache-Control`,
/// `If-None-Match`, `Prefer`, `TE`, `Via`, `Forwarded`, the client hints `Sec-CH-UA` and
/// `Sec-CH-UA-Full-Version-List`, and a few more): all field lines
/// combined, members trimmed, empty members dropped (and ordered by q-value, for
/// `Accept-Language`), joined with ", ", lowercased where values are case-insensitive. Any
/// other header, whose syntax the cache does not know (`User-Agent`, `Cookie`,
/// `Authorization`, `X-Tenant`), counts as sent, each line trimmed of surrounding whitespace
/// and lines apart: a comma in a user agent or a cookie is part of the value, so `a,b` and
/// `a, b` select different variants, as do one line `a, b` and two lines `a` and `b`. `None`
/// when the header is absent. Values that are not UTF-8 are compared as bytes (trimmed of
/// ASCII whitespace), so two different ones never select one variant.
pub fn normalized_value(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut value = Vec::new();
    write_normalized_value(headers, name, &mut value).then_some(value)
}

/// Appends [`normalized_value`] to `out`; false (nothing appended) when the header is absent.
/// Members go straight into `out`: a variant key's hashed bytes are built with no buffer of
/// their own per header.
fn write_normalized_value(headers: &HeaderMap, name: &HeaderName, out: &mut Vec<u8>) -> bool {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return false;
    }
    if !LISTS.contains(&name.as_str()) {
        // Lines apart by a byte no header value holds.
        for (i, line) in lines.enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(line.as_bytes().trim_ascii());
        }
        return true;
    }
    let members = lines.flat_map(|value| list_members(value.as_bytes()));
    let start = out.len();
    // Languages in order of preference: by q-value, highest first (RFC 9110 §12.5.4), so
    // `en, de;q=0.5` and `de;q=0.5, en` select one variant. Ties keep their order (a stable
    // sort): servers commonly break them by list order, so `en, de` and `de, en` stay apart.
    if name == http::header::ACCEPT_LANGUAGE {
        let mut sorted: Vec<&[u8]> = members.collect();
        sorted.sort_by(|a, b| quality(b).total_cmp(&quality(a)));
        join_into(sorted.into_iter(), out);
    } else {
        join_into(members, out);
    }
    if name == http::header::ACCEPT {
        lowercase_all_but_parameter_values(&mut out[start..]);
    } else if CASE_INSENSITIVE_VALUES.contains(&name.as_str()) {
        out[start..].make_ascii_lowercase();
    }
    true
}

/// Lowercases media ranges (`Text/HTML;Level=1, */*`) but for their parameters' values,
/// which may be case-sensitive (RFC 9110 §5.6.6, §12.5.1: a JSON-LD `profile` URI): made
/// lowercase, `profile="https://ex.org/A"` and `.../a` selected one variant.
fn lowercase_all_but_parameter_values(ranges: &mut [u8]) {
    let (mut in_value, mut in_quotes, mut escaped) = (false, false, false);
    for byte in ranges {
        if in_quotes {
            match (*byte, escaped) {
                (_, true) => escaped = false,
                (b'\\', false) => escaped = true,
                (b'"', false) => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match *byte {
            b'"' if in_value => in_quotes = true,
            b'=' => in_value = true,
            b';' | b',' => in_value = false,
            _ if !in_value => byte.make_ascii_lowercase(),
            _ => {}
        }
    }
}

/// The non-empty, trimmed members of one field line: split at the commas outside quoted
/// strings (RFC 9110 §5.6.4: `text/html;x="a,b"` is one member, whose `a,b` is not `a, b`),
/// trimmed as text, or as bytes (of ASCII whitespace) when the line is not UTF-8.
fn list_members(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = std::str::from_utf8(line).ok();
    unquoted_comma_split(line)
        .map(move |member| match text {
            // Cut at ASCII commas, so each member of a UTF-8 line is text too.
            Some(text) => text[member].trim().as_bytes(),
            None => line[member].trim_ascii(),
        })
        .filter(|member| !member.is_empty())
}

/// The ranges of `line` between its commas outside quoted strings. A backslash inside quotes
/// escapes the byte after it; a quote left open runs to the end of the line.
fn unquoted_comma_split(line: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let (mut quoted, mut escaped) = (false, false);
        let comma = line[from..].iter().position(|&b| {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => return true,
                _ => {}
            }
            false
        });
        let end = comma.map_or(line.len(), |at| from + at);
        start = comma.map(|_| end + 1);
        Some(from..end)
    })
}

/// Appends `members` to `out`, separated by ", ".
fn join_into<'a>(members: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for (i, member) in members.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(member);
    }
}

/// The `q` weight of a list member (`de;q=0.5`): 1 when absent, 0 when unreadable (as
/// a weight no recipient would read either).
fn quality(member: &[u8]) -> f32 {
    let Some(at) = member.iter().position(|&b| b == b';') else {
        return 1.0;
    };
    let params = std::str::from_utf8(&member[at + 1..]).unwrap_or_default();
    for param in params.split(';') {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                return value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
    }
    1.0
}

/// The key of the variant a request selects among a URL's responses, per its Vary index.
pub fn variant_key(
    url_key: &CacheKey,
    index: &cache_core::VaryIndex,
    request: &HeaderMap,
) -> CacheKey {
    // Length-prefixed fields hashed at once, as URL keys are: the bytes (so the keys) are
    // those a field-by-field hasher took in earlier versions.
    let mut hasher = KeyHasher::tagged(b"reqwest-caching/variant/v1");
    hasher.field(url_key.as_str().as_bytes());
    hasher.field(&index.generation.to_le_bytes());
    for name in &index.headers {
        hasher.field(name.as_str().as_bytes());
        if !request.contains_key(name) {
            hasher.field(b"absent");
            continue;
        }
        hasher.field(b"present");
        // The value is normalized straight into the buffer.
        hasher.field_with(|out| {
            write_normalized_value(request, name, out);
        });
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn parses_names_case_insensitively_across_lines() {
        let vary = parse_vary(&headers(&[
            ("vary", "Accept-Language, accept-encoding"),
            ("vary", "ACCEPT-ENCODING"),
        ]));
        assert_eq!(
            vary,
            Vary::Headers(vec![
                HeaderName::from_static("accept-encoding"),
                HeaderName::from_static("accept-language")
            ])
        );
        assert_eq!(parse_vary(&headers(&[("vary", "accept, *")])), Vary::Any);
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("x-{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let most = names(MAX_VARY_NAMES);
        assert!(matches!(
            parse_vary(&headers(&[("vary", &most), ("vary", &most)])),
            Vary::Headers(kept) if kept.len() == MAX_VARY_NAMES
        ));
        let too_many = names(MAX_VARY_NAMES + 1);
        assert_eq!(parse_vary(&headers(&[("vary", &too_many)])), Vary::Any);
        let longest = "x".repeat(MAX_VARY_NAME_LEN);
        assert!(matches!(
            parse_vary(&headers(&[("vary", &format!("accept, {longest}"))])),
            Vary::Headers(kept) if kept.len() == 2
        ));
        let too_long = "x".repeat(MAX_VARY_NAME_LEN + 1);
        let too_long = format!("accept, {too_long}");
        assert_eq!(parse_vary(&headers(&[("vary", &too_long)])), Vary::Any);
        assert_eq!(parse_vary(&headers(&[("vary", " , ")])), Vary::None);
        assert_eq!(parse_vary(&HeaderMap::new()), Vary::None);
    }

    #[test]
    fn commas_in_quoted_strings_do_not_split_list_members() {
        let accept = |value: &str| {
            normalized_value(&headers(&[("accept", value)]), &http::header::ACCEPT).unwrap()
        };
        // One member each, whose quoted commas differ: two variants.
        assert_ne!(
            accept(r#"text/html;x="a,b""#),
            accept(r#"text/html;x="a, b""#)
        );
        assert_eq!(accept(r#"text/html;x="a,b""#), br#"text/html;x="a,b""#);
        // Outside quotes a comma still separates members, whatever surrounds it.
        assert_eq!(accept(r#" a;x="1,2" ,b"#), br#"a;x="1,2", b"#);
        // An escaped quote does not close the string; an open quote runs to the end.
        assert_eq!(accept(r#"a;x="q\",r",b"#), br#"a;x="q\",r", b"#);
        assert_eq!(accept(r#"a;x="q,r"#), br#"a;x="q,r"#);
        // Lists without quotes normalize as before.
        assert_eq!(accept("a,  ,b , c"), b"a, b, c");
    }

    /// `Forwarded`, `X-Forwarded-For` and the client hints that are lists count by their
    /// members, as `Accept` does: a proxy or a browser spacing them otherwise, or sending them
    /// on two lines, selects the same variant; a quoted comma still does not split a member.
    #[test]
    fn forwarding_fields_and_list_client_hints_are_lists() {
        let normalized = |name: &'static str, lines: &[&'static str]| {
            let pairs: Vec<(&str, &str)> = lines.iter().map(|line| (name, *line)).collect();
            normalized_value(&headers(&pairs), &HeaderName::from_static(name)).unwrap()
        };
        assert_eq!(
            normalized(
                "forwarded",
                &["for=192.0.2.60;proto=http,for=198.51.100.17"]
            ),
            normalized(
                "forwarded",
                &["for=192.0.2.60;proto=http", " for=198.51.100.17"]
            )
        );
        assert_eq!(
            normalized("x-forwarded-for", &["203.0.113.1,203.0.113.2"]),
            b"203.0.113.1, 203.0.113.2"
        );
        for hint in ["sec-ch-ua", "sec-ch-ua-full-version-list"] {
            assert_eq!(
                normalized(hint, &[r#""Chromium";v="118","Not,A Brand";v="99""#]),
                normalized(hint, &[r#" "Chromium";v="118",  "Not,A Brand";v="99""#]),
                "{hint}"
            );
            assert_eq!(
                normalized(hint, &[r#""Chromium";v="118","Not,A Brand";v="99""#]),
                br#""Chromium";v="118", "Not,A Brand";v="99""#,
                "{hint}"
            );
        }
        // A single-item hint keeps its commas and lines apart, as any header unknown to be
        // a list does.
        assert_ne!(
            normalized("sec-ch-ua-platform", &[r#""a,b""#]),
            normalized("sec-ch-ua-platform", &[r#""a, b""#])
        );
    }

    /// Variant keys are stored: the bytes hashed for them may never change, whatever way
    /// they are written (a changed key orphans every stored variant).
    #[test]
    fn variant_keys_are_pinned() {
        let key = CacheKey::from_digest([7; 16]);
        let index = |names: &[&'static str], generation| cache_core::VaryIndex {
            headers: names.iter().map(|n| HeaderName::from_static(n)).collect(),
            generation,
        };
        let pinned = [
            (
                index(&["accept-encoding"], 0),
                headers(&[("accept-encoding", "GZIP, br")]),
                "63f84550510f1f9c039823fd658e9cee",
            ),
            (
                index(&["accept-encoding", "accept-language", "x-tenant"], 3),
                headers(&[
                    ("accept-language", "en, DE;q=0.5"),
                    ("accept-language", "fr;q=0.7"),
                    ("x-tenant", "Acme"),
                ]),
                "065b406efc60862003a8b068b3ff8c2d",
            ),
            (
                index(&["accept-encoding"], 1),
                headers(&[("accept-encoding", "")]),
                "1b017618d8b13c6af592e1e58e5a9e5b",
            ),
            (
                index(&["authorization"], 0),
                HeaderMap::new(),
                "8508df0fd4616cc4357e64cf6eb4b672",
            ),
        ];
        for (index, request, expected) in pinned {
            assert_eq!(
                variant_key(&key, &index, &request).as_str(),
                expected,
                "{index:?}"
            );
        }
        let not_utf8 = headers(&[("x-tenant", "a")]);
        let mut not_utf8 = not_utf8;
        not_utf8.append(
            "x-tenant",
            HeaderValue::from_bytes(b" \xff\xfe , b ").unwrap(),
        );
        // Two lines of a header that is no list, each trimmed, kept apart (this key changed
        // when such headers stopped being split at commas).
        assert_eq!(
            variant_key(&key, &index(&["x-tenant"], 0), &not_utf8).as_str(),
            "33a6912f4578c8ae10af68e5fbb7ecd2"
        );
    }

    /// `Accept`'s media ranges compare case-insensitively, their parameters' values as sent
    /// (a JSON-LD `profile` URI is case-sensitive: made lowercase, two profiles shared one
    /// variant).
    #[test]
    fn accept_keeps_the_case_of_parameter_values() {
        let accept = HeaderName::from_static("accept");
        let value = |text: &str| normalized_value(&headers(&[("accept", text)]), &accept);
        assert_eq!(
            value(r#"Application/LD+JSON; Profile="https://ex.org/A", */*;Q=0.5"#),
            Some(br#"application/ld+json; profile="https://ex.org/A", */*;q=0.5"#.to_vec())
        );
        assert_ne!(
            value(r#"application/ld+json; profile="https://ex.org/A""#),
            value(r#"application/ld+json; profile="https://ex.org/a""#)
        );
        assert_ne!(value("text/html;level=A"), value("text/html;level=a"));
        assert_eq!(value("TEXT/HTML;LEVEL=1"), value("text/html;level=1"));
        assert_eq!(
            value(r#"a/b;x="q\"Q;=,", C/D"#),
            Some(br#"a/b;x="q\"Q;=,", c/d"#.to_vec()),
            "a quoted value, escapes and all, then the next range"
        );
    }

    #[test]
    fn values_are_normalized() {
        let name = HeaderName::from_static("accept-encoding");
        let a = headers(&[("accept-encoding", "GZIP,  br")]);
        let b = headers(&[("accept-encoding", "gzip"), ("accept-encoding", "br")]);
        assert_eq!(normalized_value(&a, &name), normalized_value(&b, &name));
        let key = CacheKey::from_digest([7; 16]);
        let names = &cache_core::VaryIndex {
            headers: vec![name.clone()],
            generation: 1,
        };
        assert_eq!(variant_key(&key, names, &a), variant_key(&key, names, &b));
        let c = headers(&[("accept-encoding", "br, gzip")]);
        let other_generation = cache_core::VaryIndex {
            generation: 2,
            ..names.clone()
        };
        assert_ne!(
            variant_key(&key, names, &a),
            variant_key(&key, &other_generation, &a)
        );
        assert_ne!(
            variant_key(&key, names, &a),
            variant_key(&key, names, &c),
            "order matters"
        );
        let language = HeaderName::from_static("accept-language");
        assert_eq!(
            normalized_value(&headers(&[("accept-language", "en,  DE;q=0.5")]), &language),
            normalized_value(&headers(&[("accept-language", "de;q=0.5, en")]), &language),
            "language order does not matter (RFC 9110 section 12.5.4)"
        );
        // Headers that are no lists count as sent: commas, empty members and lines are part
        // of the value; only surrounding whitespace is not.
        let agent = HeaderName::from_static("user-agent");
        let value = |lines: &[&str]| {
            let pairs: Vec<_> = lines.iter().map(|line| ("user-agent", *line)).collect();
            normalized_value(&headers(&pairs), &agent)
        };
        assert_ne!(value(&["a,b"]), value(&["a, b"]));
        assert_ne!(value(&["a,,b"]), value(&["a,b"]));
        assert_ne!(value(&["a, b"]), value(&["a", "b"]));
        assert_ne!(value(&["A"]), value(&["a"]), "case counts");
        assert_eq!(value(&["  a, b "]), value(&["a, b"]));
        assert_eq!(value(&["a", "b"]), Some(b"a\nb".to_vec()));
        let empty = headers(&[("accept-encoding", "")]);
        assert_ne!(
            variant_key(&key, names, &empty),
            variant_key(&key, names, &HeaderMap::new()),
            "empty and absent differ"
        );
    }
}

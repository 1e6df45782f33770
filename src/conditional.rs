//! A caller's own conditional request answered from a usable stored response (RFC 9111
//! §4.3.2): when `If-None-Match` or `If-Modified-Since` says the caller's copy is current,
//! the cache answers `304 Not Modified` itself instead of sending the whole body.
//!
//! Evaluated as RFC 9110 §13.2.2 orders it: `If-None-Match` (weak comparison, several tags,
//! `*`) decides when present; otherwise `If-Modified-Since`, against the stored
//! `Last-Modified`, else its `Date`, else when it was stored.
//!
//! Calls only the leaf [`entity_tag`](crate::entity_tag).

use std::time::SystemTime;

use cache_core::CachedResponse;
use cache_http::freshness::http_date;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode};

use crate::entity_tag;

/// True when the request's conditions say the caller already has `stored`.
pub(crate) fn not_modified(
    method: &Method,
    request: &HeaderMap,
    stored: &CachedResponse,
    stored_at: SystemTime,
) -> bool {
    // Preconditions apply only to a response that would be a 2xx (RFC 9110 §13.2.1): a
    // stored error is served as it is.
    if (*method != Method::GET && *method != Method::HEAD) || !stored.status.is_success() {
        return false;
    }
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = stored.headers.get(header::ETAG) else {
            // No tag of ours can match; `*` still matches any current representation.
            return tags(request).any(|tag| tag == b"*");
        };
        let ours = etag.as_bytes();
        return tags(request).any(|tag| tag == b"*" || entity_tag::weak_match(tag, ours));
    }
    let mut since = request.get_all(header::IF_MODIFIED_SINCE).iter();
    let (Some(since), None) = (since.next(), since.next()) else {
        // Absent, or more than one line: ignored (RFC 9110 §13.1.3).
        return false;
    };
    let Some(since) = http_date(since.as_bytes()) else {
        return false;
    };
    let modified = [header::LAST_MODIFIED, header::DATE]
        .iter()
        .find_map(|name| stored.headers.get(name))
        .and_then(|value| http_date(value.as_bytes()))
        .unwrap_or(stored_at);
    modified <= since
}

/// The entity tags of every `If-None-Match` line, as sent.
fn tags(request: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|line| split_list(line.as_bytes()))
}

/// A comma-separated list, commas inside quotes kept; members trimmed, empty ones dropped.
fn split_list(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    line.split(move |&b| {
        if b == b'"' {
            quoted = !quoted;
        }
        b == b',' && !quoted
    })
    .map(<[u8]>::trim_ascii)
    .filter(|member| !member.is_empty())
}

/// The fields a `304` carries from the stored response (RFC 9110 §15.4.5), with `Age` for
/// the current age and `Last-Modified` as the validator when there is no `ETag`.
const KEPT_IN_304: &[HeaderName] = &[
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::AGE,
];

/// `stored` turned into the `304` that answers the request: its status, and only the fields
/// a `304` carries.
pub(crate) fn into_not_modified(mut stored: CachedResponse) -> CachedResponse {
    let mut headers = HeaderMap::new();
    for name in KEPT_IN_304 {
        for value in stored.headers.get_all(name) {
            // Fallible, though a subset of a map always fits.
            let _ = headers.try_append(name.clone(), value.clone());
        }
    }
    if !headers.contains_key(header::ETAG) {
        if let Some(modified) = stored.headers.get(header::LAST_MODIFIED) {
            let _ = headers.try_insert(header::LAST_MODIFIED, modified.clone());
        }
    }
    stored.status = StatusCode::NOT_MODIFIED;
    stored.headers = headers;
    stored.body = bytes::Bytes::new();
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn stored(pairs: &[(&str, &str)]) -> CachedResponse {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        CachedResponse::new(
            StatusCode::OK,
            http::Version::HTTP_11,
            headers,
            bytes::Bytes::from_static(b"body"),
            "http://h/",
            cache_core::CachedRequest::new(Method::GET, "http://h/", HeaderMap::new()),
        )
    }

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        stored(pairs).headers
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison_over_every_tag() {
        let strong = stored(&[("etag", "\"abc\"")]);
        let weak = stored(&[("etag", "W/\"abc\"")]);
        let get = &Method::GET;
        for inm in [
            "\"abc\"",
            "W/\"abc\"",
            "w/\"abc\"",
            "abc",
            "\"x\", \"abc\"",
            "\"x\",\"y\" , \"abc\"",
            "*",
        ] {
            let r = request(&[("if-none-match", inm)]);
            assert!(not_modified(get, &r, &strong, at(0)), "{inm} vs strong");
            assert!(not_modified(get, &r, &weak, at(0)), "{inm} vs weak");
        }
        let other = request(&[("if-none-match", "\"x\", \"y\"")]);
        assert!(!not_modified(get, &other, &strong, at(0)));
        let comma = request(&[("if-none-match", "\"a,bc\"")]);
        assert!(!not_modified(get, &comma, &strong, at(0)));
        assert!(
            !not_modified(
                &Method::POST,
                &request(&[("if-none-match", "*")]),
                &strong,
                at(0)
            ),
            "only GET and HEAD"
        );
    }

    #[test]
    fn if_none_match_decides_over_if_modified_since() {
        let s = stored(&[("etag", "\"abc\""), ("last-modified", &date(0))]);
        let r = request(&[("if-none-match", "\"x\""), ("if-modified-since", &date(10))]);
        assert!(!not_modified(&Method::GET, &r, &s, at(0)));
        let no_tag = stored(&[("last-modified", &date(0))]);
        let r = request(&[("if-none-match", "\"abc\"")]);
        assert!(!not_modified(&Method::GET, &r, &no_tag, at(0)));
    }

    #[test]
    fn if_modified_since_against_last_modified_then_date_then_storage_time() {
        let get = &Method::GET;
        let modified = stored(&[("last-modified", &date(100)), ("date", &date(500))]);
        let since = |secs| request(&[("if-modified-since", &date(secs))]);
        assert!(not_modified(get, &since(100), &modified, at(900)));
        assert!(not_modified(get, &since(200), &modified, at(900)));
        assert!(!not_modified(get, &since(99), &modified, at(900)));
        let dated = stored(&[("date", &date(500))]);
        assert!(not_modified(get, &since(500), &dated, at(900)));
        assert!(!not_modified(get, &since(499), &dated, at(900)));
        let bare = stored(&[]);
        assert!(not_modified(get, &since(900), &bare, at(900)));
        assert!(!not_modified(get, &since(899), &bare, at(900)));
        let invalid = request(&[("if-modified-since", "yesterday")]);
        assert!(!not_modified(get, &invalid, &modified, at(900)));
        let mut twice = since(200);
        twice.append(header::IF_MODIFIED_SINCE, HeaderValue::from_static("x"));
        assert!(!not_modified(get, &twice, &modified, at(900)), "two lines");
    }

    #[test]
    fn the_304_keeps_only_the_fields_rfc_9110_section_15_4_5_names() {
        let s = stored(&[
            ("etag", "\"abc\""),
            ("cache-control", "max-age=60"),
            ("content-type", "text/plain"),
            ("content-length", "4"),
            ("last-modified", &date(0)),
            ("vary", "accept"),
            ("x-other", "1"),
        ]);
        let r = into_not_modified(s);
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        assert!(r.body.is_empty());
        let mut names: Vec<_> = r.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache-control", "etag", "vary"]);
        let by_date = into_not_modified(stored(&[("last-modified", &date(0))]));
        assert!(by_date.headers.contains_key(header::LAST_MODIFIED));
    }
}

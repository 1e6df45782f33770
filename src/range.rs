//! Range requests answered from a stored complete response (RFC 9110 §14, RFC 9111 §3.4):
//! a single byte range becomes a `206 Partial Content` cut from the stored body.
//!
//! Left to the origin (the request goes out as it came, and its answer is not stored):
//! several ranges in one request (a `multipart/byteranges` answer), ranges the stored body
//! cannot satisfy (the origin's `416` says so with authority), units other than `bytes`, and
//! stored responses that are not a complete `200`. Partial responses are never stored, so
//! they are never combined either.
//!
//! Calls [`entity_tag`](crate::entity_tag) (the strong comparison), nothing else in the crate.

use std::ops::Range;

use cache_core::CachedResponse;
use cache_http::freshness::http_date;
use http::header::{self, HeaderMap};
use http::{HeaderValue, StatusCode};

use crate::entity_tag::strong_match;

/// What to answer a request carrying `Range` with, given a usable stored response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// `If-Range` names another version: the whole stored response (RFC 9110 §13.1.5).
    Whole,
    /// These bytes of the stored body, as a `206`.
    Part(Range<usize>),
    /// The cache cannot answer it: send the request to the origin.
    Origin,
}

/// How to answer `request` (which carries `Range`) from `stored`.
pub(crate) fn answer(request: &HeaderMap, stored: &CachedResponse) -> RangeAnswer {
    if stored.status != StatusCode::OK {
        return RangeAnswer::Origin;
    }
    if let Some(condition) = request.get(header::IF_RANGE) {
        match if_range_holds(condition, &stored.headers) {
            Some(true) => {}
            Some(false) => return RangeAnswer::Whole,
            None => return RangeAnswer::Origin,
        }
    }
    let mut lines = request.get_all(header::RANGE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return RangeAnswer::Origin;
    };
    match single_range(line.as_bytes(), stored.body.len()) {
        Some(range) => RangeAnswer::Part(range),
        None => RangeAnswer::Origin,
    }
}

/// `If-Range` (RFC 9110 §13.1.5, strong comparison only): an entity tag holds when it
/// equals the stored strong `ETag`. A date is `None`, for the origin to judge: it holds only
/// when it is a strong validator (§8.8.2.2: the stored response's `Date` well after its
/// `Last-Modified`), which the stored head cannot tell once a `304` has renewed its `Date`.
/// Judged from it, a representation changed twice within a second was cut from the other.
fn if_range_holds(condition: &HeaderValue, stored: &HeaderMap) -> Option<bool> {
    let condition = condition.as_bytes().trim_ascii();
    if condition.starts_with(b"\"") || condition.starts_with(b"W/") {
        let stored = stored.get(header::ETAG);
        return Some(stored.is_some_and(|etag| strong_match(condition, etag.as_bytes())));
    }
    // A date that is not the stored `Last-Modified` (or not a date) cannot hold.
    let modified = stored
        .get(header::LAST_MODIFIED)
        .and_then(|v| http_date(v.as_bytes()));
    match modified.is_some() && modified == http_date(condition) {
        true => None,
        false => Some(false),
    }
}

/// The one byte range `bytes=first-last`, `bytes=first-` or `bytes=-suffix` selects in a
/// body of `len` bytes; `None` for several ranges, other units, syntax errors, or a range
/// the body cannot satisfy.
fn single_range(value: &[u8], len: usize) -> Option<Range<usize>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (unit, spec) = text.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let len64 = u64::try_from(len).ok()?;
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        // A suffix: the last `n` bytes (all of them when the body is shorter).
        (true, false) => {
            let suffix = number(last)?;
            if suffix == 0 {
                return None;
            }
            (len64.saturating_sub(suffix), len64)
        }
        (false, true) => (number(first)?, len64),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return None;
            }
            (first, last.saturating_add(1).min(len64))
        }
        (true, true) => return None,
    };
    if start >= len64 {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

/// `stored` cut down to `range` as a `206 Partial Content`.
pub(crate) fn into_partial(mut stored: CachedResponse, range: Range<usize>) -> CachedResponse {
    let total = stored.body.len();
    let content_range = format!("bytes {}-{}/{total}", range.start, range.end - 1);
    // A map too full to take Content-Range (a stored response may hold every name `http`
    // allows) cannot make a correct 206: the whole response is served instead, which a
    // recipient of Range may always do.
    let framed = HeaderValue::from_str(&content_range).is_ok_and(|value| {
        stored
            .headers
            .try_insert(header::CONTENT_RANGE, value)
            .is_ok()
            && stored
                .headers
                .try_insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()))
                .is_ok()
    });
    if !framed {
        stored.headers.remove(header::CONTENT_RANGE);
        return stored;
    }
    stored.status = StatusCode::PARTIAL_CONTENT;
    stored.body = stored.body.slice(range);
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(body: &'static [u8], pairs: &[(&str, &str)]) -> CachedResponse {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        CachedResponse::new(
            StatusCode::OK,
            http::Version::HTTP_11,
            headers,
            bytes::Bytes::from_static(body),
            "http://h/",
            cache_core::CachedRequest::new(http::Method::GET, "http://h/", HeaderMap::new()),
        )
    }

    fn ask(range: &str, extra: &[(&str, &str)], s: &CachedResponse) -> RangeAnswer {
        let mut request = HeaderMap::new();
        request.insert(header::RANGE, HeaderValue::from_str(range).unwrap());
        for (name, value) in extra {
            request.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        answer(&request, s)
    }

    #[test]
    fn the_three_forms_of_a_byte_range_rfc_9110_section_14_1_2() {
        let s = stored(b"01234567890", &[]);
        assert_eq!(ask("bytes=0-1", &[], &s), RangeAnswer::Part(0..2));
        assert_eq!(ask("bytes=1-", &[], &s), RangeAnswer::Part(1..11));
        assert_eq!(ask("bytes=-1", &[], &s), RangeAnswer::Part(10..11));
        assert_eq!(ask("Bytes = 2 - 4", &[], &s), RangeAnswer::Part(2..5));
        assert_eq!(
            ask("bytes=5-100", &[], &s),
            RangeAnswer::Part(5..11),
            "clipped"
        );
        assert_eq!(
            ask("bytes=-100", &[], &s),
            RangeAnswer::Part(0..11),
            "all of it"
        );
    }

    #[test]
    fn what_the_cache_leaves_to_the_origin() {
        let s = stored(b"0123456789", &[]);
        for range in [
            "bytes=0-1,3-4",
            "bytes=10-",
            "bytes=-0",
            "bytes=4-2",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=0-99999999999999999999999",
            "garbage",
        ] {
            assert_eq!(ask(range, &[], &s), RangeAnswer::Origin, "{range}");
        }
        let mut partial = stored(b"0123456789", &[]);
        partial.status = StatusCode::NOT_FOUND;
        assert_eq!(ask("bytes=0-1", &[], &partial), RangeAnswer::Origin);
    }

    #[test]
    fn if_range_needs_a_strong_match_rfc_9110_section_13_1_5() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let s = stored(
            b"0123456789",
            &[
                ("etag", "\"v1\""),
                ("last-modified", date),
                ("date", "Mon, 07 Nov 1994 08:49:37 GMT"),
            ],
        );
        let part = RangeAnswer::Part(0..2);
        assert_eq!(ask("bytes=0-1", &[("if-range", "\"v1\"")], &s), part);
        // A date equal to `Last-Modified` is for the origin to judge: whether it is a strong
        // validator (§8.8.2.2) is not known from a head whose `Date` a `304` may have
        // renewed. Cut here, a representation changed twice within a second was spliced.
        assert_eq!(
            ask("bytes=0-1", &[("if-range", date)], &s),
            RangeAnswer::Origin
        );
        for other in [
            "\"v2\"",
            "W/\"v1\"",
            "Mon, 07 Nov 1994 08:49:37 GMT",
            "junk",
        ] {
            assert_eq!(
                ask("bytes=0-1", &[("if-range", other)], &s),
                RangeAnswer::Whole,
                "{other}"
            );
        }
    }

    #[test]
    fn the_partial_response_carries_its_range() {
        let s = stored(b"0123456789", &[("content-length", "10")]);
        let part = into_partial(s, 2..5);
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&part.body[..], b"234");
        assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 2-4/10");
        assert_eq!(part.headers[header::CONTENT_LENGTH], "3");
    }
}

//! Which responses strict RFC 9111 mode may store, by status and directives (RFC 9111 §3),
//! in place of the user's `allowable_codes`.
//!
//! A response may be stored when its status is final (and not `206`, which is never stored,
//! or `304`), and it carries `public` or `private` (this is a private cache), `Expires`,
//! `max-age`, or its status is heuristically cacheable (RFC 9110 §15.1). `no-store` and
//! `must-understand` are judged with the freshness rules
//! ([`response_freshness`](cache_http::freshness::response_freshness)).
//!
//! Whatever the mode, a body meant to stream without end ([`streams_without_end`]) is never
//! stored: storing waits for the body's end.
//!
//! A leaf: calls nothing else in the crate.

use cache_http::cache_control::Directives;
use cache_http::freshness::is_heuristically_cacheable;
use http::header::{CONTENT_TYPE, EXPIRES};
use http::{HeaderMap, StatusCode};

/// True when a strict private cache may store a response with this status and headers.
pub(crate) fn storable(status: StatusCode, headers: &HeaderMap) -> bool {
    let code = status.as_u16();
    if code < 200 || code == 206 || code == 304 {
        return false;
    }
    if is_heuristically_cacheable(status) || headers.contains_key(EXPIRES) {
        return true;
    }
    let cc = Directives::parse(headers);
    cc.has("public") || cc.has("private") || cc.has("max-age")
}

/// Media types whose bodies are streams that need not end: server-sent events
/// (`text/event-stream`) and a server pushing replacements (`multipart/x-mixed-replace`, as
/// camera feeds do). Storing a response reads its body to the end (or the size limit) before
/// the caller gets anything; for these that was never, where the caller uncached gets the
/// head and each event as it comes. They pass through as they stream.
pub(crate) fn streams_without_end(headers: &HeaderMap) -> bool {
    const ENDLESS: [&str; 2] = ["text/event-stream", "multipart/x-mixed-replace"];
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            ENDLESS
                .iter()
                .any(|endless| essence.eq_ignore_ascii_case(endless))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn event_streams_and_pushed_replacements_stream_without_end() {
        for endless in [
            "text/event-stream",
            "Text/Event-Stream; charset=utf-8",
            " multipart/x-mixed-replace ; boundary=frame",
        ] {
            assert!(
                streams_without_end(&with("content-type", endless)),
                "{endless}"
            );
        }
        for bounded in [
            "text/plain",
            "application/x-ndjson",
            "text/event-streams",
            "",
        ] {
            assert!(
                !streams_without_end(&with("content-type", bounded)),
                "{bounded}"
            );
        }
        assert!(!streams_without_end(&HeaderMap::new()));
    }

    #[test]
    fn status_codes_rfc_9111_section_3() {
        let none = HeaderMap::new();
        for code in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert!(
                storable(StatusCode::from_u16(code).unwrap(), &none),
                "{code}"
            );
        }
        for code in [201, 202, 302, 303, 307, 403, 500, 502, 503, 504, 599] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(!storable(status, &none), "{code} without freshness");
            assert!(
                storable(status, &with("cache-control", "max-age=60")),
                "{code}"
            );
            assert!(
                storable(status, &with("expires", "0")),
                "{code}: any Expires"
            );
            assert!(storable(status, &with("cache-control", "public")), "{code}");
            assert!(
                storable(status, &with("cache-control", "private")),
                "{code}"
            );
            assert!(
                !storable(status, &with("cache-control", "no-cache")),
                "{code}"
            );
        }
        let fresh = with("cache-control", "max-age=60");
        for code in [100, 206, 304] {
            assert!(
                !storable(StatusCode::from_u16(code).unwrap(), &fresh),
                "{code}"
            );
        }
    }
}

//! Conditional requests for stale entries, and refreshing an entry from a `304`.

use cache_core::CachedResponse;
use http::header::{self, HeaderMap, HeaderName};

/// True when the caller already made the request conditional: then its `304` is the caller's
/// business and the cache does not add its own validators.
pub(crate) fn is_conditional(headers: &HeaderMap) -> bool {
    [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ]
    .iter()
    .any(|name| headers.contains_key(name))
}

/// Adds `If-None-Match` / `If-Modified-Since` from the stored response's `ETag` /
/// `Last-Modified`; false when it has neither.
pub(crate) fn add_validators(request: &mut HeaderMap, stored: &CachedResponse) -> bool {
    let mut added = false;
    if let Some(etag) = stored.headers.get(header::ETAG) {
        request.insert(header::IF_NONE_MATCH, etag.clone());
        added = true;
    }
    if let Some(modified) = stored.headers.get(header::LAST_MODIFIED) {
        request.insert(header::IF_MODIFIED_SINCE, modified.clone());
        added = true;
    }
    added
}

/// Headers a `304` must not change in the stored response (RFC 9111 §3.2: framing and
/// connection-specific fields).
const NOT_UPDATED_BY_304: &[HeaderName] = &[
    header::CONTENT_LENGTH,
    // Never stored (a credential).
    header::SET_COOKIE,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Updates the stored headers with a `304`'s (RFC 9111 §3.2): each field the `304` carries
/// replaces the stored field of that name; the rest stay.
pub(crate) fn merge_304_headers(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    for name in not_modified.keys() {
        if NOT_UPDATED_BY_304.contains(name) || name.as_str() == "keep-alive" {
            continue;
        }
        stored.remove(name);
        for value in not_modified.get_all(name) {
            stored.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn merge_replaces_named_fields_and_keeps_the_rest() {
        let mut stored = HeaderMap::new();
        stored.insert("etag", HeaderValue::from_static("\"v1\""));
        stored.insert("content-length", HeaderValue::from_static("10"));
        stored.insert("x-kept", HeaderValue::from_static("yes"));
        stored.append("x-multi", HeaderValue::from_static("a"));
        stored.append("x-multi", HeaderValue::from_static("b"));
        let mut update = HeaderMap::new();
        update.insert("etag", HeaderValue::from_static("\"v2\""));
        update.insert("content-length", HeaderValue::from_static("0"));
        update.append("x-multi", HeaderValue::from_static("c"));
        merge_304_headers(&mut stored, &update);
        assert_eq!(stored["etag"], "\"v2\"");
        assert_eq!(stored["content-length"], "10");
        assert_eq!(stored["x-kept"], "yes");
        let multi: Vec<_> = stored.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["c"]);
    }
}

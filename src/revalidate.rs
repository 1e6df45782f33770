//! Conditional requests for stale entries, and refreshing an entry from a `304`.
//!
//! Calls only the leaf [`entity_tag`](crate::entity_tag).

use cache_core::CachedResponse;
use cache_http::freshness::http_date;
use http::header::{self, HeaderMap, HeaderName};

use crate::entity_tag;

/// True when the caller already made the request conditional: then its `304` is the caller's
/// business and the cache does not add its own validators.
pub(crate) fn is_conditional(headers: &HeaderMap) -> bool {
    CONDITIONS.iter().any(|name| headers.contains_key(name))
}

/// The request headers that make a request conditional.
const CONDITIONS: [HeaderName; 5] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// Removes the caller's conditions from a request the cache sends for itself (a background
/// refresh): its answer is the cache's, validated by the entry's own validators.
pub(crate) fn remove_conditions(headers: &mut HeaderMap) {
    for name in &CONDITIONS {
        headers.remove(name);
    }
}

/// Adds `If-None-Match` / `If-Modified-Since` from the stored response's `ETag` /
/// `Last-Modified`; false when it has neither (or the request holds every header name `http`
/// allows, and the request then goes out unconditional).
pub(crate) fn add_validators(request: &mut HeaderMap, stored: &CachedResponse) -> bool {
    let mut added = false;
    if let Some(etag) = stored.headers.get(header::ETAG) {
        added |= request
            .try_insert(header::IF_NONE_MATCH, etag.clone())
            .is_ok();
    }
    if let Some(modified) = stored.headers.get(header::LAST_MODIFIED) {
        added |= request
            .try_insert(header::IF_MODIFIED_SINCE, modified.clone())
            .is_ok();
    }
    added
}

/// True when a `304` to the cache's conditional request confirms the stored response it was
/// made from (RFC 9111 §4.3.4): an `ETag` in the `304` must match the stored one, and without
/// an `ETag`, a `Last-Modified` must be the stored date. A `304` naming another
/// representation than the stored one (a server that answered the date condition and not the
/// tag, or a tag of another server behind the same name) does not: the stored body is not
/// what the origin confirmed.
///
/// Tags are compared weakly (RFC 9110 §8.8.3.2), where §4.3.4 asks a strong tag for the same
/// strong tag: nginx weakens the tag of a response it compresses (`W/"x"`) and sends the
/// strong `"x"` in its `304`s, and the strong reading would fetch every such response whole
/// again. A `304` carrying no validator confirms the stored response: it answers conditions
/// made of the stored validators, and RFC 9110 §15.4.5 does not ask a `304` to repeat
/// `Last-Modified` (§4.3.4 would select only a stored response without validators).
pub(crate) fn confirms(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    if let Some(tag) = not_modified.get(header::ETAG) {
        return stored
            .get(header::ETAG)
            .is_some_and(|ours| entity_tag::weak_match(tag.as_bytes(), ours.as_bytes()));
    }
    if let Some(modified) = not_modified.get(header::LAST_MODIFIED) {
        let Some(ours) = stored.get(header::LAST_MODIFIED) else {
            return false;
        };
        return modified == ours
            || http_date(modified.as_bytes())
                .is_some_and(|at| http_date(ours.as_bytes()) == Some(at));
    }
    true
}

/// Headers a `304` must not change in the stored response (RFC 9111 §3.2: framing and
/// connection-specific fields).
const NOT_UPDATED_BY_304: &[HeaderName] = &[
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// The largest head an entry renewed by a `304` keeps, in bytes of names and values: more
/// than any one head hyper's client takes by default (417,792 bytes over HTTP/1, a 16 KiB
/// header list over HTTP/2), so only fields the `304`s added pass it. Each `304` may add
/// fields: an origin could otherwise grow an entry with every revalidation, and every later
/// write of it.
pub(crate) const MAX_RENEWED_HEAD_BYTES: usize = 512 * 1024;

/// True when `headers` (a head after a `304` merged into it) is small enough to store again.
pub(crate) fn fits_renewed_head(headers: &HeaderMap) -> bool {
    let mut bytes = 0usize;
    headers.iter().all(|(name, value)| {
        bytes = bytes.saturating_add(name.as_str().len() + value.len());
        bytes <= MAX_RENEWED_HEAD_BYTES
    })
}

/// Updates the stored headers with a `304`'s (RFC 9111 §3.2): each field the `304` carries
/// replaces the stored field of that name; the rest stay.
///
/// A stored entry may already hold every header name `http` allows (24,576): a field with a
/// new name then does not fit and is left out, rather than panicking in `append`.
pub(crate) fn merge_304_headers(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    for name in not_modified.keys() {
        if NOT_UPDATED_BY_304.contains(name) || name.as_str() == "keep-alive" {
            continue;
        }
        stored.remove(name);
        for value in not_modified.get_all(name) {
            if stored.try_append(name.clone(), value.clone()).is_err() {
                tracing::debug!(%name, "stored response holds too many header names; field not merged");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        fields
            .iter()
            .map(|&(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn a_304_confirms_only_the_representation_it_names() {
        let tagged = head(&[
            ("etag", "\"v1\""),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]);
        let weakly = head(&[("etag", "W/\"v1\"")]);
        let dated = head(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        let cases = [
            (&tagged, head(&[("etag", "\"v1\"")]), true),
            (&tagged, head(&[("etag", "\"v2\"")]), false),
            (&tagged, head(&[("etag", "W/\"v1\"")]), true),
            // nginx: a weak tag on the compressed 200, the strong one in its 304.
            (&weakly, head(&[("etag", "\"v1\"")]), true),
            (&weakly, head(&[("etag", "\"v2\"")]), false),
            (&weakly, head(&[("etag", "W/\"v1\"")]), true),
            (&dated, head(&[("etag", "\"v1\"")]), false),
            // The tag decides: a matching date beside another tag does not confirm.
            (
                &tagged,
                head(&[
                    ("etag", "\"v2\""),
                    ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ]),
                false,
            ),
            (
                &dated,
                head(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                true,
            ),
            // The same date written another way (RFC 850) is the same date.
            (
                &dated,
                head(&[("last-modified", "Wednesday, 21-Oct-15 07:28:00 GMT")]),
                true,
            ),
            (
                &dated,
                head(&[("last-modified", "Thu, 22 Oct 2015 07:28:00 GMT")]),
                false,
            ),
            (
                &weakly,
                head(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                false,
            ),
            (&tagged, head(&[("cache-control", "max-age=60")]), true),
            (&dated, HeaderMap::new(), true),
        ];
        for (stored, not_modified, confirmed) in cases {
            assert_eq!(
                confirms(stored, &not_modified),
                confirmed,
                "{stored:?} {not_modified:?}"
            );
        }
    }

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

    /// A map holding every name `http` allows: `append` and `insert` of a new name panic.
    fn full_map() -> HeaderMap {
        let mut full = HeaderMap::new();
        full.insert("etag", HeaderValue::from_static("\"v1\""));
        for i in 0.. {
            let name = http::HeaderName::try_from(format!("x-{i}")).unwrap();
            if full.try_append(name, HeaderValue::from_static("")).is_err() {
                break;
            }
        }
        full
    }

    #[test]
    fn merging_into_a_full_map_keeps_what_fits_and_never_panics() {
        let mut stored = full_map();
        let names = stored.keys_len();
        let mut update = HeaderMap::new();
        update.insert("etag", HeaderValue::from_static("\"v2\""));
        update.insert("x-new", HeaderValue::from_static("dropped"));
        merge_304_headers(&mut stored, &update);
        assert_eq!(stored["etag"], "\"v2\"", "replaced in place");
        assert!(!stored.contains_key("x-new"), "no room for a new name");
        assert_eq!(stored.keys_len(), names);
    }

    #[test]
    fn validators_for_a_request_with_no_room_left_are_not_added() {
        let mut request = full_map();
        request.remove("etag");
        let filler = http::HeaderName::from_static("x-filler");
        request.insert(filler, HeaderValue::from_static(""));
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        let stored = CachedResponse::new(
            http::StatusCode::OK,
            http::Version::HTTP_11,
            headers,
            bytes::Bytes::new(),
            "http://h/",
            cache_core::CachedRequest::new(http::Method::GET, "http://h/", HeaderMap::new()),
        );
        assert!(!add_validators(&mut request, &stored));
        assert!(!request.contains_key(header::IF_NONE_MATCH));
    }
}

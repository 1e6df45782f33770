//! Unsafe methods invalidate what is stored for the URLs they change (RFC 9111 §4.4).

use std::collections::HashSet;

use http::header::{CONTENT_LOCATION, LOCATION};
use http::{HeaderMap, Method};
use url::Url;

use crate::state::CacheState;

/// POST, PUT, PATCH, DELETE and any method not known to be safe.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// After a successful (2xx/3xx) unsafe request, deletes the GET and HEAD entries of its URL and
/// of same-origin `Location` / `Content-Location` URLs.
///
/// Entries are found by key, for the request's own headers (its credentials) and for none:
/// entries other credentials stored for the URL are not reachable without a scan and stay
/// until they expire.
pub(crate) async fn invalidate_after_unsafe(
    state: &CacheState,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    response: &reqwest::Response,
) {
    let status = response.status();
    if !is_unsafe(method) || !(status.is_success() || status.is_redirection()) {
        return;
    }
    let mut urls = vec![url.clone()];
    for name in [LOCATION, CONTENT_LOCATION] {
        let target = response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url.join(v).ok());
        if let Some(target) = target.filter(|t| t.origin() == url.origin()) {
            urls.push(target);
        }
    }
    let no_headers = HeaderMap::new();
    let mut keys = HashSet::new();
    for target in &urls {
        for safe in [Method::GET, Method::HEAD] {
            for request_headers in [headers, &no_headers] {
                keys.insert(state.keys.key(&safe, target, request_headers, None));
            }
        }
    }
    for key in keys {
        state.forget(&key).await;
    }
}

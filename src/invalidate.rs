//! Unsafe methods invalidate what is stored for the URLs they change (RFC 9111 §4.4), and the
//! handle's URL operations reach the same entries: every entry of a URL, whatever method,
//! credential, matched header, body or Vary variant it was stored under, found through the
//! URL's group ([`CacheStore::entries_for_url`](cache_core::CacheStore::entries_for_url), an
//! index in every built-in store).
//!
//! Calls `cache` (nothing that calls it).

use std::collections::HashSet;

use cache_core::CacheKey;
use http::header::{CONTENT_LOCATION, LOCATION};
use http::{HeaderMap, Method};
use url::Url;

use crate::cache::Cache;

/// POST, PUT, PATCH, DELETE and any method not known to be safe.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// True when an answer of `status` to a request of `method` invalidates its URL: a
/// successful (2xx/3xx) unsafe request (see [`invalidate_after_unsafe`]).
pub(crate) fn invalidates(method: &Method, status: http::StatusCode) -> bool {
    is_unsafe(method) && (status.is_success() || status.is_redirection())
}

/// After a successful (2xx/3xx) unsafe request, deletes every entry of its URL and of
/// same-origin `Location` / `Content-Location` URLs; the groups of the URLs it marked changed,
/// none when it did nothing (else what was read of those entries before, a Vary index say,
/// is gone).
pub(crate) async fn invalidate_after_unsafe(
    cache: &Cache,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    response: &reqwest::Response,
) -> Vec<CacheKey> {
    if !invalidates(method, response.status()) {
        return Vec::new();
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
    let mut changed = Vec::with_capacity(urls.len());
    for target in &urls {
        // First: the answer to a request for the URL sent before this one's answer arrived is
        // not stored after (see `url_changes`).
        let group = cache.mark_changed(target);
        changed.push(group);
        let began = cache.settings.clock.now();
        let (keys, listed) = keys_of_url(cache, target, headers).await;
        let mut reached = listed;
        for key in keys {
            reached &= cache.live.store.forget(&key).await;
        }
        // An invalidation the store did not take whole: what it holds of the URL from before
        // is not served from here on (see `unfinished_invalidations`). A read-only cache
        // invalidates nothing, by its promise, and neither holds back nor releases.
        let unfinished = &cache.live.unfinished_invalidations;
        if cache.live.store.is_read_only() {
            continue;
        }
        if reached {
            unfinished.finished(&group, began);
        } else {
            unfinished.note(group, cache.settings.clock.now());
        }
    }
    changed
}

/// The keys of every entry stored for `url`: its group's, and the keys GET and HEAD requests
/// with `headers` or none would have (entries written before URL groups existed carry none,
/// and are found only that way); and whether the group's listing reached the store.
pub(crate) async fn keys_of_url(
    cache: &Cache,
    url: &Url,
    headers: &HeaderMap,
) -> (HashSet<CacheKey>, bool) {
    let listed = cache
        .live
        .store
        .entries_for_url_if_reached(&cache.settings.keys.url_group(url))
        .await;
    let reached = listed.is_some();
    let mut keys: HashSet<CacheKey> = listed
        .unwrap_or_default()
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    let no_headers = HeaderMap::new();
    for method in [Method::GET, Method::HEAD] {
        for request_headers in [headers, &no_headers] {
            keys.insert(cache.settings.keys.key(&method, url, request_headers, None));
        }
    }
    (keys, reached)
}

//! Unsafe methods invalidate what is stored for the URLs they change (RFC 9111 §4.4), and the
//! handle's URL operations reach the same entries: every entry of a URL, whatever method,
//! credential, matched header, body or Vary variant it was stored under, found through the
//! URL's group ([`CacheStore::entries_for_url`](cache_core::CacheStore::entries_for_url), an
//! index in every built-in store).
//!
//! Calls `cache` (nothing that calls it).

use std::collections::HashSet;
use std::sync::Arc;

use cache_core::CacheKey;
use cache_core::to_end::run_to_end;
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

/// After a successful (2xx/3xx) unsafe request, deletes every entry of its URL, of the URL
/// it reached when redirected, and of same-origin `Location` / `Content-Location` URLs; the
/// groups of the URLs it marked changed,
/// none when it did nothing (else what was read of those entries before, a Vary index say,
/// is gone).
///
/// The listings and deletes run to their end on a task of their own, whoever stops waiting:
/// the origin has taken the change, and a caller's time limit (or a `select!`, or a server
/// dropping a handler whose client left) that dropped them midway left the URL's old
/// responses stored, unheld, and served as fresh (see [`Invalidation`]).
pub(crate) async fn invalidate_after_unsafe(
    cache: &Arc<Cache>,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    response: &reqwest::Response,
) -> Vec<CacheKey> {
    if !invalidates(method, response.status()) {
        return Vec::new();
    }
    let mut urls = vec![url.clone()];
    // Redirected, the request that succeeded was sent to the URL it reached: after a
    // `307`/`308` the unsafe request itself (which changed it), after a `303` (or a `301`/
    // `302` of a `POST`) a `GET` of what the change made. Either way the URL is invalidated,
    // of the request's origin only (which the redirect does not say: another origin's
    // entries are not this one's to drop), and its answer's `Location` / `Content-Location`
    // are read against it. A URL of another origin (or none, for a response a middleware
    // below made) leaves the request's URL the base.
    let reached = Some(response.url()).filter(|reached| reached.origin() == url.origin());
    if let Some(reached) = reached.filter(|reached| *reached != url) {
        urls.push(reached.clone());
    }
    let base = reached.unwrap_or(url);
    for name in [LOCATION, CONTENT_LOCATION] {
        let target = response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| base.join(v).ok());
        if let Some(target) = target.filter(|t| t.origin() == url.origin()) {
            if !urls.contains(&target) {
                urls.push(target);
            }
        }
    }
    // First, before any store call: the answer to a request for one of the URLs sent before
    // this one's answer arrived is not stored after (see `url_changes`).
    let targets: Vec<(Url, CacheKey)> = urls
        .into_iter()
        .map(|target| {
            let group = cache.mark_changed(&target);
            (target, group)
        })
        .collect();
    let changed = targets.iter().map(|(_, group)| *group).collect();
    let work = {
        let (cache, headers) = (Arc::clone(cache), headers.clone());
        async move {
            invalidate_all(&cache, &targets, &headers).await;
            Ok(())
        }
    };
    // Its only error is the work given up (past `run_to_end`'s limit, or a runtime shutting
    // down), whose unfinished invalidations `Invalidation` noted as it was dropped.
    let _ = run_to_end(work).await;
    changed
}

/// Invalidates each of `targets` (a URL and its group) in turn, each guarded from the
/// start by an [`Invalidation`]: given up midway, the URL under way and those not reached
/// yet are held back.
async fn invalidate_all(cache: &Cache, targets: &[(Url, CacheKey)], headers: &HeaderMap) {
    let began = cache.settings.clock.now();
    // A read-only cache invalidates nothing, by its promise, and neither holds back nor
    // releases.
    let read_only = cache.live.store.is_read_only();
    let mut invalidations: Vec<Option<Invalidation<'_>>> = targets
        .iter()
        .map(|&(_, group)| {
            // Made only where it is kept: a guard made and dropped notes its group.
            (!read_only).then(|| Invalidation {
                cache,
                group,
                began,
            })
        })
        .collect();
    for ((target, _), invalidation) in targets.iter().zip(&mut invalidations) {
        let reached = invalidate_url(cache, target, headers).await;
        if let Some(invalidation) = invalidation.take() {
            invalidation.end(reached);
        }
    }
}

/// Deletes every entry of `url` after an unsafe request changed it; true when the store
/// took the invalidation whole (see `unfinished_invalidations`).
async fn invalidate_url(cache: &Cache, url: &Url, headers: &HeaderMap) -> bool {
    let (keys, listed) = keys_of_url(cache, url, headers).await;
    let mut reached = listed;
    for key in keys {
        reached &= cache.live.store.forget(&key).await;
    }
    reached
}

/// An invalidation of a URL group under way. Ended, it releases the group (the store took
/// it whole) or holds back what the store still has of it from before; dropped before its
/// end (its work given up midway), it holds back too: the deletes not made left the old
/// entries in the store.
struct Invalidation<'a> {
    cache: &'a Cache,
    group: CacheKey,
    began: std::time::SystemTime,
}

impl Invalidation<'_> {
    /// A write of the group's whose outcome is unknown may land after the deletes (see
    /// `unsettled_writes`): the group is held back then, as for deletes not made.
    fn end(self, reached: bool) {
        let this = std::mem::ManuallyDrop::new(self);
        let unfinished = &this.cache.live.unfinished_invalidations;
        let unsettled = &this.cache.live.store.unsettled;
        let settled = !unsettled.may_land(&this.group, std::time::Instant::now());
        match reached && settled {
            true => unfinished.finished(&this.group, this.began),
            false => unfinished.note(this.group, this.cache.settings.clock.now()),
        }
    }
}

impl Drop for Invalidation<'_> {
    fn drop(&mut self) {
        let unfinished = &self.cache.live.unfinished_invalidations;
        unfinished.note(self.group, self.cache.settings.clock.now());
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cache_core::{EntryMeta, MemoryStore, StoreError, StoredEntry};
    use futures_util::stream::BoxStream;

    use super::*;

    /// A memory store whose listings of a URL group never answer.
    #[derive(Debug, Default)]
    struct ListingHangs(MemoryStore);

    #[async_trait::async_trait]
    impl cache_core::CacheStore for ListingHangs {
        async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
            self.0.get(key).await
        }
        async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
            self.0.put(entry).await
        }
        async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
            self.0.delete(key).await
        }
        async fn delete_if_created(
            &self,
            key: &CacheKey,
            created_at: std::time::SystemTime,
        ) -> Result<bool, StoreError> {
            self.0.delete_if_created(key, created_at).await
        }
        fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
            self.0.entries()
        }
        async fn entries_for_url(&self, _: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
            std::future::pending().await
        }
        async fn clear(&self) -> Result<u64, StoreError> {
            self.0.clear().await
        }
    }

    /// A cache over a store whose listings never answer, read-only or not.
    fn listing_hangs(read_only: bool) -> crate::CacheMiddleware {
        crate::CacheMiddleware::builder()
            .store(ListingHangs::default())
            .read_only(read_only)
            .build()
            .unwrap()
    }

    /// `path`'s URL on example.com, its group, and an entry of it stored five seconds ago
    /// under a key of `digest` bytes.
    fn stored_before(cache: &Cache, path: &str, digest: u8) -> (Url, CacheKey, EntryMeta) {
        let url = Url::parse("https://example.com/")
            .unwrap()
            .join(path)
            .unwrap();
        let group = cache.settings.keys.url_group(&url);
        let stored = cache.settings.clock.now() - Duration::from_secs(5);
        let meta = EntryMeta::new(
            CacheKey::from_digest([digest; 16]),
            url.as_str(),
            stored,
            None,
        )
        .with_url_group(Some(group));
        (url, group, meta)
    }

    /// [`invalidate_all`] of `targets`, given up while the store lists the first.
    async fn given_up(cache: &Cache, targets: &[(Url, CacheKey)]) {
        let headers = HeaderMap::new();
        let work = invalidate_all(cache, targets, &headers);
        let given_up = tokio::time::timeout(Duration::from_millis(20), work).await;
        assert!(given_up.is_err(), "the listing answered");
    }

    /// A read-only cache invalidates nothing and holds nothing back, given up midway too.
    #[tokio::test]
    async fn a_read_only_cache_holds_nothing_back() {
        let middleware = listing_hangs(true);
        let cache = middleware.cache();
        let (url, group, meta) = stored_before(cache, "item", 7);
        given_up(cache, &[(url, group)]).await;
        let unfinished = &cache.live.unfinished_invalidations;
        assert!(!unfinished.holds_back(&meta, || group));
    }

    /// An invalidation given up midway (past `run_to_end`'s limit, its future dropped while
    /// the store had not answered) holds back what the store still has of the URL from
    /// before, as one the store refused does.
    #[tokio::test]
    async fn an_invalidation_given_up_midway_holds_the_url_back() {
        let middleware = listing_hangs(false);
        let cache = middleware.cache();
        let (url, group, meta) = stored_before(cache, "item", 7);
        let (other, other_group, other_meta) = stored_before(cache, "other", 8);
        let unfinished = &cache.live.unfinished_invalidations;
        assert!(!unfinished.holds_back(&meta, || group));
        given_up(cache, &[(url, group), (other, other_group)]).await;
        assert!(
            unfinished.holds_back(&meta, || group),
            "an entry from before the invalidation is served"
        );
        assert!(
            unfinished.holds_back(&other_meta, || other_group),
            "the URL not reached yet is served"
        );
    }
}

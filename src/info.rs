//! [`CacheInfo`]: what the cache did for a response.
//!
//! A leaf: calls nothing else in the crate.

use std::time::SystemTime;

use cache_core::CacheKey;

/// What the cache did for a response; every response that went through the middleware
/// carries one in its extensions. Read it with [`CacheResponseExt`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// The body came from the cache (a hit, or a revalidated entry).
    pub from_cache: bool,
    /// When the served entry was stored (for a response just fetched and stored: now).
    pub created_at: Option<SystemTime>,
    /// When the entry stops (stopped) being fresh; `None` when it never expires or was not
    /// stored.
    pub expires: Option<SystemTime>,
    /// The served entry was already stale.
    pub is_expired: bool,
    /// The request's cache key; `None` when the cache did not consider the request
    /// (disabled, bypassed, method not cached, streaming body).
    pub key: Option<CacheKey>,
    /// The entry was stale, the origin answered `304 Not Modified`, and the stored body was
    /// served with refreshed headers.
    pub revalidated: bool,
    /// The response was written to the cache by this request before it was returned. A body
    /// still streaming when the response was handed over (slower to end than
    /// [`stream_after`](crate::CacheMiddlewareBuilder::stream_after), or over
    /// [`max_body_size`](crate::CacheMiddlewareBuilder::max_body_size) into a store that
    /// keeps files) reports `false`: it is written once the caller has read it to its end.
    pub stored: bool,
    /// The origin failed (a status in
    /// [`stale_if_error_statuses`](crate::CacheMiddlewareBuilder::stale_if_error_statuses), by
    /// default `429`, `500`, `502`, `503`, `504`; or no connection) and a stale entry was
    /// served instead (`stale-if-error`).
    pub stale_if_error: bool,
    /// A stale entry was served at once under `stale-while-revalidate`, a background request
    /// refreshing it (unless one already is, or the 64 that may run at once are running).
    pub stale_while_revalidate: bool,
    /// An identical request was already in flight: this one waited for it and was answered
    /// from what it stored (single-flight), without a request of its own.
    pub coalesced: bool,
    /// The cache made this response itself rather than replaying the origin's answer or a
    /// stored entry as it is: the `504 Gateway Timeout` of an `only-if-cached` request
    /// ([`CacheMode::OnlyIfCached`](crate::CacheMode) or the request directive) with nothing
    /// usable stored, or of an offline one ([`offline_miss`](Self::offline_miss)) with
    /// nothing stored (then `from_cache` is false), and, made from a stored entry (then
    /// `from_cache` is true), the `304 Not Modified` answering a caller's own conditional
    /// request and the `206 Partial Content` answering a `Range` request. It tells such
    /// responses from ones the origin (or a gateway before it) sent.
    pub generated_by_cache: bool,
    /// The request was made in [`CacheMode::Offline`](crate::CacheMode::Offline) and nothing
    /// stored answers it: the response is the cache's own `504 Gateway Timeout` (with
    /// `generated_by_cache` set), and nothing was sent.
    pub offline_miss: bool,
}

impl CacheInfo {
    /// Info for a response the cache did not touch.
    pub(crate) fn passed_through(key: Option<CacheKey>) -> Self {
        Self {
            from_cache: false,
            created_at: None,
            expires: None,
            is_expired: false,
            key,
            revalidated: false,
            stored: false,
            stale_if_error: false,
            stale_while_revalidate: false,
            coalesced: false,
            generated_by_cache: false,
            offline_miss: false,
        }
    }
}

/// Reads the [`CacheInfo`] of a [`reqwest::Response`].
///
/// ```
/// use reqwest_caching::CacheResponseExt;
///
/// fn log(response: &reqwest::Response) {
///     if response.from_cache() {
///         let info = response.cache_info().unwrap();
///         println!("cached at {:?}, key {:?}", info.created_at, info.key);
///     }
/// }
/// ```
pub trait CacheResponseExt {
    /// The cache's info, if the response went through the cache middleware.
    fn cache_info(&self) -> Option<&CacheInfo>;

    /// True when the body came from the cache.
    // The name mirrors requests-cache's `response.from_cache`; it is a predicate, not a
    // conversion.
    #[allow(clippy::wrong_self_convention)]
    fn from_cache(&self) -> bool {
        self.cache_info().is_some_and(|info| info.from_cache)
    }
}

impl CacheResponseExt for reqwest::Response {
    fn cache_info(&self) -> Option<&CacheInfo> {
        self.extensions().get::<CacheInfo>()
    }
}

//! [`CacheMode`]: how one request uses the cache.
//!
//! A leaf: calls nothing else in the crate.

/// How a request uses the cache. Set per request with
/// [`CacheRequestExt::cache_mode`](crate::CacheRequestExt::cache_mode) (or
/// `with_extension(CacheMode::..)`), or for a block of code with a
/// [`CacheScope`](crate::CacheScope).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheMode {
    /// The normal behaviour. This mode:
    /// - answers from the cache while the entry is fresh;
    /// - revalidates a stale entry that has an `ETag` or `Last-Modified`
    ///   (`If-None-Match` / `If-Modified-Since`), and uses the stored body on `304`;
    /// - otherwise fetches and stores the response if it is cacheable.
    #[default]
    Default,
    /// Always asks the origin, even for a fresh entry. This mode:
    /// - sends a conditional request when the entry has validators, so an unchanged
    ///   resource costs a `304`;
    /// - stores whatever new response arrives.
    Refresh,
    /// Ignores the cache for reading. This mode:
    /// - sends the request unconditionally;
    /// - stores the response if it is cacheable (replacing the entry).
    ForceRefresh,
    /// Never touches the network. This mode:
    /// - answers from the cache when the entry is fresh;
    /// - otherwise answers `504 Gateway Timeout`, as requests-cache and RFC 9111's
    ///   `only-if-cached` do (a stale entry counts as not cached).
    OnlyIfCached,
    /// As if the cache were not there. This mode:
    /// - neither reads nor writes the cache;
    /// - still attaches a [`CacheInfo`](crate::CacheInfo) saying the response was not cached.
    Bypass,
}

//! Per-request cache settings on `reqwest_middleware::RequestBuilder`.
//!
//! Calls `mode` (nothing that calls it).

use cache_http::Expiration;
use reqwest_middleware::RequestBuilder;

use crate::mode::CacheMode;

/// Per-request cache settings. They travel in the request's extensions, so
/// `.with_extension(Expiration::..)` and `.with_extension(CacheMode::..)` do the same.
///
/// A per-request expiration beats a [`CacheScope`](crate::CacheScope)'s, which beats a URL
/// pattern's, which beats the session's.
///
/// ```no_run
/// use reqwest_caching::{CacheMode, CacheRequestExt, Expiration};
/// use std::time::Duration;
///
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// let fresh = client
///     .get("https://example.com/prices")
///     .expire_after(Duration::from_secs(30))
///     .send()
///     .await?;
/// let offline = client
///     .get("https://example.com/prices")
///     .cache_mode(CacheMode::OnlyIfCached)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
pub trait CacheRequestExt: Sized {
    /// How long this request's response stays fresh once stored.
    #[must_use]
    fn expire_after(self, expiration: impl Into<Expiration>) -> Self;

    /// How this request uses the cache.
    #[must_use]
    fn cache_mode(self, mode: CacheMode) -> Self;
}

impl CacheRequestExt for RequestBuilder {
    fn expire_after(self, expiration: impl Into<Expiration>) -> Self {
        self.with_extension(expiration.into())
    }

    fn cache_mode(self, mode: CacheMode) -> Self {
        self.with_extension(mode)
    }
}

//! [`CacheMiddleware`]: the cache in the `reqwest-middleware` chain, and its hit path.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{CacheKey, CachedResponse, EntryMeta, Expiration};
use http::{Extensions, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use url::Url;

use crate::builder::CacheMiddlewareBuilder;
use crate::error::Error;
use crate::fetch::{Exchange, fetch};
use crate::handle::CacheHandle;
use crate::info::CacheInfo;
use crate::mode::CacheMode;
use crate::response_parts::{ResponseParts, with_info};
use crate::scope::{self, CacheScope};
use crate::state::CacheState;

/// The cache, as a [`reqwest_middleware::Middleware`].
///
/// Put it in a [`ClientBuilder`] stack; requests made through the client are answered from the
/// cache when it can, and cacheable responses are stored. Tracing middleware goes before it
/// (outside), retry middleware after it (inside), so hits never enter the retry loop and
/// misses are retried.
///
/// ```no_run
/// use reqwest_caching::{CacheMiddleware, CacheResponseExt};
/// use reqwest_middleware::ClientBuilder;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(CacheMiddleware::new()?) // SQLite at ./http_cache.sqlite
///     .build();
/// let response = client.get("https://example.com/").send().await?;
/// println!("from cache: {}", response.from_cache());
/// # Ok(()) }
/// ```
///
/// # Note
///
/// - A request whose body is a stream is passed through uncached: it cannot be keyed without
///   consuming it.
/// - The cache reads a cacheable response's body whole before returning it (up to
///   [`max_body_size`](CacheMiddlewareBuilder::max_body_size); larger bodies stream through).
/// - Store failures never fail a request: they are logged with `tracing`, counted in
///   [`CacheStats::errors`](crate::CacheStats), and the request goes to the network.
#[derive(Clone, Debug)]
pub struct CacheMiddleware {
    state: Arc<CacheState>,
}

impl CacheMiddleware {
    /// A builder with every setting at its default.
    pub fn builder() -> CacheMiddlewareBuilder {
        CacheMiddlewareBuilder::default()
    }

    /// The default cache: SQLite at `./http_cache.sqlite`, responses never expire, `200`
    /// responses to `GET` and `HEAD` are cached.
    ///
    /// # Errors
    ///
    /// As [`CacheMiddlewareBuilder::build`]: the file cannot be opened.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    pub(crate) fn from_state(state: CacheState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }

    /// A handle to inspect and manage the cache (cheap to clone; shares the store).
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::new(Arc::clone(&self.state))
    }

    /// A client with only this middleware, over `client`.
    pub fn into_client(self, client: reqwest::Client) -> ClientWithMiddleware {
        ClientBuilder::new(client).with(self).build()
    }
}

impl Default for CacheMiddleware {
    /// [`CacheMiddleware::new`]; if the SQLite file cannot be opened (read-only directory, no
    /// `sqlite` feature), an in-memory cache instead, with a warning: a default must not fail,
    /// and a cache must never stop requests.
    fn default() -> Self {
        Self::new().unwrap_or_else(|error| {
            tracing::warn!(error = %crate::state::error_chain(&error), "default SQLite cache unavailable; caching in memory");
            Self::builder()
                .store(cache_core::MemoryStore::new())
                .build()
                .unwrap_or_else(|_| unreachable!("a builder with a store and no patterns cannot fail"))
        })
    }
}

/// A client caching in `./http_cache.sqlite` with the default settings: the one-line setup.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest_caching::cached_client()?;
/// let body = client.get("https://example.com/").send().await?.text().await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// When the SQLite file cannot be opened.
#[cfg(feature = "sqlite")]
pub fn cached_client() -> Result<ClientWithMiddleware, Error> {
    Ok(CacheMiddleware::new()?.into_client(reqwest::Client::new()))
}

#[async_trait]
impl Middleware for CacheMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let state = &*self.state;
        let scope = scope::current();
        let mode = extensions
            .get::<CacheMode>()
            .copied()
            .or_else(|| scope.as_ref().and_then(CacheScope::cache_mode))
            .unwrap_or_default();
        let disabled = scope.as_ref().is_some_and(CacheScope::is_disabled);
        if disabled || mode == CacheMode::Bypass || !state.allowable_methods.contains(req.method())
        {
            return pass_through(next.run(req, extensions).await, None);
        }
        let body = match req.body() {
            None => None,
            Some(body) => match body.as_bytes() {
                Some(bytes) => Some(bytes),
                // A streaming body cannot be keyed without consuming it.
                None => return pass_through(next.run(req, extensions).await, None),
            },
        };
        let key = state.keys.key(req.method(), req.url(), req.headers(), body);

        let cached = match mode {
            CacheMode::ForceRefresh => None,
            _ => state.load(&key).await,
        };
        let now = state.clock.now();
        if let Some((meta, response)) = &cached
            && !meta.is_expired(now)
            && matches!(mode, CacheMode::Default | CacheMode::OnlyIfCached)
        {
            state.stats.hit();
            let info = hit_info(meta, key, false, now);
            return Ok(serve(response, req.url(), info));
        }
        if mode == CacheMode::OnlyIfCached {
            state.stats.miss();
            return Ok(gateway_timeout(req.url().clone(), key));
        }

        let expiration = state.expiration(
            extensions.get::<Expiration>().copied(),
            scope.as_ref(),
            req.url(),
        );
        let exchange = Exchange {
            key,
            expiration,
            cached,
        };
        fetch(state, exchange, req, extensions, next).await
    }
}

/// Info for a response served from an entry.
pub(crate) fn hit_info(
    meta: &EntryMeta,
    key: CacheKey,
    revalidated: bool,
    now: std::time::SystemTime,
) -> CacheInfo {
    CacheInfo {
        from_cache: true,
        created_at: Some(meta.created_at),
        expires: meta.expires_at,
        is_expired: meta.is_expired(now),
        key: Some(key),
        revalidated,
        stored: false,
    }
}

/// A response rebuilt from an entry; the body shares the entry's buffer.
pub(crate) fn serve(cached: &CachedResponse, request_url: &Url, info: CacheInfo) -> Response {
    // Stored URLs are redacted. When the response came from the URL asked for, give back the
    // caller's own URL (with its parameters); after a redirect, the stored final URL.
    let url = if cached.url == cached.request.url {
        request_url.clone()
    } else {
        cached.url.clone()
    };
    let parts = ResponseParts {
        status: cached.status,
        version: cached.version,
        headers: cached.headers.clone(),
        url,
        extensions: Extensions::new(),
    };
    parts.into_response(reqwest::Body::from(cached.body.clone()), info)
}

/// `504 Gateway Timeout`: what `OnlyIfCached` answers when nothing fresh is stored.
fn gateway_timeout(url: Url, key: CacheKey) -> Response {
    let parts = ResponseParts {
        status: StatusCode::GATEWAY_TIMEOUT,
        version: http::Version::HTTP_11,
        headers: http::HeaderMap::new(),
        url,
        extensions: Extensions::new(),
    };
    parts.into_response(
        reqwest::Body::from(Bytes::new()),
        CacheInfo::passed_through(Some(key)),
    )
}

/// The network's answer, untouched but for the info saying the cache did nothing.
fn pass_through(
    result: reqwest_middleware::Result<Response>,
    key: Option<CacheKey>,
) -> reqwest_middleware::Result<Response> {
    result.map(|response| with_info(response, CacheInfo::passed_through(key)))
}

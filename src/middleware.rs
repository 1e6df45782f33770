//! [`CacheMiddleware`]: the cache in the `reqwest-middleware` chain, and its hit path.

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::freshness::RequestDirectives;
use cache_core::{CacheKey, CachedResponse, Expiration};
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, RANGE};
use http::{Extensions, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use url::Url;

use crate::builder::CacheMiddlewareBuilder;
use crate::conditional;
use crate::content_location;
use crate::error::Error;
use crate::fetch::{Exchange, fetch};
use crate::flight::{Flight, wait_for_leader};
use crate::handle::CacheHandle;
use crate::info::CacheInfo;
use crate::invalidate::{invalidate_after_unsafe, is_unsafe};
use crate::mode::CacheMode;
use crate::observe;
use crate::range::{self, RangeAnswer};
use crate::response_parts::{ResponseParts, with_info};
use crate::scope::{self, CacheScope};
use crate::stale::stale_allowed;
use crate::state::{CacheState, Found, Lookup};
use crate::variants::SeenIndex;

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
///   consuming it. A `GET` with a single byte `Range` is answered with a `206` cut from a
///   usable stored `200`; other `Range` requests go to the origin, and `206` responses are
///   never cached.
/// - A `GET` or `HEAD` with `If-None-Match` or `If-Modified-Since` that a usable stored
///   response satisfies is answered with a `304` the cache makes (RFC 9111 §4.3.2).
/// - Responses served from the cache carry their current `Age` (RFC 9111 §4.2.3).
/// - The cache reads a cacheable response's body whole before returning it (up to
///   [`max_body_size`](CacheMiddlewareBuilder::max_body_size); larger bodies stream through).
/// - Store failures never fail a request: they are logged with `tracing`, counted in
///   [`CacheStats::errors`](crate::CacheStats), and the request goes to the network.
/// - Each request runs in a `DEBUG` [`tracing`] span `http_cache` with its method, redacted
///   URL, key, outcome and time in store calls; with the `metrics` feature, counters and
///   histograms go through the `metrics` facade. Names and levels: the crate documentation,
///   [Observability](crate#observability).
/// - Background refreshes (`stale_while_revalidate`) are sent with the middleware's own
///   [`reqwest::Client`] ([`background_client`](CacheMiddlewareBuilder::background_client)),
///   not through the rest of the middleware chain, which cannot outlive the request that
///   started them. Each is bounded as a whole, body included
///   ([`refresh_timeout`](CacheMiddlewareBuilder::refresh_timeout)); failures are warned
///   about and counted in [`CacheStats::refresh_failures`](crate::CacheStats).
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
            tracing::warn!(
                error = %crate::state::error_chain(&error),
                "default SQLite cache unavailable; caching in memory"
            );
            Self::builder()
                .store(cache_core::MemoryStore::new())
                .build()
                .unwrap_or_else(|_| {
                    unreachable!("a builder with a store and no patterns cannot fail")
                })
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
/// `https://` needs a TLS backend in `reqwest`: the default feature `default-tls` enables
/// reqwest's own default; without it, enable one on your `reqwest` dependency.
///
/// # Errors
///
/// When the SQLite file cannot be opened.
#[cfg(feature = "sqlite")]
pub fn cached_client() -> Result<ClientWithMiddleware, Error> {
    Ok(CacheMiddleware::new()?.into_client(reqwest::Client::new()))
}

/// What to do with a request, given what is stored.
enum Decision {
    Serve(Box<Found>),
    ServeStaleAndRefresh(Box<Found>),
    GatewayTimeout,
    Forward(Option<Box<Found>>),
}

/// The future [`Middleware::handle`] returns.
type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

// Written out rather than with `#[async_trait]` (which it matches): when nothing observes the
// request, `handle_request`'s future is boxed as it is, with no wrapper future to move it into.
impl Middleware for CacheMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> HandleFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let span = observe::request_span(&self.state.keys, &req);
        if !observe::wanted(&span) {
            return Box::pin(self.handle_request(req, extensions, next));
        }
        // Boxed first: `observe` moves the request's future into its wrappers, and the
        // future is large; moving a pointer instead keeps the observed path cheap.
        let request = Box::pin(self.handle_request(req, extensions, next));
        Box::pin(observe::observe(span, request))
    }
}

impl CacheMiddleware {
    /// The request through the cache; [`Middleware::handle`] wraps it in its span.
    async fn handle_request(
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
        // Requests the cache does not answer still go through `pass_on`: a successful unsafe
        // one invalidates what is stored for its URL, whatever skipped the cache.
        if scope.as_ref().is_some_and(CacheScope::is_disabled) || mode == CacheMode::Bypass {
            return pass_on(state, req, extensions, next).await;
        }
        // A Range request is answered from a stored complete response, or passed on: its
        // answer (a `206`) is never stored.
        let ranged = req.headers().contains_key(RANGE);
        if !state.allowable_methods.contains(req.method())
            || (ranged && req.method() != Method::GET)
        {
            let post_for_get = state.cache_control
                && req.method() == Method::POST
                && !ranged
                && state.allowable_methods.contains(&Method::GET);
            if post_for_get {
                // Boxed: storing the answer is a large future, kept out of the hit path's.
                return Box::pin(post(state, scope.as_ref(), req, extensions, next)).await;
            }
            return pass_on(state, req, extensions, next).await;
        }
        let body = match req.body() {
            None => None,
            Some(body) => match body.as_bytes() {
                Some(bytes) => Some(bytes),
                // A streaming body cannot be keyed without consuming it.
                None => return pass_on(state, req, extensions, next).await,
            },
        };
        // An explicit "do not cache" (per request, scope or URL pattern) skips reads too, as
        // requests-cache's DO_NOT_CACHE does: nothing stored earlier is served.
        let user = state.expiration(
            extensions.get::<Expiration>().copied(),
            scope.as_ref(),
            req.url(),
        );
        if !user.expiration.is_cacheable() && user.explicit {
            return pass_on(state, req, extensions, next).await;
        }
        let url_key = state.keys.key(req.method(), req.url(), req.headers(), body);
        // Request directives are honoured in every mode: they are the caller's own wish.
        let directives = RequestDirectives::parse(req.headers());
        let mode = match mode {
            CacheMode::Default if directives.is_some_and(|d| d.only_if_cached) => {
                CacheMode::OnlyIfCached
            }
            other => other,
        };

        let now = state.clock.now();
        let flight_mark = state.flights.mark();
        let (found, seen) = match mode {
            CacheMode::ForceRefresh => (None, SeenIndex::Unknown),
            _ => {
                let Lookup { found, index } = state.find(&url_key, req.headers()).await;
                (found, SeenIndex::Known(index.map(|index| *index)))
            }
        };
        if found.is_none() && req.method() == Method::HEAD && mode != CacheMode::ForceRefresh {
            // A stored GET answers a HEAD: same status and headers, no body.
            let get_key = state.keys.key(&Method::GET, req.url(), req.headers(), None);
            if let Some(Decision::Serve(get)) = state
                .find(&get_key, req.headers())
                .await
                .found
                .map(|get| decide(state, mode, directives.as_ref(), Some(get), now))
            {
                state.stats.hit();
                let info = hit_info(&get, false, now);
                return Ok(answer(get, &req, info, now, None));
            }
        }

        match decide(state, mode, directives.as_ref(), found, now) {
            Decision::Serve(found) => {
                let part = match ranged.then(|| range::answer(req.headers(), &found.response)) {
                    // `only-if-cached` never goes to the network: a range the cache cannot
                    // cut is answered with the whole response (RFC 9110 §14.2 lets a
                    // recipient ignore Range).
                    Some(RangeAnswer::Origin) if mode == CacheMode::OnlyIfCached => None,
                    Some(RangeAnswer::Origin) => {
                        return pass_on(state, req, extensions, next).await;
                    }
                    Some(RangeAnswer::Part(range)) => Some(range),
                    Some(RangeAnswer::Whole) | None => None,
                };
                state.stats.hit();
                let info = hit_info(&found, false, now);
                Ok(answer(found, &req, info, now, part))
            }
            // Nothing usable and `only-if-cached`: a 504, Range or not (RFC 9111 §5.2.1.7).
            Decision::GatewayTimeout => {
                state.stats.miss();
                Ok(gateway_timeout(req.url().clone(), url_key))
            }
            // Whatever else would happen, a Range request goes to the origin as it came.
            _ if ranged => pass_on(state, req, extensions, next).await,
            Decision::ServeStaleAndRefresh(found) => {
                state.stats.hit();
                let mut info = hit_info(&found, false, now);
                info.stale_while_revalidate = true;
                let aged_from = info.created_at;
                let response = serve(
                    found.response.clone(),
                    req.url(),
                    info,
                    true,
                    (aged_from, now),
                );
                let exchange =
                    Exchange::new(state, url_key, (Some(found), seen), user, directives, &req);
                state.refresher.start(&self.state, exchange, req);
                Ok(response)
            }
            Decision::Forward(found) => {
                let flight = match state.single_flight_wait {
                    Some(wait) if mode == CacheMode::Default && is_safe(req.method()) => {
                        Some((state.flights.join(url_key), wait))
                    }
                    _ => None,
                };
                let _leader = match flight {
                    Some((Flight::Follower(done), wait)) => {
                        // Boxed, as the miss path: its state stays out of the hit's future.
                        let follow =
                            self.follow(done, wait, url_key, directives.as_ref(), mode, &req);
                        if let Some(response) = Box::pin(follow).await {
                            return Ok(response);
                        }
                        None
                    }
                    Some((Flight::Leader(guard), _)) => {
                        // A flight for this key may have finished between our read and our
                        // joining: then look once more before going to the origin.
                        if state.flights.finished_since(&url_key, flight_mark) {
                            let again =
                                self.answer_from_cache(url_key, directives.as_ref(), mode, &req);
                            if let Some(response) = Box::pin(again).await {
                                return Ok(response);
                            }
                        }
                        Some(guard)
                    }
                    None => None,
                };
                let exchange = Exchange::new(state, url_key, (found, seen), user, directives, &req);
                // Boxed: the miss path's state stays out of the hit path's future.
                Box::pin(fetch(state, exchange, req, extensions, next)).await
            }
        }
    }
}

impl CacheMiddleware {
    /// Waits for the identical request in flight, then answers from what it stored; `None`
    /// when it stored nothing usable or took too long (then this request goes itself).
    async fn follow(
        &self,
        done: tokio::sync::watch::Receiver<bool>,
        wait: std::time::Duration,
        url_key: CacheKey,
        directives: Option<&RequestDirectives>,
        mode: CacheMode,
        req: &Request,
    ) -> Option<Response> {
        if !wait_for_leader(done, wait).await {
            return None;
        }
        self.answer_from_cache(url_key, directives, mode, req).await
    }

    /// A response from what is stored now, marked as coalesced; `None` when nothing usable is.
    async fn answer_from_cache(
        &self,
        url_key: CacheKey,
        directives: Option<&RequestDirectives>,
        mode: CacheMode,
        req: &Request,
    ) -> Option<Response> {
        let state = &*self.state;
        let now = state.clock.now();
        let found = state.find(&url_key, req.headers()).await.found;
        let Decision::Serve(found) = decide(state, mode, directives, found, now) else {
            return None;
        };
        state.stats.hit();
        let mut info = hit_info(&found, false, now);
        info.coalesced = true;
        Some(answer(found, req, info, now, None))
    }
}

/// GET and HEAD: the methods single-flight may merge.
fn is_safe(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Serve, revalidate, refetch, or answer 504.
fn decide(
    state: &CacheState,
    mode: CacheMode,
    directives: Option<&RequestDirectives>,
    found: Option<Box<Found>>,
    now: SystemTime,
) -> Decision {
    let Some(found) = found else {
        return match mode {
            CacheMode::OnlyIfCached => Decision::GatewayTimeout,
            _ => Decision::Forward(None),
        };
    };
    let freshness = found.freshness();
    let usable = match directives {
        // Strict: a reload (request `max-age`) does not revalidate a fresh immutable
        // response (RFC 8246 §2); a forced one (`no-cache`) still does.
        Some(d) if state.strict && d.max_age.is_some() && !d.no_cache => {
            let reload = RequestDirectives {
                max_age: None,
                ..*d
            };
            let immutable = freshness.is_fresh(now) && freshness.is_immutable();
            freshness.satisfies(if immutable { &reload } else { d }, now)
        }
        Some(directives) => freshness.satisfies(directives, now),
        None => freshness.is_fresh(now),
    };
    // Immutable responses are not revalidated while fresh, even on reload (RFC 8246).
    let immutable_fresh =
        state.cache_control && freshness.is_fresh(now) && freshness.is_immutable();
    // Serving stale while refreshing only when the request itself asks for nothing stricter.
    let may_serve_stale = directives.is_none()
        && stale_allowed(
            &freshness,
            now,
            "stale-while-revalidate",
            state.stale_while_revalidate,
            state.cache_control,
        );
    match mode {
        CacheMode::Default | CacheMode::OnlyIfCached if usable => Decision::Serve(found),
        CacheMode::Refresh if immutable_fresh => Decision::Serve(found),
        CacheMode::OnlyIfCached => Decision::GatewayTimeout,
        CacheMode::Default if may_serve_stale => Decision::ServeStaleAndRefresh(found),
        _ => Decision::Forward(Some(found)),
    }
}

/// Info for a response served from an entry.
pub(crate) fn hit_info(found: &Found, revalidated: bool, now: SystemTime) -> CacheInfo {
    CacheInfo {
        from_cache: true,
        created_at: Some(found.meta.created_at),
        expires: found.meta.expires_at,
        is_expired: found.meta.is_expired(now),
        key: Some(found.key),
        revalidated,
        ..CacheInfo::passed_through(None)
    }
}

/// The answer to `req` from a usable entry: a `304` the cache makes when the caller's own
/// `If-None-Match` / `If-Modified-Since` says its copy is current (evaluated before any
/// range, RFC 9110 §13.2.2), else the `206` of the byte range `part` when the request has one
/// the entry satisfies, else the stored response (without a body for HEAD).
fn answer(
    found: Box<Found>,
    req: &Request,
    mut info: CacheInfo,
    now: SystemTime,
    part: Option<std::ops::Range<usize>>,
) -> Response {
    let headers = req.headers();
    let conditional =
        headers.contains_key(IF_NONE_MATCH) || headers.contains_key(IF_MODIFIED_SINCE);
    let mut response = found.response;
    if conditional
        && conditional::not_modified(req.method(), headers, &response, found.meta.created_at)
    {
        info.generated_by_cache = true;
        response = conditional::into_not_modified(response);
    } else if let Some(part) = part {
        info.generated_by_cache = true;
        response = range::into_partial(response, part);
    }
    let with_body = req.method() != Method::HEAD;
    let aged_from = info.created_at;
    serve(response, req.url(), info, with_body, (aged_from, now))
}

/// A response rebuilt from an entry, with its current `Age`: the stored initial age plus the
/// time since `aged_from` (when the headers were stored or last refreshed); the body shares
/// the entry's buffer (none for HEAD).
pub(crate) fn serve(
    mut cached: CachedResponse,
    request_url: &Url,
    info: CacheInfo,
    with_body: bool,
    (aged_from, now): (Option<SystemTime>, SystemTime),
) -> Response {
    if let Some(aged_from) = aged_from {
        crate::age::set_current(&mut cached.headers, aged_from, now);
    }
    // Stored URLs are redacted. When the response came from the URL asked for, give back the
    // caller's own URL (with its parameters); after a redirect, the stored final URL.
    let url = if cached.url == cached.request.url {
        request_url.clone()
    } else {
        Url::parse(&cached.url).unwrap_or_else(|_| request_url.clone())
    };
    let parts = ResponseParts {
        status: cached.status,
        version: cached.version,
        headers: cached.headers,
        url,
        extensions: Extensions::new(),
    };
    let body = if with_body { cached.body } else { Bytes::new() };
    parts.into_response(reqwest::Body::from(body), info)
}

/// `504 Gateway Timeout`: what `OnlyIfCached` answers when nothing usable is stored.
fn gateway_timeout(url: Url, key: CacheKey) -> Response {
    let parts = ResponseParts {
        status: StatusCode::GATEWAY_TIMEOUT,
        version: http::Version::HTTP_11,
        headers: http::HeaderMap::new(),
        url,
        extensions: Extensions::new(),
    };
    let info = CacheInfo {
        generated_by_cache: true,
        ..CacheInfo::passed_through(Some(key))
    };
    parts.into_response(reqwest::Body::from(Bytes::new()), info)
}

/// Sends a request the cache does not answer or store; after a successful unsafe one,
/// invalidates what is stored for its URL. Boxed: its future (the invalidation's store
/// calls) would otherwise sit inside the request's, which every request, hits included,
/// moves into its box.
fn pass_on<'a>(
    state: &'a CacheState,
    req: Request,
    extensions: &'a mut Extensions,
    next: Next<'a>,
) -> HandleFuture<'a> {
    Box::pin(async move {
        if !is_unsafe(req.method()) {
            return pass_through(next.run(req, extensions).await, None);
        }
        let (method, url, headers) = (
            req.method().clone(),
            req.url().clone(),
            req.headers().clone(),
        );
        let result = next.run(req, extensions).await;
        if let Ok(response) = &result {
            invalidate_after_unsafe(state, &method, &url, &headers, response).await;
        }
        pass_through(result, None)
    })
}

/// A `POST` the cache does not store as such: passed on, and its answer stored for later
/// `GET`s when it names its own URL in `Content-Location` (RFC 9111 §4).
async fn post(
    state: &CacheState,
    scope: Option<&CacheScope>,
    req: Request,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<Response> {
    let user = state.expiration(extensions.get::<Expiration>().copied(), scope, req.url());
    if !user.expiration.is_cacheable() && user.explicit {
        return pass_on(state, req, extensions, next).await;
    }
    let (url, headers) = (req.url().clone(), req.headers().clone());
    let response = pass_on(state, req, extensions, next).await?;
    Ok(content_location::store_for_get(state, user, url, headers, response).await)
}

/// The network's answer, untouched but for the info saying the cache did nothing.
fn pass_through(
    result: reqwest_middleware::Result<Response>,
    key: Option<CacheKey>,
) -> reqwest_middleware::Result<Response> {
    result.map(|response| with_info(response, CacheInfo::passed_through(key)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Every request's future is moved into a box by [`Middleware::handle`]: its size is a
    /// copy on every hit. Large work (the network exchange, storing, invalidation, waiting
    /// for a flight) is boxed where it is awaited, so a change that inlines one again shows
    /// here rather than as a slower hit in the bench (one once grew it to tens of KB).
    #[tokio::test]
    async fn the_request_future_stays_small() {
        static SIZE: AtomicUsize = AtomicUsize::new(0);
        struct Probe(CacheMiddleware);
        #[async_trait::async_trait]
        impl Middleware for Probe {
            async fn handle(
                &self,
                req: Request,
                extensions: &mut Extensions,
                next: Next<'_>,
            ) -> reqwest_middleware::Result<Response> {
                let future = self.0.handle_request(req, extensions, next);
                SIZE.store(std::mem::size_of_val(&future), Ordering::SeqCst);
                drop(future);
                Err(reqwest_middleware::Error::middleware(
                    std::io::Error::other("measured only"),
                ))
            }
        }
        let cache = CacheMiddleware::builder()
            .store(cache_core::MemoryStore::new())
            .build()
            .unwrap();
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(Probe(cache))
            .build();
        let _ = client.get("http://127.0.0.1:9/").send().await;
        let size = SIZE.load(Ordering::SeqCst);
        assert!(size > 0, "the probe ran");
        assert!(size <= 2_048, "the request's future is {size} bytes");
    }
}

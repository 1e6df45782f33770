//! [`CacheMiddleware`]: the cache in the `reqwest-middleware` chain. Routes each request one
//! way: skip the cache ([`pass_on`](crate::pass_on)), or find what is stored
//! ([`lookup`](crate::lookup)), [`decide`](crate::decide), then answer from the entry
//! ([`serve`](crate::serve)) or go to the [`network`](crate::network) (joining an identical
//! request in flight, or refreshing in the background); offline and replay modes answer a
//! miss themselves (a `504`, a [`ReplayMiss`]). Nothing below calls back into it.

use std::sync::Arc;

use cache_core::CacheKey;
use cache_http::Expiration;
use cache_http::freshness::RequestDirectives;
use futures_util::future::Either;
use http::header::RANGE;
use http::{Extensions, Method};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use crate::cache::Cache;
use crate::decide::{Decision, decide};
use crate::error::ReplayMiss;
use crate::exchange::Exchange;
use crate::flight::{Flight, LeaderGuard, wait_for_leader};
use crate::handle::CacheHandle;
use crate::lookup::{Found, Lookup, find};
use crate::mode::CacheMode;
use crate::network::{fetch, refresh_in_background};
use crate::observe;
use crate::pass_on::{HandleFuture, pass_on};
use crate::policy::UserExpiration;
use crate::post_for_get::post;
use crate::range::{self, RangeAnswer};
use crate::scope::{self, CacheScope};
use crate::serve::{answer, gateway_timeout, hit_info, offline_miss};
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
/// - The cache reads a cacheable response's body whole before returning it, up to
///   [`max_body_size`](crate::CacheMiddlewareBuilder::max_body_size) and for at most
///   [`stream_after`](crate::CacheMiddlewareBuilder::stream_after): a body still arriving
///   then streams to the caller and is stored once read to its end; a larger one streams
///   through (stored as it streams when the store keeps bodies in files).
/// - Store failures never fail a request: they are logged with `tracing`, counted in
///   [`CacheStats::errors`](crate::CacheStats), and the request goes to the network.
/// - Each request runs in a `DEBUG` [`tracing`] span `http_cache` with its method, redacted
///   URL, key, outcome and time in store calls; with the `metrics` feature, counters and
///   histograms go through the `metrics` facade. Names and levels: the crate documentation,
///   [Observability](crate#observability).
/// - Background refreshes (`stale_while_revalidate`) are sent with the middleware's own
///   [`reqwest::Client`] ([`background_client`](crate::CacheMiddlewareBuilder::background_client)),
///   not through the rest of the middleware chain, which cannot outlive the request that
///   started them. Each is bounded as a whole, body included
///   ([`refresh_timeout`](crate::CacheMiddlewareBuilder::refresh_timeout)); failures are warned
///   about and counted in [`CacheStats::refresh_failures`](crate::CacheStats).
#[derive(Clone, Debug)]
pub struct CacheMiddleware {
    cache: Arc<Cache>,
}

impl CacheMiddleware {
    /// The cache this middleware runs (for tests that call its parts).
    #[cfg(test)]
    pub(crate) fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    pub(crate) fn from_cache(cache: Cache) -> Self {
        Self {
            cache: Arc::new(cache),
        }
    }

    /// A handle to inspect and manage the cache (cheap to clone; shares the store).
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::new(Arc::clone(&self.cache))
    }

    /// A client with only this middleware, over `client`.
    pub fn into_client(self, client: reqwest::Client) -> ClientWithMiddleware {
        ClientBuilder::new(client).with(self).build()
    }
}

/// What the lookup left for a request that goes to the origin.
struct Miss {
    url_key: CacheKey,
    found: Option<Found>,
    seen: SeenIndex,
    user: UserExpiration,
    directives: Option<RequestDirectives>,
    mode: CacheMode,
    /// [`Flights::mark`](crate::flight::Flights::mark) taken before the lookup.
    flight_mark: u64,
}

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
        let span = observe::request_span(&self.cache.settings.keys, &req);
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
    //
    // An `async` block rather than an `async fn`: an `async fn` keeps its arguments and the
    // locals they are moved into apart in its state, and every hit allocates and moves that
    // state (`handle` boxes it).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn's state is 300 bytes larger (see above)"
    )]
    fn handle_request<'a>(
        &'a self,
        req: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        async move {
            let cache = &*self.cache;
            let (settings, live) = (&cache.settings, &cache.live);
            let scope = scope::current();
            // One snapshot of what a handle may change: this request sees one version whole.
            let (mode, user) = {
                let runtime = settings.runtime.load();
                let asked = extensions
                    .get::<CacheMode>()
                    .copied()
                    .or_else(|| scope.as_ref().and_then(CacheScope::cache_mode));
                let user = runtime.expiration(
                    extensions.get::<Expiration>().copied(),
                    scope.as_ref(),
                    req.url(),
                );
                (runtime.mode(asked), user)
            };
            // A recording keeps every answer it took: unsafe requests invalidate nothing then.
            let invalidates = mode != CacheMode::Record;
            // Requests the cache does not answer still go through `pass_on`: a successful unsafe
            // one invalidates what is stored for its URL, whatever skipped the cache.
            if scope.as_ref().is_some_and(CacheScope::is_disabled) || mode == CacheMode::Bypass {
                return pass_on(&self.cache, req, extensions, next, invalidates).await;
            }
            // Request directives are honoured in every mode: they are the caller's own wish.
            // `only-if-cached` also over a cache that revalidates by default
            // (`always_revalidate`): the caller asked for no request at all.
            let directives = RequestDirectives::parse(req.headers());
            let mode = match mode {
                CacheMode::Default | CacheMode::Revalidate
                    if directives.is_some_and(|d| d.only_if_cached) =>
                {
                    CacheMode::OnlyIfCached
                }
                other => other,
            };
            // Offline, replay and `only-if-cached` never send: what the cache cannot look up
            // gets their answer to a miss.
            let never_sends = mode.never_sends();
            // A Range request is answered from a stored complete response, or passed on: its
            // answer (a `206`) is never stored. Range means something for GET only (RFC 9110
            // §14.2: ignored with any other method), so a HEAD with one is a HEAD.
            let ranged = req.method() == Method::GET && req.headers().contains_key(RANGE);
            if !settings.allowable_methods.contains(req.method()) {
                if never_sends {
                    return nothing_stored(cache, mode, &req, None);
                }
                let post_for_get = settings.cache_control
                    && req.method() == Method::POST
                    && !ranged
                    && settings.allowable_methods.contains(&Method::GET);
                if post_for_get {
                    // Boxed: storing the answer is a large future, kept out of the hit path's.
                    return Box::pin(post(&self.cache, user, req, extensions, next, invalidates))
                        .await;
                }
                return pass_on(&self.cache, req, extensions, next, invalidates).await;
            }
            let body = match req.body() {
                None => None,
                Some(body) => match body.as_bytes() {
                    Some(bytes) => Some(bytes),
                    // A streaming body cannot be keyed without consuming it.
                    None if never_sends => return nothing_stored(cache, mode, &req, None),
                    None => {
                        return pass_on(&self.cache, req, extensions, next, invalidates).await;
                    }
                },
            };
            // An explicit "do not cache" (per request, scope or URL pattern) skips reads too, as
            // requests-cache's DO_NOT_CACHE does: nothing stored earlier is served.
            if !user.expiration.is_cacheable() && user.explicit {
                if never_sends {
                    return nothing_stored(cache, mode, &req, None);
                }
                return pass_on(&self.cache, req, extensions, next, invalidates).await;
            }
            let url_key = settings
                .keys
                .key(req.method(), req.url(), req.headers(), body);

            let now = settings.clock.now();
            let flight_mark = live.flights.mark();
            let (found, seen) = if mode.skips_lookup() {
                (None, SeenIndex::Unknown)
            } else {
                let url_group = || settings.keys.url_group(req.url());
                let Lookup { found, index } = find(live, &url_key, req.headers(), url_group).await;
                (found, SeenIndex::Known(index))
            };
            if found.is_none() && req.method() == Method::HEAD && !mode.skips_lookup() {
                // A stored GET answers a HEAD: same status and headers, no body.
                let get_key = settings
                    .keys
                    .key(&Method::GET, req.url(), req.headers(), None);
                let url_group = || settings.keys.url_group(req.url());
                if let Some(Decision::Serve(get)) = find(live, &get_key, req.headers(), url_group)
                    .await
                    .found
                    .map(|get| decide(settings, mode, directives.as_ref(), Some(get), now))
                {
                    live.stats.hit();
                    let info = hit_info(&get, false, now);
                    return Ok(answer(get, &req, info, now, None));
                }
            }

            match decide(settings, mode, directives.as_ref(), found, now) {
                Decision::Serve(found) => {
                    // A body kept in its file is not cut (its signature covers the whole).
                    let range_of = |found: &Found| match found.body {
                        Some(_) => RangeAnswer::Origin,
                        None => range::answer(req.headers(), found.response()),
                    };
                    let part = match ranged.then(|| range_of(&found)) {
                        // `only-if-cached` (and offline, replay) never goes to the network: a
                        // range the cache cannot cut is answered with the whole response
                        // (RFC 9110 §14.2 lets a recipient ignore Range).
                        Some(RangeAnswer::Origin) if never_sends => None,
                        Some(RangeAnswer::Origin) => {
                            let passed = pass_on(&self.cache, req, extensions, next, invalidates);
                            return ranged_miss(cache, Box::pin(passed).await, url_key);
                        }
                        Some(RangeAnswer::Part(range)) => Some(range),
                        Some(RangeAnswer::Whole) | None => None,
                    };
                    live.stats.hit();
                    let info = hit_info(&found, false, now);
                    Ok(answer(found, &req, info, now, part))
                }
                // Nothing usable and `only-if-cached`: a 504, Range or not (RFC 9111 §5.2.1.7).
                Decision::GatewayTimeout => {
                    live.stats.miss();
                    Ok(gateway_timeout(req.url().clone(), Some(url_key)))
                }
                Decision::NothingStored => nothing_stored(cache, mode, &req, Some(url_key)),
                // Whatever else would happen, a Range request goes to the origin as it came.
                _ if ranged => {
                    let passed = pass_on(&self.cache, req, extensions, next, invalidates).await;
                    ranged_miss(cache, passed, url_key)
                }
                Decision::ServeStaleAndRefresh(found) => {
                    live.stats.hit();
                    let mut info = hit_info(&found, false, now);
                    info.stale_while_revalidate = true;
                    // Answered as any hit is: a `304` to the caller's own matching conditions,
                    // no body to a `HEAD`.
                    let response = answer(found.clone(), &req, info, now, None);
                    let exchange = Exchange::new(
                        settings,
                        url_key,
                        (Some(found), seen),
                        user,
                        directives,
                        &req,
                    );
                    refresh_in_background(&self.cache, exchange, &req);
                    Ok(response)
                }
                // Boxed: the miss path's state (the request, what the lookup found) stays out of
                // the hit path's future, which every hit allocates and moves.
                Decision::Forward(found) => {
                    let miss = Miss {
                        url_key,
                        found,
                        seen,
                        user,
                        directives,
                        mode,
                        flight_mark,
                    };
                    Box::pin(self.forward(miss, req, extensions, next)).await
                }
            }
        }
    }
}

impl CacheMiddleware {
    /// A request the cache does not answer from what it holds: it goes to the origin (or
    /// follows the identical request in flight) and its answer is stored.
    ///
    /// Not an `async fn` (see [`fetch`]): its future is the miss path's own box, allocated
    /// and copied into on every miss; a request that waits for no flight is `fetch`'s future
    /// alone.
    fn forward<'a>(
        &'a self,
        miss: Miss,
        req: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        let live = &self.cache.live;
        let (url_key, mode) = (miss.url_key, miss.mode);
        let flight = match self.cache.settings.single_flight_wait {
            Some(wait) if mode == CacheMode::Default && is_safe(req.method()) => {
                Some((live.flights.join(url_key), wait))
            }
            _ => None,
        };
        let leader = match flight {
            // A flight for this key may have finished between our read and our joining:
            // then look once more before going to the origin.
            Some((Flight::Leader(guard), _))
                if !live.flights.finished_since(&url_key, miss.flight_mark) =>
            {
                Some(guard)
            }
            Some((flight, wait)) => {
                let looking: HandleFuture<'a> =
                    Box::pin(self.after_flight(miss, (flight, wait), req, extensions, next));
                return Either::Right(looking);
            }
            None => None,
        };
        Either::Left(self.send_missed(miss, leader, req, extensions, next))
    }

    /// [`CacheMiddleware::forward`] of a request that first looks at what the identical
    /// request in flight stored: as its follower, once it landed (or `wait` passed); as the
    /// leader, when a flight for its key finished between its read and its joining. Goes to
    /// the origin when that stored nothing usable.
    async fn after_flight(
        &self,
        miss: Miss,
        (flight, wait): (Flight, std::time::Duration),
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let (url_key, mode, directives) = (miss.url_key, miss.mode, miss.directives.as_ref());
        let (stored, leader) = match flight {
            Flight::Follower(done) => {
                let follow = self.follow(done, wait, url_key, directives, mode, &req);
                (follow.await, None)
            }
            Flight::Leader(guard) => {
                let again = self.answer_from_cache(url_key, directives, mode, &req);
                (again.await, Some(guard))
            }
        };
        if let Some(response) = stored {
            return Ok(response);
        }
        self.send_missed(miss, leader, req, extensions, next).await
    }

    /// Sends a missed request to the origin (as its flight's `leader`, when it leads one).
    fn send_missed<'a>(
        &'a self,
        miss: Miss,
        leader: Option<LeaderGuard>,
        req: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        let settings = &self.cache.settings;
        let found = (miss.found, miss.seen);
        let mut exchange = Exchange::new(
            settings,
            miss.url_key,
            found,
            miss.user,
            miss.directives,
            &req,
        );
        exchange.recording = miss.mode == CacheMode::Record;
        exchange.leader = leader;
        fetch(&self.cache, exchange, req, extensions, next)
    }

    /// Waits for the identical request in flight, then answers from what it stored; `None`
    /// when it stored nothing usable or took too long (then this request goes itself).
    async fn follow(
        &self,
        done: std::sync::Arc<crate::flight::Landing>,
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
        let cache = &*self.cache;
        let now = cache.settings.clock.now();
        let url_group = || cache.settings.keys.url_group(req.url());
        let found = find(&cache.live, &url_key, req.headers(), url_group)
            .await
            .found;
        let Decision::Serve(found) = decide(&cache.settings, mode, directives, found, now) else {
            return None;
        };
        cache.live.stats.hit();
        let mut info = hit_info(&found, false, now);
        info.coalesced = true;
        Some(answer(found, req, info, now, None))
    }
}

/// The answer of a mode that never sends ([`CacheMode::Offline`], [`CacheMode::Replay`],
/// [`CacheMode::OnlyIfCached`]) to a request nothing stored answers: the offline `504`, the
/// replay error naming the request, or `only-if-cached`'s `504`. `key` is `None` for a
/// request the cache could not look up.
fn nothing_stored(
    cache: &Cache,
    mode: CacheMode,
    req: &Request,
    key: Option<CacheKey>,
) -> reqwest_middleware::Result<Response> {
    cache.live.stats.miss();
    if mode == CacheMode::OnlyIfCached {
        return Ok(gateway_timeout(req.url().clone(), key));
    }
    if mode == CacheMode::Replay {
        let url = cache.settings.keys.redact_url(req.url());
        let miss = ReplayMiss::new(req.method().clone(), url.into());
        return Err(reqwest_middleware::Error::middleware(miss));
    }
    Ok(offline_miss(req.url().clone(), key))
}

/// A Range request the cache looked up and could not answer, passed on as it came: a miss,
/// under its key (reported as one the cache never looked at before).
fn ranged_miss(
    cache: &Cache,
    passed: reqwest_middleware::Result<Response>,
    url_key: CacheKey,
) -> reqwest_middleware::Result<Response> {
    cache.live.stats.miss();
    passed.map(|mut response| {
        if let Some(info) = response.extensions_mut().get_mut::<crate::CacheInfo>() {
            info.key = Some(url_key);
        }
        response
    })
}

/// GET and HEAD: the methods single-flight may merge.
fn is_safe(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Which of the middleware's futures a [`Probe`] measures.
    #[derive(Clone, Copy)]
    enum Measured {
        /// A request's ([`CacheMiddleware::handle_request`]).
        Request,
        /// A miss's way to the origin and back ([`CacheMiddleware::forward`]).
        Miss,
    }

    /// A middleware that makes one of the cache's futures for the request it is given,
    /// records its size and fails the request without running it.
    struct Probe {
        cache: CacheMiddleware,
        measured: Measured,
        size: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl Middleware for Probe {
        async fn handle(
            &self,
            req: Request,
            extensions: &mut Extensions,
            next: Next<'_>,
        ) -> reqwest_middleware::Result<Response> {
            let cache = &self.cache;
            let size = match self.measured {
                Measured::Request => {
                    std::mem::size_of_val(&cache.handle_request(req, extensions, next))
                }
                Measured::Miss => {
                    let keys = &cache.cache.settings.keys;
                    let miss = Miss {
                        url_key: keys.key(req.method(), req.url(), req.headers(), None),
                        found: None,
                        seen: SeenIndex::Known(None),
                        user: UserExpiration {
                            expiration: Expiration::Never,
                            explicit: false,
                        },
                        directives: None,
                        mode: CacheMode::Default,
                        flight_mark: cache.cache.live.flights.mark(),
                    };
                    std::mem::size_of_val(&cache.forward(miss, req, extensions, next))
                }
            };
            self.size.store(size, Ordering::SeqCst);
            Err(reqwest_middleware::Error::middleware(
                std::io::Error::other("measured only"),
            ))
        }
    }

    /// The size of the future `measured` names, made for a GET.
    async fn size_of(measured: Measured) -> usize {
        let size = Arc::new(AtomicUsize::new(0));
        let cache = CacheMiddleware::builder()
            .store(cache_core::MemoryStore::new())
            .build()
            .unwrap();
        let probe = Probe {
            cache,
            measured,
            size: Arc::clone(&size),
        };
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(probe)
            .build();
        let _ = client.get("http://127.0.0.1:9/").send().await;
        let size = size.load(Ordering::SeqCst);
        assert!(size > 0, "the probe ran");
        size
    }

    /// Every request's future is moved into a box by [`Middleware::handle`]: its size is a
    /// copy on every hit. Large work (the network exchange, storing, invalidation, waiting
    /// for a flight) is boxed where it is awaited, so a change that inlines one again shows
    /// here rather than as a slower hit in the bench (one once grew it to tens of KB).
    #[tokio::test]
    async fn the_request_future_stays_small() {
        let size = size_of(Measured::Request).await;
        assert!(size <= 2_048, "the request's future is {size} bytes");
    }

    /// Every miss boxes its way to the origin and back ([`CacheMiddleware::forward`]), so
    /// its size is allocated and copied on every miss. Each level is a plain function
    /// returning the future it ends in; as `async fn`s holding their arguments beside what
    /// they awaited, the levels made it 5 KiB.
    #[tokio::test]
    async fn the_miss_future_stays_small() {
        let size = size_of(Measured::Miss).await;
        assert!(size <= 2_048, "the miss path's future is {size} bytes");
    }
}

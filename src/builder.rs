//! [`CacheMiddlewareBuilder`]: every setting of the cache, and the ways to make a
//! [`CacheMiddleware`] (`new`, `builder`, `Default`, [`cached_client`]). Builds the
//! [`Settings`] and the [`Live`] machinery; nothing in the crate calls back into it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use cache_core::CacheStore;
use cache_core::codec::{EntryCodec, SigningKeys};

use cache_core::CacheKey;
use cache_http::{Clock, Expiration, KeyRequest, KeyRules, MatchHeaders, SystemClock};
use http::{Method, StatusCode};

#[cfg(feature = "sqlite")]
use reqwest_middleware::ClientWithMiddleware;

use crate::breaker::Breaker;
use crate::cache::Cache;
use crate::error::Error;
use crate::flight::Flights;
use crate::key_memo::KeyFn;
use crate::live::Live;
use crate::middleware::CacheMiddleware;
use crate::mode::CacheMode;
use crate::refresh::Refresher;
use crate::runtime_settings::{Runtime, RuntimeSettings};
use crate::settings::{ResponseFilter, Settings, StoredFilter};
use crate::stale::StaleAllowance;
use crate::stats::StatsCounters;
use crate::store_calls::StoreCalls;
use crate::unfinished_invalidations::UnfinishedInvalidations;
use crate::url_patterns::UrlPattern;
use crate::variant_keys::VariantKeys;
use crate::vary_guesses::VaryGuesses;
use crate::warnings::error_chain;

/// Responses with a body larger than this are passed through uncached by default.
///
/// A body without `Content-Length` is buffered up to this size before the cache knows whether
/// it fits, so this is also about the most memory one response in flight can hold: 8 MiB keeps
/// a 100 MB download's peak under 10 MB above the baseline (`bench -- big-body`) while
/// covering pages and API responses. Raise it with `max_body_size` to cache larger bodies.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 8 * 1024 * 1024;

/// How long a body may take to end before its response streams to the caller (see
/// [`CacheMiddlewareBuilder::stream_after`]).
pub const DEFAULT_STREAM_AFTER: Duration = Duration::from_secs(1);

/// How long a store call may take before the request goes on without the cache, by default,
/// for a store that suggests nothing else
/// ([`CacheStore::suggested_timeout`]: 1 s for Redis, 3 s for MongoDB and DynamoDB, which
/// write large bodies in chunks).
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The origin statuses [`stale_if_error`](CacheMiddlewareBuilder::stale_if_error) treats as
/// errors by default: `429 Too Many Requests` (what rate-limited APIs answer) and the
/// `5xx` a retry may fix.
pub const DEFAULT_STALE_IF_ERROR_STATUSES: &[u16] = &[429, 500, 502, 503, 504];
/// How long a background refresh (`stale-while-revalidate`) may take, by default: from sending
/// the request to storing the answer, body included.
pub const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request waits for an identical one in flight, by default.
pub const DEFAULT_SINGLE_FLIGHT_WAIT: Duration = Duration::from_secs(30);

/// The file [`CacheMiddleware::new`] opens: `./http_cache.sqlite`, as requests-cache.
pub const DEFAULT_SQLITE_PATH: &str = "http_cache.sqlite";

/// Builds a [`CacheMiddleware`]. Start with [`CacheMiddleware::builder`].
///
/// ```
/// use reqwest_caching::{CacheMiddleware, Expiration, MemoryStore};
/// use std::time::Duration;
///
/// let cache = CacheMiddleware::builder()
///     .store(MemoryStore::new())
///     .expire_after(Duration::from_secs(3600))
///     .urls_expire_after([
///         ("api.example.com/live/*", Expiration::DoNotCache),
///         ("*.example.com/static", Expiration::Never),
///     ])
///     .allowable_codes([200, 203, 404])
///     .ignored_parameters(["api_key", "Authorization", "nonce"])
///     .build()?;
/// # Ok::<(), reqwest_caching::Error>(())
/// ```
#[must_use]
pub struct CacheMiddlewareBuilder {
    store: Option<Arc<dyn CacheStore>>,
    keys: KeyRules,
    key_fn: Option<Arc<KeyFn>>,
    codec: EntryCodec,
    /// Expiration, URL patterns, mode and always_revalidate: what the handle may change
    /// later, kept in the form it changes them in.
    runtime: RuntimeSettings,
    cache_control: bool,
    strict: bool,
    stale_if_error: StaleAllowance,
    stale_if_error_statuses: Vec<u16>,
    stale_while_revalidate: StaleAllowance,
    background_client: Option<reqwest::Client>,
    refresh_timeout: Duration,
    single_flight_wait: Option<Duration>,
    /// Failures before opening, first back-off, longest back-off.
    breaker: (u32, Duration, Duration),
    allowable_codes: Vec<u16>,
    allowable_methods: Vec<Method>,
    filter: Option<Arc<ResponseFilter>>,
    stored_filter: Option<Arc<StoredFilter>>,
    cache_set_cookie: bool,
    max_body_bytes: u64,
    stream_after: Duration,
    store_timeout: Option<Duration>,
    clock: Arc<dyn Clock>,
    read_only: bool,
}

impl Default for CacheMiddlewareBuilder {
    fn default() -> Self {
        Self {
            store: None,
            keys: KeyRules::default(),
            key_fn: None,
            codec: EntryCodec::new(),
            runtime: RuntimeSettings::default(),
            cache_control: false,
            strict: false,
            stale_if_error: StaleAllowance::Off,
            stale_if_error_statuses: DEFAULT_STALE_IF_ERROR_STATUSES.to_vec(),
            stale_while_revalidate: StaleAllowance::Off,
            background_client: None,
            refresh_timeout: DEFAULT_REFRESH_TIMEOUT,
            single_flight_wait: Some(DEFAULT_SINGLE_FLIGHT_WAIT),
            breaker: (5, Duration::from_secs(1), Duration::from_secs(60)),
            allowable_codes: vec![200],
            allowable_methods: vec![Method::GET, Method::HEAD],
            filter: None,
            stored_filter: None,
            cache_set_cookie: false,
            max_body_bytes: DEFAULT_MAX_BODY_SIZE,
            stream_after: DEFAULT_STREAM_AFTER,
            store_timeout: None,
            clock: Arc::new(SystemClock),
            read_only: false,
        }
    }
}

impl CacheMiddlewareBuilder {
    /// Where entries are kept (default: SQLite at [`DEFAULT_SQLITE_PATH`]).
    pub fn store(self, store: impl CacheStore) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// Like [`store`](Self::store), for a store already shared elsewhere.
    pub fn shared_store(mut self, store: Arc<dyn CacheStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long responses stay fresh unless a more specific setting says otherwise
    /// (default [`Expiration::Never`]).
    pub fn expire_after(mut self, expiration: impl Into<Expiration>) -> Self {
        self.runtime = self.runtime.expire_after(expiration);
        self
    }

    /// Follow HTTP caching headers, as a private cache under RFC 9111 (default off, as
    /// requests-cache's `cache_control=False`).
    ///
    /// When on:
    /// - response `no-store` is not stored (unless `must-understand` comes with a status code
    ///   the cache knows); `max-age` (`s-maxage` is ignored: this is a private cache), else
    ///   `Expires` (in any of the three HTTP date forms), sets the lifetime, counting `Age` and
    ///   `Date`; `no-cache` and `Pragma: no-cache` store the response but revalidate every
    ///   use, while `no-cache="field"` only leaves that field out of the stored copy; invalid
    ///   freshness (`max-age=abc`, `Expires: 0`) counts as already stale;
    /// - without explicit freshness, and with no expiration set by you, a lifetime of 10 % of
    ///   the time since `Last-Modified` (for heuristically cacheable status codes, and any
    ///   code marked `public`);
    /// - the `stale-if-error` / `stale-while-revalidate` directives apply, but
    ///   `must-revalidate` and `no-cache` forbid serving stale, under those directives and your
    ///   `stale_*` settings alike (RFC 9111 §4.2.4; `proxy-revalidate` binds shared caches
    ///   only); `immutable` skips revalidation of fresh entries under
    ///   [`CacheMode::Refresh`](crate::CacheMode).
    ///
    /// Request directives (`max-age`, `min-fresh`, `max-stale`, `no-cache`, `no-store`,
    /// `only-if-cached`, `Pragma: no-cache`) are honoured whether this is on or off: they are
    /// the caller's own request.
    ///
    /// Precedence: request `Cache-Control` > response `Cache-Control` / `Expires` > per-request
    /// expiration > scope > URL pattern > session.
    ///
    /// For a cache that follows RFC 9111 as a private cache without exceptions, see
    /// [`strict_rfc9111`](Self::strict_rfc9111).
    pub fn cache_control(mut self, on: bool) -> Self {
        self.cache_control = on;
        self
    }

    /// Strict RFC 9111 private-cache mode (default off): the cache stores and reuses exactly
    /// what RFC 9111 allows a private cache to, as a browser cache does. Implies
    /// [`cache_control`](Self::cache_control).
    ///
    /// On top of `cache_control(true)`, this mode:
    /// - decides freshness by the response first: explicit (`max-age`, else `Expires`), else
    ///   heuristic (10 % of the time since `Last-Modified`, for the heuristically cacheable
    ///   codes 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501 and any code marked
    ///   `public`), else your expiration settings when you set one, else *stored but stale*:
    ///   revalidated (or fetched again) before each use. The default
    ///   [`Expiration::Never`] does not apply;
    /// - stores the status codes RFC 9111 §3 allows instead of
    ///   [`allowable_codes`](Self::allowable_codes): any final code (not `206`, `304`) whose
    ///   response has explicit freshness, `public` or `private`, or whose code is heuristically
    ///   cacheable;
    /// - stores responses that set cookies *with* their `Set-Cookie` header and replays it on
    ///   hits, as RFC 9111 §3.1 asks of a private cache (see
    ///   [`cache_set_cookie`](Self::cache_set_cookie) for why the other modes do not).
    ///   **Use strict mode only in a client serving one user**: a stored cookie is replayed to
    ///   every request with the same key, so a shared server-side client would hand one
    ///   user's session to the next;
    /// - serves a fresh `immutable` response to a reload (`Cache-Control: max-age=0`) without
    ///   revalidating it (RFC 8246); `no-cache` still revalidates;
    /// - reuses a fresh response to a `POST` whose `Content-Location` is the request URL for
    ///   later `GET`s of that URL (RFC 9111 §4, RFC 9110 §9.3.3), as does `cache_control(true)`.
    ///
    /// In every mode the cache sends the current `Age` of stored responses, never stores the
    /// fields `Connection` lists (nor the other connection-specific fields), answers a
    /// caller's own `If-None-Match` / `If-Modified-Since` with a `304` when a usable stored
    /// response matches, and a single byte `Range` with a `206` cut from a stored `200`.
    /// A redirect reqwest followed (below the cache, which never sees it or its directives)
    /// is not cached: the final response is stored for the final URL only, where outside
    /// strict mode it answers the URL asked for too.
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    ///
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .strict_rfc9111(true)
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    ///
    /// # Note
    ///
    /// [`allowable_methods`](Self::allowable_methods), the [`filter`](Self::filter), key
    /// settings and per-request modes still apply. Not implemented: storing partial (`206`)
    /// responses and combining them, and answering several ranges in one request.
    pub fn strict_rfc9111(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// Serve a stale entry when the origin answers with one of the
    /// [`stale_if_error_statuses`](Self::stale_if_error_statuses) (by default `429`, `500`,
    /// `502`, `503`, `504`) or cannot be reached: `true` for any staleness, or a `Duration`
    /// past expiry (default off). The response's `stale-if-error` directive applies too when
    /// [`cache_control`](Self::cache_control) is on.
    /// [`CacheInfo::stale_if_error`](crate::CacheInfo) marks such responses.
    pub fn stale_if_error(mut self, allowance: impl Into<StaleAllowance>) -> Self {
        self.stale_if_error = allowance.into();
        self
    }

    /// The origin statuses [`stale_if_error`](Self::stale_if_error) (and a response's
    /// `stale-if-error` directive) answer with a stale entry; replaces the default,
    /// [`DEFAULT_STALE_IF_ERROR_STATUSES`] (`429`, `500`, `502`, `503`, `504`). Other
    /// statuses are passed to the caller.
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    ///
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .stale_if_error(true)
    ///     .stale_if_error_statuses([429, 500, 502, 503, 504, 520, 522])
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    pub fn stale_if_error_statuses(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.stale_if_error_statuses = codes.into_iter().collect();
        self
    }

    /// Serve a stale entry at once and refresh it in the background: `true` for any
    /// staleness, or a `Duration` past expiry (default off). The response's
    /// `stale-while-revalidate` directive applies too when [`cache_control`](Self::cache_control)
    /// is on. At most one refresh per entry runs at a time, and 64 in all (a stale hit finding
    /// 64 running is served stale and starts none); refreshes stop when the middleware and all
    /// its handles are dropped.
    ///
    /// # Note
    ///
    /// Refreshes are sent with the [`background_client`](Self::background_client), not
    /// through the middleware below the cache (retries, auth, tracing), which lives only as
    /// long as the request that found the entry stale. Each is bounded by
    /// [`refresh_timeout`](Self::refresh_timeout), body included. One that fails (the network,
    /// the bound, or an answer not stored: a `401`, an uncacheable response) leaves the stale
    /// entry in place; it is logged at `WARN` (at most once a second) and counted in
    /// [`CacheStats::refresh_failures`](crate::CacheStats), and the next stale request may
    /// start another.
    pub fn stale_while_revalidate(mut self, allowance: impl Into<StaleAllowance>) -> Self {
        self.stale_while_revalidate = allowance.into();
        self
    }

    /// Concurrent identical cacheable misses send one request (default on): the others wait
    /// up to this long for it, then are answered from what it stored
    /// ([`CacheInfo::coalesced`](crate::CacheInfo)); if it stored nothing or took longer, they
    /// go to the network themselves. `None` turns single-flight off.
    pub fn single_flight(mut self, wait: Option<Duration>) -> Self {
        self.single_flight_wait = wait;
        self
    }

    /// The circuit breaker around the store (default: open after 5 transient failures in a
    /// row, back off 1 s, doubling up to 60 s). While open, requests skip the store and go to
    /// the network at once; after each back-off one request probes the store. The back-off
    /// is measured on the [`clock`](Self::clock); a back-off too long for the clock
    /// (`Duration::MAX`) keeps the store skipped for good.
    pub fn store_breaker(
        mut self,
        failures: u32,
        first_backoff: Duration,
        max_backoff: Duration,
    ) -> Self {
        self.breaker = (failures, first_backoff, max_backoff);
        self
    }

    /// The client background refreshes are sent with (default: a `reqwest::Client::new()`,
    /// built by the first refresh, so a middleware that never refreshes never loads root
    /// certificates for it). They cannot go through the middleware chain, which lives only as
    /// long as one request: give this client what the chain would have added (default
    /// headers, auth, proxy).
    pub fn background_client(mut self, client: reqwest::Client) -> Self {
        self.background_client = Some(client);
        self
    }

    /// How long one background refresh may take, from sending the request to storing the
    /// answer with its whole body (default [`DEFAULT_REFRESH_TIMEOUT`], 60 s). A refresh still
    /// running then is abandoned and counted as failed, and its entry may be refreshed again.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }

    /// Expiration by URL pattern; the first matching pattern wins. Replaces earlier patterns.
    ///
    /// A pattern is a [`UrlPattern`]: a glob (any `&str` or `String`), matched as
    /// requests-cache matches globs against `host[:port]/path?query` (any scheme given is
    /// ignored): `*` matches anything including `/`, and a pattern covers every URL it is a
    /// prefix of; or a regular expression ([`UrlPattern::regex`]), searched in the whole URL,
    /// scheme and query included.
    pub fn urls_expire_after<I, P, E>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = (P, E)>,
        P: Into<UrlPattern>,
        E: Into<Expiration>,
    {
        self.runtime = self.runtime.urls_expire_after(patterns);
        self
    }

    /// Status codes whose responses are cached (default: only `200`). A `206`, `304` or
    /// `1xx` is never stored, listed or not: none is a whole response of its own.
    pub fn allowable_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.allowable_codes = codes.into_iter().collect();
        self
    }

    /// Methods whose responses are cached (default: `GET` and `HEAD`). Add `POST` to cache
    /// POST requests keyed by their body.
    pub fn allowable_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.allowable_methods = methods.into_iter().collect();
        self
    }

    /// A last say on whether a response is cached: called with the response (before its body
    /// is read) when everything else allows caching; `false` leaves it uncached.
    pub fn filter<F>(mut self, filter: F) -> Self
    where
        F: Fn(&reqwest::Response) -> bool + Send + Sync + 'static,
    {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// A rule on responses with their body, applied both ways, as requests-cache applies its
    /// `filter_fn` when reading too: before storing, `keep` sees the response as it would be
    /// stored (status, headers, body, the redacted request); `false` leaves it unstored. On
    /// every read, `keep` sees the stored response; `false` makes it as if nothing were stored
    /// (the request goes to the origin, and a response the rule keeps replaces it). So a rule
    /// changed in a new release also stops serving what the old rule let in.
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    ///
    /// // Never keep (nor serve) an API answer that reports an error in its body.
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .stored_filter(|response| !response.body.starts_with(br#"{"error""#))
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    ///
    /// # Note
    ///
    /// It runs on every hit: keep it cheap. It sees what is stored, so headers the cache
    /// never stores (`Set-Cookie` outside strict mode, connection fields) are not there.
    pub fn stored_filter<F>(mut self, keep: F) -> Self
    where
        F: Fn(&cache_core::CachedResponse) -> bool + Send + Sync + 'static,
    {
        self.stored_filter = Some(Arc::new(keep));
        self
    }

    /// Parameters (query parameters, request headers, top-level JSON or form body keys) left
    /// out of the key and removed from the stored request. Replaces the default,
    /// [`DEFAULT_IGNORED_PARAMETERS`](cache_http::DEFAULT_IGNORED_PARAMETERS). Credentials
    /// ([`CREDENTIAL_NAMES`](cache_http::CREDENTIAL_NAMES): `Authorization`, `Cookie`,
    /// `X-Auth-Token`, `api_key` ..., and those declared with
    /// [`credential_headers`](Self::credential_headers) /
    /// [`credential_parameters`](Self::credential_parameters)) are never stored in any case.
    pub fn ignored_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.keys = self.keys.ignored_parameters(names);
        self
    }

    /// Computes every request's key with `key_fn` instead of the default rules, as
    /// requests-cache's `key_fn`. The function gets the request as a [`KeyRequest`]: its
    /// method, URL, headers and body, and [`default_key`](KeyRequest::default_key) (the key
    /// the other key settings give it) to build on; [`key_from_parts`](cache_http::key_from_parts)
    /// hashes a key from any parts.
    ///
    /// ```
    /// use reqwest_caching::cache_http::key_from_parts;
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    ///
    /// // One entry per API version header, on top of the default key.
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .key_fn(|request| {
    ///         let version = request.header("x-api-version").unwrap_or("1");
    ///         key_from_parts([request.default_key().as_str(), version])
    ///     })
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    ///
    /// # Note
    ///
    /// Keep credentials out of what you hash as they are (the default key fingerprints
    /// them). The key function is called on every request, hits included: keep it cheap.
    /// Entries are still grouped by URL (for `delete_url` and invalidation after unsafe
    /// methods) whatever key they are stored under.
    pub fn key_fn<F>(mut self, key_fn: F) -> Self
    where
        F: Fn(&KeyRequest<'_>) -> CacheKey + Send + Sync + 'static,
    {
        self.key_fn = Some(Arc::new(key_fn));
        self
    }

    /// Which request headers are part of the key (default none; see [`MatchHeaders`]).
    pub fn match_headers(mut self, match_headers: MatchHeaders) -> Self {
        self.keys = self.keys.match_headers(match_headers);
        self
    }

    /// Whether requests with different credentials get different entries (default `true`,
    /// see [`KeyRules::per_credential`]).
    ///
    /// # Note
    ///
    /// The middleware sees the request as built, before the `reqwest::Client` adds its own
    /// default headers and the cookies of its cookie store. Credentials set that way are
    /// invisible to the key: give each credential its own client *and* its own cache (or
    /// prefix, table, file), or set credentials per request (`bearer_auth`, `header`).
    pub fn per_credential(mut self, on: bool) -> Self {
        self.keys = self.keys.per_credential(on);
        self
    }

    /// Request headers that carry credentials, beyond the built-in
    /// [`CREDENTIAL_NAMES`](cache_http::CREDENTIAL_NAMES) (case-insensitive; each call adds
    /// to the list). They are never stored, and a response fetched with one value is not
    /// served to a request with another unless [`per_credential`](Self::per_credential) is
    /// off (then they are left out of the key, as ignored parameters).
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    ///
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .credential_headers(["X-Session-Id"])
    ///     .credential_parameters(["sig", "session"])
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    pub fn credential_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.keys = self.keys.credential_headers(names);
        self
    }

    /// Query parameters and top-level JSON or form body keys that carry credentials, beyond
    /// the built-in [`CREDENTIAL_NAMES`](cache_http::CREDENTIAL_NAMES); otherwise as
    /// [`credential_headers`](Self::credential_headers).
    pub fn credential_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.keys = self.keys.credential_parameters(names);
        self
    }

    /// Cache responses that carry `Set-Cookie` (default: no, they pass through uncached).
    ///
    /// A response that sets a cookie usually starts or changes a session: its body may hold
    /// that session's data (a CSRF token, a greeting), and serving it to the next request
    /// with the same (often no) credentials would hand one session's page to another. With
    /// this on they are stored, but never with the `Set-Cookie` header itself: a hit does not
    /// set the cookie again. Turn it on for origins that set tracking or load-balancer
    /// cookies on otherwise public responses.
    pub fn cache_set_cookie(mut self, on: bool) -> Self {
        self.cache_set_cookie = on;
        self
    }

    /// Responses with a larger body pass through uncached (default
    /// [`DEFAULT_MAX_BODY_SIZE`], 8 MiB). The body is streamed to the caller either way; a
    /// body without `Content-Length` is held in memory up to this size first (or, when it
    /// arrives slowly, up to [`stream_after`](Self::stream_after)).
    ///
    /// It also bounds what a stored compressed body may decompress to: lowered below what an
    /// existing cache holds, such entries read as unreadable (and are deleted, unless the
    /// cache is read-only). With a store that keeps bodies in files, larger bodies are stored
    /// as they stream and served from their files.
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long the cache waits for a response's body to end before handing the response
    /// to the caller with its body still streaming (default [`DEFAULT_STREAM_AFTER`], 1 s),
    /// counted from the first part of the body that was not there at once.
    ///
    /// A body that ends in time is stored before the caller gets the response, which then
    /// reports [`stored`](crate::CacheInfo::stored). One still arriving (a watch or long-poll
    /// stream, an origin that writes as it computes, a large download on a slow link, with
    /// or without `Content-Length`) is not held back any longer: the caller reads it as it
    /// comes, and it is stored once the caller has read it to its end: in memory up to
    /// [`max_body_size`](Self::max_body_size), or, in a store that keeps bodies in files,
    /// written to its file as it streams, at any size. Identical requests meanwhile wait
    /// for it (single-flight). A caller that drops it early, or an error midway, stores
    /// nothing. A recording ([`CacheMode::Record`](crate::CacheMode::Record)) and a
    /// background refresh read the whole body first, as before. Event streams
    /// (`text/event-stream`) are never held: they pass through unstored.
    ///
    /// `Duration::MAX` turns this off: every body is read whole (or to the size limit)
    /// before the caller gets the response. The wait is a tokio timer, like reqwest's own
    /// timeouts; under a paused test clock (`start_paused`) it fires as soon as the
    /// runtime waits on the network, so tests with one see bodies stream.
    ///
    /// ```
    /// use std::time::Duration;
    /// use reqwest_caching::{CacheMiddleware, MemoryStore};
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .stream_after(Duration::from_millis(200))
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    pub fn stream_after(mut self, wait: Duration) -> Self {
        self.stream_after = wait;
        self
    }

    /// Store bodies of at least `bytes` LZ4-compressed, when that saves a tenth or more
    /// (default: never). Text (HTML, JSON) shrinks to a third or less, which matters for
    /// remote stores and memory bounds; a compressed hit pays a decompression and a copy of
    /// the body (figures in the README's performance section).
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.codec = self.codec.compress_above(bytes);
        self
    }

    /// Sign stored entries with HMAC-SHA256 and serve only entries that verify (default: not
    /// signed). Use this when others can write to the store (a shared Redis): a changed
    /// entry, one moved under another URL's key, or an unsigned one is a miss and deleted.
    /// List retired secrets with [`SigningKeys::with_previous`] to rotate without losing the
    /// cache.
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, MemoryStore, SigningKeys};
    ///
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_keys(SigningKeys::new(b"32 or more random bytes, secret!".to_vec()))
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    pub fn signing_keys(mut self, keys: SigningKeys) -> Self {
        self.codec = self.codec.signing_keys(keys);
        self
    }

    /// How long one store call may take before the request goes on without the cache
    /// (default: the store's [`CacheStore::suggested_timeout`], 5 s for embedded stores and
    /// 1 to 3 s for remote ones).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// The clock freshness is judged by, and the store breaker's back-off measured on
    /// (default the system clock). Tests use [`ManualClock`](cache_http::ManualClock) to
    /// expire entries, or end a back-off, without sleeping.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The [`CacheMode`] of every request that sets none itself (per request, or through a
    /// [`CacheScope`](crate::CacheScope)); default [`CacheMode::Default`]. A whole session
    /// offline is `.mode(CacheMode::Offline)`; tests record and replay their HTTP traffic
    /// with [`CacheMode::Record`] and [`CacheMode::Replay`] (see
    /// [`CacheMiddleware::replay`]).
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, CacheMode, MemoryStore};
    ///
    /// // Serve what is stored, fresh or stale, and never touch the network.
    /// let cache = CacheMiddleware::builder()
    ///     .store(MemoryStore::new())
    ///     .mode(CacheMode::Offline)
    ///     .build()?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.runtime = self.runtime.mode(mode);
        self
    }

    /// Revalidate every stored response that has a validator (`ETag`, `Last-Modified`)
    /// before using it, fresh or not, as requests-cache's `always_revalidate` (default off):
    /// requests in [`CacheMode::Default`] run as [`CacheMode::Revalidate`]. A fresh entry
    /// without validators is still served from the cache; an unchanged resource costs a
    /// `304`. One request asks the same with `.cache_mode(CacheMode::Revalidate)`.
    pub fn always_revalidate(mut self, on: bool) -> Self {
        self.runtime = self.runtime.always_revalidate(on);
        self
    }

    /// Serve what the store holds and never change it (default off): for a cache shared
    /// read-only, checked into a repository, or used in CI. Requests are answered from the
    /// cache as usual (stale entries are revalidated or fetched, and a `304` serves the
    /// stored body), but nothing is stored, renewed or deleted: not new responses, not
    /// invalidations after unsafe methods, not unreadable entries.
    /// [`CacheInfo::stored`](crate::CacheInfo::stored) is always false.
    ///
    /// The [`CacheHandle`](crate::CacheHandle)'s explicit changes (`delete`, `clear`,
    /// `reset_expiration` ...) still act, and
    /// [`CacheHandle::set_read_only`](crate::CacheHandle::set_read_only) turns this on or off
    /// at runtime. A cache directory on a read-only file system is opened with
    /// `FsStore::open_read_only`, which creates and sweeps nothing there either.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Builds the middleware.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidPattern`] for a URL pattern that is not a glob;
    /// - [`Error::InvalidRegex`] for a [`UrlPattern::regex`] that does not compile;
    /// - [`Error::InvalidStatusCode`] for a code outside 100..=999;
    /// - [`Error::NotAnErrorStatus`] for a `stale_if_error_statuses` code outside 400..=599;
    /// - [`Error::ZeroTimeLimit`] for a `store_timeout` or `refresh_timeout` of zero;
    /// - [`Error::Store`] when no store was set and the default SQLite file cannot be opened;
    /// - [`Error::NoStore`] when no store was set and the `sqlite` feature is off.
    pub fn build(self) -> Result<CacheMiddleware, Error> {
        for (setting, limit) in [
            ("store_timeout", self.store_timeout),
            ("refresh_timeout", Some(self.refresh_timeout)),
        ] {
            if limit == Some(Duration::ZERO) {
                return Err(Error::ZeroTimeLimit { setting });
            }
        }
        let allowable_codes = self
            .allowable_codes
            .iter()
            .map(|&code| StatusCode::from_u16(code).map_err(|_| Error::InvalidStatusCode(code)))
            .collect::<Result<Vec<_>, _>>()?;
        let stale_if_error_statuses = self
            .stale_if_error_statuses
            .iter()
            .map(|&code| {
                StatusCode::from_u16(code)
                    .ok()
                    .filter(|status| status.is_client_error() || status.is_server_error())
                    .ok_or(Error::NotAnErrorStatus(code))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = Runtime::new(self.runtime)?;
        let store = match self.store {
            Some(store) => store,
            None => default_store()?,
        };
        let store_timeout = self
            .store_timeout
            .unwrap_or_else(|| store.suggested_timeout());
        let (failures, first_backoff, max_backoff) = self.breaker;
        let breaker = Breaker::new(
            failures,
            first_backoff,
            max_backoff,
            Arc::clone(&self.clock),
        );
        let stats = Arc::new(StatsCounters::default());
        let store = StoreCalls::new(
            store,
            self.codec.max_decompressed(self.max_body_bytes),
            store_timeout,
            breaker,
            Arc::clone(&stats),
        )
        .inline_up_to(self.max_body_bytes);
        store.set_read_only(self.read_only);
        let refresher = Refresher::new(
            self.background_client,
            self.refresh_timeout,
            Arc::clone(&stats),
        );
        let settings = Settings {
            keys: crate::key_memo::KeyMemo::new(self.keys, self.key_fn),
            runtime: ArcSwap::from_pointee(runtime),
            reconfiguring: std::sync::Mutex::new(()),
            allowable_codes,
            allowable_methods: self.allowable_methods,
            filter: self.filter,
            stored_filter: self.stored_filter,
            cache_set_cookie: self.cache_set_cookie,
            max_body_bytes: self.max_body_bytes,
            stream_after: self.stream_after,
            clock: self.clock,
            cache_control: self.cache_control || self.strict,
            strict: self.strict,
            stale_if_error: self.stale_if_error,
            stale_if_error_statuses,
            stale_while_revalidate: self.stale_while_revalidate,
            single_flight_wait: self.single_flight_wait,
        };
        let live = Live {
            store,
            stats,
            flights: Flights::default(),
            refresher,
            vary_guesses: VaryGuesses::default(),
            variant_keys: VariantKeys::default(),
            url_changes: Arc::default(),
            unfinished_invalidations: UnfinishedInvalidations::default(),
        };
        Ok(CacheMiddleware::from_cache(Cache { settings, live }))
    }
}

#[cfg(feature = "sqlite")]
fn default_store() -> Result<Arc<dyn CacheStore>, Error> {
    Ok(Arc::new(cache_sqlite::SqliteStore::open(
        DEFAULT_SQLITE_PATH,
    )?))
}

#[cfg(not(feature = "sqlite"))]
fn default_store() -> Result<Arc<dyn CacheStore>, Error> {
    Err(Error::NoStore)
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
}

impl Default for CacheMiddleware {
    /// [`CacheMiddleware::new`]; if the SQLite file cannot be opened (read-only directory, no
    /// `sqlite` feature), an in-memory cache instead, with a warning: a default must not fail,
    /// and a cache must never stop requests.
    fn default() -> Self {
        Self::new().unwrap_or_else(|error| {
            tracing::warn!(
                error = %error_chain(&error),
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

//! [`Settings`]: what the builder decided, fixed for the middleware's life. Read by every step
//! of a request; holds no live state (counters, store calls, tasks: see
//! [`Live`](crate::live::Live)). Calls only the leaf modules it is made of.

use std::sync::Arc;
use std::time::Duration;

use cache_http::{Clock, Expiration};
use http::{Method, StatusCode};
use url::Url;

use crate::key_memo::KeyMemo;
use crate::mode::CacheMode;
use crate::policy::UserExpiration;
use crate::scope::CacheScope;
use crate::stale::StaleAllowance;
use crate::url_patterns::UrlPatterns;

/// A user's `filter`: true keeps the response eligible for caching.
pub(crate) type ResponseFilter = dyn Fn(&reqwest::Response) -> bool + Send + Sync;

/// A user's `stored_filter`: true keeps a stored (or about to be stored) response usable.
pub(crate) type StoredFilter = dyn Fn(&cache_core::CachedResponse) -> bool + Send + Sync;

/// Every caching rule of one middleware.
pub(crate) struct Settings {
    /// The key rules; keys of requests the URL alone decides are remembered per thread.
    pub(crate) keys: KeyMemo,
    pub(crate) expire_after: Expiration,
    /// The user set `expire_after` (rather than leaving the default).
    pub(crate) expire_after_explicit: bool,
    pub(crate) url_patterns: UrlPatterns,
    pub(crate) allowable_codes: Vec<StatusCode>,
    pub(crate) allowable_methods: Vec<Method>,
    pub(crate) filter: Option<Arc<ResponseFilter>>,
    /// Judges responses with their body, before storing and on every read.
    pub(crate) stored_filter: Option<Arc<StoredFilter>>,
    /// Responses that set a cookie may be stored (without the `Set-Cookie` header).
    pub(crate) cache_set_cookie: bool,
    pub(crate) max_body_bytes: u64,
    pub(crate) clock: Arc<dyn Clock>,
    /// Follow RFC 9111 request and response directives.
    pub(crate) cache_control: bool,
    /// Strict RFC 9111 private-cache mode (implies `cache_control`).
    pub(crate) strict: bool,
    pub(crate) stale_if_error: StaleAllowance,
    /// The origin statuses that stale-if-error answers with a stale entry.
    pub(crate) stale_if_error_statuses: Vec<StatusCode>,
    pub(crate) stale_while_revalidate: StaleAllowance,
    /// How long a request waits for an identical one in flight before going itself.
    pub(crate) single_flight_wait: Option<Duration>,
    /// The mode of requests for which neither the request nor a scope sets one.
    pub(crate) mode: CacheMode,
    /// Requests in [`CacheMode::Default`] run as [`CacheMode::Revalidate`].
    pub(crate) always_revalidate: bool,
}

impl Settings {
    /// The user's expiration for a response: per request > scope > URL pattern > session.
    pub(crate) fn expiration(
        &self,
        per_request: Option<Expiration>,
        scope: Option<&CacheScope>,
        url: &Url,
    ) -> UserExpiration {
        let chosen = per_request
            .or_else(|| scope.and_then(CacheScope::expiration))
            .or_else(|| self.url_patterns.expiration_for(url));
        UserExpiration {
            expiration: chosen.unwrap_or(self.expire_after),
            explicit: chosen.is_some() || self.expire_after_explicit,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("keys", &self.keys)
            .field("expire_after", &self.expire_after)
            .field("url_patterns", &self.url_patterns)
            .field("allowable_codes", &self.allowable_codes)
            .field("allowable_methods", &self.allowable_methods)
            .field(
                "filter",
                &self.filter.as_ref().map(|_| "Fn(&Response) -> bool"),
            )
            .field(
                "stored_filter",
                &self
                    .stored_filter
                    .as_ref()
                    .map(|_| "Fn(&CachedResponse) -> bool"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("clock", &self.clock)
            .field("cache_control", &self.cache_control)
            .field("strict", &self.strict)
            .field("stale_if_error", &self.stale_if_error)
            .field("stale_if_error_statuses", &self.stale_if_error_statuses)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .field("mode", &self.mode)
            .field("always_revalidate", &self.always_revalidate)
            .finish_non_exhaustive()
    }
}

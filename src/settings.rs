//! [`Settings`]: what the builder decided, fixed for the middleware's life but for the
//! [`RuntimeSettings`] a handle may swap whole (one atomic snapshot per request). Read by
//! every step of a request; holds no live state (counters, store calls, tasks: see
//! [`Live`](crate::live::Live)). Calls only the leaf modules it is made of.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use cache_http::Clock;
use http::{Method, StatusCode};

use crate::error::Error;
use crate::key_memo::KeyMemo;
use crate::runtime_settings::{Runtime, RuntimeSettings};
use crate::stale::StaleAllowance;

/// A user's `filter`: true keeps the response eligible for caching.
pub(crate) type ResponseFilter = dyn Fn(&reqwest::Response) -> bool + Send + Sync;

/// A user's `stored_filter`: true keeps a stored (or about to be stored) response usable.
pub(crate) type StoredFilter = dyn Fn(&cache_core::CachedResponse) -> bool + Send + Sync;

/// Every caching rule of one middleware.
pub(crate) struct Settings {
    /// The key rules; keys of requests the URL alone decides are remembered per thread.
    pub(crate) keys: KeyMemo,
    /// What a handle may change at runtime: read once per request (one atomic load, no
    /// lock, no allocation), so a request sees one version whole.
    pub(crate) runtime: ArcSwap<Runtime>,
    /// Serializes [`Settings::reconfigure`] calls (never taken by requests).
    pub(crate) reconfiguring: Mutex<()>,
    pub(crate) allowable_codes: Vec<StatusCode>,
    pub(crate) allowable_methods: Vec<Method>,
    pub(crate) filter: Option<Arc<ResponseFilter>>,
    /// Judges responses with their body, before storing and on every read.
    pub(crate) stored_filter: Option<Arc<StoredFilter>>,
    /// Responses that set a cookie may be stored (without the `Set-Cookie` header).
    pub(crate) cache_set_cookie: bool,
    pub(crate) max_body_bytes: u64,
    /// How long a response's body may take to end before the caller gets the response as
    /// its body streams (stored once the caller has read it to its end).
    pub(crate) stream_after: std::time::Duration,
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
}

impl Settings {
    /// Applies `change` to the runtime settings, compiled, for the requests that start after.
    ///
    /// # Errors
    ///
    /// A URL pattern that does not compile (then nothing changes).
    pub(crate) fn reconfigure(
        &self,
        change: impl FnOnce(RuntimeSettings) -> RuntimeSettings,
    ) -> Result<(), Error> {
        // A poisoned lock guards nothing broken: the swap below is all or nothing.
        let _one_at_a_time = self
            .reconfiguring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = change(self.runtime.load().settings.clone());
        self.runtime.store(Arc::new(Runtime::new(changed)?));
        Ok(())
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("keys", &self.keys)
            .field("runtime", &self.runtime.load().settings)
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
            .field("stream_after", &self.stream_after)
            .field("clock", &self.clock)
            .field("cache_control", &self.cache_control)
            .field("strict", &self.strict)
            .field("stale_if_error", &self.stale_if_error)
            .field("stale_if_error_statuses", &self.stale_if_error_statuses)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .finish_non_exhaustive()
    }
}

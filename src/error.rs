//! The crate's error type.
//!
//! A leaf: calls nothing else in the crate.

pub use cache_core::StoreError;

/// Why building the middleware or a [`CacheHandle`](crate::CacheHandle) call failed.
///
/// Requests never fail because of the cache: store errors during a request are logged,
/// counted in [`CacheStats::errors`](crate::CacheStats) and the request goes to the network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A URL given to a [`CacheHandle`](crate::CacheHandle) method does not parse.
    #[error("invalid URL {url:?}")]
    InvalidUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// A URL pattern given to `urls_expire_after` is not a valid glob.
    #[error("invalid URL pattern {pattern:?}")]
    InvalidPattern {
        /// The pattern given.
        pattern: String,
        /// Why it is invalid.
        #[source]
        source: globset::Error,
    },
    /// A URL pattern given as a regular expression does not compile.
    #[error("invalid URL regular expression {pattern:?}")]
    InvalidRegex {
        /// The pattern given.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },
    /// A status code given to `allowable_codes` is outside 100..=999.
    #[error("invalid status code {0}")]
    InvalidStatusCode(u16),
    /// A status given to `stale_if_error_statuses` is not an error status (400..=599).
    #[error("stale_if_error_statuses takes error statuses (400..=599), got {0}")]
    NotAnErrorStatus(u16),
    /// A time limit set to zero, under which nothing can finish: every store call that waits
    /// (a write on SQLite's blocking pool, any remote store) timed out, or every background
    /// refresh failed, and the cache silently did nothing.
    #[error("{setting} of zero: nothing could finish in time (use Duration::MAX for no limit)")]
    ZeroTimeLimit {
        /// The builder method given zero.
        setting: &'static str,
    },
    /// No store was set and the `sqlite` feature (the default store) is off.
    #[error("no cache store: set one with `store(...)` or enable the `sqlite` feature")]
    NoStore,
    /// [`CacheMiddleware::replay`](crate::CacheMiddleware::replay) was given a directory
    /// that does not exist.
    #[error("replay: no recording at {0:?} (make one with CacheMiddleware::record)")]
    NoRecording(std::path::PathBuf),
}

/// A request in [`CacheMode::Replay`](crate::CacheMode::Replay) that nothing recorded
/// answers. The middleware fails the request with it, wrapped in
/// [`reqwest_middleware::Error::Middleware`]; the request never reaches the network.
///
/// ```
/// use reqwest_caching::ReplayMiss;
///
/// fn is_replay_miss(error: &reqwest_caching::reqwest_middleware::Error) -> bool {
///     match error {
///         reqwest_caching::reqwest_middleware::Error::Middleware(e) => e.is::<ReplayMiss>(),
///         _ => false,
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "replay: nothing recorded for {method} {url} (record it with CacheMode::Record, \
     with the same key settings)"
)]
#[non_exhaustive]
pub struct ReplayMiss {
    /// The request's method.
    pub method: http::Method,
    /// The request's URL as the cache stores it: without userinfo, credentials or ignored
    /// parameters.
    pub url: String,
}

impl ReplayMiss {
    pub(crate) fn new(method: http::Method, url: String) -> Self {
        Self { method, url }
    }
}

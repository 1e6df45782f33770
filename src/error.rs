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
    /// A status code given to `allowable_codes` is outside 100..=999.
    #[error("invalid status code {0}")]
    InvalidStatusCode(u16),
    /// A status given to `stale_if_error_statuses` is not an error status (400..=599).
    #[error("stale_if_error_statuses takes error statuses (400..=599), got {0}")]
    NotAnErrorStatus(u16),
    /// No store was set and the `sqlite` feature (the default store) is off.
    #[error("no cache store: set one with `store(...)` or enable the `sqlite` feature")]
    NoStore,
}

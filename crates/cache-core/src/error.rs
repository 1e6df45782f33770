//! Errors a [`CacheStore`](crate::CacheStore) reports.

use std::time::Duration;

/// A boxed error from a backend driver, kept whole so callers can downcast it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
///
/// The middleware never turns one of these into a failed request: it logs it, counts it and
/// goes to the network. [`StoreError::is_transient`] tells whether retrying later may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached (connection refused, closed, file not openable).
    #[error("cache store unavailable")]
    Unavailable {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The operation did not finish in time.
    #[error("cache store operation timed out after {0:?}")]
    Timeout(Duration),
    /// The entry is larger than this store accepts; nothing was written.
    #[error("entry of {size} bytes exceeds the store's limit of {limit} bytes; not stored")]
    TooLarge {
        /// Size of the rejected entry in bytes.
        size: u64,
        /// The store's limit in bytes.
        limit: u64,
    },
    /// The store is out of space (disk full, a page or memory limit such as Redis
    /// `maxmemory` with `noeviction`); nothing was written, what was stored is intact, and
    /// reads still work, so it does not open the middleware's circuit breaker.
    #[error("cache store is full; not stored")]
    Full {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// Any other failure reported by the backend.
    #[error("cache store backend error")]
    Backend {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// The check a bounded store makes before it writes: [`StoreError::TooLarge`] for an
    /// entry of `size` bytes over `limit` (`None`: unbounded), else nothing.
    ///
    /// ```
    /// use cache_core::StoreError;
    /// assert!(StoreError::check_size(10, Some(10)).is_ok());
    /// assert!(StoreError::check_size(10, None).is_ok());
    /// assert!(matches!(
    ///     StoreError::check_size(11, Some(10)),
    ///     Err(StoreError::TooLarge { size: 11, limit: 10 })
    /// ));
    /// ```
    pub fn check_size(size: u64, limit: Option<u64>) -> Result<(), Self> {
        match limit {
            Some(limit) if size > limit => Err(Self::TooLarge { size, limit }),
            _ => Ok(()),
        }
    }

    /// Wraps a driver error as [`StoreError::Backend`].
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend {
            source: source.into(),
        }
    }

    /// Wraps a driver error as [`StoreError::Full`].
    pub fn full(source: impl Into<BoxError>) -> Self {
        Self::Full {
            source: source.into(),
        }
    }

    /// Wraps a driver error as [`StoreError::Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }

    /// True when the same call may succeed later (store down, busy or slow), false when it
    /// will fail again (entry too large, schema or data errors).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout(_))
    }
}

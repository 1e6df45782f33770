//! What the middleware and its handles share: settings, the store, counters, and store calls
//! that never fail a request.

use std::sync::Arc;
use std::time::Duration;

use cache_core::store::get_response;
use cache_core::{
    CacheKey, CacheStore, CachedResponse, Clock, EntryMeta, Expiration, KeyRules, StoreError,
    StoredEntry,
};
use http::{Method, StatusCode};
use url::Url;

use crate::scope::CacheScope;
use crate::stats::StatsCounters;
use crate::url_patterns::UrlPatterns;

/// A user's `filter`: true keeps the response eligible for caching.
pub(crate) type ResponseFilter = dyn Fn(&reqwest::Response) -> bool + Send + Sync;

pub(crate) struct CacheState {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) keys: KeyRules,
    pub(crate) expire_after: Expiration,
    pub(crate) url_patterns: UrlPatterns,
    pub(crate) allowable_codes: Vec<StatusCode>,
    pub(crate) allowable_methods: Vec<Method>,
    pub(crate) filter: Option<Arc<ResponseFilter>>,
    pub(crate) max_body_bytes: u64,
    pub(crate) store_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: StatsCounters,
}

impl std::fmt::Debug for CacheState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheState")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("expire_after", &self.expire_after)
            .field("url_patterns", &self.url_patterns)
            .field("allowable_codes", &self.allowable_codes)
            .field("allowable_methods", &self.allowable_methods)
            .field(
                "filter",
                &self.filter.as_ref().map(|_| "Fn(&Response) -> bool"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("store_timeout", &self.store_timeout)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl CacheState {
    /// The expiration for a response: per request > scope > URL pattern > session.
    pub(crate) fn expiration(
        &self,
        per_request: Option<Expiration>,
        scope: Option<&CacheScope>,
        url: &Url,
    ) -> Expiration {
        per_request
            .or_else(|| scope.and_then(CacheScope::expiration))
            .or_else(|| self.url_patterns.expiration_for(url))
            .unwrap_or(self.expire_after)
    }

    /// Reads and decodes an entry; a store failure or timeout is logged, counted, and a miss.
    pub(crate) async fn load(&self, key: &CacheKey) -> Option<(EntryMeta, CachedResponse)> {
        let read = get_response(&*self.store, key);
        match self.bounded(read).await {
            Ok(found) => found,
            Err(error) => {
                self.stats.error();
                tracing::warn!(%key, error = %error_chain(&error), "cache read failed; going to the network");
                None
            }
        }
    }

    /// Writes an entry; true when it was stored. A failure is logged and counted, never raised.
    pub(crate) async fn save(&self, entry: StoredEntry) -> bool {
        let key = entry.meta.key;
        match self.bounded(self.store.put(entry)).await {
            Ok(()) => {
                self.stats.store();
                true
            }
            Err(StoreError::TooLarge { size, limit }) => {
                tracing::debug!(%key, size, limit, "response too large for the store; not cached");
                false
            }
            Err(error) => {
                self.stats.error();
                tracing::warn!(%key, error = %error_chain(&error), "cache write failed; response not cached");
                false
            }
        }
    }

    /// Runs a store call within the store timeout.
    pub(crate) async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.store_timeout, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.store_timeout)))
    }
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

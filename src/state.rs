//! What the middleware and its handles share: settings, the store, counters, and store calls
//! that never fail a request.

use std::sync::Arc;
use std::time::Duration;

use cache_core::codec::EntryCodec;
use cache_core::freshness::StoredFreshness;
use cache_core::store::get_entry;
use cache_core::vary::variant_key;
use cache_core::{
    CacheKey, CacheStore, CachedResponse, Clock, Entry, EntryMeta, Expiration, StoreError,
    StoredEntry, VaryIndex,
};
use http::{HeaderMap, Method, StatusCode};

use url::Url;

use crate::breaker::Breaker;
use crate::flight::Flights;
use crate::key_memo::KeyMemo;
use crate::observe::{self, StoreOp};
use crate::policy::UserExpiration;
use crate::refresh::Refresher;
use crate::scope::CacheScope;
use crate::stale::StaleAllowance;
use crate::stats::StatsCounters;
use crate::url_patterns::UrlPatterns;

/// A user's `filter`: true keeps the response eligible for caching.
pub(crate) type ResponseFilter = dyn Fn(&reqwest::Response) -> bool + Send + Sync;

pub(crate) struct CacheState {
    pub(crate) store: Arc<dyn CacheStore>,
    /// The key rules; keys of requests the URL alone decides are remembered per thread.
    pub(crate) keys: KeyMemo,
    /// Compression and signatures of stored entries.
    pub(crate) codec: EntryCodec,
    pub(crate) expire_after: Expiration,
    /// The user set `expire_after` (rather than leaving the default).
    pub(crate) expire_after_explicit: bool,
    pub(crate) url_patterns: UrlPatterns,
    pub(crate) allowable_codes: Vec<StatusCode>,
    pub(crate) allowable_methods: Vec<Method>,
    pub(crate) filter: Option<Arc<ResponseFilter>>,
    /// Responses that set a cookie may be stored (without the `Set-Cookie` header).
    pub(crate) cache_set_cookie: bool,
    pub(crate) max_body_bytes: u64,
    pub(crate) store_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: StatsCounters,
    /// Store failures warn at most once a second.
    pub(crate) warnings: WarningLimiter,
    /// Follow RFC 9111 request and response directives.
    pub(crate) cache_control: bool,
    /// Strict RFC 9111 private-cache mode (implies `cache_control`).
    pub(crate) strict: bool,
    pub(crate) stale_if_error: StaleAllowance,
    /// The origin statuses that stale-if-error answers with a stale entry.
    pub(crate) stale_if_error_statuses: Vec<StatusCode>,
    pub(crate) stale_while_revalidate: StaleAllowance,
    pub(crate) refresher: Refresher,
    pub(crate) flights: Flights,
    pub(crate) breaker: Breaker,
    /// How long a request waits for an identical one in flight before going itself.
    pub(crate) single_flight_wait: Option<Duration>,
}

/// What a lookup found under a request's URL key.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    /// The stored response the request selects.
    /// Boxed, as the index: a lookup is passed along the hit path several times, and a
    /// pointer moves for free where the response and its metadata would be copied.
    pub(crate) found: Option<Box<Found>>,
    /// The URL key's Vary index and its metadata, when the URL's responses vary.
    pub(crate) index: Option<Box<(EntryMeta, VaryIndex)>>,
}

/// A stored response found for a request, under its own key (a variant's when the URL varies).
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) key: CacheKey,
    pub(crate) meta: EntryMeta,
    pub(crate) response: CachedResponse,
}

impl Found {
    /// The found response, when what is stored under `key` is one (not a Vary index).
    fn from_entry(key: CacheKey, meta: EntryMeta, entry: Entry) -> Option<Box<Self>> {
        match entry {
            Entry::Response(response) => Some(Box::new(Self {
                key,
                meta,
                response,
            })),
            _ => None,
        }
    }

    pub(crate) fn freshness(&self) -> StoredFreshness<'_> {
        StoredFreshness {
            created_at: self.meta.created_at,
            expires_at: self.meta.expires_at,
            headers: &self.response.headers,
        }
    }
}

impl std::fmt::Debug for CacheState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheState")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("codec", &self.codec)
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
            .field("cache_control", &self.cache_control)
            .field("strict", &self.strict)
            .field("stale_if_error", &self.stale_if_error)
            .field("stale_if_error_statuses", &self.stale_if_error_statuses)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .finish_non_exhaustive()
    }
}

impl CacheState {
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

    /// The stored response for a request with this URL key and these headers: answered at
    /// once by in-process stores, awaited from the others.
    pub(crate) async fn find(&self, url_key: &CacheKey, request: &HeaderMap) -> Lookup {
        match self.lookup_now(url_key, request) {
            Some(lookup) => lookup,
            // Boxed: a store that makes us wait costs far more than the allocation, and the
            // hit path's future stays small.
            None => Box::pin(self.lookup(url_key, request)).await,
        }
    }

    /// [`CacheState::lookup`] without awaiting, for stores that answer at once (memory,
    /// sled); `None` when the store cannot, or something needs the full path (an open
    /// breaker, an entry that does not decode and must be deleted).
    fn lookup_now(&self, url_key: &CacheKey, request: &HeaderMap) -> Option<Lookup> {
        let Some((meta, entry)) = self.load_now(url_key)? else {
            return Some(Lookup::default());
        };
        Some(match entry {
            Entry::VaryIndex(index) => {
                let key = variant_key(url_key, &index, request);
                let variant = self.load_now(&key)?;
                Lookup {
                    found: variant.and_then(|(meta, entry)| Found::from_entry(key, meta, entry)),
                    index: Some(Box::new((meta, index))),
                }
            }
            entry => Lookup {
                found: Found::from_entry(*url_key, meta, entry),
                index: None,
            },
        })
    }

    /// [`CacheState::load`] without awaiting; see [`CacheState::lookup_now`].
    fn load_now(&self, key: &CacheKey) -> Option<Option<(EntryMeta, Entry)>> {
        // An open breaker: the awaited path counts the skip.
        let permit = self.breaker.allow().ok()?;
        let started = observe::store_call_started();
        let answer = self.store.get_decoded_now(key, &self.codec)?;
        observe::store_call_finished(StoreOp::Get, started);
        permit.settle(&answer);
        match answer {
            Ok(None) => Some(None),
            Ok(Some((meta, Ok(entry)))) => Some(Some((meta, entry))),
            // The awaited path deletes it and says so in the log.
            Ok(Some((_, Err(_)))) => None,
            Err(error) => {
                self.store_failed(key, &error, "cache read failed; going to the network");
                Some(None)
            }
        }
    }

    /// The stored response for a request with this URL key and these headers, following a
    /// Vary index to the variant the headers select.
    pub(crate) async fn lookup(&self, url_key: &CacheKey, request: &HeaderMap) -> Lookup {
        match self.load(url_key).await {
            None => Lookup::default(),
            Some((meta, Entry::VaryIndex(index))) => {
                let key = variant_key(url_key, &index, request);
                let variant = self.load(&key).await;
                Lookup {
                    found: variant.and_then(|(meta, entry)| Found::from_entry(key, meta, entry)),
                    index: Some(Box::new((meta, index))),
                }
            }
            Some((meta, entry)) => Lookup {
                found: Found::from_entry(*url_key, meta, entry),
                index: None,
            },
        }
    }

    /// Every entry stored for the URL group (all methods, credentials, variants); empty when
    /// the store fails (logged and counted).
    pub(crate) async fn entries_for_url(&self, url_group: &CacheKey) -> Vec<EntryMeta> {
        let listed = self.store.entries_for_url(url_group);
        match self.bounded(StoreOp::List, listed).await {
            Ok(metas) => metas,
            Err(error) => {
                self.store_failed(url_group, &error, "cache lookup by URL failed");
                Vec::new()
            }
        }
    }

    /// Reads and decodes an entry; a store failure or timeout is logged, counted, and a miss.
    pub(crate) async fn load(&self, key: &CacheKey) -> Option<(EntryMeta, Entry)> {
        let read = get_entry(&*self.store, key, &self.codec);
        match self.bounded(StoreOp::Get, read).await {
            Ok(found) => found,
            Err(error) => {
                self.store_failed(key, &error, "cache read failed; going to the network");
                None
            }
        }
    }

    /// Writes an entry; true when it was stored. A failure is logged and counted, never raised.
    pub(crate) async fn save(&self, entry: StoredEntry) -> bool {
        let key = entry.meta.key;
        match self.bounded(StoreOp::Put, self.store.put(entry)).await {
            Ok(()) => {
                self.stats.store();
                true
            }
            Err(StoreError::TooLarge { size, limit }) => {
                tracing::debug!(%key, size, limit, "response too large for the store; not cached");
                false
            }
            Err(error) => {
                self.store_failed(&key, &error, "cache write failed; response not cached");
                false
            }
        }
    }

    /// Deletes an entry; a failure is logged and counted, never raised.
    pub(crate) async fn forget(&self, key: &CacheKey) {
        if let Err(error) = self.bounded(StoreOp::Delete, self.store.delete(key)).await {
            self.store_failed(key, &error, "cache delete failed");
        }
    }

    /// Counts a failed store call and logs it: a warning at most once a second (a down
    /// store fails every request), otherwise a debug line; a call the open breaker skipped
    /// is counted apart and only debug-logged (the failures that opened it were warned).
    fn store_failed(&self, key: &CacheKey, error: &StoreError, what: &str) {
        let skipped = std::error::Error::source(error).is_some_and(|source| {
            source
                .downcast_ref::<crate::breaker::CircuitOpen>()
                .is_some()
        });
        if skipped {
            self.stats.skip();
            tracing::debug!(%key, error = %error_chain(error), "{what}");
            return;
        }
        self.stats.error();
        match self.warnings.allow() {
            Some(suppressed) => {
                tracing::warn!(%key, error = %error_chain(error), suppressed, "{what}");
            }
            None => tracing::debug!(%key, error = %error_chain(error), "{what}"),
        }
    }

    /// Runs a store call within the store timeout.
    ///
    /// The call is polled once first: in-process stores (memory, sled) answer at once, and
    /// then no timer is armed, which is most of a hit's cost otherwise. Its time is added to
    /// the observed request's total and the `metrics` histogram, when either is on.
    pub(crate) async fn bounded<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.bounded_for(op, self.store_timeout, call).await
    }

    /// [`CacheState::bounded`] with another time limit, for calls that touch every entry.
    pub(crate) async fn bounded_for<T>(
        &self,
        op: StoreOp,
        timeout: Duration,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let permit = match self.breaker.allow() {
            Ok(permit) => permit,
            Err(open) => return Err(StoreError::unavailable(open)),
        };
        let started = observe::store_call_started();
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
        let result = match first {
            std::task::Poll::Ready(result) => result,
            // Boxed: the timer is large, and only a store that did not answer at once needs
            // it; in-process hits keep a small future (every hit moves it several times).
            std::task::Poll::Pending => Box::pin(tokio::time::timeout(timeout, call))
                .await
                .unwrap_or(Err(StoreError::Timeout(timeout))),
        };
        observe::store_call_finished(op, started);
        permit.settle(&result);
        result
    }
}

/// Lets one warning through per interval and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct WarningLimiter {
    /// Milliseconds since `start` when the last warning went out, plus one (0: never).
    last: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
    start: std::sync::OnceLock<std::time::Instant>,
}

impl WarningLimiter {
    const INTERVAL_MS: u64 = 1_000;

    /// `Some(warnings held back since the last one)` when a warning may go out now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let start = *self.start.get_or_init(std::time::Instant::now);
        self.allow_at(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn allow_at(&self, elapsed_ms: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = elapsed_ms.saturating_add(1);
        let last = self.last.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= Self::INTERVAL_MS;
        if due
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
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

#[cfg(test)]
mod tests {
    use super::WarningLimiter;

    #[test]
    fn one_warning_per_interval_and_the_rest_are_counted() {
        let limiter = WarningLimiter::default();
        assert_eq!(limiter.allow_at(0), Some(0));
        assert_eq!(limiter.allow_at(10), None);
        assert_eq!(limiter.allow_at(999), None);
        assert_eq!(limiter.allow_at(1_000), Some(2), "two held back");
        assert_eq!(limiter.allow_at(1_500), None);
        assert_eq!(limiter.allow_at(2_000), Some(1));
    }
}

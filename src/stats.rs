//! Counters of what the cache did.
//!
//! Calls `observe` (nothing that calls it).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::observe;

/// A snapshot of the cache's counters since the middleware was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Responses served from the cache: without contacting the origin, or stale once the
    /// origin failed (stale-if-error). A background refresh counts no hit or miss: the
    /// request it refreshes for was counted.
    pub hits: u64,
    /// Requests the cache could not answer (sent to the origin, or 504 with `OnlyIfCached`).
    pub misses: u64,
    /// Stale entries the origin confirmed with `304 Not Modified`.
    pub revalidations: u64,
    /// Responses written to the store.
    pub stores: u64,
    /// Store calls that failed or timed out (logged, at most one warning a second; the
    /// request went on without the cache).
    pub errors: u64,
    /// Store calls not made because the circuit breaker was open after repeated failures
    /// (the request went on without the cache at once).
    pub skipped: u64,
    /// Background refreshes (`stale-while-revalidate`) that did not refresh their entry: the
    /// network failed, no complete answer within `refresh_timeout`, or the answer was not
    /// stored (a `401`, an uncacheable response). Each is logged at `WARN` (at most one a
    /// second); the stale entry stays.
    pub refresh_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    revalidations: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    refresh_failures: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn revalidation(&self) {
        self.revalidations.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn store(&self) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        observe::stored();
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        observe::store_error();
    }
    pub(crate) fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        observe::store_skipped();
    }

    pub(crate) fn refresh_failure(&self) {
        self.refresh_failures.fetch_add(1, Ordering::Relaxed);
        observe::refresh_failed();
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            revalidations: self.revalidations.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            refresh_failures: self.refresh_failures.load(Ordering::Relaxed),
        }
    }
}

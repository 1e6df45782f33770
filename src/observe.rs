//! Observability: a `tracing` span per request, and, with the `metrics` feature, counters and
//! histograms through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Everything that depends on the feature is in this module: without it the metric functions
//! are empty and inlined away.
//!
//! The span is at `DEBUG` level: when no subscriber wants it (no subscriber, or one at `INFO`),
//! creating it is one relaxed atomic load, the request runs unwrapped, and store calls are
//! not timed. A memory hit costs about 2.2 µs; a recorded span (the subscriber's allocation,
//! the redacted URL, enter and exit on every poll, the store timings) adds about 0.5 µs with a
//! bare registry and more with formatting or exporting layers, which is why it is not at
//! `INFO`.
//!
//! Calls `info` and `error` (leaves).

use std::cell::Cell;
use std::time::{Duration, Instant};

use cache_http::KeyRules;
use reqwest::{Request, Response};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::ReplayMiss;
use crate::info::{CacheInfo, CacheResponseExt};

/// What the cache did for one request: the span's `outcome` field and the metrics' label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served from a fresh entry (a `HEAD` from a stored `GET` included).
    Hit,
    /// The cache had nothing usable: the request went to the origin (stored or not).
    Miss,
    /// A stale entry was served: `stale-if-error` or `stale-while-revalidate`.
    Stale,
    /// A stale entry was confirmed by a `304` and served.
    Revalidated,
    /// The cache did not consider the request: disabled, `CacheMode::Bypass`, a method or
    /// request that is not cached, or an explicit "do not cache".
    Bypass,
    /// Answered from what an identical request in flight stored (single-flight follower).
    Coalesced,
    /// `only-if-cached` with nothing usable stored: the cache answered `504`.
    OnlyIfCachedMiss,
    /// `CacheMode::Offline` with nothing stored: the cache answered `504`.
    OfflineMiss,
    /// `CacheMode::Replay` with nothing recorded: the request failed with a `ReplayMiss`.
    ReplayMiss,
    /// The request failed (network error) and no stale entry could stand in.
    Error,
}

impl Outcome {
    /// The outcome of a request, from the info the middleware attached to its response.
    pub(crate) fn of(result: &reqwest_middleware::Result<Response>) -> Self {
        match result {
            Ok(response) => response.cache_info().map_or(Self::Bypass, Self::of_info),
            Err(reqwest_middleware::Error::Middleware(error)) if error.is::<ReplayMiss>() => {
                Self::ReplayMiss
            }
            Err(_) => Self::Error,
        }
    }

    fn of_info(info: &CacheInfo) -> Self {
        if info.offline_miss {
            Self::OfflineMiss
        } else if info.generated_by_cache && !info.from_cache {
            // The only other response the cache generates from nothing is the 504 of
            // only-if-cached (also to a request it could not look up, which has no key); its
            // 304s and 206s are made from an entry, and count as hits.
            Self::OnlyIfCachedMiss
        } else if info.key.is_none() {
            Self::Bypass
        } else if info.coalesced {
            Self::Coalesced
        } else if info.stale_if_error || info.stale_while_revalidate {
            Self::Stale
        } else if info.revalidated {
            Self::Revalidated
        } else if info.from_cache {
            Self::Hit
        } else {
            Self::Miss
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Revalidated => "revalidated",
            Self::Bypass => "bypass",
            Self::Coalesced => "coalesced",
            Self::OnlyIfCachedMiss => "only_if_cached_miss",
            Self::OfflineMiss => "offline_miss",
            Self::ReplayMiss => "replay_miss",
            Self::Error => "error",
        }
    }
}

/// A kind of store call, the `op` label of the store latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreOp {
    Get,
    Put,
    Delete,
    /// Listing the entries of one URL (`entries_for_url`).
    List,
}

tokio::task_local! {
    /// Time spent in store calls by the request being observed.
    static STORE_TIME: Cell<Duration>;
}

/// The span for one request through the middleware: disabled (and free) unless a subscriber
/// wants `DEBUG` spans of target `reqwest_caching`. The URL is redacted as for the store.
pub(crate) fn request_span(keys: &KeyRules, req: &Request) -> Span {
    tracing::debug_span!(
        target: "reqwest_caching",
        "http_cache",
        method = %req.method(),
        url = %keys.redact_url(req.url()),
        key = Empty,
        outcome = Empty,
        store_latency_us = Empty,
    )
}

/// Whether a request needs [`observe`]: its span is enabled, or metrics are compiled in.
pub(crate) fn wanted(span: &Span) -> bool {
    cfg!(feature = "metrics") || !span.is_disabled()
}

/// Runs a request inside its span, timing its store calls, then records its key, outcome and
/// store time on the span and in the metrics.
pub(crate) async fn observe(
    span: Span,
    request: impl Future<Output = reqwest_middleware::Result<Response>>,
) -> reqwest_middleware::Result<Response> {
    let start = Instant::now();
    let (result, store_time) = if span.is_disabled() {
        // Metrics only: no span to enter, no store total to keep.
        (request.await, Duration::ZERO)
    } else {
        let timed = async {
            let result = request.await;
            (result, STORE_TIME.with(Cell::get))
        };
        STORE_TIME
            .scope(Cell::new(Duration::ZERO), timed)
            .instrument(span.clone())
            .await
    };
    let outcome = Outcome::of(&result);
    if !span.is_disabled() {
        if let Some(key) = result
            .as_ref()
            .ok()
            .and_then(|response| response.cache_info()?.key)
        {
            span.record("key", key.as_str());
        }
        span.record("outcome", outcome.as_str());
        span.record(
            "store_latency_us",
            u64::try_from(store_time.as_micros()).unwrap_or(u64::MAX),
        );
    }
    emit::request(outcome, start.elapsed());
    result
}

/// The start of a store call, when anything measures it (an observed request, or metrics).
pub(crate) fn store_call_started() -> Option<Instant> {
    let timed = cfg!(feature = "metrics") || STORE_TIME.try_with(|_| ()).is_ok();
    timed.then(Instant::now)
}

/// The end of a store call that [`store_call_started`] timed (or did not).
pub(crate) fn store_call_finished(op: StoreOp, started: Option<Instant>) {
    let Some(started) = started else { return };
    let elapsed = started.elapsed();
    // Outside an observed request (a handle call, a background refresh) there is no total.
    let _ = STORE_TIME.try_with(|total| total.set(total.get().saturating_add(elapsed)));
    emit::store_latency(op, elapsed);
}

pub(crate) use emit::{refresh_failed, store_error, store_skipped, stored};

#[cfg(feature = "metrics")]
mod emit {
    //! The metric names, documented in the README (Observability).

    use std::time::Duration;

    use super::{Outcome, StoreOp};

    /// Literal labels only: the `metrics` macros then build their keys at compile time.
    pub(crate) fn request(outcome: Outcome, elapsed: Duration) {
        macro_rules! by_outcome {
            ($($variant:ident => $label:literal),* $(,)?) => {
                match outcome {
                    $(Outcome::$variant => {
                        ::metrics::counter!("http_cache_requests_total", "outcome" => $label)
                            .increment(1);
                        ::metrics::histogram!(
                            "http_cache_request_duration_seconds",
                            "outcome" => $label
                        )
                        .record(elapsed.as_secs_f64());
                    })*
                }
            };
        }
        by_outcome!(
            Hit => "hit",
            Miss => "miss",
            Stale => "stale",
            Revalidated => "revalidated",
            Bypass => "bypass",
            Coalesced => "coalesced",
            OnlyIfCachedMiss => "only_if_cached_miss",
            OfflineMiss => "offline_miss",
            ReplayMiss => "replay_miss",
            Error => "error",
        );
    }

    pub(crate) fn store_latency(op: StoreOp, elapsed: Duration) {
        let histogram = match op {
            StoreOp::Get => {
                ::metrics::histogram!("http_cache_store_latency_seconds", "op" => "get")
            }
            StoreOp::Put => {
                ::metrics::histogram!("http_cache_store_latency_seconds", "op" => "put")
            }
            StoreOp::List => {
                ::metrics::histogram!("http_cache_store_latency_seconds", "op" => "list")
            }
            StoreOp::Delete => {
                ::metrics::histogram!("http_cache_store_latency_seconds", "op" => "delete")
            }
        };
        histogram.record(elapsed.as_secs_f64());
    }

    pub(crate) fn stored() {
        ::metrics::counter!("http_cache_stores_total").increment(1);
    }

    pub(crate) fn store_error() {
        ::metrics::counter!("http_cache_store_errors_total").increment(1);
    }

    pub(crate) fn store_skipped() {
        ::metrics::counter!("http_cache_store_skipped_total").increment(1);
    }

    pub(crate) fn refresh_failed() {
        ::metrics::counter!("http_cache_refresh_failures_total").increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod emit {
    //! Without the `metrics` feature: nothing.

    use std::time::Duration;

    use super::{Outcome, StoreOp};

    #[inline(always)]
    pub(crate) fn request(_: Outcome, _: Duration) {}
    #[inline(always)]
    pub(crate) fn store_latency(_: StoreOp, _: Duration) {}
    #[inline(always)]
    pub(crate) fn stored() {}
    #[inline(always)]
    pub(crate) fn store_error() {}
    #[inline(always)]
    pub(crate) fn store_skipped() {}
    #[inline(always)]
    pub(crate) fn refresh_failed() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_cache_info() {
        let key = Some(cache_core::CacheKey::from_digest([0xab; 16]));
        let base = CacheInfo::passed_through(key);
        let with = |change: fn(&mut CacheInfo)| {
            let mut info = base.clone();
            change(&mut info);
            Outcome::of_info(&info)
        };
        assert_eq!(
            Outcome::of_info(&CacheInfo::passed_through(None)),
            Outcome::Bypass
        );
        assert_eq!(Outcome::of_info(&base), Outcome::Miss);
        assert_eq!(with(|i| i.from_cache = true), Outcome::Hit);
        assert_eq!(
            with(|i| (i.from_cache, i.revalidated) = (true, true)),
            Outcome::Revalidated
        );
        assert_eq!(
            with(|i| (i.from_cache, i.stale_if_error) = (true, true)),
            Outcome::Stale
        );
        assert_eq!(
            with(|i| (i.from_cache, i.stale_while_revalidate) = (true, true)),
            Outcome::Stale
        );
        assert_eq!(
            with(|i| (i.from_cache, i.coalesced) = (true, true)),
            Outcome::Coalesced
        );
        assert_eq!(
            with(|i| i.generated_by_cache = true),
            Outcome::OnlyIfCachedMiss
        );
        let mut not_looked_up = CacheInfo::passed_through(None);
        not_looked_up.generated_by_cache = true;
        assert_eq!(
            Outcome::of_info(&not_looked_up),
            Outcome::OnlyIfCachedMiss,
            "only-if-cached's 504 to a request it could not look up (a POST)"
        );
        assert_eq!(
            with(|i| (i.from_cache, i.generated_by_cache) = (true, true)),
            Outcome::Hit,
            "a 304 or 206 made from an entry"
        );
        let offline = |key| {
            let mut info = CacheInfo::passed_through(key);
            (info.generated_by_cache, info.offline_miss) = (true, true);
            Outcome::of_info(&info)
        };
        assert_eq!(offline(key), Outcome::OfflineMiss);
        assert_eq!(
            offline(None),
            Outcome::OfflineMiss,
            "not looked up, still offline"
        );
        let replay = reqwest_middleware::Error::middleware(crate::error::ReplayMiss::new(
            http::Method::GET,
            "http://example.com/".to_owned(),
        ));
        assert_eq!(Outcome::of(&Err(replay)), Outcome::ReplayMiss);
    }
}

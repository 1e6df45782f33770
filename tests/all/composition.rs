//! The cache in a middleware stack with reqwest-tracing and reqwest-retry, against the real
//! origin: `TracingMiddleware -> CacheMiddleware -> RetryTransientMiddleware -> network`, as
//! the README recommends, and the other order for comparison.
//!
//! With the cache *outside* retry (recommended):
//! - a hit is answered before the retry middleware: it is never retried, nothing is sent;
//! - a miss is retried on transient failures and only the final response reaches the cache,
//!   which stores it when it is cacheable: one lookup per request, however many attempts;
//! - `stale_if_error` applies to the final outcome: the origin gets every retry first, and the
//!   stale entry is served only when they all fail.
//!
//! With the cache *inside* retry (`Tracing -> Retry -> Cache`):
//! - a fresh hit looks the same (the retry middleware sees a `200` and returns it);
//! - every attempt is a separate cache lookup (and a separate single-flight), so a miss
//!   retried twice counts three misses;
//! - `stale_if_error` turns the first failure into a stale `200`, which the retry middleware
//!   takes as a success: the origin is not retried at all;
//! - a cached non-success response (with `allowable_codes` allowing `5xx`, `408` or `429`)
//!   would be "retried" against the cache, uselessly, with back-off sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest_caching::reqwest_middleware::{
    ClientBuilder, ClientWithMiddleware, Middleware, Next, Result as MiddlewareResult,
};
use reqwest_caching::{
    CacheHandle, CacheMiddleware, CacheMiddlewareBuilder, ManualClock, MemoryStore,
};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::origin::Origin;
use crate::support::send;

/// Retries after the first attempt.
const RETRIES: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Tracing -> Cache -> Retry (recommended).
    CacheOutsideRetry,
    /// Tracing -> Retry -> Cache.
    CacheInsideRetry,
}

/// Counts the requests that pass it, to see what reaches the layer below.
struct Probe(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for Probe {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> MiddlewareResult<reqwest::Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(req, extensions).await
    }
}

struct Stack {
    origin: Origin,
    client: ClientWithMiddleware,
    handle: CacheHandle,
    clock: Arc<ManualClock>,
    /// Requests that entered the retry middleware (cache outside retry only).
    into_retry: Arc<AtomicUsize>,
}

async fn stack(
    order: Order,
    configure: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
) -> Stack {
    let clock = Arc::new(ManualClock::starting_now());
    let builder = CacheMiddleware::builder()
        .store(MemoryStore::new())
        .clock(Arc::clone(&clock) as _);
    let cache = configure(builder).build().expect("build cache");
    let handle = cache.handle();
    // Tiny back-offs: the test is about what is retried, not when.
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
        .build_with_max_retries(RETRIES);
    let retry = RetryTransientMiddleware::new_with_policy(policy);
    let into_retry = Arc::new(AtomicUsize::new(0));
    let builder = ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::default());
    let client = match order {
        Order::CacheOutsideRetry => builder
            .with(cache)
            .with(Probe(Arc::clone(&into_retry)))
            .with(retry),
        Order::CacheInsideRetry => builder.with(retry).with(cache),
    }
    .build();
    Stack {
        origin: Origin::start_with_clock(Some(Arc::clone(&clock))).await,
        client,
        handle,
        clock,
        into_retry,
    }
}

#[tokio::test]
async fn hits_skip_retry_and_the_origin_misses_are_retried_then_stored() {
    let (captured, _subscriber) = Captured::install();
    let s = stack(Order::CacheOutsideRetry, |b| b).await;
    let path = "/flaky/outside?fails=2";

    // A miss: two 503s then a 200, all under one cache lookup; the 200 is stored.
    let (body, info) = send(s.client.get(s.origin.url(path))).await;
    assert_eq!(body, format!("{path} #3"));
    assert!(info.stored && !info.from_cache, "{info:?}");
    assert_eq!(
        s.origin.hits("/flaky/outside"),
        3,
        "2 failures + the success"
    );
    assert_eq!(s.into_retry.load(Ordering::SeqCst), 1);
    let stats = s.handle.stats();
    assert_eq!((stats.misses, stats.stores), (1, 1), "{stats:?}");
    assert_eq!(s.handle.count().await.unwrap(), 1);

    // A hit never reaches the retry middleware nor the origin.
    let (again, info) = send(s.client.get(s.origin.url(path))).await;
    assert!(info.from_cache, "{info:?}");
    assert_eq!(again, body);
    assert_eq!(s.origin.hits("/flaky/outside"), 3);
    assert_eq!(s.into_retry.load(Ordering::SeqCst), 1);

    // One reqwest-tracing span per request, the hit included, with its outcome recorded.
    let spans = captured.spans_named("HTTP request");
    assert_eq!(spans.len(), 2, "{spans:?}");
    for span in &spans {
        assert_eq!(span.get("http.request.method"), Some("GET"), "{span:?}");
        assert_eq!(span.get("otel.kind"), Some("client"), "{span:?}");
        assert_eq!(
            span.get("http.response.status_code"),
            Some("200"),
            "{span:?}"
        );
    }
    // The retry middleware logged its two retries inside the first request's span: the span
    // is around the whole exchange, retries included.
    let retries = captured.events_containing("Retry attempt");
    assert_eq!(retries.len(), 2, "{retries:?}");
    for event in &retries {
        assert!(event.span_ids.contains(&spans[0].id), "{event:?}");
    }
}

#[tokio::test]
async fn with_the_cache_inside_retry_every_attempt_is_a_lookup() {
    let (captured, _subscriber) = Captured::install();
    let s = stack(Order::CacheInsideRetry, |b| b).await;
    let path = "/flaky/inside?fails=2";
    let (_, info) = send(s.client.get(s.origin.url(path))).await;
    // The origin sees the same attempts, and the success is stored ...
    assert!(info.stored, "{info:?}");
    assert_eq!(s.origin.hits("/flaky/inside"), 3);
    // ... but the cache was asked once per attempt.
    let stats = s.handle.stats();
    assert_eq!((stats.misses, stats.stores), (3, 1), "{stats:?}");
    // A fresh hit is the same in both orders.
    assert!(send(s.client.get(s.origin.url(path))).await.1.from_cache);
    assert_eq!(s.origin.hits("/flaky/inside"), 3);
    // Tracing is still outermost: one span per request.
    assert_eq!(captured.spans_named("HTTP request").len(), 2);
}

#[tokio::test]
async fn stale_if_error_comes_after_the_retries_only_with_the_cache_outside() {
    let _subscriber = Captured::install();
    for order in [Order::CacheOutsideRetry, Order::CacheInsideRetry] {
        let s = stack(order, |b| {
            b.expire_after(Duration::from_secs(60)).stale_if_error(true)
        })
        .await;
        let path = crate::support::custom("down", &[]);
        let (stored, _) = send(s.client.get(s.origin.url(&path))).await;
        s.clock.advance(Duration::from_secs(120));
        s.origin.override_status(Some(503));
        let (body, info) = send(s.client.get(s.origin.url(&path))).await;
        assert!(
            info.stale_if_error && info.from_cache,
            "{order:?}: {info:?}"
        );
        assert_eq!(body, stored, "{order:?}");
        let expected = match order {
            // The origin got the attempt and every retry before the stale entry was served.
            Order::CacheOutsideRetry => 1 + 1 + RETRIES as usize,
            // The stale 200 ended the retry loop after the first failure.
            Order::CacheInsideRetry => 1 + 1,
        };
        assert_eq!(s.origin.hits("/custom/down"), expected, "{order:?}");
    }
}

/// With the cache outside reqwest-retry (the README's stack), an origin that cannot be
/// reached still gets the stale entry `stale-if-error` allows once the retries are spent:
/// reqwest-retry hands up every failure as its own error (the connection error inside), which
/// the cache did not see as the origin unreachable, and the caller got the error.
#[tokio::test]
async fn stale_if_error_serves_when_the_retries_could_not_reach_the_origin() {
    let _subscriber = Captured::install();
    let s = stack(Order::CacheOutsideRetry, |b| {
        b.expire_after(Duration::from_secs(60)).stale_if_error(true)
    })
    .await;
    let path = crate::support::custom("unreachable", &[]);
    let (stored, _) = send(s.client.get(s.origin.url(&path))).await;
    s.clock.advance(Duration::from_secs(120));
    let url = s.origin.url(&path);
    s.origin.stop().await;
    let response = s
        .client
        .get(&url)
        .send()
        .await
        .expect("the stale entry, not the connection error");
    let info = reqwest_caching::CacheResponseExt::cache_info(&response)
        .cloned()
        .unwrap();
    assert!(info.stale_if_error && info.from_cache, "{info:?}");
    assert_eq!(response.text().await.unwrap(), stored);
}

/// A span as created, with the fields recorded on it since.
#[derive(Clone, Debug)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    fields: HashMap<String, String>,
}

impl SpanRecord {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// An event, with the ids of the spans it happened in, innermost first.
#[derive(Clone, Debug)]
struct EventRecord {
    fields: HashMap<String, String>,
    span_ids: Vec<u64>,
}

/// A `tracing` layer keeping every span and event, for assertions.
#[derive(Clone, Default)]
struct Captured {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
}

impl Captured {
    /// Captures what this thread traces until the guard drops.
    ///
    /// Every test here installs one before its first request. A callsite's interest is
    /// computed once, when first hit: with a single live dispatcher, from the *current
    /// thread's* subscriber. A reqwest-tracing callsite first hit on a thread without one would
    /// be cached as "never" and vanish from every other test's capture.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn spans_named(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    fn events_containing(&self, text: &str) -> Vec<EventRecord> {
        let events = self.events.lock().unwrap();
        let matches = |e: &&EventRecord| e.fields.get("message").is_some_and(|m| m.contains(text));
        events.iter().filter(matches).cloned().collect()
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.spans.lock().unwrap().push(SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        // Ids are reused once a span closes: the latest span with this id is the live one.
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let span_ids = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.id().into_u64()).collect())
            .unwrap_or_default();
        self.events
            .lock()
            .unwrap()
            .push(EventRecord { fields, span_ids });
    }
}

//! The `http_cache` tracing span of every request, and (feature `metrics`) the counters and
//! histograms.
//!
//! tracing-core caches each callsite's interest globally, from the dispatchers alive when it
//! is first hit: a capture installed per test with `set_default` can miss spans if another
//! test hits the callsite first. So one capturing subscriber is installed globally, once, and
//! records only on threads where a test has opened a sink. Every test here runs on a
//! current-thread runtime, so its requests' spans are created and recorded on its own thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest_caching::{CacheMode, CacheRequestExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::{Backend, Harness, custom, send};

#[tokio::test]
async fn a_miss_then_a_hit() {
    let spans = Spans::capture();
    let h = Harness::new(Backend::Memory).await;
    let (_, miss) = h.fetch("/page").await;
    let (_, hit) = h.fetch("/page").await;
    assert!(hit.from_cache);
    assert_eq!(spans.outcomes(), ["miss", "hit"]);
    let url = h.origin.url("/page");
    for (span, info) in spans.all().iter().zip([&miss, &hit]) {
        assert_eq!(span.get("method"), Some("GET"), "{span:?}");
        assert_eq!(span.get("url"), Some(url.as_str()), "{span:?}");
        let key = info.key.expect("a key");
        assert_eq!(span.get("key"), Some(key.as_str()), "{span:?}");
        let store_us: u64 = span.get("store_latency_us").unwrap().parse().unwrap();
        assert!(store_us < 5_000_000, "{span:?}");
    }
}

#[tokio::test]
#[cfg(feature = "sqlite")]
async fn store_time_is_recorded() {
    let spans = Spans::capture();
    // SQLite: store calls take measurable time, unlike the memory store's.
    let h = Harness::new(Backend::Sqlite).await;
    h.fetch("/page").await;
    h.fetch("/page").await;
    let times: Vec<u64> = spans
        .all()
        .iter()
        .map(|span| span.get("store_latency_us").unwrap().parse().unwrap())
        .collect();
    // A miss reads and writes; a hit reads once.
    assert!(times.iter().all(|&us| us > 0), "{times:?}");
    assert!(times.iter().all(|&us| us < 5_000_000), "{times:?}");
}

#[tokio::test]
async fn a_304_is_revalidated() {
    let spans = Spans::capture();
    let h = Harness::with(Backend::Memory, |b| b.expire_after(Duration::from_secs(60))).await;
    h.fetch("/etag/e").await;
    h.clock.advance(Duration::from_secs(120));
    let (_, info) = h.fetch("/etag/e").await;
    assert!(info.revalidated, "{info:?}");
    assert_eq!(spans.outcomes(), ["miss", "revalidated"]);
}

#[tokio::test]
async fn stale_entries_served_on_error_or_while_revalidating_are_stale() {
    let spans = Spans::capture();
    let h = Harness::with(Backend::Memory, |b| {
        b.expire_after(Duration::from_secs(60)).stale_if_error(true)
    })
    .await;
    let path = custom("down", &[]);
    h.fetch(&path).await;
    h.clock.advance(Duration::from_secs(120));
    h.origin.override_status(Some(503));
    let (_, info) = h.fetch(&path).await;
    assert!(info.stale_if_error, "{info:?}");

    let h2 = Harness::with(Backend::Memory, |b| {
        b.expire_after(Duration::from_secs(60))
            .stale_while_revalidate(true)
    })
    .await;
    h2.fetch("/swr").await;
    h2.clock.advance(Duration::from_secs(120));
    let (_, info) = h2.fetch("/swr").await;
    assert!(info.stale_while_revalidate, "{info:?}");
    assert_eq!(spans.outcomes(), ["miss", "stale", "miss", "stale"]);
    // The background refresh logs in its own span when it is done.
    crate::support::wait_until(|| h2.handle.pending_refreshes() == 0).await;
    let done = spans.events().iter().any(|e| {
        e.get("message") == Some("background refresh done") && e.get("status") == Some("200 OK")
    });
    assert!(done, "{:?}", spans.events());
}

/// A refresh answered `401` used to be logged at `DEBUG` only, and counted nowhere, while
/// the stale entry kept being served: now it is a `WARN` with the reason, and counted.
#[tokio::test]
async fn failed_refreshes_are_warned_and_counted() {
    let spans = Spans::capture();
    let h = Harness::with(Backend::Memory, |b| {
        b.expire_after(Duration::from_secs(60))
            .stale_while_revalidate(true)
    })
    .await;
    let path = custom("refresh-401", &[]);
    let (first, _) = h.fetch(&path).await;
    h.clock.advance(Duration::from_secs(120));
    h.origin.override_status(Some(401));
    let (body, info) = h.fetch(&path).await;
    assert!(info.stale_while_revalidate, "{info:?}");
    assert_eq!(body, first);
    crate::support::wait_until(|| h.handle.stats().refresh_failures == 1).await;
    crate::support::wait_until(|| h.handle.pending_refreshes() == 0).await;
    assert_eq!(h.origin.hits("/custom/refresh-401"), 2, "one refresh");
    let warnings: Vec<Recorded> = spans
        .events()
        .into_iter()
        .filter(|e| e.level == "WARN")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    assert_eq!(
        warning.get("message"),
        Some("background refresh failed; the stale entry stays")
    );
    assert!(
        warning.get("reason").is_some_and(|r| r.contains("401")),
        "{warning:?}"
    );
    assert!(
        warning
            .get("url")
            .is_some_and(|u| u.contains("/custom/refresh-401")),
        "{warning:?}"
    );
    // The stale entry is still served, and still stale.
    let (again, info) = h.fetch(&path).await;
    assert_eq!(again, first);
    assert!(info.stale_while_revalidate, "{info:?}");
}

#[tokio::test]
async fn bypass_only_if_cached_and_coalesced() {
    let spans = Spans::capture();
    let h = Harness::new(Backend::Memory).await;
    send(h.get("/b").cache_mode(CacheMode::Bypass)).await;
    let (_, info) = send(h.get("/none").cache_mode(CacheMode::OnlyIfCached)).await;
    assert!(!info.from_cache && info.key.is_some(), "{info:?}");
    send(h.client.post(h.origin.url("/post"))).await;

    // Two identical misses: the second waits for the first and is answered from the cache.
    let (first, second, ()) = tokio::join!(send(h.get("/held/c")), send(h.get("/held/c")), async {
        crate::support::wait_until(|| h.origin.hits("/held/c") >= 1).await;
        h.origin.open_gate();
    });
    assert!(second.1.coalesced, "{:?}", second.1);
    assert_eq!(first.0, second.0);
    assert_eq!(
        spans.outcomes(),
        [
            "bypass",
            "only_if_cached_miss",
            "bypass",
            "miss",
            "coalesced"
        ]
    );
    let post = &spans.all()[2];
    assert_eq!(post.get("method"), Some("POST"));
    assert_eq!(post.get("key"), None, "no key for a request not considered");
}

#[tokio::test]
async fn network_errors_are_errors() {
    let spans = Spans::capture();
    let h = Harness::new(Backend::Memory).await;
    h.origin.stop().await;
    assert!(h.get("/gone").send().await.is_err());
    assert_eq!(spans.outcomes(), ["error"]);
}

#[tokio::test]
async fn urls_in_spans_and_events_hold_no_credentials() {
    let spans = Spans::capture();
    let h = Harness::with(Backend::Memory, |b| {
        b.expire_after(Duration::from_secs(60)).stale_if_error(true)
    })
    .await;
    let path = "/page?api_key=secret&x=1";
    let with_userinfo = h
        .origin
        .url(path)
        .replacen("http://", "http://user:hunter2@", 1);
    h.fetch(path).await;
    send(h.client.get(&with_userinfo)).await;
    // Stale entries served when the origin is unreachable: the event names the URL and
    // reqwest's error message, which holds the URL as sent.
    h.clock.advance(Duration::from_secs(120));
    h.origin.stop().await;
    let (_, info) = h.fetch(path).await;
    assert!(info.stale_if_error, "{info:?}");
    let (_, info) = send(h.client.get(&with_userinfo)).await;
    assert!(info.stale_if_error, "{info:?}");

    let all = spans.all();
    assert_eq!(all.len(), 4);
    for span in &all {
        assert_eq!(span.target, "reqwest_caching");
        let url = span.get("url").unwrap();
        assert!(url.contains("x=1"), "{span:?}");
        assert!(
            !url.contains("secret") && !url.contains("hunter2"),
            "{span:?}"
        );
    }
    let events: Vec<_> = spans
        .events()
        .into_iter()
        .filter(|e| e.target.starts_with("reqwest_caching"))
        .collect();
    let stale: Vec<_> = events
        .iter()
        .filter(|e| e.get("message") == Some("origin unreachable; serving stale entry"))
        .collect();
    assert_eq!(stale.len(), 2, "{events:?}");
    for event in stale {
        let error = event.get("error").unwrap();
        assert!(
            error.contains("x=1"),
            "the redacted URL replaces the one sent: {error}"
        );
    }
    for event in &events {
        for value in event.values() {
            assert!(
                !value.contains("secret") && !value.contains("hunter2"),
                "{event:?}"
            );
        }
    }
}

#[cfg(feature = "metrics")]
mod with_metrics {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use reqwest_caching::CacheMiddleware;

    use crate::origin::Origin;
    use crate::support::{SwitchableStore, send};

    /// Counters by `name{label=value}`, and histograms by the same with their sample count.
    fn snapshot(recorder: &DebuggingRecorder) -> HashMap<String, u64> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                let name = match labels.is_empty() {
                    true => key.name().to_owned(),
                    false => format!("{}{{{}}}", key.name(), labels.join(",")),
                };
                let value = match value {
                    DebugValue::Counter(n) => n,
                    DebugValue::Histogram(samples) => {
                        assert!(samples.iter().all(|s| s.0 >= 0.0 && s.0 < 5.0), "{name}");
                        samples.len() as u64
                    }
                    DebugValue::Gauge(_) => panic!("no gauges: {name}"),
                };
                (name, value)
            })
            .collect()
    }

    #[test]
    fn counters_and_histograms_after_a_miss_a_hit_and_store_failures() {
        let recorder = DebuggingRecorder::new();
        // A local recorder: it sees only this thread, where the current-thread runtime polls
        // every request; other tests' requests are not counted.
        let stats = metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let store = Arc::new(SwitchableStore::default());
                // The breaker opens at the first failure: the next call is skipped.
                let cache = CacheMiddleware::builder()
                    .shared_store(Arc::clone(&store) as _)
                    .store_breaker(1, Duration::from_secs(60), Duration::from_secs(60))
                    .build()
                    .unwrap();
                let handle = cache.handle();
                let client = cache.into_client(reqwest::Client::new());
                let origin = Origin::start().await;
                assert!(send(client.get(origin.url("/a"))).await.1.stored);
                assert!(send(client.get(origin.url("/a"))).await.1.from_cache);
                store.down.store(true, Ordering::Relaxed);
                // The read fails (and opens the breaker), the write is skipped.
                let (_, info) = send(client.get(origin.url("/b"))).await;
                assert!(!info.stored && !info.from_cache, "{info:?}");
                handle.stats()
            })
        });
        assert_eq!(
            (
                stats.hits,
                stats.misses,
                stats.stores,
                stats.errors,
                stats.skipped
            ),
            (1, 2, 1, 1, 1),
            "{stats:?}"
        );
        let metrics = snapshot(&recorder);
        let expected = [
            ("http_cache_requests_total{outcome=hit}", 1),
            ("http_cache_requests_total{outcome=miss}", 2),
            ("http_cache_request_duration_seconds{outcome=hit}", 1),
            ("http_cache_request_duration_seconds{outcome=miss}", 2),
            ("http_cache_stores_total", 1),
            ("http_cache_store_errors_total", 1),
            ("http_cache_store_skipped_total", 1),
            // Two reads that answered and one that failed; a skipped call is not timed.
            ("http_cache_store_latency_seconds{op=get}", 3),
            ("http_cache_store_latency_seconds{op=put}", 1),
        ];
        for (name, value) in expected {
            assert_eq!(metrics.get(name), Some(&value), "{name}: {metrics:?}");
        }
        assert_eq!(metrics.len(), expected.len(), "{metrics:?}");
    }
}

/// A span or an event, with its target and its fields as text.
#[derive(Clone, Debug, Default)]
struct Recorded {
    target: String,
    /// Events only: `TRACE` .. `ERROR`.
    level: String,
    fields: HashMap<String, String>,
}

impl Recorded {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        self.fields.values().map(String::as_str)
    }
}

/// What one test captured: its `http_cache` spans in creation order, and every event.
#[derive(Default)]
struct Sink {
    spans: Vec<(u64, Recorded)>,
    events: Vec<Recorded>,
}

thread_local! {
    static SINK: RefCell<Option<Arc<Mutex<Sink>>>> = const { RefCell::new(None) };
}

/// The capture of the current thread until dropped.
struct Spans(Arc<Mutex<Sink>>);

impl Spans {
    fn capture() -> Self {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::registry().with(Capture);
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the test binary");
        });
        let sink = Arc::new(Mutex::new(Sink::default()));
        SINK.with(|current| *current.borrow_mut() = Some(Arc::clone(&sink)));
        Self(sink)
    }

    fn all(&self) -> Vec<Recorded> {
        let sink = self.0.lock().unwrap();
        sink.spans.iter().map(|(_, span)| span.clone()).collect()
    }

    fn outcomes(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|span| span.get("outcome").unwrap_or("(none)").to_owned())
            .collect()
    }

    fn events(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().events.clone()
    }
}

impl Drop for Spans {
    fn drop(&mut self) {
        SINK.with(|current| current.borrow_mut().take());
    }
}

fn with_sink(f: impl FnOnce(&mut Sink)) {
    SINK.with(|current| {
        if let Some(sink) = &*current.borrow() {
            f(&mut sink.lock().unwrap());
        }
    });
}

struct Visitor<'a>(&'a mut HashMap<String, String>);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Records `http_cache` spans and all events into the current thread's sink, if any.
struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() != "http_cache" {
            return;
        }
        with_sink(|sink| {
            let mut span = Recorded {
                target: attrs.metadata().target().to_owned(),
                ..Recorded::default()
            };
            attrs.record(&mut Visitor(&mut span.fields));
            sink.spans.push((id.into_u64(), span));
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        with_sink(|sink| {
            // Ids are reused once a span closes: the latest span with this id is the live one.
            if let Some((_, span)) = sink.spans.iter_mut().rev().find(|s| s.0 == id.into_u64()) {
                values.record(&mut Visitor(&mut span.fields));
            }
        });
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        with_sink(|sink| {
            let mut record = Recorded {
                target: event.metadata().target().to_owned(),
                level: event.metadata().level().to_string(),
                ..Recorded::default()
            };
            event.record(&mut Visitor(&mut record.fields));
            sink.events.push(record);
        });
    }
}

//! A local origin for the examples; it counts what reaches it. No internet needed.
//!
//! - `/items/{id}`: a small JSON body, after the delay given to [`Origin::start`].
//! - `/etag/{name}`: `Cache-Control: max-age=60` and `ETag: "v1"`; a request with
//!   `If-None-Match: "v1"` gets `304 Not Modified` (counted by [`Origin::not_modified`]).
//!   Dated by the clock given to [`Origin::date_by`], if any.
//! - `/flaky/{name}`: `503` while [`Origin::fail_next`] has failures left, else `200`.
//! - `/live/{name}`: `Cache-Control: no-store`, body `"live {name} #{n}"`.
//! - `/download/{bytes}`: that many bytes (`Content-Length`, `max-age=3600`), streamed in
//!   64 KiB chunks, never held whole.
//! - anything else: `200`, body `"{path} #{n}"` where n counts requests reaching the origin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use reqwest_caching::{Clock, ManualClock};

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    not_modified: AtomicU64,
    failures_left: AtomicU64,
    clock: Mutex<Option<Arc<ManualClock>>>,
}

/// A running origin: its base URL and how many requests reached it.
pub struct Origin {
    pub base: String,
    counters: Arc<Counters>,
}

impl Origin {
    pub async fn start(delay: Duration) -> Self {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route(
                "/items/{id}",
                axum::routing::get(
                    move |Path(id): Path<u32>, State(counters): State<Arc<Counters>>| async move {
                        tokio::time::sleep(delay).await;
                        counters.served.fetch_add(1, Ordering::Relaxed);
                        format!("{{\"id\": {id}, \"name\": \"item {id}\"}}")
                    },
                ),
            )
            .route("/etag/{name}", axum::routing::get(etag))
            .route("/flaky/{name}", axum::routing::get(flaky))
            .route("/live/{name}", axum::routing::get(live))
            .route("/download/{bytes}", axum::routing::get(download))
            .fallback(anything)
            .with_state(Arc::clone(&counters));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("origin server") });
        Self { base, counters }
    }

    /// How many requests reached the origin (every route, `304`s and `503`s included).
    pub fn served(&self) -> u64 {
        self.counters.served.load(Ordering::Relaxed)
    }

    /// The full URL of `path` on this origin.
    #[allow(dead_code)] // not every example uses every helper
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many `/etag` requests were answered `304 Not Modified`.
    #[allow(dead_code)]
    pub fn not_modified(&self) -> u64 {
        self.counters.not_modified.load(Ordering::Relaxed)
    }

    /// Makes the next `count` requests to `/flaky/...` answer `503 Service Unavailable`.
    #[allow(dead_code)]
    pub fn fail_next(&self, count: u64) {
        self.counters.failures_left.store(count, Ordering::Relaxed);
    }

    /// Dates `/etag` responses by `clock`, so their age agrees with a cache on that clock.
    #[allow(dead_code)]
    pub fn date_by(&self, clock: Arc<ManualClock>) {
        *self.counters.clock.lock().unwrap() = Some(clock);
    }
}

async fn etag(
    Path(name): Path<String>,
    State(counters): State<Arc<Counters>>,
    request: HeaderMap,
) -> Response {
    counters.served.fetch_add(1, Ordering::Relaxed);
    let clock = counters.clock.lock().unwrap().clone();
    let now = clock.map_or_else(std::time::SystemTime::now, |clock| clock.now());
    let headers = [
        (header::CACHE_CONTROL, "max-age=60".to_owned()),
        (header::ETAG, "\"v1\"".to_owned()),
        (header::DATE, httpdate::fmt_http_date(now)),
    ];
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == "\"v1\"")
    {
        counters.not_modified.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, format!("document {name}, version 1")).into_response()
}

async fn flaky(Path(name): Path<String>, State(counters): State<Arc<Counters>>) -> Response {
    let n = counters.served.fetch_add(1, Ordering::Relaxed) + 1;
    let failing = counters
        .failures_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response();
    }
    format!("{name} #{n}").into_response()
}

async fn download(Path(bytes): Path<usize>, State(counters): State<Arc<Counters>>) -> Response {
    counters.served.fetch_add(1, Ordering::Relaxed);
    let piece =
        axum::body::Bytes::from((0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let chunks = (0..bytes.div_ceil(piece.len())).map(move |i| {
        let len = (bytes - i * piece.len()).min(piece.len());
        Ok::<_, std::convert::Infallible>(piece.slice(..len))
    });
    let headers = [
        (header::CACHE_CONTROL, "max-age=3600".to_owned()),
        (header::CONTENT_LENGTH, bytes.to_string()),
    ];
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    (headers, body).into_response()
}

async fn live(Path(name): Path<String>, State(counters): State<Arc<Counters>>) -> Response {
    let n = counters.served.fetch_add(1, Ordering::Relaxed) + 1;
    (
        [(header::CACHE_CONTROL, "no-store")],
        format!("live {name} #{n}"),
    )
        .into_response()
}

async fn anything(uri: Uri, State(counters): State<Arc<Counters>>) -> String {
    let n = counters.served.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{} #{n}", uri.path())
}

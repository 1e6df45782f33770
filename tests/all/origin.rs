//! A real HTTP origin on 127.0.0.1 that records every request it receives.
//!
//! Routes (any method):
//! - `/etag/{name}`: `ETag: "v1"`; answers `304` to a matching `If-None-Match`.
//! - `/modified/{name}`: `Last-Modified`; answers `304` to `If-Modified-Since`.
//! - `/status/{code}`: that status.
//! - `/big/{bytes}`: a body of that many bytes, with `Content-Length`.
//! - `/chunked/{bytes}`: the same without `Content-Length` (streamed in 1 KiB chunks).
//! - `/pattern/{bytes}`: that many bytes of a pattern that shows a chunk out of place, with
//!   `Content-Length`; `?chunked` streams them in 16 KiB chunks without it.
//! - `/broken`: sends part of a body, then fails the connection.
//! - `/events/{name}`: `text/event-stream` without `Content-Length`: one event, then the
//!   stream stays open (server-sent events, which never end).
//! - `/redirect/{name}`: `302` to `/target/{name}`; `/to-trickle/{name}` to `/trickle/{name}`.
//! - `/temporary/{name}`: `307` (any method, its body sent again) to
//!   `/custom/{name}?`[`MOVED_TARGET_QUERY`].
//! - `/held-aged/{name}`: waits for the gate, then answers `Age: 50`, `max-age=60`.
//! - `/moved/{name}`: `302`, `no-store`, to `/custom/{name}?`[`MOVED_TARGET_QUERY`] (fresh
//!   for ten minutes).
//! - `/headers`: repeated and non-UTF-8 header values.
//! - `/slow/{name}`: waits 20 ms first.
//! - `/custom/{name}?h=Name:Value`: the given response headers, `304` on matching validators;
//!   `&size=N` answers [`pattern`] bytes of that length instead of the text; `&n=Name:Value`
//!   is a field a `304` sends in place of the configured one.
//! - `/held/{name}`: every request waits until the test opens the gate.
//! - `/trickle/{name}`: a body without `Content-Length` whose first part ([`TRICKLE_FIRST`])
//!   goes out at once and whose rest ([`TRICKLE_REST`]) once the test opens the gate (a
//!   watch stream, an origin writing as it computes); `?length` announces its length.
//! - `/gate/{name}`: answers the first request, later ones once the test opens the gate.
//! - `/gated-etag/{name}`: `ETag: "v1"`, `max-age=60`; a matching `If-None-Match` gets its
//!   `304` once the test opens the gate (a revalidation still out while other requests go on).
//! - `/hang/{name}`: answers the first request, then never answers (and counts abandoned ones).
//! - `/stall/{name}`: answers the first request; later ones send the head and a first chunk,
//!   then the body never goes on (and counts the bodies abandoned by their client).
//! - `/short/{announced}/{sent}`: `Content-Length: {announced}` but only `{sent}` bytes, then
//!   the connection closes (the body is cut mid-stream).
//! - `/cut/{bytes}`: a chunked body of that many bytes, then the connection fails midway.
//! - `/many-headers/{count}`: that many distinct `x-h-{i}` response headers.
//! - `/many-values/{count}`: one `x-rep` response header with that many values.
//! - `/obs-text/{name}`: header values with obs-text (non-UTF-8) bytes; see [`OBS_TEXT`].
//! - `/flaky/{name}?fails=N`: the first N requests to that path and query answer `503`.
//! - `/self-located/{name}`: `Content-Location` naming its own path, `max-age=600`.
//! - `/retagged/{name}`: `ETag: "v1"` on its first answer, `"v2"` after; any conditional
//!   request gets `304` with `ETag: "v2"` (a server answering a date, not the tag asked for).
//! - `/growing/{name}`: `ETag: "v1"`; each `304` (to a matching `If-None-Match`) adds
//!   [`GROWING_FIELDS`] header names never sent before, of [`GROWING_VALUE_BYTES`] each.
//! - anything else: `200`, `text/plain`, body `"{path} #{n}"` where n counts requests to
//!   that path and query, so a cached body is told from a fresh one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use reqwest_caching::ManualClock;

/// The `/obs-text` response headers: values with obs-text bytes (0x80-0xFF, not UTF-8),
/// a repeated name, an empty value, a tab inside a value, and a UTF-8 one.
pub const OBS_TEXT: &[(&str, &[u8])] = &[
    ("x-obs-mixed", b"caf\xe9 na\xefve \xff\xfe"),
    ("x-obs-rep", b"\xe9t\xe9"),
    ("x-obs-rep", b"\x80"),
    ("x-obs-rep", b"plain"),
    ("x-obs-tab", b"a\tb\x85c"),
    ("x-obs-empty", b""),
    ("x-utf8", "café ☕".as_bytes()),
];

/// What `/trickle` sends at once.
pub const TRICKLE_FIRST: &[u8] = b"{\"part\": 1}\n";
/// What `/trickle` sends once the gate opens, after which its body ends.
pub const TRICKLE_REST: &[u8] = b"{\"part\": 2}\n";

/// The query of `/moved`'s target: `Cache-Control: max-age=600`.
pub const MOVED_TARGET_QUERY: &str = "h=Cache-Control:max-age=600";

/// The bytes of `/pattern` at these offsets: not periodic over any chunk size the tests use.
pub fn pattern(range: std::ops::Range<usize>) -> Vec<u8> {
    range
        .map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8)
        .collect()
}

/// Every obs-text byte, 0x80 to 0xFF, as the `/obs-text` header `x-obs-all`.
pub fn obs_text_all() -> Vec<u8> {
    (0x80..=0xff).collect()
}

/// One request as the origin saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    per_target: HashMap<String, u64>,
    /// When set, `/custom` answers with this status whatever the request.
    override_status: Option<u16>,
    /// `/hang` handlers dropped before answering (their client went away).
    cancelled: u64,
    /// The test's clock: responses are dated by it, so ages agree with the cache's clock.
    clock: Option<Arc<ManualClock>>,
    /// `/gate` requests after the first wait until this turns true.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// The `Vary` header `/varying` answers with (none when empty).
    vary: String,
}

/// The running origin. Dropping it leaves the server task to end with the test's runtime.
#[derive(Clone)]
pub struct Origin {
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Origin {
    pub async fn start() -> Self {
        Self::start_with_clock(None).await
    }

    /// An origin whose `Date` headers follow `clock` (unless a route sets its own).
    pub async fn start_with_clock(clock: Option<Arc<ManualClock>>) -> Self {
        let (gate, gate_open) = tokio::sync::watch::channel(false);
        let log = Arc::new(Mutex::new(Log {
            clock,
            gate: Some(gate_open),
            ..Log::default()
        }));
        let app = Router::new().fallback(respond).with_state(Arc::clone(&log));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("origin server");
        });
        Self {
            gate: Arc::new(gate),
            addr,
            log,
            server: Arc::new(Mutex::new(Some(server))),
        }
    }

    /// Stops listening: new connections are refused from now on.
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
    }

    /// Makes every `/custom` request answer `status` (or behave normally again with `None`).
    pub fn override_status(&self, status: Option<u16>) {
        self.log.lock().unwrap().override_status = status;
    }

    /// Sets the `Vary` header every `/varying` response carries from now on (`""`: none).
    pub fn set_vary(&self, vary: &str) {
        self.log.lock().unwrap().vary = vary.to_owned();
    }

    /// Lets waiting and future `/gate` requests answer.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// How many `/hang` requests and `/stall` bodies were abandoned by their client.
    pub fn cancelled(&self) -> u64 {
        self.log.lock().unwrap().cancelled
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().seen.clone()
    }

    /// Asserts what reached the origin was a first request, the cache's conditional one
    /// (`If-None-Match: "v1"`, answered by a `304` naming another tag: `/retagged`), and that
    /// request again without conditions.
    pub fn assert_sent_again_unconditional(&self, context: &str) {
        let seen: Vec<HeaderMap> = self.seen().into_iter().map(|seen| seen.headers).collect();
        assert_eq!(seen.len(), 3, "{context}");
        assert_eq!(seen[1]["if-none-match"], "\"v1\"", "{context}");
        assert!(
            !seen[2].contains_key("if-none-match"),
            "{context}: {seen:?}"
        );
    }

    /// How many requests reached the origin in all.
    pub fn total(&self) -> usize {
        self.log.lock().unwrap().seen.len()
    }

    /// How many requests for this path (any query) reached the origin.
    pub fn hits(&self, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.target.split('?').next() == Some(path))
            .count()
    }

    /// The last request for this path.
    pub fn last(&self, path: &str) -> Seen {
        self.seen()
            .into_iter()
            .rev()
            .find(|s| s.target.split('?').next() == Some(path))
            .unwrap_or_else(|| panic!("no request for {path} reached the origin"))
    }
}

/// `/custom/{name}?h=Name:Value&h=...`: those response headers; `304` when the request's
/// `If-None-Match` / `If-Modified-Since` matches the configured `ETag` / `Last-Modified`.
fn custom(
    uri: &axum::http::Uri,
    request: &HeaderMap,
    override_status: Option<u16>,
    text: String,
) -> Response {
    let mut headers = HeaderMap::new();
    let query = uri.query().unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "h" {
            continue;
        }
        if let Some((name, value)) = value.split_once(':') {
            headers.append(
                header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
    }
    if let Some(status) = override_status {
        return (StatusCode::from_u16(status).unwrap(), headers, text).into_response();
    }
    let matches = |validator, condition| {
        headers
            .get(validator)
            .is_some_and(|v| request.get(condition) == Some(v))
    };
    if matches(header::ETAG, header::IF_NONE_MATCH)
        || matches(header::LAST_MODIFIED, header::IF_MODIFIED_SINCE)
    {
        // `n=Name:Value`: a field the 304 sends in place of the configured one.
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if let (true, Some((name, value))) = (name == "n", value.split_once(':')) {
                headers.insert(
                    header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let size = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "size")
        .and_then(|(_, size)| size.parse::<usize>().ok());
    match size {
        Some(size) => (headers, pattern(0..size)).into_response(),
        None => (headers, text).into_response(),
    }
}

/// Counts a `/hang` handler dropped before it answered.
struct CancelGuard(Arc<Mutex<Log>>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap().cancelled += 1;
    }
}

async fn respond(State(log): State<Arc<Mutex<Log>>>, request: Request) -> Response {
    let clock = log.lock().unwrap().clock.clone();
    let mut response = route(log, request).await;
    if let Some(clock) = clock {
        if !response.headers().contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(reqwest_caching::Clock::now(&*clock));
            response
                .headers_mut()
                .insert(header::DATE, HeaderValue::from_str(&date).unwrap());
        }
    }
    response
}

/// New header names each `304` of `/growing` sends, and each one's value length: about
/// 130 KB a `304`, within what a client takes in one head (hyper: 100 fields, 400 KB).
pub const GROWING_FIELDS: usize = 60;
pub const GROWING_VALUE_BYTES: usize = 2_000;

async fn route(log: Arc<Mutex<Log>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let n = {
        let mut log = log.lock().unwrap();
        log.seen.push(Seen {
            target: target.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        let n = log.per_target.entry(target.clone()).or_default();
        *n += 1;
        *n
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let text = format!("{target} #{n}");
    match segments.as_slice() {
        ["custom", _] => {
            let override_status = log.lock().unwrap().override_status;
            custom(&parts.uri, &parts.headers, override_status, text)
        }
        ["held", _] => {
            let gate = log.lock().unwrap().gate.clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            text.into_response()
        }
        ["trickle", _] => {
            let gate = log.lock().unwrap().gate.clone();
            let rest = async move {
                if let Some(mut gate) = gate {
                    let _ = gate.wait_for(|open| *open).await;
                }
                Ok::<_, Infallible>(Bytes::from_static(TRICKLE_REST))
            };
            let first = futures_util::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(TRICKLE_FIRST))
            });
            let body = first.chain(futures_util::stream::once(rest));
            let mut response = (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from_stream(body),
            )
                .into_response();
            if parts.uri.query() == Some("length") {
                let length = TRICKLE_FIRST.len() + TRICKLE_REST.len();
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            response
        }
        ["held-aged", _] => {
            let gate = log.lock().unwrap().gate.clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            let fields = [(header::AGE, "50"), (header::CACHE_CONTROL, "max-age=60")];
            (fields, text).into_response()
        }
        ["gated-etag", _] => {
            let fields = [
                (header::ETAG, "\"v1\""),
                (header::CACHE_CONTROL, "max-age=60"),
            ];
            let conditional = parts
                .headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"v1\"");
            if !conditional {
                return (fields, text).into_response();
            }
            let gate = log.lock().unwrap().gate.clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            (StatusCode::NOT_MODIFIED, fields).into_response()
        }
        ["gate", _] if n > 1 => {
            let gate = log.lock().unwrap().gate.clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            text.into_response()
        }
        ["hang", _] if n > 1 => {
            let _guard = CancelGuard(Arc::clone(&log));
            std::future::pending::<()>().await;
            unreachable!()
        }
        ["stall", _] if n > 1 => {
            let guard = CancelGuard(Arc::clone(&log));
            let stalled = futures_util::stream::once(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok::<_, Infallible>(Bytes::new())
            });
            let body = futures_util::stream::once(async { Ok(Bytes::from_static(b"partial ")) })
                .chain(stalled);
            Body::from_stream(body).into_response()
        }
        ["flaky", _] => {
            let fails: u64 =
                url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                    .find(|(name, _)| name == "fails")
                    .and_then(|(_, value)| value.parse().ok())
                    .unwrap_or(0);
            if n <= fails {
                return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
            }
            text.into_response()
        }
        ["varying", _] => {
            // `ETag: "v1"` and `304` to a matching `If-None-Match`, varying as `set_vary` says.
            let vary = log.lock().unwrap().vary.clone();
            let mut headers = HeaderMap::new();
            headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
            if !vary.is_empty() {
                headers.insert(header::VARY, HeaderValue::from_str(&vary).unwrap());
            }
            if parts
                .headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"v1\"")
            {
                return (StatusCode::NOT_MODIFIED, headers).into_response();
            }
            (headers, text).into_response()
        }
        ["self-located", _] => (
            [
                (header::CONTENT_LOCATION, path.clone()),
                (header::CACHE_CONTROL, "max-age=600".to_owned()),
            ],
            text,
        )
            .into_response(),
        ["retagged", _] => {
            let tag = if n == 1 { "\"v1\"" } else { "\"v2\"" };
            let conditional = parts.headers.contains_key(header::IF_NONE_MATCH)
                || parts.headers.contains_key(header::IF_MODIFIED_SINCE);
            if conditional {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
            }
            ([(header::ETAG, tag)], text).into_response()
        }
        ["growing", _] => {
            if parts
                .headers
                .get(header::IF_NONE_MATCH)
                .is_none_or(|v| v != "\"v1\"")
            {
                return ([(header::ETAG, "\"v1\"")], text).into_response();
            }
            let mut headers = HeaderMap::new();
            headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
            let value = HeaderValue::from_str(&"g".repeat(GROWING_VALUE_BYTES)).unwrap();
            for field in 0..GROWING_FIELDS {
                let name = format!("x-grown-{n}-{field}");
                headers.insert(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.clone(),
                );
            }
            (StatusCode::NOT_MODIFIED, headers).into_response()
        }
        ["etag", _] => {
            if parts
                .headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"v1\"")
            {
                return (
                    StatusCode::NOT_MODIFIED,
                    [
                        (header::ETAG, "\"v1\""),
                        (header::HeaderName::from_static("x-refreshed"), "yes"),
                    ],
                )
                    .into_response();
            }
            ([(header::ETAG, "\"v1\"")], text).into_response()
        }
        ["modified", _] => {
            const DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
            if parts
                .headers
                .get(header::IF_MODIFIED_SINCE)
                .is_some_and(|v| v == DATE)
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            ([(header::LAST_MODIFIED, DATE)], text).into_response()
        }
        ["status", code] => {
            let status = code
                .parse()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            (status, text).into_response()
        }
        ["big", size] => {
            let size: usize = size.parse().unwrap_or(0);
            vec![b'x'; size].into_response()
        }
        ["chunked", size] => {
            let size: usize = size.parse().unwrap_or(0);
            let chunks = (0..size.div_ceil(1024)).map(move |i| {
                let len = (size - i * 1024).min(1024);
                Ok::<_, Infallible>(Bytes::from(vec![b'y'; len]))
            });
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        ["pattern", size] => {
            let size: usize = size.parse().unwrap_or(0);
            if parts.uri.query() == Some("chunked") {
                let chunks = (0..size.div_ceil(16 * 1024)).map(move |i| {
                    let range = i * 16 * 1024..((i + 1) * 16 * 1024).min(size);
                    Ok::<_, Infallible>(Bytes::from(pattern(range)))
                });
                Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            } else {
                pattern(0..size).into_response()
            }
        }
        ["events", _] => {
            let first = futures_util::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(b"data: first\n\n"))
            });
            let body = first.chain(futures_util::stream::pending());
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(body),
            )
                .into_response()
        }
        ["broken"] => {
            // The failure comes after the head and a first chunk have gone out.
            let chunks = futures_util::stream::iter([true, false]).then(|first| async move {
                if first {
                    Ok(Bytes::from_static(b"partial body "))
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::other("origin failed midway"))
                }
            });
            Body::from_stream(chunks).into_response()
        }
        ["moved", name] => (
            StatusCode::FOUND,
            [
                (
                    header::LOCATION,
                    format!("/custom/{name}?{MOVED_TARGET_QUERY}"),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        ["temporary", name] => (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                header::LOCATION,
                format!("/custom/{name}?{MOVED_TARGET_QUERY}"),
            )],
        )
            .into_response(),
        ["redirect", name] => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/target/{name}"))],
        )
            .into_response(),
        ["to-trickle", name] => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/trickle/{name}"))],
        )
            .into_response(),
        ["sorts", name] => {
            // Redirects to the same path with its query's parameters in order (a URL with
            // the same cache key); answers once they are.
            let query = parts.uri.query().unwrap_or_default();
            let mut pairs: Vec<&str> = query.split('&').collect();
            pairs.sort_unstable();
            let sorted = pairs.join("&");
            if sorted == query {
                return text.into_response();
            }
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("/sorts/{name}?{sorted}"))],
            )
                .into_response()
        }
        ["headers"] => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
            headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
            headers.append("x-multi", HeaderValue::from_static("one"));
            headers.append("x-multi", HeaderValue::from_static("two"));
            headers.insert("x-latin1", HeaderValue::from_bytes(b"caf\xe9").unwrap());
            response
        }
        ["slow", _] => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            text.into_response()
        }
        ["short", announced, sent] => {
            // A body of unknown length (a stream) with a larger Content-Length set by hand:
            // hyper sends the head and what there is, then closes the connection when the
            // stream ends early. The pause lets the head and the bytes go out first.
            let announced: u64 = announced.parse().unwrap_or(u64::MAX);
            let sent: usize = sent.parse().unwrap_or(0);
            let chunks =
                futures_util::stream::iter([true, false]).filter_map(move |first| async move {
                    if first {
                        Some(Ok::<_, Infallible>(Bytes::from(vec![b's'; sent])))
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        None
                    }
                });
            let mut response = Body::from_stream(chunks).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
            response
        }
        ["cut", size] => {
            let size: usize = size.parse().unwrap_or(0);
            let chunks = (0..size.div_ceil(1024)).map(move |i| {
                let len = (size - i * 1024).min(1024);
                Ok(Bytes::from(vec![b'c'; len]))
            });
            // The failure comes after every chunk has gone out.
            let failure = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(std::io::Error::other("origin failed midway"))
            });
            Body::from_stream(futures_util::stream::iter(chunks).chain(failure)).into_response()
        }
        ["many-headers", count] => {
            let count: usize = count.parse().unwrap_or(0);
            let mut response = text.into_response();
            for i in 0..count {
                response.headers_mut().append(
                    header::HeaderName::from_bytes(format!("x-h-{i}").as_bytes()).unwrap(),
                    HeaderValue::from(i),
                );
            }
            response
        }
        ["many-values", count] => {
            let count: usize = count.parse().unwrap_or(0);
            let mut response = text.into_response();
            for i in 0..count {
                response.headers_mut().append("x-rep", HeaderValue::from(i));
            }
            response
        }
        ["obs-text", _] => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            for (name, value) in OBS_TEXT {
                headers.append(*name, HeaderValue::from_bytes(value).unwrap());
            }
            headers.append(
                "x-obs-all",
                HeaderValue::from_bytes(&obs_text_all()).unwrap(),
            );
            response
        }
        _ => text.into_response(),
    }
}

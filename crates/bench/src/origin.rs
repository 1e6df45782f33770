//! The loopback origin: `/body/{size}` (and `/body/{size}/{n}`, for many plain URLs) answers
//! that many bytes, cacheable for an hour;
//! `/api/{size}` answers that many bytes with the head a typical JSON API sends (validators,
//! rate-limit and request-id fields, `Vary: Accept-Encoding`: a dozen fields);
//! `/json/{size}` answers a JSON-like text of about that size (compressible as real API
//! responses are, not a repeated byte); `/stream/{size}` streams that many bytes in 64 KiB chunks, without a length;
//! `/stream-len/{size}` the same with `Content-Length`.

use axum::Router;
use axum::extract::Path;

pub async fn start() -> String {
    let app = Router::new()
        .route(
            "/body/{size}",
            axum::routing::get(|Path(size): Path<usize>| async move {
                (
                    [("cache-control", "public, max-age=3600")],
                    vec![b'x'; size],
                )
            }),
        )
        .route(
            "/body/{size}/{n}",
            axum::routing::get(|Path((size, _)): Path<(usize, u64)>| async move {
                (
                    [("cache-control", "public, max-age=3600")],
                    vec![b'x'; size],
                )
            }),
        )
        .route(
            "/api/{size}",
            axum::routing::get(
                |Path(size): Path<usize>| async move { (API_HEADERS, vec![b'a'; size]) },
            ),
        )
        .route(
            "/json/{size}",
            axum::routing::get(|Path(size): Path<usize>| async move {
                ([("cache-control", "public, max-age=3600")], json_like(size))
            }),
        )
        .route(
            "/stream/{size}",
            axum::routing::get(|Path(size): Path<usize>| async move {
                // The origin never holds the whole body either.
                let chunk = axum::body::Bytes::from(vec![b's'; 64 * 1024]);
                let chunks = (0..size.div_ceil(64 * 1024))
                    .map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone()));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/stream-len/{size}",
            axum::routing::get(|Path(size): Path<usize>| async move {
                // As `/stream`, with its length announced.
                let chunk = axum::body::Bytes::from(vec![b'l'; 64 * 1024]);
                let chunks = (0..size.div_ceil(64 * 1024)).map(move |i| {
                    let len = (size - i * 64 * 1024).min(64 * 1024);
                    Ok::<_, std::convert::Infallible>(chunk.slice(..len))
                });
                let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
                ([("content-length", size.to_string())], body)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("origin") });
    base
}

/// The head of a typical JSON API response (nginx in front, rate limits, a request id),
/// varying on `Accept-Encoding` as servers that compress do.
const API_HEADERS: [(&str, &str); 12] = [
    ("cache-control", "public, max-age=3600"),
    ("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
    ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ("vary", "Accept-Encoding"),
    ("x-request-id", "9f1c2a7e-5b3d-4c8e-a1f0-2d6b7e9c4a31"),
    ("x-ratelimit-limit", "5000"),
    ("x-ratelimit-remaining", "4987"),
    ("x-ratelimit-reset", "1700000000"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("access-control-allow-origin", "*"),
    ("server", "nginx/1.25.3"),
    ("x-content-type-options", "nosniff"),
];

/// Records with varying ids, names and numbers, as an API listing would return.
pub fn json_like(size: usize) -> String {
    let mut out = String::with_capacity(size + 128);
    out.push('[');
    let mut i = 0u64;
    while out.len() < size {
        let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item-{x:x}\",\"price\":{}.{:02},\"tags\":[\"t{}\",\"t{}\"],\"active\":{}}},",
            x % 1000,
            x % 100,
            x % 17,
            x % 5,
            x % 2 == 0
        ));
        i += 1;
    }
    out.push(']');
    out
}

//! The loopback origin: `/body/{size}` answers that many bytes, cacheable for an hour;
//! `/stream/{size}` streams that many bytes in 64 KiB chunks, without a length.

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
            "/stream/{size}",
            axum::routing::get(|Path(size): Path<usize>| async move {
                // The origin never holds the whole body either.
                let chunk = axum::body::Bytes::from(vec![b's'; 64 * 1024]);
                let chunks = (0..size.div_ceil(64 * 1024))
                    .map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone()));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("origin") });
    base
}

//! The loopback origin: `/body/{size}` answers that many bytes, cacheable for an hour.

use axum::Router;
use axum::extract::Path;

pub async fn start() -> String {
    let app = Router::new().route(
        "/body/{size}",
        axum::routing::get(|Path(size): Path<usize>| async move {
            (
                [("cache-control", "public, max-age=3600")],
                vec![b'x'; size],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("origin") });
    base
}

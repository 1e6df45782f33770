//! A slow local origin for the examples: `/items/{id}` answers after a delay and counts what
//! reaches it. No internet needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};

/// A running origin: its base URL and how many requests reached it.
pub struct Origin {
    pub base: String,
    served: Arc<AtomicU64>,
}

impl Origin {
    pub async fn start(delay: Duration) -> Self {
        let served = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/items/{id}",
                axum::routing::get(
                    move |Path(id): Path<u32>, State(served): State<Arc<AtomicU64>>| async move {
                        tokio::time::sleep(delay).await;
                        served.fetch_add(1, Ordering::Relaxed);
                        format!("{{\"id\": {id}, \"name\": \"item {id}\"}}")
                    },
                ),
            )
            .with_state(Arc::clone(&served));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("origin server") });
        Self { base, served }
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

//! Background refreshes for `stale-while-revalidate`: at most one per entry, sent with the
//! middleware's own client, aborted when the middleware (and every handle) is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cache_core::CacheKey;
use reqwest::Request;
use tokio::task::AbortHandle;

use crate::fetch::{Exchange, finish};
use crate::state::{CacheState, error_chain};

/// How long a background refresh may take before it is abandoned (and may be tried again).
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The refreshes in flight, by entry key.
#[derive(Debug)]
pub(crate) struct Refresher {
    client: reqwest::Client,
    in_flight: Mutex<HashMap<CacheKey, AbortHandle>>,
}

impl Refresher {
    pub(crate) fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<CacheKey, AbortHandle>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many refreshes are running.
    pub(crate) fn pending(&self) -> usize {
        self.in_flight().len()
    }

    /// Starts refreshing the entry `exchange` found, unless a refresh of it is running. The
    /// request goes out conditionally when the entry has validators.
    pub(crate) fn start(&self, state: &Arc<CacheState>, mut exchange: Exchange, req: Request) {
        let Some(key) = exchange.found_key() else {
            return;
        };
        // A streaming body cannot be sent twice; such requests are not refreshed.
        let Some(mut request) = req.try_clone() else {
            return;
        };
        let mut in_flight = self.in_flight();
        if in_flight.contains_key(&key) {
            return;
        }
        exchange.add_validators(&mut request);
        // The task holds the state weakly: dropping the middleware drops the state, whose
        // Refresher then aborts the task.
        let weak = Arc::downgrade(state);
        let client = self.client.clone();
        // Its own span (the request's has ended by the time it runs), linked to the request's.
        let span = tracing::debug_span!(parent: None, "http_cache_refresh", key = %key);
        span.follows_from(tracing::Span::current());
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                // Bounded, so a hung origin cannot pin the entry's refresh slot forever.
                let result =
                    match tokio::time::timeout(REFRESH_TIMEOUT, client.execute(request)).await {
                        Ok(result) => result.map_err(reqwest_middleware::Error::from),
                        Err(elapsed) => Err(reqwest_middleware::Error::middleware(elapsed)),
                    };
                let Some(state) = weak.upgrade() else { return };
                let failure = result
                    .as_ref()
                    .err()
                    .map(|e| exchange.redact(&error_chain(e)));
                match finish(&state, exchange, result).await {
                    Ok(response) => {
                        tracing::debug!(status = %response.status(), "background refresh done");
                        // Stored by `finish` when storable; nobody reads this copy.
                        drop(response);
                    }
                    Err(_) => tracing::debug!(
                        error = failure.as_deref().unwrap_or("origin error"),
                        "background refresh failed; the stale entry stays"
                    ),
                }
                state.refresher.in_flight().remove(&key);
            },
            span,
        ));
        in_flight.insert(key, task.abort_handle());
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        for (_, task) in self.in_flight().drain() {
            task.abort();
        }
    }
}

//! Background refreshes for `stale-while-revalidate`: at most one per entry, sent with the
//! middleware's own client, each bounded as a whole (head and body), aborted when the
//! middleware (and every handle) is dropped. A refresh that does not refresh its entry is
//! warned about and counted: otherwise a stale entry would be served forever in silence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use cache_core::CacheKey;
use http::StatusCode;
use reqwest::Request;
use tokio::task::AbortHandle;

use crate::fetch::{Exchange, finish};
use crate::info::CacheResponseExt;
use crate::state::{CacheState, WarningLimiter, error_chain};

/// The refreshes in flight, by entry key.
#[derive(Debug)]
pub(crate) struct Refresher {
    client: reqwest::Client,
    /// The bound on one refresh, from sending the request to storing the answer.
    timeout: Duration,
    in_flight: Mutex<HashMap<CacheKey, AbortHandle>>,
    /// Failed refreshes warn at most once a second (an origin that refuses every refresh
    /// would otherwise warn on every stale hit).
    warnings: WarningLimiter,
}

impl Refresher {
    pub(crate) fn new(client: reqwest::Client, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            in_flight: Mutex::new(HashMap::new()),
            warnings: WarningLimiter::default(),
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
        let timeout = self.timeout;
        // Its own span (the request's has ended by the time it runs), linked to the request's.
        let span = tracing::debug_span!(parent: None, "http_cache_refresh", key = %key);
        span.follows_from(tracing::Span::current());
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                // Released however the task ends, a panic included.
                let _slot = Slot {
                    state: weak.clone(),
                    key,
                };
                let url = exchange.stored_url().to_owned();
                // The whole exchange is bounded, body included: a body that never ends must
                // not hold the slot (and the stale entry) forever.
                let refresh = refresh(&weak, client, request, exchange);
                let outcome = match tokio::time::timeout(timeout, refresh).await {
                    Ok(Some(outcome)) => outcome,
                    // The middleware is gone: nobody to tell.
                    Ok(None) => return,
                    Err(_) => Err(format!("no complete answer within {timeout:?}")),
                };
                let Some(state) = weak.upgrade() else { return };
                match outcome {
                    Ok(status) => tracing::debug!(%status, "background refresh done"),
                    Err(reason) => state.refresher.failed(&state, &key, &url, &reason),
                }
            },
            span,
        ));
        in_flight.insert(key, task.abort_handle());
    }

    /// Counts a failed refresh and logs it: a warning at most once a second, otherwise a
    /// debug line.
    fn failed(&self, state: &CacheState, key: &CacheKey, url: &str, reason: &str) {
        state.stats.refresh_failure();
        let what = "background refresh failed; the stale entry stays";
        match self.warnings.allow() {
            Some(suppressed) => tracing::warn!(%key, url, reason, suppressed, "{what}"),
            None => tracing::debug!(%key, url, reason, "{what}"),
        }
    }
}

/// Sends the refresh and stores its answer. `Ok` with the status when the entry was
/// rewritten; `Err` with why not (redacted); `None` when the middleware is gone.
async fn refresh(
    state: &Weak<CacheState>,
    client: reqwest::Client,
    request: Request,
    exchange: Exchange,
) -> Option<Result<StatusCode, String>> {
    let result = client
        .execute(request)
        .await
        .map_err(reqwest_middleware::Error::from);
    let state = state.upgrade()?;
    let failure = result
        .as_ref()
        .err()
        .map(|e| exchange.redact(&error_chain(e)));
    Some(match finish(&state, exchange, result).await {
        Ok(response) => {
            let status = response.status();
            match response.cache_info() {
                Some(info) if info.stored => Ok(status),
                Some(info) if info.stale_if_error => {
                    Err("the origin failed; stale-if-error kept the entry".to_owned())
                }
                _ => Err(format!(
                    "the origin answered {status}, which was not stored"
                )),
            }
        }
        Err(_) => Err(failure.unwrap_or_else(|| "origin error".to_owned())),
    })
}

/// An entry's refresh slot, freed when the refresh task ends.
struct Slot {
    state: Weak<CacheState>,
    key: CacheKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // When the middleware is being dropped, its Refresher aborts the tasks instead.
        if let Some(state) = self.state.upgrade() {
            state.refresher.in_flight().remove(&self.key);
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        for (_, task) in self.in_flight().drain() {
            task.abort();
        }
    }
}

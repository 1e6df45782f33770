//! Background refreshes for `stale-while-revalidate`: at most one per entry, each bounded as
//! a whole (head and body), aborted when the middleware (and every handle) is dropped. A
//! refresh that does not refresh its entry is warned about and counted: otherwise a stale
//! entry would be served forever in silence.
//!
//! Runs work it is given (the network module builds it); calls only leaf modules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use cache_core::CacheKey;
use http::StatusCode;
use tokio::task::AbortHandle;

use crate::stats::StatsCounters;
use crate::warnings::WarningLimiter;

/// Refreshes running at once, at most. A stale hit finding them all busy starts none (its
/// entry is served stale as ever, and a later stale hit refreshes it): an origin that holds
/// refreshes open for their whole bound, over many stale entries (one per credential or
/// variant), would otherwise hold a task and a connection for each.
pub(crate) const MAX_REFRESHES: usize = 64;

/// What a refresh came to: `Ok` with the status when the entry was rewritten, `Err` with why
/// not (redacted); `None` when the middleware is gone and nobody is to be told.
pub(crate) type RefreshOutcome = Option<Result<StatusCode, String>>;

/// The refreshes in flight, by entry key.
#[derive(Debug)]
pub(crate) struct Refresher {
    /// The client refreshes are sent with (not the middleware chain, which cannot outlive
    /// the request that started them).
    pub(crate) client: Arc<BackgroundClient>,
    /// The bound on one refresh, from sending the request to storing the answer.
    timeout: Duration,
    shared: Arc<Shared>,
}

/// The client background refreshes are sent with: the one the builder was given, or a default
/// one built by the first refresh, in its task. Building a client loads the system's root
/// certificates (milliseconds, and far more in a debug build), which a middleware that never
/// refreshes in the background, or every test building one, should not pay.
#[derive(Debug)]
pub(crate) struct BackgroundClient(OnceLock<reqwest::Client>);

impl BackgroundClient {
    /// The client, built now if this is the first refresh. A client that cannot be built (no
    /// TLS backend) fails this refresh, and the next one tries again.
    pub(crate) fn get(&self) -> Result<reqwest::Client, reqwest::Error> {
        if let Some(client) = self.0.get() {
            return Ok(client.clone());
        }
        let built = reqwest::Client::builder().build()?;
        Ok(self.0.get_or_init(|| built).clone())
    }
}

/// A refresh in flight: the number of its slot (a later refresh of the key has another), and
/// its task once spawned.
#[derive(Debug)]
struct Running {
    slot: u64,
    task: Option<AbortHandle>,
}

/// What the refresh tasks share with the refresher.
#[derive(Debug)]
struct Shared {
    in_flight: Mutex<HashMap<CacheKey, Running>>,
    next_slot: AtomicU64,
    /// Failed refreshes warn at most once a second (an origin that refuses every refresh
    /// would otherwise warn on every stale hit).
    warnings: WarningLimiter,
    stats: Arc<StatsCounters>,
}

impl Shared {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<CacheKey, Running>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a failed refresh and logs it: a warning at most once a second, otherwise a
    /// debug line.
    fn failed(&self, key: &CacheKey, url: &str, reason: &str) {
        self.stats.refresh_failure();
        let what = "background refresh failed; the stale entry stays";
        match self.warnings.allow() {
            Some(suppressed) => tracing::warn!(%key, url, reason, suppressed, "{what}"),
            None => tracing::debug!(%key, url, reason, "{what}"),
        }
    }
}

impl Refresher {
    /// Refreshes sent with `client`, or with a default client built at the first refresh.
    pub(crate) fn new(
        client: Option<reqwest::Client>,
        timeout: Duration,
        stats: Arc<StatsCounters>,
    ) -> Self {
        Self {
            client: Arc::new(BackgroundClient(
                client.map(OnceLock::from).unwrap_or_default(),
            )),
            timeout,
            shared: Arc::new(Shared {
                in_flight: Mutex::new(HashMap::new()),
                next_slot: AtomicU64::new(0),
                warnings: WarningLimiter::default(),
                stats,
            }),
        }
    }

    /// How many refreshes are running.
    pub(crate) fn pending(&self) -> usize {
        self.shared.in_flight().len()
    }

    /// True when the entry under `key` is being refreshed.
    pub(crate) fn is_running(&self, key: &CacheKey) -> bool {
        self.shared.in_flight().contains_key(key)
    }

    /// Runs `refresh` for the entry under `key` (stored for `url`, redacted), unless one is
    /// running for it or [`MAX_REFRESHES`] are running.
    pub(crate) fn start(
        &self,
        key: CacheKey,
        url: String,
        refresh: impl Future<Output = RefreshOutcome> + Send + 'static,
    ) {
        // The slot is taken here and moved into the task, so it is freed however the task
        // ends: a task dropped before it first ran (its runtime shutting down) included,
        // which would otherwise hold the slot, and the entry's refreshes, for good.
        let slot = {
            let mut in_flight = self.shared.in_flight();
            if in_flight.contains_key(&key) {
                return;
            }
            if in_flight.len() >= MAX_REFRESHES {
                tracing::debug!(%key, url, "{MAX_REFRESHES} refreshes running: this stale entry waits for a later hit");
                return;
            }
            let number = self.shared.next_slot.fetch_add(1, Ordering::Relaxed);
            in_flight.insert(
                key,
                Running {
                    slot: number,
                    task: None,
                },
            );
            Slot {
                shared: Arc::clone(&self.shared),
                key,
                number,
            }
        };
        let number = slot.number;
        let shared = Arc::clone(&self.shared);
        let timeout = self.timeout;
        // Its own span (the request's has ended by the time it runs), linked to the request's.
        let span = tracing::debug_span!(parent: None, "http_cache_refresh", key = %key);
        span.follows_from(tracing::Span::current());
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                // Released however the task ends, a panic included.
                let _slot = slot;
                // The whole exchange is bounded, body included: a body that never ends must
                // not hold the slot (and the stale entry) forever.
                let outcome = match tokio::time::timeout(timeout, refresh).await {
                    Ok(Some(outcome)) => outcome,
                    // The middleware is gone: nobody to tell.
                    Ok(None) => return,
                    Err(_) => Err(format!("no complete answer within {timeout:?}")),
                };
                match outcome {
                    Ok(status) => tracing::debug!(%status, "background refresh done"),
                    Err(reason) => shared.failed(&key, &url, &reason),
                }
            },
            span,
        ));
        // Spawned with the map unlocked (a task dropped at once frees its slot through it):
        // its handle joins its own slot, if the task has not ended already.
        let mut in_flight = self.shared.in_flight();
        if let Some(running) = in_flight.get_mut(&key).filter(|r| r.slot == number) {
            running.task = Some(task.abort_handle());
        }
    }
}

/// An entry's refresh slot, freed when the refresh task ends (or is dropped unrun).
struct Slot {
    shared: Arc<Shared>,
    key: CacheKey,
    number: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self.shared.in_flight();
        if in_flight
            .get(&self.key)
            .is_some_and(|r| r.slot == self.number)
        {
            in_flight.remove(&self.key);
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        // Taken out first: an aborted task's slot locks the map when it is dropped.
        let tasks: Vec<AbortHandle> = self
            .shared
            .in_flight()
            .drain()
            .filter_map(|(_, running)| running.task)
            .collect();
        for task in tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> CacheKey {
        CacheKey::from_digest(u128::from(n).to_le_bytes())
    }

    /// Refreshes that never end (an origin holding them open) fill the slots, and stale
    /// hits past them start none; a slot freed is taken again.
    #[tokio::test]
    async fn at_most_max_refreshes_run_at_once() {
        let refresher = Refresher::new(None, Duration::from_secs(60), Arc::default());
        for n in 0..MAX_REFRESHES as u32 * 2 {
            refresher.start(
                key(n),
                format!("https://h.test/{n}"),
                std::future::pending(),
            );
        }
        assert_eq!(refresher.pending(), MAX_REFRESHES);
        assert!(refresher.is_running(&key(0)));
        assert!(!refresher.is_running(&key(MAX_REFRESHES as u32)));
        let first = refresher.shared.in_flight()[&key(0)].task.clone().unwrap();
        first.abort();
        while refresher.is_running(&key(0)) {
            tokio::task::yield_now().await;
        }
        refresher.start(
            key(1_000),
            "https://h.test/late".into(),
            std::future::pending(),
        );
        assert!(refresher.is_running(&key(1_000)));
        assert_eq!(refresher.pending(), MAX_REFRESHES);
    }

    /// A refresh whose runtime shuts down before the task first runs frees its slot (it
    /// held it for good, and with it the entry's refreshes and one of the running ones).
    #[test]
    fn a_refresh_dropped_unrun_frees_its_slot() {
        let refresher = Refresher::new(None, Duration::from_secs(60), Arc::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            refresher.start(key(1), "https://h.test/1".into(), std::future::pending());
        });
        assert!(refresher.is_running(&key(1)), "spawned, not yet run");
        drop(runtime);
        assert_eq!(refresher.pending(), 0);
    }
}

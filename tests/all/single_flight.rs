//! Concurrent identical misses send one request to the origin.
//!
//! The origin's `/held` route holds every request until the test opens the gate, so the
//! tests know who is where: the leader waits at the origin while the others join it. No test
//! depends on how fast anything runs; a deadline only bounds how long a broken cache may hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::cache_core::codec::EntryCodec;
use reqwest_caching::cache_core::store::DecodedEntry;
use reqwest_caching::reqwest_middleware::RequestBuilder;
use reqwest_caching::{
    CacheKey, CacheMode, CacheRequestExt, CacheStore, EntryMeta, StoreError, StoredEntry,
};

use crate::support::{BACKENDS, Harness, send};

/// The followers' wait in the tests where the leader answers: far longer than the deadline.
const LONG_WAIT: Duration = Duration::from_secs(120);
/// How long followers may take to finish once the leader has answered, in a test where they
/// would otherwise wait [`LONG_WAIT`]. A deadline on the test, not a speed requirement.
const RELEASE_DEADLINE: Duration = Duration::from_secs(30);

/// A store that counts the cache reads that have finished, so a test knows when every
/// request has looked in the cache, missed, and gone on to join the flight.
#[derive(Debug)]
struct ReadCounting {
    inner: Arc<dyn CacheStore>,
    reads: Arc<AtomicUsize>,
}

impl ReadCounting {
    /// A wrapper for [`Harness::wrapping`] counting into `reads`.
    fn wrap(
        reads: &Arc<AtomicUsize>,
    ) -> impl FnOnce(Arc<dyn CacheStore>) -> Arc<dyn CacheStore> + use<> {
        let reads = Arc::clone(reads);
        move |inner| Arc::new(Self { inner, reads })
    }

    fn read<T>(&self, answer: T) -> T {
        self.reads.fetch_add(1, Ordering::SeqCst);
        answer
    }
}

/// Every call goes to the inner store, so each backend keeps its own behaviour.
#[async_trait]
impl CacheStore for ReadCounting {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.inner.put(entry).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        let answer = self.inner.get_decoded(key, codec).await;
        self.read(answer)
    }
    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        let answer = self.inner.get_decoded_now(key, codec)?;
        Some(self.read(answer))
    }
    fn suggested_timeout(&self) -> Duration {
        self.inner.suggested_timeout()
    }
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        self.inner.entries_for_url(url_group).await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.delete_expired(now).await
    }
    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.inner.set_expiry(key, expires_at).await
    }
}

/// Polls `condition` every 5 ms; fails the test, saying `what` was awaited, after 10 s.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let polled = tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    polled
        .await
        .unwrap_or_else(|_| panic!("not within 10 s: {what}"));
}

/// Sends each request on its own task.
fn spawn_all(
    requests: impl IntoIterator<Item = RequestBuilder>,
) -> Vec<tokio::task::JoinHandle<(String, reqwest_caching::CacheInfo)>> {
    requests
        .into_iter()
        .map(|request| tokio::spawn(send(request)))
        .collect()
}

/// Awaits every task, failing the test if they are not all done within `deadline`.
async fn finish_within<T>(
    deadline: Duration,
    tasks: Vec<tokio::task::JoinHandle<T>>,
    what: &str,
) -> Vec<T> {
    let all = futures_util::future::join_all(tasks);
    tokio::time::timeout(deadline, all)
        .await
        .unwrap_or_else(|_| panic!("{what}: not finished within {deadline:?}"))
        .into_iter()
        .map(|task| task.expect("request task"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_misses_reach_the_origin_once_and_the_followers_are_released_at_once() {
    const REQUESTS: usize = 50;
    for &backend in BACKENDS {
        let reads = Arc::new(AtomicUsize::new(0));
        let h = Harness::wrapping(backend, ReadCounting::wrap(&reads), |b| {
            b.single_flight(Some(LONG_WAIT))
        })
        .await;
        let tasks = spawn_all((0..REQUESTS).map(|_| h.get("/held/sf")));
        // Every request has missed (the leader is held at the origin, nothing is stored), so
        // every one but the leader is a follower now.
        wait_for(
            "every request looked in the cache, one reached the origin",
            || reads.load(Ordering::SeqCst) >= REQUESTS && h.origin.hits("/held/sf") >= 1,
        )
        .await;
        assert_eq!(
            h.origin.hits("/held/sf"),
            1,
            "{backend:?}: the others wait for the request in flight"
        );
        h.origin.open_gate();
        let responses = finish_within(
            RELEASE_DEADLINE,
            tasks,
            &format!(
                "{backend:?}: followers released when the leader answered (their wait is \
                 {LONG_WAIT:?})"
            ),
        )
        .await;
        let mut coalesced = 0;
        for (body, info) in responses {
            assert_eq!(body, "/held/sf #1", "{backend:?}: {info:?}");
            coalesced += usize::from(info.coalesced);
        }
        assert_eq!(
            coalesced,
            REQUESTS - 1,
            "{backend:?}: all but the leader answered from what it stored"
        );
        assert_eq!(
            h.origin.hits("/held/sf"),
            1,
            "{backend:?}: one request reached the origin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_wait_expires_goes_to_the_origin_itself() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.single_flight(Some(Duration::from_millis(100)))
        })
        .await;
        let leader = tokio::spawn(send(h.get("/held/expires")));
        wait_for("the leader at the origin", || {
            h.origin.hits("/held/expires") >= 1
        })
        .await;
        let follower = tokio::spawn(send(h.get("/held/expires")));
        // The leader is held until the gate opens: only the follower, done waiting, can
        // bring a second request to the origin.
        wait_for(
            &format!("{backend:?}: the follower at the origin once its 100 ms wait ran out"),
            || h.origin.hits("/held/expires") >= 2,
        )
        .await;
        h.origin.open_gate();
        let (body, info) = leader.await.unwrap();
        assert_eq!(body, "/held/expires #1", "{backend:?}: {info:?}");
        let (body, info) = follower.await.unwrap();
        assert_eq!(body, "/held/expires #2", "{backend:?}: {info:?}");
        assert!(!info.coalesced && !info.from_cache, "{backend:?}: {info:?}");
        assert_eq!(h.origin.hits("/held/expires"), 2, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_single_flight_off_every_request_reaches_the_origin() {
    const REQUESTS: usize = 10;
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.single_flight(None)).await;
        let tasks = spawn_all((0..REQUESTS).map(|_| h.get("/held/off")));
        // All of them at the origin at once, while the gate holds the first.
        wait_for(
            &format!("{backend:?}: all {REQUESTS} requests at the origin"),
            || h.origin.hits("/held/off") >= REQUESTS,
        )
        .await;
        h.origin.open_gate();
        let mut bodies = Vec::new();
        for (body, info) in finish_within(RELEASE_DEADLINE, tasks, "requests").await {
            assert!(!info.coalesced && !info.from_cache, "{backend:?}: {info:?}");
            bodies.push(body);
        }
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), REQUESTS, "{backend:?}: each its own response");
        assert_eq!(h.origin.hits("/held/off"), REQUESTS, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_responses_release_the_followers_to_the_network() {
    const REQUESTS: usize = 5;
    for &backend in BACKENDS {
        let reads = Arc::new(AtomicUsize::new(0));
        let h = Harness::wrapping(backend, ReadCounting::wrap(&reads), |b| {
            b.allowable_codes([201]).single_flight(Some(LONG_WAIT))
        })
        .await;
        let tasks = spawn_all((0..REQUESTS).map(|_| h.get("/held/nc")));
        wait_for(
            "every request looked in the cache, one reached the origin",
            || reads.load(Ordering::SeqCst) >= REQUESTS && h.origin.hits("/held/nc") >= 1,
        )
        .await;
        assert_eq!(
            h.origin.hits("/held/nc"),
            1,
            "{backend:?}: the others wait for the request in flight"
        );
        h.origin.open_gate();
        let responses = finish_within(
            RELEASE_DEADLINE,
            tasks,
            &format!(
                "{backend:?}: followers released when the leader answered (their wait is \
                 {LONG_WAIT:?})"
            ),
        )
        .await;
        for (_, info) in responses {
            assert!(!info.from_cache && !info.coalesced, "{backend:?}: {info:?}");
        }
        // 200 is not allowable here: nothing stored, so each follower fetched for itself.
        assert_eq!(h.origin.hits("/held/nc"), REQUESTS, "{backend:?}");
    }
}

/// Other modes, and other methods, on the same URL while a default GET is in flight: none
/// waits for it; each reaches the origin while the first is still held there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_modes_and_methods_are_never_merged() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.single_flight(Some(LONG_WAIT))).await;
        let url = h.origin.url("/held/m");
        let leader = tokio::spawn(send(h.get("/held/m")));
        wait_for("the default GET at the origin", || {
            h.origin.hits("/held/m") >= 1
        })
        .await;
        let others = spawn_all([
            h.get("/held/m").cache_mode(CacheMode::ForceRefresh),
            h.get("/held/m").cache_mode(CacheMode::Refresh),
            h.get("/held/m").cache_mode(CacheMode::Bypass),
            h.client.head(&url),
            h.client.post(&url),
        ]);
        wait_for(
            &format!("{backend:?}: the other 5 at the origin beside the held GET"),
            || h.origin.hits("/held/m") >= 6,
        )
        .await;
        h.origin.open_gate();
        let (_, info) = leader.await.unwrap();
        assert!(!info.coalesced, "{backend:?}");
        for (_, info) in finish_within(RELEASE_DEADLINE, others, "the others").await {
            assert!(!info.coalesced, "{backend:?}: {info:?}");
        }
        assert_eq!(h.origin.hits("/held/m"), 6, "{backend:?}");
    }
}

//! Lookups of varying responses from stores that make them wait: the variant the URL's last
//! Vary index selects is read beside the index (one round trip to a server, not two), and is
//! served only when the index read with it is that very write of the index.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::cache_core::codec::EntryCodec;
use reqwest_caching::cache_core::store::{DecodedEntry, get_decoded_apart};
use reqwest_caching::cache_core::{CacheKey, CacheStore, EntryMeta, StoreError, StoredEntry};
use reqwest_caching::{
    CacheMiddleware, CacheMiddlewareBuilder, CacheMode, CacheRequestExt, CacheResponseExt,
};

use crate::support::{BACKENDS, Backend, Harness, send};

/// Once a lookup has seen the URL's index, the next one reads index and variant at once;
/// without a guess (the first hit) they are read one after the other.
#[tokio::test]
async fn a_waiting_store_reads_the_guessed_variant_beside_the_index() {
    let (h, store) = WaitingReads::harness().await;
    let path = "/varying/guess";
    h.origin.set_vary("accept-language");
    let get = || send(h.get(path).header("accept-language", "en"));

    let (body, info) = get().await;
    assert!(info.stored && !info.from_cache, "{info:?}");
    store.take_most_in_flight();
    let (first_hit, info) = get().await;
    assert!(info.from_cache, "{info:?}");
    assert_eq!(first_hit, body);
    assert_eq!(
        store.take_most_in_flight(),
        1,
        "no guess yet: index, then variant"
    );
    assert_eq!(store.pairs.swap(0, Ordering::SeqCst), 0);

    for _ in 0..3 {
        let (hit, info) = get().await;
        assert!(info.from_cache, "{info:?}");
        assert_eq!(hit, body);
        assert_eq!(
            store.take_most_in_flight(),
            2,
            "index and guessed variant at once"
        );
        assert_eq!(
            store.pairs.swap(0, Ordering::SeqCst),
            1,
            "in one store call (with a server, one round trip)"
        );
    }
    // Another language: the guess (from the same index) names its variant, not yet stored.
    let (other, info) = send(h.get(path).header("accept-language", "fr")).await;
    assert!(!info.from_cache && info.stored, "{info:?}");
    assert_ne!(other, body);
    assert_eq!(h.origin.hits(path), 2);
}

/// A guess made from an index since replaced never serves: the variant it names, even when it
/// is still stored (its removal failed, say), is not the one the current index selects. The
/// server stores and the store whose reads wait take the guess; the in-process stores read
/// one key after the other, and are here as the behaviour to match.
#[tokio::test]
async fn a_stale_guess_never_serves_a_variant_the_index_no_longer_selects() {
    let fresh = |b: CacheMiddlewareBuilder| b.expire_after(Duration::from_secs(60));
    // Every store, and one whose reads always wait (the in-process stores answer at once).
    for &backend in BACKENDS {
        stale_guess(Harness::with(backend, fresh).await, &format!("{backend:?}")).await;
    }
    stale_guess(WaitingReads::harness().await.0, "reads that wait").await;
}

async fn stale_guess(h: Harness, label: &str) {
    let store = Arc::clone(h.handle.store());
    let state = |what: &str| format!("{label}: {what}");
    let path = "/varying/stale-guess";
    let request = || {
        h.get(path)
            .header("accept-language", "en")
            .header("accept-encoding", "gzip")
    };
    h.origin.set_vary("accept-language");
    let (old, _) = send(request()).await;
    let (hit, info) = send(request()).await;
    assert!(
        info.from_cache && hit == old,
        "{}",
        state("the index is read")
    );

    // Another instance sharing the store learns the URL now varies on another header:
    // it replaces the index (removing the old variants); the old variant is put back, as
    // a removal that failed would leave it.
    let old_variant_key = info.key.expect("the variant's key");
    let old_variant = store
        .get(&old_variant_key)
        .await
        .unwrap()
        .expect("old variant");
    assert!(
        old_variant.meta.variant_of.is_some(),
        "{}",
        state("a variant was served")
    );
    let other = CacheMiddleware::builder()
        .shared_store(Arc::clone(&store))
        .expire_after(Duration::from_secs(60))
        .build()
        .unwrap()
        .into_client(reqwest::Client::new());
    h.origin.set_vary("accept-encoding");
    let (new, info) = send(
        other
            .get(h.origin.url(path))
            .header("accept-language", "en")
            .header("accept-encoding", "gzip")
            .cache_mode(CacheMode::ForceRefresh),
    )
    .await;
    assert!(info.stored && new != old, "{}", state("replaced"));
    assert!(
        store.get(&old_variant_key).await.unwrap().is_none(),
        "{}",
        state("the old variant went with its index")
    );
    store.put(old_variant).await.unwrap();

    // This instance still guesses from the old index: the orphan it names is not served.
    let hits = h.origin.hits(path);
    for _ in 0..2 {
        let response = request().send().await.unwrap();
        assert!(response.from_cache(), "{}", state("served from the cache"));
        assert_eq!(
            response.text().await.unwrap(),
            new,
            "{}",
            state("the variant of the current index")
        );
    }
    assert_eq!(h.origin.hits(path), hits, "{}", state("no fetch"));
}

/// A store whose every read makes its lookup wait, as a server's round trip does. It counts
/// the reads in flight at once, logs the keys read, can hold the next read of one key until
/// released (saying when it holds it), and can fail the next read of one key.
#[derive(Debug)]
struct WaitingReads {
    inner: Arc<dyn CacheStore>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// A key whose next read is held until released.
    hold: std::sync::Mutex<Option<CacheKey>>,
    holding: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// Keys read so far, in the order the reads ended.
    read: std::sync::Mutex<Vec<CacheKey>>,
    /// A key whose next read fails.
    fail: std::sync::Mutex<Option<CacheKey>>,
    /// Calls of `get_decoded_pair`.
    pairs: AtomicUsize,
}

impl WaitingReads {
    fn new(inner: Arc<dyn CacheStore>) -> Self {
        Self {
            inner,
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            hold: std::sync::Mutex::new(None),
            holding: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
            read: std::sync::Mutex::new(Vec::new()),
            fail: std::sync::Mutex::new(None),
            pairs: AtomicUsize::new(0),
        }
    }

    /// A read: held, failed or answered as armed, always after a short wait.
    async fn read_waiting(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        if disarms(&self.hold, key) {
            self.holding.notify_one();
            self.release.notified().await;
        }
        // Every read makes its lookup wait, as a server's does (a yield would not: the
        // middleware polls a read again at once before it waits).
        tokio::time::sleep(Duration::from_millis(2)).await;
        if disarms(&self.fail, key) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "read failed",
            )));
        }
        let entry = self.inner.get(key).await;
        self.read.lock().unwrap().push(*key);
        entry
    }

    /// The most reads in flight at once since the last call.
    fn take_most_in_flight(&self) -> usize {
        self.most_in_flight.swap(0, Ordering::SeqCst)
    }

    /// A harness whose store is wrapped in a `WaitingReads` (returned too), entries fresh a minute.
    async fn harness() -> (Harness, Arc<WaitingReads>) {
        Self::harness_with(|b| b).await
    }

    /// [`WaitingReads::harness`], with more settings.
    async fn harness_with(
        configure: impl FnOnce(CacheMiddlewareBuilder) -> CacheMiddlewareBuilder,
    ) -> (Harness, Arc<WaitingReads>) {
        let held = std::sync::OnceLock::<Arc<WaitingReads>>::new();
        let h = Harness::wrapping(
            Backend::Memory,
            |store| {
                let wrapped = Arc::new(WaitingReads::new(store));
                let _ = held.set(Arc::clone(&wrapped));
                wrapped
            },
            |b| configure(b.expire_after(Duration::from_secs(60))),
        )
        .await;
        let held = Arc::clone(held.get().expect("the harness wrapped its store"));
        (h, held)
    }
}

/// True (and disarmed) when `armed` names `key`.
fn disarms(armed: &std::sync::Mutex<Option<CacheKey>>, key: &CacheKey) -> bool {
    let mut armed = armed.lock().unwrap();
    let named = armed.as_ref() == Some(key);
    if named {
        *armed = None;
    }
    named
}

#[async_trait]
impl CacheStore for WaitingReads {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Counted out on drop too (a read its call's time bound cancelled).
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _in_flight = InFlight(&self.in_flight);
        self.read_waiting(key).await
    }
    /// Counted, then both reads at once, as the default does.
    async fn get_decoded_pair(
        &self,
        first: &CacheKey,
        second: &CacheKey,
        codec: &EntryCodec,
    ) -> [Result<DecodedEntry, StoreError>; 2] {
        self.pairs.fetch_add(1, Ordering::SeqCst);
        get_decoded_apart(self, first, second, codec).await
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.inner.put(entry).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        self.inner.entries_for_url(url_group).await
    }
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
}

/// The guessed variant is read before the index (a store may run the two reads in either
/// order); meanwhile the URL is invalidated and stored again with the same Vary list. The
/// index then read has the guessed list and generation, but is another write: the variant
/// read before it belongs to the index that was deleted, and is not served.
#[tokio::test]
async fn a_variant_read_before_an_index_written_anew_is_not_served() {
    let (h, held) = WaitingReads::harness().await;
    let path = "/varying/written-anew";
    let url = h.origin.url(path);
    h.origin.set_vary("accept-language");
    let get = |client: &reqwest_caching::reqwest_middleware::ClientWithMiddleware| {
        client.get(&url).header("accept-language", "en")
    };
    let (old, _) = send(get(&h.client)).await;
    let (hit, info) = send(get(&h.client)).await;
    assert!(info.from_cache && hit == old, "{info:?}");
    let variant_key = info.key.unwrap();
    let variant = h.handle.store().get(&variant_key).await.unwrap();
    let url_key = variant.unwrap().meta.variant_of.expect("a variant");

    // This lookup reads the guessed variant at once and waits for the index.
    *held.hold.lock().unwrap() = Some(url_key);
    let client = h.client.clone();
    let waiting = tokio::spawn({
        let request = get(&client);
        async move { send(request).await }
    });
    held.holding.notified().await;
    held.read.lock().unwrap().clear();
    let variant_read = async {
        while !held.read.lock().unwrap().contains(&variant_key) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), variant_read)
        .await
        .expect("the guessed variant is read while the index read is held");
    // Meanwhile the URL is invalidated and stored again, a little later, varying as before.
    send(h.client.post(&url)).await;
    h.clock.advance(Duration::from_secs(1));
    let (new, info) = send(get(&h.client).cache_mode(CacheMode::ForceRefresh)).await;
    assert!(info.stored && new != old, "{info:?}");
    held.release.notify_one();

    let (served, info) = waiting.await.unwrap();
    assert!(info.from_cache, "{info:?}");
    assert_eq!(
        served, new,
        "the variant of the index read, not the one deleted"
    );
}

/// A guessed variant whose read failed is read again after the index, as it would have been
/// without a guess: the hit is served, not fetched again.
#[tokio::test]
async fn a_failed_guessed_read_is_read_again() {
    let (h, held) = WaitingReads::harness().await;
    let path = "/varying/failed-guess";
    h.origin.set_vary("accept-language");
    let get = || send(h.get(path).header("accept-language", "en"));
    let (body, _) = get().await;
    let (_, info) = get().await;
    assert!(info.from_cache, "{info:?}");
    *held.fail.lock().unwrap() = info.key;
    let (hit, info) = get().await;
    assert!(info.from_cache, "{info:?}");
    assert_eq!(hit, body);
    assert!(
        held.fail.lock().unwrap().is_none(),
        "the guessed read failed"
    );
    assert_eq!(h.origin.hits(path), 1);
}

/// An open breaker answers a lookup at once, as a miss, without touching the URL's guess: once
/// the store is back, the next hit reads index and variant in one call again (had the lookup
/// gone to the store, its reads refused, it would have forgotten the guess, and paid two
/// round trips one after the other once more).
#[tokio::test]
async fn an_open_breaker_keeps_the_guesses() {
    let backoff = Duration::from_secs(1);
    let (h, held) =
        WaitingReads::harness_with(|b| b.store_breaker(1, backoff, Duration::from_secs(10))).await;
    let path = "/varying/breaker";
    h.origin.set_vary("accept-language");
    let get = || send(h.get(path).header("accept-language", "en"));
    let (body, _) = get().await;
    for _ in 0..2 {
        let (hit, info) = get().await;
        assert!(info.from_cache && hit == body, "{info:?}");
    }
    assert_eq!(
        held.pairs.swap(0, Ordering::SeqCst),
        1,
        "the guess is taken"
    );

    // Another URL's read fails: the breaker (one failure) opens.
    let (_, info) = send(h.get("/plain/breaker")).await;
    *held.fail.lock().unwrap() = info.key;
    let (_, info) = send(h.get("/plain/breaker")).await;
    assert!(!info.from_cache, "{info:?}");
    assert!(held.fail.lock().unwrap().is_none(), "the read failed");
    let skipped = h.handle.stats().skipped;
    let (_, info) = get().await;
    assert!(
        !info.from_cache,
        "the store is not asked while the breaker is open"
    );
    assert!(h.handle.stats().skipped > skipped, "the skip is counted");
    assert_eq!(held.pairs.swap(0, Ordering::SeqCst), 0);

    h.clock.advance(backoff);
    let (hit, info) = get().await;
    assert!(info.from_cache && hit == body, "{info:?}");
    assert_eq!(
        held.pairs.swap(0, Ordering::SeqCst),
        1,
        "the first hit after the breaker closed reads index and variant in one call"
    );
    assert_eq!(h.origin.hits(path), 2);
}

/// One read of a pair that fails for a reason that may pass counts with the breaker, as the
/// call it replaced did: with a breaker that opens on one failure, the variant is not read
/// again after the index, and the request goes to the origin.
#[tokio::test]
async fn a_pair_with_one_failed_read_counts_with_the_breaker() {
    let (h, held) = WaitingReads::harness_with(|b| {
        b.store_breaker(1, Duration::from_secs(1), Duration::from_secs(10))
    })
    .await;
    let path = "/varying/breaker-pair";
    h.origin.set_vary("accept-language");
    let get = || send(h.get(path).header("accept-language", "en"));
    get().await;
    let (_, info) = get().await;
    assert!(info.from_cache, "{info:?}");
    *held.fail.lock().unwrap() = info.key;
    let skipped = h.handle.stats().skipped;
    let (_, info) = get().await;
    assert!(
        held.fail.lock().unwrap().is_none(),
        "the guessed read failed"
    );
    assert_eq!(held.pairs.load(Ordering::SeqCst), 1);
    assert!(!info.from_cache, "{info:?}");
    assert!(h.handle.stats().skipped > skipped, "the breaker opened");
    assert_eq!(h.origin.hits(path), 2);
}

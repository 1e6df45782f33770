//! Stores that hang or fail in ways the other tests' stores do not: the handle's bulk
//! operations stay bounded, and a failing synchronous read sends the request to the network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::cache_core::codec::EntryCodec;
use reqwest_caching::cache_core::store::DecodedEntry;
use reqwest_caching::{
    CacheKey, CacheMiddleware, CacheResponseExt, CacheStore, EntryMeta, Error, Expiration,
    MemoryStore, StoreError, StoredEntry,
};

use reqwest_caching::cache_core::testing::WrittenAfterRead;

use crate::origin::Origin;
use crate::support::{Backend, Harness, send};

/// A store whose every call waits forever, as a server that accepted the connection and
/// then stopped answering.
#[derive(Debug)]
struct HangingStore;

async fn hang<T>() -> Result<T, StoreError> {
    std::future::pending().await
}

#[async_trait]
impl CacheStore for HangingStore {
    async fn get(&self, _: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        hang().await
    }
    async fn put(&self, _: StoredEntry) -> Result<(), StoreError> {
        hang().await
    }
    async fn delete(&self, _: &CacheKey) -> Result<bool, StoreError> {
        hang().await
    }
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        Box::pin(futures_util::stream::once(hang()))
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        hang().await
    }
    async fn count(&self) -> Result<u64, StoreError> {
        hang().await
    }
    async fn delete_expired(&self, _: SystemTime) -> Result<u64, StoreError> {
        hang().await
    }
    async fn set_expiry(&self, _: &CacheKey, _: Option<SystemTime>) -> Result<bool, StoreError> {
        hang().await
    }
    async fn entries_for_url(&self, _: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        hang().await
    }
}

fn is_store_error<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(
        result,
        Err(Error::Store(
            StoreError::Timeout(_) | StoreError::Unavailable { .. }
        ))
    )
}

#[tokio::test]
async fn every_handle_operation_is_bounded_against_a_hanging_store() {
    // A clock that stands still: the breaker opened by the timeouts stays open however long
    // a loaded machine takes between the calls (its back-off is on this clock).
    let cache = CacheMiddleware::builder()
        .store(HangingStore)
        .store_timeout(Duration::from_millis(20))
        .clock(std::sync::Arc::new(
            reqwest_caching::ManualClock::starting_now(),
        ))
        .build()
        .unwrap();
    let handle = cache.handle();
    let url = "http://example.test/a";
    let key = handle.key_for(&http::Method::GET, url).unwrap();
    let all = async {
        assert!(is_store_error(handle.count().await), "count");
        assert!(is_store_error(handle.clear().await), "clear");
        assert!(
            is_store_error(handle.delete_expired().await),
            "delete_expired"
        );
        assert!(
            is_store_error(handle.delete_older_than(Duration::ZERO).await),
            "delete_older_than"
        );
        assert!(
            is_store_error(handle.reset_expiration(Expiration::Never).await),
            "reset_expiration"
        );
        assert!(is_store_error(handle.urls().await), "urls");
        assert!(
            is_store_error(handle.keys_for_url(url).await),
            "keys_for_url"
        );
        assert!(
            is_store_error(handle.contains_url(url).await),
            "contains_url"
        );
        assert!(is_store_error(handle.get_url(url).await), "get_url");
        assert!(is_store_error(handle.delete_url(url).await), "delete_url");
        assert!(is_store_error(handle.get(&key).await), "get");
        assert!(is_store_error(handle.delete(&key).await), "delete");
    };
    // A deadline on the test, far above the bounds (20 ms per call, 240 ms for the calls
    // over every entry): without them the first operation never returns.
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("a handle operation hung");
    // After repeated timeouts the breaker is open: the next call is refused at once.
    let refused = handle.count().await;
    let open = match &refused {
        Err(Error::Store(error)) => std::error::Error::source(error)
            .is_some_and(|s| s.downcast_ref::<reqwest_caching::CircuitOpen>().is_some()),
        _ => false,
    };
    assert!(open, "{refused:?}");
}

/// A memory store whose synchronous read fails, as a store whose in-process read hits an I/O
/// error would; the awaited read is counted and must not be needed.
#[derive(Debug, Default)]
struct FailingQuickReads {
    inner: MemoryStore,
    awaited_reads: AtomicU64,
}

#[async_trait]
impl CacheStore for FailingQuickReads {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.awaited_reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    fn get_decoded_now(
        &self,
        _: &CacheKey,
        _: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        Some(Err(StoreError::unavailable(std::io::Error::other(
            "read failed",
        ))))
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
}

#[tokio::test]
async fn a_failing_synchronous_read_goes_to_the_network_and_is_counted() {
    let store = Arc::new(FailingQuickReads::default());
    let cache = CacheMiddleware::builder()
        .shared_store(Arc::clone(&store) as _)
        .build()
        .unwrap();
    let handle = cache.handle();
    let client = cache.into_client(reqwest::Client::new());
    let origin = Origin::start().await;
    for n in 1..=2 {
        let response = client.get(origin.url("/q")).send().await.unwrap();
        assert!(!response.from_cache(), "the read failed: no hit");
        assert_eq!(response.text().await.unwrap(), format!("/q #{n}"));
    }
    assert_eq!(origin.hits("/q"), 2);
    let stats = handle.stats();
    assert_eq!(stats.errors, 2, "each failed read counted: {stats:?}");
    assert_eq!(
        store.awaited_reads.load(Ordering::Relaxed),
        0,
        "the failed synchronous read is the answer, not a retry"
    );
    assert_eq!(
        handle.count().await.unwrap(),
        1,
        "the writes still went through"
    );
}

/// A harness over a memory store wrapped in [`WrittenAfterRead`]: the harness, the wrapper
/// (to arm) and the store under it (to write and read raw).
async fn racing_harness(
    configure: impl FnOnce(
        reqwest_caching::CacheMiddlewareBuilder,
    ) -> reqwest_caching::CacheMiddlewareBuilder,
) -> (Harness, Arc<WrittenAfterRead>, Arc<dyn CacheStore>) {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let held = Arc::clone(&slot);
    let wrap = move |inner: Arc<dyn CacheStore>| {
        let racing = Arc::new(WrittenAfterRead::new(Arc::clone(&inner)));
        *held.lock().unwrap() = Some((Arc::clone(&racing), inner));
        racing as Arc<dyn CacheStore>
    };
    let h = Harness::wrapping(Backend::Memory, wrap, configure).await;
    let (racing, inner) = slot.lock().unwrap().take().expect("the store was wrapped");
    (h, racing, inner)
}

/// A request that reads an unreadable entry deletes that entry, not a valid one another
/// client wrote under the key between the read and the delete; so does one that reads a
/// Vary variant beside its index (the store makes lookups wait: both are read at once).
#[tokio::test]
async fn an_unreadable_entry_rewritten_after_the_read_is_kept() {
    for path in [
        "/custom/raced",
        "/custom/raced-variant?h=Vary:accept-language",
    ] {
        an_unreadable_entry_at_rewritten_after_the_read_is_kept(path).await;
    }
}

async fn an_unreadable_entry_at_rewritten_after_the_read_is_kept(path: &str) {
    let (h, racing, inner) = racing_harness(|b| b).await;
    let get = || h.get(path).header("accept-language", "en");
    let (_, info) = send(get()).await;
    let key = info.key.expect("stored");
    // A hit: the lookup's next read of a variant is a guess, read beside the index.
    assert!(send(get()).await.1.from_cache, "{path}");
    let good = inner.get(&key).await.unwrap().expect("stored");
    let garbage = StoredEntry::new(good.meta.clone(), bytes::Bytes::from_static(b"garbage"));
    inner.put(garbage).await.unwrap();
    let mut rewritten = good;
    rewritten.meta.created_at += Duration::from_secs(5);
    racing.arm(rewritten.clone());
    // The origin's answer now is not stored: what the key holds after is what the race left.
    h.origin.override_status(Some(503));
    send(get()).await;
    assert!(racing.armed().is_none(), "{path}: the entry was read");
    assert_eq!(
        inner.get(&key).await.unwrap(),
        Some(rewritten),
        "{path}: the valid entry written after the read was deleted"
    );
}

/// A racing harness holding `path`'s entry, stale, and the entry another client is to write
/// under its key (created five seconds later), for arming.
async fn stale_with_a_rewrite(
    path: &str,
) -> (
    Harness,
    Arc<WrittenAfterRead>,
    Arc<dyn CacheStore>,
    reqwest_caching::CacheKey,
    StoredEntry,
) {
    let (h, racing, inner) = racing_harness(|b| b.expire_after(Duration::from_secs(10))).await;
    let (_, info) = h.fetch(path).await;
    let key = info.key.expect("stored");
    h.clock.advance(Duration::from_secs(20));
    let mut rewritten = inner.get(&key).await.unwrap().expect("stored");
    rewritten.meta.created_at += Duration::from_secs(5);
    (h, racing, inner, key, rewritten)
}

/// A `304` renews the entry it validated, not one another client wrote under the key while
/// the request was out: that newer entry stays as written (renewed, the old body would have
/// been put back over it).
#[tokio::test]
async fn a_304_does_not_renew_over_an_entry_written_meanwhile() {
    let path = "/etag/renewed-meanwhile";
    let (h, racing, inner, key, rewritten) = stale_with_a_rewrite(path).await;
    racing.arm(rewritten.clone());
    let (_, info) = send(h.get(path)).await;
    assert!(info.revalidated && !info.stored, "{info:?}");
    assert!(racing.armed().is_none(), "the entry was read");
    assert_eq!(inner.get(&key).await.unwrap(), Some(rewritten));
}

/// Nor one written between the renewal's check and its write: the check and the write are
/// one store call (`put_if_created`). Here the other client's write lands after the lookup's
/// read and the read a separate check would make, that is just before the renewal writes.
#[tokio::test]
async fn a_304_does_not_renew_over_an_entry_written_just_before_the_renewal() {
    let path = "/etag/renewed-just-before";
    let (h, racing, inner, key, rewritten) = stale_with_a_rewrite(path).await;
    racing.arm_after_reads(rewritten.clone(), 1);
    let (_, info) = send(h.get(path)).await;
    assert!(info.revalidated, "{info:?}");
    assert!(racing.armed().is_none(), "the other client's write landed");
    assert!(!info.stored, "{info:?}");
    assert_eq!(inner.get(&key).await.unwrap(), Some(rewritten));
    assert_eq!(h.origin.hits(path), 2, "one fetch, one revalidation");
}

/// A store whose deletes and lookups by URL fail while `failing` is set (as a server that is
/// back for reads but refuses writes, or a moment of an outage), everything else passed on.
#[derive(Debug)]
struct FailingInvalidations {
    inner: Arc<dyn CacheStore>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// Stores entries without their URL group, as versions before URL groups did.
    groupless: bool,
}

impl FailingInvalidations {
    fn refused<T>(&self) -> Option<Result<T, StoreError>> {
        self.failing
            .load(Ordering::SeqCst)
            .then(|| Err(StoreError::backend("refused by the test")))
    }
}

#[async_trait]
impl CacheStore for FailingInvalidations {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, mut entry: StoredEntry) -> Result<(), StoreError> {
        if self.groupless {
            entry.meta.url_group = None;
        }
        self.inner.put(entry).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        match self.refused() {
            Some(refused) => refused,
            None => self.inner.delete(key).await,
        }
    }
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        match self.refused() {
            Some(refused) => refused,
            None => self.inner.entries_for_url(url_group).await,
        }
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
}

/// A harness over a memory store whose deletes and URL lookups fail while the returned
/// switch is on, following `Cache-Control`.
async fn failing_invalidations() -> (Harness, Arc<std::sync::atomic::AtomicBool>) {
    failing_invalidations_storing(false).await
}

/// [`failing_invalidations`], the store keeping entries without their URL group when
/// `groupless`.
async fn failing_invalidations_storing(
    groupless: bool,
) -> (Harness, Arc<std::sync::atomic::AtomicBool>) {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let switch = Arc::clone(&failing);
    let wrap = |inner| {
        Arc::new(FailingInvalidations {
            inner,
            failing: switch,
            groupless,
        }) as _
    };
    let harness = Harness::wrapping(Backend::Memory, wrap, |b| b.cache_control(true)).await;
    (harness, failing)
}

/// What a `GET` of `url` gets after its response was stored and served, then a `POST` to it
/// while the store refused its invalidation.
async fn get_after_a_failed_invalidation(
    h: &Harness,
    failing: &std::sync::atomic::AtomicBool,
    url: &str,
) -> reqwest_caching::CacheInfo {
    assert!(send(h.client.get(url)).await.1.stored);
    assert!(send(h.client.get(url)).await.1.from_cache);
    failing.store(true, Ordering::SeqCst);
    send(h.client.post(url).body("new")).await;
    failing.store(false, Ordering::SeqCst);
    send(h.client.get(url)).await.1
}

/// A `POST` whose invalidation the store did not take (its deletes failed) leaves the URL's
/// old response in the store, and it is not served from then on: the next `GET` goes to the
/// origin, and the answer stored then is served. The old one was served as fresh once the
/// store took deletes again: the client read what it had just changed, as it was before.
/// An invalidation the store takes whole releases the URL: an answer stored at the very
/// time of the failure is served after it.
#[tokio::test]
async fn a_response_an_unfinished_invalidation_left_is_not_served() {
    let (h, failing) = failing_invalidations().await;
    let url = h.origin.url("/item/changed");
    let after = get_after_a_failed_invalidation(&h, &failing, &url).await;
    assert!(
        !after.from_cache,
        "the response from before the POST was served"
    );
    assert_eq!(h.origin.hits("/item/changed"), 3, "two GETs and the POST");
    // Stored at the time of the failure: held back too, until a whole invalidation.
    assert!(!send(h.client.get(&url)).await.1.from_cache);
    send(h.client.post(&url).body("newer")).await;
    assert!(send(h.client.get(&url)).await.1.stored);
    assert!(
        send(h.client.get(&url)).await.1.from_cache,
        "the URL was not released"
    );
    // A newer answer is served without a release.
    failing.store(true, Ordering::SeqCst);
    send(h.client.post(&url).body("newest")).await;
    failing.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::from_secs(1));
    assert!(send(h.client.get(&url)).await.1.stored);
    assert!(send(h.client.get(&url)).await.1.from_cache);
}

/// An entry written before URL groups existed (it carries none) is held back as well, by
/// the group of the URL it is found for: it was served again after the failed invalidation.
#[tokio::test]
async fn an_entry_without_a_url_group_is_held_back_too() {
    let (h, failing) = failing_invalidations_storing(true).await;
    let url = h.origin.url("/item/old-format");
    let after = get_after_a_failed_invalidation(&h, &failing, &url).await;
    assert!(
        !after.from_cache,
        "the group-less response from before the POST was served"
    );
    assert_eq!(
        h.origin.hits("/item/old-format"),
        3,
        "two GETs and the POST"
    );
}

/// A revalidation still out when an unsafe request's invalidation failed does not renew the
/// entry it revalidates when its `304` comes: renewed, the old response would be new again
/// and served, as the invalidation had not happened.
#[tokio::test]
async fn a_304_after_an_unfinished_invalidation_renews_nothing() {
    let (h, failing) = failing_invalidations().await;
    let url = h.origin.url("/gated-etag/r");
    assert!(send(h.client.get(&url)).await.1.stored);
    h.clock.advance(Duration::from_secs(61));
    let revalidating = {
        let request = h.client.get(&url);
        tokio::spawn(async move { send(request).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.origin.hits("/gated-etag/r") < 2 {
        assert!(std::time::Instant::now() < deadline, "no revalidation");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    failing.store(true, Ordering::SeqCst);
    send(h.client.post(&url).body("new")).await;
    failing.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::from_secs(1));
    h.origin.open_gate();
    let revalidated = revalidating.await.unwrap();
    assert!(!revalidated.1.stored, "renewed after the invalidation");
    let after = send(h.client.get(&url)).await;
    assert!(
        !after.1.from_cache,
        "the revalidated response from before the POST was served"
    );
}

/// A `POST` whose caller stops waiting while its invalidation is under way (a time limit, a
/// `select!`, a server dropping the handler whose client left) still invalidates: the
/// origin took the change, so the URL's old response is neither kept in the store nor
/// served. The dropped future took the listing and the deletes with it, and nothing held the
/// old response back: it was served as fresh.
#[tokio::test]
async fn an_invalidation_whose_caller_stops_waiting_still_ends() {
    let gated = Arc::new(std::sync::OnceLock::new());
    let wrap = {
        let gated = Arc::clone(&gated);
        move |inner| {
            let store = Arc::new(crate::gated::Gated::new(inner));
            gated.set(Arc::clone(&store)).unwrap();
            store as Arc<dyn CacheStore>
        }
    };
    let h = Harness::wrapping(Backend::Memory, wrap, |b| b.cache_control(true)).await;
    let gated = gated.get().unwrap();
    let url = h.origin.url("/item/dropped");
    assert!(send(h.client.get(&url)).await.1.stored);
    assert!(send(h.client.get(&url)).await.1.from_cache);
    let mut listings = gated.gate_listings();
    let post = {
        let request = h.client.post(&url).body("new");
        tokio::spawn(async move { request.send().await })
    };
    let release = tokio::time::timeout(Duration::from_secs(10), listings.recv())
        .await
        .expect("the POST's invalidation lists the URL's entries")
        .expect("a listing");
    post.abort();
    assert!(post.await.unwrap_err().is_cancelled());
    // Listings from now on go straight through.
    drop(listings);
    // Not received when the listing went with the caller's future.
    let _ = release.send(());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.handle.count().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the invalidation stopped with its caller: the old response is still stored"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = send(h.client.get(&url)).await.1;
    assert!(
        !after.from_cache,
        "the response from before the POST was served"
    );
    assert_eq!(h.origin.hits("/item/dropped"), 3, "two GETs and the POST");
}

/// A store whose writes land `delay` after they are made, whoever waits for them: a write
/// queued behind a busy SQLite writer, or a remote store's steps run to their end after a
/// timeout.
#[derive(Debug)]
struct LateWrites {
    inner: Arc<MemoryStore>,
    delay: Duration,
}

#[async_trait]
impl CacheStore for LateWrites {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        let (inner, delay) = (Arc::clone(&self.inner), self.delay);
        let landing = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.put(entry).await
        });
        landing.await.map_err(StoreError::backend)?
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
}

/// A client over a [`LateWrites`] memory store whose writes land 500 ms after they are made,
/// with a store timeout of 300 ms: each write times out, then lands. Its handle, and the
/// memory store within.
fn late_writing_client(
    strict: bool,
) -> (
    reqwest_middleware::ClientWithMiddleware,
    reqwest_caching::CacheHandle,
    Arc<MemoryStore>,
) {
    let memory = Arc::new(MemoryStore::new());
    let store = LateWrites {
        inner: Arc::clone(&memory),
        delay: Duration::from_millis(500),
    };
    let cache = CacheMiddleware::builder()
        .store(store)
        .strict_rfc9111(strict)
        .store_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let handle = cache.handle();
    (cache.into_client(reqwest::Client::new()), handle, memory)
}

/// A write that timed out may still land; landing after a `POST` invalidated its URL (whose
/// listing could not see it yet), it served the response the `POST` changed as fresh. The
/// invalidation holds the URL back while such a write may land; so does the write's end, when
/// the `POST` came while it was under way.
#[tokio::test]
async fn a_write_landing_after_its_timeout_and_an_invalidation_is_not_served() {
    for post_while_writing in [false, true] {
        let origin = Origin::start().await;
        let (client, _, memory) = late_writing_client(false);
        let url = origin.url("/doc");
        let first = tokio::spawn(send(client.get(&url)));
        if post_while_writing {
            tokio::time::sleep(Duration::from_millis(100)).await;
            send(client.post(&url).body("change")).await;
        }
        let (_, info) = first.await.unwrap();
        assert!(!info.stored, "the write timed out: {info:?}");
        if !post_while_writing {
            send(client.post(&url).body("change")).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(memory.count().await.unwrap(), 1, "the write landed");
        let (_, after) = send(client.get(&url)).await;
        assert!(
            !after.from_cache,
            "post while writing: {post_while_writing}: the response from before the POST was served"
        );
        assert_eq!(origin.hits("/doc"), 3, "GET, POST, GET");
    }
}

/// The same for a response stored for the URL a redirect reached (strict mode stores it for
/// that URL alone): an unsafe request to that URL while the write is under way holds it
/// back once the write has failed. Only the request's URL was held back before.
#[tokio::test]
async fn a_late_write_for_a_redirect_s_final_url_is_not_served_after_its_invalidation() {
    let origin = Origin::start().await;
    let (client, _, memory) = late_writing_client(true);
    let first = tokio::spawn(send(client.get(origin.url("/moved/late"))));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let target = origin.url(&format!(
        "/custom/late?{}",
        crate::origin::MOVED_TARGET_QUERY
    ));
    send(client.post(&target).body("change")).await;
    let (_, info) = first.await.unwrap();
    assert!(!info.stored, "the write timed out: {info:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(memory.count().await.unwrap(), 1, "the write landed");
    let (_, after) = send(client.get(&target)).await;
    assert!(
        !after.from_cache,
        "the response from before the POST was served"
    );
}

/// The handle's deletes (`delete_url`, `delete_request`, `clear`) hold a URL back as an invalidation does
/// while a write of it whose outcome is unknown may land: landing after them, the response
/// was served as fresh after the operator deleted it.
#[tokio::test]
async fn a_late_write_is_not_served_after_the_handle_deleted_its_url() {
    for how in ["delete_url", "delete_request", "clear"] {
        let origin = Origin::start().await;
        let (client, handle, memory) = late_writing_client(false);
        let url = origin.url("/doc");
        let (_, info) = send(client.get(&url)).await;
        assert!(!info.stored, "{how}: the write timed out: {info:?}");
        match how {
            "delete_url" => drop(handle.delete_url(&url).await.unwrap()),
            "delete_request" => {
                let request = reqwest::Request::new(http::Method::GET, url.parse().unwrap());
                handle.delete_request(&request).await.unwrap();
            }
            _ => drop(handle.clear().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(memory.count().await.unwrap(), 1, "{how}: the write landed");
        let (_, after) = send(client.get(&url)).await;
        assert!(!after.from_cache, "{how}: served after the delete");
    }
}

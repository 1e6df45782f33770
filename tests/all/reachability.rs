//! Every stored entry stays reachable from its URL, on every store: URL operations and
//! invalidations reach all of a URL's entries (credentials, matched headers, bodies, Vary
//! variants), and Vary indexes never lose track of their variants.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use reqwest_caching::cache_core::{self, CacheStore, Entry};
use reqwest_caching::cache_http::vary::variant_key;
use reqwest_caching::reqwest_middleware::RequestBuilder;
use reqwest_caching::{CacheMode, CacheRequestExt, CacheResponseExt, Expiration, MatchHeaders};

use crate::support::{BACKENDS, Harness, send};

const PATH: &str = "/item/shared";

/// Builds one request, anew for each use.
type MakeRequest<'a> = Box<dyn Fn() -> RequestBuilder + 'a>;

/// Requests for one URL that each get an entry of their own.
fn distinct_requests(h: &Harness) -> Vec<RequestBuilder> {
    let url = h.origin.url(PATH);
    // The POST first: a cached POST still invalidates the URL's other entries.
    vec![
        h.client
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"q":1}"#),
        h.client.get(&url),
        h.client.get(&url).bearer_auth("token-a"),
        h.client.get(&url).bearer_auth("token-b"),
        h.client
            .get(&url)
            .header("x-auth-token", "t")
            .bearer_auth("c"),
        h.client.get(&url).header("x-tenant", "t1"),
    ]
}

async fn fill(h: &Harness) {
    for request in distinct_requests(h) {
        let (_, info) = send(request).await;
        assert!(info.stored, "each request stores an entry of its own");
    }
}

/// Every request of `distinct_requests` is answered from the cache (or, with `false`, none).
async fn all_cached(h: &Harness, cached: bool) {
    for request in distinct_requests(h) {
        let (_, info) = send(request).await;
        assert_eq!(info.from_cache, cached, "{info:?}");
    }
}

fn builder(b: reqwest_caching::CacheMiddlewareBuilder) -> reqwest_caching::CacheMiddlewareBuilder {
    b.match_headers(MatchHeaders::Only(vec![http::HeaderName::from_static(
        "x-tenant",
    )]))
    .allowable_methods([Method::GET, Method::HEAD, Method::POST])
}

#[tokio::test]
async fn url_operations_reach_every_entry_of_a_url() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, builder).await;
        fill(&h).await;
        h.fetch("/item/other").await;
        let url = h.origin.url(PATH);
        let keys = h.handle.keys_for_url(&url).await.unwrap();
        assert_eq!(keys.len(), 6, "{backend:?}: {keys:?}");
        // Parameter order and fragments do not make another URL.
        let same = h.handle.keys_for_url(&format!("{url}#top")).await.unwrap();
        assert_eq!(same, keys);
        assert!(h.handle.contains_url(&url).await.unwrap(), "{backend:?}");
        let entry = h.handle.get_url(&url).await.unwrap().expect("a GET entry");
        assert_eq!(entry.response.request.method, Method::GET);

        assert_eq!(h.handle.delete_url(&url).await.unwrap(), 6, "{backend:?}");
        assert!(!h.handle.contains_url(&url).await.unwrap());
        assert_eq!(
            h.handle.count().await.unwrap(),
            1,
            "{backend:?}: /item/other stays"
        );
        all_cached(&h, false).await;
        assert_eq!(
            h.origin.hits(PATH),
            12,
            "{backend:?}: every request refetched"
        );
    }
}

#[tokio::test]
async fn unsafe_requests_invalidate_every_entry_however_they_skip_the_cache() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, builder).await;
        let url = h.origin.url(PATH);
        let mut expected_hits = 0;
        // Through the cache, with a bypass, inside `disabled`, and as a method not cached.
        let invalidations: Vec<(&str, MakeRequest<'_>)> = vec![
            (
                "POST",
                Box::new(|| h.client.post(&url).bearer_auth("other")),
            ),
            (
                "PUT with Bypass",
                Box::new(|| h.client.put(&url).cache_mode(CacheMode::Bypass)),
            ),
            ("DELETE", Box::new(|| h.client.delete(&url))),
            (
                "PATCH with a streaming body",
                Box::new(|| {
                    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("x")]);
                    h.client
                        .patch(&url)
                        .body(reqwest::Body::wrap_stream(stream))
                }),
            ),
        ];
        for (name, invalidate) in &invalidations {
            fill(&h).await;
            all_cached(&h, true).await;
            send(invalidate()).await;
            // Nothing of the URL is served any more: every request goes to the origin.
            for request in distinct_requests(&h) {
                let (_, info) = send(request).await;
                assert!(!info.from_cache, "{backend:?}: {name} left an entry served");
            }
            expected_hits += 6 + 1 + 6;
            h.handle.clear().await.unwrap();
        }
        // And an unsafe request made inside `disabled(..)`.
        fill(&h).await;
        reqwest_caching::disabled(async {
            send(h.client.delete(&url)).await;
        })
        .await;
        all_cached(&h, false).await;
        expected_hits += 6 + 1 + 6;
        assert_eq!(h.origin.hits(PATH), expected_hits, "{backend:?}");
    }
}

/// Each stored entry is reachable: a Vary variant's index is stored, lists the headers the
/// variant was stored for, selects the variant's own key from the stored request, and lasts
/// at least as long. Returns how many entries there are.
async fn assert_every_entry_reachable(store: &Arc<dyn CacheStore>, what: &str) -> u64 {
    let codec = cache_core::codec::EntryCodec::new();
    let metas: Vec<_> = futures_util::TryStreamExt::try_collect(store.entries())
        .await
        .unwrap();
    for meta in &metas {
        let Some(index_key) = meta.variant_of else {
            continue;
        };
        let read = |key| cache_core::store::get_entry(&**store, key, &codec);
        let variant = read(&meta.key).await.unwrap();
        let Some(Entry::Response(variant)) = variant.as_ref().map(|d| &d.entry) else {
            panic!("{what}: variant {} is not a response", meta.key);
        };
        let index = read(&index_key).await.unwrap();
        let Some((index_meta, Entry::VaryIndex(index))) =
            index.as_ref().map(|d| (&d.meta, &d.entry))
        else {
            panic!("{what}: variant {} has no index: unreachable", meta.key);
        };
        let selected = variant_key(&index_key, index, &variant.request.headers);
        assert_eq!(selected, meta.key, "{what}: the index selects another key");
        let outlives = match (index_meta.expires_at, meta.expires_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        };
        assert!(outlives, "{what}: the index expires before its variant");
    }
    assert_eq!(store.count().await.unwrap(), metas.len() as u64);
    metas.len() as u64
}

#[tokio::test]
async fn vary_indexes_never_lose_their_variants() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Duration::from_secs(10))).await;
        let store = Arc::clone(h.handle.store());
        let path = "/varying/v";
        let url = h.origin.url(path);
        let lang = |value: &'static str| send(h.get(path).header("accept-language", value));
        let state = |what: &str| format!("{backend:?}: {what}");

        h.origin.set_vary("accept-language");
        for value in ["en", "fr", "de"] {
            lang(value).await;
        }
        let count = assert_every_entry_reachable(&store, &state("three variants")).await;
        assert_eq!(count, 4, "{}", state("an index and three variants"));

        // A 304 renews a variant past its index's expiry: the index is renewed too.
        h.clock.advance(Duration::from_secs(20));
        let (_, info) = lang("en").await;
        assert!(info.revalidated, "{}", state("revalidated"));
        assert_every_entry_reachable(&store, &state("after a 304")).await;
        let (_, info) = lang("en").await;
        assert!(info.from_cache, "{}", state("renewed variant served"));

        // The origin varies on another header now: the old variants go with the old index.
        h.clock.advance(Duration::from_secs(20));
        h.origin.set_vary("accept-encoding");
        send(h.get(path).header("accept-encoding", "gzip")).await;
        let count = assert_every_entry_reachable(&store, &state("new Vary list")).await;
        assert_eq!(count, 2, "{}", state("the new index and its one variant"));

        // And back to no Vary at all: the variants go, a plain entry stays.
        h.clock.advance(Duration::from_secs(20));
        h.origin.set_vary("");
        send(h.get(path).cache_mode(CacheMode::ForceRefresh)).await;
        let count = assert_every_entry_reachable(&store, &state("no Vary")).await;
        assert_eq!(count, 1, "{}", state("one plain entry"));

        // Invalidation and delete_url take index and variants alike.
        h.origin.set_vary("accept-language");
        send(h.get(path).cache_mode(CacheMode::ForceRefresh)).await;
        for value in ["en", "fr"] {
            lang(value).await;
        }
        let count = assert_every_entry_reachable(&store, &state("refilled")).await;
        assert_eq!(count, 4, "{}", state("the index, no header, en, fr"));
        send(h.client.post(&url)).await;
        assert_eq!(
            h.handle.count().await.unwrap(),
            0,
            "{}",
            state("invalidated")
        );
        for value in ["en", "fr"] {
            lang(value).await;
        }
        assert_eq!(h.handle.delete_url(&url).await.unwrap(), 3);
        assert_eq!(h.handle.count().await.unwrap(), 0, "{}", state("deleted"));

        // Two instances writing the first variants at once: both stay reachable.
        let other = crate::support::patient_builder()
            .shared_store(Arc::clone(&store))
            .clock(Arc::clone(&h.clock) as _)
            .expire_after(Duration::from_secs(10))
            .build()
            .unwrap()
            .into_client(reqwest::Client::new());
        let from_other =
            |value: &'static str| send(other.get(&url).header("accept-language", value));
        let _ = tokio::join!(lang("en"), from_other("fr"), lang("de"), from_other("it"));
        let count = assert_every_entry_reachable(&store, &state("two writers")).await;
        assert_eq!(count, 5, "{}", state("one index and four variants"));
        for value in ["en", "fr", "de", "it"] {
            let response = h.get(path).header("accept-language", value).send().await;
            assert!(response.unwrap().from_cache(), "{}", state(value));
        }
    }
}

#[tokio::test]
async fn an_empty_expiration_keeps_no_orphans_either() {
    // With entries that never expire nothing would ever remove an orphan: the same cycle
    // of Vary changes leaves exactly the reachable entries.
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Expiration::Never)).await;
        let store = Arc::clone(h.handle.store());
        let path = "/varying/never";
        for vary in ["accept-language", "accept-encoding", "accept-language"] {
            h.origin.set_vary(vary);
            for value in ["a", "b"] {
                send(
                    h.get(path)
                        .header(vary, value)
                        .cache_mode(CacheMode::ForceRefresh),
                )
                .await;
            }
            let what = format!("{backend:?}: vary {vary}");
            assert_eq!(
                assert_every_entry_reachable(&store, &what).await,
                3,
                "{what}"
            );
        }
    }
}

/// A stored unsafe request (POST allowed) invalidates its URL before its own response is
/// written: the Vary index its lookup saw is gone by then, and its variant is written beside
/// an index written anew, not left with none (served by nothing, kept for good).
#[tokio::test]
async fn a_stored_unsafe_request_writes_its_variant_beside_an_index() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
        })
        .await;
        let store = Arc::clone(h.handle.store());
        let path = "/varying/posted";
        h.origin.set_vary("accept-encoding");
        for encoding in ["gzip", "br"] {
            let post = h.client.post(h.origin.url(path));
            send(post.header("accept-encoding", encoding).body("x")).await;
            let what = format!("{backend:?}: after the POST with {encoding}");
            assert_every_entry_reachable(&store, &what).await;
        }
    }
}

/// `delete_older_than` takes a Vary index written before its newer variants (an index keeps
/// the time it was first written): the variants go with it, never left with no index.
#[tokio::test]
async fn deleting_old_entries_takes_the_variants_of_an_index_it_deletes() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let store = Arc::clone(h.handle.store());
        let path = "/varying/aged";
        h.origin.set_vary("accept-language");
        let lang = |value: &'static str| send(h.get(path).header("accept-language", value));
        lang("en").await;
        h.clock.advance(Duration::from_secs(100));
        lang("fr").await;
        h.clock.advance(Duration::from_secs(20));
        let removed = h
            .handle
            .delete_older_than(Duration::from_secs(60))
            .await
            .unwrap();
        let what = format!("{backend:?}: after delete_older_than");
        assert_eq!(removed, 3, "{what}: the index and both variants");
        assert_eq!(
            assert_every_entry_reachable(&store, &what).await,
            0,
            "{what}"
        );
    }
}

/// The variants a deletion of old entries takes with their index are those written before it:
/// one written since (a request meanwhile wrote the URL's index and variants anew) stays.
#[tokio::test]
async fn deleting_old_entries_spares_variants_written_since() {
    let h = Harness::new(crate::support::Backend::Memory).await;
    let store = Arc::clone(h.handle.store());
    let path = "/varying/aged-then-new";
    h.origin.set_vary("accept-language");
    send(h.get(path).header("accept-language", "en")).await;
    h.clock.advance(Duration::from_secs(120));
    let metas: Vec<reqwest_caching::EntryMeta> =
        futures_util::TryStreamExt::try_collect(store.entries())
            .await
            .unwrap();
    let index = metas
        .into_iter()
        .find(|meta| meta.variant_of.is_none())
        .expect("the index");
    // A variant of that index's key, written after the deletion starts (its clock reading).
    let later = reqwest_caching::Clock::now(&*h.clock) + Duration::from_secs(5);
    let key = reqwest_caching::CacheKey::from_digest([9; 16]);
    let meta = reqwest_caching::EntryMeta::new(key, index.url.clone(), later, None)
        .with_url_group(index.url_group)
        .with_variant_of(Some(index.key));
    let value = bytes::Bytes::from_static(b"written since");
    store
        .put(reqwest_caching::StoredEntry::new(meta, value))
        .await
        .unwrap();
    let removed = h
        .handle
        .delete_older_than(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(removed, 2, "the index and its old variant");
    assert!(
        store.get(&key).await.unwrap().is_some(),
        "the newer variant stays"
    );
}

/// A store whose listings of every entry are counted.
#[derive(Debug)]
struct CountedListings {
    inner: Arc<dyn CacheStore>,
    listings: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl CacheStore for CountedListings {
    async fn get(
        &self,
        key: &cache_core::CacheKey,
    ) -> Result<Option<cache_core::StoredEntry>, cache_core::StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, entry: cache_core::StoredEntry) -> Result<(), cache_core::StoreError> {
        self.inner.put(entry).await
    }
    async fn delete(&self, key: &cache_core::CacheKey) -> Result<bool, cache_core::StoreError> {
        self.inner.delete(key).await
    }
    fn entries(
        &self,
    ) -> futures_util::stream::BoxStream<'_, Result<cache_core::EntryMeta, cache_core::StoreError>>
    {
        self.listings
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.entries()
    }
    async fn entries_for_url(
        &self,
        url_group: &cache_core::CacheKey,
    ) -> Result<Vec<cache_core::EntryMeta>, cache_core::StoreError> {
        self.inner.entries_for_url(url_group).await
    }
    async fn clear(&self) -> Result<u64, cache_core::StoreError> {
        self.inner.clear().await
    }
}

/// The variants of an index `delete_older_than` deletes are found through the store's index
/// of URLs: the store is listed once, for the selection, where it was listed a second time
/// to find them.
#[tokio::test]
async fn the_variants_of_a_deleted_index_are_found_without_a_second_listing() {
    let listings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&listings);
    let wrap = |inner| {
        Arc::new(CountedListings {
            inner,
            listings: counted,
        }) as _
    };
    let h = Harness::wrapping(crate::support::Backend::Memory, wrap, |b| b).await;
    let store = Arc::clone(h.handle.store());
    h.origin.set_vary("accept-language");
    let lang =
        |value: &'static str| send(h.get("/varying/listed").header("accept-language", value));
    lang("en").await;
    h.clock.advance(Duration::from_secs(100));
    // Newer than the cutoff: not selected, deleted only as an orphan of its index.
    lang("fr").await;
    h.clock.advance(Duration::from_secs(20));
    listings.store(0, std::sync::atomic::Ordering::SeqCst);
    let removed = h
        .handle
        .delete_older_than(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(removed, 3, "the index and both variants");
    assert_eq!(
        listings.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "listings"
    );
    assert_eq!(store.count().await.unwrap(), 0);
}

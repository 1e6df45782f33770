use std::time::Duration;

use http::Method;
use reqwest_caching::Expiration;

use crate::support::{BACKENDS, Harness};

#[tokio::test]
async fn inspect_and_delete_by_key_and_url() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        // HEAD first: once a GET is stored, it answers HEAD requests itself.
        h.client.head(h.origin.url("/a")).send().await.unwrap();
        let (_, info) = h.fetch("/a").await;
        h.fetch("/b").await;
        let key = info.key.unwrap();
        assert!(h.handle.contains(&key).await.unwrap());
        assert!(h.handle.contains_url(&h.origin.url("/a")).await.unwrap());
        assert_eq!(h.handle.count().await.unwrap(), 3);
        assert_eq!(
            h.handle.urls().await.unwrap(),
            vec![h.origin.url("/a"), h.origin.url("/b")]
        );
        let entry = h.handle.get(&key).await.unwrap().unwrap();
        assert_eq!(entry.meta.key, key);
        assert_eq!(
            &entry.response.body[..],
            b"/a #2",
            "the HEAD was the first request"
        );

        assert_eq!(
            h.handle.delete_url(&h.origin.url("/a")).await.unwrap(),
            2,
            "{backend:?}: GET and HEAD"
        );
        assert!(!h.handle.contains(&key).await.unwrap());
        assert!(!h.handle.delete(&key).await.unwrap());
        assert!(
            !h.fetch("/a").await.1.from_cache,
            "{backend:?}: deleted means refetched"
        );
        let err = h.handle.contains_url("not a url").await.unwrap_err();
        assert!(
            matches!(&err, reqwest_caching::Error::InvalidUrl { url, .. } if url == "not a url"),
            "{err:?}"
        );
        assert_eq!(h.handle.clear().await.unwrap(), 2);
        assert_eq!(h.handle.count().await.unwrap(), 0);
        assert_eq!(h.origin.hits("/a"), 3, "HEAD, GET, GET after delete");
    }
}

#[tokio::test]
async fn delete_expired_and_older_than() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let short = |path: &str| {
            use reqwest_caching::CacheRequestExt;
            h.get(path).expire_after(Duration::from_secs(10))
        };
        crate::support::send(short("/short")).await;
        h.fetch("/never").await;
        h.clock.advance(Duration::from_secs(20));
        h.fetch("/new").await;
        assert_eq!(h.handle.delete_expired().await.unwrap(), 1, "{backend:?}");
        assert!(
            !h.handle
                .contains_url(&h.origin.url("/short"))
                .await
                .unwrap()
        );
        assert_eq!(
            h.handle
                .delete_older_than(Duration::from_secs(15))
                .await
                .unwrap(),
            1,
            "{backend:?}"
        );
        assert_eq!(h.handle.urls().await.unwrap(), vec![h.origin.url("/new")]);
    }
}

#[tokio::test]
async fn reset_expiration_applies_a_new_expiry_from_now() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/a").await;
        h.fetch("/b").await;
        assert_eq!(
            h.handle
                .reset_expiration(Expiration::After(Duration::from_secs(30)))
                .await
                .unwrap(),
            2
        );
        assert!(h.fetch("/a").await.1.from_cache);
        h.clock.advance(Duration::from_secs(31));
        assert!(
            !h.fetch("/a").await.1.from_cache,
            "{backend:?}: the new expiry holds"
        );
        assert_eq!(
            h.handle
                .reset_expiration(Expiration::DoNotCache)
                .await
                .unwrap(),
            2
        );
        assert_eq!(h.handle.count().await.unwrap(), 0);
        let key = h.handle.key_for(&Method::GET, &h.origin.url("/b")).unwrap();
        assert!(!h.handle.contains(&key).await.unwrap());
    }
}

/// `urls()` lists each URL as it was requested (`%20` stays `%20`, `+` stays `+`, order and
/// escapes kept), less only its ignored and credential parameters; the key still
/// normalizes, so the same URL written another way is the same entry.
#[tokio::test]
async fn urls_are_listed_as_requested() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.ignored_parameters(["nonce"])).await;
        h.fetch("/s?q=a%20b&nonce=1&x=1+2&api_key=secret&z=%7E&flag")
            .await;
        let (_, info) = h
            .fetch("/s?flag&api_key=secret&z=~&x=1%202&q=a+b&nonce=2")
            .await;
        assert!(info.from_cache, "{backend:?}: one entry");
        assert_eq!(h.origin.hits("/s"), 1, "{backend:?}");
        assert_eq!(
            h.handle.urls().await.unwrap(),
            vec![h.origin.url("/s?q=a%20b&x=1+2&z=%7E&flag")],
            "{backend:?}"
        );
    }
}

/// `get` with a URL's key whose entry is a Vary index answers the variant stored for a
/// request without the varying headers; with no such variant, nothing.
#[tokio::test]
async fn get_follows_a_vary_index_to_the_variant_without_the_headers() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        let path = crate::support::custom("hv", &["vary: Accept-Language"]);
        let (plain, _) = h.fetch(&path).await;
        let (english, _) = crate::support::send(h.get(&path).header("accept-language", "en")).await;
        assert_ne!(plain, english);
        assert_eq!(h.origin.hits("/custom/hv"), 2, "{backend:?}: two variants");
        let key = h
            .handle
            .key_for(&Method::GET, &h.origin.url(&path))
            .unwrap();
        let entry = h
            .handle
            .get(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{backend:?}: the index leads to a variant"));
        assert_eq!(
            &entry.response.body[..],
            plain.as_bytes(),
            "{backend:?}: the variant for no Accept-Language"
        );
        assert_ne!(entry.meta.key, key, "{backend:?}: the variant's own key");

        // Only an English variant: the index leads to nothing for a request without it.
        let only = crate::support::custom("only", &["vary: Accept-Language"]);
        crate::support::send(h.get(&only).header("accept-language", "en")).await;
        let key = h
            .handle
            .key_for(&Method::GET, &h.origin.url(&only))
            .unwrap();
        assert!(
            h.handle.store().get(&key).await.unwrap().is_some(),
            "{backend:?}: the index is stored under the URL's key"
        );
        assert!(
            h.handle.contains_url(&h.origin.url(&only)).await.unwrap(),
            "{backend:?}: and the English variant"
        );
        assert!(
            h.handle.get(&key).await.unwrap().is_none(),
            "{backend:?}: no variant without the header"
        );
        assert_eq!(h.origin.hits("/custom/hv"), 2, "{backend:?}");
    }
}

/// `reset_expiration(Never)` makes expiring entries fresh for good.
#[tokio::test]
async fn reset_expiration_to_never() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.expire_after(Duration::from_secs(10))).await;
        h.fetch("/a").await;
        h.fetch("/b").await;
        assert_eq!(
            h.handle.reset_expiration(Expiration::Never).await.unwrap(),
            2,
            "{backend:?}"
        );
        let key = h.handle.key_for(&Method::GET, &h.origin.url("/a")).unwrap();
        let entry = h.handle.get(&key).await.unwrap().unwrap();
        assert_eq!(entry.meta.expires_at, None, "{backend:?}");
        // Ten years on, both still served.
        h.clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
        for path in ["/a", "/b"] {
            let (_, info) = h.fetch(path).await;
            assert!(
                info.from_cache && !info.is_expired,
                "{backend:?} {path}: {info:?}"
            );
            assert_eq!(h.origin.hits(path), 1, "{backend:?} {path}");
        }
    }
}

/// `reset_expiration(At(t))` makes every entry fresh until `t` and stale from then on; a
/// moment already past makes them stale at once.
#[tokio::test]
async fn reset_expiration_to_a_moment() {
    use reqwest_caching::Clock;
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.fetch("/a").await;
        h.fetch("/b").await;
        let until = h.clock.now() + Duration::from_secs(100);
        assert_eq!(
            h.handle
                .reset_expiration(Expiration::At(until))
                .await
                .unwrap(),
            2,
            "{backend:?}"
        );
        h.clock.advance(Duration::from_secs(99));
        assert!(
            h.fetch("/a").await.1.from_cache,
            "{backend:?}: fresh before"
        );
        h.clock.advance(Duration::from_secs(1));
        let (_, info) = h.fetch("/a").await;
        assert!(
            !info.from_cache,
            "{backend:?}: stale at the moment: {info:?}"
        );
        assert_eq!(h.origin.hits("/a"), 2, "{backend:?}");

        let past = h.clock.now() - Duration::from_secs(1);
        h.handle
            .reset_expiration(Expiration::At(past))
            .await
            .unwrap();
        let (_, info) = h.fetch("/a").await;
        assert!(!info.from_cache, "{backend:?}: a past moment: {info:?}");
        assert_eq!(h.origin.hits("/a"), 3, "{backend:?}");
        assert_eq!(h.origin.hits("/b"), 1, "{backend:?}");
    }
}

/// `responses` and `matching` with an `EntryFilter` (expired, undecodable, URL glob or
/// regex, age), `delete_matching` and `delete_invalid`.
#[tokio::test]
async fn inspect_and_delete_by_filter() {
    use futures_util::TryStreamExt;
    use reqwest_caching::{
        CacheKey, CacheRequestExt, CachedEntry, EntryFilter, EntryMeta, StoredEntry, UrlPattern,
    };
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.client
            .get(h.origin.url("/a"))
            .expire_after(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        h.fetch("/b").await;
        h.fetch("/api/x?page=1").await;
        h.clock.advance(Duration::from_secs(20));
        // An entry no version of the codec reads.
        let garbage = EntryMeta::new(
            CacheKey::from_digest([7; 16]),
            h.origin.url("/garbage"),
            std::time::SystemTime::now(),
            None,
        );
        h.handle
            .store()
            .put(StoredEntry::new(
                garbage,
                bytes::Bytes::from_static(b"garbage"),
            ))
            .await
            .unwrap();

        let urls_of = |filter: EntryFilter| {
            let handle = h.handle.clone();
            async move {
                let entries: Vec<CachedEntry> =
                    handle.responses(filter).try_collect().await.unwrap();
                let mut urls: Vec<String> = entries.into_iter().map(|e| e.meta.url).collect();
                urls.sort();
                urls
            }
        };
        let url = |path: &str| h.origin.url(path);
        assert_eq!(
            urls_of(EntryFilter::new()).await,
            vec![url("/a"), url("/api/x?page=1"), url("/b")],
            "{backend:?}: the undecodable entry is no response"
        );
        assert_eq!(
            urls_of(EntryFilter::new().expired(true)).await,
            vec![url("/a")]
        );
        assert_eq!(
            urls_of(EntryFilter::new().expired(false)).await,
            vec![url("/api/x?page=1"), url("/b")]
        );
        assert_eq!(
            urls_of(EntryFilter::new().url("127.0.0.1:*/api")).await,
            vec![url("/api/x?page=1")]
        );
        assert_eq!(
            urls_of(EntryFilter::new().url(UrlPattern::regex(r"^http://.*[?&]page=1$"))).await,
            vec![url("/api/x?page=1")]
        );
        assert_eq!(
            urls_of(EntryFilter::new().older_than(Duration::from_secs(15)))
                .await
                .len(),
            3
        );
        assert!(
            urls_of(EntryFilter::new().older_than(Duration::from_secs(30)))
                .await
                .is_empty()
        );
        let invalid = h
            .handle
            .matching(EntryFilter::new().invalid(true))
            .await
            .unwrap();
        assert_eq!(invalid.len(), 1, "{backend:?}");
        assert_eq!(invalid[0].url, url("/garbage"));
        assert_eq!(h.handle.delete_invalid().await.unwrap(), 1, "{backend:?}");
        assert_eq!(h.handle.count().await.unwrap(), 3);
        assert_eq!(
            h.handle
                .delete_matching(EntryFilter::new().expired(true))
                .await
                .unwrap(),
            1
        );
        assert_eq!(h.handle.count().await.unwrap(), 2, "{backend:?}");
        assert!(h.fetch("/b").await.1.from_cache);
        assert!(!h.fetch("/a").await.1.from_cache, "{backend:?}: deleted");
        assert_eq!(h.origin.hits("/a"), 2);
        let error = h
            .handle
            .responses(EntryFilter::new().url(UrlPattern::regex("(")))
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(
            matches!(error, reqwest_caching::Error::InvalidRegex { .. }),
            "{error:?}"
        );
    }
}

/// `contains_request`, `get_request` and `delete_request` key a full request: method,
/// matched headers, body; other requests to the URL keep their entries.
#[tokio::test]
async fn contains_and_delete_by_request() {
    use reqwest_caching::MatchHeaders;
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| {
            b.allowable_methods([Method::GET, Method::POST])
                .match_headers(MatchHeaders::Only(vec![http::header::ACCEPT]))
        })
        .await;
        let get = |accept: &str| h.get("/m").header("accept", accept);
        let request = |accept: &str| get(accept).build().unwrap();
        h.client.execute(request("a")).await.unwrap();
        h.client.execute(request("b")).await.unwrap();
        assert!(h.handle.contains_request(&request("a")).await.unwrap());
        assert!(
            !h.handle.contains_request(&request("c")).await.unwrap(),
            "{backend:?}"
        );
        let head = h.client.head(h.origin.url("/m")).header("accept", "a");
        assert!(
            !h.handle
                .contains_request(&head.build().unwrap())
                .await
                .unwrap()
        );
        let stored = h.handle.get_request(&request("b")).await.unwrap().unwrap();
        assert_eq!(&stored.response.body[..], b"/m #2");
        assert!(
            h.handle.delete_request(&request("a")).await.unwrap(),
            "{backend:?}"
        );
        assert!(!h.handle.delete_request(&request("a")).await.unwrap());
        assert!(h.handle.contains_request(&request("b")).await.unwrap());
        assert!(
            !crate::support::send(get("a")).await.1.from_cache,
            "{backend:?}"
        );
        assert!(
            crate::support::send(get("b")).await.1.from_cache,
            "{backend:?}"
        );
        assert_eq!(h.origin.hits("/m"), 3, "{backend:?}");

        let post = |body: &str| {
            h.client
                .post(h.origin.url("/p"))
                .body(body.to_owned())
                .build()
                .unwrap()
        };
        h.client.execute(post("one")).await.unwrap();
        assert!(
            h.handle.contains_request(&post("one")).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            !h.handle.contains_request(&post("two")).await.unwrap(),
            "{backend:?}"
        );
        assert!(h.handle.delete_request(&post("one")).await.unwrap());
        assert!(!h.handle.contains_request(&post("one")).await.unwrap());
    }
}

/// Deletes that follow a listing, with another client writing an entry again in between.
mod written_since {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures_util::StreamExt;
    use futures_util::stream::BoxStream;
    use reqwest_caching::{CacheKey, CacheStore, EntryFilter, EntryMeta, StoreError, StoredEntry};

    use crate::support::{Backend, Harness};

    /// Which entry the store writes again, and when.
    #[derive(Debug, Default)]
    struct Rewrites {
        /// Once a listing has been read to the end, 1 s newer.
        after_listing: Mutex<Option<CacheKey>>,
        /// Just before its first read, 20 s newer.
        before_read: Mutex<Option<CacheKey>>,
    }

    /// A store that writes an entry again (as another client would) where `Rewrites` says.
    #[derive(Debug)]
    struct RewritingStore {
        inner: Arc<dyn CacheStore>,
        rewrites: Arc<Rewrites>,
    }

    impl RewritingStore {
        /// Writes `key`'s entry again, `newer` after its creation.
        async fn rewrite(&self, key: &CacheKey, newer: Duration) -> Result<(), StoreError> {
            let mut entry = self.inner.get(key).await?.expect("stored");
            entry.meta.created_at += newer;
            self.inner.put(entry).await
        }
    }

    #[async_trait::async_trait]
    impl CacheStore for RewritingStore {
        async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
            let chosen = self
                .rewrites
                .before_read
                .lock()
                .unwrap()
                .take_if(|c| c == key);
            if chosen.is_some() {
                self.rewrite(key, Duration::from_secs(20)).await?;
            }
            self.inner.get(key).await
        }
        async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
            self.inner.put(entry).await
        }
        async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
            self.inner.delete(key).await
        }
        fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
            let chosen = self.rewrites.after_listing.lock().unwrap().take();
            let after = futures_util::stream::once(async move {
                if let Some(key) = chosen {
                    self.rewrite(&key, Duration::from_secs(1)).await.unwrap();
                }
            })
            .filter_map(|()| async { None });
            Box::pin(self.inner.entries().chain(after))
        }
        async fn clear(&self) -> Result<u64, StoreError> {
            self.inner.clear().await
        }
    }

    /// A harness over a rewriting memory store holding `/a` and `/b`, both 20 s old; the
    /// store's `Rewrites`, and `/a`'s key.
    async fn two_old_entries() -> (Harness, Arc<Rewrites>, Option<CacheKey>) {
        let rewrites = Arc::new(Rewrites::default());
        let held = Arc::clone(&rewrites);
        let wrap = |inner| {
            Arc::new(RewritingStore {
                inner,
                rewrites: held,
            }) as _
        };
        let h = Harness::wrapping(Backend::Memory, wrap, |b| b).await;
        let (_, a) = h.fetch("/a").await;
        h.fetch("/b").await;
        h.clock.advance(Duration::from_secs(20));
        (h, rewrites, a.key)
    }

    /// An entry written again between the listing and the deletes of `delete_older_than` and
    /// `delete_matching` is no longer the one listed, and stays; the others go.
    #[tokio::test]
    async fn deletes_of_a_listing_spare_entries_written_since() {
        for by_filter in [false, true] {
            let (h, rewrites, a) = two_old_entries().await;
            *rewrites.after_listing.lock().unwrap() = a;
            let removed = if by_filter {
                let filter = EntryFilter::new().older_than(Duration::from_secs(10));
                h.handle.delete_matching(filter).await.unwrap()
            } else {
                h.handle
                    .delete_older_than(Duration::from_secs(10))
                    .await
                    .unwrap()
            };
            assert_eq!(removed, 1, "by filter: {by_filter}");
            assert_eq!(
                h.handle.urls().await.unwrap(),
                vec![h.origin.url("/a")],
                "by filter: {by_filter}: the entry written since stays"
            );
        }
    }

    /// A filter that reads values matches an entry as read then: one written again between
    /// the listing and that read, and no longer old enough, is neither matched nor deleted.
    #[tokio::test]
    async fn a_filter_reading_values_matches_the_entry_as_read() {
        let (h, rewrites, a) = two_old_entries().await;
        *rewrites.before_read.lock().unwrap() = a;
        let old_and_valid = EntryFilter::new()
            .older_than(Duration::from_secs(10))
            .invalid(false);
        assert_eq!(h.handle.delete_matching(old_and_valid).await.unwrap(), 1);
        assert_eq!(
            h.handle.urls().await.unwrap(),
            vec![h.origin.url("/a")],
            "the entry written again, 20 s newer, stays"
        );
    }
}

/// A URL deleted while a request for it is out: the answer, which may predate the deletion,
/// is not stored. (Its URL's invalidation counter was read when the answer arrived, after
/// the deletion, and the answer was stored over it.) A request sent after it is stored.
#[tokio::test]
async fn an_answer_to_a_request_sent_before_its_url_was_deleted_is_not_stored() {
    let h = Harness::new(crate::support::Backend::Memory).await;
    let url = h.origin.url("/held/d");
    let in_flight = tokio::spawn(h.client.get(&url).send());
    let origin = &h.origin;
    crate::support::wait_until(|| origin.hits("/held/d") == 1).await;
    h.handle.delete_url(&url).await.unwrap();
    h.origin.open_gate();
    let response = in_flight.await.unwrap().unwrap();
    let info = reqwest_caching::CacheResponseExt::cache_info(&response).unwrap();
    assert!(!info.stored, "{info:?}");
    assert_eq!(h.handle.count().await.unwrap(), 0);
    let (_, info) = h.fetch("/held/d").await;
    assert!(info.stored && !info.from_cache, "{info:?}");
    assert_eq!(h.origin.hits("/held/d"), 2);
}

/// Deleting a varying URL's key (its Vary index) takes its variants too: left, they were
/// unreachable until a request stored a new index, whose variants have the same keys, and
/// then served as fresh hits what the operator had deleted.
#[tokio::test]
async fn deleting_a_vary_index_by_key_deletes_its_variants() {
    for &backend in BACKENDS {
        let h = Harness::new(backend).await;
        h.origin.set_vary("Accept-Language");
        let url = h.origin.url("/varying/d");
        let get = |language: &'static str| {
            crate::support::send(h.get("/varying/d").header("accept-language", language))
        };
        get("en").await;
        get("fr").await;
        assert_eq!(
            h.handle.count().await.unwrap(),
            3,
            "{backend:?}: an index, two variants"
        );
        let index = h.handle.key_for(&Method::GET, &url).unwrap();
        assert!(h.handle.delete(&index).await.unwrap(), "{backend:?}");
        assert_eq!(h.handle.count().await.unwrap(), 0, "{backend:?}");
        assert!(!get("en").await.1.from_cache, "{backend:?}");
        assert!(
            !get("fr").await.1.from_cache,
            "{backend:?}: the deleted variant came back"
        );
        assert_eq!(h.origin.hits("/varying/d"), 4, "{backend:?}");
    }
}

/// A store timeout of `Duration::MAX` (no limit, as `stream_after` takes it) bounds nothing:
/// the handle's calls over the whole store, bounded by a multiple of it, panicked.
#[tokio::test]
async fn a_store_timeout_of_duration_max_sets_no_limit() {
    let cache = reqwest_caching::CacheMiddleware::builder()
        .store(reqwest_caching::MemoryStore::new())
        .store_timeout(Duration::MAX)
        .build()
        .unwrap();
    let handle = cache.handle();
    assert_eq!(handle.count().await.unwrap(), 0);
    assert_eq!(handle.clear().await.unwrap(), 0);
    assert_eq!(handle.delete_url("https://example.com/").await.unwrap(), 0);
}

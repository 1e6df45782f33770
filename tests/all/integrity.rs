//! Signed and compressed entries, over every store: a changed stored byte is never served.

use bytes::Bytes;
use reqwest_caching::{CacheStore, SigningKeys, StoredEntry};

use crate::support::{BACKENDS, Harness};

fn keys() -> SigningKeys {
    SigningKeys::new(b"integrity test secret, 32 bytes!".to_vec())
}

/// The raw stored value under `key`.
async fn raw(store: &dyn CacheStore, key: &Option<reqwest_caching::CacheKey>) -> StoredEntry {
    let key = key.as_ref().expect("a cache key");
    store.get(key).await.expect("store read").expect("stored")
}

#[tokio::test]
async fn a_tampered_signed_entry_is_a_miss_and_replaced() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.signing_keys(keys())).await;
        let (first, info) = h.fetch("/page").await;
        assert!(info.stored, "{backend:?}: {info:?}");
        let store = h.handle.store();
        let stored = raw(&**store, &info.key).await;
        // Flip one byte of the body (the last byte before the 32-byte signature): the entry
        // still decodes, so only the signature can catch it.
        let mut value = stored.value.to_vec();
        let at = value.len() - 33;
        value[at] ^= 0x20;
        store
            .put(StoredEntry::new(stored.meta.clone(), Bytes::from(value)))
            .await
            .expect("plant tampered entry");

        let (second, info) = h.fetch("/page").await;
        assert!(!info.from_cache, "{backend:?}: tampered entry served");
        assert_eq!(h.origin.hits("/page"), 2, "{backend:?}");
        assert_ne!(second, first, "{backend:?}: a fresh body");
        // The tampered entry was replaced by a good one.
        let (third, info) = h.fetch("/page").await;
        assert!(info.from_cache, "{backend:?}: {info:?}");
        assert_eq!((third, h.origin.hits("/page")), (second, 2), "{backend:?}");
    }
}

#[tokio::test]
async fn unsigned_and_moved_entries_are_refused_when_signing() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.signing_keys(keys())).await;
        let (_, a) = h.fetch("/a").await;
        let (_, b) = h.fetch("/b").await;
        let store = h.handle.store();
        // /b's signed entry copied under /a's key: it verifies for /b only.
        let moved = raw(&**store, &b.key).await;
        let meta = raw(&**store, &a.key).await.meta;
        store
            .put(StoredEntry::new(meta.clone(), moved.value))
            .await
            .unwrap();
        let (body, info) = h.fetch("/a").await;
        assert!(!info.from_cache, "{backend:?}");
        assert_eq!(body, "/a #2", "{backend:?}: never /b's body");
        // An entry written without signing (an older deployment, or an attacker).
        let unsigned = reqwest_caching::cache_core::codec::encode(
            &h.handle
                .get(a.key.as_ref().unwrap())
                .await
                .unwrap()
                .unwrap()
                .response,
        )
        .unwrap();
        store.put(StoredEntry::new(meta, unsigned)).await.unwrap();
        let (body, info) = h.fetch("/a").await;
        assert!(!info.from_cache, "{backend:?}");
        assert_eq!(body, "/a #3", "{backend:?}");
        assert_eq!(
            h.handle.stats().errors,
            0,
            "{backend:?}: a miss, not a store error"
        );
    }
}

#[tokio::test]
async fn compressed_bodies_are_smaller_in_the_store_and_identical_on_a_hit() {
    for &backend in BACKENDS {
        let h = Harness::with(backend, |b| b.compress_above(1024)).await;
        let live = h.get("/big/200000").send().await.unwrap();
        let info = reqwest_caching::CacheResponseExt::cache_info(&live)
            .cloned()
            .unwrap();
        let live = live.bytes().await.unwrap();
        let stored = raw(&**h.handle.store(), &info.key).await;
        assert!(
            stored.value.len() < live.len() / 20,
            "{backend:?}: {} stored bytes for a {} byte body",
            stored.value.len(),
            live.len()
        );
        let cached = h.get("/big/200000").send().await.unwrap();
        let headers = cached.headers().clone();
        assert_eq!(cached.bytes().await.unwrap(), live, "{backend:?}");
        assert_eq!(h.origin.hits("/big/200000"), 1, "{backend:?}");
        assert_eq!(headers["content-length"], "200000", "{backend:?}");
    }
}

//! A miss hands the store its response unencoded (`CacheStore::put_plain`), so the memory
//! store encodes nothing and its first hit of an entry decodes nothing, and every store reads
//! back the bytes encoding makes; a response the cache still needs (written again under a
//! redirect's final URL) goes as bytes alone.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::cache_core::codec::EntryCodec;
use reqwest_caching::cache_core::store::DecodedEntry;
use reqwest_caching::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};

use crate::support::{Backend, Harness};

/// How each entry was written: unencoded, with the writer's response, or as bytes alone.
#[derive(Debug, Default)]
struct Writes {
    /// With the entry the inner store read back right after.
    unencoded: Vec<(CachedResponse, Option<StoredEntry>)>,
    with_response: Vec<(StoredEntry, CachedResponse)>,
    bytes_alone: Vec<StoredEntry>,
}

/// A store that records how it was written, then writes to the inner store the same way.
#[derive(Debug)]
struct WriteRecording {
    inner: Arc<dyn CacheStore>,
    writes: Arc<Mutex<Writes>>,
}

#[async_trait]
impl CacheStore for WriteRecording {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.writes.lock().unwrap().bytes_alone.push(entry.clone());
        self.inner.put(entry).await
    }
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
    ) -> Result<(), StoreError> {
        let record = (entry.clone(), response.clone());
        self.writes.lock().unwrap().with_response.push(record);
        self.inner.put_decoded(entry, response).await
    }
    async fn put_plain(&self, meta: EntryMeta, response: CachedResponse) -> Result<(), StoreError> {
        let key = meta.key;
        let written = response.clone();
        self.inner.put_plain(meta, response).await?;
        let read_back = self.inner.get(&key).await?;
        self.writes
            .lock()
            .unwrap()
            .unencoded
            .push((written, read_back));
        Ok(())
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
        self.inner.get_decoded(key, codec).await
    }
    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        self.inner.get_decoded_now(key, codec)
    }
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        self.inner.entries_for_url(url_group).await
    }
    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.inner.set_expiry(key, expires_at).await
    }
}

async fn recording() -> (Harness, Arc<Mutex<Writes>>) {
    let writes = Arc::new(Mutex::new(Writes::default()));
    let recorded = Arc::clone(&writes);
    let wrap = move |inner| Arc::new(WriteRecording { inner, writes }) as Arc<dyn CacheStore>;
    let h = Harness::wrapping(Backend::Memory, wrap, |builder| builder).await;
    (h, recorded)
}

#[tokio::test]
async fn a_miss_hands_the_store_its_response_and_the_hit_serves_it() {
    let (h, writes) = recording().await;
    let (first, info) = h.fetch("/page").await;
    assert!(info.stored, "{info:?}");
    {
        let writes = writes.lock().unwrap();
        assert!(writes.bytes_alone.is_empty(), "{:?}", writes.bytes_alone);
        assert!(
            writes.with_response.is_empty(),
            "{:?}",
            writes.with_response
        );
        let [(response, stored)] = &writes.unencoded[..] else {
            panic!("one write unencoded: {:?}", writes.unencoded);
        };
        assert_eq!(&response.body[..], first.as_bytes());
        // The store holds the bytes encoding makes, and they decode to the response.
        let stored = stored.as_ref().expect("stored");
        let encoded = reqwest_caching::cache_core::encode(response).expect("encodes");
        assert_eq!(stored.value, encoded);
        let decoded = reqwest_caching::cache_core::decode(&stored.value).expect("decodes");
        assert_eq!(*response, decoded);
    }
    let (second, info) = h.fetch("/page").await;
    assert!(info.from_cache, "{info:?}");
    assert_eq!(second, first);
    assert_eq!(h.origin.hits("/page"), 1);
}

#[tokio::test]
async fn a_redirected_response_is_written_as_bytes_under_both_urls() {
    let (h, writes) = recording().await;
    let (first, info) = h.fetch("/redirect/r").await;
    assert!(info.stored, "{info:?}");
    {
        let writes = writes.lock().unwrap();
        assert!(
            writes.with_response.is_empty() && writes.unencoded.is_empty(),
            "{writes:?}"
        );
        assert_eq!(writes.bytes_alone.len(), 2, "{:?}", writes.bytes_alone);
    }
    for path in ["/redirect/r", "/target/r"] {
        let (body, info) = h.fetch(path).await;
        assert!(info.from_cache, "{path}: {info:?}");
        assert_eq!(body, first, "{path}");
    }
    assert_eq!(h.origin.hits("/target/r"), 1);
}

//! A store that times every call it passes on: which store calls a miss makes and what each
//! costs inside the middleware (`-- profile-misses timed-memory|timed-sqlite|timed-sled|
//! timed-redis`), as opposed to the store alone (`-- profile-puts`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use reqwest_caching::cache_core::codec::EntryCodec;
use reqwest_caching::cache_core::store::DecodedEntry;
use reqwest_caching::{CacheKey, CacheStore, CachedResponse, EntryMeta, StoreError, StoredEntry};

/// Durations of the calls made, by operation.
pub(crate) type CallLog = Arc<Mutex<Vec<(&'static str, Duration)>>>;

/// `inner`, with every call's duration added to `log`.
#[derive(Debug)]
pub(crate) struct Timed<S> {
    pub(crate) inner: S,
    pub(crate) log: CallLog,
}

impl<S> Timed<S> {
    fn record(&self, op: &'static str, started: Instant) {
        let elapsed = started.elapsed();
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((op, elapsed));
    }
}

#[async_trait]
impl<S: CacheStore> CacheStore for Timed<S> {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let started = Instant::now();
        let found = self.inner.get(key).await;
        self.record("get", started);
        found
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        let started = Instant::now();
        let put = self.inner.put(entry).await;
        self.record("put", started);
        put
    }

    /// Forwarded, so a store that keeps the response is timed doing so.
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: CachedResponse,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let put = self.inner.put_decoded(entry, response).await;
        self.record("put", started);
        put
    }

    /// Forwarded, so a store that keeps the response unencoded is timed doing so (the
    /// default would encode it here, outside the timing).
    async fn put_plain(&self, meta: EntryMeta, response: CachedResponse) -> Result<(), StoreError> {
        let started = Instant::now();
        let put = self.inner.put_plain(meta, response).await;
        self.record("put", started);
        put
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let started = Instant::now();
        let deleted = self.inner.delete(key).await;
        self.record("delete", started);
        deleted
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
        let started = Instant::now();
        let found = self.inner.get_decoded(key, codec).await;
        self.record("get_decoded", started);
        found
    }

    /// Forwarded, so a store that reads both keys in one round trip is timed doing so.
    async fn get_decoded_pair(
        &self,
        first: &CacheKey,
        second: &CacheKey,
        codec: &EntryCodec,
    ) -> [Result<DecodedEntry, StoreError>; 2] {
        let started = Instant::now();
        let found = self.inner.get_decoded_pair(first, second, codec).await;
        self.record("get_decoded_pair", started);
        found
    }

    /// Forwarded: the middleware bounds each call by the store's own suggestion.
    fn suggested_timeout(&self) -> Duration {
        self.inner.suggested_timeout()
    }

    /// Forwarded: the breaker treats a copy's answer as the store does.
    fn answers_now_from_copies(&self) -> bool {
        self.inner.answers_now_from_copies()
    }

    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        let started = Instant::now();
        let found = self.inner.get_decoded_now(key, codec);
        let op = match found {
            Some(_) => "get_decoded_now",
            None => "get_decoded_now (could not answer)",
        };
        self.record(op, started);
        found
    }

    async fn entries_for_url(&self, group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let started = Instant::now();
        let found = self.inner.entries_for_url(group).await;
        self.record("entries_for_url", started);
        found
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<std::time::SystemTime>,
    ) -> Result<bool, StoreError> {
        let started = Instant::now();
        let set = self.inner.set_expiry(key, expires_at).await;
        self.record("set_expiry", started);
        set
    }
}

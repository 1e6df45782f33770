//! The [`CacheStore`] trait: the only thing a backend implements.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::stream::BoxStream;
use futures_util::StreamExt;

use crate::error::StoreError;
use crate::key::CacheKey;
use crate::time::is_expired;
use crate::time::truncate_to_millis;

/// What a store keeps beside an entry's bytes, and lists without reading them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryMeta {
    /// The entry's key.
    pub key: CacheKey,
    /// The redacted URL the entry answers (for listing and deleting by URL).
    pub url: String,
    /// When the response was stored, to the millisecond.
    pub created_at: SystemTime,
    /// When it stops being fresh, to the millisecond; `None` means never.
    pub expires_at: Option<SystemTime>,
    /// The URL the entry was stored for, as the HTTP engine digests it
    /// (`cache_http::KeyRules::url_group`): every entry of one URL (any method, credential, body or Vary variant)
    /// shares it, so URL-level operations and invalidations reach them all through
    /// [`CacheStore::entries_for_url`]. `None` for entries written without one (by versions
    /// before it existed, or by hand).
    pub url_group: Option<CacheKey>,
    /// For a Vary variant: the key of the Vary index that selects it, so replacing the index
    /// can remove its variants.
    pub variant_of: Option<CacheKey>,
}

impl EntryMeta {
    /// Metadata for an entry; times are rounded down to whole milliseconds, the precision
    /// every store keeps.
    pub fn new(
        key: CacheKey,
        url: impl Into<String>,
        created_at: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Self {
        Self {
            key,
            url: url.into(),
            created_at: truncate_to_millis(created_at),
            expires_at: expires_at.map(truncate_to_millis),
            url_group: None,
            variant_of: None,
        }
    }

    /// The same metadata, in the group of entries of one URL (see [`EntryMeta::url_group`]).
    #[must_use]
    pub fn with_url_group(mut self, url_group: Option<CacheKey>) -> Self {
        self.url_group = url_group;
        self
    }

    /// The same metadata, marked as a variant of the Vary index under `index`.
    #[must_use]
    pub fn with_variant_of(mut self, index: Option<CacheKey>) -> Self {
        self.variant_of = index;
        self
    }

    /// True when the entry is stale at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        is_expired(self.expires_at, now)
    }
}

/// An entry as a store holds it: metadata plus the encoded response
/// (see [`codec`](crate::codec)), which the store treats as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEntry {
    /// Metadata.
    pub meta: EntryMeta,
    /// The encoded response.
    pub value: Bytes,
}

impl StoredEntry {
    /// An entry from its parts.
    pub fn new(meta: EntryMeta, value: Bytes) -> Self {
        Self { meta, value }
    }

    /// Its metadata and its value decoded by `codec`, as read under `key` (which a signature
    /// must match): what [`CacheStore::get_decoded`] returns for a stored entry.
    pub fn decode(
        self,
        key: &CacheKey,
        codec: &crate::codec::EntryCodec,
    ) -> Result<Arc<Decoded>, Box<Undecodable>> {
        match codec.decode_entry(Some(key), &self.value) {
            Ok(entry) => Ok(Arc::new(Decoded::new(self.meta, entry))),
            Err(error) => Err(Box::new(Undecodable {
                meta: self.meta,
                error,
            })),
        }
    }
}

/// A stored entry read and decoded: its metadata and its value.
///
/// Shared: a store that keeps entries decoded ([`MemoryStore`](crate::MemoryStore)) hands
/// every read the same one, copying nothing; a store that decodes on each read hands out the
/// only reference, which the reader may take apart ([`Arc::try_unwrap`]) without a copy.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Decoded {
    /// The entry's metadata.
    pub meta: EntryMeta,
    /// Its value, decoded.
    pub entry: crate::Entry,
    /// See [`Decoded::is_redirected`].
    redirected: bool,
    /// See [`Decoded::stored_age`].
    stored_age: Option<u64>,
}

impl Decoded {
    /// A decoded entry from its parts.
    pub fn new(meta: EntryMeta, entry: crate::Entry) -> Self {
        let (redirected, stored_age) = match &entry {
            crate::Entry::Response(response) => (
                response.url != response.request.url,
                plain_seconds(response.headers.get(http::header::AGE)),
            ),
            _ => (false, None),
        };
        Self {
            meta,
            entry,
            redirected,
            stored_age,
        }
    }

    /// The seconds of the response's (first) `Age` value as made, when it is one plain
    /// number, as the middleware stores a response's initial age; `None` for anything else
    /// (no `Age`, a list, a sign), which the reader then parses itself. A hit adds the time
    /// since the entry was stored to it without parsing the header again (about 170
    /// instructions a hit from a store that keeps entries decoded). An entry changed in
    /// place keeps the answer of the one it was made from.
    ///
    /// ```
    /// use cache_core::{CachedRequest, CachedResponse, Decoded, EntryMeta, Entry};
    /// use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
    /// let with_age = |age: &'static str| {
    ///     let mut headers = HeaderMap::new();
    ///     headers.insert(http::header::AGE, HeaderValue::from_static(age));
    ///     let request = CachedRequest::new(Method::GET, "https://e.com/", HeaderMap::new());
    ///     let response = CachedResponse::new(StatusCode::OK, Version::HTTP_11, headers,
    ///         bytes::Bytes::new(), "https://e.com/", request);
    ///     let key = cache_core::CacheKey::from_digest([1; 16]);
    ///     let meta = EntryMeta::new(key, "https://e.com/", std::time::SystemTime::now(), None);
    ///     Decoded::new(meta, Entry::Response(response))
    /// };
    /// assert_eq!(with_age("42").stored_age(), Some(42));
    /// assert_eq!(with_age("7200, 0").stored_age(), None);
    /// ```
    pub fn stored_age(&self) -> Option<u64> {
        self.stored_age
    }

    /// True for a response whose final URL is not the URL its request asked for (it came
    /// through a redirect), as made: a hit serving the response under the caller's own URL
    /// then reads neither URL (they are text elsewhere in memory, a cache line each when
    /// hits are spread over many entries). An entry changed in place keeps the answer of
    /// the one it was made from.
    pub fn is_redirected(&self) -> bool {
        self.redirected
    }

    /// Reads a word of each part of the entry a hit goes on to read (its metadata, the
    /// response's fields and each header), one after another without waiting on any. An
    /// entry kept decoded among many is usually out of the processor's caches, and the
    /// hit's own reads come one at a time, each after an atomic count that waits for the
    /// reads before it; read here first, the misses are waited for together. Over 10,000
    /// entries a memory hit took about 0.2 µs less (`profile-hits memory-roomy many` in
    /// the bench, 2.55 to 2.35 µs); about 100 instructions when the entry is in the caches.
    pub fn prefetch(&self) {
        let meta = &self.meta;
        let mut sum = meta.expires_at.is_some() as usize ^ meta.url.len();
        sum ^= (meta.created_at == SystemTime::UNIX_EPOCH) as usize;
        sum ^= self.redirected as usize ^ self.stored_age.is_some() as usize;
        if let crate::Entry::Response(response) = &self.entry {
            sum ^= response.body.len() ^ response.url.len();
            sum ^= usize::from(response.status.as_u16());
            for (name, value) in &response.headers {
                sum ^= name.as_str().len() ^ value.len();
            }
        }
        // Kept from being optimized away: nothing else uses the words read.
        std::hint::black_box(sum);
    }

    /// Its metadata and value, owned: moved out when `decoded` is the only reference (a store
    /// that decodes on each read), copied when a store shares it (one that keeps it decoded).
    pub fn into_parts(decoded: Arc<Self>) -> (EntryMeta, crate::Entry) {
        let Self { meta, entry, .. } = Arc::unwrap_or_clone(decoded);
        (meta, entry)
    }
}

/// `value` when it is ASCII digits alone, and fits (19 digits at most).
fn plain_seconds(value: Option<&http::HeaderValue>) -> Option<u64> {
    let digits = value?.as_bytes();
    let plain = !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit);
    // Capped as every delta-seconds value is (RFC 9111 §1.2.2), as the reader's own parse.
    plain.then(|| {
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
            .min(1 << 31)
    })
}

/// A stored entry whose value does not decode: its metadata (so it can be listed and
/// deleted) and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Undecodable {
    /// The entry's metadata.
    pub meta: EntryMeta,
    /// Why its value does not decode.
    pub error: crate::DecodeError,
}

/// What [`CacheStore::get_decoded`] finds: the entry decoded, or its metadata and why it did
/// not decode (boxed: the rare case stays out of the common one's size); `None` when there is
/// no entry.
pub type DecodedEntry = Option<Result<Arc<Decoded>, Box<Undecodable>>>;

/// A place to keep cache entries: in memory, a file, a server.
///
/// Object-safe: the middleware holds an `Arc<dyn CacheStore>`. Only `get`, `put`, `delete`,
/// `entries` and `clear` are required; the rest have default implementations built on them
/// that a backend overrides when it can do better (an index, a server-side count).
///
/// A store does not judge freshness: `get` returns expired entries too, because the
/// middleware can still revalidate them with the origin. Backends with native TTLs may drop
/// entries once they are expired and no longer useful.
#[async_trait]
pub trait CacheStore: Send + Sync + Debug + 'static {
    /// The entry under `key`, if any.
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError>;

    /// Stores `entry` under `entry.meta.key`, replacing any entry there.
    ///
    /// Returns [`StoreError::TooLarge`] when the store refuses the size; nothing is written then.
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError>;

    /// [`CacheStore::put`] by a writer that holds the response `entry`'s value encodes (it
    /// encoded it): a store that keeps decoded forms keeps this one, so the entry's first
    /// read does not decode it. The default stores `entry` alone; a store that keeps
    /// `response` must keep it only where it is what decoding the value would give.
    ///
    /// ```
    /// # use cache_core::{CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, MemoryStore, StoredEntry};
    /// # use http::{HeaderMap, Method, StatusCode, Version};
    /// # futures_util::FutureExt::now_or_never(async {
    /// let response = CachedResponse::new(
    ///     StatusCode::OK,
    ///     Version::HTTP_11,
    ///     HeaderMap::new(),
    ///     bytes::Bytes::from_static(b"body"),
    ///     "https://example.com/",
    ///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
    /// );
    /// let key = CacheKey::from_digest([7; 16]);
    /// let value = cache_core::encode(&response).unwrap();
    /// let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
    /// let store = MemoryStore::new();
    /// store.put_decoded(StoredEntry::new(meta, value), response).await.unwrap();
    /// # }).unwrap();
    /// ```
    async fn put_decoded(
        &self,
        entry: StoredEntry,
        response: crate::CachedResponse,
    ) -> Result<(), StoreError> {
        drop(response);
        self.put(entry).await
    }

    /// Stores `response` under `meta.key` as the entry [`encode`](crate::encode) makes of it
    /// (unsigned, its body uncompressed), for a writer whose codec writes it so
    /// ([`EntryCodec::writes_plain`](crate::codec::EntryCodec::writes_plain)). The default encodes
    /// it and hands both to [`CacheStore::put_decoded`]; a store that keeps decoded forms
    /// may keep `response` alone and encode it only when its bytes are read
    /// ([`MemoryStore`](crate::MemoryStore) does: a write then costs no encoding).
    ///
    /// Returns [`StoreError::TooLarge`] for a head too large to encode (over 4 GiB), and what
    /// `put` returns otherwise.
    ///
    /// ```
    /// # futures_util::FutureExt::now_or_never(async {
    /// use cache_core::{CacheKey, CacheStore, CachedRequest, CachedResponse, EntryMeta, MemoryStore};
    /// use http::{HeaderMap, Method, StatusCode, Version};
    /// let response = CachedResponse::new(
    ///     StatusCode::OK,
    ///     Version::HTTP_11,
    ///     HeaderMap::new(),
    ///     bytes::Bytes::from_static(b"body"),
    ///     "https://example.com/",
    ///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
    /// );
    /// let key = CacheKey::from_digest([7; 16]);
    /// let meta = EntryMeta::new(key, "https://example.com/", std::time::SystemTime::now(), None);
    /// let store = MemoryStore::new();
    /// store.put_plain(meta, response.clone()).await.unwrap();
    /// // Its bytes are what encoding gives.
    /// let stored = store.get(&key).await.unwrap().unwrap();
    /// assert_eq!(stored.value, cache_core::encode(&response).unwrap());
    /// # }).unwrap();
    /// ```
    async fn put_plain(
        &self,
        meta: EntryMeta,
        response: crate::CachedResponse,
    ) -> Result<(), StoreError> {
        let value = crate::encode(&response).map_err(|_| StoreError::TooLarge {
            size: u64::from(u32::MAX) + 1,
            limit: u64::from(u32::MAX),
        })?;
        self.put_decoded(StoredEntry::new(meta, value), response)
            .await
    }

    /// Removes the entry under `key`; true when there was one.
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError>;

    /// Removes the entry under `key` if it is still the one stored at `created_at` (to the
    /// millisecond, as stores keep it); one written since, by any client, stays. True when
    /// it was removed. For deleting what a listing found: an entry rewritten between the
    /// listing and the delete no longer is what was listed.
    ///
    /// The default reads the entry, compares, then deletes, so a write landing between those
    /// two steps is deleted; the stores of this workspace check and delete in one step.
    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        match self.get(key).await? {
            Some(entry)
                if truncate_to_millis(entry.meta.created_at) == truncate_to_millis(created_at) =>
            {
                self.delete(key).await
            }
            _ => Ok(false),
        }
    }

    /// Stores `entry` under its key only if the key still holds the entry stored at
    /// `created_at` (to the millisecond, as stores keep it): for renewing an entry that was
    /// read (a `304` renews the response it validated) without putting it back over an entry
    /// another client wrote, or deleted, since. True when written; false, with nothing
    /// written, when the key holds another entry or none.
    ///
    /// The default reads the entry, compares, then puts, so a write landing between those
    /// two steps is overwritten; the stores of this workspace check and write in one step
    /// (memory under the shard's lock, SQLite in one `IMMEDIATE` transaction, sled and files
    /// under the key's lock, Redis in one script, MongoDB and DynamoDB by a condition on the
    /// write, the tiered store through the store behind it).
    ///
    /// ```
    /// # use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoredEntry};
    /// # use std::time::{Duration, SystemTime};
    /// # futures_util::FutureExt::now_or_never(async {
    /// let store = MemoryStore::new();
    /// let key = CacheKey::from_digest([7; 16]);
    /// let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    /// let entry = |body: &'static [u8], created| {
    ///     let meta = EntryMeta::new(key, "https://example.com/", created, None);
    ///     StoredEntry::new(meta, bytes::Bytes::from_static(body))
    /// };
    /// store.put(entry(b"read", at(100))).await.unwrap();
    /// // Another client writes the key after our read of it...
    /// store.put(entry(b"newer", at(200))).await.unwrap();
    /// // ...so renewing what we read writes nothing.
    /// assert!(!store.put_if_created(entry(b"renewed", at(300)), at(100)).await.unwrap());
    /// assert_eq!(store.get(&key).await.unwrap().unwrap().value, "newer");
    /// # }).unwrap();
    /// ```
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        match self.get(&entry.meta.key).await? {
            Some(current)
                if truncate_to_millis(current.meta.created_at)
                    == truncate_to_millis(created_at) =>
            {
                self.put(entry).await.map(|()| true)
            }
            _ => Ok(false),
        }
    }

    /// The metadata of every entry, in no particular order, without reading the values.
    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>>;

    /// Removes every entry; returns how many were removed.
    async fn clear(&self) -> Result<u64, StoreError>;

    /// The entry under `key`, with its value decoded by `codec` (or why it did not decode).
    ///
    /// The default reads with [`CacheStore::get`] and decodes. A store that keeps values in
    /// memory may override it to keep the decoded form too, so a hit skips decoding
    /// ([`MemoryStore`](crate::MemoryStore) does); it must then decode exactly as `codec`
    /// would.
    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &crate::codec::EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        Ok(self.get(key).await?.map(|entry| entry.decode(key, codec)))
    }

    /// [`CacheStore::get_decoded`] of two entries in one call, answered in this order: a store with a
    /// server reads both in one round trip ([`RedisStore`] sends the two reads as one
    /// pipeline). The middleware reads a Vary index and the variant it expects that index to
    /// select this way, where it would otherwise wait for two round trips, or race two calls
    /// that reach the server one after the other.
    ///
    /// The default awaits both `get_decoded` calls at once. The two reads may run in either
    /// order: the middleware uses the variant only when the index read with it is the very
    /// write of the index its guess came from.
    ///
    /// [`RedisStore`]: https://docs.rs/cache-redis
    ///
    /// # Errors
    ///
    /// Each read apart: one may fail while the other answers; a call that fails as a whole
    /// (the server is down) fails both.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use cache_core::codec::EntryCodec;
    /// use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoredEntry};
    /// let store = MemoryStore::new();
    /// let (a, b): (CacheKey, CacheKey) = ("a".repeat(32).parse().unwrap(), "b".repeat(32).parse().unwrap());
    /// let meta = EntryMeta::new(a, "https://example.com/", std::time::SystemTime::now(), None);
    /// store.put(StoredEntry::new(meta, bytes::Bytes::from_static(b"not an entry"))).await.unwrap();
    /// let [first, second] = store.get_decoded_pair(&a, &b, &EntryCodec::new()).await;
    /// assert!(first.unwrap().expect("stored").is_err(), "stored, but does not decode");
    /// assert!(second.unwrap().is_none(), "nothing under the second key");
    /// # });
    /// ```
    async fn get_decoded_pair(
        &self,
        first: &CacheKey,
        second: &CacheKey,
        codec: &crate::codec::EntryCodec,
    ) -> [Result<DecodedEntry, StoreError>; 2] {
        get_decoded_apart(self, first, second, codec).await
    }

    /// [`CacheStore::get_decoded`] answered at once, without awaiting, by a store that keeps
    /// its data in the process (memory, sled): the middleware's hit path then builds no
    /// future for the read. `None` (the default) when the store cannot answer without
    /// waiting; the middleware then awaits `get_decoded`. An implementation must not block
    /// on I/O that can take long (network, locks held by other processes).
    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &crate::codec::EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        let _ = (key, codec);
        None
    }

    /// True when [`get_decoded_now`](CacheStore::get_decoded_now) answers with copies this
    /// process keeps of a store elsewhere (a memory tier in front of a server), never by
    /// reading that store: the middleware's circuit breaker then neither holds such answers
    /// back while the store behind is failing, nor takes their success for its recovery.
    /// `false` by default: an in-process store's answer is the store's own.
    fn answers_now_from_copies(&self) -> bool {
        false
    }

    /// The largest value this store takes, when it has a bound: a `put` of a longer value
    /// is refused as [`StoreError::TooLarge`] (one within it may still be, its metadata
    /// counted too). A copy between stores checks it before reading a large value whole.
    /// `None` (the default): no bound the store knows of.
    fn max_value_bytes(&self) -> Option<u64> {
        None
    }

    /// The store's ability to write bodies as they stream and read them back from files,
    /// when it has one: the middleware then caches bodies over its `max_body_size` without
    /// holding them in memory (see [`BodyFiles`](crate::BodyFiles)). `None` by default.
    fn body_files(&self) -> Option<&dyn crate::BodyFiles> {
        None
    }

    /// How long one call may take before the middleware goes on without the cache, unless
    /// the user sets a timeout: 5 s by default (an embedded file may wait on another
    /// process's lock); remote stores answer on a healthy network in milliseconds and
    /// suggest 1 to 3 s, so a dead server costs little.
    fn suggested_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }

    /// The metadata of every entry whose [`EntryMeta::url_group`] is `url_group`: what
    /// deleting or invalidating a URL must reach (every method, credential and Vary variant
    /// stored for it).
    ///
    /// The default lists every entry and keeps the matching ones, a full scan; the built-in
    /// stores answer from an index instead. An implementation may return entries deleted a
    /// moment ago (an index updated lazily); it must not miss an entry that is stored.
    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        let mut entries = self.entries();
        let mut found = Vec::new();
        while let Some(meta) = entries.next().await {
            let meta = meta?;
            if meta.url_group.as_ref() == Some(url_group) {
                found.push(meta);
            }
        }
        Ok(found)
    }

    /// How many entries there are.
    async fn count(&self) -> Result<u64, StoreError> {
        let mut entries = self.entries();
        let mut n = 0;
        while let Some(entry) = entries.next().await {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes every entry expired at `now`; returns how many were removed.
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let expired = collect_keys(self.entries(), |meta| meta.is_expired(now)).await?;
        delete_all(self, &expired).await
    }

    /// Sets the expiry of the entry under `key`; false when there is no such entry.
    ///
    /// The default reads the entry and writes it back with the new expiry, so a write or
    /// delete landing between those two steps is undone; the stores of this workspace set it
    /// in one step (the conformance scenario `set_expiry_never_undoes_a_racing_write`).
    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let Some(mut entry) = self.get(key).await? else {
            return Ok(false);
        };
        entry.meta.expires_at = expires_at.map(truncate_to_millis);
        self.put(entry).await?;
        Ok(true)
    }
}

/// Keys of the listed entries that satisfy `select`.
pub async fn collect_keys(
    mut entries: BoxStream<'_, Result<EntryMeta, StoreError>>,
    select: impl Fn(&EntryMeta) -> bool,
) -> Result<Vec<CacheKey>, StoreError> {
    let mut keys = Vec::new();
    while let Some(meta) = entries.next().await {
        let meta = meta?;
        if select(&meta) {
            keys.push(meta.key);
        }
    }
    Ok(keys)
}

/// Deletes each key; returns how many existed.
pub async fn delete_all<S: CacheStore + ?Sized>(
    store: &S,
    keys: &[CacheKey],
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for key in keys {
        if store.delete(key).await? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// [`CacheStore::get_decoded`] of `first` and `second`, awaited at once: the default
/// [`CacheStore::get_decoded_pair`], for an override to fall back on (and a wrapper to count
/// before it reads).
pub async fn get_decoded_apart<S: CacheStore + ?Sized>(
    store: &S,
    first: &CacheKey,
    second: &CacheKey,
    codec: &crate::codec::EntryCodec,
) -> [Result<DecodedEntry, StoreError>; 2] {
    let (first, second) = futures_util::future::join(
        store.get_decoded(first, codec),
        store.get_decoded(second, codec),
    )
    .await;
    [first, second]
}

/// Reads and decodes the entry under `key`.
///
/// An entry that does not decode with `codec` (corrupt, truncated, written by another program
/// or a future format, or with a signature that does not verify) is deleted and reported as a
/// miss, with one warning in the log: it never reaches the caller as an error. Only that very
/// entry is deleted ([`CacheStore::delete_if_created`]): one another client wrote since stays.
///
/// # Errors
///
/// Only the store's own errors.
pub async fn get_entry<S: CacheStore + ?Sized>(
    store: &S,
    key: &CacheKey,
    codec: &crate::codec::EntryCodec,
) -> Result<Option<Arc<Decoded>>, StoreError> {
    let Some(decoded) = store.get_decoded(key, codec).await? else {
        return Ok(None);
    };
    match decoded {
        Ok(decoded) => Ok(Some(decoded)),
        Err(undecodable) => {
            let error = &undecodable.error;
            tracing::warn!(key = %key, %error, "unreadable cache entry: deleting it");
            store
                .delete_if_created(key, undecodable.meta.created_at)
                .await?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_response;
    use crate::{CachedRequest, Entry, VaryIndex};

    fn decoded(entry: Entry) -> Decoded {
        let meta = EntryMeta::new(crate::fixtures::key(1), "u", SystemTime::UNIX_EPOCH, None);
        Decoded::new(meta, entry)
    }

    #[test]
    fn a_response_is_redirected_when_its_final_url_is_not_its_requests() {
        let asked = sample_response();
        assert!(!decoded(Entry::Response(asked.clone())).is_redirected());
        let mut moved = asked;
        moved.request = CachedRequest::new(
            http::Method::GET,
            url::Url::parse("https://example.com/old").unwrap(),
            http::HeaderMap::new(),
        );
        let moved = decoded(Entry::Response(moved));
        assert!(moved.is_redirected());
        assert!(Arc::new(moved.clone()).is_redirected(), "kept by a clone");
        let index = VaryIndex {
            headers: Vec::new(),
            generation: 1,
        };
        assert!(!decoded(Entry::VaryIndex(index)).is_redirected());
    }
}

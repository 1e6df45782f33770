//! [`TieredStore`]: a bounded memory store in front of any [`CacheStore`], and its builder.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cache_core::codec::EntryCodec;
use cache_core::store::DecodedEntry;
use cache_core::{CacheKey, CacheStore, EntryMeta, MemoryStore, StoreError, StoredEntry};
use futures_core::stream::BoxStream;
use futures_util::FutureExt;

use crate::invalidation::{InvalidationSink, InvalidationSource};
use crate::tier::Tier;

/// How long a copy is served from memory when the backing store sends no invalidations
/// (1 s): the longest another process's change can go unseen here. Also the longest a write
/// that failed is served from memory (fail-open), with or without invalidations.
pub const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(1);

/// Builds a [`TieredStore`].
#[must_use]
pub struct TieredStoreBuilder {
    backing: Arc<dyn CacheStore>,
    memory: Option<MemoryStore>,
    memory_ttl: Option<Option<Duration>>,
    source: Option<Arc<dyn InvalidationSource>>,
}

impl std::fmt::Debug for TieredStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStoreBuilder")
            .field("backing", &self.backing)
            .field("memory", &self.memory)
            .field("memory_ttl", &self.memory_ttl)
            .field("source", &self.source)
            .finish()
    }
}

impl TieredStoreBuilder {
    /// The memory tier (default [`MemoryStore::new`]: 10,000 entries, 256 MiB). Its bounds
    /// are the tier's; it should be empty.
    pub fn memory(mut self, memory: MemoryStore) -> Self {
        self.memory = Some(memory);
        self
    }

    /// How long a copy is served from memory after it was filled, at most. Without an
    /// invalidation source this is the coherence bound (default [`DEFAULT_MEMORY_TTL`]);
    /// with one it is off by default (copies live until invalidated, evicted or expired; a
    /// failed write's copy at most [`DEFAULT_MEMORY_TTL`]) and this adds a bound on top. `Duration::ZERO` keeps nothing in memory.
    pub fn memory_ttl(mut self, ttl: Duration) -> Self {
        self.memory_ttl = Some(Some(ttl));
        self
    }

    /// Drops memory copies when another process changes the backing store (for Redis:
    /// `RedisInvalidations`, feature `redis`).
    pub fn invalidations(mut self, source: impl InvalidationSource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Builds the store; with an invalidation source, once its subscription is live.
    ///
    /// # Errors
    ///
    /// The invalidation source could not subscribe ([`InvalidationSource::start`]).
    pub async fn build(self) -> Result<TieredStore, StoreError> {
        let memory_ttl = match (self.memory_ttl, &self.source) {
            (Some(ttl), _) => ttl,
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_MEMORY_TTL),
        };
        let memory = self.memory.unwrap_or_default();
        // With a source, memory answers first only once it is subscribed.
        let tier = Arc::new(Tier::new(memory, memory_ttl, self.source.is_none()));
        if let Some(source) = &self.source {
            source.start(InvalidationSink::new(&tier)).await?;
        }
        Ok(TieredStore {
            backing: self.backing,
            tier,
            source: self.source,
        })
    }
}

/// A bounded [`MemoryStore`] in front of any other store, kept coherent with it.
///
/// - **Reads** ask memory first, then the backing store, and keep what it returns in memory.
///   Memory answers only with copies that are not yet expired (the backing store keeps every
///   entry at least until its expiry, so memory never serves an entry the backing store has
///   dropped by its own TTL), and expired entries are always read from the backing store,
///   which applies its own retention.
/// - **Writes and deletes** go to the backing store and drop the memory copy when they end
///   (returned, failed or cancelled); the next read fills memory with what the backing
///   store kept (of two racing writes of one key, the one written here may not be it).
///   Listing and counting ask the backing store, which is the truth.
/// - **Coherence**: with an [`InvalidationSource`] (Redis: `RedisInvalidations`), a change
///   made by another process drops the copy here as soon as the notice arrives (about a
///   millisecond on loopback; [`TieredStore::sync`] waits for it). When the subscription
///   breaks, memory is flushed and reads go to the backing store until it is back, then
///   memory is flushed again. Without a source, a copy is served for at most the memory
///   TTL ([`DEFAULT_MEMORY_TTL`]): another process's change is seen within it.
/// - **Fail-open**: when the backing store is out of reach (a transient error: down, timed
///   out), a read answers with the memory copy if there is one (even when it would otherwise
///   ask the backing store; any other error, such as a refusal, is the read's), and a write still
///   lands in memory (and the error is returned), served for at most [`DEFAULT_MEMORY_TTL`]
///   even with an invalidation source: a write that never reached the backing store brings
///   no invalidation, and would otherwise be served here, and nowhere else, until it
///   expires.
///
/// ```no_run
/// # async fn run() -> Result<(), cache_core::StoreError> {
/// use cache_tiered::TieredStore;
/// use std::time::Duration;
///
/// // Any store: here SQLite-like local files would need no tier; a remote one does.
/// let backing = cache_core::MemoryStore::new();
/// let store = TieredStore::builder(backing)
///     .memory(cache_core::MemoryStore::bounded(1_000, 64 << 20))
///     .memory_ttl(Duration::from_millis(500))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Note
///
/// A notice travels while the writer's call returns: right after another process's write
/// returns, this process may still answer with the old copy for the notice's latency (the
/// bench measures it) unless it calls [`TieredStore::sync`] first. Copies of this process's
/// own writes are dropped too when the server echoes them (broadcast mode cannot tell
/// writers apart); the first read after a write goes to the backing store anyway.
pub struct TieredStore {
    backing: Arc<dyn CacheStore>,
    pub(crate) tier: Arc<Tier>,
    source: Option<Arc<dyn InvalidationSource>>,
}

impl std::fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("tier", &self.tier)
            .field("backing", &self.backing)
            .field("source", &self.source)
            .finish()
    }
}

/// What the memory tier is doing, from [`TieredStore::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Copies in memory now.
    pub memory_entries: u64,
    /// Keys dropped on notice from the invalidation source.
    pub invalidations: u64,
    /// Times memory was emptied (clears, lost and regained subscriptions).
    pub flushes: u64,
    /// Whether memory answers before the backing store: always without an invalidation
    /// source; with one, while it is subscribed.
    pub memory_first: bool,
}

impl TieredStore {
    /// A builder over `backing`.
    pub fn builder(backing: impl CacheStore) -> TieredStoreBuilder {
        Self::builder_shared(Arc::new(backing))
    }

    /// A builder over a store that is shared already.
    pub fn builder_shared(backing: Arc<dyn CacheStore>) -> TieredStoreBuilder {
        TieredStoreBuilder {
            backing,
            memory: None,
            memory_ttl: None,
            source: None,
        }
    }

    /// The memory tier, to inspect (what it holds, its bounds).
    pub fn memory(&self) -> &MemoryStore {
        self.tier.memory()
    }

    /// The backing store.
    pub fn backing(&self) -> &Arc<dyn CacheStore> {
        &self.backing
    }

    /// The memory TTL in force, if any.
    pub fn memory_ttl(&self) -> Option<Duration> {
        self.tier.memory_ttl()
    }

    /// Counters and state of the memory tier.
    pub fn stats(&self) -> TierStats {
        TierStats {
            memory_entries: self
                .tier
                .memory()
                .count()
                .now_or_never()
                .and_then(Result::ok)
                .unwrap_or(0),
            invalidations: self.tier.invalidations(),
            flushes: self.tier.flushes(),
            memory_first: self.tier.is_live(),
        }
    }

    /// Returns once every change the backing store made before this call has reached the
    /// memory tier ([`InvalidationSource::sync`]); at once without a source.
    ///
    /// # Errors
    ///
    /// The invalidation subscription is down.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match &self.source {
            Some(source) => source.sync().await,
            None => Ok(()),
        }
    }

    /// Reads the backing store and keeps what it returns in memory; when it is out of reach
    /// (a transient failure), answers with the memory copy if there is one. Any other
    /// failure (a refusal, an unreadable value) is the read's: it may last, and the copy
    /// would be served, unchecked, for as long.
    pub(crate) async fn read_through(
        &self,
        key: &CacheKey,
    ) -> Result<Option<StoredEntry>, StoreError> {
        let guard = self.tier.guard(key);
        match self.backing.get(key).await {
            Ok(Some(entry)) => {
                self.tier.fill(entry.clone(), guard);
                Ok(Some(entry))
            }
            Ok(None) => {
                self.tier.invalidate(key);
                Ok(None)
            }
            Err(error) if error.is_transient() => match self.tier.copy(key) {
                Some(copy) => {
                    tracing::debug!(%key, %error, "backing store failed: answering from memory");
                    Ok(Some(copy))
                }
                None => Err(error),
            },
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl CacheStore for TieredStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        if self.tier.is_live() {
            if let Some(copy) = self.tier.copy(key) {
                if self.tier.serves(&copy.meta) {
                    return Ok(Some(copy));
                }
            }
        }
        self.read_through(key).await
    }

    async fn get_decoded(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Result<DecodedEntry, StoreError> {
        self.read_decoded(key, codec).await
    }

    fn get_decoded_now(
        &self,
        key: &CacheKey,
        codec: &EntryCodec,
    ) -> Option<Result<DecodedEntry, StoreError>> {
        self.decoded_from_memory(key, codec).map(Ok)
    }

    /// Its answers at once are the memory tier's copies.
    fn answers_now_from_copies(&self) -> bool {
        true
    }

    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        let key = entry.meta.key;
        // Memory is not filled with what was written: of two writes of one key racing here,
        // this one's may not be the one the backing store kept. The copy is dropped instead
        // (also when this call is cancelled mid-write) and the next read fills it.
        let dropped = ForgetAfterWrite::key(&self.tier, key);
        let written = self.backing.put(entry.clone()).await;
        drop(dropped);
        match written {
            Ok(()) => Ok(()),
            // Fail-open: the backing store is down, memory keeps the entry meanwhile, but
            // briefly: the write may never have reached the backing store, and then no
            // invalidation comes for it.
            Err(error) if error.is_transient() => {
                let guard = self.tier.guard(&key);
                self.tier.fill_briefly(entry, guard, DEFAULT_MEMORY_TTL);
                Err(error)
            }
            // Refused (too large, full): not stored, so no copy either.
            Err(error) => Err(error),
        }
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        let _dropped = ForgetAfterWrite::key(&self.tier, *key);
        self.backing.delete(key).await
    }

    /// Checked and written by the backing store (atomically where it is); memory drops its
    /// copy, as after a put, whatever the outcome.
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let _dropped = ForgetAfterWrite::key(&self.tier, entry.meta.key);
        self.backing.put_if_created(entry, created_at).await
    }

    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let _dropped = ForgetAfterWrite::key(&self.tier, *key);
        self.backing.delete_if_created(key, created_at).await
    }

    fn entries(&self) -> BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.backing.entries()
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let _flushed = ForgetAfterWrite::all(&self.tier);
        self.backing.clear().await
    }

    fn max_value_bytes(&self) -> Option<u64> {
        self.backing.max_value_bytes()
    }

    fn suggested_timeout(&self) -> Duration {
        self.backing.suggested_timeout()
    }

    async fn entries_for_url(&self, url_group: &CacheKey) -> Result<Vec<EntryMeta>, StoreError> {
        self.backing.entries_for_url(url_group).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.backing.count().await
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let deleted = self.backing.delete_expired(now).await;
        // Copies expired at `now` are never served; this frees their memory.
        self.tier.memory().delete_expired(now).await?;
        deleted
    }

    async fn set_expiry(
        &self,
        key: &CacheKey,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        // The next read takes the new expiry from the backing store.
        let _dropped = ForgetAfterWrite::key(&self.tier, *key);
        self.backing.set_expiry(key, expires_at).await
    }
}

/// Drops memory copies when a write ends, however it ends: returned, failed, or cancelled
/// after the backing store applied it (a caller's timeout drops the call's future). A read
/// that began before is spoiled by the bump (its copy does not stick), and one that begins
/// after reads what the write left.
struct ForgetAfterWrite<'a> {
    tier: &'a Tier,
    /// The key written, or `None` for every key (a clear).
    key: Option<CacheKey>,
}

impl<'a> ForgetAfterWrite<'a> {
    fn key(tier: &'a Tier, key: CacheKey) -> Self {
        Self {
            tier,
            key: Some(key),
        }
    }

    fn all(tier: &'a Tier) -> Self {
        Self { tier, key: None }
    }
}

impl Drop for ForgetAfterWrite<'_> {
    fn drop(&mut self) {
        match &self.key {
            Some(key) => self.tier.invalidate(key),
            None => self.tier.flush(),
        }
    }
}

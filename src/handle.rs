//! [`CacheHandle`]: inspect and manage the cache.
//!
//! Calls `cache`, `error`, `inspect`, `observe`, `rekey`, `stats`, `store_calls` (nothing
//! that calls it).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cache_core::orphans::DeletedParents;
use cache_core::{CacheKey, CacheStore, CachedResponse, Decoded, Entry, EntryMeta};
use cache_http::vary::variant_key;

use cache_http::{Expiration, KeyRules};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, Method};
use url::Url;

use crate::cache::Cache;
use crate::error::Error;
use crate::inspect::{self, EntryFilter, Matched};
use crate::observe::StoreOp;
use crate::rekey::{self, Rekeyed};
use crate::runtime_settings::RuntimeSettings;
use crate::stats::CacheStats;
use crate::store_calls::StoreCalls;

/// How many store timeouts a call over every entry (`count`, `clear`, `delete_expired`) may
/// take before [`CacheHandle`] gives up with [`StoreError::Timeout`](crate::StoreError): 12,
/// so 60 s for embedded stores and 12 to 36 s for remote ones by default.
pub const WHOLE_STORE_TIMEOUT_FACTOR: u32 = 12;

/// A stored entry: its metadata and the decoded response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedEntry {
    /// Key, URL, creation and expiry.
    pub meta: EntryMeta,
    /// The stored response.
    pub response: CachedResponse,
}

/// Inspects and manages the cache behind a [`CacheMiddleware`](crate::CacheMiddleware).
/// Clone it freely; clones share the store and the counters.
///
/// | requests-cache | reqwest-caching |
/// |---|---|
/// | `session.cache.contains(url=...)` | [`contains_url`](Self::contains_url) |
/// | `session.cache.delete(urls=[...])` | [`delete_url`](Self::delete_url) |
/// | `session.cache.delete(expired=True)` | [`delete_expired`](Self::delete_expired) |
/// | `session.cache.delete(older_than=...)` | [`delete_older_than`](Self::delete_older_than) |
/// | `session.cache.reset_expiration(...)` / `remove_expired_responses(expire_after=...)` | [`reset_expiration`](Self::reset_expiration) |
/// | `session.cache.clear()` | [`clear`](Self::clear) |
/// | `session.cache.urls()` | [`urls`](Self::urls) |
/// | `session.cache.recreate_keys()` | [`recreate_keys`](Self::recreate_keys) |
/// | `session.cache.filter(expired=.., invalid=.., older_than=..)` | [`responses`](Self::responses), [`matching`](Self::matching) with an [`EntryFilter`] |
/// | `session.cache.delete(expired=.., invalid=.., older_than=..)` | [`delete_matching`](Self::delete_matching), [`delete_invalid`](Self::delete_invalid) |
/// | `session.cache.contains(request=..)`, `delete(requests=[..])` | [`contains_request`](Self::contains_request), [`delete_request`](Self::delete_request) |
///
/// ```no_run
/// use reqwest_caching::CacheMiddleware;
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), reqwest_caching::Error> {
/// let cache = CacheMiddleware::new()?;
/// let handle = cache.handle();
/// handle.delete_older_than(Duration::from_secs(7 * 24 * 3600)).await?;
/// println!("{} entries, {:?}", handle.count().await?, handle.stats());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CacheHandle {
    cache: Arc<Cache>,
}

impl CacheHandle {
    pub(crate) fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    /// The store, as the cache calls it (bounded, guarded by the breaker).
    fn calls(&self) -> &StoreCalls {
        &self.cache.live.store
    }

    /// The store itself, for raw access (backups, diagnostics). Values are encoded entries
    /// ([`cache_core::codec`]); writing through it bypasses the middleware's bounds.
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.calls().store
    }

    /// The key a request with this method and URL gets when it carries no headers and no
    /// body. Requests with credentials, matched headers or a body, and Vary variants, are
    /// stored under other keys: [`keys_for_url`](Self::keys_for_url) lists them all.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `url` does not parse.
    pub fn key_for(&self, method: &Method, url: &str) -> Result<CacheKey, Error> {
        let url = parse_url(url)?;
        Ok(self
            .cache
            .settings
            .keys
            .key(method, &url, &HeaderMap::new(), None))
    }

    /// The keys of every entry stored for `url`: every method, credential, matched header,
    /// body and Vary variant (and the Vary index itself), sorted. Found through the store's
    /// index of URLs, not a scan. Entries written by versions before 0.2 are not listed (they
    /// carry no URL group); they are still found by [`key_for`](Self::key_for).
    ///
    /// # Errors
    ///
    /// An invalid URL, or the store's.
    pub async fn keys_for_url(&self, url: &str) -> Result<Vec<CacheKey>, Error> {
        let mut keys: Vec<CacheKey> = self
            .entries_for_url(&parse_url(url)?)
            .await?
            .into_iter()
            .map(|meta| meta.key)
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn entries_for_url(&self, url: &Url) -> Result<Vec<EntryMeta>, Error> {
        let group = self.cache.settings.keys.url_group(url);
        let listed = self.calls().store.entries_for_url(&group);
        Ok(self.calls().bounded(StoreOp::List, listed).await?)
    }

    /// True when an entry is stored under `key`.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn contains(&self, key: &CacheKey) -> Result<bool, Error> {
        Ok(self.get(key).await?.is_some())
    }

    /// True when a response to a `GET` of `url` is stored, for any credential, headers or
    /// variant (see [`get_url`](Self::get_url)).
    ///
    /// # Errors
    ///
    /// An invalid URL, or the store's.
    pub async fn contains_url(&self, url: &str) -> Result<bool, Error> {
        Ok(self.get_url(url).await?.is_some())
    }

    /// The response stored under `key` (for a URL whose responses vary, the variant a request
    /// without headers selects). An unreadable entry is deleted and reported as absent.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn get(&self, key: &CacheKey) -> Result<Option<CachedEntry>, Error> {
        self.get_selected(key, &HeaderMap::new()).await
    }

    /// The response under `key`, or the variant a request with `headers` selects.
    async fn get_selected(
        &self,
        key: &CacheKey,
        headers: &HeaderMap,
    ) -> Result<Option<CachedEntry>, Error> {
        let key = match self.read(key).await? {
            Some((meta, Entry::Response(response))) => {
                return Ok(Some(CachedEntry { meta, response }));
            }
            Some((_, Entry::VaryIndex(index))) => variant_key(key, &index, headers),
            _ => return Ok(None),
        };
        match self.read(&key).await? {
            Some((meta, Entry::Response(response))) => Ok(Some(CachedEntry { meta, response })),
            _ => Ok(None),
        }
    }

    async fn read(&self, key: &CacheKey) -> Result<Option<(EntryMeta, Entry)>, Error> {
        let found = self.calls().get(key).await?;
        Ok(found.map(Decoded::into_parts))
    }

    /// The most recently stored response to a `GET` of `url`, whatever credential, headers or
    /// Vary variant it was stored for (this is the operator's view: the middleware itself
    /// never serves one credential's response to another).
    ///
    /// # Errors
    ///
    /// An invalid URL, or the store's.
    pub async fn get_url(&self, url: &str) -> Result<Option<CachedEntry>, Error> {
        let parsed = parse_url(url)?;
        let mut candidates = self.entries_for_url(&parsed).await?;
        candidates.sort_by_key(|meta| std::cmp::Reverse(meta.created_at));
        for meta in candidates {
            if let Some((meta, Entry::Response(response))) = self.read(&meta.key).await? {
                if response.request.method == Method::GET {
                    return Ok(Some(CachedEntry { meta, response }));
                }
            }
        }
        // An entry written before URL groups existed.
        self.get(&self.key_for(&Method::GET, url)?).await
    }

    /// Deletes the entry under `key`; true when there was one. A Vary index's variants go
    /// with it (left, they came back as fresh hits once a request stored a new index, whose
    /// variants have the same keys), and a response for its URL on its way to the store is
    /// not stored after it, as [`CacheHandle::delete_url`] does.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn delete(&self, key: &CacheKey) -> Result<bool, Error> {
        let Some(meta) = self.calls().stored_meta(key).await? else {
            // Nothing this build can read: deleted as it is.
            return self.delete_as_stored(key).await;
        };
        if let Some(group) = &meta.url_group {
            self.cache.live.url_changes.changed(group);
        }
        let removed = self.delete_listed(std::slice::from_ref(&meta)).await? > 0;
        // Written again since it was read: the key's entry goes all the same.
        let removed = removed || self.delete_as_stored(key).await?;
        if let Some(group) = meta.url_group {
            self.cache.hold_back_if_unsettled(group);
        }
        Ok(removed)
    }

    /// Deletes the entry under `key`, nothing else; true when there was one.
    async fn delete_as_stored(&self, key: &CacheKey) -> Result<bool, Error> {
        let calls = self.calls();
        Ok(calls
            .bounded(StoreOp::Delete, calls.store.delete(key))
            .await?)
    }

    /// Deletes every entry stored for `url`: every method, credential, matched header, body
    /// and Vary variant; returns how many existed.
    ///
    /// # Errors
    ///
    /// An invalid URL, or the store's.
    pub async fn delete_url(&self, url: &str) -> Result<u64, Error> {
        let parsed = parse_url(url)?;
        // First: a response for the URL on its way to the store is not stored after.
        let url_group = self.cache.mark_changed(&parsed);
        let mut keys: BTreeSet<CacheKey> = self
            .entries_for_url(&parsed)
            .await?
            .into_iter()
            .map(|meta| meta.key)
            .collect();
        // Entries written before URL groups existed.
        for method in [Method::GET, Method::HEAD] {
            keys.insert(self.key_for(&method, url)?);
        }
        // Every entry of the URL, variants included: each deleted as it is.
        let mut removed = 0;
        for key in &keys {
            if self.delete_as_stored(key).await? {
                removed += 1;
            }
        }
        self.cache.hold_back_if_unsettled(url_group);
        Ok(removed)
    }

    /// Deletes every expired entry; returns how many.
    ///
    /// # Errors
    ///
    /// The store's; [`StoreError::Timeout`](crate::StoreError::Timeout) after [`WHOLE_STORE_TIMEOUT_FACTOR`] times the
    /// store timeout.
    pub async fn delete_expired(&self) -> Result<u64, Error> {
        let now = self.cache.settings.clock.now();
        self.whole_store(self.calls().store.delete_expired(now))
            .await
    }

    /// Deletes every entry stored more than `age` ago; returns how many.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn delete_older_than(&self, age: Duration) -> Result<u64, Error> {
        let now = self.cache.settings.clock.now();
        let Some(cutoff) = now.checked_sub(age) else {
            return Ok(0);
        };
        let old = self.list(|meta| meta.created_at < cutoff).await?;
        self.delete_listed(&old).await
    }

    /// Deletes each listed entry that is still the one listed: an entry written under its
    /// key since the listing (which no longer is what was selected) stays. The variants of a
    /// Vary index deleted go too, whatever the selection made of them: no lookup reaches a
    /// variant but through its index (an index keeps the time it was first written, so
    /// `older_than` takes it before the variants written since). Returns how many were
    /// deleted.
    async fn delete_listed(&self, listed: &[EntryMeta]) -> Result<u64, Error> {
        let calls = self.calls();
        let mut removed = 0;
        // Variants written from now on belong to an index written since, not to one deleted
        // here (requests go on meanwhile): only older ones are orphans.
        let started = self.cache.settings.clock.now();
        let mut parents = DeletedParents::default();
        for meta in listed {
            if calls.delete_if_created(&meta.key, meta.created_at).await? {
                removed += 1;
                parents.note(meta);
            }
        }
        if parents.is_empty() {
            return Ok(removed);
        }
        // Found through the index of URLs (a listing of every entry only for a bulk delete).
        let orphans = match parents.lookups() {
            Some(groups) => {
                let mut orphans = Vec::new();
                for group in groups {
                    // As long as a listing may take: a store without an index of URLs lists
                    // every entry for each.
                    let found = self.whole_store(calls.store.entries_for_url(group)).await?;
                    orphans.extend(found.into_iter().filter(|m| parents.is_orphan(m, started)));
                }
                orphans
            }
            None => self.list(|meta| parents.is_orphan(meta, started)).await?,
        };
        for meta in orphans {
            removed += u64::from(calls.delete_if_created(&meta.key, meta.created_at).await?);
        }
        Ok(removed)
    }

    /// Gives every entry a new expiry computed from now (as requests-cache's
    /// `reset_expiration`); [`Expiration::DoNotCache`] deletes them all. Returns how many
    /// entries were changed.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn reset_expiration(&self, expiration: Expiration) -> Result<u64, Error> {
        if !expiration.is_cacheable() {
            return self.clear().await;
        }
        let expires_at = expiration.expires_at(self.cache.settings.clock.now());
        let mut changed = 0;
        for meta in self.list(|_| true).await? {
            let renewed = self.calls().store.set_expiry(&meta.key, expires_at);
            if self.calls().bounded(StoreOp::Put, renewed).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Deletes every entry; returns how many.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn clear(&self) -> Result<u64, Error> {
        self.cache.live.url_changes.all_changed();
        let cleared = self.whole_store(self.calls().store.clear()).await?;
        match self.calls().unsettled.groups(std::time::Instant::now()) {
            Some(groups) => groups
                .into_iter()
                .for_each(|group| self.cache.hold_back_if_unsettled(group)),
            // More URLs than are remembered one by one: all of them.
            None => {
                let now = self.cache.settings.clock.now();
                self.cache.live.unfinished_invalidations.note_all(now);
            }
        }
        Ok(cleared)
    }

    /// The distinct URLs with entries, sorted; each as it was requested, less its ignored and
    /// credential parameters.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn urls(&self) -> Result<Vec<String>, Error> {
        let urls: BTreeSet<String> = self
            .list(|_| true)
            .await?
            .into_iter()
            .map(|meta| meta.url)
            .collect();
        Ok(urls.into_iter().collect())
    }

    /// How many entries are stored.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn count(&self) -> Result<u64, Error> {
        self.whole_store(self.calls().store.count()).await
    }

    /// The metadata of the entries `select` keeps. Each step of the listing is a store call
    /// bounded by the store timeout and the circuit breaker, as requests' calls are.
    async fn list(&self, select: impl Fn(&EntryMeta) -> bool) -> Result<Vec<EntryMeta>, Error> {
        let mut entries = self.calls().store.entries();
        let mut kept = Vec::new();
        loop {
            let step = async { entries.next().await.transpose() };
            match self.calls().bounded(StoreOp::List, step).await? {
                Some(meta) if select(&meta) => kept.push(meta),
                Some(_) => {}
                None => return Ok(kept),
            }
        }
    }

    /// A call over every entry at once (count, clear, delete_expired): bounded by the breaker
    /// and by [`WHOLE_STORE_TIMEOUT_FACTOR`] times the store timeout (a large store takes a
    /// while; a hung one must still give the caller an answer).
    async fn whole_store<T>(
        &self,
        call: impl Future<Output = Result<T, cache_core::StoreError>>,
    ) -> Result<T, Error> {
        // Saturating: `Duration::MAX` ("no limit") times the factor overflowed, a panic.
        let timeout = self
            .calls()
            .store_timeout
            .saturating_mul(WHOLE_STORE_TIMEOUT_FACTOR);
        Ok(self
            .calls()
            .bounded_for(StoreOp::List, timeout, call)
            .await?)
    }

    /// The stored responses `filter` takes, as a stream (read one at a time: a large store
    /// is never held in memory). Vary indexes, and entries that do not decode, are not
    /// responses and are never yielded. As requests-cache's `session.cache.filter(..)`.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use reqwest_caching::{CacheMiddleware, EntryFilter};
    ///
    /// # async fn run() -> Result<(), reqwest_caching::Error> {
    /// let handle = CacheMiddleware::new()?.handle();
    /// let mut expired = handle.responses(EntryFilter::new().expired(true).url("example.com/api"));
    /// while let Some(entry) = expired.try_next().await? {
    ///     println!("{} {}", entry.meta.url, entry.response.status);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Each item: the store's, or (first and only) [`Error::InvalidPattern`] /
    /// [`Error::InvalidRegex`] for the filter's URL pattern.
    pub fn responses(&self, filter: EntryFilter) -> BoxStream<'_, Result<CachedEntry, Error>> {
        let now = self.cache.settings.clock.now();
        inspect::matching(self.calls(), filter, now, true)
            .filter_map(|matched| async move {
                match matched {
                    Err(error) => Some(Err(error)),
                    Ok(Matched {
                        meta,
                        decoded: Some(Some(Entry::Response(response))),
                    }) => Some(Ok(CachedEntry { meta, response })),
                    Ok(_) => None,
                }
            })
            .boxed()
    }

    /// The metadata of every entry `filter` takes, Vary indexes and undecodable entries
    /// included.
    ///
    /// # Errors
    ///
    /// The store's; an invalid URL pattern.
    pub async fn matching(&self, filter: EntryFilter) -> Result<Vec<EntryMeta>, Error> {
        let now = self.cache.settings.clock.now();
        let mut found = inspect::matching(self.calls(), filter, now, false);
        let mut metas = Vec::new();
        while let Some(matched) = found.next().await {
            metas.push(matched?.meta);
        }
        Ok(metas)
    }

    /// Deletes every entry `filter` takes (as requests-cache's `delete(expired=..,
    /// invalid=.., older_than=..)`); returns how many were deleted.
    ///
    /// # Errors
    ///
    /// The store's; an invalid URL pattern.
    pub async fn delete_matching(&self, filter: EntryFilter) -> Result<u64, Error> {
        let matched = self.matching(filter).await?;
        self.delete_listed(&matched).await
    }

    /// Deletes every entry that does not decode (an incompatible version, damage, a failed
    /// signature); returns how many.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn delete_invalid(&self) -> Result<u64, Error> {
        self.delete_matching(EntryFilter::new().invalid(true)).await
    }

    /// The key `request` gets: its method, URL, headers the key matches, credentials and
    /// body, as the middleware keys it. `None` for a request with a streaming body, which
    /// the cache never stores.
    pub fn key_for_request(&self, request: &reqwest::Request) -> Option<CacheKey> {
        let body = match request.body() {
            None => None,
            Some(body) => Some(body.as_bytes()?),
        };
        Some(
            self.cache
                .settings
                .keys
                .key(request.method(), request.url(), request.headers(), body),
        )
    }

    /// The response stored for `request` (the Vary variant its headers select), as the
    /// middleware would find it, fresh or not. One an unsafe request's invalidation could
    /// not delete (the store was down) is returned too, though the middleware no longer
    /// serves it: this shows what the store holds.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn get_request(
        &self,
        request: &reqwest::Request,
    ) -> Result<Option<CachedEntry>, Error> {
        match self.key_for_request(request) {
            Some(key) => self.get_selected(&key, request.headers()).await,
            None => Ok(None),
        }
    }

    /// True when a response is stored for `request` (its method, URL, matched headers,
    /// credentials, body and Vary variant), as requests-cache's `contains(request=..)`.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn contains_request(&self, request: &reqwest::Request) -> Result<bool, Error> {
        Ok(self.get_request(request).await?.is_some())
    }

    /// Deletes the response stored for `request` (the variant it selects, when the URL's
    /// responses vary); true when there was one. Other requests to the URL keep theirs.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn delete_request(&self, request: &reqwest::Request) -> Result<bool, Error> {
        let url_group = self.cache.mark_changed(request.url());
        let deleted = match self.get_request(request).await? {
            Some(entry) => self.delete(&entry.meta.key).await?,
            None => false,
        };
        // Also when nothing was there yet: a write of it may still land.
        self.cache.hold_back_if_unsettled(url_group);
        Ok(deleted)
    }

    /// Moves stored responses to the keys the current key settings give them, as
    /// requests-cache's `recreate_keys()`: after a change of ignored parameters, matched
    /// headers or [`key_fn`](crate::CacheMiddlewareBuilder::key_fn), entries stored under
    /// the old keys are reachable again instead of lying unused. `previous` are the key rules
    /// they were stored with (build them as the builder did: `KeyRules::default()
    /// .ignored_parameters(..).match_headers(..)`).
    ///
    /// An entry moves only when its stored request, keyed with `previous`, gives its key:
    /// entries of requests with credentials or a body (neither is stored), and entries whose
    /// key the stored request cannot explain, stay where they are, as do Vary variants and
    /// indexes and entries that do not decode: all counted in [`Rekeyed::skipped`]. A
    /// parameter the old rules removed from the stored request cannot come back: such an
    /// entry moves to the key of the request without it. When two entries meet at one key,
    /// the newer stays.
    ///
    /// ```no_run
    /// use reqwest_caching::cache_http::KeyRules;
    /// use reqwest_caching::CacheMiddleware;
    ///
    /// # async fn run() -> Result<(), reqwest_caching::Error> {
    /// let cache = CacheMiddleware::builder().ignored_parameters(["nonce"]).build()?;
    /// let moved = cache.handle().recreate_keys(&KeyRules::default()).await?;
    /// println!("{} moved, {} skipped", moved.moved, moved.skipped);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The store's (what was moved before it stays moved). A store that reports itself
    /// full while the live traffic fills it (SQLite's write queue) is given a few more tries
    /// over about 2.5 s first.
    pub async fn recreate_keys(&self, previous: &KeyRules) -> Result<Rekeyed, Error> {
        rekey::recreate_keys(&self.cache, previous).await
    }

    /// Changes the settings that may change while the cache runs (expiration, URL patterns,
    /// the session's mode, always-revalidate): `change` gets the current ones and returns the
    /// new. The change is atomic: each request reads the settings once, when it starts, so
    /// a request in flight finishes under the version it started with and never sees half
    /// of a change. Concurrent calls apply one after the other.
    ///
    /// ```
    /// use reqwest_caching::{CacheMiddleware, CacheMode, MemoryStore};
    ///
    /// let handle = CacheMiddleware::builder().store(MemoryStore::new()).build()?.handle();
    /// // The network is gone: serve what is stored until it is back.
    /// handle.reconfigure(|settings| settings.mode(CacheMode::Offline))?;
    /// # Ok::<(), reqwest_caching::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] / [`Error::InvalidRegex`] for a URL pattern that does not
    /// compile; nothing changes then.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(RuntimeSettings) -> RuntimeSettings,
    ) -> Result<(), Error> {
        self.cache.settings.reconfigure(change)
    }

    /// The settings that may change at runtime, as they are now.
    pub fn settings(&self) -> RuntimeSettings {
        self.cache.settings.runtime.load().settings.clone()
    }

    /// Turns read-only on or off for every request from now on (see
    /// [`read_only`](crate::CacheMiddlewareBuilder::read_only)).
    pub fn set_read_only(&self, on: bool) {
        self.calls().set_read_only(on);
    }

    /// True when requests do not change the store.
    pub fn is_read_only(&self) -> bool {
        self.calls().is_read_only()
    }

    /// How many `stale-while-revalidate` refreshes are running in the background.
    pub fn pending_refreshes(&self) -> usize {
        self.cache.live.refresher.pending()
    }

    /// The counters since the middleware was built.
    pub fn stats(&self) -> CacheStats {
        self.cache.live.stats.snapshot()
    }
}

fn parse_url(url: &str) -> Result<Url, Error> {
    Url::parse(url).map_err(|source| Error::InvalidUrl {
        url: url.to_owned(),
        source,
    })
}

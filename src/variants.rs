//! Writing a response where its request's lookup will find it: under the URL key, or, when
//! the response varies (RFC 9111 §4.1), as a variant beside a Vary index at the URL key.
//!
//! Every entry written here carries the URL's group, so URL operations and invalidations
//! reach it, and every variant names the index it belongs to, so the index always knows its
//! variants: replacing the index with another header list, or with a response that does not
//! vary, removes them first. Nothing is left that no lookup can reach.
//!
//! Calls the store through [`StoreCalls`] only.

use std::borrow::Cow;
use std::time::SystemTime;

use cache_core::{CacheKey, CachedResponse, Decoded, Entry, EntryMeta, StoredEntry, VaryIndex};
use cache_http::vary::{Vary, parse_vary, variant_key};
use futures_util::FutureExt;
use http::HeaderMap;

use crate::read_index::ReadIndex;
use crate::store_calls::StoreCalls;
use crate::warnings::error_chain;

/// What the request's lookup saw under the URL key.
#[derive(Clone, Debug)]
pub(crate) enum SeenIndex {
    /// The lookup was skipped (a forced refresh): read it before writing.
    Unknown,
    /// The URL key's Vary index (with its metadata), or `None` when it held none.
    Known(Option<ReadIndex>),
}

/// Where a response is written: the request's keys and what its lookup saw.
pub(crate) struct Placement<'a> {
    /// The request's key before any variant.
    pub(crate) url_key: CacheKey,
    /// The URL's group, shared by every entry of the URL.
    pub(crate) url_group: CacheKey,
    /// The redacted URL the entries are listed under.
    pub(crate) meta_url: &'a str,
    /// The request's headers, which select the variant.
    pub(crate) request_headers: &'a HeaderMap,
    pub(crate) seen: &'a SeenIndex,
}

impl Placement<'_> {
    pub(crate) fn meta(
        &self,
        key: CacheKey,
        now: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> EntryMeta {
        EntryMeta::new(key, self.meta_url, now, expires_at).with_url_group(Some(self.url_group))
    }
}

/// Writes `cached` (and, when it varies, the Vary index); returns the key the response went
/// to, `None` when nothing was stored. An owned `cached` goes to the store itself (see
/// [`StoreCalls::save_response`]: unencoded where the codec allows, and a store that keeps
/// decoded forms keeps it); the caller passes it owned when it no longer needs it, so
/// nothing is cloned for that.
///
/// [`writes_at_once`] says when this is a single [`save`].
pub(crate) async fn save_response(
    store: &StoreCalls,
    place: &Placement<'_>,
    cached: Cow<'_, CachedResponse>,
    now: SystemTime,
    expires_at: Option<SystemTime>,
) -> Option<CacheKey> {
    let names = match parse_vary(&cached.headers) {
        Vary::Any => return None,
        Vary::None => {
            if current_index(store, place).await.is_some() {
                remove_variants(store, place).await;
            }
            let meta = place.meta(place.url_key, now, expires_at);
            return save(store, meta, cached).await;
        }
        Vary::Headers(names) => names,
    };
    let current = current_index(store, place).await;
    let replacing = current
        .as_ref()
        .is_some_and(|read| read.index().headers != names);
    if replacing {
        remove_variants(store, place).await;
    }
    let same = current.filter(|read| read.index().headers == names);
    let new_list = same.is_none();
    let index = match &same {
        // Kept as it is, generation included: its variants stay reachable.
        Some(read) => read.index().clone(),
        // Every writer of a new list picks the same generation, so two instances writing
        // the first variants at once agree on their keys.
        None => VaryIndex {
            headers: names,
            generation: 0,
        },
    };
    let index_lasts = same
        .as_ref()
        .is_some_and(|read| outlives(read.meta().expires_at, expires_at));
    if !index_lasts {
        let value = store.encode_vary_index(&index, &place.url_key)?;
        let meta = place.meta(place.url_key, now, expires_at);
        if !store.save(StoredEntry::new(meta, value)).await {
            return None;
        }
    }
    let key = variant_key(&place.url_key, &index, place.request_headers);
    let meta = place
        .meta(key, now, expires_at)
        .with_variant_of(Some(place.url_key));
    let stored = save(store, meta, cached).await?;
    if new_list && !still_indexed(store, place, &index).await {
        // Another writer put another header list in place meanwhile: this variant is not
        // reachable from it.
        store.forget(&stored).await;
        return None;
    }
    Some(stored)
}

/// True when [`save_response`] writes `cached` with one [`save`] under the request's key: it
/// does not vary, and the lookup saw no Vary index there (nearly every response).
pub(crate) fn writes_at_once(seen: &SeenIndex, cached: &CachedResponse) -> bool {
    matches!(seen, SeenIndex::Known(None)) && parse_vary(&cached.headers) == Vary::None
}

/// Before a response that does not vary is written under the URL key by other means (a
/// body streamed to the store): removes the variants of the Vary index it will replace.
pub(crate) async fn clear_variants(store: &StoreCalls, place: &Placement<'_>) {
    if current_index(store, place).await.is_some() {
        remove_variants(store, place).await;
    }
}

/// After a `304` renewed a variant until `expires_at`: its index must last as long, or a
/// store with native TTLs would drop the index first and every later request would miss.
pub(crate) async fn renew_index(
    store: &StoreCalls,
    url_key: &CacheKey,
    index_meta: &EntryMeta,
    expires_at: Option<SystemTime>,
) {
    if outlives(index_meta.expires_at, expires_at) {
        return;
    }
    if let Err(error) = store.set_expiry(url_key, expires_at).await {
        tracing::debug!(key = %url_key, error = %error_chain(&error), "Vary index not renewed");
    }
}

/// The URL key's Vary index as the lookup saw it, or as stored now when it was not looked up.
async fn current_index(store: &StoreCalls, place: &Placement<'_>) -> Option<ReadIndex> {
    match place.seen {
        SeenIndex::Known(index) => index.clone(),
        SeenIndex::Unknown => {
            let read = store.read(&place.url_key).await;
            read.and_then(|decoded| ReadIndex::of(decoded).ok())
        }
    }
}

/// Deletes every variant of the URL key's index.
async fn remove_variants(store: &StoreCalls, place: &Placement<'_>) {
    for meta in store.entries_for_url(&place.url_group).await {
        if meta.variant_of == Some(place.url_key) {
            store.forget(&meta.key).await;
        }
    }
}

/// True when the URL key still holds an index naming the same headers.
async fn still_indexed(store: &StoreCalls, place: &Placement<'_>, index: &VaryIndex) -> bool {
    match store.read(&place.url_key).await.as_deref() {
        Some(Decoded {
            entry: Entry::VaryIndex(stored),
            ..
        }) => stored.headers == index.headers,
        // Gone or replaced by a response that does not vary (whose writer removed the
        // variants it could see): this one would be unreachable.
        _ => false,
    }
}

/// True when an index expiring at `index_expiry` lasts at least as long as an entry expiring
/// at `entry_expiry` (`None`: never expires).
fn outlives(index_expiry: Option<SystemTime>, entry_expiry: Option<SystemTime>) -> bool {
    match (index_expiry, entry_expiry) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

/// Writes `cached` under `meta`; when the caller gives it up (owned), the store gets it (see
/// [`StoreCalls::save_response`]). Never cloned for that. Not an `async fn`, for the reason
/// `StoreCalls::save_response` gives.
pub(crate) fn save<'a>(
    store: &'a StoreCalls,
    meta: EntryMeta,
    cached: Cow<'_, CachedResponse>,
) -> impl Future<Output = Option<CacheKey>> + Send + 'a {
    let key = meta.key;
    store
        .save_response(meta, cached)
        .map(move |saved| saved.then_some(key))
}

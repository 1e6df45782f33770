//! Re-keying ([`recreate_keys`]): after the key settings change (ignored parameters, matched
//! headers, a key function), every stored response whose stored request still holds all its
//! key was made of is moved to the key the current settings give it, instead of lying
//! unreachable under the old one.
//!
//! Calls `cache`, `store_calls`, `full_retry`, `error` (nothing that calls it).

use cache_core::{Entry, EntryMeta, StoredEntry};
use cache_http::KeyRules;
use futures_util::StreamExt;
use url::Url;

use crate::cache::Cache;
use crate::error::Error;
use crate::full_retry::retrying_while_full;
use crate::observe::StoreOp;

/// What [`CacheHandle::recreate_keys`](crate::CacheHandle::recreate_keys) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rekeyed {
    /// Responses moved to their new key (or dropped: a newer one is already there, or their
    /// URL changed while they were moved).
    pub moved: u64,
    /// Responses whose key did not change.
    pub unchanged: u64,
    /// Entries left where they are: their stored request no longer holds what their key was
    /// made of (a credential, a body, parameters the old rules removed), they are Vary
    /// variants or indexes, redirect aliases, or they do not decode.
    pub skipped: u64,
}

/// Moves every stored response keyed by `previous` to its key under the cache's settings.
pub(crate) async fn recreate_keys(cache: &Cache, previous: &KeyRules) -> Result<Rekeyed, Error> {
    let calls = &cache.live.store;
    // Listed first: the listing must not see the entries this moves.
    let mut metas: Vec<EntryMeta> = Vec::new();
    let mut entries = calls.store.entries();
    loop {
        let step = async { entries.next().await.transpose() };
        match calls.bounded(StoreOp::List, step).await? {
            Some(meta) => metas.push(meta),
            None => break,
        }
    }
    drop(entries);
    let mut done = Rekeyed::default();
    let changes = &cache.live.url_changes;
    for meta in metas {
        // Taken before the entry is read: an unsafe request (or the handle) that changes its
        // URL from then on must not see the response it invalidated written back under the
        // new key (see `url_changes`). Its group as listed, and below as the rules now make it.
        let listed_group = meta.url_group.map(|group| changes.seen(&group));
        let Some((meta, Some(Entry::Response(response)))) = calls.inspect(&meta.key).await? else {
            done.skipped += 1;
            continue;
        };
        let request = &response.request;
        let url = match Url::parse(&request.url) {
            Ok(url) if meta.variant_of.is_none() => url,
            _ => {
                done.skipped += 1;
                continue;
            }
        };
        // Only a request that, keyed by the old rules, gives the entry's key holds all its key
        // was made of: a credential's entry never moves to the key of a request without it.
        let (method, headers) = (&request.method, &request.headers);
        if previous.key(method, &url, headers, None) != meta.key {
            done.skipped += 1;
            continue;
        }
        let key = cache.settings.keys.key(method, &url, headers, None);
        if key == meta.key {
            done.unchanged += 1;
            continue;
        }
        let url_group = cache.settings.keys.url_group(&url);
        let seen = (changes.seen(&url_group), listed_group);
        let changed = || changes.changed_since_either(seen);
        let newer_there = calls
            .inspect(&key)
            .await?
            .is_some_and(|(there, _)| there.created_at >= meta.created_at);
        if !newer_there && !changed() {
            let Some(value) = calls.encode(&response, &key) else {
                done.skipped += 1;
                continue;
            };
            let moved = EntryMeta::new(key, meta.url.clone(), meta.created_at, meta.expires_at)
                .with_url_group(Some(url_group));
            let moved = StoredEntry::new(moved, value);
            let put = || calls.bounded(StoreOp::Put, calls.store.put(moved.clone()));
            retrying_while_full(put).await?;
            if changed() {
                // Changed while it was written: the move goes again (a newer write stays).
                calls.delete_if_created(&key, meta.created_at).await?;
            }
        }
        // Only the entry moved: one written there since stays.
        calls.delete_if_created(&meta.key, meta.created_at).await?;
        done.moved += 1;
    }
    Ok(done)
}

//! Caching a body larger than `max_body_size`, or slower to end than `stream_after`, while
//! it streams to the caller, in a store that keeps bodies in files
//! ([`cache_core::BodyFiles`]): each chunk is written to the store's spool, then handed to
//! the caller, so the caller's reads drive the writes and memory holds a chunk (and the
//! store's batch), never the body. The entry is committed when the body ends, before the
//! caller sees the end, so the next request finds it; the request's single flight lasts
//! until then. An origin error, or a caller that drops the body early, drops the spool and
//! its file: nothing is stored.
//!
//! Only responses that do not vary, under the request's URL key (no Vary variant, no
//! redirect alias; a redirected one only outside strict mode, which stores it for its final
//! URL alone). With signatures on, only bodies whose length the origin announced
//! (the signature covers the length, which precedes the body).
//!
//! Calls [`variants`](crate::variants), the store calls and leaf modules.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use cache_core::codec::BodyEncoder;
use cache_core::{BodySpool, CacheKey, CachedResponse, EntryMeta};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::body::{rejoin, whole_stream};
use crate::cache::Cache;
use crate::flight::LeaderGuard;
use crate::info::CacheInfo;
use crate::response_parts::ResponseParts;
use crate::sized_body;
use crate::store_calls::{may_have_written, within};
use crate::url_changes::Seen;
use crate::variants::{Placement, clear_variants};

/// What the spooled entry will be: the response to store (its body empty), where, until when.
pub(crate) struct Plan<'a> {
    pub(crate) cached: CachedResponse,
    pub(crate) place: Placement<'a>,
    pub(crate) meta: EntryMeta,
    /// The body's length, as the origin announced it.
    pub(crate) announced: Option<u64>,
    /// The URL's invalidation counter as the request went out, and the final URL's after a
    /// redirect: a change to either since is not committed over.
    pub(crate) changes: (Seen, Option<Seen>),
}

/// The caller's response, streaming `read` then the rest of `rest`, written to the store as
/// it goes when the store can take it; passed on uncached otherwise.
pub(crate) async fn spool_response(
    cache: &Arc<Cache>,
    plan: Plan<'_>,
    (parts, read, rest): (ResponseParts, Vec<Bytes>, reqwest::Response),
    not_stored: CacheInfo,
    leader: Option<LeaderGuard>,
) -> reqwest::Response {
    let store = &cache.live.store;
    let key = plan.meta.key;
    let Some(encoder) = store.body_encoder(&key, &plan.cached, plan.announced) else {
        return rejoin(parts, (read, rest), plan.announced, not_stored);
    };
    clear_variants(store, &plan.place).await;
    let Some(spool) = store.begin_spool(&key).await else {
        return rejoin(parts, (read, rest), plan.announced, not_stored);
    };
    let writing = Writing {
        timeout: store.store_timeout,
        body: whole_stream(read, rest).boxed(),
        spool: Some(spool),
        encoder: Some(encoder),
        meta: Some(plan.meta),
        cache: Arc::downgrade(cache),
        changes: plan.changes,
        _leader: leader,
    };
    let body = futures_util::stream::unfold(writing, Writing::next);
    // Not stored yet: only once the caller has read the body to its end.
    let info = CacheInfo {
        key: Some(key),
        ..not_stored
    };
    let mut response = parts.into_response(sized_body::streamed(body, plan.announced), info);
    response.extensions_mut().insert(StoredAsRead);
    response
}

/// Marks a response whose body is stored as it is read ([`spool_response`]): stored only if
/// read to its end. A background refresh, whose answer no caller reads, reads it itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredAsRead;

/// A body on its way to the caller and to the store.
struct Writing {
    /// The store timeout, for each write and the commit: a hung disk (or a store's spool
    /// that never answers) held the caller's body at that chunk for good.
    timeout: std::time::Duration,
    /// The chunks read before the body was handed on, then the rest.
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// `None` once the body is not being stored (a write failed, or it was committed).
    spool: Option<Box<dyn BodySpool>>,
    encoder: Option<BodyEncoder>,
    meta: Option<EntryMeta>,
    /// Held weakly, as the tee holds it (a body still streaming keeps no client alive): its
    /// invalidation counters, its store to take back a commit the URL changed during, and
    /// its counts.
    cache: Weak<Cache>,
    /// The counters of [`Plan::changes`].
    changes: (Seen, Option<Seen>),
    /// The request's lead of its single flight: followers wait until the body is stored or
    /// abandoned.
    _leader: Option<LeaderGuard>,
}

impl Writing {
    async fn next(mut self) -> Option<(reqwest::Result<Bytes>, Self)> {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.write(&chunk).await;
                Some((Ok(chunk), self))
            }
            Some(Err(error)) => {
                // Dropping the spool removes its file.
                self.spool = None;
                Some((Err(error), self))
            }
            None => {
                self.commit().await;
                None
            }
        }
    }

    async fn write(&mut self, chunk: &Bytes) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        if let Some(encoder) = &mut self.encoder {
            encoder.update(chunk);
        }
        if let Err(error) = within(self.timeout, spool.write(chunk.clone())).await {
            let key = self.meta.as_ref().map(|m| m.key);
            match error {
                cache_core::StoreError::TooLarge { size, limit } => {
                    tracing::debug!(
                        ?key,
                        size,
                        limit,
                        "response too large for the store; not cached"
                    );
                }
                error => warn_not_cached(key, &error),
            }
            self.spool = None;
        }
    }

    async fn commit(&mut self) {
        let (Some(spool), Some(encoder), Some(meta)) =
            (self.spool.take(), self.encoder.take(), self.meta.take())
        else {
            return;
        };
        let (key, created_at, group) = (meta.key, meta.created_at, meta.url_group);
        // Gone with its client: nothing is stored, as the tee stores nothing then (a change
        // the client made to the URL before it went could no longer be seen).
        let Some(cache) = self.cache.upgrade() else {
            tracing::debug!(%key, "cache dropped while the body streamed; not cached");
            return;
        };
        let Some((before, after)) = encoder.finish() else {
            tracing::debug!(%key, "body not of its announced length; not cached");
            return;
        };
        let changes = &cache.live.url_changes;
        // An unsafe request changed the URL since the request went out: dropping the spool
        // removes its file.
        if changes.changed_since_either(self.changes) {
            tracing::debug!(%key, "URL changed since the request; not cached");
            return;
        }
        // Past the timeout the commit is dropped with its spool, but a store committing on a
        // thread of its own (the file store's blocking task) may land it yet: its URL group
        // is noted unsettled, so an invalidation that cannot see it holds the URL back.
        let committed = within(self.timeout, spool.commit(meta, before, after)).await;
        if let (Err(error), Some(group)) = (&committed, group) {
            if may_have_written(error) {
                let now = std::time::Instant::now();
                cache.live.store.unsettled.note(group, now);
            }
        }
        if changes.changed_since_either(self.changes) {
            // Changed while the commit wrote: what it wrote goes again, whatever the commit
            // answered (it may fail after its entry is in place); a newer write stays. One
            // that may land yet holds the URL back.
            tracing::debug!(%key, "URL changed while the response was stored; not cached");
            cache.live.store.forget_if_created(&key, created_at).await;
            if let Some(group) = group {
                cache.hold_back_if_unsettled(group);
            }
            return;
        }
        match committed {
            Ok(()) => cache.live.stats.store(),
            Err(cache_core::StoreError::TooLarge { size, limit }) => {
                tracing::debug!(%key, size, limit, "response too large for the store; not cached");
            }
            Err(error) => warn_not_cached(Some(key), &error),
        }
    }
}

fn warn_not_cached(key: Option<CacheKey>, error: &cache_core::StoreError) {
    let error = crate::warnings::error_chain(error);
    match key {
        Some(key) => tracing::warn!(%key, %error, "cache write failed; response not cached"),
        None => tracing::warn!(%error, "cache write failed; response not cached"),
    }
}

//! Storing a body that is slow to end while it streams to the caller: a response whose body
//! has not ended within [`stream_after`](crate::CacheMiddlewareBuilder::stream_after) (a
//! watch or long-poll stream, an origin that writes as it computes) goes to the caller at
//! once, each chunk handed on as it arrives and kept beside. When the body ends, within
//! `max_body_size`, the whole is stored as a body read at once would have been, before the
//! caller sees the end, so the next request finds it. An origin error, a body that grows
//! past the limit, or a caller that drops the body early stores nothing.
//!
//! Stores that keep bodies in files take such bodies through [`spool`](crate::spool)
//! instead, written as they stream.
//!
//! Calls [`store_response`](crate::store_response) (its `Whole`) and leaf modules.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use cache_core::CachedResponse;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::body::{concat, whole_stream};
use crate::cache::Cache;
use crate::info::CacheInfo;
use crate::response_parts::ResponseParts;
use crate::sized_body;
use crate::store_response::Whole;

/// What is stored once the body is whole: the response (its body still empty), where. The
/// exchange in `whole` holds the request's lead of its single flight, if any: followers wait
/// until the body is stored or abandoned.
pub(crate) struct Pending {
    pub(crate) whole: Whole,
    pub(crate) cached: CachedResponse,
    /// The URL the response came from (the request's, unless redirected).
    pub(crate) final_url: url::Url,
}

/// The caller's response, streaming `read` then the rest of `rest` (of the length the origin
/// `announced`), stored at its end.
pub(crate) fn stream_then_store(
    cache: &Arc<Cache>,
    pending: Pending,
    announced: Option<u64>,
    (parts, read, rest): (ResponseParts, Vec<Bytes>, reqwest::Response),
    info: CacheInfo,
) -> reqwest::Response {
    let tee = Tee {
        cache: Arc::downgrade(cache),
        limit: cache.settings.max_body_bytes,
        kept: Vec::new(),
        kept_len: 0,
        body: whole_stream(read, rest).boxed(),
        pending: Some(pending),
    };
    let body = futures_util::stream::unfold(tee, Tee::next);
    parts.into_response(sized_body::streamed(body, announced), info)
}

/// A body on its way to the caller, kept to be stored when it ends.
struct Tee {
    /// Held weakly, as background refreshes hold it: a body still streaming when the
    /// middleware and its handles are dropped is not stored.
    cache: Weak<Cache>,
    /// The chunks handed on so far (shared with the caller's, not copied).
    kept: Vec<Bytes>,
    kept_len: u64,
    /// `max_body_size`: a body that grows past it is not stored.
    limit: u64,
    /// The chunks read before the response was handed over, then the rest.
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// `None` once the body is not to be stored (too large, failed, or stored).
    pending: Option<Pending>,
}

impl Tee {
    async fn next(mut self) -> Option<(reqwest::Result<Bytes>, Self)> {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.keep(&chunk);
                Some((Ok(chunk), self))
            }
            Some(Err(error)) => {
                self.give_up();
                Some((Err(error), self))
            }
            None => {
                self.store().await;
                None
            }
        }
    }

    fn keep(&mut self, chunk: &Bytes) {
        let Some(pending) = &self.pending else {
            return;
        };
        self.kept_len += chunk.len() as u64;
        if self.kept_len > self.limit {
            let key = pending.whole.key();
            tracing::debug!(%key, "streamed body over max_body_size; not cached");
            self.give_up();
            return;
        }
        self.kept.push(chunk.clone());
    }

    fn give_up(&mut self) {
        self.pending = None;
        self.kept = Vec::new();
    }

    async fn store(&mut self) {
        let Some(Pending {
            whole,
            mut cached,
            final_url,
        }) = self.pending.take()
        else {
            return;
        };
        let Some(cache) = self.cache.upgrade() else {
            return;
        };
        cached.body = concat(std::mem::take(&mut self.kept), self.kept_len);
        whole.save(&cache, cached, &final_url).await;
    }
}

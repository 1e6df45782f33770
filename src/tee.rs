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

use bytes::{Bytes, BytesMut};
use cache_core::CachedResponse;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::body::whole_stream;
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
        kept: KeptBody::new(cache.settings.max_body_bytes),
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
    /// The bytes handed on so far.
    kept: KeptBody,
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
        if !self.kept.keep(chunk) {
            let key = pending.whole.key();
            tracing::debug!(%key, "streamed body over max_body_size; not cached");
            self.give_up();
        }
    }

    fn give_up(&mut self) {
        self.pending = None;
        self.kept.clear();
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
        cached.body = self.kept.take();
        whole.save(&cache, cached, &final_url).await;
    }
}

/// A streamed body's bytes, copied into one buffer as they arrive, within `max_body_size`.
/// Kept as handed on, each chunk held the whole read buffer it is a slice of (hyper reads
/// 8 KiB and more at a time, and a buffer a slice holds is not reused): a stream of small
/// events held many times its counted size until it ended.
struct KeptBody {
    bytes: BytesMut,
    /// `max_body_size`: a body that grows past it is not stored.
    limit: u64,
}

impl KeptBody {
    fn new(limit: u64) -> Self {
        Self {
            bytes: BytesMut::new(),
            limit,
        }
    }

    /// Keeps a copy of `chunk`; false, keeping nothing more, when the body would grow past
    /// the limit.
    fn keep(&mut self, chunk: &Bytes) -> bool {
        if self.bytes.len() as u64 + chunk.len() as u64 > self.limit {
            self.clear();
            return false;
        }
        self.bytes.extend_from_slice(chunk);
        true
    }

    fn clear(&mut self) {
        self.bytes = BytesMut::new();
    }

    /// The whole body kept.
    fn take(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept body holds none of the buffers its chunks were slices of, and stops at the
    /// limit.
    #[test]
    fn kept_chunks_hold_none_of_their_read_buffers() {
        let read_buffer = Bytes::from(vec![7u8; 8192]);
        let mut kept = KeptBody::new(250);
        for start in [0, 100] {
            assert!(kept.keep(&read_buffer.slice(start..start + 100)));
        }
        let mut read_buffer = read_buffer;
        assert!(
            read_buffer.is_unique(),
            "a kept chunk holds its read buffer"
        );
        assert!(!kept.keep(&read_buffer.split_to(100)), "past the limit");
        assert!(kept.take().is_empty(), "nothing kept past the limit");
        let mut kept = KeptBody::new(250);
        let (abc, de) = (Bytes::from_static(b"abc"), Bytes::from_static(b"de"));
        assert!(kept.keep(&abc) && kept.keep(&de));
        assert_eq!(&kept.take()[..], b"abcde");
    }
}

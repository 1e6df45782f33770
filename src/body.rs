//! Reading a response body once, up to a size limit, without ever losing it.
//!
//! Calls `info`, `response_parts`, `sized_body` (nothing that calls it).

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::info::CacheInfo;
use crate::response_parts::ResponseParts;
use crate::sized_body;

/// A body read whole, or the response handed back intact for the caller.
pub(crate) enum ReadBody {
    /// The whole body, within the limit.
    Complete(ResponseParts, Bytes),
    /// The body failed midway: the response streams what was read, then the same error,
    /// exactly as the caller would have seen it uncached.
    PassedOn(reqwest::Response),
    /// Over the limit: the chunks read so far, and the response (its parts taken) whose
    /// body goes on from there. [`rejoin`] passes it on whole.
    TooLarge(ResponseParts, Vec<Bytes>, reqwest::Response),
    /// Within the limit so far, but the body did not end within the patience given: the
    /// chunks read so far and the response whose body goes on from there.
    Slow(ResponseParts, Vec<Bytes>, reqwest::Response),
}

/// The response of a body over the limit, streaming what was read then the rest, as the
/// caller would have seen it uncached (its length, as announced with its head, kept).
pub(crate) fn rejoin(
    parts: ResponseParts,
    (read, rest): (Vec<Bytes>, reqwest::Response),
    length: Option<u64>,
    info: CacheInfo,
) -> reqwest::Response {
    parts.into_response(sized_body::streamed(whole_stream(read, rest), length), info)
}

/// The body of a response handed on midway: the chunks already `read`, then the rest of
/// `rest`'s body.
pub(crate) fn whole_stream(
    read: Vec<Bytes>,
    rest: reqwest::Response,
) -> impl futures_util::Stream<Item = reqwest::Result<Bytes>> + Send + 'static {
    futures_util::stream::iter(read.into_iter().map(Ok)).chain(rest.bytes_stream())
}

/// Reads `response`'s body if it fits in `limit` bytes and, given a `patience`, ends within
/// it (counted from the first chunk that was not there at once).
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    patience: Option<Duration>,
    info: CacheInfo,
) -> ReadBody {
    let parts = ResponseParts::take(&mut response);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    let mut deadline = None;
    loop {
        let next = {
            let mut next = std::pin::pin!(response.chunk());
            match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                Poll::Ready(next) => Some(next),
                Poll::Pending => {
                    // A patience past what an `Instant` reaches is none.
                    let deadline = *deadline.get_or_insert_with(|| {
                        patience.and_then(|p| tokio::time::Instant::now().checked_add(p))
                    });
                    match deadline {
                        None => Some(next.await),
                        // Boxed: the timer is large, and only a body that did not come at
                        // once needs it. Dropping the read midway loses nothing (the body's
                        // frames stay with the response).
                        Some(deadline) => {
                            Box::pin(tokio::time::timeout_at(deadline, next)).await.ok()
                        }
                    }
                }
            }
        };
        let Some(next) = next else {
            return ReadBody::Slow(parts, chunks, response);
        };
        match next {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                chunks.push(chunk);
                if total > limit {
                    return ReadBody::TooLarge(parts, chunks, response);
                }
            }
            Ok(None) => return ReadBody::Complete(parts, concat(chunks, total)),
            Err(error) => {
                let failed = futures_util::stream::iter(chunks.into_iter().map(Ok))
                    .chain(futures_util::stream::once(async move { Err(error) }));
                let body = reqwest::Body::wrap_stream(failed);
                return ReadBody::PassedOn(parts.into_response(body, info));
            }
        }
    }
}

/// One buffer from the chunks; a single chunk is kept without a copy.
pub(crate) fn concat(mut chunks: Vec<Bytes>, total: u64) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut whole = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
    for chunk in chunks {
        whole.extend_from_slice(&chunk);
    }
    whole.freeze()
}

//! Reading a response body once, up to a size limit, without ever losing it.
//!
//! Calls `info`, `response_parts` (nothing that calls it).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::info::CacheInfo;
use crate::response_parts::ResponseParts;

/// A body read whole, or the response handed back intact for the caller.
pub(crate) enum ReadBody {
    /// The whole body, within the limit.
    Complete(ResponseParts, Bytes),
    /// Over the limit, or the body failed midway: the response streams what was read, then
    /// the rest (or the same error), exactly as the caller would have seen it uncached.
    PassedOn(reqwest::Response),
}

/// Reads `response`'s body if it fits in `limit` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    info: CacheInfo,
) -> ReadBody {
    let parts = ResponseParts::take(&mut response);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                chunks.push(chunk);
                if total > limit {
                    let rest = response.bytes_stream();
                    let body = futures_util::stream::iter(chunks.into_iter().map(Ok)).chain(rest);
                    let body = reqwest::Body::wrap_stream(body);
                    return ReadBody::PassedOn(parts.into_response(body, info));
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
fn concat(mut chunks: Vec<Bytes>, total: u64) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut whole = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
    for chunk in chunks {
        whole.extend_from_slice(&chunk);
    }
    whole.freeze()
}

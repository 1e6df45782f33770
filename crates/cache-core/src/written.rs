//! [`Kept`]: the decoded form of an entry made from the response its writer encoded, for
//! stores that keep decoded forms ([`MemoryStore`](crate::MemoryStore),
//! [`DecodedCopies`](crate::decoded_copies::DecodedCopies)) to keep from the write on, so the
//! entry's first read does not decode it.

use std::sync::Arc;

use crate::response::CachedResponse;
use crate::store::{Decoded, StoredEntry};

/// A decoded form from the entry's writer, and the bytes it holds beyond the stored value.
pub(crate) struct Kept {
    pub(crate) decoded: Arc<Decoded>,
    pub(crate) bytes: u64,
}

impl Kept {
    /// The decoded form of `entry` from its writer's `response` (what the value encodes), as
    /// decoding would give it: the body the stored value's own slice, so a bound on the value
    /// counts it once; the header values copied into one buffer per header map, counted in
    /// [`Kept::bytes`] (a response's values may be slices of the connection's read buffer,
    /// kilobytes that would otherwise stay alive with the entry, unweighed). `None` where
    /// decoding would not share the value (a compressed body, which stores keep no decoded
    /// form of either) or the value's body is not as long as the response's (it holds another).
    pub(crate) fn of(entry: &StoredEntry, mut response: CachedResponse) -> Option<Self> {
        if crate::codec::body_is_compressed(&entry.value) {
            return None;
        }
        // The kept body is the value's own slice, so it is what decoding gives whatever the
        // writer's bytes were: their length is checked, not every byte again (a compare reads
        // the whole body a second time on every write).
        let body = entry.value.slice(crate::codec::body_range(&entry.value)?);
        if body.len() != response.body.len() {
            return None;
        }
        response.body = body;
        let response_bytes = compact(&mut response.headers);
        let request_bytes = compact(&mut response.request.headers);
        Some(Self {
            decoded: Arc::new(Decoded::new(
                entry.meta.clone(),
                crate::Entry::Response(response),
            )),
            bytes: response_bytes + request_bytes,
        })
    }
}

/// Copies every value of `headers` into one new buffer, in place (order and names kept, as
/// decoding builds them); returns the buffer's length. A value that would not copy (none:
/// each was a valid value already) keeps its own bytes and is counted the same.
fn compact(headers: &mut http::HeaderMap) -> u64 {
    let total: usize = headers.values().map(|value| value.len()).sum();
    let mut buffer = bytes::BytesMut::with_capacity(total);
    for value in headers.values() {
        buffer.extend_from_slice(value.as_bytes());
    }
    let buffer = buffer.freeze();
    let mut at = 0;
    for value in headers.values_mut() {
        let bytes = buffer.slice(at..at + value.len());
        at += value.len();
        if let Ok(copied) = http::HeaderValue::from_maybe_shared(bytes) {
            *value = copied;
        }
    }
    total as u64
}

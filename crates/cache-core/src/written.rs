//! [`Kept`]: the decoded form of an entry made from its writer's response, for stores that
//! keep decoded forms ([`MemoryStore`](crate::MemoryStore),
//! [`DecodedCopies`](crate::decoded_copies::DecodedCopies)) to keep from the write on, so the
//! entry's first read does not decode it: [`Kept::of`] beside the bytes the writer encoded,
//! [`Kept::plain`] in their place (an entry put unencoded).

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
    /// counts it once; the header values copied into one buffer of their own, counted in
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
        let bytes = copied_into_one_buffer(&mut response, Body::Left);
        Some(Self {
            decoded: Arc::new(Decoded::new(
                entry.meta.clone(),
                crate::Entry::Response(response),
            )),
            bytes,
        })
    }

    /// The decoded form of an entry put unencoded ([`CacheStore::put_plain`](crate::CacheStore::put_plain)):
    /// `response` with its header values and its body copied into one new buffer, for the
    /// reason [`Kept::of`] copies header values (the writer's may be slices of larger
    /// buffers), and so that a hit, which shares the header values and the body, counts its
    /// references in one place. As with a form decoded from bytes, a header value a caller
    /// keeps keeps the buffer (the body with it) alive after the entry goes.
    /// Its [`Kept::bytes`] are the one buffer's.
    pub(crate) fn plain(meta: crate::EntryMeta, mut response: CachedResponse) -> Self {
        let bytes = copied_into_one_buffer(&mut response, Body::Copied);
        Self {
            decoded: Arc::new(Decoded::new(meta, crate::Entry::Response(response))),
            bytes,
        }
    }

    /// Heap bytes this decoded form holds beyond the stored value: its buffer of copies and
    /// its own allocations ([`crate::held::decoded_form`]).
    pub(crate) fn held(&self) -> u64 {
        crate::held::allocation(self.bytes as usize) + crate::held::decoded_form(&self.decoded)
    }
}

/// Whether [`copied_into_one_buffer`] copies the body too.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    Left,
    Copied,
}

/// Copies every header value of `response` (the request's after its own) and, if asked, its
/// body (last) into one new buffer, in place (order and names kept, as decoding builds them);
/// returns the buffer's length. A value `0` (a stored `Age`, most often) becomes the static
/// one, as decoding makes it. A value that would not take its copy (none: each was a valid
/// value already) keeps its own bytes and is counted the same.
fn copied_into_one_buffer(response: &mut CachedResponse, body: Body) -> u64 {
    let values = || {
        response
            .headers
            .values()
            .chain(response.request.headers.values())
    };
    let body_len = if body == Body::Copied {
        response.body.len()
    } else {
        0
    };
    let copied = || values().filter(|value| !crate::codec::is_zero(value.as_bytes()));
    let total = copied().map(|value| value.len()).sum::<usize>() + body_len;
    let mut buffer = bytes::BytesMut::with_capacity(total);
    for value in copied() {
        buffer.extend_from_slice(value.as_bytes());
    }
    if body == Body::Copied {
        buffer.extend_from_slice(&response.body);
    }
    let buffer = buffer.freeze();
    let mut at = 0;
    let values_mut = response
        .headers
        .values_mut()
        .chain(response.request.headers.values_mut());
    for value in values_mut {
        if crate::codec::is_zero(value.as_bytes()) {
            *value = crate::codec::zero();
            continue;
        }
        let copy = buffer.slice(at..at + value.len());
        at += value.len();
        if let Ok(copy) = http::HeaderValue::from_maybe_shared(copy) {
            *value = copy;
        }
    }
    if body == Body::Copied {
        response.body = buffer.slice(at..);
    }
    total as u64
}

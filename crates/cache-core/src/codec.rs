//! The one binary format entries are stored in, inside a versioned envelope.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "RQCE"
//! 4       1     format version (1)
//! 5       1     kind: 0 a response, 1 a Vary index
//! 6       1     flags (0; bits reserved for compression and signatures)
//! 7       4     head length n, u32 little-endian
//! 11      n     head: postcard of status, version, headers, URLs, request
//!               (for a Vary index: the list of header names)
//! 11+n    ..    body bytes, raw (empty for a Vary index)
//! ```
//!
//! The body sits raw at the end so decoding slices it out of the stored buffer without a copy.
//! Anything that is not exactly this (another program's data, a truncated write, a future
//! version) decodes to a [`DecodeError`]: the caller treats it as a miss and deletes it.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serde::{Deserialize, Serialize};

use crate::response::{CachedRequest, CachedResponse};

const MAGIC: &[u8; 4] = b"RQCE";
/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 1;
const ENVELOPE_LEN: usize = 11;
const KIND_RESPONSE: u8 = 0;
const KIND_VARY_INDEX: u8 = 1;

/// Why stored bytes are not a readable entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Too short to hold the envelope or the head it announces.
    #[error("entry truncated: {len} bytes")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// Not an entry of this crate.
    #[error("not a reqwest-caching entry (bad magic)")]
    BadMagic,
    /// Written by a format version this build does not read.
    #[error("unsupported entry format version {0}")]
    UnsupportedVersion(u8),
    /// An entry kind this build does not know.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// A Vary index where a response was expected, or the reverse.
    #[error("entry is not of the expected kind")]
    WrongKind,
    /// Uses flags (compression, signature) this build does not understand.
    #[error("unsupported entry flags {0:#04x}")]
    UnsupportedFlags(u8),
    /// The head is not valid postcard for this format.
    #[error("malformed entry head")]
    Malformed(#[source] postcard::Error),
    /// A field decoded but is not a valid HTTP value.
    #[error("invalid {field} in entry")]
    Invalid {
        /// Which field.
        field: &'static str,
    },
}

/// An entry could not be encoded (the head is too large for the envelope).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode entry")]
pub struct EncodeError(#[source] postcard::Error);

/// The head as written. [`HeadRef`] reads the same bytes without copying.
#[derive(Serialize)]
struct Head {
    status: u16,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    url: String,
    request: RequestHead,
}

#[derive(Serialize)]
struct RequestHead {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// The head as read: strings and bytes borrowed from the stored buffer. Postcard writes a
/// `Vec<u8>` and a byte slice identically (length, then the bytes), so this reads [`Head`].
#[derive(Deserialize)]
struct HeadRef<'a> {
    status: u16,
    version: u8,
    #[serde(borrow)]
    headers: Vec<(&'a str, &'a [u8])>,
    url: &'a str,
    #[serde(borrow)]
    request: RequestHeadRef<'a>,
}

#[derive(Deserialize)]
struct RequestHeadRef<'a> {
    method: &'a str,
    url: &'a str,
    #[serde(borrow)]
    headers: Vec<(&'a str, &'a [u8])>,
}

/// Encodes a response into the stored format.
///
/// # Errors
///
/// Only when the head (headers and URLs) exceeds 4 GiB.
pub fn encode(response: &CachedResponse) -> Result<Bytes, EncodeError> {
    let head = Head {
        status: response.status.as_u16(),
        version: version_to_u8(response.version),
        headers: headers_to_pairs(&response.headers),
        url: response.url.clone(),
        request: RequestHead {
            method: response.request.method.as_str().to_owned(),
            url: response.request.url.clone(),
            headers: headers_to_pairs(&response.request.headers),
        },
    };
    envelope(KIND_RESPONSE, &head, &response.body)
}

/// Encodes a Vary index: the request header names a URL's responses vary on.
///
/// # Errors
///
/// Only when the head exceeds 4 GiB.
pub fn encode_vary_index(index: &VaryIndex) -> Result<Bytes, EncodeError> {
    let names: Vec<&str> = index.headers.iter().map(HeaderName::as_str).collect();
    envelope(KIND_VARY_INDEX, &(names, index.generation), &[])
}

fn envelope<T: Serialize>(kind: u8, head: &T, body: &[u8]) -> Result<Bytes, EncodeError> {
    let head = postcard::to_allocvec(head).map_err(EncodeError)?;
    let head_len =
        u32::try_from(head.len()).map_err(|_| EncodeError(postcard::Error::SerializeBufferFull))?;
    let mut out = BytesMut::with_capacity(ENVELOPE_LEN + head.len() + body.len());
    out.put_slice(MAGIC);
    out.put_u8(FORMAT_VERSION);
    out.put_u8(kind);
    out.put_u8(0);
    out.put_u32_le(head_len);
    out.put_slice(&head);
    out.put_slice(body);
    Ok(out.freeze())
}

/// What a stored value holds.
// Decoded and taken apart at once on every read: boxing the response would only add an
// allocation to the hit path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A response.
    Response(CachedResponse),
    /// The URL's responses vary on these request headers; each variant is stored under
    /// [`variant_key`](crate::vary::variant_key).
    VaryIndex(VaryIndex),
}

/// The request headers (lowercase, sorted) a URL's responses vary on, and the generation of
/// its variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaryIndex {
    /// Header names.
    pub headers: Vec<HeaderName>,
    /// Salts the variant keys: a new index (after the old one was deleted or invalidated)
    /// never reaches the variants of the one before.
    pub generation: u64,
}

/// Decodes a stored response; the body shares `bytes`' buffer.
///
/// # Errors
///
/// [`DecodeError`] for anything that is not a complete response entry of a known format.
pub fn decode(bytes: &Bytes) -> Result<CachedResponse, DecodeError> {
    match decode_entry(bytes)? {
        Entry::Response(response) => Ok(response),
        Entry::VaryIndex(_) => Err(DecodeError::WrongKind),
    }
}

/// Decodes any stored entry.
///
/// # Errors
///
/// [`DecodeError`] for anything that is not a complete entry of a known format.
pub fn decode_entry(bytes: &Bytes) -> Result<Entry, DecodeError> {
    if bytes.len() < ENVELOPE_LEN {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    if &bytes[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if bytes[4] != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(bytes[4]));
    }
    let kind = bytes[5];
    if bytes[6] != 0 {
        return Err(DecodeError::UnsupportedFlags(bytes[6]));
    }
    let head_len = u32::from_le_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
    let body_start = ENVELOPE_LEN
        .checked_add(head_len)
        .filter(|end| *end <= bytes.len())
        .ok_or(DecodeError::Truncated { len: bytes.len() })?;
    let head = &bytes[ENVELOPE_LEN..body_start];
    match kind {
        KIND_RESPONSE => {
            decode_response(bytes, head, bytes.slice(body_start..)).map(Entry::Response)
        }
        KIND_VARY_INDEX => {
            let (names, generation): (Vec<String>, u64) =
                postcard::from_bytes(head).map_err(DecodeError::Malformed)?;
            let headers = names
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| DecodeError::Invalid {
                    field: "vary header name",
                })?;
            Ok(Entry::VaryIndex(VaryIndex {
                headers,
                generation,
            }))
        }
        other => Err(DecodeError::UnknownKind(other)),
    }
}

fn decode_response(
    buffer: &Bytes,
    head: &[u8],
    body: Bytes,
) -> Result<CachedResponse, DecodeError> {
    let head: HeadRef<'_> = postcard::from_bytes(head).map_err(DecodeError::Malformed)?;
    let invalid = |field| DecodeError::Invalid { field };
    let request = CachedRequest::new(
        Method::from_bytes(head.request.method.as_bytes()).map_err(|_| invalid("method"))?,
        head.request.url,
        pairs_to_headers(buffer, &head.request.headers)?,
    );
    Ok(CachedResponse::new(
        StatusCode::from_u16(head.status).map_err(|_| invalid("status"))?,
        version_from_u8(head.version).ok_or(invalid("version"))?,
        pairs_to_headers(buffer, &head.headers)?,
        body,
        head.url,
        request,
    ))
}

fn headers_to_pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Header values share the stored buffer instead of being copied.
fn pairs_to_headers(buffer: &Bytes, pairs: &[(&str, &[u8])]) -> Result<HeaderMap, DecodeError> {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| DecodeError::Invalid {
            field: "header name",
        })?;
        let value = HeaderValue::from_maybe_shared(buffer.slice_ref(value)).map_err(|_| {
            DecodeError::Invalid {
                field: "header value",
            }
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn version_to_u8(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 9,
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        Version::HTTP_3 => 30,
        _ => 11,
    }
}

fn version_from_u8(v: u8) -> Option<Version> {
    Some(match v {
        9 => Version::HTTP_09,
        10 => Version::HTTP_10,
        11 => Version::HTTP_11,
        20 => Version::HTTP_2,
        30 => Version::HTTP_3,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;

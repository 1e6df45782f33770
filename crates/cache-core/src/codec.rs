//! The one binary format entries are stored in, inside a versioned envelope.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "RQCE"
//! 4       1     format version (2)
//! 5       1     kind: 0 a response, 1 a Vary index
//! 6       1     flags: bit 0 the body is LZ4-compressed, bit 1 a signature ends the entry
//! 7       4     head length n, u32 little-endian
//! 11      8     body length b (as stored), u64 little-endian
//! 19      n     head: postcard of status, version, headers, URLs, request
//!               (for a Vary index: the list of header names)
//! 19+n    b     body bytes, raw or compressed (empty for a Vary index)
//! 19+n+b  32    (signed entries) HMAC-SHA256 over the cache key and everything before it
//! ```
//!
//! The lengths add up to the stored length exactly, so a write cut short (or extended) is
//! caught even in the body, where nothing else would notice. Version 1 had no body length;
//! its entries read as [`DecodeError::UnsupportedVersion`] (a miss, then replaced).
//!
//! The body sits raw at the end so decoding slices it out of the stored buffer without a copy.
//! Anything that is not exactly this (another program's data, a truncated write, a future
//! version, a bad signature) decodes to a [`DecodeError`]: the caller treats it as a miss and
//! deletes it.
//!
//! The free functions [`encode`] and [`decode`] use neither compression nor signatures (a
//! signed entry still decodes, unverified); [`EntryCodec`] adds both.

mod compression;
mod external;
mod head;
mod signing;

pub use external::{BodyEncoder, BodyVerifier};
pub use signing::SigningKeys;

use bytes::{BufMut, Bytes};
use http::HeaderName;
use serde::Serialize;

use crate::CacheKey;
use crate::response::CachedResponse;
use head::{Head, decode_response};

const MAGIC: &[u8; 4] = b"RQCE";
/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 2;
const ENVELOPE_LEN: usize = 19;
const KIND_RESPONSE: u8 = 0;
const KIND_VARY_INDEX: u8 = 1;
const FLAG_COMPRESSED: u8 = 1;
const FLAG_SIGNED: u8 = 1 << 1;
const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_SIGNED;

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
    /// More bytes than the entry's lengths account for (another program's data, or two
    /// writes run together).
    #[error("bytes after the end of the entry")]
    TrailingBytes,
    /// Signatures are required and this entry has none.
    #[error("entry is not signed")]
    Unsigned,
    /// The signature does not match any signing key: the entry was changed, moved to another
    /// key, or signed with a key no longer accepted.
    #[error("entry signature does not verify")]
    BadSignature,
    /// The head is not valid postcard for this format.
    #[error("malformed entry head")]
    Malformed(#[source] postcard::Error),
    /// More of something (header names, say) than the HTTP types can hold.
    #[error("too many {field} in entry")]
    TooLarge {
        /// What there is too much of.
        field: &'static str,
    },
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

/// Encodes a response into the stored format, uncompressed and unsigned.
///
/// # Errors
///
/// Only when the head (headers and URLs) exceeds 4 GiB.
pub fn encode(response: &CachedResponse) -> Result<Bytes, EncodeError> {
    EntryCodec::new().encode(None, response)
}

/// Encodes a Vary index: the request header names a URL's responses vary on.
///
/// # Errors
///
/// Only when the head exceeds 4 GiB.
pub fn encode_vary_index(index: &VaryIndex) -> Result<Bytes, EncodeError> {
    EntryCodec::new().encode_vary_index(None, index)
}

/// The header value `0`, static: decoded entries and kept forms use it for every value `0`
/// (a stored `Age` is most often that) rather than a slice of their buffer, so a hit
/// reading the stored initial age touches no line of the entry's bytes for it.
pub(crate) fn zero() -> http::HeaderValue {
    http::HeaderValue::from_static("0")
}

/// True when a header value is `0` (see [`zero`]).
pub(crate) fn is_zero(value: &[u8]) -> bool {
    value == b"0"
}

/// True when `bytes` look like an entry whose body is stored compressed: its decoded body is
/// then a new buffer, not a slice of `bytes` (stores that keep decoded forms weigh that).
pub fn body_is_compressed(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(MAGIC) && bytes.get(6).is_some_and(|f| f & FLAG_COMPRESSED != 0)
}

/// Where the stored body sits in `bytes` if they are an entry of this format: the bytes
/// between the head and the signature, exactly as stored (LZ4 when [`body_is_compressed`]).
/// Reads only the envelope's lengths and validates nothing else, so a store can keep the
/// body in its own file and join the pieces back byte for byte; `None` when `bytes` are not
/// shaped like an entry.
///
/// ```
/// # use cache_core::{CachedRequest, CachedResponse};
/// # use http::{HeaderMap, Method, StatusCode, Version};
/// let response = CachedResponse::new(
///     StatusCode::OK,
///     Version::HTTP_11,
///     HeaderMap::new(),
///     bytes::Bytes::from_static(b"the body"),
///     "https://example.com/",
///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
/// );
/// let stored = cache_core::encode(&response).unwrap();
/// let range = cache_core::codec::body_range(&stored).unwrap();
/// assert_eq!(&stored[range], b"the body");
/// assert_eq!(cache_core::codec::body_range(b"not an entry"), None);
/// ```
pub fn body_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    if bytes.get(..4) != Some(MAGIC.as_slice()) || bytes.get(4) != Some(&FORMAT_VERSION) {
        return None;
    }
    let head_len = u32::from_le_bytes(bytes.get(7..11)?.try_into().ok()?);
    let body_len = u64::from_le_bytes(bytes.get(11..19)?.try_into().ok()?);
    let start = ENVELOPE_LEN.checked_add(usize::try_from(head_len).ok()?)?;
    let end = start.checked_add(usize::try_from(body_len).ok()?)?;
    (end <= bytes.len()).then_some(start..end)
}

/// How entries are written and read: whether bodies are compressed, whether entries are
/// signed. Reading does not depend on the compression setting (any entry says whether its
/// body is compressed); it does on the signing keys.
///
/// ```
/// use cache_core::codec::{EntryCodec, SigningKeys};
/// # use cache_core::{CacheKey, CachedRequest, CachedResponse};
/// # use http::{HeaderMap, Method, StatusCode, Version};
/// let response = CachedResponse::new(
///     StatusCode::OK,
///     Version::HTTP_11,
///     HeaderMap::new(),
///     bytes::Bytes::from("hello ".repeat(1000)),
///     "https://example.com/",
///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
/// );
/// let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
/// let codec = EntryCodec::new()
///     .compress_above(4096)
///     .signing_keys(SigningKeys::new(b"a secret of 32 bytes or more....".to_vec()));
/// let stored = codec.encode(Some(&key), &response).unwrap();
/// assert!(stored.len() < response.body.len() / 10);
/// assert_eq!(codec.decode(Some(&key), &stored).unwrap(), response);
/// ```
#[derive(Clone, Debug, Default)]
pub struct EntryCodec {
    compress_above: Option<usize>,
    max_decompressed: Option<usize>,
    signing: Option<SigningKeys>,
}

impl EntryCodec {
    /// No compression, no signatures: what [`encode`] and [`decode`] do.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compress bodies of at least `bytes` with LZ4 when that saves a tenth or more.
    /// A compressed hit costs a decompression and a copy of the body.
    #[must_use]
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = Some(bytes);
        self
    }

    /// Refuse (as [`DecodeError::Invalid`]) compressed bodies that announce more than
    /// `bytes` once decompressed, before allocating them (default: only LZ4's own bound of
    /// 255 times the stored size). The middleware sets its `max_body_size` here.
    #[must_use]
    pub fn max_decompressed(mut self, bytes: u64) -> Self {
        self.max_decompressed = Some(usize::try_from(bytes).unwrap_or(usize::MAX));
        self
    }

    /// Sign every entry, and accept only entries that verify with these keys.
    #[must_use]
    pub fn signing_keys(mut self, keys: SigningKeys) -> Self {
        self.signing = Some(keys);
        self
    }

    /// True when entries are signed and verified.
    pub fn signs(&self) -> bool {
        self.signing.is_some()
    }

    /// True when this codec writes `response` as [`encode`] does: unsigned, its body not
    /// compressed. Then a store given it by [`CacheStore::put_plain`](crate::CacheStore::put_plain)
    /// may keep it unencoded and still give, when its bytes are asked for, the very bytes
    /// this codec would have written.
    ///
    /// ```
    /// # use cache_core::{CachedRequest, CachedResponse, codec::EntryCodec};
    /// # use http::{HeaderMap, Method, StatusCode, Version};
    /// let response = CachedResponse::new(
    ///     StatusCode::OK,
    ///     Version::HTTP_11,
    ///     HeaderMap::new(),
    ///     bytes::Bytes::from(vec![b'a'; 4096]),
    ///     "https://example.com/",
    ///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
    /// );
    /// assert!(EntryCodec::new().writes_plain(&response));
    /// assert!(EntryCodec::new().compress_above(8192).writes_plain(&response));
    /// assert!(!EntryCodec::new().compress_above(1024).writes_plain(&response));
    /// ```
    pub fn writes_plain(&self, response: &CachedResponse) -> bool {
        self.signing.is_none()
            && self
                .compress_above
                .is_none_or(|min| response.body.len() < min)
    }

    /// Encodes a response to be stored under `key` (which the signature covers; with no key,
    /// the entry is not signed).
    ///
    /// # Errors
    ///
    /// Only when the head (headers and URLs) exceeds 4 GiB.
    pub fn encode(
        &self,
        key: Option<&CacheKey>,
        response: &CachedResponse,
    ) -> Result<Bytes, EncodeError> {
        let head = Head::of(response);
        let head_size = head.size_hint();
        let compressed = self
            .compress_above
            .filter(|min| response.body.len() >= *min)
            .and_then(|_| compression::compress(&response.body));
        match compressed {
            Some(body) => self.envelope(
                key,
                KIND_RESPONSE,
                FLAG_COMPRESSED,
                (&head, head_size),
                &body,
            ),
            None => self.envelope(key, KIND_RESPONSE, 0, (&head, head_size), &response.body),
        }
    }

    /// Encodes a Vary index to be stored under `key`.
    ///
    /// # Errors
    ///
    /// Only when the head exceeds 4 GiB.
    pub fn encode_vary_index(
        &self,
        key: Option<&CacheKey>,
        index: &VaryIndex,
    ) -> Result<Bytes, EncodeError> {
        let names: Vec<&str> = index.headers.iter().map(HeaderName::as_str).collect();
        let head = (names, index.generation);
        self.envelope(key, KIND_VARY_INDEX, 0, (&head, 64), &[])
    }

    /// The entry: envelope, `head` (serialized, about `head_size` bytes), body, and the tag
    /// when signing.
    fn envelope<T: Serialize>(
        &self,
        key: Option<&CacheKey>,
        kind: u8,
        mut flags: u8,
        (head, head_size): (&T, usize),
        body: &[u8],
    ) -> Result<Bytes, EncodeError> {
        let signing = self.signing.as_ref().zip(key);
        if signing.is_some() {
            flags |= FLAG_SIGNED;
        }
        let tag_len = if signing.is_some() {
            signing::TAG_LEN
        } else {
            0
        };
        // The head is serialized in place, after room for the envelope, into one buffer sized
        // for the whole entry (a vector of its own would grow a dozen times per head).
        let mut out = Vec::with_capacity(ENVELOPE_LEN + head_size + body.len() + tag_len);
        out.resize(ENVELOPE_LEN, 0);
        let mut out = postcard::to_extend(head, out).map_err(EncodeError)?;
        let head_len = u32::try_from(out.len() - ENVELOPE_LEN)
            .map_err(|_| EncodeError(postcard::Error::SerializeBufferFull))?;
        put_envelope(
            &mut &mut out[..ENVELOPE_LEN],
            kind,
            flags,
            head_len,
            body.len() as u64,
        );
        out.reserve_exact(body.len() + tag_len);
        out.extend_from_slice(body);
        if let Some((keys, key)) = signing {
            let tag = keys.sign(key, &out);
            out.extend_from_slice(&tag);
        }
        Ok(Bytes::from(out))
    }

    /// Decodes a stored response read under `key` (needed to verify signatures).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for anything that is not a complete response entry of a known format,
    /// and, when signing keys are set, for an entry that is unsigned or does not verify.
    pub fn decode(
        &self,
        key: Option<&CacheKey>,
        bytes: &Bytes,
    ) -> Result<CachedResponse, DecodeError> {
        match self.decode_entry(key, bytes)? {
            Entry::Response(response) => Ok(response),
            Entry::VaryIndex(_) => Err(DecodeError::WrongKind),
        }
    }

    /// Decodes any stored entry read under `key`.
    ///
    /// # Errors
    ///
    /// As [`EntryCodec::decode`].
    pub fn decode_entry(
        &self,
        key: Option<&CacheKey>,
        bytes: &Bytes,
    ) -> Result<Entry, DecodeError> {
        self.decode_entry_with(key, bytes, Body::Decoded)
    }

    /// [`EntryCodec::decode_entry`], the body decoded or left out.
    fn decode_entry_with(
        &self,
        key: Option<&CacheKey>,
        bytes: &Bytes,
        body: Body,
    ) -> Result<Entry, DecodeError> {
        // Magic and version first: another program's short value is foreign, not truncated,
        // and an older format's envelope may be shorter than this one's.
        match bytes.get(..4) {
            Some(magic) if magic != MAGIC => return Err(DecodeError::BadMagic),
            _ => {}
        }
        match bytes.get(4) {
            Some(&version) if version != FORMAT_VERSION => {
                return Err(DecodeError::UnsupportedVersion(version));
            }
            _ => {}
        }
        if bytes.len() < ENVELOPE_LEN {
            return Err(DecodeError::Truncated { len: bytes.len() });
        }
        let kind = bytes[5];
        let flags = bytes[6];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnsupportedFlags(flags));
        }
        let content = if flags & FLAG_SIGNED != 0 {
            let end = bytes
                .len()
                .checked_sub(signing::TAG_LEN)
                .filter(|end| *end >= ENVELOPE_LEN)
                .ok_or(DecodeError::Truncated { len: bytes.len() })?;
            if let Some(keys) = &self.signing {
                let verified =
                    key.is_some_and(|key| keys.verify(key, &bytes[..end], &bytes[end..]));
                if !verified {
                    return Err(DecodeError::BadSignature);
                }
            }
            bytes.slice(..end)
        } else if self.signing.is_some() {
            return Err(DecodeError::Unsigned);
        } else {
            bytes.clone()
        };
        let head_len =
            u32::from_le_bytes([content[7], content[8], content[9], content[10]]) as usize;
        let mut body_len = [0u8; 8];
        body_len.copy_from_slice(&content[11..19]);
        let body_len = usize::try_from(u64::from_le_bytes(body_len))
            .map_err(|_| DecodeError::Truncated { len: bytes.len() })?;
        let body_start = ENVELOPE_LEN
            .checked_add(head_len)
            .filter(|start| *start <= content.len())
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;
        match body_start.checked_add(body_len) {
            Some(end) if end == content.len() => {}
            Some(end) if end < content.len() => return Err(DecodeError::TrailingBytes),
            _ => return Err(DecodeError::Truncated { len: bytes.len() }),
        }
        let head = &content[ENVELOPE_LEN..body_start];
        match kind {
            KIND_RESPONSE => {
                let body = match body {
                    Body::LeftOut => Bytes::new(),
                    Body::Decoded if flags & FLAG_COMPRESSED != 0 => {
                        compression::decompress(&content[body_start..], self.max_decompressed)?
                    }
                    Body::Decoded => content.slice(body_start..),
                };
                decode_response(&content, head, body).map(Entry::Response)
            }
            KIND_VARY_INDEX => decode_vary_index(head).map(Entry::VaryIndex),
            other => Err(DecodeError::UnknownKind(other)),
        }
    }
}

/// The 19 bytes before the head.
fn put_envelope(out: &mut impl BufMut, kind: u8, flags: u8, head_len: u32, body_len: u64) {
    out.put_slice(MAGIC);
    out.put_u8(FORMAT_VERSION);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32_le(head_len);
    out.put_u64_le(body_len);
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
    /// a key the HTTP engine derives from the URL key and those headers (`cache_http::vary::variant_key`).
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

impl VaryIndex {
    /// The most header names an index may hold: one naming more does not decode (the
    /// middleware stores no response varying on more, and a hit would hash the request's
    /// values of every name). Real responses vary on a handful.
    pub const MAX_NAMES: usize = 64;

    /// The longest header name the middleware stores a response varying on, in bytes, and
    /// remembers an index holding ([`VaryIndex::is_within_limits`]). Header names may be
    /// 64 KiB long, and every index the middleware remembers for its lookups (thousands)
    /// holds its names: a hostile origin's few huge names made each hold hundreds of KB.
    /// Real names are under 40 bytes. An index written before holding a longer one still
    /// decodes (refused, its variants would be left with no index to reach or remove them).
    pub const MAX_NAME_LEN: usize = 128;

    /// True when the index names at most [`VaryIndex::MAX_NAMES`] headers, each at most
    /// [`VaryIndex::MAX_NAME_LEN`] bytes long: what an in-memory table may keep a copy of.
    pub fn is_within_limits(&self) -> bool {
        self.headers.len() <= Self::MAX_NAMES
            && self
                .headers
                .iter()
                .all(|name| name.as_str().len() <= Self::MAX_NAME_LEN)
    }
}

/// Decodes a stored response; the body shares `bytes`' buffer. A signed entry decodes without
/// its signature being checked (use [`EntryCodec`] to verify).
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
    EntryCodec::new().decode_entry(None, bytes)
}

/// Decodes any stored entry but a response's body, which it leaves out (the response comes
/// with an empty body): a compressed body is not decompressed, however large it announces
/// itself. For a view of the entry (its status, headers, URLs); a signed entry decodes
/// without its signature being checked.
///
/// ```
/// # use cache_core::{CachedRequest, CachedResponse, Entry};
/// # use http::{HeaderMap, Method, StatusCode, Version};
/// let response = CachedResponse::new(
///     StatusCode::OK,
///     Version::HTTP_11,
///     HeaderMap::new(),
///     bytes::Bytes::from("x".repeat(100_000)),
///     "https://example.com/",
///     CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
/// );
/// let codec = cache_core::codec::EntryCodec::new().compress_above(1024);
/// let stored = codec.encode(None, &response).unwrap();
/// let Ok(Entry::Response(head)) = cache_core::codec::decode_entry_head(&stored) else {
///     panic!("a response");
/// };
/// assert_eq!(head.status, StatusCode::OK);
/// assert!(head.body.is_empty());
/// ```
///
/// # Errors
///
/// As [`decode_entry`].
pub fn decode_entry_head(bytes: &Bytes) -> Result<Entry, DecodeError> {
    EntryCodec::new().decode_entry_with(None, bytes, Body::LeftOut)
}

/// Whether a decode reads a response's body.
#[derive(Clone, Copy)]
enum Body {
    Decoded,
    LeftOut,
}

fn decode_vary_index(head: &[u8]) -> Result<VaryIndex, DecodeError> {
    let (names, generation): (Vec<String>, u64) =
        postcard::from_bytes(head).map_err(DecodeError::Malformed)?;
    if names.len() > VaryIndex::MAX_NAMES {
        return Err(DecodeError::Invalid {
            field: "vary header names (more than VaryIndex::MAX_NAMES)",
        });
    }
    let headers = names
        .iter()
        .map(|n| HeaderName::from_bytes(n.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| DecodeError::Invalid {
            field: "vary header name",
        })?;
    Ok(VaryIndex {
        headers,
        generation,
    })
}

#[cfg(test)]
mod tests;

//! Reading stored values without the middleware: the one place that decodes entries.
//!
//! The middleware deletes an entry it cannot decode (to it, a miss); an inspection tool must
//! not, so values are read raw with [`CacheStore::get`](reqwest_caching::CacheStore::get)
//! and decoded here, and nothing is ever written back. Signatures are not checked: the
//! command has no signing keys, and it only shows or moves entries.

use bytes::Bytes;
use reqwest_caching::cache_core::codec::{self, DecodeError, Entry, EntryCodec};
use reqwest_caching::{CacheKey, CachedResponse};

/// The largest body a compressed entry may announce once decompressed (1 GiB): a stored
/// value of a few megabytes may announce 255 times its size, and listing a store decodes every
/// entry. The middleware writes larger ones only with compression on and a `max_body_size`
/// over 1 GiB; the command shows those as unreadable.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// The format version this build reads.
pub const FORMAT_VERSION: u8 = codec::FORMAT_VERSION;

/// What a stored value holds.
#[derive(Debug)]
pub enum Decoded {
    /// A response.
    Response(Box<CachedResponse>),
    /// The index of a URL whose responses vary on these request headers.
    VaryIndex(Vec<String>),
}

/// Why a stored value is not readable by this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Written by a newer format: a newer reqwest-caching reads it.
    Newer(u8),
    /// Corrupt, truncated, not an entry, or an older format the middleware replaces.
    Invalid(String),
}

/// What the bytes around a body say of its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// This build reads it.
    Readable,
    /// Only the whole value can tell (its body is compressed).
    NeedsBody,
}

/// Whether this build reads an entry whose body stays in its file, from the stored bytes
/// before and after the body and the body's length (the body itself is not read).
///
/// # Errors
///
/// As [`decode`].
pub fn check_head(
    key: &CacheKey,
    before: &Bytes,
    after: &Bytes,
    body_len: u64,
) -> Result<HeadCheck, Unreadable> {
    Ok(match decode_head(key, before, after, body_len)? {
        Some(_) => HeadCheck::Readable,
        None => HeadCheck::NeedsBody,
    })
}

/// The response of an entry whose body stays in its file, with an empty body, from the
/// stored bytes before and after the body and the body's length; `None` when only the whole
/// value can tell (its body is compressed, or it has a flag this build does not know).
///
/// # Errors
///
/// As [`decode`].
pub fn decode_head(
    key: &CacheKey,
    before: &Bytes,
    after: &Bytes,
    body_len: u64,
) -> Result<Option<Box<CachedResponse>>, Unreadable> {
    match EntryCodec::new().decode_head(key, before, after, body_len) {
        Ok((response, _)) => Ok(Some(Box::new(response))),
        Err(DecodeError::UnsupportedFlags(_)) => Ok(None),
        Err(DecodeError::UnsupportedVersion(version)) if version > FORMAT_VERSION => {
            Err(Unreadable::Newer(version))
        }
        Err(error) => Err(Unreadable::Invalid(error.to_string())),
    }
}

/// Decodes a stored value.
///
/// # Errors
///
/// [`Unreadable`] when it does not decode, telling a newer format apart.
pub fn decode(value: &Bytes) -> Result<Decoded, Unreadable> {
    decode_within(value, MAX_DECOMPRESSED_BYTES)
}

/// [`decode`], refusing a compressed body that announces more than `max_decompressed` bytes.
fn decode_within(value: &Bytes, max_decompressed: u64) -> Result<Decoded, Unreadable> {
    let codec = EntryCodec::new().max_decompressed(max_decompressed);
    match codec.decode_entry(None, value) {
        Ok(Entry::Response(response)) => Ok(Decoded::Response(Box::new(response))),
        Ok(Entry::VaryIndex(index)) => Ok(Decoded::VaryIndex(
            index
                .headers
                .iter()
                .map(|h| h.as_str().to_owned())
                .collect(),
        )),
        Ok(_) => Err(Unreadable::Invalid(
            "an entry kind this build does not know".to_owned(),
        )),
        Err(DecodeError::UnsupportedVersion(version)) if version > FORMAT_VERSION => {
            Err(Unreadable::Newer(version))
        }
        Err(error) => Err(Unreadable::Invalid(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method, StatusCode, Version};
    use reqwest_caching::cache_core::CachedRequest;

    /// A compressed body announcing more than the limit is unreadable, not decompressed:
    /// listing a store decodes every entry, and a small value may announce 255 times its size.
    #[test]
    fn a_compressed_body_over_the_limit_is_unreadable() {
        let response = CachedResponse::new(
            StatusCode::OK,
            Version::HTTP_11,
            HeaderMap::new(),
            Bytes::from(vec![0u8; 64 * 1024]),
            "https://h.test/zeros",
            CachedRequest::new(Method::GET, "https://h.test/zeros", HeaderMap::new()),
        );
        let value = EntryCodec::new()
            .compress_above(0)
            .encode(None, &response)
            .unwrap();
        assert!(
            codec::body_is_compressed(&value),
            "the test needs a compressed body"
        );
        assert!(value.len() < 4 * 1024);
        assert!(matches!(
            decode_within(&value, 4 * 1024),
            Err(Unreadable::Invalid(_))
        ));
        assert!(matches!(decode(&value), Ok(Decoded::Response(_))));
    }
}

//! Reading stored values without the middleware: the one place that decodes entries.
//!
//! The middleware deletes an entry it cannot decode (to it, a miss); an inspection tool must
//! not, so values are read raw with [`CacheStore::get`](reqwest_caching::CacheStore::get)
//! and decoded here, and nothing is ever written back. Signatures are not checked: the
//! command has no signing keys, and it only shows or moves entries.

use bytes::Bytes;
use reqwest_caching::CachedResponse;
use reqwest_caching::cache_core::codec::{self, DecodeError, Entry};

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

/// Decodes a stored value.
///
/// # Errors
///
/// [`Unreadable`] when it does not decode, telling a newer format apart.
pub fn decode(value: &Bytes) -> Result<Decoded, Unreadable> {
    match codec::decode_entry(value) {
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

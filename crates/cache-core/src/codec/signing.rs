//! HMAC-SHA256 signatures over stored entries, with key rotation.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::CacheKey;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// The length of the signature trailer.
pub(super) const TAG_LEN: usize = 32;

/// Secrets entries are signed and verified with.
///
/// Entries are signed with the current secret; a read accepts a signature by the current
/// secret or any previous one, so a rotation does not empty the cache. The signature covers
/// the cache key too: an entry copied under another key (another URL) does not verify.
///
/// It covers the stored value (status, headers, body, URLs), not the metadata stores keep
/// beside it: someone who can write to the store can still change an entry's expiry, or
/// put back an older signed value of the same key.
///
/// ```
/// use cache_core::codec::SigningKeys;
///
/// let keys = SigningKeys::new(b"the new secret, 32 bytes or more".to_vec())
///     .with_previous(b"the secret used until yesterday!".to_vec());
/// ```
#[derive(Clone)]
pub struct SigningKeys {
    current: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl SigningKeys {
    /// Signs with `secret` (and verifies with it). Use at least 32 random bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            current: secret.into(),
            previous: Vec::new(),
        }
    }

    /// Also accepts entries signed with `secret` (a retired key).
    #[must_use]
    pub fn with_previous(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.previous.push(secret.into());
        self
    }

    /// The signature of `content` stored under `key`, with the current secret.
    pub(super) fn sign(&self, key: &CacheKey, content: &[u8]) -> [u8; TAG_LEN] {
        mac(&self.current, key, content)
            .finalize()
            .into_bytes()
            .into()
    }

    /// A signature begun over `key` with the current secret, to be fed the content as it
    /// arrives (a body written while it streams).
    pub(super) fn begin_signing(&self, key: &CacheKey) -> HmacSha256 {
        mac(&self.current, key, &[])
    }

    /// One signature begun over `key` per known secret, to verify content as it streams.
    pub(super) fn begin_verifying(&self, key: &CacheKey) -> Vec<HmacSha256> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|secret| mac(secret, key, &[]))
            .collect()
    }

    /// True when `tag` is the signature of `content` under `key` by any known secret.
    /// The comparison is constant-time.
    pub(super) fn verify(&self, key: &CacheKey, content: &[u8], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|secret| mac(secret, key, content).verify_slice(tag).is_ok())
    }
}

fn mac(secret: &[u8], key: &CacheKey, content: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(key.as_str().as_bytes());
    mac.update(content);
    mac
}

impl std::fmt::Debug for SigningKeys {
    /// Never prints the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

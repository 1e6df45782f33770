//! [`CacheKey`]: the name an entry is stored under. How a request becomes one is the HTTP
//! engine's business (`cache_http::KeyRules`); a store only keeps and compares keys.

use std::fmt;
use std::str::FromStr;

/// A cache key: 128 bits of BLAKE3, shown as 32 lowercase hex digits.
///
/// ```
/// use cache_core::CacheKey;
/// let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
/// assert_eq!(key.as_str(), "00112233445566778899aabbccddeeff");
/// assert!("not a key".parse::<CacheKey>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    hex: [u8; 32],
}

impl CacheKey {
    /// The key for a 16-byte digest.
    pub fn from_digest(digest: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 32];
        for (i, byte) in digest.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(byte >> 4)];
            hex[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Self { hex }
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into `hex`.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.as_str())
    }
}

/// The text given to [`CacheKey::from_str`] is not 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cache key is 32 lowercase hex digits, got {0:?}")]
pub struct InvalidCacheKey(pub String);

impl FromStr for CacheKey {
    type Err = InvalidCacheKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let valid = bytes.len() == 32
            && bytes
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if !valid {
            return Err(InvalidCacheKey(s.to_owned()));
        }
        let mut hex = [0u8; 32];
        hex.copy_from_slice(bytes);
        Ok(Self { hex })
    }
}

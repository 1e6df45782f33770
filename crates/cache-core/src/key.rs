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

    /// The 16-byte digest the key shows ([`CacheKey::from_digest`] of it is the key again):
    /// half the bytes of its text, for a store that keys by bytes.
    ///
    /// ```
    /// use cache_core::CacheKey;
    /// let key = CacheKey::from_digest([0xab; 16]);
    /// assert_eq!(key.digest(), [0xab; 16]);
    /// assert_eq!(CacheKey::from_digest(key.digest()), key);
    /// ```
    pub fn digest(&self) -> [u8; 16] {
        // Only lowercase hex digits are ever written into `hex`.
        let value = |digit: u8| match digit {
            b'0'..=b'9' => digit - b'0',
            _ => digit.wrapping_sub(b'a').wrapping_add(10) & 0x0f,
        };
        let mut digest = [0u8; 16];
        for (byte, pair) in digest.iter_mut().zip(self.hex.chunks_exact(2)) {
            *byte = value(pair[0]) << 4 | value(pair[1]);
        }
        digest
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
        // Every byte checked without stopping at the first bad one: the loop vectorizes, and
        // keys are parsed on every read of some stores.
        let valid = bytes.len() == 32
            && bytes.iter().fold(true, |valid, &b| {
                valid & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b))
            });
        if !valid {
            return Err(InvalidCacheKey(s.to_owned()));
        }
        let mut hex = [0u8; 32];
        hex.copy_from_slice(bytes);
        Ok(Self { hex })
    }
}

impl CacheKey {
    /// A key field of stored metadata (a URL group, a Vary parent): absent or empty for
    /// none; `Err` for text that is no key, which makes the metadata unreadable. Read as none,
    /// a damaged URL group hid its entry from every invalidation of its URL while hits went
    /// on serving it.
    ///
    /// ```
    /// use cache_core::CacheKey;
    /// assert_eq!(CacheKey::parse_optional(None), Ok(None));
    /// assert_eq!(CacheKey::parse_optional(Some("")), Ok(None));
    /// assert!(CacheKey::parse_optional(Some("00112233445566778899aabbccddeeff")).unwrap().is_some());
    /// assert!(CacheKey::parse_optional(Some("0011223344556677")).is_err());
    /// ```
    pub fn parse_optional(text: Option<&str>) -> Result<Option<Self>, InvalidCacheKey> {
        match text.filter(|text| !text.is_empty()) {
            None => Ok(None),
            Some(text) => text.parse().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly 32 bytes of `0-9a-f` parse; every byte just outside those ranges, in any place,
    /// and any other length does not.
    #[test]
    fn only_32_lowercase_hex_digits_parse() {
        let valid = "0123456789abcdef0123456789abcdef";
        assert_eq!(valid.parse::<CacheKey>().unwrap().as_str(), valid);
        for bad in [b'/', b':', b'`', b'g', b'A', b'F', b' ', 0, 0x7f] {
            for at in [0, 15, 31] {
                let mut text = valid.as_bytes().to_vec();
                text[at] = bad;
                let text = String::from_utf8(text).unwrap();
                assert!(text.parse::<CacheKey>().is_err(), "{text:?} parsed");
            }
        }
        for len in [0, 31, 33, 64] {
            let text = "a".repeat(len);
            assert!(text.parse::<CacheKey>().is_err(), "length {len} parsed");
        }
        assert!(
            "é123456789abcdef0123456789abcde"
                .parse::<CacheKey>()
                .is_err()
        );
    }

    /// Every digest comes back from its key, and every parsed key's digest makes it again.
    #[test]
    fn a_key_and_its_digest_make_each_other() {
        for seed in 0..=u8::MAX {
            let digest: [u8; 16] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 17));
            assert_eq!(CacheKey::from_digest(digest).digest(), digest);
        }
        let key: CacheKey = "0123456789abcdeffedcba9876543210".parse().unwrap();
        assert_eq!(CacheKey::from_digest(key.digest()), key);
    }
}

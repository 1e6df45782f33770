//! [`VariantKeys`]: the variant key last computed for each URL key, with what it was computed
//! from. A variant key is BLAKE3 over the URL key, the Vary index and the request's values of
//! the headers it names (see [`variant_key`]): most of what following a Vary index costs a
//! hit from an in-process store (callgrind, a memory hit on an API response varying on
//! `Accept-Encoding`: 1.5 k of its 21.9 k instructions). A client sends the same values again
//! and again, so the key is remembered with the index it came from and a digest of the
//! request's raw values (each framed by its length, under SipHash-2-4 with a 128-bit output
//! and a key drawn when the memory is made, as the key memory digests credentials: the values,
//! which may be credentials, are not kept), and given again only for the same index and
//! digest. Equal digests mean equal values but for a chance of 2⁻¹²⁸ per pair, and equal raw
//! values mean equal normalized ones: a remembered key is the one computed anew.
//!
//! One key per URL key: a client that alternates between two values computes each time,
//! as without the memory. Kept in a [`ShardedTable`]: bounded (indexes naming more than
//! [`MAX_NAMES`] headers are not remembered), and a lookup that finds its table busy computes
//! the key. A leaf: calls nothing else in the crate but the table and [`random_sip_key`].

use std::hash::Hasher;

use cache_core::{CacheKey, VaryIndex};
use cache_http::vary::variant_key;
use http::{HeaderMap, HeaderName};
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::secret_key::random_sip_key;
use crate::sharded_table::ShardedTable;

/// Keys remembered: about 100 bytes each with one header named (0.8 MB when full).
const REMEMBERED: usize = 8_192;

/// Indexes naming more headers than this (or a name longer than `VaryIndex::MAX_NAME_LEN`)
/// are not remembered: each remembered key keeps its index's list, and an origin's `Vary`
/// may name any number, of any length.
const MAX_NAMES: usize = 8;

/// A variant key, the index it was computed with and the digest of the request's values.
struct Remembered {
    index: VaryIndex,
    values: u128,
    key: CacheKey,
}

/// The variant key last computed under each URL key.
pub(crate) struct VariantKeys {
    table: ShardedTable<Remembered>,
    digest_key: (u64, u64),
}

impl Default for VariantKeys {
    fn default() -> Self {
        Self {
            table: ShardedTable::new(REMEMBERED),
            digest_key: random_sip_key(),
        }
    }
}

impl VariantKeys {
    /// [`variant_key`] for these inputs: remembered when the URL key's last one came from the
    /// same index and the same request values, computed (and remembered) otherwise.
    pub(crate) fn key(
        &self,
        url_key: &CacheKey,
        index: &VaryIndex,
        request: &HeaderMap,
    ) -> CacheKey {
        if index.headers.len() > MAX_NAMES || !index.is_within_limits() {
            return variant_key(url_key, index, request);
        }
        let values = self.digest_of_values(&index.headers, request);
        let remembered = self.table.read(url_key, |remembered| {
            let same = remembered.values == values && remembered.index == *index;
            same.then_some(remembered.key)
        });
        if let Some(key) = remembered {
            return key;
        }
        let key = variant_key(url_key, index, request);
        self.table.insert_with(*url_key, || Remembered {
            index: index.clone(),
            values,
            key,
        });
        key
    }

    /// The digest of the request's values of `names`, in order: per name, the number of its
    /// values, then each value framed by its length (so no two requests give the same input).
    fn digest_of_values(&self, names: &[HeaderName], request: &HeaderMap) -> u128 {
        let (k0, k1) = self.digest_key;
        let mut hasher = SipHasher24::new_with_keys(k0, k1);
        for name in names {
            let values = request.get_all(name);
            hasher.write_u64(values.iter().count() as u64);
            for value in values {
                hasher.write_u64(value.len() as u64);
                hasher.write(value.as_bytes());
            }
        }
        hasher.finish128().as_u128()
    }
}

impl std::fmt::Debug for VariantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantKeys").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn index(names: &[&'static str], generation: u64) -> VaryIndex {
        VaryIndex {
            headers: names.iter().map(|n| HeaderName::from_static(n)).collect(),
            generation,
        }
    }

    fn request(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let value = HeaderValue::from_bytes(value).unwrap();
            headers.append(HeaderName::from_static(name), value);
        }
        headers
    }

    fn url_key(n: u8) -> CacheKey {
        CacheKey::from_digest([n; 16])
    }

    /// Every pair of requests here differs in what selects a variant (a value, a line more,
    /// a value split across lines, an absent header against an empty one, the index): asked
    /// one after the other under one URL key, the memory must give each its own computed
    /// key, never the one remembered for the request before.
    #[test]
    fn gives_the_computed_key_for_every_input() {
        let one = index(&["accept-encoding"], 0);
        let two = index(&["accept-encoding", "accept-language"], 0);
        let cases: Vec<(VaryIndex, HeaderMap)> = vec![
            (one.clone(), request(&[("accept-encoding", b"gzip")])),
            (one.clone(), request(&[("accept-encoding", b"br")])),
            (one.clone(), request(&[("accept-encoding", b"gzip, br")])),
            (
                one.clone(),
                request(&[("accept-encoding", b"gzip"), ("accept-encoding", b"br")]),
            ),
            (one.clone(), request(&[("accept-encoding", b"")])),
            (one.clone(), request(&[])),
            (one.clone(), request(&[("accept-language", b"gzip")])),
            (
                index(&["accept-encoding"], 1),
                request(&[("accept-encoding", b"gzip")]),
            ),
            (two.clone(), request(&[("accept-encoding", b"gzip")])),
            (
                two.clone(),
                request(&[("accept-encoding", b"gzip"), ("accept-language", b"de")]),
            ),
            (
                two.clone(),
                request(&[("accept-encoding", b"gzip, de"), ("accept-language", b"")]),
            ),
            (one.clone(), request(&[("accept-encoding", b"\xff\xfe")])),
        ];
        let keys = VariantKeys::default();
        for round in 0..3 {
            for (n, (index, headers)) in cases.iter().enumerate() {
                let expected = variant_key(&url_key(1), index, headers);
                assert_eq!(
                    keys.key(&url_key(1), index, headers),
                    expected,
                    "case {n}, round {round}"
                );
                // Asked twice in a row: the second answer is the remembered one.
                assert_eq!(
                    keys.key(&url_key(1), index, headers),
                    expected,
                    "case {n} again"
                );
            }
        }
    }

    #[test]
    fn a_remembered_key_is_given_without_computing() {
        let keys = VariantKeys::default();
        let index = index(&["accept-encoding"], 0);
        let headers = request(&[("accept-encoding", b"gzip")]);
        let computed = keys.key(&url_key(2), &index, &headers);
        let remembered = keys.table.read(&url_key(2), |r| Some(r.key));
        assert_eq!(remembered, Some(computed));
        // Another URL key with the same inputs has its own key.
        assert_ne!(keys.key(&url_key(3), &index, &headers), computed);
    }

    #[test]
    fn indexes_naming_many_headers_are_not_remembered() {
        let keys = VariantKeys::default();
        let names = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
        let index = index(&names, 0);
        let headers = request(&[("a0", b"x")]);
        assert_eq!(
            keys.key(&url_key(4), &index, &headers),
            variant_key(&url_key(4), &index, &headers)
        );
        assert!(keys.table.read(&url_key(4), |r| Some(r.key)).is_none());
    }

    /// However many URL keys are remembered, the tables hold at most [`REMEMBERED`].
    #[test]
    fn stays_bounded() {
        let keys = VariantKeys::default();
        let index = index(&["accept-encoding"], 0);
        let headers = request(&[("accept-encoding", b"gzip")]);
        for n in 0..(REMEMBERED as u32 * 3) {
            let mut digest = [0u8; 16];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            digest[0] = n as u8;
            keys.key(&CacheKey::from_digest(digest), &index, &headers);
        }
        let held = keys.table.len();
        assert!(held <= REMEMBERED, "{held}");
    }
}

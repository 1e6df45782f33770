//! [`VariantKeys`]: the variant key last computed for each URL key, with what it was computed
//! from. A variant key is BLAKE3 over the URL key, the Vary index and the request's values of
//! the headers it names (see [`variant_key`]): most of what following a Vary index costs a
//! hit from an in-process store (callgrind, a memory hit on an API response varying on
//! `Accept-Encoding`: 1.8 k of its 10 k instructions). A client sends the same values again
//! and again, so the key is remembered with the exact inputs it came from, the request's raw
//! values included, and given again only for the same inputs: a remembered key is always the
//! one computed anew (raw values equal means normalized values equal).
//!
//! One key per URL key: a client that alternates between two values computes each time,
//! as without the memory. Bounded (a full table starts over), shared by all threads in
//! tables picked by the key, each behind a lock never waited for: a lookup that finds its
//! table busy computes the key. A leaf: calls nothing else in the crate.

use std::collections::HashMap;
use std::sync::RwLock;

use cache_core::{CacheKey, VaryIndex};
use cache_http::vary::variant_key;
use http::{HeaderMap, HeaderName};

/// Keys remembered: about 150 bytes each with one header named and a short value (1.2 MB
/// when full).
const REMEMBERED: usize = 8_192;

/// Tables the keys are spread over, by their first hex digit.
const SHARDS: usize = 16;

const PER_SHARD: usize = REMEMBERED / SHARDS;

/// Values longer than this are not remembered: a key is cheap next to comparing them, and a
/// hostile or odd client does not fill the memory with them.
const MAX_VALUES_LEN: usize = 512;

type Table = HashMap<CacheKey, Remembered, foldhash::fast::RandomState>;

/// A variant key and the index and request values it was computed from.
struct Remembered {
    index: VaryIndex,
    /// The request's values of `index.headers`, in order, as [`write_values`] lays them out.
    values: Vec<u8>,
    key: CacheKey,
}

/// The variant key last computed under each URL key.
#[derive(Default)]
pub(crate) struct VariantKeys {
    shards: [RwLock<Table>; SHARDS],
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
        let shard = self.shard(url_key);
        if let Ok(table) = shard.try_read() {
            let remembered = table.get(url_key).filter(|remembered| {
                remembered.index == *index
                    && same_values(&remembered.values, &index.headers, request)
            });
            if let Some(remembered) = remembered {
                return remembered.key;
            }
        }
        let key = variant_key(url_key, index, request);
        let mut values = Vec::new();
        if !write_values(&mut values, &index.headers, request) {
            return key;
        }
        if let Ok(mut table) = shard.try_write() {
            if table.len() >= PER_SHARD && !table.contains_key(url_key) {
                table.clear();
            }
            let index = index.clone();
            table.insert(*url_key, Remembered { index, values, key });
        }
        key
    }

    /// The table of `key`: keys are digests, so their first hex digit spreads them evenly.
    fn shard(&self, key: &CacheKey) -> &RwLock<Table> {
        let first = key.as_str().as_bytes()[0];
        &self.shards[usize::from(first) % SHARDS]
    }
}

impl std::fmt::Debug for VariantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantKeys").finish_non_exhaustive()
    }
}

/// Lays out the request's values of `names` into `out`: per name, the number of its values,
/// then each value's length and bytes (lengths as 4 bytes, so no two requests lay out the
/// same). False, with `out` to be dropped, when they exceed [`MAX_VALUES_LEN`].
fn write_values(out: &mut Vec<u8>, names: &[HeaderName], request: &HeaderMap) -> bool {
    for name in names {
        let values = request.get_all(name);
        out.extend_from_slice(&(values.iter().count() as u32).to_le_bytes());
        for value in values {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
            if out.len() > MAX_VALUES_LEN {
                return false;
            }
        }
    }
    true
}

/// True when `laid_out` is what [`write_values`] lays out for `request`, compared without
/// laying it out again.
fn same_values(laid_out: &[u8], names: &[HeaderName], request: &HeaderMap) -> bool {
    let mut rest = laid_out;
    let mut take = |expected: &[u8]| match rest.split_at_checked(expected.len()) {
        Some((head, tail)) if head == expected => {
            rest = tail;
            true
        }
        _ => false,
    };
    for name in names {
        let values = request.get_all(name);
        if !take(&(values.iter().count() as u32).to_le_bytes()) {
            return false;
        }
        for value in values {
            if !take(&(value.len() as u32).to_le_bytes()) || !take(value.as_bytes()) {
                return false;
            }
        }
    }
    rest.is_empty()
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
        let shard = keys.shard(&url_key(2));
        let remembered = shard.read().unwrap().get(&url_key(2)).map(|r| r.key);
        assert_eq!(remembered, Some(computed));
        // Another URL key with the same inputs has its own key.
        assert_ne!(keys.key(&url_key(3), &index, &headers), computed);
    }

    #[test]
    fn long_values_are_not_remembered() {
        let keys = VariantKeys::default();
        let index = index(&["cookie"], 0);
        let long = vec![b'a'; MAX_VALUES_LEN + 1];
        let headers = request(&[("cookie", &long)]);
        assert_eq!(
            keys.key(&url_key(4), &index, &headers),
            variant_key(&url_key(4), &index, &headers)
        );
        assert!(
            keys.shard(&url_key(4))
                .read()
                .unwrap()
                .get(&url_key(4))
                .is_none()
        );
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
        let held: usize = keys.shards.iter().map(|t| t.read().unwrap().len()).sum();
        assert!(held <= REMEMBERED, "{held}");
    }
}

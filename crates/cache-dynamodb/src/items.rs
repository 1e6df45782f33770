//! Entries as DynamoDB items, and back.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, EntryMeta};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The size of one chunk item's value (items are limited to 400 KB).
pub(crate) const CHUNK_SIZE: usize = 380_000;
/// The largest value the store writes (4 GiB): beyond it a put is refused as too large.
pub(crate) const MAX_VALUE_BYTES: u64 = 4 << 30;
/// The most chunks a value of [`MAX_VALUE_BYTES`] takes: an item claiming more is not an
/// entry this store wrote (read as one, its count would be trusted to list and fetch that
/// many chunk keys: four billion of them from a hand-made item).
pub(crate) const MAX_CHUNKS: u32 = MAX_VALUE_BYTES.div_ceil(CHUNK_SIZE as u64) as u32;

/// Attribute names (single letters: none is a DynamoDB reserved word).
pub(crate) const KEY: &str = "k";
pub(crate) const KIND: &str = "t";
pub(crate) const URL: &str = "u";
pub(crate) const CREATED: &str = "c";
pub(crate) const EXPIRES: &str = "x";
pub(crate) const DELETE_AT: &str = "l";
pub(crate) const VALUE: &str = "v";
pub(crate) const GENERATION: &str = "g";
pub(crate) const CHUNKS: &str = "n";
pub(crate) const URL_GROUP: &str = "ug";
pub(crate) const VARIANT_OF: &str = "vp";

pub(crate) const KIND_ENTRY: &str = "e";
pub(crate) const KIND_CHUNK: &str = "c";

pub(crate) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(crate) fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// `time` in the unit of the `DELETE_AT` attribute (DynamoDB's TTL): whole Unix seconds.
pub(crate) fn ttl_seconds(time: SystemTime) -> i64 {
    to_millis(time) / 1000
}

/// A `DELETE_AT` value back as a time.
pub(crate) fn from_ttl_seconds(seconds: i64) -> SystemTime {
    cache_core::time::from_millis(seconds.saturating_mul(1000))
}

pub(crate) fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The entry item without its value.
pub(crate) fn entry_item(meta: &EntryMeta, delete_at: Option<SystemTime>) -> Item {
    let mut item = Item::new();
    item.insert(KEY.into(), s(meta.key.as_str()));
    item.insert(KIND.into(), s(KIND_ENTRY));
    item.insert(URL.into(), s(meta.url.clone()));
    item.insert(CREATED.into(), n(to_millis(meta.created_at)));
    if let Some(expires) = meta.expires_at {
        item.insert(EXPIRES.into(), n(to_millis(expires)));
    }
    if let Some(delete_at) = delete_at {
        item.insert(DELETE_AT.into(), n(ttl_seconds(delete_at)));
    }
    if let Some(group) = &meta.url_group {
        item.insert(URL_GROUP.into(), s(group.as_str()));
    }
    if let Some(parent) = &meta.variant_of {
        item.insert(VARIANT_OF.into(), s(parent.as_str()));
    }
    item
}

/// The key of chunk `i` of a generation.
pub(crate) fn chunk_key(key: &CacheKey, generation: &str, i: u32) -> String {
    format!("{}#{generation}#{i}", key.as_str())
}

pub(crate) fn chunk_item(key: &str, part: &[u8], delete_at: Option<SystemTime>) -> Item {
    let mut item = Item::new();
    item.insert(KEY.into(), s(key));
    item.insert(KIND.into(), s(KIND_CHUNK));
    item.insert(VALUE.into(), b(part));
    if let Some(delete_at) = delete_at {
        item.insert(DELETE_AT.into(), n(ttl_seconds(delete_at)));
    }
    item
}

/// Metadata of an entry item; `None` for chunks and anything not ours.
pub(crate) fn meta_of(item: &Item) -> Option<EntryMeta> {
    if item.get(KIND)?.as_s().ok()? != KIND_ENTRY {
        return None;
    }
    let key: CacheKey = item.get(KEY)?.as_s().ok()?.parse().ok()?;
    let url = item.get(URL)?.as_s().ok()?;
    // Before 1970 (a foreign or hand-edited item; ours are never): read as 1970, a delete on
    // its creation never matched it, so no purge removed it and no revalidation renewed it.
    let created = get_n(item, CREATED).filter(|created| *created >= 0)?;
    let expires = match item.get(EXPIRES) {
        None => None,
        Some(_) => Some(from_millis(get_n(item, EXPIRES)?)),
    };
    // A group or parent that is no key (or no string) makes the item no entry.
    let optional_key = |name| match item.get(name) {
        None => Some(None),
        Some(value) => CacheKey::parse_optional(Some(value.as_s().ok()?)).ok(),
    };
    let meta = EntryMeta::new(key, url.clone(), from_millis(created), expires)
        .with_url_group(optional_key(URL_GROUP)?)
        .with_variant_of(optional_key(VARIANT_OF)?);
    Some(meta)
}

/// The key of an entry item created before 1970 (see [`meta_of`]); `None` for any other.
pub(crate) fn created_before_1970(item: &Item) -> Option<CacheKey> {
    if item.get(KIND)?.as_s().ok()? != KIND_ENTRY || get_n(item, CREATED)? >= 0 {
        return None;
    }
    item.get(KEY)?.as_s().ok()?.parse().ok()
}

/// The key of a chunk item kept for good (confirmed, with no deletion time); `None` for any
/// other item.
pub(crate) fn chunk_kept_for_good(item: &Item) -> Option<&str> {
    if item.get(KIND)?.as_s().ok()? != KIND_CHUNK || item.contains_key(DELETE_AT) {
        return None;
    }
    item.get(KEY)?.as_s().ok().map(String::as_str)
}

/// True when the item's retention has passed (DynamoDB's TTL deletion is lazy).
pub(crate) fn is_past_retention(item: &Item, now: SystemTime) -> bool {
    get_n(item, DELETE_AT).is_some_and(|l| l <= ttl_seconds(now))
}

/// An inline value, or the chunk generation and count of a chunked one.
pub(crate) enum Value {
    Inline(Bytes),
    Chunked { generation: String, chunks: u32 },
}

pub(crate) fn value_of(item: &Item) -> Option<Value> {
    if let Some(AttributeValue::B(blob)) = item.get(VALUE) {
        return Some(Value::Inline(Bytes::copy_from_slice(blob.as_ref())));
    }
    let generation = item.get(GENERATION)?.as_s().ok()?;
    if !is_generation(generation) {
        return None;
    }
    let generation = generation.clone();
    let chunks = u32::try_from(get_n(item, CHUNKS)?)
        .ok()
        .filter(|&chunks| chunks <= MAX_CHUNKS)?;
    Some(Value::Chunked { generation, chunks })
}

/// Whether `text` may be a generation a write made (`cache_core::unique::unique_id`, earlier
/// `{millis}-{pid}-{counter}`): short, of digits and dashes. A foreign item's generation of hundreds of KB made every chunk key that
/// long (thousands of them: gigabytes), or of over 2 KB made each key one DynamoDB refuses,
/// failing every read of the entry.
fn is_generation(text: &str) -> bool {
    (1..=MAX_GENERATION_LEN).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// The longest generation [`is_generation`] takes: three numbers of at most 20 digits.
const MAX_GENERATION_LEN: usize = 64;

/// The chunk keys an entry item refers to (none when inline).
pub(crate) fn chunk_keys_of(key: &CacheKey, item: &Item) -> Vec<String> {
    match value_of(item) {
        Some(Value::Chunked { generation, chunks }) => (0..chunks)
            .map(|i| chunk_key(key, &generation, i))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: i64) -> Item {
        let mut item = Item::new();
        item.insert(GENERATION.into(), s("1-2-3"));
        item.insert(CHUNKS.into(), n(chunks));
        item
    }

    /// A URL group or Vary parent that is no key (or no string) makes the item no entry;
    /// read as none, a damaged group hid the entry from every invalidation of its URL.
    #[test]
    fn a_group_or_parent_that_is_no_key_is_not_an_entry() {
        let meta = cache_core::testing::grouped_entry(1, 2, Some(3)).meta;
        let item = entry_item(&meta, None);
        assert_eq!(meta_of(&item), Some(meta));
        for field in [URL_GROUP, VARIANT_OF] {
            for damaged in [s("ffffffffffffffffffffffffffffffgg"), n(7)] {
                let mut item = item.clone();
                item.insert(field.into(), damaged.clone());
                assert_eq!(meta_of(&item), None, "{field}: {damaged:?}");
            }
        }
    }

    /// A generation no write makes (long, or of other characters) is no entry: its chunk
    /// keys are never built.
    #[test]
    fn a_generation_no_write_makes_is_not_an_entry() {
        let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
        let with = |generation: String| {
            let mut item = chunked(3);
            item.insert(GENERATION.into(), s(generation));
            item
        };
        for foreign in [
            "7".repeat(400_000),
            "1".repeat(2_100),
            "a-b-c".into(),
            String::new(),
        ] {
            let item = with(foreign.clone());
            assert!(value_of(&item).is_none(), "{} bytes", foreign.len());
            assert!(chunk_keys_of(&key, &item).is_empty());
        }
        let own = format!("{}-{}-{}", i64::MAX, u32::MAX, u64::MAX);
        assert_eq!(chunk_keys_of(&key, &with(own)).len(), 3);
    }

    #[test]
    fn a_chunk_count_no_write_makes_is_not_an_entry() {
        let key: CacheKey = "00112233445566778899aabbccddeeff".parse().unwrap();
        for count in [i64::from(u32::MAX), i64::from(MAX_CHUNKS) + 1, -1] {
            assert!(value_of(&chunked(count)).is_none(), "{count} chunks");
            assert!(chunk_keys_of(&key, &chunked(count)).is_empty());
        }
        let largest = chunked(i64::from(MAX_CHUNKS));
        assert!(
            matches!(value_of(&largest), Some(Value::Chunked { chunks, .. }) if chunks == MAX_CHUNKS)
        );
        assert_eq!(chunk_keys_of(&key, &largest).len(), MAX_CHUNKS as usize);
    }
}

//! How metadata is laid out in sled values and index keys.

use bytes::Bytes;
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, EntryMeta, StoredEntry};
use serde::{Deserialize, Serialize};

/// Metadata as stored: postcard of this. Version 1 ended after `expires_ms`; version 2 added
/// the URL group and the Vary parent at the end, so a version 1 record fails to read as
/// version 2 (it ends early) and is read as version 1.
#[derive(Serialize, Deserialize)]
struct MetaRecord<'a> {
    url: &'a str,
    created_ms: i64,
    expires_ms: Option<i64>,
    url_group: Option<&'a str>,
    variant_of: Option<&'a str>,
}

/// Version 1 of [`MetaRecord`], for records written before URL groups.
#[derive(Deserialize)]
struct MetaRecordV1<'a> {
    url: &'a str,
    created_ms: i64,
    expires_ms: Option<i64>,
}

/// Bytes of an entry's metadata.
pub(crate) fn encode_meta(meta: &EntryMeta) -> Vec<u8> {
    let record = MetaRecord {
        url: &meta.url,
        created_ms: to_millis(meta.created_at),
        expires_ms: meta.expires_at.map(to_millis),
        url_group: meta.url_group.as_ref().map(CacheKey::as_str),
        variant_of: meta.variant_of.as_ref().map(CacheKey::as_str),
    };
    // Serializing a struct of strings and integers into a Vec cannot fail.
    postcard::to_allocvec(&record).unwrap_or_default()
}

/// The metadata in `bytes`; `None` when they are neither version. A record is read as version
/// 1 only where version 2 ran out of bytes and version 1 takes them all: a version 2 record
/// damaged in its URL group (an option tag, text that is not UTF-8) read as version 1 lost
/// its group, and with it every invalidation of its URL, while hits went on serving it.
pub(crate) fn decode_meta(key: CacheKey, bytes: &[u8]) -> Option<EntryMeta> {
    let record = match postcard::from_bytes::<MetaRecord<'_>>(bytes) {
        Ok(record) => record,
        Err(postcard::Error::DeserializeUnexpectedEnd) => {
            let (old, rest) = postcard::take_from_bytes::<MetaRecordV1<'_>>(bytes).ok()?;
            if !rest.is_empty() {
                return None;
            }
            MetaRecord {
                url: old.url,
                created_ms: old.created_ms,
                expires_ms: old.expires_ms,
                url_group: None,
                variant_of: None,
            }
        }
        Err(_) => return None,
    };
    // A group or parent that is no key makes the record unreadable, as a damaged tag does.
    let url_group = CacheKey::parse_optional(record.url_group).ok()?;
    let variant_of = CacheKey::parse_optional(record.variant_of).ok()?;
    let meta = EntryMeta::new(
        key,
        record.url,
        from_millis(record.created_ms),
        record.expires_ms.map(from_millis),
    )
    .with_url_group(url_group)
    .with_variant_of(variant_of);
    Some(meta)
}

/// The `records` key of `key`: its 16-byte digest. sled keeps keys of up to 22 bytes in
/// its nodes and longer ones behind a pointer each, so with keys of 32 hex digits every
/// comparison of a lookup's search followed a pointer to memory of its own; over 10,000 URLs
/// that was most of a hit's cache misses.
pub(crate) fn record_key(key: &CacheKey) -> [u8; 16] {
    key.digest()
}

/// The cache key of a `records` key; `None` for bytes that are none (not 16 bytes).
pub(crate) fn key_of_record_key(raw: &[u8]) -> Option<CacheKey> {
    <[u8; 16]>::try_from(raw).ok().map(CacheKey::from_digest)
}

/// A `groups` index key: the URL group, then the cache key (both 32 hex digits), so a
/// prefix scan of the group lists its keys.
pub(crate) fn group_key(group: &CacheKey, key: &CacheKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(group.as_str().as_bytes());
    out.extend_from_slice(key.as_str().as_bytes());
    out
}

/// The cache key of a `groups` index key.
pub(crate) fn key_of_group_key(index_key: &[u8]) -> Option<CacheKey> {
    std::str::from_utf8(index_key.get(32..)?).ok()?.parse().ok()
}

/// The `records` value of `entry` (see [`encode_entry`]).
pub(crate) fn record_of(entry: &StoredEntry) -> sled::IVec {
    sled::IVec::from(encode_entry(&encode_meta(&entry.meta), &entry.value))
}

/// The flag on a record's metadata length that says its value is in the `bodies` tree: the
/// metadata is then followed by the body's id and length (see [`encode_pointer`]) instead of
/// the value. No metadata is 2 GiB long, so no record of an earlier version has it.
const ELSEWHERE: u32 = 1 << 31;

/// A `records` value whose value is in `bodies`: metadata length (u32 LE, with
/// [`ELSEWHERE`]), metadata, the body's id (its `bodies` key) and the value's length (u64 LE).
pub(crate) fn encode_pointer(meta: &[u8], body: BodyRef) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + meta.len() + 16);
    out.extend_from_slice(&(meta.len() as u32 | ELSEWHERE).to_le_bytes());
    out.extend_from_slice(meta);
    out.extend_from_slice(&body.id);
    out.extend_from_slice(&body.len.to_le_bytes());
    out
}

/// Where a record's value is kept in the `bodies` tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyRef {
    /// Its `bodies` key: an id the store gives out in write order (see
    /// `SledStore::free_body_id`), big-endian, so bodies are written in key order (always
    /// into the tree's last node).
    pub(crate) id: [u8; 8],
    /// The value's length.
    pub(crate) len: u64,
}

/// The body a record points to; `None` for a record holding its value (or no record).
pub(crate) fn body_ref(record: &[u8]) -> Option<BodyRef> {
    if !is_pointer(record) {
        return None;
    }
    let rest = record.get(meta_end(record)?..)?;
    let (id, len) = (rest.get(..8)?, rest.get(8..16)?);
    (rest.len() == 16).then_some(())?;
    Some(BodyRef {
        id: id.try_into().ok()?,
        len: u64::from_le_bytes(len.try_into().ok()?),
    })
}

/// The bytes a record stands for: its own and its body's.
pub(crate) fn stored_len(record: &[u8]) -> u64 {
    (record.len() as u64).saturating_add(body_ref(record).map_or(0, |body| body.len))
}

/// Whether a record is flagged as pointing to a body (see [`ELSEWHERE`]), whatever follows.
fn is_pointer(record: &[u8]) -> bool {
    record
        .get(..4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .is_some_and(|bytes| u32::from_le_bytes(bytes) & ELSEWHERE != 0)
}

/// A `records` value: metadata length (u32 LE), metadata, then the value.
pub(crate) fn encode_entry(meta: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + meta.len() + value.len());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out.extend_from_slice(value);
    out
}

/// The entry of a `records` record, and the whole record as bytes (what the entry's value
/// is a slice of: it shares sled's buffer, no copy of the body).
pub(crate) fn decode_record(key: CacheKey, record: sled::IVec) -> Option<(StoredEntry, Bytes)> {
    let (meta, meta_end) = decode_record_meta_at(key, &record)?;
    // A pointer holds no value, and a damaged one is no record.
    if is_pointer(&record) {
        return None;
    }
    Some(entry_of(meta, record, meta_end))
}

/// The entry of a record pointing to `at` (its [`body_ref`]) whose value is `body`, and the
/// record as bytes; `None` when the body is not as long as the record says.
pub(crate) fn decode_pointer(
    key: CacheKey,
    record: sled::IVec,
    at: BodyRef,
    body: sled::IVec,
) -> Option<(StoredEntry, Bytes)> {
    let (meta, _) = decode_record_meta_at(key, &record)?;
    (body.len() as u64 == at.len).then_some(())?;
    let value = Bytes::from_owner(body);
    Some((StoredEntry::new(meta, value), Bytes::from_owner(record)))
}

/// The entry of a record just written with `meta`, as [`decode_record`] gives it, without
/// decoding the metadata again: only its times change on the way (to whole milliseconds,
/// as the record keeps them), and `meta` may hold finer ones.
pub(crate) fn written_record(meta: EntryMeta, record: sled::IVec) -> Option<(StoredEntry, Bytes)> {
    if is_pointer(&record) {
        return None;
    }
    let meta_end = meta_end(&record)?;
    let as_recorded = |time| from_millis(to_millis(time));
    let mut meta = meta;
    meta.created_at = as_recorded(meta.created_at);
    meta.expires_at = meta.expires_at.map(as_recorded);
    Some(entry_of(meta, record, meta_end))
}

/// The entry `meta` names, its value the part of `record` from `meta_end` on, and the whole
/// record as bytes (sharing sled's buffer: no copy of the body).
fn entry_of(meta: EntryMeta, record: sled::IVec, meta_end: usize) -> (StoredEntry, Bytes) {
    let whole = Bytes::from_owner(record);
    let value = whole.slice(meta_end..);
    (StoredEntry::new(meta, value), whole)
}

/// Where a `records` record's metadata ends and its value begins, from its length prefix;
/// `None` when the prefix is missing or runs past the record.
fn meta_end(record: &[u8]) -> Option<usize> {
    let len = (u32::from_le_bytes(record.get(..4)?.try_into().ok()?) & !ELSEWHERE) as usize;
    4usize.checked_add(len).filter(|end| *end <= record.len())
}

/// The metadata of a `records` record, without touching its value.
pub(crate) fn decode_record_meta(key: CacheKey, record: &[u8]) -> Option<EntryMeta> {
    decode_record_meta_at(key, record).map(|(meta, _)| meta)
}

/// The metadata of a `records` record and where its value starts.
fn decode_record_meta_at(key: CacheKey, record: &[u8]) -> Option<(EntryMeta, usize)> {
    let meta_end = meta_end(record)?;
    let meta = decode_meta(key, &record[4..meta_end])?;
    Some((meta, meta_end))
}

/// A time index key (`expiry`, `created`): the time in milliseconds (big-endian, offset so
/// byte order is time order) then the cache key.
pub(crate) fn time_key(ms: i64, key: &CacheKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 32);
    out.extend_from_slice(&(ms as u64 ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(key.as_str().as_bytes());
    out
}

/// The smallest time index key after every time `<= ms`.
pub(crate) fn time_bound(ms: i64) -> Vec<u8> {
    ((ms as u64 ^ (1 << 63)).saturating_add(1))
        .to_be_bytes()
        .to_vec()
}

/// The time (milliseconds) and cache key of a time index key.
pub(crate) fn split_time_key(index_key: &[u8]) -> Option<(i64, CacheKey)> {
    let time = u64::from_be_bytes(index_key.get(..8)?.try_into().ok()?);
    let key = std::str::from_utf8(index_key.get(8..)?)
        .ok()?
        .parse()
        .ok()?;
    Some(((time ^ (1 << 63)) as i64, key))
}

/// The `totals` value for live bytes: a u64, little-endian.
pub(crate) fn decode_total(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_le_bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn records_round_trip_and_expiry_keys_sort_by_time() {
        let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let meta = EntryMeta::new(key, "https://e.com/ü", t, Some(t));
        let record = sled::IVec::from(encode_entry(&encode_meta(&meta), b"value"));
        let (entry, _) = decode_record(key, record).unwrap();
        assert_eq!(entry.meta, meta);
        assert_eq!(&entry.value[..], b"value");
        assert!(decode_record(key, sled::IVec::from(&b"\xff\xff\xff\xffshort"[..])).is_none());
        assert!(time_key(5, &key) < time_key(6, &key));
        assert!(time_key(-5, &key) < time_key(5, &key));
        assert!(time_key(5, &key) < time_bound(5));
        assert!(time_bound(5) <= time_key(6, &key));
        for ms in [i64::MIN, -5, 0, 5, 1_700_000_000_123, i64::MAX] {
            assert_eq!(split_time_key(&time_key(ms, &key)), Some((ms, key)));
        }
        assert_eq!(split_time_key(b"short"), None);
        assert_eq!(split_time_key(&time_key(5, &key)[..39]), None);
        assert_eq!(decode_record_meta(key, b"\x05\x00\x00\x00ab"), None);
        assert_eq!(decode_total(&42u64.to_le_bytes()), 42);
        let group: CacheKey = "ffffffffffffffffffffffffffffffff".parse().unwrap();
        assert_eq!(key_of_group_key(&group_key(&group, &key)), Some(key));
        let grouped = meta
            .clone()
            .with_url_group(Some(group))
            .with_variant_of(Some(key));
        assert_eq!(decode_meta(key, &encode_meta(&grouped)), Some(grouped));
    }

    /// A pointer's length read from disk never overflows a count, and a record flagged as
    /// a pointer whose tail is damaged is no record (not an inline value).
    #[test]
    fn a_hostile_pointer_neither_overflows_nor_reads_as_a_value() {
        let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1);
        let meta = encode_meta(&EntryMeta::new(key, "u", t, None));
        let huge = BodyRef {
            id: [0; 8],
            len: u64::MAX,
        };
        let pointer = encode_pointer(&meta, huge);
        assert_eq!(stored_len(&pointer), u64::MAX);
        assert_eq!(body_ref(&pointer), Some(huge));
        let mut damaged = pointer.clone();
        damaged.pop();
        assert_eq!(body_ref(&damaged), None);
        assert!(decode_record(key, sled::IVec::from(damaged)).is_none());
        assert!(
            written_record(EntryMeta::new(key, "u", t, None), sled::IVec::from(pointer)).is_none()
        );
    }

    /// What a writer keeps from its own record is what a read of the record decodes, even
    /// from metadata whose times are finer than the record keeps (its fields are public).
    #[test]
    fn a_written_record_reads_as_decoding_gives_it() {
        let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let group: CacheKey = "ffffffffffffffffffffffffffffffff".parse().unwrap();
        let fine = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let mut meta =
            EntryMeta::new(key, "https://e.com/", fine, None).with_url_group(Some(group));
        (meta.created_at, meta.expires_at) = (fine, Some(fine));
        let record = sled::IVec::from(encode_entry(&encode_meta(&meta), b"value"));
        let written = written_record(meta, record.clone()).unwrap();
        let read = decode_record(key, record).unwrap();
        assert_eq!(written.0.meta, read.0.meta);
        assert_eq!(written.0.value, read.0.value);
        assert_eq!(written.1, read.1);
        assert!(
            written_record(
                read.0.meta.clone(),
                sled::IVec::from(&b"\x09\x00\x00\x00ab"[..])
            )
            .is_none()
        );
    }

    /// A version 2 record damaged in its URL group is no record (deleted when read), not a
    /// version 1 record without a group.
    #[test]
    fn a_damaged_version_2_record_is_not_read_as_version_1() {
        let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let group: CacheKey = "ffffffffffffffffffffffffffffffff".parse().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1);
        let meta = EntryMeta::new(key, "u", t, None).with_url_group(Some(group));
        let bytes = encode_meta(&meta);
        // "u" (length, byte), created (zigzag 2), no expiry, then the group's option tag.
        assert_eq!(&bytes[..5], &[1, b'u', 2, 0, 1]);
        assert_eq!(decode_meta(key, &bytes), Some(meta.clone()));
        let mut bad_tag = bytes.clone();
        bad_tag[4] = 7;
        assert_eq!(decode_meta(key, &bad_tag), None);
        let mut bad_text = bytes.clone();
        bad_text[10] = 0xff;
        assert_eq!(decode_meta(key, &bad_text), None);
        // Text that is no key (a digit changed to a letter past `f`), as group or as parent:
        // unreadable, not an entry without one.
        let mut no_key = bytes.clone();
        no_key[6] = b'g';
        assert_eq!(decode_meta(key, &no_key), None);
        let parent = meta
            .clone()
            .with_url_group(None)
            .with_variant_of(Some(group));
        let mut no_parent = encode_meta(&parent);
        let last = no_parent.len() - 1;
        no_parent[last] = b'G';
        assert_eq!(decode_meta(key, &no_parent), None);
    }

    #[test]
    fn version_1_records_still_read() {
        #[derive(Serialize)]
        struct V1<'a> {
            url: &'a str,
            created_ms: i64,
            expires_ms: Option<i64>,
        }
        let key: CacheKey = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let old = postcard::to_allocvec(&V1 {
            url: "https://e.com/old",
            created_ms: to_millis(t),
            expires_ms: None,
        })
        .unwrap();
        assert_eq!(
            decode_meta(key, &old),
            Some(EntryMeta::new(key, "https://e.com/old", t, None))
        );
        assert_eq!(decode_total(b"bad"), 0);
    }
}

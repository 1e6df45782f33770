//! Entries as BSON documents, and back.

use std::time::SystemTime;

use bytes::Bytes;
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, EntryMeta};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};

pub(crate) fn date(time: SystemTime) -> DateTime {
    DateTime::from_millis(to_millis(time))
}

fn time(value: &DateTime) -> SystemTime {
    from_millis(value.timestamp_millis())
}

pub(crate) fn optional_date(time: Option<SystemTime>) -> Bson {
    time.map_or(Bson::Null, |t| Bson::DateTime(date(t)))
}

pub(crate) fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

/// The entry document without its value. The URL group (`ug`) and Vary parent (`vp`) are
/// written only when the entry has them.
pub(crate) fn meta_document(meta: &EntryMeta, delete_at: Option<SystemTime>) -> Document {
    let mut document = doc! {
        "_id": meta.key.as_str(),
        "u": &meta.url,
        "c": date(meta.created_at),
        "x": optional_date(meta.expires_at),
        "d": optional_date(delete_at),
    };
    if let Some(group) = &meta.url_group {
        document.insert("ug", group.as_str());
    }
    if let Some(parent) = &meta.variant_of {
        document.insert("vp", parent.as_str());
    }
    document
}

/// Metadata of an entry document; `None` when it is not one of ours.
pub(crate) fn meta_of(document: &Document) -> Option<EntryMeta> {
    let key: CacheKey = document.get_str("_id").ok()?.parse().ok()?;
    let url = document.get_str("u").ok()?;
    // No write makes a creation before 1970: such a time would read as 1970, and a delete
    // by creation time would never match it again.
    let created = document
        .get_datetime("c")
        .ok()
        .filter(|created| created.timestamp_millis() >= 0)?;
    let expires = match document.get("x") {
        Some(Bson::DateTime(x)) => Some(time(x)),
        Some(Bson::Null) | None => None,
        Some(_) => return None,
    };
    // A group or parent that is no key (or no text) makes the document no entry.
    let optional_key = |field| match document.get(field) {
        None | Some(Bson::Null) => Some(None),
        Some(Bson::String(text)) => CacheKey::parse_optional(Some(text)).ok(),
        Some(_) => None,
    };
    let meta = EntryMeta::new(key, url, time(created), expires)
        .with_url_group(optional_key("ug")?)
        .with_variant_of(optional_key("vp")?);
    Some(meta)
}

/// An inline value, or the chunk generation and count of a chunked one.
pub(crate) enum Value {
    Inline(Bytes),
    Chunked { generation: String, chunks: u32 },
}

pub(crate) fn value_of(document: &Document) -> Option<Value> {
    if let Ok(bytes) = document.get_binary_generic("v") {
        return Some(Value::Inline(Bytes::copy_from_slice(bytes)));
    }
    let generation = document.get_str("g").ok()?.to_owned();
    let chunks = u32::try_from(document.get_i64("n").ok()?).ok()?;
    Some(Value::Chunked { generation, chunks })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL group or Vary parent that is no key (or no text) makes the document no entry;
    /// read as none, a damaged group hid the entry from every invalidation of its URL.
    #[test]
    fn a_group_or_parent_that_is_no_key_is_not_an_entry() {
        let meta = cache_core::testing::grouped_entry(1, 2, Some(3)).meta;
        let document = meta_document(&meta, None);
        assert_eq!(meta_of(&document), Some(meta));
        for field in ["ug", "vp"] {
            for damaged in [
                Bson::from("ffffffffffffffffffffffffffffffgg"),
                Bson::Int32(7),
            ] {
                let mut document = document.clone();
                document.insert(field, damaged.clone());
                assert_eq!(meta_of(&document), None, "{field}: {damaged:?}");
            }
        }
    }
}

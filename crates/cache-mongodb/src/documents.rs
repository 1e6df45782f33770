//! Entries as BSON documents, and back.

use std::time::SystemTime;

use bytes::Bytes;
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, EntryMeta};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, RawBsonRef, RawDocument, doc};

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
///
/// Read from the document's raw bytes, field by field: a field that does not decode (a
/// string that is not UTF-8, as other drivers can write) makes the document no entry. Read
/// whole into a `Document`, as the driver does before a listing sees a result, such a
/// document failed the listing itself, every time.
pub(crate) fn meta_of(document: &RawDocument) -> Option<EntryMeta> {
    let key: CacheKey = document.get_str("_id").ok()?.parse().ok()?;
    let url = document.get_str("u").ok()?;
    // No write makes a creation before 1970: such a time would read as 1970, and a delete
    // by creation time would never match it again.
    let created = document
        .get_datetime("c")
        .ok()
        .filter(|created| created.timestamp_millis() >= 0)?;
    let expires = match document.get("x").ok()? {
        Some(RawBsonRef::DateTime(x)) => Some(time(&x)),
        Some(RawBsonRef::Null) | None => None,
        Some(_) => return None,
    };
    // A group or parent that is no key (or no text) makes the document no entry.
    let optional_key = |field| match document.get(field).ok()? {
        None | Some(RawBsonRef::Null) => Some(None),
        Some(RawBsonRef::String(text)) => CacheKey::parse_optional(Some(text)).ok(),
        Some(_) => None,
    };
    let meta = EntryMeta::new(key, url, time(&created), expires)
        .with_url_group(optional_key("ug")?)
        .with_variant_of(optional_key("vp")?);
    Some(meta)
}

/// An inline value, or the chunk generation and count of a chunked one.
pub(crate) enum Value {
    Inline(Bytes),
    Chunked { generation: String, chunks: u32 },
}

pub(crate) fn value_of(document: &RawDocument) -> Option<Value> {
    if let Ok(binary) = document.get_binary("v") {
        return (binary.subtype == BinarySubtype::Generic)
            .then(|| Value::Inline(Bytes::copy_from_slice(binary.bytes)));
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
        assert_eq!(meta_of(&raw(&document)), Some(meta));
        for field in ["ug", "vp"] {
            for damaged in [
                Bson::from("ffffffffffffffffffffffffffffffgg"),
                Bson::Int32(7),
            ] {
                let mut document = document.clone();
                document.insert(field, damaged.clone());
                assert_eq!(meta_of(&raw(&document)), None, "{field}: {damaged:?}");
            }
        }
    }

    fn raw(document: &Document) -> mongodb::bson::RawDocumentBuf {
        mongodb::bson::RawDocumentBuf::from_document(document).unwrap()
    }

    /// An entry document `{_id, u, c}` whose URL is the bytes `url`, built byte by byte: no
    /// API of this driver writes a string that is not UTF-8, other drivers do.
    fn entry_bytes(url: &[u8], other_field: Option<&[u8]>) -> Vec<u8> {
        let mut elements = Vec::new();
        let mut string = |name: &str, value: &[u8]| {
            elements.push(0x02);
            elements.extend_from_slice(name.as_bytes());
            elements.push(0);
            elements.extend_from_slice(&(value.len() as i32 + 1).to_le_bytes());
            elements.extend_from_slice(value);
            elements.push(0);
        };
        if let Some(value) = other_field {
            string("z", value);
        }
        string("_id", cache_core::testing::key(1).as_str().as_bytes());
        string("u", url);
        elements.push(0x09);
        elements.extend_from_slice(b"c\0");
        elements.extend_from_slice(&1_700_000_000_000_i64.to_le_bytes());
        let mut document = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        document.extend_from_slice(&elements);
        document.push(0);
        document
    }

    /// A document whose URL is a string that is not UTF-8 is no entry, read from its bytes;
    /// one with such a string in a field of another program's is an entry (the field is
    /// never decoded). The driver's `Document`, which every listing decoded each result
    /// into, refuses both whole (so one such document failed every listing of the store).
    #[test]
    fn a_string_that_is_not_utf8_makes_a_document_no_entry_not_an_error() {
        let read = |bytes| mongodb::bson::RawDocumentBuf::from_bytes(bytes).unwrap();
        let good = read(entry_bytes(b"https://e/", None));
        assert!(meta_of(&good).is_some(), "a document built so is an entry");
        let bad_url = read(entry_bytes(&[0xff, 0xfe], None));
        assert!(
            Document::try_from(bad_url.as_ref()).is_err(),
            "the driver's Document refuses it"
        );
        assert_eq!(meta_of(&bad_url), None);
        assert!(value_of(&bad_url).is_none());
        let bad_other = read(entry_bytes(b"https://e/", Some(&[0xff, 0xfe])));
        assert!(Document::try_from(bad_other.as_ref()).is_err());
        assert!(
            meta_of(&bad_other).is_some(),
            "a field of another's is never read"
        );
    }
}

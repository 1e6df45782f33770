//! The JSON file of an entry: its metadata, a readable view of the response, and the bytes
//! of the stored value that are not in the body file.

use bytes::Bytes;
use cache_core::time::{from_millis, to_millis};
use cache_core::{CacheKey, EntryMeta, codec};
use http_view::{ResponseView, VaryIndexView};
use serde::{Deserialize, Serialize};

/// The layout version written in every record; a record of another version is not read.
pub(crate) const RECORD_FORMAT: u32 = 1;

/// One `<key>.json`. The fields the store reads back are the metadata, `value_head`,
/// `value_tail`, `body_file` and `body_len`; `response` and `vary_index` are for people
/// (and `git diff`) and are never trusted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub format: u32,
    #[serde(with = "key_text")]
    pub key: CacheKey,
    pub url: String,
    /// The response as decoded from the value (without verifying a signature), when the
    /// value is a response entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseView>,
    /// The header names, when the value is a Vary index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary_index: Option<VaryIndexView>,
    /// When stored, as an HTTP date (for people; `created_at_ms` is read).
    pub created: String,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub expires_at_ms: Option<i64>,
    #[serde(with = "optional_key_text")]
    pub url_group: Option<CacheKey>,
    #[serde(with = "optional_key_text")]
    pub variant_of: Option<CacheKey>,
    /// The whole value's length in bytes.
    pub size: u64,
    /// The body file's name in this directory; `None` when the body part is empty.
    pub body_file: Option<String>,
    pub body_len: u64,
    /// True when the body file holds LZ4 (the codec compressed it).
    pub body_compressed: bool,
    /// Hex of the value's bytes before the body (the codec's envelope and head).
    pub value_head: String,
    /// Hex of the value's bytes after the body (a signature).
    pub value_tail: String,
}

impl Record {
    /// The record of `value` stored under `meta`, its body in `body_file`; returns it with
    /// the range of `value` that goes to the body file.
    pub(crate) fn new(
        meta: &EntryMeta,
        value: &Bytes,
        body_file: &str,
    ) -> (Self, std::ops::Range<usize>) {
        // A codec entry splits around its body; anything else (the store takes any bytes)
        // is all body.
        let body = codec::body_range(value).unwrap_or(0..value.len());
        // The view needs no body: one stored compressed is not decompressed for it (a body
        // announcing gigabytes was inflated whole by every write, an export among them).
        let (response, vary_index) = match codec::decode_entry_head(value) {
            Ok(cache_core::Entry::Response(r)) => (Some(ResponseView::of(&r)), None),
            Ok(cache_core::Entry::VaryIndex(v)) => (None, Some(VaryIndexView::of(&v))),
            _ => (None, None),
        };
        let mut record = Self::of_parts(
            meta,
            (&value[..body.start], &value[body.end..]),
            body.len() as u64,
            body_file,
        );
        record.response = response;
        record.vary_index = vary_index;
        record.body_compressed = codec::body_is_compressed(value);
        (record, body)
    }

    /// The record of an entry whose value is `before`, a body of `body_len` bytes written
    /// to `body_file` as it streamed (never compressed), then `after`.
    pub(crate) fn streamed(
        meta: &EntryMeta,
        (before, after): (&Bytes, &Bytes),
        body_len: u64,
        body_file: &str,
    ) -> Self {
        let mut record = Self::of_parts(meta, (before, after), body_len, body_file);
        // The view only: decoded without verifying, as `new` does.
        let decoded = codec::EntryCodec::new().decode_head(&meta.key, before, after, body_len);
        record.response = decoded.ok().map(|(r, _)| ResponseView::of(&r));
        record
    }

    fn of_parts(
        meta: &EntryMeta,
        (before, after): (&[u8], &[u8]),
        body_len: u64,
        body_file: &str,
    ) -> Self {
        Self {
            format: RECORD_FORMAT,
            key: meta.key,
            url: meta.url.clone(),
            response: None,
            vary_index: None,
            created: http_date(meta.created_at),
            created_at_ms: to_millis(meta.created_at),
            expires: meta.expires_at.map(http_date),
            expires_at_ms: meta.expires_at.map(to_millis),
            url_group: meta.url_group,
            variant_of: meta.variant_of,
            size: before.len() as u64 + body_len + after.len() as u64,
            body_file: (body_len > 0).then(|| body_file.to_owned()),
            body_len,
            body_compressed: false,
            value_head: hex(before),
            value_tail: hex(after),
        }
    }

    /// Whether `other` is this very write of its key, not one made since: the same body file
    /// and creation (entries without a body file, Vary indexes and empty bodies, all name
    /// none).
    pub(crate) fn is_same_write(&self, other: &Record) -> bool {
        self.body_file == other.body_file && self.created_at_ms == other.created_at_ms
    }

    pub(crate) fn meta(&self) -> EntryMeta {
        EntryMeta::new(
            self.key,
            self.url.clone(),
            from_millis(self.created_at_ms),
            self.expires_at_ms.map(from_millis),
        )
        .with_url_group(self.url_group)
        .with_variant_of(self.variant_of)
    }

    pub(crate) fn set_created(&mut self, created_at: std::time::SystemTime) {
        self.created = http_date(created_at);
        self.created_at_ms = to_millis(created_at);
    }

    pub(crate) fn set_expiry(&mut self, expires_at: Option<std::time::SystemTime>) {
        self.expires = expires_at.map(http_date);
        self.expires_at_ms = expires_at.map(to_millis);
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// The record in `json`; `None` when it is not one this version reads.
    pub(crate) fn from_json(json: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(json)
            .ok()
            .filter(|r| r.format == RECORD_FORMAT)
    }
}

/// A time as the record shows it to people: an HTTP date, clamped to the years one can show
/// (the millisecond field beside it keeps the time exactly).
fn http_date(time: std::time::SystemTime) -> String {
    httpdate::fmt_http_date(cache_core::time::clamp_for_display(time))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of `hex`; `None` when it is not hex.
pub(crate) fn unhex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = hex.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A [`CacheKey`] as its 32 hex digits.
mod key_text {
    use cache_core::CacheKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(key: &CacheKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(key.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CacheKey, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An optional [`CacheKey`] as its hex digits or `null`.
mod optional_key_text {
    use cache_core::CacheKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        key: &Option<CacheKey>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => s.serialize_str(key.as_str()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<CacheKey>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Readable views of decoded values.
mod http_view {
    use cache_core::{CachedResponse, VaryIndex};
    use http::HeaderMap;
    use serde::{Deserialize, Serialize};

    /// A response's status, headers and the (redacted) request it answered.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct ResponseView {
        status: u16,
        version: String,
        url: String,
        headers: Vec<(String, String)>,
        request: RequestView,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct RequestView {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
    }

    /// The request header names a URL's responses vary on.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct VaryIndexView {
        headers: Vec<String>,
        generation: u64,
    }

    impl ResponseView {
        pub(crate) fn of(response: &CachedResponse) -> Self {
            Self {
                status: response.status.as_u16(),
                version: format!("{:?}", response.version),
                url: response.url.clone(),
                headers: pairs(&response.headers),
                request: RequestView {
                    method: response.request.method.to_string(),
                    url: response.request.url.clone(),
                    headers: pairs(&response.request.headers),
                },
            }
        }
    }

    impl VaryIndexView {
        pub(crate) fn of(index: &VaryIndex) -> Self {
            Self {
                headers: index.headers.iter().map(|h| h.to_string()).collect(),
                generation: index.generation,
            }
        }
    }

    /// Header values that are not UTF-8 show with replacement characters: the view is for
    /// reading, the value's bytes keep them exactly.
    fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eviction removes the entry it counted, never one written under the key since: two
    /// writes without a body file (a Vary index, an empty body) name the same (no) file.
    #[test]
    fn writes_without_a_body_file_are_told_apart_by_creation() {
        let meta = |ms: u64| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            EntryMeta::new(
                CacheKey::from_digest([1; 16]),
                "https://h.example/",
                at,
                None,
            )
        };
        let (first, _) = Record::new(&meta(1_000), &Bytes::new(), "unused.body");
        let (again, _) = Record::new(&meta(2_000), &Bytes::new(), "unused.body");
        assert_eq!(first.body_file, again.body_file);
        assert!(first.is_same_write(&first));
        assert!(!first.is_same_write(&again));
    }

    /// The readable view of a compressed response is made from its head: the body is not
    /// decompressed for it (one announcing gigabytes was inflated whole by every write of it,
    /// an export's among them). A body whose compressed bytes are damaged shows it: decoded
    /// whole, the entry had no view at all.
    #[test]
    fn the_view_of_a_compressed_response_leaves_its_body_compressed() {
        let mut response = cache_core::testing::sample_response();
        response.body = Bytes::from("compressible ".repeat(10_000));
        let codec = codec::EntryCodec::new().compress_above(1024);
        let stored = codec.encode(None, &response).unwrap();
        assert!(codec::body_is_compressed(&stored));
        let body = codec::body_range(&stored).unwrap();
        let mut damaged = stored.to_vec();
        // The body's announced length (its first four bytes), past what its block holds.
        damaged[body.start + 3] = 0x7f;
        let damaged = Bytes::from(damaged);
        assert!(cache_core::decode_entry(&damaged).is_err());
        let meta = EntryMeta::new(
            CacheKey::from_digest([2; 16]),
            "https://h.example/",
            std::time::UNIX_EPOCH,
            None,
        );
        let (record, in_file) = Record::new(&meta, &damaged, "b.body");
        let view = serde_json::to_value(record.response.expect("a view of the head")).unwrap();
        assert_eq!(view["status"], response.status.as_u16());
        assert_eq!(in_file, body);
        assert!(record.body_compressed);
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(hex(&bytes), "00017f80ff");
        assert_eq!(unhex(&hex(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
    }
}

//! Entries whose body is written and read in pieces, never held whole: the same stored
//! format as every entry (envelope, head, body, signature), produced and checked
//! incrementally, so a store can keep the body in a file while it streams
//! ([`BodyFiles`](crate::BodyFiles)).
//!
//! The body is never compressed here (compression needs the whole body), and a signed entry
//! needs the body's length before its first byte: the signature covers the envelope, which
//! holds that length and comes before the body.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::Mac;

use super::head::{Head, decode_response};
use super::signing::{HmacSha256, TAG_LEN};
use super::{
    DecodeError, ENVELOPE_LEN, EntryCodec, FLAG_COMPRESSED, FLAG_SIGNED, FORMAT_VERSION,
    KIND_RESPONSE, KNOWN_FLAGS, MAGIC, put_envelope,
};
use crate::{CacheKey, CachedResponse};

/// Encodes a response whose body arrives in chunks: feed each chunk to
/// [`BodyEncoder::update`] as it is written elsewhere, then [`BodyEncoder::finish`] gives the
/// stored bytes before and after the body. Together with the body they are exactly what
/// [`EntryCodec::encode`] writes for an uncompressed body.
#[derive(Debug)]
pub struct BodyEncoder {
    head: Vec<u8>,
    flags: u8,
    /// The signature so far (fed the envelope with `announced` and the head), when signing.
    mac: Option<HmacSha256>,
    announced: Option<u64>,
    len: u64,
}

impl BodyEncoder {
    /// Adds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        if let Some(mac) = &mut self.mac {
            mac.update(chunk);
        }
        self.len += chunk.len() as u64;
    }

    /// The body's length so far.
    pub fn body_len(&self) -> u64 {
        self.len
    }

    /// The stored bytes before the body (envelope and head) and after it (the signature,
    /// or nothing); `None` when the body did not have the length announced to
    /// [`EntryCodec::body_encoder`] (then it must not be stored).
    pub fn finish(self) -> Option<(Bytes, Bytes)> {
        if self
            .announced
            .is_some_and(|announced| announced != self.len)
        {
            return None;
        }
        let head_len = u32::try_from(self.head.len()).ok()?;
        let mut before = BytesMut::with_capacity(ENVELOPE_LEN + self.head.len());
        put_envelope(&mut before, KIND_RESPONSE, self.flags, head_len, self.len);
        before.put_slice(&self.head);
        let after = match self.mac {
            Some(mac) => Bytes::copy_from_slice(&mac.finalize().into_bytes()),
            None => Bytes::new(),
        };
        Some((before.freeze(), after))
    }
}

/// Checks a body read in chunks against the signature stored after it: feed each chunk to
/// [`BodyVerifier::update`], then [`BodyVerifier::verify`]. Unsigned entries (read by a
/// codec without signing keys) always verify, as [`EntryCodec::decode`] reads them.
#[derive(Clone, Debug)]
pub struct BodyVerifier {
    /// One signature per accepted secret, each fed the envelope, head and body so far;
    /// empty when nothing is verified.
    macs: Vec<HmacSha256>,
    tag: Bytes,
    expected: u64,
    len: u64,
}

impl BodyVerifier {
    /// Adds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for mac in &mut self.macs {
            mac.update(chunk);
        }
        self.len += chunk.len() as u64;
    }

    /// True when the whole body was fed, at the length the entry announces, and its
    /// signature verifies (with any accepted secret; the comparison is constant-time).
    pub fn verify(self) -> bool {
        let Self {
            macs,
            tag,
            expected,
            len,
        } = self;
        if len != expected {
            return false;
        }
        let signed = !macs.is_empty();
        !signed || macs.into_iter().any(|mac| mac.verify_slice(&tag).is_ok())
    }
}

impl EntryCodec {
    /// Starts encoding `response` (its `body` is ignored) to be stored under `key` with a
    /// body that will arrive in chunks, of `body_len` bytes when known.
    ///
    /// `None` when the entry cannot be written this way: the codec signs and `body_len` is
    /// unknown (the signature covers the length, which precedes the body), or the head is
    /// too large for the envelope.
    pub fn body_encoder(
        &self,
        key: &CacheKey,
        response: &CachedResponse,
        body_len: Option<u64>,
    ) -> Option<BodyEncoder> {
        let head = postcard::to_allocvec(&Head::of(response)).ok()?;
        let head_len = u32::try_from(head.len()).ok()?;
        let mac = match &self.signing {
            Some(keys) => {
                let mut mac = keys.begin_signing(key);
                let mut envelope = BytesMut::with_capacity(ENVELOPE_LEN);
                put_envelope(
                    &mut envelope,
                    KIND_RESPONSE,
                    FLAG_SIGNED,
                    head_len,
                    body_len?,
                );
                mac.update(&envelope);
                mac.update(&head);
                Some(mac)
            }
            None => None,
        };
        Some(BodyEncoder {
            flags: if mac.is_some() { FLAG_SIGNED } else { 0 },
            head,
            mac,
            announced: body_len,
            len: 0,
        })
    }

    /// Decodes a stored response from the bytes before its body (`before`: envelope and
    /// head) and after it (`after`: a signature or nothing), the body being `body_len` bytes
    /// kept elsewhere. The response comes with an empty body, and with the verifier the
    /// body must pass as it is read.
    ///
    /// # Errors
    ///
    /// As [`EntryCodec::decode`], for the envelope and head; a compressed body is
    /// [`DecodeError::UnsupportedFlags`] (it cannot be read in pieces), and a `body_len`
    /// other than the envelope's is [`DecodeError::Truncated`] or
    /// [`DecodeError::TrailingBytes`].
    pub fn decode_head(
        &self,
        key: &CacheKey,
        before: &Bytes,
        after: &Bytes,
        body_len: u64,
    ) -> Result<(CachedResponse, BodyVerifier), DecodeError> {
        let total = before.len() + after.len();
        let truncated = DecodeError::Truncated { len: total };
        if before.get(..4).is_some_and(|magic| magic != MAGIC) {
            return Err(DecodeError::BadMagic);
        }
        if let Some(&version) = before.get(4).filter(|v| **v != FORMAT_VERSION) {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        if before.len() < ENVELOPE_LEN {
            return Err(truncated);
        }
        let (kind, flags) = (before[5], before[6]);
        if flags & !KNOWN_FLAGS != 0 || flags & FLAG_COMPRESSED != 0 {
            return Err(DecodeError::UnsupportedFlags(flags));
        }
        if kind != KIND_RESPONSE {
            return Err(DecodeError::WrongKind);
        }
        let head_len = u32::from_le_bytes([before[7], before[8], before[9], before[10]]) as usize;
        let mut stored_len = [0u8; 8];
        stored_len.copy_from_slice(&before[11..19]);
        let stored_len = u64::from_le_bytes(stored_len);
        let tag_len = if flags & FLAG_SIGNED != 0 { TAG_LEN } else { 0 };
        let head_end = ENVELOPE_LEN.checked_add(head_len).ok_or(truncated)?;
        if head_end > before.len() || stored_len > body_len || after.len() < tag_len {
            return Err(DecodeError::Truncated { len: total });
        }
        if head_end < before.len() || stored_len < body_len || after.len() > tag_len {
            return Err(DecodeError::TrailingBytes);
        }
        let macs = match (&self.signing, tag_len) {
            (Some(_), 0) => return Err(DecodeError::Unsigned),
            (Some(keys), _) => {
                let mut macs = keys.begin_verifying(key);
                for mac in &mut macs {
                    mac.update(before);
                }
                macs
            }
            (None, _) => Vec::new(),
        };
        let response = decode_response(before, &before[ENVELOPE_LEN..head_end], Bytes::new())?;
        let verifier = BodyVerifier {
            macs,
            tag: after.clone(),
            expected: body_len,
            len: 0,
        };
        Ok((response, verifier))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method, StatusCode, Version};

    use super::*;
    use crate::CachedRequest;
    use crate::codec::SigningKeys;

    fn response(body: &'static [u8]) -> CachedResponse {
        let mut headers = HeaderMap::new();
        headers.insert("etag", "\"v1\"".parse().unwrap());
        CachedResponse::new(
            StatusCode::OK,
            Version::HTTP_11,
            headers,
            Bytes::from_static(body),
            "https://example.com/big",
            CachedRequest::new(Method::GET, "https://example.com/big", HeaderMap::new()),
        )
    }

    fn key() -> CacheKey {
        "0123456789abcdef0123456789abcdef".parse().unwrap()
    }

    fn signing() -> EntryCodec {
        EntryCodec::new().signing_keys(SigningKeys::new(
            b"a secret of 32 bytes or more....".to_vec(),
        ))
    }

    /// Streamed in pieces, the entry is byte for byte what `encode` writes whole.
    #[test]
    fn streamed_entry_equals_the_whole_encoding() {
        let body = b"a body that arrives in three chunks";
        for (codec, announced) in [
            (EntryCodec::new(), None),
            (EntryCodec::new(), Some(body.len() as u64)),
            (signing(), Some(body.len() as u64)),
        ] {
            let whole = codec.encode(Some(&key()), &response(body)).unwrap();
            let mut encoder = codec
                .body_encoder(&key(), &response(b""), announced)
                .unwrap();
            for chunk in body.chunks(12) {
                encoder.update(chunk);
            }
            let (before, after) = encoder.finish().unwrap();
            let joined = [&before[..], body, &after[..]].concat();
            assert_eq!(joined, whole);

            let (decoded, mut verifier) = codec
                .decode_head(&key(), &before, &after, body.len() as u64)
                .unwrap();
            assert_eq!(decoded, response(b""));
            for chunk in body.chunks(7) {
                verifier.update(chunk);
            }
            assert!(verifier.verify());
        }
    }

    #[test]
    fn signing_needs_the_length_first_and_gets_it() {
        assert!(
            signing()
                .body_encoder(&key(), &response(b""), None)
                .is_none()
        );
        let mut encoder = signing()
            .body_encoder(&key(), &response(b""), Some(4))
            .unwrap();
        encoder.update(b"abc");
        assert!(encoder.finish().is_none(), "a body shorter than announced");
    }

    #[test]
    fn a_changed_body_or_key_does_not_verify() {
        let codec = signing();
        let mut encoder = codec.body_encoder(&key(), &response(b""), Some(5)).unwrap();
        encoder.update(b"hello");
        let (before, after) = encoder.finish().unwrap();
        let (_, mut verifier) = codec.decode_head(&key(), &before, &after, 5).unwrap();
        verifier.update(b"hellO");
        assert!(!verifier.verify());
        let other: CacheKey = "ffffffffffffffffffffffffffffffff".parse().unwrap();
        let (_, mut verifier) = codec.decode_head(&other, &before, &after, 5).unwrap();
        verifier.update(b"hello");
        assert!(!verifier.verify());
        let (_, mut verifier) = codec.decode_head(&key(), &before, &after, 5).unwrap();
        verifier.update(b"hell");
        assert!(!verifier.verify(), "a body cut short");
        // An unsigned codec reads a signed entry unverified, as `decode` does.
        let (_, mut verifier) = EntryCodec::new()
            .decode_head(&key(), &before, &after, 5)
            .unwrap();
        verifier.update(b"hellO");
        assert!(verifier.verify());
    }

    #[test]
    fn heads_that_do_not_fit_are_rejected() {
        let codec = EntryCodec::new();
        let mut encoder = codec.body_encoder(&key(), &response(b""), None).unwrap();
        encoder.update(b"hello");
        let (before, after) = encoder.finish().unwrap();
        assert!(matches!(
            codec.decode_head(&key(), &before, &after, 4),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            codec.decode_head(&key(), &before, &after, 6),
            Err(DecodeError::TrailingBytes)
        ));
        assert!(matches!(
            codec.decode_head(&key(), &before.slice(..before.len() - 1), &after, 5),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            signing().decode_head(&key(), &before, &after, 5),
            Err(DecodeError::Unsigned)
        ));
        assert!(matches!(
            codec.decode_head(
                &key(),
                &Bytes::from_static(b"nope, not an entry at all"),
                &after,
                5
            ),
            Err(DecodeError::BadMagic)
        ));
        let compressed = EntryCodec::new()
            .compress_above(1)
            .encode(Some(&key()), &response(&[b'x'; 4096]))
            .unwrap();
        let range = crate::codec::body_range(&compressed).unwrap();
        let before = compressed.slice(..range.start);
        assert!(matches!(
            codec.decode_head(&key(), &before, &Bytes::new(), range.len() as u64),
            Err(DecodeError::UnsupportedFlags(_))
        ));
    }
}

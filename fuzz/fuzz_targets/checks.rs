//! The checks both fuzz targets run on a stored value: every public decoder, plain, with
//! compression and with signing keys, each with and without a cache key.
//!
//! They fail on a panic, when two decoders disagree, when an entry verifies against a
//! signing key the fuzzer cannot know, and when an entry that decodes does not come back the
//! same after being encoded again (plain, compressed, and signed).

use bytes::Bytes;
use cache_core::codec::{EntryCodec, SigningKeys};
use cache_core::{CacheKey, DecodeError, Entry, decode, decode_entry, encode, encode_vary_index};

const SECRET: &[u8] = b"fuzzing secret, 32 bytes or more";

fn key() -> CacheKey {
    CacheKey::from_digest([0x5a; 16])
}

/// Runs every check on `bytes`.
pub fn check(bytes: Bytes) {
    let entry = check_free_functions(&bytes);
    let key = key();
    let plain = EntryCodec::new();
    let compressing = EntryCodec::new().compress_above(0);
    let signing = EntryCodec::new()
        .compress_above(64)
        .signing_keys(SigningKeys::new(SECRET.to_vec()).with_previous(b"old".to_vec()));
    for codec in [&plain, &compressing] {
        for k in [None, Some(&key)] {
            // Reading does not depend on the compression setting or the key when not signing.
            let decoded = agree(codec, k, &bytes);
            assert_eq!(
                decoded.as_ref().map_err(ToString::to_string),
                entry.as_ref().map_err(ToString::to_string),
                "EntryCodec::new() and decode_entry disagree"
            );
        }
    }
    for k in [None, Some(&key)] {
        if let Ok(forged) = agree(&signing, k, &bytes) {
            panic!("an entry verified without the secret: {forged:?}");
        }
    }
    // Whatever decodes survives every encoding: plain, compressed, signed.
    if let Ok(entry) = entry {
        for codec in [&plain, &compressing, &signing] {
            let again = match &entry {
                Entry::Response(response) => codec.encode(Some(&key), response),
                Entry::VaryIndex(index) => codec.encode_vary_index(Some(&key), index),
                _ => return,
            }
            .expect("a decoded entry encodes");
            let back = codec
                .decode_entry(Some(&key), &again)
                .expect("a re-encoded entry decodes");
            assert_eq!(back, entry, "{codec:?}");
        }
    }
}

/// `codec.decode_entry` and `codec.decode` on `bytes`, checked against each other.
fn agree(codec: &EntryCodec, key: Option<&CacheKey>, bytes: &Bytes) -> Result<Entry, DecodeError> {
    let entry = codec.decode_entry(key, bytes);
    let response = codec.decode(key, bytes);
    match (&entry, &response) {
        (Ok(Entry::Response(a)), Ok(b)) => assert_eq!(a, b, "decode and decode_entry disagree"),
        (Ok(Entry::VaryIndex(_)), Err(DecodeError::WrongKind)) => {}
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (entry, response) => panic!("decode and decode_entry disagree: {entry:?} / {response:?}"),
    }
    entry
}

/// `decode` and `decode_entry`; an entry that decodes comes back after `encode`.
fn check_free_functions(bytes: &Bytes) -> Result<Entry, DecodeError> {
    let entry = decode_entry(bytes);
    let response = decode(bytes);
    match (&entry, &response) {
        (Ok(Entry::Response(a)), Ok(b)) => assert_eq!(a, b, "decode and decode_entry disagree"),
        (Ok(Entry::VaryIndex(_)), Err(DecodeError::WrongKind)) => {}
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (entry, response) => panic!("decode and decode_entry disagree: {entry:?} / {response:?}"),
    }
    match &entry {
        Ok(Entry::Response(response)) => {
            let again = encode(response).expect("a decoded response encodes");
            assert_eq!(
                &decode(&again).expect("re-encoded response decodes"),
                response
            );
        }
        Ok(Entry::VaryIndex(index)) => {
            let again = encode_vary_index(index).expect("a decoded index encodes");
            assert_eq!(
                decode_entry(&again).expect("re-encoded index decodes"),
                Entry::VaryIndex(index.clone())
            );
        }
        Ok(_) => {}
        Err(error) => {
            // Errors display (with their sources) without panicking.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            std::hint::black_box(text);
        }
    }
    entry
}

use super::*;
use crate::CachedRequest;
use crate::fixtures::sample_response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

#[test]
fn round_trips_every_part() {
    let response = sample_response();
    let bytes = encode(&response).unwrap();
    assert_eq!(decode(&bytes).unwrap(), response);
}

#[test]
fn a_zero_value_decodes_to_the_static_zero_and_the_rest_share_the_buffer() {
    let mut response = sample_response();
    response
        .headers
        .append("age", HeaderValue::from_static("0"));
    response
        .headers
        .append("x-count", HeaderValue::from_static("00"));
    let bytes = encode(&response).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded, response);
    let inside = |value: &HeaderValue| {
        let (start, at) = (bytes.as_ptr() as usize, value.as_bytes().as_ptr() as usize);
        at >= start && at < start + bytes.len()
    };
    assert!(!inside(&decoded.headers["age"]), "0 is the static value");
    assert!(inside(&decoded.headers["x-count"]), "00 is not 0");
    assert!(inside(&decoded.headers["content-type"]));
}

#[test]
fn body_is_sliced_not_copied() {
    let bytes = encode(&sample_response()).unwrap();
    let decoded = decode(&bytes).unwrap();
    let start = bytes.as_ptr() as usize;
    let body = decoded.body.as_ptr() as usize;
    assert!(
        body >= start && body < start + bytes.len(),
        "body shares the buffer"
    );
}

/// Version 2 of the format, byte for byte. If this fails, old caches become unreadable:
/// bump FORMAT_VERSION instead of changing version 2.
#[test]
fn format_v2_is_frozen() {
    let mut headers = HeaderMap::new();
    headers.append("a", HeaderValue::from_static("1"));
    let url = url::Url::parse("http://h/").unwrap();
    let response = CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from_static(b"xy"),
        url.clone(),
        CachedRequest::new(Method::GET, url, HeaderMap::new()),
    );
    let expected: &[u8] = b"RQCE\x02\x00\x00\x21\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\xc8\x01\x0b\x01\x01a\x01\x31\x09http://h/\x03GET\x09http://h/\x00xy";
    let encoded = encode(&response).unwrap();
    assert_eq!(&encoded[..], expected);
    assert_eq!(decode(&Bytes::from_static(expected)).unwrap(), response);
}

#[test]
fn foreign_and_damaged_bytes_are_errors_not_panics() {
    let valid = encode(&sample_response()).unwrap();
    assert!(matches!(
        decode(&Bytes::new()),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode(&Bytes::from_static(b"{\"json\": true}")),
        Err(DecodeError::BadMagic)
    ));
    let mut future = valid.to_vec();
    future[4] = 3;
    assert!(matches!(
        decode(&future.into()),
        Err(DecodeError::UnsupportedVersion(3))
    ));
    let mut flagged = valid.to_vec();
    flagged[6] = 0x80;
    assert!(matches!(
        decode(&flagged.into()),
        Err(DecodeError::UnsupportedFlags(0x80))
    ));
    let mut unknown_kind = valid.to_vec();
    unknown_kind[5] = 9;
    assert!(matches!(
        decode(&unknown_kind.into()),
        Err(DecodeError::UnknownKind(9))
    ));
    let mut long_head = valid.to_vec();
    long_head[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&long_head.into()),
        Err(DecodeError::Truncated { .. })
    ));
    // Every prefix and every single-byte corruption: an error or a valid entry, never a panic.
    for len in 0..valid.len() {
        let _ = decode(&valid.slice(..len));
    }
    for i in 0..valid.len() {
        let mut damaged = valid.to_vec();
        damaged[i] ^= 0xa5;
        let _ = decode(&damaged.into());
    }
}

#[test]
fn vary_index_round_trips_and_is_not_a_response() {
    let index = VaryIndex {
        headers: vec![
            HeaderName::from_static("accept-encoding"),
            HeaderName::from_static("accept-language"),
        ],
        generation: 7,
    };
    let bytes = encode_vary_index(&index).unwrap();
    assert_eq!(
        &bytes[..],
        b"RQCE\x02\x01\x00\x22\x00\x00\x00\0\0\0\0\0\0\0\0\x02\x0faccept-encoding\x0faccept-language\x07"
    );
    assert_eq!(decode_entry(&bytes).unwrap(), Entry::VaryIndex(index));
    assert!(matches!(decode(&bytes), Err(DecodeError::WrongKind)));
}

/// An index naming more than [`VaryIndex::MAX_NAMES`] headers (a store's bytes may say
/// anything) does not decode; one at the limit does.
#[test]
fn a_vary_index_of_too_many_names_does_not_decode() {
    let index = |n: usize| VaryIndex {
        headers: (0..n)
            .map(|i| HeaderName::try_from(format!("x-{i}")).unwrap())
            .collect(),
        generation: 1,
    };
    let most = index(VaryIndex::MAX_NAMES);
    let bytes = encode_vary_index(&most).unwrap();
    assert_eq!(decode_entry(&bytes).unwrap(), Entry::VaryIndex(most));
    let bytes = encode_vary_index(&index(VaryIndex::MAX_NAMES + 1)).unwrap();
    assert!(matches!(
        decode_entry(&bytes),
        Err(DecodeError::Invalid { .. })
    ));
}

/// An index holding a header name longer than [`VaryIndex::MAX_NAME_LEN`] (written before
/// the limit) still decodes, and says it is not within the limits; one at the limit is.
#[test]
fn a_vary_index_of_a_too_long_name_decodes_outside_the_limits() {
    let index = |len: usize| VaryIndex {
        headers: vec![HeaderName::try_from("x".repeat(len)).unwrap()],
        generation: 1,
    };
    let longest = index(VaryIndex::MAX_NAME_LEN);
    assert!(longest.is_within_limits());
    let too_long = index(VaryIndex::MAX_NAME_LEN + 1);
    assert!(!too_long.is_within_limits());
    let bytes = encode_vary_index(&too_long).unwrap();
    assert_eq!(decode_entry(&bytes).unwrap(), Entry::VaryIndex(too_long));
}

fn text_response() -> CachedResponse {
    let mut response = sample_response();
    response.body = Bytes::from("{\"id\": 1, \"name\": \"a JSON-like body\"}\n".repeat(500));
    response
}

fn key(n: u8) -> CacheKey {
    CacheKey::from_digest([n; 16])
}

#[test]
fn compressed_entries_round_trip_and_are_smaller() {
    let response = text_response();
    let codec = EntryCodec::new().compress_above(1024);
    let stored = codec.encode(None, &response).unwrap();
    assert_eq!(stored[6], FLAG_COMPRESSED);
    assert!(stored.len() < response.body.len() / 5, "{}", stored.len());
    // Any reader decompresses, whatever its own setting.
    assert_eq!(decode(&stored).unwrap(), response);
    // Below the threshold the body stays raw (and zero-copy).
    let small = EntryCodec::new().compress_above(usize::MAX);
    assert_eq!(small.encode(None, &response).unwrap()[6], 0);
}

#[test]
fn signed_entries_verify_and_any_change_is_rejected() {
    let keys = SigningKeys::new(b"secret one".to_vec());
    let codec = EntryCodec::new().signing_keys(keys);
    let response = sample_response();
    let stored = codec.encode(Some(&key(1)), &response).unwrap();
    assert_eq!(stored[6], FLAG_SIGNED);
    assert_eq!(codec.decode(Some(&key(1)), &stored).unwrap(), response);
    // Every single flipped byte is caught.
    for i in 0..stored.len() {
        let mut tampered = stored.to_vec();
        tampered[i] ^= 0x01;
        assert!(
            codec.decode(Some(&key(1)), &tampered.into()).is_err(),
            "flipped byte {i} went unnoticed"
        );
    }
    // Moved under another key: rejected.
    assert!(matches!(
        codec.decode(Some(&key(2)), &stored),
        Err(DecodeError::BadSignature)
    ));
    // Unsigned entries are rejected when signatures are required.
    assert!(matches!(
        codec.decode(Some(&key(1)), &encode(&response).unwrap()),
        Err(DecodeError::Unsigned)
    ));
    // A reader without keys still reads a signed entry.
    assert_eq!(decode(&stored).unwrap(), response);
}

#[test]
fn rotated_keys_still_read_old_entries_and_retired_keys_do_not() {
    let old = EntryCodec::new().signing_keys(SigningKeys::new(b"old".to_vec()));
    let rotated = EntryCodec::new()
        .signing_keys(SigningKeys::new(b"new".to_vec()).with_previous(b"old".to_vec()));
    let retired = EntryCodec::new().signing_keys(SigningKeys::new(b"new".to_vec()));
    let stored = old.encode(Some(&key(1)), &sample_response()).unwrap();
    assert!(rotated.decode(Some(&key(1)), &stored).is_ok());
    assert!(matches!(
        retired.decode(Some(&key(1)), &stored),
        Err(DecodeError::BadSignature)
    ));
    // New writes use the new key.
    let fresh = rotated.encode(Some(&key(1)), &sample_response()).unwrap();
    assert!(retired.decode(Some(&key(1)), &fresh).is_ok());
}

#[test]
fn signed_and_compressed_together() {
    let codec = EntryCodec::new()
        .compress_above(0)
        .signing_keys(SigningKeys::new(b"k".to_vec()));
    let response = text_response();
    let stored = codec.encode(Some(&key(3)), &response).unwrap();
    assert_eq!(stored[6], FLAG_COMPRESSED | FLAG_SIGNED);
    assert_eq!(codec.decode(Some(&key(3)), &stored).unwrap(), response);
    let index = VaryIndex {
        headers: vec![HeaderName::from_static("accept")],
        generation: 7,
    };
    let stored = codec.encode_vary_index(Some(&key(3)), &index).unwrap();
    assert!(matches!(
        codec.decode_entry(Some(&key(3)), &stored),
        Ok(Entry::VaryIndex(found)) if found == index
    ));
}

#[test]
fn a_body_cut_short_or_extended_is_an_error() {
    let valid = encode(&sample_response()).unwrap();
    let cut = valid.slice(..valid.len() - 3);
    assert!(matches!(decode(&cut), Err(DecodeError::Truncated { .. })));
    let mut longer = valid.to_vec();
    longer.extend_from_slice(b"junk");
    assert!(matches!(
        decode(&longer.into()),
        Err(DecodeError::TrailingBytes)
    ));
    let mut v1 = valid.to_vec();
    v1[4] = 1;
    assert!(matches!(
        decode(&v1.into()),
        Err(DecodeError::UnsupportedVersion(1))
    ));
}

/// The head's layout written from owned parts (as `head::Head` writes it from a response),
/// for heads no `HeaderMap` can produce.
#[derive(serde::Serialize)]
struct Head {
    status: u16,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    url: String,
    request: RequestHead,
}

#[derive(serde::Serialize)]
struct RequestHead {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// A head as `encode` would write it, with `headers` as the response's header pairs and
/// `request_headers` as the request's: for heads no `HeaderMap` can produce.
fn entry_with_pairs(
    headers: Vec<(String, Vec<u8>)>,
    request_headers: Vec<(String, Vec<u8>)>,
) -> Bytes {
    let head = Head {
        status: 200,
        version: 11,
        headers,
        url: "http://h/".to_owned(),
        request: RequestHead {
            method: "GET".to_owned(),
            url: "http://h/".to_owned(),
            headers: request_headers,
        },
    };
    EntryCodec::new()
        .envelope(None, KIND_RESPONSE, 0, (&head, 0), b"")
        .unwrap()
}

/// 25,000 values of one name: a legal `HeaderMap` (one entry, many values), but more pairs
/// than `HeaderMap::with_capacity` accepts. It used to panic ("size overflows MAX_SIZE").
#[test]
fn more_values_than_http_preallocates_round_trip() {
    let mut headers = HeaderMap::new();
    for _ in 0..25_000 {
        headers.append("a", HeaderValue::from_static(""));
    }
    let mut response = sample_response();
    response.headers = headers.clone();
    response.request.headers = headers;
    let bytes = encode(&response).unwrap();
    assert_eq!(decode(&bytes).unwrap(), response);
}

/// 25,000 distinct names: more than any `HeaderMap` holds. A clean error, in the response's
/// headers and in the request's.
#[test]
fn more_header_names_than_http_allows_are_an_error() {
    let many: Vec<(String, Vec<u8>)> = (0..25_000)
        .map(|i| (format!("x-{i}"), Vec::new()))
        .collect();
    for bytes in [
        entry_with_pairs(many.clone(), Vec::new()),
        entry_with_pairs(Vec::new(), many),
    ] {
        let error = decode(&bytes).unwrap_err();
        assert!(
            matches!(error, DecodeError::TooLarge { .. }),
            "{error:?}: {error}"
        );
    }
}

/// A tiny Vary index head announcing billions of names is malformed, and the decoder does
/// not preallocate for what it announces (the allocation bound is checked in
/// `tests/codec_allocation.rs`).
#[test]
fn a_vary_index_announcing_more_names_than_it_holds_is_malformed() {
    // Length prefix u32::MAX as a postcard varint, then one short name.
    let head = b"\xff\xff\xff\xff\x0f\x01a";
    let mut bytes = b"RQCE\x02\x01\x00".to_vec();
    bytes.extend_from_slice(&(head.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(head);
    assert!(matches!(
        decode_entry(&bytes.into()),
        Err(DecodeError::Malformed(_))
    ));
}

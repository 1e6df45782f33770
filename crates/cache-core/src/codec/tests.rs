use super::*;
use crate::fixtures::sample_response;

#[test]
fn round_trips_every_part() {
    let response = sample_response();
    let bytes = encode(&response).unwrap();
    assert_eq!(decode(&bytes).unwrap(), response);
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

/// Version 1 of the format, byte for byte. If this fails, old caches become unreadable:
/// bump FORMAT_VERSION instead of changing version 1.
#[test]
fn format_v1_is_frozen() {
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
    let expected: &[u8] = b"RQCE\x01\x00\x00\x21\x00\x00\x00\xc8\x01\x0b\x01\x01a\x01\x31\x09http://h/\x03GET\x09http://h/\x00xy";
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
    future[4] = 2;
    assert!(matches!(
        decode(&future.into()),
        Err(DecodeError::UnsupportedVersion(2))
    ));
    let mut flagged = valid.to_vec();
    flagged[6] = 1;
    assert!(matches!(
        decode(&flagged.into()),
        Err(DecodeError::UnsupportedFlags(1))
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
        b"RQCE\x01\x01\x00\x22\x00\x00\x00\x02\x0faccept-encoding\x0faccept-language\x07"
    );
    assert_eq!(decode_entry(&bytes).unwrap(), Entry::VaryIndex(index));
    assert!(matches!(decode(&bytes), Err(DecodeError::WrongKind)));
}

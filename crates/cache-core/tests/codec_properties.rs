//! Property tests of the entry codec: whatever bytes a store hands back, decoding never panics
//! and gives either a [`DecodeError`] or an entry; whatever valid response or Vary index is
//! encoded decodes back equal.
//!
//! Each property runs 256 cases by default (the whole file takes a few seconds in debug); the
//! large-entry properties (header counts up to and past what `http` holds, long values, bodies
//! up to 4 MiB) run an eighth as many.
//! `PROPTEST_CASES` overrides that; a long run, in release:
//!
//! ```sh
//! PROPTEST_CASES=1000000 cargo test -p cache-core --all-features --release --test codec_properties
//! ```
//!
//! A failure is shrunk to a minimal input, printed, and saved under
//! `tests/codec_properties.proptest-regressions` so later runs try it first (commit that file).
//! The decoder is also a `cargo fuzz` target: `fuzz/fuzz_targets/decode_entry.rs`.

use bytes::Bytes;
use cache_core::codec::{EntryCodec, FORMAT_VERSION, SigningKeys};
use cache_core::{
    CacheKey, CachedRequest, CachedResponse, DecodeError, Entry, VaryIndex, decode, decode_entry,
    encode, encode_vary_index,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use proptest::prelude::*;

mod common;
use common::{config, header_value_byte, method};

const ENVELOPE_LEN: usize = 19;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// A few common names, so maps with repeated names are frequent.
const COMMON_NAMES: &[&str] = &[
    "set-cookie",
    "vary",
    "x-multi",
    "content-type",
    "cache-control",
];

fn header_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        prop::sample::select(COMMON_NAMES).prop_map(HeaderName::from_static),
        "[a-z0-9!#$%&'*+.^_`|~-]{1,24}"
            .prop_map(|name| HeaderName::from_bytes(name.as_bytes()).expect("a token")),
    ]
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop::collection::vec(header_value_byte(), 0..40)
        .prop_map(|bytes| HeaderValue::from_bytes(&bytes).expect("valid header value bytes"))
}

/// A header map; names repeat often (values of one name keep their order).
fn headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((header_name(), header_value()), 0..12).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value);
        }
        headers
    })
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(vec![
        Version::HTTP_09,
        Version::HTTP_10,
        Version::HTTP_11,
        Version::HTTP_2,
        Version::HTTP_3,
    ])
}

/// URLs are kept as text by the codec: any string, URL-like or not.
fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?/[^\\s]{0,40}",
        any::<String>(),
    ]
}

fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(Bytes::from),
        // Repetitive, so compression kicks in.
        (prop::collection::vec(any::<u8>(), 1..16), 1usize..300)
            .prop_map(|(pattern, n)| Bytes::from(pattern.repeat(n))),
    ]
}

fn response() -> impl Strategy<Value = CachedResponse> {
    (
        100u16..=999,
        version(),
        headers(),
        body(),
        url_text(),
        (method(), url_text(), headers()),
    )
        .prop_map(
            |(status, version, headers, body, url, (method, request_url, request_headers))| {
                CachedResponse::new(
                    StatusCode::from_u16(status).expect("100..=999"),
                    version,
                    headers,
                    body,
                    url,
                    CachedRequest::new(method, request_url, request_headers),
                )
            },
        )
}

fn vary_index() -> impl Strategy<Value = VaryIndex> {
    (prop::collection::vec(header_name(), 0..8), any::<u64>()).prop_map(|(headers, generation)| {
        VaryIndex {
            headers,
            generation,
        }
    })
}

const SECRET: &[u8] = b"property test secret, 32 bytes!!";

/// The key signed entries are stored under in these tests.
fn key() -> CacheKey {
    CacheKey::from_digest([0x42; 16])
}

/// Each way entries can be written: plain, compressed, signed, both.
fn codecs() -> Vec<(&'static str, EntryCodec)> {
    let keys = || SigningKeys::new(SECRET.to_vec());
    vec![
        ("plain", EntryCodec::new()),
        ("compressed", EntryCodec::new().compress_above(0)),
        ("signed", EntryCodec::new().signing_keys(keys())),
        (
            "compressed and signed",
            EntryCodec::new().compress_above(0).signing_keys(keys()),
        ),
    ]
}

fn codec() -> impl Strategy<Value = (&'static str, EntryCodec)> {
    prop::sample::select(codecs())
}

/// The bytes of a valid entry: a response or a Vary index, written by any codec.
fn valid_entry_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => (response(), codec()).prop_map(|(r, (_, codec))| codec.encode(Some(&key()), &r).expect("encodes")),
        1 => (vary_index(), codec()).prop_map(|(i, (_, codec))| codec.encode_vary_index(Some(&key()), &i).expect("encodes")),
    ]
}

/// The bytes of a valid entry written by the free functions (no compression, no signature).
fn plain_entry_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => response().prop_map(|r| encode(&r).expect("encodes")),
        1 => vary_index().prop_map(|i| encode_vary_index(&i).expect("encodes")),
    ]
}

/// What can happen to stored bytes on the way back.
#[derive(Clone, Debug)]
enum Damage {
    /// XOR one byte (index taken modulo the length).
    Flip(usize, u8),
    /// Keep only a prefix (length taken modulo the length).
    Truncate(usize),
    /// Replace the announced head length.
    HeadLength(u32),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Append bytes.
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        any::<usize>().prop_map(Damage::Truncate),
        prop_oneof![any::<u32>(), 0u32..64, Just(u32::MAX), Just(u32::MAX - 10)]
            .prop_map(Damage::HeadLength),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Damage::Insert(i, b)),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Append),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    match damage {
        Damage::Flip(i, x) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= x;
        }
        Damage::Flip(..) => {}
        Damage::Truncate(len) => {
            let len = len % (bytes.len() + 1);
            bytes.truncate(len);
        }
        Damage::HeadLength(n) if bytes.len() >= ENVELOPE_LEN => {
            bytes[7..11].copy_from_slice(&n.to_le_bytes());
        }
        Damage::HeadLength(_) => {}
        Damage::Insert(i, inserted) => {
            let i = i % (bytes.len() + 1);
            bytes.splice(i..i, inserted.iter().copied());
        }
        Damage::Append(appended) => bytes.extend_from_slice(appended),
    }
}

/// An envelope header: the magic, a version, a kind, flags and a head length.
fn envelope(version: u8, kind: u8, flags: u8, head_len: u32, body_len: u64) -> Vec<u8> {
    let mut out = b"RQCE".to_vec();
    out.extend_from_slice(&[version, kind, flags]);
    out.extend_from_slice(&head_len.to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Decodes `bytes` every public way. Whatever they hold: no panic, the two decoders agree, and
/// an entry that decodes is stable (encoding it again and decoding gives it back).
fn check_decoders(bytes: &Bytes) -> Result<Option<Entry>, TestCaseError> {
    let entry = decode_entry(bytes);
    let response = decode(bytes);
    match (&entry, &response) {
        (Ok(Entry::Response(a)), Ok(b)) => prop_assert_eq!(a, b),
        (Ok(Entry::VaryIndex(_)), Err(DecodeError::WrongKind)) => {}
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        (entry, response) => {
            return Err(TestCaseError::fail(format!(
                "decode and decode_entry disagree: {entry:?} / {response:?}"
            )));
        }
    }
    // Errors display without panicking.
    if let Err(error) = &entry {
        let _ = error.to_string();
        let _ = format!("{error:?}");
    }
    match entry {
        Ok(Entry::Response(response)) => {
            let again = encode(&response).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = decode(&again).ok();
            prop_assert_eq!(back.as_ref(), Some(&response));
            Ok(Some(Entry::Response(response)))
        }
        Ok(Entry::VaryIndex(index)) => {
            let again =
                encode_vary_index(&index).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                decode_entry(&again).ok(),
                Some(Entry::VaryIndex(index.clone()))
            );
            Ok(Some(Entry::VaryIndex(index)))
        }
        Ok(other) => Err(TestCaseError::fail(format!("unknown entry {other:?}"))),
        Err(_) => Ok(None),
    }
}

/// The length of the envelope and head of a valid entry: where its body starts.
fn body_start(valid: &[u8]) -> usize {
    ENVELOPE_LEN + u32::from_le_bytes([valid[7], valid[8], valid[9], valid[10]]) as usize
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Another program's data, random garbage: never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let decoded = check_decoders(&Bytes::from(bytes.clone()))?;
        if !bytes.starts_with(b"RQCE") {
            prop_assert!(decoded.is_none(), "no magic, yet decoded: {:?}", decoded);
        }
    }

    /// Garbage behind a well-formed envelope header reaches the head parser: still no panic.
    #[test]
    fn garbage_behind_a_valid_envelope_never_panics(
        kind in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        rest in prop::collection::vec(any::<u8>(), 0..512),
        announced in prop_oneof![
            Just(None),
            any::<u32>().prop_map(Some),
            (0u32..600).prop_map(Some),
        ],
    ) {
        // Most often the head length is consistent with the bytes that follow.
        let head_len = announced.unwrap_or(rest.len() as u32);
        let body_len = (rest.len() as u64).saturating_sub(u64::from(head_len));
        let mut bytes = envelope(FORMAT_VERSION, kind, 0, head_len, body_len);
        bytes.extend_from_slice(&rest);
        let decoded = check_decoders(&Bytes::from(bytes))?;
        if kind > 1 || head_len as usize > rest.len() {
            prop_assert!(decoded.is_none(), "decoded {:?}", decoded);
        }
    }

    /// A valid entry damaged in any of the ways storage can damage it: an error or an entry,
    /// never a panic.
    #[test]
    fn damaged_entries_never_panic(
        valid in valid_entry_bytes(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let mut bytes = valid.to_vec();
        for damage in &damages {
            apply(&mut bytes, damage);
        }
        check_decoders(&Bytes::from(bytes))?;
    }

    /// Any response comes back exactly: status, version, every header value (repeated names
    /// and obs-text included), body, URLs, and the request.
    #[test]
    fn responses_round_trip(response in response()) {
        let bytes = encode(&response).expect("encodes");
        let decoded = decode(&bytes).expect("decodes");
        // HeaderMap equality ignores the order of values under one name: compare it too.
        for (headers, back) in [
            (&response.headers, &decoded.headers),
            (&response.request.headers, &decoded.request.headers),
        ] {
            for name in headers.keys() {
                let sent: Vec<&[u8]> = headers.get_all(name).iter().map(HeaderValue::as_bytes).collect();
                let got: Vec<&[u8]> = back.get_all(name).iter().map(HeaderValue::as_bytes).collect();
                prop_assert_eq!(sent, got, "values of {}", name);
            }
        }
        prop_assert_eq!(&decoded, &response);
        prop_assert_eq!(decode_entry(&bytes).expect("decodes"), Entry::Response(response));
    }

    /// Any Vary index comes back exactly, and is never taken for a response.
    #[test]
    fn vary_indexes_round_trip(index in vary_index()) {
        let bytes = encode_vary_index(&index).expect("encodes");
        prop_assert_eq!(decode_entry(&bytes).expect("decodes"), Entry::VaryIndex(index));
        prop_assert!(matches!(decode(&bytes), Err(DecodeError::WrongKind)));
    }

    /// Cut anywhere in the envelope or the head, an entry never decodes.
    #[test]
    fn entries_cut_before_their_body_are_errors(valid in plain_entry_bytes(), cut in any::<usize>()) {
        let end = body_start(&valid);
        let len = cut % end;
        let result = decode_entry(&valid.slice(..len));
        prop_assert!(result.is_err(), "a {}-byte prefix of a {}-byte head decoded: {:?}", len, end, result);
    }

    /// Another format version, older or newer, is always refused as such.
    #[test]
    fn other_versions_are_refused(valid in valid_entry_bytes(), version in any::<u8>()) {
        prop_assume!(version != FORMAT_VERSION);
        let mut bytes = valid.to_vec();
        bytes[4] = version;
        let result = decode_entry(&Bytes::from(bytes));
        prop_assert!(matches!(result, Err(DecodeError::UnsupportedVersion(v)) if v == version), "{:?}", result);
    }

    /// Flags this build does not know are always refused (bits 0 and 1 are reserved for
    /// compression and signatures, so only values with a higher bit set are asserted on).
    #[test]
    fn unknown_flags_are_refused(valid in valid_entry_bytes(), flags in 4u8..=255) {
        let mut bytes = valid.to_vec();
        bytes[6] = flags;
        let result = decode_entry(&Bytes::from(bytes));
        prop_assert!(matches!(result, Err(DecodeError::UnsupportedFlags(f)) if f == flags), "{:?}", result);
    }

    /// Anything but the magic in the first four bytes is another program's data.
    #[test]
    fn bad_magic_is_refused(valid in valid_entry_bytes(), magic in any::<[u8; 4]>()) {
        prop_assume!(&magic != b"RQCE");
        let mut bytes = valid.to_vec();
        bytes[..4].copy_from_slice(&magic);
        prop_assert!(matches!(decode_entry(&Bytes::from(bytes)), Err(DecodeError::BadMagic)));
    }
}

proptest! {
    #![proptest_config(config())]

    /// Written by any codec (compressed, signed, both), a response comes back exactly from the
    /// same codec and key.
    #[test]
    fn every_codec_round_trips_responses(response in response(), (name, codec) in codec()) {
        let key = key();
        let bytes = codec.encode(Some(&key), &response).expect("encodes");
        prop_assert_eq!(codec.decode(Some(&key), &bytes).ok(), Some(response.clone()), "{}", name);
        prop_assert_eq!(
            codec.decode_entry(Some(&key), &bytes).ok(),
            Some(Entry::Response(response)),
            "{}", name
        );
    }

    /// The same for Vary indexes.
    #[test]
    fn every_codec_round_trips_vary_indexes(index in vary_index(), (name, codec) in codec()) {
        let key = key();
        let bytes = codec.encode_vary_index(Some(&key), &index).expect("encodes");
        prop_assert_eq!(codec.decode_entry(Some(&key), &bytes).ok(), Some(Entry::VaryIndex(index)), "{}", name);
        prop_assert!(matches!(codec.decode(Some(&key), &bytes), Err(DecodeError::WrongKind)), "{}", name);
    }

    /// A signed entry changed in any way (a flipped byte anywhere, a cut, bytes added, another
    /// head length) never verifies: with signing on, a torn or tampered entry is never served.
    #[test]
    fn damaged_signed_entries_never_verify(
        response in response(),
        compress in any::<bool>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let key = key();
        let mut codec = EntryCodec::new().signing_keys(SigningKeys::new(SECRET.to_vec()));
        if compress {
            codec = codec.compress_above(0);
        }
        let valid = codec.encode(Some(&key), &response).expect("encodes");
        let mut bytes = valid.to_vec();
        for damage in &damages {
            apply(&mut bytes, damage);
        }
        prop_assume!(bytes[..] != valid[..]);
        let result = codec.decode_entry(Some(&key), &Bytes::from(bytes));
        prop_assert!(result.is_err(), "a damaged signed entry decoded: {:?}", result);
    }

    /// A signed entry verifies only under the key it was written for, and only with a secret
    /// the reader knows (the current one or a previous one).
    #[test]
    fn signatures_bind_the_key_and_the_secret(response in response(), other in any::<[u8; 16]>()) {
        let key = key();
        let other = CacheKey::from_digest(other);
        prop_assume!(other != key);
        let old = EntryCodec::new().signing_keys(SigningKeys::new(b"the old secret".to_vec()));
        let bytes = old.encode(Some(&key), &response).expect("encodes");
        prop_assert!(matches!(old.decode(Some(&other), &bytes), Err(DecodeError::BadSignature)));
        prop_assert!(matches!(old.decode(None, &bytes), Err(DecodeError::BadSignature)));
        let rotated = EntryCodec::new().signing_keys(SigningKeys::new(SECRET.to_vec()).with_previous(b"the old secret".to_vec()));
        prop_assert_eq!(rotated.decode(Some(&key), &bytes).ok(), Some(response.clone()));
        let stranger = EntryCodec::new().signing_keys(SigningKeys::new(SECRET.to_vec()));
        prop_assert!(matches!(stranger.decode(Some(&key), &bytes), Err(DecodeError::BadSignature)));
        // Unsigned entries are refused when signing is on.
        let unsigned = encode(&response).expect("encodes");
        prop_assert!(matches!(stranger.decode(Some(&key), &unsigned), Err(DecodeError::Unsigned)));
    }
}

/// An entry cut inside its body (a torn write, a store that truncated the value) must not
/// decode: the body would be served short. The envelope's body length catches it.
#[test]
fn entries_cut_inside_their_body_are_errors() {
    let mut headers = HeaderMap::new();
    headers.append("content-length", HeaderValue::from_static("10"));
    let response = CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from_static(b"0123456789"),
        "https://example.com/",
        CachedRequest::new(Method::GET, "https://example.com/", HeaderMap::new()),
    );
    let valid = encode(&response).unwrap();
    let start = body_start(&valid);
    for len in start..valid.len() {
        let result = decode(&valid.slice(..len));
        assert!(
            result.is_err(),
            "cut at {len} of {}: decoded with body {:?}",
            valid.len(),
            result.map(|r| r.body)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Large entries: header counts up to and past what `http` holds, long values, large bodies
// ---------------------------------------------------------------------------------------------

/// `http` holds at most this many header names in one map (and panics past it, unless the
/// fallible calls are used).
const HTTP_MAX_NAMES: usize = 24_576;

/// Fewer cases than the small properties: each builds up to tens of thousands of headers
/// or megabytes of body. `PROPTEST_CASES` still scales them.
fn large_config() -> ProptestConfig {
    let mut config = config();
    config.cases = (config.cases / 8).max(16);
    config
}

/// A long header value: up to 64 KiB of valid bytes.
fn long_value() -> impl Strategy<Value = HeaderValue> {
    (header_value_byte(), 1usize..=65_536).prop_map(|(byte, len)| {
        HeaderValue::from_bytes(&vec![byte; len]).expect("valid header value bytes")
    })
}

/// Many headers: distinct names up to exactly what `http` holds, many values of one name
/// (legal past that count), and a few long values.
fn large_headers() -> impl Strategy<Value = HeaderMap> {
    (
        prop_oneof![0usize..64, 1_000usize..3_000, Just(HTTP_MAX_NAMES - 1)],
        prop_oneof![Just(0usize), 1usize..100, 24_000usize..40_000],
        prop::collection::vec(long_value(), 0..3),
    )
        .prop_map(|(distinct, repeated, long)| {
            let mut headers = HeaderMap::new();
            for value in long {
                headers.append("x-long", value);
            }
            for _ in 0..repeated {
                headers.append("x-rep", HeaderValue::from_static("v"));
            }
            for i in 0..distinct {
                let name = HeaderName::from_bytes(format!("x-{i}").as_bytes()).expect("a token");
                // Stops at http's limit: the map can hold no more names.
                if headers
                    .try_append(name, HeaderValue::from_static(""))
                    .is_err()
                {
                    break;
                }
            }
            headers
        })
}

/// Bodies up to 4 MiB, random or repetitive (so compression applies).
fn large_body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        (any::<u8>(), 0usize..4 << 20).prop_map(|(byte, len)| Bytes::from(vec![byte; len])),
        prop::collection::vec(any::<u8>(), 0..65_536).prop_map(Bytes::from),
        (prop::collection::vec(any::<u8>(), 1..64), 1usize..32_768)
            .prop_map(|(pattern, n)| Bytes::from(pattern.repeat(n))),
    ]
}

fn large_response() -> impl Strategy<Value = CachedResponse> {
    (large_headers(), large_body(), large_headers(), "[a-z]{1,8}").prop_map(
        |(headers, body, request_headers, path)| {
            let url = format!("https://example.com/{}", path.repeat(1_000));
            CachedResponse::new(
                StatusCode::OK,
                Version::HTTP_11,
                headers,
                body,
                url.clone(),
                CachedRequest::new(Method::GET, url, request_headers),
            )
        },
    )
}

/// The head as the codec writes it, to build heads no `HeaderMap` can hold.
#[derive(serde::Serialize)]
struct RawHead {
    status: u16,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    url: String,
    request: RawRequestHead,
}

#[derive(serde::Serialize)]
struct RawRequestHead {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// An unsigned, uncompressed response entry with this head and body.
fn raw_entry(head: &RawHead, body: &[u8]) -> Bytes {
    let head = postcard::to_allocvec(head).expect("serializes");
    let mut bytes = envelope(FORMAT_VERSION, 0, 0, head.len() as u32, body.len() as u64);
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

proptest! {
    #![proptest_config(large_config())]

    /// Large responses (up to every header name `http` holds, tens of thousands of values
    /// of one name, 64 KiB values, 4 MiB bodies, long URLs) come back exactly through every
    /// codec.
    #[test]
    fn large_responses_round_trip(response in large_response(), (name, codec) in codec()) {
        let key = key();
        let bytes = codec.encode(Some(&key), &response).expect("encodes");
        let decoded = codec.decode(Some(&key), &bytes);
        prop_assert!(decoded.is_ok(), "{}: {:?}", name, decoded.err());
        prop_assert!(decoded.ok() == Some(response), "{}: differs", name);
    }

    /// Heads holding header names up to and past what `http` holds, in the response or in
    /// the request, with many values of one name besides: an entry when `http` can hold it,
    /// otherwise `DecodeError::TooLarge`; never a panic.
    #[test]
    fn header_counts_past_http_limits_are_clean_errors(
        distinct in prop_oneof![
            Just(HTTP_MAX_NAMES),
            Just(HTTP_MAX_NAMES + 1),
            HTTP_MAX_NAMES - 100..HTTP_MAX_NAMES + 2_000,
        ],
        repeated in prop_oneof![Just(0usize), 1usize..50_000],
        in_request in any::<bool>(),
    ) {
        let mut pairs: Vec<(String, Vec<u8>)> = vec![("x-rep".to_owned(), b"v".to_vec()); repeated];
        // `x-rep` is one more name.
        let others = distinct.saturating_sub(usize::from(repeated > 0));
        pairs.extend((0..others).map(|i| (format!("x-{i}"), Vec::new())));
        let (headers, request_headers) = if in_request {
            (Vec::new(), pairs)
        } else {
            (pairs, Vec::new())
        };
        let head = RawHead {
            status: 200,
            version: 11,
            headers,
            url: "https://example.com/".to_owned(),
            request: RawRequestHead {
                method: "GET".to_owned(),
                url: "https://example.com/".to_owned(),
                headers: request_headers,
            },
        };
        let bytes = raw_entry(&head, b"body");
        let decoded = check_decoders(&bytes)?;
        if distinct <= HTTP_MAX_NAMES {
            let Some(Entry::Response(response)) = decoded else {
                return Err(TestCaseError::fail(format!("{distinct} names did not decode")));
            };
            let map = if in_request { &response.request.headers } else { &response.headers };
            prop_assert_eq!(map.keys_len(), distinct);
            prop_assert_eq!(map.len(), distinct + repeated.saturating_sub(1));
        } else {
            prop_assert!(
                matches!(decode(&bytes), Err(DecodeError::TooLarge { .. })),
                "{} names: {:?}", distinct, decode(&bytes).map(|_| ())
            );
        }
    }
}

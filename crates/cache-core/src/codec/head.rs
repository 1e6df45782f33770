//! The head of a stored response (status, version, headers, URLs, the request): written with
//! postcard from borrowed parts, read back straight into header maps.
//!
//! Reading is on every hit of a store that keeps bytes (SQLite, sled, Redis...), so it makes
//! no list of pairs first: each header goes from the stored bytes into its map, its value a
//! slice of the stored buffer, its name checked once (by `http`).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserializer, Serialize};

use super::DecodeError;
use crate::response::{CachedRequest, CachedResponse};

/// The head as written. Postcard writes a struct as its fields in order, a string and a byte
/// slice alike (length, then the bytes): [`HeadSeed`] reads these bytes back.
#[derive(Serialize)]
pub(super) struct Head<'a> {
    status: u16,
    version: u8,
    headers: Pairs<'a>,
    url: &'a str,
    request: RequestHead<'a>,
}

#[derive(Serialize)]
struct RequestHead<'a> {
    method: &'a str,
    url: &'a str,
    headers: Pairs<'a>,
}

/// A header map written as a sequence of (name, value) pairs, in order, repeats kept.
struct Pairs<'a>(&'a HeaderMap);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // `len` counts values, repeats included: one per pair.
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&(name.as_str(), AsBytes(value.as_bytes())))?;
        }
        seq.end()
    }
}

/// A byte slice written as postcard writes a `Vec<u8>` (its length, then the bytes), in one
/// piece rather than byte by byte.
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'a> Head<'a> {
    pub(super) fn of(response: &'a CachedResponse) -> Self {
        Self {
            status: response.status.as_u16(),
            version: version_to_u8(response.version),
            headers: Pairs(&response.headers),
            url: &response.url,
            request: RequestHead {
                method: response.request.method.as_str(),
                url: &response.request.url,
                headers: Pairs(&response.request.headers),
            },
        }
    }

    /// About the bytes this head encodes to (never much less): texts plus a few bytes of
    /// lengths each, so an encoder can size its buffer once.
    pub(super) fn size_hint(&self) -> usize {
        let pairs = |pairs: &Pairs<'_>| {
            pairs
                .0
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>()
        };
        16 + self.url.len()
            + self.request.method.len()
            + self.request.url.len()
            + pairs(&self.headers)
            + pairs(&self.request.headers)
    }
}

/// Decodes a stored head; header values share `buffer` (which holds `head`).
pub(super) fn decode_response(
    buffer: &Bytes,
    head: &[u8],
    body: Bytes,
) -> Result<CachedResponse, DecodeError> {
    let mut deserializer = postcard::Deserializer::from_bytes(head);
    HeadSeed { buffer }
        .deserialize(&mut deserializer)
        .map_err(DecodeError::Malformed)?
        .map(|mut response| {
            response.body = body;
            response
        })
}

/// Reads a [`Head`]: what postcard cannot say about the bytes is [`DecodeError::Malformed`]
/// (the outer error); a well-formed head with a value `http` refuses is the inner error.
struct HeadSeed<'b> {
    buffer: &'b Bytes,
}

type Checked<T> = Result<T, DecodeError>;

impl<'de> DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = Checked<CachedResponse>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(5, self)
    }
}

impl<'de> Visitor<'de> for HeadSeed<'_> {
    type Value = Checked<CachedResponse>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored response head")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let status: u16 = next(&mut seq)?;
        let version: u8 = next(&mut seq)?;
        let headers = next_seed(&mut seq, HeadersSeed(self.buffer))?;
        let url: &str = next(&mut seq)?;
        let request = next_seed(&mut seq, RequestSeed(self.buffer))?;
        Ok(response(status, version, headers, url, request))
    }
}

/// The response a well-formed head describes, if `http` takes its values.
fn response(
    status: u16,
    version: u8,
    headers: Checked<HeaderMap>,
    url: &str,
    request: Checked<CachedRequest>,
) -> Checked<CachedResponse> {
    let invalid = |field| DecodeError::Invalid { field };
    Ok(CachedResponse::new(
        StatusCode::from_u16(status).map_err(|_| invalid("status"))?,
        version_from_u8(version).ok_or(invalid("version"))?,
        headers?,
        Bytes::new(),
        url,
        request?,
    ))
}

/// Reads the request part of a [`Head`].
struct RequestSeed<'b>(&'b Bytes);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = Checked<CachedRequest>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(3, self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = Checked<CachedRequest>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored request head")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let method: &[u8] = next(&mut seq)?;
        let url: &str = next(&mut seq)?;
        let headers = next_seed(&mut seq, HeadersSeed(self.0))?;
        let method =
            Method::from_bytes(method).map_err(|_| DecodeError::Invalid { field: "method" });
        Ok(method.and_then(|method| Ok(CachedRequest::new(method, url, headers?))))
    }
}

/// Reads a [`Pairs`] sequence into a header map.
struct HeadersSeed<'b>(&'b Bytes);

impl<'de> DeserializeSeed<'de> for HeadersSeed<'_> {
    type Value = Checked<HeaderMap>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for HeadersSeed<'_> {
    type Value = Checked<HeaderMap>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of header names and values")
    }

    /// Only the fallible `HeaderMap` calls: `http` panics past 24,576 names, and stored
    /// bytes may claim any count. The capacity is the count postcard read, capped: a count
    /// past what the bytes can hold is refused by postcard only as the pairs run out.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let capacity = seq.size_hint().unwrap_or(0).min(64);
        let mut headers = HeaderMap::try_with_capacity(capacity).unwrap_or_default();
        let mut refused = None;
        // Every pair is read, even after a refused one, so the fields after it still line
        // up (the first refusal is the one reported).
        while let Some((name, value)) = seq.next_element::<(&[u8], &[u8])>()? {
            if refused.is_none() {
                refused = append(&mut headers, self.0, name, value).err();
            }
        }
        Ok(match refused {
            None => Ok(headers),
            Some(error) => Err(error),
        })
    }
}

fn append(
    headers: &mut HeaderMap,
    buffer: &Bytes,
    name: &[u8],
    value: &[u8],
) -> Result<(), DecodeError> {
    let name = HeaderName::from_bytes(name).map_err(|_| DecodeError::Invalid {
        field: "header name",
    })?;
    let value = if super::is_zero(value) {
        super::zero()
    } else {
        HeaderValue::from_maybe_shared(buffer.slice_ref(value)).map_err(|_| {
            DecodeError::Invalid {
                field: "header value",
            }
        })?
    };
    headers
        .try_append(name, value)
        .map(drop)
        .map_err(|_| DecodeError::TooLarge {
            field: "header names",
        })
}

fn next<'de, T: serde::Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("stored head ends early"))
}

fn next_seed<'de, S: DeserializeSeed<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    seed: S,
) -> Result<S::Value, A::Error> {
    seq.next_element_seed(seed)?
        .ok_or_else(|| de::Error::custom("stored head ends early"))
}

fn version_to_u8(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 9,
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        Version::HTTP_3 => 30,
        _ => 11,
    }
}

fn version_from_u8(v: u8) -> Option<Version> {
    Some(match v {
        9 => Version::HTTP_09,
        10 => Version::HTTP_10,
        11 => Version::HTTP_11,
        20 => Version::HTTP_2,
        30 => Version::HTTP_3,
        _ => return None,
    })
}

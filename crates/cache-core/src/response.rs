//! A stored response, rebuilt faithfully: status, version, every header value (repeated and
//! non-UTF-8 ones included), the body bytes, the final URL and the request that produced it.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};

/// A response as the cache keeps it.
///
/// The body is [`Bytes`]: decoding an entry slices it out of the stored buffer without a copy,
/// and serving it hands the same buffer to the response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedResponse {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version the origin answered with.
    pub version: Version,
    /// Response headers, in order, repeated names kept.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The final URL after redirects, with redacted parameters removed. Kept as text: a hit
    /// never needs it parsed unless the response came through a redirect.
    pub url: String,
    /// The request that was sent, redacted.
    pub request: CachedRequest,
}

impl CachedResponse {
    /// A response with the given parts.
    pub fn new(
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        body: Bytes,
        url: impl Into<String>,
        request: CachedRequest,
    ) -> Self {
        Self {
            status,
            version,
            headers,
            body,
            url: url.into(),
            request,
        }
    }
}

/// The request a cached response answered, with ignored parameters and credentials removed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedRequest {
    /// Method.
    pub method: Method,
    /// URL, redacted, as text.
    pub url: String,
    /// Headers, redacted.
    pub headers: HeaderMap,
}

impl CachedRequest {
    /// A request with the given parts.
    pub fn new(method: Method, url: impl Into<String>, headers: HeaderMap) -> Self {
        Self {
            method,
            url: url.into(),
            headers,
        }
    }
}

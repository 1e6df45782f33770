//! Fixtures shared by the unit tests and the conformance suite.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use url::Url;

use crate::{CachedRequest, CachedResponse};

/// A response with repeated and non-UTF-8 header values, for codec round trips.
pub fn sample_response() -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.append("content-type", HeaderValue::from_static("text/plain"));
    headers.append("set-cookie", HeaderValue::from_static("a=1"));
    headers.append("set-cookie", HeaderValue::from_static("b=2"));
    headers.append(
        "x-raw",
        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is valid"),
    );
    let url = Url::parse("https://example.com/final").expect("valid URL");
    CachedResponse::new(
        StatusCode::OK,
        Version::HTTP_11,
        headers,
        Bytes::from_static(b"hello body"),
        url.clone(),
        CachedRequest::new(Method::GET, url, HeaderMap::new()),
    )
}

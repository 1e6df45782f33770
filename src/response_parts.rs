//! Taking a live response apart and putting responses together.
//!
//! Calls `info` (nothing that calls it).

use bytes::Bytes;
use http::{Extensions, HeaderMap, StatusCode, Version};
use reqwest::ResponseBuilderExt;
use url::Url;

use crate::info::CacheInfo;

/// Everything of a response but its body.
pub(crate) struct ResponseParts {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) url: Url,
    pub(crate) extensions: Extensions,
}

impl ResponseParts {
    /// Moves the head out of `response`, leaving its body readable.
    pub(crate) fn take(response: &mut reqwest::Response) -> Self {
        Self {
            status: response.status(),
            version: response.version(),
            headers: std::mem::take(response.headers_mut()),
            url: response.url().clone(),
            extensions: std::mem::take(response.extensions_mut()),
        }
    }

    /// A response with these parts, this body and this cache info.
    pub(crate) fn into_response(self, body: reqwest::Body, info: CacheInfo) -> reqwest::Response {
        // The URL goes in through the builder, the only way reqwest takes it: the builder is
        // given the response's own extensions first, so the URL and the info join them where
        // they are (no second map to allocate and merge).
        let mut builder = http::Response::builder();
        if let Some(extensions) = builder.extensions_mut() {
            *extensions = self.extensions;
            extensions.insert(info);
        }
        let mut response = builder.url(self.url).body(body).unwrap_or_else(
            // Unreachable: a builder given only extensions and a body cannot fail.
            |_| http::Response::new(reqwest::Body::from(Bytes::new())),
        );
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        reqwest::Response::from(response)
    }
}

/// Attaches cache info to a response the cache did not rebuild.
pub(crate) fn with_info(mut response: reqwest::Response, info: CacheInfo) -> reqwest::Response {
    response.extensions_mut().insert(info);
    response
}

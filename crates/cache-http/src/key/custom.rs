//! Custom keys: what a user's key function sees of a request ([`KeyRequest`]), with the
//! default key and its parts to build on, and [`key_from_parts`] to hash its own.

use std::borrow::Cow;

use cache_core::CacheKey;
use http::{HeaderMap, Method};
use url::Url;

use super::{KeyHasher, KeyRules};

/// Domain separation for custom keys: a custom key never equals a default one by accident.
const CUSTOM_KEY_TAG: &[u8] = b"reqwest-caching/custom-key/v1";

/// A request as a custom key function sees it: its parts, and the key (and normalized URL)
/// the default rules give it, to build on.
///
/// ```
/// use cache_http::{KeyRequest, KeyRules, key_from_parts};
/// use http::{HeaderMap, Method};
///
/// let rules = KeyRules::default();
/// let url = url::Url::parse("https://example.com/feed?lang=en").unwrap();
/// let headers = HeaderMap::new();
/// let request = KeyRequest::new(&rules, &Method::GET, &url, &headers, None);
/// // The default key, refined by one more part: the tenant a header names.
/// let tenant = request.header("x-tenant").unwrap_or_default();
/// let key = key_from_parts([request.default_key().as_str().as_bytes(), tenant.as_bytes()]);
/// assert_ne!(key, request.default_key());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct KeyRequest<'a> {
    rules: &'a KeyRules,
    method: &'a Method,
    url: &'a Url,
    headers: &'a HeaderMap,
    body: Option<&'a [u8]>,
}

impl<'a> KeyRequest<'a> {
    /// The request with these parts, keyed by default with `rules`.
    pub fn new(
        rules: &'a KeyRules,
        method: &'a Method,
        url: &'a Url,
        headers: &'a HeaderMap,
        body: Option<&'a [u8]>,
    ) -> Self {
        Self {
            rules,
            method,
            url,
            headers,
            body,
        }
    }

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URL as requested.
    pub fn url(&self) -> &'a Url {
        self.url
    }

    /// The request headers (credentials included: never put them in a key as they are).
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, when the request has one in memory.
    pub fn body(&self) -> Option<&'a [u8]> {
        self.body
    }

    /// The key the default rules give this request (ignored parameters, matched headers,
    /// credentials fingerprinted: see [`KeyRules::key`]).
    pub fn default_key(&self) -> CacheKey {
        self.rules
            .key(self.method, self.url, self.headers, self.body)
    }

    /// The URL as it enters the default key: lowercase scheme and host, no default port,
    /// user info or fragment, ignored parameters removed and the rest sorted.
    pub fn normalized_url(&self) -> Cow<'a, str> {
        self.rules.normalized_url(self.url)
    }

    /// The key rules in force.
    pub fn rules(&self) -> &'a KeyRules {
        self.rules
    }
}

/// A key hashed from these parts, in order (each length-prefixed, so `["ab", "c"]` and
/// `["a", "bc"]` differ), in a space of its own: never a default key.
pub fn key_from_parts<I, P>(parts: I) -> CacheKey
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    let mut hasher = KeyHasher::with_capacity(128);
    hasher.field(CUSTOM_KEY_TAG);
    for part in parts {
        hasher.field(part.as_ref());
    }
    hasher.finish()
}

//! Responses the cache makes from a stored entry: the whole response, a `304` for a caller's
//! own conditional request, a `206` for a byte range, each with its current `Age` and the
//! [`CacheInfo`] saying where it came from; and the `504`s of `only-if-cached` and of an
//! offline miss. A body kept in its file streams from it. Calls only leaf modules.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::{CacheKey, CachedResponse, EntryMeta};
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
use http::{Extensions, HeaderMap, Method, StatusCode};
use reqwest::{Request, Response};
use url::Url;

use crate::conditional;
use crate::file_body::FileBody;
use crate::info::CacheInfo;
use crate::lookup::Found;
use crate::range;
use crate::response_parts::ResponseParts;

/// Info for a response served from an entry.
pub(crate) fn hit_info(found: &Found, revalidated: bool, now: SystemTime) -> CacheInfo {
    entry_info(found.key, found.meta(), revalidated, now)
}

/// Info for a response served from the entry stored under `key` with `meta`.
pub(crate) fn entry_info(
    key: CacheKey,
    meta: &EntryMeta,
    revalidated: bool,
    now: SystemTime,
) -> CacheInfo {
    CacheInfo {
        from_cache: true,
        created_at: Some(meta.created_at),
        expires: meta.expires_at,
        is_expired: meta.is_expired(now),
        key: Some(key),
        revalidated,
        ..CacheInfo::passed_through(None)
    }
}

/// The answer to `req` from a usable entry: a `304` the cache makes when the caller's own
/// `If-None-Match` / `If-Modified-Since` says its copy is current (evaluated before any
/// range, RFC 9110 §13.2.2), else the `206` of the byte range `part` when the request has one
/// the entry satisfies, else the stored response (without a body for HEAD).
pub(crate) fn answer(
    found: Found,
    req: &Request,
    mut info: CacheInfo,
    now: SystemTime,
    part: Option<std::ops::Range<usize>>,
) -> Response {
    let headers = req.headers();
    let conditional =
        headers.contains_key(IF_NONE_MATCH) || headers.contains_key(IF_MODIFIED_SINCE);
    let with_body = req.method() != Method::HEAD;
    let aged = (info.created_at, now);
    let not_modified = conditional
        && conditional::not_modified(
            req.method(),
            headers,
            found.response(),
            found.meta().created_at,
        );
    if !not_modified && part.is_none() {
        // The usual hit: the stored response as it is, with its own copy of the headers.
        let (headers, found) = found.take_headers();
        return serve(
            Source::found(headers, &found),
            req.url(),
            info,
            with_body,
            aged,
        );
    }
    info.generated_by_cache = true;
    let (body, redirected) = (found.body.clone(), found.is_redirected());
    let (_, response) = found.into_owned();
    let (mut response, body) = match part {
        _ if not_modified => (conditional::into_not_modified(response), None),
        Some(part) => (range::into_partial(response, part), body),
        None => (response, body),
    };
    let headers = std::mem::take(&mut response.headers);
    let source = Source::rebuilt(headers, &response, body, redirected);
    serve(source, req.url(), info, with_body, aged)
}

/// What [`serve`] makes a response of: its headers, the stored response for the rest (whose
/// own headers are not read), the body's file for a body kept in one.
pub(crate) struct Source<'a> {
    headers: HeaderMap,
    from: &'a CachedResponse,
    file: Option<Arc<FileBody>>,
    /// Whether `from` came through a redirect, as its entry says without reading its URLs
    /// (see [`cache_core::Decoded::is_redirected`]).
    redirected: bool,
    /// The stored `Age`, as its entry says without reading the header
    /// ([`cache_core::Decoded::stored_age`]); `None` for a rebuilt response.
    stored_age: Option<u64>,
}

impl<'a> Source<'a> {
    /// The stored response `found`, served with `headers`.
    pub(crate) fn found(headers: HeaderMap, found: &'a Found) -> Self {
        Self {
            headers,
            from: found.response(),
            file: found.body.clone(),
            redirected: found.is_redirected(),
            stored_age: found.stored_age(),
        }
    }

    /// A response rebuilt from a stored one (taken out of its entry, which said whether it
    /// came through a redirect), with `headers` and the body's `file`, if any.
    pub(crate) fn rebuilt(
        headers: HeaderMap,
        from: &'a CachedResponse,
        file: Option<Arc<FileBody>>,
        redirected: bool,
    ) -> Self {
        Self {
            headers,
            from,
            file,
            redirected,
            stored_age: None,
        }
    }

    /// The URL to give the response: the caller's own (with its parameters) when the
    /// response came from the URL asked for; after a redirect, the stored final URL.
    fn url(&self, request_url: &Url) -> Url {
        // Stored URLs are redacted: a redirect to the very URL asked for still answers the
        // caller's own text.
        if !self.redirected || self.from.url == request_url.as_str() {
            return request_url.clone();
        }
        Url::parse(&self.from.url).unwrap_or_else(|_| request_url.clone())
    }
}

/// A response made from `source` with its current `Age`: the stored initial age plus the
/// time since `aged_from` (when the headers were stored or last refreshed); the body shares
/// the entry's buffer, or streams from the source's file for a body kept in one (none for
/// HEAD).
pub(crate) fn serve(
    source: Source<'_>,
    request_url: &Url,
    info: CacheInfo,
    with_body: bool,
    (aged_from, now): (Option<SystemTime>, SystemTime),
) -> Response {
    let url = source.url(request_url);
    let Source {
        mut headers,
        from,
        file,
        stored_age,
        ..
    } = source;
    if let Some(aged_from) = aged_from {
        crate::age::set_current(&mut headers, stored_age, aged_from, now);
    }
    let parts = ResponseParts {
        status: from.status,
        version: from.version,
        headers,
        url,
        extensions: Extensions::new(),
    };
    let body = match (with_body, file) {
        (false, _) => reqwest::Body::from(Bytes::new()),
        (true, Some(file)) => file.into_body(),
        (true, None) => reqwest::Body::from(from.body.clone()),
    };
    parts.into_response(body, info)
}

/// `504 Gateway Timeout`: what `OnlyIfCached` answers when nothing usable is stored.
pub(crate) fn gateway_timeout(url: Url, key: Option<CacheKey>) -> Response {
    let info = CacheInfo {
        generated_by_cache: true,
        ..CacheInfo::passed_through(key)
    };
    own_504(url, info)
}

/// The `504 Gateway Timeout` of [`CacheMode::Offline`](crate::CacheMode::Offline) when
/// nothing stored answers; `key` is `None` for a request the cache could not look up (a
/// method it does not cache, a streaming body).
pub(crate) fn offline_miss(url: Url, key: Option<CacheKey>) -> Response {
    let info = CacheInfo {
        generated_by_cache: true,
        offline_miss: true,
        ..CacheInfo::passed_through(key)
    };
    own_504(url, info)
}

fn own_504(url: Url, info: CacheInfo) -> Response {
    let parts = ResponseParts {
        status: StatusCode::GATEWAY_TIMEOUT,
        version: http::Version::HTTP_11,
        headers: http::HeaderMap::new(),
        url,
        extensions: Extensions::new(),
    };
    parts.into_response(reqwest::Body::from(Bytes::new()), info)
}

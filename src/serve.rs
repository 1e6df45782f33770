//! Responses the cache makes from a stored entry: the whole response, a `304` for a caller's
//! own conditional request, a `206` for a byte range, each with its current `Age` and the
//! [`CacheInfo`] saying where it came from; and the `504`s of `only-if-cached` and of an
//! offline miss. A body kept in its file streams from it. Calls only leaf modules.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::{CacheKey, CachedResponse};
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
use http::{Extensions, Method, StatusCode};
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
    CacheInfo {
        from_cache: true,
        created_at: Some(found.meta.created_at),
        expires: found.meta.expires_at,
        is_expired: found.meta.is_expired(now),
        key: Some(found.key),
        revalidated,
        ..CacheInfo::passed_through(None)
    }
}

/// The answer to `req` from a usable entry: a `304` the cache makes when the caller's own
/// `If-None-Match` / `If-Modified-Since` says its copy is current (evaluated before any
/// range, RFC 9110 §13.2.2), else the `206` of the byte range `part` when the request has one
/// the entry satisfies, else the stored response (without a body for HEAD).
pub(crate) fn answer(
    found: Box<Found>,
    req: &Request,
    mut info: CacheInfo,
    now: SystemTime,
    part: Option<std::ops::Range<usize>>,
) -> Response {
    let headers = req.headers();
    let conditional =
        headers.contains_key(IF_NONE_MATCH) || headers.contains_key(IF_MODIFIED_SINCE);
    let Found { response, body, .. } = *found;
    let mut response = response;
    let mut body = body;
    if conditional
        && conditional::not_modified(req.method(), headers, &response, found.meta.created_at)
    {
        info.generated_by_cache = true;
        response = conditional::into_not_modified(response);
        body = None;
    } else if let Some(part) = part {
        info.generated_by_cache = true;
        response = range::into_partial(response, part);
    }
    let with_body = req.method() != Method::HEAD;
    let aged_from = info.created_at;
    serve(
        (response, body),
        req.url(),
        info,
        with_body,
        (aged_from, now),
    )
}

/// A response rebuilt from an entry, with its current `Age`: the stored initial age plus the
/// time since `aged_from` (when the headers were stored or last refreshed); the body shares
/// the entry's buffer, or streams from `file` for a body kept in its file (none for HEAD).
pub(crate) fn serve(
    (mut cached, file): (CachedResponse, Option<Arc<FileBody>>),
    request_url: &Url,
    info: CacheInfo,
    with_body: bool,
    (aged_from, now): (Option<SystemTime>, SystemTime),
) -> Response {
    if let Some(aged_from) = aged_from {
        crate::age::set_current(&mut cached.headers, aged_from, now);
    }
    // Stored URLs are redacted. When the response came from the URL asked for, give back the
    // caller's own URL (with its parameters); after a redirect, the stored final URL.
    let url = if cached.url == cached.request.url {
        request_url.clone()
    } else {
        Url::parse(&cached.url).unwrap_or_else(|_| request_url.clone())
    };
    let parts = ResponseParts {
        status: cached.status,
        version: cached.version,
        headers: cached.headers,
        url,
        extensions: Extensions::new(),
    };
    let body = match (with_body, file) {
        (false, _) => reqwest::Body::from(Bytes::new()),
        (true, Some(file)) => file.into_body(),
        (true, None) => reqwest::Body::from(cached.body),
    };
    parts.into_response(body, info)
}

/// `504 Gateway Timeout`: what `OnlyIfCached` answers when nothing usable is stored.
pub(crate) fn gateway_timeout(url: Url, key: CacheKey) -> Response {
    let info = CacheInfo {
        generated_by_cache: true,
        ..CacheInfo::passed_through(Some(key))
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

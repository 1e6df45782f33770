//! The miss path: send the request (conditionally when a stale entry has validators), then
//! refresh the entry from a `304` or store the new response.

use cache_core::{
    CacheKey, CachedRequest, CachedResponse, EntryMeta, Expiration, StoredEntry, codec,
};
use http::{Extensions, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::Next;

use crate::body::{ReadBody, read_limited};
use crate::info::CacheInfo;
use crate::middleware::{hit_info, serve};
use crate::response_parts::with_info;
use crate::revalidate::{add_validators, is_conditional, merge_304_headers};
use crate::state::{CacheState, error_chain};

/// What the hit path learned, handed to the miss path.
pub(crate) struct Exchange {
    pub(crate) key: CacheKey,
    pub(crate) expiration: Expiration,
    /// The stored entry, stale (or being refreshed), if any.
    pub(crate) cached: Option<(EntryMeta, CachedResponse)>,
}

pub(crate) async fn fetch(
    state: &CacheState,
    exchange: Exchange,
    mut req: Request,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<Response> {
    // What may be stored of the request, taken before it is consumed.
    let request_url = req.url().clone();
    let stored_request = CachedRequest::new(
        req.method().clone(),
        state.keys.redact_url(&request_url),
        state.keys.redact_headers(req.headers()),
    );
    let validating = match &exchange.cached {
        Some((_, stored)) if !is_conditional(req.headers()) => {
            add_validators(req.headers_mut(), stored)
        }
        _ => false,
    };

    // Network errors pass through unchanged: the cache never turns them into anything else.
    let response = next.run(req, extensions).await?;

    if validating && response.status() == StatusCode::NOT_MODIFIED {
        if let Some((meta, stored)) = exchange.cached {
            return Ok(refresh_from_304(
                state,
                exchange.key,
                exchange.expiration,
                meta,
                stored,
                response,
                &request_url,
            )
            .await);
        }
    }
    state.stats.miss();
    Ok(store_response(
        state,
        exchange.key,
        exchange.expiration,
        stored_request,
        response,
    )
    .await)
}

/// The origin confirmed the stale entry: merge the `304`'s headers, give it a new expiry,
/// and serve the stored body.
async fn refresh_from_304(
    state: &CacheState,
    key: CacheKey,
    expiration: Expiration,
    meta: EntryMeta,
    mut stored: CachedResponse,
    not_modified: Response,
    request_url: &url::Url,
) -> Response {
    state.stats.revalidation();
    merge_304_headers(&mut stored.headers, not_modified.headers());
    let now = state.clock.now();
    let refreshed = EntryMeta::new(key, meta.url.clone(), now, expiration.expires_at(now));
    let saved = match encode(&stored, &key) {
        Some(value) if expiration.is_cacheable() => {
            state.save(StoredEntry::new(refreshed.clone(), value)).await
        }
        _ => false,
    };
    // When the refresh could not be stored, report the entry as it still is.
    let mut info = hit_info(if saved { &refreshed } else { &meta }, key, true, now);
    info.stored = saved;
    serve(&stored, request_url, info)
}

/// Stores `response` when every rule allows it; returns it to the caller either way.
async fn store_response(
    state: &CacheState,
    key: CacheKey,
    expiration: Expiration,
    request: CachedRequest,
    response: Response,
) -> Response {
    let not_stored = CacheInfo::passed_through(Some(key));
    let cacheable = expiration.is_cacheable()
        && state.allowable_codes.contains(&response.status())
        && state.filter.as_ref().is_none_or(|keep| keep(&response));
    if !cacheable {
        return with_info(response, not_stored);
    }
    // HEAD responses announce the GET body's length; only a real body can be too large.
    let announced_too_large = request.method != Method::HEAD
        && response
            .content_length()
            .is_some_and(|len| len > state.max_body_bytes);
    if announced_too_large {
        return with_info(response, not_stored);
    }
    let (parts, body) = match read_limited(response, state.max_body_bytes, not_stored).await {
        ReadBody::Complete(parts, body) => (parts, body),
        ReadBody::PassedOn(response) => return response,
    };

    let now = state.clock.now();
    let expires_at = expiration.expires_at(now);
    let meta_url = request.url.as_str().to_owned();
    let cached = CachedResponse::new(
        parts.status,
        parts.version,
        parts.headers.clone(),
        body.clone(),
        state.keys.redact_url(&parts.url),
        request,
    );
    let meta = EntryMeta::new(key, meta_url, now, expires_at);
    let stored = match encode(&cached, &key) {
        Some(value) => state.save(StoredEntry::new(meta.clone(), value)).await,
        None => false,
    };
    // Times as stored (to the millisecond), so this info matches a later hit's.
    let info = CacheInfo {
        from_cache: false,
        created_at: stored.then_some(meta.created_at),
        expires: if stored { meta.expires_at } else { None },
        is_expired: false,
        key: Some(key),
        revalidated: false,
        stored,
    };
    parts.into_response(reqwest::Body::from(body), info)
}

fn encode(response: &CachedResponse, key: &CacheKey) -> Option<bytes::Bytes> {
    match codec::encode(response) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%key, error = %error_chain(&error), "cannot encode response; not cached");
            None
        }
    }
}

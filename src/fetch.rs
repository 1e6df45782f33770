//! The miss path: send the request (conditionally when a stored entry has validators), then
//! refresh the entry from a `304`, fall back to a stale entry on errors, or store the new
//! response.

use std::time::SystemTime;

use cache_core::freshness::RequestDirectives;
use cache_core::vary::{Vary, parse_vary};
use cache_core::{CacheKey, CachedRequest, CachedResponse, EntryMeta, StoredEntry};
use http::{Extensions, HeaderMap, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::Next;
use url::Url;

use crate::age;
use crate::body::{ReadBody, read_limited};
use crate::info::CacheInfo;
use crate::invalidate::invalidate_after_unsafe;
use crate::middleware::{hit_info, serve};
use crate::policy::{Storage, UserExpiration, storage};
use crate::response_parts::with_info;
use crate::revalidate::{add_validators, is_conditional, merge_304_headers};
use crate::stale::stale_allowed;
use crate::state::{CacheState, Found, error_chain};
use crate::storable::storable;
use crate::stored_fields;
use crate::variants::{Placement, SeenIndex, encode, renew_index, save_response};

/// Everything the miss path needs to know about the request, taken before it is sent.
pub(crate) struct Exchange {
    /// The request's key (before any Vary variant).
    url_key: CacheKey,
    /// The stored entry, stale or being refreshed, if any.
    found: Option<Box<Found>>,
    /// What the lookup saw of the URL key's Vary index.
    seen: SeenIndex,
    user: UserExpiration,
    directives: Option<RequestDirectives>,
    method: Method,
    url: Url,
    /// The request's headers as the caller sent them (for Vary and invalidation).
    headers: HeaderMap,
    /// What may be stored of the request (redacted).
    stored_request: CachedRequest,
    /// The cache added its own validators for `found`.
    validating: bool,
}

impl Exchange {
    /// `text` (an error message, which reqwest writes with the URL as sent) with the URL
    /// replaced by its redacted form, for logs.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(self.url.as_str(), &self.stored_request.url)
    }

    pub(crate) fn new(
        state: &CacheState,
        url_key: CacheKey,
        (found, seen): (Option<Box<Found>>, SeenIndex),
        user: UserExpiration,
        directives: Option<RequestDirectives>,
        req: &Request,
    ) -> Self {
        Self {
            url_key,
            found,
            seen,
            user,
            directives,
            method: req.method().clone(),
            url: req.url().clone(),
            headers: req.headers().clone(),
            stored_request: CachedRequest::new(
                req.method().clone(),
                state.keys.redact_url(req.url()),
                state.keys.redact_headers(req.headers()),
            ),
            validating: false,
        }
    }

    /// The request's URL as stored (redacted), for logs.
    pub(crate) fn stored_url(&self) -> &str {
        &self.stored_request.url
    }

    /// The key of the stored entry this exchange refreshes, if any.
    pub(crate) fn found_key(&self) -> Option<CacheKey> {
        self.found.as_ref().map(|found| found.key)
    }

    /// Makes `req` conditional on the stored entry's validators, unless the caller already
    /// made it conditional (then its `304` is the caller's business).
    pub(crate) fn add_validators(&mut self, req: &mut Request) {
        if let Some(found) = &self.found {
            if !is_conditional(req.headers()) {
                self.validating = add_validators(req.headers_mut(), &found.response);
            }
        }
    }
}

pub(crate) async fn fetch(
    state: &CacheState,
    mut exchange: Exchange,
    mut req: Request,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<Response> {
    exchange.add_validators(&mut req);
    let result = next.run(req, extensions).await;
    finish(state, exchange, result).await
}

/// Turns the origin's answer (or failure) into the caller's response, updating the cache.
pub(crate) async fn finish(
    state: &CacheState,
    exchange: Exchange,
    result: reqwest_middleware::Result<Response>,
) -> reqwest_middleware::Result<Response> {
    let now = state.clock.now();
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            let origin_unreachable = error.is_connect() || error.is_timeout() || error.is_request();
            if origin_unreachable {
                if let Some(stale) = stale_for_error(state, &exchange, now) {
                    // Logged redacted: reqwest's message holds the URL as sent.
                    let error = exchange.redact(&error_chain(&error));
                    let url = &exchange.stored_request.url;
                    tracing::info!(%url, %error, "origin unreachable; serving stale entry");
                    return Ok(stale);
                }
            }
            // Network errors otherwise pass through unchanged; the request was a miss.
            state.stats.miss();
            return Err(error);
        }
    };
    let status = response.status();
    if state.stale_if_error_statuses.contains(&status) {
        if let Some(stale) = stale_for_error(state, &exchange, now) {
            let url = &exchange.stored_request.url;
            tracing::info!(%url, %status, "origin error; serving stale entry");
            return Ok(stale);
        }
    }
    if exchange.validating && status == StatusCode::NOT_MODIFIED {
        if let Some(found) = exchange.found.clone() {
            return Ok(refresh_from_304(state, &exchange, *found, &response, now).await);
        }
    }
    invalidate_after_unsafe(
        state,
        &exchange.method,
        &exchange.url,
        &exchange.headers,
        &response,
    )
    .await;
    state.stats.miss();
    Ok(store_response(state, exchange, response).await)
}

/// The stale entry, marked as served on error, when stale-if-error allows it.
fn stale_for_error(state: &CacheState, exchange: &Exchange, now: SystemTime) -> Option<Response> {
    let found = exchange.found.as_ref()?;
    let allowed = stale_allowed(
        &found.freshness(),
        now,
        "stale-if-error",
        state.stale_if_error,
        state.cache_control,
    );
    if !allowed {
        return None;
    }
    state.stats.hit();
    let mut info = hit_info(found, false, now);
    info.stale_if_error = true;
    let aged_from = info.created_at;
    Some(serve(
        found.response.clone(),
        &exchange.url,
        info,
        exchange.method != Method::HEAD,
        (aged_from, now),
    ))
}

/// The origin confirmed the entry: merge the `304`'s headers, renew its freshness, and
/// serve the stored body.
async fn refresh_from_304(
    state: &CacheState,
    exchange: &Exchange,
    mut found: Found,
    not_modified: &Response,
    now: SystemTime,
) -> Response {
    state.stats.revalidation();
    // The entry is as new as this 304: the stored Age no longer applies, and a stale Date
    // would make it look old again (RFC 9111 §4.2.3).
    found.response.headers.remove(http::header::AGE);
    if !not_modified.headers().contains_key(http::header::DATE) {
        let date = httpdate::fmt_http_date(now);
        if let Ok(date) = http::HeaderValue::from_str(&date) {
            // Fallible: a stored response may hold every header name `http` allows.
            let _ = found.response.headers.try_insert(http::header::DATE, date);
        }
    }
    // Strict mode keeps Set-Cookie with the entry, so a 304's replaces the stored one.
    let mut update = not_modified.headers().clone();
    stored_fields::remove_unstored(&mut update);
    if !state.strict {
        update.remove(http::header::SET_COOKIE);
    }
    merge_304_headers(&mut found.response.headers, &update);
    stored_fields::remove_unstored(&mut found.response.headers);
    age::store_initial(&mut found.response.headers, now);
    let storage = storage(
        state.cache_control,
        state.strict,
        exchange.user,
        exchange.directives.as_ref(),
        found.response.status,
        &found.response.headers,
        now,
    );
    // A 304 that sets a cookie: the caller gets the cookie (as it would without the cache),
    // the store never does, and unless such responses may be cached the entry is not renewed.
    let sets_cookie = not_modified
        .headers()
        .contains_key(http::header::SET_COOKIE);
    let mut saved = false;
    let renew = !sets_cookie || state.cache_set_cookie || state.strict;
    if let (Storage::Until(expires_at), true) = (storage, renew) {
        let is_variant = found.key != exchange.url_key;
        let meta = EntryMeta::new(found.key, found.meta.url.clone(), now, expires_at)
            .with_url_group(Some(state.keys.url_group(&exchange.url)))
            .with_variant_of(is_variant.then_some(exchange.url_key));
        if let Some(value) = encode(state, &found.response, &found.key) {
            saved = state.save(StoredEntry::new(meta.clone(), value)).await;
        }
        if saved {
            found.meta = meta;
            if let SeenIndex::Known(Some((index_meta, _))) = &exchange.seen {
                renew_index(state, &exchange.url_key, index_meta, expires_at).await;
            }
        }
    }
    let mut info = hit_info(&found, true, now);
    info.stored = saved;
    let mut response = found.response;
    if !state.strict {
        for cookie in not_modified.headers().get_all(http::header::SET_COOKIE) {
            let _ = response
                .headers
                .try_append(http::header::SET_COOKIE, cookie.clone());
        }
    }
    // Its Age was set from the 304 just now, whether or not the entry was stored again.
    serve(
        response,
        &exchange.url,
        info,
        exchange.method != Method::HEAD,
        (Some(now), now),
    )
}

/// Stores `response` when every rule allows it; returns it to the caller either way.
pub(crate) async fn store_response(
    state: &CacheState,
    exchange: Exchange,
    response: Response,
) -> Response {
    let now = state.clock.now();
    let not_stored = CacheInfo::passed_through(Some(exchange.url_key));
    let status = response.status();
    let storage = storage(
        state.cache_control,
        state.strict,
        exchange.user,
        exchange.directives.as_ref(),
        status,
        response.headers(),
        now,
    );
    let expires_at = match storage {
        Storage::Until(expires_at) => expires_at,
        Storage::Skip => return with_info(response, not_stored),
    };
    let status_allowed = if state.strict {
        storable(status, response.headers())
    } else {
        state.allowable_codes.contains(&status)
    };
    let cookies_allowed = state.strict
        || state.cache_set_cookie
        || !response.headers().contains_key(http::header::SET_COOKIE);
    let cacheable = status != StatusCode::PARTIAL_CONTENT
        && status_allowed
        && parse_vary(response.headers()) != Vary::Any
        && cookies_allowed
        && state.filter.as_ref().is_none_or(|keep| keep(&response));
    if !cacheable {
        return with_info(response, not_stored);
    }
    // HEAD responses announce the GET body's length; only a real body can be too large.
    let announced_too_large = exchange.method != Method::HEAD
        && response
            .content_length()
            .is_some_and(|len| len > state.max_body_bytes);
    if announced_too_large {
        return with_info(response, not_stored);
    }
    let (parts, body) = match read_limited(response, state.max_body_bytes, not_stored.clone()).await
    {
        ReadBody::Complete(parts, body) => (parts, body),
        ReadBody::PassedOn(response) => return response,
    };

    let final_url = parts.url.clone();
    // Set-Cookie is a credential: outside strict mode, even where such responses may be
    // cached, the header is never stored, and so never replayed to another request. The
    // caller still gets it here. A private cache under RFC 9111 keeps it (§3.1).
    let mut stored_headers = parts.headers.clone();
    if !state.strict {
        stored_headers.remove(http::header::SET_COOKIE);
    }
    stored_fields::remove_unstored(&mut stored_headers);
    age::store_initial(&mut stored_headers, now);
    let cached = CachedResponse::new(
        parts.status,
        parts.version,
        stored_headers,
        body.clone(),
        state.keys.redact_url(&final_url),
        exchange.stored_request,
    );
    let meta_url = cached.request.url.as_str().to_owned();
    let place = Placement {
        url_key: exchange.url_key,
        url_group: state.keys.url_group(&exchange.url),
        meta_url: &meta_url,
        request_headers: &exchange.headers,
        seen: &exchange.seen,
    };
    let stored_key = save_response(state, &place, &cached, now, expires_at).await;
    // After a redirect, the final URL is answered from the cache too (an alias), in the final
    // URL's group.
    if stored_key.is_some() && exchange.method == Method::GET && final_url != exchange.url {
        let alias = Placement {
            url_key: state
                .keys
                .key(&Method::GET, &final_url, &exchange.headers, None),
            url_group: state.keys.url_group(&final_url),
            meta_url: cached.url.as_str(),
            request_headers: &exchange.headers,
            seen: &SeenIndex::Unknown,
        };
        save_response(state, &alias, &cached, now, expires_at).await;
    }
    let meta = EntryMeta::new(exchange.url_key, meta_url, now, expires_at);
    // Times as stored (to the millisecond), so this info matches a later hit's.
    let info = CacheInfo {
        created_at: stored_key.map(|_| meta.created_at),
        expires: stored_key.and(meta.expires_at),
        key: Some(stored_key.unwrap_or(exchange.url_key)),
        stored: stored_key.is_some(),
        ..not_stored
    };
    parts.into_response(reqwest::Body::from(body), info)
}

//! Storing the origin's answer: whether every rule allows it (the user's settings, the
//! response's directives, its status, Vary, cookies, the filter, the body size), reading the
//! body within the limit, and writing it where its request's lookup will find it (and, after
//! a redirect, where the final URL's will). A body over the limit is written as it streams
//! when the store keeps bodies in files. Calls [`spool`](crate::spool),
//! [`variants`](crate::variants) and leaf modules.

use std::borrow::Cow;

use bytes::Bytes;
use cache_core::time::truncate_to_millis;
use cache_core::{CachedRequest, CachedResponse, EntryMeta};
use cache_http::vary::{Vary, parse_vary};
use http::{Method, StatusCode};
use reqwest::Response;

use crate::age;
use crate::body::{ReadBody, read_limited, rejoin};
use crate::cache::Cache;
use crate::exchange::Exchange;
use crate::info::CacheInfo;
use crate::policy::{Storage, storage};
use crate::response_parts::{ResponseParts, with_info};
use crate::settings::Settings;
use crate::spool::{Plan, spool_response};
use crate::storable::{storable, streams_without_end};
use crate::stored_fields;
use crate::variants::{Placement, SeenIndex, save_response};

/// The response as stored: Set-Cookie is a credential, so outside strict mode, even where
/// such responses may be cached, the header is never stored, and so never replayed to
/// another request (the caller still gets it). A private cache under RFC 9111 keeps it
/// (§3.1).
fn to_store(
    settings: &Settings,
    keeps_set_cookie: bool,
    parts: &ResponseParts,
    body: Bytes,
    (request, asked): (CachedRequest, &url::Url),
    now: std::time::SystemTime,
) -> CachedResponse {
    let mut stored_headers = parts.headers.clone();
    if !keeps_set_cookie {
        stored_headers.remove(http::header::SET_COOKIE);
    }
    stored_fields::remove_unstored(&mut stored_headers);
    age::store_initial(&mut stored_headers, now);
    // The response came from the URL asked for unless redirected: its redacted form is the
    // stored request's, already made.
    let url = match parts.url == *asked {
        true => request.url.clone(),
        false => settings.keys.redact_url(&parts.url).into(),
    };
    CachedResponse::new(
        parts.status,
        parts.version,
        stored_headers,
        body,
        url,
        request,
    )
}

/// Where a response redirected to `final_url` goes for that URL: under `url_key`, its key,
/// in its group.
fn final_url_placement<'a>(
    settings: &Settings,
    request_headers: &'a http::HeaderMap,
    final_url: &url::Url,
    url_key: cache_core::CacheKey,
    meta_url: &'a str,
) -> Placement<'a> {
    Placement {
        url_key,
        url_group: settings.keys.url_group(final_url),
        meta_url,
        request_headers,
        seen: &SeenIndex::Unknown,
    }
}

/// Stores `response` when every rule allows it; returns it to the caller either way.
pub(crate) async fn store_response(
    cache: &Cache,
    exchange: Box<Exchange>,
    response: Response,
) -> Response {
    let settings = &cache.settings;
    let now = settings.clock.now();
    let not_stored = CacheInfo::passed_through(Some(exchange.url_key));
    let status = response.status();
    let storage = storage(
        settings.cache_control,
        settings.strict,
        exchange.user,
        exchange.directives.as_ref(),
        status,
        response.headers(),
        now,
    );
    let expires_at = match storage {
        Storage::Until(expires_at) => expires_at,
        // Recording keeps what the directives would not, already stale: a replay serves it,
        // a normal request revalidates it first.
        // The caller's own `no-store` holds even then: request directives are the caller's.
        Storage::Skip if exchange.recording && !exchange.directives.is_some_and(|d| d.no_store) => {
            Some(now)
        }
        Storage::Skip => return with_info(response, not_stored),
    };
    let status_allowed = if settings.strict && !exchange.recording {
        storable(status, response.headers())
    } else {
        settings.allowable_codes.contains(&status)
    };
    // Strict mode keeps Set-Cookie with the entry (RFC 9111 §3.1), but never in a recording:
    // fixture directories are committed, and a recording follows the default rule.
    let keeps_set_cookie = settings.strict && !exchange.recording;
    let cookies_allowed = keeps_set_cookie
        || settings.cache_set_cookie
        || !response.headers().contains_key(http::header::SET_COOKIE);
    let cacheable = status != StatusCode::PARTIAL_CONTENT
        && !streams_without_end(response.headers())
        && status_allowed
        && parse_vary(response.headers()) != Vary::Any
        && cookies_allowed
        && settings.filter.as_ref().is_none_or(|keep| keep(&response));
    if !cacheable {
        return with_info(response, not_stored);
    }
    // HEAD responses announce the GET body's length; only a real body can be too large.
    let announced = response.content_length();
    let announced_too_large = exchange.method != Method::HEAD
        && announced.is_some_and(|len| len > settings.max_body_bytes);
    // A store that keeps bodies in files takes bodies of any size as they stream; not when
    // the store may not be written, nor when a stored filter must see the whole body first.
    let spools = cache.live.store.store.body_files().is_some()
        && !cache.live.store.is_read_only()
        && settings.stored_filter.is_none();
    let read = if announced_too_large {
        if !spools {
            return with_info(response, not_stored);
        }
        let mut response = response;
        ReadBody::TooLarge(ResponseParts::take(&mut response), Vec::new(), response)
    } else {
        read_limited(response, settings.max_body_bytes, not_stored.clone()).await
    };
    let (parts, body) = match read {
        ReadBody::Complete(parts, body) => (parts, body),
        ReadBody::PassedOn(response) => return response,
        ReadBody::TooLarge(parts, read, rest) => {
            let varies = parse_vary(&parts.headers) != Vary::None;
            if !spools || varies {
                return rejoin(parts, read, rest, not_stored);
            }
            let cached = to_store(
                settings,
                keeps_set_cookie,
                &parts,
                Bytes::new(),
                (exchange.stored_request, &exchange.url),
                now,
            );
            let meta_url = cached.request.url.as_str().to_owned();
            let url_group = settings.keys.url_group(&exchange.url);
            let plan = Plan {
                meta: EntryMeta::new(exchange.url_key, meta_url.as_str(), now, expires_at)
                    .with_url_group(Some(url_group)),
                cached,
                place: Placement {
                    url_key: exchange.url_key,
                    url_group,
                    meta_url: &meta_url,
                    request_headers: &exchange.headers,
                    seen: &exchange.seen,
                },
                announced,
            };
            // Boxed: only bodies over the limit take this path, and its state would
            // otherwise make every miss's future larger.
            return Box::pin(spool_response(cache, plan, (parts, read, rest), not_stored)).await;
        }
    };

    let cached = to_store(
        settings,
        keeps_set_cookie,
        &parts,
        body.clone(),
        (exchange.stored_request, &exchange.url),
        now,
    );
    if settings
        .stored_filter
        .as_ref()
        .is_some_and(|keep| !keep(&cached))
    {
        return parts.into_response(reqwest::Body::from(body), not_stored);
    }
    let meta_url = cached.request.url.as_str().to_owned();
    let store = &cache.live.store;
    let place = Placement {
        url_key: exchange.url_key,
        url_group: settings.keys.url_group(&exchange.url),
        meta_url: &meta_url,
        request_headers: &exchange.headers,
        seen: &exchange.seen,
    };
    // After a redirect, the final URL is answered from the cache too (an alias), in the final
    // URL's group; not when it has the request's own key (its query reordered, say): the
    // entry answers it already, and a second write would only rename its URL. Without an
    // alias (nearly always), the response is not needed again and goes to the store owned
    // (unencoded where the codec allows; a store that keeps decoded forms keeps it).
    let final_url = &parts.url;
    let alias_key = (exchange.method == Method::GET && *final_url != exchange.url)
        .then(|| {
            settings
                .keys
                .key(&Method::GET, final_url, &exchange.headers, None)
        })
        .filter(|alias_key| *alias_key != exchange.url_key);
    let stored_key = match alias_key {
        // Strict mode: the answer to this request was a redirect reqwest followed below the
        // cache, never seen here, and whatever its own directives said (`no-store`, a short
        // max-age) the final response would answer this URL for its own lifetime: it is
        // stored for the final URL alone.
        Some(alias_key) if settings.strict => {
            let meta_url = cached.url.clone();
            let alias =
                final_url_placement(settings, &exchange.headers, final_url, alias_key, &meta_url);
            save_response(store, &alias, Cow::Owned(cached), now, expires_at).await
        }
        _ if settings.strict && *final_url != exchange.url && exchange.method != Method::GET => {
            None
        }
        Some(alias_key) => {
            let stored_key =
                save_response(store, &place, Cow::Borrowed(&cached), now, expires_at).await;
            if stored_key.is_some() {
                let alias = final_url_placement(
                    settings,
                    &exchange.headers,
                    final_url,
                    alias_key,
                    &cached.url,
                );
                save_response(store, &alias, Cow::Borrowed(&cached), now, expires_at).await;
            }
            stored_key
        }
        None => save_response(store, &place, Cow::Owned(cached), now, expires_at).await,
    };
    // Times as stored (to the millisecond), so this info matches a later hit's.
    let info = CacheInfo {
        created_at: stored_key.map(|_| truncate_to_millis(now)),
        expires: stored_key.and(expires_at.map(truncate_to_millis)),
        key: Some(stored_key.unwrap_or(exchange.url_key)),
        stored: stored_key.is_some(),
        ..not_stored
    };
    parts.into_response(reqwest::Body::from(body), info)
}

//! A fresh response to `POST` that names its own URL in `Content-Location` is a response to a
//! `GET` of that URL (RFC 9110 §9.3.3, RFC 9111 §4), and is stored as one when the cache
//! follows headers and the response has explicit freshness. Calls
//! [`pass_on`](crate::pass_on), [`store_response`](crate::store_response) and leaf modules.

use cache_http::freshness::RequestDirectives;
use std::sync::Arc;

use http::header::{CONTENT_LOCATION, EXPIRES};
use http::{Extensions, HeaderMap, Method};
use reqwest::{Request, Response};
use reqwest_middleware::Next;
use url::Url;

use crate::cache::Cache;
use crate::exchange::Exchange;
use crate::pass_on::pass_on;
use crate::policy::UserExpiration;
use crate::store_response::store_response;
use crate::variants::SeenIndex;

/// A `POST` the cache does not store as such: passed on, and its answer stored for later
/// `GET`s when it names its own URL in `Content-Location` (RFC 9111 §4).
pub(crate) async fn post(
    cache: &Arc<Cache>,
    user: UserExpiration,
    req: Request,
    extensions: &mut Extensions,
    next: Next<'_>,
    invalidates: bool,
) -> reqwest_middleware::Result<Response> {
    if !user.expiration.is_cacheable() && user.explicit {
        return pass_on(cache, req, extensions, next, invalidates).await;
    }
    let (url, headers) = (req.url().clone(), req.headers().clone());
    // A body holding a credential (an `api_key` field, a form's password): its answer is
    // that credential's, and a `GET` has no body to tell it by, so it answers none. So does
    // a body the cache cannot read (streamed).
    let credentialed = req.body().map(|body| body.as_bytes()).is_some_and(|bytes| {
        bytes.is_none_or(|bytes| cache.settings.keys.body_has_credentials(&headers, bytes))
    });
    let response = pass_on(cache, req, extensions, next, invalidates).await?;
    if credentialed {
        return Ok(response);
    }
    Ok(store_for_get(cache, user, url, headers, response).await)
}

/// Headers that describe a request's body: a `GET` has none, and keyed with them (headers
/// matched in keys) the stored answer was one no `GET` ever found.
const BODY_HEADERS: [http::HeaderName; 4] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
    http::header::CONTENT_ENCODING,
    http::header::TRANSFER_ENCODING,
];

/// True when `response`, the answer to a `POST` of `url`, may answer a `GET` of `url`.
fn answers_get(url: &Url, response: &Response) -> bool {
    let status = response.status();
    let headers = response.headers();
    let explicit = headers.contains_key(EXPIRES)
        || cache_http::cache_control::Directives::parse(headers).has("max-age");
    let location = headers
        .get(CONTENT_LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url.join(v).ok());
    (status.is_success() || status.is_redirection())
        && explicit
        && response.url() == url
        && location.is_some_and(|mut location| {
            location.set_fragment(None);
            let mut url = url.clone();
            url.set_fragment(None);
            location == url
        })
}

/// Stores `response` (to a `POST` of `url` with these request headers) as the answer to a
/// `GET` of `url` when it may be one; returns it to the caller either way.
async fn store_for_get(
    cache: &Arc<Cache>,
    user: UserExpiration,
    url: Url,
    headers: HeaderMap,
    response: Response,
) -> Response {
    if !answers_get(&url, &response) {
        return response;
    }
    let mut get = Request::new(Method::GET, url);
    *get.headers_mut() = headers;
    for name in BODY_HEADERS {
        get.headers_mut().remove(name);
    }
    let key = cache
        .settings
        .keys
        .key(&Method::GET, get.url(), get.headers(), None);
    let directives = RequestDirectives::parse(get.headers());
    let exchange = Exchange::new(
        &cache.settings,
        key,
        (None, SeenIndex::Unknown),
        user,
        directives,
        &get,
    );
    let patience = Some(cache.settings.stream_after);
    let now = cache.settings.clock.now();
    store_response(cache, exchange, response, (patience, now)).await
}

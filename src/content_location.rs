//! A fresh response to `POST` that names its own URL in `Content-Location` is a response to a
//! `GET` of that URL (RFC 9110 §9.3.3, RFC 9111 §4), and is stored as one when the cache
//! follows headers and the response has explicit freshness.

use cache_core::freshness::RequestDirectives;
use http::header::{CONTENT_LOCATION, EXPIRES};
use http::{HeaderMap, Method};
use reqwest::{Request, Response};
use url::Url;

use crate::fetch::{Exchange, store_response};
use crate::policy::UserExpiration;
use crate::state::CacheState;
use crate::variants::SeenIndex;

/// True when `response`, the answer to a `POST` of `url`, may answer a `GET` of `url`.
fn answers_get(url: &Url, response: &Response) -> bool {
    let status = response.status();
    let headers = response.headers();
    let explicit = headers.contains_key(EXPIRES)
        || cache_core::cache_control::Directives::parse(headers).has("max-age");
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
pub(crate) async fn store_for_get(
    state: &CacheState,
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
    let key = state.keys.key(&Method::GET, get.url(), get.headers(), None);
    let directives = RequestDirectives::parse(get.headers());
    let exchange = Exchange::new(
        state,
        key,
        (None, SeenIndex::Unknown),
        user,
        directives,
        &get,
    );
    store_response(state, exchange, response).await
}

//! Requests the cache neither answers nor stores go on down the chain untouched but for the
//! [`CacheInfo`] saying so; after a successful unsafe one, what is stored for its URL is
//! invalidated whatever skipped the cache. Calls [`invalidate`](crate::invalidate) and leaf
//! modules.

use std::pin::Pin;
use std::sync::Arc;

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::Next;

use crate::cache::Cache;
use crate::info::CacheInfo;
use crate::invalidate::{invalidate_after_unsafe, is_unsafe};
use crate::response_parts::with_info;

/// The future of a request through the cache, boxed.
pub(crate) type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

/// Sends a request the cache does not answer or store; after a successful unsafe one,
/// invalidates what is stored for its URL, when `invalidates` (not while recording: a
/// recording keeps every answer it took, or a `POST` would delete the `GET` recorded before
/// it). Boxed: its future (the invalidation's store
/// calls) would otherwise sit inside the request's, which every request, hits included,
/// moves into its box.
pub(crate) fn pass_on<'a>(
    cache: &'a Arc<Cache>,
    req: Request,
    extensions: &'a mut Extensions,
    next: Next<'a>,
    invalidates: bool,
) -> HandleFuture<'a> {
    Box::pin(async move {
        if !invalidates || !is_unsafe(req.method()) {
            return pass_through(next.run(req, extensions).await);
        }
        let (method, url, headers) = (
            req.method().clone(),
            req.url().clone(),
            req.headers().clone(),
        );
        let result = next.run(req, extensions).await;
        if let Ok(response) = &result {
            invalidate_after_unsafe(cache, &method, &url, &headers, response).await;
        }
        pass_through(result)
    })
}

/// The network's answer, untouched but for the info saying the cache did nothing.
fn pass_through(
    result: reqwest_middleware::Result<Response>,
) -> reqwest_middleware::Result<Response> {
    result.map(|response| with_info(response, CacheInfo::passed_through(None)))
}

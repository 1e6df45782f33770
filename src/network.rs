//! Going to the network: send the request (conditionally when a stored entry has
//! validators), then route the origin's answer: a failure or an error status to a stale
//! entry when stale-if-error allows it, a `304` to the entry it confirms, anything else
//! (after invalidation for unsafe methods) to the store. Background refreshes run the same
//! way, with the middleware's own client.
//!
//! Calls downward only: [`not_modified`](crate::not_modified),
//! [`store_response`](crate::store_response), [`invalidate`](crate::invalidate),
//! [`serve`](crate::serve).

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use futures_util::FutureExt;
use futures_util::future::Either;
use http::{Extensions, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::Next;

use crate::cache::Cache;
use crate::entity_tag::strong_match;
use crate::exchange::Exchange;
use crate::info::CacheResponseExt;
use crate::invalidate::{invalidate_after_unsafe, invalidates};
use crate::lookup::Found;
use crate::not_modified::refresh_from_304;
use crate::pass_on::HandleFuture;
use crate::refresh::{BackgroundClient, RefreshOutcome};
use crate::revalidate::remove_conditions;
use crate::serve::{Source, hit_info, serve};
use crate::spool::StoredAsRead;
use crate::stale::stale_allowed;
use crate::store_response::store_response;
use crate::variants::SeenIndex;
use crate::warnings::error_chain;

/// Sends the request down the middleware chain and turns the answer into the caller's
/// response, updating the cache.
///
/// Not an `async fn`, nor is [`finish`]: each would hold its arguments and locals beside the
/// future it awaits last, and the miss path's future (boxed, so allocated and copied into on
/// every miss) holds them all. A request without conditions (nearly every miss) is the
/// chain's future, then `finish`'s.
pub(crate) fn fetch<'a>(
    cache: &'a Arc<Cache>,
    mut exchange: Box<Exchange>,
    mut req: Request,
    extensions: &'a mut Extensions,
    next: Next<'a>,
) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
    let unconditional = exchange.add_validators(&mut req);
    exchange.mark_sent(cache);
    // A recording reads whole: a caller checking only the status still records the body.
    let patience = (!exchange.recording).then_some(cache.settings.stream_after);
    let Some(again) = unconditional else {
        let sent = next.run(req, extensions);
        return Either::Left(sent.then(move |result| finish(cache, exchange, result, patience)));
    };
    let revalidation: HandleFuture<'a> = Box::pin(async move {
        let mut result = next.clone().run(req, extensions).await;
        if exchange.unconfirmed(&result) {
            drop(result);
            // The answer stored, if any, is this one's.
            exchange.mark_sent(cache);
            result = next.run(again, extensions).await;
        }
        finish(cache, exchange, result, patience).await
    });
    Either::Right(revalidation)
}

/// Starts refreshing the stale entry `exchange` found in the background, unless a refresh of
/// it is running or the most refreshes that may run at once are. The request goes out conditionally when the entry has validators.
pub(crate) fn refresh_in_background(
    cache: &Arc<Cache>,
    mut exchange: Box<Exchange>,
    req: &Request,
) {
    let refresher = &cache.live.refresher;
    let Some(key) = exchange.found_key() else {
        return;
    };
    // A streaming body cannot be sent twice; such requests are not refreshed.
    let request = match refresher.is_running(&key) {
        true => None,
        false => req.try_clone(),
    };
    let Some(mut request) = request else {
        return;
    };
    // The cache's own request: a caller's conditions would make a `304` it cannot use.
    remove_conditions(request.headers_mut());
    exchange.in_background = true;
    let unconditional = exchange.add_validators(&mut request);
    exchange.mark_sent(cache);
    let url = exchange.stored_url().to_owned();
    // The task holds the cache weakly: dropping the middleware drops it, and its refresher
    // then aborts the task.
    let refresh = background(
        Arc::downgrade(cache),
        Arc::clone(&refresher.client),
        (request, unconditional),
        exchange,
    );
    refresher.start(key, url, refresh);
}

/// Sends the refresh (and, should its `304` not confirm the stored response, the request
/// without conditions) and stores its answer.
async fn background(
    cache: Weak<Cache>,
    client: Arc<BackgroundClient>,
    (request, unconditional): (Request, Option<Request>),
    mut exchange: Box<Exchange>,
) -> RefreshOutcome {
    let client = match client.get() {
        Ok(client) => client,
        Err(error) => return Some(Err(format!("no background client: {error}"))),
    };
    let send = |request| async {
        client
            .execute(request)
            .await
            .map_err(reqwest_middleware::Error::from)
    };
    let mut result = send(request).await;
    if exchange.unconfirmed(&result) {
        if let Some(again) = unconditional {
            drop(result);
            // The answer stored, if any, is this one's.
            if let Some(cache) = cache.upgrade() {
                exchange.mark_sent(&cache);
            }
            result = send(again).await;
        }
    }
    let cache = cache.upgrade()?;
    let failure = result
        .as_ref()
        .err()
        .map(|e| exchange.redact(&error_chain(e)));
    // Read whole: no caller waits for its body, which would be dropped unread.
    Some(match finish(&cache, exchange, result, None).await {
        // Over the memory limit, in a store keeping bodies in files: stored only once read to
        // its end, and no caller reads this one (dropped unread, the entry stayed stale).
        Ok(response) if response.extensions().get::<StoredAsRead>().is_some() => {
            let status = response.status();
            read_to_end(response)
                .await
                .map(|()| status)
                .map_err(|error| format!("reading the answer to store it failed: {error}"))
        }
        Ok(response) => {
            let status = response.status();
            match response.cache_info() {
                Some(info) if info.stored => Ok(status),
                Some(info) if info.stale_if_error => {
                    Err("the origin failed; stale-if-error kept the entry".to_owned())
                }
                _ => Err(format!(
                    "the origin answered {status}, which was not stored"
                )),
            }
        }
        Err(_) => Err(failure.unwrap_or_else(|| "origin error".to_owned())),
    })
}

/// Reads `response`'s body to its end, a piece at a time (none of it kept).
async fn read_to_end(mut response: Response) -> reqwest::Result<()> {
    while response.chunk().await?.is_some() {}
    Ok(())
}

/// Turns the origin's answer (or failure) into the caller's response, updating the cache
/// (a body still arriving after `patience` is stored as the caller reads it). Not an
/// `async fn` (see [`fetch`]): a response that invalidates nothing is `store_response`'s
/// future alone.
fn finish(
    cache: &Arc<Cache>,
    exchange: Box<Exchange>,
    result: reqwest_middleware::Result<Response>,
    patience: Option<std::time::Duration>,
) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + '_ {
    let done = |result| Either::Left(std::future::ready(result));
    let (settings, stats) = (&cache.settings, &cache.live.stats);
    let now = settings.clock.now();
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            if origin_unreachable(&error) {
                if let Some(stale) = stale_for_error(cache, &exchange, now) {
                    // Logged redacted: reqwest's message holds the URL as sent.
                    let error = exchange.redact(&error_chain(&error));
                    let url = &exchange.stored_request.url;
                    tracing::info!(%url, %error, "origin unreachable; serving stale entry");
                    return done(Ok(stale));
                }
            }
            // Network errors otherwise pass through unchanged; the request was a miss.
            if !exchange.in_background {
                stats.miss();
            }
            return done(Err(error));
        }
    };
    let status = response.status();
    if settings.stale_if_error_statuses.contains(&status) {
        if let Some(stale) = stale_for_error(cache, &exchange, now) {
            let url = &exchange.stored_request.url;
            tracing::info!(%url, %status, "origin error; serving stale entry");
            return done(Ok(stale));
        }
    }
    // Boxed, as the rarer paths: their state stays out of every miss's.
    if exchange.validating && status == StatusCode::NOT_MODIFIED {
        if let Some(found) = exchange.found.clone() {
            let refresh: HandleFuture<'_> = Box::pin(async move {
                Ok(refresh_from_304(cache, &exchange, found, &response, now).await)
            });
            return Either::Right(Either::Right(refresh));
        }
    }
    // The caller's own conditional request (the cache added no validators): its `304`
    // renews the stored response it names by the same strong tag (RFC 9111 §4.3.4), which
    // otherwise stayed stale and sent every later request to the origin. The caller gets
    // its `304`, as before.
    let safe = matches!(exchange.method, Method::GET | Method::HEAD);
    if safe && !exchange.validating && status == StatusCode::NOT_MODIFIED {
        let named = |found: &Found| names_by_strong_tag(&response, found);
        if let Some(found) = exchange.found.clone().filter(named) {
            let renewing: HandleFuture<'_> = Box::pin(async move {
                // Counted as a revalidation (there), as the cache's own is; not a miss too.
                refresh_from_304(cache, &exchange, found, &response, now).await;
                Ok(store_response(cache, exchange, response, (patience, now)).await)
            });
            return Either::Right(Either::Right(renewing));
        }
    }
    // A recording keeps every answer it took (see `pass_on`).
    if !exchange.recording && invalidates(&exchange.method, status) {
        let invalidating = invalidate_then_store(cache, exchange, response, patience);
        let invalidating: HandleFuture<'_> = Box::pin(invalidating.map(Ok));
        return Either::Right(Either::Right(invalidating));
    }
    if !exchange.in_background {
        stats.miss();
    }
    let stored = store_response(cache, exchange, response, (patience, now));
    Either::Right(Either::Left(stored.map(Ok)))
}

/// True when the `304` `not_modified` carries a strong entity tag equal to the stored
/// response's own: it identifies that response for update (RFC 9111 §4.3.4).
fn names_by_strong_tag(not_modified: &Response, found: &Found) -> bool {
    let stored = found.response().headers.get(http::header::ETAG);
    let tag = not_modified.headers().get(http::header::ETAG);
    tag.zip(stored)
        .is_some_and(|(tag, stored)| strong_match(tag.as_bytes(), stored.as_bytes()))
}

/// [`finish`] of an unsafe request's successful answer: its URL's entries invalidated, then
/// the answer stored (where its method and directives allow).
async fn invalidate_then_store(
    cache: &Arc<Cache>,
    mut exchange: Box<Exchange>,
    response: Response,
    patience: Option<std::time::Duration>,
) -> Response {
    let changed = invalidate_after_unsafe(
        cache,
        &exchange.method,
        &exchange.url,
        &exchange.headers,
        &response,
    )
    .await;
    if !changed.is_empty() {
        // The Vary index the lookup saw went with the URL's entries: a variant written
        // beside it would have none.
        exchange.seen = SeenIndex::Unknown;
        // The request's own changes do not keep its answer from being stored; any other
        // made since it was sent still does.
        if let Some((_, seen)) = &mut exchange.sent {
            *seen = seen.with_own_changes(&changed);
        }
    }
    cache.live.stats.miss();
    // Stored as made after the invalidation: an invalidation that did not finish holds back
    // what its URL stored before it (see `unfinished_invalidations`), not this answer.
    let now = cache.settings.clock.now();
    store_response(cache, exchange, response, (patience, now)).await
}

/// True when `error` says the origin could not be reached (a connection, a time limit, the
/// request not sent): reqwest's own error, or one a middleware below the cache handed up
/// with it inside. reqwest-retry does, with every failure it gives up on (`RetryError`,
/// whose source is the last attempt's error, or that error's own sources when it retried
/// nothing), so it is looked for along the chain, down to the socket's `io::Error`.
fn origin_unreachable(error: &reqwest_middleware::Error) -> bool {
    let reqwest_says = |e: &reqwest::Error| e.is_connect() || e.is_timeout() || e.is_request();
    let middleware_says = |e: &reqwest_middleware::Error| match e {
        reqwest_middleware::Error::Reqwest(e) => reqwest_says(e),
        reqwest_middleware::Error::Middleware(_) => false,
    };
    if middleware_says(error) {
        return true;
    }
    let reqwest_middleware::Error::Middleware(error) = error else {
        return false;
    };
    error.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<reqwest_middleware::Error>() {
            return middleware_says(e);
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
            return reqwest_says(e);
        }
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| is_unreachable_io(e.kind()))
    })
}

/// The kinds of socket failure that mean the origin was not reached (or stopped answering).
fn is_unreachable_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
            | TimedOut
    )
}

/// The stale entry, marked as served on error, when stale-if-error allows it.
fn stale_for_error(cache: &Cache, exchange: &Exchange, now: SystemTime) -> Option<Response> {
    let found = exchange.found.as_ref()?;
    let allowed = stale_allowed(
        &found.freshness(),
        now,
        "stale-if-error",
        cache.settings.stale_if_error,
        cache.settings.cache_control,
    );
    if !allowed {
        return None;
    }
    if !exchange.in_background {
        cache.live.stats.hit();
    }
    let mut info = hit_info(found, false, now);
    info.stale_if_error = true;
    let aged_from = info.created_at;
    let (headers, found) = found.clone().take_headers();
    Some(serve(
        Source::found(headers, &found),
        &exchange.url,
        info,
        exchange.method != Method::HEAD,
        (aged_from, now),
    ))
}

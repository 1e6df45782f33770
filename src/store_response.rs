//! Storing the origin's answer: whether every rule allows it (the user's settings, the
//! response's directives, its status, Vary, cookies, the filter, the body size), reading the
//! body within the limit, and writing it where its request's lookup will find it (and, after
//! a redirect, where the final URL's will). A body over the limit is written as it streams
//! when the store keeps bodies in files; one slower to end than `stream_after` streams to
//! the caller and is stored at its end. Calls [`spool`](crate::spool), [`tee`](crate::tee),
//! [`variants`](crate::variants) and leaf modules.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use cache_core::time::truncate_to_millis;
use cache_core::{CachedRequest, CachedResponse};
use cache_http::vary::{Vary, parse_vary};
use futures_util::FutureExt;
use futures_util::future::Either;
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
use crate::tee;
use crate::url_changes::Seen;
use crate::variants::{self, Placement, SeenIndex, save_response};

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
    (now, response_delay): (std::time::SystemTime, std::time::Duration),
) -> CachedResponse {
    let mut stored_headers = parts.headers.clone();
    if !keeps_set_cookie {
        stored_headers.remove(http::header::SET_COOKIE);
    }
    stored_fields::remove_unstored(&mut stored_headers);
    age::store_initial(&mut stored_headers, response_delay, now);
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

/// Stores `response` when every rule allows it; returns it to the caller either way. Given a
/// `patience`, a body that has not ended within it streams to the caller, and is stored
/// once the caller has read it to its end. `now` is when the response arrived (its
/// `response_time`, RFC 9111 §4.2.3), from the cache's clock; for the answer to an unsafe
/// request, when its invalidation ended.
pub(crate) async fn store_response(
    cache: &Arc<Cache>,
    exchange: Box<Exchange>,
    response: Response,
    (patience, now): (Option<std::time::Duration>, std::time::SystemTime),
) -> Response {
    let settings = &cache.settings;
    let not_stored = CacheInfo::passed_through(Some(exchange.url_key));
    let status = response.status();
    let storage = storage(
        settings.cache_control,
        settings.strict,
        exchange.user,
        exchange.directives.as_ref(),
        status,
        response.headers(),
        (now, exchange.response_delay(now)),
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
    // Never a `206` (a part), a `304` (no body of its own: stored, it answered later plain
    // requests with nothing) or a `1xx`, whatever `allowable_codes` lists.
    let cacheable = status != StatusCode::PARTIAL_CONTENT
        && status != StatusCode::NOT_MODIFIED
        && !status.is_informational()
        && !streams_without_end(response.headers())
        && status_allowed
        && parse_vary(response.headers()) != Vary::Any
        && cookies_allowed
        && settings.filter.as_ref().is_none_or(|keep| keep(&response));
    if !cacheable {
        return with_info(response, not_stored);
    }
    // Taken as the request went out (else now): an unsafe request that changed the URL
    // since keeps the response from being stored (see `url_changes`).
    let (url_group, changes) = exchange.sent.unwrap_or_else(|| {
        let url_group = settings.keys.url_group(&exchange.url);
        (url_group, cache.live.url_changes.seen(&url_group))
    });
    let redirected = *response.url() != exchange.url;
    // After a redirect, the final URL's too: the response is stored for it as well.
    let final_group = redirected.then(|| settings.keys.url_group(response.url()));
    let final_changes = final_group.map(|group| cache.live.url_changes.seen(&group));
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
        let limit = settings.max_body_bytes;
        read_limited(response, limit, patience, not_stored.clone()).await
    };
    let whole = Whole {
        exchange,
        url_group,
        changes,
        final_group,
        final_changes,
        now,
        expires_at,
    };
    let reading = Reading {
        whole,
        not_stored,
        keeps_set_cookie,
        redirected,
        announced,
        spools,
    };
    after_read(cache, reading, read).await
}

/// What [`store_response`] decided before reading the body, for [`after_read`].
struct Reading {
    /// Where the response goes, once its body is whole.
    whole: Whole,
    not_stored: CacheInfo,
    keeps_set_cookie: bool,
    redirected: bool,
    announced: Option<u64>,
    spools: bool,
}

/// The caller's response, as a future: ready at once (passed on, or streaming to the caller
/// and stored at its end), or once the store has taken it (written whole, or spooled to the
/// store's files): those are boxed.
type Storing<'a> = Either<
    std::future::Ready<Response>,
    std::pin::Pin<Box<dyn Future<Output = Response> + Send + 'a>>,
>;

/// The rest of [`store_response`] once the body is read (or handed on): the response as
/// stored, or streaming to the caller and stored at its end.
///
/// Not an `async fn`: what it holds while the store writes (the response's parts, the entry)
/// goes into the write's box, so `store_response`'s future, which every future around it up
/// to the miss path's box contains, holds a pointer for it.
fn after_read(cache: &Arc<Cache>, reading: Reading, read: ReadBody) -> Storing<'_> {
    let settings = &cache.settings;
    let Reading {
        mut whole,
        not_stored,
        keeps_set_cookie,
        redirected,
        announced,
        spools,
    } = reading;
    let done = |response| Either::Left(std::future::ready(response));
    // What follows the chunks read, when the body did not end in time or within the limit.
    let (parts, body, tail) = match read {
        ReadBody::Complete(parts, body) => (parts, body, None),
        ReadBody::PassedOn(response) => return done(response),
        ReadBody::TooLarge(parts, read, rest) => {
            (parts, Bytes::new(), Some((read, rest, Tail::TooLarge)))
        }
        ReadBody::Slow(parts, read, rest) => (parts, Bytes::new(), Some((read, rest, Tail::Slow))),
    };
    // Taken rather than the exchange taken apart: the exchange goes on in `whole`.
    let stored_request = std::mem::replace(
        &mut whole.exchange.stored_request,
        CachedRequest::new(Method::GET, String::new(), http::HeaderMap::new()),
    );
    let cached = to_store(
        settings,
        keeps_set_cookie,
        &parts,
        body,
        (stored_request, &whole.exchange.url),
        (whole.now, whole.exchange.response_delay(whole.now)),
    );
    let url_key = whole.exchange.url_key;
    let Some((read, rest, tail)) = tail else {
        let body = cached.body.clone();
        return Either::Right(Box::pin(async move {
            let stored_key = whole.save(cache, cached, &parts.url).await;
            let info = whole.info(stored_key, not_stored);
            parts.into_response(reqwest::Body::from(body), info)
        }));
    };
    // A store that keeps bodies in files writes the rest as it streams, under the request's
    // key, when it can take it (a response that does not vary; a signed body needs its
    // announced length); a slow body goes in memory otherwise, within the limit, and one over
    // the limit passes on unstored. A redirected response is stored for its final URL as
    // well (in strict mode, for it alone): a slow one in memory, where that is done, and one
    // over the limit in strict mode not at all.
    let to_file = spools
        && parse_vary(&parts.headers) == Vary::None
        && !(redirected && (tail == Tail::Slow || settings.strict))
        && cache
            .live
            .store
            .body_encoder(&url_key, &cached, announced)
            .is_some();
    if to_file {
        // Only bodies over the limit or slow take this path.
        let spooled = whole.spool(cache, cached, announced, (parts, read, rest), not_stored);
        return Either::Right(Box::pin(spooled));
    }
    if tail == Tail::TooLarge {
        return done(rejoin(parts, (read, rest), announced, not_stored));
    }
    // Not stored yet: only once the caller has read the body to its end.
    let info = CacheInfo {
        key: Some(url_key),
        ..not_stored
    };
    // Not needed to store, and the stale entry's body would be held as long as this one.
    whole.exchange.found = None;
    let pending = tee::Pending {
        final_url: parts.url.clone(),
        whole,
        cached,
    };
    done(tee::stream_then_store(
        cache,
        pending,
        announced,
        (parts, read, rest),
        info,
    ))
}

/// Why a body was handed on before it ended.
#[derive(PartialEq)]
enum Tail {
    /// It passed `max_body_size`.
    TooLarge,
    /// It did not end within the patience given.
    Slow,
}

/// A response to store once its body is whole: where (the request's key and group, and,
/// after a redirect, the final URL's), and for how long.
pub(crate) struct Whole {
    exchange: Box<Exchange>,
    /// The request URL's group.
    url_group: cache_core::CacheKey,
    /// The URL's invalidation counter as the request went out (see [`Exchange::sent`]).
    changes: Seen,
    /// After a redirect, the final URL's group, and its counter as the response arrived.
    final_group: Option<cache_core::CacheKey>,
    final_changes: Option<Seen>,
    now: std::time::SystemTime,
    expires_at: Option<std::time::SystemTime>,
}

impl Whole {
    /// Writes `cached` (its body whole, from `final_url`: the request's URL unless
    /// redirected) unless the stored filter refuses it, or an unsafe request changed the URL
    /// since the request went out (then what was written meanwhile is deleted again); the
    /// key it went under, if stored.
    ///
    /// Not an `async fn`: the response goes into the write before the future is made, so the
    /// future holds the write alone, not the response as well (see `Whole::write`).
    pub(crate) fn save<'a>(
        &'a self,
        cache: &'a Cache,
        cached: CachedResponse,
        final_url: &'a url::Url,
    ) -> impl Future<Output = Option<cache_core::CacheKey>> + Send + 'a {
        if self.url_changed(cache) {
            tracing::debug!(key = %self.exchange.url_key, "URL changed since the request; not cached");
            return Either::Left(std::future::ready(None));
        }
        // Chained rather than awaited in an `async` block, which would hold the write twice
        // (as captured, and as awaited).
        let write = self.write(cache, cached, final_url);
        Either::Right(write.then(move |written| self.saved(cache, written)))
    }

    /// After [`Whole::save`]'s write: the key the response went under, unless an unsafe
    /// request changed the URL meanwhile.
    async fn saved(
        &self,
        cache: &Cache,
        written: [Option<cache_core::CacheKey>; 2],
    ) -> Option<cache_core::CacheKey> {
        if self.url_changed(cache) {
            // Only what this wrote: a newer write under the same key stays.
            for key in written.iter().flatten() {
                cache.live.store.forget_if_created(key, self.now).await;
            }
            // A write of this response that failed may land yet, after the invalidation
            // that ran meanwhile (which did not know of it): the URL is held back, and the
            // final URL, which a redirected response is written for too.
            for group in std::iter::once(self.url_group).chain(self.final_group) {
                cache.hold_back_if_unsettled(group);
            }
            return None;
        }
        written[0]
    }

    /// True when an unsafe request (or the handle) changed the URL, or the final URL after a
    /// redirect, since their counters were taken.
    fn url_changed(&self, cache: &Cache) -> bool {
        cache
            .live
            .url_changes
            .changed_since_either((self.changes, self.final_changes))
    }

    /// [`Whole::save`]'s write: the keys written, the request's (or, in strict mode after a
    /// redirect, the final URL's) first and the final URL's alias second.
    ///
    /// Nearly every response is one write under the request's key (not redirected, no stored
    /// filter, no Vary): its future is that write's alone; the others are boxed.
    fn write<'a>(
        &'a self,
        cache: &'a Cache,
        cached: CachedResponse,
        final_url: &'a url::Url,
    ) -> impl Future<Output = [Option<cache_core::CacheKey>; 2]> + Send + 'a {
        let settings = &cache.settings;
        let at_once = settings.stored_filter.is_none()
            && *final_url == self.exchange.url
            && variants::writes_at_once(&self.exchange.seen, &cached);
        if !at_once {
            return Either::Right(Box::pin(self.write_any(cache, cached, final_url)));
        }
        let (url_key, now, expires_at) = (self.exchange.url_key, self.now, self.expires_at);
        let meta = self
            .place(&cached.request.url)
            .meta(url_key, now, expires_at);
        let write = variants::save(&cache.live.store, meta, Cow::Owned(cached));
        Either::Left(write.map(|stored_key| [stored_key, None]))
    }

    /// [`Whole::write`] of any response: redirected, filtered, varying or not.
    async fn write_any(
        &self,
        cache: &Cache,
        cached: CachedResponse,
        final_url: &url::Url,
    ) -> [Option<cache_core::CacheKey>; 2] {
        let settings = &cache.settings;
        if settings
            .stored_filter
            .as_ref()
            .is_some_and(|keep| !keep(&cached))
        {
            return [None, None];
        }
        let (to, now, expires_at) = (&self.exchange, self.now, self.expires_at);
        let meta_url = cached.request.url.as_str().to_owned();
        let store = &cache.live.store;
        let place = self.place(&meta_url);
        // After a redirect, the final URL is answered from the cache too (an alias), in the
        // final URL's group; not when it has the request's own key (its query reordered,
        // say): the entry answers it already, and a second write would only rename its URL.
        // Without an alias (nearly always), the response is not needed again and goes to the
        // store owned (unencoded where the codec allows; a store that keeps decoded forms
        // keeps it).
        let alias_key = (to.method == Method::GET && *final_url != to.url)
            .then(|| {
                settings
                    .keys
                    .key(&Method::GET, final_url, &to.headers, None)
            })
            .filter(|alias_key| *alias_key != to.url_key);
        match alias_key {
            // Strict mode: the answer to this request was a redirect reqwest followed below
            // the cache, never seen here, and whatever its own directives said (`no-store`, a
            // short max-age) the final response would answer this URL for its own lifetime:
            // it is stored for the final URL alone.
            Some(alias_key) if settings.strict => {
                let meta_url = cached.url.clone();
                let alias =
                    final_url_placement(settings, &to.headers, final_url, alias_key, &meta_url);
                [
                    save_response(store, &alias, Cow::Owned(cached), now, expires_at).await,
                    None,
                ]
            }
            _ if settings.strict && *final_url != to.url && to.method != Method::GET => {
                [None, None]
            }
            Some(alias_key) => {
                let stored_key =
                    save_response(store, &place, Cow::Borrowed(&cached), now, expires_at).await;
                if stored_key.is_none() {
                    return [None, None];
                }
                let alias =
                    final_url_placement(settings, &to.headers, final_url, alias_key, &cached.url);
                let alias_key =
                    save_response(store, &alias, Cow::Borrowed(&cached), now, expires_at).await;
                [stored_key, alias_key]
            }
            None => [
                save_response(store, &place, Cow::Owned(cached), now, expires_at).await,
                None,
            ],
        }
    }

    /// The response written to the store's spool as its body streams to the caller: under
    /// the request's key (no variant, no alias), committed when the body ends.
    async fn spool(
        mut self,
        cache: &Arc<Cache>,
        cached: CachedResponse,
        announced: Option<u64>,
        body: (ResponseParts, Vec<Bytes>, Response),
        not_stored: CacheInfo,
    ) -> Response {
        // The flight's followers wait for the body to be stored, or abandoned.
        let leader = self.exchange.leader.take();
        let meta_url = cached.request.url.as_str().to_owned();
        let place = self.place(&meta_url);
        let plan = Plan {
            meta: place.meta(self.exchange.url_key, self.now, self.expires_at),
            cached,
            place,
            announced,
            changes: (self.changes, self.final_changes),
        };
        spool_response(cache, plan, body, not_stored, leader).await
    }

    /// Where the response goes for the request: its key, in its URL's group, stored with
    /// `meta_url`.
    fn place<'a>(&'a self, meta_url: &'a str) -> Placement<'a> {
        Placement {
            url_key: self.exchange.url_key,
            url_group: self.url_group,
            meta_url,
            request_headers: &self.exchange.headers,
            seen: &self.exchange.seen,
        }
    }

    /// The request's key.
    pub(crate) fn key(&self) -> cache_core::CacheKey {
        self.exchange.url_key
    }

    /// What the caller is told of a response stored under `stored_key` (or not stored).
    fn info(&self, stored_key: Option<cache_core::CacheKey>, not_stored: CacheInfo) -> CacheInfo {
        // Times as stored (to the millisecond), so this info matches a later hit's.
        CacheInfo {
            created_at: stored_key.map(|_| truncate_to_millis(self.now)),
            expires: stored_key.and(self.expires_at.map(truncate_to_millis)),
            key: Some(stored_key.unwrap_or(self.exchange.url_key)),
            stored: stored_key.is_some(),
            ..not_stored
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::UserExpiration;

    /// Every miss boxes the write's future (with what it answers the caller by, in
    /// `after_read`), copying it in.
    /// The response goes into the store's call before each level's future is made, so no
    /// level holds it (or the entry's metadata) again: the future was 5 KiB when each level
    /// was an `async fn` holding its arguments.
    #[tokio::test]
    async fn the_write_future_stays_small() {
        let middleware = crate::CacheMiddleware::builder()
            .store(cache_core::MemoryStore::new())
            .build()
            .unwrap();
        let cache = middleware.cache();
        let url = url::Url::parse("http://example.com/p?a=1").unwrap();
        let request = reqwest::Request::new(Method::GET, url.clone());
        let settings = &cache.settings;
        let url_key = settings
            .keys
            .key(&Method::GET, &url, request.headers(), None);
        let user = UserExpiration {
            expiration: crate::Expiration::Never,
            explicit: false,
        };
        let seen = SeenIndex::Known(None);
        let exchange = Exchange::new(settings, url_key, (None, seen), user, None, &request);
        let url_group = settings.keys.url_group(&url);
        let whole = Whole {
            exchange,
            url_group,
            changes: cache.live.url_changes.seen(&url_group),
            final_group: None,
            final_changes: None,
            now: std::time::SystemTime::now(),
            expires_at: None,
        };
        let response = CachedResponse::new(
            StatusCode::OK,
            http::Version::HTTP_11,
            http::HeaderMap::new(),
            Bytes::from_static(b"body"),
            url.as_str(),
            CachedRequest::new(Method::GET, url.as_str(), http::HeaderMap::new()),
        );
        let save = whole.save(cache, response, &url);
        let size = std::mem::size_of_val(&save);
        assert!(size <= 1_024, "the write's future is {size} bytes");
        assert_eq!(save.await, Some(url_key), "and it writes");
    }
}

//! [`Exchange`]: what the miss path knows of a request, taken before it is sent (the request
//! itself goes to the network and is gone). Calls only leaf modules.

use cache_core::{CacheKey, CachedRequest};
use cache_http::freshness::RequestDirectives;
use http::{HeaderMap, Method};
use reqwest::Request;
use url::Url;

use crate::cache::Cache;
use crate::flight::LeaderGuard;
use crate::lookup::Found;
use crate::policy::UserExpiration;
use crate::revalidate::{add_validators, confirms, is_conditional};
use crate::settings::Settings;
use crate::url_changes::Seen;
use crate::variants::SeenIndex;

/// Everything the miss path needs to know about the request.
pub(crate) struct Exchange {
    /// The request's key (before any Vary variant).
    pub(crate) url_key: CacheKey,
    /// The stored entry, stale or being refreshed, if any.
    pub(crate) found: Option<Found>,
    /// What the lookup saw of the URL key's Vary index.
    pub(crate) seen: SeenIndex,
    pub(crate) user: UserExpiration,
    pub(crate) directives: Option<RequestDirectives>,
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// The request's headers as the caller sent them (for Vary and invalidation).
    pub(crate) headers: HeaderMap,
    /// What may be stored of the request (redacted).
    pub(crate) stored_request: CachedRequest,
    /// The cache added its own validators for `found`.
    pub(crate) validating: bool,
    /// [`CacheMode::Record`](crate::CacheMode::Record): store whatever the settings allow,
    /// whatever the response's freshness says.
    pub(crate) recording: bool,
    /// A background refresh of a stale entry served: the request it refreshes for was
    /// counted a hit already, so its outcome counts no hit or miss again.
    pub(crate) in_background: bool,
    /// This request's lead of its single flight, if it leads one: followers wait until it
    /// drops, with the exchange once the answer is stored (or not), or with the body being
    /// stored as the caller reads it.
    pub(crate) leader: Option<LeaderGuard>,
    /// The request URL's group, and its invalidation counter as the cache sent the request
    /// ([`Exchange::mark_sent`]): a change to the URL from then on (an unsafe request, the
    /// handle's deletes) keeps the answer from being stored, as it may predate the change.
    /// `None` for an answer to a request the cache did not send for itself (a `POST`'s,
    /// stored for `GET`), which takes the counter as the answer arrives.
    pub(crate) sent: Option<(CacheKey, Seen)>,
    /// When the cache sent the request ([`Exchange::mark_sent`]): its answer's `Age` is
    /// corrected by the time it took ([`Exchange::response_delay`]).
    sent_at: Option<std::time::SystemTime>,
}

impl Exchange {
    /// Boxed: the exchange travels through the miss path's nested futures, and each level
    /// would otherwise hold its own copy of it (a miss's future was over 10 KB).
    pub(crate) fn new(
        settings: &Settings,
        url_key: CacheKey,
        (found, seen): (Option<Found>, SeenIndex),
        user: UserExpiration,
        directives: Option<RequestDirectives>,
        req: &Request,
    ) -> Box<Self> {
        Box::new(Self {
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
                settings.keys.redact_url(req.url()),
                settings.keys.redact_headers(req.headers()),
            ),
            validating: false,
            recording: false,
            in_background: false,
            leader: None,
            sent: None,
            sent_at: None,
        })
    }

    /// Takes the URL's invalidation counter as the request goes out (see [`Exchange::sent`]).
    pub(crate) fn mark_sent(&mut self, cache: &Cache) {
        let url_group = cache.settings.keys.url_group(&self.url);
        self.sent = Some((url_group, cache.live.url_changes.seen(&url_group)));
        self.sent_at = Some(cache.settings.clock.now());
    }

    /// The time from sending the request to its answer arriving at `received` (RFC 9111
    /// §4.2.3's `response_delay`); nothing for an answer to a request the cache did not send.
    pub(crate) fn response_delay(&self, received: std::time::SystemTime) -> std::time::Duration {
        self.sent_at
            .and_then(|sent| received.duration_since(sent).ok())
            .unwrap_or_default()
    }

    /// `text` (an error message, which reqwest writes with the URL as sent) with the URL
    /// replaced by its redacted form, for logs.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(self.url.as_str(), &self.stored_request.url)
    }

    /// The request's URL as stored (redacted), for logs.
    pub(crate) fn stored_url(&self) -> &str {
        &self.stored_request.url
    }

    /// The key of the stored entry this exchange refreshes, if any.
    pub(crate) fn found_key(&self) -> Option<CacheKey> {
        self.found.as_ref().map(|found| found.key)
    }

    /// Makes a `GET` or `HEAD` `req` conditional on the stored entry's validators, unless the
    /// caller already made it conditional (then its `304` is the caller's business) or it
    /// cannot be sent again (a streaming body). Returns it as it was, to send instead should
    /// the `304` not confirm the stored response ([`Exchange::unconfirmed`]).
    ///
    /// Another method (a cached `POST`) goes unconditional: an origin answers its failed
    /// precondition with `412`, not `304`, and does not perform it (RFC 9110 §13.1.2), so a
    /// stale entry would get a `412` on every request until evicted.
    pub(crate) fn add_validators(&mut self, req: &mut Request) -> Option<Request> {
        let found = self.found.as_ref()?;
        if is_conditional(req.headers()) || !matches!(*req.method(), Method::GET | Method::HEAD) {
            return None;
        }
        let unconditional = req.try_clone()?;
        self.validating = add_validators(req.headers_mut(), found.response());
        self.validating.then_some(unconditional)
    }

    /// True when `result` is a `304` to the cache's conditional request that does not
    /// confirm the stored response ([`confirms`]): the exchange then stops validating, and
    /// the request goes again without conditions.
    pub(crate) fn unconfirmed(
        &mut self,
        result: &reqwest_middleware::Result<reqwest::Response>,
    ) -> bool {
        let (Some(found), Ok(response)) = (&self.found, result) else {
            return false;
        };
        let unconfirmed = self.validating
            && response.status() == http::StatusCode::NOT_MODIFIED
            && !confirms(&found.response().headers, response.headers());
        if unconfirmed {
            tracing::debug!(
                url = %self.stored_url(),
                "a 304 named another representation than the stored one; sent again without conditions"
            );
            self.validating = false;
        }
        unconfirmed
    }
}

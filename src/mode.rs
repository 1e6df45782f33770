//! [`CacheMode`]: how one request uses the cache.
//!
//! A leaf: calls nothing else in the crate.

/// How a request uses the cache. Set per request with
/// [`CacheRequestExt::cache_mode`](crate::CacheRequestExt::cache_mode) (or
/// `with_extension(CacheMode::..)`), for a block of code with a
/// [`CacheScope`](crate::CacheScope), or for every request with
/// [`CacheMiddlewareBuilder::mode`](crate::CacheMiddlewareBuilder::mode); the first of these
/// that is set wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheMode {
    /// The normal behaviour. This mode:
    /// - answers from the cache while the entry is fresh;
    /// - revalidates a stale entry that has an `ETag` or `Last-Modified`
    ///   (`If-None-Match` / `If-Modified-Since`), and uses the stored body on `304`;
    /// - otherwise fetches and stores the response if it is cacheable.
    #[default]
    Default,
    /// Always asks the origin, even for a fresh entry. This mode:
    /// - sends a conditional request when the entry has validators, so an unchanged
    ///   resource costs a `304`;
    /// - stores whatever new response arrives.
    Refresh,
    /// Revalidates before each use every stored response that can be revalidated, as
    /// requests-cache's `always_revalidate`. This mode:
    /// - sends a conditional request (`If-None-Match` / `If-Modified-Since`) for a fresh
    ///   entry with an `ETag` or `Last-Modified`, and serves the stored body on `304`;
    /// - serves a fresh entry without validators from the cache, with no request (unlike
    ///   [`Refresh`](Self::Refresh), which refetches it);
    /// - treats stale entries as [`Default`](Self::Default) does.
    ///
    /// For every request of a cache, see
    /// [`always_revalidate`](crate::CacheMiddlewareBuilder::always_revalidate).
    Revalidate,
    /// Ignores the cache for reading. This mode:
    /// - sends the request unconditionally;
    /// - stores the response if it is cacheable (replacing the entry).
    ForceRefresh,
    /// Never touches the network. This mode:
    /// - answers from the cache when the entry is fresh;
    /// - otherwise answers `504 Gateway Timeout`, as requests-cache and RFC 9111's
    ///   `only-if-cached` do (a stale entry counts as not cached).
    OnlyIfCached,
    /// As if the cache were not there. This mode:
    /// - neither reads nor stores responses (a successful unsafe request still invalidates
    ///   what is stored for its URL, as an origin's change must);
    /// - still attaches a [`CacheInfo`](crate::CacheInfo) saying the response was not cached.
    Bypass,
    /// Works without a network: whatever is stored answers, fresh or not. This mode:
    /// - never sends a request (nor a revalidation, nor a background refresh);
    /// - serves the stored response the request selects (its Vary variant, a stored `GET`
    ///   for a `HEAD`, a `304` for the caller's own conditional request, a `206` for a byte
    ///   range), however stale, ignoring the request's own freshness directives;
    /// - answers a request it has nothing stored for, or cannot answer from the cache at all
    ///   (a method that is not cached, a streaming body, `DoNotCache`), with a
    ///   `504 Gateway Timeout` of its own, marked
    ///   [`CacheInfo::offline_miss`](crate::CacheInfo::offline_miss).
    ///
    /// Unlike [`OnlyIfCached`](Self::OnlyIfCached), which keeps RFC 9111's meaning (only
    /// *usable*, fresh, entries answer), a stale entry answers too. A
    /// [`disabled`](crate::disabled) scope still goes to the network: it turns the cache off.
    Offline,
    /// Replays what was recorded ([`Record`](Self::Record)), for tests: as
    /// [`Offline`](Self::Offline), except that a request with nothing stored fails. This mode:
    /// - never sends a request;
    /// - serves what is stored as `Offline` does;
    /// - fails a request it has nothing stored for with
    ///   [`reqwest_middleware::Error::Middleware`] wrapping a [`ReplayMiss`](crate::ReplayMiss)
    ///   that names its method and URL (downcast it to tell it from other errors).
    ///
    /// A request that turns the cache off (a [`disabled`](crate::disabled) scope, or
    /// [`Bypass`](Self::Bypass) on the request) still goes to the network: it asked for that.
    ///
    /// See [`CacheMiddleware::replay`](crate::CacheMiddleware::replay).
    Replay,
    /// Records every response the cache may keep, for [`Replay`](Self::Replay). This mode:
    /// - sends every request to the origin, without reading the cache (as
    ///   [`ForceRefresh`](Self::ForceRefresh));
    /// - stores the response whatever its freshness says: `no-store`, `max-age=0`, `no-cache`
    ///   or no freshness at all; a response the headers would not let the cache keep is stored
    ///   already stale (so a normal request revalidates it), one with a lifetime keeps it;
    /// - still stores only what your settings allow: a status in
    ///   [`allowable_codes`](crate::CacheMiddlewareBuilder::allowable_codes), a method in
    ///   [`allowable_methods`](crate::CacheMiddlewareBuilder::allowable_methods), a body
    ///   within [`max_body_size`](crate::CacheMiddlewareBuilder::max_body_size), the
    ///   [`filter`](crate::CacheMiddlewareBuilder::filter), no `Set-Cookie` unless
    ///   [`cache_set_cookie`](crate::CacheMiddlewareBuilder::cache_set_cookie), no
    ///   `Vary: *` (nor a `Vary` naming more than 64 headers), no `206`, nothing under `DoNotCache`, nothing the request itself marks
    ///   `no-store`; credentials and `Set-Cookie` are never stored, strict mode or not;
    /// - invalidates nothing: a successful `POST`, `PUT` or `DELETE` leaves what was recorded
    ///   for its URL in place (a recording keeps every answer it took).
    ///
    /// The same request recorded twice keeps the last response. See
    /// [`CacheMiddleware::record`](crate::CacheMiddleware::record).
    Record,
}

impl CacheMode {
    /// True for the modes that never send a request: `Offline`, `Replay` and `OnlyIfCached`
    /// (a request the cache cannot look up, a `POST` say, gets their answer to a miss).
    pub(crate) fn never_sends(self) -> bool {
        self.serves_anything_stored() || self == Self::OnlyIfCached
    }

    /// True for the modes whatever is stored answers, however stale: `Offline` and `Replay`.
    pub(crate) fn serves_anything_stored(self) -> bool {
        matches!(self, Self::Offline | Self::Replay)
    }

    /// True for the modes that do not read the cache before sending.
    pub(crate) fn skips_lookup(self) -> bool {
        matches!(self, Self::ForceRefresh | Self::Record)
    }
}

//! RFC 9111 freshness for a private cache: how long a response may be served (§4.2), how old
//! it is (§4.2.3), and whether a request's own directives accept a stored one (§5.2.1).
//!
//! The work is split so the hit path stays cheap: the response's lifetime is computed once,
//! when it is stored, into the entry's `expires_at`; a read compares that with the clock, and
//! parses headers again only when the request carries directives or the entry is stale.

use std::time::{Duration, SystemTime};

use http::header::{AGE, DATE, EXPIRES, LAST_MODIFIED};
use http::{HeaderMap, StatusCode};

use crate::cache_control::{Directives, Seconds, pragma_no_cache};

/// The fraction of a response's Last-Modified age used as its heuristic lifetime
/// (RFC 9111 §4.2.2 suggests "no more than 10%").
const HEURISTIC_FRACTION: u32 = 10;

/// What a response's own headers say about how long it stays fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFreshness {
    /// `Cache-Control: no-store`: it must not be stored.
    NoStore,
    /// A lifetime from `max-age`, `Expires`, `no-cache` / `Pragma: no-cache` (zero), invalid
    /// freshness information (zero), or the Last-Modified heuristic.
    Lifetime(Duration),
    /// The response says nothing: the user's expiration settings decide.
    Unspecified,
}

/// The freshness a response's headers give it, as a private cache reads them: `private` is
/// allowed and `s-maxage` ignored. `heuristic` allows the Last-Modified heuristic for
/// responses with no explicit freshness.
pub fn response_freshness(
    status: StatusCode,
    headers: &HeaderMap,
    response_time: SystemTime,
    heuristic: bool,
) -> ResponseFreshness {
    let cc = Directives::parse(headers);
    // must-understand (§5.2.2.3): stored only by a cache that knows the status code's
    // caching rules, and then no-store (there for caches that do not) is set aside.
    let understood = cc.has("must-understand").then(|| is_understood(status));
    if understood == Some(false) || (cc.has("no-store") && understood.is_none()) {
        return ResponseFreshness::NoStore;
    }
    // The most restrictive of conflicting directives wins (§4.2.1): no-cache beats max-age.
    // A no-cache naming fields (`no-cache="set-cookie"`) only keeps those fields from being
    // reused (§5.2.2.4); they are left out when the response is stored.
    if cc.has_bare("no-cache") || pragma_no_cache(headers) {
        return ResponseFreshness::Lifetime(Duration::ZERO);
    }
    if let Some(max_age) = cc.seconds("max-age") {
        return ResponseFreshness::Lifetime(max_age.valid().unwrap_or(Duration::ZERO));
    }
    if let Some(expires) = headers.get(EXPIRES) {
        // An invalid date, such as "0", means already expired (§5.3).
        let lifetime = http_date(expires.as_bytes())
            .map(|expires| {
                let base = date(headers).unwrap_or(response_time);
                expires.duration_since(base).unwrap_or(Duration::ZERO)
            })
            .unwrap_or(Duration::ZERO);
        return ResponseFreshness::Lifetime(lifetime);
    }
    // Heuristic freshness for the codes RFC 9110 allows it for, and any code marked `public`
    // (RFC 9111 §4.2.2).
    if heuristic && (is_heuristically_cacheable(status) || cc.has("public")) {
        let modified = headers
            .get(LAST_MODIFIED)
            .and_then(|v| http_date(v.as_bytes()));
        if let Some(modified) = modified {
            // A `Date` later than the response arrived (a wrong clock, a hostile origin:
            // year 9999) would make the lifetime centuries: the time it arrived bounds it.
            let base = date(headers).map_or(response_time, |date| date.min(response_time));
            let age = base.duration_since(modified).unwrap_or(Duration::ZERO);
            return ResponseFreshness::Lifetime(age / HEURISTIC_FRACTION);
        }
    }
    ResponseFreshness::Unspecified
}

/// Status codes a cache may give a heuristic lifetime (RFC 9110 §15.1).
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Status codes whose caching rules this cache implements, for `must-understand`
/// (RFC 9111 §5.2.2.3): the final codes RFC 9110 defines, less `206` (partial responses are
/// not stored).
pub fn is_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=205 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// The `Age` a response carries: the first value of its first `Age` line, so a list
/// (`7200, 0`) counts as its first member (RFC 9111 §5.1); `None` when absent or invalid.
pub fn age_value(headers: &HeaderMap) -> Option<Duration> {
    age_of(headers.get(AGE)?)
}

/// One `Age` line's value: its first member; `None` when invalid.
pub fn age_of(line: &http::HeaderValue) -> Option<Duration> {
    let first = line
        .as_bytes()
        .split(|&b| b == b',')
        .next()
        .unwrap_or_default();
    let text = std::str::from_utf8(first).ok()?;
    Seconds::parse(Some(text.trim())).valid()
}

/// How old the response already was when received (RFC 9111 §4.2.3): the larger of its
/// `Age` and the gap between its `Date` and `response_time`, the request's travel time
/// counted as zero ([`corrected_initial_age`] counts it).
pub fn initial_age(headers: &HeaderMap, response_time: SystemTime) -> Duration {
    corrected_initial_age(headers, Duration::ZERO, response_time)
}

/// How old the response already was when received (RFC 9111 §4.2.3): the larger of its
/// apparent age (from its `Date` to `response_time`) and its `Age` plus `response_delay`,
/// the time from sending the request to receiving the response (the `Age` was measured
/// when the response left whoever sent it, which was up to that long ago).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cache_http::freshness::corrected_initial_age;
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::AGE, http::HeaderValue::from_static("50"));
/// let delay = Duration::from_secs(15);
/// assert_eq!(corrected_initial_age(&headers, delay, SystemTime::now()), Duration::from_secs(65));
/// ```
pub fn corrected_initial_age(
    headers: &HeaderMap,
    response_delay: Duration,
    response_time: SystemTime,
) -> Duration {
    let corrected_age_value = age_value(headers)
        .unwrap_or(Duration::ZERO)
        .saturating_add(response_delay);
    let apparent_age = date(headers)
        .and_then(|date| response_time.duration_since(date).ok())
        .unwrap_or(Duration::ZERO);
    corrected_age_value.max(apparent_age)
}

/// When a response received at `response_time` with this lifetime and initial age stops
/// being fresh.
pub fn fresh_until(
    response_time: SystemTime,
    lifetime: Duration,
    initial_age: Duration,
) -> SystemTime {
    response_time
        .checked_add(lifetime.saturating_sub(initial_age))
        .unwrap_or(response_time)
}

/// A request's `max-stale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness.
    Any,
    /// At most this stale.
    Up(Duration),
}

/// The request directives a private cache acts on (RFC 9111 §5.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    /// `max-age`: the stored response may be at most this old (an invalid value counts as 0).
    pub max_age: Option<Duration>,
    /// `max-stale`.
    pub max_stale: Option<MaxStale>,
    /// `min-fresh`: it must stay fresh at least this much longer.
    pub min_fresh: Option<Duration>,
    /// `no-cache` (or `Pragma: no-cache`): validate before use.
    pub no_cache: bool,
    /// `no-store`: do not store the response.
    pub no_store: bool,
    /// `only-if-cached`: never go to the network.
    pub only_if_cached: bool,
}

impl RequestDirectives {
    /// The directives of a request's headers; `None` when it has none (the common case).
    pub fn parse(headers: &HeaderMap) -> Option<Self> {
        let pragma = pragma_no_cache(headers);
        if !headers.contains_key(http::header::CACHE_CONTROL) && !pragma {
            return None;
        }
        let cc = Directives::parse(headers);
        let max_stale = cc.argument("max-stale").map(|arg| match arg {
            None => MaxStale::Any,
            Some(_) => MaxStale::Up(
                cc.seconds("max-stale")
                    .and_then(Seconds::valid)
                    .unwrap_or(Duration::ZERO),
            ),
        });
        Some(Self {
            max_age: cc
                .seconds("max-age")
                .map(|s| s.valid().unwrap_or(Duration::ZERO)),
            max_stale,
            min_fresh: cc
                .seconds("min-fresh")
                .map(|s| s.valid().unwrap_or(Duration::ZERO)),
            no_cache: cc.has("no-cache") || pragma,
            no_store: cc.has("no-store"),
            only_if_cached: cc.has("only-if-cached"),
        })
    }
}

/// A stored response as freshness rules see it.
#[derive(Clone, Copy, Debug)]
pub struct StoredFreshness<'a> {
    /// When it was received.
    pub created_at: SystemTime,
    /// When it stops being fresh (`None`: never).
    pub expires_at: Option<SystemTime>,
    /// Its headers.
    pub headers: &'a HeaderMap,
}

impl StoredFreshness<'_> {
    /// True when fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }

    /// How far past its freshness it is at `now` (zero while fresh).
    pub fn staleness(&self, now: SystemTime) -> Duration {
        self.expires_at
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// Its age at `now` (RFC 9111 §4.2.3): its initial age plus the time since
    /// `created_at`. The initial age is the stored `Age` where there is a valid one: a cache
    /// that keeps the initial age there (the middleware computes it when it stores a
    /// response, and `created_at` starts over when a `304` renews it) then checks the very
    /// age it serves. Without one, the larger of nothing and the gap between `Date` and
    /// `created_at`.
    pub fn current_age(&self, now: SystemTime) -> Duration {
        let resident = now
            .duration_since(self.created_at)
            .unwrap_or(Duration::ZERO);
        let initial =
            age_value(self.headers).unwrap_or_else(|| initial_age(self.headers, self.created_at));
        initial.saturating_add(resident)
    }

    /// True when the response forbids serving it stale (`must-revalidate`, `no-cache`,
    /// `Pragma: no-cache`). A `no-cache` naming fields does not: it keeps only those fields
    /// from reuse (RFC 9111 §5.2.2.4), and they are not stored.
    pub fn forbids_stale(&self) -> bool {
        let cc = Directives::parse(self.headers);
        cc.has("must-revalidate") || cc.has_bare("no-cache") || pragma_no_cache(self.headers)
    }

    /// True when the request's directives accept this response without contacting the origin.
    pub fn satisfies(&self, request: &RequestDirectives, now: SystemTime) -> bool {
        if request.no_cache {
            return false;
        }
        if request
            .max_age
            .is_some_and(|max| self.current_age(now) > max)
        {
            return false;
        }
        if let Some(min_fresh) = request.min_fresh {
            let left = self.expires_at.map_or(Duration::MAX, |t| {
                t.duration_since(now).unwrap_or(Duration::ZERO)
            });
            if left < min_fresh {
                return false;
            }
        }
        if self.is_fresh(now) {
            return true;
        }
        match request.max_stale {
            None => false,
            Some(_) if self.forbids_stale() => false,
            Some(MaxStale::Any) => true,
            Some(MaxStale::Up(limit)) => self.staleness(now) <= limit,
        }
    }

    /// The response's `stale-if-error` / `stale-while-revalidate` allowance, if it has one.
    pub fn directive_seconds(&self, name: &str) -> Option<Duration> {
        Directives::parse(self.headers)
            .seconds(name)
            .and_then(Seconds::valid)
    }

    /// True when the response carries `Cache-Control: immutable`.
    pub fn is_immutable(&self) -> bool {
        Directives::parse(self.headers).has("immutable")
    }
}

fn date(headers: &HeaderMap) -> Option<SystemTime> {
    headers.get(DATE).and_then(|v| http_date(v.as_bytes()))
}

/// An HTTP date in any of the three formats RFC 9110 §5.6.7 accepts, names in any case
/// (see [`crate::http_date`]).
pub fn http_date(bytes: &[u8]) -> Option<SystemTime> {
    crate::http_date::parse(bytes)
}

#[cfg(test)]
mod tests;

//! How stale an entry may be served: `stale-if-error` and `stale-while-revalidate`
//! (RFC 5861), as builder settings and as response directives.
//!
//! A leaf: calls nothing else in the crate.

use std::time::{Duration, SystemTime};

use cache_http::freshness::StoredFreshness;

/// How much staleness a setting allows: none, any, or up to a duration past expiry.
///
/// ```
/// use reqwest_caching::StaleAllowance;
/// use std::time::Duration;
///
/// assert_eq!(StaleAllowance::from(true), StaleAllowance::Any);
/// assert_eq!(StaleAllowance::from(false), StaleAllowance::Off);
/// assert_eq!(StaleAllowance::from(Duration::from_secs(60)), StaleAllowance::Within(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleAllowance {
    /// Never serve stale (the default).
    #[default]
    Off,
    /// Serve an entry however stale.
    Any,
    /// Serve an entry at most this long past its expiry.
    Within(Duration),
}

impl StaleAllowance {
    fn allows(self, staleness: Duration) -> bool {
        match self {
            Self::Off => false,
            Self::Any => true,
            Self::Within(limit) => staleness <= limit,
        }
    }
}

impl From<bool> for StaleAllowance {
    fn from(on: bool) -> Self {
        if on { Self::Any } else { Self::Off }
    }
}

impl From<Duration> for StaleAllowance {
    fn from(limit: Duration) -> Self {
        Self::Within(limit)
    }
}

/// May this stale entry be served, under the named RFC 5861 directive or the builder setting?
///
/// When the cache follows response headers, `must-revalidate`, `no-cache` and
/// `Pragma: no-cache` forbid it whatever else the response says: RFC 9111 §4.2.4 ("a cache
/// MUST NOT generate a stale response if it is prohibited by an explicit in-protocol
/// directive") and §5.2.2.2 ("in all circumstances a cache MUST NOT ignore the
/// must-revalidate directive"). `proxy-revalidate` binds shared caches only (§5.2.2.8), so it
/// does not count here. Otherwise the response's own directive allows staleness up to its
/// limit, and the builder setting is the user's policy for responses that say nothing.
pub(crate) fn stale_allowed(
    entry: &StoredFreshness<'_>,
    now: SystemTime,
    directive: &str,
    setting: StaleAllowance,
    cache_control: bool,
) -> bool {
    if entry.is_fresh(now) {
        return false;
    }
    let staleness = entry.staleness(now);
    if cache_control {
        if entry.forbids_stale() {
            return false;
        }
        if let Some(limit) = entry.directive_seconds(directive) {
            return staleness <= limit;
        }
    }
    setting.allows(staleness)
}

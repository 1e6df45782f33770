//! Whether and until when a response is stored: the user's expiration settings, and with
//! `cache_control` on, the response's and request's own directives first.
//!
//! Precedence (as requests-cache documents it): request `Cache-Control` > response
//! `Cache-Control` / `Expires` > per-request expiration > scope > URL pattern > session.
//!
//! In strict RFC 9111 mode the response's heuristic freshness (RFC 9111 §4.2.2) comes before
//! the user's settings too, and a response with no freshness at all that no setting of the
//! user's covers is stored but stale: it is revalidated (or fetched again) before each use.
//!
//! A leaf: calls nothing else in the crate.

use std::time::{Duration, SystemTime};

use cache_http::Expiration;
use cache_http::freshness::{
    RequestDirectives, ResponseFreshness, corrected_initial_age, fresh_until, response_freshness,
};
use http::{HeaderMap, StatusCode};

/// The expiration chosen by the user's settings, and whether a setting chose it (rather than
/// the session default): explicit settings beat the RFC's Last-Modified heuristic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserExpiration {
    pub(crate) expiration: Expiration,
    pub(crate) explicit: bool,
}

/// Store the response or not, and until when it is fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    Skip,
    Until(Option<SystemTime>),
}

pub(crate) fn storage(
    cache_control: bool,
    strict: bool,
    user: UserExpiration,
    request: Option<&RequestDirectives>,
    status: StatusCode,
    headers: &HeaderMap,
    (now, response_delay): (SystemTime, Duration),
) -> Storage {
    if request.is_some_and(|r| r.no_store) {
        return Storage::Skip;
    }
    let own = if cache_control {
        response_freshness(status, headers, now, strict || !user.explicit)
    } else {
        ResponseFreshness::Unspecified
    };
    match own {
        ResponseFreshness::NoStore => Storage::Skip,
        ResponseFreshness::Lifetime(lifetime) => {
            let initial_age = corrected_initial_age(headers, response_delay, now);
            Storage::Until(Some(fresh_until(now, lifetime, initial_age)))
        }
        // Strict: no freshness information and no setting of the user's: stored, but stale.
        ResponseFreshness::Unspecified if strict && !user.explicit => Storage::Until(Some(now)),
        ResponseFreshness::Unspecified if user.expiration.is_cacheable() => {
            Storage::Until(user.expiration.expires_at(now))
        }
        ResponseFreshness::Unspecified => Storage::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn user(expiration: Expiration, explicit: bool) -> UserExpiration {
        UserExpiration {
            expiration,
            explicit,
        }
    }

    #[test]
    fn precedence() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Received at `now`, its request's travel time nothing.
        let received = (now, Duration::ZERO);
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("max-age=60"));
        let hour = user(Expiration::After(Duration::from_secs(3600)), true);
        // Response directives beat the user's settings, when followed.
        assert_eq!(
            storage(true, false, hour, None, StatusCode::OK, &h, received),
            Storage::Until(Some(now + Duration::from_secs(60)))
        );
        assert_eq!(
            storage(false, false, hour, None, StatusCode::OK, &h, received),
            Storage::Until(Some(now + Duration::from_secs(3600)))
        );
        // Request no-store beats everything.
        let no_store = RequestDirectives {
            no_store: true,
            ..Default::default()
        };
        assert_eq!(
            storage(
                true,
                false,
                hour,
                Some(&no_store),
                StatusCode::OK,
                &h,
                received
            ),
            Storage::Skip
        );
        // Nothing in the response: the user's setting.
        let plain = HeaderMap::new();
        assert_eq!(
            storage(
                true,
                false,
                user(Expiration::DoNotCache, true),
                None,
                StatusCode::OK,
                &plain,
                received
            ),
            Storage::Skip
        );
        assert_eq!(
            storage(
                true,
                false,
                user(Expiration::Never, false),
                None,
                StatusCode::OK,
                &plain,
                received
            ),
            Storage::Until(None)
        );
    }

    #[test]
    fn strict_mode_heuristic_first_then_the_user_then_stale_rfc9111_section_4_2() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Received at `now`, its request's travel time nothing.
        let received = (now, Duration::ZERO);
        let mut modified = HeaderMap::new();
        let date = httpdate::fmt_http_date(now - Duration::from_secs(1000));
        modified.insert("last-modified", HeaderValue::from_str(&date).unwrap());
        let hour = user(Expiration::After(Duration::from_secs(3600)), true);
        let default = user(Expiration::Never, false);
        let plain = HeaderMap::new();
        let ok = StatusCode::OK;
        assert_eq!(
            storage(true, true, hour, None, ok, &modified, received),
            Storage::Until(Some(now + Duration::from_secs(100))),
            "the heuristic beats your setting"
        );
        assert_eq!(
            storage(true, true, hour, None, ok, &plain, received),
            Storage::Until(Some(now + Duration::from_secs(3600))),
            "your setting for a response with no freshness at all"
        );
        assert_eq!(
            storage(true, true, default, None, ok, &plain, received),
            Storage::Until(Some(now)),
            "stored but stale, not Never"
        );
    }

    #[test]
    fn heuristic_only_when_the_user_set_nothing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Received at `now`, its request's travel time nothing.
        let received = (now, Duration::ZERO);
        let mut h = HeaderMap::new();
        let modified = httpdate::fmt_http_date(now - Duration::from_secs(1000));
        h.insert("last-modified", HeaderValue::from_str(&modified).unwrap());
        assert_eq!(
            storage(
                true,
                false,
                user(Expiration::Never, false),
                None,
                StatusCode::OK,
                &h,
                received
            ),
            Storage::Until(Some(now + Duration::from_secs(100)))
        );
        assert_eq!(
            storage(
                true,
                false,
                user(Expiration::Never, true),
                None,
                StatusCode::OK,
                &h,
                received
            ),
            Storage::Until(None)
        );
    }
}

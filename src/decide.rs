//! The decision for a request, given what is stored: serve it, serve it stale while a
//! refresh runs, revalidate it (`Revalidate`, `always_revalidate`), answer `504` (`only-if-cached`), miss without the network (offline,
//! replay), or go to the network. Pure: reads the settings, calls only leaf modules.

use std::time::SystemTime;

use cache_http::freshness::RequestDirectives;
use http::header::{ETAG, LAST_MODIFIED};

use crate::lookup::Found;
use crate::mode::CacheMode;
use crate::settings::Settings;
use crate::stale::stale_allowed;

/// What to do with a request, given what is stored.
pub(crate) enum Decision {
    Serve(Found),
    ServeStaleAndRefresh(Found),
    GatewayTimeout,
    /// Nothing stored, and the mode never sends (`Offline`, `Replay`).
    NothingStored,
    Forward(Option<Found>),
}

/// Serve, revalidate, refetch, or answer 504.
pub(crate) fn decide(
    settings: &Settings,
    mode: CacheMode,
    directives: Option<&RequestDirectives>,
    found: Option<Found>,
    now: SystemTime,
) -> Decision {
    // What the stored filter rejects (now, perhaps under a rule changed since it was stored)
    // is as if nothing were stored: a response fetched anew replaces it.
    let found = match (found, &settings.stored_filter) {
        (Some(found), Some(keep)) if !keep(found.response()) => None,
        (found, _) => found,
    };
    let Some(found) = found else {
        return match mode {
            CacheMode::OnlyIfCached => Decision::GatewayTimeout,
            _ if mode.never_sends() => Decision::NothingStored,
            _ => Decision::Forward(None),
        };
    };
    // Offline and replay: whatever is stored answers, however stale, whatever the request's
    // own directives ask (there is nothing else to answer with).
    if mode.serves_anything_stored() {
        return Decision::Serve(found);
    }
    let freshness = found.freshness();
    let usable = match directives {
        // Strict: a reload (request `max-age`) does not revalidate a fresh immutable
        // response (RFC 8246 §2); a forced one (`no-cache`) still does.
        Some(d) if settings.strict && d.max_age.is_some() && !d.no_cache => {
            let reload = RequestDirectives {
                max_age: None,
                ..*d
            };
            let immutable = freshness.is_fresh(now) && freshness.is_immutable();
            freshness.satisfies(if immutable { &reload } else { d }, now)
        }
        Some(directives) => freshness.satisfies(directives, now),
        None => freshness.is_fresh(now),
    };
    // Immutable responses are not revalidated while fresh, even on reload (RFC 8246). Asked
    // only by the modes that revalidate or refetch: a default hit does not parse the stored
    // `Cache-Control` again.
    let immutable_fresh =
        || settings.cache_control && freshness.is_fresh(now) && freshness.is_immutable();
    // Serving stale while refreshing only when the request itself asks for nothing stricter.
    let may_serve_stale = directives.is_none()
        && stale_allowed(
            &freshness,
            now,
            "stale-while-revalidate",
            settings.stale_while_revalidate,
            settings.cache_control,
        );
    match mode {
        CacheMode::Revalidate if usable && !immutable_fresh() && has_validators(&found) => {
            Decision::Forward(Some(found))
        }
        CacheMode::Default | CacheMode::OnlyIfCached | CacheMode::Revalidate if usable => {
            Decision::Serve(found)
        }
        CacheMode::Refresh if immutable_fresh() => Decision::Serve(found),
        CacheMode::OnlyIfCached => Decision::GatewayTimeout,
        CacheMode::Default | CacheMode::Revalidate if may_serve_stale => {
            Decision::ServeStaleAndRefresh(found)
        }
        _ => Decision::Forward(Some(found)),
    }
}

/// True when the stored response can be revalidated: it has an `ETag` or `Last-Modified`.
fn has_validators(found: &Found) -> bool {
    let headers = &found.response().headers;
    headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED)
}

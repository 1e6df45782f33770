//! The origin confirmed a stored entry with a `304`: merge the `304`'s headers into it, renew
//! its freshness (and its Vary index's), and serve the stored body. Calls
//! [`variants`](crate::variants), [`serve`](crate::serve) and leaf modules.

use std::time::SystemTime;

use cache_core::{EntryMeta, StoredEntry};
use cache_http::vary::parse_vary;
use http::Method;
use reqwest::Response;

use crate::age;
use crate::cache::Cache;
use crate::exchange::Exchange;
use crate::lookup::Found;
use crate::policy::{Storage, storage};
use crate::revalidate::{fits_renewed_head, merge_304_headers};
use crate::serve::{Source, entry_info, serve};
use crate::stored_fields;
use crate::variants::{SeenIndex, renew_index};

/// The response for a request whose stored entry `found` the origin confirmed with
/// `not_modified`; the entry is stored again with its renewed headers and freshness.
pub(crate) async fn refresh_from_304(
    cache: &Cache,
    exchange: &Exchange,
    found: Found,
    not_modified: &Response,
    now: SystemTime,
) -> Response {
    let settings = &cache.settings;
    cache.live.stats.revalidation();
    let (key, body, redirected) = (found.key, found.body.clone(), found.is_redirected());
    let (mut stored_meta, mut response) = found.into_owned();
    // The entry is as new as this 304: the stored Age no longer applies, and a stale Date
    // would make it look old again (RFC 9111 §4.2.3).
    response.headers.remove(http::header::AGE);
    if !not_modified.headers().contains_key(http::header::DATE) {
        if let Some(date) = date_value(now) {
            // Fallible: a stored response may hold every header name `http` allows.
            let _ = response.headers.try_insert(http::header::DATE, date);
        }
    }
    // Strict mode keeps Set-Cookie with the entry, so a 304's replaces the stored one.
    let mut update = not_modified.headers().clone();
    stored_fields::remove_unstored(&mut update);
    // The 304 confirmed the stored response by its tag, weakly compared. A tag written
    // otherwise (nginx's strong `"x"` for the `W/"x"` of a body it compressed) names another
    // representation, weakly equal to the stored one: the stored tag stays, and so do the
    // fields that describe the stored body (its type, coding, language, location).
    let tag = update.get(http::header::ETAG);
    if tag.is_some() && tag != response.headers.get(http::header::ETAG) {
        for name in [
            http::header::ETAG,
            http::header::CONTENT_TYPE,
            http::header::CONTENT_ENCODING,
            http::header::CONTENT_LANGUAGE,
            http::header::CONTENT_LOCATION,
        ] {
            update.remove(name);
        }
    }
    if !settings.strict {
        update.remove(http::header::SET_COOKIE);
    }
    // A 304 may say the response varies on other headers than the stored one did (RFC 9111
    // §4.1): the entry was chosen by the stored list, and renewed it would be served to
    // requests the origin now tells apart. The caller still gets the merged response.
    let stored_vary = update
        .contains_key(http::header::VARY)
        .then(|| parse_vary(&response.headers));
    // A body kept in its file keeps its stored head (see below): a 304 changing how the
    // response may be reused cannot renew it.
    let stored_rules = body.is_some().then(|| reuse_rules(&response.headers));
    merge_304_headers(&mut response.headers, &update);
    let vary_changed = stored_vary.is_some_and(|stored| stored != parse_vary(&response.headers));
    let rules_changed = stored_rules.is_some_and(|stored| stored != reuse_rules(&response.headers));
    stored_fields::remove_unstored(&mut response.headers);
    age::store_initial(&mut response.headers, exchange.response_delay(now), now);
    // Its `Age` is now the corrected initial age: no delay to add again.
    let storage = storage(
        settings.cache_control,
        settings.strict,
        exchange.user,
        exchange.directives.as_ref(),
        response.status,
        &response.headers,
        (now, std::time::Duration::ZERO),
    );
    // A 304 that sets a cookie: the caller gets the cookie (as it would without the cache),
    // the store never does, and unless such responses may be cached the entry is not renewed.
    let sets_cookie = not_modified
        .headers()
        .contains_key(http::header::SET_COOKIE);
    let mut saved = false;
    // Grown past any head a client takes by the fields 304s added: served, not stored again
    // (the entry stays as it was, and the next request revalidates it). A body kept in its
    // file renews only its freshness, never its head: the size does not matter there.
    let fits = body.is_some() || fits_renewed_head(&response.headers);
    if !fits {
        tracing::debug!(url = %exchange.stored_url(), "a 304 grew the stored head too large: entry not renewed");
    }
    let renew = fits
        && !vary_changed
        && !rules_changed
        && (!sets_cookie || settings.cache_set_cookie || settings.strict);
    if vary_changed || rules_changed {
        // Not kept as it is either: the next request stores the response where the new list
        // places it, or with the head that carries the new rules (renewed, a body kept in its
        // file would keep the old ones and be served as they allowed).
        tracing::debug!(url = %exchange.stored_url(), vary_changed, "a 304 changed Vary or the reuse rules of a body in its file: entry removed");
        let store = &cache.live.store;
        store.forget_if_created(&key, stored_meta.created_at).await;
    }
    // The entry may have been written again while the request was out (another client's
    // newer response, or deleted): renewing the one read would put its old body back over
    // that. So it is renewed only if it is still the one read: the store checks and writes
    // in one step (`put_if_created`; a store without that step reads, compares and writes),
    // and renews a body kept in its file likewise.
    let read_created = stored_meta.created_at;
    // Nor when an unsafe request changed the URL while this one was out: the entry read
    // is what that invalidation deleted, or, had the delete failed, what it holds back (see
    // `unfinished_invalidations`), and a renewal would make it new again.
    let url_changed = exchange
        .sent
        .is_some_and(|(_, seen)| cache.live.url_changes.changed_since(seen));
    let renew = renew && !url_changed && matches!(storage, Storage::Until(_));
    if let (Storage::Until(expires_at), true) = (storage, renew) {
        let store = &cache.live.store;
        let is_variant = key != exchange.url_key;
        let meta = EntryMeta::new(key, stored_meta.url.clone(), now, expires_at)
            .with_url_group(Some(settings.keys.url_group(&exchange.url)))
            .with_variant_of(is_variant.then_some(exchange.url_key));
        if body.is_some() {
            // A body kept in its file is not written again for new headers (its signature
            // covers them with the whole body): its freshness and creation are renewed (the
            // age it serves starts over), if it is still the entry the 304 confirmed.
            saved = store
                .renew_body_file(&key, read_created, (now, expires_at))
                .await
                .unwrap_or(false);
            if let (true, Some(body)) = (saved, &body) {
                body.renewed(meta.created_at);
            }
        } else if let Some(value) = store.encode(&response, &key) {
            saved = store
                .save_if_created(StoredEntry::new(meta.clone(), value), read_created)
                .await;
        }
        if saved {
            stored_meta = meta;
            if let SeenIndex::Known(Some(index)) = &exchange.seen {
                renew_index(store, &exchange.url_key, index.meta(), expires_at).await;
            }
        }
    }
    let mut info = entry_info(key, &stored_meta, true, now);
    info.stored = saved;
    if !settings.strict {
        for cookie in not_modified.headers().get_all(http::header::SET_COOKIE) {
            let _ = response
                .headers
                .try_append(http::header::SET_COOKIE, cookie.clone());
        }
    }
    // Its Age was set from the 304 just now, whether or not the entry was stored again.
    let headers = std::mem::take(&mut response.headers);
    serve(
        Source::rebuilt(headers, &response, body, redirected),
        &exchange.url,
        info,
        exchange.method != Method::HEAD,
        (Some(now), now),
    )
}

/// What of a head decides how its response may be reused besides its lifetime (which a
/// renewal recomputes into the entry's expiry): its `Cache-Control` directives but `max-age`
/// and `s-maxage` (`no-cache`, `must-revalidate`, `stale-while-revalidate`, ...), in
/// order of name, and its `Pragma`. A `304` changing them cannot renew an entry whose head
/// is not written again.
fn reuse_rules(headers: &http::HeaderMap) -> Vec<(String, Option<String>)> {
    let directives = cache_http::cache_control::Directives::parse(headers);
    let mut rules: Vec<(String, Option<String>)> = directives
        .iter()
        .filter(|(name, _)| !matches!(*name, "max-age" | "s-maxage"))
        .map(|(name, argument)| (name.to_owned(), argument.map(str::to_owned)))
        .collect();
    rules.sort();
    let pragma = headers.get_all(http::header::PRAGMA).iter();
    rules.extend(pragma.map(|v| {
        (
            "pragma".to_owned(),
            Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        )
    }));
    rules
}

/// `now` as a `Date` value: an HTTP date, clamped to the years one can show (a clock set past
/// year 9999, as a test's or a user's may be, panicked `httpdate`).
fn date_value(now: SystemTime) -> Option<http::HeaderValue> {
    let date = httpdate::fmt_http_date(cache_core::time::clamp_for_display(now));
    http::HeaderValue::from_str(&date).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_date_past_year_9999_is_its_last_second() {
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(date_value(far).unwrap(), "Fri, 31 Dec 9999 23:59:59 GMT");
        let then = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(date_value(then).unwrap(), "Tue, 14 Nov 2023 22:13:20 GMT");
    }
}

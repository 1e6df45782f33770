//! The `Age` header of responses served from the cache (RFC 9111 §4, §5.1): the cache sends
//! its current estimate of the response's age (§4.2.3), never the stale value it stored.
//!
//! The work is split so a hit stays cheap: when a response is stored (or renewed by a `304`),
//! its stored `Age` is set to its initial age (the larger of the received `Age` plus the
//! time its request took, and the apparent age from `Date`), so a hit only adds the time the entry spent in the cache to one
//! small integer, with no date to parse.
//!
//! A leaf: calls nothing else in the crate.

use std::time::{Duration, SystemTime};

use cache_http::freshness::{age_of, corrected_initial_age, initial_age};
use http::HeaderValue;
use http::header::{AGE, Entry, HeaderMap};

/// Sets the stored `Age` to the response's initial age at `response_time`, its request
/// having travelled `response_delay` (see [`corrected_initial_age`]).
pub(crate) fn store_initial(
    headers: &mut HeaderMap,
    response_delay: Duration,
    response_time: SystemTime,
) {
    let age = corrected_initial_age(headers, response_delay, response_time);
    set(headers, age);
}

/// Sets `Age` on a response served from an entry stored at `created_at`: its initial age
/// plus the time since. `stored` is the stored `Age` in seconds when the entry already
/// read it ([`cache_core::Decoded::stored_age`]): the header is then not parsed again.
pub(crate) fn set_current(
    headers: &mut HeaderMap,
    stored: Option<u64>,
    created_at: SystemTime,
    now: SystemTime,
) {
    let resident = now.duration_since(created_at).unwrap_or(Duration::ZERO);
    // The usual case, with one lookup: the stored initial age, replaced where it stands.
    if let Ok(Entry::Occupied(mut line)) = headers.try_entry(AGE) {
        let initial = match stored {
            Some(seconds) => Some(Duration::from_secs(seconds)),
            None => age_of(line.get()),
        };
        if let Some(initial) = initial {
            line.insert(value(initial.saturating_add(resident)));
            return;
        }
    }
    // Stored before the initial age was kept in `Age`, or with an invalid one: the apparent
    // age from `Date` still counts.
    let initial = initial_age(headers, created_at);
    set(headers, initial.saturating_add(resident));
}

fn value(age: Duration) -> HeaderValue {
    match age.as_secs() {
        0 => HeaderValue::from_static("0"),
        secs => HeaderValue::from(secs),
    }
}

fn set(headers: &mut HeaderMap, age: Duration) {
    let value = value(age);
    // Fallible: a stored response may hold every header name `http` allows; then it goes
    // without `Age` rather than panicking.
    let _ = headers.try_insert(AGE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn initial_age_is_kept_and_residence_added() {
        let mut headers = HeaderMap::new();
        headers.insert(AGE, HeaderValue::from_static("30"));
        let date = httpdate::fmt_http_date(at(0) - Duration::from_secs(50));
        headers.insert(http::header::DATE, HeaderValue::from_str(&date).unwrap());
        store_initial(&mut headers, Duration::ZERO, at(0));
        assert_eq!(headers[AGE], "50", "apparent age from Date beats Age");
        set_current(&mut headers, None, at(0), at(7));
        assert_eq!(headers[AGE], "57");
    }

    #[test]
    fn a_list_counts_as_its_first_value_and_legacy_entries_use_date() {
        let mut headers = HeaderMap::new();
        headers.insert(AGE, HeaderValue::from_static("7200, 0"));
        set_current(&mut headers, None, at(0), at(1));
        assert_eq!(headers[AGE], "7201");
        let mut legacy = HeaderMap::new();
        let date = httpdate::fmt_http_date(at(0) - Duration::from_secs(10));
        legacy.insert(http::header::DATE, HeaderValue::from_str(&date).unwrap());
        set_current(&mut legacy, None, at(0), at(5));
        assert_eq!(legacy[AGE], "15");
    }

    /// The stored age an entry read already is taken as it is: the header is not parsed
    /// again (here they disagree, to show which one counts). Without the header, the
    /// stored age is not trusted: the entry changed since it was read.
    #[test]
    fn an_age_the_entry_read_is_not_read_again() {
        let mut headers = HeaderMap::new();
        headers.insert(AGE, HeaderValue::from_static("999"));
        set_current(&mut headers, Some(30), at(0), at(7));
        assert_eq!(headers[AGE], "37");
        let mut without = HeaderMap::new();
        set_current(&mut without, Some(30), at(0), at(7));
        assert_eq!(without[AGE], "7");
    }
}

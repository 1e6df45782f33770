//! Reading HTTP dates (RFC 9110 §5.6.7) as a lenient recipient.
//!
//! All three forms are accepted, with names in any case (`THU`, `aug`, `gmt`), as RFC 9110
//! asks recipients to:
//!
//! - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
//! - RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year that would be more than 50
//!   years in the future is read as the most recent past year with those digits)
//! - asctime: `Sun Nov  6 08:49:37 1994`
//!
//! Small slips senders make are tolerated too: extra spaces, a missing comma, dashes in an
//! IMF-fixdate, a one-digit hour, `UTC` for `GMT`. The weekday is not checked against the
//! date (nothing depends on it). Anything else is `None`, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The time an HTTP date names; `None` when `bytes` is not one. Two-digit years are resolved
/// against the system clock.
pub fn parse(bytes: &[u8]) -> Option<SystemTime> {
    parse_near(bytes, SystemTime::now())
}

/// [`parse`], resolving a two-digit (RFC 850) year against `now`.
pub fn parse_near(bytes: &[u8], now: SystemTime) -> Option<SystemTime> {
    let text = std::str::from_utf8(bytes).ok()?;
    let tokens: Vec<&str> = text
        .split([' ', '\t', ',', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    let (day, month, year, time) = match tokens.as_slice() {
        // IMF-fixdate and RFC 850: weekday, day, month, year, time, zone.
        [weekday, day, month, year, time, zone] if is_weekday(weekday) && is_gmt(zone) => {
            (*day, *month, *year, *time)
        }
        // asctime: weekday, month, day, time, year.
        [weekday, month, day, time, year] if is_weekday(weekday) => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: u32 = digits(day, 1, 2)?;
    let month = month_number(month)?;
    let year = match year.len() {
        2 => resolve_two_digit_year(digits(year, 2, 2)?, now),
        4 => digits(year, 4, 4)?,
        _ => return None,
    };
    let (hour, minute, second) = clock(time)?;
    if !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    // A leap second (:60) reads as the next second's start.
    let seconds = i64::from(hour * 3600 + minute * 60 + second) + days * 86_400;
    Some(match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after),
        // Before 1970: representable on every platform we run on; clamp if not.
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH),
    })
}

fn is_weekday(token: &str) -> bool {
    // Short (`Sun`) or long (`Sunday`) names.
    token.len() >= 3
        && token.is_char_boundary(3)
        && WEEKDAYS.iter().any(|w| token[..3].eq_ignore_ascii_case(w))
        && token.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_gmt(token: &str) -> bool {
    token.eq_ignore_ascii_case("gmt") || token.eq_ignore_ascii_case("utc")
}

fn month_number(token: &str) -> Option<u32> {
    let index = MONTHS.iter().position(|m| token.eq_ignore_ascii_case(m))?;
    u32::try_from(index).ok().map(|i| i + 1)
}

/// `token` as a number, when it is `min..=max` ASCII digits.
fn digits(token: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// `hh:mm:ss` (one-digit hours tolerated).
fn clock(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':');
    let hour = digits(parts.next()?, 1, 2)?;
    let minute = digits(parts.next()?, 2, 2)?;
    let second = digits(parts.next()?, 2, 2)?;
    parts.next().is_none().then_some((hour, minute, second))
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead of `now` is the most recent
/// past year with the same last two digits.
fn resolve_two_digit_year(yy: u32, now: SystemTime) -> u32 {
    let this_year = now
        .duration_since(UNIX_EPOCH)
        .map(|d| 1970 + d.as_secs() / 31_556_952)
        .unwrap_or(1970);
    let this_year = u32::try_from(this_year).unwrap_or(9999);
    let century = this_year - this_year % 100;
    let candidate = century + yy;
    if candidate > this_year + 50 {
        candidate - 100
    } else if candidate + 50 < this_year {
        // e.g. in 2090, "05" is 2105 only if that is within 50 years; 2005 is 85 years back.
        candidate + 100
    } else {
        candidate
    }
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (negative before it).
fn days_since_epoch(year: u32, month: u32, day: u32) -> i64 {
    // Shift the year to start in March, so the leap day is the year's last.
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 1994-11-06 08:49:37 UTC, the RFC's example.
    const EXAMPLE: u64 = 784_111_777;

    fn now() -> SystemTime {
        // 2026-01-01.
        at(1_767_225_600)
    }

    #[test]
    fn the_three_forms_of_rfc_9110_section_5_6_7() {
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_near(text.as_bytes(), now()),
                Some(at(EXAMPLE)),
                "{text}"
            );
        }
    }

    #[test]
    fn names_in_any_case_and_common_slips() {
        for text in [
            "SUN, 06 NOV 1994 08:49:37 gmt",
            "sunday, 06-nov-94 08:49:37 Gmt",
            "sun nov  6 08:49:37 1994",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 06  Nov  1994 08:49:37 GMT",
            "Sun, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        ] {
            assert_eq!(
                parse_near(text.as_bytes(), now()),
                Some(at(EXAMPLE)),
                "{text}"
            );
        }
    }

    #[test]
    fn two_digit_years_stay_within_fifty_years() {
        let date = |yy: &str| {
            parse_near(
                format!("Friday, 01-Jan-{yy} 00:00:00 GMT").as_bytes(),
                now(),
            )
        };
        // From 2026: 2050 is 24 years ahead; 2075 is 49 years ahead (allowed); 2077 would be
        // 51 years ahead, so 1977.
        assert_eq!(
            date("50"),
            parse_near(b"Sat, 01 Jan 2050 00:00:00 GMT", now())
        );
        assert_eq!(
            date("75"),
            parse_near(b"Tue, 01 Jan 2075 00:00:00 GMT", now())
        );
        assert_eq!(
            date("77"),
            parse_near(b"Sat, 01 Jan 1977 00:00:00 GMT", now())
        );
    }

    #[test]
    fn the_epoch_leap_days_and_dates_before_1970() {
        assert_eq!(parse(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(UNIX_EPOCH));
        assert_eq!(
            parse(b"Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(at(1_709_208_000))
        );
        assert_eq!(
            parse(b"Thu, 29 Feb 2023 12:00:00 GMT"),
            None,
            "not a leap year"
        );
        assert_eq!(
            parse(b"Sat, 01 Jan 2000 00:00:00 GMT"),
            Some(at(946_684_800))
        );
        assert_eq!(
            parse(b"Wed, 31 Dec 1969 23:59:59 GMT"),
            UNIX_EPOCH.checked_sub(Duration::from_secs(1))
        );
        assert_eq!(
            parse(b"Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(at(253_402_300_799))
        );
    }

    #[test]
    fn garbage_is_none_and_never_panics() {
        for text in [
            "",
            "0",
            "-1",
            "yesterday",
            "Sun, 06 Nov 1994",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 19945 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sün, 06 Nov 1994 08:49:37 GMT",
            "é",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text}");
        }
        assert_eq!(parse(b"\xff\xfe"), None);
    }
}

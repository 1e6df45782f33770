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
    // The clock is read only for the lenient forms: nearly every date is an IMF-fixdate.
    match imf_fixdate(bytes) {
        Some(fields) => fields.time(),
        None => parse_lenient(bytes, SystemTime::now()),
    }
}

/// [`parse`], resolving a two-digit (RFC 850) year against `now`.
pub fn parse_near(bytes: &[u8], now: SystemTime) -> Option<SystemTime> {
    match imf_fixdate(bytes) {
        Some(fields) => fields.time(),
        None => parse_lenient(bytes, now),
    }
}

/// A date's fields, as read and not yet checked against the calendar.
struct Fields {
    day: u32,
    month: u32,
    year: u32,
    clock: (u32, u32, u32),
}

/// The fields of `bytes` when they are exactly an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`, names in any case, `UTC` for `GMT`): what nearly every server sends, read by
/// position. The lenient reader gives the same fields for such text; this one only skips
/// splitting it into tokens.
fn imf_fixdate(bytes: &[u8]) -> Option<Fields> {
    let b: &[u8; 29] = bytes.try_into().ok()?;
    // ASCII only: then every position below is a character boundary.
    if !b.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(b).ok()?;
    // Fixed widths of ASCII digits: read as they stand, without a general number parser.
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |number, &digit| {
            digit
                .is_ascii_digit()
                .then(|| number * 10 + u32::from(digit - b'0'))
        })
    };
    let fixed = [
        (3, b','),
        (4, b' '),
        (7, b' '),
        (11, b' '),
        (16, b' '),
        (19, b':'),
        (22, b':'),
        (25, b' '),
    ];
    if !fixed.iter().all(|&(at, byte)| b[at] == byte)
        || !is_weekday(&text[..3])
        || !is_gmt(&text[26..])
    {
        return None;
    }
    Some(Fields {
        day: number(5..7)?,
        month: month_number(&text[8..11])?,
        year: number(12..16)?,
        clock: (number(17..19)?, number(20..22)?, number(23..25)?),
    })
}

/// Every form and slip the module accepts, by splitting `bytes` into tokens.
fn parse_lenient(bytes: &[u8], now: SystemTime) -> Option<SystemTime> {
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
    Fields {
        day,
        month,
        year,
        clock: clock(time)?,
    }
    .time()
}

impl Fields {
    /// The time these fields name, when they name a real one.
    fn time(&self) -> Option<SystemTime> {
        let Self {
            day,
            month,
            year,
            clock: (hour, minute, second),
        } = *self;
        if !(1..=days_in_month(year, month)).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
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

    /// The positional reading of IMF-fixdates answers exactly as the lenient reader does, for
    /// dates across four centuries (leap days, the epoch, before it), any case, wrong weekdays,
    /// days past the month's end, out-of-range clocks, `UTC`, and near misses of the format.
    #[test]
    fn fixdates_read_by_position_as_the_lenient_reader_reads_them() {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut checked = 0;
        for year in [1899, 1900, 1969, 1970, 1994, 2000, 2024, 2026, 2100, 2400] {
            for (m, month) in months.iter().enumerate() {
                for day in [0, 1, 9, 28, 29, 30, 31, 32] {
                    for (clock, zone, weekday) in [
                        ("08:49:37", "GMT", "Sun"),
                        ("23:59:60", "gmt", "mon"),
                        ("24:00:00", "UTC", "FRI"),
                        ("00:60:00", "GMT", "Thu"),
                        ("00:00:61", "GMT", "Tue"),
                        ("1a:00:00", "GMT", "Sat"),
                    ] {
                        let month = if m % 2 == 0 {
                            month.to_ascii_uppercase()
                        } else {
                            (*month).to_owned()
                        };
                        for text in [
                            format!("{weekday}, {day:02} {month} {year} {clock} {zone}"),
                            format!("{weekday}, {day:02}-{month}-{year} {clock} {zone}"),
                            format!("{weekday}. {day:02} {month} {year} {clock} {zone}"),
                            format!("{weekday}, {day:02} {month} {year} {clock} EST"),
                            format!("Xyz, {day:02} {month} {year} {clock} {zone}"),
                        ] {
                            assert_eq!(
                                parse_near(text.as_bytes(), now()),
                                parse_lenient(text.as_bytes(), now()),
                                "{text}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
        assert!(imf_fixdate(b"Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        // A two-byte character anywhere in a 29-byte text: no reading inside it, no panic.
        let example = "Sun, 06 Nov 1994 08:49:37 GMT";
        for at in 0..28 {
            let text = format!("{}\u{e9}{}", &example[..at], &example[at + 2..]);
            assert_eq!(text.len(), 29);
            assert!(imf_fixdate(text.as_bytes()).is_none(), "{text}");
            assert_eq!(
                parse_near(text.as_bytes(), now()),
                parse_lenient(text.as_bytes(), now())
            );
        }
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

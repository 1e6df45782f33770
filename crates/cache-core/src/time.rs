//! Timestamps as stores keep them: whole milliseconds since the Unix epoch.
//!
//! Every store rounds to milliseconds, so [`EntryMeta`](crate::EntryMeta) does it up front and
//! an entry reads back exactly as it was written, whatever the backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; times before it clamp to 0, far futures to `i64::MAX`.
pub fn to_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The inverse of [`to_millis`]; negative values clamp to the epoch.
pub fn from_millis(millis: i64) -> SystemTime {
    let millis = u64::try_from(millis).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH)
}

/// `time` rounded down to a whole millisecond.
pub fn truncate_to_millis(time: SystemTime) -> SystemTime {
    from_millis(to_millis(time))
}

/// Until when a store with server-side TTLs keeps an entry: its expiry plus the store's
/// offset (kept that long so it can still be revalidated). `None` means for good: the entry
/// never expires, or the store keeps entries until deleted (no offset).
pub fn retention_deadline(
    expires_at: Option<SystemTime>,
    offset: Option<Duration>,
) -> Option<SystemTime> {
    let (expires_at, offset) = (expires_at?, offset?);
    Some(expires_at.checked_add(offset).unwrap_or(expires_at))
}

/// The last second an HTTP date (RFC 9110) or an RFC 3339 timestamp can show, in seconds
/// since the Unix epoch: 9999-12-31T23:59:59Z (both formats have four-digit years).
pub const LAST_DISPLAYABLE_SECS: u64 = 253_402_300_799;

/// `time` within what an HTTP date or an RFC 3339 timestamp can show, from the Unix epoch to
/// [`LAST_DISPLAYABLE_SECS`], for text written beside a time kept exactly (a file store's
/// dates for people, the CLI's listings). Formatting a time outside that range panics in
/// `httpdate` and fails in `humantime`; an origin's `Expires: Fri, 31 Dec 9999 23:59:60 GMT`
/// gives one.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use cache_core::time::{LAST_DISPLAYABLE_SECS, clamp_for_display};
///
/// let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
/// let last = UNIX_EPOCH + Duration::from_secs(LAST_DISPLAYABLE_SECS);
/// assert_eq!(clamp_for_display(far), last);
/// let now = SystemTime::now();
/// assert_eq!(clamp_for_display(now), now);
/// ```
pub fn clamp_for_display(time: SystemTime) -> SystemTime {
    let last = UNIX_EPOCH + Duration::from_secs(LAST_DISPLAYABLE_SECS);
    time.clamp(UNIX_EPOCH, last)
}

/// True when an entry with this expiry is stale at `now`.
pub fn is_expired(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    expires_at.is_some_and(|t| now >= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(from_millis(-5), UNIX_EPOCH);
        let sub_milli = t + Duration::from_micros(700);
        assert_eq!(truncate_to_millis(sub_milli), t);
    }
}

//! How long a stored response stays fresh, and the clock that decides it.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long a response stays fresh once stored.
///
/// Set session-wide, per URL pattern or per request; the most specific one wins
/// (per request > scope > URL pattern > session). The default is [`Expiration::Never`], as in
/// requests-cache.
///
/// An expired entry is not deleted: it can still be revalidated with the origin (if it has an
/// `ETag` or `Last-Modified`) or listed and removed with `delete_expired`.
///
/// ```
/// use cache_http::Expiration;
/// use std::time::Duration;
///
/// let e: Expiration = Duration::from_secs(60).into();
/// assert_eq!(e, Expiration::After(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Expiration {
    /// Fresh forever.
    #[default]
    Never,
    /// Fresh for this long after it was stored.
    After(Duration),
    /// Fresh until this moment (already stale when stored after it).
    At(SystemTime),
    /// Stored, but stale at once: every use revalidates with the origin first.
    Immediately,
    /// Not stored at all.
    DoNotCache,
}

impl Expiration {
    /// False only for [`Expiration::DoNotCache`].
    pub fn is_cacheable(&self) -> bool {
        !matches!(self, Self::DoNotCache)
    }

    /// When a response stored at `stored_at` stops being fresh; `None` means never.
    ///
    /// For [`Expiration::DoNotCache`] this is `stored_at` (it is never stored anyway).
    pub fn expires_at(&self, stored_at: SystemTime) -> Option<SystemTime> {
        match *self {
            Self::Never => None,
            // A duration too large to add is as good as never.
            Self::After(d) => stored_at.checked_add(d),
            Self::At(t) => Some(t),
            Self::Immediately | Self::DoNotCache => Some(stored_at),
        }
    }
}

impl From<Duration> for Expiration {
    fn from(d: Duration) -> Self {
        Self::After(d)
    }
}

impl From<SystemTime> for Expiration {
    fn from(t: SystemTime) -> Self {
        Self::At(t)
    }
}

/// The source of "now" for freshness decisions. Tests use [`ManualClock`] and never sleep.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: for tests of expiry.
///
/// ```
/// use cache_http::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::starting_now();
/// let before = clock.now();
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(3600));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::time::is_expired;

    #[test]
    fn expiry_of_each_variant() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(Expiration::Never.expires_at(t0), None);
        assert_eq!(
            Expiration::After(Duration::from_secs(5)).expires_at(t0),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(Expiration::At(t0).expires_at(t0), Some(t0));
        assert_eq!(Expiration::Immediately.expires_at(t0), Some(t0));
        assert!(is_expired(Expiration::Immediately.expires_at(t0), t0));
        assert!(!is_expired(Expiration::Never.expires_at(t0), t0));
        assert_eq!(Expiration::After(Duration::MAX).expires_at(t0), None);
        assert!(!Expiration::DoNotCache.is_cacheable());
    }
}

//! Logging a failure that can repeat on every request (a store that is down, an origin that
//! refuses every refresh) without flooding the log: one warning per interval, the rest
//! counted. Calls nothing in the crate.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Lets one warning through per interval and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct WarningLimiter {
    /// Milliseconds since `start` when the last warning went out, plus one (0: never).
    last: AtomicU64,
    suppressed: AtomicU64,
    start: OnceLock<Instant>,
}

impl WarningLimiter {
    const INTERVAL_MS: u64 = 1_000;

    /// `Some(warnings held back since the last one)` when a warning may go out now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let start = *self.start.get_or_init(Instant::now);
        self.allow_at(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn allow_at(&self, elapsed_ms: u64) -> Option<u64> {
        let now = elapsed_ms.saturating_add(1);
        let last = self.last.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= Self::INTERVAL_MS;
        if due
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::WarningLimiter;

    #[test]
    fn one_warning_per_interval_and_the_rest_are_counted() {
        let limiter = WarningLimiter::default();
        assert_eq!(limiter.allow_at(0), Some(0));
        assert_eq!(limiter.allow_at(10), None);
        assert_eq!(limiter.allow_at(999), None);
        assert_eq!(limiter.allow_at(1_000), Some(2), "two held back");
        assert_eq!(limiter.allow_at(1_500), None);
        assert_eq!(limiter.allow_at(2_000), Some(1));
    }
}

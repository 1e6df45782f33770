//! A circuit breaker around the store: after repeated failures the cache stops calling the
//! store for a back-off period, then lets one call probe it. A dead Redis then costs one
//! timeout per period, not one per request.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The store is not called: the breaker is open after repeated failures.
#[derive(Debug, thiserror::Error)]
#[error("cache store skipped: {failures} failures in a row, retrying after a back-off")]
pub struct CircuitOpen {
    failures: u32,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    first_backoff: Duration,
    max_backoff: Duration,
    failures: AtomicU32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    open_until: Option<Instant>,
    backoff: Duration,
    probing: bool,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, first_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            first_backoff,
            max_backoff: max_backoff.max(first_backoff),
            failures: AtomicU32::new(0),
            state: Mutex::new(State {
                open_until: None,
                backoff: first_backoff,
                probing: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May the store be called now? While open, no; once the back-off has passed, one caller
    /// at a time probes.
    pub(crate) fn allow(&self) -> Result<(), CircuitOpen> {
        let failures = self.failures.load(Ordering::Acquire);
        if failures < self.threshold {
            return Ok(());
        }
        let mut state = self.state();
        let waiting = state.open_until.is_some_and(|until| Instant::now() < until);
        if waiting || state.probing {
            return Err(CircuitOpen { failures });
        }
        state.probing = true;
        Ok(())
    }

    /// The store answered: close the breaker.
    pub(crate) fn success(&self) {
        if self.failures.swap(0, Ordering::AcqRel) >= self.threshold {
            let mut state = self.state();
            state.open_until = None;
            state.backoff = self.first_backoff;
            state.probing = false;
        }
    }

    /// The store failed transiently: open the breaker at the threshold, and back off longer
    /// after each failed probe.
    pub(crate) fn failure(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= self.threshold {
            let mut state = self.state();
            state.open_until = Some(Instant::now() + state.backoff);
            state.backoff = (state.backoff * 2).min(self.max_backoff);
            state.probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_at_the_threshold_and_probes_after_the_backoff() {
        let breaker = Breaker::new(3, Duration::from_millis(20), Duration::from_secs(1));
        for _ in 0..3 {
            assert!(breaker.allow().is_ok());
            breaker.failure();
        }
        assert!(breaker.allow().is_err(), "open after 3 failures");
        std::thread::sleep(Duration::from_millis(25));
        assert!(breaker.allow().is_ok(), "one probe after the back-off");
        assert!(breaker.allow().is_err(), "only one probe at a time");
        breaker.failure();
        assert!(
            breaker.allow().is_err(),
            "a failed probe reopens it, for longer"
        );
        std::thread::sleep(Duration::from_millis(45));
        assert!(breaker.allow().is_ok());
        breaker.success();
        assert!(
            breaker.allow().is_ok() && breaker.allow().is_ok(),
            "closed again"
        );
    }
}

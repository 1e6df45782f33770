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

/// Permission to call the store. A probe that is dropped unfinished (its request was
/// cancelled) hands the probe on, so the breaker never stays open for good.
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Permit<'_> {
    /// The store answered.
    pub(crate) fn success(mut self) {
        self.probe = false;
        self.breaker.success();
    }

    /// The store failed transiently.
    pub(crate) fn failure(mut self) {
        let probe = std::mem::take(&mut self.probe);
        self.breaker.failure(probe);
    }

    /// Records how the permitted call ended: only a transient failure (down, timed out)
    /// counts against the store; an answer, even an error such as "too large", does not.
    pub(crate) fn settle<T>(self, result: &Result<T, cache_core::StoreError>) {
        match result {
            Err(error) if error.is_transient() => self.failure(),
            _ => self.success(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.state().probing = false;
        }
    }
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
    pub(crate) fn allow(&self) -> Result<Permit<'_>, CircuitOpen> {
        let failures = self.failures.load(Ordering::Acquire);
        if failures < self.threshold {
            return Ok(Permit {
                breaker: self,
                probe: false,
            });
        }
        let mut state = self.state();
        let waiting = state.open_until.is_some_and(|until| Instant::now() < until);
        if waiting || state.probing {
            return Err(CircuitOpen { failures });
        }
        state.probing = true;
        Ok(Permit {
            breaker: self,
            probe: true,
        })
    }

    fn success(&self) {
        if self.failures.swap(0, Ordering::AcqRel) >= self.threshold {
            let mut state = self.state();
            state.open_until = None;
            state.backoff = self.first_backoff;
            state.probing = false;
        }
    }

    /// Opens the breaker at the threshold; only a failed probe lengthens the back-off, so a
    /// burst of concurrent failures opens it once.
    fn failure(&self, probe: bool) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures < self.threshold {
            return;
        }
        let mut state = self.state();
        if probe {
            state.backoff = state.backoff.saturating_mul(2).min(self.max_backoff);
            state.probing = false;
        } else if state.open_until.is_some() {
            return;
        }
        state.open_until = Instant::now().checked_add(state.backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_at_the_threshold_and_probes_after_the_backoff() {
        let breaker = Breaker::new(3, Duration::from_millis(20), Duration::from_secs(1));
        for _ in 0..3 {
            breaker.allow().unwrap().failure();
        }
        assert!(breaker.allow().is_err(), "open after 3 failures");
        std::thread::sleep(Duration::from_millis(25));
        let probe = breaker.allow().expect("one probe after the back-off");
        assert!(breaker.allow().is_err(), "only one probe at a time");
        probe.failure();
        assert!(
            breaker.allow().is_err(),
            "a failed probe reopens it, for longer"
        );
        std::thread::sleep(Duration::from_millis(45));
        breaker.allow().expect("probe").success();
        assert!(
            breaker.allow().is_ok() && breaker.allow().is_ok(),
            "closed again"
        );
    }

    #[test]
    fn a_cancelled_probe_hands_the_probe_on() {
        let breaker = Breaker::new(1, Duration::from_millis(1), Duration::from_millis(1));
        breaker.allow().unwrap().failure();
        std::thread::sleep(Duration::from_millis(3));
        drop(breaker.allow().expect("probe"));
        assert!(
            breaker.allow().is_ok(),
            "the dropped probe did not keep the breaker open"
        );
    }

    #[test]
    fn huge_backoffs_do_not_overflow() {
        let breaker = Breaker::new(1, Duration::MAX, Duration::MAX);
        breaker.allow().unwrap().failure();
        assert!(breaker.allow().is_ok() || breaker.allow().is_err());
    }
}

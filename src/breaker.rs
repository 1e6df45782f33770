//! A circuit breaker around the store: after repeated failures the cache stops calling the
//! store for a back-off period, then lets one call probe it. A dead Redis then costs one
//! timeout per period, not one per request.
//!
//! The back-off is measured on the cache's [`Clock`], so tests drive it with a
//! [`ManualClock`](cache_http::ManualClock) instead of sleeping.
//!
//! A leaf: calls nothing else in the crate.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use cache_http::Clock;

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
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct State {
    /// When the breaker opened, or its last probe failed; `None` while it has not opened.
    opened_at: Option<SystemTime>,
    backoff: Duration,
    probing: bool,
}

impl State {
    /// True while the back-off since opening runs at `now`. Elapsed time is compared, not a
    /// deadline computed by addition: a back-off too long to add to a clock reading
    /// (`Duration::MAX`) then waits for good instead of overflowing into "no deadline", and a
    /// clock set back lets a probe through rather than stretching the wait.
    fn backing_off(&self, now: SystemTime) -> bool {
        self.opened_at
            .is_some_and(|opened| now.duration_since(opened).is_ok_and(|e| e < self.backoff))
    }
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
    pub(crate) fn new(
        threshold: u32,
        first_backoff: Duration,
        max_backoff: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            threshold: threshold.max(1),
            first_backoff,
            max_backoff: max_backoff.max(first_backoff),
            failures: AtomicU32::new(0),
            state: Mutex::new(State {
                opened_at: None,
                backoff: first_backoff,
                probing: false,
            }),
            clock,
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
        if state.probing || state.backing_off(self.clock.now()) {
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
            state.opened_at = None;
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
        } else if state.opened_at.is_some() {
            return;
        }
        state.opened_at = Some(self.clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_http::ManualClock;

    /// A breaker on a manual clock: the tests move time, they never sleep.
    fn breaker(threshold: u32, first: Duration, max: Duration) -> (Breaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_now());
        let breaker = Breaker::new(threshold, first, max, Arc::clone(&clock) as _);
        (breaker, clock)
    }

    const MS: Duration = Duration::from_millis(1);
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn opens_at_the_threshold_and_probes_after_the_backoff() {
        let (breaker, clock) = breaker(3, SECOND, Duration::from_secs(10));
        for _ in 0..2 {
            breaker.allow().unwrap().failure();
        }
        assert!(breaker.allow().is_ok(), "closed below the threshold");
        breaker.allow().unwrap().failure();
        assert!(breaker.allow().is_err(), "open after 3 failures");
        clock.advance(SECOND - MS);
        assert!(
            breaker.allow().is_err(),
            "still open 1 ms before the back-off ends"
        );
        clock.advance(MS);
        let probe = breaker
            .allow()
            .expect("one probe once the back-off has passed");
        assert!(breaker.allow().is_err(), "only one probe at a time");
        probe.failure();
        assert!(breaker.allow().is_err(), "a failed probe reopens it");
        clock.advance(2 * SECOND - MS);
        assert!(
            breaker.allow().is_err(),
            "the back-off doubled after the failed probe: 2 s"
        );
        clock.advance(MS);
        breaker.allow().expect("probe after 2 s").success();
        assert!(
            breaker.allow().is_ok() && breaker.allow().is_ok(),
            "closed again"
        );
        for _ in 0..3 {
            breaker.allow().unwrap().failure();
        }
        clock.advance(SECOND);
        assert!(
            breaker.allow().is_ok(),
            "a success reset the back-off to the first one"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_the_max() {
        let (breaker, clock) = breaker(1, SECOND, Duration::from_secs(4));
        breaker.allow().unwrap().failure();
        // Each probe fails; the wait before the next one: 1 s, 2 s, 4 s, then 4 s (the max).
        for secs in [1, 2, 4, 4] {
            let backoff = Duration::from_secs(secs);
            clock.advance(backoff - MS);
            assert!(breaker.allow().is_err(), "waits {backoff:?}");
            clock.advance(MS);
            breaker
                .allow()
                .unwrap_or_else(|_| panic!("probes after {backoff:?}"))
                .failure();
        }
    }

    #[test]
    fn a_cancelled_probe_hands_the_probe_on() {
        let (breaker, clock) = breaker(1, MS, MS);
        breaker.allow().unwrap().failure();
        clock.advance(MS);
        drop(breaker.allow().expect("probe"));
        assert!(
            breaker.allow().is_ok(),
            "the dropped probe did not keep the breaker open"
        );
    }

    /// A back-off too long to add to any clock reading used to leave no deadline at all, and
    /// the breaker probed on every call; now it waits (for good, as asked).
    #[test]
    fn huge_backoffs_wait_instead_of_probing() {
        let (breaker, clock) = breaker(1, Duration::MAX, Duration::MAX);
        breaker.allow().unwrap().failure();
        assert!(
            breaker.allow().is_err(),
            "a huge back-off waits: no probe right after the failure"
        );
        clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
        assert!(breaker.allow().is_err(), "still waiting a century later");
    }

    #[test]
    fn a_clock_set_back_lets_a_probe_through() {
        let (breaker, clock) = breaker(1, Duration::from_secs(60), Duration::from_secs(60));
        breaker.allow().unwrap().failure();
        assert!(breaker.allow().is_err());
        clock.set(clock.now() - Duration::from_secs(3600));
        assert!(
            breaker.allow().is_ok(),
            "a clock set back does not stretch the back-off by the jump"
        );
    }
}

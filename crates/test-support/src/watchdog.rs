//! A limit on how long a test may run, enforced from outside the async runtime.
//!
//! A test that deadlocks inside a blocking call (a lock held by a thread that never returns)
//! stalls the runtime's own threads, so no `tokio::time::timeout` fires and the test would
//! hang until CI's limit. The watchdog is a plain thread: past the limit it prints what the
//! test was doing and why it may hang, then aborts the test process, so the run fails in
//! minutes with that explanation.

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// Aborts the process unless dropped within the limit (see [`watchdog`]).
#[must_use = "the watchdog stops watching when this is dropped"]
pub struct Watchdog {
    _done: Sender<()>,
}

/// Starts watching: if the returned [`Watchdog`] is not dropped within `limit`, prints
/// `explanation` and aborts the whole test process (a failure, never a pass).
///
/// ```
/// let _watch = test_support::watchdog(std::time::Duration::from_secs(60), "an example");
/// // ... the test's work; the watch ends when `_watch` is dropped.
/// ```
pub fn watchdog(limit: Duration, explanation: &str) -> Watchdog {
    let (done, finished) = mpsc::channel::<()>();
    let explanation = explanation.to_owned();
    std::thread::Builder::new()
        .name("test-watchdog".into())
        .spawn(move || {
            // Dropping the sender disconnects: the test finished in time.
            if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                // Written to the stream itself: the test harness captures `eprintln!` (in
                // threads a test spawns too) and would lose it with the process.
                let message = format!(
                    "test watchdog: still running after {limit:?}; aborting the test process.\n{explanation}\n"
                );
                let _ = std::io::stderr().write_all(message.as_bytes());
                std::process::abort();
            }
        })
        .expect("start the watchdog thread");
    Watchdog { _done: done }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test that finishes in time is not aborted (the watchdog thread returns).
    #[test]
    fn a_finished_test_is_left_alone() {
        let watch = watchdog(Duration::from_millis(200), "not reached");
        drop(watch);
        std::thread::sleep(Duration::from_millis(400));
    }

    /// Run only by [`a_hung_test_fails_with_the_explanation`], in a child process.
    #[test]
    #[ignore = "hangs on purpose; run in a child process by another test"]
    fn hangs_past_the_limit() {
        let _watch = watchdog(Duration::from_millis(200), "the explanation of the hang");
        std::thread::sleep(Duration::from_secs(30));
    }

    /// A test still running past the limit fails (its process aborts, well before the
    /// sleep it is stuck in ends) and says why.
    #[test]
    fn a_hung_test_fails_with_the_explanation() {
        let started = std::time::Instant::now();
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--ignored",
                "--exact",
                "watchdog::tests::hangs_past_the_limit",
            ])
            .output()
            .expect("run the hanging test");
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(!child.status.success(), "{stderr}");
        assert!(stderr.contains("the explanation of the hang"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

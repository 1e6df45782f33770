//! [`retrying_while_full`]: a bulk write (a copy, a re-keying) that finds its store full
//! waits and tries again a few times before giving up.
//!
//! A store can be full for a moment: SQLite refuses writes while more than its queue limit
//! waits for a writer another task or process holds, Redis at `maxmemory` frees room as
//! keys expire. It can also be full for good (a full disk). A request's write is simply not
//! stored, but a copy of a whole cache stopped midway on such a moment. Waiting out a few
//! seconds covers the first; the second still ends the operation, with the store's error.
//!
//! A leaf: calls nothing else in the crate.

use std::future::Future;
use std::time::Duration;

use cache_core::StoreError;

/// The first wait after a refusal; each next one doubles it.
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// Tries after the first: waits of 10 ms doubling to 1.28 s, about 2.5 s in all.
const RETRIES: u32 = 8;

/// Runs `attempt` until it succeeds or fails otherwise than with [`StoreError::Full`],
/// trying again after a wait while it reports the store full, [`RETRIES`] times at most.
pub(crate) async fn retrying_while_full<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut wait = FIRST_WAIT;
    for _ in 0..RETRIES {
        match attempt().await {
            Err(StoreError::Full { source }) => {
                tracing::debug!(error = %source, ?wait, "store full; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            done => return done,
        }
    }
    attempt().await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn full() -> StoreError {
        StoreError::full(std::io::Error::other("queue full"))
    }

    /// A store full for a moment takes the write once it has room.
    #[tokio::test(start_paused = true)]
    async fn a_moment_full_is_waited_out() {
        let tries = AtomicU32::new(0);
        let written = retrying_while_full(|| async {
            match tries.fetch_add(1, Ordering::Relaxed) {
                0..3 => Err(full()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(written.unwrap(), 7);
        assert_eq!(tries.load(Ordering::Relaxed), 4);
    }

    /// A store full for good ends it with its error after the last try, about 2.5 s on.
    #[tokio::test(start_paused = true)]
    async fn full_for_good_gives_up() {
        let tries = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let written: Result<(), _> = retrying_while_full(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(full())
        })
        .await;
        assert!(matches!(written, Err(StoreError::Full { .. })));
        assert_eq!(tries.load(Ordering::Relaxed), RETRIES + 1);
        assert_eq!(started.elapsed(), Duration::from_millis(2550));
    }

    /// Any other failure ends it at once.
    #[tokio::test(start_paused = true)]
    async fn other_failures_are_not_tried_again() {
        let tries = AtomicU32::new(0);
        let written: Result<(), _> = retrying_while_full(|| async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(StoreError::backend("broken"))
        })
        .await;
        assert!(matches!(written, Err(StoreError::Backend { .. })));
        assert_eq!(tries.load(Ordering::Relaxed), 1);
    }
}

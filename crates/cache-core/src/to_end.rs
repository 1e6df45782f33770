//! [`run_to_end`]: steps a store must finish once it has begun them, whoever stops waiting.
//!
//! A store whose write takes several requests (a Redis Cluster's entry and its URL group
//! set, a value in chunks and the entry naming them) leaves something behind when its
//! caller stops waiting between two of them: the middleware's time limit drops the call's
//! future wherever it is. An entry listed nowhere, or chunks left to expire under a live
//! entry, read as misses for good. Such steps run on a task of their own.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use crate::StoreError;

/// How long work run to its end may take before it is given up: far past any store's time
/// limit (its caller stopped waiting long before), only so that a server that never answers
/// leaves no task behind for good.
pub const RUN_TO_END_LIMIT: Duration = Duration::from_secs(60);

/// Runs `work` on a task of its own, in the current span, and waits for it: it runs to its
/// end even when the caller stops waiting, within [`RUN_TO_END_LIMIT`]
/// ([`StoreError::Timeout`] past it). A panic in `work` is the caller's again; a runtime
/// shutting down under it is [`StoreError::Unavailable`].
///
/// # Panics
///
/// Outside a Tokio runtime (every store's driver needs one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let answer = cache_core::to_end::run_to_end(async { Ok(7) }).await;
/// assert_eq!(answer.unwrap(), 7);
/// # }
/// ```
pub async fn run_to_end<T, W>(work: W) -> Result<T, StoreError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let bounded = async move {
        tokio::time::timeout(RUN_TO_END_LIMIT, work)
            .await
            .unwrap_or(Err(StoreError::Timeout(RUN_TO_END_LIMIT)))
    };
    match tokio::spawn(bounded.in_current_span()).await {
        Ok(done) => done,
        Err(stopped) if stopped.is_panic() => std::panic::resume_unwind(stopped.into_panic()),
        Err(stopped) => Err(StoreError::unavailable(stopped)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// The caller's future dropped midway, the work still ends.
    #[tokio::test]
    async fn work_ends_when_its_caller_stops_waiting() {
        let ended = Arc::new(AtomicBool::new(false));
        let (started, go_on) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let work = {
            let (ended, started, go_on) = (ended.clone(), started.clone(), go_on.clone());
            async move {
                started.notify_one();
                go_on.notified().await;
                ended.store(true, Ordering::SeqCst);
                Ok(())
            }
        };
        let caller = tokio::spawn(run_to_end(work));
        started.notified().await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        go_on.notify_one();
        for _ in 0..100 {
            if ended.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the work stopped with its caller");
    }

    /// A panic in the work is the caller's.
    #[tokio::test]
    #[should_panic(expected = "broke")]
    async fn a_panic_is_the_caller_s() {
        let _ = run_to_end(async {
            panic!("broke");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await;
    }
}

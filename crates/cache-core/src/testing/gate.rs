//! [`Gate`]: a place in a store's code where a test holds one call, to cut its caller there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// A place in a store's code (a `#[cfg(test)]` field, passed with [`Gate::pass`]) where a
/// test holds the next call: it waits until the call is there, acts (cuts the caller, as a
/// time limit drops its future), then lets the call go on. Unarmed, passing costs a lock.
#[derive(Debug, Default)]
pub struct Gate {
    armed: Mutex<Option<Arc<Held>>>,
}

#[derive(Debug, Default)]
struct Held {
    reached: Notify,
    release: Notify,
}

/// The test's side of an armed [`Gate`].
#[derive(Debug)]
pub struct ArmedGate(Arc<Held>);

impl Gate {
    /// Arms the gate for the next call that passes it (that one only).
    pub fn arm(&self) -> ArmedGate {
        let held = Arc::new(Held::default());
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&held));
        ArmedGate(held)
    }

    /// The store's side: waits here while the gate is armed for this call, else goes on.
    pub async fn pass(&self) {
        let held = self.armed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(held) = held {
            held.reached.notify_one();
            held.release.notified().await;
        }
    }
}

impl ArmedGate {
    /// Waits until the call is at the gate (30 s at most: a call that failed before it
    /// never comes, and the test fails rather than hang).
    ///
    /// # Panics
    ///
    /// When no call came.
    pub async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.0.reached.notified())
            .await
            .expect("the call reached the gate (it failed before?)");
    }

    /// Lets the call held at the gate go on (its caller still waiting for it).
    pub fn release(&self) {
        self.0.release.notify_one();
    }

    /// Cuts `caller` (the task awaiting the call, held at the gate) as a time limit would,
    /// then lets the call go on: what the store runs to its end goes on without it.
    ///
    /// # Panics
    ///
    /// When `caller` had ended before it could be cut.
    pub async fn cut<T>(&self, caller: tokio::task::JoinHandle<T>) {
        caller.abort();
        assert!(
            caller.await.is_err_and(|stopped| stopped.is_cancelled()),
            "the caller was cut at the gate"
        );
        self.release();
    }
}

//! Scenarios for stores that write a chunked value's chunks first, with a provisional
//! retention, then the entry, then give the chunks the entry's retention (DynamoDB,
//! MongoDB): whatever cuts or races come between, the chunks go with their entry.

use std::future::Future;
use std::time::{Duration, SystemTime};

use super::{Gate, entry, key};
use crate::CacheStore;

/// When an entry and its chunks go, as a store's test reads them from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The entry's deletion time (`Some(None)`: never); `None` when there is no entry.
    pub entry: Option<Option<SystemTime>>,
    /// Each chunk's deletion time (`None`: never).
    pub chunks: Vec<Option<SystemTime>>,
}

impl Retention {
    /// True when the entry is there and its `chunks` chunks go when it does.
    pub fn chunks_follow_entry(&self, chunks: usize) -> bool {
        self.entry.is_some_and(|entry| {
            self.chunks.len() == chunks && self.chunks.iter().all(|at| *at == entry)
        })
    }
}

/// How long a write's value lives ([`chunks_follow_cut_writes_and_renewals`]).
const DAY: Duration = Duration::from_secs(24 * 3600);
/// How long a renewal makes it live.
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// A write of a value of `len` bytes (`chunks` chunks) under [`key`]`(1)`, fresh for a day,
/// its caller cut at `settle_gate` (held before the entry's request: it may still land),
/// then a renewal for a week cut the same way: after each, the entry and its chunks end up
/// with one deletion time (polled for 2 s at most), the renewal's a new one. `read` gives
/// what the server holds.
///
/// # Panics
///
/// When they do not.
pub async fn chunks_follow_cut_writes_and_renewals<S, F, Fut>(
    store: &S,
    settle_gate: &Gate,
    len: usize,
    chunks: usize,
    read: F,
) where
    S: CacheStore + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Retention>,
{
    let gate = settle_gate.arm();
    let putting = spawn_write(store, len, SystemTime::now() + DAY);
    gate.reached().await;
    gate.cut(putting).await;
    let written = settled(&read, |times| times.chunks_follow_entry(chunks)).await;
    assert!(
        written.chunks_follow_entry(chunks),
        "the chunks kept another deletion time than their entry's: {written:?}"
    );

    // A renewal cut the same way (the entry's life extended by a week) moves them too: they
    // kept the day (or the entry did), and went a week before their entry.
    let gate = settle_gate.arm();
    let week = Some(SystemTime::now() + WEEK);
    let renewing = tokio::spawn({
        let store = store.clone();
        async move { store.set_expiry(&key(1), week).await }
    });
    gate.reached().await;
    gate.cut(renewing).await;
    let renewed =
        |times: &Retention| times.entry != written.entry && times.chunks_follow_entry(chunks);
    let times = settled(&read, renewed).await;
    assert!(
        renewed(&times),
        "after the renewal (the entry's time was {:?} before), the entry or its chunks did not take the new time: {times:?}",
        written.entry
    );
}

/// A task writing a value of `len` bytes under [`key`]`(1)`, fresh until `expires_at`.
fn spawn_write<S>(
    store: &S,
    len: usize,
    expires_at: SystemTime,
) -> tokio::task::JoinHandle<Result<(), crate::StoreError>>
where
    S: CacheStore + Clone + 'static,
{
    let big = entry(1, bytes::Bytes::from(vec![5u8; len]), Some(expires_at));
    let store = store.clone();
    tokio::spawn(async move { store.put(big).await })
}

/// What `read` gives once `done` holds of it, or after 100 tries 20 ms apart.
async fn settled<F, Fut>(read: &F, done: impl Fn(&Retention) -> bool) -> Retention
where
    F: Fn() -> Fut,
    Fut: Future<Output = Retention>,
{
    let mut times = read().await;
    for _ in 0..100 {
        if done(&times) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        times = read().await;
    }
    times
}

/// A renewal landing while the write that made the chunks is still settling them: writes a
/// value of `len` bytes (`chunks` chunks) under [`key`]`(1)`, fresh for a day, and while the
/// write's chunk updates wait at `chunks_gate` (held before them), renews the entry for a
/// week; once the write has ended, the entry and its chunks should go in a week, together
/// (the write's older time landed last, and the chunks went six days before their entry).
/// `read` gives what the server holds.
///
/// # Panics
///
/// When the write or the renewal fails, or the chunks do not follow the renewal.
pub async fn chunks_follow_a_renewal_landing_as_a_write_settles<S, F, Fut>(
    store: &S,
    chunks_gate: &Gate,
    len: usize,
    chunks: usize,
    read: F,
) where
    S: CacheStore + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Retention>,
{
    let gate = chunks_gate.arm();
    let day = SystemTime::now() + DAY;
    let putting = spawn_write(store, len, day);
    // The entry is written; its chunks' updates wait.
    gate.reached().await;
    let renewed = store
        .set_expiry(&key(1), Some(SystemTime::now() + WEEK))
        .await;
    assert!(renewed.expect("renewed"), "the entry was there to renew");
    gate.release();
    putting.await.expect("the write's task").expect("written");
    let times = read().await;
    let renewed_to = times.entry.flatten();
    assert!(
        renewed_to.is_some_and(|at| at > day + DAY),
        "renewed: {times:?}"
    );
    assert!(
        times.chunks_follow_entry(chunks),
        "the chunks kept another deletion time than their entry's: {times:?}"
    );
}

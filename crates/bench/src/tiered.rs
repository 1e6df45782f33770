//! The memory tier over Redis: the store for the hit rows, and the invalidation latency
//! between two processes.
//!
//! `tiered-invalidation [writes]`: this process writes one key through Redis `writes` times;
//! a second process (this binary again, as [`CHILD`]) holds the key in its memory tier and
//! reports when each write's notice dropped it. Latency: from just before the writer's `put`
//! to the moment the reader's copy is gone (both clocks are the machine's wall clock).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use reqwest_caching::{
    CacheKey, CacheStore, EntryMeta, RedisInvalidations, RedisStore, StoredEntry, TieredStore,
};

use crate::measure::{micros, stats};

/// The argument that makes this binary the reading process.
pub(crate) const CHILD: &str = "tiered-invalidation-child";

/// Our Redis store behind the memory tier, with Redis invalidations.
pub(crate) async fn over_redis(url: &str, prefix: &str) -> TieredStore {
    let redis = RedisStore::builder()
        .prefix(prefix)
        .open(url)
        .await
        .expect("redis");
    let invalidations = RedisInvalidations::for_store(&redis, url).expect("redis url");
    TieredStore::builder(redis)
        .invalidations(invalidations)
        .build()
        .await
        .expect("subscribe to invalidations")
}

fn key() -> CacheKey {
    CacheKey::from_digest([42; 16])
}

fn entry(version: usize) -> StoredEntry {
    let meta = EntryMeta::new(key(), "https://example.com/", SystemTime::now(), None);
    StoredEntry::new(meta, Bytes::from(format!("version {version}")))
}

fn in_memory(store: &TieredStore) -> bool {
    store
        .memory()
        .get(&key())
        .now_or_never()
        .and_then(Result::ok)
        .flatten()
        .is_some()
}

fn nanos_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// The writer: `writes` puts, each once the reader holds the key in memory.
pub(crate) async fn invalidation(writes: usize) {
    let Some(redis) = crate::Redis::find() else {
        return;
    };
    let url = redis.url();
    let prefix = test_support::unique_namespace("bench-invalidation");
    let writer = RedisStore::builder()
        .prefix(&prefix)
        .open(&url)
        .await
        .expect("redis");
    writer.put(entry(0)).await.expect("put");
    let mut reader = Command::new(std::env::current_exe().expect("this binary"))
        .args([CHILD, &url, &prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the reading process");
    let mut lines = BufReader::new(reader.stdout.take().expect("stdout")).lines();
    let mut next = || {
        lines
            .next()
            .and_then(Result::ok)
            .expect("the reader answers")
    };
    let mut samples = Vec::with_capacity(writes);
    for version in 1..=writes {
        assert_eq!(next(), "holding", "the reader filled its memory");
        let before = nanos_now();
        writer.put(entry(version)).await.expect("put");
        let dropped: u128 = next().parse().expect("the reader's drop time");
        let nanos = u64::try_from(dropped.saturating_sub(before)).unwrap_or(u64::MAX);
        samples.push(Duration::from_nanos(nanos));
    }
    drop(reader.stdin.take());
    let _ = reader.wait();
    let sorted = {
        let mut s = samples.clone();
        s.sort_unstable();
        s
    };
    let result = stats(samples);
    println!(
        "\ninvalidation reaching a second process over Redis on loopback ({writes} writes): \
         p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (target p99 ≤ 20,000 µs: {})",
        micros(result.median),
        micros(result.p99),
        micros(*sorted.last().unwrap_or(&Duration::ZERO)),
        if result.p99 <= Duration::from_millis(20) {
            "pass"
        } else {
            "FAIL"
        }
    );
}

/// The reader: fills its memory with the key, says so, waits for the copy to go, prints
/// when, and again until stdin closes.
pub(crate) async fn child(args: &[String]) {
    let (Some(url), Some(prefix)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: {CHILD} URL PREFIX");
        return;
    };
    let store = over_redis(url, prefix).await;
    let stdout = std::io::stdout();
    let (tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    // Stdin closing ends the run.
    std::thread::spawn(move || {
        let _ = std::io::stdin().lock().lines().count();
        let _ = tx.send(());
    });
    loop {
        // Fill: read through until the copy is in memory (a notice of the last write may
        // still be on its way and drop the first fill).
        while !in_memory(&store) {
            store.get(&key()).await.expect("get");
        }
        writeln!(stdout.lock(), "holding").expect("stdout");
        while in_memory(&store) {
            if closed.try_recv().is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
        writeln!(stdout.lock(), "{}", nanos_now()).expect("stdout");
    }
}

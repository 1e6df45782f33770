//! The backend conformance suite: what "a working [`CacheStore`]" means.
//!
//! Each scenario is a public async function over a [`StoreUnderTest`]; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro expands one
//! `#[tokio::test]` per scenario for a backend, given a factory that makes a fresh,
//! empty store (its own file, prefix, table or database) per test. Every backend crate calls
//! the macro against a real store; none of them copies a scenario.
//!
//! ```text
//! cache_core::store_conformance_tests!(|| async {
//!     cache_core::testing::StoreUnderTest::new(std::sync::Arc::new(cache_core::MemoryStore::new()))
//! });
//! ```

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::codec::EntryCodec;
use crate::fixtures::base_time;
use crate::store::get_entry;
use crate::time::truncate_to_millis;
use crate::{CacheKey, CacheStore, Decoded, EntryMeta, StoreError, StoredEntry, codec};

mod chunk_retention;
mod gate;

pub use chunk_retention::{
    Retention, chunks_follow_a_renewal_landing_as_a_write_settles,
    chunks_follow_cut_writes_and_renewals,
};
pub use gate::{ArmedGate, Gate};

type Reopen =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn CacheStore>> + Send>> + Send + Sync>;

/// A fresh store for one scenario, and what it needs to stay alive.
pub struct StoreUnderTest {
    /// The store.
    pub store: Arc<dyn CacheStore>,
    reopen: Option<Reopen>,
    retention: Option<Duration>,
    shared_within: Duration,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl StoreUnderTest {
    /// Wraps a store.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self {
            store,
            reopen: None,
            retention: None,
            shared_within: Duration::ZERO,
            _guard: None,
        }
    }

    /// Keeps `guard` (a temporary directory, a server handle) alive as long as the store.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// For stores that drop entries by themselves (server-side TTLs): how long past its
    /// expiry an entry is kept. The retention scenario then checks that nothing is read past it.
    #[must_use]
    pub fn with_retention(mut self, retention_after_expiry: Duration) -> Self {
        self.retention = Some(retention_after_expiry);
        self
    }

    /// How to open a second, independent instance over the same data (same file, server and
    /// namespace), for the scenarios where two instances share entries.
    #[must_use]
    pub fn with_reopen<F, Fut>(mut self, reopen: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Arc<dyn CacheStore>> + Send + 'static,
    {
        self.reopen = Some(Box::new(move || Box::pin(reopen())));
        self
    }

    /// For stores whose writes reach a second instance only once committed, some time after
    /// the write returns (SQLite's commit delay): how long that may take. The scenarios
    /// reading through a second instance then wait for the write (at most `delay` plus a
    /// margin for a loaded machine) rather than expect it at once.
    #[must_use]
    pub fn with_shared_within(mut self, delay: Duration) -> Self {
        self.shared_within = delay;
        self
    }
}

/// The first of `read`'s answers equal to `expected`, asked again until `within` (and a
/// margin of 10 s for a loaded machine) has passed: what a second instance reads of a write
/// it sees only once committed. Without a delay, `read`'s first answer.
async fn read_once_shared<F, Fut>(
    within: Duration,
    expected: &Option<StoredEntry>,
    mut read: F,
) -> Option<StoredEntry>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<StoredEntry>>,
{
    let deadline = std::time::Instant::now() + within + Duration::from_secs(10);
    loop {
        let found = read().await;
        if within.is_zero() || &found == expected || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Expands one `#[tokio::test]` per conformance scenario. The argument is an expression
/// callable with no arguments that returns a future of a [`StoreUnderTest`].
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@each $factory;
            get_missing_is_none,
            put_then_get_round_trips,
            put_overwrites,
            delete_reports_whether_it_removed,
            entries_count_and_clear_beyond_one_page,
            delete_expired_keeps_fresh_entries,
            delete_expired_spares_entries_rewritten_meanwhile,
            delete_if_created_spares_a_rewrite,
            put_if_created_writes_over_the_entry_read_only,
            put_if_created_lets_one_of_racing_renewals_win,
            set_expiry_changes_only_expiry,
            set_expiry_never_undoes_a_racing_write,
            expired_entries_stay_readable,
            retention_is_honoured_at_read,
            empty_value,
            one_mebibyte_value,
            twenty_mebibyte_value,
            unicode_urls,
            concurrent_writers_same_key,
            concurrent_writers_different_keys,
            second_instance_sees_entries,
            corrupt_value_is_a_miss_and_deleted,
            corrupt_value_rewritten_after_the_read_stays,
            decoded_reads_agree,
            pair_reads_agree,
            works_as_arc_dyn,
            url_groups_are_indexed,
            url_group_of_many_entries,
        );
    };
    (@each $factory:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let under_test = ($factory)().await;
                $crate::testing::$scenario(&under_test).await;
            }
        )*
    };
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e:?}"),
    }
}

/// `get` of a key never written is `None`.
pub async fn get_missing_is_none(t: &StoreUnderTest) {
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), None);
}

/// What `put` stores, `get` returns exactly: metadata and bytes.
pub async fn put_then_get_round_trips(t: &StoreUnderTest) {
    let written = entry(
        1,
        Bytes::from_static(b"value \x00\xff bytes"),
        Some(base_time() + Duration::from_secs(60)),
    );
    ok(t.store.put(written.clone()).await, "put");
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), Some(written));
    let never = entry(2, Bytes::from_static(b"v"), None);
    ok(t.store.put(never.clone()).await, "put");
    assert_eq!(ok(t.store.get(&key(2)).await, "get"), Some(never));
}

/// A second `put` under the same key replaces value and metadata.
pub async fn put_overwrites(t: &StoreUnderTest) {
    ok(
        t.store
            .put(entry(1, Bytes::from_static(b"first"), None))
            .await,
        "put",
    );
    let second = entry(
        1,
        Bytes::from_static(b"second"),
        Some(base_time() + Duration::from_secs(1)),
    );
    ok(t.store.put(second.clone()).await, "put");
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), Some(second));
    assert_eq!(ok(t.store.count().await, "count"), 1);
}

/// `delete` removes the entry and says whether there was one.
pub async fn delete_reports_whether_it_removed(t: &StoreUnderTest) {
    ok(
        t.store.put(entry(1, Bytes::from_static(b"x"), None)).await,
        "put",
    );
    assert!(ok(t.store.delete(&key(1)).await, "delete"));
    assert!(!ok(t.store.delete(&key(1)).await, "delete again"));
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), None);
}

/// Listing, counting and clearing see every entry, past any page size (1,100 entries).
pub async fn entries_count_and_clear_beyond_one_page(t: &StoreUnderTest) {
    const N: u64 = 1_100;
    let writes = (0..N).map(|n| t.store.put(entry(n, Bytes::from(n.to_string()), None)));
    for result in futures_util::future::join_all(writes).await {
        ok(result, "put");
    }
    assert_eq!(ok(t.store.count().await, "count"), N);
    let mut listed = ok(
        crate::store::collect_keys(t.store.entries(), |_| true).await,
        "entries",
    );
    listed.sort();
    let mut expected: Vec<CacheKey> = (0..N).map(key).collect();
    expected.sort();
    assert_eq!(listed, expected, "entries() lists each entry once");
    assert_eq!(ok(t.store.clear().await, "clear"), N);
    assert_eq!(ok(t.store.count().await, "count"), 0);
    assert_eq!(ok(t.store.get(&key(7)).await, "get"), None);
}

/// `delete_expired` removes exactly the entries stale at the given time.
pub async fn delete_expired_keeps_fresh_entries(t: &StoreUnderTest) {
    let now = base_time() + Duration::from_secs(100);
    ok(
        t.store
            .put(entry(
                1,
                Bytes::from_static(b"stale"),
                Some(now - Duration::from_secs(1)),
            ))
            .await,
        "put",
    );
    ok(
        t.store
            .put(entry(2, Bytes::from_static(b"exact"), Some(now)))
            .await,
        "put",
    );
    ok(
        t.store
            .put(entry(
                3,
                Bytes::from_static(b"fresh"),
                Some(now + Duration::from_secs(1)),
            ))
            .await,
        "put",
    );
    ok(
        t.store
            .put(entry(4, Bytes::from_static(b"never"), None))
            .await,
        "put",
    );
    assert_eq!(ok(t.store.delete_expired(now).await, "delete_expired"), 2);
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), None);
    assert_eq!(ok(t.store.get(&key(2)).await, "get"), None);
    assert!(ok(t.store.get(&key(3)).await, "get").is_some());
    assert!(ok(t.store.get(&key(4)).await, "get").is_some());
}

/// `delete_expired` removes only what is expired when it removes it: entries rewritten fresh
/// while it runs (after it listed them as expired) stay, and the others go. It runs beside
/// the rewrites (of every other entry), over enough entries that a store listing first and
/// deleting after meets them in between.
pub async fn delete_expired_spares_entries_rewritten_meanwhile(t: &StoreUnderTest) {
    const N: u64 = 60;
    // Wall-clock times: stores that drop entries some time past expiry keep these.
    let now = SystemTime::now();
    let (stale, fresh) = (
        now - Duration::from_secs(1),
        now + Duration::from_secs(86_400),
    );
    for n in 0..N {
        let old = entry(n, Bytes::from_static(b"stale"), Some(stale));
        ok(t.store.put(old).await, "put");
    }
    let rewrites = async {
        for n in (0..N).step_by(2) {
            let new = entry(n, Bytes::from_static(b"fresh"), Some(fresh));
            ok(t.store.put(new).await, "put");
            tokio::task::yield_now().await;
        }
    };
    let (removed, ()) = tokio::join!(t.store.delete_expired(now), rewrites);
    let removed = ok(removed, "delete_expired");
    let found: Vec<Option<Bytes>> = futures_util::future::join_all(
        (0..N).map(|n| async move { ok(t.store.get(&key(n)).await, "get").map(|e| e.value) }),
    )
    .await;
    let lost: Vec<u64> = (0..N)
        .step_by(2)
        .filter(|n| found[*n as usize].as_deref() != Some(b"fresh"))
        .collect();
    assert!(
        lost.is_empty(),
        "entries rewritten fresh while delete_expired ran were deleted: {lost:?}"
    );
    let kept: Vec<u64> = (1..N)
        .step_by(2)
        .filter(|n| found[*n as usize].is_some())
        .collect();
    assert!(kept.is_empty(), "expired entries left: {kept:?}");
    assert!(
        (N / 2..=N).contains(&removed),
        "delete_expired counted {removed}"
    );
}

/// `delete_if_created` deletes the entry written at the given time and nothing written
/// since: a rewrite under the key stays, then goes when its own time is given; a missing key
/// is `false`.
pub async fn delete_if_created_spares_a_rewrite(t: &StoreUnderTest) {
    let first = SystemTime::now() - Duration::from_secs(10);
    let second = first + Duration::from_millis(1_500);
    let written = |body: &'static [u8], created_at| {
        let mut entry = entry(1, Bytes::from_static(body), None);
        entry.meta.created_at = created_at;
        entry
    };
    ok(t.store.put(written(b"first", first)).await, "put");
    ok(t.store.put(written(b"second", second)).await, "put");
    assert!(
        !ok(
            t.store.delete_if_created(&key(1), first).await,
            "delete_if_created"
        ),
        "the rewrite was deleted under the first write's time"
    );
    let kept = ok(t.store.get(&key(1)).await, "get").expect("the rewrite stays");
    assert_eq!(kept.value, Bytes::from_static(b"second"));
    assert!(ok(
        t.store.delete_if_created(&key(1), second).await,
        "delete_if_created"
    ));
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), None);
    assert!(!ok(
        t.store.delete_if_created(&key(2), second).await,
        "delete_if_created of a missing key"
    ));
}

/// `put_if_created` writes over the entry stored at the given time only: over a rewrite
/// it writes nothing and the rewrite stays; over the rewrite's own time it writes; a missing
/// key is `false` and stays missing.
pub async fn put_if_created_writes_over_the_entry_read_only(t: &StoreUnderTest) {
    let first = SystemTime::now() - Duration::from_secs(10);
    let second = first + Duration::from_millis(1_500);
    let renewed_at = second + Duration::from_secs(2);
    let written = |n, body: &'static [u8], created_at| {
        let mut entry = entry(n, Bytes::from_static(body), None);
        entry.meta.created_at = created_at;
        entry.meta.url_group = Some(group(1));
        entry
    };
    ok(t.store.put(written(1, b"first", first)).await, "put");
    ok(t.store.put(written(1, b"second", second)).await, "put");
    assert!(
        !ok(
            t.store
                .put_if_created(written(1, b"renewed", renewed_at), first)
                .await,
            "put_if_created"
        ),
        "written over the rewrite under the first write's time"
    );
    let kept = ok(t.store.get(&key(1)).await, "get").expect("the rewrite stays");
    assert_eq!(kept.value, Bytes::from_static(b"second"));
    let renewed = written(1, b"renewed", renewed_at);
    assert!(ok(
        t.store.put_if_created(renewed.clone(), second).await,
        "put_if_created"
    ));
    let read = ok(t.store.get(&key(1)).await, "get").expect("renewed");
    assert_eq!(read.value, renewed.value);
    assert_eq!(
        truncate_to_millis(read.meta.created_at),
        truncate_to_millis(renewed_at)
    );
    let listed = ok(t.store.entries_for_url(&group(1)).await, "entries_for_url");
    assert!(
        listed.iter().any(|meta| meta.key == key(1)
            && truncate_to_millis(meta.created_at) == truncate_to_millis(renewed_at)),
        "the renewed entry is not listed under its URL: {listed:?}"
    );
    assert!(!ok(
        t.store
            .put_if_created(written(2, b"never", renewed_at), second)
            .await,
        "put_if_created of a missing key"
    ));
    assert_eq!(
        ok(t.store.get(&key(2)).await, "get"),
        None,
        "a missing key was written"
    );
}

/// Of renewals racing to write over one entry, each made from the same read, one writes and
/// the others find it gone: the check and the write are one step. (Read, compared and put
/// apart, as the trait's default does, several may each find the entry read and write.)
pub async fn put_if_created_lets_one_of_racing_renewals_win(t: &StoreUnderTest) {
    const RACERS: u64 = 16;
    let read_at = base_time();
    ok(
        t.store
            .put(entry(1, Bytes::from_static(b"read"), None))
            .await,
        "put",
    );
    let renewals = (1..=RACERS).map(|n| {
        let mut renewed = entry(1, Bytes::from(format!("renewal {n}")), None);
        renewed.meta.created_at = read_at + Duration::from_secs(n);
        let store = Arc::clone(&t.store);
        async move {
            ok(
                store.put_if_created(renewed, read_at).await,
                "put_if_created",
            )
        }
    });
    let won = futures_util::future::join_all(renewals)
        .await
        .into_iter()
        .filter(|won| *won)
        .count();
    assert_eq!(won, 1, "racing renewals that wrote");
    let kept = ok(t.store.get(&key(1)).await, "get").expect("renewed");
    assert!(kept.value.starts_with(b"renewal "), "{:?}", kept.value);
}

/// A refused then an accepted [`CacheStore::put_if_created`] of `len`-byte values under one
/// key, for a store that splits large values into parts: refused over a newer write, then
/// accepted over it. `after` runs after each (with `"refused"` or `"accepted"`), for the
/// store's own check of what it holds besides (the parts the refused write made must be gone).
pub async fn conditional_writes_of_large_values<F, Fut>(
    store: &dyn CacheStore,
    len: usize,
    after: F,
) where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let written = |byte: u8, secs: u64| {
        let mut entry = entry(1, Bytes::from(vec![byte; len]), None);
        entry.meta.created_at += Duration::from_secs(secs);
        entry
    };
    let (read, newer, renewed) = (written(1, 0), written(2, 5), written(3, 10));
    ok(store.put(read.clone()).await, "put");
    ok(store.put(newer.clone()).await, "put");
    assert!(
        !ok(
            store
                .put_if_created(renewed.clone(), read.meta.created_at)
                .await,
            "put_if_created"
        ),
        "written over a newer entry"
    );
    let kept = ok(store.get(&key(1)).await, "get").expect("the newer entry stays");
    assert_eq!(kept.value, newer.value);
    after("refused").await;
    assert!(ok(
        store
            .put_if_created(renewed.clone(), newer.meta.created_at)
            .await,
        "put_if_created"
    ));
    let read = ok(store.get(&key(1)).await, "get").expect("renewed");
    assert_eq!(read.value, renewed.value);
    after("accepted").await;
}

/// `set_expiry` changes the expiry and nothing else; false for a missing key.
pub async fn set_expiry_changes_only_expiry(t: &StoreUnderTest) {
    let original = entry(1, Bytes::from_static(b"body"), None);
    ok(t.store.put(original.clone()).await, "put");
    let new_expiry = base_time() + Duration::from_secs(30);
    assert!(ok(
        t.store.set_expiry(&key(1), Some(new_expiry)).await,
        "set_expiry"
    ));
    let read = ok(t.store.get(&key(1)).await, "get").expect("entry still there");
    assert_eq!(read.meta.expires_at, Some(new_expiry));
    assert_eq!(read.meta.created_at, original.meta.created_at);
    assert_eq!(read.value, original.value);
    assert!(!ok(
        t.store.set_expiry(&key(2), None).await,
        "set_expiry of missing"
    ));
}

/// `set_expiry` racing a write of the same key (or a delete) changes at most the expiry of
/// what is there: it never puts back the value it found, over the newer one or after the
/// delete (a read-then-write renewal did, and a revalidated entry came back over another
/// client's newer response).
pub async fn set_expiry_never_undoes_a_racing_write(t: &StoreUnderTest) {
    const ROUNDS: u64 = 200;
    let later = Some(base_time() + Duration::from_secs(30));
    let mut undone = Vec::new();
    for round in 0..ROUNDS {
        let n = 1_000 + round;
        ok(
            t.store
                .put(entry(n, Bytes::from_static(b"old"), None))
                .await,
            "put",
        );
        let newer = entry(n, Bytes::from_static(b"new"), None);
        // On another worker, so the two run at once (a store whose calls never wait would
        // otherwise run each whole in turn).
        let store = Arc::clone(&t.store);
        let replace = tokio::spawn(async move {
            if round % 2 == 0 {
                ok(store.put(newer).await, "put");
            } else {
                ok(store.delete(&key(n)).await, "delete");
            }
        });
        ok(t.store.set_expiry(&key(n), later).await, "set_expiry");
        replace.await.expect("the write ran");
        let after = ok(t.store.get(&key(n)).await, "get").map(|e| e.value);
        let expected = (round % 2 == 0).then(|| Bytes::from_static(b"new"));
        if after != expected {
            undone.push(round);
        }
    }
    assert!(
        undone.is_empty(),
        "rounds whose write set_expiry undid: {undone:?}"
    );
}

/// A store does not judge freshness: an entry that just expired is still returned, for
/// revalidation.
pub async fn expired_entries_stay_readable(t: &StoreUnderTest) {
    let just_expired = SystemTime::now() - Duration::from_secs(1);
    let written = entry(1, Bytes::from_static(b"old"), Some(just_expired));
    ok(t.store.put(written.clone()).await, "put");
    let read = ok(t.store.get(&key(1)).await, "get").expect("expired entry readable");
    assert_eq!(read.meta.expires_at, written.meta.expires_at);
}

/// A store with a retention (server-side TTL) never returns, counts or lists an entry past
/// it, even where the server deletes lazily; a store without one keeps it until deleted.
pub async fn retention_is_honoured_at_read(t: &StoreUnderTest) {
    let retention = t.retention.unwrap_or_default();
    let long_gone = SystemTime::now() - retention - Duration::from_secs(60);
    ok(
        t.store
            .put(entry(1, Bytes::from_static(b"gone"), Some(long_gone)))
            .await,
        "put",
    );
    ok(
        t.store
            .put(entry(2, Bytes::from_static(b"kept"), None))
            .await,
        "put",
    );
    let read = ok(t.store.get(&key(1)).await, "get");
    let listed = collect_metas(t).await.len() as u64;
    if t.retention.is_some() {
        assert_eq!(read, None, "an entry past its retention is not returned");
        assert_eq!(ok(t.store.count().await, "count"), 1);
        assert_eq!(listed, 1);
    } else {
        assert!(
            read.is_some(),
            "without retention, entries stay until deleted"
        );
        assert_eq!(listed, 2);
    }
}

/// A value of zero bytes is stored and read back as such.
pub async fn empty_value(t: &StoreUnderTest) {
    ok(t.store.put(entry(1, Bytes::new(), None)).await, "put");
    let read = ok(t.store.get(&key(1)).await, "get").expect("empty entry stored");
    assert!(read.value.is_empty());
}

/// A 1 MiB value round-trips byte for byte.
pub async fn one_mebibyte_value(t: &StoreUnderTest) {
    let value: Bytes = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    ok(t.store.put(entry(1, value.clone(), None)).await, "put");
    let read = ok(t.store.get(&key(1)).await, "get").expect("stored");
    assert_eq!(read.value, value);
}

/// A 20 MiB value round-trips (or is refused with [`StoreError::TooLarge`], nothing stored).
pub async fn twenty_mebibyte_value(t: &StoreUnderTest) {
    let value: Bytes = (0..20 * 1024 * 1024)
        .map(|i: u32| (i % 253) as u8)
        .collect();
    match t.store.put(entry(1, value.clone(), None)).await {
        Ok(()) => {
            let read = ok(t.store.get(&key(1)).await, "get").expect("stored");
            assert!(
                read.value == value,
                "20 MiB value differs after the round trip"
            );
        }
        Err(StoreError::TooLarge { .. }) => {
            assert_eq!(
                ok(t.store.get(&key(1)).await, "get"),
                None,
                "a refused entry is not stored"
            );
        }
        Err(e) => panic!("put of 20 MiB failed: {e:?}"),
    }
}

/// URLs with non-ASCII text are kept exactly.
pub async fn unicode_urls(t: &StoreUnderTest) {
    let url = "https://例え.テスト/パス?q=ÿ😀";
    let meta = EntryMeta::new(key(1), url, base_time(), None);
    ok(
        t.store
            .put(StoredEntry::new(meta, Bytes::from_static(b"u")))
            .await,
        "put",
    );
    let read = ok(t.store.get(&key(1)).await, "get").expect("stored");
    assert_eq!(read.meta.url, url);
    let listed: Vec<String> = collect_metas(t).await.into_iter().map(|m| m.url).collect();
    assert_eq!(listed, vec![url.to_owned()]);
}

async fn collect_metas(t: &StoreUnderTest) -> Vec<EntryMeta> {
    use futures_util::StreamExt;
    let metas: Vec<_> = t.store.entries().collect().await;
    metas.into_iter().map(|m| ok(m, "entries")).collect()
}

/// Many tasks writing one key at once: no error, and one complete value wins.
pub async fn concurrent_writers_same_key(t: &StoreUnderTest) {
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let store = Arc::clone(&t.store);
            tokio::spawn(async move {
                let value = Bytes::from(vec![i; 4096]);
                store.put(entry(1, value, None)).await
            })
        })
        .collect();
    for task in tasks {
        ok(task.await.expect("writer task"), "concurrent put");
    }
    let read = ok(t.store.get(&key(1)).await, "get").expect("stored");
    assert_eq!(read.value.len(), 4096);
    assert!(
        read.value.iter().all(|b| *b == read.value[0]),
        "no torn value"
    );
}

/// Many tasks writing different keys at once: every entry lands.
pub async fn concurrent_writers_different_keys(t: &StoreUnderTest) {
    let tasks: Vec<_> = (0..32u64)
        .map(|n| {
            let store = Arc::clone(&t.store);
            tokio::spawn(async move {
                for round in 0..4 {
                    let v = Bytes::from(format!("{n}-{round}"));
                    store.put(entry(n, v, None)).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        ok(task.await.expect("writer task"), "concurrent put");
    }
    assert_eq!(ok(t.store.count().await, "count"), 32);
    for n in 0..32 {
        let read = ok(t.store.get(&key(n)).await, "get").expect("stored");
        assert_eq!(read.value, Bytes::from(format!("{n}-3")));
    }
}

/// Entries written by one instance are read, replaced and deleted through another over the
/// same data. Stores without shared data (memory) pass trivially.
pub async fn second_instance_sees_entries(t: &StoreUnderTest) {
    let Some(reopen) = &t.reopen else { return };
    let other = reopen().await;
    let within = t.shared_within;
    let written = Some(entry(1, Bytes::from_static(b"from the first"), None));
    ok(t.store.put(written.clone().unwrap()).await, "put");
    let read = read_once_shared(within, &written, || async {
        ok(other.get(&key(1)).await, "get via second")
    });
    assert_eq!(read.await, written);
    let replaced = Some(entry(1, Bytes::from_static(b"from the second"), None));
    ok(other.put(replaced.clone().unwrap()).await, "put via second");
    let read = read_once_shared(within, &replaced, || async {
        ok(t.store.get(&key(1)).await, "get")
    });
    assert_eq!(read.await, replaced);
    assert!(ok(other.delete(&key(1)).await, "delete via second"));
    assert_eq!(ok(t.store.get(&key(1)).await, "get"), None);
}

/// A value that is not a valid entry reads as a miss and is removed from the store.
pub async fn corrupt_value_is_a_miss_and_deleted(t: &StoreUnderTest) {
    let valid = codec::encode(&sample_response()).expect("encodes");
    let truncated = valid.slice(..valid.len() / 2);
    let plants = [
        Bytes::from_static(b"definitely not an entry"),
        Bytes::new(),
        truncated,
    ];
    for (n, planted) in plants.into_iter().enumerate() {
        let n = n as u64;
        ok(t.store.put(entry(n, planted, None)).await, "put");
        assert!(
            ok(
                get_entry(&*t.store, &key(n), &EntryCodec::new()).await,
                "get_entry"
            )
            .is_none()
        );
        assert_eq!(
            ok(t.store.get(&key(n)).await, "get"),
            None,
            "corrupt entry deleted"
        );
    }
    ok(t.store.put(entry(9, valid, None)).await, "put");
    let decoded = ok(
        get_entry(&*t.store, &key(9), &EntryCodec::new()).await,
        "get_entry",
    )
    .expect("a valid entry decodes");
    assert_eq!(decoded.entry, crate::Entry::Response(sample_response()));
}

/// A store that, right after a read of the armed entry's key, has another client write
/// that entry (once): what a reader sees between reading an entry and acting on what it read.
/// A conditional write of the key ([`CacheStore::put_if_created`]) before that read comes
/// finds the entry written just before it. Arm it with [`WrittenAfterRead::arm`] (after the
/// next read) or [`WrittenAfterRead::arm_after_reads`]; [`WrittenAfterRead::armed`] is empty
/// once it fired.
#[derive(Debug)]
pub struct WrittenAfterRead {
    inner: Arc<dyn CacheStore>,
    /// The entry to write, and how many reads of its key go by before it is written.
    armed: std::sync::Mutex<Option<(StoredEntry, usize)>>,
}

impl WrittenAfterRead {
    /// A wrapper around `inner`, not armed.
    pub fn new(inner: Arc<dyn CacheStore>) -> Self {
        Self {
            inner,
            armed: std::sync::Mutex::new(None),
        }
    }

    /// Writes `entry` right after the next read of its key.
    pub fn arm(&self, entry: StoredEntry) {
        self.arm_after_reads(entry, 0);
    }

    /// Writes `entry` right after the read of its key that follows `reads` others (or
    /// right before a conditional write of it that comes first).
    pub fn arm_after_reads(&self, entry: StoredEntry, reads: usize) {
        *self.lock() = Some((entry, reads));
    }

    /// The entry still waiting for its read, if any.
    pub fn armed(&self) -> Option<StoredEntry> {
        self.lock().as_ref().map(|(entry, _)| entry.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(StoredEntry, usize)>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The armed entry, taken, if `key` is its key and (for a read) no more reads are to
    /// go by first.
    fn fire(&self, key: &CacheKey, read: bool) -> Option<StoredEntry> {
        let mut armed = self.lock();
        match armed.as_mut() {
            Some((entry, reads)) if entry.meta.key == *key => {
                if read && *reads > 0 {
                    *reads -= 1;
                    return None;
                }
                armed.take().map(|(entry, _)| entry)
            }
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl CacheStore for WrittenAfterRead {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
        let read = self.inner.get(key).await;
        if let Some(then) = self.fire(key, true) {
            self.inner.put(then).await?;
        }
        read
    }
    async fn put(&self, entry: StoredEntry) -> Result<(), StoreError> {
        self.inner.put(entry).await
    }
    async fn put_if_created(
        &self,
        entry: StoredEntry,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        if let Some(then) = self.fire(&entry.meta.key, false) {
            self.inner.put(then).await?;
        }
        self.inner.put_if_created(entry, created_at).await
    }
    async fn delete(&self, key: &CacheKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_if_created(
        &self,
        key: &CacheKey,
        created_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.inner.delete_if_created(key, created_at).await
    }
    fn entries(&self) -> futures_util::stream::BoxStream<'_, Result<EntryMeta, StoreError>> {
        self.inner.entries()
    }
    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }
}

/// An unreadable value is deleted as it was read, not whatever the key holds by then: a
/// valid entry another client wrote between the read and the delete stays.
pub async fn corrupt_value_rewritten_after_the_read_stays(t: &StoreUnderTest) {
    let valid = codec::encode(&sample_response()).expect("encodes");
    ok(
        t.store
            .put(entry(1, Bytes::from_static(b"not an entry"), None))
            .await,
        "put",
    );
    let mut rewritten = entry(1, valid, None);
    rewritten.meta.created_at += Duration::from_secs(5);
    let racing = WrittenAfterRead::new(Arc::clone(&t.store));
    racing.arm(rewritten.clone());
    let read = ok(
        get_entry(&racing, &key(1), &EntryCodec::new()).await,
        "get_entry",
    );
    assert!(read.is_none(), "the value read was not an entry");
    assert_eq!(
        ok(t.store.get(&key(1)).await, "get"),
        Some(rewritten),
        "the entry written after the read was deleted"
    );
}

/// A response's header lines in order, response then request (`HeaderMap`'s equality
/// ignores the order of different names).
fn header_order(entry: &crate::Entry) -> Vec<(String, Vec<u8>)> {
    let crate::Entry::Response(response) = entry else {
        return Vec::new();
    };
    response
        .headers
        .iter()
        .chain(response.request.headers.iter())
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// `get_decoded` and, where a store answers it, `get_decoded_now` agree with `get` plus a
/// decode: the same metadata and entry (header order included), twice in a row (a store that
/// keeps decoded forms must not serve a stale one after an overwrite), whether each write
/// came as bytes alone, with its response or unencoded, and the same errors.
pub async fn decoded_reads_agree(t: &StoreUnderTest) {
    let codec = EntryCodec::new();
    let first = codec::encode(&sample_response()).expect("encodes");
    let mut changed = sample_response();
    changed.body = Bytes::from_static(b"changed body");
    let second = codec::encode(&changed).expect("encodes");
    // Each written as bytes alone, with its response (`put_decoded`) and unencoded
    // (`put_plain`, last: the renewal below then meets an entry written so), each write
    // replacing the one before: a store that keeps the writer's response reads as decoding,
    // and one that keeps it unencoded gives the bytes encoding makes.
    #[derive(Clone, Copy, Debug)]
    enum Way {
        Bytes,
        WithResponse,
        Unencoded,
    }
    let writes = [(first, sample_response()), (second, changed)]
        .into_iter()
        .flat_map(|write| {
            [Way::Bytes, Way::WithResponse, Way::Unencoded].map(|way| (write.clone(), way))
        });
    for ((value, response), way) in writes {
        let written = match way {
            Way::Bytes => t.store.put(entry(1, value.clone(), None)),
            Way::WithResponse => t.store.put_decoded(entry(1, value.clone(), None), response),
            Way::Unencoded => t
                .store
                .put_plain(entry(1, value.clone(), None).meta, response),
        };
        ok(written.await, "put");
        let raw = ok(t.store.get(&key(1)).await, "get").expect("stored");
        assert_eq!(
            raw.value, value,
            "written {way:?}: the bytes read are not the bytes written"
        );
        let expected = codec
            .decode_entry(Some(&key(1)), &raw.value)
            .expect("decodes");
        for _ in 0..2 {
            let decoded = ok(t.store.get_decoded(&key(1), &codec).await, "get_decoded")
                .expect("stored")
                .expect("decodes");
            assert_eq!(decoded.meta, raw.meta);
            assert_eq!(decoded.entry, expected);
            assert_eq!(header_order(&decoded.entry), header_order(&expected));
            if let Some(now) = t.store.get_decoded_now(&key(1), &codec) {
                let decoded = ok(now, "get_decoded_now")
                    .expect("stored")
                    .expect("decodes");
                assert_eq!(decoded.meta, raw.meta);
                assert_eq!(decoded.entry, expected);
                assert_eq!(header_order(&decoded.entry), header_order(&expected));
            }
        }
    }
    // A change of metadata alone (the value untouched) shows in the next decoded read too.
    let renewed = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
    assert!(ok(
        t.store.set_expiry(&key(1), Some(renewed)).await,
        "set_expiry"
    ));
    let decoded = ok(t.store.get_decoded(&key(1), &codec).await, "get_decoded")
        .expect("stored")
        .expect("decodes");
    assert_eq!(decoded.meta.expires_at, Some(renewed));
    if let Some(now) = t.store.get_decoded_now(&key(1), &codec) {
        let decoded = ok(now, "get_decoded_now")
            .expect("stored")
            .expect("decodes");
        assert_eq!(decoded.meta.expires_at, Some(renewed));
    }
    // Deleted: gone from decoded reads as from `get`.
    assert!(ok(t.store.delete(&key(1)).await, "delete"));
    assert!(ok(t.store.get_decoded(&key(1), &codec).await, "get_decoded").is_none());
    assert!(ok(t.store.get_decoded(&key(2), &codec).await, "get_decoded").is_none());
    ok(
        t.store
            .put(entry(3, Bytes::from_static(b"junk"), None))
            .await,
        "put",
    );
    let junk = ok(t.store.get_decoded(&key(3), &codec).await, "get_decoded").expect("stored");
    assert_eq!(junk.expect_err("junk does not decode").meta.key, key(3));
}

/// `get_decoded_pair` answers each key as `get_decoded` does, in the order asked: entries
/// written as bytes and with their response (a store keeping copies reads those by copy), one
/// rewritten since it was last read (a copy that cannot answer), one absent and one that does
/// not decode.
pub async fn pair_reads_agree(t: &StoreUnderTest) {
    let codec = EntryCodec::new();
    let pair = |first: u64, second: u64| {
        let codec = &codec;
        async move {
            let [a, b] = t
                .store
                .get_decoded_pair(&key(first), &key(second), codec)
                .await;
            [
                ok(a, "first of get_decoded_pair"),
                ok(b, "second of get_decoded_pair"),
            ]
        }
    };
    let agrees = |read: &crate::store::DecodedEntry, n: u64, value: &Bytes| {
        let decoded = read
            .as_ref()
            .unwrap_or_else(|| panic!("key {n} not read"))
            .as_ref()
            .unwrap_or_else(|e| panic!("key {n} does not decode: {:?}", e.error));
        let expected = codec.decode_entry(Some(&key(n)), value).expect("decodes");
        assert_eq!(decoded.meta.key, key(n), "the pair's reads swapped");
        assert_eq!(decoded.entry, expected, "key {n}");
        assert_eq!(header_order(&decoded.entry), header_order(&expected));
    };
    let first = codec::encode(&sample_response()).expect("encodes");
    let mut changed = sample_response();
    changed.body = Bytes::from_static(b"changed body");
    let second = codec::encode(&changed).expect("encodes");
    ok(
        t.store
            .put_decoded(entry(1, first.clone(), None), sample_response())
            .await,
        "put_decoded",
    );
    ok(t.store.put(entry(2, second.clone(), None)).await, "put");
    // Twice: the second time, stores that keep copies of what they read answer by them.
    for _ in 0..2 {
        let [one, two] = pair(1, 2).await;
        agrees(&one, 1, &first);
        agrees(&two, 2, &second);
        let [two, absent] = pair(2, 4).await;
        agrees(&two, 2, &second);
        assert!(absent.is_none(), "nothing was written under key 4");
    }
    // Rewritten since read: what is stored now, not the copy.
    ok(t.store.put(entry(1, second.clone(), None)).await, "put");
    let [one, two] = pair(1, 2).await;
    agrees(&one, 1, &second);
    agrees(&two, 2, &second);
    ok(
        t.store
            .put(entry(3, Bytes::from_static(b"junk"), None))
            .await,
        "put",
    );
    let [junk, one] = pair(3, 1).await;
    let junk = junk.expect("stored");
    assert_eq!(junk.expect_err("junk does not decode").meta.key, key(3));
    agrees(&one, 1, &second);
}

/// For stores that keep decoded copies of what they read from elsewhere (Redis, MongoDB,
/// DynamoDB): a response written with `put_decoded` through `with_copies` is read back as the
/// writer's decoded form, without decoding (the same `Arc` read after read), and equal to
/// decoding the value; through `without_copies` (the same kind of store with copies off, in
/// another namespace) every read decodes anew.
pub async fn written_response_is_read_without_decoding(
    with_copies: &dyn CacheStore,
    without_copies: &dyn CacheStore,
) {
    let codec = EntryCodec::new();
    let response = sample_response();
    let value = codec.encode(Some(&key(1)), &response).expect("encodes");
    async fn read(what: &str, from: &dyn CacheStore, codec: &EntryCodec) -> Arc<Decoded> {
        ok(from.get_decoded(&key(1), codec).await, what)
            .expect("stored")
            .expect("decodes")
    }
    ok(
        with_copies
            .put_decoded(entry(1, value.clone(), None), response.clone())
            .await,
        "put_decoded",
    );
    let first = read("get_decoded", with_copies, &codec).await;
    let second = read("get_decoded", with_copies, &codec).await;
    assert!(Arc::ptr_eq(&first, &second), "a read decoded anew");
    let decoded = entry(1, value.clone(), None)
        .decode(&key(1), &codec)
        .expect("decodes");
    assert_eq!(*first, *decoded);
    ok(
        without_copies
            .put_decoded(entry(1, value, None), response)
            .await,
        "put_decoded",
    );
    let first = read("get_decoded without copies", without_copies, &codec).await;
    let second = read("get_decoded without copies", without_copies, &codec).await;
    assert!(
        !Arc::ptr_eq(&first, &second),
        "copies kept though turned off"
    );
}

/// For stores that keep decoded copies: a copy answers only for what the store holds now.
/// `reader` holds a copy of an entry; `writer`, another instance over the same data, replaces
/// the value, then changes only the expiry, then writes the same value again later, then
/// deletes it: `reader`'s next decoded read shows each at once.
pub async fn copies_follow_another_instance(reader: &dyn CacheStore, writer: &dyn CacheStore) {
    let codec = EntryCodec::new();
    let response = sample_response();
    let value = codec.encode(Some(&key(1)), &response).expect("encodes");
    ok(
        reader
            .put_decoded(entry(1, value, None), response.clone())
            .await,
        "put_decoded",
    );
    let read = || async {
        ok(reader.get_decoded(&key(1), &codec).await, "get_decoded")
            .expect("stored")
            .expect("decodes")
    };
    assert!(Arc::ptr_eq(&read().await, &read().await), "no copy kept");
    let mut changed = response;
    changed.body = Bytes::from_static(b"written by another instance");
    let other = codec.encode(Some(&key(1)), &changed).expect("encodes");
    ok(
        writer.put(entry(1, other.clone(), None)).await,
        "put via writer",
    );
    let crate::Entry::Response(now) = &read().await.entry else {
        panic!("not a response");
    };
    assert_eq!(now.body, "written by another instance");
    // Read twice, so the reader keeps a copy of the new value; then only the expiry changes.
    assert!(Arc::ptr_eq(&read().await, &read().await), "no copy kept");
    let renewed = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
    assert!(ok(
        writer.set_expiry(&key(1), Some(renewed)).await,
        "set_expiry via writer"
    ));
    assert_eq!(read().await.meta.expires_at, Some(renewed));
    // The same value and expiry written again a second later: a copy of the value must not
    // answer for the new write (a store reading less with a copy kept still reads the time).
    assert!(Arc::ptr_eq(&read().await, &read().await), "no copy kept");
    let mut rewritten = entry(1, other, Some(renewed));
    rewritten.meta.created_at += Duration::from_secs(1);
    ok(writer.put(rewritten.clone()).await, "put again via writer");
    assert_eq!(read().await.meta, rewritten.meta);
    assert!(ok(writer.delete(&key(1)).await, "delete via writer"));
    assert!(ok(reader.get_decoded(&key(1), &codec).await, "get_decoded").is_none());
}

/// For stores that keep decoded copies: an entry's copy goes with the entry, whether
/// `delete`, `delete_expired` or `clear` removes it (a copy could no longer answer, and its
/// memory would stay until evicted). `copies_bytes` reads what the store's copies weigh.
pub async fn copies_go_with_their_entries(store: &dyn CacheStore, copies_bytes: impl Fn() -> u64) {
    let codec = EntryCodec::new();
    let response = sample_response();
    let value = codec.encode(Some(&key(1)), &response).expect("encodes");
    // Expired a second ago: still held (stores keep entries past expiry for revalidation),
    // and what `delete_expired` removes.
    let expired = SystemTime::now() - Duration::from_secs(1);
    for (removal, expires_at) in [
        ("delete", None),
        ("delete_expired", Some(expired)),
        ("clear", None),
    ] {
        assert_eq!(copies_bytes(), 0, "copies before the {removal} round");
        let written = entry(1, value.clone(), expires_at);
        ok(
            store.put_decoded(written, response.clone()).await,
            "put_decoded",
        );
        assert!(copies_bytes() > 0, "no copy kept at the write ({removal})");
        let removed = match removal {
            "delete" => u64::from(ok(store.delete(&key(1)).await, removal)),
            "delete_expired" => ok(store.delete_expired(SystemTime::now()).await, removal),
            _ => ok(store.clear().await, removal),
        };
        assert_eq!(removed, 1, "{removal} removed the entry");
        assert_eq!(copies_bytes(), 0, "a copy outlived its entry's {removal}");
    }
}

/// The store is usable as `Arc<dyn CacheStore>`, which is how the middleware holds it.
pub async fn works_as_arc_dyn(t: &StoreUnderTest) {
    let shared: Arc<dyn CacheStore> = Arc::clone(&t.store);
    let clone = Arc::clone(&shared);
    ok(
        clone.put(entry(1, Bytes::from_static(b"dyn"), None)).await,
        "put",
    );
    assert!(ok(shared.get(&key(1)).await, "get").is_some());
}

/// `entries_for_url` finds exactly the entries of a URL group, with their metadata as
/// written (group and Vary parent round trip through `get` and `entries` too), and follows
/// overwrites into another group, deletes and `clear`.
pub async fn url_groups_are_indexed(t: &StoreUnderTest) {
    let written = [
        grouped_entry(1, 10, None),
        grouped_entry(2, 10, None),
        grouped_entry(3, 10, Some(1)),
        grouped_entry(4, 11, None),
        entry(5, Bytes::from_static(b"no group"), None),
    ];
    for stored in &written {
        ok(t.store.put(stored.clone()).await, "put");
    }
    let read = ok(t.store.get(&key(3)).await, "get").expect("stored");
    assert_eq!(read.meta, written[2].meta, "group and parent round trip");
    let listed = collect_metas(t).await;
    assert!(
        listed.contains(&written[2].meta),
        "entries() keeps them too"
    );
    assert_eq!(
        group_keys(t, 10).await,
        sorted(vec![key(1), key(2), key(3)])
    );
    let found = ok(t.store.entries_for_url(&group(10)).await, "entries_for_url");
    let third = found.iter().find(|m| m.key == key(3)).expect("listed");
    assert_eq!(third.variant_of, Some(key(1)));
    assert_eq!(group_keys(t, 11).await, [key(4)]);
    assert!(group_keys(t, 12).await.is_empty());

    ok(t.store.put(grouped_entry(2, 11, None)).await, "move 2");
    assert!(ok(t.store.delete(&key(1)).await, "delete 1"));
    assert_eq!(group_keys(t, 10).await, [key(3)]);
    assert_eq!(group_keys(t, 11).await, sorted(vec![key(2), key(4)]));
    assert_eq!(
        ok(t.store.clear().await, "clear"),
        4,
        "clear counts entries"
    );
    assert!(group_keys(t, 10).await.is_empty());
    assert!(group_keys(t, 11).await.is_empty());
}

/// One URL with 1,100 entries (credentials, variants): `entries_for_url` lists them all,
/// past any page size.
pub async fn url_group_of_many_entries(t: &StoreUnderTest) {
    const N: u64 = 1_100;
    let writes = (0..N).map(|n| t.store.put(grouped_entry(n, 1, None)));
    for result in futures_util::future::join_all(writes).await {
        ok(result, "put");
    }
    ok(t.store.put(grouped_entry(N, 2, None)).await, "put");
    assert_eq!(group_keys(t, 1).await, sorted((0..N).map(key).collect()));
}

/// The keys `entries_for_url(group(g))` lists, sorted, each checked to be in the group.
async fn group_keys(t: &StoreUnderTest, g: u64) -> Vec<CacheKey> {
    let found = ok(t.store.entries_for_url(&group(g)).await, "entries_for_url");
    let keys: Vec<CacheKey> = found
        .iter()
        .map(|meta| {
            assert_eq!(meta.url_group, Some(group(g)), "only the asked group");
            meta.key
        })
        .collect();
    let keys = sorted(keys);
    let mut deduped = keys.clone();
    deduped.dedup();
    assert_eq!(keys, deduped, "each entry listed once");
    keys
}

fn sorted(mut keys: Vec<CacheKey>) -> Vec<CacheKey> {
    keys.sort();
    keys
}

pub use crate::fixtures::{entry, group, grouped_entry, key, sample_response};

//! The first store opened in a process turns SQLite's memory statistics off (see
//! `connection::turn_off_memory_statistics`): with them on, every allocation SQLite makes
//! takes one process-wide mutex, and concurrent readers queue on it. Alone in its test binary
//! (its own process), so nothing initializes SQLite before the store does.

use cache_sqlite::SqliteStore;

#[test]
fn the_first_store_turns_sqlite_memory_statistics_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("stats.sqlite")).unwrap();
    // SAFETY: a plain read of SQLite's counter, safe from any thread.
    #[allow(unsafe_code)]
    let counted = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    // With statistics on, the store's open connections alone hold hundreds of KiB.
    assert_eq!(counted, 0, "SQLite still counts its memory");
    drop(store);
}

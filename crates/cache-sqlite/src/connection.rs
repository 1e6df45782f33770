//! Opening connections, the schema, and turning SQLite errors into store errors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cache_core::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// [`TABLE`], for SQL written as literals (`concat!`).
macro_rules! table_name {
    () => {
        "reqwest_cache_entries"
    };
}
pub(crate) use table_name;

/// The table entries live in. A distinct name, so a file shared with another tool (such as
/// requests-cache's own `responses` table) does not collide.
pub(crate) const TABLE: &str = table_name!();

pub(crate) fn open_connection(
    path: &Path,
    busy_timeout: Duration,
    pragmas: &[(String, String)],
) -> Result<Connection, StoreError> {
    turn_off_memory_statistics();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::unavailable)?;
    // The busy timeout first: switching to WAL itself needs a lock another process may hold.
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_error(e, busy_timeout))?;
    // Incremental auto-vacuum lets the file shrink after deletes, and a page size given as a
    // pragma sets the new file's. SQLite takes either only before the file is first written
    // (switching to WAL writes it), so they precede the journal mode (set after it, a page
    // size was silently ignored); on an existing file they change nothing.
    let is_page_size = |name: &str| name.eq_ignore_ascii_case("page_size");
    for (name, value) in pragmas.iter().filter(|(name, _)| is_page_size(name)) {
        conn.pragma_update(None, name, value)
            .map_err(|e| sqlite_error(e, busy_timeout))?;
    }
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
        .map_err(|e| sqlite_error(e, busy_timeout))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| sqlite_error(e, busy_timeout))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| sqlite_error(e, busy_timeout))?;
    for (name, value) in pragmas.iter().filter(|(name, _)| !is_page_size(name)) {
        conn.pragma_update(None, name, value)
            .map_err(|e| sqlite_error(e, busy_timeout))?;
    }
    Ok(conn)
}

/// Turns off SQLite's memory statistics (`SQLITE_CONFIG_MEMSTATUS`), as SQLite recommends
/// for speed, when this process has not used SQLite yet; otherwise changes nothing.
///
/// With them on, every allocation and free SQLite makes takes one mutex shared by the whole
/// process, and a read allocates for the value it returns (anything over SQLite's 1,200-byte
/// lookaside slots) and frees it at the end: two threads reading at once meet on that mutex,
/// and the one that finds it taken sleeps in the kernel for tens of µs. Under 64 tasks on two
/// threads that was most of the store's futex waits (`perf record -e
/// syscalls:sys_enter_futex --call-graph dwarf`: `sqlite3Malloc` and `sqlite3_free` under
/// `sqlite3VdbeMemGrow` and `sqlite3_reset`). The statistics only feed
/// `sqlite3_memory_used` and the heap limits (`soft_heap_limit`, `hard_heap_limit`, also
/// when set through [`SqliteStoreBuilder::pragma`](crate::SqliteStoreBuilder::pragma), are
/// not enforced without them); an application that wants them initializes SQLite before
/// opening a store (opening any `rusqlite::Connection` does).
#[allow(unsafe_code)]
fn turn_off_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` takes this option and one `int`. Before SQLite is
        // initialized it only stores the flag; once initialized (by any connection opened
        // in this process) it changes nothing and returns SQLITE_MISUSE, which is fine here.
        // SQLite documents `sqlite3_config` as not thread-safe: the `Once` orders it before
        // this crate's connections, not before another thread's first `Connection::open`
        // (rusqlite's own first-use `sqlite3_config` call has the same exposure). Should
        // the two meet, they share only word-sized flags: SQLite reads `bMemstat` afresh
        // in each allocation and free, locking and unlocking under one reading, so a
        // change in between only leaves the statistics uncounted, never a lock held.
        let _ = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0u8),
            )
        };
    });
}

/// The table and its indexes. Eviction goes by write order (the rowid, which a replacing write
/// renews), so no index on the creation time: an index written on every insert for the rare
/// eviction cost a fifth of a write. Files of earlier versions lose theirs here (a no-op when
/// it is gone; an earlier version opening the file makes it again, harmlessly).
pub(crate) fn create_schema(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
             key TEXT PRIMARY KEY NOT NULL,
             url TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             expires_at INTEGER,
             value BLOB NOT NULL,
             url_group TEXT,
             variant_of TEXT
         );
         CREATE INDEX IF NOT EXISTS {TABLE}_expires_at ON {TABLE}(expires_at)
             WHERE expires_at IS NOT NULL;
         DROP INDEX IF EXISTS {TABLE}_created_at;"
    ))
    .map_err(|e| sqlite_error(e, busy_timeout))?;
    add_url_group_columns(conn).map_err(|e| sqlite_error(e, busy_timeout))
}

/// The URL group and Vary parent columns, added to a file written before they existed, and
/// the index that finds a URL's entries, made in every file that lacks it (releases before
/// this one made it only when they added the columns, so the files they created have none,
/// and each URL lookup there read the whole table). In one immediate transaction, so two
/// processes opening an old file at once do not both add them. Old rows keep NULL: they are
/// found by key as before, not by URL.
fn add_url_group_columns(conn: &Connection) -> Result<(), rusqlite::Error> {
    let exists = |conn: &Connection, query: &str| -> Result<bool, rusqlite::Error> {
        conn.prepare(query)?.exists([])
    };
    let has_column = |conn: &Connection| {
        exists(
            conn,
            &format!("SELECT 1 FROM pragma_table_info('{TABLE}') WHERE name = 'url_group'"),
        )
    };
    let has_index = |conn: &Connection| {
        exists(
            conn,
            &format!(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = '{URL_GROUP_INDEX}'"
            ),
        )
    };
    if has_column(conn)? && has_index(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let added = (|| {
        if !has_column(conn)? {
            conn.execute_batch(&format!(
                "ALTER TABLE {TABLE} ADD COLUMN url_group TEXT;
                 ALTER TABLE {TABLE} ADD COLUMN variant_of TEXT;"
            ))?;
        }
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {URL_GROUP_INDEX} ON {TABLE}(url_group)
                 WHERE url_group IS NOT NULL;"
        ))
    })();
    match added {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

/// The index on the URL group column.
const URL_GROUP_INDEX: &str = concat!(table_name!(), "_url_group");

/// Busy or locked after the busy timeout is a timeout (transient); a file that cannot be
/// opened is unavailable; everything else is a backend error.
pub(crate) fn sqlite_error(error: rusqlite::Error, busy_timeout: Duration) -> StoreError {
    store_error(error.sqlite_error_code(), error, busy_timeout)
}

/// [`sqlite_error`] of one error that several calls share (the writes of one group commit).
pub(crate) fn shared_sqlite_error(
    error: &Arc<rusqlite::Error>,
    busy_timeout: Duration,
) -> StoreError {
    store_error(error.sqlite_error_code(), Arc::clone(error), busy_timeout)
}

fn store_error(
    code: Option<ErrorCode>,
    source: impl std::error::Error + Send + Sync + 'static,
    busy_timeout: Duration,
) -> StoreError {
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Timeout(busy_timeout)
        }
        Some(ErrorCode::CannotOpen | ErrorCode::NotADatabase | ErrorCode::SystemIoFailure) => {
            StoreError::unavailable(source)
        }
        Some(ErrorCode::DiskFull) => StoreError::full(source),
        _ => StoreError::backend(source),
    }
}

/// Bytes the database uses (pages in use, not free ones).
pub(crate) fn used_bytes(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(u64::try_from((pages - free).max(0) * size).unwrap_or(0))
}

/// Returns free pages to the file system: the file shrinks (after the WAL checkpoint).
/// `before_truncate` runs between the two (to end read transactions that would stop it).
pub(crate) fn shrink(
    conn: &Connection,
    before_truncate: impl FnOnce(),
) -> Result<(), rusqlite::Error> {
    incremental_vacuum(conn)?;
    before_truncate();
    // The truncation reaches the main file at a checkpoint; a busy reader may delay it.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Frees every free page. The pragma frees one page per step, so it is stepped to the end.
pub(crate) fn incremental_vacuum(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

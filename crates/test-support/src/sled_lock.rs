//! Waiting for a sled database another handle has just let go of.
//!
//! sled admits one open database per path and process, and the process's shared sled I/O
//! threads can hold a dropped database's lock for a moment (its last buffers' writes, queued
//! behind other tests' work). sled's own tests block on the lock for that reason. A test that
//! drops a database and opens it again (or hands it to another process) waits here first.

use std::path::Path;
use std::time::{Duration, Instant};

/// Longer than any such wait seen on a loaded 2-core machine; then the open reports the lock.
const LIMIT: Duration = Duration::from_secs(30);

/// Waits until nothing holds the lock sled takes on the database at `path` (its `db` file),
/// or 30 seconds pass. Returns at once when there is no database there.
pub fn wait_for_sled_lock(path: &Path) {
    let lock_file = path.join("db");
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        // No file yet: nothing holds it.
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock_file) else {
            return;
        };
        if fs2::FileExt::try_lock_exclusive(&file).is_ok() {
            let _ = fs2::FileExt::unlock(&file);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! [`tree_snapshot`]: what a directory holds, to tell whether something changed it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Every path under `dir` (directories and links too, links not followed), sorted, with its
/// length and modification time: two equal snapshots mean nothing was created, removed,
/// written or touched in between.
///
/// # Panics
///
/// When `dir` or something under it cannot be listed or examined.
pub fn tree_snapshot(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut found = Vec::new();
    let listing = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    for entry in listing {
        let path = entry
            .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
            .path();
        let meta = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("examine {}: {e}", path.display()));
        let modified = meta
            .modified()
            .unwrap_or_else(|e| panic!("modification time of {}: {e}", path.display()));
        found.push((path.clone(), meta.len(), modified));
        if meta.is_dir() {
            found.extend(tree_snapshot(&path));
        }
    }
    found.sort();
    found
}

/// Removes every empty directory under `dir` (not `dir`), as a checkout of a repository
/// has none: git keeps files, not directories.
///
/// # Panics
///
/// When something under `dir` cannot be listed or removed.
pub fn remove_empty_dirs(dir: &Path) {
    let listing = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    for entry in listing {
        let path = entry
            .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
            .path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir());
        if !is_dir {
            continue;
        }
        remove_empty_dirs(&path);
        let empty = std::fs::read_dir(&path).is_ok_and(|mut listing| listing.next().is_none());
        if empty {
            std::fs::remove_dir(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        }
    }
}

/// Sets the modification time of the file at `path` `by` into the past.
///
/// # Panics
///
/// When the file cannot be opened or its time set.
pub fn backdate(path: &Path, by: std::time::Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_modified(SystemTime::now() - by)
        .unwrap_or_else(|e| panic!("set the time of {}: {e}", path.display()));
}

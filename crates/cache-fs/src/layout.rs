//! Where each file of the store lives, and how files are written so readers never see half
//! of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cache_core::{CacheKey, StoreError};

/// Files whose name starts with this are being written (or were left by a writer that died):
/// readers skip them, the sweep removes them once they are older than [`ABANDONED_AFTER`].
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A temporary or unreferenced body file this old belongs to no live writer: a write takes
/// microseconds between its two renames, so ten minutes leaves a wide margin.
pub(crate) const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// The lock file of a shard directory (see [`Layout::lock`]).
const LOCK_FILE: &str = ".lock";

/// The paths of one cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory tree (idempotent). Fails where one of its directories is a link
    /// or not a directory ([`own_dir`]).
    pub(crate) fn create(&self) -> io::Result<()> {
        own_dir(&self.root.join("entries"))?;
        for shard in 0..=255u8 {
            own_dir(&self.shard_dir_of(shard))?;
        }
        own_dir(&self.root.join("groups"))
    }

    /// `Ok` when the root is a directory (links followed: the user named it), for a store
    /// that creates nothing.
    pub(crate) fn check_root(&self) -> io::Result<()> {
        if fs::metadata(&self.root)?.is_dir() {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "{} is not a directory",
            self.root.display()
        )))
    }

    /// `entries/ab`: the directory of every key starting with `ab`.
    pub(crate) fn shard_dir(&self, key: &CacheKey) -> PathBuf {
        self.root.join("entries").join(&key.as_str()[..2])
    }

    pub(crate) fn shard_dir_of(&self, shard: u8) -> PathBuf {
        self.root.join("entries").join(format!("{shard:02x}"))
    }

    /// `entries/ab/<key>.json`: the entry's metadata; its presence is the entry's presence.
    pub(crate) fn record(&self, key: &CacheKey) -> PathBuf {
        self.shard_dir(key).join(format!("{key}.json"))
    }

    /// `groups/<url group>`: one empty file per key stored for the URL.
    pub(crate) fn group_dir(&self, group: &CacheKey) -> PathBuf {
        self.root.join("groups").join(group.as_str())
    }

    pub(crate) fn group_marker(&self, group: &CacheKey, key: &CacheKey) -> PathBuf {
        self.group_dir(group).join(key.as_str())
    }

    /// Locks the shard of `key` against other writers (in this process or another) until
    /// the returned file is dropped. Readers never lock.
    pub(crate) fn lock(&self, key: &CacheKey) -> Result<File, StoreError> {
        self.lock_dir(&self.shard_dir(key))
    }

    /// Locks the shard directory `dir` (see [`Layout::lock`]) through its lock file, which
    /// must be a regular file: anything else there (a link committed with the cache, a FIFO)
    /// fails the writes of the shard with an error naming it, never followed nor waited on.
    /// It is not removed: a writer that removed it could remove the lock file another writer
    /// had just made and locked, and the two would then hold locks on two files.
    pub(crate) fn lock_dir(&self, dir: &Path) -> Result<File, StoreError> {
        let path = dir.join(LOCK_FILE);
        let file = open_own_file(&path, OpenOwn::Existing).map_err(io_error)?;
        fs2::FileExt::lock_exclusive(&file).map_err(io_error)?;
        Ok(file)
    }
}

/// The key a file under `entries/` belongs to, and whether it is its record (`<key>.json`)
/// or a body (`<key>.<generation>.body`); `None` for anything else (temps, the lock).
pub(crate) fn classify(name: &str) -> Option<(CacheKey, FileKind)> {
    let key: CacheKey = name.get(..32)?.parse().ok()?;
    match &name[32..] {
        ".json" => Some((key, FileKind::Record)),
        rest if rest.starts_with('.') && rest.ends_with(".body") => Some((key, FileKind::Body)),
        _ => None,
    }
}

/// What [`classify`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Record,
    Body,
}

/// A name no other write (in any process) uses ([`cache_core::unique::unique_id`]).
pub(crate) fn unique_suffix() -> String {
    cache_core::unique::unique_id()
}

/// Writes `parts` to a new temporary file in `dir` and returns its path; the caller renames
/// it into place (a rename within one directory is atomic).
pub(crate) fn write_temp(dir: &Path, suffix: &str, parts: &[&[u8]]) -> Result<PathBuf, StoreError> {
    let path = dir.join(format!("{TEMP_PREFIX}{}.{suffix}", unique_suffix()));
    let written = File::create_new(&path).and_then(|mut file| {
        for part in parts {
            file.write_all(part)?;
        }
        Ok(())
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&path);
        return Err(io_error(error));
    }
    Ok(path)
}

/// Creates the directory `dir` of the store (its parent exists or is made), and checks that
/// what is there is a directory, not a link to one: a link committed with the cache would
/// have the store write its files, and read them back, wherever it points.
pub(crate) fn own_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    if fs::symlink_metadata(dir)?.file_type().is_dir() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} is a link or not a directory: the cache only reads and writes inside its own directories",
        dir.display()
    )))
}

/// What [`open_own_file`] does with something other than a regular file at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenOwn {
    /// Refuses it, with an error naming the path.
    Existing,
    /// Removes it (itself, not what a link points at) and makes the file: for a file whose
    /// presence is all that counts (a group marker), which two writers may make at once.
    Replacing,
}

/// Opens the store's own file at `path` for writing (a group marker, a shard's lock),
/// creating it when absent, never through a link there nor blocked by a FIFO: a link
/// committed or planted under such a name made the store create, or empty, whatever it
/// pointed at, and a FIFO blocked the open for good. Something else than a regular file there
/// is refused, or removed first as `others` says; a directory is always refused.
pub(crate) fn open_own_file(path: &Path, others: OpenOwn) -> io::Result<File> {
    let not_a_file = || {
        io::Error::other(format!(
            "{} is not a regular file, where the cache keeps a file of its own: remove it",
            path.display()
        ))
    };
    match fs::symlink_metadata(path) {
        Ok(found) if found.is_file() => {}
        Ok(found) if found.is_dir() || others == OpenOwn::Existing => return Err(not_a_file()),
        Ok(_) => match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    // Should a link or a FIFO appear between the check and the open, the open fails (a link)
    // or returns at once (a FIFO, then refused below) rather than follow or wait.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_a_file());
    }
    Ok(file)
}

/// Removes a file; a file already gone is fine (another writer or a sweep was first). A
/// directory under the name is not the store's (it made a file there): it is left, with a
/// warning, and counts as nothing removed, where failing made every delete of its entry, and
/// `clear` at its shard, fail for good.
pub(crate) fn remove_if_present(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) if fs::symlink_metadata(path).is_ok_and(|found| found.is_dir()) => {
            tracing::warn!(path = %path.display(), error = %e, "a directory where the cache keeps a file: left alone");
            Ok(false)
        }
        Err(e) => Err(io_error(e)),
    }
}

/// True when a listed entry is of the kind `kind` says, links not followed (a file or a
/// directory the store makes; anything else under its names is not the store's).
pub(crate) fn is_kind(entry: &fs::DirEntry, kind: fn(&fs::FileType) -> bool) -> bool {
    entry.file_type().is_ok_and(|found| kind(&found))
}

/// True when the file was last written [`ABANDONED_AFTER`] ago or more.
pub(crate) fn is_abandoned(path: &Path, now: SystemTime) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() >= ABANDONED_AFTER)
}

/// An I/O error as a store error: a full disk is [`StoreError::Full`], the rest
/// [`StoreError::Backend`].
pub(crate) fn io_error(error: io::Error) -> StoreError {
    if error.kind() == io::ErrorKind::StorageFull {
        StoreError::full(error)
    } else {
        StoreError::backend(error)
    }
}

//! The blocking file operations behind each store call. Writers lock the key's shard;
//! readers never lock: every file is complete once it has its name.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use cache_core::{BodyFile, CacheKey, EntryMeta, Opened, StoreError, StoredEntry};

use crate::layout::{
    FileKind, Layout, OpenOwn, TEMP_PREFIX, classify, io_error, is_abandoned, is_kind,
    open_own_file, own_dir, remove_if_present, unique_suffix, write_temp,
};
use crate::record::{Record, unhex};

/// How often a read retries when the body it was told about was replaced under it.
const READ_ATTEMPTS: usize = 4;

/// The longest record file read (64 MiB). A record holds an entry's metadata and the head
/// and tail of its value, never its body: any real one is far smaller. A larger one (a
/// sparse file, or one edited by hand) is unreadable, where reading it whole took memory
/// without bound, on every lookup, listing and count of the store.
const LONGEST_RECORD: u64 = 64 << 20;

/// The record under `key`, if there is a readable one.
pub(crate) fn read_record(layout: &Layout, key: &CacheKey) -> Result<Option<Record>, StoreError> {
    match read_regular_file(&layout.record(key), LONGEST_RECORD) {
        Ok(Some(json)) => {
            let record = Record::from_json(&json).filter(|r| r.key == *key);
            if record.is_none() {
                tracing::warn!(%key, "unreadable cache-fs record: ignored");
            }
            Ok(record)
        }
        Ok(None) => {
            tracing::warn!(%key, "cache-fs record is not a regular file, or is too long: ignored");
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

/// The bytes of the regular file at `path` as long as it was when opened ([`open_regular`]);
/// `None` when something else is there, or a file longer than `longest`.
fn read_regular_file(path: &Path, longest: u64) -> io::Result<Option<Vec<u8>>> {
    let Some((file, len)) = open_regular(path)?.filter(|(_, len)| *len <= longest) else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
    file.take(len).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Whether what is at `path` is a regular file, links not followed: not a link (a committed
/// link would make the store read, or remove, whatever it points at: a FIFO blocks a read
/// forever, a device never ends) nor a directory (whose reads and removals fail, and with
/// them every lookup of the key). `NotFound` when nothing is there.
fn is_regular(path: &Path) -> io::Result<bool> {
    Ok(fs::symlink_metadata(path)?.file_type().is_file())
}

/// The regular file at `path` ([`is_regular`]) opened, with its length when opened (a file
/// that grows after, or never ends, is read no further); `None` when something else is there.
fn open_regular(path: &Path) -> io::Result<Option<(fs::File, u64)>> {
    if !is_regular(path)? {
        return Ok(None);
    }
    let file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    Ok(Some((file, len)))
}

/// The entry under `key`: its record, then its body, joined back into the stored bytes.
pub(crate) fn get(layout: &Layout, key: &CacheKey) -> Result<Option<StoredEntry>, StoreError> {
    let mut missing = MissingBody::default();
    for _ in 0..READ_ATTEMPTS {
        let Some(record) = read_record(layout, key)? else {
            return Ok(None);
        };
        match read_whole(layout, key, &record) {
            Ok(value) => return Ok(Some(StoredEntry::new(record.meta(), value))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if missing.gone_for_good(key, &record) {
                    return Ok(Some(StoredEntry::new(record.meta(), Bytes::new())));
                }
            }
            Err(e) => return Err(io_error(e)),
        }
    }
    tracing::warn!(%key, "cache-fs entry replaced at every read: a miss");
    Ok(None)
}

/// The body names of the records a read found without their body file.
///
/// A writer renames an entry's new body into place before its record, and removes the old
/// body after: a read that found no body under the record it read raced a writer, and
/// reads the new record. The same record missing its body twice running is an entry whose
/// body is gone for good (deleted by hand, left out of a commit or a copy): it reads as bytes
/// the codec rejects, as a body name not its own does, so that it is listed, shown and
/// deleted as an unreadable entry, where it was listed but missed by every read, filter
/// and delete by key.
#[derive(Default)]
struct MissingBody {
    last: Option<(String, i64)>,
}

impl MissingBody {
    /// Notes that `record`'s body was not found; true when it was not found under this
    /// very record before.
    fn gone_for_good(&mut self, key: &CacheKey, record: &Record) -> bool {
        let this = record
            .body_file
            .clone()
            .map(|name| (name, record.created_at_ms));
        let again = this.is_some() && self.last == this;
        if again {
            tracing::warn!(%key, "cache-fs record names a body file that is missing: unreadable");
        }
        self.last = this;
        again
    }
}

/// The entry under `key`, with its body file opened instead of read when the body is over
/// `inline_up_to` bytes and not compressed, and left unread when it is over it compressed
/// ([`Opened::Unread`]).
pub(crate) fn open(
    layout: &Layout,
    key: &CacheKey,
    inline_up_to: u64,
) -> Result<Option<Opened>, StoreError> {
    let mut missing = MissingBody::default();
    for _ in 0..READ_ATTEMPTS {
        let Some(record) = read_record(layout, key)? else {
            return Ok(None);
        };
        let read = match &record.body_file {
            Some(name) => open_body(layout, key, &record, name, inline_up_to),
            None => assemble(&record, None)
                .map(|value| Opened::Whole(StoredEntry::new(record.meta(), value))),
        };
        match read {
            Ok(opened) => return Ok(Some(opened)),
            // Replaced between our two reads, or gone for good, as in `get`.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if missing.gone_for_good(key, &record) {
                    let unreadable = StoredEntry::new(record.meta(), Bytes::new());
                    return Ok(Some(Opened::Whole(unreadable)));
                }
            }
            Err(e) => return Err(io_error(e)),
        }
    }
    tracing::warn!(%key, "cache-fs entry replaced at every read: a miss");
    Ok(None)
}

/// The entry of `record`, whose body is in the file `name`: read whole when that is at most
/// `inline_up_to` bytes; over it, left in its file when not compressed, and left unread when
/// compressed ([`Opened::Unread`]: a compressed body cannot be read in pieces, and reading it
/// whole would hold more than `inline_up_to` bytes). Decided by what is there, the file's
/// own length and the envelope's flag, not by the record's `body_len` and `body_compressed`,
/// which anyone may edit: a record claiming a small body read a large file whole into
/// memory.
fn open_body(
    layout: &Layout,
    key: &CacheKey,
    record: &Record,
    name: &str,
    inline_up_to: u64,
) -> io::Result<Opened> {
    // The file's own length: one cut short reads as a miss (the codec compares it with the
    // envelope's).
    let Some((file, len)) = open_own_body(layout, key, name)? else {
        // Bytes the codec rejects: a miss, and the entry is deleted.
        let value = Bytes::new();
        return Ok(Opened::Whole(StoredEntry::new(record.meta(), value)));
    };
    let before = unhex(&record.value_head).unwrap_or_default();
    if len <= inline_up_to {
        let value = assemble_with_head(&before, record, Some((file, len)))?;
        return Ok(Opened::Whole(StoredEntry::new(record.meta(), value)));
    }
    if cache_core::codec::body_is_compressed(&before) {
        // The whole value's length: the tail's bytes are half its hex.
        let around = before.len() + record.value_tail.len() / 2;
        let len = len.saturating_add(around as u64);
        return Ok(Opened::Unread {
            meta: record.meta(),
            len,
        });
    }
    let after = Bytes::from(unhex(&record.value_tail).unwrap_or_default());
    Ok(Opened::Body(BodyFile::new(
        record.meta(),
        Bytes::from(before),
        after,
        file,
        len,
    )))
}

/// The entry of `record` read whole, its body file opened first ([`assemble`]).
fn read_whole(layout: &Layout, key: &CacheKey, record: &Record) -> io::Result<Bytes> {
    let body = match &record.body_file {
        Some(name) => match open_own_body(layout, key, name)? {
            Some(opened) => Some(opened),
            None => return Ok(Bytes::new()),
        },
        None => None,
    };
    assemble(record, body)
}

/// The stored value: the record's head bytes, the `body` file opened (with its length), the
/// record's tail bytes. A record whose hex is damaged gives bytes the codec rejects (a
/// miss), never an error.
fn assemble(record: &Record, body: Option<(fs::File, u64)>) -> io::Result<Bytes> {
    let head = unhex(&record.value_head).unwrap_or_default();
    assemble_with_head(&head, record, body)
}

/// [`assemble`] with the record's head bytes already read from its hex.
fn assemble_with_head(
    head: &[u8],
    record: &Record,
    body: Option<(fs::File, u64)>,
) -> io::Result<Bytes> {
    let tail = unhex(&record.value_tail).unwrap_or_default();
    // Sized by what is there, not by the record's `size`, which anyone may edit; read no
    // further than that length.
    let body_len = body.as_ref().map_or(0, |(_, len)| *len);
    let capacity = usize::try_from(body_len).unwrap_or(0).min(1 << 30);
    let mut value = Vec::with_capacity(head.len() + capacity + tail.len());
    value.extend_from_slice(head);
    if let Some((file, len)) = body {
        file.take(len).read_to_end(&mut value)?;
    }
    value.extend_from_slice(&tail);
    Ok(Bytes::from(value))
}

/// Stores `entry` if `select` takes the record under the key as read under its lock (`None`:
/// none, or one this version cannot read); returns the change in stored bytes, or `None`,
/// with nothing written, when `select` does not take it.
pub(crate) fn put_if(
    layout: &Layout,
    entry: &StoredEntry,
    select: impl Fn(Option<&Record>) -> bool,
) -> Result<Option<i64>, StoreError> {
    let key = entry.meta.key;
    let dir = layout.shard_dir(&key);
    let body_name = format!("{key}.{}.body", unique_suffix());
    let (record, body) = Record::new(&entry.meta, &entry.value, &body_name);
    // Both files are written under temporary names before the lock is taken, so the lock
    // covers only renames and removals.
    let body_temp = match record.body_file {
        Some(_) => Some(write_temp(&dir, "body", &[&entry.value[body]])?),
        None => None,
    };
    let record_temp = match write_temp(&dir, "json", &[&record.to_json()]) {
        Ok(path) => path,
        Err(e) => {
            if let Some(path) = &body_temp {
                let _ = fs::remove_file(path);
            }
            return Err(e);
        }
    };
    let committed = commit_if(
        layout,
        &record,
        (body_temp.as_deref(), &record_temp),
        select,
    );
    if !matches!(committed, Ok(Some(_))) {
        for path in body_temp.iter().chain([&record_temp]) {
            let _ = fs::remove_file(path);
        }
    }
    committed
}

/// Under the shard's lock: the group marker, the body, then the record (the commit point),
/// then what the old record held that the new one does not.
pub(crate) fn commit(
    layout: &Layout,
    record: &Record,
    body_temp: Option<&std::path::Path>,
    record_temp: &std::path::Path,
) -> Result<i64, StoreError> {
    commit_if(layout, record, (body_temp, record_temp), |_| true).map(|delta| delta.unwrap_or(0))
}

/// [`commit`] if `select` takes the old record, read under the lock; `None`, with nothing
/// renamed, when it does not.
fn commit_if(
    layout: &Layout,
    record: &Record,
    (body_temp, record_temp): (Option<&std::path::Path>, &std::path::Path),
    select: impl Fn(Option<&Record>) -> bool,
) -> Result<Option<i64>, StoreError> {
    let key = record.key;
    let dir = layout.shard_dir(&key);
    let _lock = layout.lock(&key)?;
    let old = read_record(layout, &key)?;
    if !select(old.as_ref()) {
        return Ok(None);
    }
    if let Some(group) = &record.url_group {
        mark_group(layout, group, &key)?;
    }
    // A failure from here on takes back what this write put in place, but for a marker the
    // old record uses too: nothing names it. Left, a body of the entry's own name stayed
    // until a sweep at open, and a marker listed the key under a URL it is not stored for.
    let take_back = |body: Option<&std::path::Path>| {
        if let Some(path) = body {
            let _ = fs::remove_file(path);
        }
        let old_group = old.as_ref().and_then(|old| old.url_group.as_ref());
        if let Some(group) = record.url_group.as_ref().filter(|g| Some(*g) != old_group) {
            let _ = remove_if_present(&layout.group_marker(group, &key));
        }
    };
    let body_path = match (body_temp, &record.body_file) {
        (Some(temp), Some(name)) => {
            let path = dir.join(name);
            if let Err(error) = fs::rename(temp, &path) {
                take_back(None);
                return Err(io_error(error));
            }
            Some(path)
        }
        _ => None,
    };
    if let Err(error) = fs::rename(record_temp, layout.record(&key)) {
        take_back(body_path.as_deref());
        return Err(io_error(error));
    }
    let old_size = match old {
        Some(old) => {
            forget(layout, &old, Some(record))?;
            old.size
        }
        None => 0,
    };
    Ok(Some(signed(record.size) - signed(old_size)))
}

/// True when `name`, a body file a record names, is a body of `key` in the record's own
/// directory: the only file a record may make the store read or remove. A hand-edited (or
/// committed) record naming `../x` or `/home/u/.ssh/authorized_keys` names neither.
fn is_own_body(name: &str, key: &CacheKey) -> bool {
    // A name, not a path: `{key}./../../x.body` classifies as a body of the key. Nor one no
    // file can have (a NUL, more than 255 bytes; other limits of a file system are met by
    // `not_a_file_name`): looking it up failed with an error other than "not found", and
    // every read, listing and delete of the entry with it.
    let bare = !name.contains(['/', '\\', '\0']) && name.len() <= LONGEST_FILE_NAME;
    bare && classify(name).is_some_and(|(k, kind)| k == *key && kind == FileKind::Body)
}

/// The longest file name the common file systems take, in bytes (`NAME_MAX`).
const LONGEST_FILE_NAME: usize = 255;

/// Where the body file `name` of `key`'s record is, when the store may read or remove it: a
/// bare name of the key's own body ([`is_own_body`]) that is a regular file ([`is_regular`]).
/// `Ok(None)` otherwise; `NotFound` when nothing is there.
fn own_body_path(layout: &Layout, key: &CacheKey, name: &str) -> io::Result<Option<PathBuf>> {
    if !is_own_body(name, key) {
        return Ok(None);
    }
    let path = layout.shard_dir(key).join(name);
    Ok(not_a_file_name(is_regular(&path))?
        .unwrap_or(false)
        .then_some(path))
}

/// `result` of a look-up of a body file by the name a record gives, with a name this file
/// system cannot have (too long for it, or with a character it refuses) as `Ok(None)`: no
/// body of the entry's own, as a name [`is_own_body`] refuses, where the error failed every
/// read, count and delete of the entry.
fn not_a_file_name<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The body file `name` of `key`'s record opened with its length ([`open_regular`]), where
/// [`is_own_body`] allows it.
fn open_own_body(
    layout: &Layout,
    key: &CacheKey,
    name: &str,
) -> io::Result<Option<(fs::File, u64)>> {
    if !is_own_body(name, key) {
        return Ok(None);
    }
    Ok(not_a_file_name(open_regular(&layout.shard_dir(key).join(name)))?.flatten())
}

/// Removes the files of `old` that `new` does not use: its body (only one of its own, see
/// [`own_body_path`]), its group marker.
fn forget(layout: &Layout, old: &Record, new: Option<&Record>) -> Result<(), StoreError> {
    if let Some(name) = &old.body_file {
        let used_by_new = new.and_then(|n| n.body_file.as_ref()) == Some(name);
        if !used_by_new {
            if let Some(path) = own_body_path(layout, &old.key, name).ok().flatten() {
                remove_if_present(&path)?;
            }
        }
    }
    if let Some(group) = &old.url_group {
        if new.and_then(|n| n.url_group.as_ref()) != Some(group) {
            remove_if_present(&layout.group_marker(group, &old.key))?;
        }
    }
    Ok(())
}

/// Creates the group marker, in a directory of the store's own (not a link: see
/// [`own_dir`]), not through a link under its name ([`open_own_file`]); retries when a
/// sweep removed the empty group directory between creating it and the file.
fn mark_group(layout: &Layout, group: &CacheKey, key: &CacheKey) -> Result<(), StoreError> {
    let mut attempts = 0;
    loop {
        let made = own_dir(&layout.group_dir(group))
            .and_then(|()| open_own_file(&layout.group_marker(group, key), OpenOwn::Replacing))
            .map(drop);
        match made {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            Err(e) => return Err(io_error(e)),
        }
    }
}

/// Removes the entry under `key` if `select` accepts its record (read under the lock); a
/// record this version cannot read goes too (`delete` must remove what `entries` skips).
/// Returns its size when it removed one.
pub(crate) fn delete_if(
    layout: &Layout,
    key: &CacheKey,
    select: impl Fn(&Record) -> bool,
) -> Result<Option<u64>, StoreError> {
    let _lock = layout.lock(key)?;
    remove_judged(layout, key, |record| record.is_none_or(&select))
}

/// [`delete_if`], but a record that cannot be read (damaged, or of a newer format) stays:
/// `select` cannot say whether it is the one meant.
pub(crate) fn delete_if_readable(
    layout: &Layout,
    key: &CacheKey,
    select: impl Fn(&Record) -> bool,
) -> Result<Option<u64>, StoreError> {
    let _lock = layout.lock(key)?;
    remove_judged(layout, key, |record| record.is_some_and(&select))
}

/// Removes the entry under `key` if its body is the file `served` describes (the same file
/// on disk); its size when it did. Never off Unix, where the identity is not known.
pub(crate) fn delete_if_serving(
    layout: &Layout,
    key: &CacheKey,
    served: &fs::Metadata,
) -> Result<Option<u64>, StoreError> {
    delete_if_readable(layout, key, |record| {
        record
            .body_file
            .as_deref()
            .and_then(|name| own_body_path(layout, key, name).ok().flatten())
            .and_then(|path| fs::metadata(path).ok())
            .is_some_and(|current| same_file(&current, served))
    })
}

/// Whether two files' metadata are of one file on disk (device and inode, on Unix).
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Removes the entry under `key` if `select` takes its record as read now (`None`: one this
/// version cannot read); returns its size when it removed one (0 for an unreadable record,
/// whose body it cannot name). For a caller holding the key's or the shard's lock.
fn remove_judged(
    layout: &Layout,
    key: &CacheKey,
    select: impl Fn(Option<&Record>) -> bool,
) -> Result<Option<u64>, StoreError> {
    let record = read_record(layout, key)?;
    if !select(record.as_ref()) || !remove_if_present(&layout.record(key))? {
        return Ok(None);
    }
    let Some(record) = record else {
        return Ok(Some(0));
    };
    forget(layout, &record, None)?;
    Ok(Some(record.size))
}

/// Rewrites the expiry in the record under `key`; false when there is none.
pub(crate) fn set_expiry(
    layout: &Layout,
    key: &CacheKey,
    expires_at: Option<SystemTime>,
) -> Result<bool, StoreError> {
    update_record(layout, key, |record| {
        record.set_expiry(expires_at);
        true
    })
}

/// Rewrites the creation and expiry in the record under `key` (its value and body stay),
/// if it is still the write created at `was_created`; false when not (gone, written again
/// since, or unreadable).
pub(crate) fn renew(
    layout: &Layout,
    key: &CacheKey,
    was_created: SystemTime,
    (created_at, expires_at): (SystemTime, Option<SystemTime>),
) -> Result<bool, StoreError> {
    let was_created = cache_core::time::truncate_to_millis(was_created);
    update_record(layout, key, |record| {
        if record.meta().created_at != was_created {
            return false;
        }
        record.set_created(created_at);
        record.set_expiry(expires_at);
        true
    })
}

/// Under the key's lock, reads the record under `key`, lets `change` change it, and writes
/// it back when `change` says so; false when there is no readable record or `change` said no.
fn update_record(
    layout: &Layout,
    key: &CacheKey,
    change: impl FnOnce(&mut Record) -> bool,
) -> Result<bool, StoreError> {
    let _lock = layout.lock(key)?;
    let Some(mut record) = read_record(layout, key)? else {
        return Ok(false);
    };
    if !change(&mut record) {
        return Ok(false);
    }
    rewrite(layout, key, &record)?;
    Ok(true)
}

/// Replaces the record under `key` with `record`, through a file renamed into place.
fn rewrite(layout: &Layout, key: &CacheKey, record: &Record) -> Result<(), StoreError> {
    let temp = write_temp(&layout.shard_dir(key), "json", &[&record.to_json()])?;
    if let Err(e) = fs::rename(&temp, layout.record(key)) {
        let _ = fs::remove_file(&temp);
        return Err(io_error(e));
    }
    Ok(())
}

/// The keys of the records in one shard directory, by their file names. A record file in
/// another key's shard (put there by hand) is not one: the store reads a key's record in
/// its own shard only, and listing it here would list that key twice.
pub(crate) fn record_keys(layout: &Layout, shard: u8) -> Result<Vec<CacheKey>, StoreError> {
    let dir = layout.shard_dir_of(shard);
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e)),
    };
    let mut keys = Vec::new();
    for file in listing {
        let file = file.map_err(io_error)?;
        // A directory under a record's name is no record: counted, it was an entry no read,
        // listing or delete could reach.
        if is_kind(&file, fs::FileType::is_dir) {
            continue;
        }
        let name = file.file_name();
        let Some((key, FileKind::Record)) = name.to_str().and_then(classify) else {
            continue;
        };
        if layout.shard_dir(&key) == dir {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The records of one shard directory, unreadable ones skipped (a warning each).
pub(crate) fn scan_shard(layout: &Layout, shard: u8) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    for key in record_keys(layout, shard)? {
        if let Some(record) = read_record(layout, &key)? {
            records.push(record);
        }
    }
    Ok(records)
}

/// Removes, under the shard's lock, every entry of the shard whose record `select` takes
/// (`None`: one this version cannot read); returns how many and their bytes.
pub(crate) fn remove_in_shard(
    layout: &Layout,
    shard: u8,
    select: impl Fn(Option<&Record>) -> bool,
) -> Result<(u64, u64), StoreError> {
    let dir = layout.shard_dir_of(shard);
    let _lock = layout.lock_dir(&dir)?;
    let (mut count, mut bytes) = (0, 0u64);
    for key in record_keys(layout, shard)? {
        let removed = remove_judged(layout, &key, &select)?;
        if let Some(size) = removed {
            count += 1;
            // A hand-edited record may claim any size.
            bytes = bytes.saturating_add(size);
        }
    }
    Ok((count, bytes))
}

/// Removes what dead writers left in the shard: temporary files, and body files no record
/// names, once they are [abandoned](crate::layout::ABANDONED_AFTER). Returns how many.
pub(crate) fn sweep_shard(layout: &Layout, shard: u8, now: SystemTime) -> Result<u64, StoreError> {
    let dir = layout.shard_dir_of(shard);
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(e)),
    };
    let mut removed = 0;
    for file in listing {
        let file = file.map_err(io_error)?;
        // Only files the store could have written: a directory or a link under one of its
        // names is not its to remove (and removing a directory fails the sweep).
        if !is_kind(&file, fs::FileType::is_file) {
            continue;
        }
        let name = file.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = dir.join(name);
        let orphan = if name.starts_with(TEMP_PREFIX) {
            true
        } else if let Some((key, FileKind::Body)) = classify(name) {
            match read_record(layout, &key)? {
                Some(record) => record.body_file.as_deref() != Some(name),
                // A record this version cannot read (a later version's format, sharing the
                // directory) may name it: not ours to judge. Only with no record at all
                // does nothing name it.
                None => !exists(&layout.record(&key))?,
            }
        } else {
            false
        };
        if orphan && is_abandoned(&path, now) && remove_if_present(&path)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether anything is at `path` (links not followed).
fn exists(path: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(e)),
    }
}

/// Whether a regular file is at `path` (links not followed): a record, readable or not, is
/// one; a link, FIFO or directory under a record's name is no version's record.
pub(crate) fn is_record_file(path: &Path) -> Result<bool, StoreError> {
    match is_regular(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        found => found.map_err(io_error),
    }
}

/// The bytes `record`'s entry holds on disk: the head and tail its record holds (as hex, two
/// digits a byte) and its body file's length (a body not its own, or missing, counts as none).
/// What the bound counts, rather than the record's `size`, which anyone may edit.
pub(crate) fn stored_size(layout: &Layout, record: &Record) -> u64 {
    let in_record = (record.value_head.len() + record.value_tail.len()) as u64 / 2;
    // One look at the file: its kind and its length.
    let body = record
        .body_file
        .as_deref()
        .filter(|name| is_own_body(name, &record.key))
        .and_then(|name| fs::symlink_metadata(layout.shard_dir(&record.key).join(name)).ok())
        .filter(fs::Metadata::is_file)
        .map_or(0, |found| found.len());
    in_record.saturating_add(body)
}

/// The metadata of every entry in `records`.
pub(crate) fn metas(records: Vec<Record>) -> Vec<Result<EntryMeta, StoreError>> {
    records.iter().map(|r| Ok(r.meta())).collect()
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

//! Reading entries with their values: sizes for `stats`, and the format check that every
//! command changing or moving entries does first.

use std::future::ready;

use futures_util::stream::{BoxStream, StreamExt};
use reqwest_caching::{CacheStore, EntryMeta, StoreError};

use crate::entry_format::{self, FORMAT_VERSION, Unreadable};
use crate::error::CliError;

/// How many values are read at once: hides a remote store's round trips, keeps few values
/// in memory.
const READ_AHEAD: usize = 8;

/// An entry read whole.
#[derive(Debug)]
pub struct Scanned {
    /// Its metadata.
    pub meta: EntryMeta,
    /// The length of its stored (encoded) value.
    pub bytes: u64,
    /// Whether this build can read it.
    pub readable: Result<(), Unreadable>,
}

/// Every entry `select` keeps, read with its value. Entries deleted between the listing and
/// the read are left out.
pub fn scan<'a>(
    store: &'a dyn CacheStore,
    select: impl Fn(&EntryMeta) -> bool + Send + 'a,
) -> BoxStream<'a, Result<Scanned, StoreError>> {
    store
        .entries()
        .filter(move |listed| ready(listed.as_ref().map_or(true, &select)))
        .map(move |listed| async move {
            let meta = listed?;
            let Some(entry) = store.get(&meta.key).await? else {
                return Ok(None);
            };
            Ok(Some(Scanned {
                bytes: entry.value.len() as u64,
                readable: entry_format::decode(&entry.value).map(drop),
                meta,
            }))
        })
        .buffer_unordered(READ_AHEAD)
        .filter_map(|read| ready(read.transpose()))
        .boxed()
}

/// The entries of a newer format met so far: any makes the command stop before it changes
/// anything.
#[derive(Debug, Default)]
pub struct NewerFormats {
    newest: u8,
    count: u64,
    first_url: Option<String>,
}

impl NewerFormats {
    /// Notes `entry` when it is of a newer format; true when it is.
    pub fn note(&mut self, entry: &Scanned) -> bool {
        let Err(Unreadable::Newer(version)) = entry.readable else {
            return false;
        };
        self.newest = self.newest.max(version);
        self.count += 1;
        self.first_url.get_or_insert_with(|| entry.meta.url.clone());
        true
    }

    /// `Ok` when none was met.
    ///
    /// # Errors
    ///
    /// [`CliError::NewerFormat`] otherwise.
    pub fn refuse(self) -> Result<(), CliError> {
        match self.first_url {
            None => Ok(()),
            Some(url) => Err(CliError::NewerFormat {
                version: self.newest,
                ours: FORMAT_VERSION,
                count: self.count,
                url,
            }),
        }
    }
}
